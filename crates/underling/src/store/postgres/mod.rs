//! The PostgreSQL store: claims with `FOR UPDATE SKIP LOCKED`, wakes workers with
//! LISTEN/NOTIFY, and settles many attempts per statement.
//!
//! Statements live in `sql/`; the worker's cycle, the readiness rule and the retry transition
//! live in the migrations as functions, because they carry planner settings of their own.
//!
//! Long because it holds the whole `Store` implementation for PostgreSQL; the read-side
//! queries and repair are in `operations.rs`, connecting, listening and TLS in their own files.

mod columns;
mod connect;
mod db;
mod listener;
pub(crate) use connect::validate_schema;
mod schedules;
mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgRow};
use sqlx::{FromRow, Row};
use tokio::sync::{OnceCell, broadcast};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::events::{AuditEntry, AuditQuery, JobEvent};
use crate::job::{Job, JobList, JobState, NewJob, Settled};
use crate::model::{AppliedMigration, Command, HistoryPoint, LockInfo, QueueInfo, RepairReport};
use crate::model::{MinutePoint, QueueDue, QueueThroughput, Stats, TaskDefaults, WorkerInfo};
use crate::queue::ConnectOptions;
use crate::store::events::{AUDIT_PRUNE_BATCH, AUDIT_TRIGGERS, EventSource, subscribe_or_start};
use crate::store::notify::{Coalescer, RetryWake, SendWake, Wakeups};
use crate::store::rows::{self, JobRow};
use crate::store::{self, BackendKind, Pool, Store, statement};
use crate::unique::Enqueued;
use columns::{BatchColumns, SettleColumns, UniqueColumns};

/// A job row as PostgreSQL returns it.
type PgJobRow = JobRow<DateTime<Utc>, Value, Vec<i64>>;

/// Seconds as a float, for `make_interval(secs => …)`.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    /// The pool as an executor that commits each statement through PgBouncer.
    db: db::Db,
    /// How to connect, for the LISTEN connection.
    options: PgConnectOptions,
    /// The schema the tables live in, if not the default.
    schema: Option<String>,
    /// Connected through PgBouncer in transaction mode: no LISTEN, no migrations, no events.
    pgbouncer: bool,
    /// The NOTIFY channel; one per schema so that two stores on one server do not wake each other.
    channel: String,
    /// The NOTIFY channel of settled and removed jobs that someone waits for (see
    /// `migrations/postgres/0005_wait.sql`).
    settled_channel: String,
    /// Statements that may run on a connection the library does not own, with the schema named.
    named: NamedStatements,
    wakeups: Wakeups,
    listener: OnceCell<()>,
    listener_task: Mutex<Option<JoinHandle<()>>>,
    /// Coalesces the wake-ups of single enqueues.
    coalescer: Arc<Coalescer>,
    /// Wakes idle workers after settles that retried jobs.
    retry_wake: Arc<RetryWake>,
    /// Sends one catch-up NOTIFY, outside any transaction.
    send_wake: SendWake,
    /// The NOTIFY channel of job events (see `migrations/postgres/0008_events.sql`).
    events_channel: String,
    /// The event source, once someone subscribed.
    events: tokio::sync::Mutex<Option<EventSource>>,
}

/// The statements of a transactional enqueue, with the store's schema named in them.
struct NamedStatements {
    missing_parent: String,
    enqueue_jobs: String,
    enqueue_unique: String,
    tasks: String,
}

impl NamedStatements {
    fn new(schema: Option<&str>) -> Self {
        // The schema was checked by `validate_schema`: letters, digits and underscores.
        let prefix = schema.map(|s| format!("\"{s}\".")).unwrap_or_default();
        let named = |template: &str| store::fill(template, &[("schema", prefix.as_str())]);
        NamedStatements {
            missing_parent: named(statement!("missing_parent")),
            enqueue_jobs: named(statement!("enqueue_jobs")),
            enqueue_unique: named(statement!("enqueue_unique")),
            tasks: named(statement!("tasks")),
        }
    }
}

