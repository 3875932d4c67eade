//! Repair, now and then, as a task of its own: rescues jobs of missing workers (each retried
//! after its own task's backoff, from the worker's registry) and removes old and expired jobs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::model::{RepairOptions, RepairReport};
use crate::store::{self, Store};
use crate::task::Registry;

/// Runs repair about every `interval` (jittered by ±50% each time) until `stop` is cancelled.
/// A repair under way when the stop comes is finished first.
pub(super) fn spawn(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    options: RepairOptions,
    interval: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(jitter(interval)) => {}
            }
            match repair(&*store, &registry, &options).await {
                Ok(report) => tracing::debug!(?report, "repair"),
                Err(e) => tracing::warn!(error = %e, "repair failed"),
            }
        }
    })
}

/// One repair. A rescued job of a task this worker knows is retried after that task's backoff;
/// one of a task it does not know, after the default backoff.
async fn repair(
    store: &dyn Store,
    registry: &Registry,
    options: &RepairOptions,
) -> Result<RepairReport> {
    let backoff = |task: &str, retries: i32| registry.backoff(task, retries);
    store
        .repair(store::Repair {
            options,
            backoff: &backoff,
            now: None,
        })
        .await
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
