//! Enqueueing: defaults, stored options, ids, batches.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;
use underling::{EnqueueOptions, Error, JobState, NewJob};

use crate::support::*;

behaviours! {
    async fn enqueue_uses_the_documented_defaults(t) {
        let queue = t.queue.clone();
        let before = Utc::now() - chrono::Duration::seconds(1);
        let id = enqueue(&queue, "add").await;
        let after = Utc::now() + chrono::Duration::seconds(1);
        let job = job(&queue, id).await;
        assert_eq!(job.id, id);
        assert_eq!(job.task, "add");
        assert_eq!(job.queue, "default");
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.priority, 0);
        assert_eq!(job.attempts, 1);
        assert_eq!(job.retries, 0);
        assert!(!job.lax);
        assert_eq!(job.started, None);
        assert_eq!(job.finished, None);
        assert_eq!(job.retried, None);
        assert_eq!(job.expires, None);
        assert_eq!(job.worker_id, None);
        assert_eq!(job.result, None);
        assert!(job.notes.is_empty());
        assert!(job.parents.is_empty());
        assert!(job.children.is_empty());
        assert!(job.created > before && job.created < after, "created {}", job.created);
        assert!(job.delayed > before && job.delayed < after, "delayed {}", job.delayed);
    }

    async fn enqueue_stores_arguments_exactly(t) {
        let queue = t.queue.clone();
        let args = json!({
            "string": "snowman ☃ and \"quotes\" and \\ backslash",
            "int": 9007199254740993_i64,
            "neg": -42,
            "float": 1.5,
            "bool": true,
            "null": null,
            "array": [1, "two", [3], {"four": 4}],
            "nested": {"a": {"b": {"c": []}}},
            "empty": {}
        });
        let id = queue.enqueue("add", &args, EnqueueOptions::new()).await.unwrap();
        assert_eq!(job(&queue, id).await.args, args);
    }

    async fn enqueue_accepts_non_object_arguments(t) {
        let queue = t.queue.clone();
        let array = queue.enqueue("add", json!([1, 2]), EnqueueOptions::new()).await.unwrap();
        let string = queue.enqueue("add", "text", EnqueueOptions::new()).await.unwrap();
        let null = queue.enqueue("add", json!(null), EnqueueOptions::new()).await.unwrap();
        assert_eq!(job(&queue, array).await.args, json!([1, 2]));
        assert_eq!(job(&queue, string).await.args, json!("text"));
        assert_eq!(job(&queue, null).await.args, json!(null));
    }

    async fn enqueue_accepts_any_serializable_arguments(t) {
        let queue = t.queue.clone();
        #[derive(serde::Serialize)]
        struct Mail<'a> {
            to: &'a str,
            retries: u8,
        }
        let id = queue
            .enqueue("mail", Mail { to: "a@example.com", retries: 3 }, EnqueueOptions::new())
            .await
            .unwrap();
        assert_eq!(job(&queue, id).await.args, json!({"to": "a@example.com", "retries": 3}));
    }

    async fn enqueue_stores_queue_priority_attempts_lax_and_notes(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new()
                .queue("mail")
                .priority(-7)
                .attempts(5)
                .lax(true)
                .notes(json!({"owner": "ops", "n": [1, 2]})),
        )
        .await;
        let job = job(&queue, id).await;
        assert_eq!(job.queue, "mail");
        assert_eq!(job.priority, -7);
        assert_eq!(job.attempts, 5);
        assert!(job.lax);
        assert_eq!(json!(job.notes), json!({"owner": "ops", "n": [1, 2]}));
    }

    async fn enqueue_with_delay_sets_delayed_in_the_future(t) {
        let queue = t.queue.clone();
        let before = Utc::now();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().delay(Duration::from_secs(100))).await;
        let after = Utc::now();
        let delayed = job(&queue, id).await.delayed;
        assert!(delayed >= before + chrono::Duration::seconds(99), "delayed {delayed}");
        assert!(delayed <= after + chrono::Duration::seconds(101), "delayed {delayed}");
    }

    async fn enqueue_with_run_at_stores_that_time(t) {
        let queue = t.queue.clone();
        let at = Utc.with_ymd_and_hms(2031, 3, 4, 5, 6, 7).unwrap();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().run_at(at)).await;
        assert_eq!(job(&queue, id).await.delayed, at);
    }

    async fn run_at_wins_over_delay(t) {
        let queue = t.queue.clone();
        let at = Utc.with_ymd_and_hms(2031, 3, 4, 5, 6, 7).unwrap();
        let id = enqueue_with(
            &queue,
            "add",
            EnqueueOptions::new().delay(Duration::from_secs(5)).run_at(at),
        )
        .await;
        assert_eq!(job(&queue, id).await.delayed, at);
    }

    async fn enqueue_with_expire_sets_expires(t) {
        let queue = t.queue.clone();
        let before = Utc::now();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_secs(600))).await;
        let after = Utc::now();
        let expires = job(&queue, id).await.expires.expect("expires is set");
        assert!(expires >= before + chrono::Duration::seconds(599), "expires {expires}");
        assert!(expires <= after + chrono::Duration::seconds(601), "expires {expires}");
    }

    async fn enqueue_returns_ascending_ids(t) {
        let queue = t.queue.clone();
        let a = enqueue(&queue, "add").await;
        let b = enqueue(&queue, "add").await;
        let c = enqueue_with(&queue, "other", EnqueueOptions::new().queue("q2")).await;
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    async fn ids_are_not_reused_after_the_newest_job_is_removed(t) {
        let queue = t.queue.clone();
        let _a = enqueue(&queue, "add").await;
        let b = enqueue(&queue, "add").await;
        queue.remove_job(b).await.unwrap();
        let c = enqueue(&queue, "add").await;
        assert!(c > b, "id {c} was handed out again after {b} was removed");
    }

    async fn enqueue_batch_returns_ids_in_input_order(t) {
        let queue = t.queue.clone();
        let jobs: Vec<NewJob> = (0..10)
            .map(|i| {
                NewJob::new(
                    &format!("task{i}"),
                    json!({"i": i}),
                    EnqueueOptions::new().priority(10 - i),
                )
                .unwrap()
            })
            .collect();
        let ids = queue.enqueue_batch(&jobs).await.unwrap();
        assert_eq!(ids.len(), 10);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
        for (i, id) in ids.iter().enumerate() {
            let job = job(&queue, *id).await;
            assert_eq!(job.task, format!("task{i}"));
            assert_eq!(job.args, json!({"i": i}));
            assert_eq!(job.priority, 10 - i as i32);
        }
    }

    async fn enqueue_batch_stores_parents_of_each_job(t) {
        let queue = t.queue.clone();
        let p1 = enqueue(&queue, "parent").await;
        let p2 = enqueue(&queue, "parent").await;
        let jobs = vec![
            NewJob::new("a", json!({}), EnqueueOptions::new().parent(p2)).unwrap(),
            NewJob::new("b", json!({}), EnqueueOptions::new()).unwrap(),
            NewJob::new("c", json!({}), EnqueueOptions::new().parents([p1, p2])).unwrap(),
        ];
        let ids = queue.enqueue_batch(&jobs).await.unwrap();
        assert_eq!(job(&queue, ids[0]).await.parents, vec![p2]);
        assert!(job(&queue, ids[1]).await.parents.is_empty());
        assert_eq!(job(&queue, ids[2]).await.parents, vec![p1, p2]);
        assert_eq!(job(&queue, p1).await.children, vec![ids[2]]);
        assert_eq!(job(&queue, p2).await.children, vec![ids[0], ids[2]]);
    }

    async fn enqueue_batch_of_nothing_returns_no_ids(t) {
        let queue = t.queue.clone();
        assert_eq!(queue.enqueue_batch(&[]).await.unwrap(), Vec::<i64>::new());
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn an_invalid_job_cannot_be_built_for_a_batch(t) {
        let queue = t.queue.clone();
        let err = NewJob::new("", json!({}), EnqueueOptions::new()).unwrap_err();
        assert!(matches!(err, Error::InvalidTask(ref t) if t.is_empty()), "{err:?}");
        let err = NewJob::new("add", json!({}), EnqueueOptions::new().attempts(0)).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
        let err = NewJob::new("add", json!({}), EnqueueOptions::new().notes(json!(1))).unwrap_err();
        assert!(matches!(err, Error::InvalidNotes(_)), "{err:?}");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn enqueue_batch_with_a_missing_parent_writes_nothing(t) {
        let queue = t.queue.clone();
        let jobs = vec![
            NewJob::new("a", json!({}), EnqueueOptions::new()).unwrap(),
            NewJob::new("b", json!({}), EnqueueOptions::new().parent(999)).unwrap(),
            NewJob::new("c", json!({}), EnqueueOptions::new()).unwrap(),
        ];
        let err = queue.enqueue_batch(&jobs).await.unwrap_err();
        assert!(matches!(err, Error::ParentNotFound(999)), "{err:?}");
        assert_eq!(err.to_string(), "parent job 999 does not exist");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn duplicate_parents_are_stored_once(t) {
        let queue = t.queue.clone();
        let p = enqueue(&queue, "parent").await;
        let child = enqueue_with(&queue, "child", EnqueueOptions::new().parents([p, p, p])).await;
        assert_eq!(job(&queue, child).await.parents, vec![p]);
        assert_eq!(job(&queue, p).await.children, vec![child]);
    }
}