impl PostgresStore {
    /// Connects to `opts.url`; with `opts.schema`, every table lives in that schema (created
    /// by `migrate`).
    pub async fn connect(opts: &ConnectOptions) -> Result<Self> {
        let connected = connect::connect(opts).await?;
        let schema = opts.schema.clone();
        let channel = format!("underling.{}", schema.as_deref().unwrap_or("public"));
        Ok(PostgresStore {
            send_wake: send_wake(
                db::Db::new(connected.pool.clone(), opts.pgbouncer),
                channel.clone(),
            ),
            db: db::Db::new(connected.pool.clone(), opts.pgbouncer),
            settled_channel: format!("{channel}.settled"),
            events_channel: format!("{channel}.events"),
            events: tokio::sync::Mutex::new(None),
            channel,
            named: NamedStatements::new(schema.as_deref()),
            pool: connected.pool,
            options: connected.options,
            schema,
            pgbouncer: opts.pgbouncer,
            wakeups: Wakeups::default(),
            listener: OnceCell::new(),
            listener_task: Mutex::new(None),
            coalescer: Arc::new(Coalescer::default()),
            retry_wake: Arc::default(),
        })
    }

    /// Inserts jobs on one connection (the pool's or the caller's): the parent check, then one
    /// statement, both naming the schema.
    async fn insert(
        &self,
        conn: &mut PgConnection,
        p: store::Enqueue<'_>,
    ) -> Result<Vec<Enqueued>> {
        let jobs = p.jobs;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut parents: Vec<i64> = jobs
            .iter()
            .flat_map(|j| j.parents().iter().copied())
            .collect();
        if !parents.is_empty() {
            parents.sort_unstable();
            parents.dedup();
            let missing: Option<i64> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(self.named.missing_parent.clone()))
                    .bind(&parents)
                    .fetch_one(&mut *conn)
                    .await?;
            if let Some(missing) = missing {
                return Err(Error::ParentNotFound(missing));
            }
        }
        let columns = BatchColumns::new(jobs);
        if jobs.iter().any(|j| j.unique().is_some()) {
            return self.insert_unique(conn, p, &columns).await;
        }
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(self.named.enqueue_jobs.clone()));
        let ids: Vec<i64> = columns
            .bind(query)
            .bind(&self.channel)
            .bind(p.now)
            .bind(columns.timeouts())
            .fetch_all(&mut *conn)
            .await?;
        Ok(ids.into_iter().map(Enqueued::inserted).collect())
    }

    /// Inserts jobs of which some have unique keys: one statement, the jobs one by one inside
    /// it (see `underling_enqueue_unique`).
    async fn insert_unique(
        &self,
        conn: &mut PgConnection,
        p: store::Enqueue<'_>,
        columns: &BatchColumns<'_>,
    ) -> Result<Vec<Enqueued>> {
        let unique = UniqueColumns::new(p.jobs);
        let query = sqlx::query_as(sqlx::AssertSqlSafe(self.named.enqueue_unique.clone()));
        let query = columns.bind_as(query).bind(&self.channel).bind(p.now);
        let rows: Vec<(i64, String)> = unique
            .bind(query)
            .bind(columns.timeouts())
            .fetch_all(&mut *conn)
            .await
            .map_err(unique_conflict)?;
        rows.into_iter()
            .map(|(id, outcome)| match outcome.as_str() {
                "inserted" => Ok(Enqueued::inserted(id)),
                "existing" | "replaced" => Ok(Enqueued {
                    id,
                    duplicate: true,
                    replaced: outcome == "replaced",
                }),
                other => Err(Error::Invariant(format!(
                    "the unique enqueue of job {id} reported {other:?}"
                ))),
            })
            .collect()
    }

    /// The published task defaults, read on `conn` (the pool's or the caller's).
    async fn read_tasks(&self, conn: &mut PgConnection) -> Result<Vec<TaskDefaults>> {
        type Row = (
            String,
            Option<String>,
            Option<i32>,
            Option<i32>,
            Option<i64>,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(self.named.tasks.clone()))
            .fetch_all(&mut *conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(name, queue, priority, attempts, timeout, published)| {
                rows::task_defaults(name, queue, priority, attempts, timeout, published)
            })
            .collect())
    }

    /// One job without parents, due now or later: the hot path of single enqueues, one short
    /// INSERT. With `wake`, its queue's workers are woken at commit when it is due.
    async fn insert_one(&self, job: &NewJob, wake: bool, now: store::Now) -> Result<i64> {
        let query = if wake {
            sqlx::query_scalar(statement!("enqueue_one"))
        } else {
            sqlx::query_scalar(statement!("enqueue_one_quiet"))
        };
        let query = query
            .bind(job.task())
            .bind(job.args())
            .bind(job.queue())
            .bind(job.priority())
            .bind(job.attempts())
            .bind(job.run_at())
            .bind(job.delay().map(secs))
            .bind(job.expire().map(secs))
            .bind(job.lax())
            .bind(Value::Object(job.notes().clone()));
        let query = if wake {
            query.bind(&self.channel).bind(now)
        } else {
            query.bind(now)
        };
        let query = query.bind(job.timeout_ms());
        Ok(query.fetch_one(&self.db).await?)
    }
}

