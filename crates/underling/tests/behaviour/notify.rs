//! PostgreSQL wakes workers with LISTEN/NOTIFY when jobs become ready.

use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::Receiver;
use underling::{EnqueueOptions, Queue, RetryOptions};

use crate::common;

/// Waits up to five seconds for a wake-up naming `queue_name` (ignoring the catch-all `*`).
async fn woken_for(rx: &mut Receiver<String>, queue_name: &str) -> bool {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(name) if name == queue_name => return true,
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or(false)
}

/// Subscribes and waits until the listener is connected (it announces itself with `*`).
async fn subscribe(queue: &Queue) -> Receiver<String> {
    let mut rx = queue
        .backend()
        .subscribe()
        .await
        .unwrap()
        .expect("PostgreSQL can push wake-ups");
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert!(matches!(first, Ok(Ok(ref s)) if s == "*"), "{first:?}");
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_enqueue_wakes_workers_of_that_queue() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut rx = subscribe(&db.queue).await;
    common::enqueue_with(&db.queue, "add", EnqueueOptions::new().queue("mail")).await;
    assert!(woken_for(&mut rx, "mail").await);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_committed_transactional_enqueue_wakes_workers() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut rx = subscribe(&db.queue).await;
    let pg = db
        .queue
        .backend()
        .as_any()
        .downcast_ref::<underling::backend::postgres::PostgresBackend>()
        .unwrap();
    let mut tx = pg.pool().begin().await.unwrap();
    db.queue
        .enqueue_in_postgres(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_finishing_a_parent_wakes_the_childs_queue() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let queue = &db.queue;
    let parent = common::enqueue_with(queue, "p", EnqueueOptions::new().queue("parents")).await;
    common::enqueue_with(
        queue,
        "c",
        EnqueueOptions::new().queue("children").parent(parent),
    )
    .await;
    let w = common::worker(queue).await;
    let mut rx = subscribe(queue).await;
    common::run_to_finish(queue, w, parent).await;
    assert!(woken_for(&mut rx, "children").await);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retry_and_resume_wake_workers() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let queue = &db.queue;
    let id = common::enqueue_with(queue, "add", EnqueueOptions::new().queue("r")).await;
    queue.pause_queue("p").await.unwrap();
    let mut rx = subscribe(queue).await;
    queue.retry_job(id, RetryOptions::default()).await.unwrap();
    assert!(woken_for(&mut rx, "r").await);
    queue.resume_queue("p").await.unwrap();
    assert!(woken_for(&mut rx, "p").await);
    db.cleanup().await;
}
