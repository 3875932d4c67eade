//! Job dependencies: a child runs only after its parents.

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::support::*;

behaviours! {
    async fn child_is_not_claimed_until_every_parent_finished(t) {
        let queue = t.queue.clone();
        let p1 = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let p2 = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parents([p1, p2])).await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());

        run_to_finish(t, w, p1).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());

        let p2_job = claim_one_from(t, w, "parents").await;
        assert_eq!(p2_job.id, p2);
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty(), "parent is only active");
        finish(t, &p2_job, json!(null)).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![child]);
    }

    async fn child_of_parents_that_already_finished_is_claimed_at_once(t) {
        let queue = t.queue.clone();
        let p1 = enqueue(&queue, "parent").await;
        let p2 = enqueue(&queue, "parent").await;
        let w = worker(t).await;
        run_to_finish(t, w, p1).await;
        run_to_finish(t, w, p2).await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parents([p1, p2])).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![child]);
    }

    async fn waiting_child_does_not_block_other_jobs(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let _child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent).priority(10)).await;
        let other = enqueue(&queue, "other").await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![other]);
    }

    async fn child_of_a_failed_parent_is_never_claimed(t) {
        let queue = t.queue.clone();
        let ok = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let bad = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parents([ok, bad])).await;
        let w = worker(t).await;
        run_to_finish(t, w, ok).await;
        run_to_failure(t, w, bad).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        assert_eq!(state(&queue, child).await, JobState::Inactive);
    }

    async fn lax_child_is_claimed_when_a_parent_failed(t) {
        let queue = t.queue.clone();
        let ok = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let bad = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parents([ok, bad]).lax(true)).await;
        let w = worker(t).await;
        run_to_failure(t, w, bad).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty(), "one parent still inactive");
        run_to_finish(t, w, ok).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![child]);
    }

    async fn lax_child_still_waits_for_an_active_parent(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let _child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent).lax(true)).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["parents"], 1).await, vec![parent]);
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
    }

    async fn lax_child_still_waits_for_a_parent_that_will_be_retried(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents").attempts(2)).await;
        let _child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent).lax(true)).await;
        let w = worker(t).await;
        let p = claim_one_from(t, w, "parents").await;
        assert_eq!(fail(t, &p, json!("oops"), std::time::Duration::ZERO).await, underling::Settled::Retried);
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
    }

    async fn removed_parent_counts_as_done(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "parent", EnqueueOptions::new().queue("parents")).await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty());
        queue.remove_job(parent).await.unwrap();
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![child]);
    }

    async fn child_still_lists_a_removed_parent(t) {
        let queue = t.queue.clone();
        let parent = enqueue(&queue, "parent").await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        queue.remove_job(parent).await.unwrap();
        assert_eq!(job(&queue, child).await.parents, vec![parent]);
    }

    async fn job_lists_its_parents_and_children(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "a").await;
        let b = enqueue(&queue, "b").await;
        let c = enqueue_with(&queue, "c", EnqueueOptions::new().parents([b, a])).await;
        let d = enqueue_with(&queue, "d", EnqueueOptions::new().parent(a)).await;
        let e = enqueue_with(&queue, "e", EnqueueOptions::new().parent(c)).await;

        let ja = job(&queue, a).await;
        assert!(ja.parents.is_empty());
        assert_eq!(ja.children, vec![c, d]);
        let jb = job(&queue, b).await;
        assert!(jb.parents.is_empty());
        assert_eq!(jb.children, vec![c]);
        let jc = job(&queue, c).await;
        assert_eq!(jc.parents, vec![a, b]);
        assert_eq!(jc.children, vec![e]);
        let jd = job(&queue, d).await;
        assert_eq!(jd.parents, vec![a]);
        assert!(jd.children.is_empty());
        let je = job(&queue, e).await;
        assert_eq!(je.parents, vec![c]);
        assert!(je.children.is_empty());
    }

    async fn removing_a_child_removes_it_from_its_parents_children(t) {
        let queue = t.queue.clone();
        let parent = enqueue(&queue, "parent").await;
        let c1 = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        let c2 = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        queue.remove_job(c1).await.unwrap();
        assert_eq!(job(&queue, parent).await.children, vec![c2]);
    }

    async fn chain_of_three_runs_in_order(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "step").await;
        let b = enqueue_with(&queue, "step", EnqueueOptions::new().parent(a)).await;
        let c = enqueue_with(&queue, "step", EnqueueOptions::new().parent(b)).await;
        let w = worker(t).await;
        let mut order = Vec::new();
        loop {
            let jobs = claim(t, w, &["default"], 10).await;
            if jobs.is_empty() {
                break;
            }
            for j in jobs {
                order.push(j.id);
                finish(t, &j, json!(null)).await;
            }
        }
        assert_eq!(order, vec![a, b, c]);
    }
}

/// Claims exactly one job from `queue_name`.
async fn claim_one_from(t: &crate::TestStore, w: i64, queue_name: &str) -> underling::Job {
    let mut jobs = claim(t, w, &[queue_name], 1).await;
    assert_eq!(jobs.len(), 1, "expected one job in {queue_name}");
    jobs.remove(0)
}
