//! Rescuing the jobs of a worker that went away: a worker's own repair retries each after its
//! task's backoff, [`underling::Queue::repair`] (which knows no tasks) after the default one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::RegisterWorker;
use underling::{
    EnqueueOptions, JobState, Registry, RepairOptions, RepairReport, WorkerOptions, default_backoff,
};

use crate::TestStore;
use crate::support::*;
use crate::tasks::Flaky;

/// A worker whose last heartbeat was an hour ago (registered then, never heard of since).
async fn silent_worker(t: &TestStore) -> i64 {
    t.store
        .register_worker(RegisterWorker {
            host: "gone-host",
            pid: 7,
            status: &json!({}),
            now: Some(Utc::now() - chrono::Duration::hours(1)),
        })
        .await
        .expect("register worker")
}

/// A job of `test.flaky` with `attempts` tries, failed `failures` times (retried at once),
/// then claimed by a worker that went silent an hour ago. Returns the job's id and the
/// worker's.
async fn abandoned_job(t: &TestStore, attempts: i32, failures: i32) -> (i64, i64) {
    let id = enqueue_with(
        &t.queue,
        "test.flaky",
        EnqueueOptions::new().attempts(attempts),
    )
    .await;
    let gone = silent_worker(t).await;
    for _ in 0..failures {
        let claimed = claim_one(t, gone).await;
        fail(t, &claimed, json!("boom"), Duration::ZERO).await;
    }
    let claimed = claim_one(t, gone).await;
    assert_eq!(
        (claimed.id, claimed.retries, claimed.worker_id),
        (id, failures, Some(gone))
    );
    (id, gone)
}

/// The one backoff of the task in these behaviours: an hour, whatever the retries.
fn an_hour(_retries: i32) -> Duration {
    Duration::from_secs(3600)
}

behaviours! {
    /// A heartbeat that finds another worker silent for `missing_after` sets off a rescue at
    /// once: the silent worker's job runs again long before the next repair (an hour away).
    async fn a_heartbeat_that_finds_a_worker_missing_rescues_its_jobs_at_once(t) {
        let queue = t.queue.clone();
        let (id, gone) = abandoned_job(t, 2, 0).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let mut registry = Registry::new();
        registry
            .register(Flaky { runs: runs.clone(), backoff: |_| Duration::ZERO })
            .expect("register test.flaky");
        let options = WorkerOptions {
            repair_interval: Duration::from_secs(3600),
            repair: RepairOptions::default(),
            ..fast_options(1)
        };
        let started = std::time::Instant::now();
        let worker = start(&queue, registry, options);
        let failed = wait_for_state(&queue, id, JobState::Failed).await;
        let took = started.elapsed();
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "rescued, then run once (and failed)");
        assert_eq!(summary.performed, 1);
        assert_eq!(failed.retries, 1, "the rescue took the first attempt");
        assert_ne!(failed.worker_id, Some(gone));
        assert_eq!(failed.result, Some(json!("attempt 2 failed")));
        assert!(took < Duration::from_secs(5), "rescued and run after {took:?}");
    }

    /// A worker's repair rescues a silent worker's job and retries it after the job's task's
    /// own backoff (an hour), not the default one.
    async fn a_workers_repair_retries_a_rescued_job_after_its_tasks_own_backoff(t) {
        let queue = t.queue.clone();
        let (id, gone) = abandoned_job(t, 3, 0).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let mut registry = Registry::new();
        registry
            .register(Flaky { runs: runs.clone(), backoff: an_hour })
            .expect("register test.flaky");
        let options = WorkerOptions {
            repair_interval: Duration::from_millis(50),
            repair: RepairOptions::default(),
            ..fast_options(1)
        };
        let before = Utc::now() - chrono::Duration::seconds(1);
        let worker = start(&queue, registry, options);
        let rescued = wait_for_state(&queue, id, JobState::Inactive).await;
        let after = Utc::now() + chrono::Duration::seconds(1);
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!(summary.performed, 0, "the rescued job is not due for an hour");
        assert_eq!(runs.load(Ordering::SeqCst), 0);

        assert_eq!(rescued.retries, 1);
        assert_eq!(rescued.worker_id, Some(gone), "the worker that last ran it");
        assert_eq!(rescued.result, Some(json!("Worker went away")));
        let retried = rescued.retried.expect("a rescued job has a retry time");
        assert!(retried > before && retried < after, "rescued at {retried}, between {before} and {after}");
        assert_eq!(rescued.delayed - retried, chrono::Duration::hours(1), "the task's backoff");
        assert!(queue.workers().await.unwrap().is_empty(), "the silent worker was removed");
    }

    /// `Queue::repair` knows no tasks: it retries a rescued job after the default backoff,
    /// (retries + 1)⁴ s for the attempt's retry count (here 2: 81 s).
    async fn queue_repair_retries_a_rescued_job_after_the_default_backoff(t) {
        let queue = t.queue.clone();
        let (id, gone) = abandoned_job(t, 4, 2).await;
        let before = Utc::now() - chrono::Duration::seconds(1);
        let report = queue.repair(&RepairOptions::default()).await.unwrap();
        let after = Utc::now() + chrono::Duration::seconds(1);
        assert_eq!(
            report,
            RepairReport { missing_workers: 1, abandoned_jobs: 1, ..RepairReport::default() }
        );
        let rescued = job(&queue, id).await;
        assert_eq!((rescued.state, rescued.retries, rescued.worker_id), (JobState::Inactive, 3, Some(gone)));
        assert_eq!(rescued.result, Some(json!("Worker went away")));
        let retried = rescued.retried.expect("a rescued job has a retry time");
        assert!(retried > before && retried < after, "rescued at {retried}, between {before} and {after}");
        let default = chrono::Duration::from_std(default_backoff(2)).unwrap();
        assert_eq!(default, chrono::Duration::seconds(81));
        assert_eq!(rescued.delayed - retried, default, "the default backoff");
    }
}
