//! The library's error type.

use crate::store::BackendKind;

/// Everything that can go wrong in underling, as a typed enum: one variant per cause that a
/// caller can act on.
///
/// Errors caused by bad input (`Invalid*`, `*NotFound`, `DuplicateTask`, `WrongBackend`, ...)
/// are detected before anything is written: when one is returned, the database is unchanged.
/// New variants may be added in any release, so match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error("cannot connect to {url}: {}", driver_message(.source))]
    Connect {
        /// The URL, with any password masked.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A parameter of a database URL (or the environment variable standing in for it, such
    /// as `PGSSLMODE`) has a value that cannot be used; nothing was connected.
    #[error("invalid {parameter} for {url}: {reason}")]
    InvalidUrlParameter {
        /// The URL, with any password masked.
        url: String,
        /// The parameter, as written (`sslmode`, `sslrootcert`, ... or `PGSSLMODE`).
        parameter: String,
        /// What was wrong with it and what to write instead.
        reason: String,
    },
    /// A certificate or key file named by a database URL (`sslrootcert`, `sslcert`, `sslkey`,
    /// or `PGSSLROOTCERT`, ...) cannot be read or holds no PEM data; nothing was connected.
    #[error(
        "the {parameter} file {path} {reason} (in {url}): give the path of a readable PEM file"
    )]
    TlsFile {
        /// The URL, with any password masked.
        url: String,
        /// The parameter that named the file.
        parameter: String,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server's TLS certificate did not verify (`sslmode=verify-ca` or `verify-full`, or
    /// `require` with `sslrootcert`): it is not signed by a trusted certificate authority, or
    /// it does not name the host connected to. Retrying will not help.
    #[error("cannot connect to {url}: the server's TLS certificate was rejected: {reason}")]
    TlsCertificate {
        /// The URL, with any password masked.
        url: String,
        /// Why it was rejected and what to change.
        reason: String,
    },
    /// The URL asks for TLS (`sslmode=require`, `verify-ca` or `verify-full`), but the server
    /// does not offer it.
    #[error(
        "cannot connect to {url}: the server does not accept TLS connections, but sslmode={sslmode} requires TLS (turn on ssl in the server, or lower sslmode)"
    )]
    TlsUnsupported {
        /// The URL, with any password masked.
        url: String,
        /// The sslmode in effect.
        sslmode: String,
    },
    /// The server refused a connection without TLS (its `pg_hba.conf` only has `hostssl`
    /// entries for this client), and the URL said `sslmode=disable`.
    #[error(
        "cannot connect to {url}: the server requires TLS for this connection ({server_message}); use sslmode=require or verify-full instead of sslmode={sslmode}"
    )]
    TlsRequired {
        /// The URL, with any password masked.
        url: String,
        /// The sslmode in effect.
        sslmode: String,
        /// What the server said.
        server_message: String,
    },
    /// A SQLite database file that should exist does not (nothing was created).
    #[error(
        "the database file {path} does not exist (run `underling migrate` or call Queue::migrate() to create it)"
    )]
    DatabaseMissing {
        /// The file that was looked for.
        path: String,
    },
    /// The database has no underling schema, or an older one.
    #[error("the database is not migrated: {0} (run `underling migrate` or call Queue::migrate())")]
    NotMigrated(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// This build of the library has no support for the backend a URL names.
    #[error(
        "this build of underling has no {0} support (enable the crate's `{feature}` feature)",
        feature = .0.feature()
    )]
    BackendDisabled(BackendKind),
    /// An operation for one backend was called on a queue of another, e.g. a transactional
    /// enqueue on a PostgreSQL transaction for a SQLite queue.
    #[error("this queue uses {found}, but the operation needs {expected}")]
    WrongBackend {
        /// The backend the operation works with.
        expected: BackendKind,
        /// The queue's backend.
        found: BackendKind,
    },
    /// A remote command was unknown or had arguments that make no sense.
    #[error("invalid remote command: {0}")]
    InvalidCommand(String),
    /// A task, queue or lock name (or another name a caller gives) is longer than
    /// [`MAX_NAME`](crate::MAX_NAME) bytes.
    #[error("the {what} is {len} bytes long; at most {max} are accepted")]
    NameTooLong {
        /// What the name names: `task name`, `queue name`, `lock name`, ...
        what: String,
        /// Its length in bytes.
        len: usize,
        /// The most accepted, [`MAX_NAME`](crate::MAX_NAME).
        max: usize,
    },
    /// A task name was empty or otherwise unusable.
    #[error(
        "invalid task name {0:?}: a task name must be a non-empty string without surrounding spaces or NUL characters"
    )]
    InvalidTask(String),
    /// A queue name was empty or otherwise unusable.
    #[error(
        "invalid queue name {0:?}: a queue name must be a non-empty string without surrounding spaces or NUL characters"
    )]
    InvalidQueue(String),
    /// Two tasks were registered under one name.
    #[error("two tasks are registered as {0:?}: task names must be unique")]
    DuplicateTask(String),
    /// A worker was started without any task to perform.
    #[error("the worker has no tasks: register tasks with register_task! and link their crate")]
    NoTasks,
    /// Job arguments could not be turned into JSON, or were not valid JSON.
    #[error("invalid job arguments: {0}")]
    InvalidArgs(String),
    /// The operation needs a session of its own on the server (LISTEN, a session advisory
    /// lock), which PgBouncer in transaction mode does not give
    /// ([`crate::ConnectOptions::pgbouncer`]); nothing was done.
    #[error(
        "{operation} cannot run through PgBouncer in transaction mode: it needs a session of its own; connect to PostgreSQL directly (without the pgbouncer option) for it"
    )]
    SessionRequired {
        /// What was refused ("migrations", "live events").
        operation: &'static str,
    },
    /// An option value was out of range or malformed.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A concurrency or rate limit was malformed (see [`crate::Limit`]).
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    /// Notes must be a JSON object.
    #[error("invalid notes: {0}")]
    InvalidNotes(String),
    /// A duration could not be understood (it names the field, e.g. `delay: …`).
    #[error("invalid duration: {0}")]
    InvalidDuration(String),
    /// A parent job given as a dependency does not exist.
    #[error("parent job {0} does not exist")]
    ParentNotFound(i64),
    /// A live job holds the unique key of a job enqueued with [`crate::OnConflict::Error`];
    /// nothing was written.
    #[error(
        "a job with the unique key {key:?} exists already: job {existing} (the enqueue's conflict policy is error; use existing to get its id, or replace to update it)"
    )]
    UniqueConflict {
        /// The unique key.
        key: String,
        /// The live job that holds it.
        existing: i64,
    },
    /// A schedule's cron expression could not be parsed, or never matches a date; nothing was
    /// written.
    #[error(
        "invalid cron expression {expression:?}: {reason}; write 5 fields (minute hour day-of-month month day-of-week, e.g. \"30 2 * * *\" for 02:30 every day), 6 with seconds first (\"*/10 * * * * *\"), or @hourly, @daily, @weekly, @monthly, @yearly"
    )]
    InvalidCron {
        /// The expression as given.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A schedule's time zone is not an IANA time zone name; nothing was written.
    #[error(
        "unknown time zone {0:?}: give an IANA time zone name such as UTC, Europe/Berlin or America/New_York"
    )]
    InvalidTimezone(String),
    /// A schedule name was empty, too long or had characters it may not have.
    #[error(
        "invalid schedule name {0:?}: a schedule name is 1 to 200 letters, digits, '.', '_', ':' or '-' (e.g. nightly-report)"
    )]
    InvalidScheduleName(String),
    /// A schedule's job options make no sense for a periodic job; nothing was written.
    #[error("invalid schedule {name:?}: {reason}")]
    InvalidSchedule {
        /// The schedule.
        name: String,
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// No schedule of this name exists.
    #[error("schedule {0:?} not found (see `underling schedule list`)")]
    ScheduleNotFound(String),
    /// No job with this id exists.
    #[error("job {0} not found")]
    JobNotFound(i64),
    /// The job is running and cannot be changed that way.
    #[error("job {0} is active and cannot be removed; stop it first or wait for it to finish")]
    JobActive(i64),
    /// The job is not running, so there is nothing to stop.
    #[error("job {id} is not running (it is {state}): only an active job can be stopped or killed")]
    JobNotActive {
        /// The job.
        id: i64,
        /// Its state.
        state: crate::job::JobState,
    },
    /// A lease token that is not one this job could have been given (malformed, or another
    /// job's); nothing was changed.
    #[error("invalid lease token {token:?} for job {id}: {reason}")]
    InvalidLease {
        /// The job.
        id: i64,
        /// The token as given.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lease of a pull worker no longer holds: it ran out, or the job was settled or
    /// handed out again. Nothing was changed; the work done under the lease must not be
    /// reported as the job's.
    #[error("job {id}: the lease is lost: {reason}")]
    LeaseLost {
        /// The job.
        id: i64,
        /// Why.
        reason: String,
    },
    /// A workload of that name is stored already.
    #[error("workload {0:?} exists already (remove it first, or replace it)")]
    WorkloadExists(String),
    /// No workload of that name is stored.
    #[error("workload {0:?} not found")]
    WorkloadNotFound(String),
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
    /// A drain ran as many jobs as it may and jobs were still left to run.
    #[error(
        "the drain stopped after {0} runs with jobs still left to run: a task keeps failing with tries left, or jobs keep enqueueing jobs (raise DrainOptions::max_runs if that is expected)"
    )]
    DrainLimit(u64),
    /// The database answered something that breaks one of the store's own rules (a bug in
    /// underling or a schema changed by hand).
    #[error("the store broke an invariant: {0}")]
    Invariant(String),
    /// Any other database error.
    #[error("database error: {}", driver_message(.0))]
    Database(#[from] sqlx::Error),
    /// JSON stored in the database could not be read.
    #[error("stored JSON is malformed: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// Whether the same call may succeed if made again later, unchanged: the database could
    /// not be reached, the connection broke, the pool had no connection free in time, or the
    /// server is shutting down, starting up or gave up on a conflict (serialization failure,
    /// deadlock). Nothing of the call was written, or the transaction was rolled back.
    ///
    /// Bad input, a missing job, a closed queue and the like are not transient: the same call
    /// fails again.
    /// A caller (or `underling-worker` at start) may retry a transient error with backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { source, .. } | Error::Database(source) => transient(source),
            _ => false,
        }
    }
}

