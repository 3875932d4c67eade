//! Enqueueing on the application's own connections and transactions
//! ([`underling::Queue::enqueue_in`]), on whichever backend the store is.

use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::Receiver;
use underling::{BackendKind, EnqueueOptions, Error, NewJob, Pool, Queue};

use crate::support::*;

/// The next wake-up for a queue other than `*` (which a listener sends when it connects)
/// within `within`, if any.
async fn next_wake(rx: &mut Receiver<String>, within: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(queue)) if queue == "*" => continue,
            Ok(Ok(queue)) => return Some(queue),
            Ok(Err(e)) => panic!("wake-ups ended: {e}"),
            Err(_) => return None,
        }
    }
}

/// Enqueues a job to queue `mail` in a transaction of the queue's own pool, waits, then commits
/// (or rolls back): the wake-ups seen before the end, and after it.
async fn wakes_around_the_end(
    queue: &Queue,
    rx: &mut Receiver<String>,
    commit: bool,
) -> (Option<String>, Option<String>) {
    let opts = || EnqueueOptions::new().queue("mail");
    macro_rules! in_tx {
        ($pool:expr) => {{
            let mut tx = $pool.begin().await.unwrap();
            queue
                .enqueue_in(&mut tx, "add", json!({}), opts())
                .await
                .unwrap();
            let before = next_wake(rx, Duration::from_millis(200)).await;
            if commit {
                tx.commit().await.unwrap()
            } else {
                tx.rollback().await.unwrap()
            }
            (before, next_wake(rx, Duration::from_secs(2)).await)
        }};
    }
    match queue.pool() {
        Pool::Postgres(pool) => in_tx!(pool),
        Pool::Sqlite(pool) => in_tx!(pool),
        other => panic!("a pool this behaviour does not know: {other:?}"),
    }
}

behaviours! {
    /// Workers of this process (and, on PostgreSQL, of every process) are woken when the
    /// application's transaction commits, not before: a worker woken earlier would find nothing.
    async fn enqueue_in_wakes_workers_once_the_transaction_commits(t) {
        let queue = t.queue.clone();
        let mut rx = t.store.subscribe().await.unwrap().expect("both stores push wake-ups");
        let (before, after) = wakes_around_the_end(&queue, &mut rx, true).await;
        assert_eq!(before, None, "woken before the commit");
        assert_eq!(after.as_deref(), Some("mail"));
        assert_eq!(job_count(&queue).await, 1);
    }

    async fn enqueue_in_rolled_back_wakes_nobody(t) {
        let queue = t.queue.clone();
        let mut rx = t.store.subscribe().await.unwrap().expect("both stores push wake-ups");
        let (before, after) = wakes_around_the_end(&queue, &mut rx, false).await;
        assert_eq!((before, after), (None, None));
        assert_eq!(job_count(&queue).await, 0);
    }

    /// A connection of the other backend is refused before anything is written.
    async fn enqueue_in_on_the_wrong_dialect_is_wrong_backend_and_writes_nothing(t) {
        let queue = t.queue.clone();
        let job = NewJob::new("add", json!({}), EnqueueOptions::new()).unwrap();
        let (err, batch_err) = match queue.pool() {
            Pool::Postgres(_) => {
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
                    .await
                    .unwrap();
                let err = queue.enqueue_in(&mut conn, "add", json!({}), EnqueueOptions::new()).await.unwrap_err();
                let batch_err = queue.enqueue_batch_in(&mut conn, std::slice::from_ref(&job)).await.unwrap_err();
                (err, batch_err)
            }
            Pool::Sqlite(_) => {
                let url = crate::postgres_url();
                // A PostgreSQL connection to hand over: the test server's, as for the
                // PostgreSQL factory (required under CI, skipped loudly elsewhere).
                let mut conn = match <sqlx::PgConnection as sqlx::Connection>::connect(&url).await {
                    Ok(conn) => conn,
                    Err(e) if std::env::var_os("CI").is_some() => {
                        panic!("PostgreSQL is required in CI but {url} failed: {e}")
                    }
                    Err(e) => {
                        eprintln!("\n!!!! SKIPPING this behaviour: it needs a PostgreSQL connection, and {url} is not reachable ({e}).\n");
                        return;
                    }
                };
                let err = queue.enqueue_in(&mut conn, "add", json!({}), EnqueueOptions::new()).await.unwrap_err();
                let batch_err = queue.enqueue_batch_in(&mut conn, std::slice::from_ref(&job)).await.unwrap_err();
                (err, batch_err)
            }
            other => panic!("a pool this behaviour does not know: {other:?}"),
        };
        let (expected, found) = match t.kind() {
            BackendKind::Postgres => (BackendKind::Sqlite, BackendKind::Postgres),
            BackendKind::Sqlite => (BackendKind::Postgres, BackendKind::Sqlite),
        };
        for err in [err, batch_err] {
            match err {
                Error::WrongBackend { expected: e, found: f } => assert_eq!((e, f), (expected, found)),
                other => panic!("expected WrongBackend, got {other:?}"),
            }
        }
        assert_eq!(job_count(&queue).await, 0);
        assert!(queue.queues().await.unwrap().is_empty());
    }
}
