//! Waking workers: the fan-out of wake-ups to the workers of this process, and (PostgreSQL)
//! the coalescing of the wake-ups that single enqueues send.

use tokio::sync::broadcast;

#[cfg(feature = "postgres")]
pub(crate) use coalesce::{Coalescer, RetryWake, SendWake};

/// A queue name that means "any queue may have ready jobs" (sent after a listener reconnects,
/// when wake-ups may have been missed, or after a limit changed).
pub(crate) const ANY_QUEUE: &str = "*";

/// A settled-job id that means "any watched job may have settled or been removed" (sent
/// after a listener reconnects, when notifications may have been missed). Job ids start at 1.
pub(crate) const ANY_JOB: i64 = 0;

/// Hands wake-ups (queue names) to every subscribed worker of this process, and the ids of
/// watched jobs that settled or were removed to every waiter ([`crate::Queue::wait`]).
#[derive(Clone)]
pub(crate) struct Wakeups {
    sender: broadcast::Sender<String>,
    settled: broadcast::Sender<i64>,
}

impl Default for Wakeups {
    fn default() -> Self {
        // Wake-ups are hints: a worker that falls this far behind gets `Lagged` and claims; a
        // waiter that does re-reads its job.
        let (sender, _) = broadcast::channel(1024);
        let (settled, _) = broadcast::channel(1024);
        Wakeups { sender, settled }
    }
}

impl Wakeups {
    /// A new subscriber: it sees every wake-up sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }

    /// A new waiter: it sees the id of every job that settles or is removed from now on
    /// ([`ANY_JOB`] when it should re-read its job anyway).
    pub(crate) fn subscribe_settled(&self) -> broadcast::Receiver<i64> {
        self.settled.subscribe()
    }

    /// Tells waiters that job `id` settled (finished or failed) or was removed.
    pub(crate) fn settled(&self, id: i64) {
        // No subscriber is not an error: nobody waits in this process.
        let _ = self.settled.send(id);
    }

    /// Wakes the workers of `queue`.
    pub(crate) fn wake(&self, queue: &str) {
        // No subscriber is not an error: no worker runs in this process.
        let _ = self.sender.send(queue.to_string());
    }

    /// Wakes the workers of each queue once.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn wake_all<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        let mut queues: Vec<&str> = queues.into_iter().collect();
        queues.sort_unstable();
        queues.dedup();
        for queue in queues {
            self.wake(queue);
        }
    }
}

/// Coalescing the NOTIFYs of single enqueues (PostgreSQL).
#[cfg(feature = "postgres")]
mod coalesce {
    use std::collections::HashMap;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// How long after one wake-up for a queue further single enqueues to it leave theirs to one
    /// catch-up wake-up.
    pub(crate) const WAKE_WINDOW: Duration = Duration::from_millis(2);

    /// Sends one wake-up for a queue (on PostgreSQL, a NOTIFY).
    pub(crate) type SendWake =
        Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

    /// Coalesces the wake-ups of single enqueues, so that a stream of them does not pay one
    /// notification per job: every NOTIFY is taken at commit under one server-wide lock, and costs
    /// a fifth of a one-row INSERT.
    ///
    /// The first enqueue to a queue notifies as part of its statement. Enqueues to the same queue
    /// within [`WAKE_WINDOW`] after it skip theirs, and one catch-up wake-up is sent once the
    /// window is over, always after their commits: no job is left without a wake-up sent after it
    /// became visible, and a burst costs two notifications instead of one per job.
    #[derive(Default)]
    pub(crate) struct Coalescer {
        queues: Mutex<HashMap<String, QueueWake>>,
    }

    /// The wake-ups of one queue.
    struct QueueWake {
        /// When the last one was sent (or was about to be).
        last: Instant,
        /// Whether a catch-up wake-up is scheduled.
        pending: bool,
    }

    impl Coalescer {
        fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, QueueWake>> {
            // Nothing here can panic while the lock is held; a poisoned lock is used all the same.
            self.queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// Whether an enqueue to `queue` should notify itself; if so, it counts as sent `now`.
        pub(crate) fn notify_now(&self, queue: &str, now: Instant) -> bool {
            let mut queues = self.lock();
            match queues.get_mut(queue) {
                Some(wake) if now.duration_since(wake.last) < WAKE_WINDOW => false,
                Some(wake) => {
                    wake.last = now;
                    true
                }
                None => {
                    queues.insert(
                        queue.to_string(),
                        QueueWake {
                            last: now,
                            pending: false,
                        },
                    );
                    true
                }
            }
        }

        /// Called after an enqueue that skipped its wake-up has committed: makes sure a catch-up
        /// wake-up goes out after this point.
        pub(crate) fn catch_up(self: &Arc<Self>, queue: &str, send: &SendWake) {
            let Some(due) = self.schedule(queue) else {
                return;
            };
            let this = self.clone();
            let send = send.clone();
            let queue = queue.to_string();
            tokio::spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                this.begin(&queue, Instant::now());
                send(queue).await;
            });
        }

