//! Real `underling-worker` processes against one PostgreSQL database: jobs survive a worker
//! killed with SIGKILL (mid-job, or with outcomes not yet written), no job runs in two places
//! at once (not even when a worker's connection freezes: it fences itself), SIGTERM stops
//! gracefully, and the binary's one-shot modes (`--list-tasks`,
//! `--foreground`) do what they say. A worker started before the database can be reached
//! waits for it.
//!
//! PostgreSQL is found at `UNDERLING_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test uses a fresh schema. When no server is
//! reachable the tests fail under CI (`CI` set) and are skipped loudly elsewhere.

mod freeze;
mod harness;
mod unreachable;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use underling::{EnqueueOptions, JobState, NewJob, Pool};

use harness::*;

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_a_killed_worker_are_rescued_and_no_job_runs_twice_at_once() {
    let Some(db) = TestDb::new("kill").await else {
        return;
    };
    let record = db.dir.join("record.txt");
    let args = [
        "--jobs",
        "8",
        "--heartbeat-interval",
        "200ms",
        "--missing-after",
        "6s",
        "--repair-interval",
        "1s",
        "--poll-interval",
        "100ms",
    ];
    let mut workers = Workers::default();
    for n in 0..4 {
        workers
            .0
            .push(db.spawn_worker(&format!("worker-{n}"), &args));
    }
    wait_for(
        "four workers to register",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { (db.queue.workers().await.unwrap().len() == 4).then_some(()) },
    )
    .await;

    let file = record.to_str().expect("utf-8 temp path");
    let jobs: Vec<NewJob> = (0..2000)
        .map(|_| {
            NewJob::new(
                "example.record",
                json!({"file": file, "ms": 5}),
                EnqueueOptions::new().attempts(3),
            )
            .unwrap()
        })
        .collect();
    let ids = db.queue.enqueue_batch(&jobs).await.unwrap();
    assert_eq!(ids.len(), 2000);

    // Kill one worker mid-run, and mid-job: once the run is under way, right after the victim
    // started a job (each takes 5 ms), so that the kill very likely cuts that job short.
    let victim_pid = workers.0[0].id();
    wait_for(
        "the victim to start a job mid-run",
        Duration::from_secs(30),
        Duration::from_millis(1),
        || async {
            let runs = executions(&record);
            let ended = runs.values().flatten().filter(|e| e.end.is_some()).count();
            let now = micros_now();
            let victim_just_started = runs
                .values()
                .flatten()
                .any(|e| e.pid == victim_pid && e.end.is_none() && now < e.start + 2000);
            (ended >= 100 && victim_just_started).then_some(())
        },
    )
    .await;
    signal(&workers.0[0], libc::SIGKILL);
    let status = wait_exit(&mut workers.0[0], Duration::from_secs(10)).await;
    let killed_at = micros_now();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let left_at_kill = db.queue.stats().await.unwrap();
    assert!(
        left_at_kill.finished_jobs < 2000,
        "the worker was killed after the run: {left_at_kill:?}"
    );

    // Every job finishes: repair rescues the dead worker's jobs, they run again elsewhere.
    let stats = wait_for(
        "every job to finish",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || async {
            let stats = db.queue.stats().await.unwrap();
            assert_eq!(stats.failed_jobs, 0, "jobs failed for good:\n{}", db.logs());
            (stats.finished_jobs == 2000).then_some(stats)
        },
    )
    .await;
    assert_eq!((stats.inactive_jobs, stats.active_jobs), (0, 0));

    // The others stop cleanly on SIGTERM.
    for child in &workers.0[1..] {
        signal(child, libc::SIGTERM);
    }
    for child in &mut workers.0[1..] {
        let status = wait_exit(child, Duration::from_secs(30)).await;
        assert!(
            status.success(),
            "worker {} exited with {status}:\n{}",
            child.id(),
            db.logs()
        );
    }
    assert!(db.queue.workers().await.unwrap().is_empty());

    // What the record file says.
    let runs = executions(&record);
    let expected: BTreeSet<i64> = ids.iter().copied().collect();
    let recorded: BTreeSet<i64> = runs.keys().copied().collect();
    assert_eq!(
        recorded, expected,
        "the record names exactly the enqueued jobs"
    );
    let mut cut_short = BTreeSet::new();
    for (job, list) in &runs {
        // Every job ran to its end somewhere.
        assert!(
            list.iter().any(|e| e.end.is_some()),
            "job {job} never ended: {list:?}"
        );
        // Only the killed worker left runs unfinished.
        for e in list.iter().filter(|e| e.end.is_none()) {
            assert_eq!(
                e.pid, victim_pid,
                "job {job}: an unfinished run in a live worker"
            );
        }
        // No two runs overlap; an unfinished run lasted until the kill.
        let mut by_start = list.clone();
        by_start.sort_by_key(|e| e.start);
        for pair in by_start.windows(2) {
            let first_end = pair[0].end.unwrap_or(killed_at);
            assert!(
                first_end <= pair[1].start,
                "job {job} ran twice at once: {pair:?}"
            );
        }
        if list.iter().any(|e| e.end.is_none()) {
            cut_short.insert(*job);
        }
    }
    // Repair rescued the killed worker's jobs (a task here fails only that way, so a job with a
    // retry is a rescued one), and each ran again, to its end, after the kill.
    let mut rescued = BTreeSet::new();
    for &id in &ids {
        let job = db.queue.job(id).await.unwrap().expect("job exists");
        assert_eq!(job.state, JobState::Finished, "job {id}");
        if job.retries > 0 {
            assert_eq!(job.retries, 1, "job {id} was rescued more than once");
            let list = &runs[&id];
            assert!(
                list.iter()
                    .any(|e| e.end.is_some() && e.start > killed_at && e.pid != victim_pid),
                "rescued job {id} did not run again after the kill: {list:?}"
            );
            rescued.insert(id);
        }
    }
    // The kill came right after the victim started a job: that job (and any other it was
    // running) was cut short, rescued and re-run.
    assert!(
        !cut_short.is_empty(),
        "no job of the killed worker was cut short mid-run"
    );
    assert!(
        cut_short.is_subset(&rescued),
        "jobs cut short by the kill {cut_short:?} were not all rescued ({rescued:?})"
    );
    drop(workers);
    db.cleanup().await;
}

