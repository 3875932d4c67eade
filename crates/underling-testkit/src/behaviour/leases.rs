//! Leases for pull workers: jobs claimed with a lease are active under no worker; their holder
//! acks, rejects or extends while the lease holds; a lease that ran out is lost, the job goes
//! back to the queue (retried per its attempts) and its old holder's reports are refused.
//! Time is passed in (`now`) where a lease must run out, so no behaviour waits for it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use underling::store::{
    Attempt, ClaimLeased, ExpireLeases, ExtendLease, Now, Repair, SettleLeased,
};
use underling::{
    ClaimSpec, EnqueueOptions, Error, JobState, LeaseOptions, LeasedJob, Outcome, Registry,
    Rejection, RepairOptions, RepairReport, Settled,
};

use crate::TestStore;
use crate::behaviour::task_defaults::Mail;
use crate::support::*;

/// This moment plus `secs` seconds, to the millisecond, a second ahead of the clocks so that
/// jobs enqueued just before by the database's clock are due.
fn at(base: DateTime<Utc>, secs: i64) -> Now {
    Some(base + chrono::Duration::seconds(secs))
}

fn base() -> DateTime<Utc> {
    let now = Utc::now() + chrono::Duration::seconds(1);
    DateTime::from_timestamp_millis(now.timestamp_millis()).expect("a valid time")
}

/// Claims up to `limit` jobs of `default` with a lease of `lease_secs`, at `now`.
async fn claim_at(t: &TestStore, now: Now, lease_secs: u64, limit: usize) -> Vec<LeasedJob> {
    t.store
        .claim_leased(ClaimLeased {
            spec: &ClaimSpec {
                queues: vec!["default".into()],
                tasks: Vec::new(),
            },
            limit,
            lease: Duration::from_secs(lease_secs),
            now,
        })
        .await
        .expect("leased claim")
}

/// Acks the attempt at `now`.
async fn ack_at(
    t: &TestStore,
    attempt: Attempt,
    result: Value,
    now: Now,
) -> underling::Result<Settled> {
    t.store
        .settle_leased(SettleLeased {
            attempt,
            outcome: &Outcome::Finished(result),
            give_up: false,
            now,
        })
        .await
}

/// Rescues the leases that ran out at `now` (default backoff).
async fn expire_at(t: &TestStore, now: Now) -> u64 {
    t.store
        .expire_leases(ExpireLeases {
            backoff: &|_task: &str, retries: i32| underling::default_backoff(retries),
            now,
        })
        .await
        .expect("expire leases")
}

fn attempt(leased: &LeasedJob) -> Attempt {
    Attempt {
        id: leased.job.id,
        retries: leased.job.retries,
    }
}

fn thirty_seconds() -> LeaseOptions {
    LeaseOptions::new(Duration::from_secs(30))
}

