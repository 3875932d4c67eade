//! Releasing claimed jobs that never started: back to inactive, attempt unused, and only
//! the worker's own current attempts.

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::support::*;

behaviours! {
    async fn release_puts_an_unstarted_job_back_with_its_attempt_unused(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        let released = release(t, w, &[(claimed.id, claimed.retries)]).await;
        assert_eq!(released, 1);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 0);
        assert_eq!(job.attempts, 2);
        assert_eq!(job.worker_id, None);
        assert_eq!(job.started, None);
    }

    async fn a_released_job_can_be_claimed_again_at_once(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let first = worker(t).await;
        let second = worker(t).await;
        let claimed = claim_one(t, first).await;
        release(t, first, &[(claimed.id, claimed.retries)]).await;
        assert_eq!(claim_ids(t, second, &["default"], 10).await, vec![id]);
        assert_eq!(job(&queue, id).await.worker_id, Some(second));
    }

    async fn release_leaves_a_job_claimed_by_another_worker_alone(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let owner = worker(t).await;
        let other = worker(t).await;
        let claimed = claim_one(t, owner).await;
        let released = release(t, other, &[(claimed.id, claimed.retries)]).await;
        assert_eq!(released, 0);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.worker_id, Some(owner));
    }

    async fn release_of_a_stale_attempt_changes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(3)).await;
        let w = worker(t).await;
        let first = claim_one(t, w).await;
        fail(t, &first, json!("boom"), std::time::Duration::ZERO).await;
        let second = claim_one(t, w).await;
        assert_eq!(second.retries, 1);
        let released = release(t, w, &[(first.id, first.retries)]).await;
        assert_eq!(released, 0);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.retries, 1);
    }

    async fn release_leaves_finished_jobs_alone(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        finish(t, &claimed, json!(1)).await;
        let released = release(t, w, &[(claimed.id, claimed.retries)]).await;
        assert_eq!(released, 0);
        assert_eq!(job(&queue, id).await.state, JobState::Finished);
    }

    async fn release_of_nothing_is_a_no_op(t) {
        let w = worker(t).await;
        assert_eq!(release(t, w, &[]).await, 0);
    }
}
