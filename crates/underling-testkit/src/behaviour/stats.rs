//! Statistics and history.

use std::time::Duration;

use chrono::{DurationRound, Utc};
use serde_json::json;
use underling::{BackendKind, EnqueueOptions, Stats};

use crate::support::*;

behaviours! {
    async fn stats_of_an_empty_store_are_zero(t) {
        let queue = t.queue.clone();
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            Stats { uptime: None, ..stats },
            Stats {
                inactive_jobs: 0,
                active_jobs: 0,
                finished_jobs: 0,
                failed_jobs: 0,
                delayed_jobs: 0,
                active_workers: 0,
                inactive_workers: 0,
                active_locks: 0,
                enqueued_jobs: 0,
                uptime: None,
            }
        );
    }

    async fn stats_count_jobs_workers_and_locks(t) {
        let queue = t.queue.clone();
        // Two ready jobs (one is claimed below), a delayed one, one to finish, one to fail,
        // and a child waiting for a parent.
        let ready = enqueue(&queue, "add").await;
        let _delayed = enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let active = enqueue_with(&queue, "add", EnqueueOptions::new().queue("busy")).await;
        let _child = enqueue_with(&queue, "add", EnqueueOptions::new().parent(ready)).await;

        let busy = worker(t).await;
        let _idle1 = worker(t).await;
        let _idle2 = worker(t).await;
        run_to_finish(t, busy, finished).await;
        run_to_failure(t, busy, failed).await;
        assert_eq!(claim_ids(t, busy, &["busy"], 1).await, vec![active]);
        assert!(queue.lock("a", Duration::from_secs(60), 2).await.unwrap());
        assert!(queue.lock("a", Duration::from_secs(60), 2).await.unwrap());
        assert!(queue.lock("b", Duration::from_secs(60), 1).await.unwrap());

        let stats = queue.stats().await.unwrap();
        assert_eq!(stats.inactive_jobs, 3, "ready, delayed and child");
        assert_eq!(stats.active_jobs, 1);
        assert_eq!(stats.finished_jobs, 1);
        assert_eq!(stats.failed_jobs, 1);
        assert_eq!(stats.delayed_jobs, 1);
        assert_eq!(stats.active_workers, 1);
        assert_eq!(stats.inactive_workers, 2);
        assert_eq!(stats.active_locks, 3);
        assert_eq!(stats.enqueued_jobs, 6);
    }

    async fn stats_count_a_worker_as_inactive_once_its_job_is_done(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        let stats = queue.stats().await.unwrap();
        assert_eq!((stats.active_workers, stats.inactive_workers), (1, 0));
        finish(t, &claimed, json!(null)).await;
        let stats = queue.stats().await.unwrap();
        assert_eq!((stats.active_workers, stats.inactive_workers), (0, 1));
        assert_eq!(state(&queue, id).await, underling::JobState::Finished);
    }

    async fn stats_enqueued_jobs_counts_removed_jobs_too(t) {
        let queue = t.queue.clone();
        let _a = enqueue(&queue, "add").await;
        let _b = enqueue(&queue, "add").await;
        let c = enqueue(&queue, "add").await;
        queue.remove_job(c).await.unwrap();
        assert_eq!(queue.stats().await.unwrap().enqueued_jobs, 3);
    }

    async fn stats_do_not_count_expired_locks(t) {
        let queue = t.queue.clone();
        assert!(queue.lock("short", Duration::from_millis(100), 1).await.unwrap());
        assert!(queue.lock("long", Duration::from_secs(60), 1).await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(queue.stats().await.unwrap().active_locks, 1);
    }

    async fn stats_report_uptime_only_for_postgres(t) {
        let queue = t.queue.clone();
        let uptime = queue.stats().await.unwrap().uptime;
        match queue.kind() {
            BackendKind::Postgres => assert!(uptime.is_some()),
            BackendKind::Sqlite => assert_eq!(uptime, None),
        }
    }

    async fn history_has_24_hourly_points_ending_with_the_current_hour(t) {
        let queue = t.queue.clone();
        let history = queue.history().await.unwrap();
        assert_eq!(history.len(), 24);
        let this_hour = Utc::now().duration_trunc(chrono::Duration::hours(1)).unwrap();
        assert_eq!(history[23].hour, this_hour);
        for pair in history.windows(2) {
            assert_eq!(pair[1].hour - pair[0].hour, chrono::Duration::hours(1));
        }
        assert!(history.iter().all(|p| p.finished == 0 && p.failed == 0 && p.failed_attempts == 0));
    }

    async fn history_counts_failed_attempts_apart_from_jobs_that_ended_failed(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        // Fails twice, then finishes: two failed attempts, no failed job.
        let id = enqueue_with(&queue, "add", underling::EnqueueOptions::new().attempts(3)).await;
        for _ in 0..2 {
            let attempt = claim_by_id(t, w, id).await.expect("ready");
            fail(t, &attempt, serde_json::json!("again"), std::time::Duration::ZERO).await;
        }
        run_to_finish(t, w, id).await;
        // Fails on its only attempt: one failed attempt and one failed job.
        let failed = enqueue(&queue, "add").await;
        run_to_failure(t, w, failed).await;
        // Claimed, then given back unused: no attempt failed.
        let released = enqueue(&queue, "add").await;
        let attempt = claim_by_id(t, w, released).await.expect("ready");
        assert_eq!(release(t, w, &[(released, attempt.retries)]).await, 1);
        let now = queue.history().await.unwrap()[23].clone();
        assert_eq!((now.finished, now.failed, now.failed_attempts), (1, 1, 3));
    }

    async fn history_survives_purging_the_jobs_it_counts(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        for _ in 0..2 {
            let id = enqueue(&queue, "add").await;
            run_to_finish(t, w, id).await;
        }
        let failed = enqueue(&queue, "add").await;
        run_to_failure(t, w, failed).await;
        let filter = underling::JobFilter {
            states: vec![underling::JobState::Finished, underling::JobState::Failed],
            ..Default::default()
        };
        assert_eq!(queue.purge(&filter, 2, |_| {}).await.unwrap(), 3);
        assert_eq!(job_count(&queue).await, 0);
        let now = queue.history().await.unwrap()[23].clone();
        assert_eq!((now.finished, now.failed, now.failed_attempts), (2, 1, 1));
    }

    async fn history_counts_a_job_failed_as_stuck_as_a_failed_job_not_a_failed_attempt(t) {
        let queue = t.queue.clone();
        enqueue(&queue, "add").await;
        tick().await;
        let opts = underling::RepairOptions { stuck_after: std::time::Duration::ZERO, ..Default::default() };
        assert_eq!(queue.repair(&opts).await.unwrap().stuck_jobs, 1);
        let now = queue.history().await.unwrap()[23].clone();
        assert_eq!((now.finished, now.failed, now.failed_attempts), (0, 1, 0));
    }

    async fn history_counts_finished_and_failed_jobs_in_the_current_hour(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        for _ in 0..2 {
            let id = enqueue(&queue, "add").await;
            run_to_finish(t, w, id).await;
        }
        let failed = enqueue(&queue, "add").await;
        run_to_failure(t, w, failed).await;
        let _inactive = enqueue(&queue, "add").await;
        let history = queue.history().await.unwrap();
        assert_eq!(history.len(), 24);
        assert_eq!((history[23].finished, history[23].failed), (2, 1));
        assert_eq!(history.iter().map(|p| p.finished).sum::<u64>(), 2);
        assert_eq!(history.iter().map(|p| p.failed).sum::<u64>(), 1);
    }
}
