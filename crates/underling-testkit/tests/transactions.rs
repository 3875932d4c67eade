//! Enqueueing inside the application's own transaction: the job exists iff it commits (plain
//! tests: the transaction's type is one backend's, and SQLite in memory has one connection).

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use underling::{
    BackendKind, ConnectOptions, EnqueueOptions, Error, JobState, NewJob, Pool, Queue,
};
use underling_testkit::support::{claim_ids, job, job_count, run_burst, worker};
use underling_testkit::{
    TempSqlite, TestStore, drop_schema, postgres, postgres_url, sqlite, unique_schema,
};

/// The queue's PostgreSQL pool.
fn pg_pool(queue: &Queue) -> sqlx::PgPool {
    match queue.pool() {
        Pool::Postgres(pool) => pool,
        other => panic!("a PostgreSQL queue, got {other:?}"),
    }
}

/// The queue's SQLite pool.
fn sqlite_pool(queue: &Queue) -> sqlx::SqlitePool {
    match queue.pool() {
        Pool::Sqlite(pool) => pool,
        other => panic!("a SQLite queue, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let Some(db) = postgres().await else {
        return;
    };
    let queue = db.queue.clone();
    let mut tx = pg_pool(&queue).begin().await.unwrap();
    let id = queue
        .enqueue_in(&mut tx, "add", json!({"a": 1}), EnqueueOptions::new())
        .await
        .unwrap();
    assert_eq!(
        queue.job(id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.rollback().await.unwrap();
    assert_eq!(queue.job(id).await.unwrap(), None);
    assert_eq!(job_count(&queue).await, 0);
    let w = worker(&db).await;
    assert!(claim_ids(&db, w, &["default"], 10).await.is_empty());
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_job_enqueued_in_a_committed_transaction_exists() {
    let Some(db) = postgres().await else {
        return;
    };
    let queue = db.queue.clone();
    let mut tx = pg_pool(&queue).begin().await.unwrap();
    let id = queue
        .enqueue_in(
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
    let job = job(&queue, id).await;
    assert_eq!(job.state, JobState::Inactive);
    assert_eq!(job.queue, "tx");
    assert_eq!(job.args, json!({"a": 1}));
    let w = worker(&db).await;
    assert_eq!(claim_ids(&db, w, &["tx"], 10).await, vec![id]);
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_enqueue_in_a_transaction_checks_parents() {
    let Some(db) = postgres().await else {
        return;
    };
    let queue = db.queue.clone();
    let mut tx = pg_pool(&queue).begin().await.unwrap();
    let parent = queue
        .enqueue_in(&mut tx, "parent", json!({}), EnqueueOptions::new())
        .await
        .unwrap();
    let child = queue
        .enqueue_in(
            &mut tx,
            "child",
            json!({}),
            EnqueueOptions::new().parent(parent),
        )
        .await
        .unwrap();
    let err = queue
        .enqueue_in(
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
    assert_eq!(job(&queue, child).await.parents, vec![parent]);
    assert_eq!(job_count(&queue).await, 2);
    db.cleanup().await;
}

#[tokio::test]
async fn postgres_queue_refuses_enqueue_in_sqlite() {
    let Some(db) = postgres().await else {
        return;
    };
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
        .await
        .unwrap();
    let err = db
        .queue
        .enqueue_in(&mut conn, "add", json!({}), EnqueueOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongBackend {
                expected: BackendKind::Sqlite,
                found: BackendKind::Postgres
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "this queue uses PostgreSQL, but the operation needs SQLite"
    );
    assert_eq!(job_count(&db.queue).await, 0);
    db.cleanup().await;
}

#[tokio::test]
async fn sqlite_queue_refuses_enqueue_in_postgres() {
    let Some(db) = postgres().await else {
        return;
    };
    let lite = sqlite().await;
    let queue = lite.queue.clone();
    let mut conn = pg_pool(&db.queue).acquire().await.unwrap();
    let err = queue
        .enqueue_in(&mut conn, "add", json!({}), EnqueueOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongBackend {
                expected: BackendKind::Postgres,
                found: BackendKind::Sqlite
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "this queue uses SQLite, but the operation needs PostgreSQL"
    );
    assert_eq!(job_count(&queue).await, 0);
    drop(conn);
    lite.cleanup().await;
    db.cleanup().await;
}

/// A SQLite queue on a file, and a pool of the application's own on the same file.
async fn sqlite_file(label: &str) -> (TempSqlite, TestStore, sqlx::SqlitePool) {
    let file = TempSqlite::new(label);
    let store = underling::store::open(&ConnectOptions::new(file.url()).migrate(true))
        .await
        .expect("SQLite file opens");
    store.migrate().await.expect("SQLite file migrates");
    let db = TestStore::new(store);
    let app = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&file.path)
                .busy_timeout(std::time::Duration::from_secs(10)),
        )
        .await
        .expect("application pool opens");
    (file, db, app)
}

#[tokio::test]
async fn sqlite_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let (_file, db, app) = sqlite_file("tx-rollback").await;
    let queue = db.queue.clone();
    let mut tx = app.begin().await.unwrap();
    let id = queue
        .enqueue_in(&mut tx, "add", json!({"a": 1}), EnqueueOptions::new())
        .await
        .unwrap();
    assert_eq!(
        queue.job(id).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.rollback().await.unwrap();
    assert_eq!(queue.job(id).await.unwrap(), None);
    assert_eq!(job_count(&queue).await, 0);
    queue.close().await;
    app.close().await;
}

#[tokio::test]
async fn sqlite_job_enqueued_in_a_committed_transaction_exists() {
    let (_file, db, app) = sqlite_file("tx-commit").await;
    let queue = db.queue.clone();
    let mut tx = app.begin().await.unwrap();
    let id = queue
        .enqueue_in(
            &mut tx,
            "add",
            json!({"a": 1}),
            EnqueueOptions::new().queue("tx"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let job = job(&queue, id).await;
    assert_eq!(job.state, JobState::Inactive);
    assert_eq!(job.queue, "tx");
    assert_eq!(job.args, json!({"a": 1}));
    let w = worker(&db).await;
    assert_eq!(claim_ids(&db, w, &["tx"], 10).await, vec![id]);
    queue.close().await;
    app.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_job_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let db = sqlite().await;
    let queue = db.queue.clone();
    // In memory the pool has one connection: the transaction must come from it.
    let mut tx = sqlite_pool(&queue).begin().await.unwrap();
    let id = queue
        .enqueue_in(&mut tx, "add", json!({}), EnqueueOptions::new())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(queue.job(id).await.unwrap(), None);
    assert_eq!(job_count(&queue).await, 0);
}

#[tokio::test]
async fn sqlite_in_memory_job_enqueued_in_a_committed_transaction_exists() {
    let db = sqlite().await;
    let queue = db.queue.clone();
    let mut tx = sqlite_pool(&queue).begin().await.unwrap();
    let id = queue
        .enqueue_in(&mut tx, "add", json!({"a": 1}), EnqueueOptions::new())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(job(&queue, id).await.args, json!({"a": 1}));
    assert_eq!(job_count(&queue).await, 1);
}

/// On PostgreSQL, a queue on schema x enqueues through the application's own pool, whose
/// connections have only `public` on their search path: the statements name schema x, so the
/// jobs land there, the queue finds them and a worker on that schema runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_enqueue_in_on_the_applications_own_pool_lands_in_the_queues_schema() {
    let Some(db) = postgres().await else {
        return;
    };
    let schema = unique_schema();
    let queue = Queue::connect_with(
        ConnectOptions::new(postgres_url())
            .schema(&schema)
            .migrate(true),
    )
    .await
    .expect("a queue on its own schema");
    let app = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&postgres_url())
        .await
        .expect("the application's own pool");
    let search_path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&app)
        .await
        .unwrap();
    assert_eq!(search_path, "\"$user\", public");

    // In a transaction of the application's.
    let mut tx = app.begin().await.unwrap();
    let in_tx = queue
        .enqueue_in(
            &mut tx,
            "test.double",
            json!({"n": 21}),
            EnqueueOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        queue.job(in_tx).await.unwrap(),
        None,
        "invisible before commit"
    );
    tx.commit().await.unwrap();
    // On a connection of the application's pool, outside any transaction.
    let mut conn = app.acquire().await.unwrap();
    let batch = vec![
        NewJob::new("test.double", json!({"n": 1}), EnqueueOptions::new()).unwrap(),
        NewJob::new("test.double", json!({"n": 2}), EnqueueOptions::new()).unwrap(),
    ];
    let on_conn = queue.enqueue_batch_in(&mut conn, &batch).await.unwrap();
    drop(conn);
    let ids: Vec<i64> = [vec![in_tx], on_conn].concat();

    // In schema x, as the application's pool sees it by name...
    let sql = format!("SELECT id FROM \"{schema}\".underling_jobs ORDER BY id");
    let stored: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&app)
        .await
        .unwrap();
    assert_eq!(stored, ids);
    // ... and as the queue sees it.
    let first = job(&queue, in_tx).await;
    assert_eq!(
        (first.task.as_str(), &first.args, first.state),
        ("test.double", &json!({"n": 21}), JobState::Inactive)
    );
    // A worker on that schema runs them.
    let summary = run_burst(&queue, underling_testkit::tasks::simple(), 2).await;
    assert_eq!((summary.performed, summary.finished), (3, 3));
    for (id, doubled) in ids.iter().zip([42, 2, 4]) {
        let done = job(&queue, *id).await;
        assert_eq!(done.state, JobState::Finished, "job {id}");
        assert_eq!(done.result, Some(json!({ "doubled": doubled })), "job {id}");
    }
    app.close().await;
    queue.close().await;
    drop_schema(&schema).await;
    db.cleanup().await;
}
