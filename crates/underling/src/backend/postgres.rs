//! The PostgreSQL backend: claims with `FOR UPDATE SKIP LOCKED`, wakes workers with
//! LISTEN/NOTIFY, and settles many attempts per statement.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{FromRow, Row};
use tokio::sync::{OnceCell, broadcast};
use tokio::task::JoinHandle;

use super::{Backend, BackendKind, CycleRow, split_settled_and_claimed};
use crate::error::{Error, Result};
use crate::job::{
    Job, JobFilter, JobList, JobState, NewJob, Outcome, RetryOptions, Settle, Settled,
};
use crate::model::{
    AppliedMigration, ClaimSpec, Command, HistoryPoint, LockInfo, QueueInfo, RepairOptions,
    RepairReport, Stats, WorkerInfo,
};
use crate::url::mask_password;

/// The migrations for PostgreSQL, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The columns of a job row, in [`JobRow`] order.
macro_rules! job_columns {
    () => {
        "j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries, j.created, \
         j.delayed, j.started, j.finished, j.retried, j.expires, j.lax, j.worker_id, j.result, j.notes"
    };
}

/// A row of `underling_jobs`.
#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    task: String,
    queue: String,
    args: Value,
    state: String,
    priority: i32,
    attempts: i32,
    retries: i32,
    created: DateTime<Utc>,
    delayed: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
    retried: Option<DateTime<Utc>>,
    expires: Option<DateTime<Utc>>,
    lax: bool,
    worker_id: Option<i64>,
    result: Option<Value>,
    notes: Value,
    #[sqlx(default)]
    parents: Vec<i64>,
    #[sqlx(default)]
    children: Vec<i64>,
}

impl JobRow {
    fn into_job(self) -> Result<Job> {
        Ok(Job {
            id: self.id,
            task: self.task,
            queue: self.queue,
            args: self.args,
            state: JobState::from_str(&self.state)?,
            priority: self.priority,
            attempts: self.attempts,
            retries: self.retries,
            created: self.created,
            delayed: self.delayed,
            started: self.started,
            finished: self.finished,
            retried: self.retried,
            expires: self.expires,
            lax: self.lax,
            worker_id: self.worker_id,
            result: self.result,
            notes: match self.notes {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            parents: self.parents,
            children: self.children,
        })
    }
}

/// Reads a row of `underling_settle_and_claim_v2`: claimed jobs come back active and whole,
/// settled ones as their id and new state only.
fn cycle_row(row: &PgRow) -> Result<CycleRow> {
    let state = JobState::from_str(row.try_get::<&str, _>("state")?)?;
    if state == JobState::Active {
        Ok(CycleRow::Claimed(Box::new(
            JobRow::from_row(row)?.into_job()?,
        )))
    } else {
        Ok(CycleRow::Settled(row.try_get("id")?, state))
    }
}

/// Seconds as a float, for `make_interval(secs => …)`.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Filter arguments shared by list, retry and purge statements, bound as `$1..$7`.
struct FilterArgs {
    ids: Vec<i64>,
    states: Vec<String>,
    queues: Vec<String>,
    tasks: Vec<String>,
    notes: Vec<String>,
    finished_before: Option<DateTime<Utc>>,
}

impl FilterArgs {
    fn new(f: &JobFilter) -> Self {
        FilterArgs {
            ids: f.ids.clone(),
            states: f.states.iter().map(|s| s.as_str().to_string()).collect(),
            queues: f.queues.clone(),
            tasks: f.tasks.clone(),
            notes: f.notes.clone(),
            finished_before: f.finished_before,
        }
    }
}

/// The `WHERE` clause matching [`FilterArgs`] bound as `$1..$6`.
macro_rules! filter_where {
    () => {
        "(cardinality($1::bigint[]) = 0 OR j.id = ANY($1)) \
         AND (cardinality($2::text[]) = 0 OR j.state = ANY($2)) \
         AND (cardinality($3::text[]) = 0 OR j.queue = ANY($3)) \
         AND (cardinality($4::text[]) = 0 OR j.task = ANY($4)) \
         AND (cardinality($5::text[]) = 0 OR j.notes ?& $5) \
         AND ($6::timestamptz IS NULL OR j.finished < $6)"
    };
}

/// Binds [`FilterArgs`] as `$1..$6`.
macro_rules! bind_filter {
    ($query:expr, $args:expr) => {
        $query
            .bind(&$args.ids)
            .bind(&$args.states)
            .bind(&$args.queues)
            .bind(&$args.tasks)
            .bind(&$args.notes)
            .bind($args.finished_before)
    };
}

/// The PostgreSQL backend.
pub struct PostgresBackend {
    pool: PgPool,
    /// How to connect; the LISTEN connection is opened with these, outside the pool, so that
    /// a busy pool never delays wake-ups (and wake-ups never take a pool connection).
    options: PgConnectOptions,
    /// The NOTIFY channel; one per schema so that two stores on one server do not wake each other.
    channel: String,
    schema: Option<String>,
    wakeups: OnceCell<broadcast::Sender<String>>,
    listener_task: Mutex<Option<JoinHandle<()>>>,
    /// Coalesces the wake-ups of single enqueues.
    wakes: Arc<Coalescer>,
}

/// How long after one wake-up for a queue further single enqueues to it leave theirs to one
/// catch-up wake-up.
const WAKE_WINDOW: Duration = Duration::from_millis(2);

/// Coalesces the NOTIFYs of single enqueues, so that a stream of them does not pay one
/// notification per job: every NOTIFY is taken at commit under one server-wide lock, and costs
/// a fifth of a one-row INSERT.
///
/// The first enqueue to a queue notifies as part of its statement. Enqueues to the same queue
/// within [`WAKE_WINDOW`] after it skip theirs, and one catch-up NOTIFY is sent once the window
/// is over, always after their commits: no job is left without a wake-up sent after it became
/// visible, and a burst costs two notifications instead of one per job.
#[derive(Default)]
struct Coalescer {
    queues: Mutex<HashMap<String, QueueWake>>,
}

/// The wake-ups of one queue.
struct QueueWake {
    /// When the last one was sent (or was about to be).
    last: std::time::Instant,
    /// Whether a catch-up wake-up is scheduled.
    pending: bool,
}

impl Coalescer {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, QueueWake>> {
        // Nothing here can panic while the lock is held; a poisoned lock is used all the same.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether an enqueue to `queue` should notify itself; if so, it counts as sent `now`.
    fn notify_now(&self, queue: &str, now: std::time::Instant) -> bool {
        let mut queues = self.lock();
        match queues.get_mut(queue) {
            Some(wake) if now.duration_since(wake.last) < WAKE_WINDOW => false,
            Some(wake) => {
                wake.last = now;
                true
            }
            None => {
                queues.insert(
                    queue.to_string(),
                    QueueWake {
                        last: now,
                        pending: false,
                    },
                );
                true
            }
        }
    }

