//! Helpers shared by the behaviours: claiming and settling through the store, looking jobs
//! up, running workers and waiting for states. They unwrap: a failure here is a failed test.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use underling::store::{Attempt, Claim, ClaimById, Cycle, RegisterWorker, Release};
use underling::{
    ClaimSpec, EnqueueOptions, Job, JobFilter, JobState, Outcome, Pool, Queue, Registry,
    RepairOptions, Settle, Settled, Worker, WorkerControl, WorkerOptions, WorkerSummary,
};

use crate::TestStore;

// ---------------------------------------------------------------------------------------------
// The store, as a worker uses it

/// Registers a worker and returns its id.
pub async fn worker(t: &TestStore) -> i64 {
    t.store
        .register_worker(RegisterWorker {
            host: "test-host",
            pid: 4242,
            status: &json!({}),
            now: None,
        })
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

/// Claims up to `limit` jobs matching `spec` for `worker`, settling nothing.
pub async fn claim_spec(t: &TestStore, worker: i64, spec: &ClaimSpec, limit: usize) -> Vec<Job> {
    t.store
        .cycle(Cycle {
            settles: &[],
            claim: Some(Claim {
                worker_id: worker,
                spec,
                limit,
            }),
            now: None,
        })
        .await
        .expect("claim")
        .claimed
}

/// Claims up to `limit` jobs from `queues` for `worker`.
pub async fn claim(t: &TestStore, worker: i64, queues: &[&str], limit: usize) -> Vec<Job> {
    claim_spec(t, worker, &spec(queues), limit).await
}

/// Claims up to `limit` jobs from `queues` and returns their ids in claim order.
pub async fn claim_ids(t: &TestStore, worker: i64, queues: &[&str], limit: usize) -> Vec<i64> {
    claim(t, worker, queues, limit)
        .await
        .into_iter()
        .map(|j| j.id)
        .collect()
}

/// Claims exactly one job from the default queue; panics if there is none.
pub async fn claim_one(t: &TestStore, worker: i64) -> Job {
    let mut jobs = claim(t, worker, &["default"], 1).await;
    assert_eq!(jobs.len(), 1, "expected one job to claim");
    jobs.remove(0)
}

/// Claims the job `id` by id for `worker`, if it is ready.
pub async fn claim_by_id(t: &TestStore, worker: i64, id: i64) -> Option<Job> {
    t.store
        .claim_by_id(ClaimById {
            worker_id: worker,
            id,
            now: None,
        })
        .await
        .expect("claim_by_id")
}

/// Gives back attempts (`(id, retries)`) that `worker` claimed but never started; returns how
/// many went back.
pub async fn release(t: &TestStore, worker: i64, attempts: &[(i64, i32)]) -> u64 {
    let attempts: Vec<Attempt> = attempts
        .iter()
        .map(|&(id, retries)| Attempt { id, retries })
        .collect();
    t.store
        .release(Release {
            worker_id: worker,
            attempts: &attempts,
        })
        .await
        .expect("release")
}

/// Settles attempts, claiming nothing.
pub async fn settle_all(t: &TestStore, settles: &[Settle]) -> Vec<Settled> {
    t.store
        .cycle(Cycle {
            settles,
            claim: None,
            now: None,
        })
        .await
        .expect("settle")
        .settled
}

/// Settles one attempt.
pub async fn settle(t: &TestStore, id: i64, retries: i32, outcome: Outcome) -> Settled {
    let done = settle_all(
        t,
        &[Settle {
            id,
            retries,
            outcome,
        }],
    )
    .await;
    assert_eq!(done.len(), 1);
    done[0]
}

/// Finishes a claimed job with `result`.
pub async fn finish(t: &TestStore, job: &Job, result: Value) -> Settled {
    settle(t, job.id, job.retries, Outcome::Finished(result)).await
}

/// Fails a claimed job's attempt with `error`, retrying after `retry_delay` if tries are left.
pub async fn fail(t: &TestStore, job: &Job, error: Value, retry_delay: Duration) -> Settled {
    settle(
        t,
        job.id,
        job.retries,
        Outcome::Failed { error, retry_delay },
    )
    .await
}

/// Claims the job `id` by id and finishes it.
pub async fn run_to_finish(t: &TestStore, worker: i64, id: i64) {
    let job = claim_by_id(t, worker, id)
        .await
        .expect("job should be claimable");
    assert_eq!(finish(t, &job, json!(null)).await, Settled::Finished);
}

/// Claims the job `id` by id and fails it for good (it must have one attempt left at most).
pub async fn run_to_failure(t: &TestStore, worker: i64, id: i64) {
    let job = claim_by_id(t, worker, id)
        .await
        .expect("job should be claimable");
    assert_eq!(
        fail(t, &job, json!("boom"), Duration::ZERO).await,
        Settled::Failed
    );
}

// ---------------------------------------------------------------------------------------------
// Jobs, through the queue

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

/// Makes the jobs due now, as if their retry delay had passed (a stand-in for waiting out a
/// backoff). Writes to the database directly, so it knows the built-in stores only.
pub async fn make_due(queue: &Queue, ids: &[i64]) {
    match queue.pool() {
        Pool::Postgres(pool) => {
            sqlx::query("UPDATE underling_jobs SET delayed = now() WHERE id = ANY($1)")
                .bind(ids)
                .execute(&pool)
                .await
                .expect("make the jobs due");
        }
        Pool::Sqlite(pool) => {
            sqlx::query(
                "UPDATE underling_jobs SET delayed = ?1 \
                 WHERE id IN (SELECT value FROM json_each(?2))",
            )
            .bind(chrono::Utc::now().timestamp_millis())
            .bind(serde_json::to_string(ids).expect("ids as JSON"))
            .execute(&pool)
            .await
            .expect("make the jobs due");
        }
        other => panic!("make_due knows PostgreSQL and SQLite pools only, got {other:?}"),
    }
}

/// Fails the test with every failure of a table-driven test (one line each), or passes
/// when there are none: all the cases of the table run before it says which failed.
pub fn assert_no_failures(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// How many rows each table of the store holds, by table name: every table of the queue's
/// PostgreSQL schema, or every table of the SQLite database but SQLite's own (`sqlite_*`).
/// Tests of refused input compare it before and after: a refusal writes nothing.
pub async fn row_counts(queue: &Queue) -> std::collections::BTreeMap<String, i64> {
    const PG_TABLES: &str = "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'";
    const SQLITE_TABLES: &str =
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
    // One statement counting every table: names from the catalog, quoted (quotes doubled).
    let count_all = |tables: Vec<String>| -> String {
        assert!(
            !tables.is_empty(),
            "no tables to count: is the store migrated?"
        );
        tables
            .iter()
            .map(|t| {
                let quoted = t.replace('"', "\"\"");
                format!(
                    "SELECT '{}', count(*) FROM \"{quoted}\"",
                    t.replace('\'', "''")
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    };
    let rows: Vec<(String, i64)> = match queue.pool() {
        Pool::Postgres(pool) => {
            let tables = sqlx::query_scalar(PG_TABLES).fetch_all(&pool).await;
            let sql = count_all(tables.expect("list the schema's tables"));
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
        }
        Pool::Sqlite(pool) => {
            let tables = sqlx::query_scalar(SQLITE_TABLES).fetch_all(&pool).await;
            let sql = count_all(tables.expect("list the database's tables"));
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
        }
        other => panic!("row_counts knows PostgreSQL and SQLite pools only, got {other:?}"),
    }
    .expect("count the rows of every table");
    rows.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Workers

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

/// [`fast_options`], and every job counts as fast, so that the worker fetches ahead once one
/// ended, however loaded the machine running the test is.
pub fn ahead_options(concurrency: usize) -> WorkerOptions {
    WorkerOptions {
        fetch_ahead: underling::FetchAhead {
            below: Duration::from_secs(60),
            ..underling::FetchAhead::default()
        },
        ..fast_options(concurrency)
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

/// Waits until the job is in `state` and returns it.
pub async fn wait_for_state(queue: &Queue, id: i64, state: JobState) -> Job {
    wait_for(&format!("job {id} to be {state}"), || async {
        let job = job(queue, id).await;
        (job.state == state).then_some(job)
    })
    .await
}
