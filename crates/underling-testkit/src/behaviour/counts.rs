//! Job counts read from counters (migration 0009): exact after every kind of change, as the
//! rows would count them. (Every behaviour also ends with the same comparison, in
//! `crate::counts`.)

use std::time::Duration;

use chrono::Utc;
use underling::store::ListJobs;
use underling::{EnqueueOptions, JobFilter, JobState, RetryOptions};

use crate::support::*;

/// (inactive, active, finished, failed, delayed) of `stats`.
async fn counted(t: &crate::TestStore) -> (u64, u64, u64, u64, u64) {
    let s = t.queue.stats().await.unwrap();
    (
        s.inactive_jobs,
        s.active_jobs,
        s.finished_jobs,
        s.failed_jobs,
        s.delayed_jobs,
    )
}

/// (name, inactive, active, finished, failed) of each queue listed.
async fn per_queue(t: &crate::TestStore) -> Vec<(String, u64, u64, u64, u64)> {
    let queues = t.queue.queues().await.unwrap();
    queues
        .into_iter()
        .map(|q| (q.name, q.inactive, q.active, q.finished, q.failed))
        .collect()
}

behaviours! {
    async fn counts_follow_enqueue_claim_settle_retry_remove_and_purge(t) {
        let queue = t.queue.clone();
        let a = enqueue_with(&queue, "add", EnqueueOptions::new().queue("q1")).await;
        let b = enqueue_with(&queue, "add", EnqueueOptions::new().queue("q1")).await;
        let c = enqueue_with(&queue, "add", EnqueueOptions::new().queue("q2")).await;
        assert_eq!(counted(t).await, (3, 0, 0, 0, 0));
        let w = worker(t).await;
        run_to_finish(t, w, a).await;
        run_to_failure(t, w, b).await;
        assert_eq!(counted(t).await, (1, 0, 1, 1, 0));
        assert_eq!(claim_ids(t, w, &["q2"], 1).await, vec![c]);
        assert_eq!(counted(t).await, (0, 1, 1, 1, 0));
        assert_eq!(
            per_queue(t).await,
            vec![("q1".into(), 0, 0, 1, 1), ("q2".into(), 0, 1, 0, 0)]
        );
        queue.retry_job(b, RetryOptions::default()).await.unwrap();
        assert_eq!(counted(t).await, (1, 1, 1, 0, 0));
        queue.remove_job(b).await.unwrap();
        assert_eq!(counted(t).await, (0, 1, 1, 0, 0));
        let finished = JobFilter { states: vec![JobState::Finished], ..JobFilter::default() };
        assert_eq!(queue.purge_batch(&finished, 10).await.unwrap(), 1);
        assert_eq!(counted(t).await, (0, 1, 0, 0, 0));
        assert_eq!(per_queue(t).await, vec![("q2".into(), 0, 1, 0, 0)]);
    }

    async fn counts_move_a_retried_job_to_its_new_queue(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().queue("old")).await;
        let w = worker(t).await;
        run_to_failure(t, w, id).await;
        queue
            .retry_job(id, RetryOptions { queue: Some("new".into()), ..RetryOptions::default() })
            .await
            .unwrap();
        assert_eq!(per_queue(t).await, vec![("new".into(), 1, 0, 0, 0)]);
    }

    async fn delayed_jobs_are_counted_as_delayed_until_due_without_any_claim(t) {
        let queue = t.queue.clone();
        enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_secs(60))).await;
        enqueue(&queue, "add").await;
        let now = Utc::now();
        let stats = t.store.stats(Some(now)).await.unwrap();
        assert_eq!((stats.inactive_jobs, stats.delayed_jobs), (2, 1));
        let later = t.store.stats(Some(now + chrono::Duration::seconds(120))).await.unwrap();
        assert_eq!((later.inactive_jobs, later.delayed_jobs), (2, 0));
    }

    async fn expired_jobs_are_not_counted_before_repair_removes_them(t) {
        let queue = t.queue.clone();
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("q").expire(Duration::from_secs(60))).await;
        enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new().queue("q").delay(Duration::from_secs(600)).expire(Duration::from_secs(60)),
        )
        .await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("q")).await;
        let later = Some(Utc::now() + chrono::Duration::seconds(120));
        let stats = t.store.stats(later).await.unwrap();
        assert_eq!((stats.inactive_jobs, stats.delayed_jobs), (1, 0));
        let queues = t.store.queues(later).await.unwrap();
        assert_eq!((queues[0].name.as_str(), queues[0].inactive), ("q", 1));
        let all = JobFilter::default();
        let listed = t
            .store
            .list(ListJobs { filter: &all, limit: 10, offset: 0, before: None, now: later })
            .await
            .unwrap();
        assert_eq!((listed.total, listed.jobs.len()), (1, 1));
    }

    async fn list_totals_by_state_and_queue_count_only_those(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        for q in ["a", "a", "b"] {
            let id = enqueue_with(&queue, "add", EnqueueOptions::new().queue(q)).await;
            run_to_failure(t, w, id).await;
        }
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let failed_in_a = JobFilter {
            states: vec![JobState::Failed],
            queues: vec!["a".into()],
            ..JobFilter::default()
        };
        let page = queue.list_jobs(&failed_in_a, 1, 0).await.unwrap();
        assert_eq!((page.total, page.jobs.len()), (2, 1));
        let any_in_b = JobFilter { queues: vec!["b".into()], ..JobFilter::default() };
        assert_eq!(queue.list_jobs(&any_in_b, 10, 0).await.unwrap().total, 1);
        let inactive_or_failed = JobFilter {
            states: vec![JobState::Inactive, JobState::Failed],
            ..JobFilter::default()
        };
        assert_eq!(queue.list_jobs(&inactive_or_failed, 10, 0).await.unwrap().total, 4);
    }
}