    /// Called after an enqueue that skipped its NOTIFY has committed: makes sure a catch-up
    /// NOTIFY goes out after this point.
    fn catch_up(self: &Arc<Self>, queue: &str, pool: &PgPool, channel: &str) {
        let Some(due) = self.schedule(queue) else {
            return;
        };
        let this = self.clone();
        let (queue, pool, channel) = (queue.to_string(), pool.clone(), channel.to_string());
        tokio::spawn(async move {
            tokio::time::sleep_until(due.into()).await;
            this.send(&queue, &pool, &channel).await;
        });
    }

    /// When a catch-up NOTIFY for `queue` must go out, if one is not scheduled already (one
    /// that is scheduled and has not begun is sent after the caller's commit).
    fn schedule(&self, queue: &str) -> Option<std::time::Instant> {
        let mut queues = self.lock();
        let wake = queues.get_mut(queue)?;
        if wake.pending {
            return None;
        }
        wake.pending = true;
        Some(wake.last + WAKE_WINDOW)
    }

    /// Marks the catch-up NOTIFY for `queue` as begun, `now`: cleared before sending, so that
    /// an enqueue that commits from here on schedules its own.
    fn begin(&self, queue: &str, now: std::time::Instant) {
        if let Some(wake) = self.lock().get_mut(queue) {
            wake.pending = false;
            wake.last = now;
        }
    }

    /// Sends the catch-up NOTIFY for `queue`.
    async fn send(&self, queue: &str, pool: &PgPool, channel: &str) {
        self.begin(queue, std::time::Instant::now());
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(queue)
            .execute(pool)
            .await
        {
            tracing::warn!(error = %e, queue, "waking workers failed; they find the jobs at their next poll");
        }
    }

    /// Sends every scheduled catch-up NOTIFY now (before the pool closes).
    async fn flush(&self, pool: &PgPool, channel: &str) {
        let pending: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, wake)| wake.pending)
            .map(|(queue, _)| queue.clone())
            .collect();
        for queue in pending {
            self.send(&queue, pool, channel).await;
        }
    }
}

impl PostgresBackend {
    /// Connects to `url`. With `schema`, every table lives in that schema (created by `migrate`).
    pub async fn connect(url: &str, schema: Option<&str>, max_connections: u32) -> Result<Self> {
        let masked = mask_password(url);
        let mut options = PgConnectOptions::from_str(url).map_err(|e| Error::InvalidUrl {
            url: masked.clone(),
            reason: e.to_string(),
        })?;
        options = options.application_name("underling");
        if let Some(schema) = schema {
            validate_schema(schema)?;
            options = options.options([("search_path", schema)]);
        }
        // One direct connection first: a pool retries a refused connection until its acquire
        // timeout and then reports only that it timed out, losing the reason.
        let probe = <PgConnection as sqlx::Connection>::connect_with(&options)
            .await
            .map_err(|source| Error::Connect {
                url: masked.clone(),
                source,
            })?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every query would double the round trips of the hot path.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|source| Error::Connect {
                url: masked,
                source,
            })?;
        let channel = format!("underling.{}", schema.unwrap_or("public"));
        Ok(PostgresBackend {
            options,
            pool,
            channel,
            schema: schema.map(str::to_string),
            wakeups: OnceCell::new(),
            listener_task: Mutex::new(None),
            wakes: Arc::new(Coalescer::default()),
        })
    }

    /// The connection pool, for applications that want to share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn applied_versions(&self) -> Result<Option<Vec<i64>>> {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('underling_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        if !exists {
            return Ok(None);
        }
        let versions: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM underling_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(versions))
    }

    async fn start_listener(&self) -> broadcast::Sender<String> {
        let (tx, _) = broadcast::channel(1024);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(self.options.clone());
        let channel = self.channel.clone();
        let sender = tx.clone();
        let handle = tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(&channel).await {
                            tracing::warn!(error = %e, "LISTEN failed; retrying");
                        } else {
                            // Anything sent while we were not listening is lost: wake everyone.
                            let _ = sender.send("*".to_string());
                            loop {
                                match listener.try_recv().await {
                                    Ok(Some(n)) => {
                                        let _ = sender.send(n.payload().to_string());
                                    }
                                    Ok(None) => {
                                        let _ = sender.send("*".to_string());
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "listener failed; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot LISTEN; workers fall back to polling")
                    }
                }
                if pool.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        if let Ok(mut slot) = self.listener_task.lock() {
            *slot = Some(handle);
        }
        tx
    }
}

