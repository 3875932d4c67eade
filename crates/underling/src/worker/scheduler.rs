//! The scheduler, as a task of its own: a pass over the due schedules about every
//! `schedule_interval` (see [`crate::Queue::run_schedules`]). Every worker runs one; the
//! compare-and-set on each schedule's `next_run` makes one of them fire each tick.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::queue::Queue;

/// Runs a scheduler pass every `interval` until `stop` is cancelled. A pass under way when
/// the stop comes is finished first.
pub(super) fn spawn(
    queue: Queue,
    interval: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = every.tick() => {}
            }
            match queue.run_schedules().await {
                Ok(pass) => {
                    for fired in &pass.fired {
                        tracing::info!(
                            schedule = fired.schedule,
                            tick = %fired.tick,
                            job = fired.job.map(|j| j.id),
                            duplicate = fired.job.is_some_and(|j| j.duplicate),
                            "schedule fired"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduler pass failed"),
            }
        }
    })
}
