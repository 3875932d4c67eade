//! A first look: an enqueued job is there, inactive, in the default queue.

use serde_json::json;
use underling::{EnqueueOptions, JobState};

behaviours! {
    async fn enqueued_job_is_inactive_in_default_queue(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("add", json!({"a": 1}), EnqueueOptions::new()).await.unwrap();
        let job = queue.job(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Inactive);
        assert_eq!(job.queue, "default");
        assert_eq!(job.args, json!({"a": 1}));
    }
}
