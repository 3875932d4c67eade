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

/// A job that is running.
pub(super) struct Running {
    /// Asks the task to stop (it sees it through [`JobContext::cancelled`]).
    stop: CancellationToken,
    /// Drops the task's future, with the reason recorded as its error.
    kill: watch::Sender<Option<String>>,
    /// When it started here.
    since: Instant,
}

impl Running {
    /// A handle for a job starting now, and the receiving end of its kill switch.
    pub(super) fn new() -> (Running, watch::Receiver<Option<String>>) {
        let (kill, kill_rx) = watch::channel(None);
        let running = Running {
            stop: CancellationToken::new(),
            kill,
            since: Instant::now(),
        };
        (running, kill_rx)
    }

    /// Asks the task to stop and drops it, recording `reason` as its error.
    pub(super) fn stop(&self, reason: &str) {
        self.stop.cancel();
        let _ = self.kill.send(Some(reason.into()));
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
}

impl Executor {
    /// An executor, and the channel on which ended jobs arrive.
    pub(super) fn new(
        registry: Arc<Registry>,
        queue: Queue,
    ) -> (Executor, mpsc::UnboundedReceiver<Done>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let executor = Executor {
            registry,
            queue,
            done_tx,
        };
        (executor, done_rx)
    }

    /// Starts a job's task.
    pub(super) fn spawn(&self, job: Job) -> Running {
        let (running, kill_rx) = Running::new();
        let task = self.registry.get(&job.task).cloned();
        let queue = self.queue.clone();
        let done_tx = self.done_tx.clone();
        let span = tracing::info_span!(
            "job",
            id = job.id,
            task = %job.task,
            queue = %job.queue,
            attempt = job.retries + 1
        );
        let ctx_stop = running.stop.clone();
        tokio::spawn(
            async move {
                let id = job.id;
                let retries = job.retries;
                let outcome = perform(task, job, queue, ctx_stop, kill_rx).await;
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

/// Runs a task to an outcome: a result, an error, a panic, a timeout or a kill.
pub(super) async fn perform(
    task: Option<Arc<dyn DynTask>>,
    job: Job,
    queue: Queue,
    stop: CancellationToken,
    mut kill: watch::Receiver<Option<String>>,
) -> Outcome {
    let started = Instant::now();
    let Some(task) = task else {
        let error = TaskError::msg(Error::UnknownTask(job.task.clone()));
        tracing::info!(error = %error, "job failed");
        return Outcome::Failed {
            error: error.0,
            retry_delay: crate::job::default_backoff(job.retries),
        };
    };
    let options = task.options();
    let retries = job.retries;
    let args = job.args.clone();
    let ctx = JobContext::new(job, queue, stop.clone());
    let run = AssertUnwindSafe(task.run_json(&ctx, args)).catch_unwind();
    let timeout = options.timeout;
    let timed = async {
        match timeout {
            Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| limit),
            None => Ok(run.await),
        }
    };
    let result: std::result::Result<Value, TaskError> = tokio::select! {
        outcome = timed => match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(TaskError::msg(format!("Task panicked: {}", panic_message(&panic)))),
            Err(limit) => {
                stop.cancel();
                Err(TaskError::msg(format!("Job timed out after {}", humanize(limit))))
            }
        },
        reason = kill.wait_for(Option::is_some) => {
            let reason = reason.ok().and_then(|r| r.clone()).unwrap_or_else(|| "Job was killed".into());
            Err(TaskError::msg(reason))
        }
    };
    let elapsed = started.elapsed();
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
