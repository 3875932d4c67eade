//! Notes: free-form metadata on a job.

use serde_json::json;
use underling::{EnqueueOptions, Error};

use crate::support::*;

behaviours! {
    async fn note_merges_keys_into_the_notes(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().notes(json!({"a": 1, "b": 2}))).await;
        queue.note(id, json!({"b": {"nested": [3]}, "c": "three"})).await.unwrap();
        assert_eq!(json!(job(&queue, id).await.notes), json!({"a": 1, "b": {"nested": [3]}, "c": "three"}));
    }

    async fn note_with_null_deletes_the_key(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().notes(json!({"a": 1, "b": 2}))).await;
        queue.note(id, json!({"a": null, "c": 3, "missing": null})).await.unwrap();
        assert_eq!(json!(job(&queue, id).await.notes), json!({"b": 2, "c": 3}));
    }

    async fn note_key_sets_one_key(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        queue.note_key(id, "progress", json!(50)).await.unwrap();
        queue.note_key(id, "progress", json!(75)).await.unwrap();
        assert_eq!(json!(job(&queue, id).await.notes), json!({"progress": 75}));
        queue.note_key(id, "progress", json!(null)).await.unwrap();
        assert!(job(&queue, id).await.notes.is_empty());
    }

    async fn note_is_allowed_on_active_finished_and_failed_jobs(t) {
        let queue = t.queue.clone();
        let active = enqueue(&queue, "add").await;
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, finished).await;
        run_to_failure(t, w, failed).await;
        claim_one(t, w).await;
        for id in [active, finished, failed] {
            queue.note(id, json!({"seen": true})).await.unwrap();
            assert_eq!(json!(job(&queue, id).await.notes), json!({"seen": true}));
        }
    }

    async fn note_keys_may_contain_dots_quotes_brackets_and_spaces(t) {
        let queue = t.queue.clone();
        let keys = ["a.b", "say \"hi\"", "[0]", "with space", "$", "ünï"];
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().notes(json!({"a": {"b": 0}}))).await;
        for (i, key) in keys.iter().enumerate() {
            queue.note_key(id, key, json!(i)).await.unwrap();
        }
        let mut expected = serde_json::Map::new();
        expected.insert("a".into(), json!({"b": 0}));
        for (i, key) in keys.iter().enumerate() {
            expected.insert(key.to_string(), json!(i));
        }
        assert_eq!(job(&queue, id).await.notes, expected);
        for key in keys {
            let filter = underling::JobFilter { notes: vec![key.to_string()], ..Default::default() };
            let list = queue.list_jobs(&filter, 10, 0).await.unwrap();
            assert_eq!(list.total, 1, "filter on note key {key:?}");
        }
        queue.note_key(id, "a.b", json!(null)).await.unwrap();
        expected.remove("a.b");
        assert_eq!(job(&queue, id).await.notes, expected, "deleting \"a.b\" keeps \"a\"");
    }

    async fn note_on_a_missing_job_is_job_not_found(t) {
        let queue = t.queue.clone();
        let err = queue.note(42, json!({"a": 1})).await.unwrap_err();
        assert!(matches!(err, Error::JobNotFound(42)), "{err:?}");
        assert_eq!(err.to_string(), "job 42 not found");
    }

    async fn note_that_is_not_an_object_is_refused(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().notes(json!({"a": 1}))).await;
        let err = queue.note(id, json!(["a", 1])).await.unwrap_err();
        assert!(matches!(err, Error::InvalidNotes(_)), "{err:?}");
        assert_eq!(err.to_string(), "invalid notes: notes must be a JSON object, got an array");
        let err = queue.note(id, json!("text")).await.unwrap_err();
        assert_eq!(err.to_string(), "invalid notes: notes must be a JSON object, got a string");
        assert_eq!(json!(job(&queue, id).await.notes), json!({"a": 1}));
    }

    async fn enqueue_with_notes_that_are_not_an_object_is_refused(t) {
        let queue = t.queue.clone();
        let err = queue
            .enqueue("add", json!({}), EnqueueOptions::new().notes(json!(5)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidNotes(_)), "{err:?}");
        assert_eq!(err.to_string(), "invalid notes: notes must be a JSON object, got a number");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn note_does_not_change_anything_else(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let mut before = job(&queue, id).await;
        queue.note(id, json!({"k": "v"})).await.unwrap();
        before.notes.insert("k".into(), json!("v"));
        assert_eq!(job(&queue, id).await, before);
    }
}
