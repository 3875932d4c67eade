//! A worker started while the database cannot be reached waits for it (logging at warn and
//! trying again with backoff) instead of exiting, and a SIGTERM meanwhile stops it cleanly.

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::harness::proxy::Proxy;
use crate::harness::*;

/// A port on loopback that nothing listens on (until a test starts a proxy there).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until the worker's log says it cannot reach the database.
async fn waiting(db: &TestDb, name: &str) {
    wait_for(
        "the worker to log that it cannot reach the database",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async {
            db.log(name)
                .contains("cannot reach the database yet")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_the_database_is_reachable_waits_and_then_runs_jobs() {
    let Some(db) = TestDb::new("unreach").await else {
        return;
    };
    let id = db
        .queue
        .enqueue("underling.echo", json!({"n": 1}), EnqueueOptions::new())
        .await
        .unwrap();
    let port = free_port();
    let mut workers = Workers::default();
    workers.0.push(db.spawn_worker_at(
        &db.url_at_port(port),
        "waiting",
        &["--poll-interval", "100ms"],
    ));
    waiting(&db, "waiting").await;
    assert!(
        workers.0[0]
            .try_wait()
            .expect("the worker's status")
            .is_none(),
        "the worker exited instead of waiting:\n{}",
        db.logs()
    );
    let _proxy = Proxy::start_at(&format!("127.0.0.1:{port}"), &db.upstream())
        .await
        .expect("start the proxy where the worker looks");
    wait_for(
        "the job to finish",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async {
            let job = db.queue.job(id).await.unwrap().expect("job exists");
            (job.state == JobState::Finished).then_some(())
        },
    )
    .await;
    signal(&workers.0[0], libc::SIGTERM);
    let status = wait_exit(&mut workers.0[0], Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}:\n{}", db.logs());
    drop(workers);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_waiting_for_the_database_exits_cleanly_on_sigterm() {
    let Some(db) = TestDb::new("unreach_term").await else {
        return;
    };
    let mut workers = Workers::default();
    workers
        .0
        .push(db.spawn_worker_at(&db.url_at_port(free_port()), "waiting", &[]));
    waiting(&db, "waiting").await;
    signal(&workers.0[0], libc::SIGTERM);
    let status = wait_exit(&mut workers.0[0], Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "{}", db.logs());
    assert!(
        db.log("waiting")
            .contains("stopped before the database could be reached"),
        "{}",
        db.logs()
    );
    drop(workers);
    db.cleanup().await;
}
