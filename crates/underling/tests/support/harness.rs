//! The harness shared by the behaviour and worker suites: each test runs on SQLite (in
//! memory) and on PostgreSQL (a fresh schema per test). Included by each suite's `common.rs`.
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached, the PostgreSQL half
//! of a test fails under CI (`CI` set) and is skipped with a loud message elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;
use underling::{ConnectOptions, Queue};

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh SQLite database in memory.
pub async fn sqlite() -> Queue {
    Queue::connect_and_migrate("sqlite::memory:")
        .await
        .expect("in-memory SQLite must open")
}

/// A queue on a fresh PostgreSQL schema, dropped by [`PgTestDb::cleanup`].
pub struct PgTestDb {
    /// The queue.
    pub queue: Queue,
    /// The schema it works in (made by [`unique_schema`]).
    pub schema: String,
}

impl PgTestDb {
    /// Drops the test's schema.
    pub async fn cleanup(self) {
        drop_schema(&self.schema).await;
        self.queue.close().await;
    }
}

/// Drops a schema made by [`unique_schema`], and everything in it, over a connection of its
/// own.
pub async fn drop_schema(schema: &str) {
    let url = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url} to drop test schema {schema}: {e}"));
    // The name comes from `unique_schema`: letters, digits and underscores.
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("drop test schema {schema}: {e}"));
    let _ = conn.close().await;
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique schema name for one test.
pub fn unique_schema() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_{}_{}_{}", std::process::id(), nanos, n)
}

/// A queue on a fresh PostgreSQL schema, or `None` (with a loud message) when no server is
/// reachable outside CI.
pub async fn postgres() -> Option<PgTestDb> {
    let url = postgres_url();
    let schema = unique_schema();
    let opts = ConnectOptions::new(&url)
        .schema(&schema)
        .max_connections(12)
        .migrate(true);
    match Queue::connect_with(opts).await {
        Ok(queue) => Some(PgTestDb { queue, schema }),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required in CI but {url} failed: {e}");
            }
            eprintln!(
                "\n!!!! SKIPPING the PostgreSQL half of this test: {url} is not reachable ({e}).\n\
                 !!!! Start PostgreSQL or set UNDERLING_TEST_DATABASE_URL to run it.\n"
            );
            None
        }
    }
}

/// Defines each test twice: once on SQLite in memory, once on PostgreSQL.
///
/// ```ignore
/// behaviour! {
///     async fn enqueue_returns_ascending_ids(queue) { ... }
/// }
/// ```
#[macro_export]
macro_rules! behaviour {
    ($( $(#[$meta:meta])* async fn $name:ident($queue:ident) $body:block )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $queue = $crate::common::sqlite().await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::postgres().await else { return };
                    {
                        let $queue = db.queue.clone();
                        $body
                    }
                    db.cleanup().await;
                }
            )*
        }
    };
}
