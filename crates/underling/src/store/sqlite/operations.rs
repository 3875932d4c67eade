//! The SQLite store's operations over job filters, its read models, locks and repair.

use serde_json::{Map, Value};
use sqlx::sqlite::SqliteConnection;

use super::{SqliteJobRow, SqliteStore, json_text, millis, ms};
use crate::error::{Error, Result};
use crate::job::JobFilter;
use crate::job::JobList;
use crate::model::{
    HistoryPoint, MinutePoint, QueueInfo, RepairReport, Stats, TaskDefaults, WorkerInfo,
};
use crate::store::rows::{
    self, AbandonedRow, QueueRow, StatsRow, StoredIds, StoredJson, StoredTime, WENT_AWAY, count,
};
use crate::store::{self, statement};

/// Binds a [`JobFilter`] as `?1..?6` (see `sql/filter.sql`).
macro_rules! bind_filter {
    ($query:expr, $f:expr) => {{
        let f: &JobFilter = $f;
        // One list for both: the filter tells the derived names from the stored ones.
        let states: Vec<&str> = f
            .states
            .iter()
            .map(|s| s.as_str())
            .chain(f.inactive.iter().map(|s| s.as_str()))
            .collect();
        $query
            .bind(json_text(&f.ids))
            .bind(json_text(&states))
            .bind(json_text(&f.queues))
            .bind(json_text(&f.tasks))
            .bind(json_text(&f.notes))
            .bind(f.finished_before.map(|t| t.timestamp_millis()))
    }};
}

