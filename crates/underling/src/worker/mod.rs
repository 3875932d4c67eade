//! The worker runtime: claims jobs in batches sized to its free slots, runs their tasks
//! concurrently, settles results in batches, heartbeats, obeys remote commands and repairs.
//!
//! Long because the run loop and its state (the ledger, the summary, remote commands) are one
//! struct; each role lives in its own module.
//!
//! ```no_run
//! # async fn run() -> underling::Result<()> {
//! use underling::{Queue, Registry, Worker, WorkerOptions};
//!
//! let queue = Queue::connect_and_migrate("postgres://localhost/jobs").await?;
//! let registry = Registry::from_inventory()?;
//! let worker = Worker::new(queue, registry, WorkerOptions::default());
//! let control = worker.control();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     control.stop();
//! });
//! let summary = worker.run().await?;
//! println!("performed {} jobs", summary.performed);
//! # Ok(()) }
//! ```

// Inside, the worker is split into roles (private modules):
//
// - the dispatch loop (here) owns the `Ledger` of what the worker holds and reacts to claim
//   replies, ended jobs and remote commands;
// - `producer` decides when to claim and how many, and handles claim replies;
// - `executor` runs each job as a task of its own;
// - `completer` writes outcomes that did not ride along with a claim;
// - `control` (heartbeat and inbox) and `maintenance` (repair) run as tasks of their own;
// - `lease` is the worker's hold on its jobs, renewed by heartbeats: running jobs and the
//   dispatch loop watch it and fence the worker when it runs out or is revoked;
// - `options` holds the worker's options and their checks;
// - `foreground` runs jobs without the loop.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::command::RemoteCommand;
use crate::error::{Error, Result};
use crate::job::{Job, Outcome, Settled};
use crate::model::ClaimSpec;
use crate::queue::Queue;
use crate::task::Registry;

use self::completer::Completer;
use self::control::{Control, Heartbeat, Identity, Profile, Status, WorkerId, stop_reason};
use self::executor::{Done, Ending, Executor};
use self::lease::{LEASE_REVOKED, Lease};
use self::ledger::Ledger;
use self::producer::{ClaimReply, LastLook, Producer};
use self::reconcile::Reconciler;

mod completer;
mod control;
mod drain;
mod executor;
mod foreground;
mod lease;
mod ledger;
mod maintenance;
mod options;
mod producer;
mod reconcile;
mod scheduler;

pub use self::drain::{DrainOptions, DrainReport, drain_jobs};
pub use self::foreground::perform_jobs;
pub use self::options::{FetchAhead, WorkerOptions};

/// How long a worker with few free slots waits for more running jobs to finish before it
/// claims, so that claims come in batches.
const CLAIM_GATHER: Duration = Duration::from_millis(1);

/// Stops a running worker from another task (or a signal handler).
#[derive(Debug, Clone, Default)]
pub struct WorkerControl {
    graceful: CancellationToken,
    immediate: CancellationToken,
}

impl WorkerControl {
    /// Stops claiming; running jobs get `shutdown_grace` to finish.
    pub fn stop(&self) {
        self.graceful.cancel();
    }
    /// Stops at once: running jobs are failed now (and retried where tries are left).
    pub fn stop_now(&self) {
        self.graceful.cancel();
        self.immediate.cancel();
    }
    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        self.graceful.is_cancelled()
    }
}

/// What a worker did, returned when it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// The worker's id (the last one, if it had to register again).
    pub worker_id: i64,
    /// Jobs it ran to an end.
    pub performed: u64,
    /// Of those, how many succeeded.
    pub finished: u64,
    /// Of those, how many failed (including ones that will be retried).
    pub failed: u64,
    /// Of those, how many were snoozed (they run again without using an attempt).
    pub snoozed: u64,
}

/// The outcome of running one job in the foreground.
#[derive(Debug, Clone, PartialEq)]
pub struct ForegroundRun {
    /// The job after it was settled.
    pub job: Job,
    /// What the settle did.
    pub settled: Settled,
}

/// A worker process's runtime.
pub struct Worker {
    queue: Queue,
    registry: Arc<Registry>,
    options: WorkerOptions,
    control: WorkerControl,
    /// Schedules defined in code, added (or updated) when the worker starts.
    schedules: Vec<crate::schedule::Schedule>,
}

