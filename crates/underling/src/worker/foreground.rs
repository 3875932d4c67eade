//! Running jobs without a worker loop: one job by id, now ([`Worker::run_foreground`]), or
//! every ready job one at a time ([`perform_jobs`]).

use serde_json::json;
use tokio::sync::watch;

use super::control::{Heartbeat, Identity, WorkerId, unregister};
use super::executor::perform;
use super::lease::Terms;
use super::{AbortOnDrop, ForegroundRun, Worker, WorkerOptions};
use crate::error::{Error, Result};
use crate::job::{Job, JobState, Settle, Settled};
use crate::queue::Queue;
use crate::store::{self, Store};
use crate::task::Registry;

impl Worker {
    /// Runs one job in this process, now, and settles it (what Minion's `-f` does).
    ///
    /// A job that cannot run (not inactive, delayed, waiting for parents, or of a task this
    /// worker does not know) gives [`Error::NotReady`] saying why; a missing or expired one
    /// (expired jobs are gone for every reader) is [`Error::JobNotFound`].
    pub async fn run_foreground(&self, id: i64) -> Result<ForegroundRun> {
        self.run_foreground_at(id, None).await
    }

    /// [`Worker::run_foreground`], claiming the job as if it were `at` (a delayed job due by
    /// then is ready); for [`drain_jobs`](super::drain_jobs).
    pub(super) async fn run_foreground_at(&self, id: i64, at: store::Now) -> Result<ForegroundRun> {
        let store = self.queue.store().clone();
        let Some(job) = load(&*store, id).await? else {
            return Err(Error::JobNotFound(id));
        };
        if self.registry.get(&job.task).is_none() {
            return Err(Error::NotReady {
                id,
                reason: format!("this worker has no task named {:?}", job.task),
            });
        }
        let terms = Terms::new(
            self.options.heartbeat_interval,
            self.options.repair.missing_after,
            &self.registry,
        )?;
        let status = json!({"foreground": id});
        let sent = tokio::time::Instant::now();
        let worker_id = Identity::of_this_process()
            .register(&*store, &status)
            .await?;
        // Heartbeat while the job runs, or a repair elsewhere would take this worker for dead
        // after `missing_after` and rescue (and re-run) a job that is running fine. Like a
        // worker's, the job is stopped once no heartbeat got through for the lease's length,
        // and killed if the foreground worker was removed.
        let (lease_tx, lease) = watch::channel(terms.renewed(worker_id, sent));
        let heartbeat = Heartbeat {
            store: store.clone(),
            worker_id: WorkerId::new(worker_id),
            reregister: None,
            terms,
            lease: lease_tx,
            missing_after: self.options.repair.missing_after,
            rescue: None,
        };
        let every = self.options.heartbeat_interval;
        let heartbeat = AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.reset();
            loop {
                tick.tick().await;
                heartbeat.beat(&status).await;
            }
        }));
        let result = async {
            let Some(claimed) = claim_by_id(&*store, worker_id, id, at).await? else {
                return Err(Error::NotReady {
                    id,
                    reason: not_ready_reason(&*store, id).await?,
                });
            };
            let task = self.registry.get(&claimed.task).cloned();
            let retries = claimed.retries;
            // Nothing stops a foreground run but its own timeout.
            let (_ending, ending_rx) = watch::channel(None);
            let outcome = perform(task, claimed, self.queue.clone(), ending_rx, lease).await;
            let settled = settle(
                &*store,
                Settle {
                    id,
                    retries,
                    outcome,
                },
            )
            .await?;
            let job = load(&*store, id).await?.ok_or(Error::JobNotFound(id))?;
            Ok(ForegroundRun { job, settled })
        }
        .await;
        drop(heartbeat);
        unregister(&*store, worker_id).await?;
        result
    }
}

/// Explains why a job could not be claimed by id.
async fn not_ready_reason(store: &dyn Store, id: i64) -> Result<String> {
    let Some(job) = load(store, id).await? else {
        return Err(Error::JobNotFound(id));
    };
    // An expired job is gone for every reader: `load` found none, and said so above.
    let now = chrono::Utc::now();
    Ok(if job.state != JobState::Inactive {
        format!("it is {}, not inactive", job.state)
    } else if job.delayed > now {
        format!("it is delayed until {}", job.delayed.to_rfc3339())
    } else if !job.parents.is_empty() {
        format!("it waits for parent jobs {:?}", job.parents)
    } else {
        "another worker claimed it".to_string()
    })
}

// The store calls of a foreground run, one each.

/// One job with its parents and children.
async fn load(store: &dyn Store, id: i64) -> Result<Option<Job>> {
    store.job(id, None).await
}

/// Claims one job by id if it is ready at `at`.
async fn claim_by_id(
    store: &dyn Store,
    worker_id: i64,
    id: i64,
    at: store::Now,
) -> Result<Option<Job>> {
    store
        .claim_by_id(store::ClaimById {
            worker_id,
            id,
            now: at,
        })
        .await
}

/// Settles one attempt at once (no outbox: the caller waits for it).
async fn settle(store: &dyn Store, settle: Settle) -> Result<Settled> {
    Ok(store
        .cycle(store::Cycle {
            settles: &[settle],
            claim: None,
            now: None,
        })
        .await?
        .settled
        .first()
        .copied()
        .unwrap_or(Settled::Stale))
}

/// Runs every ready job in this process until none is left, one at a time, and returns how
/// many ran. For application tests on SQLite in memory: no worker process needed.
///
/// With `queues` empty, jobs in every queue run.
pub async fn perform_jobs(queue: &Queue, registry: &Registry, queues: &[String]) -> Result<u64> {
    let mut total = 0;
    loop {
        let queues: Vec<String> = if queues.is_empty() {
            queue.queues().await?.into_iter().map(|q| q.name).collect()
        } else {
            queues.to_vec()
        };
        if queues.is_empty() {
            return Ok(total);
        }
        let options = WorkerOptions {
            queues,
            concurrency: 1,
            burst: true,
            ..WorkerOptions::default()
        };
        let summary = Worker::new(queue.clone(), registry.clone(), options)
            .run()
            .await?;
        total += summary.performed;
        if summary.performed == 0 {
            return Ok(total);
        }
    }
}
