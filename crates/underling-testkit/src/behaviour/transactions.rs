//! Enqueueing on the application's own connections and transactions
//! ([`underling::Queue::enqueue_in`]), on whichever backend the store is.

use serde_json::json;
use underling::{BackendKind, EnqueueOptions, Error, NewJob, Pool};

use crate::support::*;

behaviours! {
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
