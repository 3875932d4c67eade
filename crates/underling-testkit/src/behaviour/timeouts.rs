//! Per-job timeouts ([`underling::EnqueueOptions::timeout`]): stored with the job, handed to
//! the worker that claims it, and enforced by repair as a backstop: a job active past its
//! timeout (its own, else its task's as published) plus a grace is failed even on a live worker.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::{PublishTasks, Repair};
use underling::{EnqueueOptions, JobState, RepairOptions, TaskDefaults};

use crate::support::*;

/// Repair options with a 2 s grace for timed-out jobs, under which the test's worker (whose
/// heartbeat the repair's clock leaves behind) is never missing.
fn grace_2s() -> RepairOptions {
    RepairOptions {
        timeout_grace: Duration::from_secs(2),
        missing_after: Duration::from_secs(3600),
        ..Default::default()
    }
}

behaviours! {
    async fn a_jobs_timeout_is_stored_and_comes_with_the_claimed_job(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().timeout(Duration::from_millis(90_500))).await;
        let plain = enqueue(&queue, "add").await;
        assert_eq!(job(&queue, id).await.timeout_ms, Some(90_500));
        assert_eq!(job(&queue, plain).await.timeout_ms, None);
        let w = worker(t).await;
        let claimed = claim(t, w, &["default"], 10).await;
        assert_eq!(claimed.iter().map(|j| (j.id, j.timeout_ms)).collect::<Vec<_>>(),
            vec![(id, Some(90_500)), (plain, None)]);
    }

    async fn a_batch_stores_each_jobs_timeout(t) {
        let queue = t.queue.clone();
        let jobs = vec![
            underling::NewJob::new("add", json!({}), EnqueueOptions::new().timeout(Duration::from_secs(5))).unwrap(),
            underling::NewJob::new("add", json!({}), EnqueueOptions::new()).unwrap(),
        ];
        let ids = queue.enqueue_batch(&jobs).await.unwrap();
        assert_eq!(job(&queue, ids[0]).await.timeout_ms, Some(5_000));
        assert_eq!(job(&queue, ids[1]).await.timeout_ms, None);
    }

    async fn a_zero_timeout_is_refused_and_writes_nothing(t) {
        let queue = t.queue.clone();
        let error = queue.enqueue("add", json!({}), EnqueueOptions::new().timeout(Duration::ZERO)).await.unwrap_err();
        assert_eq!(error.to_string(), "invalid option: timeout must be longer than zero");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn repair_fails_a_job_active_past_its_timeout_plus_the_grace_on_a_live_worker(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().timeout(Duration::from_secs(1))).await;
        let w = worker(t).await;
        let started = claim_one(t, w).await.started.expect("claimed");
        let backoff = |_: &str, _: i32| Duration::from_secs(1);
        let options = grace_2s();
        let at = |ms: i64| Some(started + chrono::Duration::milliseconds(ms));
        let early = t.store.repair(Repair { options: &options, backoff: &backoff, now: at(2_999), progress: None }).await.unwrap();
        assert_eq!(early.timed_out_jobs, 0);
        assert_eq!(state(&queue, id).await, JobState::Active);
        let late = t.store.repair(Repair { options: &options, backoff: &backoff, now: at(3_000), progress: None }).await.unwrap();
        assert_eq!((late.timed_out_jobs, late.missing_workers), (1, 0));
        let failed = job(&queue, id).await;
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.result, Some(json!("Job ran past its timeout of 1s and the repair grace of 2s; failed by repair")));
        assert_eq!(queue.workers().await.unwrap().len(), 1, "the worker is alive and stays");
    }

    async fn a_timed_out_job_with_tries_left_is_retried_after_its_backoff(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().timeout(Duration::from_secs(1)).attempts(2)).await;
        let w = worker(t).await;
        let started = claim_one(t, w).await.started.expect("claimed");
        let backoff = |_: &str, _: i32| Duration::from_secs(7);
        let now = started + chrono::Duration::seconds(10);
        let report = t.store.repair(Repair { options: &grace_2s(), backoff: &backoff, now: Some(now), progress: None }).await.unwrap();
        assert_eq!(report.timed_out_jobs, 1);
        let retried = job(&queue, id).await;
        assert_eq!((retried.state, retried.retries), (JobState::Inactive, 1));
        assert_eq!(retried.delayed - retried.retried.unwrap(), chrono::Duration::seconds(7));
    }

    async fn repair_applies_the_tasks_published_timeout_to_jobs_without_their_own(t) {
        let queue = t.queue.clone();
        let defaults = TaskDefaults {
            name: "slow".into(),
            queue: None,
            priority: None,
            attempts: None,
            timeout_ms: Some(60_000),
            published: Utc::now(),
        };
        t.store.publish_tasks(PublishTasks { tasks: &[defaults], now: None }).await.unwrap();
        let slow = enqueue(&queue, "slow").await;
        let own = enqueue_with(&queue, "slow", EnqueueOptions::new().timeout(Duration::from_secs(600))).await;
        let other = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let started = claim(t, w, &["default"], 10).await[0].started.expect("claimed");
        let backoff = |_: &str, _: i32| Duration::ZERO;
        let now = Some(started + chrono::Duration::seconds(120));
        let report = t.store.repair(Repair { options: &grace_2s(), backoff: &backoff, now, progress: None }).await.unwrap();
        assert_eq!(report.timed_out_jobs, 1);
        assert_eq!(state(&queue, slow).await, JobState::Failed);
        assert_eq!(state(&queue, own).await, JobState::Active, "its own timeout wins over its task's");
        assert_eq!(state(&queue, other).await, JobState::Active, "no timeout: never timed out");
    }
}
