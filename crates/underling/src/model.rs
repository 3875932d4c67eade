//! Workers, commands, locks, queues and statistics as stored in the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A registered worker process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Worker id.
    pub id: i64,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: i32,
    /// When it registered.
    pub started: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_heartbeat: DateTime<Utc>,
    /// What it last reported about itself (queues, concurrency, ...).
    pub status: Value,
    /// Ids of the jobs it is running.
    pub jobs: Vec<i64>,
}

/// A remote command sent to a worker's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Command name, e.g. `stop`, `kill`, `jobs`.
    pub command: String,
    /// Its arguments.
    pub args: Value,
}

/// One holder of a named lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Lock row id.
    pub id: i64,
    /// Lock name.
    pub name: String,
    /// When this hold expires.
    pub expires: DateTime<Utc>,
}

/// A task's enqueue defaults, as the workers that run it publish them (each worker when it
/// starts, from its [`crate::TaskOptions`]), so that every enqueuer applies them, also one
/// that does not link the task (the CLI, another service). Read them with
/// [`crate::Queue::tasks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefaults {
    /// The task's name.
    pub name: String,
    /// The queue its jobs go to when the enqueue names none.
    pub queue: Option<String>,
    /// Their priority when the enqueue gives none.
    pub priority: Option<i32>,
    /// Their attempts when the enqueue gives none.
    pub attempts: Option<i32>,
    /// How long one of its jobs may run (applied by the worker that runs it), in milliseconds.
    pub timeout_ms: Option<u64>,
    /// When a worker last published these.
    pub published: DateTime<Utc>,
}

/// A named queue and its job counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// A paused queue is not claimed from.
    pub paused: bool,
    /// A FIFO queue runs one job at a time, in claim order (see [`crate::Queue::set_fifo`]).
    #[serde(default)]
    pub fifo: bool,
    /// Jobs waiting.
    pub inactive: u64,
    /// Jobs running.
    pub active: u64,
    /// Jobs failed.
    pub failed: u64,
    /// Jobs finished.
    pub finished: u64,
}

/// Counts across the whole store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Inactive jobs (including delayed ones).
    pub inactive_jobs: u64,
    /// Active jobs.
    pub active_jobs: u64,
    /// Finished jobs.
    pub finished_jobs: u64,
    /// Failed jobs.
    pub failed_jobs: u64,
    /// Inactive jobs that are not yet due.
    pub delayed_jobs: u64,
    /// Workers running at least one job.
    pub active_workers: u64,
    /// Workers running none.
    pub inactive_workers: u64,
    /// Locks currently held.
    pub active_locks: u64,
    /// Jobs ever enqueued (the highest id handed out).
    pub enqueued_jobs: u64,
    /// Seconds the database server has been up (PostgreSQL), or `None`.
    pub uptime: Option<u64>,
}

/// Finished and failed jobs in one hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// The start of the hour (UTC).
    pub hour: DateTime<Utc>,
    /// Jobs that finished in that hour.
    pub finished: u64,
    /// Jobs that failed for good in that hour.
    pub failed: u64,
    /// Attempts that failed in that hour, whether their job was retried or failed for good
    /// (a job that failed twice, then finished, counts 2 here and 0 in `failed`).
    pub failed_attempts: u64,
}

/// Finished and failed jobs in one minute ([`crate::Queue::history_minutes`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinutePoint {
    /// The start of the minute (UTC).
    pub minute: DateTime<Utc>,
    /// Jobs that finished in that minute.
    pub finished: u64,
    /// Jobs that failed for good in that minute.
    pub failed: u64,
    /// Attempts that failed in that minute, whether their job was retried or failed for good.
    pub failed_attempts: u64,
}

/// The jobs of one queue that ended recently ([`crate::Queue::throughput`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueThroughput {
    /// The queue.
    pub queue: String,
    /// Jobs that finished in the last hour (the current minute and the 59 before it).
    pub finished_last_hour: u64,
    /// Jobs that failed for good in the last hour.
    pub failed_last_hour: u64,
    /// Jobs that finished in the last five minutes (the current minute and the 4 before it).
    pub finished_last_5m: u64,
    /// Jobs that failed for good in the last five minutes.
    pub failed_last_5m: u64,
}

/// How [`crate::Queue::repair`] decides what is missing, old or stuck.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairOptions {
    /// A worker whose last heartbeat is older than this is gone (default 6 s), and its jobs are
    /// rescued: failed, and retried after their task's backoff where tries are left. A worker
    /// must give it at least four heartbeat intervals plus the longest stop grace of its tasks
    /// (see [`crate::WorkerOptions::heartbeat_interval`]); every worker and every
    /// [`crate::Queue::repair`] of one database should use the same.
    pub missing_after: Duration,
    /// Finished jobs older than this are removed.
    pub remove_after: Duration,
    /// Inactive jobs due longer ago than this are failed as stuck.
    pub stuck_after: Duration,
    /// How many old or expired jobs one statement removes at most (default 1,000; 0 counts as
    /// 1). Each batch is its own short statement, so that a repair after a long outage never
    /// holds many row locks or one long transaction.
    pub batch: u64,
    /// An active job that has run longer than its timeout (its own, else its task's) plus
    /// this is failed, and retried where tries are left, even though its worker still
    /// heartbeats (default 30 s): the backstop for a task that hangs past its timeout and its
    /// stop grace. Keep it above the longest stop grace of the tasks.
    pub timeout_grace: Duration,
}

impl Default for RepairOptions {
    fn default() -> Self {
        RepairOptions {
            missing_after: Duration::from_secs(6),
            remove_after: Duration::from_secs(2 * 24 * 3600),
            stuck_after: Duration::from_secs(2 * 24 * 3600),
            batch: 1000,
            timeout_grace: Duration::from_secs(30),
        }
    }
}

/// What [`crate::Queue::repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// Workers removed for missing heartbeats.
    pub missing_workers: u64,
    /// Active jobs of those workers that were failed (and retried where tries were left).
    pub abandoned_jobs: u64,
    /// Old finished jobs removed.
    pub removed_jobs: u64,
    /// Expired inactive jobs removed.
    pub expired_jobs: u64,
    /// Jobs failed as stuck in queue.
    pub stuck_jobs: u64,
    /// Active jobs failed (and retried where tries were left) for running past their timeout
    /// plus [`RepairOptions::timeout_grace`].
    #[serde(default)]
    pub timed_out_jobs: u64,
}

/// Which jobs a worker can claim.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimSpec {
    /// Queues to claim from (must not be empty).
    pub queues: Vec<String>,
    /// Tasks the worker can perform; empty means any task.
    pub tasks: Vec<String>,
}

/// A migration that [`crate::Queue::migrate`] applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedMigration {
    /// Version number.
    pub version: i64,
    /// Description.
    pub description: String,
}

/// A queue's longest-waiting due job ([`crate::Queue::oldest_due`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDue {
    /// The queue.
    pub queue: String,
    /// When its longest-waiting inactive job that is due fell due.
    pub oldest_due: DateTime<Utc>,
}
