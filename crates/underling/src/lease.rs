//! Leases for pull workers: jobs handed out to clients that are not underling workers (over
//! HTTP, `POST /api/v1/claims`), each for a limited time.
//!
//! A leased job is active under no worker until its lease runs out. Its holder reports the
//! outcome with [`Queue::ack`] or [`Queue::reject`], or renews the lease with
//! [`Queue::extend`], quoting the lease's token. A lease that runs out is lost: the job is
//! rescued like a dead worker's job (failed with `Lease expired`, and retried after the
//! default backoff where tries are left) by the next leased claim or repair, and whatever
//! its old holder reports afterwards is refused with [`Error::LeaseLost`]. So, as with
//! native workers, no job is held by two clients at once, and an attempt that is no longer
//! current never changes the job.
//!
//! ```no_run
//! # async fn demo(queue: underling::Queue) -> underling::Result<()> {
//! use std::time::Duration;
//! use underling::{LeaseOptions, Rejection};
//!
//! let opts = LeaseOptions::new(Duration::from_secs(30)).queue("mail").limit(10);
//! for leased in queue.claim_leased(&opts).await? {
//!     let token = &leased.lease.token;
//!     match leased.job.args.get("to") {
//!         Some(_) => queue.ack(leased.job.id, token, serde_json::json!("sent")).await?,
//!         None => {
//!             queue.reject(leased.job.id, token, Rejection::fatal(serde_json::json!("no address"))).await?;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::job::{
    DEFAULT_QUEUE, Job, MAX_DURATION, Outcome, Settled, default_backoff, validate_queue,
    validate_task,
};
use crate::model::ClaimSpec;
use crate::queue::Queue;
use crate::store::{self, Attempt};

/// The shortest lease: shorter ones would run out before a client could act on the job.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// The most jobs one leased claim hands out.
pub const MAX_LEASED_CLAIM: usize = 1000;

/// What to claim with [`Queue::claim_leased`].
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseOptions {
    /// Queues to claim from; empty: `default` and the queues that the tasks' workers published
    /// as theirs (see [`Queue::tasks`]).
    pub queues: Vec<String>,
    /// Tasks to claim; empty: any task.
    pub tasks: Vec<String>,
    /// At most this many jobs (1 to [`MAX_LEASED_CLAIM`]).
    pub limit: usize,
    /// How long each lease lasts (at least [`MIN_LEASE`]).
    pub lease: Duration,
}

impl LeaseOptions {
    /// One job of any task from `default`, for `lease`.
    pub fn new(lease: Duration) -> Self {
        LeaseOptions {
            queues: Vec::new(),
            tasks: Vec::new(),
            limit: 1,
            lease,
        }
    }
    /// Adds a queue to claim from.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queues.push(queue.into());
        self
    }
    /// Adds a task to claim.
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.tasks.push(task.into());
        self
    }
    /// Sets how many jobs to claim at most.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Checks the options; nothing is read or written.
    fn validate(&self) -> Result<()> {
        for queue in &self.queues {
            validate_queue(queue)?;
        }
        for task in &self.tasks {
            validate_task(task)?;
        }
        if self.limit == 0 || self.limit > MAX_LEASED_CLAIM {
            return Err(Error::InvalidOption(format!(
                "limit must be 1 to {MAX_LEASED_CLAIM} jobs, got {}",
                self.limit
            )));
        }
        check_lease(self.lease)
    }
}

/// Checks a lease's duration.
pub(crate) fn check_lease(lease: Duration) -> Result<()> {
    if lease < MIN_LEASE || lease > MAX_DURATION {
        return Err(Error::InvalidOption(format!(
            "a lease must last from 1 second to 100 years, got {lease:?}"
        )));
    }
    Ok(())
}

/// A lease on one job: the token that proves it and when it runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Quote it to [`Queue::ack`], [`Queue::reject`] and [`Queue::extend`]. It names the job
    /// and the attempt (`"42.0"`: job 42, first attempt); treat it as opaque.
    pub token: String,
    /// When the lease runs out unless it is extended.
    pub expires: DateTime<Utc>,
}

impl Lease {
    /// The token of an attempt.
    pub(crate) fn token(attempt: Attempt) -> String {
        format!("{}.{}", attempt.id, attempt.retries)
    }

    /// The attempt a token was given for, if it is one of job `id`'s tokens.
    pub(crate) fn attempt(id: i64, token: &str) -> Result<Attempt> {
        let invalid = |reason: &str| Error::InvalidLease {
            id,
            token: token.to_string(),
            reason: reason.to_string(),
        };
        let (job, retries) = token
            .split_once('.')
            .ok_or_else(|| invalid("give the token the claim returned with the job"))?;
        let job: i64 = job
            .parse()
            .map_err(|_| invalid("give the token the claim returned with the job"))?;
        let retries: i32 = retries
            .parse()
            .ok()
            .filter(|r| *r >= 0)
            .ok_or_else(|| invalid("give the token the claim returned with the job"))?;
        if job != id {
            return Err(invalid(&format!("it is a lease on job {job}")));
        }
        Ok(Attempt { id, retries })
    }
}

