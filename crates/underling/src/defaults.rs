//! The task defaults an enqueuer applies: what the workers published (see
//! [`crate::TaskDefaults`]), read from the store and kept for a few seconds, so that an enqueue
//! costs no extra round trip while the defaults stay fresh.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::error::Result;
use crate::job::NewJob;
use crate::model::TaskDefaults;

/// How long the published defaults are used before they are read again.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(5);

/// How soon they are read again when a job names a task that no worker had published: a
/// worker that just started may have published it since.
pub(crate) const MISS_AFTER: Duration = Duration::from_secs(1);

/// The published defaults, as last read.
#[derive(Default)]
pub(crate) struct DefaultsCache {
    /// The last read; enqueues only take this lock to clone the `Arc`.
    last: RwLock<Option<Arc<Read>>>,
    /// Held while one enqueue reads the defaults again, so that others wait for that read
    /// instead of sending their own.
    reading: Mutex<()>,
}

/// One read of the published defaults.
struct Read {
    tasks: HashMap<String, TaskDefaults>,
    at: Instant,
}

impl Read {
    /// Whether this read is too old for `jobs` (only those that leave something unset count).
    fn stale_for(&self, jobs: &[NewJob], now: Instant) -> bool {
        let age = now.duration_since(self.at);
        age >= FRESH_FOR
            || (age >= MISS_AFTER
                && jobs
                    .iter()
                    .any(|j| j.leaves_unset() && !self.tasks.contains_key(j.task())))
    }
}

impl DefaultsCache {
    /// `jobs` with what they leave unset taken from their tasks' published defaults; the jobs
    /// themselves (no copy) when no default applies. Jobs that set the queue, priority and
    /// attempts themselves cost no read.
    ///
    /// `read` reads the published defaults when what was last read is too old: through the
    /// queue's pool, or on the caller's own connection for a transactional enqueue (whose
    /// transaction may hold the only connection of a SQLite pool).
    pub(crate) async fn apply<'a, F, Fut>(
        &self,
        jobs: &'a [NewJob],
        read: F,
    ) -> Result<Cow<'a, [NewJob]>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<TaskDefaults>>>,
    {
        if !jobs.iter().any(NewJob::leaves_unset) {
            return Ok(Cow::Borrowed(jobs));
        }
        let read = match self.last() {
            Some(read) if !read.stale_for(jobs, Instant::now()) => read,
            _ => {
                let _reading = self.reading.lock().await;
                // Another enqueue may have read them while this one waited.
                match self.last() {
                    Some(read) if !read.stale_for(jobs, Instant::now()) => read,
                    _ => {
                        let tasks = read().await?;
                        let read = Arc::new(Read {
                            tasks: tasks.into_iter().map(|t| (t.name.clone(), t)).collect(),
                            at: Instant::now(),
                        });
                        *self.last.write().unwrap_or_else(PoisonError::into_inner) =
                            Some(read.clone());
                        read
                    }
                }
            }
        };
        let applies = |job: &NewJob| {
            read.tasks
                .get(job.task())
                .is_some_and(|defaults| job.takes_from(defaults))
        };
        if !jobs.iter().any(applies) {
            return Ok(Cow::Borrowed(jobs));
        }
        Ok(Cow::Owned(
            jobs.iter()
                .map(|job| {
                    let mut job = job.clone();
                    if let Some(defaults) = read.tasks.get(job.task()) {
                        job.take_from(defaults);
                    }
                    job
                })
                .collect(),
        ))
    }

    /// Forgets what was read: the next enqueue that needs defaults reads them again.
    pub(crate) fn forget(&self) {
        *self.last.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn last(&self) -> Option<Arc<Read>> {
        // Nothing panics while the lock is held; a poisoned lock is used all the same.
        self.last
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