impl Worker {
    /// A worker that performs the tasks in `registry`.
    pub fn new(queue: Queue, registry: Registry, options: WorkerOptions) -> Self {
        Worker {
            queue,
            registry: Arc::new(registry),
            options,
            control: WorkerControl::default(),
            schedules: Vec::new(),
        }
    }

    /// Defines a schedule in code: when the worker starts, it adds it, or updates the stored
    /// schedule of that name (see [`Queue::add_schedule`]: the stored next run is kept while
    /// the expression and time zone stay the same, and so is a pause an operator made).
    /// Stored schedules that no worker defines in code are kept, and fired all the same:
    /// remove them with [`Queue::remove_schedule`] (or `underling schedule remove`). A
    /// schedule that does not validate stops the worker from starting, with the error.
    ///
    /// ```no_run
    /// # async fn run(queue: underling::Queue, registry: underling::Registry) -> underling::Result<()> {
    /// use underling::{Schedule, Worker, WorkerOptions};
    /// let worker = Worker::new(queue, registry, WorkerOptions::default())
    ///     .schedule(Schedule::new("cleanup", "*/15 * * * *", "cache.cleanup"))
    ///     .schedule(Schedule::new("report", "0 7 * * MON", "report.weekly").timezone("Europe/Berlin"));
    /// worker.run().await?;
    /// # Ok(()) }
    /// ```
    pub fn schedule(mut self, schedule: crate::schedule::Schedule) -> Self {
        self.schedules.push(schedule);
        self
    }

    /// A handle that stops this worker.
    pub fn control(&self) -> WorkerControl {
        self.control.clone()
    }

