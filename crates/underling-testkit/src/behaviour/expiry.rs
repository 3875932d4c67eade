//! From its expiry time on, an inactive job is gone for every reader and no longer blocks its
//! children, whether or not repair has deleted it yet (Minion's rule).

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::store::{Enqueue, ListJobs};
use underling::{EnqueueOptions, JobFilter, JobState, NewJob};

use crate::support::*;

behaviours! {
    async fn an_expired_job_is_gone_for_every_reader(t) {
        let queue = t.queue.clone();
        let expired = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(1))).await;
        let fresh = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_secs(3600))).await;
        tick().await;
        assert_eq!(queue.job(expired).await.unwrap(), None);
        let list = queue.list_jobs(&JobFilter::default(), 10, 0).await.unwrap();
        assert_eq!(list.total, 1);
        assert_eq!(list.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![fresh]);
        let stats = queue.stats().await.unwrap();
        assert_eq!(stats.inactive_jobs, 1);
        let queues = queue.queues().await.unwrap();
        assert_eq!(queues.len(), 1);
        assert_eq!(queues[0].inactive, 1);
    }

    async fn a_job_is_there_until_its_expiry_time(t) {
        let t0 = Utc::now();
        let job = NewJob::new("add", json!({}), EnqueueOptions::new().expire(Duration::from_secs(60))).unwrap();
        let id = t.store.enqueue(Enqueue { jobs: &[job], now: Some(t0) }).await.unwrap()[0].id;
        let before = t0 + chrono::Duration::seconds(59);
        let after = t0 + chrono::Duration::seconds(60);
        assert_eq!(t.store.job(id, Some(before)).await.unwrap().map(|j| j.state), Some(JobState::Inactive));
        assert_eq!(t.store.job(id, Some(after)).await.unwrap(), None);
        let filter = JobFilter::default();
        let page = |now| ListJobs { filter: &filter, limit: 10, offset: 0, before: None, now: Some(now) };
        assert_eq!(t.store.list(page(before)).await.unwrap().total, 1);
        assert_eq!(t.store.list(page(after)).await.unwrap().total, 0);
        assert_eq!(t.store.stats(Some(before)).await.unwrap().inactive_jobs, 1);
        assert_eq!(t.store.stats(Some(after)).await.unwrap().inactive_jobs, 0);
    }

    async fn a_child_of_an_expired_parent_is_no_longer_blocked(t) {
        let queue = t.queue.clone();
        let parent = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(1))).await;
        let child = enqueue_with(&queue, "add", EnqueueOptions::new().queue("children").parent(parent)).await;
        tick().await;
        let w = worker(t).await;
        assert_eq!(claim_ids(t, w, &["children"], 10).await, vec![child]);
    }

    async fn a_started_job_past_its_expiry_time_is_still_there(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().expire(Duration::from_millis(300))).await;
        let w = worker(t).await;
        assert_eq!(claim_one(t, w).await.id, id);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(state(&queue, id).await, JobState::Active);
        assert_eq!(queue.stats().await.unwrap().active_jobs, 1);
    }
}
