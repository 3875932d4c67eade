//! The JSON API under `/api/v1`: one module per resource, merged by [`routes`].
//!
//! Response bodies have the shapes of the CLI's `--json` output (so that scripts can switch
//! between the two); request bodies refuse unknown fields.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use underling::{InactiveState, Job, JobFilter, JobState, Queue};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ApiResult};
use crate::extract::{body_bytes, parse_body};
use crate::state::AppState;

pub mod events;
pub mod jobs;
pub mod leases;
pub mod limits;
pub mod locks;
pub mod queues;
pub mod schedules;
pub mod stats;
pub mod workers;

/// Every route of the API, relative to `/api/v1`, with its OpenAPI description. Routes that
/// hold a request open for long (long polls, event streams) go in [`long_lived`] instead,
/// which the request timeout does not cut short.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(jobs::routes())
        .merge(leases::routes())
        .merge(queues::routes())
        .merge(limits::routes())
        .merge(workers::routes())
        .merge(locks::routes())
        .merge(schedules::routes())
        .merge(stats::routes())
        .merge(events::routes())
}

/// The routes that may hold a request open longer than the request timeout (up to their own
/// cap): `GET /jobs/{id}/wait`. Live event streams belong here too.
pub fn long_lived() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(jobs::long_lived())
}

/// The routes that stream for as long as the client listens (live events): no timeout.
pub fn streams() -> OpenApiRouter<AppState> {
    events::streams()
}

/// Checks a name given in a request before it is used: at most [`underling::MAX_NAME`]
/// bytes, the library's one limit ([`underling::check_name_length`]; 422 `too_long`). The
/// library checks the rest of a task, queue or lock name: not empty, no NUL, no surrounding
/// spaces.
pub(crate) fn check_name(what: &str, name: &str) -> ApiResult<()> {
    Ok(underling::check_name_length(what, name)?)
}

/// A duration: a string such as `"90s"`, `"5m"`, `"1h 30m"`, or a number of seconds.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(
    untagged,
    expecting = "expected a duration: a number of seconds such as 30, or a string with a unit such as \"90s\", \"5m\" or \"1h 30m\""
)]
pub enum DurationField {
    /// A number of seconds (fractions allowed).
    Seconds(f64),
    /// A duration in words: `90s`, `5m`, `2h`, `1d`, `1h 30m`.
    Text(String),
}

impl DurationField {
    /// The duration, or a 422 naming `field`.
    pub fn parse(&self, field: &str) -> ApiResult<Duration> {
        match self {
            DurationField::Text(text) => parse_duration(field, text),
            DurationField::Seconds(secs) => Duration::try_from_secs_f64(*secs).map_err(|_| {
                ApiError::invalid(
                    "invalid_duration",
                    format!("{field}: {secs} is not a number of seconds >= 0"),
                )
            }),
        }
    }
}

/// Parses a duration such as `90s` or `5m` (a 422 naming `field` otherwise).
pub(crate) fn parse_duration(field: &str, text: &str) -> ApiResult<Duration> {
    if text
        .trim()
        .strip_prefix('-')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    {
        return Err(ApiError::invalid(
            "invalid_duration",
            format!(
                "{field}: {text:?} is negative; give a duration of zero or more, like 90s, 5m, 2h or 1d"
            ),
        ));
    }
    humantime::parse_duration(text.trim()).map_err(|e| {
        ApiError::invalid(
            "invalid_duration",
            format!("{field}: {e}; give a number and a unit, like 90s, 5m, 2h or 1d"),
        )
    })
}

/// A body that may be empty (then `T::default()`), read as JSON otherwise.
pub(crate) fn optional_body<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let bytes = body_bytes(body)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_body(&bytes)
}

