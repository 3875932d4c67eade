//! [`Queue`]: the client API that applications, workers and the admin CLI share.
//!
//! Long because it is the one public entry point: each method is a short check and one store
//! call, and splitting them by topic would scatter one type's API over several files.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::command::RemoteCommand;
use crate::defaults::DefaultsCache;
use crate::error::{Error, Result};
use crate::job::{EnqueueOptions, Job, JobFilter, JobList, JobState, NewJob, RetryOptions};
use crate::job::{check_notes, default_backoff, json_kind, validate_queue};
use crate::model::{
    AppliedMigration, HistoryPoint, LockInfo, MinutePoint, QueueInfo, QueueThroughput,
    RepairOptions, RepairReport, Stats, TaskDefaults, WorkerInfo,
};
use crate::store::{self, BackendKind, Pool, Store};
use crate::task::Registry;
use crate::unique::Enqueued;

/// How often [`Queue::wait`] reads the job again on PostgreSQL when no notification came (a
/// notification sent while the listener reconnects is lost).
pub const WAIT_POLL_POSTGRES: Duration = Duration::from_secs(2);

/// How often [`Queue::wait`] reads the job again on SQLite (settles in other processes are
/// not pushed).
pub const WAIT_POLL_SQLITE: Duration = Duration::from_millis(200);

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
    /// PostgreSQL only: the URL leads to PgBouncer in transaction mode (`pool_mode =
    /// transaction`). Every pool checkout is then one transaction, with the statement cache
    /// off and the schema set per transaction; nothing LISTENs (workers and waiters poll), and
    /// migrations and live events are refused with [`crate::Error::SessionRequired`]: run
    /// them over a direct connection. See [`crate::pgbouncer`]. On SQLite it is
    /// [`crate::Error::InvalidOption`].
    pub pgbouncer: bool,
}

impl ConnectOptions {
    /// Options for `url`: default schema, a pool of 10, no automatic migration.
    pub fn new(url: impl Into<String>) -> Self {
        ConnectOptions {
            url: url.into(),
            schema: None,
            max_connections: 10,
            migrate: false,
            pgbouncer: false,
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
    /// Connects through PgBouncer in transaction mode (see [`ConnectOptions::pgbouncer`]).
    pub fn pgbouncer(mut self, pgbouncer: bool) -> Self {
        self.pgbouncer = pgbouncer;
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
    pub(crate) store: Arc<dyn Store>,
    /// The task defaults the workers published, as last read.
    defaults: Arc<DefaultsCache>,
    /// The clock of schedules, when not the store's (see [`Queue::with_clock`]).
    pub(crate) clock: Option<Arc<dyn crate::schedule::Clock>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("backend", &self.store.kind())
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
            queue.store.check_migrated().await?;
        }
        Ok(queue)
    }

    /// Connects without migrating or checking the schema (`opts.migrate` only decides whether
    /// a missing SQLite file may be created). Call [`Queue::migrate`] next.
    pub async fn connect_unchecked(opts: &ConnectOptions) -> Result<Queue> {
        Ok(Queue::from_store(store::open(opts).await?))
    }

    /// A queue over a store built elsewhere (the testkit's, or a store that wraps another).
    pub fn from_store(store: Arc<dyn Store>) -> Queue {
        Queue {
            store,
            defaults: Arc::default(),
            clock: None,
        }
    }

    /// The store, for the worker (shared with its background tasks).
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Which database this queue uses.
    pub fn kind(&self) -> BackendKind {
        self.store.kind()
    }

    /// The queue's connection pool, to run the application's own statements or transactions
    /// on the same connections (see [`Queue::enqueue_in`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use underling::{EnqueueOptions, Pool, Queue};
    ///
    /// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
    /// let Pool::Sqlite(pool) = queue.pool() else { unreachable!() };
    /// let mut tx = pool.begin().await?;
    /// let id = queue.enqueue_in(&mut tx, "mail.send", serde_json::json!({}), EnqueueOptions::new()).await?;
    /// tx.commit().await?;
    /// assert!(queue.job(id).await?.is_some());
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn pool(&self) -> Pool {
        self.store.pool()
    }

    /// Applies pending migrations; returns the ones applied.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>> {
        self.store.migrate().await
    }

    /// Checks, without changing anything, that the database answers and every migration of
    /// this build is applied: [`Error::NotMigrated`] when one is missing, a connection or
    /// database error when it cannot be asked (for readiness probes).
    pub async fn check_migrated(&self) -> Result<()> {
        self.store.check_migrated().await
    }

