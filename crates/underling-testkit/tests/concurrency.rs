//! Many claimers at once: every job is handed out exactly once (plain tests: PostgreSQL and a
//! SQLite file with a pool of four, each sized for its backend; SQLite in memory has one
//! connection).

use std::collections::HashSet;

use serde_json::json;
use underling::store::{Claim, Cycle, RegisterWorker};
use underling::{
    ConnectOptions, EnqueueOptions, JobFilter, JobState, NewJob, Outcome, Queue, Settle, Settled,
};
use underling_testkit::{self as common, TempSqlite, TestStore};

/// A migrated store on a SQLite file with a pool of four.
async fn sqlite_file(file: &TempSqlite) -> TestStore {
    let opts = ConnectOptions::new(file.url())
        .max_connections(4)
        .migrate(true);
    let store = underling::store::open(&opts)
        .await
        .expect("SQLite file opens");
    store.migrate().await.expect("SQLite file migrates");
    TestStore::new(store)
}

/// Enqueues `total` jobs in batches, then lets `claimers` tasks claim batches of `batch` and
/// finish them until nothing is left. Checks that every job was claimed and finished once.
async fn claim_concurrently(t: &TestStore, total: usize, claimers: usize, batch: usize) {
    let queue = &t.queue;
    let mut all = Vec::with_capacity(total);
    for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
        let jobs: Vec<NewJob> = chunk
            .iter()
            .map(|i| NewJob::new("work", json!({"i": i}), EnqueueOptions::new()).unwrap())
            .collect();
        all.extend(queue.enqueue_batch(&jobs).await.unwrap());
    }
    assert_eq!(all.len(), total);

    let mut handles = Vec::new();
    for _ in 0..claimers {
        let store = t.store.clone();
        handles.push(tokio::spawn(async move {
            let w = store
                .register_worker(RegisterWorker {
                    host: "test-host",
                    pid: 1,
                    status: &json!({}),
                    now: None,
                })
                .await
                .unwrap();
            let spec = common::support::spec(&["default"]);
            let mut mine = Vec::new();
            loop {
                let jobs = claim(&*store, w, &spec, batch).await;
                if jobs.is_empty() {
                    break;
                }
                let settles: Vec<Settle> = jobs
                    .iter()
                    .map(|j| Settle {
                        id: j.id,
                        retries: j.retries,
                        outcome: Outcome::Finished(json!(w)),
                    })
                    .collect();
                let done = store
                    .cycle(Cycle {
                        settles: &settles,
                        claim: None,
                        now: None,
                    })
                    .await
                    .unwrap()
                    .settled;
                assert!(done.iter().all(|s| *s == Settled::Finished), "{done:?}");
                mine.extend(jobs.iter().map(|j| j.id));
            }
            mine
        }));
    }
    let mut claimed = Vec::with_capacity(total);
    for handle in handles {
        claimed.extend(handle.await.unwrap());
    }
    let unique: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(unique.len(), claimed.len(), "a job was claimed twice");
    assert_eq!(claimed.len(), total);
    assert_eq!(unique, all.iter().copied().collect::<HashSet<i64>>());
    let finished = JobFilter {
        states: vec![JobState::Finished],
        ..Default::default()
    };
    assert_eq!(
        queue.list_jobs(&finished, 1, 0).await.unwrap().total,
        total as u64
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.inactive_jobs, stats.active_jobs, stats.finished_jobs),
        (0, 0, total as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_claimers_claim_every_job_exactly_once() {
    let Some(db) = common::postgres().await else {
        return;
    };
    claim_concurrently(&db, 5_000, 8, 50).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_concurrent_claimers_claim_every_job_exactly_once() {
    let file = TempSqlite::new("concurrency");
    let db = sqlite_file(&file).await;
    claim_concurrently(&db, 1_000, 4, 25).await;
    db.cleanup().await;
}

/// Producers enqueue while consumers claim: still every job exactly once.
async fn claim_while_enqueueing(
    t: &TestStore,
    producers: usize,
    per_producer: usize,
    claimers: usize,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let queue = &t.queue;
    let producing = Arc::new(AtomicUsize::new(producers));
    let mut producer_handles = Vec::new();
    for p in 0..producers {
        let queue = queue.clone();
        let producing = producing.clone();
        producer_handles.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(per_producer);
            for chunk in (0..per_producer).collect::<Vec<_>>().chunks(100) {
                if chunk[0] % 200 == 0 {
                    // Every other chunk one job at a time, the rest as a batch.
                    for i in chunk {
                        ids.push(
                            queue
                                .enqueue(
                                    "work",
                                    json!({"p": p, "i": i}),
                                    EnqueueOptions::new().priority(*i as i32 % 3),
                                )
                                .await
                                .unwrap(),
                        );
                    }
                } else {
                    let jobs: Vec<NewJob> = chunk
                        .iter()
                        .map(|i| {
                            NewJob::new("work", json!({"p": p, "i": i}), EnqueueOptions::new())
                                .unwrap()
                        })
                        .collect();
                    ids.extend(queue.enqueue_batch(&jobs).await.unwrap());
                }
            }
            producing.fetch_sub(1, Ordering::SeqCst);
            ids
        }));
    }
    let mut claimer_handles = Vec::new();
    for _ in 0..claimers {
        let store = t.store.clone();
        let producing = producing.clone();
        claimer_handles.push(tokio::spawn(async move {
            let w = store
                .register_worker(RegisterWorker {
                    host: "test-host",
                    pid: 1,
                    status: &json!({}),
                    now: None,
                })
                .await
                .unwrap();
            let spec = common::support::spec(&["default"]);
            let mut mine = Vec::new();
            loop {
                let done_producing = producing.load(Ordering::SeqCst) == 0;
                let jobs = claim(&*store, w, &spec, 20).await;
                if jobs.is_empty() {
                    if done_producing {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                let settles: Vec<Settle> = jobs
                    .iter()
                    .map(|j| Settle {
                        id: j.id,
                        retries: j.retries,
                        outcome: Outcome::Finished(json!(null)),
                    })
                    .collect();
                let done = store
                    .cycle(Cycle {
                        settles: &settles,
                        claim: None,
                        now: None,
                    })
                    .await
                    .unwrap()
                    .settled;
                assert!(done.iter().all(|s| *s == Settled::Finished), "{done:?}");
                mine.extend(jobs.iter().map(|j| j.id));
            }
            mine
        }));
    }
    let mut enqueued = HashSet::new();
    for handle in producer_handles {
        for id in handle.await.unwrap() {
            assert!(enqueued.insert(id), "id {id} handed out twice");
        }
    }
    let mut claimed = Vec::new();
    for handle in claimer_handles {
        claimed.extend(handle.await.unwrap());
    }
    let total = producers * per_producer;
    assert_eq!(enqueued.len(), total);
    let unique: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(unique.len(), claimed.len(), "a job was claimed twice");
    assert_eq!(unique, enqueued);
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.inactive_jobs, stats.active_jobs, stats.finished_jobs),
        (0, 0, total as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claimers_racing_producers_claim_every_job_exactly_once() {
    let Some(db) = common::postgres().await else {
        return;
    };
    claim_while_enqueueing(&db, 4, 1_000, 8).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_claimers_racing_producers_claim_every_job_exactly_once() {
    let file = TempSqlite::new("racing");
    let db = sqlite_file(&file).await;
    claim_while_enqueueing(&db, 2, 300, 4).await;
    db.cleanup().await;
}

/// `tries` tasks try to take a lock with `limit` holds at once: exactly `limit` succeed.
async fn lock_under_contention(queue: &Queue, tries: usize, limit: u32) {
    let mut handles = Vec::new();
    for _ in 0..tries {
        let queue = queue.clone();
        handles.push(tokio::spawn(async move {
            queue
                .lock("contended", std::time::Duration::from_secs(60), limit)
                .await
                .unwrap()
        }));
    }
    let mut taken = 0;
    for handle in handles {
        if handle.await.unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, limit as usize);
    assert_eq!(queue.locks(&[]).await.unwrap().len(), limit as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_lock_limit_is_exact_under_contention() {
    let Some(db) = common::postgres().await else {
        return;
    };
    lock_under_contention(&db.queue, 40, 3).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_lock_limit_is_exact_under_contention() {
    let file = TempSqlite::new("locks");
    let db = sqlite_file(&file).await;
    lock_under_contention(&db.queue, 40, 3).await;
    db.cleanup().await;
}

/// Claims up to `limit` jobs for `worker`, settling nothing.
async fn claim(
    store: &dyn underling::Store,
    worker: i64,
    spec: &underling::ClaimSpec,
    limit: usize,
) -> Vec<underling::Job> {
    store
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
        .unwrap()
        .claimed
}

/// `enqueuers` tasks enqueue a job with one unique key at the same moment: exactly one job is
/// inserted, and every enqueuer gets its id (one as new, the others as duplicates).
async fn enqueue_one_key_concurrently(t: &TestStore, enqueuers: usize) {
    use std::sync::Arc;
    use underling::Unique;

    let barrier = Arc::new(tokio::sync::Barrier::new(enqueuers));
    let mut handles = Vec::new();
    for i in 0..enqueuers {
        let queue = t.queue.clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            queue
                .submit(
                    "work",
                    json!({"i": i}),
                    EnqueueOptions::new().unique(Unique::key("the-one")),
                )
                .await
                .unwrap()
        }));
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    let ids: HashSet<i64> = results.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 1, "every enqueuer got the same id: {results:?}");
    assert_eq!(
        results.iter().filter(|e| !e.duplicate).count(),
        1,
        "{results:?}"
    );
    let all = t
        .queue
        .list_jobs(&JobFilter::default(), 100, 0)
        .await
        .unwrap();
    assert_eq!(all.total, 1);
    assert_eq!(all.jobs[0].id, results[0].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_16_concurrent_enqueuers_of_one_unique_key_insert_exactly_one_job() {
    let Some(db) = common::postgres().await else {
        return;
    };
    for round in 0..20 {
        // A fresh key each round would hide nothing: the same key, cleared between rounds.
        enqueue_one_key_concurrently(&db, 16).await;
        let removed = db
            .queue
            .purge_batch(&JobFilter::default(), 1000)
            .await
            .unwrap();
        assert_eq!(removed, 1, "round {round}");
    }
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_16_concurrent_enqueuers_of_one_unique_key_insert_exactly_one_job() {
    let file = TempSqlite::new("unique");
    let db = sqlite_file(&file).await;
    enqueue_one_key_concurrently(&db, 16).await;
    db.cleanup().await;
}
