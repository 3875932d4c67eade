//! Helpers for the behaviour suite, on top of the shared two-backend harness.

#[macro_use]
#[path = "../support/harness.rs"]
mod harness;
pub use harness::*;

use std::time::Duration;

use serde_json::{Value, json};
use underling::{
    ClaimSpec, EnqueueOptions, Job, JobFilter, JobState, Outcome, Queue, Settle, Settled,
};

// ---------------------------------------------------------------------------------------------
// Helpers shared by the behaviour tests. They unwrap: a failure here is a failed test.

/// Registers a worker and returns its id.
pub async fn worker(queue: &Queue) -> i64 {
    queue
        .backend()
        .register_worker("test-host", 4242, &json!({}))
        .await
        .expect("register worker")
}

/// A claim spec for these queues and any task.
pub fn spec(queues: &[&str]) -> ClaimSpec {
    ClaimSpec {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        tasks: Vec::new(),
    }
}

/// Claims up to `limit` jobs from `queues` for `worker`.
pub async fn claim(queue: &Queue, worker: i64, queues: &[&str], limit: usize) -> Vec<Job> {
    queue
        .backend()
        .claim(worker, &spec(queues), limit)
        .await
        .expect("claim")
}

/// Claims up to `limit` jobs from `queues` and returns their ids in claim order.
pub async fn claim_ids(queue: &Queue, worker: i64, queues: &[&str], limit: usize) -> Vec<i64> {
    claim(queue, worker, queues, limit)
        .await
        .into_iter()
        .map(|j| j.id)
        .collect()
}

/// Claims exactly one job from the default queue; panics if there is none.
pub async fn claim_one(queue: &Queue, worker: i64) -> Job {
    let mut jobs = claim(queue, worker, &["default"], 1).await;
    assert_eq!(jobs.len(), 1, "expected one job to claim");
    jobs.remove(0)
}

/// Enqueues a job of `task` with empty arguments and default options.
pub async fn enqueue(queue: &Queue, task: &str) -> i64 {
    queue
        .enqueue(task, json!({}), EnqueueOptions::new())
        .await
        .expect("enqueue")
}

/// Enqueues a job of `task` with empty arguments and the options given.
pub async fn enqueue_with(queue: &Queue, task: &str, opts: EnqueueOptions) -> i64 {
    queue.enqueue(task, json!({}), opts).await.expect("enqueue")
}

/// Settles one attempt.
pub async fn settle(queue: &Queue, id: i64, retries: i32, outcome: Outcome) -> Settled {
    let done = queue
        .backend()
        .settle(&[Settle {
            id,
            retries,
            outcome,
        }])
        .await
        .expect("settle");
    assert_eq!(done.len(), 1);
    done[0]
}

/// Finishes a claimed job with `result`.
pub async fn finish(queue: &Queue, job: &Job, result: Value) -> Settled {
    settle(queue, job.id, job.retries, Outcome::Finished(result)).await
}

/// Fails a claimed job's attempt with `error`, retrying after `retry_delay` if tries are left.
pub async fn fail(queue: &Queue, job: &Job, error: Value, retry_delay: Duration) -> Settled {
    settle(
        queue,
        job.id,
        job.retries,
        Outcome::Failed { error, retry_delay },
    )
    .await
}

/// Claims the job `id` by id and finishes it.
pub async fn run_to_finish(queue: &Queue, worker: i64, id: i64) {
    let job = queue
        .backend()
        .claim_by_id(worker, id)
        .await
        .expect("claim_by_id")
        .expect("job should be claimable");
    assert_eq!(finish(queue, &job, json!(null)).await, Settled::Finished);
}

/// Claims the job `id` by id and fails it for good (it must have one attempt left at most).
pub async fn run_to_failure(queue: &Queue, worker: i64, id: i64) {
    let job = queue
        .backend()
        .claim_by_id(worker, id)
        .await
        .expect("claim_by_id")
        .expect("job should be claimable");
    assert_eq!(
        fail(queue, &job, json!("boom"), Duration::ZERO).await,
        Settled::Failed
    );
}

/// The job, which must exist.
pub async fn job(queue: &Queue, id: i64) -> Job {
    queue
        .job(id)
        .await
        .expect("job lookup")
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

/// The state of a job, which must exist.
pub async fn state(queue: &Queue, id: i64) -> JobState {
    job(queue, id).await.state
}

/// How many jobs exist in all.
pub async fn job_count(queue: &Queue) -> u64 {
    queue
        .list_jobs(&JobFilter::default(), 1, 0)
        .await
        .expect("list jobs")
        .total
}

/// Sleeps long enough for "now" to move past timestamps written just before.
pub async fn tick() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}
