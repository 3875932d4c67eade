//! Repair, now and then, as a task of its own: rescues jobs of missing workers and removes old
//! and expired jobs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::error::Result;
use crate::model::{RepairOptions, RepairReport};

/// Runs repair about every `interval` (jittered by ±50% each time) until `stop` is cancelled.
/// A repair under way when the stop comes is finished first.
pub(super) fn spawn(
    backend: Arc<dyn Backend>,
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
            match repair(&*backend, &options).await {
                Ok(report) => tracing::debug!(?report, "repair"),
                Err(e) => tracing::warn!(error = %e, "repair failed"),
            }
        }
    })
}

/// One repair.
async fn repair(backend: &dyn Backend, options: &RepairOptions) -> Result<RepairReport> {
    backend.repair(options).await
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
