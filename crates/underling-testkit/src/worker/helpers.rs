//! `perform_jobs` (for application tests) and foreground runs (for debugging).

use serde_json::json;
use underling::{EnqueueOptions, Error, JobState, RepairOptions, Settled, Worker, perform_jobs};

use crate::support::*;
use crate::tasks;

behaviours! {
    async fn perform_jobs_runs_every_ready_job_including_released_children(t) {
        let queue = t.queue.clone();
        let parent = queue.enqueue("test.double", json!({"n": 1}), EnqueueOptions::new()).await.unwrap();
        let child = queue
            .enqueue("test.double", json!({"n": 2}), EnqueueOptions::new().parent(parent))
            .await
            .unwrap();
        let grandchild = queue
            .enqueue("test.double", json!({"n": 3}), EnqueueOptions::new().queue("other").parent(child))
            .await
            .unwrap();
        let elsewhere = queue
            .enqueue("test.double", json!({"n": 4}), EnqueueOptions::new().queue("elsewhere"))
            .await
            .unwrap();
        let ran = perform_jobs(&queue, &tasks::simple(), &[]).await.unwrap();
        assert_eq!(ran, 4);
        for (id, doubled) in [(parent, 2), (child, 4), (grandchild, 6), (elsewhere, 8)] {
            let job = job(&queue, id).await;
            assert_eq!(job.state, JobState::Finished, "job {id}");
            assert_eq!(job.result, Some(json!({"doubled": doubled})));
        }
        let (parent, child) = (job(&queue, parent).await, job(&queue, child).await);
        assert!(child.started >= parent.finished, "the child ran after its parent");
        assert!(queue.workers().await.unwrap().is_empty());
    }

    async fn perform_jobs_leaves_other_queues_alone(t) {
        let queue = t.queue.clone();
        let mine = queue.enqueue("test.double", json!({"n": 1}), EnqueueOptions::new().queue("mine")).await.unwrap();
        let theirs = queue.enqueue("test.double", json!({"n": 1}), EnqueueOptions::new()).await.unwrap();
        let ran = perform_jobs(&queue, &tasks::simple(), &["mine".to_string()]).await.unwrap();
        assert_eq!(ran, 1);
        assert_eq!(job(&queue, mine).await.state, JobState::Finished);
        assert_eq!(job(&queue, theirs).await.state, JobState::Inactive);
    }

    async fn run_foreground_runs_one_job_and_settles_it(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.double", json!({"n": 5}), EnqueueOptions::new()).await.unwrap();
        let other = queue.enqueue("test.double", json!({"n": 6}), EnqueueOptions::new()).await.unwrap();
        let worker = Worker::new(queue.clone(), tasks::simple(), fast_options(1));
        let run = worker.run_foreground(id).await.unwrap();
        assert_eq!(run.settled, Settled::Finished);
        assert_eq!(run.job.id, id);
        assert_eq!(run.job.state, JobState::Finished);
        assert_eq!(run.job.result, Some(json!({"doubled": 10})));
        assert_eq!(run.job, job(&queue, id).await);
        assert_eq!(job(&queue, other).await.state, JobState::Inactive);
        assert!(queue.workers().await.unwrap().is_empty(), "the foreground worker unregistered");
    }

    async fn run_foreground_of_a_delayed_job_says_it_is_not_ready(t) {
        let queue = t.queue.clone();
        let id = queue
            .enqueue("test.double", json!({"n": 5}), EnqueueOptions::new().delay(std::time::Duration::from_secs(3600)))
            .await
            .unwrap();
        let before = job(&queue, id).await;
        let worker = Worker::new(queue.clone(), tasks::simple(), fast_options(1));
        let err = worker.run_foreground(id).await.unwrap_err();
        let expected = format!("it is delayed until {}", before.delayed.to_rfc3339());
        match &err {
            Error::NotReady { id: got, reason } => {
                assert_eq!(*got, id);
                assert_eq!(reason, &expected);
            }
            other => panic!("expected NotReady, got {other:?}"),
        }
        assert_eq!(err.to_string(), format!("job {id} cannot be run now: {expected}"));
        assert_eq!(job(&queue, id).await, before, "the job is unchanged");
        assert!(queue.workers().await.unwrap().is_empty());
    }

    async fn run_foreground_of_a_task_the_worker_lacks_says_so(t) {
        let queue = t.queue.clone();
        let id = queue.enqueue("test.unknown", json!({}), EnqueueOptions::new()).await.unwrap();
        let worker = Worker::new(queue.clone(), tasks::simple(), fast_options(1));
        let err = worker.run_foreground(id).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("job {id} cannot be run now: this worker has no task named \"test.unknown\"")
        );
        assert_eq!(job(&queue, id).await.state, JobState::Inactive);
    }

    async fn a_foreground_run_heartbeats_so_that_repair_leaves_its_job_alone(t) {
        let queue = t.queue.clone();
        let (registry, gate, in_flight) = tasks::gated();
        let id = queue.enqueue("test.gated", json!({}), EnqueueOptions::new()).await.unwrap();
        let worker = Worker::new(queue.clone(), registry, fast_options(1));
        let run = tokio::spawn(async move { worker.run_foreground(id).await });
        wait_for("the job to start", || async { (in_flight.started() == 1).then_some(()) }).await;
        // Let the job run longer than repair's `missing_after` below, heartbeating meanwhile.
        let missing_after = std::time::Duration::from_millis(500);
        wait_for("a heartbeat well after the start", || async {
            let w = queue.workers().await.unwrap().remove(0);
            (w.last_heartbeat - w.started > chrono::Duration::milliseconds(600)).then_some(())
        })
        .await;
        let report = queue
            .repair(&RepairOptions { missing_after, ..RepairOptions::default() })
            .await
            .unwrap();
        assert_eq!((report.missing_workers, report.abandoned_jobs), (0, 0));
        gate.open();
        let run = run.await.unwrap().unwrap();
        assert_eq!(run.settled, Settled::Finished);
        assert_eq!(run.job.state, JobState::Finished);
        assert_eq!(run.job.retries, 0);
        assert!(queue.workers().await.unwrap().is_empty());
    }

    async fn run_foreground_of_an_expired_job_says_it_is_not_found(t) {
        let queue = t.queue.clone();
        let id = queue
            .enqueue("test.double", json!({"n": 1}), EnqueueOptions::new().expire(std::time::Duration::from_millis(1)))
            .await
            .unwrap();
        tick().await;
        let worker = Worker::new(queue.clone(), tasks::simple(), fast_options(1));
        let err = worker.run_foreground(id).await.unwrap_err();
        assert!(matches!(err, Error::JobNotFound(got) if got == id), "{err:?}");
        assert!(queue.workers().await.unwrap().is_empty(), "no worker was registered");
    }
}
