//! Fetching ahead: while jobs are fast, a worker holds a few claimed jobs ready for its next
//! free slot; jobs that never started go back to the queue, attempt unused, when the worker
//! stops or is paused; a job told to stop while it waits ends as stopped.

use serde_json::json;
use underling::{EnqueueOptions, JobState};

use crate::support::*;
use crate::tasks;

/// A worker with one slot that has seen one fast job and then claimed five gated jobs: one
/// runs, four wait for the slot. Returns the gated job ids in claim order, and the count of
/// gated jobs that started.
async fn one_running_four_waiting(
    queue: &underling::Queue,
) -> (
    Running,
    tasks::Gate,
    Vec<i64>,
    std::sync::Arc<tasks::InFlight>,
) {
    let (mut registry, gate, in_flight) = tasks::gated();
    registry.register(tasks::Double).unwrap();
    // The fast job goes first (higher priority): once it ended, the worker knows its jobs
    // are fast and claims ahead.
    queue
        .enqueue(
            "test.double",
            json!({"n": 1}),
            EnqueueOptions::new().priority(10),
        )
        .await
        .unwrap();
    let mut gated = Vec::new();
    for _ in 0..5 {
        gated.push(
            queue
                .enqueue("test.gated", json!({}), EnqueueOptions::new())
                .await
                .unwrap(),
        );
    }
    let worker = start(queue, registry, ahead_options(1));
    wait_for("one gated job to start", || async {
        (in_flight.started() == 1).then_some(())
    })
    .await;
    wait_for("all five gated jobs claimed", || async {
        let mut active = 0;
        for id in &gated {
            if job(queue, *id).await.state == JobState::Active {
                active += 1;
            }
        }
        (active == 5).then_some(())
    })
    .await;
    assert_eq!(in_flight.now(), 1, "only one job runs in one slot");
    (worker, gate, gated, in_flight)
}

/// The jobs of `ids` that are inactive again, unstarted and with their attempt unused.
async fn given_back(queue: &underling::Queue, ids: &[i64]) -> usize {
    let mut n = 0;
    for id in ids {
        let job = job(queue, *id).await;
        if job.state == JobState::Inactive
            && job.retries == 0
            && job.worker_id.is_none()
            && job.started.is_none()
        {
            n += 1;
        }
    }
    n
}

behaviours! {
    async fn a_worker_with_fast_jobs_claims_more_than_its_slots_but_runs_only_its_slots(t) {
        let queue = t.queue.clone();
        let (worker, gate, gated, _) = one_running_four_waiting(&queue).await;
        gate.open();
        wait_for("every gated job finished", || async {
            let mut finished = 0;
            for id in &gated {
                if job(&queue, *id).await.state == JobState::Finished {
                    finished += 1;
                }
            }
            (finished == 5).then_some(())
        })
        .await;
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.finished, summary.failed), (6, 6, 0));
    }

    async fn a_graceful_stop_gives_back_claimed_jobs_that_never_started(t) {
        let queue = t.queue.clone();
        let (worker, gate, gated, _) = one_running_four_waiting(&queue).await;
        worker.control.stop();
        gate.open();
        let summary = worker.join().await;
        // The fast job and the one gated job that ran.
        assert_eq!((summary.performed, summary.finished), (2, 2));
        assert_eq!(job(&queue, gated[0]).await.state, JobState::Finished);
        assert_eq!(given_back(&queue, &gated[1..]).await, 4);
    }

    async fn a_paused_worker_gives_back_claimed_jobs_that_never_started(t) {
        let queue = t.queue.clone();
        let (worker, gate, gated, _) = one_running_four_waiting(&queue).await;
        assert_eq!(queue.broadcast("pause", json!([]), &[]).await.unwrap(), 1);
        wait_for("the waiting jobs given back", || async {
            (given_back(&queue, &gated[1..]).await == 4).then_some(())
        })
        .await;
        assert_eq!(job(&queue, gated[0]).await.state, JobState::Active, "the running job runs on");
        gate.open();
        wait_for_state(&queue, gated[0], JobState::Finished).await;
        worker.control.stop();
        worker.join().await;
        assert_eq!(given_back(&queue, &gated[1..]).await, 4, "a paused worker claims nothing");
    }

    async fn a_stop_command_for_a_job_waiting_for_a_slot_fails_it_as_stopped_without_starting_it(t) {
        let queue = t.queue.clone();
        let (worker, gate, gated, in_flight) = one_running_four_waiting(&queue).await;
        assert_eq!(queue.broadcast("stop", json!([gated[4]]), &[]).await.unwrap(), 1);
        let stopped = wait_for_state(&queue, gated[4], JobState::Failed).await;
        assert_eq!(stopped.result, Some(json!("Job was stopped")));
        assert_eq!(in_flight.started(), 1, "the stopped job never started");
        assert_eq!(job(&queue, gated[0]).await.state, JobState::Active, "the running job runs on");
        gate.open();
        worker.control.stop();
        worker.join().await;
    }
}
