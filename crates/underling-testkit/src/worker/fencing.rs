//! A worker that cannot heartbeat fences itself: once no heartbeat got through for
//! `missing_after − heartbeat_interval − the longest stop grace`, it claims nothing and stops
//! its running jobs, which have all ended before anyone may take it for dead. A worker that
//! finds itself removed kills its jobs (they may run elsewhere already) and registers again
//! only once none of them runs.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;
use underling::{EnqueueOptions, JobState, Queue, RepairOptions, WorkerOptions};

use crate::held::{Beats, Heartbeats, HeldStore};
use crate::support::*;
use crate::tasks;

/// Taken for dead after 1.5 s. With heartbeats every 100 ms and `test.gated`'s stop grace of
/// 100 ms, the lease lasts 1.3 s after a heartbeat was sent, and jobs have ended by 1.4 s.
const MISSING_AFTER: Duration = Duration::from_millis(1500);
const LEASE: Duration = Duration::from_millis(1300);

fn options(concurrency: usize) -> WorkerOptions {
    let options = fast_options(concurrency);
    assert_eq!(options.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(tasks::TEST_STOP_GRACE, Duration::from_millis(100));
    WorkerOptions {
        repair: RepairOptions {
            missing_after: MISSING_AFTER,
            ..RepairOptions::default()
        },
        ..options
    }
}

fn millis(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).expect("a short duration")
}

/// The only registered worker: its id, and its last heartbeat once heartbeats stopped getting
/// through (after a moment, so that one under way has come back).
async fn last_heartbeat(queue: &Queue) -> (i64, DateTime<Utc>) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let workers = queue.workers().await.unwrap();
    assert_eq!(workers.len(), 1, "{workers:?}");
    (workers[0].id, workers[0].last_heartbeat)
}

/// Two running jobs of a worker whose heartbeats start to do as `beats` says: both are stopped
/// and fail saying why, and their tasks (which ignore the stop) are dropped after their stop
/// grace, once the lease ran out and before `missing_after`.
async fn jobs_end_before_missing_after(
    queue: &Queue,
    worker_queue: &Queue,
    beats: &Heartbeats,
    cut: Beats,
) {
    let (registry, _gate, in_flight) = tasks::gated();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(enqueue_with(queue, "test.gated", EnqueueOptions::new().attempts(1)).await);
    }
    let worker = start(worker_queue, registry, options(2));
    wait_for("both jobs to start", || async {
        (in_flight.started() == 2).then_some(())
    })
    .await;
    beats.set(cut);
    let (_, last) = last_heartbeat(queue).await;
    for &id in &ids {
        let job = wait_for_state(queue, id, JobState::Failed).await;
        assert_eq!(
            job.result,
            Some(json!("Worker lost the database; job stopped")),
            "job {id}"
        );
    }
    let ends = in_flight.ends();
    assert_eq!((in_flight.now(), ends.len()), (0, 2));
    for end in ends {
        let after = end - last;
        assert!(
            after < millis(MISSING_AFTER),
            "a job ended {after} after the last heartbeat"
        );
        // Not before the lease ran out (it counts from when the heartbeat was sent, a moment
        // before the database recorded it).
        assert!(
            after >= millis(LEASE - Duration::from_millis(100)),
            "a job ended {after} after the last heartbeat"
        );
    }
    worker.control.stop();
    let summary = worker.join().await;
    assert_eq!((summary.performed, summary.failed), (2, 2));
}

behaviours! {
    async fn a_worker_whose_heartbeats_hang_stops_its_jobs_before_missing_after(t) {
        let beats = Heartbeats::new();
        let worker_queue = HeldStore::queue_with_heartbeats(&t.store, &beats);
        jobs_end_before_missing_after(&t.queue, &worker_queue, &beats, Beats::Hang).await;
    }

    async fn a_worker_whose_heartbeats_fail_stops_its_jobs_before_missing_after(t) {
        let beats = Heartbeats::new();
        let worker_queue = HeldStore::queue_with_heartbeats(&t.store, &beats);
        jobs_end_before_missing_after(&t.queue, &worker_queue, &beats, Beats::Fail).await;
    }

    async fn a_fenced_worker_claims_nothing_until_a_heartbeat_gets_through(t) {
        let queue = t.queue.clone();
        let beats = Heartbeats::new();
        let worker_queue = HeldStore::queue_with_heartbeats(&t.store, &beats);
        let (registry, gate, in_flight) = tasks::gated();
        let worker = start(&worker_queue, registry, options(2));
        wait_for("the worker to register", || async {
            (queue.workers().await.unwrap().len() == 1).then_some(())
        })
        .await;
        beats.set(Beats::Hang);
        let (worker_id, last) = last_heartbeat(&queue).await;
        // Well after the lease ran out, a job arrives: a worker that claims every 50 ms leaves
        // it alone for half a second.
        let fenced = last + millis(LEASE + Duration::from_millis(200));
        tokio::time::sleep((fenced - Utc::now()).to_std().unwrap_or_default()).await;
        let id = enqueue(&queue, "test.gated").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(state(&queue, id).await, JobState::Inactive);
        assert_eq!(in_flight.started(), 0);

        // Heartbeats get through again, and the worker's row is still there: it goes on, under
        // the same id.
        beats.set(Beats::Through);
        let job = wait_for_state(&queue, id, JobState::Active).await;
        assert_eq!(job.worker_id, Some(worker_id));
        gate.open();
        let job = wait_for_state(&queue, id, JobState::Finished).await;
        assert_eq!(job.result, Some(json!("passed")));
        let workers = queue.workers().await.unwrap();
        assert_eq!(workers.iter().map(|w| w.id).collect::<Vec<_>>(), vec![worker_id]);
        worker.control.stop();
        worker.join().await;
    }

    async fn a_removed_worker_kills_its_jobs_and_registers_again_only_once_they_ended(t) {
        let queue = t.queue.clone();
        let (registry, gate, in_flight) = tasks::gated();
        let first = enqueue_with(&queue, "test.gated", EnqueueOptions::new().attempts(1)).await;
        let worker = start(&queue, registry, options(1));
        wait_for("the first job to start", || async { (in_flight.started() == 1).then_some(()) }).await;
        let second = enqueue(&queue, "test.gated").await;
        let old = queue.workers().await.unwrap()[0].id;
        assert_eq!(job(&queue, first).await.worker_id, Some(old));

        // Removed as a repair elsewhere would: its job may be handed to another worker now.
        t.store.unregister_worker(old).await.unwrap();
        let killed = wait_for_state(&queue, first, JobState::Failed).await;
        assert_eq!(killed.result, Some(json!("Worker was removed while the job ran; job killed")));
        let renewed = wait_for("the worker to register again", || async {
            queue.workers().await.unwrap().pop()
        })
        .await;
        assert_ne!(renewed.id, old);
        // SQLite keeps milliseconds.
        let ended: Vec<DateTime<Utc>> = in_flight.ends().iter().map(|end| end.trunc_subsecs(3)).collect();
        assert_eq!(ended.len(), 1, "the first job's task was dropped");
        assert!(renewed.started >= ended[0], "registered again at {} while the job ran until {}", renewed.started, ended[0]);

        // Under its new id, it claims and runs the job that waited.
        let next = wait_for_state(&queue, second, JobState::Active).await;
        assert_eq!(next.worker_id, Some(renewed.id));
        assert!(next.started.expect("an active job has started") >= ended[0]);
        gate.open();
        wait_for_state(&queue, second, JobState::Finished).await;
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!((summary.worker_id, summary.performed, summary.failed), (renewed.id, 2, 1));
    }
}
