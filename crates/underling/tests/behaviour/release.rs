//! Releasing claimed jobs that never started: back to inactive, attempt unused, and only
//! the worker's own current attempts.

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::common::*;

behaviour! {
    async fn release_puts_an_unstarted_job_back_with_its_attempt_unused(queue) {
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(&queue).await;
        let claimed = claim_one(&queue, w).await;
        let released = queue.backend().release(w, &[(claimed.id, claimed.retries)]).await.unwrap();
        assert_eq!(released, 1);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 0);
        assert_eq!(job.attempts, 2);
        assert_eq!(job.worker_id, None);
        assert_eq!(job.started, None);
    }

    async fn a_released_job_can_be_claimed_again_at_once(queue) {
        let id = enqueue(&queue, "add").await;
        let first = worker(&queue).await;
        let second = worker(&queue).await;
        let claimed = claim_one(&queue, first).await;
        queue.backend().release(first, &[(claimed.id, claimed.retries)]).await.unwrap();
        assert_eq!(claim_ids(&queue, second, &["default"], 10).await, vec![id]);
        assert_eq!(job(&queue, id).await.worker_id, Some(second));
    }

    async fn release_leaves_a_job_claimed_by_another_worker_alone(queue) {
        let id = enqueue(&queue, "add").await;
        let owner = worker(&queue).await;
        let other = worker(&queue).await;
        let claimed = claim_one(&queue, owner).await;
        let released = queue.backend().release(other, &[(claimed.id, claimed.retries)]).await.unwrap();
        assert_eq!(released, 0);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.worker_id, Some(owner));
    }

    async fn release_of_a_stale_attempt_changes_nothing(queue) {
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(3)).await;
        let w = worker(&queue).await;
        let first = claim_one(&queue, w).await;
        fail(&queue, &first, json!("boom"), std::time::Duration::ZERO).await;
        let second = claim_one(&queue, w).await;
        assert_eq!(second.retries, 1);
        let released = queue.backend().release(w, &[(first.id, first.retries)]).await.unwrap();
        assert_eq!(released, 0);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.retries, 1);
    }

    async fn release_leaves_finished_jobs_alone(queue) {
        let id = enqueue(&queue, "add").await;
        let w = worker(&queue).await;
        let claimed = claim_one(&queue, w).await;
        finish(&queue, &claimed, json!(1)).await;
        let released = queue.backend().release(w, &[(claimed.id, claimed.retries)]).await.unwrap();
        assert_eq!(released, 0);
        assert_eq!(job(&queue, id).await.state, JobState::Finished);
    }

    async fn release_of_nothing_is_a_no_op(queue) {
        let w = worker(&queue).await;
        assert_eq!(queue.backend().release(w, &[]).await.unwrap(), 0);
    }
}
