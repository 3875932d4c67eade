//! The benchmark's error type.

/// What can stop a benchmark run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The queue under test failed.
    #[error(transparent)]
    Queue(#[from] underling::Error),
    /// A raw-SQL ceiling failed.
    #[error("raw SQL: {0}")]
    Database(#[from] sqlx::Error),
    /// The temporary SQLite directory could not be made.
    #[error("temporary files: {0}")]
    Io(#[from] std::io::Error),
    /// A measuring task panicked or was cancelled.
    #[error("a benchmark task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The in-process HTTP server could not start, or a request to it failed or was refused.
    #[error("HTTP: {0}")]
    Http(String),
    /// A worker process could not start or failed.
    #[error("{0}")]
    WorkerProcess(String),
    /// A figure was measured on a run that did not do all its work.
    #[error("benchmark check failed: {0}")]
    Check(String),
    /// The options asked for something the benchmark cannot measure.
    #[error("{0}")]
    Usage(String),
}

/// `Result` with [`BenchError`].
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