/// `underling_enqueue_unique`'s refusal of a job whose key a live job holds (SQLSTATE
/// UL001, the key as message, the holder's id as detail) as [`Error::UniqueConflict`].
fn unique_conflict(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e
        && db.code().as_deref() == Some("UL001")
        && let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        && let Some(existing) = pg.detail().and_then(|d| d.parse().ok())
    {
        return Error::UniqueConflict {
            key: pg.message().to_string(),
            existing,
        };
    }
    Error::from(e)
}

/// The longest channel name PostgreSQL takes (`NAMEDATALEN - 1` bytes).
const MAX_CHANNEL_LEN: usize = 63;

impl PostgresStore {
    /// Starts the LISTEN connection, once; through PgBouncer in transaction mode never (a
    /// LISTEN there would hold for one transaction only): workers and waiters poll.
    async fn start_listener(&self) {
        if self.pgbouncer {
            return;
        }
        self.listener
            .get_or_init(|| async {
                let handle = listener::start(
                    self.options.clone(),
                    self.channel.clone(),
                    self.settled_channel.clone(),
                    self.wakeups.clone(),
                );
                if let Ok(mut slot) = self.listener_task.lock() {
                    *slot = Some(handle);
                }
            })
            .await;
    }
}

/// Sends one NOTIFY for a queue, outside any transaction.
fn send_wake(pool: db::Db, channel: String) -> SendWake {
    Arc::new(move |queue: String| {
        let (pool, channel) = (pool.clone(), channel.clone());
        Box::pin(async move {
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&channel)
                .bind(&queue)
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, queue, "waking workers failed; they find the jobs at their next poll");
            }
        })
    })
}