    /// Enqueues one job and returns its id: for a unique job (see [`crate::Unique`]) whose
    /// key a live job holds, that job's id ([`Queue::submit`] also says which it was).
    pub async fn enqueue(
        &self,
        task: &str,
        args: impl Serialize,
        opts: EnqueueOptions,
    ) -> Result<i64> {
        Ok(self.submit(task, args, opts).await?.id)
    }

    /// Enqueues many jobs in one round trip; returns their ids in input order. Either every
    /// job is written or none is.
    pub async fn enqueue_batch(&self, jobs: &[NewJob]) -> Result<Vec<i64>> {
        Ok(ids(self.submit_batch(jobs).await?))
    }

    /// Enqueues one job like [`Queue::enqueue`] and says whether it was a duplicate of a live
    /// unique job (and whether that job was updated, see [`crate::OnConflict::Replace`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use underling::{EnqueueOptions, Queue, Unique};
    ///
    /// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
    /// let opts = EnqueueOptions::new().unique(Unique::key("nightly"));
    /// let first = queue.submit("report.build", serde_json::json!({}), opts.clone()).await?;
    /// let again = queue.submit("report.build", serde_json::json!({}), opts).await?;
    /// assert_eq!((again.id, first.duplicate, again.duplicate), (first.id, false, true));
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn submit(
        &self,
        task: &str,
        args: impl Serialize,
        opts: EnqueueOptions,
    ) -> Result<Enqueued> {
        let job = NewJob::new(task, args, opts)?;
        single(self.submit_batch(std::slice::from_ref(&job)).await?)
    }

    /// Enqueues many jobs like [`Queue::enqueue_batch`] and says, in input order, what became
    /// of each: a batch holding two jobs with one unique key inserts the first, and the
    /// second is a duplicate of it.
    pub async fn submit_batch(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        let store = &*self.store;
        let jobs = self.defaults.apply(jobs, || store.tasks()).await?;
        check_batch_keys(&jobs)?;
        self.store
            .enqueue(store::Enqueue {
                jobs: &jobs,
                now: None,
            })
            .await
    }

    /// `jobs` with what they leave unset taken from their tasks' published defaults.
    pub(crate) async fn with_task_defaults(&self, jobs: &[NewJob]) -> Result<Vec<NewJob>> {
        let store = &*self.store;
        Ok(self
            .defaults
            .apply(jobs, || store.tasks())
            .await?
            .into_owned())
    }

    /// Enqueues a job inside the application's own transaction (or on its own connection): it
    /// exists if and only if that transaction commits. Pass `&mut tx` (a PostgreSQL or SQLite
    /// transaction or connection of the sqlx that underling re-exports as
    /// [`crate::sqlx`]) matching the queue's database; on PostgreSQL every statement names
    /// the queue's schema, whatever the connection's search path.
    pub async fn enqueue_in(
        &self,
        conn: impl crate::AppConnection,
        task: &str,
        args: impl Serialize,
        opts: EnqueueOptions,
    ) -> Result<i64> {
        Ok(self.submit_in(conn, task, args, opts).await?.id)
    }

    /// Enqueues many jobs inside the application's own transaction (see
    /// [`Queue::enqueue_in`]); returns their ids in input order.
    pub async fn enqueue_batch_in(
        &self,
        conn: impl crate::AppConnection,
        jobs: &[NewJob],
    ) -> Result<Vec<i64>> {
        Ok(ids(self.submit_batch_in(conn, jobs).await?))
    }

    /// [`Queue::enqueue_in`], saying whether the job was a duplicate (see [`Queue::submit`]).
    /// On PostgreSQL a [`crate::OnConflict::Error`] conflict aborts the transaction, as any
    /// failed statement does: roll it back.
    pub async fn submit_in(
        &self,
        conn: impl crate::AppConnection,
        task: &str,
        args: impl Serialize,
        opts: EnqueueOptions,
    ) -> Result<Enqueued> {
        let job = NewJob::new(task, args, opts)?;
        single(
            self.submit_batch_in(conn, std::slice::from_ref(&job))
                .await?,
        )
    }

