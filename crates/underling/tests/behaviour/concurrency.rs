//! Many claimers at once: every job is handed out exactly once.

use std::collections::HashSet;

use serde_json::json;
use underling::{
    ConnectOptions, EnqueueOptions, JobFilter, JobState, NewJob, Outcome, Queue, Settle, Settled,
};

use crate::common;
use crate::transactions::TempSqlite;

/// Enqueues `total` jobs in batches, then lets `claimers` tasks claim batches of `batch` and
/// finish them until nothing is left. Checks that every job was claimed and finished once.
async fn claim_concurrently(queue: &Queue, total: usize, claimers: usize, batch: usize) {
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
        let backend = queue.backend().clone();
        handles.push(tokio::spawn(async move {
            let w = backend
                .register_worker("test-host", 1, &json!({}))
                .await
                .unwrap();
            let spec = common::spec(&["default"]);
            let mut mine = Vec::new();
            loop {
                let jobs = backend.claim(w, &spec, batch).await.unwrap();
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
                let done = backend.settle(&settles).await.unwrap();
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
    claim_concurrently(&db.queue, 5_000, 8, 50).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_concurrent_claimers_claim_every_job_exactly_once() {
    let file = TempSqlite::new("concurrency");
    let queue = Queue::connect_with(
        ConnectOptions::new(file.url())
            .max_connections(4)
            .migrate(true),
    )
    .await
    .expect("SQLite file opens");
    claim_concurrently(&queue, 1_000, 4, 25).await;
    queue.close().await;
}
