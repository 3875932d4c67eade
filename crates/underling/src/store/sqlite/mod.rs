//! The SQLite store: the same behaviour as PostgreSQL, for embedded use and tests.
//!
//! SQLite has no `SKIP LOCKED`; a claim is a single `UPDATE … RETURNING` statement, which takes
//! the database's write lock before it reads, so no job is handed out twice. Statements that
//! must read then write run in `BEGIN IMMEDIATE` transactions for the same reason. Times are
//! stored as integer milliseconds since the Unix epoch and bound from Rust. Statements live in
//! `sql/`; the readiness rule is `sql/ready.sql` and the retry transition `sql/settle.sql`.
//!
//! Long because it holds the whole `Store` implementation for SQLite (most methods a few lines
//! each); the read-side queries and repair are in `operations.rs`, wake-ups in `wake.rs`, events
//! and the audit log in `events.rs`.

mod connect;
mod events;
mod leases;
mod limits;
mod operations;
mod schedules;
mod unique;
mod wake;
mod workloads;

use operations::{count_history, read_tasks};
use wake::{ready_queues, wake_after_commit};

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::events::{AuditEntry, AuditQuery, JobEvent};
use crate::job::{Job, JobList, NewJob, Outcome, Settle, Settled};
use crate::model::{AppliedMigration, Command, HistoryPoint, LockInfo, QueueInfo, RepairReport};
use crate::model::{MinutePoint, QueueDue, QueueThroughput, Stats, TaskDefaults, WorkerInfo};
use crate::queue::ConnectOptions;
use crate::store::events::{AUDIT_PRUNE_BATCH, AUDIT_TRIGGERS, EventSource, subscribe_or_start};
use crate::store::notify::{ANY_JOB, Wakeups};
use crate::store::rows::{self, JobRow, StoredTime};
use crate::store::{self, BackendKind, Pool, Store, statement};
use crate::unique::Enqueued;

/// A job row as SQLite returns it.
type SqliteJobRow = JobRow<i64, String, Option<String>>;

/// `now` in milliseconds (this process's clock when not given).
fn millis(now: store::Now) -> i64 {
    now.unwrap_or_else(Utc::now).timestamp_millis()
}

/// A duration in milliseconds.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A list as JSON text, for `json_each`.
fn json_text<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

/// The SQLite store.
pub struct SqliteStore {
    pool: SqlitePool,
    /// SQLite lets one connection write at a time. Our own writers queue here instead of
    /// meeting in SQLite's busy handler, which sleeps for milliseconds between tries.
    writer: tokio::sync::Mutex<()>,
    /// Wakes workers in this process; other processes poll.
    wakeups: Wakeups,
    /// The event source, once someone subscribed.
    events: tokio::sync::Mutex<Option<EventSource>>,
}

impl SqliteStore {
    /// Opens the database `opts.url` names.
    pub async fn connect(opts: &ConnectOptions) -> Result<Self> {
        Ok(SqliteStore {
            pool: connect::open(opts).await?,
            writer: tokio::sync::Mutex::new(()),
            wakeups: Wakeups::default(),
            events: tokio::sync::Mutex::new(None),
        })
    }

    /// Wakes the workers of the queues that got jobs without parents (due now, or later: an
    /// idle worker then learns when the next one falls due).
    fn wake_for(&self, jobs: &[NewJob]) {
        self.wakeups
            .wake_all(ready_queues(jobs).iter().map(String::as_str));
    }

