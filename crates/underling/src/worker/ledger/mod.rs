//! What a worker holds: running attempts, claimed jobs waiting for a slot, claims in flight
//! and the slots reserved for them, its concurrency and the pace of its jobs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::executor::{Attempt, Ending, Running};
use super::options::FetchAhead;
use crate::job::Job;

/// The most claims one worker has in flight at once.
pub(super) const MAX_CLAIMS_IN_FLIGHT: usize = 2;

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
    /// When and how much to fetch ahead.
    rule: FetchAhead,
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
            Some(average) if average < self.rule.below => {
                concurrency.saturating_mul(self.rule.per_slot)
            }
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
///   (`FetchAhead::per_slot` per slot while jobs average under `FetchAhead::below`, none
///   otherwise). Pace and concurrency change under it, so `held` may exceed `capacity` for a
///   while; the excess of waiting jobs is then released (see [`Ledger::excess_waiting`]).
/// - A job is started only while fewer than `concurrency` jobs run (a lowered concurrency lets
///   the running jobs run on), and waiting jobs start in priority order, then id order.
/// - Two attempts at one job may run at once (a retry claimed while a stale attempt runs):
///   running jobs are keyed by attempt, and a stop for a job id reaches every attempt.
/// - While the worker is fenced (its lease ran out or was revoked: it lost the database or
///   was removed), no claim goes out and no job starts, whatever the concurrency; running
///   jobs end on their own (they watch the lease), and waiting jobs wait until the fence is
///   lifted, or are taken out to be released (see [`Ledger::take_waiting_not_of`]).
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
    /// Fenced: the worker's lease does not cover its jobs now.
    fenced: bool,
    pace: Pace,
    /// Set while a limit or a FIFO queue concerns the worker's queues: then no job is fetched
    /// ahead, since a job waiting here for a slot would hold its groups' room (or its line)
    /// while workers elsewhere idle.
    limited: Arc<AtomicBool>,
}

impl Ledger {
    /// An empty ledger for a worker with `concurrency` slots, fetching ahead by default.
    #[cfg(test)]
    pub(super) fn new(concurrency: usize) -> Ledger {
        Self::with_fetch_ahead(concurrency, FetchAhead::default())
    }

    /// An empty ledger for a worker with `concurrency` slots that fetches ahead as `rule`
    /// says.
    pub(super) fn with_fetch_ahead(concurrency: usize, rule: FetchAhead) -> Ledger {
        Ledger {
            concurrency,
            configured: concurrency,
            pace: Pace {
                average: None,
                rule,
            },
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

    /// Every attempt this worker holds: running, or waiting for a slot.
    pub(super) fn held_attempts(&self) -> HashSet<Attempt> {
        self.running
            .keys()
            .copied()
            .chain(self.waiting.iter().map(|job| (job.id, job.retries)))
            .collect()
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

    /// Claims nothing and starts nothing until [`Ledger::unfence`] (the lease ran out or was
    /// revoked).
    pub(super) fn fence(&mut self) {
        self.fenced = true;
    }

    /// Claims and starts jobs again (the lease was renewed).
    pub(super) fn unfence(&mut self) {
        self.fenced = false;
    }

    /// Whether the worker is fenced.
    pub(super) fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// Takes out the waiting jobs claimed under another registration than `worker_id` (it was
    /// removed, and they may have been handed to other workers), for the caller to release.
    pub(super) fn take_waiting_not_of(&mut self, worker_id: i64) -> Vec<Job> {
        let (mine, others): (VecDeque<Job>, VecDeque<Job>) = self
            .waiting
            .drain(..)
            .partition(|job| job.worker_id == Some(worker_id));
        self.waiting = mine;
        others.into()
    }

    /// How many claimed jobs may wait for a slot now.
    fn ahead(&self) -> usize {
        if self.limited.load(Ordering::Relaxed) {
            return 0;
        }
        self.pace.ahead(self.concurrency)
    }

    /// The switch that turns fetching ahead off while limits concern the worker's queues.
    pub(super) fn limited_switch(&self) -> Arc<AtomicBool> {
        self.limited.clone()
    }

    fn capacity(&self) -> usize {
        self.concurrency + self.ahead()
    }

    fn held(&self) -> usize {
        self.running.len() + self.waiting.len() + self.reserved
    }

    /// Whether the worker could take more jobs (so a wake-up is worth listening to).
    pub(super) fn can_claim(&self) -> bool {
        !self.fenced && self.capacity() > self.held()
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
        (!self.fenced && free > 0 && self.in_flight < MAX_CLAIMS_IN_FLIGHT && due).then_some(free)
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
        self.wait(jobs);
    }

    /// Jobs wait for a slot, the more urgent first.
    fn wait(&mut self, jobs: Vec<Job>) {
        if !jobs.is_empty() {
            self.waiting.extend(jobs);
            self.waiting
                .make_contiguous()
                .sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        }
    }

    /// Starts waiting jobs with `spawn` while slots are free.
    pub(super) fn fill(&mut self, mut spawn: impl FnMut(Job) -> Running) {
        while !self.fenced && self.running.len() < self.concurrency {
            let Some(job) = self.waiting.pop_front() else {
                break;
            };
            self.start(job, &mut spawn);
        }
    }

    /// Starts jobs at once, whatever the concurrency (a burst worker's last look); while
    /// fenced they wait instead.
    pub(super) fn start_all(&mut self, jobs: Vec<Job>, mut spawn: impl FnMut(Job) -> Running) {
        if self.fenced {
            self.wait(jobs);
            return;
        }
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
mod tests;
