//! `drain_jobs`, for application tests: every job runs in this process, delayed jobs and
//! retries at once, with a limit against jobs that never stop.

use std::time::Duration;

use serde_json::json;
use underling::{DrainOptions, DrainReport, EnqueueOptions, Error, JobState, drain_jobs};

use crate::support::*;
use crate::tasks;

behaviours! {
    async fn a_drain_runs_delayed_jobs_and_retries_at_once(t) {
        let queue = t.queue.clone();
        let delayed = queue
            .enqueue("test.double", json!({"n": 4}), EnqueueOptions::new().delay(Duration::from_secs(3600)))
            .await
            .unwrap();
        let failing = queue
            .enqueue("test.error", json!({}), EnqueueOptions::new().attempts(3))
            .await
            .unwrap();
        let report = drain_jobs(&queue, &tasks::simple(), DrainOptions::default()).await.unwrap();
        assert_eq!(report, DrainReport { runs: 4, finished: 1, failed: 3, snoozed: 0 });
        let delayed = job(&queue, delayed).await;
        assert_eq!(delayed.state, JobState::Finished);
        assert_eq!(delayed.result, Some(json!({"doubled": 8})));
        let failing = job(&queue, failing).await;
        assert_eq!((failing.state, failing.retries), (JobState::Failed, 2), "three tries in all");
        assert_eq!(failing.result, Some(json!("it broke")));
        assert!(queue.workers().await.unwrap().is_empty());
    }

    async fn a_drain_without_scheduled_jobs_leaves_delayed_jobs_and_retries_waiting(t) {
        let queue = t.queue.clone();
        let ready = queue.enqueue("test.double", json!({"n": 1}), EnqueueOptions::new()).await.unwrap();
        let delayed = queue
            .enqueue("test.double", json!({"n": 2}), EnqueueOptions::new().delay(Duration::from_secs(3600)))
            .await
            .unwrap();
        let failing = queue
            .enqueue("test.error", json!({}), EnqueueOptions::new().attempts(3))
            .await
            .unwrap();
        let options = DrainOptions { with_scheduled: false, ..DrainOptions::default() };
        let report = drain_jobs(&queue, &tasks::simple(), options).await.unwrap();
        assert_eq!(report, DrainReport { runs: 2, finished: 1, failed: 1, snoozed: 0 });
        assert_eq!(state(&queue, ready).await, JobState::Finished);
        assert_eq!(state(&queue, delayed).await, JobState::Inactive);
        let failing = job(&queue, failing).await;
        assert_eq!((failing.state, failing.retries), (JobState::Inactive, 1), "its retry waits for its backoff");
    }

    async fn a_drain_runs_children_after_their_parents(t) {
        let queue = t.queue.clone();
        let parent = queue.enqueue("test.double", json!({"n": 1}), EnqueueOptions::new()).await.unwrap();
        let child = queue
            .enqueue("test.double", json!({"n": 2}), EnqueueOptions::new().queue("other").priority(9).parent(parent))
            .await
            .unwrap();
        let report = drain_jobs(&queue, &tasks::simple(), DrainOptions::default()).await.unwrap();
        assert_eq!(report.finished, 2);
        let (parent, child) = (job(&queue, parent).await, job(&queue, child).await);
        assert!(child.started >= parent.finished, "the child ran after its parent");
    }

    async fn a_drain_stops_after_max_runs(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.error", json!({}), EnqueueOptions::new().attempts(100)).await.unwrap();
        let options = DrainOptions { max_runs: 5, ..DrainOptions::default() };
        let err = drain_jobs(&queue, &tasks::simple(), options).await.unwrap_err();
        assert!(matches!(err, Error::DrainLimit(5)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the drain stopped after 5 runs with jobs still left to run: a task keeps failing with \
             tries left, or jobs keep enqueueing jobs (raise DrainOptions::max_runs if that is expected)"
        );
        let job = job(&queue, id).await;
        assert_eq!((job.state, job.retries), (JobState::Inactive, 5));
    }
}
