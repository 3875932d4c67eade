//! Claiming: order, limits, queues and tasks, delays and expiry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use underling::store::{Claim, Cycle, Enqueue, NextDue};
use underling::{ClaimSpec, EnqueueOptions, JobState, NewJob};

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

    /// A claim from several queues takes their ready jobs in one priority, then id, order
    /// across the queues (not queue by queue), at most `limit` of them, and leaves delayed jobs
    /// of every queue alone, however high their priority.
    async fn claim_across_queues_takes_priority_then_id_order_and_skips_delayed_jobs(t) {
        let queue = t.queue.clone();
        let later = || EnqueueOptions::new().delay(Duration::from_secs(3600));
        let a0 = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let a_delayed = enqueue_with(&queue, "add", later().queue("a").priority(9)).await;
        let a2 = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a").priority(2)).await;
        let b5 = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b").priority(5)).await;
        let b0 = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        let b_delayed = enqueue_with(&queue, "add", later().queue("b").priority(5)).await;
        let c2 = enqueue_with(&queue, "add", EnqueueOptions::new().queue("c").priority(2)).await;
        let past = Utc::now() - chrono::Duration::hours(1);
        let c1 = enqueue_with(&queue, "add", EnqueueOptions::new().queue("c").priority(1).run_at(past)).await;
        let other = enqueue_with(&queue, "add", EnqueueOptions::new().queue("other").priority(9)).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["a", "b", "c"], 3).await, vec![b5, a2, c2]);
        assert_eq!(claim_ids(t, w, &["c", "b", "a"], 10).await, vec![c1, a0, b0]);
        assert!(claim_ids(t, w, &["a", "b", "c"], 10).await.is_empty());
        for id in [a_delayed, b_delayed, other] {
            assert_eq!(state(&queue, id).await, JobState::Inactive);
        }
    }

    /// Delayed jobs of several queues that have fallen due are claimed in the same priority,
    /// then id, order as jobs that were due from the start, and those still delayed are not.
    async fn delayed_jobs_that_fell_due_join_the_claim_order_across_queues(t) {
        let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a time");
        let hour = chrono::Duration::hours(1);
        let mut ids = Vec::new();
        for (name, priority, delay_hours) in
            [("a", 0, 1), ("b", 3, 0), ("a", 3, 1), ("b", 0, 2), ("a", 1, 0), ("b", 3, 1)]
        {
            let opts = EnqueueOptions::new()
                .queue(name)
                .priority(priority)
                .delay(Duration::from_secs(3600 * delay_hours));
            let job = NewJob::new("add", json!({}), opts).unwrap();
            let enqueued = t.store.enqueue(Enqueue { jobs: std::slice::from_ref(&job), now: Some(t0) });
            ids.push(enqueued.await.unwrap()[0].id);
        }
        let w = worker(t).await;
        let claim_at = |now, limit| {
            let spec = spec(&["a", "b"]);
            let store = t.store.clone();
            async move {
                let claim = Claim { worker_id: w, spec: &spec, limit };
                let reply = store.cycle(Cycle { settles: &[], claim: Some(claim), now: Some(now) });
                reply.await.unwrap().claimed.into_iter().map(|j| j.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(claim_at(t0, 1).await, vec![ids[1]]);
        assert_eq!(claim_at(t0 + hour, 3).await, vec![ids[2], ids[5], ids[4]]);
        assert_eq!(claim_at(t0 + hour, 10).await, vec![ids[0]]);
        assert_eq!(claim_at(t0 + hour * 2, 10).await, vec![ids[3]]);
    }

    /// A paused queue among the claimed ones is skipped; the others are claimed as usual.
    async fn claim_across_queues_skips_a_paused_one(t) {
        let queue = t.queue.clone();
        let a = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let b = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b").priority(5)).await;
        queue.pause_queue("b").await.unwrap();
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["a", "b"], 10).await, vec![a]);
        assert_eq!(state(&queue, b).await, JobState::Inactive);
    }
}
