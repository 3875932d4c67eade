//! [`Queue`]: the client API that applications, workers and the admin CLI share.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::backend::postgres::PostgresBackend;
use crate::backend::sqlite::SqliteBackend;
use crate::backend::{Backend, BackendKind};
use crate::error::{Error, Result};
use crate::job::{
    EnqueueOptions, Job, JobFilter, JobList, NewJob, RetryOptions, json_kind, validate_queue,
};
use crate::model::{
    AppliedMigration, HistoryPoint, LockInfo, QueueInfo, RepairOptions, RepairReport, Stats,
    WorkerInfo,
};
use crate::url::{Scheme, scheme};

/// The default database when none is given: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://underling.db";

/// How to connect. [`Queue::connect`] covers the common case.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectOptions {
    /// `postgres://…`, `sqlite://path` or `sqlite::memory:`.
    pub url: String,
    /// PostgreSQL only: keep every table in this schema (created by `migrate`).
    pub schema: Option<String>,
    /// The size of the connection pool.
    pub max_connections: u32,
    /// Apply migrations after connecting; otherwise fail if the schema is not migrated.
    pub migrate: bool,
}

impl ConnectOptions {
    /// Options for `url`: default schema, a pool of 10, no automatic migration.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            schema: None,
            max_connections: 10,
            migrate: false,
        }
    }
    /// Uses a PostgreSQL schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
    /// Sets the pool size.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }
    /// Applies migrations after connecting.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

/// A handle on the job store. Cheap to clone; clones share one connection pool.
///
/// ```
/// # tokio_test_block_on(async {
/// use underling::{EnqueueOptions, Queue};
///
/// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
/// let id = queue
///     .enqueue("mail.send", serde_json::json!({"to": "a@example.com"}), EnqueueOptions::new())
///     .await?;
/// let job = queue.job(id).await?.expect("just enqueued");
/// assert_eq!(job.task, "mail.send");
/// # Ok::<(), underling::Error>(())
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Runtime::new().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct Queue {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("backend", &self.backend.kind())
            .finish()
    }
}

impl Queue {
    /// Connects to a database by URL and checks that it is migrated.
    pub async fn connect(url: &str) -> Result<Queue> {
        Self::connect_with(ConnectOptions::new(url)).await
    }

    /// Connects to a database by URL and applies any pending migrations.
    pub async fn connect_and_migrate(url: &str) -> Result<Queue> {
        Self::connect_with(ConnectOptions::new(url).migrate(true)).await
    }

    /// Connects with full options.
    pub async fn connect_with(opts: ConnectOptions) -> Result<Queue> {
        let queue = Self::connect_unchecked(&opts).await?;
        if opts.migrate {
            queue.migrate().await?;
        } else {
            queue.backend.check_migrated().await?;
        }
        Ok(queue)
    }

    /// Connects without migrating or checking the schema (`opts.migrate` only decides whether
    /// a missing SQLite file may be created). Call [`Queue::migrate`] next.
    pub async fn connect_unchecked(opts: &ConnectOptions) -> Result<Queue> {
        let backend: Arc<dyn Backend> = match scheme(&opts.url)? {
            Scheme::Postgres => Arc::new(
                PostgresBackend::connect(&opts.url, opts.schema.as_deref(), opts.max_connections)
                    .await?,
            ),
            Scheme::Sqlite => {
                if opts.schema.is_some() {
                    return Err(Error::InvalidOption(
                        "a schema can only be given for PostgreSQL".into(),
                    ));
                }
                Arc::new(
                    SqliteBackend::connect(&opts.url, opts.max_connections, opts.migrate).await?,
                )
            }
        };
        Ok(Queue { backend })
    }

    /// Wraps a backend.
    pub fn from_backend(backend: Arc<dyn Backend>) -> Queue {
        Queue { backend }
    }

