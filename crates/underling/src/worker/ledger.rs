//! What a worker holds: running attempts, claimed jobs waiting for a slot, claims in flight
//! and the slots reserved for them, its concurrency and the pace of its jobs.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::executor::{Attempt, Ending, Running};
use crate::job::Job;

/// The most claims one worker has in flight at once.
pub(super) const MAX_CLAIMS_IN_FLIGHT: usize = 2;

/// Jobs that take less than this on average are fetched ahead of free slots.
const FETCH_AHEAD_BELOW: Duration = Duration::from_millis(5);

/// While jobs are fast, how many jobs per slot a worker may hold claimed but not yet started.
const FETCH_AHEAD_PER_SLOT: usize = 4;

/// How long jobs take here, to decide whether to fetch ahead.
///
/// A worker whose jobs end in microseconds spends its time waiting for the database, not
/// running jobs: with only as many jobs as slots, every slot idles for a round trip between
/// two jobs. Holding a few claimed jobs ready for the next free slot hides that round trip.
/// With slow jobs it would only keep jobs from idle workers elsewhere, so it is switched off.
#[derive(Debug, Default)]
struct Pace {
    /// A moving average of how long a job takes, once one has ended.
    average: Option<Duration>,
}

impl Pace {
    fn record(&mut self, took: Duration) {
        self.average = Some(match self.average {
            // A weight of 1/8 for the newest job: steady, yet quick to notice slow jobs.
            Some(average) => (average * 7 + took) / 8,
            None => took,
        });
    }

    /// How many claimed jobs may wait for a slot.
    fn ahead(&self, concurrency: usize) -> usize {
        match self.average {
            Some(average) if average < FETCH_AHEAD_BELOW => concurrency * FETCH_AHEAD_PER_SLOT,
            _ => 0,
        }
    }
}

/// Everything a worker holds, and the rules that keep it from losing or hoarding jobs.
///
/// Invariants (the dispatch loop is the only writer, so they hold between its steps):
///
/// - Every job a claim brought back is in exactly one of `waiting` and `running` until it
///   ends (its outcome goes to the completer), is released (given back unstarted, attempt
///   unused), or is stopped while waiting (failed without its task ever starting). No method
///   drops a job: whatever leaves `waiting` is started, or handed back to the caller to be
///   released or failed.
/// - `reserved` is the sum of the sizes of the `in_flight` claims; there are at most
///   [`MAX_CLAIMS_IN_FLIGHT`] of them, and none of `reserved` when `in_flight` is zero.
/// - The worker holds `running + waiting + reserved` jobs. A claim never asks for more than
///   `capacity - held`, where `capacity` is the concurrency plus what may wait for a slot
///   (`FETCH_AHEAD_PER_SLOT` per slot while jobs average under `FETCH_AHEAD_BELOW`, none
///   otherwise). Pace and concurrency change under it, so `held` may exceed `capacity` for a
///   while; the excess of waiting jobs is then released (see [`Ledger::excess_waiting`]).
/// - A job is started only while fewer than `concurrency` jobs run (a lowered concurrency lets
///   the running jobs run on), and waiting jobs start in priority order, then id order.
/// - Two attempts at one job may run at once (a retry claimed while a stale attempt runs):
///   running jobs are keyed by attempt, and a stop for a job id reaches every attempt.
#[derive(Default)]
pub(super) struct Ledger {
    running: HashMap<Attempt, Running>,
    /// Claimed jobs waiting for a free slot, by priority then id.
    waiting: VecDeque<Job>,
    in_flight: usize,
    reserved: usize,
    concurrency: usize,
    /// The concurrency the worker was started with or last given by `jobs N`, restored on
    /// `resume`.
    configured: usize,
    /// Paused by the `pause` command (until `resume`).
    paused: bool,
    pace: Pace,
}

impl Ledger {
    /// An empty ledger for a worker with `concurrency` slots.
    pub(super) fn new(concurrency: usize) -> Ledger {
        Ledger {
            concurrency,
            configured: concurrency,
            ..Ledger::default()
        }
    }

    /// How many jobs run at once now.
    pub(super) fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// How many jobs are running.
    pub(super) fn running(&self) -> usize {
        self.running.len()
    }

    /// How many claimed jobs wait for a slot.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// How many claims are on their way.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether nothing is running, waiting or being claimed.
    pub(super) fn is_idle(&self) -> bool {
        self.in_flight == 0 && self.running.is_empty() && self.waiting.is_empty()
    }

    /// Changes the concurrency (the `jobs` command). A paused worker stays paused and runs
    /// this many jobs once resumed.
    pub(super) fn set_concurrency(&mut self, jobs: usize) {
        self.configured = jobs;
        if !self.paused {
            self.concurrency = jobs;
        }
    }

    /// Starts no more jobs; jobs waiting for a slot become excess (the `pause` command).
    pub(super) fn pause(&mut self) {
        self.paused = true;
        self.concurrency = 0;
    }

    /// Back to the last concurrency given (at start or by `jobs N`) (the `resume` command);
    /// returns it.
    pub(super) fn resume(&mut self) -> usize {
        self.paused = false;
        self.concurrency = self.configured;
        self.configured
    }

    /// How many claimed jobs may wait for a slot now.
    fn ahead(&self) -> usize {
        self.pace.ahead(self.concurrency)
    }

    fn capacity(&self) -> usize {
        self.concurrency + self.ahead()
    }

