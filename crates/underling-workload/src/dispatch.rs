//! The dispatcher: per workload, claims jobs with a lease while it has free slots, POSTs each
//! one, and settles it from the answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE as CONTENT_TYPE_HEADER, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use underling::{
    Error, LeaseOptions, LeasedJob, MAX_LEASED_CLAIM, Queue, Rejection, Settled, WorkloadMode,
    WorkloadSpec,
};

use crate::error::WorkloadError;
use crate::event::{CONTENT_TYPE, cloud_event};
use crate::http::{Verdict, exchange};

/// How much longer than its timeout a sync workload's job is leased: time to write the
/// outcome once the answer came. A worker that dies mid-request leaves the job to be rescued
/// once the lease runs out (timeout + this margin after the claim).
pub const SYNC_LEASE_MARGIN: Duration = Duration::from_secs(10);

/// The error of a job whose request was cut short by a stop.
const SHUT_DOWN: &str = "Worker shut down before the job finished";

/// How a dispatcher runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchOptions {
    /// The queues to claim workload jobs from (default: `default`).
    pub queues: Vec<String>,
    /// How often a workload with free slots looks for jobs without being woken (and for
    /// delayed jobs that fell due).
    pub poll_interval: Duration,
    /// After a stop, how long requests in flight may take to be answered; then they are cut
    /// and their jobs failed (retried where tries are left).
    pub shutdown_grace: Duration,
    /// Exit once no workload job is ready and no request is in flight.
    pub burst: bool,
    /// The host named in each event's `source` (default: this host's name).
    pub host: String,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            queues: vec![underling::DEFAULT_QUEUE.to_string()],
            poll_interval: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
            burst: false,
            host: hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".to_string()),
        }
    }
}

/// What a dispatcher did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchSummary {
    /// Jobs sent to a workload.
    pub dispatched: u64,
    /// Jobs finished from a sync answer.
    pub finished: u64,
    /// Jobs taken by an async workload (`202`), to be reported by it.
    pub accepted: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Outcomes that could not be written (the lease ran out first, or the database did not
    /// answer): the lease's expiry rescues those jobs.
    pub unsettled: u64,
}

impl DispatchSummary {
    fn add(&mut self, other: &DispatchSummary) {
        self.dispatched += other.dispatched;
        self.finished += other.finished;
        self.accepted += other.accepted;
        self.retried += other.retried;
        self.failed += other.failed;
        self.unsettled += other.unsettled;
    }
}

/// Stops a running dispatcher.
#[derive(Debug, Clone, Default)]
pub struct DispatchControl {
    graceful: CancellationToken,
    immediate: CancellationToken,
}

impl DispatchControl {
    /// Stops claiming; requests in flight have the shutdown grace to be answered.
    pub fn stop(&self) {
        self.graceful.cancel();
    }
    /// Stops now: requests in flight are cut and their jobs failed (retried where tries are
    /// left).
    pub fn stop_now(&self) {
        self.graceful.cancel();
        self.immediate.cancel();
    }
}

/// A workload ready to be called: its spec, its URL and its headers with their environment
/// variables filled in (marked sensitive, never logged).
struct Prepared {
    spec: WorkloadSpec,
    url: reqwest::Url,
    headers: HeaderMap,
    /// The HTTP client (its TLS trusts the workload's `ca_file` too, if it has one).
    client: reqwest::Client,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The header names only: their values may be secrets.
        f.debug_struct("Prepared")
            .field("name", &self.spec.name)
            .field("url", &self.spec.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Sends the jobs of HTTP workloads to them: see the crate's documentation.
pub struct Dispatcher {
    queue: Queue,
    workloads: Vec<Arc<Prepared>>,
    options: DispatchOptions,
    control: DispatchControl,
}

impl Dispatcher {
    /// A dispatcher for `specs`, whose headers read this process's environment variables.
    /// Fails on a spec that does not pass its checks, two of one name, a header (or
    /// `token_env`) that names a variable that is not set, or a `ca_file` that cannot be
    /// read or holds no certificate.
    pub fn new(
        queue: Queue,
        specs: Vec<WorkloadSpec>,
        options: DispatchOptions,
    ) -> Result<Self, WorkloadError> {
        Self::with_env(queue, specs, options, |var| std::env::var(var).ok())
    }

    /// As [`Dispatcher::new`], with the environment variables read from `env`.
    pub fn with_env(
        queue: Queue,
        specs: Vec<WorkloadSpec>,
        options: DispatchOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, WorkloadError> {
        let mut workloads: Vec<Arc<Prepared>> = Vec::with_capacity(specs.len());
        let mut shared_client: Option<reqwest::Client> = None;
        for spec in specs {
            spec.validate()?;
            if workloads.iter().any(|w| w.spec.name == spec.name) {
                return Err(WorkloadError::Duplicate(spec.name));
            }
            let invalid = |reason: String| {
                WorkloadError::Queue(Error::InvalidOption(format!(
                    "workload {:?}: {reason}",
                    spec.name
                )))
            };
            let url = reqwest::Url::parse(&spec.url)
                .map_err(|e| invalid(format!("invalid url {:?}: {e}", spec.url)))?;
            if url.scheme() != "http" && !crate::tls::HTTPS {
                return Err(invalid(format!(
                    "invalid url {:?}: this worker is built without the `https` feature, so only http:// workloads can be reached",
                    spec.url
                )));
            }
            let mut headers = HeaderMap::new();
            for (name, value) in spec.resolve_headers(&env)? {
                let header = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| invalid(format!("invalid header name {name:?}")))?;
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    invalid(format!(
                        "header {name}: its value is not a valid header value once its variables are filled in"
                    ))
                })?;
                value.set_sensitive(true);
                headers.insert(header, value);
            }
            if let Some(var) = &spec.token_env {
                let token = env(var).ok_or_else(|| {
                    invalid(format!(
                        "token_env needs the environment variable {var}, which is not set"
                    ))
                })?;
                let mut value = HeaderValue::from_str(&token).map_err(|_| {
                    invalid(format!("the token in {var} is not a valid header value"))
                })?;
                value.set_sensitive(true);
                headers.insert(
                    HeaderName::from_static(underling::WORKLOAD_TOKEN_HEADER),
                    value,
                );
            }
            headers.insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
            // A workload with CAs of its own has a client of its own; the others share one.
            let client = match &spec.ca_file {
                Some(ca_file) => crate::tls::client(&spec.name, Some(ca_file))?,
                None => match &shared_client {
                    Some(client) => reqwest::Client::clone(client),
                    None => {
                        let client = crate::tls::client(&spec.name, None)?;
                        shared_client = Some(client.clone());
                        client
                    }
                },
            };
            workloads.push(Arc::new(Prepared {
                spec,
                url,
                headers,
                client,
            }));
        }
        Ok(Dispatcher {
            queue,
            workloads,
            options,
            control: DispatchControl::default(),
        })
    }

