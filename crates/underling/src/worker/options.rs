//! A worker's options, and the checks they must pass before it starts.

use std::time::Duration;

use super::Worker;
use super::lease::Terms;
use crate::error::{Error, Result};
use crate::job::DEFAULT_QUEUE;
use crate::model::RepairOptions;
use crate::task::Registry;

/// How a worker behaves. The defaults are the fast path: use them unless you know better.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// Queues to claim from (default `["default"]`).
    pub queues: Vec<String>,
    /// How many jobs run at once (default 64). Jobs are async tasks, so a slot is cheap while
    /// a job waits on I/O; lower it for jobs that burn CPU.
    pub concurrency: usize,
    /// How often the worker records that it is alive (default 1 s). A heartbeat that takes
    /// longer than this counts as failed. A worker whose last successful heartbeat is older than
    /// `repair.missing_after − heartbeat_interval − the longest stop grace of its tasks` (3 s
    /// at the defaults) has lost the database: it claims nothing more and stops its running
    /// jobs, so that they have all ended a heartbeat interval before anyone may take it for
    /// dead and rescue them (see [`RepairOptions::missing_after`]). Each heartbeat also tells
    /// the worker whether another worker has gone silent for `missing_after`; if one has, it
    /// rescues that worker's jobs at once rather than at its next repair.
    pub heartbeat_interval: Duration,
    /// How often the worker reads its inbox of remote commands (default 1 s).
    pub command_interval: Duration,
    /// How often an idle worker looks for jobs without being woken (default 2 s).
    pub poll_interval: Duration,
    /// About how often the worker runs repair; each run is jittered by ±50% so that many
    /// workers do not repair at once (default 30 s).
    pub repair_interval: Duration,
    /// What repair considers missing, old or stuck. `missing_after` must be at least four
    /// heartbeat intervals plus the longest stop grace of the worker's tasks (6 s at the
    /// defaults, with 6 s given), and every worker and `repair` of one database should use
    /// the same: a worker that loses the database has ended its jobs one heartbeat interval
    /// before the `missing_after` it was given.
    pub repair: RepairOptions,
    /// On a graceful stop, how long running jobs may take to finish before they are failed
    /// (and retried where tries are left) (default 30 s).
    pub shutdown_grace: Duration,
    /// Exit once no job this worker can run is ready.
    pub burst: bool,
    /// The most outcomes written in one statement (default 1,000).
    pub settle_batch: usize,
    /// While its jobs are fast, how many claimed jobs the worker may hold ready for the next
    /// free slot (see [`FetchAhead`]).
    pub fetch_ahead: FetchAhead,
    /// How often the worker compares the jobs it holds with the jobs the store says are
    /// active under it, and gives back the ones it never got (a claim whose reply was lost)
    /// (default 30 s; also soon after any failed claim).
    pub reconcile_interval: Duration,
    /// Whether the worker runs a scheduler that enqueues the ticks of schedules (default
    /// true). Each tick is enqueued once however many workers run one (see
    /// [`crate::schedule`]).
    pub scheduler: bool,
    /// How often the scheduler looks for due schedules: one query each time (default 1 s).
    pub schedule_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            queues: vec![DEFAULT_QUEUE.to_string()],
            concurrency: 64,
            heartbeat_interval: Duration::from_secs(1),
            command_interval: Duration::from_secs(1),
            poll_interval: Duration::from_secs(2),
            repair_interval: Duration::from_secs(30),
            repair: RepairOptions::default(),
            shutdown_grace: Duration::from_secs(30),
            burst: false,
            settle_batch: 1000,
            reconcile_interval: Duration::from_secs(30),
            fetch_ahead: FetchAhead::default(),
            scheduler: true,
            schedule_interval: Duration::from_secs(1),
        }
    }
}

/// Fetching ahead: a worker whose jobs end in microseconds spends its time waiting for the
/// database, and with only as many jobs as slots every slot idles for a round trip between two
/// jobs. While jobs take under `below` on average, the worker holds up to `per_slot` claimed
/// jobs per slot ready for the next free one (Celery's prefetch multiplier, bounded); with
/// slower jobs it would only keep jobs from idle workers elsewhere, so it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchAhead {
    /// Claimed jobs per slot that may wait for a slot (0: never fetch ahead; default 4).
    pub per_slot: usize,
    /// Only while jobs take less than this on average (default 5 ms).
    pub below: Duration,
}

impl Default for FetchAhead {
    fn default() -> Self {
        FetchAhead {
            per_slot: 4,
            below: Duration::from_millis(5),
        }
    }
}

impl WorkerOptions {
    /// Checks the options against the tasks a worker would run, as [`Worker::run`] does before
    /// it registers: binaries call it to refuse bad flags before connecting.
    pub fn check(&self, registry: &Registry) -> Result<()> {
        self.terms(registry).map(|_| ())
    }

    /// Checks the options against the tasks; returns the terms of the worker's lease.
    pub(super) fn terms(&self, registry: &Registry) -> Result<Terms> {
        if registry.is_empty() {
            return Err(Error::NoTasks);
        }
        if self.concurrency == 0 {
            // It would never claim a job (and in burst mode never exit): pause it instead.
            return Err(Error::InvalidOption(
                "the worker needs a concurrency of at least 1".into(),
            ));
        }
        if self.scheduler && self.schedule_interval.is_zero() {
            return Err(Error::InvalidOption(
                "the schedule interval must be longer than zero (or turn the scheduler off)".into(),
            ));
        }
        if self.queues.is_empty() {
            return Err(Error::InvalidOption(
                "the worker needs at least one queue".into(),
            ));
        }
        for queue in &self.queues {
            crate::job::validate_queue(queue)?;
        }
        // This worker's own repair applies `missing_after` to every worker, itself included:
        // a worker that loses the database must have ended its jobs before then (see the
        // `lease` module for the rule and its margins).
        Terms::new(self.heartbeat_interval, self.repair.missing_after, registry)
    }
}

impl Worker {
    /// Checks the options against the tasks; returns the terms of the worker's lease.
    pub(super) fn validate(&self) -> Result<Terms> {
        self.options.terms(&self.registry)
    }
}