impl PostgresBackend {
    /// Creates the schema and applies migrations, under the migration lock.
    async fn migrate_locked(&self, conn: &mut PgConnection) -> Result<Vec<AppliedMigration>> {
        if let Some(schema) = &self.schema {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            // Checked by `validate_schema` when connecting.
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await?;
        }
        let before = self.applied_versions().await?.unwrap_or_default();
        // `run_direct` takes the connection itself (`run` wants an `Acquire`, which does not
        // compile inside an `async_trait` method).
        super::migrator(&MIGRATOR)
            .run_direct(None, &mut *conn, false)
            .await?;
        Ok(super::newly_applied(&MIGRATOR, &before))
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.listener_task.lock()
            && let Some(handle) = slot.take()
        {
            handle.abort();
        }
    }
}

/// Schema names are spliced into SQL, so only plain identifiers are accepted.
fn validate_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "invalid schema name {schema:?}: use letters, digits and underscores"
        )))
    }
}

/// Inserts one job without parents: the hot path of single enqueues, one short statement.
/// With `channel`, workers are woken (at commit) when the job is due now.
async fn insert_one(conn: &mut PgConnection, channel: Option<&str>, job: &NewJob) -> Result<i64> {
    macro_rules! insert {
        () => {
            "INSERT INTO underling_jobs \
               (task, args, queue, priority, attempts, delayed, expires, lax, notes) \
             VALUES ($1, $2, $3, $4, $5, \
                     COALESCE($6, now() + make_interval(secs => COALESCE($7, 0))), \
                     CASE WHEN $8::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $8) END, \
                     $9, $10)"
        };
    }
    let query = match channel {
        Some(_) => sqlx::query_scalar(concat!(
            "WITH ins AS (",
            insert!(),
            " RETURNING id, queue, delayed \
             ), wake AS ( \
               SELECT pg_notify($11, queue) FROM ins WHERE delayed <= now() \
             ) \
             SELECT id FROM ins WHERE (SELECT count(*) FROM wake) >= 0"
        )),
        // Without a wake-up: the plain INSERT, a little cheaper for the server.
        None => sqlx::query_scalar(concat!(insert!(), " RETURNING id")),
    };
    let query = query
        .bind(&job.task)
        .bind(&job.args)
        .bind(&job.queue)
        .bind(job.priority)
        .bind(job.attempts)
        .bind(job.run_at)
        .bind(job.delay.map(secs))
        .bind(job.expire.map(secs))
        .bind(job.lax)
        .bind(Value::Object(job.notes.clone()));
    let query = match channel {
        Some(channel) => query.bind(channel),
        None => query,
    };
    let id: i64 = query.fetch_one(&mut *conn).await?;
    Ok(id)
}

