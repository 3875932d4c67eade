//! Time passed in: every operation where time matters takes `now` (`None`: the database's
//! clock), so a store can be asked what it does at a moment without waiting for it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use underling::store::{Claim, ClaimById, Cycle, Enqueue, NextDue, Now};
use underling::{EnqueueOptions, Job, NewJob};

use crate::TestStore;
use crate::support::*;

/// This moment, to the millisecond (what both databases store exactly).
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a valid time")
}

/// Enqueues one job of `add` in `queue_name` at the time given.
async fn enqueue_at(t: &TestStore, now: DateTime<Utc>, opts: EnqueueOptions) -> i64 {
    let job = NewJob::new("add", json!({}), opts).unwrap();
    let ids = t
        .store
        .enqueue(Enqueue {
            jobs: std::slice::from_ref(&job),
            now: Some(now),
        })
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    ids[0].id
}

/// Claims up to 10 jobs of the default queue at `now`.
async fn claim_at(t: &TestStore, worker: i64, now: Now) -> Vec<Job> {
    t.store
        .cycle(Cycle {
            settles: &[],
            claim: Some(Claim {
                worker_id: worker,
                spec: &spec(&["default"]),
                limit: 10,
            }),
            now,
        })
        .await
        .unwrap()
        .claimed
}

/// When the next delayed job of the default queue falls due after `now`.
async fn next_due_at(t: &TestStore, now: Now) -> Option<DateTime<Utc>> {
    t.store
        .next_due(NextDue {
            queues: &spec(&["default"]).queues,
            now,
        })
        .await
        .unwrap()
}

const HOUR: chrono::Duration = chrono::Duration::hours(1);
const MS: chrono::Duration = chrono::Duration::milliseconds(1);

behaviours! {
    /// A job enqueued at a given time was created then; its delay and expiry count from it.
    async fn enqueue_at_a_given_now_counts_the_delay_and_expiry_from_it(t) {
        let queue = t.queue.clone();
        let t0 = now_ms() - chrono::Duration::days(3);
        let opts = EnqueueOptions::new()
            .delay(Duration::from_secs(3600))
            .expire(Duration::from_secs(7200));
        let id = enqueue_at(t, t0, opts).await;
        // Read at t0 too: by the real clock the job expired days ago, and is gone.
        let stored = t.store.job(id, Some(t0)).await.unwrap().expect("there at t0");
        assert_eq!(queue.job(id).await.unwrap(), None);
        assert_eq!(stored.created, t0);
        assert_eq!(stored.delayed, t0 + HOUR);
        assert_eq!(stored.expires, Some(t0 + HOUR * 2));
    }

    /// A job delayed an hour is claimed by a claim whose `now` is an hour later, and not by
    /// one a millisecond earlier (nor by one at the database's clock).
    async fn a_job_delayed_an_hour_is_claimed_at_a_now_an_hour_later_and_not_before(t) {
        let queue = t.queue.clone();
        let t0 = now_ms();
        let id = enqueue_at(t, t0, EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        let w = worker(t).await;
        assert!(claim_at(t, w, Some(t0)).await.is_empty());
        assert!(claim_at(t, w, None).await.is_empty());
        assert!(claim_at(t, w, Some(t0 + HOUR - MS)).await.is_empty());
        assert_eq!(state(&queue, id).await, underling::JobState::Inactive);
        let claimed = claim_at(t, w, Some(t0 + HOUR)).await;
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
        assert_eq!(claimed[0].started, Some(t0 + HOUR), "the claim's time is the now given");
        let stored = job(&queue, id).await;
        assert_eq!(
            (stored.state, stored.worker_id, stored.started),
            (underling::JobState::Active, Some(w), Some(t0 + HOUR))
        );
    }

    /// `claim_by_id` at a given time takes a delayed job only once that time is its due time.
    async fn claim_by_id_at_a_given_now_takes_a_delayed_job_once_it_is_due(t) {
        let queue = t.queue.clone();
        let t0 = now_ms();
        let id = enqueue_at(t, t0, EnqueueOptions::new().delay(Duration::from_secs(3600))).await;
        let w = worker(t).await;
        let at = |now| ClaimById { worker_id: w, id, now: Some(now) };
        assert_eq!(t.store.claim_by_id(at(t0 + HOUR - MS)).await.unwrap(), None);
        let claimed = t.store.claim_by_id(at(t0 + HOUR)).await.unwrap().expect("due at that time");
        assert_eq!((claimed.id, claimed.started), (id, Some(t0 + HOUR)));
        assert_eq!(state(&queue, id).await, underling::JobState::Active);
    }

    /// `next_due` at a given time reports the first job of the queues due strictly after it.
    async fn next_due_at_a_given_now_reports_the_first_job_due_after_it(t) {
        let queue = t.queue.clone();
        let t0 = now_ms();
        enqueue_with(&queue, "add", EnqueueOptions::new().run_at(t0 + HOUR * 2)).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().run_at(t0 + HOUR)).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("other").run_at(t0 + HOUR / 2)).await;
        assert_eq!(next_due_at(t, None).await, Some(t0 + HOUR));
        assert_eq!(next_due_at(t, Some(t0)).await, Some(t0 + HOUR));
        assert_eq!(next_due_at(t, Some(t0 + HOUR - MS)).await, Some(t0 + HOUR));
        assert_eq!(next_due_at(t, Some(t0 + HOUR)).await, Some(t0 + HOUR * 2));
        assert_eq!(next_due_at(t, Some(t0 + HOUR * 2)).await, None);
    }
}
