//! Claiming one job by id (for foreground runs).

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::common::*;

behaviour! {
    async fn claim_by_id_claims_that_job_and_no_other(queue) {
        let first = enqueue_with(&queue, "add", EnqueueOptions::new().priority(10)).await;
        let second = enqueue(&queue, "add").await;
        let w = worker(&queue).await;
        let job = queue.backend().claim_by_id(w, second).await.unwrap().expect("claimable");
        assert_eq!(job.id, second);
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.worker_id, Some(w));
        assert_eq!(state(&queue, second).await, JobState::Active);
        assert_eq!(state(&queue, first).await, JobState::Inactive);
    }

    async fn claim_by_id_ignores_the_queue_and_its_pause(queue) {
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().queue("paused")).await;
        queue.pause_queue("paused").await.unwrap();
        let w = worker(&queue).await;
        let job = queue.backend().claim_by_id(w, id).await.unwrap().expect("claimable");
        assert_eq!(job.id, id);
        assert_eq!(job.queue, "paused");
    }

    async fn claim_by_id_returns_none_for_a_missing_job(queue) {
        let w = worker(&queue).await;
        assert_eq!(queue.backend().claim_by_id(w, 999).await.unwrap(), None);
    }

    async fn claim_by_id_returns_none_for_an_active_job(queue) {
        let id = enqueue(&queue, "add").await;
        let w1 = worker(&queue).await;
        let w2 = worker(&queue).await;
        assert!(queue.backend().claim_by_id(w1, id).await.unwrap().is_some());
        assert_eq!(queue.backend().claim_by_id(w2, id).await.unwrap(), None);
        assert_eq!(job(&queue, id).await.worker_id, Some(w1));
    }

    async fn claim_by_id_returns_none_for_finished_and_failed_jobs(queue) {
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let w = worker(&queue).await;
        run_to_finish(&queue, w, finished).await;
        run_to_failure(&queue, w, failed).await;
        assert_eq!(queue.backend().claim_by_id(w, finished).await.unwrap(), None);
        assert_eq!(queue.backend().claim_by_id(w, failed).await.unwrap(), None);
        assert_eq!(state(&queue, finished).await, JobState::Finished);
        assert_eq!(state(&queue, failed).await, JobState::Failed);
    }

    async fn claim_by_id_returns_none_for_a_delayed_job(queue) {
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        let w = worker(&queue).await;
        assert_eq!(queue.backend().claim_by_id(w, id).await.unwrap(), None);
        assert_eq!(state(&queue, id).await, JobState::Inactive);
    }

    async fn claim_by_id_returns_none_for_an_expired_job(queue) {
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(1))).await;
        tick().await;
        let w = worker(&queue).await;
        assert_eq!(queue.backend().claim_by_id(w, id).await.unwrap(), None);
    }

    async fn claim_by_id_returns_none_while_a_parent_is_unfinished(queue) {
        let parent = enqueue(&queue, "parent").await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let w = worker(&queue).await;
        assert_eq!(queue.backend().claim_by_id(w, child).await.unwrap(), None);
        run_to_finish(&queue, w, parent).await;
        let job = queue.backend().claim_by_id(w, child).await.unwrap().expect("parent finished");
        assert_eq!(job.id, child);
    }

    async fn claim_by_id_claims_a_lax_child_of_a_failed_parent(queue) {
        let parent = enqueue(&queue, "parent").await;
        let strict = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let lax = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent).lax(true)).await;
        let w = worker(&queue).await;
        run_to_failure(&queue, w, parent).await;
        assert_eq!(queue.backend().claim_by_id(w, strict).await.unwrap(), None);
        assert!(queue.backend().claim_by_id(w, lax).await.unwrap().is_some());
    }

    async fn job_claimed_by_id_settles_like_any_other(queue) {
        let id = enqueue(&queue, "add").await;
        let w = worker(&queue).await;
        let job = queue.backend().claim_by_id(w, id).await.unwrap().unwrap();
        assert_eq!(finish(&queue, &job, json!(7)).await, underling::Settled::Finished);
        assert_eq!(crate::common::job(&queue, id).await.result, Some(json!(7)));
    }
}