/// Runs `underling_cycle` on `conn` and splits its rows into settles and claimed jobs.
async fn run_cycle(
    conn: &mut PgConnection,
    channel: &str,
    p: store::Cycle<'_>,
) -> Result<store::CycleReply> {
    let columns = SettleColumns::new(p.settles);
    let (worker_id, queues, tasks, limit) = match p.claim {
        Some(c) if !c.spec.queues.is_empty() => (
            c.worker_id,
            c.spec.queues.as_slice(),
            c.spec.tasks.as_slice(),
            c.limit,
        ),
        _ => (0, &[][..], &[][..], 0),
    };
    if p.settles.is_empty() && limit == 0 {
        return Ok(store::CycleReply::default());
    }
    let rows: Vec<PgRow> = sqlx::query(statement!("cycle"))
        .bind(&columns.ids)
        .bind(&columns.retries)
        .bind(&columns.oks)
        .bind(&columns.snoozes)
        .bind(&columns.results)
        .bind(&columns.delays)
        .bind(channel)
        .bind(worker_id)
        .bind(queues)
        .bind(tasks)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(p.now)
        .fetch_all(&mut *conn)
        .await?;
    // Claimed jobs come back active and whole; settled ones as their id and new state.
    let mut changed = Vec::new();
    let mut claimed = Vec::new();
    for row in &rows {
        let state: String = row.try_get("state")?;
        if state == JobState::Active.as_str() {
            claimed.push(PgJobRow::from_row(row)?.into_job()?);
        } else {
            changed.push((row.try_get::<i64, _>("id")?, state));
        }
    }
    store::claim_order(&mut claimed);
    Ok(store::CycleReply {
        settled: rows::settled(p.settles, &changed)?,
        claimed,
    })
}

