//! The worker's lease on its jobs, and the fence that ends them when the lease runs out.
//!
//! Others take a worker for dead once its last heartbeat (as the database recorded it) is
//! older than `missing_after` (M), and hand its active jobs to other workers. So a worker that
//! cannot heartbeat must have ended every job before then. With H the heartbeat interval and G
//! the longest stop grace of the tasks it runs:
//!
//! - every heartbeat gives up after H (a half-open connection is a failed heartbeat, not a
//!   hang), and a successful one renews the lease until `sent + F`, where `sent` is when it was
//!   sent (never later than the time the database recorded) and **F = M − H − G**;
//! - once the lease has run out the worker is *fenced*: it claims nothing and starts nothing,
//!   and each running job is asked to stop (its cancellation fires); it has its stop grace
//!   (at most G) to return, then its future is dropped. So every job has ended by
//!   `sent + F + G = sent + M − H`: one heartbeat interval before anyone may rescue it;
//! - the lease must survive a slow or failed heartbeat or two: F ≥ 3H, that is
//!   **M ≥ 4H + G** (enforced when the worker starts). At the defaults (H = 1 s, M = 6 s,
//!   G = 2 s), F = 3 s: a worker stops its jobs 3 s after its last successful heartbeat,
//!   they have all ended by 5 s, and nobody rescues them before 6 s.
//!
//! Each running job watches the lease itself (a timer on this process's monotonic clock), so
//! no call to the database, however stuck, can delay the fence. A lease is *revoked* when a
//! heartbeat finds the worker's row gone (a repair elsewhere, or an operator, removed it):
//! its jobs may have been handed to others already, so they are killed at once, and the
//! worker registers again (a new lease, under a new id) only once none of them runs.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::executor::Ending;
use crate::error::{Error, Result};
use crate::task::Registry;

/// Why a job was stopped when its worker's lease ran out.
pub(super) const LEASE_EXPIRED: &str = "Worker lost the database; job stopped";

/// Why a job was killed when its worker's lease was revoked.
pub(super) const LEASE_REVOKED: &str = "Worker was removed while the job ran; job killed";

/// How many heartbeat intervals the lease lasts at the least (F ≥ 3H): one slow heartbeat
/// (given up after H) and one failed one do not fence a worker.
const MIN_LEASE_BEATS: u32 = 3;

/// The worker's hold on its jobs, as its heartbeats renew it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Lease {
    /// The registration the lease is for: jobs claimed under another id are not covered.
    pub(super) worker_id: i64,
    /// Until when jobs may run and be claimed; `None` once revoked.
    pub(super) until: Option<Instant>,
}

impl Lease {
    /// Whether jobs claimed under `worker_id` may run (and more be claimed) at `now`.
    pub(super) fn covers(&self, worker_id: i64, now: Instant) -> bool {
        self.worker_id == worker_id && self.until.is_some_and(|until| now < until)
    }
}

/// The lease's terms, from the worker's options and the tasks it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Terms {
    /// How long a heartbeat (or a registration, or an inbox read) may take before it counts as
    /// failed: the heartbeat interval.
    pub(super) call_timeout: Duration,
    /// How long after a successful heartbeat was sent the lease lasts (F).
    pub(super) lease: Duration,
}

impl Terms {
    /// The terms for a worker heartbeating every `heartbeat` and taken for dead after
    /// `missing_after`, running the tasks in `registry`; an error saying which option to
    /// change when a worker that loses the database could not end its jobs in time.
    pub(super) fn new(
        heartbeat: Duration,
        missing_after: Duration,
        registry: &Registry,
    ) -> Result<Terms> {
        if heartbeat.is_zero() {
            return Err(Error::InvalidOption(
                "the heartbeat interval must be more than zero".into(),
            ));
        }
        let (task, grace) = registry
            .longest_stop_grace()
            .unwrap_or(("", Duration::ZERO));
        let needed = heartbeat * (MIN_LEASE_BEATS + 1) + grace;
        if missing_after < needed {
            let fmt = humantime::format_duration;
            let grace = if task.is_empty() {
                String::new()
            } else {
                format!(
                    " plus the longest stop grace of its tasks ({}, {task:?})",
                    fmt(grace)
                )
            };
            return Err(Error::InvalidOption(format!(
                "missing_after ({}) is too short: a worker that loses the database stops its \
                 jobs {MIN_LEASE_BEATS} heartbeat intervals after its last heartbeat, and they \
                 must have ended a heartbeat interval before others may rescue them, so \
                 missing_after must be at least 4 heartbeat intervals ({}){grace}: raise \
                 missing_after to {} or more, or lower the heartbeat interval or the task's \
                 stop grace",
                fmt(missing_after),
                fmt(heartbeat * (MIN_LEASE_BEATS + 1)),
                fmt(needed),
            )));
        }
        Ok(Terms {
            call_timeout: heartbeat,
            lease: missing_after - heartbeat - grace,
        })
    }

    /// A lease for `worker_id` renewed by a heartbeat sent at `sent`.
    pub(super) fn renewed(&self, worker_id: i64, sent: Instant) -> Lease {
        Lease {
            worker_id,
            until: Some(sent + self.lease),
        }
    }
}

