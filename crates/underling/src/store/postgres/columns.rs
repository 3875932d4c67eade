//! Jobs and outcomes as one array per column: how a batch travels to PostgreSQL in one
//! statement (`unnest` on the server side).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::secs;
use crate::job::{NewJob, Outcome, Settle};
use crate::unique::ResolvedUnique;

/// A batch of jobs as one array per column, for `underling_enqueue_jobs`.
pub(super) struct BatchColumns<'a> {
    tasks: Vec<&'a str>,
    args: Vec<&'a Value>,
    queues: Vec<&'a str>,
    priorities: Vec<i32>,
    attempts: Vec<i32>,
    delays: Vec<Option<f64>>,
    run_ats: Vec<Option<DateTime<Utc>>>,
    expires: Vec<Option<f64>>,
    laxes: Vec<bool>,
    has_parents: Vec<bool>,
    notes: Vec<Value>,
    timeouts: Vec<Option<i64>>,
    /// (1-based input position, parent id) for every dependency.
    dep_ord: Vec<i64>,
    dep_parent: Vec<i64>,
}

impl<'a> BatchColumns<'a> {
    pub(super) fn new(jobs: &'a [NewJob]) -> Self {
        let mut c = BatchColumns {
            tasks: Vec::with_capacity(jobs.len()),
            args: Vec::with_capacity(jobs.len()),
            queues: Vec::with_capacity(jobs.len()),
            priorities: Vec::with_capacity(jobs.len()),
            attempts: Vec::with_capacity(jobs.len()),
            delays: Vec::with_capacity(jobs.len()),
            run_ats: Vec::with_capacity(jobs.len()),
            expires: Vec::with_capacity(jobs.len()),
            laxes: Vec::with_capacity(jobs.len()),
            has_parents: Vec::with_capacity(jobs.len()),
            notes: Vec::with_capacity(jobs.len()),
            timeouts: Vec::with_capacity(jobs.len()),
            dep_ord: Vec::new(),
            dep_parent: Vec::new(),
        };
        for (i, job) in jobs.iter().enumerate() {
            c.tasks.push(job.task());
            c.args.push(job.args());
            c.queues.push(job.queue());
            c.priorities.push(job.priority());
            c.attempts.push(job.attempts());
            c.delays.push(job.delay().map(secs));
            c.run_ats.push(job.run_at());
            c.expires.push(job.expire().map(secs));
            c.laxes.push(job.lax());
            c.has_parents.push(!job.parents().is_empty());
            c.notes.push(Value::Object(job.notes().clone()));
            c.timeouts.push(job.timeout_ms());
            for parent in job.parents() {
                c.dep_ord.push(i as i64 + 1);
                c.dep_parent.push(*parent);
            }
        }
        c
    }

    /// The timeouts (ms), bound last.
    pub(super) fn timeouts(&self) -> &[Option<i64>] {
        &self.timeouts
    }

    /// Binds the columns as `$1..$13`.
    pub(super) fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(&self.tasks)
            .bind(&self.args)
            .bind(&self.queues)
            .bind(&self.priorities)
            .bind(&self.attempts)
            .bind(&self.delays)
            .bind(&self.run_ats)
            .bind(&self.expires)
            .bind(&self.laxes)
            .bind(&self.has_parents)
            .bind(&self.notes)
            .bind(&self.dep_ord)
            .bind(&self.dep_parent)
    }

    /// [`Self::bind`] for a statement that returns rows.
    pub(super) fn bind_as<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(&self.tasks)
            .bind(&self.args)
            .bind(&self.queues)
            .bind(&self.priorities)
            .bind(&self.attempts)
            .bind(&self.delays)
            .bind(&self.run_ats)
            .bind(&self.expires)
            .bind(&self.laxes)
            .bind(&self.has_parents)
            .bind(&self.notes)
            .bind(&self.dep_ord)
            .bind(&self.dep_parent)
    }
}

/// The result a snoozed attempt leaves on its job.
static SNOOZED: Value = Value::Null;

/// Outcomes as one array per column, for `underling_work_cycle`.
pub(super) struct SettleColumns<'a> {
    pub(super) ids: Vec<i64>,
    pub(super) retries: Vec<i32>,
    pub(super) oks: Vec<bool>,
    pub(super) snoozes: Vec<bool>,
    pub(super) results: Vec<&'a Value>,
    pub(super) delays: Vec<f64>,
}

impl<'a> SettleColumns<'a> {
    pub(super) fn new(settles: &'a [Settle]) -> Self {
        let mut c = SettleColumns {
            ids: Vec::with_capacity(settles.len()),
            retries: Vec::with_capacity(settles.len()),
            oks: Vec::with_capacity(settles.len()),
            snoozes: Vec::with_capacity(settles.len()),
            results: Vec::with_capacity(settles.len()),
            delays: Vec::with_capacity(settles.len()),
        };
        for s in settles {
            c.ids.push(s.id);
            c.retries.push(s.retries);
            match &s.outcome {
                Outcome::Finished(result) => {
                    c.oks.push(true);
                    c.snoozes.push(false);
                    c.results.push(result);
                    c.delays.push(0.0);
                }
                Outcome::Failed { error, retry_delay } => {
                    c.oks.push(false);
                    c.snoozes.push(false);
                    c.results.push(error);
                    c.delays.push(secs(*retry_delay));
                }
                Outcome::Snoozed { delay } => {
                    c.oks.push(false);
                    c.snoozes.push(true);
                    c.results.push(&SNOOZED);
                    c.delays.push(secs(*delay));
                }
            }
        }
        c
    }
}

/// The unique keys of a batch, one array per column, for `underling_enqueue_unique`
/// (`$16..$19`; a job without a key has NULLs).
pub(super) struct UniqueColumns {
    keys: Vec<Option<String>>,
    scopes: Vec<Option<&'static str>>,
    periods: Vec<Option<f64>>,
    policies: Vec<Option<&'static str>>,
}

impl UniqueColumns {
    pub(super) fn new(jobs: &[NewJob]) -> Self {
        let mut c = UniqueColumns {
            keys: Vec::with_capacity(jobs.len()),
            scopes: Vec::with_capacity(jobs.len()),
            periods: Vec::with_capacity(jobs.len()),
            policies: Vec::with_capacity(jobs.len()),
        };
        for job in jobs {
            let unique: Option<ResolvedUnique> = job.resolved_unique();
            c.keys.push(unique.as_ref().map(|u| u.key.clone()));
            c.scopes.push(unique.as_ref().map(|u| u.scope));
            c.periods
                .push(unique.as_ref().and_then(|u| u.period.map(secs)));
            c.policies
                .push(unique.as_ref().map(|u| u.on_conflict.as_str()));
        }
        c
    }

    /// Binds the columns after the batch's `$1..$15`.
    pub(super) fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(&self.keys)
            .bind(&self.scopes)
            .bind(&self.periods)
            .bind(&self.policies)
    }
}