    /// [`Queue::enqueue_batch_in`], saying what became of each job (see
    /// [`Queue::submit_batch`]).
    pub async fn submit_batch_in(
        &self,
        conn: impl crate::AppConnection,
        jobs: &[NewJob],
    ) -> Result<Vec<Enqueued>> {
        let mut conn = conn;
        let store = &*self.store;
        let jobs = self.defaults.apply(jobs, || conn.read_tasks(store)).await?;
        check_batch_keys(&jobs)?;
        conn.enqueue(
            &*self.store,
            store::Enqueue {
                jobs: &jobs,
                now: None,
            },
        )
        .await
    }

    /// Every task's enqueue defaults as the workers that run it published them, by name: the
    /// queue, priority and attempts that jobs of the task get when the enqueue leaves them
    /// unset. An enqueue reads them at most every 5 s (and at most every second for a task
    /// that no worker had published), so a worker's new defaults apply to every enqueuer
    /// within seconds of its start.
    pub async fn tasks(&self) -> Result<Vec<TaskDefaults>> {
        self.store.tasks().await
    }

    /// Publishes the enqueue defaults of the tasks in `registry` (a worker does this when it
    /// starts), replacing earlier ones of the same names.
    pub async fn publish_tasks(&self, registry: &Registry) -> Result<()> {
        let tasks = registry.defaults();
        self.store
            .publish_tasks(store::PublishTasks {
                tasks: &tasks,
                now: None,
            })
            .await?;
        // This process's own enqueues see them at once.
        self.defaults.forget();
        Ok(())
    }

