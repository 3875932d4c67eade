//! Listing jobs: filters, order and paging.

use chrono::Utc;
use serde_json::json;
use underling::{EnqueueOptions, InactiveState, JobFilter, JobState, Queue};

use crate::support::*;

/// The ids of the jobs matching `filter`, newest first, and the total.
async fn ids(queue: &Queue, filter: JobFilter) -> (Vec<i64>, u64) {
    let list = queue.list_jobs(&filter, 100, 0).await.unwrap();
    (list.jobs.iter().map(|j| j.id).collect(), list.total)
}

/// A filter on derived states (and base states).
fn derived(inactive: &[InactiveState], states: &[JobState]) -> JobFilter {
    JobFilter {
        inactive: inactive.to_vec(),
        states: states.to_vec(),
        ..JobFilter::default()
    }
}

behaviours! {
    async fn list_filters_scheduled_retryable_and_waiting_inactive_jobs(t) {
        let queue = t.queue.clone();
        let hour = std::time::Duration::from_secs(3600);
        let w = worker(t).await;
        let due = enqueue(&queue, "add").await;
        let scheduled = enqueue_with(&queue, "add", EnqueueOptions::new().delay(hour)).await;
        let retryable = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let attempt = claim_by_id(t, w, retryable).await.expect("ready");
        fail(t, &attempt, json!("once"), hour).await;
        let parent = enqueue(&queue, "add").await;
        let waiting = enqueue_with(&queue, "add", EnqueueOptions::new().parent(parent)).await;
        let failed = enqueue(&queue, "add").await;
        run_to_failure(t, w, failed).await;
        // Parents done: finished, or failed under lax.
        let lax_child = enqueue_with(&queue, "add", EnqueueOptions::new().parent(failed).lax(true)).await;
        let strict_child = enqueue_with(&queue, "add", EnqueueOptions::new().parent(failed)).await;

        use InactiveState::*;
        assert_eq!(ids(&queue, derived(&[Scheduled], &[])).await, (vec![scheduled], 1));
        assert_eq!(ids(&queue, derived(&[Retryable], &[])).await, (vec![retryable], 1));
        assert_eq!(ids(&queue, derived(&[Waiting], &[])).await, (vec![strict_child, waiting], 2));
        assert_eq!(
            ids(&queue, derived(&[Scheduled, Retryable], &[JobState::Failed])).await,
            (vec![failed, retryable, scheduled], 3)
        );
        let (inactive, total) = ids(&queue, derived(&[], &[JobState::Inactive])).await;
        assert_eq!(total, 7);
        assert!(inactive.contains(&due) && inactive.contains(&lax_child) && inactive.contains(&parent));
        // A finished parent releases its child.
        run_to_finish(t, w, parent).await;
        assert_eq!(ids(&queue, derived(&[Waiting], &[])).await, (vec![strict_child], 1));
    }

    async fn list_returns_every_job_newest_first(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "add").await;
        let b = enqueue_with(&queue, "mul", EnqueueOptions::new().queue("q").priority(9)).await;
        let c = enqueue(&queue, "add").await;
        assert_eq!(ids(&queue, JobFilter::default()).await, (vec![c, b, a], 3));
    }

    async fn list_pages_by_keyset_below_the_last_id_with_the_filter_applied(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "add").await;
        let _other = enqueue(&queue, "mul").await;
        let b = enqueue(&queue, "add").await;
        let c = enqueue(&queue, "add").await;
        let d = enqueue(&queue, "add").await;
        let adds = JobFilter { tasks: vec!["add".into()], ..JobFilter::default() };
        let page = |before| {
            let (queue, adds) = (queue.clone(), adds.clone());
            async move {
                let list = queue.list_jobs_before(&adds, before, 2).await.unwrap();
                (list.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), list.total)
            }
        };
        assert_eq!(page(None).await, (vec![d, c], 4));
        assert_eq!(page(Some(c)).await, (vec![b, a], 4));
        assert_eq!(page(Some(a)).await, (vec![], 4));
        // A job enqueued meanwhile does not shift the pages below it.
        let _e = enqueue(&queue, "add").await;
        assert_eq!(page(Some(c)).await, (vec![b, a], 5));
    }

    async fn list_of_an_empty_store_is_empty(t) {
        let queue = t.queue.clone();
        assert_eq!(ids(&queue, JobFilter::default()).await, (vec![], 0));
    }

    async fn list_returns_full_jobs_with_parents_and_children(t) {
        let queue = t.queue.clone();
        let parent = enqueue(&queue, "parent").await;
        let child = queue
            .enqueue("child", json!({"x": 1}), EnqueueOptions::new().parent(parent).notes(json!({"n": 1})))
            .await
            .unwrap();
        let list = queue.list_jobs(&JobFilter::default(), 10, 0).await.unwrap();
        assert_eq!(list.jobs.len(), 2);
        assert_eq!(list.jobs[0], job(&queue, child).await);
        assert_eq!(list.jobs[1], job(&queue, parent).await);
        assert_eq!(list.jobs[0].parents, vec![parent]);
        assert_eq!(list.jobs[1].children, vec![child]);
    }

    async fn list_filters_by_ids(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "add").await;
        let _b = enqueue(&queue, "add").await;
        let c = enqueue(&queue, "add").await;
        let filter = JobFilter { ids: vec![a, c, 999], ..Default::default() };
        assert_eq!(ids(&queue, filter).await, (vec![c, a], 2));
    }

    async fn list_filters_by_states(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let inactive = enqueue(&queue, "add").await;
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let active = enqueue(&queue, "add").await;
        run_to_finish(t, w, finished).await;
        run_to_failure(t, w, failed).await;
        claim_by_id(t, w, active).await.unwrap();

        let by = |states: Vec<JobState>| JobFilter { states, ..Default::default() };
        assert_eq!(ids(&queue, by(vec![JobState::Inactive])).await, (vec![inactive], 1));
        assert_eq!(ids(&queue, by(vec![JobState::Active])).await, (vec![active], 1));
        assert_eq!(ids(&queue, by(vec![JobState::Finished])).await, (vec![finished], 1));
        assert_eq!(ids(&queue, by(vec![JobState::Failed])).await, (vec![failed], 1));
        assert_eq!(
            ids(&queue, by(vec![JobState::Failed, JobState::Inactive])).await,
            (vec![failed, inactive], 2)
        );
    }

    async fn list_filters_by_queues(t) {
        let queue = t.queue.clone();
        let a = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let b = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        let _c = enqueue_with(&queue, "add", EnqueueOptions::new().queue("c")).await;
        let filter = JobFilter { queues: vec!["a".into(), "b".into()], ..Default::default() };
        assert_eq!(ids(&queue, filter).await, (vec![b, a], 2));
    }

    async fn list_filters_by_tasks(t) {
        let queue = t.queue.clone();
        let add = enqueue(&queue, "add").await;
        let _mul = enqueue(&queue, "mul").await;
        let add2 = enqueue(&queue, "add").await;
        let filter = JobFilter { tasks: vec!["add".into()], ..Default::default() };
        assert_eq!(ids(&queue, filter).await, (vec![add2, add], 2));
    }

    async fn list_filters_by_note_keys_requiring_all_of_them(t) {
        let queue = t.queue.clone();
        let both = enqueue_with(&queue, "add", EnqueueOptions::new().notes(json!({"a": 1, "b": null}))).await;
        let only_a = enqueue_with(&queue, "add", EnqueueOptions::new().notes(json!({"a": 2}))).await;
        let _none = enqueue(&queue, "add").await;
        let filter = JobFilter { notes: vec!["a".into()], ..Default::default() };
        assert_eq!(ids(&queue, filter).await, (vec![only_a, both], 2));
        let filter = JobFilter { notes: vec!["a".into(), "b".into()], ..Default::default() };
        assert_eq!(ids(&queue, filter).await, (vec![both], 1));
    }

    async fn list_filters_combine_with_and(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let hit = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let wrong_task = enqueue_with(&queue, "mul", EnqueueOptions::new().queue("a")).await;
        let wrong_queue = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        let wrong_state = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        run_to_finish(t, w, wrong_state).await;
        let filter = JobFilter {
            ids: vec![hit, wrong_task, wrong_queue, wrong_state],
            states: vec![JobState::Inactive],
            queues: vec!["a".into()],
            tasks: vec!["add".into()],
            ..Default::default()
        };
        assert_eq!(ids(&queue, filter).await, (vec![hit], 1));
    }

    async fn list_filters_by_finished_before(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let early = enqueue(&queue, "add").await;
        run_to_finish(t, w, early).await;
        tick().await;
        let cut = Utc::now();
        tick().await;
        let late = enqueue(&queue, "add").await;
        run_to_finish(t, w, late).await;
        let _inactive = enqueue(&queue, "add").await;
        let filter = JobFilter { finished_before: Some(cut), ..Default::default() };
        assert_eq!(ids(&queue, filter).await, (vec![early], 1));
    }

    async fn list_pages_with_limit_and_offset_and_a_total(t) {
        let queue = t.queue.clone();
        let mut all = Vec::new();
        for _ in 0..7 {
            all.push(enqueue(&queue, "add").await);
        }
        all.reverse();
        let page = |limit, offset| {
            let queue = queue.clone();
            async move {
                let list = queue.list_jobs(&JobFilter::default(), limit, offset).await.unwrap();
                (list.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), list.total)
            }
        };
        assert_eq!(page(3, 0).await, (all[0..3].to_vec(), 7));
        assert_eq!(page(3, 3).await, (all[3..6].to_vec(), 7));
        assert_eq!(page(3, 6).await, (all[6..7].to_vec(), 7));
        assert_eq!(page(3, 9).await, (vec![], 7));
        assert_eq!(page(0, 0).await, (vec![], 7));
    }

    async fn list_total_counts_only_matching_jobs(t) {
        let queue = t.queue.clone();
        for _ in 0..4 {
            enqueue(&queue, "add").await;
        }
        for _ in 0..3 {
            enqueue(&queue, "mul").await;
        }
        let filter = JobFilter { tasks: vec!["mul".into()], ..Default::default() };
        let list = queue.list_jobs(&filter, 2, 0).await.unwrap();
        assert_eq!(list.jobs.len(), 2);
        assert_eq!(list.total, 3);
        assert!(list.jobs.iter().all(|j| j.task == "mul"));
    }
}
