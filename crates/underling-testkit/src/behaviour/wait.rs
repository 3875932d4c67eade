//! Waiting for a job's result ([`underling::Queue::wait`]): the settled job, `None` when the
//! time is up, job-not-found when it is removed; and the pushes that wake a waiter.

use std::time::Duration;

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use underling::{BackendKind, EnqueueOptions, Error, JobState};

use crate::TestStore;
use crate::support::*;

/// Long enough never to be reached when the job settles.
const LONG: Duration = Duration::from_secs(30);

/// How long the other side waits before it settles or removes the job: the waiter is waiting
/// by then.
const SOON: Duration = Duration::from_millis(150);

/// Watches `id`; on PostgreSQL also waits until the listener is connected (it announces itself
/// with `0`), since notifications sent before that are lost by design.
async fn watch(t: &TestStore, id: i64) -> Receiver<i64> {
    let mut rx = t
        .store
        .watch(id)
        .await
        .unwrap()
        .expect("both backends push settles");
    if t.kind() == BackendKind::Postgres {
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(first, Ok(Ok(0))), "{first:?}");
    }
    rx
}

/// Waits up to five seconds for `id` on `rx` (ignoring other ids and `0`).
async fn pushed(rx: &mut Receiver<i64>, id: i64) -> bool {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(got) if got == id => return true,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or(false)
}

behaviours! {
    async fn wait_returns_a_job_that_finishes_meanwhile(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let (waited, ()) = tokio::join!(queue.wait(id, LONG), async {
            tokio::time::sleep(SOON).await;
            run_to_finish(t, w, id).await;
        });
        let job = waited.unwrap().expect("settled before the timeout");
        assert_eq!(job.id, id);
        assert_eq!(job.state, JobState::Finished);
        assert_eq!(job.result, Some(serde_json::Value::Null));
    }

    async fn wait_returns_a_job_that_fails_for_good_meanwhile(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let (waited, ()) = tokio::join!(queue.wait(id, LONG), async {
            tokio::time::sleep(SOON).await;
            run_to_failure(t, w, id).await;
        });
        let job = waited.unwrap().expect("settled before the timeout");
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.result, Some(serde_json::json!("boom")));
    }

    async fn wait_returns_a_settled_job_at_once(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let w = worker(t).await;
        run_to_finish(t, w, id).await;
        let job = queue.wait(id, Duration::ZERO).await.unwrap().expect("finished already");
        assert_eq!(job.state, JobState::Finished);
    }

    async fn wait_is_none_when_the_time_is_up_first(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        assert_eq!(queue.wait(id, Duration::from_millis(300)).await.unwrap(), None);
        assert_eq!(state(&queue, id).await, JobState::Inactive);
    }

    async fn wait_goes_on_through_a_failed_attempt_with_tries_left(t) {
        let queue = t.queue.clone();
        let id = enqueue_with(&queue, "add", EnqueueOptions::new().attempts(2)).await;
        let w = worker(t).await;
        let (waited, ()) = tokio::join!(queue.wait(id, Duration::from_millis(800)), async {
            tokio::time::sleep(SOON).await;
            let job = claim_by_id(t, w, id).await.expect("claimable");
            fail(t, &job, serde_json::json!("again"), Duration::from_secs(3600)).await;
        });
        assert_eq!(waited.unwrap(), None);
        let job = job(&queue, id).await;
        assert_eq!((job.state, job.retries), (JobState::Inactive, 1));
    }

    async fn wait_for_a_job_that_does_not_exist_is_job_not_found(t) {
        let err = t.queue.wait(4242, LONG).await.unwrap_err();
        assert!(matches!(err, Error::JobNotFound(4242)), "{err:?}");
        assert_eq!(err.to_string(), "job 4242 not found");
    }

    async fn wait_for_a_job_removed_meanwhile_is_job_not_found(t) {
        let queue = t.queue.clone();
        let id = enqueue(&queue, "add").await;
        let started = tokio::time::Instant::now();
        let (waited, ()) = tokio::join!(queue.wait(id, LONG), async {
            tokio::time::sleep(SOON).await;
            queue.remove_job(id).await.unwrap();
        });
        let err = waited.unwrap_err();
        assert!(matches!(err, Error::JobNotFound(x) if x == id), "{err:?}");
        assert!(started.elapsed() < LONG);
    }

    async fn settling_or_removing_a_watched_job_is_pushed_to_its_watchers(t) {
        let queue = t.queue.clone();
        let finished = enqueue(&queue, "add").await;
        let failed = enqueue(&queue, "add").await;
        let removed = enqueue(&queue, "add").await;
        let w = worker(t).await;
        let mut rx = watch(t, finished).await;
        // One receiver sees every watched job's push.
        t.store.watch(failed).await.unwrap().expect("pushed");
        t.store.watch(removed).await.unwrap().expect("pushed");
        run_to_finish(t, w, finished).await;
        assert!(pushed(&mut rx, finished).await, "finish");
        run_to_failure(t, w, failed).await;
        assert!(pushed(&mut rx, failed).await, "fail");
        queue.remove_job(removed).await.unwrap();
        assert!(pushed(&mut rx, removed).await, "remove");
    }
}
