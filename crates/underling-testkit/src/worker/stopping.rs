//! Stopping a job is cooperative: a `stop` command, a timeout and the end of a graceful
//! shutdown fire the job's cancellation token and give the task its stop grace to return; a
//! `kill` drops it at once. The job's result says what ended it.

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState, WorkerOptions};

use crate::support::*;
use crate::tasks;

behaviours! {
    async fn a_stop_command_lets_the_task_clean_up_before_the_job_fails(t) {
        let queue = t.queue.clone();
        let (registry, cleanups) = tasks::cooperative();
        let id = queue.enqueue("test.cooperative", json!({}), EnqueueOptions::new()).await.unwrap();
        let worker = start(&queue, registry, fast_options(1));
        wait_for("the job to start", || async { (cleanups.started() == 1).then_some(()) }).await;
        assert_eq!(queue.broadcast("stop", json!([id]), &[]).await.unwrap(), 1);
        let job = wait_for_state(&queue, id, JobState::Failed).await;
        assert_eq!(job.result, Some(json!("Job was stopped")));
        assert_eq!(cleanups.cleaned(), 1, "the task saw the stop and cleaned up");
        worker.control.stop();
        worker.join().await;
    }

    async fn a_stopped_task_that_returns_ok_in_its_grace_has_finished(t) {
        let queue = t.queue.clone();
        let (registry, cleanups) = tasks::cooperative();
        let id = queue
            .enqueue("test.cooperative", json!({"finish": true}), EnqueueOptions::new())
            .await
            .unwrap();
        let worker = start(&queue, registry, fast_options(1));
        wait_for("the job to start", || async { (cleanups.started() == 1).then_some(()) }).await;
        queue.broadcast("stop", json!([id]), &[]).await.unwrap();
        let job = wait_for_state(&queue, id, JobState::Finished).await;
        assert_eq!(job.result, Some(json!("cleaned up")));
        worker.control.stop();
        worker.join().await;
    }

    async fn a_kill_command_drops_the_task_at_once(t) {
        let queue = t.queue.clone();
        let (registry, cleanups) = tasks::cooperative();
        let id = queue.enqueue("test.cooperative", json!({}), EnqueueOptions::new()).await.unwrap();
        let worker = start(&queue, registry, fast_options(1));
        wait_for("the job to start", || async { (cleanups.started() == 1).then_some(()) }).await;
        queue.broadcast("kill", json!([id]), &[]).await.unwrap();
        let job = wait_for_state(&queue, id, JobState::Failed).await;
        assert_eq!(job.result, Some(json!("Job was killed")));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(cleanups.cleaned(), 0, "a killed task never sees its stop");
        worker.control.stop();
        worker.join().await;
    }

    async fn a_timed_out_task_is_stopped_and_may_clean_up(t) {
        let queue = t.queue.clone();
        let (registry, cleanups) = tasks::cooperative();
        let id = queue
            .enqueue("test.cooperative_timeout", json!({}), EnqueueOptions::new())
            .await
            .unwrap();
        let summary = run_burst(&queue, registry, 1).await;
        assert_eq!((summary.performed, summary.failed), (1, 1));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!("Job timed out after 200ms")));
        assert_eq!(cleanups.cleaned(), 1);
    }

    async fn a_jobs_own_timeout_stops_it_like_a_tasks_timeout(t) {
        let queue = t.queue.clone();
        let (registry, cleanups) = tasks::cooperative();
        let opts = EnqueueOptions::new().timeout(Duration::from_millis(150));
        let id = queue.enqueue("test.cooperative", json!({}), opts).await.unwrap();
        let summary = run_burst(&queue, registry, 1).await;
        assert_eq!((summary.performed, summary.failed), (1, 1));
        let job = job(&queue, id).await;
        assert_eq!((job.state, job.result), (JobState::Failed, Some(json!("Job timed out after 150ms"))));
        assert_eq!(cleanups.cleaned(), 1);
    }

    async fn a_jobs_own_timeout_overrides_its_tasks(t) {
        let queue = t.queue.clone();
        let (registry, _cleanups) = tasks::cooperative();
        let opts = EnqueueOptions::new().timeout(Duration::from_millis(400));
        let id = queue.enqueue("test.cooperative_timeout", json!({}), opts).await.unwrap();
        run_burst(&queue, registry, 1).await;
        assert_eq!(job(&queue, id).await.result, Some(json!("Job timed out after 400ms")));
    }

    async fn a_task_that_ignores_a_stop_is_dropped_after_its_stop_grace(t) {
        let queue = t.queue.clone();
        let (registry, _gate, in_flight) = tasks::gated();
        let id = queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap();
        let worker = start(&queue, registry, fast_options(1));
        wait_for("the job to start", || async { (in_flight.started() == 1).then_some(()) }).await;
        let asked = chrono::Utc::now();
        queue.broadcast("stop", json!([id]), &[]).await.unwrap();
        let job = wait_for_state(&queue, id, JobState::Failed).await;
        assert_eq!(job.result, Some(json!("Job was stopped")));
        let finished = job.finished.expect("a failed job has ended");
        assert!(
            finished - asked >= chrono::Duration::milliseconds(tasks::TEST_STOP_GRACE.as_millis() as i64),
            "dropped only after its grace: asked at {asked}, ended at {finished}"
        );
        worker.control.stop();
        worker.join().await;
    }

    async fn the_end_of_a_graceful_shutdown_lets_tasks_clean_up(t) {
        let queue = t.queue.clone();
        let (registry, cleanups) = tasks::cooperative();
        let id = queue.enqueue("test.cooperative", json!({}), EnqueueOptions::new()).await.unwrap();
        let options = WorkerOptions {
            shutdown_grace: Duration::from_millis(100),
            ..fast_options(1)
        };
        let worker = start(&queue, registry, options);
        wait_for("the job to start", || async { (cleanups.started() == 1).then_some(()) }).await;
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.failed), (1, 1));
        let job = job(&queue, id).await;
        assert_eq!(job.result, Some(json!("Worker shut down before the job finished")));
        assert_eq!(cleanups.cleaned(), 1);
    }
}
