//! A committed transactional enqueue wakes workers (a plain test: on PostgreSQL the wake-up
//! travels with the application's commit; SQLite cannot see another connection's commit).

use serde_json::json;
use underling::{EnqueueOptions, Pool};
use underling_testkit::behaviour::notify::{subscribe, woken_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_committed_transactional_enqueue_wakes_workers() {
    let Some(db) = underling_testkit::postgres().await else {
        return;
    };
    let mut rx = subscribe(&db).await;
    let Pool::Postgres(pool) = db.queue.pool() else {
        panic!("a PostgreSQL queue");
    };
    let mut tx = pool.begin().await.unwrap();
    db.queue
        .enqueue_in(
            &mut tx,
            "add",
            json!({}),
            EnqueueOptions::new().queue("txq"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(woken_for(&mut rx, "txq").await);
    db.cleanup().await;
}
