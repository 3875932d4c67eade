//! The harness that runs every behaviour test on SQLite (in memory) and on PostgreSQL (a fresh
//! schema per test).
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it cannot be reached, the PostgreSQL half
//! of a test fails under CI (`CI` set) and is skipped with a loud message elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use underling::backend::postgres::PostgresBackend;
use underling::{
    ClaimSpec, ConnectOptions, EnqueueOptions, Job, JobFilter, JobState, Outcome, Queue, Settle,
    Settled,
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
    format!("t_{}_{}_{}", std::process::id(), nanos, n)
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
///     async fn enqueue_returns_ascending_ids(queue) { ... }
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
                #[tokio::test]
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
// Helpers shared by the behaviour tests. They unwrap: a failure here is a failed test.

/// Registers a worker and returns its id.
pub async fn worker(queue: &Queue) -> i64 {
    queue
        .backend()
        .register_worker("test-host", 4242, &json!({}))
        .await
        .expect("register worker")
}

/// A claim spec for these queues and any task.
pub fn spec(queues: &[&str]) -> ClaimSpec {
    ClaimSpec {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        tasks: Vec::new(),
    }
}

/// Claims up to `limit` jobs from `queues` for `worker`.
pub async fn claim(queue: &Queue, worker: i64, queues: &[&str], limit: usize) -> Vec<Job> {
    queue
        .backend()
        .claim(worker, &spec(queues), limit)
        .await
        .expect("claim")
}

/// Claims up to `limit` jobs from `queues` and returns their ids in claim order.
pub async fn claim_ids(queue: &Queue, worker: i64, queues: &[&str], limit: usize) -> Vec<i64> {
    claim(queue, worker, queues, limit)
        .await
        .into_iter()
        .map(|j| j.id)
        .collect()
}

/// Claims exactly one job from the default queue; panics if there is none.
pub async fn claim_one(queue: &Queue, worker: i64) -> Job {
    let mut jobs = claim(queue, worker, &["default"], 1).await;
    assert_eq!(jobs.len(), 1, "expected one job to claim");
    jobs.remove(0)
}

/// Enqueues a job of `task` with empty arguments and default options.
pub async fn enqueue(queue: &Queue, task: &str) -> i64 {
    queue
        .enqueue(task, json!({}), EnqueueOptions::new())
        .await
        .expect("enqueue")
}

/// Enqueues a job of `task` with empty arguments and the options given.
pub async fn enqueue_with(queue: &Queue, task: &str, opts: EnqueueOptions) -> i64 {
    queue.enqueue(task, json!({}), opts).await.expect("enqueue")
}

/// Settles one attempt.
pub async fn settle(queue: &Queue, id: i64, retries: i32, outcome: Outcome) -> Settled {
    let done = queue
        .backend()
        .settle(&[Settle {
            id,
            retries,
            outcome,
        }])
        .await
        .expect("settle");
    assert_eq!(done.len(), 1);
    done[0]
}

/// Finishes a claimed job with `result`.
pub async fn finish(queue: &Queue, job: &Job, result: Value) -> Settled {
    settle(queue, job.id, job.retries, Outcome::Finished(result)).await
}

/// Fails a claimed job's attempt with `error`, retrying after `retry_delay` if tries are left.
pub async fn fail(queue: &Queue, job: &Job, error: Value, retry_delay: Duration) -> Settled {
    settle(
        queue,
        job.id,
        job.retries,
        Outcome::Failed { error, retry_delay },
    )
    .await
}

/// Claims the job `id` by id and finishes it.
pub async fn run_to_finish(queue: &Queue, worker: i64, id: i64) {
    let job = queue
        .backend()
        .claim_by_id(worker, id)
        .await
        .expect("claim_by_id")
        .expect("job should be claimable");
    assert_eq!(finish(queue, &job, json!(null)).await, Settled::Finished);
}

/// Claims the job `id` by id and fails it for good (it must have one attempt left at most).
pub async fn run_to_failure(queue: &Queue, worker: i64, id: i64) {
    let job = queue
        .backend()
        .claim_by_id(worker, id)
        .await
        .expect("claim_by_id")
        .expect("job should be claimable");
    assert_eq!(
        fail(queue, &job, json!("boom"), Duration::ZERO).await,
        Settled::Failed
    );
}

/// The job, which must exist.
pub async fn job(queue: &Queue, id: i64) -> Job {
    queue
        .job(id)
        .await
        .expect("job lookup")
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

/// The state of a job, which must exist.
pub async fn state(queue: &Queue, id: i64) -> JobState {
    job(queue, id).await.state
}

/// How many jobs exist in all.
pub async fn job_count(queue: &Queue) -> u64 {
    queue
        .list_jobs(&JobFilter::default(), 1, 0)
        .await
        .expect("list jobs")
        .total
}

/// Sleeps long enough for "now" to move past timestamps written just before.
pub async fn tick() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}
