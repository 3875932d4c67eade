//! The ledger's rules, one test each.

use super::*;
use crate::job::JobState;
use serde_json::json;

fn job(id: i64, priority: i32) -> Job {
    let now = chrono::Utc::now();
    Job {
        id,
        task: "t".into(),
        queue: "default".into(),
        args: json!([]),
        state: JobState::Active,
        priority,
        attempts: 1,
        retries: 0,
        created: now,
        delayed: now,
        started: Some(now),
        finished: None,
        retried: None,
        expires: None,
        lax: false,
        worker_id: Some(1),
        result: None,
        notes: Default::default(),
        parents: vec![],
        children: vec![],
        unique_key: None,
        timeout_ms: None,
        snoozes: 0,
    }
}

fn jobs(ids: std::ops::Range<i64>) -> Vec<Job> {
    ids.map(|id| job(id, 0)).collect()
}

/// Starts jobs without running anything, recording which.
fn spawned(started: &mut Vec<i64>) -> impl FnMut(Job) -> Running + '_ {
    move |job| {
        started.push(job.id);
        Running::new().0
    }
}

fn fast(ledger: &mut Ledger) {
    ledger.pace.record(Duration::from_micros(100));
}

/// Slow jobs so far: the jobs a test ends (in microseconds) will not turn fetch-ahead on.
fn slow(ledger: &mut Ledger) {
    ledger.pace.record(Duration::from_secs(1));
}

fn ids(jobs: &[Job]) -> Vec<i64> {
    jobs.iter().map(|job| job.id).collect()
}

#[test]
fn a_new_worker_claims_its_slots_only() {
    let mut ledger = Ledger::new(4);
    assert!(ledger.can_claim());
    assert_eq!(ledger.claim_size(), Some(4), "no pace yet: no fetch-ahead");
    ledger.claim_sent(4);
    assert_eq!(ledger.claim_size(), None, "everything is reserved");
    assert!(!ledger.can_claim());
}

#[test]
fn fetch_ahead_is_on_while_jobs_are_fast_and_off_when_they_turn_slow() {
    let mut ledger = Ledger::new(2);
    fast(&mut ledger);
    assert_eq!(
        ledger.claim_size(),
        Some(2 + 2 * FetchAhead::default().per_slot)
    );
    for _ in 0..40 {
        ledger.pace.record(Duration::from_millis(50));
    }
    assert_eq!(ledger.claim_size(), Some(2));
    let mut ledger = Ledger::new(2);
    ledger.pace.record(FetchAhead::default().below);
    assert_eq!(ledger.claim_size(), Some(2), "at the threshold it is off");
}

#[test]
fn a_second_claim_goes_out_once_half_the_capacity_is_free() {
    let mut ledger = Ledger::new(4);
    slow(&mut ledger);
    ledger.claim_sent(4);
    // Fewer jobs were ready than asked for.
    ledger.claim_returned(4, jobs(0..2));
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    assert_eq!(ledger.claim_size(), Some(2));
    ledger.claim_sent(2);
    ledger.ended((0, 0));
    assert_eq!(
        ledger.claim_size(),
        None,
        "one claim in flight, 1 of 4 free"
    );
    ledger.ended((1, 0));
    assert_eq!(
        ledger.claim_size(),
        Some(2),
        "half free: a second claim goes out"
    );
    ledger.claim_sent(2);
    assert_eq!(ledger.in_flight(), MAX_CLAIMS_IN_FLIGHT);
    ledger.claim_returned(2, Vec::new());
    assert_eq!(ledger.claim_size(), Some(2));

    // Never more than two in flight, however much is free.
    let mut ledger = Ledger::new(4);
    ledger.claim_sent(1);
    ledger.claim_sent(1);
    assert!(ledger.can_claim());
    assert_eq!(ledger.claim_size(), None);
}

#[test]
fn few_slots_are_free_while_more_than_half_the_slots_run() {
    let mut ledger = Ledger::new(4);
    ledger.claim_sent(4);
    ledger.claim_returned(4, jobs(0..4));
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    assert!(ledger.few_slots_free(), "none free");
    ledger.ended((0, 0));
    assert!(ledger.few_slots_free(), "1 of 4 free");
    ledger.ended((1, 0));
    assert!(!ledger.few_slots_free(), "2 of 4 free");
    ledger.set_concurrency(1);
    assert!(ledger.few_slots_free(), "2 running in 1 slot");
}