/// A job handed out with a lease by [`Queue::claim_leased`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeasedJob {
    /// The job, active under no worker.
    pub job: Job,
    /// Its lease.
    pub lease: Lease,
}

/// How a pull worker gives up on a leased job ([`Queue::reject`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The error, stored as the job's result.
    pub error: Value,
    /// Retry where tries are left (`false`: the job fails for good now).
    pub retry: bool,
    /// The delay before the retry (unset: the default backoff, `(retries + 1)⁴` s).
    pub delay: Option<Duration>,
}

impl Rejection {
    /// Retried after the default backoff where tries are left.
    pub fn retry(error: Value) -> Self {
        Rejection {
            error,
            retry: true,
            delay: None,
        }
    }
    /// Failed for good, whatever tries are left.
    pub fn fatal(error: Value) -> Self {
        Rejection {
            error,
            retry: false,
            delay: None,
        }
    }
}

impl Queue {
    /// Claims up to `opts.limit` ready jobs (highest priority first, then oldest) with a lease
    /// of `opts.lease` each, for a client that is not an underling worker. Leases that ran out
    /// are rescued first, so that their jobs go back to the queue even where no worker runs
    /// repair.
    pub async fn claim_leased(&self, opts: &LeaseOptions) -> Result<Vec<LeasedJob>> {
        opts.validate()?;
        let mut queues = opts.queues.clone();
        if queues.is_empty() {
            queues.push(DEFAULT_QUEUE.to_string());
            if !opts.tasks.is_empty() {
                for task in self.tasks().await? {
                    if opts.tasks.contains(&task.name)
                        && let Some(queue) = task.queue
                    {
                        queues.push(queue);
                    }
                }
            }
            queues.sort_unstable();
            queues.dedup();
        }
        self.expire_leases().await?;
        let spec = ClaimSpec {
            queues,
            tasks: opts.tasks.clone(),
        };
        self.store()
            .claim_leased(store::ClaimLeased {
                spec: &spec,
                limit: opts.limit,
                lease: opts.lease,
                now: None,
            })
            .await
    }

    /// Finishes a leased job with `result`, if the lease (its `token`) still holds:
    /// [`Error::LeaseLost`] otherwise, and [`Error::JobNotFound`] for a job that does not
    /// exist.
    pub async fn ack(&self, id: i64, token: &str, result: Value) -> Result<()> {
        let attempt = Lease::attempt(id, token)?;
        self.store()
            .settle_leased(store::SettleLeased {
                attempt,
                outcome: &Outcome::Finished(result),
                give_up: false,
                now: None,
            })
            .await?;
        Ok(())
    }

    /// Fails a leased attempt, if its lease still holds: retried (after the rejection's delay,
    /// or the default backoff) where tries are left and the rejection allows it, failed for
    /// good otherwise. Says which ([`Settled::Retried`] or [`Settled::Failed`]).
    pub async fn reject(&self, id: i64, token: &str, rejection: Rejection) -> Result<Settled> {
        let attempt = Lease::attempt(id, token)?;
        crate::job::check_duration("delay", rejection.delay)?;
        let outcome = Outcome::Failed {
            error: rejection.error,
            retry_delay: rejection
                .delay
                .unwrap_or_else(|| default_backoff(attempt.retries)),
        };
        self.store()
            .settle_leased(store::SettleLeased {
                attempt,
                outcome: &outcome,
                give_up: !rejection.retry,
                now: None,
            })
            .await
    }

    /// Renews a lease that still holds: it now runs out `lease` from now. Returns when.
    pub async fn extend(&self, id: i64, token: &str, lease: Duration) -> Result<DateTime<Utc>> {
        let attempt = Lease::attempt(id, token)?;
        check_lease(lease)?;
        self.store()
            .extend_lease(store::ExtendLease {
                attempt,
                lease,
                now: None,
            })
            .await
    }

    /// Rescues the jobs whose lease ran out (failed with `Lease expired`, and retried after
    /// the default backoff where tries are left); returns how many. Leased claims and repair
    /// do this too.
    pub async fn expire_leases(&self) -> Result<u64> {
        self.store()
            .expire_leases(store::ExpireLeases {
                backoff: &|_task: &str, retries: i32| default_backoff(retries),
                now: None,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_job_and_attempt() {
        let attempt = Attempt { id: 42, retries: 3 };
        assert_eq!(Lease::token(attempt), "42.3");
        assert_eq!(Lease::attempt(42, "42.3").unwrap(), attempt);
    }

    #[test]
    fn a_token_of_another_job_or_malformed_is_refused() {
        assert_eq!(
            Lease::attempt(5, "42.3").unwrap_err().to_string(),
            "invalid lease token \"42.3\" for job 5: it is a lease on job 42"
        );
        for bad in ["", "42", "x.1", "42.-1", "42.1.2"] {
            assert!(
                matches!(Lease::attempt(42, bad), Err(Error::InvalidLease { .. })),
                "{bad:?}"
            );
        }
    }
}
