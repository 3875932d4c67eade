//! The SQLite backend: the same behaviour as PostgreSQL, for embedded use and tests.
//!
//! SQLite has no `SKIP LOCKED`; a claim is a single `UPDATE … RETURNING` statement, which takes
//! the database's write lock before it reads, so no job is handed out twice. Statements that
//! must read then write run in `BEGIN IMMEDIATE` transactions for the same reason. Times are
//! stored as integer milliseconds since the Unix epoch and bound from Rust.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tokio::sync::broadcast;

use super::{Backend, BackendKind};
use crate::error::{Error, Result};
use crate::job::{
    Job, JobFilter, JobList, JobState, NewJob, Outcome, RetryOptions, Settle, Settled,
};
use crate::model::{
    AppliedMigration, ClaimSpec, Command, HistoryPoint, LockInfo, QueueInfo, RepairOptions,
    RepairReport, Stats, WorkerInfo,
};

/// The migrations for SQLite, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The columns of a job row, in [`JobRow`] order.
macro_rules! job_columns {
    () => {
        "j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries, j.created, \
         j.delayed, j.started, j.finished, j.retried, j.expires, j.lax, j.worker_id, j.result, j.notes"
    };
}

/// The columns of a job row for `RETURNING`, which cannot name a table alias in SQLite.
macro_rules! returning_columns {
    () => {
        "id, task, queue, args, state, priority, attempts, retries, created, \
         delayed, started, finished, retried, expires, lax, worker_id, result, notes"
    };
}

/// The `WHERE` clause of job filters; parameters `?1..?6` (JSON arrays, and a time).
macro_rules! filter_where {
    () => {
        "(json_array_length(?1) = 0 OR j.id IN (SELECT value FROM json_each(?1))) \
         AND (json_array_length(?2) = 0 OR j.state IN (SELECT value FROM json_each(?2))) \
         AND (json_array_length(?3) = 0 OR j.queue IN (SELECT value FROM json_each(?3))) \
         AND (json_array_length(?4) = 0 OR j.task IN (SELECT value FROM json_each(?4))) \
         AND NOT EXISTS (SELECT 1 FROM json_each(?5) k WHERE NOT EXISTS ( \
                           SELECT 1 FROM json_each(j.notes) n WHERE n.key = k.value)) \
         AND (?6 IS NULL OR j.finished < ?6)"
    };
}

/// Binds a [`JobFilter`] as `?1..?6`.
macro_rules! bind_filter {
    ($query:expr, $f:expr) => {{
        let f: &JobFilter = $f;
        let states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
        $query
            .bind(json_text(&f.ids))
            .bind(json_text(&states))
            .bind(json_text(&f.queues))
            .bind(json_text(&f.tasks))
            .bind(json_text(&f.notes))
            .bind(f.finished_before.map(|t| t.timestamp_millis()))
    }};
}

/// A row of `underling_jobs`.
#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    task: String,
    queue: String,
    args: String,
    state: String,
    priority: i32,
    attempts: i32,
    retries: i32,
    created: i64,
    delayed: i64,
    started: Option<i64>,
    finished: Option<i64>,
    retried: Option<i64>,
    expires: Option<i64>,
    lax: bool,
    worker_id: Option<i64>,
    result: Option<String>,
    notes: String,
    #[sqlx(default)]
    parents: Option<String>,
    #[sqlx(default)]
    children: Option<String>,
}

impl JobRow {
    fn into_job(self) -> Result<Job> {
        let notes = match serde_json::from_str(&self.notes)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Ok(Job {
            id: self.id,
            task: self.task,
            queue: self.queue,
            args: serde_json::from_str(&self.args)?,
            state: JobState::from_str(&self.state)?,
            priority: self.priority,
            attempts: self.attempts,
            retries: self.retries,
            created: time(self.created),
            delayed: time(self.delayed),
            started: self.started.map(time),
            finished: self.finished.map(time),
            retried: self.retried.map(time),
            expires: self.expires.map(time),
            lax: self.lax,
            worker_id: self.worker_id,
            result: self
                .result
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            notes,
            parents: id_list(self.parents.as_deref())?,
            children: id_list(self.children.as_deref())?,
        })
    }
}