    /// Settles attempts on one connection (the retry transition, `sql/settle.sql`) and wakes
    /// the workers of the children of the jobs that ended.
    async fn settle_on(
        &self,
        conn: &mut SqliteConnection,
        settles: &[Settle],
        now: store::Now,
    ) -> Result<Vec<Settled>> {
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        let input: Vec<Value> = settles
            .iter()
            .map(|s| match &s.outcome {
                Outcome::Finished(result) => {
                    json!([s.id, s.retries, true, result.to_string(), 0, false])
                }
                Outcome::Failed { error, retry_delay } => {
                    json!([
                        s.id,
                        s.retries,
                        false,
                        error.to_string(),
                        ms(*retry_delay),
                        false
                    ])
                }
                Outcome::Snoozed { delay } => {
                    json!([s.id, s.retries, false, "null", ms(*delay), true])
                }
            })
            .collect();
        let changed: Vec<(i64, String)> = sqlx::query_as(statement!("settle"))
            .bind(Value::Array(input).to_string())
            .bind(millis(now))
            .fetch_all(&mut *conn)
            .await?;
        if !changed.is_empty() {
            // History: what these settles did this hour (every change but a finish or a snooze
            // is a failed attempt).
            let finished = changed.iter().filter(|(_, s)| s == "finished").count();
            let failed = changed.iter().filter(|(_, s)| s == "failed").count();
            let snoozed = settles
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Snoozed { .. }))
                .filter(|s| changed.iter().any(|(id, _)| *id == s.id))
                .count();
            count_history(
                &mut *conn,
                millis(now),
                finished,
                failed,
                changed.len() - finished - snoozed,
            )
            .await?;
        }
        let ended: Vec<i64> = changed
            .iter()
            .filter(|(_, state)| state != "inactive")
            .map(|(id, _)| *id)
            .collect();
        if ended.len() < changed.len() {
            // Jobs were retried: idle workers learn when they fall due (once the writer lock,
            // which every caller holds, is released).
            self.wakeups.wake("*");
        }
        if !ended.is_empty() {
            let queues: Vec<String> = sqlx::query_scalar(statement!("waiting_children"))
                .bind(json_text(&ended))
                .fetch_all(&mut *conn)
                .await?;
            self.wakeups.wake_all(queues.iter().map(String::as_str));
        }
        rows::settled(settles, &changed)
    }
}

/// Inserts jobs on one connection (the caller's, or a pool's): the parent check, the jobs in
/// one statement, then their dependencies.
async fn insert_jobs(conn: &mut SqliteConnection, p: store::Enqueue<'_>) -> Result<Vec<Enqueued>> {
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
        let missing: Option<i64> = sqlx::query_scalar(statement!("missing_parent"))
            .bind(json_text(&parents))
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(missing) = missing {
            return Err(Error::ParentNotFound(missing));
        }
    }
    let now = millis(p.now);
    if jobs.iter().any(|j| j.unique().is_some()) {
        return unique::insert(conn, jobs, now).await;
    }
    let rows: Vec<Value> = jobs.iter().map(|j| Value::Array(job_row(j, now))).collect();
    let mut ids: Vec<i64> = sqlx::query_scalar(statement!("enqueue"))
        .bind(Value::Array(rows).to_string())
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    ids.sort_unstable();
    insert_deps(conn, jobs.iter().zip(&ids)).await?;
    Ok(ids.into_iter().map(Enqueued::inserted).collect())
}

/// When a job enqueued at `now` (ms) falls due, in ms.
fn due(job: &NewJob, now: i64) -> i64 {
    match (job.run_at(), job.delay()) {
        (Some(at), _) => at.timestamp_millis(),
        (None, Some(d)) => now.saturating_add(ms(d)),
        (None, None) => now,
    }
}

/// A job as the row `sql/enqueue.sql` takes: [task, args, queue, priority, attempts, delayed,
/// expires, lax, has_parents, notes, timeout_ms].
fn job_row(j: &NewJob, now: i64) -> Vec<Value> {
    vec![
        json!(j.task()),
        json!(j.args().to_string()),
        json!(j.queue()),
        json!(j.priority()),
        json!(j.attempts()),
        json!(due(j, now)),
        json!(j.expire().map(|e| now.saturating_add(ms(e)))),
        json!(j.lax()),
        json!(!j.parents().is_empty()),
        json!(Value::Object(j.notes().clone()).to_string()),
        json!(j.timeout_ms()),
    ]
}

