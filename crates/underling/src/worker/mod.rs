//! The worker runtime: claims jobs in batches sized to its free slots, runs their tasks
//! concurrently, settles results in batches, heartbeats, obeys remote commands and repairs.
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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;

use self::completer::{Completer, report_stale};
use self::executor::{Attempt, Done, Executor, Running, perform};

mod completer;
mod executor;

use crate::error::{Error, Result};
use crate::job::{DEFAULT_QUEUE, Job, JobState, Outcome, Settle, Settled};
use crate::model::{ClaimSpec, RepairOptions};
use crate::queue::Queue;
use crate::task::Registry;

/// How long a worker with few free slots waits for more running jobs to finish before it
/// claims, so that claims come in batches.
const CLAIM_GATHER: Duration = Duration::from_millis(1);

/// How a worker behaves. The defaults are the fast path: use them unless you know better.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// Queues to claim from (default `["default"]`).
    pub queues: Vec<String>,
    /// How many jobs run at once (default 64). Jobs are async tasks, so a slot is cheap while
    /// a job waits on I/O; lower it for jobs that burn CPU.
    pub concurrency: usize,
    /// How often the worker records that it is alive (default 5 s).
    pub heartbeat_interval: Duration,
    /// How often the worker reads its inbox of remote commands (default 1 s).
    pub command_interval: Duration,
    /// How often an idle worker looks for jobs without being woken (default 2 s).
    pub poll_interval: Duration,
    /// About how often the worker runs repair; each run is jittered by ±50% so that many
    /// workers do not repair at once (default 30 s).
    pub repair_interval: Duration,
    /// What repair considers missing, old or stuck.
    pub repair: RepairOptions,
    /// On a graceful stop, how long running jobs may take to finish before they are failed
    /// (and retried where tries are left) (default 30 s).
    pub shutdown_grace: Duration,
    /// Exit once no job this worker can run is ready.
    pub burst: bool,
    /// The most outcomes written in one statement (default 1,000).
    pub settle_batch: usize,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            queues: vec![DEFAULT_QUEUE.to_string()],
            concurrency: 64,
            heartbeat_interval: Duration::from_secs(5),
            command_interval: Duration::from_secs(1),
            poll_interval: Duration::from_secs(2),
            repair_interval: Duration::from_secs(30),
            repair: RepairOptions::default(),
            shutdown_grace: Duration::from_secs(30),
            burst: false,
            settle_batch: 1000,
        }
    }
}

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
}

/// The outcome of running one job in the foreground.
#[derive(Debug, Clone, PartialEq)]
pub struct ForegroundRun {
    /// The job after it was settled.
    pub job: Job,
    /// What the settle did.
    pub settled: Settled,
}

/// The most claims one worker has in flight at once.
const MAX_CLAIMS_IN_FLIGHT: usize = 2;

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

/// A settle-and-claim call that came back.
struct ClaimResult {
    /// How many jobs it asked for.
    requested: usize,
    /// The outcomes it carried.
    settles: Vec<Settle>,
    /// What the backend said.
    result: Result<(Vec<Settled>, Vec<Job>)>,
}

/// A worker process's runtime.
pub struct Worker {
    queue: Queue,
    registry: Arc<Registry>,
    options: WorkerOptions,
    control: WorkerControl,
}

impl Worker {
    /// A worker that performs the tasks in `registry`.
    pub fn new(queue: Queue, registry: Registry, options: WorkerOptions) -> Self {
        Worker {
            queue,
            registry: Arc::new(registry),
            options,
            control: WorkerControl::default(),
        }
    }

    /// A handle that stops this worker.
    pub fn control(&self) -> WorkerControl {
        self.control.clone()
    }

    fn status(&self, concurrency: usize, running: usize, performed: u64) -> Value {
        json!({
            "queues": self.options.queues,
            "jobs": concurrency,
            "running": running,
            "performed": performed,
            "tasks": self.registry.names(),
        })
    }

    fn validate(&self) -> Result<()> {
        if self.registry.is_empty() {
            return Err(Error::InvalidOption(
                "the worker has no tasks: register tasks with register_task! and link their crate"
                    .into(),
            ));
        }
        if self.options.concurrency == 0 {
            // It would never claim a job (and in burst mode never exit): pause it instead.
            return Err(Error::InvalidOption(
                "the worker needs a concurrency of at least 1".into(),
            ));
        }
        if self.options.queues.is_empty() {
            return Err(Error::InvalidOption(
                "the worker needs at least one queue".into(),
            ));
        }
        for queue in &self.options.queues {
            crate::job::validate_queue(queue)?;
        }
        Ok(())
    }

