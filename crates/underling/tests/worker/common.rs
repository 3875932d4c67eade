//! The harness that runs every worker test on SQLite (in memory) and on PostgreSQL (a fresh
//! schema per test), copied from the behaviour suite's harness, plus helpers to run a worker.
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached, the PostgreSQL half
//! of a test fails under CI (`CI` set) and is skipped with a loud message elsewhere.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use underling::backend::postgres::PostgresBackend;
use underling::{
    ConnectOptions, Job, JobState, Queue, Registry, RepairOptions, Worker, WorkerControl,
    WorkerOptions, WorkerSummary,
};

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("UNDERLING_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh SQLite database in memory.
pub async fn sqlite() -> Queue {
    Queue::connect_and_migrate("sqlite::memory:")
        .await
        .expect("in-memory SQLite must open")
}

/// A queue on a fresh PostgreSQL schema, dropped by [`PgTestDb::cleanup`].
pub struct PgTestDb {
    /// The queue.
    pub queue: Queue,
}

impl PgTestDb {
    /// Drops the test's schema.
    pub async fn cleanup(self) {
        if let Some(pg) = self
            .queue
            .backend()
            .as_any()
            .downcast_ref::<PostgresBackend>()
        {
            pg.drop_schema().await.expect("drop test schema");
        }
        self.queue.close().await;
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique schema name for one test.
pub fn unique_schema() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("w_{}_{}_{}", std::process::id(), nanos, n)
}

/// A queue on a fresh PostgreSQL schema, or `None` (with a loud message) when no server is
/// reachable outside CI.
pub async fn postgres() -> Option<PgTestDb> {
    let url = postgres_url();
    let opts = ConnectOptions::new(&url)
        .schema(unique_schema())
        .max_connections(12)
        .migrate(true);
    match Queue::connect_with(opts).await {
        Ok(queue) => Some(PgTestDb { queue }),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required in CI but {url} failed: {e}");
            }
            eprintln!(
                "\n!!!! SKIPPING the PostgreSQL half of this test: {url} is not reachable ({e}).\n\
                 !!!! Start PostgreSQL or set UNDERLING_TEST_DATABASE_URL to run it.\n"
            );
            None
        }
    }
}

/// Defines each test twice: once on SQLite in memory, once on PostgreSQL.
///
/// ```ignore
/// behaviour! {
///     async fn result_is_stored(queue) { ... }
/// }
/// ```
#[macro_export]
macro_rules! behaviour {
    ($( $(#[$meta:meta])* async fn $name:ident($queue:ident) $body:block )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $queue = $crate::common::sqlite().await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::common::postgres().await else { return };
                    {
                        let $queue = db.queue.clone();
                        $body
                    }
                    db.cleanup().await;
                }
            )*
        }
    };
}

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
