//! Workers are woken (PostgreSQL: LISTEN/NOTIFY; SQLite: in-process) when jobs become ready.

use std::time::Duration;

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use underling::{BackendKind, EnqueueOptions, JobFilter, JobState, RetryOptions};

use crate::TestStore;
use crate::support::*;

/// Waits up to five seconds for a wake-up naming `queue_name` (ignoring others and `*`).
pub async fn woken_for(rx: &mut Receiver<String>, queue_name: &str) -> bool {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(name) if name == queue_name => return true,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or(false)
}

/// Subscribes; on PostgreSQL also waits until the listener is connected (it announces itself
/// with `*`), since notifications sent before that are lost by design.
pub async fn subscribe(t: &TestStore) -> Receiver<String> {
    let mut rx = t
        .store
        .subscribe()
        .await
        .unwrap()
        .expect("both backends push wake-ups");
    if t.kind() == BackendKind::Postgres {
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(first, Ok(Ok(ref s)) if s == "*"), "{first:?}");
    }
    rx
}

behaviours! {
    async fn enqueue_wakes_workers_of_that_queue(t) {
        let queue = t.queue.clone();
        let mut rx = subscribe(t).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("mail")).await;
        assert!(woken_for(&mut rx, "mail").await);
    }

    async fn finishing_a_parent_wakes_the_childs_queue(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "p", EnqueueOptions::new().queue("parents")).await;
        enqueue_with(&queue, "c", EnqueueOptions::new().queue("children").parent(parent)).await;
        let w = worker(t).await;
        let mut rx = subscribe(t).await;
        run_to_finish(t, w, parent).await;
        assert!(woken_for(&mut rx, "children").await);
    }

    async fn failing_a_parent_wakes_the_childs_queue(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "p", EnqueueOptions::new().queue("parents")).await;
        enqueue_with(&queue, "c", EnqueueOptions::new().queue("lax").parent(parent).lax(true)).await;
        let w = worker(t).await;
        let mut rx = subscribe(t).await;
        run_to_failure(t, w, parent).await;
        assert!(woken_for(&mut rx, "lax").await);
    }

    async fn retry_job_wakes_workers_of_its_queue(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let mut rx = subscribe(t).await;
        let opts = RetryOptions { queue: Some("moved".into()), ..Default::default() };
        queue.retry_job(id, opts).await.unwrap();
        assert!(woken_for(&mut rx, "moved").await);
    }

    async fn retry_jobs_wakes_workers_of_their_queues(t) {
        let queue = t.queue.clone();
        let w = worker(t).await;
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().queue("again")).await;
        run_to_failure(t, w, id).await;
        let mut rx = subscribe(t).await;
        let filter = JobFilter { states: vec![JobState::Failed], ..Default::default() };
        assert_eq!(queue.retry_jobs(&filter).await.unwrap(), 1);
        assert!(woken_for(&mut rx, "again").await);
    }

    async fn resume_wakes_workers_of_that_queue(t) {
        let queue = t.queue.clone();
        queue.pause_queue("paused").await.unwrap();
        let mut rx = subscribe(t).await;
        queue.resume_queue("paused").await.unwrap();
        assert!(woken_for(&mut rx, "paused").await);
    }
}