#[test]
fn with_nothing_in_flight_a_claim_goes_out_as_soon_as_a_slot_would_idle() {
    let mut ledger = Ledger::new(4);
    slow(&mut ledger);
    ledger.claim_sent(4);
    ledger.claim_returned(4, jobs(0..4));
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    ledger.ended((0, 0));
    // One free of four is less than half, but a slot would idle.
    assert_eq!(ledger.claim_size(), Some(1));
    ledger.claim_sent(1);
    ledger.ended((1, 0));
    assert_eq!(
        ledger.claim_size(),
        None,
        "one in flight and less than half free"
    );
}

#[test]
fn waiting_jobs_fill_slots_by_priority_then_id() {
    let mut ledger = Ledger::new(1);
    fast(&mut ledger);
    ledger.claim_sent(3);
    ledger.claim_sent(2);
    ledger.claim_returned(3, vec![job(7, 0), job(9, 5), job(8, 0)]);
    ledger.claim_returned(2, vec![job(3, 0), job(4, 5)]);
    let mut started = Vec::new();
    for attempt in [None, Some((4, 0)), Some((9, 0)), Some((3, 0)), Some((7, 0))] {
        if let Some(attempt) = attempt {
            ledger.ended(attempt);
        }
        ledger.fill(spawned(&mut started));
    }
    assert_eq!(started, vec![4, 9, 3, 7, 8]);
    assert_eq!(ledger.running(), 1, "never more than the concurrency");
}

#[test]
fn waiting_jobs_in_excess_are_released_when_jobs_turn_slow_or_on_pause() {
    let mut ledger = Ledger::new(1);
    fast(&mut ledger);
    ledger.claim_sent(5);
    ledger.claim_returned(5, jobs(0..5));
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    assert!(!ledger.has_excess_waiting());
    assert!(ledger.excess_waiting().is_empty());
    // Paused: nothing may wait.
    ledger.pause();
    assert!(ledger.has_excess_waiting());
    let excess = ledger.excess_waiting();
    assert_eq!(ids(&excess), vec![1, 2, 3, 4]);
    // The release failed: they wait again, in order.
    ledger.keep(excess);
    assert_eq!(ledger.resume(), 1);
    assert!(!ledger.has_excess_waiting());
    // Slow jobs: nothing may wait either.
    for _ in 0..40 {
        ledger.pace.record(Duration::from_millis(50));
    }
    assert_eq!(ids(&ledger.excess_waiting()), vec![1, 2, 3, 4]);
    assert_eq!(ledger.running(), 1, "the running job runs on");
}

#[test]
fn with_a_lower_concurrency_running_jobs_run_on_and_none_start() {
    let mut ledger = Ledger::new(3);
    slow(&mut ledger);
    ledger.claim_sent(3);
    ledger.claim_returned(3, jobs(0..3));
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    ledger.set_concurrency(1);
    assert_eq!(ledger.running(), 3);
    assert_eq!(ledger.claim_size(), None);
    ledger.ended((0, 0));
    ledger.ended((1, 0));
    assert_eq!(ledger.claim_size(), None, "one running in one slot");
    ledger.ended((2, 0));
    assert_eq!(ledger.claim_size(), Some(1));
}

#[test]
fn a_stop_reaches_every_running_attempt_and_takes_waiting_jobs_out() {
    let mut ledger = Ledger::new(2);
    fast(&mut ledger);
    let mut retry = job(1, 0);
    retry.retries = 1;
    ledger.claim_sent(4);
    ledger.claim_returned(4, vec![job(1, 0), retry, job(2, 0), job(1, 0)]);
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    assert_eq!(started, vec![1, 1], "both attempts at job 1 run");
    let stop = Ending::Stop("Job was stopped".into());
    assert!(ledger.end_running(1, &stop));
    assert!(!ledger.end_running(2, &stop), "job 2 waits");
    assert_eq!(ids(&ledger.stop_waiting(2)), vec![2]);
    assert_eq!(ids(&ledger.stop_waiting(1)), vec![1]);
    assert!(ledger.stop_waiting(2).is_empty());
    ledger.ended((1, 0));
    ledger.ended((1, 1));
    assert!(ledger.is_idle(), "nothing is held");
}

