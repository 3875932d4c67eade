//! Strict FIFO queues (migration 0016): one job at a time across all claimers, in claim order,
//! the next only after the previous one settled for good; a job waiting for a retry holds the
//! line.

use std::time::Duration;

use serde_json::json;
use underling::store::{Claim, Cycle};
use underling::{ClaimSpec, EnqueueOptions, Error, LeaseOptions, Limit, LimitScope, Settled};

use crate::support::*;

/// Enqueues `n` jobs of `add` in the FIFO queue `line`, after turning FIFO on.
async fn line_of(t: &crate::TestStore, n: usize) -> Vec<i64> {
    t.queue.set_fifo("line", true).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("line")).await);
    }
    ids
}

/// Enqueues a job of `add` in `line` with `attempts` attempts.
async fn with_attempts(t: &crate::TestStore, attempts: i32) -> i64 {
    enqueue_with(
        &t.queue,
        "add",
        EnqueueOptions::new().queue("line").attempts(attempts),
    )
    .await
}

behaviours! {
    async fn a_fifo_queue_runs_one_job_at_a_time_in_id_order(t) {
        let ids = line_of(t, 3).await;
        let w = worker(t).await;
        for &id in &ids {
            assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![id]);
            assert_eq!(claim_ids(t, w, &["line"], 10).await, Vec::<i64>::new());
            finish(t, &job(&t.queue, id).await, json!(null)).await;
        }
        assert_eq!(claim_ids(t, w, &["line"], 10).await, Vec::<i64>::new());
    }

    async fn other_queues_of_the_same_claim_run_side_by_side(t) {
        let ids = line_of(t, 2).await;
        let o1 = enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("other")).await;
        let o2 = enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("other")).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["line", "other"], 10).await, vec![ids[0], o1, o2]);
    }

    async fn a_job_waiting_for_a_retry_holds_the_line(t) {
        t.queue.set_fifo("line", true).await.unwrap();
        let first = with_attempts(t, 3).await;
        let second = with_attempts(t, 3).await;
        let w = worker(t).await;
        let claimed = claim(t, w, &["line"], 10).await;
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![first]);
        let outcome = fail(t, &claimed[0], json!("boom"), Duration::from_secs(3600)).await;
        assert_eq!(outcome, Settled::Retried);
        assert_eq!(claim_ids(t, w, &["line"], 10).await, Vec::<i64>::new());
        make_due(&t.queue, &[first]).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![first]);
        finish(t, &job(&t.queue, first).await, json!(null)).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![second]);
    }

    async fn a_job_that_failed_for_good_lets_the_line_move_on(t) {
        t.queue.set_fifo("line", true).await.unwrap();
        let first = with_attempts(t, 1).await;
        let second = with_attempts(t, 1).await;
        let w = worker(t).await;
        let claimed = claim(t, w, &["line"], 10).await;
        assert_eq!(fail(t, &claimed[0], json!("boom"), Duration::ZERO).await, Settled::Failed);
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![second]);
        assert_eq!(state(&t.queue, first).await, underling::JobState::Failed);
    }

    async fn removing_the_job_that_holds_the_line_lets_the_next_start(t) {
        t.queue.set_fifo("line", true).await.unwrap();
        let first = with_attempts(t, 3).await;
        let second = with_attempts(t, 3).await;
        let w = worker(t).await;
        let claimed = claim(t, w, &["line"], 10).await;
        fail(t, &claimed[0], json!("boom"), Duration::from_secs(3600)).await;
        t.queue.remove_job(first).await.unwrap();
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![second]);
    }

    async fn the_higher_priority_goes_first_in_a_fifo_queue(t) {
        t.queue.set_fifo("line", true).await.unwrap();
        let _low = with_attempts(t, 1).await;
        let high = enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("line").priority(5)).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![high]);
    }

    async fn a_delayed_job_enters_the_line_when_it_falls_due(t) {
        t.queue.set_fifo("line", true).await.unwrap();
        let later = enqueue_with(
            &t.queue,
            "add",
            EnqueueOptions::new().queue("line").delay(Duration::from_secs(3600)),
        )
        .await;
        let now = with_attempts(t, 1).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![now]);
        finish(t, &job(&t.queue, now).await, json!(null)).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, Vec::<i64>::new());
        make_due(&t.queue, &[later]).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![later]);
    }

    async fn a_worker_without_the_head_jobs_task_does_not_skip_it(t) {
        t.queue.set_fifo("line", true).await.unwrap();
        let _mail = enqueue_with(&t.queue, "mail", EnqueueOptions::new().queue("line")).await;
        let _add = with_attempts(t, 1).await;
        let w = worker(t).await;
        let adds_only = ClaimSpec { queues: vec!["line".into()], tasks: vec!["add".into()] };
        assert!(claim_spec(t, w, &adds_only, 10).await.is_empty());
    }

    async fn turning_fifo_off_lets_the_jobs_run_side_by_side(t) {
        let ids = line_of(t, 3).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![ids[0]]);
        t.queue.set_fifo("line", false).await.unwrap();
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![ids[1], ids[2]]);
    }

    async fn a_paused_fifo_queue_is_not_claimed(t) {
        let ids = line_of(t, 1).await;
        t.queue.pause_queue("line").await.unwrap();
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, Vec::<i64>::new());
        t.queue.resume_queue("line").await.unwrap();
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![ids[0]]);
    }

    async fn leased_claims_take_the_line_too(t) {
        let ids = line_of(t, 2).await;
        let leased = t
            .queue
            .claim_leased(&LeaseOptions::new(Duration::from_secs(30)).queue("line").limit(5))
            .await
            .unwrap();
        assert_eq!(leased.iter().map(|l| l.job.id).collect::<Vec<_>>(), vec![ids[0]]);
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, Vec::<i64>::new());
    }

    async fn limits_apply_to_the_head_of_a_line(t) {
        t.queue
            .set_limit(&Limit::concurrency(LimitScope::Task("add".into()), 1))
            .await
            .unwrap();
        let elsewhere = enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("other")).await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["other"], 10).await, vec![elsewhere]);
        let ids = line_of(t, 1).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, Vec::<i64>::new());
        finish(t, &job(&t.queue, elsewhere).await, json!(null)).await;
        assert_eq!(claim_ids(t, w, &["line"], 10).await, vec![ids[0]]);
    }

    async fn concurrent_claimers_start_one_job_of_a_fifo_queue(t) {
        line_of(t, 20).await;
        let mut claimers = Vec::new();
        for _ in 0..8 {
            let w = worker(t).await;
            let store = t.store.clone();
            claimers.push(tokio::spawn(async move {
                let spec = spec(&["line"]);
                let mut claimed = 0;
                for _ in 0..5 {
                    let cycle = Cycle {
                        settles: &[],
                        claim: Some(Claim { worker_id: w, spec: &spec, limit: 4 }),
                        now: None,
                    };
                    claimed += store.cycle(cycle).await.unwrap().claimed.len();
                }
                claimed
            }));
        }
        let mut total = 0;
        for c in claimers {
            total += c.await.unwrap();
        }
        assert_eq!(total, 1);
        assert_eq!(t.queue.stats().await.unwrap().active_jobs, 1);
    }

    async fn the_queue_list_shows_which_queues_are_fifo(t) {
        line_of(t, 1).await;
        enqueue_with(&t.queue, "add", EnqueueOptions::new().queue("other")).await;
        let fifo = |queues: Vec<underling::QueueInfo>| {
            queues.into_iter().map(|q| (q.name, q.fifo)).collect::<Vec<_>>()
        };
        assert_eq!(
            fifo(t.queue.queues().await.unwrap()),
            vec![("line".to_string(), true), ("other".to_string(), false)]
        );
        t.queue.set_fifo("line", false).await.unwrap();
        assert_eq!(
            fifo(t.queue.queues().await.unwrap()),
            vec![("line".to_string(), false), ("other".to_string(), false)]
        );
    }

    async fn a_bad_queue_name_for_fifo_is_refused_and_changes_nothing(t) {
        assert!(matches!(t.queue.set_fifo("", true).await, Err(Error::InvalidQueue(ref q)) if q.is_empty()));
        assert!(matches!(t.queue.set_fifo(" x", true).await, Err(Error::InvalidQueue(ref q)) if q == " x"));
        assert!(t.queue.queues().await.unwrap().is_empty());
    }
}