    /// One job with its parents and children, or `None`.
    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        self.store.job(id, None).await
    }

    /// Waits up to `timeout` for job `id` to settle, and returns it once it has finished or
    /// failed for good (a failed attempt with tries left is not the end: the wait goes on
    /// through its retries). `None` when the time is up first; [`Error::JobNotFound`] when the
    /// job does not exist or is removed meanwhile (by `remove`, `purge`, or by repair when it
    /// expired). A job that has settled already is returned at once.
    ///
    /// Not a tight poll: on PostgreSQL the job's settle or removal sends a notification to
    /// this queue's LISTEN connection (only for jobs someone waits for), on SQLite settles in
    /// this process wake the waiter. The job is read again at least every
    /// [`WAIT_POLL_POSTGRES`] (PostgreSQL, in case a notification was lost while the listener
    /// reconnected) or [`WAIT_POLL_SQLITE`] (SQLite, where other processes' settles are not
    /// pushed).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use underling::{EnqueueOptions, Queue};
    ///
    /// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
    /// let id = queue.enqueue("mail.send", serde_json::json!({}), EnqueueOptions::new()).await?;
    /// // No worker runs here: the job is still inactive when the time is up.
    /// assert_eq!(queue.wait(id, Duration::from_millis(10)).await?, None);
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn wait(&self, id: i64, timeout: Duration) -> Result<Option<Job>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut settled = self.store.watch(id).await?;
        let poll = match self.kind() {
            BackendKind::Postgres if settled.is_some() => WAIT_POLL_POSTGRES,
            _ => WAIT_POLL_SQLITE,
        };
        loop {
            let job = self.job(id).await?.ok_or(Error::JobNotFound(id))?;
            if matches!(job.state, JobState::Finished | JobState::Failed) {
                return Ok(Some(job));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let until = deadline.min(now + poll);
            match settled.as_mut() {
                Some(receiver) => {
                    let woken = async {
                        loop {
                            match receiver.recv().await {
                                Ok(settled) if settled == id || settled == 0 => return,
                                Ok(_) => continue,
                                // Missed some: read the job again.
                                Err(broadcast::error::RecvError::Lagged(_)) => return,
                                Err(broadcast::error::RecvError::Closed) => {
                                    tokio::time::sleep_until(until).await;
                                    return;
                                }
                            }
                        }
                    };
                    let _ = tokio::time::timeout_at(until, woken).await;
                }
                None => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// A page of jobs matching `filter`, newest first, with the total count.
    pub async fn list_jobs(&self, filter: &JobFilter, limit: u64, offset: u64) -> Result<JobList> {
        filter.validate()?;
        self.store
            .list(store::ListJobs {
                filter,
                limit,
                offset,
                before: None,
                now: None,
            })
            .await
    }

    /// A page of jobs matching `filter` with ids below `before` (all when `None`), newest
    /// first: keyset paging, where the next page starts below the last id of this one. Unlike
    /// an offset, a page stays put while new jobs are enqueued, and a deep page costs no more
    /// than the first. The total counts every job matching `filter`, whatever `before` says.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use underling::{EnqueueOptions, JobFilter, Queue};
    ///
    /// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
    /// for _ in 0..3 {
    ///     queue.enqueue("mail.send", serde_json::json!({}), EnqueueOptions::new()).await?;
    /// }
    /// let first = queue.list_jobs_before(&JobFilter::default(), None, 2).await?;
    /// assert_eq!(first.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [3, 2]);
    /// let next = queue.list_jobs_before(&JobFilter::default(), Some(2), 2).await?;
    /// assert_eq!(next.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [1]);
    /// assert_eq!(next.total, 3);
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn list_jobs_before(
        &self,
        filter: &JobFilter,
        before: Option<i64>,
        limit: u64,
    ) -> Result<JobList> {
        filter.validate()?;
        self.store
            .list(store::ListJobs {
                filter,
                limit,
                offset: 0,
                before,
                now: None,
            })
            .await
    }

    /// Puts a job back in the queue (from any state) as a new attempt, with optional changes.
    pub async fn retry_job(&self, id: i64, opts: RetryOptions) -> Result<()> {
        opts.validate()?;
        let filter = JobFilter {
            ids: vec![id],
            ..JobFilter::default()
        };
        let retried = self
            .store
            .retry(store::Retry {
                filter: &filter,
                changes: &opts,
                now: None,
            })
            .await?;
        if retried == 0 {
            return Err(Error::JobNotFound(id));
        }
        Ok(())
    }

    /// Retries every job matching `filter`; returns how many.
    pub async fn retry_jobs(&self, filter: &JobFilter) -> Result<u64> {
        filter.validate()?;
        self.store
            .retry(store::Retry {
                filter,
                changes: &RetryOptions::default(),
                now: None,
            })
            .await
    }

    /// Removes a job that is not active.
    pub async fn remove_job(&self, id: i64) -> Result<()> {
        self.store.remove(id).await
    }

    /// Removes up to `batch` jobs matching `filter`, oldest first; returns how many. To remove
    /// them all, [`Queue::purge`] is faster than calling this until it returns 0.
    pub async fn purge_batch(&self, filter: &JobFilter, batch: u64) -> Result<u64> {
        filter.validate()?;
        let purged = self
            .store
            .purge(store::Purge {
                filter,
                batch,
                after: 0,
            })
            .await?;
        Ok(purged.removed)
    }

    /// Removes every job matching `filter`, `batch` at a time: each batch is its own short
    /// statement, starting after the last id the previous one picked, so no statement holds
    /// many row locks for long (claims skip the rows it holds) and none walks again over the
    /// rows removed before. Calls `progress` with the running total after each batch that
    /// removed jobs. Returns how many were removed.
    pub async fn purge(
        &self,
        filter: &JobFilter,
        batch: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        filter.validate()?;
        let mut removed = 0;
        let mut after = 0;
        loop {
            let purged = self
                .store
                .purge(store::Purge {
                    filter,
                    batch: batch.max(1),
                    after,
                })
                .await?;
            match purged.last_id {
                Some(last) => {
                    if purged.removed > 0 {
                        removed += purged.removed;
                        progress(removed);
                    }
                    after = last;
                }
                None => return Ok(removed),
            }
        }
    }

    /// Merges `notes` (a JSON object) into a job's notes; a null value deletes its key.
    pub async fn note(&self, id: i64, notes: Value) -> Result<()> {
        match notes {
            Value::Object(map) => {
                check_notes(&map)?;
                self.store.note(store::Note { id, notes: &map }).await
            }
            other => Err(Error::InvalidNotes(format!(
                "notes must be a JSON object, got {}",
                json_kind(&other)
            ))),
        }
    }

    /// Merges one note key.
    pub async fn note_key(&self, id: i64, key: &str, value: Value) -> Result<()> {
        let mut notes = Map::new();
        notes.insert(key.to_string(), value);
        check_notes(&notes)?;
        self.store.note(store::Note { id, notes: &notes }).await
    }

    /// Counts across the store.
    pub async fn stats(&self) -> Result<Stats> {
        self.store.stats(None).await
    }

    /// Finished and failed jobs, and failed attempts (retried or not), per hour over the last
    /// 24 hours (oldest first).
    pub async fn history(&self) -> Result<Vec<HistoryPoint>> {
        self.store.history(None).await
    }

    /// Finished and failed jobs, and failed attempts, per minute over the last hour (oldest
    /// first, the current minute last), counted as they happen by the database's clock.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let queue = underling::Queue::connect_and_migrate("sqlite::memory:").await?;
    /// let minutes = queue.history_minutes().await?;
    /// assert_eq!(minutes.len(), 60);
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn history_minutes(&self) -> Result<Vec<MinutePoint>> {
        self.store.history_minutes(None).await
    }

    /// The jobs that ended in each queue over the last hour and the last five minutes (queues
    /// where none ended are left out), by name; counted as they happen, by the database's
    /// clock.
    pub async fn throughput(&self) -> Result<Vec<QueueThroughput>> {
        self.store.queue_throughput(None).await
    }

    /// Tries to take a hold on a named lock for `duration`; `false` if `limit` holds are live.
    pub async fn lock(&self, name: &str, duration: Duration, limit: u32) -> Result<bool> {
        check_lock_name(name)?;
        if limit < 1 {
            return Err(Error::InvalidOption(format!(
                "a lock limit must be at least 1, got {limit}"
            )));
        }
        self.store
            .lock(store::Lock {
                name,
                duration,
                limit,
                now: None,
            })
            .await
    }

    /// Releases the hold on a lock that expires first; `false` if none was held.
    pub async fn unlock(&self, name: &str) -> Result<bool> {
        check_lock_name(name)?;
        self.store.unlock(store::Unlock { name, now: None }).await
    }

    /// Whether a lock has any live hold.
    pub async fn is_locked(&self, name: &str) -> Result<bool> {
        check_lock_name(name)?;
        let free = self
            .store
            .lock(store::Lock {
                name,
                duration: Duration::ZERO,
                limit: 1,
                now: None,
            })
            .await?;
        Ok(!free)
    }

    /// Live lock holds for the names given (all when empty).
    pub async fn locks(&self, names: &[String]) -> Result<Vec<LockInfo>> {
        for name in names {
            check_lock_name(name)?;
        }
        self.store.locks(store::Locks { names, now: None }).await
    }

    /// Pauses a queue: its jobs are not claimed until it is resumed.
    pub async fn pause_queue(&self, queue: &str) -> Result<()> {
        self.set_paused(queue, true).await
    }

    /// Resumes a paused queue.
    pub async fn resume_queue(&self, queue: &str) -> Result<()> {
        self.set_paused(queue, false).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<()> {
        validate_queue(queue)?;
        self.store
            .set_queue_paused(store::PauseQueue {
                queue,
                paused,
                now: None,
            })
            .await
    }

    /// Turns a queue's strict FIFO order on or off.
    ///
    /// A FIFO queue runs one job at a time across all workers, in claim order (priority, then
    /// id: with one priority, id order), the next only after the previous one settled for
    /// good. The job at the head holds the line while it runs and while it waits for a retry
    /// (a failure with attempts left, a rescue from a dead worker): the next job waits until
    /// it finished, failed for good or was removed. A job enters the line when it is ready
    /// (its delay passed, its parents finished). Claims of FIFO queues take turns with the
    /// limited claims, and the limits apply to them too. Turning it off lets the queue's jobs
    /// run side by side again at once.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use underling::Queue;
    /// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
    /// queue.set_fifo("ledger", true).await?;
    /// assert!(queue.queues().await?.iter().any(|q| q.name == "ledger" && q.fifo));
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn set_fifo(&self, queue: &str, fifo: bool) -> Result<()> {
        validate_queue(queue)?;
        self.store
            .set_queue_fifo(store::FifoQueue {
                queue,
                fifo,
                now: None,
            })
            .await
    }

    /// Every queue with jobs or a row of its own (paused, FIFO), with counts per state.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.store.queues(None).await
    }

    /// Registered workers, oldest first.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.store.workers(&[]).await
    }

    /// One worker.
    pub async fn worker(&self, id: i64) -> Result<WorkerInfo> {
        self.store
            .workers(&[id])
            .await?
            .into_iter()
            .next()
            .ok_or(Error::WorkerNotFound(id))
    }

    /// Sends a remote command (see [`RemoteCommand`] for the names and arguments) to the
    /// workers given (all when empty); returns how many got it. A command that makes no sense
    /// is refused and nothing is sent.
    pub async fn broadcast(&self, command: &str, args: Value, ids: &[i64]) -> Result<u64> {
        self.send(RemoteCommand::parse(command, &args)?, ids).await
    }

    /// Sends a remote command to the workers given (all when empty); returns how many got it.
    pub async fn send(&self, command: RemoteCommand, ids: &[i64]) -> Result<u64> {
        self.store
            .broadcast(store::Broadcast {
                command: command.name(),
                args: &command.args(),
                ids,
                now: None,
            })
            .await
    }

    /// Stops a running job through the worker that runs it (cooperatively: its task sees the
    /// cancellation and has its stop grace to return; with `kill`, at once). Returns that
    /// worker's id; a job that is not running is [`Error::JobNotActive`].
    pub async fn stop_job(&self, id: i64, kill: bool) -> Result<i64> {
        let job = self.job(id).await?.ok_or(Error::JobNotFound(id))?;
        let worker = match (job.state, job.worker_id) {
            (JobState::Active, Some(worker)) => worker,
            _ => {
                return Err(Error::JobNotActive {
                    id,
                    state: job.state,
                });
            }
        };
        let command = if kill {
            RemoteCommand::Kill(id)
        } else {
            RemoteCommand::Stop(id)
        };
        if self.send(command, &[worker]).await? == 0 {
            // The worker went away meanwhile; repair rescues the job.
            return Err(Error::WorkerNotFound(worker));
        }
        Ok(worker)
    }

    /// Rescues jobs of missing workers (retried after the default backoff where tries are
    /// left) and removes old and expired jobs. A worker's own repair applies each task's
    /// backoff instead. Old and expired jobs are removed [`RepairOptions::batch`] at a time,
    /// each batch its own short statement.
    pub async fn repair(&self, opts: &RepairOptions) -> Result<RepairReport> {
        self.repair_with_progress(opts, |_| {}).await
    }

    /// [`Queue::repair`], calling `progress` with the running totals after each batch that
    /// removed old or expired jobs (for a progress display: a repair after a long outage may
    /// remove millions).
    pub async fn repair_with_progress(
        &self,
        opts: &RepairOptions,
        progress: impl Fn(&RepairReport) + Sync,
    ) -> Result<RepairReport> {
        self.store
            .repair(store::Repair {
                options: opts,
                backoff: &|_task: &str, retries: i32| default_backoff(retries),
                now: None,
                progress: Some(&progress),
            })
            .await
    }

    /// For each queue with inactive jobs that are due, when the longest-waiting of them fell
    /// due (the age of a queue's backlog; the `underling_oldest_due_job_age_seconds` metric).
    pub async fn oldest_due(&self) -> Result<Vec<crate::model::QueueDue>> {
        self.store.oldest_due(None).await
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        self.store.close().await
    }
}

/// Refuses a batch in which a job with the conflict policy `error` has the unique key of an
/// earlier job of the same batch: the batch would conflict with itself.
fn check_batch_keys(jobs: &[NewJob]) -> Result<()> {
    if jobs
        .iter()
        .filter(|j| j.unique().is_some())
        .nth(1)
        .is_none()
    {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Some(unique) = job.resolved_unique()
            && !seen.insert(unique.key.clone())
            && unique.on_conflict == crate::OnConflict::Error
        {
            return Err(Error::InvalidOption(format!(
                "job [{i}] of the batch has the unique key {:?} of an earlier job of the same \
                 batch and the conflict policy error: drop one of them",
                unique.key
            )));
        }
    }
    Ok(())
}

/// The ids of enqueued jobs.
fn ids(enqueued: Vec<Enqueued>) -> Vec<i64> {
    enqueued.into_iter().map(|e| e.id).collect()
}

/// What became of the one job of a one-job enqueue.
fn single(enqueued: Vec<Enqueued>) -> Result<Enqueued> {
    match enqueued.as_slice() {
        [one] => Ok(*one),
        other => Err(Error::Invariant(format!(
            "one job was enqueued but {} ids came back",
            other.len()
        ))),
    }
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

/// Checks a lock name: at most [`MAX_NAME`](crate::MAX_NAME) bytes, not empty, and without
/// NUL characters (which PostgreSQL's text cannot hold; refused on both backends alike).
fn check_lock_name(name: &str) -> Result<()> {
    crate::job::check_name_length("lock name", name)?;
    if name.is_empty() {
        return Err(Error::InvalidOption("a lock name must not be empty".into()));
    }
    if name.contains('\0') {
        return Err(Error::InvalidOption(format!(
            "lock name {name:?} contains a NUL character"
        )));
    }
    Ok(())
}