mod events;
mod leases;
mod operations;
mod workloads;

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.listener_task.lock()
            && let Some(handle) = slot.take()
        {
            handle.abort();
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn pool(&self) -> Pool {
        Pool::Postgres(self.pool.clone())
    }

    async fn migrate(&self) -> Result<Vec<AppliedMigration>> {
        // A session advisory lock serializes migrations, and some cannot run in a transaction.
        if self.pgbouncer {
            return Err(Error::SessionRequired {
                operation: "migrations",
            });
        }
        connect::migrate(&self.pool, self.schema.as_deref()).await
    }

    async fn check_migrated(&self) -> Result<()> {
        store::migrate::check_applied(
            &connect::MIGRATOR,
            connect::applied_versions(&self.pool).await?,
        )
    }

    async fn enqueue(&self, p: store::Enqueue<'_>) -> Result<Vec<Enqueued>> {
        if let [job] = p.jobs
            && job.parents().is_empty()
            && job.unique().is_none()
        {
            // A single job in its own transaction: its wake-up may be coalesced.
            if self
                .coalescer
                .notify_now(job.queue(), std::time::Instant::now())
            {
                return Ok(vec![Enqueued::inserted(
                    self.insert_one(job, true, p.now).await?,
                )]);
            }
            let id = self.insert_one(job, false, p.now).await?;
            self.coalescer.catch_up(job.queue(), &self.send_wake);
            return Ok(vec![Enqueued::inserted(id)]);
        }
        if p.jobs.iter().all(|j| j.parents().is_empty()) {
            // One statement: atomic on its own, one round trip.
            let mut conn = self.db.acquire().await?;
            let ids = self.insert(&mut conn, p).await?;
            conn.commit().await?;
            return Ok(ids);
        }
        // The parent check and the insert must see the same parents.
        let mut tx = self.pool.begin().await?;
        let ids = self.insert(&mut tx, p).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn enqueue_on_postgres(
        &self,
        conn: &mut PgConnection,
        p: store::Enqueue<'_>,
    ) -> Result<Vec<Enqueued>> {
        self.insert(conn, p).await
    }

    async fn cycle(&self, p: store::Cycle<'_>) -> Result<store::CycleReply> {
        let mut conn = self.db.acquire().await?;
        let reply = run_cycle(&mut conn, &self.channel, p).await?;
        conn.commit().await?;
        if reply
            .settled
            .iter()
            .any(|s| matches!(s, Settled::Retried | Settled::Snoozed))
        {
            self.retry_wake.wake(&self.send_wake);
        }
        Ok(reply)
    }

    async fn claim_by_id(&self, p: store::ClaimById) -> Result<Option<Job>> {
        let row: Option<PgJobRow> = sqlx::query_as(statement!("claim_by_id", "job_columns"))
            .bind(p.worker_id)
            .bind(p.id)
            .bind(p.now)
            .fetch_optional(&self.db)
            .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn release(&self, p: store::Release<'_>) -> Result<u64> {
        if p.attempts.is_empty() {
            return Ok(0);
        }
        let (ids, retries): (Vec<i64>, Vec<i32>) =
            p.attempts.iter().map(|a| (a.id, a.retries)).unzip();
        let released: i64 = sqlx::query_scalar(statement!("release"))
            .bind(&ids)
            .bind(&retries)
            .bind(p.worker_id)
            .bind(&self.channel)
            .fetch_one(&self.db)
            .await?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn claim_leased(&self, p: store::ClaimLeased<'_>) -> Result<Vec<crate::LeasedJob>> {
        self.claim_with_lease(p).await
    }

    async fn settle_leased(&self, p: store::SettleLeased<'_>) -> Result<Settled> {
        self.settle_with_lease(p).await
    }

    async fn extend_lease(&self, p: store::ExtendLease) -> Result<DateTime<Utc>> {
        self.extend_with_lease(p).await
    }

    async fn expire_leases(&self, p: store::ExpireLeases<'_>) -> Result<u64> {
        self.expire(p).await
    }

    async fn active_attempts(&self, worker_id: i64) -> Result<Vec<store::Attempt>> {
        let rows: Vec<(i64, i32)> = sqlx::query_as(statement!("active_attempts"))
            .bind(worker_id)
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, retries)| store::Attempt { id, retries })
            .collect())
    }

    async fn next_due(&self, p: store::NextDue<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(statement!("next_due"))
            .bind(p.queues)
            .bind(p.now)
            .fetch_one(&self.db)
            .await?)
    }

    async fn job(&self, id: i64, now: store::Now) -> Result<Option<Job>> {
        let row: Option<PgJobRow> = sqlx::query_as(statement!("job", "job_columns"))
            .bind(id)
            .bind(now)
            .fetch_optional(&self.db)
            .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn list(&self, p: store::ListJobs<'_>) -> Result<JobList> {
        self.list_jobs(p).await
    }

    async fn retry(&self, p: store::Retry<'_>) -> Result<u64> {
        self.retry_jobs(p).await
    }

    async fn remove(&self, id: i64) -> Result<()> {
        let state: Option<String> = sqlx::query_scalar(statement!("remove"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        match state.as_deref() {
            None => Err(Error::JobNotFound(id)),
            Some("removed") => Ok(()),
            Some(_) => Err(Error::JobActive(id)),
        }
    }

    async fn purge(&self, p: store::Purge<'_>) -> Result<store::Purged> {
        self.purge_jobs(p).await
    }

    async fn note(&self, p: store::Note<'_>) -> Result<()> {
        let (set, unset): (Map<String, Value>, Map<String, Value>) =
            p.notes.clone().into_iter().partition(|(_, v)| !v.is_null());
        let unset: Vec<String> = unset.into_iter().map(|(k, _)| k).collect();
        let result = sqlx::query(statement!("note"))
            .bind(p.id)
            .bind(Value::Object(set))
            .bind(&unset)
            .execute(&self.db)
            .await?;
        if result.rows_affected() == 0 {
            return Err(Error::JobNotFound(p.id));
        }
        Ok(())
    }

    async fn stats(&self, now: store::Now) -> Result<Stats> {
        self.read_stats(now).await
    }

    async fn history(&self, now: store::Now) -> Result<Vec<HistoryPoint>> {
        self.read_history(now).await
    }

    async fn history_minutes(&self, now: store::Now) -> Result<Vec<MinutePoint>> {
        self.read_history_minutes(now).await
    }

    async fn queue_throughput(&self, now: store::Now) -> Result<Vec<QueueThroughput>> {
        let rows: Vec<(String, i64, i64, i64, i64)> =
            sqlx::query_as(statement!("queue_throughput"))
                .bind(now)
                .fetch_all(&self.db)
                .await?;
        Ok(rows
            .into_iter()
            .map(
                |(queue, finished, failed, finished_5m, failed_5m)| QueueThroughput {
                    queue,
                    finished_last_hour: u64::try_from(finished).unwrap_or(0),
                    failed_last_hour: u64::try_from(failed).unwrap_or(0),
                    finished_last_5m: u64::try_from(finished_5m).unwrap_or(0),
                    failed_last_5m: u64::try_from(failed_5m).unwrap_or(0),
                },
            )
            .collect())
    }

    async fn register_worker(&self, p: store::RegisterWorker<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar(statement!("register_worker"))
            .bind(p.host)
            .bind(p.pid)
            .bind(p.status)
            .bind(p.now)
            .fetch_one(&self.db)
            .await?)
    }

    async fn heartbeat(&self, p: store::Heartbeat<'_>) -> Result<store::Beat> {
        let (recorded, others_missing): (bool, bool) = sqlx::query_as(statement!("heartbeat"))
            .bind(p.id)
            .bind(p.status)
            .bind(p.now)
            .bind(secs(p.missing_after))
            .fetch_one(&self.db)
            .await?;
        Ok(store::Beat {
            recorded,
            others_missing,
        })
    }

    async fn publish_tasks(&self, p: store::PublishTasks<'_>) -> Result<()> {
        let names: Vec<&str> = p.tasks.iter().map(|t| t.name.as_str()).collect();
        let queues: Vec<Option<&str>> = p.tasks.iter().map(|t| t.queue.as_deref()).collect();
        let priorities: Vec<Option<i32>> = p.tasks.iter().map(|t| t.priority).collect();
        let attempts: Vec<Option<i32>> = p.tasks.iter().map(|t| t.attempts).collect();
        let timeouts: Vec<Option<i64>> = p
            .tasks
            .iter()
            .map(|t| t.timeout_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)))
            .collect();
        sqlx::query(statement!("publish_tasks"))
            .bind(&names)
            .bind(&queues)
            .bind(&priorities)
            .bind(&attempts)
            .bind(&timeouts)
            .bind(p.now)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn tasks(&self) -> Result<Vec<TaskDefaults>> {
        let mut conn = self.pool.acquire().await?;
        self.read_tasks(&mut conn).await
    }

    async fn tasks_on_postgres(&self, conn: &mut PgConnection) -> Result<Vec<TaskDefaults>> {
        self.read_tasks(conn).await
    }

    async fn put_workload(&self, p: store::PutWorkload<'_>) -> Result<bool> {
        self.write_workload(p).await
    }

    async fn workloads(&self) -> Result<Vec<store::WorkloadRow>> {
        self.read_workloads().await
    }

    async fn remove_workload(&self, name: &str) -> Result<bool> {
        self.delete_workload(name).await
    }

    async fn put_workload_token(&self, p: store::PutWorkloadToken<'_>) -> Result<()> {
        self.write_workload_token(p).await
    }

    async fn workload_of_token(&self, token_sha256: &str) -> Result<Option<String>> {
        self.read_workload_of_token(token_sha256).await
    }

    async fn remove_workload_token(&self, workload: &str) -> Result<bool> {
        self.delete_workload_token(workload).await
    }

    async fn unregister_worker(&self, id: i64) -> Result<()> {
        sqlx::query(statement!("unregister_worker"))
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>> {
        self.read_workers(ids).await
    }

    async fn broadcast(&self, p: store::Broadcast<'_>) -> Result<u64> {
        let result = sqlx::query(statement!("broadcast"))
            .bind(p.command)
            .bind(p.args)
            .bind(p.ids)
            .bind(p.now)
            .execute(&self.db)
            .await?;
        Ok(result.rows_affected())
    }

    async fn receive(&self, worker_id: i64) -> Result<Vec<Command>> {
        let mut rows: Vec<(i64, String, Value)> = sqlx::query_as(statement!("receive"))
            .bind(worker_id)
            .fetch_all(&self.db)
            .await?;
        rows.sort_by_key(|r| r.0);
        Ok(rows
            .into_iter()
            .map(|(_, command, args)| Command { command, args })
            .collect())
    }

    async fn lock(&self, p: store::Lock<'_>) -> Result<bool> {
        Ok(sqlx::query_scalar(statement!("lock"))
            .bind(p.name)
            .bind(secs(p.duration))
            .bind(i32::try_from(p.limit).unwrap_or(i32::MAX))
            .bind(p.now)
            .fetch_one(&self.db)
            .await?)
    }

    async fn unlock(&self, p: store::Unlock<'_>) -> Result<bool> {
        let result = sqlx::query(statement!("unlock"))
            .bind(p.name)
            .bind(p.now)
            .execute(&self.db)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn locks(&self, p: store::Locks<'_>) -> Result<Vec<LockInfo>> {
        let rows: Vec<(i64, String, DateTime<Utc>)> = sqlx::query_as(statement!("locks"))
            .bind(p.names)
            .bind(p.now)
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, expires)| LockInfo { id, name, expires })
            .collect())
    }

    async fn set_queue_paused(&self, p: store::PauseQueue<'_>) -> Result<()> {
        sqlx::query(statement!("pause_queue"))
            .bind(p.queue)
            .bind(p.paused)
            .bind(&self.channel)
            .bind(p.now)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn limited(&self, queues: &[String]) -> Result<bool> {
        Ok(sqlx::query_scalar(statement!("limited"))
            .bind(queues)
            .fetch_one(&self.db)
            .await?)
    }

    async fn set_queue_fifo(&self, p: store::FifoQueue<'_>) -> Result<()> {
        sqlx::query(statement!("fifo_queue"))
            .bind(p.queue)
            .bind(p.fifo)
            .bind(&self.channel)
            .bind(p.now)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn set_limit(&self, limit: &crate::Limit) -> Result<()> {
        let (kind, name, concurrency, count, period) = crate::limits::stored_columns(limit);
        sqlx::query(statement!("set_limit"))
            .bind(kind)
            .bind(name)
            .bind(concurrency)
            .bind(count)
            .bind(period)
            .bind(&self.channel)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn limits(&self) -> Result<Vec<crate::Limit>> {
        let rows: Vec<(String, String, Option<i32>, Option<i32>, Option<i64>)> =
            sqlx::query_as(statement!("limits"))
                .fetch_all(&self.db)
                .await?;
        rows.into_iter()
            .map(|(kind, name, c, n, ms)| {
                crate::limits::from_stored(kind, name, c.map(i64::from), n.map(i64::from), ms)
            })
            .collect()
    }

    async fn remove_limit(&self, scope: &crate::LimitScope) -> Result<bool> {
        let removed: bool = sqlx::query_scalar(statement!("remove_limit"))
            .bind(scope.kind())
            .bind(scope.name())
            .bind(&self.channel)
            .fetch_one(&self.db)
            .await?;
        Ok(removed)
    }

    async fn queues(&self, now: store::Now) -> Result<Vec<QueueInfo>> {
        self.read_queues(now).await
    }

    async fn repair(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        self.run_repair(p).await
    }

    async fn rescue(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        self.run_rescue(p).await
    }

    async fn compact_counts(&self) -> Result<u64> {
        let folded: i64 = sqlx::query_scalar(statement!("compact_counts"))
            .fetch_one(&self.db)
            .await?;
        Ok(rows::count(folded))
    }

    async fn subscribe(&self) -> Result<Option<broadcast::Receiver<String>>> {
        // Subscribe first: the listener's first wake-up (`*`) must reach this subscriber.
        let receiver = self.wakeups.subscribe();
        self.start_listener().await;
        Ok(Some(receiver))
    }

    async fn watch(&self, id: i64) -> Result<Option<broadcast::Receiver<i64>>> {
        // pg_notify would refuse a longer name (inside the settle), and through PgBouncer in
        // transaction mode nothing listens: the waiter polls instead.
        if self.settled_channel.len() > MAX_CHANNEL_LEN || self.pgbouncer {
            return Ok(None);
        }
        // Subscribe first: the listener's first wake-up (any job) must reach this waiter.
        let receiver = self.wakeups.subscribe_settled();
        self.start_listener().await;
        // Marks the job, unless it has settled already: its settle or removal then notifies.
        sqlx::query(statement!("watch"))
            .bind(id)
            .bind(&self.settled_channel)
            .execute(&self.db)
            .await?;
        Ok(Some(receiver))
    }

    async fn oldest_due(&self, now: store::Now) -> Result<Vec<QueueDue>> {
        let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(statement!("oldest_due"))
            .bind(now)
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(queue, oldest_due)| QueueDue { queue, oldest_due })
            .collect())
    }

    async fn upsert_schedule(&self, p: store::UpsertSchedule<'_>) -> Result<bool> {
        self.upsert(p).await
    }

    async fn schedules(&self, names: &[String]) -> Result<Vec<crate::ScheduleInfo>> {
        self.read_schedules(names).await
    }

    async fn due_schedules(&self, now: store::Now) -> Result<Vec<store::DueSchedule>> {
        self.due(now).await
    }

    async fn fire_schedule(&self, p: store::FireSchedule<'_>) -> Result<store::Fired> {
        self.fire(p).await
    }

    async fn set_schedule_paused(&self, p: store::PauseSchedule<'_>) -> Result<bool> {
        self.pause_schedule(p).await
    }

    async fn remove_schedule(&self, name: &str) -> Result<bool> {
        self.delete_schedule(name).await
    }

    async fn events(&self) -> Result<broadcast::Receiver<JobEvent>> {
        // Live events need a LISTEN connection.
        if self.pgbouncer {
            return Err(Error::SessionRequired {
                operation: "live events",
            });
        }
        subscribe_or_start(
            &self.events,
            events::start(
                self.pool.clone(),
                self.options.clone(),
                self.events_channel.clone(),
            ),
        )
        .await
    }

    async fn set_audit(&self, on: bool) -> Result<()> {
        let statement = if on {
            statement!("audit_triggers")
        } else {
            statement!("drop_audit_triggers")
        };
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql(statement).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_enabled(&self) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let found = events::count_triggers(&mut conn, &AUDIT_TRIGGERS).await?;
        Ok(found == AUDIT_TRIGGERS.len() as i64)
    }

    async fn audit(&self, p: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let rows: Vec<(i64, DateTime<Utc>, String, Value)> = sqlx::query_as(statement!("audit"))
            .bind(p.job_id)
            .bind(p.before)
            .bind(i64::try_from(p.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(id, at, event, job)| {
                Ok(AuditEntry {
                    id,
                    at,
                    event: event.parse()?,
                    job: serde_json::from_value(job)?,
                })
            })
            .collect()
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut removed = 0;
        loop {
            let done = sqlx::query(statement!("prune_audit"))
                .bind(before)
                .bind(AUDIT_PRUNE_BATCH)
                .execute(&self.db)
                .await?
                .rows_affected();
            removed += done;
            if done < AUDIT_PRUNE_BATCH as u64 {
                return Ok(removed);
            }
        }
    }

    async fn close(&self) {
        if let Ok(mut slot) = self.listener_task.lock()
            && let Some(handle) = slot.take()
        {
            handle.abort();
        }
        if let Some(source) = self.events.lock().await.take() {
            events::stop(source, &self.pool).await;
        }
        self.coalescer.flush(&self.send_wake).await;
        self.pool.close().await;
    }
}
