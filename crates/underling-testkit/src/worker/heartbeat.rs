//! A worker stays visibly alive while it is busy, so that no repair takes it for dead.

use std::time::Duration;

use serde_json::{Value, json};
use underling::{EnqueueOptions, JobContext, NewJob, Registry, Task, TaskResult, WorkerOptions};

use crate::support::*;

/// `test.nop`: does nothing, so that a worker full of them is as busy as it can be.
struct Nop;

#[underling::async_trait]
impl Task for Nop {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.nop"
    }
    async fn run(&self, _ctx: &JobContext, _args: Value) -> TaskResult {
        tokio::task::yield_now().await;
        Ok(Value::Null)
    }
}

behaviours! {
    async fn a_busy_worker_keeps_heartbeating(t) {
        let queue = t.queue.clone();
        // More jobs than the worker can run in the test (topped up below), so that it never runs
        // dry: a finished job is always waiting for the main loop, which must still find time
        // to heartbeat.
        let batch: Vec<NewJob> = (0..1000)
            .map(|_| NewJob::new("test.nop", json!({}), EnqueueOptions::new()).unwrap())
            .collect();
        for _ in 0..30 {
            queue.enqueue_batch(&batch).await.unwrap();
        }
        let mut registry = Registry::new();
        registry.register(Nop).unwrap();
        let options = WorkerOptions {
            heartbeat_interval: Duration::from_millis(50),
            ..fast_options(32)
        };
        let worker = start(&queue, registry, options);
        let mut last = wait_for("the worker to register", || async {
            queue.workers().await.unwrap().first().map(|w| w.last_heartbeat)
        })
        .await;
        // For four seconds (eighty heartbeat intervals), the heartbeat must never be older than
        // two (forty intervals: room for a loaded machine; a starved worker missed them all).
        let busy_until = tokio::time::Instant::now() + Duration::from_secs(4);
        let mut beats = 0;
        while tokio::time::Instant::now() < busy_until {
            // Keep it fed: a fast worker empties the queue well within the four seconds.
            if queue.stats().await.unwrap().inactive_jobs < 10_000 {
                queue.enqueue_batch(&batch).await.unwrap();
            }
            // The age when asked: a read slowed by a loaded machine does not add to it.
            let asked = chrono::Utc::now();
            let heartbeat = queue.workers().await.unwrap()[0].last_heartbeat;
            let age = asked - heartbeat;
            assert!(
                age < chrono::Duration::seconds(2),
                "the busy worker's last heartbeat is {age} old"
            );
            if heartbeat > last {
                beats += 1;
                last = heartbeat;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(beats >= 4, "only {beats} heartbeats in four busy seconds");
        worker.control.stop();
        let summary = worker.join().await;
        let left = queue.stats().await.unwrap().inactive_jobs;
        assert!(summary.performed > 0 && left > 0, "the worker was not busy throughout: {summary:?}, {left} jobs left");
    }
}
