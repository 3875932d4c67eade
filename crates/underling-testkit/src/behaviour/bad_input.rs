//! Bad input gets a clear error and changes nothing.

use serde_json::json;
use underling::{EnqueueOptions, Error, MAX_NAME};

use crate::support::*;

behaviours! {
    async fn empty_task_name_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue.enqueue("", json!({}), EnqueueOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidTask(ref t) if t.is_empty()), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid task name \"\": a task name must be a non-empty string without surrounding spaces or NUL characters"
        );
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn task_name_with_surrounding_spaces_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue.enqueue(" add", json!({}), EnqueueOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidTask(ref t) if t == " add"), "{err:?}");
        let err = queue.enqueue("add\n", json!({}), EnqueueOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidTask(_)), "{err:?}");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn zero_attempts_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue.enqueue("add", json!({}), EnqueueOptions::new().attempts(0)).await.unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
        assert_eq!(err.to_string(), "invalid option: attempts must be at least 1, got 0");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn negative_attempts_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue.enqueue("add", json!({}), EnqueueOptions::new().attempts(-2)).await.unwrap_err();
        assert_eq!(err.to_string(), "invalid option: attempts must be at least 1, got -2");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn empty_queue_name_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue.enqueue("add", json!({}), EnqueueOptions::new().queue("")).await.unwrap_err();
        assert!(matches!(err, Error::InvalidQueue(ref q) if q.is_empty()), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid queue name \"\": a queue name must be a non-empty string without surrounding spaces or NUL characters"
        );
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn nonexistent_parent_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue.enqueue("add", json!({}), EnqueueOptions::new().parent(999)).await.unwrap_err();
        assert!(matches!(err, Error::ParentNotFound(999)), "{err:?}");
        assert_eq!(err.to_string(), "parent job 999 does not exist");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn the_lowest_missing_parent_is_reported(t) {
        let queue = t.queue.clone();
        let real = enqueue(&queue, "add").await;
        let err = queue
            .enqueue("add", json!({}), EnqueueOptions::new().parents([1001, real, 1000]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ParentNotFound(1000)), "{err:?}");
        assert_eq!(job_count(&queue).await, 1);
    }

    async fn a_removed_job_cannot_become_a_parent(t) {
        let queue = t.queue.clone();
        let gone = enqueue(&queue, "add").await;
        queue.remove_job(gone).await.unwrap();
        let err = queue.enqueue("add", json!({}), EnqueueOptions::new().parent(gone)).await.unwrap_err();
        assert!(matches!(err, Error::ParentNotFound(x) if x == gone), "{err:?}");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn arguments_that_cannot_be_json_are_refused(t) {
        let queue = t.queue.clone();
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "tuple keys cannot be JSON object keys");
        let err = queue.enqueue("add", map, EnqueueOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgs(_)), "{err:?}");
        assert!(err.to_string().starts_with("invalid job arguments: "), "{err}");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn args_with_a_nul_character_are_refused_on_every_backend(t) {
        let queue = t.queue.clone();
        let err = queue
            .enqueue("add", json!({"files": ["a", "b\u{0}c"]}), EnqueueOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgs(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "invalid job arguments: a string at $.files[1] contains a NUL character (\\u0000), \
             which PostgreSQL cannot store; remove it or encode the data (e.g. as base64)"
        );
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn notes_with_a_nul_character_are_refused_on_every_backend(t) {
        let queue = t.queue.clone();
        let err = queue
            .enqueue("add", json!({}), EnqueueOptions::new().notes(json!({"k": "\u{0}"})))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid notes: a string at $.k contains a NUL character (\\u0000), which \
             PostgreSQL cannot store; remove it or encode the data (e.g. as base64)"
        );
        assert_eq!(job_count(&queue).await, 0);
        let id = enqueue(&queue, "add").await;
        let err = queue.note(id, json!({"k": "a\u{0}"})).await.unwrap_err();
        assert!(matches!(err, Error::InvalidNotes(_)), "{err:?}");
        let err = queue.note_key(id, "k", json!(["\u{0}"])).await.unwrap_err();
        assert!(matches!(err, Error::InvalidNotes(_)), "{err:?}");
        assert!(job(&queue, id).await.notes.is_empty(), "nothing was written");
    }

    async fn a_task_name_over_max_name_bytes_is_refused_and_nothing_written(t) {
        let queue = t.queue.clone();
        let before = row_counts(&queue).await;
        let task = "t".repeat(2000);
        let err = queue.enqueue(&task, json!({}), EnqueueOptions::new()).await.unwrap_err();
        assert!(
            matches!(err, Error::NameTooLong { ref what, len: 2000, max: MAX_NAME } if what == "task name"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the task name is 2000 bytes long; at most 1000 are accepted");
        assert_eq!(row_counts(&queue).await, before);
    }

    async fn a_task_name_of_exactly_max_name_bytes_is_accepted(t) {
        let queue = t.queue.clone();
        let task = "t".repeat(MAX_NAME);
        let id = queue.enqueue(&task, json!({}), EnqueueOptions::new()).await.unwrap();
        assert_eq!(job(&queue, id).await.task, task);
    }

    async fn the_name_limit_counts_bytes_not_characters(t) {
        let queue = t.queue.clone();
        let before = row_counts(&queue).await;
        let task = "é".repeat(600);
        let err = queue.enqueue(&task, json!({}), EnqueueOptions::new()).await.unwrap_err();
        assert_eq!(err.to_string(), "the task name is 1200 bytes long; at most 1000 are accepted");
        assert_eq!(row_counts(&queue).await, before);
    }

    async fn a_queue_name_over_max_name_bytes_is_refused_on_enqueue(t) {
        let queue = t.queue.clone();
        let before = row_counts(&queue).await;
        let name = "q".repeat(5000);
        let err = queue.enqueue("add", json!({}), EnqueueOptions::new().queue(name)).await.unwrap_err();
        assert!(
            matches!(err, Error::NameTooLong { ref what, len: 5000, max: MAX_NAME } if what == "queue name"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the queue name is 5000 bytes long; at most 1000 are accepted");
        assert_eq!(row_counts(&queue).await, before);
    }

    async fn pausing_a_queue_named_over_max_name_bytes_is_refused_and_nothing_written(t) {
        let queue = t.queue.clone();
        let before = row_counts(&queue).await;
        let err = queue.pause_queue(&"q".repeat(5000)).await.unwrap_err();
        assert!(
            matches!(err, Error::NameTooLong { ref what, len: 5000, max: MAX_NAME } if what == "queue name"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the queue name is 5000 bytes long; at most 1000 are accepted");
        assert_eq!(row_counts(&queue).await, before);
    }

    async fn a_lock_name_over_max_name_bytes_is_refused_and_nothing_written(t) {
        let queue = t.queue.clone();
        let before = row_counts(&queue).await;
        let err = queue
            .lock(&"l".repeat(1001), std::time::Duration::from_secs(60), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::NameTooLong { ref what, len: 1001, max: MAX_NAME } if what == "lock name"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the lock name is 1001 bytes long; at most 1000 are accepted");
        assert_eq!(row_counts(&queue).await, before);
    }
}
