//! Remote commands reach a running worker through its inbox.

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::held::{HeldStore, Hold};

use crate::support::*;
use crate::tasks;

behaviours! {
    async fn a_stop_command_stops_a_running_job(t) {
        stop_a_running_job(&t.queue, &t.queue).await;
    }

    async fn a_stop_command_read_slower_than_the_heartbeat_interval_still_stops_the_job(t) {
        // The store takes the commands out of the inbox as it reads them: a read that the
        // worker gave up on would lose the stop.
        let held = HeldStore::queue(&t.store, Hold::inbox_replies_after(Duration::from_millis(400)));
        stop_a_running_job(&t.queue, &held).await;
    }

    async fn a_jobs_command_changes_the_concurrency(t) {
        let queue = t.queue.clone();
        let (registry, gate, in_flight) = tasks::gated();
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.push(queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap());
        }
        let worker = start(&queue, registry, fast_options(1));
        wait_for("one job in flight", || async { (in_flight.now() == 1).then_some(()) }).await;
        assert_eq!(queue.broadcast("jobs", json!([3]), &[]).await.unwrap(), 1);
        wait_for("three jobs in flight", || async { (in_flight.now() == 3).then_some(()) }).await;
        // The worker reports its new concurrency with its next heartbeat.
        wait_for("the status to show 3 jobs", || async {
            let workers = queue.workers().await.unwrap();
            (workers[0].status["jobs"] == json!(3)).then_some(())
        })
        .await;
        gate.open();
        for id in &ids {
            wait_for_state(&queue, *id, JobState::Finished).await;
        }
        worker.control.stop();
        worker.join().await;
        assert_eq!(in_flight.max(), 3);
    }

    async fn resume_restores_the_concurrency_of_the_last_jobs_command(t) {
        let queue = t.queue.clone();
        let (registry, gate, _in_flight) = tasks::gated();
        let worker = start(&queue, registry, fast_options(8));
        let reported = |jobs: u64| {
            let queue = queue.clone();
            async move {
                wait_for(&format!("the status to show {jobs} jobs"), || async {
                    let workers = queue.workers().await.unwrap();
                    (workers.first().map(|w| w.status["jobs"].clone()) == Some(json!(jobs)))
                        .then_some(())
                })
                .await
            }
        };
        reported(8).await;
        queue.broadcast("jobs", json!([3]), &[]).await.unwrap();
        reported(3).await;
        queue.broadcast("pause", json!([]), &[]).await.unwrap();
        reported(0).await;
        queue.broadcast("resume", json!([]), &[]).await.unwrap();
        reported(3).await;
        gate.open();
        worker.control.stop();
        worker.join().await;
    }
}

/// Starts a worker on `worker_queue` running one gated job, sends it a stop through `queue`,
/// and checks that the job failed as stopped and the worker counted it so.
async fn stop_a_running_job(queue: &underling::Queue, worker_queue: &underling::Queue) {
    let (registry, _gate, in_flight) = tasks::gated();
    let id = queue
        .enqueue("test.gated", json!({}), EnqueueOptions::new())
        .await
        .unwrap();
    let worker = start(worker_queue, registry, fast_options(2));
    wait_for("the job to start", || async {
        (in_flight.started() == 1).then_some(())
    })
    .await;
    assert_eq!(queue.broadcast("stop", json!([id]), &[]).await.unwrap(), 1);
    let job = wait_for_state(queue, id, JobState::Failed).await;
    assert_eq!(job.result, Some(json!("Job was stopped")));
    worker.control.stop();
    let summary = worker.join().await;
    assert_eq!(
        (summary.performed, summary.finished, summary.failed),
        (1, 0, 1)
    );
}
