//! A task that snoozes ([`underling::JobContext::snooze`]) runs again after the delay without
//! using an attempt, up to its task's cap.

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::support::*;
use crate::tasks;

behaviours! {
    async fn a_task_that_snoozes_runs_again_after_the_delay_and_finishes(t) {
        let queue = t.queue.clone();
        let id = queue
            .enqueue("test.snoozer", json!({"times": 2, "ms": 20}), EnqueueOptions::new())
            .await
            .unwrap();
        let worker = start(&queue, tasks::snoozers(), fast_options(1));
        let done = wait_for_state(&queue, id, JobState::Finished).await;
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!(done.result, Some(json!(2)));
        assert_eq!((done.snoozes, done.retries, done.attempts), (2, 2, 3));
        assert_eq!((summary.performed, summary.snoozed, summary.finished, summary.failed), (3, 2, 1, 0));
    }

    async fn a_snooze_past_the_tasks_cap_fails_the_attempt(t) {
        let queue = t.queue.clone();
        let id = queue
            .enqueue("test.snoozer_capped", json!({"times": 5, "ms": 20}), EnqueueOptions::new())
            .await
            .unwrap();
        let worker = start(&queue, tasks::snoozers(), fast_options(1));
        let failed = wait_for_state(&queue, id, JobState::Failed).await;
        worker.control.stop();
        worker.join().await;
        assert_eq!(failed.snoozes, 1);
        assert_eq!(
            failed.result,
            Some(json!("Job asked to snooze again after 1 snoozes, the most its task allows (TaskOptions::max_snoozes)"))
        );
    }

    async fn drain_jobs_runs_a_snoozed_job_again_at_once(t) {
        let queue = t.queue.clone();
        let id = queue
            .enqueue("test.snoozer", json!({"times": 1, "ms": 3_600_000}), EnqueueOptions::new())
            .await
            .unwrap();
        let report = underling::drain_jobs(&queue, &tasks::snoozers(), Default::default()).await.unwrap();
        assert_eq!((report.runs, report.snoozed, report.finished), (2, 1, 1));
        assert_eq!(job(&queue, id).await.result, Some(json!(1)));
    }
}