#[test]
fn at_shutdown_waiting_jobs_fill_free_slots_and_the_rest_go_back() {
    let mut ledger = Ledger::new(3);
    fast(&mut ledger);
    ledger.claim_sent(5);
    ledger.claim_sent(4);
    ledger.claim_returned(5, jobs(0..5));
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    ledger.ended((0, 0));
    ledger.claim_returned(4, jobs(5..9));
    assert_eq!(ledger.in_flight(), 0);
    let released = ledger.drain(true, spawned(&mut started));
    assert_eq!(started, vec![0, 1, 2, 3]);
    assert_eq!(ids(&released), vec![4, 5, 6, 7, 8]);
    assert_eq!(ledger.running(), 3);

    // A stop now starts nothing more.
    let mut ledger = Ledger::new(3);
    ledger.claim_sent(3);
    ledger.claim_returned(3, jobs(0..3));
    let mut started = Vec::new();
    assert_eq!(
        ids(&ledger.drain(false, spawned(&mut started))),
        vec![0, 1, 2]
    );
    assert!(started.is_empty());
    assert!(ledger.is_idle());
}

#[test]
fn the_pace_is_a_moving_average() {
    let mut pace = Pace::default();
    assert_eq!(pace.ahead(2), 0, "unknown pace: no fetch-ahead");
    pace.record(Duration::from_millis(1));
    assert_eq!(pace.ahead(2), 8);
    // One slow job among fast ones moves the average by an eighth.
    pace.record(Duration::from_millis(33));
    assert_eq!(pace.average, Some(Duration::from_millis(5)));
    assert_eq!(pace.ahead(2), 0);
}

#[test]
fn resume_restores_the_concurrency_of_the_last_jobs_command() {
    let mut ledger = Ledger::new(8);
    ledger.set_concurrency(3);
    ledger.pause();
    assert_eq!(ledger.concurrency(), 0);
    assert_eq!(ledger.resume(), 3);
    assert_eq!(ledger.concurrency(), 3);
}

#[test]
fn a_jobs_command_while_paused_takes_effect_on_resume() {
    let mut ledger = Ledger::new(8);
    ledger.pause();
    ledger.set_concurrency(5);
    assert_eq!(ledger.concurrency(), 0, "still paused");
    assert_eq!(ledger.resume(), 5);
    assert_eq!(ledger.concurrency(), 5);
}

#[test]
fn a_fenced_worker_claims_nothing_and_starts_nothing_until_the_fence_is_lifted() {
    let mut ledger = Ledger::new(2);
    slow(&mut ledger);
    ledger.claim_sent(2);
    ledger.fence();
    assert!(ledger.is_fenced());
    ledger.claim_returned(2, jobs(0..2));
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    ledger.start_all(jobs(2..3), spawned(&mut started));
    assert!(started.is_empty(), "nothing starts while fenced");
    assert_eq!((ledger.waiting(), ledger.running()), (3, 0));
    assert!(!ledger.can_claim());
    assert_eq!(ledger.claim_size(), None);
    ledger.unfence();
    ledger.fill(spawned(&mut started));
    assert_eq!(
        started,
        vec![0, 1],
        "the waiting jobs start once it is lifted"
    );
    assert_eq!(ids(&ledger.excess_waiting()), vec![2]);
}

#[test]
fn waiting_jobs_of_a_removed_registration_are_taken_out_to_be_released() {
    let mut ledger = Ledger::new(1);
    fast(&mut ledger);
    let mut renewed = job(3, 9);
    renewed.worker_id = Some(2);
    ledger.claim_sent(3);
    ledger.claim_returned(3, vec![job(1, 0), renewed, job(2, 0)]);
    assert_eq!(ids(&ledger.take_waiting_not_of(2)), vec![1, 2]);
    assert!(ledger.take_waiting_not_of(2).is_empty());
    let mut started = Vec::new();
    ledger.fill(spawned(&mut started));
    assert_eq!(
        started,
        vec![3],
        "the job claimed under the new registration runs"
    );
    assert!(ledger.take_waiting_not_of(2).is_empty());
}

#[test]
fn fetch_ahead_follows_the_workers_rule() {
    let off = FetchAhead {
        per_slot: 0,
        ..FetchAhead::default()
    };
    let mut ledger = Ledger::with_fetch_ahead(2, off);
    ledger.pace.record(Duration::from_micros(10));
    assert_eq!(ledger.claim_size(), Some(2), "never ahead");
    let generous = FetchAhead {
        per_slot: 1,
        below: Duration::from_secs(60),
    };
    let mut ledger = Ledger::with_fetch_ahead(2, generous);
    ledger.pace.record(Duration::from_secs(1));
    assert_eq!(
        ledger.claim_size(),
        Some(4),
        "one ahead per slot for jobs under a minute"
    );
}
