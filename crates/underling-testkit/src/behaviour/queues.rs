//! Queues: pausing, resuming and counting.

use serde_json::json;
use underling::{EnqueueOptions, Error, JobState, QueueInfo};

use crate::support::*;

/// Sets a job's enqueue and due times (written directly: the built-in stores only).
async fn set_times(
    t: &crate::TestStore,
    id: i64,
    created: chrono::DateTime<chrono::Utc>,
    delayed: chrono::DateTime<chrono::Utc>,
) {
    match t.queue.pool() {
        underling::Pool::Postgres(pool) => {
            sqlx::query("UPDATE underling_jobs SET created = $2, delayed = $3 WHERE id = $1")
                .bind(id)
                .bind(created)
                .bind(delayed)
                .execute(&pool)
                .await
                .expect("set the times");
        }
        underling::Pool::Sqlite(pool) => {
            sqlx::query("UPDATE underling_jobs SET created = ?2, delayed = ?3 WHERE id = ?1")
                .bind(id)
                .bind(created.timestamp_millis())
                .bind(delayed.timestamp_millis())
                .execute(&pool)
                .await
                .expect("set the times");
        }
        other => panic!("set_times knows PostgreSQL and SQLite pools only, got {other:?}"),
    }
}

behaviours! {
    async fn paused_queue_is_not_claimed_from(t) {
        let queue = t.queue.clone();
        let paused = enqueue_with(&queue, "add", EnqueueOptions::new().queue("mail")).await;
        let other = enqueue(&queue, "add").await;
        queue.pause_queue("mail").await.unwrap();
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["mail", "default"], 10).await, vec![other]);
        assert_eq!(state(&queue, paused).await, JobState::Inactive);
    }

    async fn resumed_queue_is_claimed_from_again(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().queue("mail")).await;
        queue.pause_queue("mail").await.unwrap();
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["mail"], 10).await.is_empty());
        queue.resume_queue("mail").await.unwrap();
        assert_eq!(claim_ids(t, w, &["mail"], 10).await, vec![id]);
    }

    async fn pausing_twice_and_resuming_once_resumes(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        queue.pause_queue("default").await.unwrap();
        queue.pause_queue("default").await.unwrap();
        queue.resume_queue("default").await.unwrap();
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["default"], 10).await, vec![id]);
    }

    async fn a_queue_paused_before_it_has_jobs_stays_paused(t) {
        let queue = t.queue.clone();
        queue.pause_queue("later").await.unwrap();
        let _id = enqueue_with(&queue, "add", EnqueueOptions::new().queue("later")).await;
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["later"], 10).await.is_empty());
    }

    async fn pausing_does_not_stop_running_jobs_from_settling(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let claimed = claim_one(t, w).await;
        queue.pause_queue("default").await.unwrap();
        assert_eq!(finish(t, &claimed, json!(1)).await, underling::Settled::Finished);
        assert_eq!(state(&queue, id).await, JobState::Finished);
    }

    async fn pause_with_an_empty_queue_name_is_invalid(t) {
        let queue = t.queue.clone();
        assert!(matches!(queue.pause_queue("").await, Err(Error::InvalidQueue(ref q)) if q.is_empty()));
        assert!(matches!(queue.resume_queue(" x").await, Err(Error::InvalidQueue(ref q)) if q == " x"));
        assert_eq!(queue.queues().await.unwrap(), vec![]);
    }

    async fn queues_lists_counts_per_state_by_name(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        let active = enqueue_with(&queue, "add", EnqueueOptions::new().queue("b")).await;
        let finished = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        let failed = enqueue_with(&queue, "add", EnqueueOptions::new().queue("a")).await;
        run_to_finish(t, w, finished).await;
        run_to_failure(t, w, failed).await;
        claim_by_id(t, w, active).await.unwrap();
        queue.pause_queue("c").await.unwrap();
        queue.pause_queue("b").await.unwrap();

        let info = |name: &str, paused, inactive, active, failed, finished| QueueInfo {
            name: name.to_string(),
            paused,
            fifo: false,
            inactive,
            active,
            failed,
            finished,
        };
        assert_eq!(
            queue.queues().await.unwrap(),
            vec![
                info("a", false, 0, 0, 1, 1),
                info("b", true, 2, 1, 0, 0),
                info("c", true, 0, 0, 0, 0),
            ]
        );
    }

    async fn queues_lists_only_queues_with_jobs_or_a_pause_flag(t) {
        let queue = t.queue.clone();
        let gone = enqueue_with(&queue, "add", EnqueueOptions::new().queue("gone")).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("kept")).await;
        queue.remove_job(gone).await.unwrap();
        let names: Vec<String> = queue.queues().await.unwrap().into_iter().map(|q| q.name).collect();
        assert_eq!(names, vec!["kept"]);
    }

    async fn queues_shows_a_resumed_queue_as_not_paused(t) {
        let queue = t.queue.clone();
        enqueue(&queue, "add").await;
        queue.pause_queue("default").await.unwrap();
        assert!(queue.queues().await.unwrap()[0].paused);
        queue.resume_queue("default").await.unwrap();
        let queues = queue.queues().await.unwrap();
        assert_eq!(queues.len(), 1);
        assert_eq!(queues[0].name, "default");
        assert!(!queues[0].paused);
        assert_eq!(queues[0].inactive, 1);
    }

    async fn oldest_due_gives_each_queue_the_due_time_of_its_longest_waiting_due_job(t) {
        use chrono::{Duration as Age, SubsecRound, Utc};
        let queue = t.queue.clone();
        let now = Utc::now().trunc_subsecs(3);
        let at = |minutes: i64| now - Age::minutes(minutes);
        // mail: an old low-priority job behind a newer high-priority one; reports: a delayed
        // job that fell due (never promoted) beside a newer ready one; later: not due yet.
        let old = enqueue_with(&queue, "t", EnqueueOptions::new().queue("mail")).await;
        let new = enqueue_with(&queue, "t", EnqueueOptions::new().queue("mail").priority(9)).await;
        let due = enqueue_with(&queue, "t", EnqueueOptions::new().queue("reports").delay(std::time::Duration::from_secs(60))).await;
        enqueue_with(&queue, "t", EnqueueOptions::new().queue("reports")).await;
        enqueue_with(&queue, "t", EnqueueOptions::new().queue("later").delay(std::time::Duration::from_secs(3600))).await;
        set_times(t, old, at(30), at(30)).await;
        set_times(t, new, at(5), at(5)).await;
        set_times(t, due, at(20), at(12)).await;
        let found = t.store.oldest_due(Some(now)).await.unwrap();
        let found: Vec<(String, chrono::DateTime<Utc>)> = found.into_iter().map(|q| (q.queue, q.oldest_due)).collect();
        assert_eq!(found, vec![("mail".to_string(), at(30)), ("reports".to_string(), at(12))]);
    }
}
