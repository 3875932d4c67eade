use serde_json::json;
use underling::{EnqueueOptions, JobState};

behaviour! {
    async fn enqueued_job_is_inactive_in_default_queue(queue) {
        let id = queue.enqueue("add", json!({"a": 1}), EnqueueOptions::new()).await.unwrap();
        let job = queue.job(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.queue, "default");
        assert_eq!(job.args, json!({"a": 1}));
    }
}
