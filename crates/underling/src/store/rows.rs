//! Rows as the databases return them, turned into the library's types: written once for both
//! stores, whose columns differ only in how they hold times (PostgreSQL `timestamptz`, SQLite
//! integer milliseconds), JSON (`jsonb` or text) and id lists (arrays or JSON text).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::Settle;
use crate::job::{Job, JobState, Settled};
use crate::model::TaskDefaults;

/// A time as a store holds it.
pub(crate) trait StoredTime {
    fn into_time(self) -> DateTime<Utc>;
}

impl StoredTime for DateTime<Utc> {
    fn into_time(self) -> DateTime<Utc> {
        self
    }
}

impl StoredTime for i64 {
    /// Milliseconds since the Unix epoch.
    fn into_time(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self).unwrap_or_default()
    }
}

/// JSON as a store holds it.
pub(crate) trait StoredJson {
    fn into_json(self) -> Result<Value>;
}

impl StoredJson for Value {
    fn into_json(self) -> Result<Value> {
        Ok(self)
    }
}

impl StoredJson for String {
    fn into_json(self) -> Result<Value> {
        Ok(serde_json::from_str(&self)?)
    }
}

/// A list of ids as a store returns it (an array, or a JSON array as text; none when absent).
pub(crate) trait StoredIds {
    fn into_ids(self) -> Result<Vec<i64>>;
}

impl StoredIds for Vec<i64> {
    fn into_ids(self) -> Result<Vec<i64>> {
        Ok(self)
    }
}

impl StoredIds for Option<String> {
    fn into_ids(self) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = match self {
            None => Vec::new(),
            Some(text) => serde_json::from_str(&text)?,
        };
        ids.sort_unstable();
        Ok(ids)
    }
}

/// A row of `underling_jobs`, with the job's parents and children where the statement
/// selected them. `T`, `J` and `L` are how the store holds times, JSON and id lists.
#[derive(sqlx::FromRow)]
pub(crate) struct JobRow<T, J, L: Default> {
    id: i64,
    task: String,
    queue: String,
    args: J,
    state: String,
    priority: i32,
    attempts: i32,
    retries: i32,
    created: T,
    delayed: T,
    started: Option<T>,
    finished: Option<T>,
    retried: Option<T>,
    expires: Option<T>,
    lax: bool,
    worker_id: Option<i64>,
    result: Option<J>,
    notes: J,
    #[sqlx(default)]
    parents: L,
    #[sqlx(default)]
    children: L,
    #[sqlx(default)]
    unique_key: Option<String>,
    #[sqlx(default)]
    timeout_ms: Option<i64>,
    #[sqlx(default)]
    snoozes: i32,
}