/// Inserts jobs on one connection: one statement (plus a parent check when there are parents).
/// Used by the pool path and by [`enqueue_in`] for the caller's own transaction.
async fn insert_jobs(
    conn: &mut PgConnection,
    channel: Option<&str>,
    jobs: &[NewJob],
) -> Result<Vec<i64>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    if let [job] = jobs
        && job.parents.is_empty()
    {
        return insert_one(conn, channel, job).await.map(|id| vec![id]);
    }
    let mut all_parents: Vec<i64> = jobs
        .iter()
        .flat_map(|j| j.parents.iter().copied())
        .collect();
    if !all_parents.is_empty() {
        all_parents.sort_unstable();
        all_parents.dedup();
        let missing: Vec<i64> = sqlx::query_scalar(
            "SELECT p FROM unnest($1::bigint[]) AS p \
             WHERE NOT EXISTS (SELECT 1 FROM underling_jobs WHERE id = p) ORDER BY p",
        )
        .bind(&all_parents)
        .fetch_all(&mut *conn)
        .await?;
        if let Some(first) = missing.first() {
            return Err(Error::ParentNotFound(*first));
        }
    }
    let n = jobs.len();
    let mut tasks = Vec::with_capacity(n);
    let mut args = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut attempts = Vec::with_capacity(n);
    let mut delays: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    let mut expires: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut laxes = Vec::with_capacity(n);
    let mut has_parents = Vec::with_capacity(n);
    let mut notes = Vec::with_capacity(n);
    let mut dep_ord: Vec<i64> = Vec::new();
    let mut dep_parent: Vec<i64> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        tasks.push(job.task.as_str());
        args.push(&job.args);
        queues.push(job.queue.as_str());
        priorities.push(job.priority);
        attempts.push(job.attempts);
        delays.push(job.delay.map(secs));
        run_ats.push(job.run_at);
        expires.push(job.expire.map(secs));
        laxes.push(job.lax);
        has_parents.push(!job.parents.is_empty());
        notes.push(Value::Object(job.notes.clone()));
        for parent in &job.parents {
            dep_ord.push(i as i64 + 1);
            dep_parent.push(*parent);
        }
    }
    // Ids are drawn in input order (the SELECT is ordered), so sorting them restores it.
    let ids: Vec<i64> = sqlx::query_scalar(
        "WITH ins AS ( \
           INSERT INTO underling_jobs \
             (task, args, queue, priority, attempts, delayed, expires, lax, has_parents, notes) \
           SELECT t, a, q, p, att, \
                  COALESCE(ra, now() + make_interval(secs => COALESCE(d, 0))), \
                  CASE WHEN e IS NULL THEN NULL ELSE now() + make_interval(secs => e) END, \
                  l, hp, n \
           FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::int[], $5::int[], \
                       $6::float8[], $7::timestamptz[], $8::float8[], $9::bool[], $10::bool[], \
                       $11::jsonb[]) WITH ORDINALITY AS u(t, a, q, p, att, d, ra, e, l, hp, n, ord) \
           ORDER BY ord \
           RETURNING id, queue, delayed, has_parents \
         ), numbered AS ( \
           SELECT id, row_number() OVER (ORDER BY id) AS ord FROM ins \
         ), deps AS ( \
           INSERT INTO underling_job_deps (child_id, parent_id) \
           SELECT n.id, d.parent FROM numbered n \
           JOIN unnest($12::bigint[], $13::bigint[]) AS d(ord, parent) ON d.ord = n.ord \
           ON CONFLICT DO NOTHING \
         ), wake AS ( \
           SELECT pg_notify($14, queue) FROM (SELECT DISTINCT queue FROM ins \
             WHERE $14::text IS NOT NULL AND delayed <= now() AND NOT has_parents) s \
         ) \
         SELECT id FROM ins WHERE (SELECT count(*) FROM wake) >= 0 ORDER BY id",
    )
    .bind(&tasks)
    .bind(&args)
    .bind(&queues)
    .bind(&priorities)
    .bind(&attempts)
    .bind(&delays)
    .bind(&run_ats)
    .bind(&expires)
    .bind(&laxes)
    .bind(&has_parents)
    .bind(&notes)
    .bind(&dep_ord)
    .bind(&dep_parent)
    .bind(channel)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids)
}

impl PostgresBackend {
    /// Enqueues jobs on the caller's connection or transaction (`&mut *tx`): the jobs exist if
    /// and only if that transaction commits, and workers are woken at commit.
    pub async fn enqueue_in(&self, conn: &mut PgConnection, jobs: &[NewJob]) -> Result<Vec<i64>> {
        insert_jobs(conn, Some(&self.channel), jobs).await
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn migrate(&self) -> Result<Vec<AppliedMigration>> {
        // One migrator at a time across every process: `CREATE SCHEMA IF NOT EXISTS` races
        // with itself, and sqlx's own lock only covers the migrations table.
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock(1970170217)")
            .execute(&mut *conn)
            .await?;
        let result = self.migrate_locked(&mut conn).await;
        // A session lock outlives the statement: release it before the connection goes back
        // to the pool, whatever happened.
        sqlx::query("SELECT pg_advisory_unlock(1970170217)")
            .execute(&mut *conn)
            .await?;
        result
    }

    async fn check_migrated(&self) -> Result<()> {
        super::check_applied(&MIGRATOR, self.applied_versions().await?)
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<i64>> {
        let mut conn = self.pool.acquire().await?;
        if jobs.iter().any(|j| !j.parents.is_empty()) {
            // The parent check and the insert must see the same parents.
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let ids = insert_jobs(&mut tx, Some(&self.channel), jobs).await?;
            tx.commit().await?;
            return Ok(ids);
        }
        if let [job] = jobs
            && job.run_at.is_none()
            && job.delay.is_none()
        {
            // A single job, due now, in its own transaction: its wake-up may be coalesced.
            if self.wakes.notify_now(&job.queue, std::time::Instant::now()) {
                return insert_jobs(&mut conn, Some(&self.channel), jobs).await;
            }
            let ids = insert_jobs(&mut conn, None, jobs).await?;
            drop(conn);
            self.wakes.catch_up(&job.queue, &self.pool, &self.channel);
            return Ok(ids);
        }
        insert_jobs(&mut conn, Some(&self.channel), jobs).await
    }

    async fn claim(&self, worker_id: i64, spec: &ClaimSpec, limit: usize) -> Result<Vec<Job>> {
        let (_, jobs) = self.settle_and_claim(&[], worker_id, spec, limit).await?;
        Ok(jobs)
    }

    async fn claim_by_id(&self, worker_id: i64, id: i64) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "UPDATE underling_jobs AS j SET state = 'active', started = now(), worker_id = $1 \
             WHERE j.id = ( \
               SELECT c.id FROM underling_jobs c \
               WHERE c.id = $2 AND c.state = 'inactive' \
                 AND c.delayed <= now() AND (c.expires IS NULL OR c.expires > now()) \
                 AND (NOT c.has_parents OR NOT EXISTS ( \
                   SELECT 1 FROM underling_job_deps d JOIN underling_jobs p ON p.id = d.parent_id \
                   WHERE d.child_id = c.id AND p.state <> 'finished' \
                     AND NOT (c.lax AND p.state = 'failed'))) \
               FOR UPDATE SKIP LOCKED) \
             RETURNING ",
            job_columns!()
        ))
        .bind(worker_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn settle(&self, settles: &[Settle]) -> Result<Vec<Settled>> {
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        let (settled, _) = self
            .settle_and_claim(settles, 0, &ClaimSpec::default(), 0)
            .await?;
        Ok(settled)
    }

    async fn settle_and_claim(
        &self,
        settles: &[Settle],
        worker_id: i64,
        spec: &ClaimSpec,
        limit: usize,
    ) -> Result<(Vec<Settled>, Vec<Job>)> {
        let limit = if spec.queues.is_empty() { 0 } else { limit };
        if settles.is_empty() && limit == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut ids = Vec::with_capacity(settles.len());
        let mut retries = Vec::with_capacity(settles.len());
        let mut oks = Vec::with_capacity(settles.len());
        let mut results = Vec::with_capacity(settles.len());
        let mut delays = Vec::with_capacity(settles.len());
        for s in settles {
            ids.push(s.id);
            retries.push(s.retries);
            match &s.outcome {
                Outcome::Finished(result) => {
                    oks.push(true);
                    results.push(result);
                    delays.push(0.0);
                }
                Outcome::Failed { error, retry_delay } => {
                    oks.push(false);
                    results.push(error);
                    delays.push(secs(*retry_delay));
                }
            }
        }
        // See migrations/postgres/*_settle_and_claim_v2.sql.
        let rows: Vec<PgRow> = sqlx::query(
            "SELECT * FROM underling_settle_and_claim_v2($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::int)",
        )
        .bind(&ids)
        .bind(&retries)
        .bind(&oks)
        .bind(&results)
        .bind(&delays)
        .bind(&self.channel)
        .bind(worker_id)
        .bind(&spec.queues)
        .bind(&spec.tasks)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        split_settled_and_claimed(settles, rows.iter().map(cycle_row))
    }

    async fn release(&self, worker_id: i64, attempts: &[(i64, i32)]) -> Result<u64> {
        if attempts.is_empty() {
            return Ok(0);
        }
        let (ids, retries): (Vec<i64>, Vec<i32>) = attempts.iter().copied().unzip();
        let released: i64 = sqlx::query_scalar(
            "WITH upd AS ( \
               UPDATE underling_jobs AS j SET state = 'inactive', started = NULL, worker_id = NULL \
               FROM unnest($1::bigint[], $2::int[]) AS i(id, retries) \
               WHERE j.id = i.id AND j.retries = i.retries AND j.state = 'active' \
                 AND j.worker_id = $3 \
               RETURNING j.queue \
             ), wake AS ( \
               SELECT pg_notify($4, q.queue) FROM (SELECT DISTINCT queue FROM upd) q \
             ) \
             SELECT count(*) FROM upd WHERE (SELECT count(*) FROM wake) >= 0",
        )
        .bind(&ids)
        .bind(&retries)
        .bind(worker_id)
        .bind(&self.channel)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(released).unwrap_or(0))
    }