    /// The workloads' names (their tasks), in the order given.
    pub fn names(&self) -> Vec<String> {
        self.workloads.iter().map(|w| w.spec.name.clone()).collect()
    }

    /// A handle that stops this dispatcher.
    pub fn control(&self) -> DispatchControl {
        self.control.clone()
    }

    /// Dispatches until stopped (or, with `burst`, until nothing is ready); says what it did.
    /// Without workloads it returns at once.
    pub async fn run(self) -> Result<DispatchSummary, WorkloadError> {
        if self.workloads.is_empty() {
            return Ok(DispatchSummary::default());
        }
        // Subscribed before the first claim, so that no wake-up falls between a claim that
        // found nothing and the wait that follows it.
        let wakeups = self.queue.wakeups().await?;
        let shared = Arc::new(Shared {
            queue: self.queue,
            options: self.options,
            control: self.control,
        });
        tracing::info!(
            workloads = ?self.workloads.iter().map(|w| w.spec.name.as_str()).collect::<Vec<_>>(),
            queues = ?shared.options.queues,
            "dispatching to HTTP workloads"
        );
        let mut loops = JoinSet::new();
        for workload in self.workloads {
            let rx = wakeups.as_ref().map(broadcast::Receiver::resubscribe);
            let span = tracing::info_span!("workload", name = %workload.spec.name);
            loops.spawn(workload_loop(shared.clone(), workload, rx).instrument(span));
        }
        drop(wakeups);
        let mut summary = DispatchSummary::default();
        while let Some(ended) = loops.join_next().await {
            match ended {
                Ok(one) => summary.add(&one),
                Err(e) => {
                    tracing::error!(error = %e, "a workload's dispatch loop stopped abnormally")
                }
            }
        }
        Ok(summary)
    }
}

/// What every workload's loop shares.
struct Shared {
    queue: Queue,
    options: DispatchOptions,
    control: DispatchControl,
}

