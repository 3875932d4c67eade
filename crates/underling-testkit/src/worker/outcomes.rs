//! What a task's run leaves on its job: a result, an error, a panic, bad arguments, a timeout.

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::support::*;
use crate::tasks::{self, DoubleArgs};

behaviours! {
    async fn a_tasks_result_is_stored(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.double", json!({"n": 21}), EnqueueOptions::new()).await.unwrap();
        let summary = run_burst(&queue, tasks::simple(), 4).await;
        assert_eq!((summary.performed, summary.finished, summary.failed), (1, 1, 0));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Finished);
        assert_eq!(job.result, Some(json!({"doubled": 42})));
        assert_eq!(job.retries, 0);
        assert!(job.finished.is_some());
    }

    async fn an_error_fails_the_job_with_its_message(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.error", json!({}), EnqueueOptions::new()).await.unwrap();
        let summary = run_burst(&queue, tasks::simple(), 4).await;
        assert_eq!((summary.performed, summary.finished, summary.failed), (1, 0, 1));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!("it broke")));
    }

    async fn a_panic_fails_the_job_with_the_panic_message(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.panic", json!({}), EnqueueOptions::new()).await.unwrap();
        let summary = run_burst(&queue, tasks::simple(), 4).await;
        assert_eq!((summary.performed, summary.failed), (1, 1));
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!("Task panicked: boom")));
    }

    async fn arguments_that_do_not_parse_fail_the_job_naming_the_task(t) {
        let queue = t.queue.clone();
        let args = json!({"n": "twenty-one"});
        let id = queue.enqueue("test.double", &args, EnqueueOptions::new()).await.unwrap();
        run_burst(&queue, tasks::simple(), 4).await;
        let parse_error = serde_json::from_value::<DoubleArgs>(args).unwrap_err();
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(
            job.result,
            Some(json!(format!("invalid arguments for task test.double: {parse_error}")))
        );
    }

    async fn a_job_over_its_timeout_is_failed(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.stubborn", json!({}), EnqueueOptions::new()).await.unwrap();
        let started = std::time::Instant::now();
        run_burst(&queue, tasks::simple(), 4).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the task was not cut short");
        let job = job(&queue, id).await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(json!("Job timed out after 200ms")));
    }
}
