//! Retrying jobs by hand: one by id with changes, or all that match a filter.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::{EnqueueOptions, Error, JobFilter, JobState, RetryOptions};

use crate::support::*;

behaviours! {
    async fn retry_of_a_finished_job_puts_it_back_in_the_queue(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, id).await;
        let before = Utc::now() - chrono::Duration::seconds(1);
        queue.retry_job(id, RetryOptions::default()).await.unwrap();
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 1);
        let retried = job.retried.expect("retried is set");
        assert!(retried > before, "retried {retried}");
        assert!(job.delayed <= Utc::now(), "due now");
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![id]);
    }

    async fn retry_of_a_failed_job_puts_it_back_in_the_queue(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_failure(t, w, id).await;
        queue.retry_job(id, RetryOptions::default()).await.unwrap();
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 1);
        let again = claim_one(t, w).await;
        assert_eq!(again.id, id);
        assert_eq!(again.retries, 1);
    }

    async fn retry_of_an_inactive_job_counts_a_retry(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        queue.retry_job(id, RetryOptions::default()).await.unwrap();
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 1);
    }

    async fn retry_applies_queue_priority_and_attempts(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, id).await;
        let opts = RetryOptions {
            queue: Some("other".into()),
            priority: Some(7),
            attempts: Some(4),
            ..RetryOptions::default()
        };
        queue.retry_job(id, opts).await.unwrap();
        let job = job(&queue, id).await;
        assert_eq!(job.queue, "other");
        assert_eq!(job.priority, 7);
        assert_eq!(job.attempts, 4);
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        assert_eq!(claim_ids(t, w, &["other"], 10).await, vec![id]);
    }

    async fn retry_keeps_what_it_is_not_told_to_change(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new().queue("q").priority(3).attempts(2).lax(true),
        )
        .await;
        queue.retry_job(id, RetryOptions { priority: Some(9), ..Default::default() }).await.unwrap();
        let job = job(&queue, id).await;
        assert_eq!(job.queue, "q");
        assert_eq!(job.priority, 9);
        assert_eq!(job.attempts, 2);
        assert!(job.lax);
    }

    async fn retry_with_a_delay_is_not_claimed_before_it_is_due(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, id).await;
        let before = Utc::now();
        let opts = RetryOptions { delay: Some(Duration::from_secs(600)), ..Default::default() };
        queue.retry_job(id, opts).await.unwrap();
        let job = job(&queue, id).await;
        assert!(job.delayed >= before + chrono::Duration::seconds(599), "delayed {}", job.delayed);
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
    }

    async fn retry_with_parents_makes_the_job_wait_for_them(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, id).await;
        let parent = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let opts = RetryOptions { parents: Some(vec![parent]), ..Default::default() };
        queue.retry_job(id, opts).await.unwrap();
        assert_eq!(job(&queue, id).await.parents, vec![parent]);
        assert_eq!(job(&queue, parent).await.children, vec![id]);
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        run_to_finish(t, w, parent).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![id]);
    }

    async fn retry_with_duplicate_parents_stores_them_once(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let id = enqueue(&queue, "add").await;
        let opts = RetryOptions { parents: Some(vec![parent, parent]), ..Default::default() };
        queue.retry_job(id, opts).await.unwrap();
        assert_eq!(job(&queue, id).await.parents, vec![parent]);
        assert_eq!(job(&queue, parent).await.children, vec![id]);
    }

    async fn retry_with_the_same_parents_keeps_them(t) {
        let queue = t.queue.clone();
        let p1 = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let p2 = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let id = enqueue_with(&queue, "child", EnqueueOptions::new().parents([p1, p2])).await;
        let opts = RetryOptions { parents: Some(vec![p2, p1]), ..Default::default() };
        queue.retry_job(id, opts).await.unwrap();
        assert_eq!(job(&queue, id).await.parents, vec![p1, p2]);
        let opts = RetryOptions { parents: Some(vec![p2]), ..Default::default() };
        queue.retry_job(id, opts).await.unwrap();
        assert_eq!(job(&queue, id).await.parents, vec![p2]);
        assert!(job(&queue, p1).await.children.is_empty());
    }

    async fn retry_with_no_parents_drops_the_old_ones(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let id = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        queue.retry_job(id, RetryOptions { parents: Some(vec![]), ..Default::default() }).await.unwrap();
        assert!(job(&queue, id).await.parents.is_empty());
        assert!(job(&queue, parent).await.children.is_empty());
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![id]);
    }

    async fn retry_with_lax_lets_the_child_of_a_failed_parent_run(t) {
        let queue = t.queue.clone();
        let parent = enqueue(&queue, "parent").await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let w = worker(t).await;
        run_to_failure(t, w, parent).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        queue.retry_job(child, RetryOptions { lax: Some(true), ..Default::default() }).await.unwrap();
        assert!(job(&queue, child).await.lax);
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![child]);
    }

    async fn retry_of_a_missing_job_is_job_not_found(t) {
        let queue = t.queue.clone();
        let err = queue.retry_job(42, RetryOptions::default()).await.unwrap_err();
        assert!(matches!(err, Error::JobNotFound(42)), "{err:?}");
        assert_eq!(err.to_string(), "job 42 not found");
    }

    async fn retry_with_a_missing_parent_changes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let before = job(&queue, id).await;
        let opts = RetryOptions { parents: Some(vec![999]), priority: Some(5), ..Default::default() };
        let err = queue.retry_job(id, opts).await.unwrap_err();
        assert!(matches!(err, Error::ParentNotFound(999)), "{err:?}");
        assert_eq!(err.to_string(), "parent job 999 does not exist");
        assert_eq!(job(&queue, id).await, before);
    }

    async fn retry_with_zero_attempts_is_invalid_and_changes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let before = job(&queue, id).await;
        let err = queue
            .retry_job(id, RetryOptions { attempts: Some(0), ..Default::default() })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
        assert_eq!(err.to_string(), "invalid option: attempts must be at least 1, got 0");
        assert_eq!(job(&queue, id).await, before);
    }

    async fn retry_with_an_empty_queue_name_is_invalid(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let err = queue
            .retry_job(id, RetryOptions { queue: Some(String::new()), ..Default::default() })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidQueue(ref q) if q.is_empty()), "{err:?}");
        assert_eq!(job(&queue, id).await.queue, "default");
    }

    async fn retry_jobs_retries_every_match_and_counts_them(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let mut failed = Vec::new();
        for _ in 0..3 {
            let id = enqueue(&queue, "add").await;
            run_to_failure(t, w, id).await;
            failed.push(id);
        }
        let finished = enqueue(&queue, "add").await;
        run_to_finish(t, w, finished).await;
        let inactive = enqueue(&queue, "add").await;

        let filter = JobFilter { states: vec![JobState::Failed], ..Default::default() };
        assert_eq!(queue.retry_jobs(&filter).await.unwrap(), 3);
        for id in &failed {
            let job = job(&queue, *id).await;
            assert_eq!(job.state, JobState::Inactive);
            assert_eq!(job.retries, 1);
        }
        assert_eq!(state(&queue, finished).await, JobState::Finished);
        assert_eq!(job(&queue, inactive).await.retries, 0);
        assert_eq!(queue.retry_jobs(&filter).await.unwrap(), 0);
    }

    async fn retry_jobs_by_queue_and_task(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let a = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let b = enqueue_with(&queue, "mul", EnqueueOptions::new().queue("a")).await;
        let c = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        for id in [a, b, c] {
            run_to_failure(t, w, id).await;
        }
        let filter = JobFilter {
            queues: vec!["a".into()],
            tasks: vec!["add".into()],
            ..Default::default()
        };
        assert_eq!(queue.retry_jobs(&filter).await.unwrap(), 1);
        assert_eq!(state(&queue, a).await, JobState::Inactive);
        assert_eq!(state(&queue, b).await, JobState::Failed);
        assert_eq!(state(&queue, c).await, JobState::Failed);
    }

    async fn retried_jobs_are_due_now(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        fail(t, &claimed, json!("e"), Duration::from_secs(3600)).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        let filter = JobFilter { ids: vec![id], ..Default::default() };
        assert_eq!(queue.retry_jobs(&filter).await.unwrap(), 1);
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![id]);
    }
}
