//! Waking the workers of this process (other processes poll): the queues a batch makes ready,
//! and, for a transactional enqueue, a wake-up sent only once the caller's transaction commits.

use std::time::Duration;

use sqlx::sqlite::SqliteConnection;

use crate::error::Result;
use crate::job::NewJob;
use crate::store::notify::Wakeups;

/// The queues of the jobs without parents, each once.
pub(super) fn ready_queues(jobs: &[NewJob]) -> Vec<String> {
    let mut queues: Vec<String> = jobs
        .iter()
        .filter(|j| j.parents().is_empty())
        .map(|j| j.queue().to_string())
        .collect();
    queues.sort_unstable();
    queues.dedup();
    queues
}

/// How long after the commit hook fires the wake-up goes out: the hook runs just before the
/// commit completes, and a claim that started earlier would not see the jobs.
const AFTER_COMMIT: Duration = Duration::from_millis(2);

/// Wakes the workers of `queues` in this process when the transaction on `conn` commits, and
/// not at all when it rolls back. The hooks stay on the connection (a later enqueue replaces
/// them); once fired they do nothing.
pub(super) async fn wake_after_commit(
    conn: &mut SqliteConnection,
    queues: Vec<String>,
    wakeups: Wakeups,
) -> Result<()> {
    let pending = std::sync::Arc::new(std::sync::Mutex::new(Some((queues, wakeups))));
    let take = |pending: &std::sync::Mutex<Option<(Vec<String>, Wakeups)>>| {
        pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    };
    // The hooks run on the connection's own thread, outside the runtime.
    let runtime = tokio::runtime::Handle::current();
    let mut handle = conn.lock_handle().await?;
    let on_commit = pending.clone();
    handle.set_commit_hook(move || {
        if let Some((queues, wakeups)) = take(&on_commit) {
            runtime.spawn(async move {
                tokio::time::sleep(AFTER_COMMIT).await;
                wakeups.wake_all(queues.iter().map(String::as_str));
            });
        }
        true // let the commit go ahead
    });
    handle.set_rollback_hook(move || {
        take(&pending);
    });
    Ok(())
}
