//! A worker whose connection to PostgreSQL freezes, through a proxy the test starts.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState, NewJob, Pool};

use crate::harness::proxy::Proxy;
use crate::harness::*;

/// A worker whose connection to the database freezes (half-open: nothing is relayed either
/// way, nothing is closed) for longer than `missing_after` stops its jobs before a second
/// worker rescues and runs them: no job runs in two places at once, none is lost, and the
/// frozen worker lives on and registers again once its connection thaws.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_connection_freezes_stops_its_jobs_before_they_are_rescued() {
    let Some(db) = TestDb::new("freeze").await else {
        return;
    };
    const N: usize = 16;
    let record = db.dir.join("record.txt");
    // Taken for dead after 7 s: four heartbeats (800 ms) and the tasks' stop grace (5 s), with
    // a heartbeat to spare. So a worker whose heartbeats fail stops its jobs 1.8 s after the
    // last that got through, and drops them (they ignore the stop) 5 s later.
    let args = [
        "--jobs",
        "16",
        "--heartbeat-interval",
        "200ms",
        "--missing-after",
        "7s",
        "--repair-interval",
        "1s",
        "--poll-interval",
        "100ms",
    ];
    let proxy = Proxy::start(&db.upstream()).await.expect("start the proxy");
    let proxied = db.url_at_port(proxy.port());
    let mut workers = Workers::default();
    workers
        .0
        .push(db.spawn_worker_at(&proxied, "frozen", &args));
    let frozen_pid = workers.0[0].id();
    let first_id = wait_for(
        "the first worker to register",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { db.queue.workers().await.unwrap().first().map(|w| w.id) },
    )
    .await;

    // Jobs that run 12 s: without a fence they would still run on the frozen worker when the
    // second one runs them again.
    let file = record.to_str().expect("utf-8 temp path");
    let jobs: Vec<NewJob> = (0..N)
        .map(|_| {
            NewJob::new(
                "example.record",
                json!({"file": file, "ms": 12_000}),
                EnqueueOptions::new().attempts(2),
            )
            .unwrap()
        })
        .collect();
    let ids = db.queue.enqueue_batch(&jobs).await.unwrap();
    wait_for(
        "every job to start on the first worker",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { (executions(&record).len() == N).then_some(()) },
    )
    .await;

    proxy.freeze();
    let frozen_at = micros_now();
    workers.0.push(db.spawn_worker("rescuer", &args));
    let rescuer_pid = workers.0[1].id();
    // The second worker's repair takes the frozen one for dead and rescues its jobs. They
    // would run again after their backoff (15 s); the test makes them due at once.
    wait_for(
        "the jobs to be rescued",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { (db.queue.stats().await.unwrap().inactive_jobs == N as u64).then_some(()) },
    )
    .await;
    let rescued_at = micros_now();
    let Pool::Postgres(pool) = db.queue.pool() else {
        panic!("a PostgreSQL queue");
    };
    sqlx::query("UPDATE underling_jobs SET delayed = now() WHERE state = 'inactive'")
        .execute(&pool)
        .await
        .unwrap();
    wait_for(
        "every job to start again on the second worker",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async {
            let runs = executions(&record);
            let again = runs
                .values()
                .filter(|list| list.iter().any(|e| e.pid == rescuer_pid))
                .count();
            (again == N).then_some(())
        },
    )
    .await;

    // The freeze outlasts missing_after (7 s) by construction: the rescue may come sooner
    // after the freeze than that, since the worker's last heartbeat that got through may
    // precede the freeze by a few hundred ms on a loaded machine.
    let frozen_for = Duration::from_micros(u64::try_from(micros_now() - frozen_at).unwrap_or(0));
    if let Some(rest) = Duration::from_millis(7_500).checked_sub(frozen_for) {
        tokio::time::sleep(rest).await;
    }
    // The connection thaws: the first worker finds itself removed and registers again, with
    // nothing left to run.
    proxy.thaw();
    wait_for(
        "the first worker to register again",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let workers = db.queue.workers().await.unwrap();
            workers
                .iter()
                .any(|w| w.pid == frozen_pid as i32 && w.id != first_id)
                .then_some(())
        },
    )
    .await;
    assert!(
        workers.0[0].try_wait().expect("try_wait").is_none(),
        "the frozen worker exited:\n{}",
        db.logs()
    );
    wait_for(
        "every job to finish",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let stats = db.queue.stats().await.unwrap();
            (stats.finished_jobs == N as u64).then_some(())
        },
    )
    .await;
    for child in &workers.0 {
        signal(child, libc::SIGTERM);
    }
    for child in &mut workers.0 {
        let status = wait_exit(child, Duration::from_secs(30)).await;
        assert!(status.success(), "exit status {status}:\n{}", db.logs());
    }

    // Each job ran twice, to its end: first on the frozen worker, which ended it before the
    // rescue, then on the second worker.
    let runs = executions(&record);
    assert_eq!(
        runs.keys().copied().collect::<BTreeSet<i64>>(),
        ids.iter().copied().collect()
    );
    for (job, list) in &runs {
        let pids: Vec<u32> = list.iter().map(|e| e.pid).collect();
        assert_eq!(pids, [frozen_pid, rescuer_pid], "job {job}: {list:?}");
        let (first, again) = (&list[0], &list[1]);
        let first_end = first
            .end
            .unwrap_or_else(|| panic!("job {job}: no end on the frozen worker"));
        assert!(
            first_end > frozen_at,
            "job {job} ended before the freeze: {list:?}"
        );
        assert!(
            first_end < rescued_at,
            "job {job} ran on after the rescue: {list:?}"
        );
        assert!(
            first_end <= again.start,
            "job {job} ran twice at once: {list:?}"
        );
        assert!(again.end.is_some(), "job {job} never ended again: {list:?}");
    }
    for &id in &ids {
        let job = db.queue.job(id).await.unwrap().expect("job exists");
        assert_eq!(
            (job.state, job.retries),
            (JobState::Finished, 1),
            "job {id}"
        );
    }
    let log = std::fs::read_to_string(db.dir.join("frozen.log")).unwrap_or_default();
    assert!(
        log.contains("no heartbeat got through in time"),
        "the frozen worker did not say it fenced itself:\n{log}"
    );
    drop(workers);
    drop(proxy);
    db.cleanup().await;
}