impl<T: StoredTime, J: StoredJson, L: StoredIds + Default> JobRow<T, J, L> {
    /// The job this row holds.
    pub(crate) fn into_job(self) -> Result<Job> {
        Ok(Job {
            id: self.id,
            task: self.task,
            queue: self.queue,
            args: self.args.into_json()?,
            state: JobState::from_str(&self.state)?,
            priority: self.priority,
            attempts: self.attempts,
            retries: self.retries,
            created: self.created.into_time(),
            delayed: self.delayed.into_time(),
            started: self.started.map(StoredTime::into_time),
            finished: self.finished.map(StoredTime::into_time),
            retried: self.retried.map(StoredTime::into_time),
            expires: self.expires.map(StoredTime::into_time),
            lax: self.lax,
            worker_id: self.worker_id,
            result: self.result.map(StoredJson::into_json).transpose()?,
            notes: match self.notes.into_json()? {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            parents: self.parents.into_ids()?,
            children: self.children.into_ids()?,
            unique_key: self.unique_key,
            timeout_ms: self.timeout_ms.and_then(|ms| u64::try_from(ms).ok()),
            snoozes: self.snoozes,
        })
    }
}

/// Turns job rows into jobs.
pub(crate) fn into_jobs<T, J, L>(rows: Vec<JobRow<T, J, L>>) -> Result<Vec<Job>>
where
    T: StoredTime,
    J: StoredJson,
    L: StoredIds + Default,
{
    rows.into_iter().map(JobRow::into_job).collect()
}

/// What each settle did, in input order, from the `(id, new state)` of the jobs a settle
/// statement changed. A settle that did not come back was stale: its attempt was no longer
/// current.
pub(crate) fn settled(settles: &[Settle], changed: &[(i64, String)]) -> Result<Vec<Settled>> {
    let mut by_id = std::collections::HashMap::with_capacity(changed.len());
    for (id, state) in changed {
        let outcome = match JobState::from_str(state)? {
            JobState::Finished => Settled::Finished,
            JobState::Failed => Settled::Failed,
            JobState::Inactive => Settled::Retried,
            JobState::Active => {
                return Err(Error::Invariant(format!("a settle left job {id} active")));
            }
        };
        by_id.insert(*id, outcome);
    }
    Ok(settles
        .iter()
        .map(|s| match (by_id.get(&s.id).copied(), &s.outcome) {
            // A snooze leaves the job inactive, as a retry does.
            (Some(Settled::Retried), crate::job::Outcome::Snoozed { .. }) => Settled::Snoozed,
            (outcome, _) => outcome.unwrap_or(Settled::Stale),
        })
        .collect())
}

/// A count the database returned, as the library's types hold it.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The row of `sql/stats.sql` (SQLite has no server uptime).
#[derive(sqlx::FromRow)]
pub(crate) struct StatsRow {
    inactive: i64,
    active: i64,
    finished: i64,
    failed: i64,
    delayed: i64,
    busy_workers: i64,
    workers: i64,
    locks: i64,
    enqueued: i64,
    #[sqlx(default)]
    uptime: Option<i64>,
}

impl StatsRow {
    /// The counts this row holds.
    pub(crate) fn into_stats(self) -> crate::model::Stats {
        crate::model::Stats {
            inactive_jobs: count(self.inactive),
            active_jobs: count(self.active),
            finished_jobs: count(self.finished),
            failed_jobs: count(self.failed),
            delayed_jobs: count(self.delayed),
            active_workers: count(self.busy_workers),
            inactive_workers: count(self.workers - self.busy_workers),
            active_locks: count(self.locks),
            enqueued_jobs: count(self.enqueued),
            uptime: self.uptime.map(count),
        }
    }
}

/// A row of `sql/queues.sql`: name, paused, FIFO, and the counts per state.
pub(crate) type QueueRow = (String, bool, bool, i64, i64, i64, i64);

/// The queue a row of `sql/queues.sql` describes.
pub(crate) fn queue_info(
    (name, paused, fifo, inactive, active, failed, finished): QueueRow,
) -> crate::model::QueueInfo {
    crate::model::QueueInfo {
        name,
        paused,
        fifo,
        inactive: count(inactive),
        active: count(active),
        failed: count(failed),
        finished: count(finished),
    }
}

/// A row of `sql/repair_abandoned.sql`: an attempt whose worker is gone (id, task, retries).
pub(crate) type AbandonedRow = (i64, String, i32);

/// The error of an attempt whose worker went away.
pub(crate) const WENT_AWAY: &str = "Worker went away";

/// The error of an attempt whose lease ran out.
pub(crate) const LEASE_EXPIRED: &str = "Lease expired";

/// The settles that rescue abandoned attempts: each fails with `error` (`Worker went away`,
/// `Lease expired`), and is retried after its task's backoff where tries are left.
pub(crate) fn rescue_settles(
    abandoned: &[AbandonedRow],
    backoff: super::RescueBackoff<'_>,
    error: &str,
) -> Vec<Settle> {
    abandoned
        .iter()
        .map(|(id, task, retries)| Settle {
            id: *id,
            retries: *retries,
            outcome: crate::job::Outcome::Failed {
                error: Value::String(error.into()),
                retry_delay: backoff(task, *retries),
            },
        })
        .collect()
}

/// An active job past its timeout, as repair finds it: id, task, retries and the timeout (ms).
pub(crate) type TimedOutRow = (i64, String, i32, i64);

/// The settles that fail the attempts of jobs past their timeout plus `grace` (retried after
/// their task's backoff where tries are left).
pub(crate) fn timed_out_settles(
    timed_out: &[TimedOutRow],
    grace: std::time::Duration,
    backoff: super::RescueBackoff<'_>,
) -> Vec<Settle> {
    timed_out
        .iter()
        .map(|(id, task, retries, timeout_ms)| {
            let timeout = std::time::Duration::from_millis(u64::try_from(*timeout_ms).unwrap_or(0));
            Settle {
                id: *id,
                retries: *retries,
                outcome: crate::job::Outcome::Failed {
                    error: Value::String(format!(
                        "Job ran past its timeout of {} and the repair grace of {}; failed by repair",
                        humantime::format_duration(timeout),
                        humantime::format_duration(grace)
                    )),
                    retry_delay: backoff(task, *retries),
                },
            }
        })
        .collect()
}

/// How many settles changed their job (the others were stale).
pub(crate) fn applied(settled: &[Settled]) -> u64 {
    settled.iter().filter(|s| **s != Settled::Stale).count() as u64
}

/// A row of `underling_tasks` as the model has it.
pub(crate) fn task_defaults(
    name: String,
    queue: Option<String>,
    priority: Option<i32>,
    attempts: Option<i32>,
    timeout_ms: Option<i64>,
    published: DateTime<Utc>,
) -> TaskDefaults {
    TaskDefaults {
        name,
        queue,
        priority,
        attempts,
        timeout_ms: timeout_ms.and_then(|ms| u64::try_from(ms).ok()),
        published,
    }
}

/// A row of `underling_schedules`; `T` and `J` are how the store holds times and JSON.
#[derive(sqlx::FromRow)]
pub(crate) struct ScheduleRow<T, J> {
    name: String,
    cron: String,
    timezone: String,
    task: String,
    args: J,
    queue: Option<String>,
    priority: Option<i32>,
    attempts: Option<i32>,
    options: J,
    paused: bool,
    catch_up: String,
    next_run: T,
    last_run: Option<T>,
    last_job_id: Option<i64>,
    created: T,
    updated: T,
}

impl<T: StoredTime, J: StoredJson> ScheduleRow<T, J> {
    /// The schedule this row holds (no next run while it is paused).
    pub(crate) fn into_info(self) -> Result<crate::ScheduleInfo> {
        Ok(crate::ScheduleInfo {
            name: self.name,
            cron: self.cron,
            timezone: self.timezone,
            task: self.task,
            args: self.args.into_json()?,
            queue: self.queue,
            priority: self.priority,
            attempts: self.attempts,
            options: self.options.into_json()?,
            catch_up: self
                .catch_up
                .parse()
                .map_err(|_| Error::Invariant(format!("unknown catch-up {:?}", self.catch_up)))?,
            paused: self.paused,
            next_run: (!self.paused).then(|| self.next_run.into_time()),
            last_run: self.last_run.map(StoredTime::into_time),
            last_job_id: self.last_job_id,
            created: self.created.into_time(),
            updated: self.updated.into_time(),
        })
    }
}
