//! The storage contract, and its PostgreSQL and SQLite implementations.
//!
//! Everything above this module talks to the database through [`Store`]; all SQL lives in the
//! `sql/` folders of [`postgres`] and [`sqlite`] (and, for PostgreSQL's planner-tuned worker
//! cycle, in the migrations). Each operation takes one parameter struct ([`params`]) built by
//! [`crate::Queue`] or the worker from validated input, with `now` passed in wherever time
//! matters. The behaviour suite in the `underling-testkit` crate states what every
//! implementation must do, and runs against both.
//!
//! Applications use [`crate::Queue`]; this trait is for the testkit and for new backends.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::events::{AuditEntry, AuditQuery, JobEvent};
use crate::job::{Job, JobList};
use crate::model::{AppliedMigration, Command, HistoryPoint, LockInfo, QueueInfo, RepairReport};
use crate::model::{MinutePoint, QueueDue, QueueThroughput, Stats, TaskDefaults, WorkerInfo};
use crate::queue::ConnectOptions;
use crate::unique::Enqueued;

pub(crate) mod events;
pub(crate) mod migrate;
pub(crate) mod notify;
pub mod params;
pub(crate) mod rows;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use params::*;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl BackendKind {
    /// Tells which backend a database URL is for.
    ///
    /// ```
    /// use underling::BackendKind;
    /// assert_eq!(BackendKind::from_url("postgres://db/app").unwrap(), BackendKind::Postgres);
    /// assert_eq!(BackendKind::from_url("sqlite::memory:").unwrap(), BackendKind::Sqlite);
    /// assert!(BackendKind::from_url("mysql://db/app").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(BackendKind::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(BackendKind::Sqlite)
        } else {
            Err(Error::InvalidUrl {
                url: crate::url::mask_password(url),
                reason: "unknown scheme".into(),
            })
        }
    }

    /// The Cargo feature that builds this backend.
    pub fn feature(self) -> &'static str {
        match self {
            BackendKind::Postgres => "postgres",
            BackendKind::Sqlite => "sqlite",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Postgres => "PostgreSQL",
            BackendKind::Sqlite => "SQLite",
        })
    }
}

/// A store's connection pool, for applications that run their own statements (or their own
/// transactions, see [`crate::Queue::enqueue_in`]) on the queue's connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Pool {
    /// A PostgreSQL pool; its connections have the queue's schema on their search path.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// A SQLite pool.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

