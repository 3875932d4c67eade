//! Snoozes ([`underling::Outcome::Snoozed`]): a settled attempt that puts the job back to the
//! queue after a delay without using an attempt, counted on the job and told as an event.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use underling::{EnqueueOptions, JobEventKind, JobState, Outcome, Settled};

use crate::support::*;

behaviours! {
    async fn a_snoozed_attempt_goes_back_due_after_its_delay_without_using_an_attempt(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(3)).await;
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        let before = Utc::now();
        let settled = settle(t, id, running.retries, Outcome::Snoozed { delay: Duration::from_secs(60) }).await;
        assert_eq!(settled, Settled::Snoozed);
        let snoozed = job(&queue, id).await;
        assert_eq!(snoozed.state, JobState::Inactive);
        assert_eq!((snoozed.snoozes, snoozed.retries, snoozed.attempts), (1, 1, 4));
        assert_eq!(snoozed.attempts - snoozed.retries, 3, "as many tries left as before");
        let due_in = snoozed.delayed - before;
        assert!(due_in >= chrono::Duration::seconds(59) && due_in <= chrono::Duration::seconds(61), "{due_in}");
        assert_eq!(snoozed.result, Some(json!(null)));
    }

    async fn a_job_with_one_attempt_can_be_snoozed_and_still_run_once_more(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let first = claim_one(t, w).await;
        assert_eq!(settle(t, id, first.retries, Outcome::Snoozed { delay: Duration::ZERO }).await, Settled::Snoozed);
        let second = claim_one(t, w).await;
        assert_eq!((second.id, second.retries, second.snoozes), (id, 1, 1));
        assert_eq!(fail(t, &second, json!("boom"), Duration::from_secs(1)).await, Settled::Failed);
        assert_eq!(state(&queue, id).await, JobState::Failed);
    }

    async fn a_late_settle_of_a_snoozed_attempt_changes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        assert_eq!(settle(t, id, running.retries, Outcome::Snoozed { delay: Duration::ZERO }).await, Settled::Snoozed);
        assert_eq!(settle(t, id, running.retries, Outcome::Snoozed { delay: Duration::ZERO }).await, Settled::Stale);
        assert_eq!(finish(t, &running, json!("late")).await, Settled::Stale);
        assert_eq!(job(&queue, id).await.snoozes, 1);
    }

    async fn a_snooze_is_not_a_failed_attempt_in_the_history(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        settle(t, id, running.retries, Outcome::Snoozed { delay: Duration::ZERO }).await;
        let history = queue.history().await.unwrap();
        let failed_attempts: u64 = history.iter().map(|h| h.failed_attempts).sum();
        assert_eq!(failed_attempts, 0);
    }

    async fn a_snooze_is_a_snoozed_event_with_the_count_in_the_record(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let running = claim_one(t, w).await;
        let mut events = queue.events().await.unwrap();
        tick().await;
        settle(t, id, running.retries, Outcome::Snoozed { delay: Duration::from_secs(30) }).await;
        let event = match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Ok(Some(Ok(event))) => event,
            other => panic!("no snooze event: {other:?}"),
        };
        assert_eq!((event.event, event.job.id, event.job.state), (JobEventKind::Snoozed, id, JobState::Inactive));
        assert_eq!(event.job.snoozes, 1);
    }
}