impl SqliteStore {
    pub(super) async fn list_jobs(&self, p: store::ListJobs<'_>) -> Result<JobList> {
        let total: i64 = if p.filter.by_state_and_queue_only() {
            let states: Vec<&str> = p.filter.states.iter().map(|s| s.as_str()).collect();
            sqlx::query_scalar(statement!("count_states", "counts"))
                .bind(millis(p.now))
                .bind(json_text(&states))
                .bind(json_text(&p.filter.queues))
                .fetch_one(&self.pool)
                .await?
        } else {
            bind_filter!(sqlx::query_scalar(statement!("count", "filter")), p.filter)
                .bind(millis(p.now))
                .fetch_one(&self.pool)
                .await?
        };
        let rows: Vec<SqliteJobRow> = bind_filter!(
            sqlx::query_as(statement!("list", "job_columns", "filter")),
            p.filter
        )
        .bind(i64::try_from(p.limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(p.offset).unwrap_or(i64::MAX))
        .bind(millis(p.now))
        .bind(p.before)
        .fetch_all(&self.pool)
        .await?;
        Ok(JobList {
            jobs: rows::into_jobs(rows)?,
            total: count(total),
        })
    }

    pub(super) async fn retry_jobs(&self, p: store::Retry<'_>) -> Result<u64> {
        let changes = p.changes;
        let now = millis(p.now);
        let writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(parents) = &changes.parents {
            let missing: Option<i64> = sqlx::query_scalar(statement!("missing_parent"))
                .bind(json_text(parents))
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(missing) = missing {
                return Err(Error::ParentNotFound(missing));
            }
        }
        let retried: Vec<(i64, String, i64)> =
            bind_filter!(sqlx::query_as(statement!("retry", "filter")), p.filter)
                .bind(now)
                .bind(changes.delay.map(ms).unwrap_or(0))
                .bind(&changes.queue)
                .bind(changes.priority)
                .bind(changes.attempts)
                .bind(changes.lax)
                .bind(changes.expire.map(ms))
                .bind(changes.parents.as_ref().map(|p| !p.is_empty()))
                .fetch_all(&mut *tx)
                .await?;
        if let Some(parents) = &changes.parents {
            let ids: Vec<i64> = retried.iter().map(|(id, _, _)| *id).collect();
            sqlx::query(statement!("replace_parents"))
                .bind(json_text(&ids))
                .execute(&mut *tx)
                .await?;
            sqlx::query(statement!("add_parents"))
                .bind(json_text(&ids))
                .bind(json_text(parents))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        drop(writer);
        self.wakeups.wake_all(
            retried
                .iter()
                .filter(|(_, _, delayed)| *delayed <= now)
                .map(|(_, queue, _)| queue.as_str()),
        );
        Ok(retried.len() as u64)
    }

    pub(super) async fn purge_jobs(&self, p: store::Purge<'_>) -> Result<store::Purged> {
        let _writer = self.writer.lock().await;
        let ids: Vec<i64> =
            bind_filter!(sqlx::query_scalar(statement!("purge", "filter")), p.filter)
                .bind(i64::try_from(p.batch).unwrap_or(i64::MAX))
                .bind(p.after)
                .fetch_all(&self.pool)
                .await?;
        Ok(store::Purged {
            removed: ids.len() as u64,
            last_id: ids.into_iter().max(),
        })
    }

    pub(super) async fn merge_notes(&self, p: store::Note<'_>) -> Result<()> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<String> = sqlx::query_scalar(statement!("notes"))
            .bind(p.id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Err(Error::JobNotFound(p.id));
        };
        let mut merged = match current.into_json()? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (key, value) in p.notes {
            if value.is_null() {
                merged.remove(key);
            } else {
                merged.insert(key.clone(), value.clone());
            }
        }
        sqlx::query(statement!("set_notes"))
            .bind(p.id)
            .bind(Value::Object(merged).to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn read_stats(&self, now: store::Now) -> Result<Stats> {
        let row: StatsRow = sqlx::query_as(statement!("stats", "counts"))
            .bind(millis(now))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.into_stats())
    }

    pub(super) async fn read_history(&self, now: store::Now) -> Result<Vec<HistoryPoint>> {
        const HOUR: i64 = 3_600_000;
        let current = millis(now) / HOUR * HOUR;
        let start = current - 23 * HOUR;
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(statement!("history"))
            .bind(start)
            .fetch_all(&self.pool)
            .await?;
        let counts: std::collections::HashMap<i64, (i64, i64, i64)> = rows
            .into_iter()
            .map(|(hour, finished, failed, attempts)| (hour, (finished, failed, attempts)))
            .collect();
        Ok((0..24)
            .map(|i| {
                let hour = start + i * HOUR;
                let (finished, failed, attempts) = counts.get(&hour).copied().unwrap_or((0, 0, 0));
                HistoryPoint {
                    hour: hour.into_time(),
                    finished: count(finished),
                    failed: count(failed),
                    failed_attempts: count(attempts),
                }
            })
            .collect())
    }

    pub(super) async fn read_history_minutes(&self, now: store::Now) -> Result<Vec<MinutePoint>> {
        const MINUTE: i64 = 60_000;
        let current = millis(now) / MINUTE * MINUTE;
        let start = current - 59 * MINUTE;
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(statement!("history_minutes"))
            .bind(start)
            .fetch_all(&self.pool)
            .await?;
        let counts: std::collections::HashMap<i64, (i64, i64, i64)> = rows
            .into_iter()
            .map(|(minute, finished, failed, attempts)| (minute, (finished, failed, attempts)))
            .collect();
        Ok((0..60)
            .map(|i| {
                let minute = start + i * MINUTE;
                let (finished, failed, attempts) =
                    counts.get(&minute).copied().unwrap_or((0, 0, 0));
                MinutePoint {
                    minute: minute.into_time(),
                    finished: count(finished),
                    failed: count(failed),
                    failed_attempts: count(attempts),
                }
            })
            .collect())
    }

    pub(super) async fn read_workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>> {
        type Row = (i64, String, i32, i64, i64, String, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(statement!("workers"))
            .bind(json_text(ids))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(id, host, pid, started, notified, status, jobs)| {
                Ok(WorkerInfo {
                    id,
                    host,
                    pid,
                    started: started.into_time(),
                    last_heartbeat: notified.into_time(),
                    status: status.into_json()?,
                    jobs: jobs.into_ids()?,
                })
            })
            .collect()
    }

    pub(super) async fn take_lock(&self, p: store::Lock<'_>) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let now = millis(p.now);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(statement!("lock_expire"))
            .bind(p.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let held: i64 = sqlx::query_scalar(statement!("lock_count"))
            .bind(p.name)
            .fetch_one(&mut *tx)
            .await?;
        if held >= i64::from(p.limit) {
            return Ok(false);
        }
        let expires = now.saturating_add(ms(p.duration));
        if expires > now {
            sqlx::query(statement!("lock_take"))
                .bind(p.name)
                .bind(expires)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn read_queues(&self, now: store::Now) -> Result<Vec<QueueInfo>> {
        let rows: Vec<QueueRow> = sqlx::query_as(statement!("queues", "counts"))
            .bind(millis(now))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(rows::queue_info).collect())
    }

    pub(super) async fn run_repair(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        let opts = p.options;
        // One time for every step, so that each batch has the same cut-off.
        let now = millis(p.now);
        let p = store::Repair {
            now: Some(now.into_time()),
            ..p
        };
        // Missing workers go, and their attempts are settled as failed through the one retry
        // transition (`sql/settle.sql`), each with its task's backoff, in one write transaction.
        let mut report = self.run_rescue(p).await?;
        report.timed_out_jobs = self.fail_timed_out(p, now).await?;
        // Leases that ran out count as abandoned attempts too.
        report.abandoned_jobs += self
            .expire(store::ExpireLeases {
                backoff: p.backoff,
                now: p.now,
            })
            .await?;
        // Then old and expired jobs, a batch per statement, each taking the writer on its own,
        // so that claims and settles get in between.
        self.remove_old(p, now, &mut report).await?;
        self.remove_expired(p, now, &mut report).await?;
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        report.stuck_jobs = sqlx::query(statement!("repair_stuck"))
            .bind(now)
            .bind(ms(opts.stuck_after))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if report.stuck_jobs > 0 {
            let stuck = usize::try_from(report.stuck_jobs).unwrap_or(usize::MAX);
            count_history(&mut tx, now, 0, stuck, 0).await?;
        }
        sqlx::query(statement!("repair_locks"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(_writer);
        // Event triggers whose subscribers all died without giving their leases back.
        super::events::give_back(&self.pool, None).await?;
        Ok(report)
    }

    /// Fails the attempts of active jobs past their timeout plus the grace, through the retry
    /// transition, in one write transaction.
    async fn fail_timed_out(&self, p: store::Repair<'_>, now: i64) -> Result<u64> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let timed_out: Vec<rows::TimedOutRow> = sqlx::query_as(statement!("repair_timed_out"))
            .bind(now)
            .bind(ms(p.options.timeout_grace))
            .fetch_all(&mut *tx)
            .await?;
        if timed_out.is_empty() {
            return Ok(0);
        }
        let settles = rows::timed_out_settles(&timed_out, p.options.timeout_grace, p.backoff);
        let settled = self
            .settle_on(&mut tx, &settles, Some(now.into_time()))
            .await?;
        tx.commit().await?;
        Ok(rows::applied(&settled))
    }

    /// Removes old finished jobs, a batch per statement, walking the index of finished jobs
    /// from where the last batch stopped.
    async fn remove_old(
        &self,
        p: store::Repair<'_>,
        now: i64,
        report: &mut RepairReport,
    ) -> Result<()> {
        let batch = i64::try_from(p.batch()).unwrap_or(i64::MAX);
        let mut after = (i64::MIN, 0_i64);
        loop {
            let removed: Vec<(i64, i64)> = {
                let _writer = self.writer.lock().await;
                sqlx::query_as(statement!("repair_old"))
                    .bind(now)
                    .bind(ms(p.options.remove_after))
                    .bind(batch)
                    .bind(after.0)
                    .bind(after.1)
                    .fetch_all(&self.pool)
                    .await?
            };
            report.removed_jobs += removed.len() as u64;
            if !removed.is_empty() {
                p.report(report);
            }
            let last = removed.iter().map(|&(id, finished)| (finished, id)).max();
            match last {
                Some(last) if i64::try_from(removed.len()).unwrap_or(i64::MAX) >= batch => {
                    after = last
                }
                _ => return Ok(()),
            }
        }
    }

    /// Removes expired jobs, a batch per statement, in id order.
    async fn remove_expired(
        &self,
        p: store::Repair<'_>,
        now: i64,
        report: &mut RepairReport,
    ) -> Result<()> {
        let batch = i64::try_from(p.batch()).unwrap_or(i64::MAX);
        let mut after = 0_i64;
        loop {
            let removed: Vec<i64> = {
                let _writer = self.writer.lock().await;
                sqlx::query_scalar(statement!("repair_expired"))
                    .bind(now)
                    .bind(after)
                    .bind(batch)
                    .fetch_all(&self.pool)
                    .await?
            };
            report.expired_jobs += removed.len() as u64;
            if !removed.is_empty() {
                p.report(report);
            }
            match removed.iter().max() {
                Some(&last) if i64::try_from(removed.len()).unwrap_or(i64::MAX) >= batch => {
                    after = last
                }
                _ => return Ok(()),
            }
        }
    }

    /// The rescue part of repair alone, in its own write transaction.
    pub(super) async fn run_rescue(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let report = self.rescue_on(&mut tx, p).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Removes missing workers and settles the attempts of workers that are gone as failed.
    async fn rescue_on(
        &self,
        conn: &mut SqliteConnection,
        p: store::Repair<'_>,
    ) -> Result<RepairReport> {
        let now = millis(p.now);
        let at = Some(now.into_time());
        let missing_workers = sqlx::query(statement!("repair_missing_workers"))
            .bind(now)
            .bind(ms(p.options.missing_after))
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let abandoned: Vec<AbandonedRow> = sqlx::query_as(statement!("repair_abandoned"))
            .fetch_all(&mut *conn)
            .await?;
        let settles = rows::rescue_settles(&abandoned, p.backoff, WENT_AWAY);
        let settled = self.settle_on(&mut *conn, &settles, at).await?;
        Ok(RepairReport {
            missing_workers,
            abandoned_jobs: rows::applied(&settled),
            ..RepairReport::default()
        })
    }
}

/// Adds to the history of the hour of `now` (ms).
pub(super) async fn count_history(
    conn: &mut SqliteConnection,
    now: i64,
    finished: usize,
    failed: usize,
    failed_attempts: usize,
) -> Result<()> {
    let n = |count: usize| i64::try_from(count).unwrap_or(i64::MAX);
    sqlx::query(statement!("count_history"))
        .bind(now)
        .bind(n(finished))
        .bind(n(failed))
        .bind(n(failed_attempts))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The published task defaults, read on `conn` (the pool's or the caller's).
pub(super) async fn read_tasks(conn: &mut SqliteConnection) -> Result<Vec<TaskDefaults>> {
    type Row = (
        String,
        Option<String>,
        Option<i32>,
        Option<i32>,
        Option<i64>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(statement!("tasks"))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(name, queue, priority, attempts, timeout, published)| {
            rows::task_defaults(
                name,
                queue,
                priority,
                attempts,
                timeout,
                published.into_time(),
            )
        })
        .collect())
}