/// The storage contract: one implementation per database, the same behaviour on each.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn kind(&self) -> BackendKind;
    /// The connection pool.
    fn pool(&self) -> Pool;

    /// Applies pending migrations (safe when many processes start at once).
    async fn migrate(&self) -> Result<Vec<AppliedMigration>>;
    /// Fails with [`Error::NotMigrated`] unless every migration is applied.
    async fn check_migrated(&self) -> Result<()>;

    /// Inserts jobs in one round trip and says, in input order, what happened to each: its
    /// new id, or for a job whose unique key a live job holds, that job's id (see
    /// [`crate::Unique`]; a [`crate::OnConflict::Error`] conflict writes nothing).
    async fn enqueue(&self, p: Enqueue<'_>) -> Result<Vec<Enqueued>>;
    /// Inserts jobs on the caller's PostgreSQL connection or transaction: they exist if and
    /// only if it commits. Every statement names the store's schema.
    #[cfg(feature = "postgres")]
    async fn enqueue_on_postgres(
        &self,
        _conn: &mut sqlx::PgConnection,
        _p: Enqueue<'_>,
    ) -> Result<Vec<Enqueued>> {
        Err(Error::WrongBackend {
            expected: BackendKind::Postgres,
            found: self.kind(),
        })
    }
    /// Inserts jobs on the caller's SQLite connection or transaction: they exist if and only
    /// if it commits.
    #[cfg(feature = "sqlite")]
    async fn enqueue_on_sqlite(
        &self,
        _conn: &mut sqlx::SqliteConnection,
        _p: Enqueue<'_>,
    ) -> Result<Vec<Enqueued>> {
        Err(Error::WrongBackend {
            expected: BackendKind::Sqlite,
            found: self.kind(),
        })
    }

    /// The published task defaults, read on the caller's PostgreSQL connection (naming the
    /// store's schema).
    #[cfg(feature = "postgres")]
    async fn tasks_on_postgres(&self, _conn: &mut sqlx::PgConnection) -> Result<Vec<TaskDefaults>> {
        Err(Error::WrongBackend {
            expected: BackendKind::Postgres,
            found: self.kind(),
        })
    }
    /// The published task defaults, read on the caller's SQLite connection.
    #[cfg(feature = "sqlite")]
    async fn tasks_on_sqlite(
        &self,
        _conn: &mut sqlx::SqliteConnection,
    ) -> Result<Vec<TaskDefaults>> {
        Err(Error::WrongBackend {
            expected: BackendKind::Sqlite,
            found: self.kind(),
        })
    }

    /// A worker's cycle: settles attempts that ended (only those still current: active, with
    /// the retry count they were claimed with), then claims ready jobs in priority then id
    /// order. One round trip and one commit where the database allows.
    async fn cycle(&self, p: Cycle<'_>) -> Result<CycleReply>;
    /// Claims one job by id if it is ready (ignoring its queue and pauses).
    async fn claim_by_id(&self, p: ClaimById) -> Result<Option<Job>>;
    /// Puts jobs that a worker claimed but never started back to inactive, without using up
    /// an attempt. Only attempts still active under that worker change; returns how many did.
    async fn release(&self, p: Release<'_>) -> Result<u64>;
    /// The attempts active under a worker, by job id: what the store thinks it runs.
    async fn active_attempts(&self, worker_id: i64) -> Result<Vec<Attempt>>;
    /// Claims ready jobs with a lease each, for a pull worker: active under no worker until
    /// the lease runs out (the same readiness rule and claim order as [`Store::cycle`]).
    async fn claim_leased(&self, p: ClaimLeased<'_>) -> Result<Vec<crate::LeasedJob>>;
    /// Settles a leased attempt if its lease still holds (checked with [`LeaseRow::check`]
    /// on the job's row, locked until the settle commits); says what the settle did.
    async fn settle_leased(&self, p: SettleLeased<'_>) -> Result<crate::Settled>;
    /// Renews a lease that still holds; returns when it now runs out.
    async fn extend_lease(&self, p: ExtendLease) -> Result<DateTime<Utc>>;
    /// Rescues the jobs whose lease ran out (failed, and retried after the backoff where
    /// tries are left, as one settle); returns how many changed.
    async fn expire_leases(&self, p: ExpireLeases<'_>) -> Result<u64>;
    /// When the next delayed inactive job of the queues falls due, if any.
    async fn next_due(&self, p: NextDue<'_>) -> Result<Option<DateTime<Utc>>>;

    /// One job with its parents and children; none when it is gone (an inactive job past its
    /// expiry time is gone for every reader, whether or not repair has deleted it yet).
    async fn job(&self, id: i64, now: Now) -> Result<Option<Job>>;
    /// A page of jobs, newest first, and the total count (without the jobs that are gone).
    async fn list(&self, p: ListJobs<'_>) -> Result<JobList>;
    /// Puts every matching job back to inactive as a new attempt (checking the new parents
    /// first); returns how many.
    async fn retry(&self, p: Retry<'_>) -> Result<u64>;
    /// Removes a job that is not active.
    async fn remove(&self, id: i64) -> Result<()>;
    /// Removes up to `batch` matching jobs after `after`, oldest first; says how many and the
    /// last id removed.
    async fn purge(&self, p: Purge<'_>) -> Result<Purged>;
    /// Merges keys into a job's notes; a null value deletes the key.
    async fn note(&self, p: Note<'_>) -> Result<()>;
    /// Counts across the store (without the jobs that are gone).
    async fn stats(&self, now: Now) -> Result<Stats>;
    /// Finished and failed jobs, and failed attempts (counted as they happen), per hour over
    /// the 24 hours up to `now`.
    async fn history(&self, now: Now) -> Result<Vec<HistoryPoint>>;
    /// The same per minute over the 60 minutes up to `now` (the current minute last), as the
    /// database's clock counted them.
    async fn history_minutes(&self, now: Now) -> Result<Vec<MinutePoint>>;
    /// The jobs that ended per queue over the hour and the five minutes up to `now` (queues
    /// with none are left out), by name.
    async fn queue_throughput(&self, now: Now) -> Result<Vec<QueueThroughput>>;

    /// Writes the enqueue defaults of tasks (replacing what was published under their names).
    async fn publish_tasks(&self, p: PublishTasks<'_>) -> Result<()>;
    /// Every task's published enqueue defaults, by name.
    async fn tasks(&self) -> Result<Vec<TaskDefaults>>;

    /// Stores an HTTP workload's definition; `false` (nothing written) when one of that name
    /// is stored and `p.replace` is not set.
    async fn put_workload(&self, p: PutWorkload<'_>) -> Result<bool>;
    /// Every stored workload, by name.
    async fn workloads(&self) -> Result<Vec<WorkloadRow>>;
    /// Removes a stored workload; `false` when there was none of that name.
    async fn remove_workload(&self, name: &str) -> Result<bool>;
    /// Sets a workload's scoped token (its SHA-256), replacing the one it had.
    async fn put_workload_token(&self, p: PutWorkloadToken<'_>) -> Result<()>;
    /// The workload a token (by its SHA-256) is scoped to, if any.
    async fn workload_of_token(&self, token_sha256: &str) -> Result<Option<String>>;
    /// Revokes a workload's token; `false` when it had none.
    async fn remove_workload_token(&self, workload: &str) -> Result<bool>;

    /// Registers a worker; returns its id.
    async fn register_worker(&self, p: RegisterWorker<'_>) -> Result<i64>;
    /// Records a heartbeat with a fresh status, and says whether the worker was removed
    /// meanwhile and whether another worker has gone missing; one statement on PostgreSQL.
    async fn heartbeat(&self, p: Heartbeat<'_>) -> Result<Beat>;
    /// Removes a worker.
    async fn unregister_worker(&self, id: i64) -> Result<()>;
    /// All workers (or the ones given), oldest first.
    async fn workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>>;
    /// Puts a command into the inbox of the workers given (all when empty); returns how many.
    async fn broadcast(&self, p: Broadcast<'_>) -> Result<u64>;
    /// Takes the commands waiting in a worker's inbox, oldest first.
    async fn receive(&self, worker_id: i64) -> Result<Vec<Command>>;

    /// Takes a hold on a named lock unless `limit` holds are live; a zero duration only checks.
    async fn lock(&self, p: Lock<'_>) -> Result<bool>;
    /// Releases the hold that expires first; `false` if none was held.
    async fn unlock(&self, p: Unlock<'_>) -> Result<bool>;
    /// Live holds, for the names given (all when empty).
    async fn locks(&self, p: Locks<'_>) -> Result<Vec<LockInfo>>;

    /// Pauses or resumes a queue.
    async fn set_queue_paused(&self, p: PauseQueue<'_>) -> Result<()>;
    /// Turns a queue's strict FIFO order on or off (see [`crate::Queue::set_fifo`]), and wakes
    /// the workers.
    async fn set_queue_fifo(&self, p: FifoQueue<'_>) -> Result<()>;
    /// Whether a limit or a FIFO queue concerns claims of `queues` (such claims take the
    /// limited path; workers do not fetch ahead for them).
    async fn limited(&self, queues: &[String]) -> Result<bool>;
    /// Sets a concurrency or rate limit (replacing the one of the same scope), and wakes the
    /// workers. Claims obey it from then on (see [`crate::Limit`]).
    async fn set_limit(&self, limit: &crate::Limit) -> Result<()>;
    /// Every limit, by kind and name.
    async fn limits(&self) -> Result<Vec<crate::Limit>>;
    /// Removes the limit of a scope, waking the workers; `false` if there was none.
    async fn remove_limit(&self, scope: &crate::LimitScope) -> Result<bool>;
    /// Every queue that has jobs or a pause flag, with counts (without the jobs that are gone).
    async fn queues(&self, now: Now) -> Result<Vec<QueueInfo>>;

    /// Removes workers whose heartbeat is too old and rescues their jobs (failed, and retried
    /// after their task's backoff where tries are left, as one settle), then removes old
    /// finished jobs and expired ones, fails stuck ones and drops expired locks.
    async fn repair(&self, p: Repair<'_>) -> Result<RepairReport>;
    /// The first part of [`Store::repair`] alone, run as soon as a heartbeat finds a worker
    /// missing: removes workers whose heartbeat is too old and rescues their jobs, and the
    /// jobs of workers removed by hand (only `missing_workers` and `abandoned_jobs` are set).
    /// Workers of the queues of retried jobs are woken, so that they learn when those fall due.
    async fn rescue(&self, p: Repair<'_>) -> Result<RepairReport>;
    /// Folds the job counts that statements recorded since the last call into the counters
    /// that `stats`, `queues` and list totals read, and says how many records it folded.
    /// Counts are exact without it; it keeps reading them cheap. A store that updates its
    /// counters in place (SQLite) has nothing to fold.
    async fn compact_counts(&self) -> Result<u64> {
        Ok(0)
    }

    /// A stream of queue names that got ready jobs (`*` for any), if this store can push them.
    /// Subscribe before claiming so that no wake-up is missed between an empty claim and the
    /// wait that follows.
    async fn subscribe(&self) -> Result<Option<broadcast::Receiver<String>>>;

    /// Asks to be told when job `id` settles (finishes, or fails for good) or is removed, for
    /// [`crate::Queue::wait`]: a stream of the ids of watched jobs that did (`0`: any may have,
    /// read yours again), or `None` when this store cannot push them and the caller polls.
    /// Call it before reading the job, so that no settle falls between the read and the wait.
    /// The default pushes nothing.
    async fn watch(&self, _id: i64) -> Result<Option<broadcast::Receiver<i64>>> {
        Ok(None)
    }

    /// For each queue with inactive jobs due at `now`, when the longest-waiting of them fell
    /// due (PostgreSQL reads index ranges only, however deep the backlog).
    async fn oldest_due(&self, now: Now) -> Result<Vec<QueueDue>>;

    /// Adds a schedule, or updates the one of that name (see [`UpsertSchedule`]); says
    /// whether it was added.
    async fn upsert_schedule(&self, p: UpsertSchedule<'_>) -> Result<bool>;
    /// The schedules of the names given (all when empty), by name.
    async fn schedules(&self, names: &[String]) -> Result<Vec<crate::ScheduleInfo>>;
    /// The schedules that are not paused and whose `next_run` is at or before `now`, with the
    /// time taken as now (the database's clock on PostgreSQL when `now` is `None`): one query.
    async fn due_schedules(&self, now: Now) -> Result<Vec<DueSchedule>>;
    /// Moves a schedule on (a compare-and-set on `next_run`) and enqueues its job in one
    /// transaction: of any number of callers that saw the same `next_run`, one does.
    async fn fire_schedule(&self, p: FireSchedule<'_>) -> Result<Fired>;
    /// Pauses or resumes a schedule; `false` when there is none of that name.
    async fn set_schedule_paused(&self, p: PauseSchedule<'_>) -> Result<bool>;
    /// Removes a schedule (its jobs stay); `false` when there is none of that name.
    async fn remove_schedule(&self, name: &str) -> Result<bool>;

    /// Subscribes to the events of every job (see [`crate::JobEvent`]): the first subscriber of
    /// this store starts its event source, which takes a lease in the database (renewed while
    /// the store is open) so that transitions are captured, and gives it back at
    /// [`Store::close`]. A subscriber that falls more than 10,000 events behind is told how
    /// many it missed.
    async fn events(&self) -> Result<broadcast::Receiver<JobEvent>>;

    /// Turns the audit log on or off (on: every transition from now on is written, by the
    /// statement that made it, to the audit log).
    async fn set_audit(&self, on: bool) -> Result<()>;

    /// Whether the audit log is on.
    async fn audit_enabled(&self) -> Result<bool>;

    /// Entries of the audit log, newest first.
    async fn audit(&self, p: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// Removes the audit entries written before `before`; returns how many.
    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Closes the connection pool (after giving back an event lease).
    async fn close(&self);
}

/// Opens the store a URL names, without migrating or checking its schema (`opts.migrate`
/// only decides whether a missing SQLite file may be created).
pub async fn open(opts: &ConnectOptions) -> Result<Arc<dyn Store>> {
    // A `pool_size` in the URL sets the pool's size; the drivers never see it.
    let (url, pool_size) = crate::url::take_pool_size(&opts.url)?;
    let opts = &ConnectOptions {
        url,
        max_connections: pool_size.unwrap_or(opts.max_connections),
        ..opts.clone()
    };
    let kind = BackendKind::from_url(&opts.url)?;
    if opts.pgbouncer && kind != BackendKind::Postgres {
        return Err(Error::InvalidOption(format!(
            "the pgbouncer option is for PostgreSQL URLs; {} is {kind}",
            crate::url::mask_password(&opts.url)
        )));
    }
    match kind {
        #[cfg(feature = "postgres")]
        BackendKind::Postgres => Ok(Arc::new(postgres::PostgresStore::connect(opts).await?)),
        #[cfg(feature = "sqlite")]
        BackendKind::Sqlite => Ok(Arc::new(sqlite::SqliteStore::connect(opts).await?)),
        #[allow(unreachable_patterns)]
        kind => Err(Error::BackendDisabled(kind)),
    }
}

/// Sorts claimed jobs into claim order: highest priority first, then by id.
pub(crate) fn claim_order(jobs: &mut [Job]) {
    jobs.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
}

/// A statement's text with its `{name}` placeholders replaced by fragments (other `.sql` files
/// of the same folder, such as the job filter or the readiness rule). Nothing dynamic is
/// spliced into SQL this way: each statement is filled once per process from files compiled
/// into the library.
pub(crate) fn fill(template: &str, fragments: &[(&str, &str)]) -> String {
    let mut text = template.to_string();
    for (name, fragment) in fragments {
        text = text.replace(&format!("{{{name}}}"), fragment.trim_end());
    }
    text
}

/// The text of a statement in the calling backend's `sql/` folder, with the fragments named
/// after it filled in (see [`fill`]); a `&'static str`, built on first use.
macro_rules! statement {
    ($file:literal) => {
        include_str!(concat!("sql/", $file, ".sql"))
    };
    ($file:literal, $($fragment:literal),+) => {{
        static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            $crate::store::fill(
                include_str!(concat!("sql/", $file, ".sql")),
                &[$(($fragment, include_str!(concat!("sql/", $fragment, ".sql")))),+],
            )
        });
        TEXT.as_str()
    }};
}
pub(crate) use statement;