/// Whether a driver error is one that may pass: see [`Error::is_transient`].
fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown,
            // cannot connect now; 53300: too many connections; 40001 and 40P01: serialization
            // failure and deadlock, after which the transaction was rolled back.
            code.starts_with("08")
                || matches!(
                    &*code,
                    "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
                )
        }),
        _ => false,
    }
}

/// The driver's message for people: the server's own message for a database error, without
/// the source line of the server's C code that sqlx appends to PostgreSQL errors ("at line 621").
fn driver_message(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// `Result` with underling's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_or_a_pool_timeout_is_transient() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(Error::Database(sqlx::Error::Io(io)).is_transient());
        assert!(Error::Database(sqlx::Error::PoolTimedOut).is_transient());
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let connect = Error::Connect {
            url: "postgres://db".into(),
            source: sqlx::Error::Io(refused),
        };
        assert!(connect.is_transient());
    }

    #[test]
    fn bad_input_and_missing_rows_are_not_transient() {
        assert!(!Error::InvalidArgs("x".into()).is_transient());
        assert!(!Error::JobNotFound(1).is_transient());
        assert!(!Error::Database(sqlx::Error::RowNotFound).is_transient());
        assert!(!Error::Database(sqlx::Error::PoolClosed).is_transient());
    }
}
