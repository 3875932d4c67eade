//! Draining queues in application tests: every job runs in this process, one at a time,
//! including delayed jobs and retries, which run at once instead of when they fall due.

use chrono::Utc;

use super::{Worker, WorkerOptions};
use crate::error::{Error, Result};
use crate::job::{JobFilter, JobState, Settled};
use crate::queue::Queue;
use crate::task::Registry;

/// What [`drain_jobs`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOptions {
    /// The queues to drain; every queue when empty.
    pub queues: Vec<String>,
    /// Also run delayed jobs and retries waiting for their backoff, at once (Oban's
    /// `with_scheduled`, Sidekiq's `drain`); otherwise only jobs that are due now run.
    pub with_scheduled: bool,
    /// Stop with [`Error::DrainLimit`] after this many runs: a task that fails for ever with
    /// tries left, or that enqueues jobs for ever, would never let the drain end.
    pub max_runs: u64,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            queues: Vec::new(),
            with_scheduled: true,
            max_runs: 10_000,
        }
    }
}

/// What [`drain_jobs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Attempts run.
    pub runs: u64,
    /// Of those, how many finished their job.
    pub finished: u64,
    /// Of those, how many failed (the job was retried, or failed for good).
    pub failed: u64,
    /// Of those, how many were snoozed (the job runs again without using an attempt).
    pub snoozed: u64,
}

/// Runs jobs in this process, one at a time in claim order (priority, then id), until none
/// is left that can run: children run once their parents have ended, and with
/// `with_scheduled` (the default) delayed jobs and retries run at once, each retry through
/// its task's backoff as if that time had passed. For application tests (SQLite in memory
/// works): no worker process needed. Use it rather than [`super::perform_jobs`] when jobs
/// are delayed or are expected to be retried.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use underling::{DrainOptions, EnqueueOptions, JobState, Queue, Registry};
///
/// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
/// let registry = Registry::new(); // register your tasks here
/// let id = queue.enqueue("unknown.task", serde_json::json!({}),
///     EnqueueOptions::new().delay(Duration::from_secs(3600))).await?;
/// let report = underling::drain_jobs(&queue, &registry, DrainOptions::default()).await?;
/// assert_eq!(report.runs, 0, "no task of that name: left alone");
/// assert_eq!(queue.job(id).await?.unwrap().state, JobState::Inactive);
/// # Ok::<(), underling::Error>(())
/// # }).unwrap();
/// ```
pub async fn drain_jobs(
    queue: &Queue,
    registry: &Registry,
    options: DrainOptions,
) -> Result<DrainReport> {
    let worker = Worker::new(queue.clone(), registry.clone(), WorkerOptions::default());
    let filter = JobFilter {
        states: vec![JobState::Inactive],
        queues: options.queues.clone(),
        ..JobFilter::default()
    };
    let mut report = DrainReport::default();
    loop {
        // The waiting jobs of the tasks this process can run, in claim order.
        let mut candidates = Vec::new();
        let mut offset = 0;
        loop {
            let page = queue.list_jobs(&filter, 1000, offset).await?;
            if page.jobs.is_empty() {
                break;
            }
            offset += page.jobs.len() as u64;
            candidates.extend(
                page.jobs
                    .into_iter()
                    .filter(|job| registry.get(&job.task).is_some()),
            );
        }
        candidates.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        let now = Utc::now();
        let mut ran = false;
        for job in candidates {
            if job.delayed > now && !options.with_scheduled {
                continue;
            }
            if report.runs >= options.max_runs {
                return Err(Error::DrainLimit(options.max_runs));
            }
            let at = job.delayed.max(now);
            // A job waiting for parents (or taken meanwhile) is not ready: try the next one.
            match worker.run_foreground_at(job.id, Some(at)).await {
                Ok(run) => {
                    report.runs += 1;
                    match run.settled {
                        Settled::Finished => report.finished += 1,
                        Settled::Failed | Settled::Retried => report.failed += 1,
                        Settled::Snoozed => report.snoozed += 1,
                        Settled::Stale => {}
                    }
                    ran = true;
                    break;
                }
                Err(Error::NotReady { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        if !ran {
            return Ok(report);
        }
    }
}