/// Parses a `json_group_array` of ids (NULL or `[]` when there are none).
fn id_list(text: Option<&str>) -> Result<Vec<i64>> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => {
            let mut ids: Vec<i64> = serde_json::from_str(text)?;
            ids.sort_unstable();
            Ok(ids)
        }
    }
}

/// Milliseconds since the epoch as a time.
fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The current time in milliseconds.
fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A duration in milliseconds.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A slice as JSON text, for `json_each`.
fn json_text<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

/// The SQLite backend.
pub struct SqliteBackend {
    pool: SqlitePool,
    /// SQLite lets one connection write at a time. Our own writers queue here instead of
    /// meeting in SQLite's busy handler, which sleeps for milliseconds between tries.
    writer: tokio::sync::Mutex<()>,
    /// Wakes workers in this process; other processes poll.
    wakeups: broadcast::Sender<String>,
}

impl SqliteBackend {
    /// Opens `sqlite://path` (created if missing, WAL) or `sqlite::memory:` (one connection,
    /// so that the whole pool shares one database).
    ///
    /// With `create` false, a database file that does not exist is an error
    /// ([`Error::NotMigrated`]) and no file is left behind.
    pub async fn connect(url: &str, max_connections: u32, create: bool) -> Result<Self> {
        let masked = crate::url::mask_password(url);
        let options = SqliteConnectOptions::from_str(url).map_err(|e| Error::InvalidUrl {
            url: masked.clone(),
            reason: e.to_string(),
        })?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !create && !in_memory && !options.get_filename().exists() {
            return Err(Error::NotMigrated(format!(
                "{} does not exist",
                options.get_filename().display()
            )));
        }
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let (options, pool_options) = if in_memory {
            (
                options,
                // An in-memory database lives as long as its connection: keep exactly one.
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
            )
        } else {
            (
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
                SqlitePoolOptions::new().max_connections(max_connections.max(1)),
            )
        };
        let pool = pool_options
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|source| Error::Connect {
                url: masked,
                source,
            })?;
        let (wakeups, _) = broadcast::channel(1024);
        Ok(SqliteBackend {
            pool,
            writer: tokio::sync::Mutex::new(()),
            wakeups,
        })
    }

    /// The connection pool, for applications that want to share it (for example to begin a
    /// transaction for [`SqliteBackend::enqueue_in`]).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Enqueues jobs on the caller's connection or transaction (`&mut *tx`): the jobs exist if
    /// and only if that transaction commits.
    pub async fn enqueue_in(
        &self,
        conn: &mut SqliteConnection,
        jobs: &[NewJob],
    ) -> Result<Vec<i64>> {
        let ids = insert_jobs(conn, jobs).await?;
        // Other processes poll; in this process a woken worker that finds nothing (because the
        // transaction has not committed yet) simply waits again.
        self.wake(jobs);
        Ok(ids)
    }

    fn wake(&self, jobs: &[NewJob]) {
        let mut queues: Vec<&str> = jobs
            .iter()
            .filter(|j| j.parents.is_empty() && j.delay.is_none() && j.run_at.is_none())
            .map(|j| j.queue.as_str())
            .collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            let _ = self.wakeups.send(queue.to_string());
        }
    }

    async fn applied_versions(&self) -> Result<Option<Vec<i64>>> {
        let mut conn = self.pool.acquire().await?;
        applied_versions_on(&mut conn).await
    }
}

/// The migrations recorded as applied, or `None` when there is no migrations table.
async fn applied_versions_on(conn: &mut SqliteConnection) -> Result<Option<Vec<i64>>> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'underling_migrations'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if exists == 0 {
        return Ok(None);
    }
    let versions: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM underling_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(versions))
}