/// Writes the dependencies of newly inserted jobs (job, its id).
async fn insert_deps<'a>(
    conn: &mut SqliteConnection,
    inserted: impl Iterator<Item = (&'a NewJob, &'a i64)>,
) -> Result<()> {
    let deps: Vec<(i64, i64)> = inserted
        .flat_map(|(j, id)| j.parents().iter().map(move |p| (*id, *p)))
        .collect();
    if !deps.is_empty() {
        sqlx::query(statement!("enqueue_deps"))
            .bind(json_text(&deps))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn pool(&self) -> Pool {
        Pool::Sqlite(self.pool.clone())
    }

    async fn migrate(&self) -> Result<Vec<AppliedMigration>> {
        connect::migrate(&self.pool).await
    }

    async fn check_migrated(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        store::migrate::check_applied(
            &connect::MIGRATOR,
            connect::applied_versions(&mut conn).await?,
        )
    }

    async fn enqueue(&self, p: store::Enqueue<'_>) -> Result<Vec<Enqueued>> {
        let writer = self.writer.lock().await;
        let ids = if p
            .jobs
            .iter()
            .any(|j| !j.parents().is_empty() || j.unique().is_some())
        {
            // The parent check (or the unique keys' holders), the insert and the
            // dependencies commit together.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let ids = insert_jobs(&mut tx, p).await?;
            tx.commit().await?;
            ids
        } else {
            // One INSERT statement: atomic on its own.
            let mut conn = self.pool.acquire().await?;
            insert_jobs(&mut conn, p).await?
        };
        drop(writer);
        self.wake_for(p.jobs);
        Ok(ids)
    }

    async fn enqueue_on_sqlite(
        &self,
        conn: &mut SqliteConnection,
        p: store::Enqueue<'_>,
    ) -> Result<Vec<Enqueued>> {
        // Workers in this process are woken once the caller's transaction commits (other
        // processes poll). The hooks go on before the insert: on a connection outside any
        // transaction the insert commits by itself and fires them.
        let queues = ready_queues(p.jobs);
        if !queues.is_empty() {
            wake_after_commit(conn, queues, self.wakeups.clone()).await?;
        }
        if p.jobs.iter().any(|j| j.unique().is_some()) {
            // A savepoint inside the caller's transaction (or a transaction of its own): a
            // conflict under OnConflict::Error undoes what the batch wrote before it.
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let enqueued = insert_jobs(&mut tx, p).await?;
            tx.commit().await?;
            return Ok(enqueued);
        }
        insert_jobs(conn, p).await
    }

    async fn cycle(&self, p: store::Cycle<'_>) -> Result<store::CycleReply> {
        // SQLite commits cost little: a statement for the settles and one for the claim.
        let _writer = self.writer.lock().await;
        let mut conn = self.pool.acquire().await?;
        let settled = self.settle_on(&mut conn, p.settles, p.now).await?;
        // Each settle statement commits on its own: waiters may read the jobs now.
        for (s, outcome) in p.settles.iter().zip(&settled) {
            if matches!(outcome, Settled::Finished | Settled::Failed) {
                self.wakeups.settled(s.id);
            }
        }
        let claimed = match p.claim {
            Some(claim) if claim.limit > 0 && !claim.spec.queues.is_empty() => {
                // Delayed jobs that fell due move into the ready index the claim walks; both
                // statements take the same time as now.
                let now = millis(p.now);
                sqlx::query(statement!("promote"))
                    .bind(now)
                    .bind(json_text(&claim.spec.queues))
                    .execute(&mut *conn)
                    .await?;
                let rules = limits::claim_rules(&mut conn, &claim.spec.queues).await?;
                let mut jobs = if let Some(rules) = rules {
                    // Other processes write the file too: the counts must not change until
                    // the picks are claimed.
                    let mut tx =
                        sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                    let jobs = limits::claim_limited(
                        &mut tx,
                        &rules,
                        now,
                        Some(claim.worker_id),
                        &claim.spec.queues,
                        &claim.spec.tasks,
                        claim.limit,
                    )
                    .await?;
                    tx.commit().await?;
                    jobs
                } else {
                    let rows: Vec<SqliteJobRow> =
                        sqlx::query_as(statement!("claim", "ready", "returning_columns"))
                            .bind(now)
                            .bind(claim.worker_id)
                            .bind(json_text(&claim.spec.queues))
                            .bind(json_text(&claim.spec.tasks))
                            .bind(i64::try_from(claim.limit).unwrap_or(i64::MAX))
                            .fetch_all(&mut *conn)
                            .await?;
                    rows::into_jobs(rows)?
                };
                store::claim_order(&mut jobs);
                jobs
            }
            _ => Vec::new(),
        };
        Ok(store::CycleReply { settled, claimed })
    }

    async fn claim_by_id(&self, p: store::ClaimById) -> Result<Option<Job>> {
        let _writer = self.writer.lock().await;
        let row: Option<SqliteJobRow> =
            sqlx::query_as(statement!("claim_by_id", "ready", "returning_columns"))
                .bind(millis(p.now))
                .bind(p.worker_id)
                .bind(p.id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(JobRow::into_job).transpose()
    }

    async fn release(&self, p: store::Release<'_>) -> Result<u64> {
        if p.attempts.is_empty() {
            return Ok(0);
        }
        let input: Vec<Value> = p
            .attempts
            .iter()
            .map(|a| json!([a.id, a.retries]))
            .collect();
        let writer = self.writer.lock().await;
        let queues: Vec<String> = sqlx::query_scalar(statement!("release"))
            .bind(Value::Array(input).to_string())
            .bind(p.worker_id)
            .fetch_all(&self.pool)
            .await?;
        drop(writer);
        self.wakeups.wake_all(queues.iter().map(String::as_str));
        Ok(queues.len() as u64)
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
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, retries)| store::Attempt { id, retries })
            .collect())
    }

    async fn next_due(&self, p: store::NextDue<'_>) -> Result<Option<DateTime<Utc>>> {
        let due: Option<i64> = sqlx::query_scalar(statement!("next_due"))
            .bind(json_text(p.queues))
            .bind(millis(p.now))
            .fetch_one(&self.pool)
            .await?;
        Ok(due.map(StoredTime::into_time))
    }

    async fn job(&self, id: i64, now: store::Now) -> Result<Option<Job>> {
        let row: Option<SqliteJobRow> = sqlx::query_as(statement!("job", "job_columns"))
            .bind(id)
            .bind(millis(now))
            .fetch_optional(&self.pool)
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
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let state: Option<String> = sqlx::query_scalar(statement!("job_state"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        match state.as_deref() {
            None => Err(Error::JobNotFound(id)),
            Some("active") => Err(Error::JobActive(id)),
            Some(_) => {
                sqlx::query(statement!("remove"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.wakeups.settled(id);
                Ok(())
            }
        }
    }

    async fn purge(&self, p: store::Purge<'_>) -> Result<store::Purged> {
        let purged = self.purge_jobs(p).await?;
        if purged.removed > 0 {
            self.wakeups.settled(ANY_JOB);
        }
        Ok(purged)
    }

    async fn note(&self, p: store::Note<'_>) -> Result<()> {
        self.merge_notes(p).await
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
                .bind(millis(now) / 60_000 * 60_000)
                .fetch_all(&self.pool)
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
        let _writer = self.writer.lock().await;
        Ok(sqlx::query_scalar(statement!("register_worker"))
            .bind(p.host)
            .bind(p.pid)
            .bind(millis(p.now))
            .bind(p.status.to_string())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn heartbeat(&self, p: store::Heartbeat<'_>) -> Result<store::Beat> {
        let _writer = self.writer.lock().await;
        let now = millis(p.now);
        let recorded = sqlx::query(statement!("heartbeat"))
            .bind(p.id)
            .bind(now)
            .bind(p.status.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0;
        let others_missing: bool = sqlx::query_scalar(statement!("others_missing"))
            .bind(p.id)
            .bind(now)
            .bind(ms(p.missing_after))
            .fetch_one(&self.pool)
            .await?;
        Ok(store::Beat {
            recorded,
            others_missing,
        })
    }

    async fn publish_tasks(&self, p: store::PublishTasks<'_>) -> Result<()> {
        let rows: Vec<Value> = p
            .tasks
            .iter()
            .map(|t| json!([t.name, t.queue, t.priority, t.attempts, t.timeout_ms]))
            .collect();
        let _writer = self.writer.lock().await;
        sqlx::query(statement!("publish_tasks"))
            .bind(Value::Array(rows).to_string())
            .bind(millis(p.now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn tasks(&self) -> Result<Vec<TaskDefaults>> {
        let mut conn = self.pool.acquire().await?;
        read_tasks(&mut conn).await
    }

    async fn tasks_on_sqlite(&self, conn: &mut SqliteConnection) -> Result<Vec<TaskDefaults>> {
        read_tasks(conn).await
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
        let _writer = self.writer.lock().await;
        sqlx::query(statement!("unregister_worker"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>> {
        self.read_workers(ids).await
    }

    async fn broadcast(&self, p: store::Broadcast<'_>) -> Result<u64> {
        let _writer = self.writer.lock().await;
        let result = sqlx::query(statement!("broadcast"))
            .bind(p.command)
            .bind(p.args.to_string())
            .bind(millis(p.now))
            .bind(json_text(p.ids))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn receive(&self, worker_id: i64) -> Result<Vec<Command>> {
        let _writer = self.writer.lock().await;
        let mut rows: Vec<(i64, String, String)> = sqlx::query_as(statement!("receive"))
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

    async fn lock(&self, p: store::Lock<'_>) -> Result<bool> {
        self.take_lock(p).await
    }

    async fn unlock(&self, p: store::Unlock<'_>) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let result = sqlx::query(statement!("unlock"))
            .bind(p.name)
            .bind(millis(p.now))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn locks(&self, p: store::Locks<'_>) -> Result<Vec<LockInfo>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(statement!("locks"))
            .bind(millis(p.now))
            .bind(json_text(p.names))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, expires)| LockInfo {
                id,
                name,
                expires: expires.into_time(),
            })
            .collect())
    }

    async fn set_queue_paused(&self, p: store::PauseQueue<'_>) -> Result<()> {
        let writer = self.writer.lock().await;
        sqlx::query(statement!("pause_queue"))
            .bind(p.queue)
            .bind(p.paused)
            .bind(millis(p.now))
            .execute(&self.pool)
            .await?;
        drop(writer);
        if !p.paused {
            self.wakeups.wake(p.queue);
        }
        Ok(())
    }

    async fn limited(&self, queues: &[String]) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        Ok(limits::claim_rules(&mut conn, queues).await?.is_some())
    }

    async fn set_queue_fifo(&self, p: store::FifoQueue<'_>) -> Result<()> {
        let writer = self.writer.lock().await;
        sqlx::query(statement!("fifo_queue"))
            .bind(p.queue)
            .bind(p.fifo)
            .bind(millis(p.now))
            .execute(&self.pool)
            .await?;
        drop(writer);
        self.wakeups.wake(p.queue);
        Ok(())
    }

    async fn set_limit(&self, limit: &crate::Limit) -> Result<()> {
        self.write_limit(limit).await
    }

    async fn limits(&self) -> Result<Vec<crate::Limit>> {
        self.all_limits().await
    }

    async fn remove_limit(&self, scope: &crate::LimitScope) -> Result<bool> {
        self.delete_limit(scope).await
    }

    async fn queues(&self, now: store::Now) -> Result<Vec<QueueInfo>> {
        self.read_queues(now).await
    }

    async fn repair(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        let report = self.run_repair(p).await?;
        // Rescued jobs may have failed for good, and old or expired ones were removed.
        if report != RepairReport::default() {
            self.wakeups.settled(ANY_JOB);
        }
        Ok(report)
    }

    async fn rescue(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        self.run_rescue(p).await
    }

    async fn subscribe(&self) -> Result<Option<broadcast::Receiver<String>>> {
        Ok(Some(self.wakeups.subscribe()))
    }

    async fn watch(&self, _id: i64) -> Result<Option<broadcast::Receiver<i64>>> {
        // Settles in this process are pushed; other processes' are found by polling.
        Ok(Some(self.wakeups.subscribe_settled()))
    }

    async fn oldest_due(&self, now: store::Now) -> Result<Vec<QueueDue>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(statement!("oldest_due"))
            .bind(millis(now))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(queue, oldest_due)| QueueDue {
                queue,
                oldest_due: oldest_due.into_time(),
            })
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
        subscribe_or_start(&self.events, events::start(self.pool.clone())).await
    }

    async fn set_audit(&self, on: bool) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(events::triggers("underling_audit", on)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_enabled(&self) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let found = events::count_triggers(&mut conn, &AUDIT_TRIGGERS).await?;
        Ok(found == AUDIT_TRIGGERS.len() as i64)
    }

    async fn audit(&self, p: &AuditQuery) -> Result<Vec<AuditEntry>> {
        events::audit(&self.pool, p.job_id, p.before, p.limit).await
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut removed = 0;
        loop {
            // The write lock is taken per batch, so that workers write between batches.
            let done = {
                let _writer = self.writer.lock().await;
                events::prune_audit_batch(&self.pool, before).await?
            };
            removed += done;
            if done < AUDIT_PRUNE_BATCH as u64 {
                return Ok(removed);
            }
        }
    }

    async fn close(&self) {
        if let Some(source) = self.events.lock().await.take() {
            events::stop(source, &self.pool).await;
        }
        self.pool.close().await;
    }
}