behaviours! {
    async fn a_leased_claim_hands_out_jobs_in_claim_order_active_under_no_worker(t) {
        let queue = t.queue.clone();
        let low = enqueue_with(&queue, "add", EnqueueOptions::new().priority(1)).await;
        let high = enqueue_with(&queue, "add", EnqueueOptions::new().priority(9)).await;
        let left = enqueue_with(&queue, "add", EnqueueOptions::new().priority(0)).await;
        let before = Utc::now();
        let leased = queue.claim_leased(&thirty_seconds().limit(2)).await.unwrap();
        let after = Utc::now();
        let ids: Vec<i64> = leased.iter().map(|l| l.job.id).collect();
        assert_eq!(ids, vec![high, low]);
        for l in &leased {
            assert_eq!(l.lease.token, format!("{}.0", l.job.id));
            let stored = job(&queue, l.job.id).await;
            assert_eq!((stored.state, stored.worker_id), (JobState::Active, None));
            let slack = chrono::Duration::seconds(2);
            assert!(l.lease.expires >= before + chrono::Duration::seconds(30) - slack, "{l:?}");
            assert!(l.lease.expires <= after + chrono::Duration::seconds(30) + slack, "{l:?}");
        }
        assert_eq!(state(&queue, left).await, JobState::Inactive);
    }

    async fn a_leased_job_is_not_handed_out_again_while_its_lease_holds(t) {
        let queue = t.queue.clone();
        enqueue(&queue, "add").await;
        assert_eq!(queue.claim_leased(&thirty_seconds().limit(10)).await.unwrap().len(), 1);
        assert!(queue.claim_leased(&thirty_seconds().limit(10)).await.unwrap().is_empty());
        let w = worker(t).await;
        assert!(claim_ids(t, w, &["default"], 10).await.is_empty(), "nor to a worker");
    }

    async fn a_leased_claim_takes_only_the_tasks_and_queues_named(t) {
        let queue = t.queue.clone();
        enqueue_with(&queue, "other", EnqueueOptions::new()).await;
        enqueue_with(&queue, "add", EnqueueOptions::new().queue("elsewhere")).await;
        let wanted = enqueue_with(&queue, "add", EnqueueOptions::new()).await;
        let leased = queue.claim_leased(&thirty_seconds().task("add").queue("default").limit(10)).await.unwrap();
        assert_eq!(leased.iter().map(|l| l.job.id).collect::<Vec<_>>(), vec![wanted]);
    }

    async fn a_leased_claim_without_queues_takes_the_tasks_published_queues_and_default(t) {
        let queue = t.queue.clone();
        let mut registry = Registry::new();
        registry.register(Mail).unwrap();
        queue.publish_tasks(&registry).await.unwrap();
        let mail = enqueue_with(&queue, "test.mail", EnqueueOptions::new()).await;
        let default = enqueue_with(&queue, "test.mail", EnqueueOptions::new().queue("default")).await;
        enqueue_with(&queue, "test.mail", EnqueueOptions::new().queue("other")).await;
        let leased = queue.claim_leased(&thirty_seconds().task("test.mail").limit(10)).await.unwrap();
        let mut ids: Vec<i64> = leased.iter().map(|l| l.job.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![mail, default]);
    }

    async fn ack_finishes_the_job_with_its_result(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let leased = queue.claim_leased(&thirty_seconds()).await.unwrap();
        queue.ack(id, &leased[0].lease.token, json!({"sum": 3})).await.unwrap();
        let done = job(&queue, id).await;
        assert_eq!(done.state, JobState::Finished);
        assert_eq!(done.result, Some(json!({"sum": 3})));
    }

    async fn reject_with_tries_left_retries_the_job_after_the_delay_given(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let leased = queue.claim_leased(&thirty_seconds()).await.unwrap();
        let rejection = Rejection { delay: Some(Duration::from_secs(60)), ..Rejection::retry(json!("busy")) };
        let settled = queue.reject(id, &leased[0].lease.token, rejection).await.unwrap();
        assert_eq!(settled, Settled::Retried);
        let retried = job(&queue, id).await;
        assert_eq!((retried.state, retried.retries, retried.attempts), (JobState::Inactive, 1, 2));
        assert_eq!(retried.result, Some(json!("busy")));
        assert_eq!(retried.delayed - retried.retried.unwrap(), chrono::Duration::seconds(60));
    }

    async fn reject_without_retry_fails_the_job_for_good_with_tries_left(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(5)).await;
        let leased = queue.claim_leased(&thirty_seconds()).await.unwrap();
        let settled = queue.reject(id, &leased[0].lease.token, Rejection::fatal(json!("bad input"))).await.unwrap();
        assert_eq!(settled, Settled::Failed);
        let failed = job(&queue, id).await;
        assert_eq!((failed.state, failed.retries, failed.attempts), (JobState::Failed, 0, 1));
        assert_eq!(failed.result, Some(json!("bad input")));
    }

    async fn extend_renews_the_lease_from_now(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let leased = queue.claim_leased(&thirty_seconds()).await.unwrap();
        let renewed = queue.extend(id, &leased[0].lease.token, Duration::from_secs(600)).await.unwrap();
        let gained = renewed - leased[0].lease.expires;
        assert!(gained >= chrono::Duration::seconds(560) && gained <= chrono::Duration::seconds(580), "{gained}");
    }

    async fn a_lease_that_ran_out_is_lost_even_before_the_job_is_rescued(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let base = base();
        let leased = claim_at(t, at(base, 0), 10, 1).await;
        let late = at(base, 11);
        let refused = ack_at(t, attempt(&leased[0]), json!(1), late).await.unwrap_err();
        let Error::LeaseLost { id: lost, reason } = &refused else { panic!("{refused:?}") };
        assert_eq!(*lost, id);
        assert!(reason.starts_with("the lease ran out at "), "{reason}");
        let extended = t.store.extend_lease(ExtendLease { attempt: attempt(&leased[0]), lease: Duration::from_secs(60), now: late }).await;
        assert!(matches!(extended, Err(Error::LeaseLost { .. })), "{extended:?}");
        assert_eq!(state(&queue, id).await, JobState::Active, "nothing changed");
    }

    async fn a_lease_that_ran_out_sends_the_job_back_to_the_queue_as_a_failed_attempt(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let base = base();
        claim_at(t, at(base, 0), 10, 1).await;
        assert_eq!(expire_at(t, at(base, 9)).await, 0, "not yet");
        assert_eq!(expire_at(t, at(base, 11)).await, 1);
        let rescued = job(&queue, id).await;
        assert_eq!((rescued.state, rescued.retries), (JobState::Inactive, 1));
        assert_eq!(rescued.result, Some(json!("Lease expired")));
        assert_eq!(rescued.delayed - rescued.retried.unwrap(), chrono::Duration::seconds(1));
    }

    async fn a_lease_that_ran_out_on_the_last_try_fails_the_job(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let base = base();
        claim_at(t, at(base, 0), 10, 1).await;
        assert_eq!(expire_at(t, at(base, 11)).await, 1);
        let failed = job(&queue, id).await;
        assert_eq!((failed.state, failed.result), (JobState::Failed, Some(json!("Lease expired"))));
    }

    async fn a_stale_ack_after_the_job_was_handed_out_again_is_refused_and_changes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let base = base();
        let first = claim_at(t, at(base, 0), 10, 1).await;
        assert_eq!(expire_at(t, at(base, 11)).await, 1);
        let second = claim_at(t, at(base, 13), 10, 1).await;
        assert_eq!(second.len(), 1, "handed out again after its backoff");
        assert_eq!(second[0].lease.token, format!("{id}.1"));
        let refused = ack_at(t, attempt(&first[0]), json!("first"), at(base, 14)).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!("job {id}: the lease is lost: the lease was for attempt 1, and the job is at attempt 2 now (the lease ran out, or the job was retried)")
        );
        assert_eq!(state(&queue, id).await, JobState::Active);
        assert_eq!(ack_at(t, attempt(&second[0]), json!("second"), at(base, 14)).await.unwrap(), Settled::Finished);
        assert_eq!(job(&queue, id).await.result, Some(json!("second")));
    }

    async fn an_ack_of_a_settled_job_is_refused(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let leased = queue.claim_leased(&thirty_seconds()).await.unwrap();
        queue.ack(id, &leased[0].lease.token, json!(1)).await.unwrap();
        let again = queue.ack(id, &leased[0].lease.token, json!(2)).await.unwrap_err();
        assert_eq!(again.to_string(), format!("job {id}: the lease is lost: the job is finished already"));
        assert_eq!(job(&queue, id).await.result, Some(json!(1)));
    }

    async fn an_ack_of_a_job_a_worker_runs_is_refused(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        claim_one(t, w).await;
        let refused = queue.ack(id, &format!("{id}.0"), json!(1)).await.unwrap_err();
        assert_eq!(refused.to_string(), format!("job {id}: the lease is lost: the job is not leased: a worker runs it"));
        assert_eq!(state(&queue, id).await, JobState::Active);
    }

    async fn ack_of_an_unknown_job_is_job_not_found(t) {
        let refused = t.queue.ack(999, "999.0", json!(1)).await.unwrap_err();
        assert!(matches!(refused, Error::JobNotFound(999)), "{refused:?}");
    }

    async fn a_token_of_another_job_is_refused_and_changes_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let other = enqueue(&queue, "add").await;
        let leased = queue.claim_leased(&thirty_seconds()).await.unwrap();
        assert_eq!(leased[0].job.id, id);
        let refused = queue.ack(other, &leased[0].lease.token, json!(1)).await.unwrap_err();
        assert_eq!(refused.to_string(), format!("invalid lease token \"{id}.0\" for job {other}: it is a lease on job {id}"));
        assert_eq!(state(&queue, other).await, JobState::Inactive);
        assert_eq!(state(&queue, id).await, JobState::Active);
    }

    async fn bad_lease_options_are_refused_and_claim_nothing(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let short = queue.claim_leased(&LeaseOptions::new(Duration::from_millis(500))).await.unwrap_err();
        assert_eq!(short.to_string(), "invalid option: a lease must last from 1 second to 100 years, got 500ms");
        let none = queue.claim_leased(&thirty_seconds().limit(0)).await.unwrap_err();
        assert_eq!(none.to_string(), "invalid option: limit must be 1 to 1000 jobs, got 0");
        let blank = queue.claim_leased(&thirty_seconds().queue("")).await.unwrap_err();
        assert!(matches!(blank, Error::InvalidQueue(_)), "{blank:?}");
        assert_eq!(state(&queue, id).await, JobState::Inactive);
    }

    async fn repair_leaves_a_live_lease_alone_and_rescues_one_that_ran_out(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let base = base();
        claim_at(t, at(base, 0), 10, 1).await;
        let opts = RepairOptions::default();
        let backoff = |_task: &str, retries: i32| underling::default_backoff(retries);
        let live = t.store.rescue(Repair { options: &opts, backoff: &backoff, now: at(base, 5), progress: None }).await.unwrap();
        assert_eq!(live, RepairReport::default());
        assert_eq!(state(&queue, id).await, JobState::Active);
        let report = t.store.repair(Repair { options: &opts, backoff: &backoff, now: at(base, 11), progress: None }).await.unwrap();
        assert_eq!(report.abandoned_jobs, 1);
        assert_eq!(job(&queue, id).await.result, Some(json!("Lease expired")));
    }

    async fn a_leased_claim_rescues_leases_that_ran_out_first(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        // A lease of 1 s, from a second ahead of the clocks: it runs out 2 s from now.
        let leased = claim_at(t, Some(base()), 1, 1).await;
        assert_eq!(leased.len(), 1);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let again = queue.claim_leased(&thirty_seconds()).await.unwrap();
        assert!(again.is_empty(), "retried after its backoff, not at once");
        let rescued = job(&queue, id).await;
        assert_eq!((rescued.state, rescued.retries), (JobState::Inactive, 1));
        assert_eq!(rescued.result, Some(json!("Lease expired")));
    }
}