    fn held(&self) -> usize {
        self.running.len() + self.waiting.len() + self.reserved
    }

    /// Whether the worker could take more jobs (so a wake-up is worth listening to).
    pub(super) fn can_claim(&self) -> bool {
        self.capacity() > self.held()
    }

    /// How many jobs the next claim should ask for, if one should go out now.
    ///
    /// Claims are pipelined: a second one may go out while the first is in flight, once half
    /// the capacity is free again, so the database works on two batches at a time. With
    /// nothing in flight, a claim goes out as soon as a slot would otherwise idle.
    pub(super) fn claim_size(&self) -> Option<usize> {
        let capacity = self.capacity();
        let held = self.held();
        let free = capacity.saturating_sub(held);
        let due = free >= capacity.div_ceil(2) || (self.in_flight == 0 && held < self.concurrency);
        (free > 0 && self.in_flight < MAX_CLAIMS_IN_FLIGHT && due).then_some(free)
    }

    /// Whether fewer than half the slots are free.
    pub(super) fn few_slots_free(&self) -> bool {
        let free = self.concurrency - self.running.len().min(self.concurrency);
        free < self.concurrency.div_ceil(2)
    }

    /// A claim for `size` jobs went out: reserve their slots.
    pub(super) fn claim_sent(&mut self, size: usize) {
        self.in_flight += 1;
        self.reserved += size;
    }

    /// A claim for `requested` jobs came back with `jobs` (none if it failed): they wait for a
    /// slot, the more urgent first (two claims may have come back out of order).
    pub(super) fn claim_returned(&mut self, requested: usize, jobs: Vec<Job>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.reserved = self.reserved.saturating_sub(requested);
        if !jobs.is_empty() {
            self.waiting.extend(jobs);
            self.waiting
                .make_contiguous()
                .sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        }
    }

    /// Starts waiting jobs with `spawn` while slots are free.
    pub(super) fn fill(&mut self, mut spawn: impl FnMut(Job) -> Running) {
        while self.running.len() < self.concurrency {
            let Some(job) = self.waiting.pop_front() else {
                break;
            };
            self.start(job, &mut spawn);
        }
    }

    /// Starts jobs at once, whatever the concurrency (a burst worker's last look).
    pub(super) fn start_all(&mut self, jobs: Vec<Job>, mut spawn: impl FnMut(Job) -> Running) {
        for job in jobs {
            self.start(job, &mut spawn);
        }
    }

    fn start(&mut self, job: Job, spawn: &mut impl FnMut(Job) -> Running) {
        let attempt = (job.id, job.retries);
        let running = spawn(job);
        self.running.insert(attempt, running);
    }

    /// An attempt ended: it no longer runs, and its duration counts towards the pace.
    pub(super) fn ended(&mut self, attempt: Attempt) {
        if let Some(ended) = self.running.remove(&attempt) {
            self.pace.record(ended.elapsed());
        }
    }

    /// Waiting jobs beyond what may wait now (jobs turned slow, or the worker was paused), for
    /// the caller to release; give them back with [`Ledger::keep`] if that fails.
    pub(super) fn excess_waiting(&mut self) -> Vec<Job> {
        let ahead = self.ahead();
        if self.waiting.len() > ahead {
            self.waiting.drain(ahead..).collect()
        } else {
            Vec::new()
        }
    }

    /// Whether some waiting jobs are in excess (see [`Ledger::excess_waiting`]).
    pub(super) fn has_excess_waiting(&self) -> bool {
        self.waiting.len() > self.ahead()
    }

    /// Jobs taken out of `waiting` that could not be released after all. They were its tail
    /// and nothing was added since, so order is kept.
    pub(super) fn keep(&mut self, jobs: Vec<Job>) {
        self.waiting.extend(jobs);
    }

    /// Ends every running attempt at job `id` as `ending` says; `true` if any ran.
    pub(super) fn end_running(&self, id: i64, ending: &Ending) -> bool {
        let mut found = false;
        for (_, job) in self.running.iter().filter(|((job, _), _)| *job == id) {
            found = true;
            job.end(ending.clone());
        }
        found
    }

    /// Takes job `id` out of `waiting`, for the caller to fail without starting it.
    pub(super) fn stop_waiting(&mut self, id: i64) -> Vec<Job> {
        let mut stopped = Vec::new();
        while let Some(at) = self.waiting.iter().position(|job| job.id == id) {
            stopped.extend(self.waiting.remove(at));
        }
        stopped
    }

    /// Ends every running job as `ending` says (the shutdown grace is over, or a stop now).
    pub(super) fn end_all(&self, ending: &Ending) {
        for job in self.running.values() {
            job.end(ending.clone());
        }
    }

    /// At shutdown, once no claim is in flight: unless `start_free` is false (a stop now),
    /// waiting jobs that fit in free slots start like the running ones; the rest are returned
    /// for the caller to release.
    pub(super) fn drain(
        &mut self,
        start_free: bool,
        spawn: impl FnMut(Job) -> Running,
    ) -> Vec<Job> {
        if start_free {
            self.fill(spawn);
        }
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(ledger.claim_size(), Some(2 + 2 * FETCH_AHEAD_PER_SLOT));
        for _ in 0..40 {
            ledger.pace.record(Duration::from_millis(50));
        }
        assert_eq!(ledger.claim_size(), Some(2));
        let mut ledger = Ledger::new(2);
        ledger.pace.record(FETCH_AHEAD_BELOW);
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
}