/// One workload: claim while slots are free, dispatch each job in a task of its own holding a
/// slot, wait for wake-ups or the poll when nothing is ready; at a stop, let requests in
/// flight end within the grace.
async fn workload_loop(
    shared: Arc<Shared>,
    workload: Arc<Prepared>,
    mut wakeups: Option<broadcast::Receiver<String>>,
) -> DispatchSummary {
    let spec = &workload.spec;
    let slots = Arc::new(Semaphore::new(spec.max_concurrency));
    let lease = match spec.mode {
        WorkloadMode::Sync => spec.timeout + SYNC_LEASE_MARGIN,
        WorkloadMode::Async => spec.lease_or_default(),
    };
    let summary = Arc::new(Mutex::new(DispatchSummary::default()));
    let mut in_flight = JoinSet::new();
    let graceful = shared.control.graceful.clone();
    loop {
        while in_flight.try_join_next().is_some() {}
        let first = tokio::select! {
            biased;
            _ = graceful.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let mut held = vec![first];
        while held.len() < MAX_LEASED_CLAIM {
            match slots.clone().try_acquire_owned() {
                Ok(slot) => held.push(slot),
                Err(_) => break,
            }
        }
        // Wake-ups until now are answered by this claim.
        if let Some(rx) = wakeups.as_mut() {
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
        }
        let wanted = held.len();
        let opts = LeaseOptions {
            queues: shared.options.queues.clone(),
            tasks: vec![spec.name.clone()],
            limit: wanted,
            lease,
        };
        let claimed = match shared.queue.claim_leased(&opts).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming workload jobs failed; trying again after the poll interval");
                drop(held);
                tokio::select! {
                    _ = graceful.cancelled() => break,
                    _ = tokio::time::sleep(shared.options.poll_interval) => continue,
                }
            }
        };
        let got = claimed.len();
        for (leased, slot) in claimed.into_iter().zip(held.drain(..)) {
            let shared = shared.clone();
            let workload = workload.clone();
            let summary = summary.clone();
            let span =
                tracing::info_span!("job", id = leased.job.id, attempt = leased.job.retries + 1);
            in_flight.spawn(
                async move {
                    let counted = dispatch_one(&shared, &workload, leased).await;
                    drop(slot);
                    if let Ok(mut total) = summary.lock() {
                        total.add(&counted);
                    }
                }
                .instrument(span),
            );
        }
        drop(held);
        if got == wanted {
            continue;
        }
        if shared.options.burst {
            // Nothing more is ready now; once the requests in flight ended (their jobs may
            // have made others ready), look once more, and stop if nothing is in flight.
            if in_flight.is_empty() {
                break;
            }
            while in_flight.join_next().await.is_some() {}
            continue;
        }
        tokio::select! {
            biased;
            _ = graceful.cancelled() => break,
            _ = next_wakeup(&mut wakeups, &shared.options.queues) => {}
            _ = tokio::time::sleep(shared.options.poll_interval) => {}
        }
    }
    // Stopping: requests in flight have the grace to be answered, then they are cut.
    if !in_flight.is_empty() {
        tracing::info!(
            in_flight = in_flight.len(),
            "stopping: waiting for requests in flight"
        );
        let deadline = tokio::time::sleep(shared.options.shutdown_grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ended = in_flight.join_next() => if ended.is_none() { break },
                _ = &mut deadline => {
                    shared.control.immediate.cancel();
                    while in_flight.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
    summary.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Waits for a wake-up of one of `queues` (or of any queue); never, without a stream.
async fn next_wakeup(wakeups: &mut Option<broadcast::Receiver<String>>, queues: &[String]) {
    loop {
        let Some(rx) = wakeups.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(queue) if queue == "*" || queues.contains(&queue) => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => {
                // The stream ended: poll from now on.
                *wakeups = None;
            }
        }
    }
}

/// Sends one job and settles it from the answer; counts what happened.
async fn dispatch_one(shared: &Shared, workload: &Prepared, leased: LeasedJob) -> DispatchSummary {
    let spec = &workload.spec;
    let LeasedJob { job, lease } = leased;
    let mut counted = DispatchSummary {
        dispatched: 1,
        ..DispatchSummary::default()
    };
    // The job's own timeout wins where it is shorter.
    let timeout = job.timeout().map_or(spec.timeout, |t| t.min(spec.timeout));
    let event = cloud_event(
        &job,
        (spec.mode == WorkloadMode::Async).then_some(&lease),
        &shared.options.host,
        chrono::Utc::now(),
    );
    let request = workload
        .client
        .post(workload.url.clone())
        .headers(workload.headers.clone())
        .body(event.to_string());
    let started = std::time::Instant::now();
    let verdict = tokio::select! {
        verdict = exchange(request, spec.mode, timeout, spec.max_response_bytes) => verdict,
        _ = shared.control.immediate.cancelled() => Verdict::Retry { error: SHUT_DOWN.into(), delay: None },
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let queue = &shared.queue;
    let written = match verdict {
        Verdict::Accepted => {
            tracing::info!(elapsed_ms, lease_expires = %lease.expires, "workload accepted the job");
            counted.accepted = 1;
            return counted;
        }
        Verdict::Finish(result) => {
            tracing::info!(elapsed_ms, "job finished");
            queue
                .ack(job.id, &lease.token, result)
                .await
                .map(|()| Settled::Finished)
        }
        Verdict::Retry { error, delay } => {
            tracing::info!(elapsed_ms, error = %error, "job failed");
            let rejection = Rejection {
                delay,
                ..Rejection::retry(json!(error))
            };
            queue.reject(job.id, &lease.token, rejection).await
        }
        Verdict::Fail { error } => {
            tracing::info!(elapsed_ms, error = %error, "job failed for good");
            queue
                .reject(job.id, &lease.token, Rejection::fatal(json!(error)))
                .await
        }
    };
    match written {
        Ok(Settled::Finished) => counted.finished = 1,
        Ok(Settled::Retried) => counted.retried = 1,
        Ok(Settled::Failed) => counted.failed = 1,
        Ok(Settled::Snoozed | Settled::Stale) => counted.unsettled = 1,
        Err(e) => {
            tracing::warn!(error = %e, "the job's outcome could not be written; the lease's expiry will rescue it");
            counted.unsettled = 1;
        }
    }
    counted
}