/// Waits until the lease no longer covers a job claimed under `worker_id`, and says how the
/// job must end: stopped (with its stop grace) when the lease ran out, killed when it was
/// revoked or belongs to another registration. Renewals push the wait on.
pub(super) async fn lost(lease: &mut watch::Receiver<Lease>, worker_id: i64) -> Ending {
    loop {
        let current = *lease.borrow_and_update();
        if current.worker_id != worker_id {
            return Ending::Kill(LEASE_REVOKED.into());
        }
        let Some(until) = current.until else {
            return Ending::Kill(LEASE_REVOKED.into());
        };
        if Instant::now() >= until {
            return Ending::Stop(LEASE_EXPIRED.into());
        }
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            changed = lease.changed() => {
                if changed.is_err() {
                    // The worker is gone: nothing renews the lease any more.
                    tokio::time::sleep_until(until).await;
                    return Ending::Stop(LEASE_EXPIRED.into());
                }
            }
        }
    }
}

/// Waits until the lease is revoked (or moves to another registration) for a job claimed
/// under `worker_id`: a stopped job in its grace is then killed at once.
pub(super) async fn revoked(lease: &mut watch::Receiver<Lease>, worker_id: i64) {
    let gone = lease
        .wait_for(|l| l.worker_id != worker_id || l.until.is_none())
        .await
        .is_ok();
    if !gone {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{JobContext, Task, TaskOptions, TaskResult};

    struct Slow(Duration);

    #[async_trait::async_trait]
    impl Task for Slow {
        type Args = serde_json::Value;
        fn name(&self) -> &'static str {
            "slow.cleanup"
        }
        fn options(&self) -> TaskOptions {
            TaskOptions {
                stop_grace: self.0,
                ..TaskOptions::default()
            }
        }
        async fn run(&self, _ctx: &JobContext, _args: serde_json::Value) -> TaskResult {
            Ok(serde_json::Value::Null)
        }
    }

    fn registry(grace: Duration) -> Registry {
        let mut registry = Registry::new();
        registry.register(Slow(grace)).unwrap();
        registry
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn at_the_defaults_jobs_stop_after_3s_and_have_ended_1s_before_a_rescue() {
        let defaults = crate::WorkerOptions::default();
        assert_eq!(defaults.heartbeat_interval, SEC);
        assert_eq!(defaults.repair.missing_after, 6 * SEC);
        assert_eq!(crate::task::DEFAULT_STOP_GRACE, 2 * SEC);
        let terms = Terms::new(SEC, 6 * SEC, &registry(2 * SEC)).unwrap();
        assert_eq!(
            terms,
            Terms {
                call_timeout: SEC,
                lease: 3 * SEC
            }
        );
    }

    #[test]
    fn missing_after_must_cover_four_heartbeats_and_the_longest_stop_grace() {
        assert_eq!(
            Terms::new(5 * SEC, 25 * SEC, &registry(5 * SEC))
                .unwrap()
                .lease,
            15 * SEC
        );
        let err = Terms::new(5 * SEC, 25 * SEC, &registry(6 * SEC)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid option: missing_after (25s) is too short: a worker that loses the database \
             stops its jobs 3 heartbeat intervals after its last heartbeat, and they must have \
             ended a heartbeat interval before others may rescue them, so missing_after must be \
             at least 4 heartbeat intervals (20s) plus the longest stop grace of its tasks (6s, \
             \"slow.cleanup\"): raise missing_after to 26s or more, or lower the heartbeat \
             interval or the task's stop grace"
        );
        assert!(Terms::new(Duration::ZERO, 25 * SEC, &registry(SEC)).is_err());
    }

    #[test]
    fn a_lease_covers_its_own_registration_until_it_runs_out() {
        let now = Instant::now();
        let terms = Terms::new(SEC, 10 * SEC, &registry(SEC)).unwrap();
        let lease = terms.renewed(7, now);
        assert_eq!(lease.until, Some(now + 8 * SEC));
        assert!(lease.covers(7, now + 7 * SEC));
        assert!(!lease.covers(7, now + 8 * SEC), "ran out");
        assert!(!lease.covers(6, now), "another registration");
        let revoked = Lease {
            worker_id: 7,
            until: None,
        };
        assert!(!revoked.covers(7, now));
    }

    /// Real time in these two tests: a tenth of a second stands for a second.
    const TICK: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn a_job_is_stopped_when_the_lease_runs_out_and_renewals_push_that_on() {
        let start = Instant::now();
        let (tx, mut rx) = watch::channel(Lease {
            worker_id: 1,
            until: Some(start + TICK * 2),
        });
        let renew = async {
            tokio::time::sleep(TICK).await;
            tx.send_replace(Lease {
                worker_id: 1,
                until: Some(start + TICK * 5),
            });
            std::future::pending::<()>().await
        };
        let ending = tokio::select! {
            ending = lost(&mut rx, 1) => ending,
            _ = renew => unreachable!(),
        };
        assert_eq!(ending, Ending::Stop(LEASE_EXPIRED.into()));
        assert!(start.elapsed() >= TICK * 5, "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn a_job_is_killed_at_once_when_the_lease_is_revoked_or_moves_on() {
        let far = Instant::now() + 100 * SEC;
        for next in [
            Lease {
                worker_id: 1,
                until: None,
            },
            Lease {
                worker_id: 2,
                until: Some(far),
            },
        ] {
            let start = Instant::now();
            let (tx, mut rx) = watch::channel(Lease {
                worker_id: 1,
                until: Some(far),
            });
            let revoke = async {
                tokio::time::sleep(TICK).await;
                tx.send_replace(next);
                std::future::pending::<()>().await
            };
            let ending = tokio::select! {
                ending = lost(&mut rx, 1) => ending,
                _ = revoke => unreachable!(),
            };
            assert_eq!(ending, Ending::Kill(LEASE_REVOKED.into()));
            assert!(start.elapsed() >= TICK && start.elapsed() < 50 * TICK);
        }
    }
}
