//! Repair: rescuing jobs of missing workers, failing stuck jobs, removing old jobs.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::{Beat, Heartbeat, Repair};
use underling::{EnqueueOptions, JobState, NewJob, Outcome, RepairOptions, RepairReport, Settle};

use crate::support::*;

/// A heartbeat of worker `id` now, with `missing_after` at its default.
fn beat(id: i64, status: &serde_json::Value) -> Heartbeat<'_> {
    Heartbeat {
        id,
        status,
        missing_after: RepairOptions::default().missing_after,
        now: None,
    }
}

/// Repair options that treat every worker whose heartbeat is in the past as missing.
fn missing_now() -> RepairOptions {
    RepairOptions {
        missing_after: Duration::ZERO,
        ..Default::default()
    }
}

behaviours! {
    async fn repair_of_a_healthy_store_does_nothing(t) {
        let queue = t.queue.clone();
        let ready = enqueue(&queue, "add").await;
        let running = enqueue(&queue, "add").await;
        let done = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, done).await;
        claim_by_id(t, w, running).await.unwrap();
        let before = queue.list_jobs(&Default::default(), 10, 0).await.unwrap();
        assert_eq!(queue.repair(&RepairOptions::default()).await.unwrap(), RepairReport::default());
        assert_eq!(queue.list_jobs(&Default::default(), 10, 0).await.unwrap(), before);
        assert_eq!(queue.workers().await.unwrap().len(), 1);
        assert_eq!(state(&queue, ready).await, JobState::Inactive);
    }

    async fn missing_worker_is_removed_and_its_job_retried_if_tries_are_left(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        claim_one(t, w).await;
        tick().await;
        let before = Utc::now();
        let report = queue.repair(&missing_now()).await.unwrap();
        assert_eq!(report.missing_workers, 1);
        assert_eq!(report.abandoned_jobs, 1);
        assert!(queue.workers().await.unwrap().is_empty());
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 1);
        assert_eq!(job.result, Some(json!("Worker went away")));
        // Retried with the default backoff for its first retry (1 s).
        let retried = job.retried.expect("a rescued job has a retry time");
        assert!(retried >= before - chrono::Duration::seconds(1), "retried {retried}");
        assert_eq!(job.delayed - retried, chrono::Duration::seconds(1));
    }

    async fn missing_workers_job_fails_on_its_last_attempt(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        claim_one(t, w).await;
        tick().await;
        let report = queue.repair(&missing_now()).await.unwrap();
        assert_eq!((report.missing_workers, report.abandoned_jobs), (1, 1));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.retries, 0);
        assert_eq!(job.result, Some(json!("Worker went away")));
        assert!(job.finished.is_some());
    }

    async fn rescued_attempt_makes_the_old_settle_stale(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        tick().await;
        queue.repair(&missing_now()).await.unwrap();
        let rescued = job(&queue, id).await;
        assert_eq!(finish(t, &claimed, json!("late")).await, underling::Settled::Stale);
        assert_eq!(job(&queue, id).await, rescued);
    }

    async fn worker_with_a_fresh_heartbeat_is_kept(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        claim_one(t, w).await;
        let opts = RepairOptions { missing_after: Duration::from_secs(60), ..Default::default() };
        let report = queue.repair(&opts).await.unwrap();
        assert_eq!((report.missing_workers, report.abandoned_jobs), (0, 0));
        assert_eq!(queue.workers().await.unwrap().len(), 1);
        assert_eq!(state(&queue, id).await, JobState::Active);
    }

    async fn heartbeat_keeps_a_worker_from_being_missing(t) {
        let queue = t.queue.clone();
        let stale = worker(t).await;
        let fresh = worker(t).await;
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(t.store.heartbeat(beat(fresh, &json!({}))).await.unwrap().recorded);
        let opts = RepairOptions { missing_after: Duration::from_millis(1000), ..Default::default() };
        let report = queue.repair(&opts).await.unwrap();
        assert_eq!(report.missing_workers, 1);
        let ids: Vec<i64> = queue.workers().await.unwrap().iter().map(|w| w.id).collect();
        assert_eq!(ids, vec![fresh]);
        assert!(stale < fresh);
    }

    async fn heartbeat_says_whether_another_worker_is_missing(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let at = |secs: i64| Some(Utc::now() + chrono::Duration::seconds(secs));
        let status = json!({});
        let check = |now| Heartbeat { id: w, status: &status, missing_after: Duration::from_secs(6), now };
        // Alone, a worker is never missing to itself, however late its heartbeat.
        assert_eq!(t.store.heartbeat(check(at(60))).await.unwrap(), Beat { recorded: true, others_missing: false });
        let other = worker(t).await;
        assert_eq!(t.store.heartbeat(check(at(5))).await.unwrap(), Beat { recorded: true, others_missing: false });
        assert_eq!(t.store.heartbeat(check(at(7))).await.unwrap(), Beat { recorded: true, others_missing: true });
        t.store.unregister_worker(w).await.unwrap();
        assert_eq!(t.store.heartbeat(check(at(7))).await.unwrap(), Beat { recorded: false, others_missing: true });
        assert_eq!(queue.workers().await.unwrap().iter().map(|w| w.id).collect::<Vec<_>>(), vec![other]);
    }

    async fn rescue_removes_missing_workers_and_retries_their_jobs_and_nothing_else(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let stuck = enqueue(&queue, "add").await;
        let w = worker(t).await;
        claim_by_id(t, w, id).await.unwrap();
        tick().await;
        let backoff = |_: &str, _: i32| Duration::from_secs(7);
        let everything = RepairOptions { missing_after: Duration::ZERO, stuck_after: Duration::ZERO, ..Default::default() };
        let report = t
            .store
            .rescue(Repair { options: &everything, backoff: &backoff, now: None, progress: None })
            .await
            .unwrap();
        assert_eq!(report, RepairReport { missing_workers: 1, abandoned_jobs: 1, ..Default::default() });
        let rescued = job(&queue, id).await;
        assert_eq!((rescued.state, rescued.retries), (JobState::Inactive, 1));
        assert_eq!(rescued.delayed - rescued.retried.unwrap(), chrono::Duration::seconds(7));
        assert_eq!(state(&queue, stuck).await, JobState::Inactive, "stuck jobs are left to repair");
    }

    async fn active_job_of_an_unregistered_worker_is_rescued(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(3)).await;
        let w = worker(t).await;
        claim_one(t, w).await;
        t.store.unregister_worker(w).await.unwrap();
        let report = queue.repair(&RepairOptions::default()).await.unwrap();
        assert_eq!((report.missing_workers, report.abandoned_jobs), (0, 1));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.retries, 1);
        assert_eq!(job.result, Some(json!("Worker went away")));
    }

    async fn inactive_job_due_too_long_ago_fails_as_stuck(t) {
        let queue = t.queue.clone();
        let stuck = enqueue(&queue, "add").await;
        let delayed = enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        tick().await;
        let opts = RepairOptions { stuck_after: Duration::ZERO, ..Default::default() };
        let report = queue.repair(&opts).await.unwrap();
        assert_eq!(report.stuck_jobs, 1);
        let job = job(&queue, stuck).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!("Job appears stuck in queue")));
        assert_eq!(state(&queue, delayed).await, JobState::Inactive);
    }

    /// A delayed job that fell due long ago and was never promoted (no worker claims from its
    /// queue) is found stuck as well as one that was due when it was enqueued.
    async fn delayed_job_due_too_long_ago_fails_as_stuck_without_a_claim(t) {
        let queue = t.queue.clone();
        let ready = enqueue_with(&queue, "add", EnqueueOptions::new().queue("nobody")).await;
        let delayed = enqueue_with(&queue, "add", EnqueueOptions::new().queue("nobody").delay(Duration::from_secs(3600))).await;
        let later = enqueue_with(&queue, "add", EnqueueOptions::new().queue("nobody").delay(Duration::from_secs(10 * 86_400))).await;
        let opts = RepairOptions { stuck_after: Duration::from_secs(2 * 86_400), ..Default::default() };
        let backoff = |_: &str, _: i32| Duration::ZERO;
        let in_three_days = Some(Utc::now() + chrono::Duration::days(3));
        let report = t.store.repair(Repair { options: &opts, backoff: &backoff, now: in_three_days, progress: None }).await.unwrap();
        assert_eq!(report.stuck_jobs, 2);
        assert_eq!(state(&queue, ready).await, JobState::Failed);
        assert_eq!(state(&queue, delayed).await, JobState::Failed);
        assert_eq!(state(&queue, later).await, JobState::Inactive);
    }

    async fn inactive_job_due_recently_is_not_stuck(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let opts = RepairOptions { stuck_after: Duration::from_secs(3600), ..Default::default() };
        assert_eq!(queue.repair(&opts).await.unwrap().stuck_jobs, 0);
        assert_eq!(state(&queue, id).await, JobState::Inactive);
    }

    async fn old_finished_jobs_are_removed(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let inactive = enqueue(&queue, "add").await;
        run_to_finish(t, w, finished).await;
        run_to_failure(t, w, failed).await;
        tick().await;
        let opts = RepairOptions { remove_after: Duration::ZERO, ..Default::default() };
        let report = queue.repair(&opts).await.unwrap();
        assert_eq!(report.removed_jobs, 1);
        assert_eq!(queue.job(finished).await.unwrap(), None);
        assert_eq!(state(&queue, failed).await, JobState::Failed);
        assert_eq!(state(&queue, inactive).await, JobState::Inactive);
    }

    async fn recently_finished_jobs_are_kept(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let id = enqueue(&queue, "add").await;
        run_to_finish(t, w, id).await;
        let opts = RepairOptions { remove_after: Duration::from_secs(3600), ..Default::default() };
        assert_eq!(queue.repair(&opts).await.unwrap().removed_jobs, 0);
        assert_eq!(state(&queue, id).await, JobState::Finished);
    }

    async fn old_finished_parent_is_kept_while_a_child_is_unfinished(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let parent = enqueue(&queue, "parent").await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        run_to_finish(t, w, parent).await;
        tick().await;
        let opts = RepairOptions { remove_after: Duration::ZERO, ..Default::default() };
        assert_eq!(queue.repair(&opts).await.unwrap().removed_jobs, 0);
        assert_eq!(state(&queue, parent).await, JobState::Finished);

        run_to_finish(t, w, child).await;
        tick().await;
        assert_eq!(queue.repair(&opts).await.unwrap().removed_jobs, 2);
        assert_eq!(queue.job(parent).await.unwrap(), None);
        assert_eq!(queue.job(child).await.unwrap(), None);
    }

    async fn old_finished_jobs_are_removed_a_batch_per_statement(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let jobs: Vec<NewJob> = (0..2_500)
            .map(|i| NewJob::new("add", json!({ "i": i }), EnqueueOptions::new()).unwrap())
            .collect();
        queue.enqueue_batch(&jobs).await.unwrap();
        let claimed = claim(t, w, &["default"], jobs.len()).await;
        assert_eq!(claimed.len(), 2_500);
        let settles: Vec<Settle> = claimed
            .iter()
            .map(|j| Settle { id: j.id, retries: j.retries, outcome: Outcome::Finished(json!(null)) })
            .collect();
        settle_all(t, &settles).await;
        let kept = enqueue(&queue, "add").await;
        tick().await;
        let opts = RepairOptions { remove_after: Duration::ZERO, ..Default::default() };
        assert_eq!(opts.batch, 1000);
        let seen = Mutex::new(Vec::new());
        let report = queue
            .repair_with_progress(&opts, |r| seen.lock().unwrap().push(r.removed_jobs))
            .await
            .unwrap();
        assert_eq!(report, RepairReport { removed_jobs: 2_500, ..Default::default() });
        assert_eq!(seen.into_inner().unwrap(), vec![1000, 2000, 2500]);
        assert_eq!(job_count(&queue).await, 1);
        assert_eq!(state(&queue, kept).await, JobState::Inactive);
    }

    async fn old_jobs_removed_in_small_batches_skip_parents_whose_children_wait(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let mut old = Vec::new();
        for _ in 0..3 {
            old.push(enqueue(&queue, "add").await);
        }
        let parent = enqueue(&queue, "parent").await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parent(parent)).await;
        for _ in 0..4 {
            old.push(enqueue(&queue, "add").await);
        }
        for &id in old.iter().take(3).chain([&parent]).chain(old.iter().skip(3)) {
            run_to_finish(t, w, id).await;
        }
        tick().await;
        let opts = RepairOptions { remove_after: Duration::ZERO, batch: 3, ..Default::default() };
        let seen = Mutex::new(Vec::new());
        let report = queue
            .repair_with_progress(&opts, |r| seen.lock().unwrap().push(r.removed_jobs))
            .await
            .unwrap();
        assert_eq!(report, RepairReport { removed_jobs: 7, ..Default::default() });
        assert_eq!(seen.into_inner().unwrap(), vec![3, 6, 7]);
        for id in old {
            assert_eq!(queue.job(id).await.unwrap(), None, "job {id}");
        }
        assert_eq!(state(&queue, parent).await, JobState::Finished);
        assert_eq!(state(&queue, child).await, JobState::Inactive);
    }

    async fn expired_jobs_are_removed_a_batch_per_statement(t) {
        let queue = t.queue.clone();
        let jobs: Vec<NewJob> = (0..2_500)
            .map(|i| NewJob::new("add", json!({ "i": i }), EnqueueOptions::new().expire(Duration::from_secs(60))).unwrap())
            .collect();
        queue.enqueue_batch(&jobs).await.unwrap();
        let kept = enqueue(&queue, "add").await;
        let later = Utc::now() + chrono::Duration::minutes(2);
        let backoff = |_: &str, _: i32| Duration::from_secs(1);
        let opts = RepairOptions::default();
        let seen = Mutex::new(Vec::new());
        let progress = |r: &RepairReport| seen.lock().unwrap().push(r.expired_jobs);
        let report = t
            .store
            .repair(Repair { options: &opts, backoff: &backoff, now: Some(later), progress: Some(&progress) })
            .await
            .unwrap();
        assert_eq!(report, RepairReport { expired_jobs: 2_500, ..Default::default() });
        assert_eq!(seen.into_inner().unwrap(), vec![1000, 2000, 2500]);
        assert_eq!(job_count(&queue).await, 1);
        assert_eq!(state(&queue, kept).await, JobState::Inactive);
    }

    async fn expired_jobs_removed_in_small_batches_are_counted_exactly(t) {
        let queue = t.queue.clone();
        let mut expiring = Vec::new();
        for i in 0..5 {
            expiring.push(enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_secs(60))).await);
            if i == 2 {
                enqueue(&queue, "add").await;
            }
        }
        let later = Utc::now() + chrono::Duration::minutes(2);
        let backoff = |_: &str, _: i32| Duration::from_secs(1);
        let opts = RepairOptions { batch: 2, ..Default::default() };
        let seen = Mutex::new(Vec::new());
        let progress = |r: &RepairReport| seen.lock().unwrap().push(r.expired_jobs);
        let report = t
            .store
            .repair(Repair { options: &opts, backoff: &backoff, now: Some(later), progress: Some(&progress) })
            .await
            .unwrap();
        assert_eq!(report, RepairReport { expired_jobs: 5, ..Default::default() });
        assert_eq!(seen.into_inner().unwrap(), vec![2, 4, 5]);
        assert_eq!(job_count(&queue).await, 1);
    }
}
