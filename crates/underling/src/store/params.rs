//! The inputs and outputs of the storage contract: one parameter struct per operation.
//!
//! Every struct here is built by [`crate::Queue`] or the worker from input they have already
//! validated; a store checks only what the database alone can know (a parent that does not
//! exist, a job that is active, an attempt that is no longer current).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::job::{Job, JobFilter, NewJob, RetryOptions, Settle, Settled};
use crate::model::{ClaimSpec, RepairOptions, RepairReport, TaskDefaults};

/// The time an operation takes as "now".
///
/// `None` means the database's clock on PostgreSQL (one clock for every host) and this
/// process's clock on SQLite. Tests pass a fixed time to see what a store does at that moment
/// without waiting for it.
pub type Now = Option<DateTime<Utc>>;

/// One attempt at a job: its id and its retry count when it was claimed. A later attempt at the
/// same job (after a retry or a rescue) has a higher retry count, so an attempt that is no
/// longer current can be told apart and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempt {
    /// The job.
    pub id: i64,
    /// The job's retry count when it was claimed.
    pub retries: i32,
}

/// [`super::Store::enqueue`]: jobs to insert, in one round trip.
#[derive(Debug, Clone, Copy)]
pub struct Enqueue<'a> {
    /// The jobs, validated by [`NewJob::new`].
    pub jobs: &'a [NewJob],
    /// Delays and expiries count from this time.
    pub now: Now,
}

/// What a worker wants to claim.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The worker the jobs are handed to.
    pub worker_id: i64,
    /// Which queues and tasks (queues must not be empty).
    pub spec: &'a ClaimSpec,
    /// At most this many jobs.
    pub limit: usize,
}

/// [`super::Store::cycle`]: a worker's whole cycle. Outcomes are written first, then jobs are
/// claimed, in one round trip where the database allows.
#[derive(Debug, Clone, Copy)]
pub struct Cycle<'a> {
    /// Attempts that ended, to settle (may be empty).
    pub settles: &'a [Settle],
    /// Jobs to claim after settling, if any.
    pub claim: Option<Claim<'a>>,
    /// The time of the settles and claims.
    pub now: Now,
}

/// What [`super::Store::cycle`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CycleReply {
    /// What each settle did, in input order.
    pub settled: Vec<Settled>,
    /// The claimed jobs, highest priority first, then by id.
    pub claimed: Vec<Job>,
}

/// [`super::Store::claim_by_id`]: one job, for a foreground run.
#[derive(Debug, Clone, Copy)]
pub struct ClaimById {
    /// The worker the job is handed to.
    pub worker_id: i64,
    /// The job, claimed only if it is ready (queues and pauses are ignored).
    pub id: i64,
    /// The time of the claim.
    pub now: Now,
}

/// [`super::Store::release`]: jobs a worker claimed but never started.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    /// The worker that holds them; attempts held by any other worker are left alone.
    pub worker_id: i64,
    /// The attempts to give back.
    pub attempts: &'a [Attempt],
}

/// [`super::Store::next_due`]: when the next delayed job of some queues falls due.
#[derive(Debug, Clone, Copy)]
pub struct NextDue<'a> {
    /// The queues.
    pub queues: &'a [String],
    /// Jobs due after this time count.
    pub now: Now,
}

/// [`super::Store::list`]: one page of jobs, newest first.
#[derive(Debug, Clone, Copy)]
pub struct ListJobs<'a> {
    /// Which jobs.
    pub filter: &'a JobFilter,
    /// At most this many.
    pub limit: u64,
    /// Skipping this many.
    pub offset: u64,
    /// Only jobs with ids below this one (keyset paging: the last id of the previous page);
    /// the total still counts every match.
    pub before: Option<i64>,
    /// Jobs that expired before this time are gone.
    pub now: Now,
}

/// [`super::Store::retry`]: puts every matching job back to inactive (from any state) as a
/// new attempt, applying the changes to each.
#[derive(Debug, Clone, Copy)]
pub struct Retry<'a> {
    /// Which jobs.
    pub filter: &'a JobFilter,
    /// What to change on each (validated).
    pub changes: &'a RetryOptions,
    /// Delays and expiries count from this time.
    pub now: Now,
}

