//! Which jobs a worker claims, and how many at once.

use std::time::Duration;

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::support::*;
use crate::tasks;

behaviours! {
    /// A worker publishes its tasks' enqueue defaults when it starts, so that enqueuers that
    /// do not link them (another `Queue` here) apply them.
    async fn a_worker_publishes_its_tasks_defaults_when_it_starts(t) {
        let queue = t.queue.clone();
        let mut registry = tasks::simple();
        registry.register(crate::behaviour::task_defaults::Mail).unwrap();
        let summary = run_burst(&queue, registry, 1).await;
        assert_eq!(summary.performed, 0);
        let published: Vec<_> = queue
            .tasks()
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.queue.is_some())
            .map(|d| (d.name, d.queue, d.priority, d.attempts))
            .collect();
        assert_eq!(published, vec![("test.mail".to_string(), Some("mail".to_string()), Some(5), Some(3))]);
        let elsewhere = underling::Queue::from_store(t.store.clone());
        let id = elsewhere.enqueue("test.mail", json!({}), EnqueueOptions::new()).await.unwrap();
        let job = job(&queue, id).await;
        assert_eq!((job.queue.as_str(), job.priority, job.attempts), ("mail", 5, 3));
    }

    async fn only_jobs_of_registered_tasks_are_claimed(t) {
        let queue = t.queue.clone();
        let unknown = queue.enqueue("test.unknown", json!({}), EnqueueOptions::new()).await.unwrap();
        let known = queue.enqueue("test.double", json!({"n": 1}), EnqueueOptions::new()).await.unwrap();
        let summary = run_burst(&queue, tasks::simple(), 4).await;
        assert_eq!(summary.performed, 1);
        assert_eq!(job(&queue, known).await.state, JobState::Finished);
        let unknown = job(&queue, unknown).await;
        assert_eq!(unknown.state, JobState::Inactive);
        assert_eq!(unknown.worker_id, None);
        assert_eq!(unknown.started, None);
    }

    async fn running_jobs_never_exceed_the_concurrency(t) {
        let queue = t.queue.clone();
        let (registry, gate, in_flight) = tasks::gated();
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap());
        }
        let worker = start(&queue, registry, burst_options(3));
        // Three jobs fill the worker; the other seven must wait although they are ready.
        wait_for("three jobs in flight", || async { (in_flight.now() == 3).then_some(()) }).await;
        let active = queue.stats().await.unwrap().active_jobs;
        assert_eq!(active, 3);
        gate.open();
        let summary = worker.join().await;
        assert_eq!(summary.finished, 10);
        assert_eq!(in_flight.max(), 3);
        for id in ids {
            assert_eq!(job(&queue, id).await.state, JobState::Finished);
        }
    }

    async fn a_burst_worker_exits_when_nothing_it_can_run_is_ready(t) {
        let queue = t.queue.clone();
        let mut ready = Vec::new();
        for n in 1..=3 {
            ready.push(queue.enqueue("test.double", json!({"n": n}), EnqueueOptions::new()).await.unwrap());
        }
        let later = queue
            .enqueue("test.double", json!({"n": 4}), EnqueueOptions::new().delay(Duration::from_secs(3600)))
            .await
            .unwrap();
        let summary = run_burst(&queue, tasks::simple(), 2).await;
        assert_eq!(summary.performed, 3);
        for id in ready {
            assert_eq!(job(&queue, id).await.state, JobState::Finished);
        }
        assert_eq!(job(&queue, later).await.state, JobState::Inactive);
        assert!(queue.workers().await.unwrap().is_empty(), "the worker unregistered");
    }

    async fn a_burst_worker_with_nothing_to_do_exits_at_once(t) {
        let queue = t.queue.clone();
        let summary = run_burst(&queue, tasks::simple(), 2).await;
        assert_eq!(summary.performed, 0);
        assert!(queue.workers().await.unwrap().is_empty());
    }
    async fn a_worker_without_job_slots_is_refused(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.double", json!({"n": 1}), EnqueueOptions::new()).await.unwrap();
        let err = underling::Worker::new(queue.clone(), tasks::simple(), burst_options(0))
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid option: the worker needs a concurrency of at least 1");
        assert_eq!(job(&queue, id).await.state, JobState::Inactive);
        assert!(queue.workers().await.unwrap().is_empty());
    }

    /// A worker that loses the database stops its jobs three heartbeats after its last one,
    /// and they may take their stop grace to return: all before `missing_after`, with a
    /// heartbeat to spare. (Here 20 s leaves no room for `test.double`'s 2 s stop grace.)
    async fn a_worker_whose_missing_after_leaves_no_time_to_stop_its_jobs_is_refused(t) {
        let queue = t.queue.clone();
        let options = underling::WorkerOptions {
            heartbeat_interval: std::time::Duration::from_secs(5),
            repair: underling::RepairOptions {
                missing_after: std::time::Duration::from_secs(20),
                ..underling::RepairOptions::default()
            },
            ..burst_options(1)
        };
        let err = underling::Worker::new(queue.clone(), tasks::simple(), options)
            .run()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid option: missing_after (20s) is too short: a worker that loses the database \
             stops its jobs 3 heartbeat intervals after its last heartbeat, and they must have \
             ended a heartbeat interval before others may rescue them, so missing_after must be \
             at least 4 heartbeat intervals (20s) plus the longest stop grace of its tasks (2s, \
             \"test.double\"): raise missing_after to 22s or more, or lower the heartbeat \
             interval or the task's stop grace"
        );
        assert!(queue.workers().await.unwrap().is_empty(), "nothing was registered");
    }

    async fn a_worker_without_tasks_is_refused(t) {
        let queue = t.queue.clone();
        let err = underling::Worker::new(queue.clone(), underling::Registry::new(), burst_options(1))
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, underling::Error::NoTasks), "{err:?}");
        assert!(queue.workers().await.unwrap().is_empty());
    }
}
