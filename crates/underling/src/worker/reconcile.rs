//! Reconciling what the worker holds with what the store says it holds.
//!
//! A claim can commit in the database while its reply never reaches the worker (the
//! connection dropped after the commit): its jobs are then active under a live worker that
//! does not know them, and no repair rescues them while the worker heartbeats. Now and then,
//! and soon after a claim failed, the worker asks the store which attempts are active under
//! it, and gives back (attempt unused) the ones it neither runs, nor holds waiting for a slot,
//! nor has an unwritten outcome for. It does so only while no claim is in flight and without
//! starting one meanwhile, so a job on its way to the worker is never taken for lost; the
//! release itself only changes attempts still active under this worker, so one settled
//! meanwhile is left alone.

use std::time::Duration;

use tokio::time::Instant;

use super::completer::Completer;
use super::ledger::Ledger;
use crate::error::Result;
use crate::store::{self, Store};

/// When to reconcile next.
pub(super) struct Reconciler {
    interval: Duration,
    next: Instant,
}

impl Reconciler {
    /// Reconciles every `interval`.
    pub(super) fn new(interval: Duration) -> Self {
        Reconciler {
            interval,
            next: Instant::now() + interval,
        }
    }

    /// When the next reconciliation is due.
    pub(super) fn due(&self) -> Instant {
        self.next
    }

    /// A claim failed: its jobs may be active and unknown here; look at the next quiet moment.
    pub(super) fn soon(&mut self) {
        self.next = Instant::now();
    }

    /// Gives back the attempts active under `worker_id` that this worker does not know;
    /// returns how many went back. The caller makes sure no claim is in flight.
    pub(super) async fn run(
        &mut self,
        store: &dyn Store,
        worker_id: i64,
        ledger: &Ledger,
        completer: &Completer,
    ) -> Result<u64> {
        self.next = Instant::now() + self.interval;
        let active = store.active_attempts(worker_id).await?;
        let held = ledger.held_attempts();
        let unwritten = completer.unwritten();
        let lost: Vec<store::Attempt> = active
            .into_iter()
            .filter(|a| {
                let attempt = (a.id, a.retries);
                !held.contains(&attempt) && !unwritten.contains(&attempt)
            })
            .collect();
        if lost.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = lost.iter().map(|a| a.id).collect();
        let released = store
            .release(store::Release {
                worker_id,
                attempts: &lost,
            })
            .await?;
        tracing::warn!(
            jobs = ?ids,
            released,
            "gave back jobs active under this worker that it never got (a claim's reply was lost)"
        );
        Ok(released)
    }
}
