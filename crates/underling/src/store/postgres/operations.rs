//! The PostgreSQL store's operations over job filters, its read models and its repair.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{PgJobRow, PostgresStore, run_cycle, secs};
use crate::error::Result;
use crate::job::{JobFilter, JobList, Settled};
use crate::model::{HistoryPoint, MinutePoint, QueueInfo, RepairReport, Stats, WorkerInfo};
use crate::store::rows::{self, AbandonedRow, QueueRow, StatsRow, WENT_AWAY, count};
use crate::store::{self, Store, statement};

/// How many batches of expired jobs one read of their ids covers: each read walks every
/// inactive job, so it is done rarely; each removal is one batch.
const EXPIRED_WINDOW: usize = 100;

/// A job filter bound as `$1..$6` (see `sql/filter.sql`).
struct FilterArgs {
    ids: Vec<i64>,
    states: Vec<&'static str>,
    queues: Vec<String>,
    tasks: Vec<String>,
    notes: Vec<String>,
    finished_before: Option<DateTime<Utc>>,
}

impl FilterArgs {
    fn new(f: &JobFilter) -> Self {
        FilterArgs {
            ids: f.ids.clone(),
            // One list for both: the filter tells the derived names from the stored ones.
            states: f
                .states
                .iter()
                .map(|s| s.as_str())
                .chain(f.inactive.iter().map(|s| s.as_str()))
                .collect(),
            queues: f.queues.clone(),
            tasks: f.tasks.clone(),
            notes: f.notes.clone(),
            finished_before: f.finished_before,
        }
    }
}

/// Binds a [`FilterArgs`] as `$1..$6` to any kind of query.
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

