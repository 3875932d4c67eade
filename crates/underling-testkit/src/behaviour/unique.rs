//! Unique jobs ([`underling::Unique`]): at most one live job per key, by scope, with the
//! conflict policies existing, replace and error; in batches and in the application's own
//! transactions.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::Enqueue;
use underling::{
    EnqueueOptions, Enqueued, Error, JobState, NewJob, OnConflict, Pool, Queue, Unique, UniqueScope,
};

use crate::support::*;

/// Options with an explicit unique key and the defaults (scope active, policy existing).
fn keyed(key: &str) -> EnqueueOptions {
    EnqueueOptions::new().unique(Unique::key(key))
}

/// Enqueues a job of task `add` with `args` and `opts`, saying what became of it.
async fn submit(queue: &Queue, args: serde_json::Value, opts: EnqueueOptions) -> Enqueued {
    queue.submit("add", args, opts).await.expect("submit")
}

behaviours! {
    async fn a_second_enqueue_with_a_live_key_returns_the_first_job_as_a_duplicate(t) {
        let queue = t.queue.clone();
        let first = submit(&queue, json!({"n": 1}), keyed("k")).await;
        let second = submit(&queue, json!({"n": 2}), keyed("k")).await;
        assert_eq!(first, Enqueued { id: first.id, duplicate: false, replaced: false });
        assert_eq!(second, Enqueued { id: first.id, duplicate: true, replaced: false });
        assert_eq!(job_count(&queue).await, 1);
        let stored = job(&queue, first.id).await;
        assert_eq!(stored.args, json!({"n": 1}));
        assert_eq!(stored.unique_key.as_deref(), Some("k"));
    }

    async fn enqueue_returns_the_existing_id_for_a_duplicate(t) {
        let queue = t.queue.clone();
        let first = queue.enqueue("add", json!({}), keyed("k")).await.unwrap();
        let again = queue.enqueue("add", json!({}), keyed("k")).await.unwrap();
        assert_eq!(again, first);
        let other = queue.enqueue("add", json!({}), keyed("other")).await.unwrap();
        assert_ne!(other, first);
        assert_eq!(job_count(&queue).await, 2);
    }

    async fn a_key_derived_from_args_ignores_key_order_and_tells_args_and_tasks_apart(t) {
        let queue = t.queue.clone();
        let by_args = || EnqueueOptions::new().unique(Unique::by_args());
        let a = queue.submit("add", json!({"x": 1, "y": [1, 2]}), by_args()).await.unwrap();
        let same = queue.submit("add", json!({"y": [1, 2], "x": 1}), by_args().queue("other")).await.unwrap();
        let other_args = queue.submit("add", json!({"x": 2, "y": [1, 2]}), by_args()).await.unwrap();
        let other_task = queue.submit("mul", json!({"x": 1, "y": [1, 2]}), by_args()).await.unwrap();
        assert_eq!((same.id, same.duplicate), (a.id, true));
        assert!(!other_args.duplicate && !other_task.duplicate);
        assert_eq!(job_count(&queue).await, 3);
    }

    async fn a_key_derived_with_the_queue_tells_queues_apart(t) {
        let queue = t.queue.clone();
        let opts = |q: &str| EnqueueOptions::new().queue(q).unique(Unique::by_args_and_queue());
        let a = submit(&queue, json!({"x": 1}), opts("q1")).await;
        let b = submit(&queue, json!({"x": 1}), opts("q2")).await;
        let c = submit(&queue, json!({"x": 1}), opts("q1")).await;
        assert!(!b.duplicate);
        assert_eq!((c.id, c.duplicate), (a.id, true));
    }

    async fn a_job_in_the_inactive_scope_lets_go_of_its_key_once_claimed(t) {
        let queue = t.queue.clone();
        let opts = || EnqueueOptions::new().unique(Unique::key("k").scope(UniqueScope::Inactive));
        let first = submit(&queue, json!({}), opts()).await;
        let w = worker(t).await;
        assert_eq!(claim_one(t, w).await.id, first.id);
        let second = submit(&queue, json!({}), opts()).await;
        assert!(!second.duplicate);
        assert_ne!(second.id, first.id);
        // The claimed job gave its key up to the new one.
        assert_eq!(job(&queue, first.id).await.unique_key, None);
        assert_eq!(job(&queue, second.id).await.unique_key.as_deref(), Some("k"));
        let third = submit(&queue, json!({}), opts()).await;
        assert_eq!((third.id, third.duplicate), (second.id, true));
    }

    async fn a_job_in_the_active_scope_holds_its_key_while_it_runs_and_until_it_ends(t) {
        let queue = t.queue.clone();
        let first = submit(&queue, json!({}), keyed("k")).await;
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        assert_eq!(submit(&queue, json!({}), keyed("k")).await.id, first.id);
        finish(t, &running, json!("done")).await;
        let after = submit(&queue, json!({}), keyed("k")).await;
        assert!(!after.duplicate);
        assert_ne!(after.id, first.id);
        assert_eq!(job_count(&queue).await, 2);
    }

    async fn a_failed_attempt_that_is_retried_keeps_its_key(t) {
        let queue = t.queue.clone();
        let first = submit(&queue, json!({}), keyed("k").attempts(2)).await;
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        fail(t, &running, json!("boom"), Duration::from_secs(60)).await;
        assert_eq!(state(&queue, first.id).await, JobState::Inactive);
        let again = submit(&queue, json!({}), keyed("k")).await;
        assert_eq!((again.id, again.duplicate), (first.id, true));
    }

    async fn a_job_that_failed_for_good_lets_go_of_its_key(t) {
        let queue = t.queue.clone();
        let first = submit(&queue, json!({}), keyed("k")).await;
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        fail(t, &running, json!("boom"), Duration::from_secs(60)).await;
        assert_eq!(state(&queue, first.id).await, JobState::Failed);
        assert!(!submit(&queue, json!({}), keyed("k")).await.duplicate);
    }

    async fn a_job_in_the_period_scope_holds_its_key_for_the_period_whatever_its_state(t) {
        let t0 = Utc::now();
        let unique = Unique::key("k").scope(UniqueScope::Period(Duration::from_secs(3600)));
        let job_at = || NewJob::new("add", json!({}), EnqueueOptions::new().unique(unique.clone())).unwrap();
        let first = t.store.enqueue(Enqueue { jobs: &[job_at()], now: Some(t0) }).await.unwrap()[0];
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        finish(t, &running, json!("done")).await;
        let within = t0 + chrono::Duration::seconds(3599);
        let again = t.store.enqueue(Enqueue { jobs: &[job_at()], now: Some(within) }).await.unwrap()[0];
        assert_eq!((again.id, again.duplicate), (first.id, true));
        let after = t0 + chrono::Duration::seconds(3600);
        let later = t.store.enqueue(Enqueue { jobs: &[job_at()], now: Some(after) }).await.unwrap()[0];
        assert!(!later.duplicate);
        assert_ne!(later.id, first.id);
    }

    async fn replace_gives_the_inactive_holder_the_new_args_priority_and_delay(t) {
        let queue = t.queue.clone();
        let first = submit(&queue, json!({"v": 1}), keyed("k").priority(1)).await;
        let before = Utc::now();
        let replace = keyed("k").priority(7).delay(Duration::from_secs(600));
        let replace = EnqueueOptions { unique: Some(Unique::key("k").on_conflict(OnConflict::Replace)), ..replace };
        let second = submit(&queue, json!({"v": 2}), replace).await;
        assert_eq!(second, Enqueued { id: first.id, duplicate: true, replaced: true });
        let stored = job(&queue, first.id).await;
        assert_eq!((stored.args, stored.priority), (json!({"v": 2}), 7));
        let due_in = stored.delayed - before;
        assert!(due_in >= chrono::Duration::seconds(598) && due_in <= chrono::Duration::seconds(602), "{due_in}");
        assert_eq!(job_count(&queue).await, 1);
    }

    async fn replace_leaves_an_active_holder_alone(t) {
        let queue = t.queue.clone();
        let first = submit(&queue, json!({"v": 1}), keyed("k")).await;
        let w = worker(t).await;
        claim_one(t, w).await;
        let replace = EnqueueOptions::new().unique(Unique::key("k").on_conflict(OnConflict::Replace));
        let second = submit(&queue, json!({"v": 2}), replace).await;
        assert_eq!(second, Enqueued { id: first.id, duplicate: true, replaced: false });
        assert_eq!(job(&queue, first.id).await.args, json!({"v": 1}));
    }

    async fn the_error_policy_names_the_key_and_the_existing_job_and_writes_nothing(t) {
        let queue = t.queue.clone();
        let first = submit(&queue, json!({}), keyed("nightly")).await;
        let strict = EnqueueOptions::new().unique(Unique::key("nightly").on_conflict(OnConflict::Error));
        let error = queue.submit("add", json!({}), strict.clone()).await.unwrap_err();
        assert!(matches!(&error, Error::UniqueConflict { key, existing } if key == "nightly" && *existing == first.id), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("a job with the unique key \"nightly\" exists already: job {} (the enqueue's conflict policy is error; use existing to get its id, or replace to update it)", first.id)
        );
        // The batch that held it wrote nothing, not even its other jobs.
        let batch = vec![
            NewJob::new("add", json!({}), EnqueueOptions::new()).unwrap(),
            NewJob::new("add", json!({}), strict).unwrap(),
        ];
        assert!(matches!(queue.submit_batch(&batch).await, Err(Error::UniqueConflict { .. })));
        assert_eq!(job_count(&queue).await, 1);
    }

    async fn a_batch_with_duplicates_inserts_one_and_says_which_were_duplicates(t) {
        let queue = t.queue.clone();
        let held = submit(&queue, json!({}), keyed("held")).await;
        let batch: Vec<NewJob> = [("a", 1), ("b", 2), ("a", 3), ("held", 4), ("b", 5)]
            .into_iter()
            .map(|(key, n)| NewJob::new("add", json!({"n": n}), keyed(key)).unwrap())
            .collect();
        let result = queue.submit_batch(&batch).await.unwrap();
        let (a, b) = (result[0].id, result[1].id);
        assert_eq!(result.iter().map(|e| (e.id, e.duplicate)).collect::<Vec<_>>(),
            vec![(a, false), (b, false), (a, true), (held.id, true), (b, true)]);
        assert!(a < b && a > held.id);
        assert_eq!(job_count(&queue).await, 3);
        assert_eq!(job(&queue, a).await.args, json!({"n": 1}));
    }

    async fn a_batch_with_replace_updates_the_earlier_job_of_the_same_batch(t) {
        let queue = t.queue.clone();
        let replace = || EnqueueOptions::new().unique(Unique::key("k").on_conflict(OnConflict::Replace));
        let batch = vec![
            NewJob::new("add", json!({"n": 1}), replace()).unwrap(),
            NewJob::new("add", json!({"n": 2}), replace().priority(3)).unwrap(),
        ];
        let result = queue.submit_batch(&batch).await.unwrap();
        assert_eq!(result[1], Enqueued { id: result[0].id, duplicate: true, replaced: true });
        let stored = job(&queue, result[0].id).await;
        assert_eq!((stored.args, stored.priority), (json!({"n": 2}), 3));
    }

    async fn a_batch_that_conflicts_with_itself_under_the_error_policy_is_refused(t) {
        let queue = t.queue.clone();
        let strict = EnqueueOptions::new().unique(Unique::key("k").on_conflict(OnConflict::Error));
        let batch = vec![
            NewJob::new("add", json!({}), keyed("k")).unwrap(),
            NewJob::new("add", json!({}), strict).unwrap(),
        ];
        let error = queue.submit_batch(&batch).await.unwrap_err();
        assert_eq!(error.to_string(), "invalid option: job [1] of the batch has the unique key \"k\" of an earlier job of the same batch and the conflict policy error: drop one of them");
        assert_eq!(job_count(&queue).await, 0);
    }

    async fn an_expired_or_removed_holder_lets_go_of_its_key(t) {
        let queue = t.queue.clone();
        let expiring = submit(&queue, json!({}), keyed("k").expire(Duration::from_millis(1))).await;
        tick().await;
        let second = submit(&queue, json!({}), keyed("k")).await;
        assert!(!second.duplicate);
        assert_ne!(second.id, expiring.id);
        queue.remove_job(second.id).await.unwrap();
        assert!(!submit(&queue, json!({}), keyed("k")).await.duplicate);
    }

    async fn a_unique_enqueue_in_a_transaction_sees_its_own_jobs_and_rolls_back_with_it(t) {
        let queue = t.queue.clone();
        macro_rules! in_tx {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await.unwrap();
                let first = queue.submit_in(&mut *tx, "add", json!({}), keyed("k")).await.unwrap();
                let again = queue.submit_in(&mut *tx, "add", json!({}), keyed("k")).await.unwrap();
                assert_eq!((again.id, again.duplicate), (first.id, true));
                tx.rollback().await.unwrap();
                assert_eq!(job_count(&queue).await, 0);
                let mut tx = $pool.begin().await.unwrap();
                let kept = queue.submit_in(&mut *tx, "add", json!({}), keyed("k")).await.unwrap();
                tx.commit().await.unwrap();
                assert!(!kept.duplicate);
                assert_eq!(submit(&queue, json!({}), keyed("k")).await.id, kept.id);
            }};
        }
        match queue.pool() {
            Pool::Postgres(pool) => in_tx!(pool),
            Pool::Sqlite(pool) => in_tx!(pool),
            other => panic!("a pool this behaviour does not know: {other:?}"),
        }
    }

    async fn a_bad_unique_key_or_period_is_refused_and_writes_nothing(t) {
        let queue = t.queue.clone();
        let error = queue.submit("add", json!({}), keyed("")).await.unwrap_err();
        assert_eq!(error.to_string(), "invalid option: a unique key must be 1 to 512 bytes, got 0 (hash longer keys)");
        let error = queue.submit("add", json!({}), keyed("a\0b")).await.unwrap_err();
        assert_eq!(error.to_string(), "invalid option: the unique key \"a\\0b\" contains a NUL character");
        let zero = EnqueueOptions::new().unique(Unique::key("k").scope(UniqueScope::Period(Duration::ZERO)));
        let error = queue.submit("add", json!({}), zero).await.unwrap_err();
        assert_eq!(error.to_string(), "invalid option: unique_for must be longer than zero");
        assert_eq!(job_count(&queue).await, 0);
    }
}