/// [`super::Store::purge`]: removes a bounded batch of matching jobs, in id order, after the
/// last batch (a keyset, so that no batch walks again over the rows its predecessors removed).
#[derive(Debug, Clone, Copy)]
pub struct Purge<'a> {
    /// Which jobs.
    pub filter: &'a JobFilter,
    /// At most this many in one statement.
    pub batch: u64,
    /// Only jobs with a higher id (0 for the first batch).
    pub after: i64,
}

/// What one [`super::Store::purge`] batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Jobs removed.
    pub removed: u64,
    /// The highest id the batch picked: where the next batch starts (none when nothing
    /// matched). A job that matched when picked but changed before it was locked is not
    /// removed.
    pub last_id: Option<i64>,
}

/// [`super::Store::note`]: merges keys into a job's notes.
#[derive(Debug, Clone, Copy)]
pub struct Note<'a> {
    /// The job.
    pub id: i64,
    /// Keys to set; a null value deletes its key.
    pub notes: &'a Map<String, Value>,
}

/// [`super::Store::register_worker`].
#[derive(Debug, Clone, Copy)]
pub struct RegisterWorker<'a> {
    /// Host name.
    pub host: &'a str,
    /// Process id.
    pub pid: i32,
    /// What the worker says about itself.
    pub status: &'a Value,
    /// The registration (and first heartbeat) time.
    pub now: Now,
}

/// [`super::Store::publish_tasks`].
#[derive(Debug, Clone, Copy)]
pub struct PublishTasks<'a> {
    /// The tasks' defaults (their `published` time is replaced by `now`).
    pub tasks: &'a [TaskDefaults],
    /// The publication's time.
    pub now: Now,
}

/// [`super::Store::put_workload`].
#[derive(Debug, Clone, Copy)]
pub struct PutWorkload<'a> {
    /// The workload's name (its task).
    pub name: &'a str,
    /// Its definition, as [`crate::WorkloadSpec`] serializes.
    pub definition: &'a serde_json::Value,
    /// Replace a stored one of that name.
    pub replace: bool,
    /// When.
    pub now: Now,
}

/// [`super::Store::put_workload_token`].
#[derive(Debug, Clone, Copy)]
pub struct PutWorkloadToken<'a> {
    /// The workload's name (its task).
    pub workload: &'a str,
    /// The token's SHA-256, in lowercase hex (the token itself is never stored).
    pub token_sha256: &'a str,
    /// When.
    pub now: Now,
}

/// A stored workload, as [`super::Store::workloads`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadRow {
    /// Its name.
    pub name: String,
    /// Its definition.
    pub definition: serde_json::Value,
    /// When it was first stored.
    pub created: DateTime<Utc>,
    /// When it was last written.
    pub updated: DateTime<Utc>,
}

/// [`super::Store::heartbeat`].
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat<'a> {
    /// The worker.
    pub id: i64,
    /// A fresh status.
    pub status: &'a Value,
    /// Another worker whose last heartbeat is older than this is missing (see
    /// [`Beat::others_missing`]).
    pub missing_after: Duration,
    /// The heartbeat's time.
    pub now: Now,
}

/// What [`super::Store::heartbeat`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Beat {
    /// The heartbeat was recorded: `false` when the worker was removed meanwhile.
    pub recorded: bool,
    /// Another worker's last heartbeat is older than `missing_after`: its jobs are waiting to
    /// be rescued ([`super::Store::rescue`]).
    pub others_missing: bool,
}

/// [`super::Store::broadcast`]: a remote command for workers' inboxes.
#[derive(Debug, Clone, Copy)]
pub struct Broadcast<'a> {
    /// The command name.
    pub command: &'a str,
    /// Its arguments.
    pub args: &'a Value,
    /// The workers (all when empty).
    pub ids: &'a [i64],
    /// When it was sent.
    pub now: Now,
}

/// [`super::Store::lock`]: takes a hold on a named lock unless `limit` holds are live.
#[derive(Debug, Clone, Copy)]
pub struct Lock<'a> {
    /// The lock's name.
    pub name: &'a str,
    /// How long the hold lasts; zero only checks.
    pub duration: Duration,
    /// How many holds may be live at once (at least 1).
    pub limit: u32,
    /// The time of the attempt.
    pub now: Now,
}

/// [`super::Store::unlock`]: releases the hold on a lock that expires first.
#[derive(Debug, Clone, Copy)]
pub struct Unlock<'a> {
    /// The lock's name.
    pub name: &'a str,
    /// Holds that expired before this time are gone already.
    pub now: Now,
}

