//! What can go wrong before jobs are dispatched.

use std::path::PathBuf;

/// Why workloads could not be loaded or a dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The workloads file could not be read.
    #[error("cannot read workloads file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The workloads file is not valid TOML of the expected shape.
    #[error("invalid workloads file{}: {message}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if it was read from one.
        path: Option<PathBuf>,
        /// The parser's message (it names the line).
        message: String,
    },
    /// Two workloads have one name.
    #[error("two workloads are named {0:?}: names must be unique")]
    Duplicate(String),
    /// A workload's settings, or the queue, said no.
    #[error(transparent)]
    Queue(#[from] underling::Error),
    /// A workload's `ca_file` could not be read, or holds no certificate.
    #[error("workload {workload:?}: cannot use ca_file {}: {reason}", .path.display())]
    CaFile {
        /// The workload.
        workload: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}