    /// Runs until stopped (or, with `burst`, until nothing is ready), then unregisters.
    pub async fn run(self) -> Result<WorkerSummary> {
        self.validate()?;
        let backend = self.queue.backend().clone();
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        let pid = std::process::id() as i32;
        let mut concurrency = self.options.concurrency;
        let paused_concurrency = concurrency;
        let mut summary = WorkerSummary {
            worker_id: backend
                .register_worker(&host, pid, &self.status(concurrency, 0, 0))
                .await?,
            ..WorkerSummary::default()
        };
        tracing::info!(
            worker = summary.worker_id,
            queues = ?self.options.queues,
            jobs = concurrency,
            tasks = self.registry.names().len(),
            "worker started"
        );
        let spec = ClaimSpec {
            queues: self.options.queues.clone(),
            tasks: self.registry.names(),
        };
        // Subscribe before the first claim, so that no wake-up falls between a claim that
        // found nothing and the wait that follows it.
        let mut wakeups = backend.subscribe().await?;
        let (executor, mut done_rx) = Executor::new(self.registry.clone(), self.queue.clone());
        let completer = Completer::start(backend.clone(), self.options.settle_batch);
        let mut running: HashMap<Attempt, Running> = HashMap::new();
        // Claimed jobs waiting for a free slot (see `Pace`), in claim order.
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut pace = Pace::default();
        // After a release failed, when to try again.
        let mut next_release = tokio::time::Instant::now();
        let (claim_tx, mut claim_rx) = mpsc::unbounded_channel::<ClaimResult>();
        // Claims on their way, and the slots they may fill.
        let mut in_flight = 0usize;
        let mut reserved = 0usize;
        let mut maybe_ready = true;
        let mut next_poll = tokio::time::Instant::now() + self.options.poll_interval;
        let mut heartbeat = tokio::time::interval(self.options.heartbeat_interval);
        let mut commands = tokio::time::interval(self.options.command_interval);
        let mut next_repair = tokio::time::Instant::now() + jitter(self.options.repair_interval);
        heartbeat.reset();
        commands.reset();
        // An error that ends a burst run; reported after the worker has cleaned up.
        let mut failure = None;

        loop {
            if self.control.is_stopping() {
                break;
            }
            let ahead = pace.ahead(concurrency);
            if waiting.len() > ahead && tokio::time::Instant::now() >= next_release {
                // Jobs got slow, or the worker was paused: let other workers have the jobs
                // that wait here.
                let extra: Vec<Job> = waiting.drain(ahead..).collect();
                if let Err(kept) = release(&*backend, summary.worker_id, extra).await {
                    waiting.extend(kept);
                    next_release = tokio::time::Instant::now() + Duration::from_secs(1);
                }
            }
            let capacity = concurrency + ahead;
            let held = running.len() + waiting.len() + reserved;
            let free = capacity.saturating_sub(held);
            // Claims are pipelined: a second one may go out while the first is in flight, once
            // half the capacity is free again, so the database works on two batches at a time.
            // With nothing in flight, a claim goes out as soon as a slot would otherwise idle.
            if free > 0
                && maybe_ready
                && in_flight < MAX_CLAIMS_IN_FLIGHT
                && (free >= capacity.div_ceil(2) || (in_flight == 0 && held < concurrency))
            {
                // Outcomes waiting to be written go along with the claim: one statement, one
                // commit for the whole cycle.
                let settles = completer.take_for_claim();
                let backend = backend.clone();
                let spec = spec.clone();
                let worker_id = summary.worker_id;
                let claim_tx = claim_tx.clone();
                in_flight += 1;
                reserved += free;
                tokio::spawn(async move {
                    let result = backend
                        .settle_and_claim(&settles, worker_id, &spec, free)
                        .await;
                    let _ = claim_tx.send(ClaimResult {
                        requested: free,
                        settles,
                        result,
                    });
                });
                continue;
            }
            if self.options.burst
                && in_flight == 0
                && running.is_empty()
                && waiting.is_empty()
                && !maybe_ready
            {
                // Results still on their way may make children ready: write them, then look
                // once more before leaving.
                if completer.flush().await {
                    let free = concurrency.max(1);
                    match backend.claim(summary.worker_id, &spec, free).await {
                        Ok(jobs) if !jobs.is_empty() => {
                            maybe_ready = jobs.len() == free;
                            for job in jobs {
                                let attempt = (job.id, job.retries);
                                let entry = executor.spawn(job);
                                running.insert(attempt, entry);
                            }
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => failure = Some(e),
                    }
                }
                break;
            }
            let can_claim = capacity > running.len() + waiting.len() + reserved;
            // Biased, with the rare timers first: under a steady stream of finished jobs the
            // `done` branch is always ready, and listed first it would starve heartbeats (then
            // repair elsewhere takes this busy worker for dead), commands and repair.
            tokio::select! {
                biased;
                _ = self.control.graceful.cancelled() => break,
                _ = heartbeat.tick() => {
                    let status = self.status(concurrency, running.len(), summary.performed);
                    self.beat(&*backend, &mut summary, &host, pid, &status).await;
                }
                _ = commands.tick() => {
                    if self.read_inbox(&*backend, summary.worker_id, &running, &mut waiting, &executor, &mut concurrency, paused_concurrency).await {
                        maybe_ready = true;
                    }
                }
                _ = tokio::time::sleep_until(next_repair) => {
                    match backend.repair(&self.options.repair).await {
                        Ok(report) => tracing::debug!(?report, "repair"),
                        Err(e) => tracing::warn!(error = %e, "repair failed"),
                    }
                    next_repair = tokio::time::Instant::now() + jitter(self.options.repair_interval);
                }
                Some(claimed) = claim_rx.recv() => {
                    in_flight -= 1;
                    reserved -= claimed.requested;
                    maybe_ready = self
                        .claimed(claimed, &mut waiting, &completer, &mut next_poll, &*backend, &spec)
                        .await;
                    self.fill(&mut waiting, &mut running, concurrency, &executor);
                }
                Some(done) = done_rx.recv() => {
                    self.record_done(done, &mut running, &mut pace, &completer, &mut summary);
                    while let Ok(done) = done_rx.try_recv() {
                        self.record_done(done, &mut running, &mut pace, &completer, &mut summary);
                    }
                    self.fill(&mut waiting, &mut running, concurrency, &executor);
                    // Claim in batches, not one statement per finished job: while fewer than
                    // half the slots are free, give other running jobs a moment to finish too.
                    // (Jobs waiting for a slot already batch the claims.)
                    let half = concurrency.div_ceil(2);
                    if maybe_ready && waiting.is_empty() && !running.is_empty() && concurrency - running.len().min(concurrency) < half {
                        let deadline = tokio::time::Instant::now() + CLAIM_GATHER;
                        while concurrency - running.len().min(concurrency) < half {
                            tokio::select! {
                                Some(done) = done_rx.recv() => {
                                    self.record_done(done, &mut running, &mut pace, &completer, &mut summary);
                                }
                                _ = tokio::time::sleep_until(deadline) => break,
                            }
                        }
                    }
                    if self.options.burst {
                        // A finished parent may have made children ready.
                        maybe_ready = true;
                    }
                }
                woken = next_wakeup(&mut wakeups), if can_claim => {
                    if woken.as_deref().is_none_or(|q| q == "*" || self.options.queues.iter().any(|x| x == q)) {
                        maybe_ready = true;
                    }
                    if woken.is_none() {
                        // The stream ended: fall back to polling.
                        wakeups = None;
                    }
                }
                _ = tokio::time::sleep_until(next_poll) => {
                    maybe_ready = true;
                    next_poll = tokio::time::Instant::now() + self.options.poll_interval;
                }
            }
        }

        // Claims still in flight: their jobs are ours now. Those that fit in free slots run
        // like the running jobs (an operator saw them active before the stop); the others, and
        // any job still waiting for a slot, never started and go back to the queue for other
        // workers, attempt unused.
        while in_flight > 0 {
            match claim_rx.recv().await {
                Some(claimed) => {
                    in_flight -= 1;
                    self.claimed(
                        claimed,
                        &mut waiting,
                        &completer,
                        &mut next_poll,
                        &*backend,
                        &spec,
                    )
                    .await;
                }
                None => break,
            }
        }
        if !self.control.immediate.is_cancelled() {
            self.fill(&mut waiting, &mut running, concurrency, &executor);
        }
        if !waiting.is_empty() {
            let unstarted: Vec<Job> = waiting.drain(..).collect();
            if let Err(kept) = release(&*backend, summary.worker_id, unstarted).await {
                tracing::warn!(
                    jobs = kept.len(),
                    "could not give back jobs that never started; repair will rescue them"
                );
            }
        }

        // Shutdown: no more claims. Let running jobs finish within the grace period, still
        // heartbeating (or a repair elsewhere would rescue jobs that are running fine) and
        // still obeying commands (an operator may stop a job that would hold the worker up).
        if !running.is_empty() {
            tracing::info!(
                running = running.len(),
                "stopping: waiting for running jobs"
            );
            let deadline = tokio::time::Instant::now() + self.options.shutdown_grace;
            while !running.is_empty() {
                tokio::select! {
                    biased;
                    _ = self.control.immediate.cancelled() => break,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = heartbeat.tick() => {
                        let status = self.status(concurrency, running.len(), summary.performed);
                        self.beat(&*backend, &mut summary, &host, pid, &status).await;
                    }
                    _ = commands.tick() => {
                        self.read_inbox(&*backend, summary.worker_id, &running, &mut waiting, &executor, &mut concurrency, paused_concurrency).await;
                    }
                    Some(done) = done_rx.recv() => {
                        self.record_done(done, &mut running, &mut pace, &completer, &mut summary);
                    }
                }
            }
            for job in running.values() {
                job.stop("Worker shut down before the job finished");
            }
            while !running.is_empty() {
                match done_rx.recv().await {
                    Some(done) => {
                        self.record_done(done, &mut running, &mut pace, &completer, &mut summary)
                    }
                    None => break,
                }
            }
        }
        completer.finish().await;
        backend.unregister_worker(summary.worker_id).await?;
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

    /// Handles a claim that came back: queues its jobs for a slot, or puts its outcomes back
    /// for the settler when it failed. Returns whether more jobs may be ready.
    #[allow(clippy::too_many_arguments)]
    async fn claimed(
        &self,
        claimed: ClaimResult,
        waiting: &mut VecDeque<Job>,
        completer: &Completer,
        next_poll: &mut tokio::time::Instant,
        backend: &dyn Backend,
        spec: &ClaimSpec,
    ) -> bool {
        match claimed.result {
            Ok((settled, jobs)) => {
                report_stale(&claimed.settles, &settled);
                let more = jobs.len() == claimed.requested;
                if jobs.is_empty() {
                    *next_poll = self.next_poll_time(backend, spec).await;
                }
                if !jobs.is_empty() {
                    waiting.extend(jobs);
                    // Two claims may have come back: the more urgent jobs go first.
                    waiting
                        .make_contiguous()
                        .sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
                }
                more
            }
            Err(e) => {
                // Nothing was written: the settler will try these outcomes again.
                completer.put_back(claimed.settles);
                tracing::warn!(error = %e, "claim failed; retrying");
                *next_poll = tokio::time::Instant::now() + Duration::from_secs(1);
                false
            }
        }
    }

    /// Records that this worker is alive; registers it again if a repair removed it.
    async fn beat(
        &self,
        backend: &dyn Backend,
        summary: &mut WorkerSummary,
        host: &str,
        pid: i32,
        status: &Value,
    ) {
        match backend.heartbeat(summary.worker_id, status).await {
            Ok(true) => {}
            Ok(false) => {
                // Someone's repair took us for dead; our running attempts are stale now (their
                // settles will change nothing). Register again.
                tracing::warn!(
                    worker = summary.worker_id,
                    "worker was removed; registering again"
                );
                if let Ok(id) = backend.register_worker(host, pid, status).await {
                    summary.worker_id = id;
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    }

    /// Reads the inbox and obeys every command in it; `true` if there was any.
    #[allow(clippy::too_many_arguments)]
    async fn read_inbox(
        &self,
        backend: &dyn Backend,
        worker_id: i64,
        running: &HashMap<Attempt, Running>,
        waiting: &mut VecDeque<Job>,
        executor: &Executor,
        concurrency: &mut usize,
        configured: usize,
    ) -> bool {
        match backend.receive(worker_id).await {
            Ok(cmds) => {
                for cmd in &cmds {
                    if let Some(id) =
                        self.obey(&cmd.command, &cmd.args, running, concurrency, configured)
                    {
                        // A job told to stop while it waits for a slot never starts: it
                        // fails with the reason, as a running job would, and its task's
                        // backoff applies to the retry.
                        while let Some(at) = waiting.iter().position(|job| job.id == id) {
                            if let Some(job) = waiting.remove(at) {
                                executor.fail_unstarted(job, stop_reason(&cmd.command));
                            }
                        }
                    }
                }
                !cmds.is_empty()
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the inbox failed");
                false
            }
        }
    }

    /// When to look again after a claim found nothing: the poll interval, or sooner when a
    /// delayed job falls due.
    async fn next_poll_time(
        &self,
        backend: &dyn Backend,
        spec: &ClaimSpec,
    ) -> tokio::time::Instant {
        let mut wait = self.options.poll_interval;
        if let Ok(Some(due)) = backend.next_due(spec).await {
            let until = (due - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            wait = wait.min(until + Duration::from_millis(1));
        }
        tokio::time::Instant::now() + wait
    }

    fn record_done(
        &self,
        done: Done,
        running: &mut HashMap<Attempt, Running>,
        pace: &mut Pace,
        completer: &Completer,
        summary: &mut WorkerSummary,
    ) {
        if let Some(ended) = running.remove(&(done.id, done.settle.retries)) {
            pace.record(ended.elapsed());
        }
        summary.performed += 1;
        match done.settle.outcome {
            Outcome::Finished(_) => summary.finished += 1,
            Outcome::Failed { .. } => summary.failed += 1,
        }
        completer.put(done.settle);
    }

    /// Starts waiting jobs while slots are free.
    fn fill(
        &self,
        waiting: &mut VecDeque<Job>,
        running: &mut HashMap<Attempt, Running>,
        concurrency: usize,
        executor: &Executor,
    ) {
        while running.len() < concurrency {
            let Some(job) = waiting.pop_front() else {
                break;
            };
            let attempt = (job.id, job.retries);
            let entry = executor.spawn(job);
            running.insert(attempt, entry);
        }
    }

    /// Carries out a remote command. Returns the job a `stop` or `kill` was for, if any.
    fn obey(
        &self,
        command: &str,
        args: &Value,
        running: &HashMap<Attempt, Running>,
        concurrency: &mut usize,
        configured: usize,
    ) -> Option<i64> {
        let first = args.as_array().and_then(|a| a.first()).or(Some(args));
        let job_id = first.and_then(Value::as_i64);
        match command {
            "stop" | "kill" => {
                let Some(id) = job_id else {
                    tracing::warn!(command, ?args, "command needs a job id");
                    return None;
                };
                let reason = stop_reason(command);
                // Every attempt at the job that runs here: a stale one as well as the current.
                let mut found = false;
                for (_, job) in running.iter().filter(|((job, _), _)| *job == id) {
                    found = true;
                    job.stop(reason);
                }
                if found {
                    tracing::info!(command, job = id, "stopping job");
                } else {
                    tracing::info!(command, job = id, "job is not running here");
                }
                return Some(id);
            }
            "jobs" => match first.and_then(Value::as_u64) {
                Some(n) => {
                    tracing::info!(jobs = n, "concurrency changed");
                    *concurrency = usize::try_from(n).unwrap_or(usize::MAX);
                }
                None => tracing::warn!(?args, "the jobs command needs a number"),
            },
            "pause" => {
                tracing::info!("paused");
                *concurrency = 0;
            }
            "resume" => {
                tracing::info!(jobs = configured, "resumed");
                *concurrency = configured;
            }
            other => tracing::warn!(command = other, "unknown remote command"),
        }
        None
    }

    /// Runs one job in this process, now, and settles it (what Minion's `-f` does).
    ///
    /// A job that cannot run (missing, not inactive, delayed, waiting for parents, expired, or
    /// of a task this worker does not know) gives [`Error::NotReady`] saying why.
    pub async fn run_foreground(&self, id: i64) -> Result<ForegroundRun> {
        let backend = self.queue.backend().clone();
        let Some(job) = backend.job(id).await? else {
            return Err(Error::JobNotFound(id));
        };
        if self.registry.get(&job.task).is_none() {
            return Err(Error::NotReady {
                id,
                reason: format!("this worker has no task named {:?}", job.task),
            });
        }
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        let status = json!({"foreground": id});
        let worker_id = backend
            .register_worker(&host, std::process::id() as i32, &status)
            .await?;
        // Heartbeat while the job runs, or a repair elsewhere would take this worker for dead
        // after `missing_after` and rescue (and re-run) a job that is running fine.
        let heartbeat = AbortOnDrop(tokio::spawn({
            let backend = backend.clone();
            let every = self.options.heartbeat_interval;
            async move {
                let mut tick = tokio::time::interval(every);
                tick.reset();
                loop {
                    tick.tick().await;
                    if let Err(e) = backend.heartbeat(worker_id, &status).await {
                        tracing::warn!(error = %e, "heartbeat failed");
                    }
                }
            }
        }));
        let result = async {
            let Some(claimed) = backend.claim_by_id(worker_id, id).await? else {
                return Err(Error::NotReady {
                    id,
                    reason: not_ready_reason(&*backend, id).await?,
                });
            };
            let task = self.registry.get(&claimed.task).cloned();
            let retries = claimed.retries;
            let (_kill, kill_rx) = watch::channel(None);
            let outcome = perform(
                task,
                claimed,
                self.queue.clone(),
                CancellationToken::new(),
                kill_rx,
            )
            .await;
            let settled = backend
                .settle(&[Settle {
                    id,
                    retries,
                    outcome,
                }])
                .await?
                .first()
                .copied()
                .unwrap_or(Settled::Stale);
            let job = backend.job(id).await?.ok_or(Error::JobNotFound(id))?;
            Ok(ForegroundRun { job, settled })
        }
        .await;
        drop(heartbeat);
        backend.unregister_worker(worker_id).await?;
        result
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Explains why a job could not be claimed by id.
async fn not_ready_reason(backend: &dyn Backend, id: i64) -> Result<String> {
    let Some(job) = backend.job(id).await? else {
        return Err(Error::JobNotFound(id));
    };
    let now = chrono::Utc::now();
    Ok(if job.state != JobState::Inactive {
        format!("it is {}, not inactive", job.state)
    } else if job.expires.is_some_and(|e| e <= now) {
        "it has expired".to_string()
    } else if job.delayed > now {
        format!("it is delayed until {}", job.delayed.to_rfc3339())
    } else if !job.parents.is_empty() {
        format!("it waits for parent jobs {:?}", job.parents)
    } else {
        "another worker claimed it".to_string()
    })
}

/// What a stopped or killed job records as its error.
fn stop_reason(command: &str) -> &'static str {
    if command == "kill" {
        "Job was killed"
    } else {
        "Job was stopped"
    }
}

/// Gives jobs that never started back to the queue; on failure, returns them.
async fn release(
    backend: &dyn Backend,
    worker_id: i64,
    jobs: Vec<Job>,
) -> std::result::Result<(), Vec<Job>> {
    let attempts: Vec<(i64, i32)> = jobs.iter().map(|job| (job.id, job.retries)).collect();
    match backend.release(worker_id, &attempts).await {
        Ok(released) => {
            tracing::debug!(
                jobs = attempts.len(),
                released,
                "gave back jobs that never started"
            );
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = jobs.len(), "giving back jobs that never started failed");
            Err(jobs)
        }
    }
}

/// The next wake-up: a queue name, `*` for "anything", or `None` when the stream ended.
async fn next_wakeup(rx: &mut Option<broadcast::Receiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => match rx.recv().await {
            Ok(queue) => Some(queue),
            Err(broadcast::error::RecvError::Lagged(_)) => Some("*".into()),
            Err(broadcast::error::RecvError::Closed) => None,
        },
        None => std::future::pending().await,
    }
}

/// `base` ± 50%, so that many workers spread their repairs.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = u64::from(nanos) ^ (u64::from(std::process::id()) << 20);
    let fraction = (seed % 1000) as f64 / 1000.0; // 0.0 .. 1.0
    base.mul_f64(0.5 + fraction)
}

/// Runs every ready job in this process until none is left, one at a time, and returns how
/// many ran. For application tests on SQLite in memory: no worker process needed.
///
/// With `queues` empty, jobs in every queue run.
pub async fn perform_jobs(queue: &Queue, registry: &Registry, queues: &[String]) -> Result<u64> {
    let mut total = 0;
    loop {
        let queues: Vec<String> = if queues.is_empty() {
            queue.queues().await?.into_iter().map(|q| q.name).collect()
        } else {
            queues.to_vec()
        };
        if queues.is_empty() {
            return Ok(total);
        }
        let options = WorkerOptions {
            queues,
            concurrency: 1,
            burst: true,
            ..WorkerOptions::default()
        };
        let summary = Worker::new(queue.clone(), registry.clone(), options)
            .run()
            .await?;
        total += summary.performed;
        if summary.performed == 0 {
            return Ok(total);
        }
    }
}
