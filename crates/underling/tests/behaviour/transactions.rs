//! Enqueueing inside the application's own transaction: the job exists iff it commits.

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use underling::backend::postgres::PostgresBackend;
use underling::{EnqueueOptions, Error, JobState, Queue};

use crate::common;

/// A SQLite database file in the temporary directory, removed on drop.
pub struct TempSqlite {
    pub path: std::path::PathBuf,
}

impl TempSqlite {
    pub fn new(label: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("underling-{label}-{}.db", common::unique_schema()));
        TempSqlite { path }
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn pg_backend(queue: &Queue) -> &PostgresBackend {
    queue
        .backend()
        .as_any()
        .downcast_ref::<PostgresBackend>()
        .expect("a PostgreSQL queue")
}

#[tokio::test]
async fn postgres_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let queue = db.queue.clone();
    let mut tx = pg_backend(&queue).pool().begin().await.unwrap();
    let id = queue
        .enqueue_in_postgres(&mut tx, "add", json!({"a": 1}), EnqueueOptions::new())
        .await
        .unwrap();
    assert_eq!(
        queue.job(id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.rollback().await.unwrap();
    assert_eq!(queue.job(id).await.unwrap(), None);
    assert_eq!(common::job_count(&queue).await, 0);
    let w = common::worker(&queue).await;
    assert!(
        common::claim_ids(&queue, w, &["default"], 10)
            .await
            .is_empty()
    );
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_job_enqueued_in_a_committed_transaction_exists() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let queue = db.queue.clone();
    let mut tx = pg_backend(&queue).pool().begin().await.unwrap();
    let id = queue
        .enqueue_in_postgres(
            &mut tx,
            "add",
            json!({"a": 1}),
            EnqueueOptions::new().queue("tx"),
        )
        .await
        .unwrap();
    assert_eq!(
        queue.job(id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.commit().await.unwrap();
    let job = common::job(&queue, id).await;
    assert_eq!(job.state, JobState::Inactive);
    assert_eq!(job.queue, "tx");
    assert_eq!(job.args, json!({"a": 1}));
    let w = common::worker(&queue).await;
    assert_eq!(common::claim_ids(&queue, w, &["tx"], 10).await, vec![id]);
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_enqueue_in_a_transaction_checks_parents() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let queue = db.queue.clone();
    let mut tx = pg_backend(&queue).pool().begin().await.unwrap();
    let parent = queue
        .enqueue_in_postgres(&mut tx, "parent", json!({}), EnqueueOptions::new())
        .await
        .unwrap();
    let child = queue
        .enqueue_in_postgres(
            &mut tx,
            "child",
            json!({}),
            EnqueueOptions::new().parent(parent),
        )
        .await
        .unwrap();
    let err = queue
        .enqueue_in_postgres(
            &mut tx,
            "child",
            json!({}),
            EnqueueOptions::new().parent(999),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ParentNotFound(999)), "{err:?}");
    tx.commit()
        .await
        .unwrap_or_else(|e| panic!("commit after a refused enqueue: {e}"));
    assert_eq!(common::job(&queue, child).await.parents, vec![parent]);
    assert_eq!(common::job_count(&queue).await, 2);
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_queue_refuses_enqueue_in_sqlite() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
        .await
        .unwrap();
    let err = db
        .queue
        .enqueue_in_sqlite(&mut conn, "add", json!({}), EnqueueOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid option: enqueue_in_sqlite needs a SQLite queue"
    );
    assert_eq!(common::job_count(&db.queue).await, 0);
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_queue_refuses_enqueue_in_postgres() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let queue = common::sqlite().await;
    let mut conn = pg_backend(&db.queue).pool().acquire().await.unwrap();
    let err = queue
        .enqueue_in_postgres(&mut conn, "add", json!({}), EnqueueOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOption(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid option: enqueue_in_postgres needs a PostgreSQL queue"
    );
    assert_eq!(common::job_count(&queue).await, 0);
    drop(conn);
    db.cleanup().await;
}

/// A SQLite queue on a file, and a pool of the application's own on the same file.
async fn sqlite_file(label: &str) -> (TempSqlite, Queue, sqlx::SqlitePool) {
    let file = TempSqlite::new(label);
    let queue = Queue::connect_and_migrate(&file.url())
        .await
        .expect("SQLite file opens");
    let app = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&file.path)
                .busy_timeout(std::time::Duration::from_secs(10)),
        )
        .await
        .expect("application pool opens");
    (file, queue, app)
}

#[tokio::test]
async fn sqlite_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let (_file, queue, app) = sqlite_file("tx-rollback").await;
    let mut tx = app.begin().await.unwrap();
    let id = queue
        .enqueue_in_sqlite(&mut tx, "add", json!({"a": 1}), EnqueueOptions::new())
        .await
        .unwrap();
    assert_eq!(
        queue.job(id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.rollback().await.unwrap();
    assert_eq!(queue.job(id).await.unwrap(), None);
    assert_eq!(common::job_count(&queue).await, 0);
    queue.close().await;
    app.close().await;
}

#[tokio::test]
async fn sqlite_job_enqueued_in_a_committed_transaction_exists() {
    let (_file, queue, app) = sqlite_file("tx-commit").await;
    let mut tx = app.begin().await.unwrap();
    let id = queue
        .enqueue_in_sqlite(
            &mut tx,
            "add",
            json!({"a": 1}),
            EnqueueOptions::new().queue("tx"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let job = common::job(&queue, id).await;
    assert_eq!(job.state, JobState::Inactive);
    assert_eq!(job.queue, "tx");
    assert_eq!(job.args, json!({"a": 1}));
    let w = common::worker(&queue).await;
    assert_eq!(common::claim_ids(&queue, w, &["tx"], 10).await, vec![id]);
    queue.close().await;
    app.close().await;
}

fn sqlite_backend(queue: &Queue) -> &underling::backend::sqlite::SqliteBackend {
    queue
        .backend()
        .as_any()
        .downcast_ref::<underling::backend::sqlite::SqliteBackend>()
        .expect("a SQLite queue")
}

#[tokio::test]
async fn sqlite_in_memory_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let queue = common::sqlite().await;
    // In memory the pool has one connection: the transaction must come from it.
    let mut tx = sqlite_backend(&queue).pool().begin().await.unwrap();
    let id = queue
        .enqueue_in_sqlite(&mut tx, "add", json!({}), EnqueueOptions::new())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(queue.job(id).await.unwrap(), None);
    assert_eq!(common::job_count(&queue).await, 0);
}

#[tokio::test]
async fn sqlite_in_memory_job_enqueued_in_a_committed_transaction_exists() {
    let queue = common::sqlite().await;
    let mut tx = sqlite_backend(&queue).pool().begin().await.unwrap();
    let id = queue
        .enqueue_in_sqlite(&mut tx, "add", json!({"a": 1}), EnqueueOptions::new())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(common::job(&queue, id).await.args, json!({"a": 1}));
    assert_eq!(common::job_count(&queue).await, 1);
}