/// A job as the API shows it: every field of the CLI's `job show --json`, and the derived
/// states of an inactive job (why it does not run yet).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    /// Ascending id.
    pub id: i64,
    /// The task name.
    pub task: String,
    /// The queue it is in.
    pub queue: String,
    /// Its JSON arguments.
    pub args: Value,
    /// `inactive`, `active`, `finished` or `failed`.
    #[schema(value_type = String)]
    pub state: JobState,
    /// For an inactive job, why it does not run yet: `scheduled` (due later, never tried),
    /// `retryable` (due later, tried before), `waiting` (for a parent). Empty otherwise.
    #[schema(value_type = Vec<String>)]
    pub derived: Vec<InactiveState>,
    /// Higher runs first.
    pub priority: i32,
    /// How many times it may be tried in all.
    pub attempts: i32,
    /// How many times it has been retried so far.
    pub retries: i32,
    /// When it was enqueued.
    pub created: DateTime<Utc>,
    /// When it becomes due.
    pub delayed: DateTime<Utc>,
    /// When its current attempt started.
    pub started: Option<DateTime<Utc>>,
    /// When its last attempt ended.
    pub finished: Option<DateTime<Utc>>,
    /// When it was last retried.
    pub retried: Option<DateTime<Utc>>,
    /// After this time an inactive job is removed instead of run.
    pub expires: Option<DateTime<Utc>>,
    /// With `lax`, a failed parent counts as done too.
    pub lax: bool,
    /// The worker running (or that last ran) it.
    pub worker_id: Option<i64>,
    /// The result of a finished job, or the error of a failed attempt.
    pub result: Option<Value>,
    /// Free-form metadata (a JSON object).
    #[schema(value_type = Object)]
    pub notes: Map<String, Value>,
    /// Ids of the jobs this job waits for.
    pub parents: Vec<i64>,
    /// Ids of the jobs that wait for this job.
    pub children: Vec<i64>,
    /// The unique key the job holds, if any.
    pub unique_key: Option<String>,
    /// The job's own timeout in milliseconds (none: its task's).
    pub timeout_ms: Option<u64>,
    /// How many times the job was snoozed (each a retry that used no attempt).
    pub snoozes: i32,
}

impl JobView {
    /// The view of `job`, given the states of (some of) its parents (a parent not among
    /// them was removed, and counts as done).
    fn new(job: Job, parents: &HashMap<i64, JobState>, now: DateTime<Utc>) -> JobView {
        let mut derived = Vec::new();
        if job.state == JobState::Inactive {
            if job.delayed > now {
                derived.push(if job.retries > 0 {
                    InactiveState::Retryable
                } else {
                    InactiveState::Scheduled
                });
            }
            let waiting = job.parents.iter().any(|p| match parents.get(p) {
                Some(JobState::Finished) | None => false,
                Some(JobState::Failed) => !job.lax,
                Some(_) => true,
            });
            if waiting {
                derived.push(InactiveState::Waiting);
            }
        }
        JobView {
            id: job.id,
            task: job.task,
            queue: job.queue,
            args: job.args,
            state: job.state,
            derived,
            priority: job.priority,
            attempts: job.attempts,
            retries: job.retries,
            created: job.created,
            delayed: job.delayed,
            started: job.started,
            finished: job.finished,
            retried: job.retried,
            expires: job.expires,
            lax: job.lax,
            worker_id: job.worker_id,
            result: job.result,
            notes: job.notes,
            parents: job.parents,
            children: job.children,
            unique_key: job.unique_key,
            timeout_ms: job.timeout_ms,
            snoozes: job.snoozes,
        }
    }

    /// The views of `jobs`, reading the states of their parents in one query.
    pub async fn load(queue: &Queue, jobs: Vec<Job>) -> ApiResult<Vec<JobView>> {
        let mut ids: Vec<i64> = jobs
            .iter()
            .filter(|j| j.state == JobState::Inactive)
            .flat_map(|j| j.parents.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut parents = HashMap::new();
        if !ids.is_empty() {
            let filter = JobFilter {
                ids: ids.clone(),
                ..JobFilter::default()
            };
            let found = queue.list_jobs(&filter, ids.len() as u64, 0).await?;
            parents = found.jobs.iter().map(|p| (p.id, p.state)).collect();
        }
        let now = Utc::now();
        Ok(jobs
            .into_iter()
            .map(|job| JobView::new(job, &parents, now))
            .collect())
    }

    /// The view of one job.
    pub async fn one(queue: &Queue, job: Job) -> ApiResult<JobView> {
        let mut views = Self::load(queue, vec![job]).await?;
        views.pop().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "a job view went missing",
            )
        })
    }
}

/// Parses a job state filter: a stored state or a derived one, in any case.
pub(crate) fn parse_state(text: &str, filter: &mut JobFilter) -> ApiResult<()> {
    if let Ok(state) = text.parse::<JobState>() {
        filter.states.push(state);
    } else if let Ok(state) = text.parse::<InactiveState>() {
        filter.inactive.push(state);
    } else {
        return Err(ApiError::invalid(
            "unknown_state",
            format!(
                "unknown job state {text:?}: expected one of inactive, active, finished, failed, scheduled, retryable, waiting"
            ),
        ));
    }
    Ok(())
}