/// Inserts jobs in one transaction on the given connection (the caller's, or a pool's).
async fn insert_jobs(conn: &mut SqliteConnection, jobs: &[NewJob]) -> Result<Vec<i64>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut parents: Vec<i64> = jobs
        .iter()
        .flat_map(|j| j.parents.iter().copied())
        .collect();
    if !parents.is_empty() {
        parents.sort_unstable();
        parents.dedup();
        let missing: Option<i64> = sqlx::query_scalar(
            "SELECT p.value FROM json_each(?1) p \
             WHERE NOT EXISTS (SELECT 1 FROM underling_jobs WHERE id = p.value) \
             ORDER BY p.value LIMIT 1",
        )
        .bind(json_text(&parents))
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(missing) = missing {
            return Err(Error::ParentNotFound(missing));
        }
    }
    let now = now_ms();
    let rows: Vec<Value> = jobs
        .iter()
        .map(|j| {
            let delayed = match (j.run_at, j.delay) {
                (Some(at), _) => at.timestamp_millis(),
                (None, Some(d)) => now.saturating_add(ms(d)),
                (None, None) => now,
            };
            serde_json::json!([
                j.task,
                serde_json::to_string(&j.args).unwrap_or_else(|_| "null".into()),
                j.queue,
                j.priority,
                j.attempts,
                delayed,
                j.expire.map(|e| now.saturating_add(ms(e))),
                j.lax,
                !j.parents.is_empty(),
                serde_json::to_string(&j.notes).unwrap_or_else(|_| "{}".into()),
            ])
        })
        .collect();
    // One statement for the whole batch; ids are handed out in `key` (input) order.
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO underling_jobs \
           (task, args, queue, priority, attempts, created, delayed, expires, lax, has_parents, notes) \
         SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, ?2, \
                r.value ->> 5, r.value ->> 6, r.value ->> 7, r.value ->> 8, r.value ->> 9 \
         FROM json_each(?1) r ORDER BY r.key \
         RETURNING id",
    )
    .bind(Value::Array(rows).to_string())
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = ids;
    ids.sort_unstable();
    let deps: Vec<(i64, i64)> = jobs
        .iter()
        .zip(&ids)
        .flat_map(|(j, id)| j.parents.iter().map(move |p| (*id, *p)))
        .collect();
    if !deps.is_empty() {
        sqlx::query(
            "INSERT OR IGNORE INTO underling_job_deps (child_id, parent_id) \
             SELECT d.value ->> 0, d.value ->> 1 FROM json_each(?1) d",
        )
        .bind(serde_json::to_string(&deps).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(ids)
}

#[async_trait]
impl Backend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn migrate(&self) -> Result<Vec<AppliedMigration>> {
        // The whole run holds SQLite's write lock (BEGIN IMMEDIATE; the migrator's own
        // transactions become savepoints), so processes starting together take turns and
        // each migration is applied, and reported, once.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let before = applied_versions_on(&mut tx).await?.unwrap_or_default();
        super::migrator(&MIGRATOR)
            .run_direct(None, &mut *tx, false)
            .await?;
        tx.commit().await?;
        Ok(super::newly_applied(&MIGRATOR, &before))
    }

    async fn check_migrated(&self) -> Result<()> {
        super::check_applied(&MIGRATOR, self.applied_versions().await?)
    }

    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<i64>> {
        let _writer = self.writer.lock().await;
        let ids = if jobs.iter().any(|j| !j.parents.is_empty()) {
            // The parent check, the insert and the dependencies commit together.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let ids = insert_jobs(&mut tx, jobs).await?;
            tx.commit().await?;
            ids
        } else {
            // One INSERT statement: atomic on its own.
            let mut conn = self.pool.acquire().await?;
            insert_jobs(&mut conn, jobs).await?
        };
        drop(_writer);
        self.wake(jobs);
        Ok(ids)
    }

    async fn claim(&self, worker_id: i64, spec: &ClaimSpec, limit: usize) -> Result<Vec<Job>> {
        // `INDEXED BY`: without it SQLite reads every inactive job through the state index and
        // sorts them (70 times slower with 5,000 waiting); the ready index is already in claim
        // order.
        let _writer = self.writer.lock().await;
        if limit == 0 || spec.queues.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<JobRow> = sqlx::query_as(concat!(
            "UPDATE underling_jobs AS j SET state = 'active', started = ?1, worker_id = ?2 \
             WHERE j.id IN ( \
               SELECT c.id FROM underling_jobs c INDEXED BY underling_jobs_ready \
               WHERE c.state = 'inactive' AND c.queue IN (SELECT value FROM json_each(?3)) \
                 AND (json_array_length(?4) = 0 OR c.task IN (SELECT value FROM json_each(?4))) \
                 AND c.delayed <= ?1 AND (c.expires IS NULL OR c.expires > ?1) \
                 AND NOT EXISTS (SELECT 1 FROM underling_queues q WHERE q.name = c.queue AND q.paused) \
                 AND (NOT c.has_parents OR NOT EXISTS ( \
                   SELECT 1 FROM underling_job_deps d JOIN underling_jobs p ON p.id = d.parent_id \
                   WHERE d.child_id = c.id AND p.state <> 'finished' \
                     AND NOT (c.lax AND p.state = 'failed'))) \
               ORDER BY c.priority DESC, c.id \
               LIMIT ?5) \
             RETURNING ",
            returning_columns!()
        ))
        .bind(now_ms())
        .bind(worker_id)
        .bind(json_text(&spec.queues))
        .bind(json_text(&spec.tasks))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = rows
            .into_iter()
            .map(JobRow::into_job)
            .collect::<Result<Vec<_>>>()?;
        jobs.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        Ok(jobs)
    }

    async fn claim_by_id(&self, worker_id: i64, id: i64) -> Result<Option<Job>> {
        let _writer = self.writer.lock().await;
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "UPDATE underling_jobs AS j SET state = 'active', started = ?1, worker_id = ?2 \
             WHERE j.id = ?3 AND j.state = 'inactive' \
               AND j.delayed <= ?1 AND (j.expires IS NULL OR j.expires > ?1) \
               AND (NOT j.has_parents OR NOT EXISTS ( \
                 SELECT 1 FROM underling_job_deps d JOIN underling_jobs p ON p.id = d.parent_id \
                 WHERE d.child_id = j.id AND p.state <> 'finished' \
                   AND NOT (j.lax AND p.state = 'failed'))) \
             RETURNING ",
            returning_columns!()
        ))
        .bind(now_ms())
        .bind(worker_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn settle(&self, settles: &[Settle]) -> Result<Vec<Settled>> {
        let _writer = self.writer.lock().await;
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let input: Vec<Value> = settles
            .iter()
            .map(|s| match &s.outcome {
                Outcome::Finished(result) => {
                    serde_json::json!([s.id, s.retries, true, result.to_string(), 0])
                }
                Outcome::Failed { error, retry_delay } => {
                    serde_json::json!([s.id, s.retries, false, error.to_string(), ms(*retry_delay)])
                }
            })
            .collect();
        // One statement, so no transaction: the wake-up read after it needs no isolation.
        // The guard `retries = i.retries AND state = 'active'` makes a stale attempt a no-op.
        // MATERIALIZED makes SQLite walk the input and look jobs up by id; otherwise it scans
        // every active job and re-reads the input for each (quadratic in the batch).
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "WITH i AS MATERIALIZED ( \
               SELECT value ->> 0 AS id, value ->> 1 AS retries, value ->> 2 AS ok, \
                      value ->> 3 AS result, value ->> 4 AS delay FROM json_each(?1) \
             ) \
             UPDATE underling_jobs AS j SET \
               state = CASE WHEN i.ok THEN 'finished' \
                            WHEN j.retries + 1 < j.attempts THEN 'inactive' ELSE 'failed' END, \
               finished = ?2, \
               result = i.result, \
               retries = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts \
                              THEN j.retries + 1 ELSE j.retries END, \
               retried = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts \
                              THEN ?2 ELSE j.retried END, \
               delayed = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts \
                              THEN ?2 + i.delay ELSE j.delayed END \
             FROM i \
             WHERE j.id = i.id AND j.retries = i.retries AND j.state = 'active' \
             RETURNING id, state",
        )
        .bind(Value::Array(input).to_string())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        drop(_writer);
        let ended: Vec<i64> = rows
            .iter()
            .filter(|(_, state)| state != "inactive")
            .map(|(id, _)| *id)
            .collect();
        let woken: Vec<String> = if ended.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT DISTINCT c.queue FROM underling_job_deps d \
                 JOIN underling_jobs c ON c.id = d.child_id \
                 WHERE d.parent_id IN (SELECT value FROM json_each(?1)) AND c.state = 'inactive'",
            )
            .bind(json_text(&ended))
            .fetch_all(&self.pool)
            .await?
        };
        for queue in woken {
            let _ = self.wakeups.send(queue);
        }
        let done: std::collections::HashMap<i64, String> = rows.into_iter().collect();
        Ok(settles
            .iter()
            .map(|s| match done.get(&s.id).map(String::as_str) {
                Some("finished") => Settled::Finished,
                Some("failed") => Settled::Failed,
                Some(_) => Settled::Retried,
                None => Settled::Stale,
            })
            .collect())
    }

    async fn settle_and_claim(
        &self,
        settles: &[Settle],
        worker_id: i64,
        spec: &ClaimSpec,
        limit: usize,
    ) -> Result<(Vec<Settled>, Vec<Job>)> {
        // SQLite commits cost little: two statements.
        let settled = self.settle(settles).await?;
        let claimed = self.claim(worker_id, spec, limit).await?;
        Ok((settled, claimed))
    }

    async fn release(&self, worker_id: i64, attempts: &[(i64, i32)]) -> Result<u64> {
        if attempts.is_empty() {
            return Ok(0);
        }
        let input: Vec<Value> = attempts
            .iter()
            .map(|(id, retries)| serde_json::json!([id, retries]))
            .collect();
        let _writer = self.writer.lock().await;
        let mut queues: Vec<String> = sqlx::query_scalar(
            "UPDATE underling_jobs AS j SET state = 'inactive', started = NULL, worker_id = NULL \
             FROM (SELECT value ->> 0 AS id, value ->> 1 AS retries FROM json_each(?1)) AS i \
             WHERE j.id = i.id AND j.retries = i.retries AND j.state = 'active' \
               AND j.worker_id = ?2 \
             RETURNING queue",
        )
        .bind(Value::Array(input).to_string())
        .bind(worker_id)
        .fetch_all(&self.pool)
        .await?;
        drop(_writer);
        let released = queues.len() as u64;
        queues.sort();
        queues.dedup();
        for queue in queues {
            let _ = self.wakeups.send(queue);
        }
        Ok(released)
    }

    async fn next_due(&self, spec: &ClaimSpec) -> Result<Option<DateTime<Utc>>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT min(delayed) FROM underling_jobs \
             WHERE state = 'inactive' AND queue IN (SELECT value FROM json_each(?1)) AND delayed > ?2",
        )
        .bind(json_text(&spec.queues))
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(due.map(time))
    }

    async fn job(&self, id: i64) -> Result<Option<Job>> {
        let row: Option<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            ", (SELECT json_group_array(parent_id) FROM underling_job_deps WHERE child_id = j.id) AS parents, \
             (SELECT json_group_array(child_id) FROM underling_job_deps WHERE parent_id = j.id) AS children \
             FROM underling_jobs j WHERE j.id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn list(&self, filter: &JobFilter, limit: u64, offset: u64) -> Result<JobList> {
        let total: i64 = bind_filter!(
            sqlx::query_scalar(concat!(
                "SELECT count(*) FROM underling_jobs j WHERE ",
                filter_where!()
            )),
            filter
        )
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<JobRow> = bind_filter!(
            sqlx::query_as(concat!(
                "SELECT ",
                job_columns!(),
                ", (SELECT json_group_array(parent_id) FROM underling_job_deps WHERE child_id = j.id) AS parents, \
                 (SELECT json_group_array(child_id) FROM underling_job_deps WHERE parent_id = j.id) AS children \
                 FROM underling_jobs j WHERE ",
                filter_where!(),
                " ORDER BY j.id DESC LIMIT ?7 OFFSET ?8"
            )),
            filter
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
        let _writer = self.writer.lock().await;
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(parents) = &opts.parents {
            let missing: Option<i64> = sqlx::query_scalar(
                "SELECT p.value FROM json_each(?1) p \
                 WHERE NOT EXISTS (SELECT 1 FROM underling_jobs WHERE id = p.value) \
                 ORDER BY p.value LIMIT 1",
            )
            .bind(json_text(parents))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(missing) = missing {
                return Err(Error::ParentNotFound(missing));
            }
        }
        let queue: Option<String> = sqlx::query_scalar(
            "UPDATE underling_jobs SET state = 'inactive', retries = retries + 1, retried = ?2, \
               delayed = ?2 + ?3, queue = COALESCE(?4, queue), priority = COALESCE(?5, priority), \
               attempts = COALESCE(?6, attempts), lax = COALESCE(?7, lax), \
               expires = CASE WHEN ?8 IS NULL THEN expires ELSE ?2 + ?8 END, \
               has_parents = CASE WHEN ?9 IS NULL THEN has_parents ELSE ?9 END \
             WHERE id = ?1 RETURNING queue",
        )
        .bind(id)
        .bind(now)
        .bind(opts.delay.map(ms).unwrap_or(0))
        .bind(&opts.queue)
        .bind(opts.priority)
        .bind(opts.attempts)
        .bind(opts.lax)
        .bind(opts.expire.map(ms))
        .bind(opts.parents.as_ref().map(|p| !p.is_empty()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(queue) = queue else {
            return Err(Error::JobNotFound(id));
        };
        if let Some(parents) = &opts.parents {
            sqlx::query("DELETE FROM underling_job_deps WHERE child_id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT OR IGNORE INTO underling_job_deps (child_id, parent_id) \
                 SELECT ?1, p.value FROM json_each(?2) p",
            )
            .bind(id)
            .bind(json_text(parents))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if opts.delay.is_none() {
            let _ = self.wakeups.send(queue);
        }
        Ok(())
    }

    async fn retry_matching(&self, filter: &JobFilter) -> Result<u64> {
        let _writer = self.writer.lock().await;
        let queues: Vec<String> = bind_filter!(
            sqlx::query_scalar(concat!(
                "UPDATE underling_jobs AS j SET state = 'inactive', retries = j.retries + 1, \
                   retried = ?7, delayed = ?7 WHERE ",
                filter_where!(),
                " RETURNING queue"
            )),
            filter
        )
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        let count = queues.len() as u64;
        let mut distinct = queues;
        distinct.sort_unstable();
        distinct.dedup();
        for queue in distinct {
            let _ = self.wakeups.send(queue);
        }
        Ok(count)
    }

    async fn remove(&self, id: i64) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM underling_jobs WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        match state.as_deref() {
            None => Err(Error::JobNotFound(id)),
            Some("active") => Err(Error::JobActive(id)),
            Some(_) => {
                sqlx::query("DELETE FROM underling_jobs WHERE id = ?1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }

    async fn purge_batch(&self, filter: &JobFilter, batch: u64) -> Result<u64> {
        let _writer = self.writer.lock().await;
        let result = bind_filter!(
            sqlx::query(concat!(
                "DELETE FROM underling_jobs WHERE id IN ( \
                   SELECT j.id FROM underling_jobs j WHERE ",
                filter_where!(),
                " ORDER BY j.id LIMIT ?7)"
            )),
            filter
        )
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn note(&self, id: i64, notes: &Map<String, Value>) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT notes FROM underling_jobs WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(current) = current else {
            return Err(Error::JobNotFound(id));
        };
        let mut merged = match serde_json::from_str(&current)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (key, value) in notes {
            if value.is_null() {
                merged.remove(key);
            } else {
                merged.insert(key.clone(), value.clone());
            }
        }
        sqlx::query("UPDATE underling_jobs SET notes = ?2 WHERE id = ?1")
            .bind(id)
            .bind(Value::Object(merged).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        }
        let row: Row = sqlx::query_as(
            "SELECT \
               (SELECT count(*) FROM underling_jobs WHERE state = 'inactive') AS inactive, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'active') AS active, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'finished') AS finished, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'failed') AS failed, \
               (SELECT count(*) FROM underling_jobs WHERE state = 'inactive' AND delayed > ?1) AS delayed, \
               (SELECT count(DISTINCT worker_id) FROM underling_jobs j WHERE state = 'active' \
                  AND EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)) AS busy_workers, \
               (SELECT count(*) FROM underling_workers) AS workers, \
               (SELECT count(*) FROM underling_locks WHERE expires > ?1) AS locks, \
               COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'underling_jobs'), 0) AS enqueued",
        )
        .bind(now_ms())
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
            uptime: None,
        })
    }

    async fn history(&self) -> Result<Vec<HistoryPoint>> {
        const HOUR: i64 = 3_600_000;
        let current = now_ms() / HOUR * HOUR;
        let start = current - 23 * HOUR;
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT finished / 3600000 * 3600000 AS hour, \
               sum(state = 'finished'), sum(state = 'failed') \
             FROM underling_jobs \
             WHERE state IN ('finished', 'failed') AND finished >= ?1 \
             GROUP BY hour",
        )
        .bind(start)
        .fetch_all(&self.pool)
        .await?;
        let counts: std::collections::HashMap<i64, (i64, i64)> = rows
            .into_iter()
            .map(|(hour, finished, failed)| (hour, (finished, failed)))
            .collect();
        Ok((0..24)
            .map(|i| {
                let hour = start + i * HOUR;
                let (finished, failed) = counts.get(&hour).copied().unwrap_or((0, 0));
                HistoryPoint {
                    hour: time(hour),
                    finished: finished as u64,
                    failed: failed as u64,
                }
            })
            .collect())
    }

    async fn register_worker(&self, host: &str, pid: i32, status: &Value) -> Result<i64> {
        let _writer = self.writer.lock().await;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO underling_workers (host, pid, started, notified, status) \
             VALUES (?1, ?2, ?3, ?3, ?4) RETURNING id",
        )
        .bind(host)
        .bind(pid)
        .bind(now)
        .bind(status.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn heartbeat(&self, id: i64, status: &Value) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let result =
            sqlx::query("UPDATE underling_workers SET notified = ?2, status = ?3 WHERE id = ?1")
                .bind(id)
                .bind(now_ms())
                .bind(status.to_string())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn unregister_worker(&self, id: i64) -> Result<()> {
        let _writer = self.writer.lock().await;
        sqlx::query("DELETE FROM underling_workers WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>> {
        let rows: Vec<(i64, String, i32, i64, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT w.id, w.host, w.pid, w.started, w.notified, w.status, \
               (SELECT json_group_array(j.id) FROM underling_jobs j \
                WHERE j.state = 'active' AND j.worker_id = w.id) \
             FROM underling_workers w \
             WHERE json_array_length(?1) = 0 OR w.id IN (SELECT value FROM json_each(?1)) \
             ORDER BY w.id",
        )
        .bind(json_text(ids))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, host, pid, started, notified, status, jobs)| {
                Ok(WorkerInfo {
                    id,
                    host,
                    pid,
                    started: time(started),
                    last_heartbeat: time(notified),
                    status: serde_json::from_str(&status)?,
                    jobs: id_list(jobs.as_deref())?,
                })
            })
            .collect()
    }

    async fn broadcast(&self, command: &str, args: &Value, ids: &[i64]) -> Result<u64> {
        let _writer = self.writer.lock().await;
        let result = sqlx::query(
            "INSERT INTO underling_worker_inbox (worker_id, command, args, sent) \
             SELECT id, ?1, ?2, ?3 FROM underling_workers \
             WHERE json_array_length(?4) = 0 OR id IN (SELECT value FROM json_each(?4))",
        )
        .bind(command)
        .bind(args.to_string())
        .bind(now_ms())
        .bind(json_text(ids))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    async fn receive(&self, worker_id: i64) -> Result<Vec<Command>> {
        let _writer = self.writer.lock().await;
        let mut rows: Vec<(i64, String, String)> = sqlx::query_as(
            "DELETE FROM underling_worker_inbox WHERE worker_id = ?1 RETURNING id, command, args",
        )
        .bind(worker_id)
        .fetch_all(&self.pool)
        .await?;
        rows.sort_by_key(|r| r.0);
        rows.into_iter()
            .map(|(_, command, args)| {
                Ok(Command {
                    command,
                    args: serde_json::from_str(&args)?,
                })
            })
            .collect()
    }

    async fn lock(&self, name: &str, duration: Duration, limit: u32) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM underling_locks WHERE name = ?1 AND expires <= ?2")
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM underling_locks WHERE name = ?1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if held >= i64::from(limit) {
            return Ok(false);
        }
        let expires = now.saturating_add(ms(duration));
        if expires > now {
            sqlx::query("INSERT INTO underling_locks (name, expires) VALUES (?1, ?2)")
                .bind(name)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn unlock(&self, name: &str) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let result = sqlx::query(
            "DELETE FROM underling_locks WHERE id = ( \
               SELECT id FROM underling_locks WHERE name = ?1 AND expires > ?2 \
               ORDER BY expires LIMIT 1)",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn locks(&self, names: &[String]) -> Result<Vec<LockInfo>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, name, expires FROM underling_locks \
             WHERE expires > ?1 AND (json_array_length(?2) = 0 \
                                     OR name IN (SELECT value FROM json_each(?2))) \
             ORDER BY id",
        )
        .bind(now_ms())
        .bind(json_text(names))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, expires)| LockInfo {
                id,
                name,
                expires: time(expires),
            })
            .collect())
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        let _writer = self.writer.lock().await;
        sqlx::query(
            "INSERT INTO underling_queues (name, paused, updated) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated = excluded.updated",
        )
        .bind(queue)
        .bind(paused)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if !paused {
            let _ = self.wakeups.send(queue.to_string());
        }
        Ok(())
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let rows: Vec<(String, bool, i64, i64, i64, i64)> = sqlx::query_as(
            "WITH c AS ( \
               SELECT queue AS name, \
                 sum(state = 'inactive') AS inactive, sum(state = 'active') AS active, \
                 sum(state = 'failed') AS failed, sum(state = 'finished') AS finished \
               FROM underling_jobs GROUP BY queue \
             ), names AS (SELECT name FROM c UNION SELECT name FROM underling_queues) \
             SELECT n.name, COALESCE(q.paused, 0), COALESCE(c.inactive, 0), \
               COALESCE(c.active, 0), COALESCE(c.failed, 0), COALESCE(c.finished, 0) \
             FROM names n LEFT JOIN c ON c.name = n.name \
             LEFT JOIN underling_queues q ON q.name = n.name ORDER BY n.name",
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
        let _writer = self.writer.lock().await;
        let now = now_ms();
        let mut report = RepairReport::default();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        report.missing_workers =
            sqlx::query("DELETE FROM underling_workers WHERE notified < ?1 - ?2")
                .bind(now)
                .bind(ms(opts.missing_after))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        // Backoff as in `default_backoff`: retries⁴ + 15 seconds.
        report.abandoned_jobs = sqlx::query(
            "UPDATE underling_jobs AS j SET \
               state = CASE WHEN j.retries + 1 < j.attempts THEN 'inactive' ELSE 'failed' END, \
               finished = ?1, result = '\"Worker went away\"', \
               retries = CASE WHEN j.retries + 1 < j.attempts THEN j.retries + 1 ELSE j.retries END, \
               retried = CASE WHEN j.retries + 1 < j.attempts THEN ?1 ELSE j.retried END, \
               delayed = CASE WHEN j.retries + 1 < j.attempts \
                 THEN ?1 + (j.retries * j.retries * j.retries * j.retries + 15) * 1000 \
                 ELSE j.delayed END \
             WHERE j.state = 'active' \
               AND NOT EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        report.removed_jobs = sqlx::query(
            "DELETE FROM underling_jobs AS j \
             WHERE j.state = 'finished' AND j.finished <= ?1 - ?2 \
               AND NOT EXISTS (SELECT 1 FROM underling_job_deps d JOIN underling_jobs c \
                               ON c.id = d.child_id WHERE d.parent_id = j.id AND c.state <> 'finished')",
        )
        .bind(now)
        .bind(ms(opts.remove_after))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        report.expired_jobs =
            sqlx::query("DELETE FROM underling_jobs WHERE state = 'inactive' AND expires <= ?1")
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        report.stuck_jobs = sqlx::query(
            "UPDATE underling_jobs SET state = 'failed', finished = ?1, \
               result = '\"Job appears stuck in queue\"' \
             WHERE state = 'inactive' AND delayed <= ?1 - ?2",
        )
        .bind(now)
        .bind(ms(opts.stuck_after))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM underling_locks WHERE expires <= ?1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn subscribe(&self) -> Result<Option<broadcast::Receiver<String>>> {
        Ok(Some(self.wakeups.subscribe()))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
