//! The library's error type.

/// Everything that can go wrong in underling, as a typed enum.
///
/// Errors caused by bad input (`Invalid*`, `*NotFound`, ...) are detected before anything is
/// written: when one is returned, the database is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL could not be understood.
    #[error(
        "invalid database URL {url:?}: {reason} (expected postgres://user@host/db, sqlite://path or sqlite::memory:)"
    )]
    InvalidUrl {
        /// The URL, with any password masked.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The database could not be reached.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL, with any password masked.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database has no underling schema, or an older one.
    #[error("the database is not migrated: {0} (run `underling migrate` or call Queue::migrate())")]
    NotMigrated(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A task name was empty or otherwise unusable.
    #[error(
        "invalid task name {0:?}: a task name must be a non-empty string without surrounding spaces"
    )]
    InvalidTask(String),
    /// Job arguments could not be turned into JSON, or were not valid JSON.
    #[error("invalid job arguments: {0}")]
    InvalidArgs(String),
    /// An option value was out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Notes must be a JSON object.
    #[error("invalid notes: {0}")]
    InvalidNotes(String),
    /// A parent job given as a dependency does not exist.
    #[error("parent job {0} does not exist")]
    ParentNotFound(i64),
    /// The job does not exist.
    #[error("job {0} not found")]
    JobNotFound(i64),
    /// The job is running and cannot be changed that way.
    #[error("job {0} is active and cannot be removed; stop it first or wait for it to finish")]
    JobActive(i64),
    /// The worker does not exist.
    #[error("worker {0} not found")]
    WorkerNotFound(i64),
    /// A filter named a job state that does not exist.
    #[error("unknown job state {0:?}: expected one of inactive, active, finished, failed")]
    UnknownState(String),
    /// A task has no registration.
    #[error("unknown task {0:?}: no task of that name is registered in this worker")]
    UnknownTask(String),
    /// A job could not be run in the foreground.
    #[error("job {id} cannot be run now: {reason}")]
    NotReady {
        /// The job.
        id: i64,
        /// Why it cannot run.
        reason: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// JSON stored in the database could not be read.
    #[error("stored JSON is malformed: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with underling's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
