//! Removing one job, and purging many in batches.

use serde_json::json;
use underling::{EnqueueOptions, Error, JobFilter, JobState};

use crate::support::*;

behaviours! {
    async fn remove_deletes_an_inactive_job(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let other = enqueue(&queue, "add").await;
        queue.remove_job(id).await.unwrap();
        assert_eq!(queue.job(id).await.unwrap(), None);
        assert_eq!(state(&queue, other).await, JobState::Inactive);
        assert_eq!(job_count(&queue).await, 1);
    }

    async fn remove_deletes_finished_and_failed_jobs(t) {
        let queue = t.queue.clone();
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, finished).await;
        run_to_failure(t, w, failed).await;
        queue.remove_job(finished).await.unwrap();
        queue.remove_job(failed).await.unwrap();
        assert_eq!(queue.job(finished).await.unwrap(), None);
        assert_eq!(queue.job(failed).await.unwrap(), None);
    }

    async fn remove_of_an_active_job_is_refused(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        claim_one(t, w).await;
        let err = queue.remove_job(id).await.unwrap_err();
        assert!(matches!(err, Error::JobActive(x) if x == id), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("job {id} is active and cannot be removed; stop it first or wait for it to finish")
        );
        assert_eq!(state(&queue, id).await, JobState::Active);
    }

    async fn remove_of_a_missing_job_is_job_not_found(t) {
        let queue = t.queue.clone();
        let err = queue.remove_job(42).await.unwrap_err();
        assert!(matches!(err, Error::JobNotFound(42)), "{err:?}");
        assert_eq!(err.to_string(), "job 42 not found");
    }

    async fn remove_twice_is_job_not_found_the_second_time(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        queue.remove_job(id).await.unwrap();
        assert!(matches!(queue.remove_job(id).await, Err(Error::JobNotFound(x)) if x == id));
    }

    async fn purge_batch_removes_at_most_batch_jobs_per_call(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        for _ in 0..5 {
            let id = enqueue(&queue, "add").await;
            run_to_finish(t, w, id).await;
        }
        let keep = enqueue(&queue, "add").await;
        let filter = JobFilter { states: vec![JobState::Finished], ..Default::default() };
        assert_eq!(queue.purge_batch(&filter, 2).await.unwrap(), 2);
        assert_eq!(job_count(&queue).await, 4);
        assert_eq!(queue.purge_batch(&filter, 2).await.unwrap(), 2);
        assert_eq!(queue.purge_batch(&filter, 2).await.unwrap(), 1);
        assert_eq!(queue.purge_batch(&filter, 2).await.unwrap(), 0);
        assert_eq!(job_count(&queue).await, 1);
        assert_eq!(state(&queue, keep).await, JobState::Inactive);
    }

    async fn purge_batch_only_removes_matching_jobs(t) {
        let queue = t.queue.clone();
        let a = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let b = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        let c = enqueue_with(&queue, "mul", EnqueueOptions::new().queue("a")).await;
        let d = enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new().queue("a").notes(json!({"tag": 1})),
        )
        .await;
        let filter = JobFilter {
            queues: vec!["a".into()],
            tasks: vec!["add".into()],
            ..Default::default()
        };
        assert_eq!(queue.purge_batch(&filter, 100).await.unwrap(), 2);
        assert_eq!(queue.job(a).await.unwrap(), None);
        assert_eq!(queue.job(d).await.unwrap(), None);
        assert!(queue.job(b).await.unwrap().is_some());
        assert!(queue.job(c).await.unwrap().is_some());
    }

    async fn purge_batch_with_a_note_filter_removes_only_noted_jobs(t) {
        let queue = t.queue.clone();
        let tagged = enqueue_with(&queue, "add", EnqueueOptions::new().notes(json!({"tag": 1}))).await;
        let plain = enqueue(&queue, "add").await;
        let filter = JobFilter { notes: vec!["tag".into()], ..Default::default() };
        assert_eq!(queue.purge_batch(&filter, 100).await.unwrap(), 1);
        assert_eq!(queue.job(tagged).await.unwrap(), None);
        assert!(queue.job(plain).await.unwrap().is_some());
    }

    async fn purge_removes_every_matching_job_batch_after_batch(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let mut finished = Vec::new();
        for _ in 0..7 {
            let id = enqueue(&queue, "add").await;
            run_to_finish(t, w, id).await;
            finished.push(id);
        }
        let keep = enqueue(&queue, "add").await;
        let filter = JobFilter { states: vec![JobState::Finished], ..Default::default() };
        let mut seen = Vec::new();
        assert_eq!(queue.purge(&filter, 3, |n| seen.push(n)).await.unwrap(), 7);
        assert_eq!(seen, vec![3, 6, 7], "the running total after each batch");
        for id in finished {
            assert_eq!(queue.job(id).await.unwrap(), None);
        }
        assert_eq!(state(&queue, keep).await, JobState::Inactive);
        assert_eq!(queue.purge(&filter, 3, |_| panic!("nothing to purge")).await.unwrap(), 0);
    }

    async fn a_purge_batch_starts_after_the_id_given(t) {
        let queue = t.queue.clone();
        let ids = [enqueue(&queue, "add").await, enqueue(&queue, "add").await, enqueue(&queue, "add").await];
        let filter = JobFilter::default();
        let purged = t
            .store
            .purge(underling::store::Purge { filter: &filter, batch: 10, after: ids[0] })
            .await
            .unwrap();
        assert_eq!(purged, underling::store::Purged { removed: 2, last_id: Some(ids[2]) });
        assert!(queue.job(ids[0]).await.unwrap().is_some(), "at or below `after`: kept");
        let none = t
            .store
            .purge(underling::store::Purge { filter: &filter, batch: 10, after: ids[2] })
            .await
            .unwrap();
        assert_eq!(none, underling::store::Purged { removed: 0, last_id: None });
    }

    /// A purge statement picks its rows, then locks each: a job claimed meanwhile (or retried)
    /// no longer matches when its lock is granted, and stays. SQLite has one writer at a time,
    /// so nothing changes between the two there.
    async fn purge_keeps_a_job_that_stopped_matching_while_it_waited_for_its_lock(t) {
        let underling::store::Pool::Postgres(pool) = t.queue.pool() else {
            return;
        };
        let queue = t.queue.clone();
        let ids = [enqueue(&queue, "add").await, enqueue(&queue, "add").await, enqueue(&queue, "add").await];
        let mut claim = pool.begin().await.unwrap();
        let holder: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *claim).await.unwrap();
        sqlx::query("UPDATE underling_jobs SET state = 'active', started = now() WHERE id = $1")
            .bind(ids[1])
            .execute(&mut *claim)
            .await
            .unwrap();
        let purge = tokio::spawn({
            let queue = queue.clone();
            async move {
                let filter = JobFilter { states: vec![JobState::Inactive], ..Default::default() };
                queue.purge_batch(&filter, 10).await
            }
        });
        wait_for("the purge to wait for the claim's lock", || {
            let pool = pool.clone();
            async move {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                )
                .bind(holder)
                .fetch_one(&pool)
                .await
                .unwrap();
                (waiting == 1).then_some(())
            }
        })
        .await;
        claim.commit().await.unwrap();
        assert_eq!(purge.await.unwrap().unwrap(), 2);
        assert_eq!(queue.job(ids[0]).await.unwrap(), None);
        assert_eq!(state(&queue, ids[1]).await, JobState::Active);
        assert_eq!(queue.job(ids[2]).await.unwrap(), None);
    }
}
