//! Wake-ups: an idle worker that never polls still runs every job of a burst of single
//! enqueues, which share their wake-ups (the sharing rules themselves are unit-tested beside
//! the PostgreSQL backend), a delayed job when it falls due, and a job retried elsewhere when
//! its retry falls due.

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState, WorkerOptions};

use crate::support::*;
use crate::tasks;

behaviours! {
    async fn an_idle_worker_that_never_polls_runs_a_burst_of_concurrent_single_enqueues(t) {
        let queue = t.queue.clone();
        let options = WorkerOptions {
            // Only wake-ups can make this worker look for jobs.
            poll_interval: Duration::from_secs(3600),
            ..fast_options(4)
        };
        let worker = start(&queue, tasks::simple(), options);
        // Let it register, claim nothing and go idle.
        wait_for("the worker to register", || async {
            (!queue.workers().await.unwrap().is_empty()).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // All at once, so that they fall within one wake-up window.
        let calls: Vec<_> = (0..50)
            .map(|n| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    queue.enqueue("test.double", json!({"n": n}), EnqueueOptions::new()).await
                })
            })
            .collect();
        let mut ids = Vec::new();
        for call in calls {
            ids.push(call.await.unwrap().unwrap());
        }
        for id in &ids {
            wait_for_state(&queue, *id, JobState::Finished).await;
        }
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!(summary.finished, 50);
    }

    async fn an_idle_worker_that_never_polls_runs_a_delayed_job_when_it_falls_due(t) {
        let queue = t.queue.clone();
        let options = WorkerOptions {
            poll_interval: Duration::from_secs(3600),
            ..fast_options(1)
        };
        let worker = start(&queue, tasks::simple(), options);
        wait_for("the worker to register", || async {
            (!queue.workers().await.unwrap().is_empty()).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let id = queue
            .enqueue("test.double", json!({"n": 1}), EnqueueOptions::new().delay(Duration::from_millis(300)))
            .await
            .unwrap();
        let job = wait_for_state(&queue, id, JobState::Finished).await;
        let started = job.started.expect("it ran");
        assert!(started >= job.delayed, "not before it was due");
        assert!(
            started - job.delayed < chrono::Duration::milliseconds(1000),
            "soon after it fell due (due {}, started {started})",
            job.delayed
        );
        worker.control.stop();
        worker.join().await;
    }

    /// A job that failed under another worker and is retried in 300 ms: an idle worker that
    /// never polls learns of the retry (a wake-up after the settle) and runs it when it falls
    /// due.
    async fn an_idle_worker_that_never_polls_runs_a_job_retried_elsewhere_when_it_falls_due(t) {
        let queue = t.queue.clone();
        let id = queue
            .enqueue("test.double", json!({"n": 1}), EnqueueOptions::new().attempts(2))
            .await
            .unwrap();
        let elsewhere = worker(t).await;
        let claimed = claim_one(t, elsewhere).await;
        let options = WorkerOptions {
            poll_interval: Duration::from_secs(3600),
            ..fast_options(1)
        };
        let worker = start(&queue, tasks::simple(), options);
        wait_for("the worker to register", || async {
            (queue.workers().await.unwrap().len() == 2).then_some(())
        })
        .await;
        // Let it claim nothing and go idle, with nothing due as far as it knows.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            fail(t, &claimed, json!("boom"), Duration::from_millis(300)).await,
            underling::Settled::Retried
        );
        let job = wait_for_state(&queue, id, JobState::Finished).await;
        let started = job.started.expect("it ran");
        assert_eq!(job.retries, 1);
        assert!(started >= job.delayed, "not before it was due");
        assert!(
            started - job.delayed < chrono::Duration::milliseconds(1000),
            "soon after it fell due (due {}, started {started})",
            job.delayed
        );
        worker.control.stop();
        worker.join().await;
    }
}
