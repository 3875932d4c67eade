//! The storage contract, and its PostgreSQL and SQLite implementations.
//!
//! Everything above this module talks to the database through [`Backend`]; all SQL lives in
//! [`postgres`] and [`sqlite`]. Inputs arrive validated (see [`crate::Queue`]); a backend still
//! checks what only the database can know (a parent that does not exist, a job that is active).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::error::Result;
use crate::job::{Job, JobFilter, JobList, NewJob, RetryOptions, Settle, Settled};
use crate::model::{
    AppliedMigration, ClaimSpec, Command, HistoryPoint, LockInfo, QueueInfo, RepairOptions,
    RepairReport, Stats, WorkerInfo,
};

pub mod postgres;
pub mod sqlite;

/// Which database a backend talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// The storage contract: one implementation per database, the same behaviour on each.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Which database this is.
    fn kind(&self) -> BackendKind;
    /// The concrete backend, for backend-specific calls such as enqueueing in a transaction.
    fn as_any(&self) -> &dyn std::any::Any;

    /// Applies pending migrations (safe when many processes start at once).
    async fn migrate(&self) -> Result<Vec<AppliedMigration>>;
    /// Fails with [`crate::Error::NotMigrated`] unless every migration is applied.
    async fn check_migrated(&self) -> Result<()>;

    /// Inserts jobs in one round trip and returns their ids in input order.
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<i64>>;
    /// Claims up to `limit` ready jobs for a worker, in priority then id order.
    async fn claim(&self, worker_id: i64, spec: &ClaimSpec, limit: usize) -> Result<Vec<Job>>;
    /// Claims one job by id if it is ready (ignoring queue and pause), for foreground runs.
    async fn claim_by_id(&self, worker_id: i64, id: i64) -> Result<Option<Job>>;
    /// Settles attempts in one round trip; returns what each did, in input order.
    async fn settle(&self, settles: &[Settle]) -> Result<Vec<Settled>>;
    /// Settles attempts, then claims up to `limit` ready jobs: a worker's whole cycle, in one
    /// round trip where the database allows. Returns what each settle did (input order) and
    /// the claimed jobs (claim order).
    async fn settle_and_claim(
        &self,
        settles: &[Settle],
        worker_id: i64,
        spec: &ClaimSpec,
        limit: usize,
    ) -> Result<(Vec<Settled>, Vec<Job>)>;
    /// Puts jobs that a worker claimed but never started back to inactive, without using up
    /// an attempt, so that any worker can claim them again. Only attempts that are still
    /// active under `worker_id` change; returns how many did.
    async fn release(&self, worker_id: i64, attempts: &[(i64, i32)]) -> Result<u64>;
    /// When the next delayed inactive job becomes due, if any.
    async fn next_due(&self, spec: &ClaimSpec) -> Result<Option<chrono::DateTime<chrono::Utc>>>;

    /// One job with its parents and children.
    async fn job(&self, id: i64) -> Result<Option<Job>>;
    /// A page of jobs, newest first, and the total count.
    async fn list(&self, filter: &JobFilter, limit: u64, offset: u64) -> Result<JobList>;
    /// Puts a job back to inactive (from any state), applying the changes given.
    async fn retry(&self, id: i64, opts: &RetryOptions) -> Result<()>;
    /// Retries every job matching the filter; returns how many.
    async fn retry_matching(&self, filter: &JobFilter) -> Result<u64>;
    /// Removes a job that is not active.
    async fn remove(&self, id: i64) -> Result<()>;
    /// Removes up to `batch` jobs matching the filter; returns how many.
    async fn purge_batch(&self, filter: &JobFilter, batch: u64) -> Result<u64>;
    /// Merges keys into a job's notes; a null value deletes the key.
    async fn note(&self, id: i64, notes: &Map<String, Value>) -> Result<()>;
    /// Counts across the store.
    async fn stats(&self) -> Result<Stats>;
    /// Finished and failed jobs per hour over the last 24 hours.
    async fn history(&self) -> Result<Vec<HistoryPoint>>;

    /// Registers a worker; returns its id.
    async fn register_worker(&self, host: &str, pid: i32, status: &Value) -> Result<i64>;
    /// Records a heartbeat with a fresh status; `false` if the worker was removed meanwhile.
    async fn heartbeat(&self, id: i64, status: &Value) -> Result<bool>;
    /// Removes a worker.
    async fn unregister_worker(&self, id: i64) -> Result<()>;
    /// All workers (or the ones given), oldest first.
    async fn workers(&self, ids: &[i64]) -> Result<Vec<WorkerInfo>>;
    /// Puts a command into the inbox of the workers given (all when empty); returns how many.
    async fn broadcast(&self, command: &str, args: &Value, ids: &[i64]) -> Result<u64>;
    /// Takes the commands waiting in a worker's inbox, oldest first.
    async fn receive(&self, worker_id: i64) -> Result<Vec<Command>>;

    /// Takes a hold on a named lock unless `limit` holds are live; `duration` zero only checks.
    async fn lock(&self, name: &str, duration: Duration, limit: u32) -> Result<bool>;
    /// Releases the hold on `name` that expires first; `false` if none was held.
    async fn unlock(&self, name: &str) -> Result<bool>;
    /// Live holds, for the names given (all when empty).
    async fn locks(&self, names: &[String]) -> Result<Vec<LockInfo>>;

    /// Pauses or resumes a queue.
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()>;
    /// Every queue that has jobs or a pause flag, with counts.
    async fn queues(&self) -> Result<Vec<QueueInfo>>;

    /// Rescues jobs of missing workers and removes old and expired jobs.
    async fn repair(&self, opts: &RepairOptions) -> Result<RepairReport>;

    /// A stream of queue names that got ready jobs, if this backend can push them. Subscribe
    /// before claiming so that no wake-up is missed between an empty claim and the wait.
    async fn subscribe(&self) -> Result<Option<broadcast::Receiver<String>>>;

    /// Closes the connection pool.
    async fn close(&self);
}

