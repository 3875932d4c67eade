//! Claiming one job by id (for foreground runs).

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::support::*;

behaviours! {
    async fn claim_by_id_claims_that_job_and_no_other(t) {
        let queue = t.queue.clone();
        let first = enqueue_with(&queue, "add", EnqueueOptions::new().priority(10)).await;
        let second = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let job = claim_by_id(t, w, second).await.expect("claimable");
        assert_eq!(job.id, second);
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.worker_id, Some(w));
        assert_eq!(state(&queue, second).await, JobState::Active);
        assert_eq!(state(&queue, first).await, JobState::Inactive);
    }

    async fn claim_by_id_ignores_the_queue_and_its_pause(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().queue("paused")).await;
        queue.pause_queue("paused").await.unwrap();
        let w = worker(t).await;
        let job = claim_by_id(t, w, id).await.expect("claimable");
        assert_eq!(job.id, id);
        assert_eq!(job.queue, "paused");
    }

    async fn claim_by_id_returns_none_for_a_missing_job(t) {
        let w = worker(t).await;
        assert_eq!(claim_by_id(t, w, 999).await, None);
    }

    async fn claim_by_id_returns_none_for_an_active_job(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w1 = worker(t).await;
        let w2 = worker(t).await;
        assert!(claim_by_id(t, w1, id).await.is_some());
        assert_eq!(claim_by_id(t, w2, id).await, None);
        assert_eq!(job(&queue, id).await.worker_id, Some(w1));
    }

    async fn claim_by_id_returns_none_for_finished_and_failed_jobs(t) {
        let queue = t.queue.clone();
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, finished).await;
        run_to_failure(t, w, failed).await;
        assert_eq!(claim_by_id(t, w, finished).await, None);
        assert_eq!(claim_by_id(t, w, failed).await, None);
        assert_eq!(state(&queue, finished).await, JobState::Finished);
        assert_eq!(state(&queue, failed).await, JobState::Failed);
    }

    async fn claim_by_id_returns_none_for_a_delayed_job(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        let w = worker(t).await;
        assert_eq!(claim_by_id(t, w, id).await, None);
        assert_eq!(state(&queue, id).await, JobState::Inactive);
    }

    async fn claim_by_id_returns_none_for_an_expired_job(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(1))).await;
        tick().await;
        let w = worker(t).await;
        assert_eq!(claim_by_id(t, w, id).await, None);
    }

    async fn claim_by_id_returns_none_while_a_parent_is_unfinished(t) {
        let queue = t.queue.clone();
        let parent = enqueue(&queue, "parent").await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let w = worker(t).await;
        assert_eq!(claim_by_id(t, w, child).await, None);
        run_to_finish(t, w, parent).await;
        let job = claim_by_id(t, w, child).await.expect("parent finished");
        assert_eq!(job.id, child);
    }

    async fn claim_by_id_claims_a_lax_child_of_a_failed_parent(t) {
        let queue = t.queue.clone();
        let parent = enqueue(&queue, "parent").await;
        let strict = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let lax = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent).lax(true)).await;
        let w = worker(t).await;
        run_to_failure(t, w, parent).await;
        assert_eq!(claim_by_id(t, w, strict).await, None);
        assert!(claim_by_id(t, w, lax).await.is_some());
    }

    async fn job_claimed_by_id_settles_like_any_other(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let job = claim_by_id(t, w, id).await.unwrap();
        assert_eq!(finish(t, &job, json!(7)).await, underling::Settled::Finished);
        assert_eq!(crate::support::job(&queue, id).await.result, Some(json!(7)));
    }
}
