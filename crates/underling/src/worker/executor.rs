//! Running jobs: a task to an outcome (result, error, panic, timeout, stop or kill), and the
//! handle the worker keeps on each running job.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::lease::{self, LEASE_REVOKED, Lease};
use crate::error::Error;
use crate::job::{Job, Outcome, Settle};
use crate::queue::Queue;
use crate::task::{DynTask, JobContext, Registry, TaskError};

/// One attempt at a job: its id and its retry count when it was claimed. A worker can run two
/// attempts at one job at once (an operator retried the job while it ran here, and this worker
/// claimed the retry), so attempts, not job ids, tell running jobs apart.
pub(super) type Attempt = (i64, i32);

/// A job that ended, on its way to the dispatch loop.
pub(super) struct Done {
    /// The job.
    pub(super) id: i64,
    /// Its attempt and how it ended.
    pub(super) settle: Settle,
}

/// How a running job is asked to end; the reason becomes its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// Cooperatively: the task sees [`JobContext::cancelled`] and has its `stop_grace` to
    /// return before its future is dropped (a `stop` command, the end of a graceful shutdown).
    Stop(String),
    /// At once: its future is dropped (a `kill` command, a stop now).
    Kill(String),
}

/// A job that is running.
pub(super) struct Running {
    /// How it is asked to end; a kill overrides a stop.
    ending: watch::Sender<Option<Ending>>,
    /// When it started here.
    since: Instant,
}

impl Running {
    /// A handle for a job starting now, and the receiving end of its ending.
    pub(super) fn new() -> (Running, watch::Receiver<Option<Ending>>) {
        let (ending, ending_rx) = watch::channel(None);
        let running = Running {
            ending,
            since: Instant::now(),
        };
        (running, ending_rx)
    }

    /// Asks the job to end. A stop after a stop or a kill changes nothing; a kill always
    /// takes effect.
    pub(super) fn end(&self, ending: Ending) {
        self.ending
            .send_if_modified(|current| match (&current, &ending) {
                (Some(Ending::Kill(_)), _) | (Some(Ending::Stop(_)), Ending::Stop(_)) => false,
                _ => {
                    *current = Some(ending);
                    true
                }
            });
    }

    /// How long it has been running.
    pub(super) fn elapsed(&self) -> Duration {
        self.since.elapsed()
    }
}

/// Starts jobs as tokio tasks; each sends a [`Done`] when it ends.
pub(super) struct Executor {
    registry: Arc<Registry>,
    queue: Queue,
    done_tx: mpsc::UnboundedSender<Done>,
    /// The worker's lease, which every running job watches.
    lease: watch::Receiver<Lease>,
}

impl Executor {
    /// An executor whose jobs run while `lease` covers them, and the channel on which ended
    /// jobs arrive.
    pub(super) fn new(
        registry: Arc<Registry>,
        queue: Queue,
        lease: watch::Receiver<Lease>,
    ) -> (Executor, mpsc::UnboundedReceiver<Done>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let executor = Executor {
            registry,
            queue,
            done_tx,
            lease,
        };
        (executor, done_rx)
    }

    /// Starts a job's task.
    pub(super) fn spawn(&self, job: Job) -> Running {
        let (running, ending_rx) = Running::new();
        let task = self.registry.get(&job.task).cloned();
        let queue = self.queue.clone();
        let done_tx = self.done_tx.clone();
        let lease = self.lease.clone();
        let span = tracing::info_span!(
            "job",
            id = job.id,
            task = %job.task,
            queue = %job.queue,
            attempt = job.retries + 1
        );
        tokio::spawn(
            async move {
                let id = job.id;
                let retries = job.retries;
                let outcome = perform(task, job, queue, ending_rx, lease).await;
                let _ = done_tx.send(Done {
                    id,
                    settle: Settle {
                        id,
                        retries,
                        outcome,
                    },
                });
            }
            .instrument(span),
        );
        running
    }

    /// Ends a job that never started: it fails with `reason`, as a running job would, and its
    /// task's backoff applies to the retry. It arrives like every other ended job, so it is
    /// counted and written the same way.
    pub(super) fn fail_unstarted(&self, job: Job, reason: &str) {
        let retry_delay = self.registry.backoff(&job.task, job.retries);
        let settle = Settle {
            id: job.id,
            retries: job.retries,
            outcome: Outcome::Failed {
                error: json!(reason),
                retry_delay,
            },
        };
        let _ = self.done_tx.send(Done { id: job.id, settle });
    }
}