/// A row of a combined settle-and-claim statement: a job that was settled (its id and new
/// state) or a job that was claimed (whole).
pub(crate) enum CycleRow {
    /// A settled job and the state it is in now.
    Settled(i64, crate::JobState),
    /// A claimed job.
    Claimed(Box<Job>),
}

/// Splits what a combined settle-and-claim statement returned. Settles that did not come back
/// were stale. Claimed jobs are put in claim order.
pub(crate) fn split_settled_and_claimed(
    settles: &[Settle],
    rows: impl Iterator<Item = Result<CycleRow>>,
) -> Result<(Vec<Settled>, Vec<Job>)> {
    let mut outcomes = std::collections::HashMap::new();
    let mut claimed = Vec::new();
    for row in rows {
        match row? {
            CycleRow::Claimed(job) => claimed.push(*job),
            CycleRow::Settled(id, state) => {
                let settled = match state {
                    crate::JobState::Finished => Settled::Finished,
                    crate::JobState::Failed => Settled::Failed,
                    crate::JobState::Inactive => Settled::Retried,
                    // A settle never leaves a job active; if one did, it was not ours to settle.
                    crate::JobState::Active => Settled::Stale,
                };
                outcomes.insert(id, settled);
            }
        }
    }
    claimed.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
    let settled = settles
        .iter()
        .map(|s| outcomes.get(&s.id).copied().unwrap_or(Settled::Stale))
        .collect();
    Ok((settled, claimed))
}

/// Our own migrations table, not sqlx's default, so that it does not collide with the host
/// application's.
pub(crate) const MIGRATIONS_TABLE: &str = "underling_migrations";

/// A copy of an embedded migrator that records into [`MIGRATIONS_TABLE`].
pub(crate) fn migrator(embedded: &sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate::Migrator {
        migrations: embedded.migrations.clone(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// The migrations of `embedded` that are not in `before` (the versions applied earlier).
pub(crate) fn newly_applied(
    embedded: &sqlx::migrate::Migrator,
    before: &[i64],
) -> Vec<AppliedMigration> {
    embedded
        .iter()
        .filter(|m| !before.contains(&m.version))
        .map(|m| AppliedMigration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect()
}

/// Fails with [`crate::Error::NotMigrated`] unless every migration of `embedded` is among
/// `applied` (`None`: no migrations table at all).
pub(crate) fn check_applied(
    embedded: &sqlx::migrate::Migrator,
    applied: Option<Vec<i64>>,
) -> Result<()> {
    let Some(applied) = applied else {
        return Err(crate::Error::NotMigrated(
            "no underling tables were found".into(),
        ));
    };
    let missing: Vec<String> = newly_applied(embedded, &applied)
        .into_iter()
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(crate::Error::NotMigrated(format!(
            "migrations not applied: {}",
            missing.join(", ")
        )))
    }
}
