//! Correctness under batching: a worker keeps the outcomes of ended jobs in memory for a moment
//! and writes them in batches (along with its next claim, or from its settler). A worker that
//! dies in that moment loses no job, a graceful stop writes every outcome, and an outcome that
//! arrives late — from an attempt that was retried meanwhile — never overwrites a newer attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use underling::{
    EnqueueOptions, JobContext, JobState, NewJob, Queue, Registry, RepairOptions, RepairReport,
    RetryOptions, Task, TaskError, TaskResult, Worker,
};

use crate::held::{HeldStore, Hold};

use crate::support::*;
use crate::tasks::Gate;

// ---------------------------------------------------------------------------------------------
// Tasks

/// How many times each job ran, by job id.
type Runs = Arc<Mutex<HashMap<i64, u32>>>;

fn runs_of(runs: &Runs) -> HashMap<i64, u32> {
    runs.lock().expect("runs lock").clone()
}

/// `test.count`: counts its runs per job id; its result is `{"run": n}` for the n-th run.
struct Count {
    runs: Runs,
}

#[underling::async_trait]
impl Task for Count {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.count"
    }
    async fn run(&self, ctx: &JobContext, _args: Value) -> TaskResult {
        let run = {
            let mut runs = self.runs.lock().expect("runs lock");
            let n = runs.entry(ctx.id()).or_default();
            *n += 1;
            *n
        };
        Ok(json!({ "run": run }))
    }
}

/// A registry with only `test.count`, and its run counts.
fn counting() -> (Registry, Runs) {
    let runs = Runs::default();
    let mut registry = Registry::new();
    registry
        .register(Count { runs: runs.clone() })
        .expect("register test.count");
    (registry, runs)
}

/// What `test.attempts` did, for the test to wait on.
#[derive(Default)]
struct AttemptLog {
    started: Mutex<Vec<i32>>,
    ended: Mutex<Vec<i32>>,
}

impl AttemptLog {
    fn started(&self) -> Vec<i32> {
        self.started.lock().expect("log lock").clone()
    }
    fn ended(&self) -> Vec<i32> {
        self.ended.lock().expect("log lock").clone()
    }
}

/// `test.attempts`: the first attempt waits at `first`, then returns `"first"` (or, with
/// `first_fails`, fails with `"first failed"`); later attempts wait at `later`, then return
/// `"second"`.
struct Attempts {
    first: Gate,
    later: Gate,
    first_fails: bool,
    log: Arc<AttemptLog>,
}

#[underling::async_trait]
impl Task for Attempts {
    type Args = Value;
    fn name(&self) -> &'static str {
        "test.attempts"
    }
    async fn run(&self, ctx: &JobContext, _args: Value) -> TaskResult {
        let attempt = ctx.attempt();
        self.log.started.lock().expect("log lock").push(attempt);
        let result = if attempt == 1 {
            self.first.wait().await;
            if self.first_fails {
                Err(TaskError::msg("first failed"))
            } else {
                Ok(json!("first"))
            }
        } else {
            self.later.wait().await;
            Ok(json!("second"))
        };
        self.log.ended.lock().expect("log lock").push(attempt);
        result
    }
}