/// At the default settings (heartbeat 1 s, `missing_after` 6 s, first retry after 1 s), the
/// jobs of a SIGKILLed worker run again elsewhere within 10 s of the kill: the live worker's
/// next heartbeat after `missing_after` finds the dead one missing and rescues its jobs at
/// once, and the retry wakes it when they fall due. The figures are printed for the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_defaults_a_killed_workers_jobs_run_again_within_10_seconds() {
    let Some(db) = TestDb::new("rescue_latency").await else {
        return;
    };
    let record = db.dir.join("record.txt");
    let mut workers = Workers::default();
    for n in 0..2 {
        // Only the concurrency is set: four slots each, so that both workers get jobs.
        workers
            .0
            .push(db.spawn_worker(&format!("worker-{n}"), &["--jobs", "4"]));
    }
    wait_for(
        "two workers to register",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { (db.queue.workers().await.unwrap().len() == 2).then_some(()) },
    )
    .await;
    let file = record.to_str().expect("utf-8 temp path");
    // Long jobs, so that the victim is surely running some when it is killed.
    let jobs: Vec<NewJob> = (0..24)
        .map(|_| {
            NewJob::new(
                "example.record",
                json!({"file": file, "ms": 1500}),
                EnqueueOptions::new().attempts(2),
            )
            .unwrap()
        })
        .collect();
    db.queue.enqueue_batch(&jobs).await.unwrap();
    let victim_pid = workers.0[0].id();
    wait_for(
        "the victim to run jobs",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || async {
            let runs = executions(&record);
            runs.values()
                .flatten()
                .any(|e| e.pid == victim_pid)
                .then_some(())
        },
    )
    .await;
    signal(&workers.0[0], libc::SIGKILL);
    wait_exit(&mut workers.0[0], Duration::from_secs(10)).await;
    let killed_at = micros_now();

    let runs = wait_for(
        "every job to finish",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            let stats = db.queue.stats().await.unwrap();
            (stats.finished_jobs == 24).then(|| executions(&record))
        },
    )
    .await;
    // For each job the kill cut short: from the kill to its next start.
    let mut latencies: Vec<Duration> = runs
        .values()
        .filter(|list| list.iter().any(|e| e.pid == victim_pid && e.end.is_none()))
        .map(|list| {
            let again = list
                .iter()
                .filter(|e| e.start > killed_at)
                .map(|e| e.start)
                .min()
                .expect("a job cut short ran again");
            Duration::from_micros(u64::try_from(again - killed_at).unwrap_or(u64::MAX))
        })
        .collect();
    latencies.sort();
    assert!(!latencies.is_empty(), "the kill cut no job short");
    let (median, max) = (
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    println!(
        "rescue latency at the defaults: {} jobs cut short, median {:.1} s, max {:.1} s",
        latencies.len(),
        median.as_secs_f64(),
        max.as_secs_f64()
    );
    assert!(
        max < Duration::from_secs(10),
        "a killed worker's job ran again only {max:?} after the kill:\n{}",
        db.logs()
    );
    signal(&workers.0[1], libc::SIGTERM);
    wait_exit(&mut workers.0[1], Duration::from_secs(30)).await;
    drop(workers);
    db.cleanup().await;
}

