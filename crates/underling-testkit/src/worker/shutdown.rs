//! Stopping a worker: gracefully (running jobs finish), after the grace period, or at once.

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState, WorkerOptions};

use crate::support::*;
use crate::tasks;

behaviours! {
    async fn a_graceful_stop_lets_running_jobs_finish_and_claims_no_more(t) {
        let queue = t.queue.clone();
        let (registry, gate, in_flight) = tasks::gated();
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap());
        }
        let worker = start(&queue, registry, fast_options(2));
        wait_for("two jobs in flight", || async { (in_flight.now() == 2).then_some(()) }).await;
        worker.control.stop();
        gate.open();
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.finished, summary.failed), (2, 2, 0));
        for id in &ids[..2] {
            let job = job(&queue, *id).await;
            assert_eq!(job.state, JobState::Finished);
            assert_eq!(job.result, Some(json!("passed")));
        }
        assert_eq!(job(&queue, ids[2]).await.state, JobState::Inactive);
        assert!(queue.workers().await.unwrap().is_empty(), "the worker unregistered");
    }

    async fn jobs_still_running_after_the_grace_period_are_failed(t) {
        let queue = t.queue.clone();
        let (registry, _gate, in_flight) = tasks::gated();
        let id = queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap();
        let options = WorkerOptions {
            shutdown_grace: Duration::from_millis(200),
            ..fast_options(1)
        };
        let worker = start(&queue, registry, options);
        wait_for("the job to start", || async { (in_flight.started() == 1).then_some(()) }).await;
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!(summary.failed, 1);
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!("Worker shut down before the job finished")));
    }

    async fn stop_now_fails_running_jobs_at_once(t) {
        let queue = t.queue.clone();
        let (registry, _gate, in_flight) = tasks::gated();
        let once = queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap();
        let twice = queue
            .enqueue("test.gated", json!({}), EnqueueOptions::new().attempts(2))
            .await
            .unwrap();
        let options = WorkerOptions {
            // Far longer than the test may wait: only stop_now can end these jobs in time.
            shutdown_grace: Duration::from_secs(3600),
            ..fast_options(2)
        };
        let worker = start(&queue, registry, options);
        wait_for("both jobs to start", || async { (in_flight.started() == 2).then_some(()) }).await;
        worker.control.stop_now();
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.failed), (2, 2));
        let once = job(&queue, once).await;
        assert_eq!(once.state, JobState::Failed);
        assert_eq!(once.result, Some(json!("Worker shut down before the job finished")));
        // A job with tries left goes back to the queue.
        let twice = job(&queue, twice).await;
        assert_eq!(twice.state, JobState::Inactive);
        assert_eq!(twice.retries, 1);
        assert_eq!(twice.result, Some(json!("Worker shut down before the job finished")));
        assert!(queue.workers().await.unwrap().is_empty(), "the worker unregistered");
    }
    async fn a_stopping_worker_keeps_heartbeating_while_its_jobs_finish(t) {
        let queue = t.queue.clone();
        let (registry, gate, in_flight) = tasks::gated();
        let id = queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap();
        let options = WorkerOptions {
            shutdown_grace: Duration::from_secs(3600),
            ..fast_options(1)
        };
        let worker = start(&queue, registry, options);
        wait_for("the job to start", || async { (in_flight.started() == 1).then_some(()) }).await;
        worker.control.stop();
        // One heartbeat may have been on its way when the stop came; a second one proves
        // that the worker still heartbeats while it waits for its jobs.
        let mut last = queue.workers().await.unwrap()[0].last_heartbeat;
        for _ in 0..2 {
            last = wait_for("a heartbeat while stopping", || async {
                let now = queue.workers().await.unwrap()[0].last_heartbeat;
                (now > last).then_some(now)
            })
            .await;
        }
        assert_eq!(job(&queue, id).await.state, JobState::Active);
        gate.open();
        let summary = worker.join().await;
        assert_eq!(summary.finished, 1);
        assert_eq!(job(&queue, id).await.state, JobState::Finished);
    }

    async fn a_stopping_worker_still_obeys_a_stop_command(t) {
        let queue = t.queue.clone();
        let (registry, _gate, in_flight) = tasks::gated();
        let id = queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap();
        let options = WorkerOptions {
            shutdown_grace: Duration::from_secs(3600),
            ..fast_options(1)
        };
        let worker = start(&queue, registry, options);
        wait_for("the job to start", || async { (in_flight.started() == 1).then_some(()) }).await;
        worker.control.stop();
        assert_eq!(queue.broadcast("stop", json!([id]), &[]).await.unwrap(), 1);
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.failed), (1, 1));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!("Job was stopped")));
    }
}