        /// When a catch-up wake-up for `queue` must go out, if one is not scheduled already (one
        /// that is scheduled and has not begun is sent after the caller's commit).
        pub(crate) fn schedule(&self, queue: &str) -> Option<Instant> {
            let mut queues = self.lock();
            let wake = queues.get_mut(queue)?;
            if wake.pending {
                return None;
            }
            wake.pending = true;
            Some(wake.last + WAKE_WINDOW)
        }

        /// Marks the catch-up wake-up for `queue` as begun, `now`: cleared before sending, so that
        /// an enqueue that commits from here on schedules its own.
        pub(crate) fn begin(&self, queue: &str, now: Instant) {
            if let Some(wake) = self.lock().get_mut(queue) {
                wake.pending = false;
                wake.last = now;
            }
        }

        /// Sends every scheduled catch-up wake-up now (before the pool closes).
        pub(crate) async fn flush(&self, send: &SendWake) {
            let pending: Vec<String> = self
                .lock()
                .iter()
                .filter(|(_, wake)| wake.pending)
                .map(|(queue, _)| queue.clone())
                .collect();
            for queue in pending {
                self.begin(&queue, Instant::now());
                send(queue).await;
            }
        }
    }

    /// How long after a settle that retried jobs the wake-up for them goes out, at most one
    /// per window.
    pub(crate) const RETRY_WAKE_WINDOW: Duration = Duration::from_millis(50);

    /// Wakes idle workers after settles that retried jobs (a retry, or a rescue), so that they
    /// learn when the retried jobs fall due instead of finding them at their next poll: one
    /// wake-up for every queue (`*`), at most one per [`RETRY_WAKE_WINDOW`], sent after the
    /// settle committed. A storm of failures costs a few NOTIFYs a second, not one per job.
    #[derive(Default)]
    pub(crate) struct RetryWake {
        pending: std::sync::atomic::AtomicBool,
    }

    impl RetryWake {
        /// Called after a settle that retried jobs has committed.
        pub(crate) fn wake(self: &Arc<Self>, send: &SendWake) {
            use std::sync::atomic::Ordering;
            if self.pending.swap(true, Ordering::AcqRel) {
                return;
            }
            let this = self.clone();
            let send = send.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RETRY_WAKE_WINDOW).await;
                // Cleared before sending: a settle that commits from here on schedules its own.
                this.pending.store(false, Ordering::Release);
                send(super::ANY_QUEUE.to_string()).await;
            });
        }
    }

    #[cfg(test)]
    mod tests {
        use std::time::Instant;

        use super::{Coalescer, WAKE_WINDOW};

        #[test]
        fn the_first_enqueue_to_a_queue_notifies_and_the_next_ones_within_the_window_do_not() {
            let wakes = Coalescer::default();
            let t0 = Instant::now();
            assert!(wakes.notify_now("q", t0));
            assert!(!wakes.notify_now("q", t0 + WAKE_WINDOW / 2));
            assert!(
                wakes.notify_now("other", t0 + WAKE_WINDOW / 2),
                "queues are apart"
            );
            assert!(wakes.notify_now("q", t0 + WAKE_WINDOW));
        }

        #[test]
        fn a_skipped_wake_up_schedules_one_catch_up_at_the_end_of_the_window() {
            let wakes = Coalescer::default();
            let t0 = Instant::now();
            assert!(wakes.notify_now("q", t0));
            assert!(!wakes.notify_now("q", t0));
            assert_eq!(wakes.schedule("q"), Some(t0 + WAKE_WINDOW));
            assert!(!wakes.notify_now("q", t0));
            assert_eq!(
                wakes.schedule("q"),
                None,
                "one catch-up covers every commit before it"
            );
        }

        #[test]
        fn an_enqueue_that_commits_after_the_catch_up_began_schedules_another() {
            let wakes = Coalescer::default();
            let t0 = Instant::now();
            assert!(wakes.notify_now("q", t0));
            assert_eq!(wakes.schedule("q"), Some(t0 + WAKE_WINDOW));
            let t1 = t0 + WAKE_WINDOW;
            wakes.begin("q", t1);
            assert!(
                !wakes.notify_now("q", t1),
                "the catch-up counts as a wake-up"
            );
            assert_eq!(wakes.schedule("q"), Some(t1 + WAKE_WINDOW));
        }

        #[test]
        fn a_queue_never_notified_schedules_nothing() {
            assert_eq!(Coalescer::default().schedule("q"), None);
        }
    }
}