impl PostgresStore {
    pub(super) async fn list_jobs(&self, p: store::ListJobs<'_>) -> Result<JobList> {
        let args = FilterArgs::new(p.filter);
        let total: i64 = if p.filter.by_state_and_queue_only() {
            sqlx::query_scalar(statement!("count_states", "counts"))
                .bind(p.now)
                .bind(&args.states)
                .bind(&args.queues)
                .fetch_one(&self.db)
                .await?
        } else {
            bind_filter!(sqlx::query_scalar(statement!("count", "filter")), args)
                .bind(p.now)
                .fetch_one(&self.db)
                .await?
        };
        let rows: Vec<PgJobRow> = bind_filter!(
            sqlx::query_as(statement!("list", "job_columns", "filter")),
            args
        )
        .bind(i64::try_from(p.limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(p.offset).unwrap_or(i64::MAX))
        .bind(p.now)
        .bind(p.before)
        .fetch_all(&self.db)
        .await?;
        Ok(JobList {
            jobs: rows::into_jobs(rows)?,
            total: count(total),
        })
    }

    pub(super) async fn retry_jobs(&self, p: store::Retry<'_>) -> Result<u64> {
        let args = FilterArgs::new(p.filter);
        let changes = p.changes;
        let mut tx = self.pool.begin().await?;
        if let Some(parents) = &changes.parents {
            let missing: Option<i64> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(self.named.missing_parent.clone()))
                    .bind(parents)
                    .fetch_one(&mut *tx)
                    .await?;
            if let Some(missing) = missing {
                return Err(crate::Error::ParentNotFound(missing));
            }
        }
        let retried: i64 = bind_filter!(sqlx::query_scalar(statement!("retry", "filter")), args)
            .bind(changes.delay.map(secs))
            .bind(&changes.queue)
            .bind(changes.priority)
            .bind(changes.attempts)
            .bind(changes.lax)
            .bind(changes.expire.map(secs))
            .bind(&changes.parents)
            .bind(&self.channel)
            .bind(p.now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(count(retried))
    }

    pub(super) async fn purge_jobs(&self, p: store::Purge<'_>) -> Result<store::Purged> {
        let args = FilterArgs::new(p.filter);
        let (removed, last_id): (i64, Option<i64>) =
            bind_filter!(sqlx::query_as(statement!("purge", "filter")), args)
                .bind(i64::try_from(p.batch).unwrap_or(i64::MAX))
                .bind(p.after)
                .fetch_one(&self.db)
                .await?;
        Ok(store::Purged {
            removed: count(removed),
            last_id,
        })
    }

    pub(super) async fn read_stats(&self, now: store::Now) -> Result<Stats> {
        // Reading the deltas costs more than folding them once.
        self.compact_counts().await?;
        let row: StatsRow = sqlx::query_as(statement!("stats", "counts"))
            .bind(now)
            .fetch_one(&self.db)
            .await?;
        Ok(row.into_stats())
    }

    pub(super) async fn read_history(&self, now: store::Now) -> Result<Vec<HistoryPoint>> {
        let rows: Vec<(DateTime<Utc>, i64, i64, i64)> = sqlx::query_as(statement!("history"))
            .bind(now)
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(hour, finished, failed, attempts)| HistoryPoint {
                hour,
                finished: count(finished),
                failed: count(failed),
                failed_attempts: count(attempts),
            })
            .collect())
    }

    pub(super) async fn read_history_minutes(&self, now: store::Now) -> Result<Vec<MinutePoint>> {
        let rows: Vec<(DateTime<Utc>, i64, i64, i64)> =
            sqlx::query_as(statement!("history_minutes"))
                .bind(now)
                .fetch_all(&self.db)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(minute, finished, failed, attempts)| MinutePoint {
                minute,
                finished: count(finished),
                failed: count(failed),
                failed_attempts: count(attempts),
            })
            .collect())
    }

    pub(super) async fn read_workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>> {
        type Row = (
            i64,
            String,
            i32,
            DateTime<Utc>,
            DateTime<Utc>,
            Value,
            Vec<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(statement!("workers"))
            .bind(ids)
            .fetch_all(&self.db)
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

    pub(super) async fn read_queues(&self, now: store::Now) -> Result<Vec<QueueInfo>> {
        // Reading the deltas costs more than folding them once.
        self.compact_counts().await?;
        let rows: Vec<QueueRow> = sqlx::query_as(statement!("queues", "counts"))
            .bind(now)
            .fetch_all(&self.db)
            .await?;
        Ok(rows.into_iter().map(rows::queue_info).collect())
    }

    pub(super) async fn run_repair(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        let opts = p.options;
        let mut report = self.run_rescue(p).await?;
        report.timed_out_jobs = self.fail_timed_out(p).await?;
        // Leases that ran out count as abandoned attempts too.
        report.abandoned_jobs += self
            .expire(store::ExpireLeases {
                backoff: p.backoff,
                now: p.now,
            })
            .await?;
        self.remove_old(p, &mut report).await?;
        self.remove_expired(p, &mut report).await?;
        let stuck: i64 = sqlx::query_scalar(statement!("repair_stuck"))
            .bind(secs(opts.stuck_after))
            .bind(p.now)
            .fetch_one(&self.db)
            .await?;
        report.stuck_jobs = count(stuck);
        sqlx::query(statement!("repair_locks"))
            .bind(p.now)
            .execute(&self.db)
            .await?;
        // Event triggers whose subscribers all died without giving their leases back.
        super::events::give_back(&self.pool, None).await?;
        self.compact_counts().await?;
        Ok(report)
    }

    /// Fails the attempts of active jobs past their timeout plus the grace, in one transaction
    /// that holds their rows from the moment they are found, through the retry transition.
    async fn fail_timed_out(&self, p: store::Repair<'_>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let timed_out: Vec<rows::TimedOutRow> = sqlx::query_as(statement!("repair_timed_out"))
            .bind(secs(p.options.timeout_grace))
            .bind(p.now)
            .fetch_all(&mut *tx)
            .await?;
        if timed_out.is_empty() {
            return Ok(0);
        }
        let settles = rows::timed_out_settles(&timed_out, p.options.timeout_grace, p.backoff);
        let cycle = store::Cycle {
            settles: &settles,
            claim: None,
            now: p.now,
        };
        let reply = run_cycle(&mut tx, &self.channel, cycle).await?;
        tx.commit().await?;
        if reply.settled.contains(&Settled::Retried) {
            self.retry_wake.wake(&self.send_wake);
        }
        Ok(rows::applied(&reply.settled))
    }

    /// Removes old finished jobs, a batch per statement, walking the index of finished jobs
    /// from where the last batch stopped.
    async fn remove_old(&self, p: store::Repair<'_>, report: &mut RepairReport) -> Result<()> {
        let batch = i64::try_from(p.batch()).unwrap_or(i64::MAX);
        let mut after: (Option<DateTime<Utc>>, i64) = (None, 0);
        loop {
            let (removed, picked, last_finished, last_id): (
                i64,
                i64,
                Option<DateTime<Utc>>,
                Option<i64>,
            ) = sqlx::query_as(statement!("repair_old"))
                .bind(secs(p.options.remove_after))
                .bind(p.now)
                .bind(batch)
                .bind(after.0)
                .bind(after.1)
                .fetch_one(&self.db)
                .await?;
            report.removed_jobs += count(removed);
            if removed > 0 {
                p.report(report);
            }
            match (last_finished, last_id) {
                (Some(finished), Some(id)) if picked >= batch => after = (Some(finished), id),
                _ => return Ok(()),
            }
        }
    }

    /// Removes expired jobs: reads their ids (without locks) a window at a time, and removes
    /// them a batch per statement.
    async fn remove_expired(&self, p: store::Repair<'_>, report: &mut RepairReport) -> Result<()> {
        let batch = usize::try_from(p.batch()).unwrap_or(usize::MAX);
        let window = i64::try_from(batch.saturating_mul(EXPIRED_WINDOW)).unwrap_or(i64::MAX);
        let mut after = 0_i64;
        loop {
            let ids: Vec<i64> = sqlx::query_scalar(statement!("repair_expired_ids"))
                .bind(p.now)
                .bind(after)
                .bind(window)
                .fetch_all(&self.db)
                .await?;
            for chunk in ids.chunks(batch) {
                let removed = sqlx::query(statement!("repair_expired"))
                    .bind(chunk)
                    .bind(p.now)
                    .execute(&self.db)
                    .await?
                    .rows_affected();
                report.expired_jobs += removed;
                if removed > 0 {
                    p.report(report);
                }
            }
            match ids.last() {
                Some(&last) if i64::try_from(ids.len()).unwrap_or(i64::MAX) >= window => {
                    after = last
                }
                _ => return Ok(()),
            }
        }
    }

    /// Removes missing workers and rescues their jobs, and the jobs of workers removed by hand.
    pub(super) async fn run_rescue(&self, p: store::Repair<'_>) -> Result<RepairReport> {
        let opts = p.options;
        let mut report = RepairReport::default();
        // Missing workers go, and their attempts are settled as failed in the same transaction:
        // the rows stay locked from the moment they are found, so no release or claim can slip
        // in between, and the settle applies each task's backoff through the one retry
        // transition (underling_cycle).
        let mut tx = self.pool.begin().await?;
        report.missing_workers = sqlx::query(statement!("repair_missing_workers"))
            .bind(secs(opts.missing_after))
            .bind(p.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let abandoned: Vec<AbandonedRow> = sqlx::query_as(statement!("repair_abandoned"))
            .fetch_all(&mut *tx)
            .await?;
        let settles = rows::rescue_settles(&abandoned, p.backoff, WENT_AWAY);
        let cycle = store::Cycle {
            settles: &settles,
            claim: None,
            now: p.now,
        };
        let reply = run_cycle(&mut tx, &self.channel, cycle).await?;
        report.abandoned_jobs = rows::applied(&reply.settled);
        tx.commit().await?;
        if reply.settled.contains(&Settled::Retried) {
            // Idle workers learn when the retried jobs fall due.
            self.retry_wake.wake(&self.send_wake);
        }
        Ok(report)
    }
}
