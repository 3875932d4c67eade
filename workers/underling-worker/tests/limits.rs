//! Exact limits across real worker processes on PostgreSQL: 4 `underling-worker` processes of
//! 5 slots each (20 claimers) run `example.record` jobs, which write when each run starts and
//! ends; the most runs ever under way at once, read from those records, is exactly the limit.
//! Also with a worker killed mid-run (its jobs count until they are rescued). And a FIFO queue:
//! one run at a time, in id order, a killed run taken up again before the next job.
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL` (see `processes.rs`); the tests fail
//! under CI when it is unreachable, and are skipped loudly elsewhere.

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, Limit, LimitScope, NewJob};

use harness::*;

const WORKER_ARGS: [&str; 10] = [
    "--jobs",
    "5",
    "--heartbeat-interval",
    "200ms",
    "--missing-after",
    "3s",
    "--repair-interval",
    "500ms",
    "--poll-interval",
    "50ms",
];

/// The most of `runs` under way at one moment (a run without an end lasts until `open_until`).
fn most_at_once<'a>(runs: impl Iterator<Item = &'a Execution>, open_until: u128) -> usize {
    let mut edges: Vec<(u128, i32)> = Vec::new();
    for run in runs {
        edges.push((run.start, 1));
        edges.push((run.end.unwrap_or(open_until), -1));
    }
    // Ends before starts at the same microsecond: a slot handed over is not an overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// Starts `n` workers and waits until they are registered.
async fn start_workers(db: &TestDb, n: usize) -> Workers {
    let mut workers = Workers::default();
    for i in 0..n {
        workers
            .0
            .push(db.spawn_worker(&format!("worker-{i}"), &WORKER_ARGS));
    }
    wait_for(
        "the workers to register",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { (db.queue.workers().await.unwrap().len() == n).then_some(()) },
    )
    .await;
    workers
}

/// Waits until `n` jobs finished (none failed).
async fn wait_finished(db: &TestDb, n: u64) {
    wait_for(
        "every job to finish",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || async {
            let stats = db.queue.stats().await.unwrap();
            assert_eq!(stats.failed_jobs, 0, "jobs failed:\n{}", db.logs());
            (stats.finished_jobs == n).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_claimers_in_four_processes_never_run_more_than_a_queue_limit_of_3() {
    let Some(db) = TestDb::new("limit_queue").await else {
        return;
    };
    db.queue
        .set_limit(&Limit::concurrency(LimitScope::Queue("default".into()), 3))
        .await
        .unwrap();
    let record = db.dir.join("record.txt");
    let file = record.to_str().expect("utf-8 temp path");
    let jobs: Vec<NewJob> = (0..90)
        .map(|_| {
            NewJob::new(
                "example.record",
                json!({"file": file, "ms": 20}),
                EnqueueOptions::new(),
            )
            .unwrap()
        })
        .collect();
    let workers = start_workers(&db, 4).await;
    db.queue.enqueue_batch(&jobs).await.unwrap();
    wait_finished(&db, 90).await;
    drop(workers);

    let runs = executions(&record);
    assert_eq!(runs.len(), 90);
    let pids: std::collections::BTreeSet<u32> = runs.values().flatten().map(|r| r.pid).collect();
    assert!(pids.len() > 1, "one process ran every job: {pids:?}");
    assert_eq!(most_at_once(runs.values().flatten(), micros_now()), 3);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_tenant_limit_of_2_holds_while_a_worker_is_killed_and_its_jobs_rescued() {
    let Some(db) = TestDb::new("limit_key").await else {
        return;
    };
    db.queue
        .set_limit(&Limit::concurrency(
            LimitScope::key_from("args.tenant").unwrap(),
            2,
        ))
        .await
        .unwrap();
    let record = db.dir.join("record.txt");
    let file = record.to_str().expect("utf-8 temp path");
    let tenants = ["a", "b", "c"];
    // Enough jobs that the run lasts seconds (6 run at once), so that the kill falls mid-run.
    let jobs: Vec<NewJob> = (0..600)
        .map(|i| {
            let args = json!({"file": file, "ms": 30, "tenant": tenants[i % 3]});
            NewJob::new("example.record", args, EnqueueOptions::new().attempts(3)).unwrap()
        })
        .collect();
    let mut workers = start_workers(&db, 4).await;
    let ids = db.queue.enqueue_batch(&jobs).await.unwrap();
    let tenant_of: BTreeMap<i64, &str> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, tenants[i % 3]))
        .collect();

    // Kill a worker while it runs a job, once 10 runs ended.
    let victim = workers.0[0].id();
    wait_for(
        "the victim to run a job",
        Duration::from_secs(30),
        Duration::from_millis(2),
        || async {
            let runs = executions(&record);
            let ended = runs.values().flatten().filter(|r| r.end.is_some()).count();
            let victim_runs = runs
                .values()
                .flatten()
                .any(|r| r.pid == victim && r.end.is_none());
            (ended >= 10 && victim_runs).then_some(())
        },
    )
    .await;
    signal(&workers.0[0], libc::SIGKILL);
    wait_exit(&mut workers.0[0], Duration::from_secs(10)).await;
    let killed_at = micros_now();
    wait_finished(&db, 600).await;
    drop(workers);

    let runs = executions(&record);
    let most: Vec<usize> = tenants
        .iter()
        .map(|tenant| {
            let of_tenant = runs
                .iter()
                .filter(|(id, _)| tenant_of[id] == *tenant)
                .flat_map(|(_, r)| r.iter());
            most_at_once(of_tenant, killed_at)
        })
        .collect();
    // Never more than 2 of a tenant; and the limit was reached, or the test proves nothing. (A
    // tenant may never get to 2 after the kill: while the dead worker's job holds one of its
    // slots until the rescue, its jobs run one at a time.)
    assert!(
        most.iter().all(|&n| n <= 2),
        "most at once per tenant: {most:?}"
    );
    assert_eq!(
        most.iter().max(),
        Some(&2),
        "most at once per tenant: {most:?}"
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_queue_runs_one_job_at_a_time_in_id_order_across_processes_and_a_kill() {
    let Some(db) = TestDb::new("limit_fifo").await else {
        return;
    };
    db.queue.set_fifo("default", true).await.unwrap();
    let record = db.dir.join("record.txt");
    let file = record.to_str().expect("utf-8 temp path");
    let jobs: Vec<NewJob> = (0..80)
        .map(|_| {
            let args = json!({"file": file, "ms": 20});
            NewJob::new("example.record", args, EnqueueOptions::new().attempts(3)).unwrap()
        })
        .collect();
    let mut workers = start_workers(&db, 4).await;
    db.queue.enqueue_batch(&jobs).await.unwrap();

    // Kill the worker that runs the job of the line, once 10 runs ended.
    let victim = wait_for(
        "a run under way after 10 ended",
        Duration::from_secs(60),
        Duration::from_millis(2),
        || async {
            let runs = executions(&record);
            let ended = runs.values().flatten().filter(|r| r.end.is_some()).count();
            let open = runs
                .values()
                .flatten()
                .find(|r| r.end.is_none())
                .map(|r| r.pid);
            open.filter(|_| ended >= 10)
        },
    )
    .await;
    let index = workers
        .0
        .iter()
        .position(|w| w.id() == victim)
        .expect("the run's process is one of the workers");
    signal(&workers.0[index], libc::SIGKILL);
    wait_exit(&mut workers.0[index], Duration::from_secs(10)).await;
    let killed_at = micros_now();
    wait_finished(&db, 80).await;
    drop(workers);

    let runs = executions(&record);
    assert_eq!(runs.len(), 80);
    assert_eq!(most_at_once(runs.values().flatten(), killed_at), 1);
    // In start order, the jobs come in id order: the killed job's second run comes before the
    // next job's first.
    let mut starts: Vec<(u128, i64)> = runs
        .iter()
        .flat_map(|(id, r)| r.iter().map(move |run| (run.start, *id)))
        .collect();
    starts.sort();
    let mut order: Vec<i64> = starts.into_iter().map(|(_, id)| id).collect();
    order.dedup();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "jobs started out of id order");
    assert_eq!(
        order.len(),
        80,
        "a job ran again after the next one had started"
    );
    let pids: std::collections::BTreeSet<u32> = runs.values().flatten().map(|r| r.pid).collect();
    assert!(pids.len() > 1, "one process ran every job: {pids:?}");
    db.cleanup().await;
}
