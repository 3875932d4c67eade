//! Settling attempts: finish, fail, retry with backoff, stale attempts.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::{EnqueueOptions, JobState, Outcome, RetryOptions, Settle, Settled};

use crate::support::*;

behaviours! {
    async fn finish_stores_the_result_and_marks_the_job_finished(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        let before = Utc::now() - chrono::Duration::seconds(1);
        assert_eq!(finish(t, &claimed, json!({"sum": 3, "list": [1, "x"]})).await, Settled::Finished);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Finished);
        assert_eq!(job.result, Some(json!({"sum": 3, "list": [1, "x"]})));
        assert_eq!(job.retries, 0);
        assert_eq!(job.worker_id, Some(w));
        let finished = job.finished.expect("finished is set");
        assert!(finished > before && finished < Utc::now() + chrono::Duration::seconds(1));
    }

    async fn finish_with_a_null_result_stores_json_null(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        finish(t, &claimed, json!(null)).await;
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Finished);
        assert_eq!(job.result, Some(json!(null)));
    }

    async fn failed_attempt_with_tries_left_goes_back_to_inactive(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(3)).await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        assert_eq!(fail(t, &claimed, json!("timeout"), Duration::ZERO).await, Settled::Retried);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 1);
        assert_eq!(job.attempts, 3);
        assert_eq!(job.result, Some(json!("timeout")));
        assert!(job.retried.is_some());
    }

    async fn failed_attempt_is_delayed_by_the_retry_delay(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        let before = Utc::now();
        assert_eq!(fail(t, &claimed, json!("e"), Duration::from_secs(60)).await, Settled::Retried);
        let after = Utc::now();
        let delayed = job(&queue, id).await.delayed;
        assert!(delayed >= before + chrono::Duration::seconds(59), "delayed {delayed}");
        assert!(delayed <= after + chrono::Duration::seconds(61), "delayed {delayed}");
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
    }

    async fn retried_attempt_can_be_claimed_again_with_the_next_retry_count(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let first = claim_one(t, w).await;
        fail(t, &first, json!("e"), Duration::ZERO).await;
        let second = claim_one(t, w).await;
        assert_eq!(second.id, id);
        assert_eq!(second.retries, 1);
        assert_eq!(second.state, JobState::Active);
    }

    async fn failed_last_attempt_marks_the_job_failed_with_the_error(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let first = claim_one(t, w).await;
        assert_eq!(fail(t, &first, json!("first"), Duration::ZERO).await, Settled::Retried);
        let second = claim_one(t, w).await;
        assert_eq!(fail(t, &second, json!({"error": "second"}), Duration::ZERO).await, Settled::Failed);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!({"error": "second"})));
        assert_eq!(job.retries, 1);
        assert!(job.finished.is_some());
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
    }

    async fn failed_single_attempt_job_fails_for_good(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        assert_eq!(fail(t, &claimed, json!("boom"), Duration::ZERO).await, Settled::Failed);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.retries, 0);
        assert_eq!(job.result, Some(json!("boom")));
    }

    async fn settle_of_an_attempt_that_was_retried_meanwhile_is_stale(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        queue.retry_job(id, RetryOptions::default()).await.unwrap();
        let before = job(&queue, id).await;
        assert_eq!(before.state, JobState::Inactive);
        assert_eq!(before.retries, 1);

        assert_eq!(finish(t, &claimed, json!("late")).await, Settled::Stale);
        assert_eq!(fail(t, &claimed, json!("late"), Duration::ZERO).await, Settled::Stale);
        assert_eq!(job(&queue, id).await, before);
    }

    async fn settle_of_an_old_attempt_does_not_touch_the_new_one(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w1 = worker(t).await;
        let w2 = worker(t).await;
        let old = claim_one(t, w1).await;
        queue.retry_job(id, RetryOptions::default()).await.unwrap();
        let new = claim_one(t, w2).await;
        assert_eq!(new.retries, 1);
        let before = job(&queue, id).await;

        assert_eq!(finish(t, &old, json!("old")).await, Settled::Stale);
        assert_eq!(job(&queue, id).await, before);
        assert_eq!(finish(t, &new, json!("new")).await, Settled::Finished);
        let after = job(&queue, id).await;
        assert_eq!(after.state, JobState::Finished);
        assert_eq!(after.result, Some(json!("new")));
        assert_eq!(after.worker_id, Some(w2));
    }

    async fn settling_twice_is_stale_the_second_time(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        assert_eq!(finish(t, &claimed, json!(1)).await, Settled::Finished);
        assert_eq!(finish(t, &claimed, json!(2)).await, Settled::Stale);
        assert_eq!(fail(t, &claimed, json!(3), Duration::ZERO).await, Settled::Stale);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Finished);
        assert_eq!(job.result, Some(json!(1)));
    }

    async fn settle_of_an_inactive_job_is_stale(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let before = job(&queue, id).await;
        assert_eq!(settle(t, id, 0, Outcome::Finished(json!(1))).await, Settled::Stale);
        assert_eq!(job(&queue, id).await, before);
    }

    async fn settle_of_a_missing_job_is_stale(t) {
        assert_eq!(settle(t, 4242, 0, Outcome::Finished(json!(1))).await, Settled::Stale);
    }

    async fn settle_of_a_removed_job_is_stale(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        queue.retry_job(id, RetryOptions::default()).await.unwrap();
        queue.remove_job(id).await.unwrap();
        assert_eq!(finish(t, &claimed, json!(1)).await, Settled::Stale);
        assert_eq!(queue.job(id).await.unwrap(), None);
    }

    async fn settle_many_returns_outcomes_in_input_order(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "add").await;
        let b = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let c = enqueue(&queue, "add").await;
        let d = enqueue(&queue, "add").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 3).await, vec![a, b, c]);
        let settles = vec![
            Settle { id: d, retries: 0, outcome: Outcome::Finished(json!("d")) },
            Settle { id: c, retries: 0, outcome: Outcome::Failed { error: json!("c"), retry_delay: Duration::ZERO } },
            Settle { id: b, retries: 0, outcome: Outcome::Failed { error: json!("b"), retry_delay: Duration::ZERO } },
            Settle { id: a, retries: 0, outcome: Outcome::Finished(json!("a")) },
        ];
        let done = settle_all(t, &settles).await;
        assert_eq!(done, vec![Settled::Stale, Settled::Failed, Settled::Retried, Settled::Finished]);
        assert_eq!(state(&queue, a).await, JobState::Finished);
        assert_eq!(state(&queue, b).await, JobState::Inactive);
        assert_eq!(state(&queue, c).await, JobState::Failed);
        assert_eq!(state(&queue, d).await, JobState::Inactive);
        assert_eq!(job(&queue, a).await.result, Some(json!("a")));
        assert_eq!(job(&queue, c).await.result, Some(json!("c")));
    }

    async fn settle_of_nothing_returns_nothing(t) {
        assert_eq!(settle_all(t, &[]).await, Vec::<Settled>::new());
    }
}