    /// The storage backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Which database this queue uses.
    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// Applies pending migrations; returns the ones applied.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>> {
        self.backend.migrate().await
    }

    /// Enqueues one job and returns its id.
    pub async fn enqueue(
        &self,
        task: &str,
        args: impl Serialize,
        opts: EnqueueOptions,
    ) -> Result<i64> {
        let job = NewJob::new(task, to_json(args)?, opts)?;
        let ids = self.backend.enqueue(std::slice::from_ref(&job)).await?;
        ids.first()
            .copied()
            .ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))
    }

    /// Enqueues many jobs in one round trip; returns their ids in input order.
    ///
    /// Every job is validated first: if one is invalid, none is written.
    pub async fn enqueue_batch(&self, jobs: &[NewJob]) -> Result<Vec<i64>> {
        for job in jobs {
            job.check()?;
        }
        self.backend.enqueue(jobs).await
    }

    /// Enqueues a job inside the caller's own PostgreSQL transaction: it exists if and only if
    /// the transaction commits. Pass `&mut *tx`.
    pub async fn enqueue_in_postgres(
        &self,
        conn: &mut sqlx::PgConnection,
        task: &str,
        args: impl Serialize,
        opts: EnqueueOptions,
    ) -> Result<i64> {
        let job = NewJob::new(task, to_json(args)?, opts)?;
        let backend = self
            .backend
            .as_any()
            .downcast_ref::<PostgresBackend>()
            .ok_or_else(|| {
                Error::InvalidOption("enqueue_in_postgres needs a PostgreSQL queue".into())
            })?;
        let ids = backend.enqueue_in(conn, std::slice::from_ref(&job)).await?;
        ids.first()
            .copied()
            .ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))
    }

    /// Enqueues a job inside the caller's own SQLite transaction: it exists if and only if the
    /// transaction commits. Pass `&mut *tx`.
    pub async fn enqueue_in_sqlite(
        &self,
        conn: &mut sqlx::SqliteConnection,
        task: &str,
        args: impl Serialize,
        opts: EnqueueOptions,
    ) -> Result<i64> {
        let job = NewJob::new(task, to_json(args)?, opts)?;
        let backend = self
            .backend
            .as_any()
            .downcast_ref::<SqliteBackend>()
            .ok_or_else(|| Error::InvalidOption("enqueue_in_sqlite needs a SQLite queue".into()))?;
        let ids = backend.enqueue_in(conn, std::slice::from_ref(&job)).await?;
        ids.first()
            .copied()
            .ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))
    }

    /// One job with its parents and children, or `None`.
    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        self.backend.job(id).await
    }

    /// A page of jobs matching `filter`, newest first, with the total count.
    pub async fn list_jobs(&self, filter: &JobFilter, limit: u64, offset: u64) -> Result<JobList> {
        self.backend.list(filter, limit, offset).await
    }

    /// Puts a job back in the queue (from any state), with optional changes.
    pub async fn retry_job(&self, id: i64, opts: RetryOptions) -> Result<()> {
        opts.validate()?;
        self.backend.retry(id, &opts).await
    }

    /// Retries every job matching `filter`; returns how many.
    pub async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64> {
        self.backend.retry_matching(filter).await
    }

    /// Removes a job that is not active.
    pub async fn remove_job(&self, id: i64) -> Result<()> {
        self.backend.remove(id).await
    }

    /// Removes up to `batch` jobs matching `filter`; returns how many. Call until it returns 0
    /// to purge everything without holding one huge transaction.
    pub async fn purge_batch(&self, filter: &JobFilter, batch: u64) -> Result<u64> {
        self.backend.purge_batch(filter, batch).await
    }

    /// Merges `notes` (a JSON object) into a job's notes; a null value deletes its key.
    pub async fn note(&self, id: i64, notes: Value) -> Result<()> {
        match notes {
            Value::Object(map) => self.backend.note(id, &map).await,
            other => Err(Error::InvalidNotes(format!(
                "notes must be a JSON object, got {}",
                json_kind(&other)
            ))),
        }
    }

    /// Merges one note key.
    pub async fn note_key(&self, id: i64, key: &str, value: Value) -> Result<()> {
        let mut map = Map::new();
        map.insert(key.to_string(), value);
        self.backend.note(id, &map).await
    }

    /// Counts across the store.
    pub async fn stats(&self) -> Result<Stats> {
        self.backend.stats().await
    }

    /// Finished and failed jobs per hour, over the last 24 hours (oldest first).
    pub async fn history(&self) -> Result<Vec<HistoryPoint>> {
        self.backend.history().await
    }

    /// Tries to take a hold on a named lock for `duration`; `false` if `limit` holds are live.
    pub async fn lock(&self, name: &str, duration: Duration, limit: u32) -> Result<bool> {
        if name.is_empty() {
            return Err(Error::InvalidOption("a lock name must not be empty".into()));
        }
        if limit < 1 {
            return Err(Error::InvalidOption(format!(
                "a lock limit must be at least 1, got {limit}"
            )));
        }
        self.backend.lock(name, duration, limit).await
    }

    /// Releases the hold on a lock that expires first; `false` if none was held.
    pub async fn unlock(&self, name: &str) -> Result<bool> {
        self.backend.unlock(name).await
    }

    /// Whether a lock has any live hold.
    pub async fn is_locked(&self, name: &str) -> Result<bool> {
        Ok(!self.backend.lock(name, Duration::ZERO, 1).await?)
    }

    /// Live lock holds for the names given (all when empty).
    pub async fn locks(&self, names: &[String]) -> Result<Vec<LockInfo>> {
        self.backend.locks(names).await
    }

    /// Pauses a queue: its jobs are not claimed until it is resumed.
    pub async fn pause_queue(&self, queue: &str) -> Result<()> {
        validate_queue(queue)?;
        self.backend.set_queue_paused(queue, true).await
    }

    /// Resumes a paused queue.
    pub async fn resume_queue(&self, queue: &str) -> Result<()> {
        validate_queue(queue)?;
        self.backend.set_queue_paused(queue, false).await
    }

    /// Every queue with jobs or a pause flag, with counts per state.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.backend.queues().await
    }

    /// Registered workers, oldest first.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.backend.workers(&[]).await
    }

    /// One worker.
    pub async fn worker(&self, id: i64) -> Result<WorkerInfo> {
        self.backend
            .workers(&[id])
            .await?
            .into_iter()
            .next()
            .ok_or(Error::WorkerNotFound(id))
    }

    /// Sends a remote command to the workers given (all when empty); returns how many got it.
    pub async fn broadcast(&self, command: &str, args: Value, ids: &[i64]) -> Result<u64> {
        if command.is_empty() {
            return Err(Error::InvalidOption(
                "a command name must not be empty".into(),
            ));
        }
        self.backend.broadcast(command, &args, ids).await
    }

    /// Rescues jobs of missing workers and removes old and expired jobs.
    pub async fn repair(&self, opts: &RepairOptions) -> Result<RepairReport> {
        self.backend.repair(opts).await
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        self.backend.close().await
    }
}

/// Serializes job arguments.
fn to_json(args: impl Serialize) -> Result<Value> {
    serde_json::to_value(args).map_err(|e| Error::InvalidArgs(e.to_string()))
}

/// Parses job arguments given as JSON text (for command lines and HTTP bodies).
///
/// ```
/// assert!(underling::parse_args("{\"a\": 1}").is_ok());
/// assert!(underling::parse_args("{a: 1}").is_err());
/// ```
pub fn parse_args(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::InvalidArgs(format!("not valid JSON: {e}")))
}
