//! Helpers for the worker suite (running workers, waiting for states), on top of the shared
//! two-backend harness.

#[macro_use]
#[path = "../support/harness.rs"]
mod harness;
pub use harness::*;

use std::future::Future;
use std::time::Duration;

use underling::{
    Job, JobState, Queue, Registry, RepairOptions, Worker, WorkerControl, WorkerOptions,
    WorkerSummary,
};

// ---------------------------------------------------------------------------------------------
// Helpers shared by the worker tests. They unwrap: a failure here is a failed test.

/// How long any wait in these tests may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Worker options that keep tests fast: short poll, heartbeat and command intervals, and no
/// repair during the test (a repair could only get in the way).
pub fn fast_options(concurrency: usize) -> WorkerOptions {
    WorkerOptions {
        concurrency,
        poll_interval: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(100),
        command_interval: Duration::from_millis(50),
        repair_interval: Duration::from_secs(3600),
        repair: RepairOptions::default(),
        ..WorkerOptions::default()
    }
}

/// The same, in burst mode: the worker exits once nothing it can run is ready.
pub fn burst_options(concurrency: usize) -> WorkerOptions {
    WorkerOptions {
        burst: true,
        ..fast_options(concurrency)
    }
}

/// A worker running in the background.
pub struct Running {
    /// Stops it.
    pub control: WorkerControl,
    handle: tokio::task::JoinHandle<underling::Result<WorkerSummary>>,
}

impl Running {
    /// Waits (with a time limit) for the worker to exit and returns its summary.
    pub async fn join(self) -> WorkerSummary {
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("the worker should exit in time")
            .expect("the worker task should not panic")
            .expect("the worker should exit without an error")
    }
}

/// Starts a worker in the background.
pub fn start(queue: &Queue, registry: Registry, options: WorkerOptions) -> Running {
    let worker = Worker::new(queue.clone(), registry, options);
    let control = worker.control();
    let handle = tokio::spawn(worker.run());
    Running { control, handle }
}

/// Runs a burst worker to its end and returns its summary.
pub async fn run_burst(queue: &Queue, registry: Registry, concurrency: usize) -> WorkerSummary {
    start(queue, registry, burst_options(concurrency))
        .join()
        .await
}

/// Waits until `check` returns `Some`, polling every 10 ms; panics after [`PATIENCE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The job, which must exist.
pub async fn job(queue: &Queue, id: i64) -> Job {
    queue
        .job(id)
        .await
        .expect("job lookup")
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

/// Waits until the job is in `state` and returns it.
pub async fn wait_for_state(queue: &Queue, id: i64, state: JobState) -> Job {
    wait_for(&format!("job {id} to be {state}"), || async {
        let job = job(queue, id).await;
        (job.state == state).then_some(job)
    })
    .await
}