    /// Runs until stopped (or, with `burst`, until nothing is ready), then unregisters.
    pub async fn run(self) -> Result<WorkerSummary> {
        let terms = self.validate()?;
        let store = self.queue.store().clone();
        for schedule in &self.schedules {
            self.queue.add_schedule(schedule.clone()).await?;
        }
        // Every enqueuer, also one that does not link these tasks, applies their defaults.
        self.queue.publish_tasks(&self.registry).await?;
        for task in self.registry.defaults() {
            if let Some(queue) = task.queue
                && !self.options.queues.contains(&queue)
            {
                tracing::warn!(
                    task = task.name,
                    queue,
                    "the task's jobs go to a queue this worker does not claim from"
                );
            }
        }
        let identity = Identity::of_this_process();
        let profile = Profile {
            queues: self.options.queues.clone(),
            tasks: self.registry.names(),
        };
        let status = Status {
            concurrency: self.options.concurrency,
            ..Status::default()
        };
        let sent = Instant::now();
        let worker_id = WorkerId::new(identity.register(&*store, &profile.status(status)).await?);
        // Registering counts as the first heartbeat.
        let (lease_tx, lease) = watch::channel(terms.renewed(worker_id.get(), sent));
        tracing::info!(
            worker = worker_id.get(),
            queues = ?self.options.queues,
            jobs = self.options.concurrency,
            tasks = profile.tasks.len(),
            "worker started"
        );
        let spec = ClaimSpec {
            queues: self.options.queues.clone(),
            tasks: profile.tasks.clone(),
        };
        let limit_queues = self.options.queues.clone();
        let (producer, replies) = Producer::start(
            store.clone(),
            spec,
            worker_id.clone(),
            self.options.poll_interval,
        )
        .await?;

        // Control and maintenance run beside the dispatch loop until it is done, shutdown
        // grace included: heartbeats go on (or a repair elsewhere would rescue jobs that are
        // running fine) and so do commands (an operator may stop a job that holds the
        // worker up). Repair stops with the dispatch loop, before the grace.
        let (status_tx, status_rx) = watch::channel(status);
        let rescue = Arc::new(tokio::sync::Notify::new());
        let control_stop = CancellationToken::new();
        let (clear, clear_rx) = watch::channel(None);
        let (control_task, commands) = Control {
            heartbeat: Heartbeat {
                store: store.clone(),
                worker_id: worker_id.clone(),
                reregister: Some(identity),
                terms,
                lease: lease_tx,
                missing_after: self.options.repair.missing_after,
                rescue: Some(rescue.clone()),
            },
            profile,
            heartbeat_interval: self.options.heartbeat_interval,
            command_interval: self.options.command_interval,
        }
        .spawn(status_rx, clear_rx, control_stop.clone());
        // Dropped with this future (a worker aborted as a process is killed), they end too:
        // a heartbeat without the worker would keep its jobs from being rescued.
        let control_task = AbortOnDrop(control_task);
        let repair_stop = CancellationToken::new();
        let ledger = Ledger::with_fetch_ahead(self.options.concurrency, self.options.fetch_ahead);
        let repair_task = AbortOnDrop(maintenance::spawn(
            store.clone(),
            self.registry.clone(),
            self.options.repair.clone(),
            self.options.repair_interval,
            rescue,
            maintenance::LimitWatch {
                queues: limit_queues,
                limited: ledger.limited_switch(),
            },
            repair_stop.clone(),
        ));

        let scheduler_task = self.options.scheduler.then(|| {
            AbortOnDrop(scheduler::spawn(
                self.queue.clone(),
                self.options.schedule_interval,
                repair_stop.clone(),
            ))
        });

        let (executor, done_rx) =
            Executor::new(self.registry.clone(), self.queue.clone(), lease.clone());
        let mut dispatch = Dispatch {
            options: &self.options,
            control: &self.control,
            ledger,
            producer,
            replies,
            executor,
            done_rx,
            completer: Completer::start(store.clone(), self.options.settle_batch),
            commands,
            status: status_tx,
            summary: WorkerSummary::default(),
            lease,
            clear,
            stale: Vec::new(),
            reconciler: Reconciler::new(self.options.reconcile_interval),
        };
        let failure = dispatch.run().await;
        repair_stop.cancel();
        dispatch.shut_down().await;

        control_stop.cancel();
        let tasks = [("control", control_task), ("repair", repair_task)]
            .into_iter()
            .chain(scheduler_task.map(|task| ("scheduler", task)));
        for (role, mut task) in tasks {
            if let Err(e) = (&mut task.0).await {
                tracing::error!(error = %e, role, "a worker task stopped abnormally");
            }
        }
        let Dispatch {
            completer,
            mut summary,
            ..
        } = dispatch;
        completer.finish().await;
        summary.worker_id = worker_id.get();
        control::unregister(&*store, summary.worker_id).await?;
        tracing::info!(
            worker = summary.worker_id,
            performed = summary.performed,
            "worker stopped"
        );
        match failure {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The dispatch loop's state: the ledger and the roles it drives.
struct Dispatch<'w> {
    options: &'w WorkerOptions,
    control: &'w WorkerControl,
    ledger: Ledger,
    producer: Producer,
    replies: mpsc::UnboundedReceiver<ClaimReply>,
    executor: Executor,
    done_rx: mpsc::UnboundedReceiver<Done>,
    completer: Completer,
    commands: mpsc::UnboundedReceiver<Vec<RemoteCommand>>,
    /// What the heartbeat reports.
    status: watch::Sender<Status>,
    /// The counts (the worker id is filled in at the end).
    summary: WorkerSummary,
    /// The worker's lease on its jobs, renewed by the heartbeat.
    lease: watch::Receiver<Lease>,
    /// Tells the heartbeat that no job of a removed registration runs any more, so that the
    /// worker may register again.
    clear: watch::Sender<Option<i64>>,
    /// Jobs claimed under a registration that was removed, never started, to be released.
    stale: Vec<Job>,
    /// When to compare what the worker holds with what the store says it holds.
    reconciler: Reconciler,
}

impl Dispatch<'_> {
    /// Claims and runs jobs until a stop (or, in burst mode, until nothing is ready). Returns
    /// the error that ended a burst run, to be reported after cleanup.
    async fn run(&mut self) -> Option<Error> {
        loop {
            if self.control.is_stopping() {
                return None;
            }
            let fence_at = self.apply_lease().await;
            if !self.ledger.is_fenced() {
                self.producer.release_excess(&mut self.ledger).await;
            }
            if self
                .producer
                .claim_if_due(&mut self.ledger, &self.completer)
            {
                continue;
            }
            if self.options.burst
                && !self.ledger.is_fenced()
                && self.ledger.is_idle()
                && !self.producer.maybe_ready()
            {
                let executor = &self.executor;
                let look = self
                    .producer
                    .last_look(&mut self.ledger, &self.completer, |job| executor.spawn(job))
                    .await;
                self.publish_status();
                match look {
                    LastLook::Started => continue,
                    LastLook::Exit(failure) => return failure,
                }
            }
            let can_claim = self.ledger.can_claim();
            // Heartbeats, commands and repair run in tasks of their own, so a steady stream
            // of ended jobs cannot starve them. The select is still biased: a stop must win
            // over work that is ready at the same moment (once stopped, no waiting job may
            // start: they go back to the queue), and replies and ended jobs come before
            // wake-ups, which a busy queue can keep ready all the time.
            tokio::select! {
                biased;
                _ = self.control.graceful.cancelled() => return None,
                // The lease changed or ran out: looked at again at the top of the loop.
                Ok(()) = self.lease.changed() => {}
                _ = tokio::time::sleep_until(fence_at) => {}
                Some(commands) = self.commands.recv() => {
                    for command in commands {
                        self.obey(command);
                    }
                    // As when the inbox had anything: look for jobs again.
                    self.producer.nudge();
                }
                Some(reply) = self.replies.recv() => {
                    self.producer.handle(reply, &mut self.ledger, &self.completer).await;
                    if self.producer.take_claim_failed() {
                        self.reconciler.soon();
                    }
                    self.fill();
                }
                Some(done) = self.done_rx.recv() => self.ended(done).await,
                // Only while no claim is in flight (and none starts meanwhile: this awaits
                // here), so that a job on its way is never taken for lost.
                _ = tokio::time::sleep_until(self.reconciler.due()),
                    if self.ledger.in_flight() == 0 && !self.ledger.is_fenced() =>
                {
                    self.producer
                        .reconcile(&mut self.reconciler, &self.ledger, &self.completer)
                        .await;
                }
                _ = self.producer.wait_for_jobs(can_claim) => {}
            }
            self.publish_status();
        }
    }

    /// Fences the worker while its lease does not cover its jobs (they watch the lease and end
    /// on their own; a revoked lease kills them at once), and lifts the fence once it does
    /// again. After a removal it tells the heartbeat when no job runs any more (so that the
    /// worker registers again), and releases jobs claimed under the old registration that
    /// never started. Returns when the lease runs out if nothing changes meanwhile.
    async fn apply_lease(&mut self) -> Instant {
        let lease = *self.lease.borrow_and_update();
        let now = Instant::now();
        let never = now + Duration::from_secs(86_400 * 365);
        if lease.covers(lease.worker_id, now) {
            if self.ledger.is_fenced() {
                tracing::info!(
                    worker = lease.worker_id,
                    "heartbeats got through again; resuming"
                );
                self.ledger.unfence();
                self.producer.nudge();
            }
            self.stale
                .extend(self.ledger.take_waiting_not_of(lease.worker_id));
            let stale = std::mem::take(&mut self.stale);
            self.stale = self.producer.release_stale(stale).await;
            return lease.until.unwrap_or(never);
        }
        if !self.ledger.is_fenced() {
            self.ledger.fence();
            match lease.until {
                Some(_) => tracing::warn!(
                    running = self.ledger.running(),
                    "no heartbeat got through in time: claiming nothing and stopping running jobs \
                     before others may rescue them"
                ),
                None => self.ledger.end_all(&Ending::Kill(LEASE_REVOKED.into())),
            }
        }
        if lease.until.is_none() && self.ledger.running() == 0 {
            self.clear.send_if_modified(|clear| {
                let changed = *clear != Some(lease.worker_id);
                *clear = Some(lease.worker_id);
                changed
            });
        }
        never
    }

    /// Jobs ended: record them all, start waiting jobs, and gather a few more ends before the
    /// next claim.
    async fn ended(&mut self, done: Done) {
        self.record_done(done);
        while let Ok(done) = self.done_rx.try_recv() {
            self.record_done(done);
        }
        self.fill();
        // Claim in batches, not one statement per finished job: while fewer than half the
        // slots are free, give other running jobs a moment to finish too. (Jobs waiting for
        // a slot already batch the claims.)
        if self.producer.maybe_ready()
            && self.ledger.waiting() == 0
            && self.ledger.running() > 0
            && self.ledger.few_slots_free()
        {
            let deadline = tokio::time::Instant::now() + CLAIM_GATHER;
            while self.ledger.few_slots_free() {
                tokio::select! {
                    Some(done) = self.done_rx.recv() => self.record_done(done),
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        if self.options.burst {
            // A finished parent may have made children ready.
            self.producer.nudge();
        }
    }

    /// After the dispatch loop: claims in flight come back, jobs that fit in free slots run,
    /// the rest go back, and running jobs get the grace period to finish.
    async fn shut_down(&mut self) {
        // Claims still in flight: their jobs are ours now. Those that fit in free slots run
        // like the running jobs (an operator saw them active before the stop); the others,
        // and any job still waiting for a slot, never started and go back to the queue for
        // other workers, attempt unused.
        self.producer
            .drain_in_flight(&mut self.replies, &mut self.ledger, &self.completer)
            .await;
        let start_free = !self.control.immediate.is_cancelled();
        let executor = &self.executor;
        let mut unstarted = self.ledger.drain(start_free, |job| executor.spawn(job));
        unstarted.append(&mut self.stale);
        self.producer.release_unstarted(unstarted).await;
        self.publish_status();
        if self.ledger.running() == 0 {
            return;
        }

        // No more claims. Running jobs may finish within the grace period, while control
        // goes on heartbeating and forwarding commands.
        tracing::info!(
            running = self.ledger.running(),
            "stopping: waiting for running jobs"
        );
        let deadline = tokio::time::Instant::now() + self.options.shutdown_grace;
        while self.ledger.running() > 0 {
            tokio::select! {
                biased;
                _ = self.control.immediate.cancelled() => break,
                _ = tokio::time::sleep_until(deadline) => break,
                Some(commands) = self.commands.recv() => {
                    for command in commands {
                        self.obey(command);
                    }
                }
                Some(done) = self.done_rx.recv() => self.record_done(done),
            }
            self.publish_status();
        }
        // The grace is over (or a stop now came): jobs still running are asked to stop and
        // have their task's stop grace to return; a stop now drops them at once.
        const REASON: &str = "Worker shut down before the job finished";
        let mut killed = self.control.immediate.is_cancelled();
        if killed {
            self.ledger.end_all(&Ending::Kill(REASON.into()));
        } else {
            self.ledger.end_all(&Ending::Stop(REASON.into()));
        }
        while self.ledger.running() > 0 {
            tokio::select! {
                biased;
                _ = self.control.immediate.cancelled(), if !killed => {
                    killed = true;
                    self.ledger.end_all(&Ending::Kill(REASON.into()));
                }
                done = self.done_rx.recv() => match done {
                    Some(done) => self.record_done(done),
                    None => break,
                },
            }
        }
        self.publish_status();
    }

    /// Counts an ended job and hands its outcome to the completer.
    fn record_done(&mut self, done: Done) {
        self.ledger.ended((done.id, done.settle.retries));
        self.summary.performed += 1;
        match done.settle.outcome {
            Outcome::Finished(_) => self.summary.finished += 1,
            Outcome::Failed { .. } => self.summary.failed += 1,
            Outcome::Snoozed { .. } => self.summary.snoozed += 1,
        }
        self.completer.put(done.settle);
    }

    /// Starts waiting jobs while slots are free.
    fn fill(&mut self) {
        let executor = &self.executor;
        self.ledger.fill(|job| executor.spawn(job));
    }

    /// Carries out a remote command.
    fn obey(&mut self, command: RemoteCommand) {
        match command {
            RemoteCommand::Stop(job) | RemoteCommand::Kill(job) => {
                let kill = matches!(command, RemoteCommand::Kill(_));
                let reason = stop_reason(kill);
                let command = if kill { "kill" } else { "stop" };
                let ending = if kill {
                    Ending::Kill(reason.to_string())
                } else {
                    Ending::Stop(reason.to_string())
                };
                // Every attempt at the job that runs here: a stale one as well as the current.
                if self.ledger.end_running(job, &ending) {
                    tracing::info!(command, job, "stopping job");
                } else {
                    tracing::info!(command, job, "job is not running here");
                }
                // A job told to stop while it waits for a slot never starts.
                for waiting in self.ledger.stop_waiting(job) {
                    self.executor.fail_unstarted(waiting, reason);
                }
            }
            RemoteCommand::Jobs(jobs) => {
                tracing::info!(jobs, "concurrency changed");
                self.ledger.set_concurrency(jobs);
            }
            RemoteCommand::Pause => {
                tracing::info!("paused");
                self.ledger.pause();
            }
            RemoteCommand::Resume => {
                let jobs = self.ledger.resume();
                tracing::info!(jobs, "resumed");
            }
        }
    }

    /// Tells the heartbeat what the worker does now.
    fn publish_status(&self) {
        let now = Status {
            concurrency: self.ledger.concurrency(),
            running: self.ledger.running(),
            performed: self.summary.performed,
        };
        self.status.send_if_modified(|status| {
            let changed = *status != now;
            *status = now;
            changed
        });
    }
}
