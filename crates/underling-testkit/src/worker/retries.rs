//! Failed attempts are retried, after the task's backoff, as many times as the job allows.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState, Registry};

use crate::support::*;
use crate::tasks::Flaky;

fn no_backoff(_retries: i32) -> Duration {
    Duration::ZERO
}

fn one_hour(_retries: i32) -> Duration {
    Duration::from_secs(3600)
}

fn flaky(backoff: fn(i32) -> Duration) -> (Registry, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    registry
        .register(Flaky {
            runs: runs.clone(),
            backoff,
        })
        .expect("register test.flaky");
    (registry, runs)
}

behaviours! {
    async fn a_failing_job_is_tried_as_many_times_as_its_attempts(t) {
        let queue = t.queue.clone();
        let (registry, runs) = flaky(no_backoff);
        let id = queue
            .enqueue("test.flaky", json!({}), EnqueueOptions::new().attempts(3))
            .await
            .unwrap();
        let summary = run_burst(&queue, registry, 1).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!((summary.performed, summary.finished, summary.failed), (3, 0, 3));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.retries, 2);
        assert_eq!(job.result, Some(json!("attempt 3 failed")));
    }

    async fn a_retry_waits_for_the_tasks_backoff(t) {
        let queue = t.queue.clone();
        let (registry, runs) = flaky(one_hour);
        let id = queue
            .enqueue("test.flaky", json!({}), EnqueueOptions::new().attempts(3))
            .await
            .unwrap();
        // The burst worker runs the first attempt, then finds nothing ready: the retry is an
        // hour away.
        let summary = run_burst(&queue, registry, 1).await;
        assert_eq!(summary.performed, 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 1);
        assert_eq!(job.result, Some(json!("attempt 1 failed")));
        let retried = job.retried.expect("a retried job has a retried time");
        assert_eq!(job.delayed - retried, chrono::Duration::seconds(3600));
    }
}
