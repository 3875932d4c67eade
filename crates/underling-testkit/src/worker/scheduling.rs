//! The worker's scheduler: schedules defined in code ([`underling::Worker::schedule`]) are
//! reconciled with the stored ones when the worker starts, and its scheduler fires the ticks
//! the (injected) clock reaches.

use std::time::Duration;

use underling::{Schedule, Worker, WorkerOptions};

use crate::behaviour::schedules::{at, clocked, stored, ticks};
use crate::support::*;
use crate::tasks;

behaviours! {
    async fn schedules_defined_in_code_are_reconciled_at_start_and_fired_by_the_workers_scheduler(t) {
        let (queue, clock) = clocked(t, "2026-05-01T09:30:00Z");
        let kept = queue.add_schedule(Schedule::new("kept", "0 3 * * *", "report.build")).await.unwrap();
        queue.add_schedule(Schedule::new("changed", "0 * * * *", "old.task")).await.unwrap();
        queue.pause_schedule("changed").await.unwrap();
        let options = WorkerOptions { schedule_interval: Duration::from_millis(20), ..fast_options(1) };
        let worker = Worker::new(queue.clone(), tasks::simple(), options)
            .schedule(Schedule::new("changed", "0 * * * *", "new.task"))
            .schedule(Schedule::new("added", "*/15 * * * *", "report.build"));
        let control = worker.control();
        let handle = tokio::spawn(worker.run());
        wait_for("the worker to add its schedule", || async {
            queue.schedule("added").await.unwrap().map(|_| ())
        })
        .await;
        let names: Vec<String> = queue.schedules().await.unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["added", "changed", "kept"]);
        assert_eq!(stored(&queue, "kept").await, kept, "a stored schedule not defined in code is kept as it is");
        let changed = stored(&queue, "changed").await;
        assert_eq!((changed.task.as_str(), changed.paused), ("new.task", true), "updated, and still paused");
        assert_eq!(stored(&queue, "added").await.next_run, Some(at("2026-05-01T09:45:00Z")));

        clock.set(at("2026-05-01T09:45:00Z"));
        wait_for("the scheduler to fire the tick", || async {
            (job_count(&queue).await == 1).then_some(())
        })
        .await;
        // Passes go on every 20 ms; the tick stays enqueued once.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ticks(&queue).await, ["2026-05-01T09:45:00Z"]);
        control.stop();
        let summary = tokio::time::timeout(PATIENCE, handle).await.unwrap().unwrap().unwrap();
        assert_eq!(summary.performed, 0);
    }

    async fn a_worker_with_an_invalid_schedule_in_code_does_not_start(t) {
        let worker = Worker::new(t.queue.clone(), tasks::simple(), fast_options(1))
            .schedule(Schedule::new("bad", "* * * * *", "report.build").timezone("Nowhere/Land"));
        let err = worker.run().await.unwrap_err();
        assert!(matches!(err, underling::Error::InvalidTimezone(_)), "{err}");
        assert!(t.queue.workers().await.unwrap().is_empty());
        assert!(t.queue.schedules().await.unwrap().is_empty());
    }
}