/// [`super::Store::locks`]: the live holds.
#[derive(Debug, Clone, Copy)]
pub struct Locks<'a> {
    /// The locks' names (all when empty).
    pub names: &'a [String],
    /// Holds that expired before this time are not listed.
    pub now: Now,
}

/// [`super::Store::set_queue_paused`].
#[derive(Debug, Clone, Copy)]
pub struct PauseQueue<'a> {
    /// The queue.
    pub queue: &'a str,
    /// Paused or resumed.
    pub paused: bool,
    /// When it changed.
    pub now: Now,
}

/// [`super::Store::set_queue_fifo`].
#[derive(Debug, Clone, Copy)]
pub struct FifoQueue<'a> {
    /// The queue.
    pub queue: &'a str,
    /// FIFO on or off.
    pub fifo: bool,
    /// When it changed.
    pub now: Now,
}

/// The delay before the next try of a job whose worker went away, by task name and the
/// number of retries so far: the worker passes its registry's backoffs.
pub type RescueBackoff<'a> = &'a (dyn Fn(&str, i32) -> Duration + Sync);

/// Called by [`super::Store::repair`] after each batch that removed jobs, with the running
/// totals so far.
pub type RepairProgress<'a> = &'a (dyn Fn(&RepairReport) + Sync);

/// [`super::Store::repair`].
#[derive(Clone, Copy)]
pub struct Repair<'a> {
    /// What counts as missing, old or stuck, and how many jobs one statement removes.
    pub options: &'a RepairOptions,
    /// The backoff of each rescued job that has tries left.
    pub backoff: RescueBackoff<'a>,
    /// The time of the repair.
    pub now: Now,
    /// Told the running totals after each batch that removed jobs (none: nobody asks).
    pub progress: Option<RepairProgress<'a>>,
}

impl Repair<'_> {
    /// How many jobs one removal statement takes at most (at least 1).
    pub fn batch(&self) -> u64 {
        self.options.batch.max(1)
    }

    /// Tells the caller the running totals, if it asked.
    pub fn report(&self, report: &RepairReport) {
        if let Some(progress) = self.progress {
            progress(report);
        }
    }
}

impl std::fmt::Debug for Repair<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repair")
            .field("options", self.options)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// [`super::Store::claim_leased`]: jobs for a pull worker, each with a lease.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLeased<'a> {
    /// Which queues (not empty) and tasks.
    pub spec: &'a ClaimSpec,
    /// At most this many jobs.
    pub limit: usize,
    /// How long each lease lasts from `now`.
    pub lease: Duration,
    /// The time of the claim.
    pub now: Now,
}

/// [`super::Store::settle_leased`]: ends a leased attempt, if its lease still holds.
#[derive(Debug, Clone, Copy)]
pub struct SettleLeased<'a> {
    /// The attempt the lease was given for.
    pub attempt: Attempt,
    /// What happened.
    pub outcome: &'a crate::job::Outcome,
    /// With a failure: no retry, whatever tries are left (the job's attempts are lowered to
    /// the tries it used).
    pub give_up: bool,
    /// The time of the settle.
    pub now: Now,
}

/// [`super::Store::extend_lease`]: renews a lease.
#[derive(Debug, Clone, Copy)]
pub struct ExtendLease {
    /// The attempt the lease was given for.
    pub attempt: Attempt,
    /// The new lease lasts this long from `now`.
    pub lease: Duration,
    /// The time of the renewal.
    pub now: Now,
}

/// [`super::Store::expire_leases`]: rescues the jobs whose lease ran out.
#[derive(Clone, Copy)]
pub struct ExpireLeases<'a> {
    /// The backoff of each rescued job that has tries left.
    pub backoff: RescueBackoff<'a>,
    /// The time that leases are compared with.
    pub now: Now,
}

impl std::fmt::Debug for ExpireLeases<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpireLeases")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Where a job stands with respect to a lease, as a store reads it (locked) before it settles
/// or renews a leased attempt; [`LeaseRow::check`] says whether the lease still holds.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRow {
    /// The job's state.
    pub state: crate::job::JobState,
    /// Its retry count now.
    pub retries: i32,
    /// Whether it is active under a lease (no worker).
    pub leased: bool,
    /// When its last lease runs out (or ran out).
    pub lease_expires: Option<DateTime<Utc>>,
    /// The store's `now` for this check.
    pub now: DateTime<Utc>,
}

