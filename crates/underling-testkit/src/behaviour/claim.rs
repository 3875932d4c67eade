//! Claiming: order, limits, queues and tasks, delays and expiry.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::NextDue;
use underling::{ClaimSpec, EnqueueOptions, JobState};

use crate::support::*;

behaviours! {
    async fn claim_marks_the_job_active_for_the_worker(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("add", json!({"a": 1}), EnqueueOptions::new().attempts(3)).await.unwrap();
        let w = worker(t).await;
        let before = Utc::now() - chrono::Duration::seconds(1);
        let claimed = claim_one(t, w).await;
        assert_eq!(claimed.id, id);
        assert_eq!(claimed.task, "add");
        assert_eq!(claimed.args, json!({"a": 1}));
        assert_eq!(claimed.state, JobState::Active);
        assert_eq!(claimed.worker_id, Some(w));
        assert_eq!(claimed.retries, 0);
        assert_eq!(claimed.attempts, 3);
        let stored = job(&queue, id).await;
        assert_eq!(stored.state, JobState::Active);
        assert_eq!(stored.worker_id, Some(w));
        let started = stored.started.expect("started is set");
        assert!(started > before && started < Utc::now() + chrono::Duration::seconds(1));
    }

    async fn claim_takes_higher_priority_first(t) {
        let queue = t.queue.clone();
        let low = enqueue_with(&queue, "add", EnqueueOptions::new().priority(1)).await;
        let high = enqueue_with(&queue, "add", EnqueueOptions::new().priority(5)).await;
        let negative = enqueue_with(&queue, "add", EnqueueOptions::new().priority(-3)).await;
        let zero = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(claim_one(t, w).await.id);
        }
        assert_eq!(order, vec![high, low, zero, negative]);
    }

    async fn claim_takes_equal_priorities_oldest_first(t) {
        let queue = t.queue.clone();
        let ids = vec![
            enqueue(&queue, "add").await,
            enqueue(&queue, "add").await,
            enqueue(&queue, "add").await,
        ];
        let w = worker(t).await;
        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(claim_one(t, w).await.id);
        }
        assert_eq!(order, ids);
    }

    async fn claim_returns_a_batch_in_priority_then_id_order(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "add").await;
        let b = enqueue_with(&queue, "add", EnqueueOptions::new().priority(2)).await;
        let c = enqueue(&queue, "add").await;
        let d = enqueue_with(&queue, "add", EnqueueOptions::new().priority(2)).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![b, d, a, c]);
    }

    async fn claim_takes_at_most_limit_jobs(t) {
        let queue = t.queue.clone();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(enqueue(&queue, "add").await);
        }
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 3).await, ids[..3].to_vec());
        assert_eq!(claim_ids(t, w, &["default"], 3).await, ids[3..].to_vec());
        assert!(claim_ids(t, w, &["default"], 3).await.is_empty());
    }

    async fn claim_with_limit_zero_takes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 0).await.is_empty());
        assert_eq!(state(&queue, id).await, JobState::Inactive);
    }

    async fn claim_never_hands_out_an_active_job_again(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w1 = worker(t).await;
        let w2 = worker(t).await;
        assert_eq!(claim_ids(t, w1, &["default"], 5).await, vec![id]);
        assert!(claim_ids(t, w2, &["default"], 5).await.is_empty());
        assert!(claim_ids(t, w1, &["default"], 5).await.is_empty());
        assert_eq!(job(&queue, id).await.worker_id, Some(w1));
    }

    async fn claim_on_an_empty_store_returns_nothing(t) {
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
    }

    async fn claim_only_takes_jobs_from_the_given_queues(t) {
        let queue = t.queue.clone();
        let a = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let b = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        let c = enqueue_with(&queue, "add", EnqueueOptions::new().queue("c")).await;
        let d = enqueue(&queue, "add").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["c", "a"], 10).await, vec![a, c]);
        assert!(claim_ids(t, w, &["nope"], 10).await.is_empty());
        assert_eq!(state(&queue, b).await, JobState::Inactive);
        assert_eq!(state(&queue, d).await, JobState::Inactive);
    }

    async fn claim_with_no_queues_takes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &[], 10).await.is_empty());
        assert_eq!(state(&queue, id).await, JobState::Inactive);
    }

    async fn claim_only_takes_the_given_tasks(t) {
        let queue = t.queue.clone();
        let add = enqueue(&queue, "add").await;
        let mul = enqueue(&queue, "mul").await;
        let sub = enqueue(&queue, "sub").await;
        let w = worker(t).await;
        let spec = ClaimSpec {
            queues: vec!["default".into()],
            tasks: vec!["sub".into(), "add".into(), "unknown".into()],
        };
        let ids: Vec<i64> = claim_spec(t, w, &spec, 10)
            .await
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, vec![add, sub]);
        assert_eq!(state(&queue, mul).await, JobState::Inactive);
    }

    async fn claim_with_no_tasks_takes_any_task(t) {
        let queue = t.queue.clone();
        let add = enqueue(&queue, "add").await;
        let mul = enqueue(&queue, "mul").await;
        let w = worker(t).await;
        let spec = ClaimSpec { queues: vec!["default".into()], tasks: vec![] };
        let ids: Vec<i64> =
            claim_spec(t, w, &spec, 10).await.into_iter().map(|j| j.id).collect();
        assert_eq!(ids, vec![add, mul]);
    }

    async fn delayed_job_is_not_claimed_before_it_is_due(t) {
        let queue = t.queue.clone();
        let delayed = enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        let future = enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new().run_at(Utc::now() + chrono::Duration::hours(1)),
        )
        .await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        assert_eq!(state(&queue, delayed).await, JobState::Inactive);
        assert_eq!(state(&queue, future).await, JobState::Inactive);
    }

    async fn job_with_run_at_in_the_past_is_claimed(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new().run_at(Utc::now() - chrono::Duration::hours(1)),
        )
        .await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![id]);
    }

    async fn delayed_job_is_claimed_once_due(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_millis(1000))).await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![id]);
    }

    async fn delayed_job_does_not_block_later_jobs(t) {
        let queue = t.queue.clone();
        let _delayed = enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new().priority(9).delay(Duration::from_secs(3600)),
        )
        .await;
        let ready = enqueue(&queue, "add").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![ready]);
    }

    async fn next_due_reports_the_earliest_delayed_job(t) {
        let queue = t.queue.clone();
        let at = Utc::now() + chrono::Duration::hours(2);
        enqueue_with(&queue, "add", EnqueueOptions::new().run_at(at + chrono::Duration::hours(1))).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().run_at(at)).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("other").run_at(at - chrono::Duration::hours(1))).await;
        enqueue(&queue, "add").await;
        let due = t.store.next_due(NextDue { queues: &spec(&["default"]).queues, now: None }).await.unwrap().expect("a delayed job");
        assert!((due - at).num_milliseconds().abs() <= 1, "due {due}, expected {at}");
        assert_eq!(t.store.next_due(NextDue { queues: &spec(&["empty"]).queues, now: None }).await.unwrap(), None);
    }

    async fn expired_job_is_not_claimed(t) {
        let queue = t.queue.clone();
        let expired = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(1))).await;
        let fresh = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_secs(3600))).await;
        tick().await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![fresh]);
        assert_eq!(queue.job(expired).await.unwrap(), None, "an expired job is gone");
    }

    async fn expired_job_is_removed_by_repair(t) {
        let queue = t.queue.clone();
        let expired = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(1))).await;
        let fresh = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_secs(3600))).await;
        let plain = enqueue(&queue, "add").await;
        tick().await;
        let report = queue.repair(&Default::default()).await.unwrap();
        assert_eq!(report.expired_jobs, 1);
        assert_eq!(queue.job(expired).await.unwrap(), None);
        assert_eq!(state(&queue, fresh).await, JobState::Inactive);
        assert_eq!(state(&queue, plain).await, JobState::Inactive);
    }

    async fn a_job_that_started_before_expiry_is_not_removed_by_repair(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(1000))).await;
        let w = worker(t).await;
        let job = claim_one(t, w).await;
        assert_eq!(job.id, id);
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let report = queue.repair(&Default::default()).await.unwrap();
        assert_eq!(report.expired_jobs, 0);
        assert_eq!(state(&queue, id).await, JobState::Active);
        assert_eq!(finish(t, &job, json!("done")).await, underling::Settled::Finished);
        let report = queue.repair(&Default::default()).await.unwrap();
        assert_eq!(report.expired_jobs, 0);
        assert_eq!(state(&queue, id).await, JobState::Finished);
    }
}