/// How many jobs a worker's log says finished.
fn finished_in_log(db: &TestDb, name: &str) -> usize {
    std::fs::read_to_string(db.dir.join(format!("{name}.log")))
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("job finished"))
        .count()
}

/// How many other sessions wait on a lock held by this one.
async fn blocked_by(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
    )
    .fetch_one(conn)
    .await
    .expect("list the sessions waiting on our lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_unwritten_outcomes_loses_no_job() {
    let Some(db) = TestDb::new("unwritten").await else {
        return;
    };
    const N: usize = 50;
    let fast = [
        "--jobs",
        "200",
        "--heartbeat-interval",
        "200ms",
        "--poll-interval",
        "100ms",
    ];
    let mut workers = Workers::default();
    workers.0.push(db.spawn_worker("first", &fast));
    wait_for(
        "the first worker to register",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { (db.queue.workers().await.unwrap().len() == 1).then_some(()) },
    )
    .await;
    let jobs: Vec<NewJob> = (0..N)
        .map(|_| {
            NewJob::new(
                "underling.sleep",
                json!({"ms": 1000}),
                EnqueueOptions::new().attempts(2),
            )
            .unwrap()
        })
        .collect();
    let ids = db.queue.enqueue_batch(&jobs).await.unwrap();
    wait_for(
        "every job to be claimed",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || async { (db.queue.stats().await.unwrap().active_jobs == N as u64).then_some(()) },
    )
    .await;

    // Hold the jobs' rows while they run (a second each): the worker's writes of their outcomes
    // wait on the lock, so that every outcome is still unwritten when the worker is killed.
    let Pool::Postgres(pool) = db.queue.pool() else {
        panic!("a PostgreSQL queue");
    };
    let mut lock = pool.begin().await.unwrap();
    let locked: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM underling_jobs WHERE state = 'active' ORDER BY id FOR UPDATE",
    )
    .fetch_all(&mut *lock)
    .await
    .unwrap();
    assert_eq!(locked, ids, "every job is active, under the lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while finished_in_log(&db, "first") < N || blocked_by(&mut lock).await == 0 {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for every job to finish in the worker, and a write of their \
             outcomes to wait on the lock:\n{}",
            db.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = db.queue.stats().await.unwrap();
    assert_eq!((stats.active_jobs, stats.finished_jobs), (N as u64, 0));

    signal(&workers.0[0], libc::SIGKILL);
    let status = wait_exit(&mut workers.0[0], Duration::from_secs(10)).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // The writes in flight die with the process. (PostgreSQL notices a vanished client only
    // when it next talks to it: left alone, a write waiting on the lock would still commit once
    // the lock is released, as if the process had lived a moment longer.)
    let _: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
    )
    .fetch_all(&mut *lock)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_by(&mut lock).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the killed worker's writes are still waiting"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lock.rollback().await.unwrap();
    let stats = db.queue.stats().await.unwrap();
    assert_eq!(
        (stats.active_jobs, stats.finished_jobs),
        (N as u64, 0),
        "no outcome of the killed worker was written"
    );
    assert_eq!(db.queue.workers().await.unwrap().len(), 1);

    // A fresh worker's repair takes the killed one for dead and rescues its jobs; they run
    // again once their retry delay (1 s) has passed.
    let mut rescuer = fast.to_vec();
    rescuer.extend(["--missing-after", "6s", "--repair-interval", "500ms"]);
    workers.0.push(db.spawn_worker("second", &rescuer));
    wait_for(
        "every job to finish",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let stats = db.queue.stats().await.unwrap();
            assert_eq!(stats.failed_jobs, 0, "jobs failed for good:\n{}", db.logs());
            (stats.finished_jobs == N as u64).then_some(())
        },
    )
    .await;
    for &id in &ids {
        let job = db.queue.job(id).await.unwrap().expect("job exists");
        assert_eq!(job.state, JobState::Finished, "job {id}");
        assert_eq!(job.retries, 1, "job {id} was rescued once");
        assert_eq!(job.result, Some(json!({"slept_ms": 1000})), "job {id}");
    }
    let stats = db.queue.stats().await.unwrap();
    assert_eq!(
        (
            stats.inactive_jobs,
            stats.active_jobs,
            stats.failed_jobs,
            stats.finished_jobs
        ),
        (0, 0, 0, N as u64)
    );
    assert_eq!(
        finished_in_log(&db, "first"),
        N,
        "each job ran once before the kill"
    );
    assert_eq!(finished_in_log(&db, "second"), N, "and once after it");

    signal(&workers.0[1], libc::SIGTERM);
    let status = wait_exit(&mut workers.0[1], Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}:\n{}", db.logs());
    assert!(db.queue.workers().await.unwrap().is_empty());
    drop(workers);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_jobs_finish_and_the_worker_exits_cleanly() {
    let Some(db) = TestDb::new("term").await else {
        return;
    };
    let mut workers = Workers::default();
    workers.0.push(db.spawn_worker(
        "worker",
        &[
            "--jobs",
            "4",
            "--heartbeat-interval",
            "200ms",
            "--poll-interval",
            "100ms",
        ],
    ));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            db.queue
                .enqueue(
                    "underling.sleep",
                    json!({"ms": 1000}),
                    EnqueueOptions::new(),
                )
                .await
                .unwrap(),
        );
    }
    wait_for(
        "the three jobs to run",
        Duration::from_secs(30),
        Duration::from_millis(10),
        || async { (db.queue.stats().await.unwrap().active_jobs == 3).then_some(()) },
    )
    .await;
    let term_at = i128::try_from(micros_now()).expect("micros fit i128");
    signal(&workers.0[0], libc::SIGTERM);
    let status = wait_exit(&mut workers.0[0], Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}:\n{}", db.logs());
    for id in ids {
        let job = db.queue.job(id).await.unwrap().expect("job exists");
        assert_eq!(job.state, JobState::Finished, "job {id}:\n{}", db.logs());
        assert_eq!(job.result, Some(json!({"slept_ms": 1000})));
        let finished = job.finished.expect("a finished job has a finished time");
        assert!(
            i128::from(finished.timestamp_micros()) > term_at,
            "job {id} was still running at SIGTERM"
        );
    }
    let stats = db.queue.stats().await.unwrap();
    assert_eq!((stats.active_jobs, stats.finished_jobs), (0, 3));
    assert!(
        db.queue.workers().await.unwrap().is_empty(),
        "the worker unregistered"
    );
    drop(workers);
    db.cleanup().await;
}