impl LeaseRow {
    /// `Ok` when the lease of `attempt` still holds; otherwise [`crate::Error::LeaseLost`]
    /// saying why (a missing job is [`crate::Error::JobNotFound`]).
    pub fn check(row: Option<&LeaseRow>, attempt: Attempt) -> crate::Result<()> {
        let id = attempt.id;
        let Some(row) = row else {
            return Err(crate::Error::JobNotFound(id));
        };
        let lost = |reason: String| Err(crate::Error::LeaseLost { id, reason });
        if row.retries != attempt.retries {
            return lost(format!(
                "the lease was for attempt {}, and the job is at attempt {} now (the lease ran out, or the job was retried)",
                attempt.retries + 1,
                row.retries + 1
            ));
        }
        if row.state != crate::job::JobState::Active {
            return lost(format!("the job is {} already", row.state));
        }
        if !row.leased {
            return lost("the job is not leased: a worker runs it".into());
        }
        match row.lease_expires {
            Some(expires) if expires > row.now => Ok(()),
            Some(expires) => lost(format!(
                "the lease ran out at {} (extend it before then); the job will be retried or failed",
                expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )),
            None => lost("the job is not leased".into()),
        }
    }
}

/// [`super::Store::upsert_schedule`]: a schedule to add, or to update by name. An update keeps
/// the stored `next_run` while the cron expression and time zone stay the same (so that a
/// worker defining its schedules at every start neither loses nor repeats a tick), and keeps
/// the stored pause flag, last run and creation time.
#[derive(Debug, Clone, Copy)]
pub struct UpsertSchedule<'a> {
    /// The schedule's name (validated).
    pub name: &'a str,
    /// The cron expression (validated).
    pub cron: &'a str,
    /// The IANA time zone (validated).
    pub timezone: &'a str,
    /// The task of its jobs.
    pub task: &'a str,
    /// The arguments of its jobs.
    pub args: &'a Value,
    /// The queue of its jobs (none: the task's default).
    pub queue: Option<&'a str>,
    /// The priority of its jobs (none: the task's default).
    pub priority: Option<i32>,
    /// The attempts of its jobs (none: the task's default).
    pub attempts: Option<i32>,
    /// The other enqueue options, a JSON object in the vocabulary of [`crate::JobSpec`].
    pub options: &'a Value,
    /// Whether a new schedule starts paused.
    pub paused: bool,
    /// What a scheduler does with ticks it missed.
    pub catch_up: crate::CatchUp,
    /// The first tick after `now`.
    pub next_run: DateTime<Utc>,
    /// The time of the change.
    pub now: DateTime<Utc>,
}

/// [`super::Store::fire_schedule`]: moves a schedule on and enqueues its job, in one
/// transaction.
#[derive(Debug, Clone, Copy)]
pub struct FireSchedule<'a> {
    /// The schedule.
    pub name: &'a str,
    /// The `next_run` the scheduler read: only if it is still the stored one (and the schedule
    /// is not paused) does anything change (a compare-and-set, so that of many schedulers one
    /// fires each tick). `None` fires whatever it is (a run now).
    pub seen: Option<DateTime<Utc>>,
    /// The new `next_run` (none: unchanged).
    pub next_run: Option<DateTime<Utc>>,
    /// The job to enqueue (none: the tick is skipped).
    pub job: Option<&'a NewJob>,
    /// The tick the job is for (recorded as the schedule's last run).
    pub tick: DateTime<Utc>,
    /// The time of the enqueue.
    pub now: DateTime<Utc>,
}

/// What [`super::Store::fire_schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// The schedule moved on; the job, if one was given, is what the enqueue returned.
    Moved(Option<crate::Enqueued>),
    /// Nothing changed: another scheduler moved the schedule first, or it was paused or
    /// removed meanwhile.
    Lost,
}

/// [`super::Store::set_schedule_paused`].
#[derive(Debug, Clone, Copy)]
pub struct PauseSchedule<'a> {
    /// The schedule.
    pub name: &'a str,
    /// Pause (true) or resume (false).
    pub paused: bool,
    /// On resuming a paused schedule, its next tick (the ticks it missed while paused are not
    /// run).
    pub next_run: DateTime<Utc>,
    /// The time of the change.
    pub now: DateTime<Utc>,
}

/// A due schedule, as [`super::Store::due_schedules`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueSchedule {
    /// The schedule (its `next_run` is set: it is not paused).
    pub schedule: crate::ScheduleInfo,
    /// The time the query took as now.
    pub now: DateTime<Utc>,
}