/// Runs a task to an outcome: a result, an error, a panic, a timeout, a stop or a kill.
///
/// A stop and a timeout are cooperative: the job's cancellation token fires and the task has
/// its `stop_grace` to return. If it returns `Ok` in that time it has finished; otherwise the
/// job fails with the reason (`Job was stopped`, `Job timed out after …`, `Worker shut down
/// before the job finished`), whatever the task's own error, so that the result says what
/// ended it. A kill drops the task at once.
///
/// The job runs while the worker's `lease` covers it (see the `lease` module): once the lease
/// runs out it is stopped like that (`Worker lost the database; job stopped`), and once it is
/// revoked it is killed (`Worker was removed while the job ran; job killed`). A job the lease
/// no longer covers never starts.
pub(super) async fn perform(
    task: Option<Arc<dyn DynTask>>,
    job: Job,
    queue: Queue,
    mut ending: watch::Receiver<Option<Ending>>,
    mut lease: watch::Receiver<Lease>,
) -> Outcome {
    let started = Instant::now();
    let owner = job.worker_id.unwrap_or_default();
    let Some(task) = task else {
        let error = TaskError::msg(Error::UnknownTask(job.task.clone()));
        tracing::info!(error = %error, "job failed");
        return Outcome::Failed {
            error: error.0,
            retry_delay: crate::job::default_backoff(job.retries),
        };
    };
    let options = task.options();
    // The backoff counts failed attempts: snoozes are retries that used none.
    let retries = job.retries - job.snoozes;
    let snoozes = job.snoozes;
    // The job's own timeout wins over its task's.
    let time_limit = job.timeout().or(options.timeout);
    let current = *lease.borrow();
    if !current.covers(owner, tokio::time::Instant::now()) {
        let reason = match current.until {
            Some(_) if current.worker_id == owner => lease::LEASE_EXPIRED,
            _ => LEASE_REVOKED,
        };
        return failed(reason.into(), started, options.backoff, retries);
    }
    let args = job.args.clone();
    let cancel = CancellationToken::new();
    let ctx = JobContext::new(job, queue, cancel.clone());
    let mut run = std::pin::pin!(AssertUnwindSafe(task.run_json(&ctx, args)).catch_unwind());
    let timeout = async {
        match time_limit {
            Some(limit) => {
                tokio::time::sleep(limit).await;
                format!("Job timed out after {}", humanize(limit))
            }
            None => std::future::pending().await,
        }
    };
    // Until the task returns, times out, or is told to end.
    let stopped = tokio::select! {
        outcome = &mut run => Err(outcome),
        reason = timeout => Ok(reason),
        requested = ending.wait_for(Option::is_some) => match requested.ok().and_then(|e| e.clone()) {
            Some(Ending::Stop(reason)) => Ok(reason),
            Some(Ending::Kill(reason)) => return failed(reason, started, options.backoff, retries),
            None => Ok("Job was killed".to_string()),
        },
        lost = lease::lost(&mut lease, owner) => match lost {
            Ending::Stop(reason) => Ok(reason),
            Ending::Kill(reason) => return failed(reason, started, options.backoff, retries),
        },
    };
    // Only a task that returned by itself may snooze.
    let returned = stopped.is_err();
    let result: std::result::Result<Value, TaskError> = match stopped {
        Err(outcome) => task_result(outcome),
        Ok(reason) => {
            // Ask the task to stop, and give it its grace period to return.
            cancel.cancel();
            let grace = tokio::time::sleep(options.stop_grace);
            let killed = ending.wait_for(|e| matches!(e, Some(Ending::Kill(_))));
            tokio::select! {
                outcome = &mut run => match task_result(outcome) {
                    Ok(value) => Ok(value),
                    Err(error) => {
                        tracing::info!(error = %error, "the stopped task returned an error");
                        Err(TaskError::msg(reason))
                    }
                },
                _ = grace => {
                    tracing::warn!(grace_ms = options.stop_grace.as_millis() as u64, "the stopped task did not return in its grace period; dropped");
                    Err(TaskError::msg(reason))
                }
                killed = killed => {
                    let reason = match killed.ok().as_deref() {
                        Some(Some(Ending::Kill(reason))) => reason.clone(),
                        _ => reason,
                    };
                    Err(TaskError::msg(reason))
                }
                _ = lease::revoked(&mut lease, owner) => Err(TaskError::msg(LEASE_REVOKED)),
            }
        }
    };
    let elapsed = started.elapsed();
    if let Some(delay) = ctx.snoozed().filter(|_| returned) {
        if snoozes >= options.max_snoozes {
            let error = format!(
                "Job asked to snooze again after {snoozes} snoozes, the most its task allows \
                 (TaskOptions::max_snoozes)"
            );
            tracing::info!(elapsed_ms = elapsed.as_millis() as u64, error = %error, "job failed");
            return Outcome::Failed {
                error: Value::String(error),
                retry_delay: (options.backoff)(retries),
            };
        }
        tracing::info!(
            elapsed_ms = elapsed.as_millis() as u64,
            delay_ms = delay.as_millis() as u64,
            "job snoozed"
        );
        return Outcome::Snoozed {
            delay: delay.min(crate::job::MAX_DURATION),
        };
    }
    match result {
        Ok(value) => {
            tracing::info!(elapsed_ms = elapsed.as_millis() as u64, "job finished");
            Outcome::Finished(value)
        }
        Err(error) => {
            tracing::info!(elapsed_ms = elapsed.as_millis() as u64, error = %error, "job failed");
            Outcome::Failed {
                error: error.0,
                retry_delay: (options.backoff)(retries),
            }
        }
    }
}

/// What a task's future gave: its result, or a panic as an error.
fn task_result(
    outcome: std::thread::Result<std::result::Result<Value, TaskError>>,
) -> std::result::Result<Value, TaskError> {
    match outcome {
        Ok(result) => result,
        Err(panic) => Err(TaskError::msg(format!(
            "Task panicked: {}",
            panic_message(&panic)
        ))),
    }
}

/// A job that was killed: failed with `reason`, retried after its task's backoff.
fn failed(reason: String, started: Instant, backoff: fn(i32) -> Duration, retries: i32) -> Outcome {
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, error = %reason, "job killed");
    Outcome::Failed {
        error: Value::String(reason),
        retry_delay: backoff(retries),
    }
}

/// The message of a caught panic.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// A duration for people: `1.5s`, `250ms`.
fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