#[test]
fn list_tasks_prints_the_builtin_and_example_tasks() {
    let output = Command::new(WORKER)
        .arg("--list-tasks")
        .output()
        .expect("run underling-worker");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let tasks: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        tasks,
        [
            "example.add",
            "example.record",
            "underling.echo",
            "underling.fail",
            "underling.noop",
            "underling.sleep",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_runs_one_job_and_prints_it_as_json() {
    let Some(db) = TestDb::new("fg").await else {
        return;
    };
    let args = json!({"hello": "world", "n": [1, 2, 3]});
    let id = db
        .queue
        .enqueue("underling.echo", &args, EnqueueOptions::new())
        .await
        .unwrap();
    let other = db
        .queue
        .enqueue("underling.echo", json!({}), EnqueueOptions::new())
        .await
        .unwrap();
    let output = db.run_worker(&["--foreground", &id.to_string()]);
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(printed["id"], json!(id));
    assert_eq!(printed["task"], json!("underling.echo"));
    assert_eq!(printed["state"], json!("finished"));
    assert_eq!(printed["result"], args);
    let job = db.queue.job(id).await.unwrap().expect("job exists");
    assert_eq!(job.state, JobState::Finished);
    assert_eq!(
        serde_json::to_value(&job).unwrap()["finished"],
        printed["finished"]
    );
    let other = db.queue.job(other).await.unwrap().expect("job exists");
    assert_eq!(
        other.state,
        JobState::Inactive,
        "only the job asked for ran"
    );
    assert!(db.queue.workers().await.unwrap().is_empty());
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_of_a_delayed_job_fails_saying_why() {
    let Some(db) = TestDb::new("fgdelay").await else {
        return;
    };
    let id = db
        .queue
        .enqueue(
            "underling.echo",
            json!({}),
            EnqueueOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let delayed = db.queue.job(id).await.unwrap().expect("job exists").delayed;
    let output = db.run_worker(&["--foreground", &id.to_string()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    let reason = format!(
        "job {id} cannot be run now: it is delayed until {}",
        delayed.to_rfc3339()
    );
    assert!(stderr.contains(&reason), "{stderr}");
    let job = db.queue.job(id).await.unwrap().expect("job exists");
    assert_eq!(job.state, JobState::Inactive);
    db.cleanup().await;
}