/// A registry with only `test.attempts`, its two gates (first attempt, later attempts) and its
/// log.
fn attempts(first_fails: bool) -> (Registry, Gate, Gate, Arc<AttemptLog>) {
    let (first, later) = (Gate::new(), Gate::new());
    let log = Arc::new(AttemptLog::default());
    let mut registry = Registry::new();
    registry
        .register(Attempts {
            first: first.clone(),
            later: later.clone(),
            first_fails,
            log: log.clone(),
        })
        .expect("register test.attempts");
    (registry, first, later, log)
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Enqueues `n` jobs of `task` in one batch.
async fn enqueue_many(queue: &Queue, task: &str, n: usize, attempts: i32) -> Vec<i64> {
    let jobs: Vec<NewJob> = (0..n)
        .map(|_| NewJob::new(task, json!({}), EnqueueOptions::new().attempts(attempts)).unwrap())
        .collect();
    queue.enqueue_batch(&jobs).await.unwrap()
}

/// The one registered worker's id, waiting for it to register.
async fn only_worker(queue: &Queue) -> i64 {
    wait_for("one worker to register", || async {
        let workers = queue.workers().await.unwrap();
        (workers.len() == 1).then(|| workers[0].id)
    })
    .await
}

/// An attempt of `test.attempts` that is stale by the time it ends: worker A claims the job,
/// an operator retries it, worker B claims the retry; A's attempt ends only after B's has
/// (`new_attempt_ends_first`) or while B's is still running. A's outcome must change nothing.
async fn a_stale_attempt_ends(queue: Queue, first_fails: bool, new_attempt_ends_first: bool) {
    let (registry, first, later, log) = attempts(first_fails);
    // With tries left, a failure that (wrongly) counted would retry the job: visible too.
    let id = queue
        .enqueue(
            "test.attempts",
            json!({}),
            EnqueueOptions::new().attempts(3),
        )
        .await
        .unwrap();
    let a = start(&queue, registry.clone(), fast_options(1));
    wait_for("A to start the first attempt", || async {
        (log.started() == [1]).then_some(())
    })
    .await;
    let a_id = only_worker(&queue).await;
    let claimed = job(&queue, id).await;
    assert_eq!(
        (claimed.state, claimed.retries, claimed.worker_id),
        (JobState::Active, 0, Some(a_id))
    );

    // An operator retries the job while A still runs it.
    queue.retry_job(id, RetryOptions::default()).await.unwrap();
    let retried = job(&queue, id).await;
    assert_eq!((retried.state, retried.retries), (JobState::Inactive, 1));

    // B claims the retry (A, with one slot, is busy).
    let b = start(&queue, registry.clone(), fast_options(1));
    wait_for("B to start the second attempt", || async {
        (log.started() == [1, 2]).then_some(())
    })
    .await;
    let b_id = wait_for("B to register", || async {
        let workers = queue.workers().await.unwrap();
        workers.iter().map(|w| w.id).find(|w| *w != a_id)
    })
    .await;
    let second = job(&queue, id).await;
    assert_eq!(
        (second.state, second.retries, second.worker_id),
        (JobState::Active, 1, Some(b_id))
    );

    let b = if new_attempt_ends_first {
        later.open();
        wait_for_state(&queue, id, JobState::Finished).await;
        b.control.stop();
        let summary = b.join().await;
        assert_eq!((summary.performed, summary.finished), (1, 1));
        None
    } else {
        Some(b)
    };
    let before = job(&queue, id).await;

    // A's attempt ends now, and A writes its outcome before it stops.
    first.open();
    a.control.stop();
    let summary = a.join().await;
    assert_eq!(summary.performed, 1);
    if first_fails {
        assert_eq!((summary.finished, summary.failed), (0, 1));
    } else {
        assert_eq!((summary.finished, summary.failed), (1, 0));
    }
    assert!(log.ended().contains(&1), "A's attempt ended");
    assert_eq!(
        job(&queue, id).await,
        before,
        "the stale outcome changed the job"
    );

    if let Some(b) = b {
        later.open();
        b.control.stop();
        let summary = b.join().await;
        assert_eq!((summary.performed, summary.finished), (1, 1));
    }
    let after = job(&queue, id).await;
    assert_eq!(after.state, JobState::Finished);
    assert_eq!(after.result, Some(json!("second")));
    assert_eq!(after.retries, 1);
    assert_eq!(after.worker_id, Some(b_id));
    assert_eq!(log.started(), [1, 2], "no attempt ran again");
    assert!(queue.workers().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Tests

behaviours! {
    async fn outcomes_not_yet_written_when_a_worker_dies_are_rescued_and_run_again(t) {
        let queue = t.queue.clone();
        const N: usize = 20;
        let (registry, runs) = counting();
        let ids = enqueue_many(&queue, "test.count", N, 2).await;

        // A worker whose outcomes never reach the store: each job runs, its outcome waits in
        // the worker's memory (the write of it never returns).
        let held = HeldStore::queue(&t.store, Hold::settles_never());
        let worker = Worker::new(held, registry.clone(), fast_options(N));
        let handle = tokio::spawn(worker.run());
        wait_for("every job to run once", || async {
            let runs = runs_of(&runs);
            (runs.len() == N).then_some(())
        })
        .await;
        let dead = only_worker(&queue).await;

        // Killed as SIGKILL would: no unregistering, no writes, no heartbeats.
        handle.abort();
        let ended = handle.await.expect_err("the aborted worker cannot have returned");
        assert!(ended.is_cancelled());
        for &id in &ids {
            let job = job(&queue, id).await;
            assert_eq!(
                (job.state, job.retries, job.worker_id, job.result.as_ref()),
                (JobState::Active, 0, Some(dead), None),
                "job {id} right after the kill"
            );
        }
        assert_eq!(queue.workers().await.unwrap().len(), 1, "the dead worker is still registered");

        // Repair takes the silent worker for dead and rescues its jobs.
        let missing_after = Duration::from_millis(300);
        tokio::time::sleep(missing_after + Duration::from_millis(200)).await;
        let report = queue
            .repair(&RepairOptions { missing_after, ..RepairOptions::default() })
            .await
            .unwrap();
        assert_eq!(
            report,
            RepairReport { missing_workers: 1, abandoned_jobs: N as u64, ..RepairReport::default() }
        );
        assert!(queue.workers().await.unwrap().is_empty());
        for &id in &ids {
            let job = job(&queue, id).await;
            assert_eq!(job.state, JobState::Inactive, "job {id}");
            assert_eq!(job.retries, 1, "job {id}");
            assert_eq!(job.result, Some(json!("Worker went away")), "job {id}");
            let retried = job.retried.expect("a rescued job has a retry time");
            assert_eq!(job.delayed - retried, chrono::Duration::seconds(1), "job {id}: the default backoff");
        }
        let runs_before = runs_of(&runs);
        assert_eq!(runs_before, ids.iter().map(|&id| (id, 1)).collect(), "each job ran exactly once");

        // Once due, every rescued job runs again, to its end.
        make_due(&queue, &ids).await;
        let summary = run_burst(&queue, registry, 4).await;
        assert_eq!((summary.performed, summary.finished), (N as u64, N as u64));
        for &id in &ids {
            let job = job(&queue, id).await;
            assert_eq!(job.state, JobState::Finished, "job {id}");
            assert_eq!(job.retries, 1, "job {id}");
            assert_eq!(job.result, Some(json!({"run": 2})), "job {id}");
        }
        assert_eq!(runs_of(&runs), ids.iter().map(|&id| (id, 2)).collect());
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            (stats.inactive_jobs, stats.active_jobs, stats.failed_jobs, stats.finished_jobs),
            (0, 0, 0, N as u64)
        );
    }

    async fn a_completion_from_a_stale_attempt_does_not_overwrite_the_new_one(t) {
        a_stale_attempt_ends(t.queue.clone(), false, true).await;
    }

    async fn a_completion_from_a_stale_attempt_does_not_finish_the_new_one_while_it_runs(t) {
        a_stale_attempt_ends(t.queue.clone(), false, false).await;
    }

    async fn a_stale_failure_does_not_fail_the_new_attempt(t) {
        a_stale_attempt_ends(t.queue.clone(), true, true).await;
    }

    async fn a_stale_failure_does_not_fail_the_new_attempt_while_it_runs(t) {
        a_stale_attempt_ends(t.queue.clone(), true, false).await;
    }

    async fn a_worker_running_two_attempts_of_one_job_waits_for_the_current_one_when_it_stops(t) {
        let queue = t.queue.clone();
        let (registry, first, later, log) = attempts(false);
        let id = queue
            .enqueue("test.attempts", json!({}), EnqueueOptions::new().attempts(3))
            .await
            .unwrap();
        let worker = start(&queue, registry, fast_options(2));
        wait_for("the first attempt to start", || async { (log.started() == [1]).then_some(()) }).await;
        // Retried while it runs; the same worker, with a slot free, claims the retry.
        queue.retry_job(id, RetryOptions::default()).await.unwrap();
        wait_for("the second attempt to start", || async { (log.started() == [1, 2]).then_some(()) }).await;
        let worker_id = only_worker(&queue).await;
        let second = job(&queue, id).await;
        assert_eq!(
            (second.state, second.retries, second.worker_id),
            (JobState::Active, 1, Some(worker_id))
        );

        // The stale attempt ends first; its outcome changes nothing.
        first.open();
        wait_for("the first attempt to end", || async { (log.ended() == [1]).then_some(()) }).await;
        worker.control.stop();
        // The current attempt still runs: the worker must wait for it (its shutdown grace is
        // 30 s), still registered, with the job active.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let running = job(&queue, id).await;
        assert_eq!(
            (running.state, running.retries, running.result.as_ref()),
            (JobState::Active, 1, None),
            "the stale outcome changed the job, or the worker left its current attempt behind"
        );
        assert_eq!(queue.workers().await.unwrap().len(), 1, "the worker left while a job ran");

        later.open();
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.finished), (2, 2));
        let done = job(&queue, id).await;
        assert_eq!(done.state, JobState::Finished);
        assert_eq!(done.result, Some(json!("second")));
        assert_eq!(done.retries, 1);
        assert!(queue.workers().await.unwrap().is_empty());
    }

    async fn a_worker_stopped_gracefully_writes_every_outcome_before_it_unregisters(t) {
        let queue = t.queue.clone();
        const N: usize = 300;
        let (registry, runs) = counting();
        let ids = enqueue_many(&queue, "test.count", N, 1).await;
        // Every write of outcomes takes a while, so that outcomes are still unwritten when the
        // stop comes.
        let held = HeldStore::queue(&t.store, Hold::settles_after(Duration::from_millis(500)));
        let worker = start(&held, registry, fast_options(64));
        wait_for("every job to run", || async { (runs_of(&runs).len() == N).then_some(()) }).await;
        let unwritten = queue.stats().await.unwrap().active_jobs;
        worker.control.stop();
        assert!(unwritten > 0, "every outcome was written before the stop");
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.finished, summary.failed), (N as u64, N as u64, 0));
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            (stats.inactive_jobs, stats.active_jobs, stats.failed_jobs, stats.finished_jobs),
            (0, 0, 0, N as u64)
        );
        for &id in &ids {
            let job = job(&queue, id).await;
            assert_eq!((job.state, job.result), (JobState::Finished, Some(json!({"run": 1}))), "job {id}");
        }
        assert_eq!(runs_of(&runs), ids.iter().map(|&id| (id, 1)).collect());
        assert!(queue.workers().await.unwrap().is_empty(), "the worker unregistered");
    }

    async fn jobs_of_a_claim_in_flight_at_a_graceful_stop_run_in_the_free_slots(t) {
        let queue = t.queue.clone();
        let (registry, runs) = counting();
        let ids = enqueue_many(&queue, "test.count", 2, 1).await;
        // The claim commits, and its reply reaches the worker only after the stop.
        let held = HeldStore::queue(&t.store, Hold::claim_replies_after(Duration::from_millis(500)));
        let worker = start(&held, registry, fast_options(2));
        wait_for("both jobs claimed", || async {
            (queue.stats().await.unwrap().active_jobs == 2).then_some(())
        })
        .await;
        worker.control.stop();
        let summary = worker.join().await;
        assert_eq!((summary.performed, summary.finished), (2, 2));
        for &id in &ids {
            assert_eq!(job(&queue, id).await.state, JobState::Finished, "job {id}");
        }
        assert_eq!(runs_of(&runs), ids.iter().map(|&id| (id, 1)).collect());
    }

    async fn jobs_of_a_claim_in_flight_at_a_graceful_stop_beyond_the_free_slots_go_back_unused(t) {
        let queue = t.queue.clone();
        let (registry, runs) = counting();
        let first = enqueue_many(&queue, "test.count", 1, 1).await;
        let held = HeldStore::queue(&t.store, Hold::claim_replies_after(Duration::from_millis(500)));
        let worker = start(&held, registry, ahead_options(2));
        // Once a job ended (fast), the worker claims ahead: up to 2 slots + 8 waiting.
        wait_for_state(&queue, first[0], JobState::Finished).await;
        let ids = enqueue_many(&queue, "test.count", 6, 3).await;
        wait_for("all six claimed", || async {
            (queue.stats().await.unwrap().active_jobs == 6).then_some(())
        })
        .await;
        worker.control.stop();
        let summary = worker.join().await;
        // The first job, and two of the six in the two free slots.
        assert_eq!((summary.performed, summary.finished), (3, 3));
        let mut finished = 0;
        let mut given_back = 0;
        for &id in &ids {
            let job = job(&queue, id).await;
            match job.state {
                JobState::Finished => finished += 1,
                JobState::Inactive if job.retries == 0 && job.worker_id.is_none() && job.started.is_none() => given_back += 1,
                other => panic!("job {id} is {other:?}"),
            }
        }
        assert_eq!((finished, given_back), (2, 4));
        assert_eq!(runs_of(&runs).len(), 3, "no job ran twice and none that went back ran");
    }

    async fn jobs_of_a_claim_whose_reply_was_lost_are_given_back_and_run_once(t) {
        let queue = t.queue.clone();
        let (registry, runs) = counting();
        let ids = enqueue_many(&queue, "test.count", 5, 1).await;
        let held = HeldStore::queue(&t.store, Hold::claim_replies_lost(1));
        // The reconciliation after the failed claim gives the jobs back; the periodic one
        // would come far too late for this test.
        let options = underling::WorkerOptions {
            reconcile_interval: Duration::from_secs(3600),
            ..fast_options(4)
        };
        let worker = start(&held, registry, options);
        for &id in &ids {
            let job = wait_for_state(&queue, id, JobState::Finished).await;
            assert_eq!(job.result, Some(json!({"run": 1})));
            assert_eq!(job.retries, 0, "the lost claim used no attempt");
        }
        worker.control.stop();
        worker.join().await;
        assert!(runs_of(&runs).values().all(|&n| n == 1), "each job ran once: {:?}", runs_of(&runs));
        assert_eq!(runs_of(&runs).len(), 5);
    }
}