    async fn next_due(&self, spec: &ClaimSpec) -> Result<Option<DateTime<Utc>>> {
        let due: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(delayed) FROM underling_jobs \
             WHERE state = 'inactive' AND queue = ANY($1) AND delayed > now()",
        )
        .bind(&spec.queues)
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }

    async fn job(&self, id: i64) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            ", ARRAY(SELECT parent_id FROM underling_job_deps WHERE child_id = j.id ORDER BY parent_id) AS parents, \
             ARRAY(SELECT child_id FROM underling_job_deps WHERE parent_id = j.id ORDER BY child_id) AS children \
             FROM underling_jobs j WHERE j.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn list(&self, filter: &JobFilter, limit: u64, offset: u64) -> Result<JobList> {
        let args = FilterArgs::new(filter);
        let total: i64 = bind_filter!(
            sqlx::query_scalar(concat!(
                "SELECT count(*) FROM underling_jobs j WHERE ",
                filter_where!()
            )),
            args
        )
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<JobRow> = bind_filter!(
            sqlx::query_as(concat!(
                "SELECT ",
                job_columns!(),
                ", ARRAY(SELECT parent_id FROM underling_job_deps WHERE child_id = j.id ORDER BY parent_id) AS parents, \
                 ARRAY(SELECT child_id FROM underling_job_deps WHERE parent_id = j.id ORDER BY child_id) AS children \
                 FROM underling_jobs j WHERE ",
                filter_where!(),
                " ORDER BY j.id DESC LIMIT $7 OFFSET $8"
            )),
            args
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(JobList {
            jobs: rows
                .into_iter()
                .map(JobRow::into_job)
                .collect::<Result<Vec<_>>>()?,
            total: total as u64,
        })
    }

    async fn retry(&self, id: i64, opts: &RetryOptions) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(parents) = &opts.parents {
            let missing: Option<i64> = sqlx::query_scalar(
                "SELECT p FROM unnest($1::bigint[]) AS p \
                 WHERE NOT EXISTS (SELECT 1 FROM underling_jobs WHERE id = p) ORDER BY p LIMIT 1",
            )
            .bind(parents)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(missing) = missing {
                return Err(Error::ParentNotFound(missing));
            }
        }
        let updated: Option<i64> = sqlx::query_scalar(
            "WITH upd AS ( \
               UPDATE underling_jobs SET state = 'inactive', retries = retries + 1, retried = now(), \
                 delayed = now() + make_interval(secs => COALESCE($2, 0)), \
                 queue = COALESCE($3, queue), priority = COALESCE($4, priority), \
                 attempts = COALESCE($5, attempts), lax = COALESCE($6, lax), \
                 expires = CASE WHEN $7::float8 IS NULL THEN expires \
                                ELSE now() + make_interval(secs => $7) END, \
                 has_parents = CASE WHEN $8::bigint[] IS NULL THEN has_parents \
                                    ELSE cardinality($8) > 0 END \
               WHERE id = $1 RETURNING id, queue, delayed \
             ), wake AS ( \
               SELECT pg_notify($9, queue) FROM upd WHERE delayed <= now() \
             ) \
             SELECT id FROM upd WHERE (SELECT count(*) FROM wake) >= 0",
        )
        .bind(id)
        .bind(opts.delay.map(secs))
        .bind(&opts.queue)
        .bind(opts.priority)
        .bind(opts.attempts)
        .bind(opts.lax)
        .bind(opts.expire.map(secs))
        .bind(&opts.parents)
        .bind(&self.channel)
        .fetch_optional(&mut *tx)
        .await?;
        if updated.is_none() {
            return Err(Error::JobNotFound(id));
        }
        if let Some(parents) = &opts.parents {
            sqlx::query(
                // The DELETE and the INSERT touch disjoint keys: the sub-statements of one
                // statement run in no defined order, so deleting a pair and inserting it again
                // would violate the primary key.
                "WITH del AS (DELETE FROM underling_job_deps \
                   WHERE child_id = $1 AND parent_id <> ALL($2::bigint[])) \
                 INSERT INTO underling_job_deps (child_id, parent_id) \
                 SELECT DISTINCT $1::bigint, p FROM unnest($2::bigint[]) AS p \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(parents)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn retry_matching(&self, filter: &JobFilter) -> Result<u64> {
        let args = FilterArgs::new(filter);
        let count: i64 = bind_filter!(
            sqlx::query_scalar(concat!(
                "WITH upd AS ( \
                   UPDATE underling_jobs AS j SET state = 'inactive', retries = j.retries + 1, \
                     retried = now(), delayed = now() \
                   WHERE ",
                filter_where!(),
                " RETURNING j.id, j.queue \
                 ), wake AS ( \
                   SELECT pg_notify($7, queue) FROM (SELECT DISTINCT queue FROM upd) s \
                 ) \
                 SELECT count(*) FROM upd WHERE (SELECT count(*) FROM wake) >= 0"
            )),
            args
        )
        .bind(&self.channel)
        .fetch_one(&self.pool)
        .await?;
        Ok(count as u64)
    }

    async fn remove(&self, id: i64) -> Result<()> {
        let state: Option<String> = sqlx::query_scalar(
            "WITH target AS (SELECT id, state FROM underling_jobs WHERE id = $1), \
             del AS (DELETE FROM underling_jobs WHERE id = $1 AND state <> 'active' RETURNING id) \
             SELECT CASE WHEN (SELECT count(*) FROM del) > 0 THEN 'removed' ELSE state END \
             FROM target",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match state.as_deref() {
            None => Err(Error::JobNotFound(id)),
            Some("removed") => Ok(()),
            Some(_) => Err(Error::JobActive(id)),
        }
    }

    async fn purge_batch(&self, filter: &JobFilter, batch: u64) -> Result<u64> {
        let args = FilterArgs::new(filter);
        let result = bind_filter!(
            sqlx::query(concat!(
                "DELETE FROM underling_jobs WHERE id IN ( \
                   SELECT j.id FROM underling_jobs j WHERE ",
                filter_where!(),
                " ORDER BY j.id LIMIT $7)"
            )),
            args
        )
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn note(&self, id: i64, notes: &Map<String, Value>) -> Result<()> {
        let (set, unset): (Map<String, Value>, Map<String, Value>) =
            notes.clone().into_iter().partition(|(_, v)| !v.is_null());
        let unset: Vec<String> = unset.into_iter().map(|(k, _)| k).collect();
        let result = sqlx::query(
            "UPDATE underling_jobs SET notes = (notes || $2::jsonb) - $3::text[] WHERE id = $1",
        )
        .bind(id)
        .bind(Value::Object(set))
        .bind(&unset)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(Error::JobNotFound(id));
        }
        Ok(())
    }

    async fn stats(&self) -> Result<Stats> {
        #[derive(sqlx::FromRow)]
        struct Row {
            inactive: i64,
            active: i64,
            finished: i64,
            failed: i64,
            delayed: i64,
            busy_workers: i64,
            workers: i64,
            locks: i64,
            enqueued: i64,
            uptime: i64,
        }
        let row: Row = sqlx::query_as(
            "SELECT \
               (SELECT count(*) FROM underling_jobs WHERE state = 'inactive') AS inactive, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'active') AS active, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'finished') AS finished, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'failed') AS failed, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'inactive' AND delayed > now()) AS delayed, \
               (SELECT count(DISTINCT worker_id) FROM underling_jobs j WHERE state = 'active' \
                  AND EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)) AS busy_workers, \
               (SELECT count(*) FROM underling_workers) AS workers, \
               (SELECT count(*) FROM underling_locks WHERE expires > now()) AS locks, \
               (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM underling_jobs_id_seq) AS enqueued, \
               extract(epoch FROM now() - pg_postmaster_start_time())::bigint AS uptime",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            inactive_jobs: row.inactive as u64,
            active_jobs: row.active as u64,
            finished_jobs: row.finished as u64,
            failed_jobs: row.failed as u64,
            delayed_jobs: row.delayed as u64,
            active_workers: row.busy_workers as u64,
            inactive_workers: (row.workers - row.busy_workers).max(0) as u64,
            active_locks: row.locks as u64,
            enqueued_jobs: row.enqueued as u64,
            uptime: Some(row.uptime.max(0) as u64),
        })
    }

    async fn history(&self) -> Result<Vec<HistoryPoint>> {
        let rows: Vec<(DateTime<Utc>, i64, i64)> = sqlx::query_as(
            "SELECT h.hour, \
               count(j.id) FILTER (WHERE j.state = 'finished'), \
               count(j.id) FILTER (WHERE j.state = 'failed') \
             FROM generate_series(date_trunc('hour', now(), 'UTC') - interval '23 hours', \
                                  date_trunc('hour', now(), 'UTC'), interval '1 hour') AS h(hour) \
             LEFT JOIN underling_jobs j \
               ON j.finished >= h.hour AND j.finished < h.hour + interval '1 hour' \
              AND j.state IN ('finished', 'failed') \
             GROUP BY h.hour ORDER BY h.hour",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hour, finished, failed)| HistoryPoint {
                hour,
                finished: finished as u64,
                failed: failed as u64,
            })
            .collect())
    }

    async fn register_worker(&self, host: &str, pid: i32, status: &Value) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO underling_workers (host, pid, status) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(host)
        .bind(pid)
        .bind(status)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn heartbeat(&self, id: i64, status: &Value) -> Result<bool> {
        let result =
            sqlx::query("UPDATE underling_workers SET notified = now(), status = $2 WHERE id = $1")
                .bind(id)
                .bind(status)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn unregister_worker(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM underling_workers WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>> {
        let rows: Vec<(
            i64,
            String,
            i32,
            DateTime<Utc>,
            DateTime<Utc>,
            Value,
            Vec<i64>,
        )> = sqlx::query_as(
            "SELECT w.id, w.host, w.pid, w.started, w.notified, w.status, \
                   ARRAY(SELECT j.id FROM underling_jobs j \
                         WHERE j.state = 'active' AND j.worker_id = w.id ORDER BY j.id) \
                 FROM underling_workers w \
                 WHERE cardinality($1::bigint[]) = 0 OR w.id = ANY($1) ORDER BY w.id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, host, pid, started, last_heartbeat, status, jobs)| WorkerInfo {
                    id,
                    host,
                    pid,
                    started,
                    last_heartbeat,
                    status,
                    jobs,
                },
            )
            .collect())
    }

    async fn broadcast(&self, command: &str, args: &Value, ids: &[i64]) -> Result<u64> {
        let result = sqlx::query(
            "INSERT INTO underling_worker_inbox (worker_id, command, args) \
             SELECT id, $1, $2 FROM underling_workers \
             WHERE cardinality($3::bigint[]) = 0 OR id = ANY($3)",
        )
        .bind(command)
        .bind(args)
        .bind(ids)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn receive(&self, worker_id: i64) -> Result<Vec<Command>> {
        let mut rows: Vec<(i64, String, Value)> = sqlx::query_as(
            "DELETE FROM underling_worker_inbox WHERE worker_id = $1 RETURNING id, command, args",
        )
        .bind(worker_id)
        .fetch_all(&self.pool)
        .await?;
        rows.sort_by_key(|r| r.0);
        Ok(rows
            .into_iter()
            .map(|(_, command, args)| Command { command, args })
            .collect())
    }

    async fn lock(&self, name: &str, duration: Duration, limit: u32) -> Result<bool> {
        let ok: bool = sqlx::query_scalar("SELECT underling_lock($1, $2, $3)")
            .bind(name)
            .bind(secs(duration))
            .bind(i32::try_from(limit).unwrap_or(i32::MAX))
            .fetch_one(&self.pool)
            .await?;
        Ok(ok)
    }

    async fn unlock(&self, name: &str) -> Result<bool> {
        let result = sqlx::query(
            "DELETE FROM underling_locks WHERE id = ( \
               SELECT id FROM underling_locks WHERE name = $1 AND expires > now() \
               ORDER BY expires LIMIT 1)",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn locks(&self, names: &[String]) -> Result<Vec<LockInfo>> {
        let rows: Vec<(i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, name, expires FROM underling_locks \
             WHERE expires > now() AND (cardinality($1::text[]) = 0 OR name = ANY($1)) \
             ORDER BY id",
        )
        .bind(names)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, expires)| LockInfo { id, name, expires })
            .collect())
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        sqlx::query(
            "WITH up AS ( \
               INSERT INTO underling_queues (name, paused, updated) VALUES ($1, $2, now()) \
               ON CONFLICT (name) DO UPDATE SET paused = $2, updated = now() \
             ) \
             SELECT pg_notify($3, $1) WHERE NOT $2",
        )
        .bind(queue)
        .bind(paused)
        .bind(&self.channel)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let rows: Vec<(String, bool, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT name, COALESCE(q.paused, false), \
               COALESCE(c.inactive, 0), COALESCE(c.active, 0), \
               COALESCE(c.failed, 0), COALESCE(c.finished, 0) \
             FROM (SELECT queue AS name, \
                     count(*) FILTER (WHERE state = 'inactive') AS inactive, \
                     count(*) FILTER (WHERE state = 'active') AS active, \
                     count(*) FILTER (WHERE state = 'failed') AS failed, \
                     count(*) FILTER (WHERE state = 'finished') AS finished \
                   FROM underling_jobs GROUP BY queue) c \
             FULL JOIN underling_queues q USING (name) ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(name, paused, inactive, active, failed, finished)| QueueInfo {
                    name,
                    paused,
                    inactive: inactive as u64,
                    active: active as u64,
                    failed: failed as u64,
                    finished: finished as u64,
                },
            )
            .collect())
    }

    async fn repair(&self, opts: &RepairOptions) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        let mut tx = self.pool.begin().await?;
        report.missing_workers = sqlx::query(
            "DELETE FROM underling_workers WHERE notified < now() - make_interval(secs => $1)",
        )
        .bind(secs(opts.missing_after))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Jobs whose worker is gone fail (and are retried with the default backoff if tries
        // are left); the retries guard is implicit: the row is locked by this UPDATE.
        report.abandoned_jobs = sqlx::query(
            "UPDATE underling_jobs AS j SET \
               state = CASE WHEN j.retries + 1 < j.attempts THEN 'inactive' ELSE 'failed' END, \
               finished = now(), result = to_jsonb('Worker went away'::text), \
               retries = CASE WHEN j.retries + 1 < j.attempts THEN j.retries + 1 ELSE j.retries END, \
               retried = CASE WHEN j.retries + 1 < j.attempts THEN now() ELSE j.retried END, \
               delayed = CASE WHEN j.retries + 1 < j.attempts \
                              THEN now() + make_interval(secs => power(j.retries, 4) + 15) \
                              ELSE j.delayed END \
             WHERE j.state = 'active' \
               AND NOT EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;

        report.removed_jobs = sqlx::query(
            "DELETE FROM underling_jobs AS j \
             WHERE j.state = 'finished' AND j.finished <= now() - make_interval(secs => $1) \
               AND NOT EXISTS (SELECT 1 FROM underling_job_deps d JOIN underling_jobs c \
                               ON c.id = d.child_id WHERE d.parent_id = j.id AND c.state <> 'finished')",
        )
        .bind(secs(opts.remove_after))
        .execute(&self.pool)
        .await?
        .rows_affected();
        report.expired_jobs =
            sqlx::query("DELETE FROM underling_jobs WHERE state = 'inactive' AND expires <= now()")
                .execute(&self.pool)
                .await?
                .rows_affected();
        report.stuck_jobs = sqlx::query(
            "UPDATE underling_jobs SET state = 'failed', finished = now(), \
               result = to_jsonb('Job appears stuck in queue'::text) \
             WHERE state = 'inactive' AND delayed <= now() - make_interval(secs => $1)",
        )
        .bind(secs(opts.stuck_after))
        .execute(&self.pool)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM underling_locks WHERE expires <= now()")
            .execute(&self.pool)
            .await?;
        Ok(report)
    }

    async fn subscribe(&self) -> Result<Option<broadcast::Receiver<String>>> {
        let sender = self.wakeups.get_or_init(|| self.start_listener()).await;
        Ok(Some(sender.subscribe()))
    }

    async fn close(&self) {
        if let Ok(mut slot) = self.listener_task.lock()
            && let Some(handle) = slot.take()
        {
            handle.abort();
        }
        self.wakes.flush(&self.pool, &self.channel).await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::{Coalescer, WAKE_WINDOW};

    #[test]
    fn the_first_enqueue_to_a_queue_notifies_and_the_next_ones_within_the_window_do_not() {
        let wakes = Coalescer::default();
        let t0 = Instant::now();
        assert!(wakes.notify_now("q", t0));
        assert!(!wakes.notify_now("q", t0 + WAKE_WINDOW / 2));
        assert!(
            wakes.notify_now("other", t0 + WAKE_WINDOW / 2),
            "queues are apart"
        );
        assert!(wakes.notify_now("q", t0 + WAKE_WINDOW));
    }

    #[test]
    fn a_skipped_wake_up_schedules_one_catch_up_at_the_end_of_the_window() {
        let wakes = Coalescer::default();
        let t0 = Instant::now();
        assert!(wakes.notify_now("q", t0));
        assert!(!wakes.notify_now("q", t0));
        assert_eq!(wakes.schedule("q"), Some(t0 + WAKE_WINDOW));
        assert!(!wakes.notify_now("q", t0));
        assert_eq!(
            wakes.schedule("q"),
            None,
            "one catch-up covers every commit before it"
        );
    }

    #[test]
    fn an_enqueue_that_commits_after_the_catch_up_began_schedules_another() {
        let wakes = Coalescer::default();
        let t0 = Instant::now();
        assert!(wakes.notify_now("q", t0));
        assert_eq!(wakes.schedule("q"), Some(t0 + WAKE_WINDOW));
        let t1 = t0 + WAKE_WINDOW;
        wakes.begin("q", t1);
        assert!(
            !wakes.notify_now("q", t1),
            "the catch-up counts as a wake-up"
        );
        assert_eq!(wakes.schedule("q"), Some(t1 + WAKE_WINDOW));
    }

    #[test]
    fn a_queue_never_notified_schedules_nothing() {
        assert_eq!(Coalescer::default().schedule("q"), None);
    }
}
