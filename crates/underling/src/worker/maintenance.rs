//! Repair, now and then, as a task of its own: rescues jobs of missing workers (each retried
//! after its own task's backoff, from the worker's registry) and removes old and expired jobs.
//! The rescue alone also runs as soon as a heartbeat finds another worker missing, so that a
//! dead worker's jobs run again within seconds, not at the next repair.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::model::{RepairOptions, RepairReport};
use crate::store::{self, Store};
use crate::task::Registry;

/// How often a worker folds the job counts recorded by statements into the counters (see
/// [`Store::compact_counts`]): often enough that reading counts never sums many records. It
/// looks at the limits as often.
const COMPACT_INTERVAL: Duration = Duration::from_secs(5);

/// Whether a limit or a FIFO queue concerns the worker's queues, looked at now and then
/// (see [`Store::limited`]): the dispatch loop does not fetch ahead while one does.
pub(super) struct LimitWatch {
    /// The worker's queues.
    pub queues: Vec<String>,
    /// Set while limited.
    pub limited: Arc<AtomicBool>,
}

impl LimitWatch {
    async fn check(&self, store: &dyn Store) {
        match store.limited(&self.queues).await {
            Ok(limited) => {
                if self.limited.swap(limited, Ordering::Relaxed) != limited {
                    tracing::info!(
                        limited,
                        "limits or FIFO queues concern this worker's queues"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the limits failed"),
        }
    }
}

/// Runs repair about every `interval` (jittered by ±50% each time), and a rescue each time
/// `rescue` is notified, until `stop` is cancelled. A repair under way when the stop comes is
/// finished first.
#[allow(clippy::too_many_arguments)]
pub(super) fn spawn(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    options: RepairOptions,
    interval: Duration,
    rescue: Arc<Notify>,
    limits: LimitWatch,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now() + jitter(interval);
        let mut compact = tokio::time::interval(COMPACT_INTERVAL);
        compact.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let full = tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(next) => true,
                _ = rescue.notified() => false,
                _ = compact.tick() => {
                    if let Err(e) = store.compact_counts().await {
                        tracing::warn!(error = %e, "folding job counts failed");
                    }
                    limits.check(&*store).await;
                    continue;
                }
            };
            if full {
                next = tokio::time::Instant::now() + jitter(interval);
            }
            match repair(&*store, &registry, &options, full).await {
                Ok(report) if report != RepairReport::default() => {
                    tracing::info!(?report, full, "repair")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, full, "repair failed"),
            }
        }
    })
}

/// One repair (`full`), or its rescue part alone. A rescued job of a task this worker knows is
/// retried after that task's backoff; one of a task it does not know, after the default
/// backoff.
async fn repair(
    store: &dyn Store,
    registry: &Registry,
    options: &RepairOptions,
    full: bool,
) -> Result<RepairReport> {
    let backoff = |task: &str, retries: i32| registry.backoff(task, retries);
    let p = store::Repair {
        options,
        backoff: &backoff,
        now: None,
        progress: None,
    };
    if full {
        store.repair(p).await
    } else {
        store.rescue(p).await
    }
}

/// `base` ± 50%, so that many workers spread their repairs.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = u64::from(nanos) ^ (u64::from(std::process::id()) << 20);
    let fraction = (seed % 1000) as f64 / 1000.0; // 0.0 .. 1.0
    base.mul_f64(0.5 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_either_way() {
        let base = Duration::from_secs(30);
        for _ in 0..100 {
            let d = jitter(base);
            assert!(d >= base / 2 && d < base * 3 / 2, "{d:?}");
        }
    }
}
