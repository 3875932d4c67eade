//! `/jobs`: enqueue (one or a batch), show, wait for, list, retry, remove, stop and note jobs,
//! and retry or remove them in bulk by filter.
//!
//! Long because every route carries its OpenAPI description and its request and response
//! types beside the handler; they are one resource, and the router and the document are built
//! from these same registrations.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use underling::{Error, Job, JobFilter, JobSpec, JobState, NewJob, RetryOptions};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{DurationField, JobView, check_name, optional_body, parse_duration, parse_state};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enqueue, list))
        .routes(routes!(enqueue_batch))
        .routes(routes!(show, remove))
        .routes(routes!(retry))
        .routes(routes!(stop))
        .routes(routes!(kill))
        .routes(routes!(note))
        .routes(routes!(retry_all))
        .routes(routes!(remove_all))
}

/// The long polls of this module (see [`super::long_lived`]).
pub fn long_lived() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(wait))
}

/// The longest `GET /jobs/{id}/wait` may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// The default page size of `GET /jobs`.
pub const DEFAULT_LIMIT: u64 = 100;

/// The largest page size of `GET /jobs`.
pub const MAX_LIMIT: u64 = 1000;

/// One job to enqueue: the fields of `underling job enqueue`'s flags (and of a line of
/// `job enqueue-batch`), as the core library reads them ([`JobSpec`]). Only `task` is required.
pub type EnqueueRequest = JobSpec;

/// The validated job (nothing is written): the API's limits on names, then the library's
/// checks.
fn into_job(request: EnqueueRequest) -> ApiResult<NewJob> {
    check_name("task name", &request.task)?;
    if let Some(queue) = &request.queue {
        check_name("queue name", queue)?;
    }
    if let Some(key) = request
        .notes
        .as_ref()
        .and_then(Value::as_object)
        .and_then(|m| m.keys().find(|k| k.len() > underling::MAX_NAME))
    {
        check_name("note key", key)?;
    }
    Ok(request.into_job()?)
}

/// The id of an enqueued job.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    /// The new job's id, or for a duplicate the id of the live job that holds its unique key.
    pub id: i64,
    /// Whether a live job held the job's unique key, so that nothing was inserted (only
    /// present when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Whether that live job took this request's args, priority and due time
    /// (`on_conflict: replace` on a job that was still inactive; only present when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
}

impl From<underling::Enqueued> for Enqueued {
    fn from(e: underling::Enqueued) -> Self {
        Enqueued {
            id: e.id,
            duplicate: e.duplicate,
            replaced: e.replaced,
        }
    }
}

/// The ids of a batch, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueuedBatch {
    /// The jobs' ids, in the order given (for a duplicate, the id of the live job that holds
    /// its unique key).
    pub ids: Vec<i64>,
    /// The indexes (from 0) of the jobs that were duplicates (nothing was inserted for them;
    /// only present when there are some).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<usize>,
}

/// Enqueue one job.
#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = EnqueueRequest,
    responses(
        (status = 201, description = "Enqueued", body = Enqueued),
        (status = 200, description = "A duplicate: a live job holds the unique key (its id)", body = Enqueued),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 409, description = "A live job holds the unique key and on_conflict is error", body = ErrorBody),
        (status = 422, description = "A field is invalid, or a parent does not exist", body = ErrorBody),
    ))]
async fn enqueue(
    State(state): State<AppState>,
    Json(request): Json<EnqueueRequest>,
) -> ApiResult<(StatusCode, Json<Enqueued>)> {
    let job = into_job(request)?;
    let enqueued = state.queue.submit_batch(std::slice::from_ref(&job)).await?;
    match enqueued.as_slice() {
        // A duplicate created nothing: 200 with the live job's id.
        [one] if one.duplicate => Ok((StatusCode::OK, Json(Enqueued::from(*one)))),
        [one] => Ok((StatusCode::CREATED, Json(Enqueued::from(*one)))),
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the enqueue returned no id",
        )),
    }
}

/// Enqueue many jobs at once: every job is checked first, then all are written in one
/// transaction, or none.
#[utoipa::path(post, path = "/jobs/batch", tag = "jobs", request_body = Vec<EnqueueRequest>,
    responses(
        (status = 201, description = "All enqueued (duplicates of live unique jobs are listed)", body = EnqueuedBatch),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 409, description = "A live job holds a unique key whose on_conflict is error; nothing was written", body = ErrorBody),
        (status = 422, description = "A job is invalid (its index is named); nothing was written", body = ErrorBody),
    ))]
async fn enqueue_batch(
    State(state): State<AppState>,
    Json(requests): Json<Vec<EnqueueRequest>>,
) -> ApiResult<(StatusCode, Json<EnqueuedBatch>)> {
    let mut jobs = Vec::with_capacity(requests.len());
    for (i, request) in requests.into_iter().enumerate() {
        jobs.push(into_job(request).map_err(|e| ApiError {
            message: format!("job [{i}]: {}", e.message),
            ..e
        })?);
    }
    let enqueued = state.queue.submit_batch(&jobs).await?;
    let duplicates = enqueued
        .iter()
        .enumerate()
        .filter(|(_, e)| e.duplicate)
        .map(|(i, _)| i)
        .collect();
    let ids = enqueued.into_iter().map(|e| e.id).collect();
    Ok((StatusCode::CREATED, Json(EnqueuedBatch { ids, duplicates })))
}

/// The job with this id, or a 404.
async fn existing(state: &AppState, id: i64) -> ApiResult<Job> {
    Ok(state.queue.job(id).await?.ok_or(Error::JobNotFound(id))?)
}

/// One job: every field, its parents and children, and its derived state.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
async fn show(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<JobView>> {
    let job = existing(&state, id).await?;
    Ok(Json(JobView::one(&state.queue, job).await?))
}

/// How long to wait.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// How long to wait at most (`30s` by default, at most `5m`).
    pub timeout: Option<String>,
}

/// A job after a wait.
#[derive(Debug, Serialize, ToSchema)]
pub struct Waited {
    /// Whether the job finished or failed for good before the time was up.
    pub settled: bool,
    /// The job as it is now.
    pub job: JobView,
}

/// Wait for a job to finish or fail for good (a long poll): answers as soon as it settles,
/// or when the time is up, with the job either way.
#[utoipa::path(get, path = "/jobs/{id}/wait", tag = "jobs",
    params(("id" = i64, Path, description = "The job id"), WaitQuery),
    responses(
        (status = 200, description = "Settled, or the time is up", body = Waited),
        (status = 400, description = "A bad id or query", body = ErrorBody),
        (status = 404, description = "No such job, or it was removed meanwhile", body = ErrorBody),
        (status = 422, description = "A bad timeout", body = ErrorBody),
    ))]
async fn wait(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<WaitQuery>,
) -> ApiResult<Json<Waited>> {
    let timeout = match &query.timeout {
        Some(text) => parse_duration("timeout", text)?,
        None => Duration::from_secs(30),
    };
    if timeout > MAX_WAIT {
        return Err(ApiError::invalid(
            "invalid_duration",
            format!(
                "timeout: at most {} per request; wait again to wait longer",
                humantime::format_duration(MAX_WAIT)
            ),
        ));
    }
    let (settled, job) = match state.queue.wait(id, timeout).await? {
        Some(job) => (true, job),
        None => (false, existing(&state, id).await?),
    };
    let job = JobView::one(&state.queue, job).await?;
    Ok(Json(Waited { settled, job }))
}

/// The filters of `GET /jobs`: each may be repeated (`state=failed&state=inactive`), and
/// `state` and `id` also take comma-separated lists.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListQuery {
    /// Only jobs in this state: inactive, active, finished, failed, or a derived state of
    /// inactive jobs: scheduled, retryable, waiting.
    state: Option<Vec<String>>,
    /// Only jobs in this queue.
    queue: Option<Vec<String>>,
    /// Only jobs of this task.
    task: Option<Vec<String>>,
    /// Only jobs whose notes have this key.
    note: Option<Vec<String>>,
    /// Only these job ids.
    id: Option<Vec<i64>>,
    /// Only jobs that ended before this time (RFC 3339).
    finished_before: Option<DateTime<Utc>>,
    /// Only jobs with ids below this one: pass the `next` of the previous page.
    before: Option<i64>,
    /// How many jobs (default 100, at most 1000).
    limit: Option<u64>,
}

/// The query parameters of `GET /jobs`.
const LIST_PARAMETERS: &str = "state, queue, task, note, id, finished_before, before, limit";

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobView>,
    /// How many jobs match the filters in all.
    pub total: u64,
    /// Where the next page starts: pass it as `before`; `null` on the last page.
    pub next: Option<i64>,
}

/// Parses a whole number from a query parameter.
fn query_number<T: std::str::FromStr>(name: &str, text: &str) -> ApiResult<T> {
    text.trim().parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            format!("{name}={text:?} is not a valid whole number"),
        )
    })
}

/// List jobs, newest first, with the CLI's filters and keyset paging.
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 422, description = "An unknown state or a bad name", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<JobPage>> {
    let mut filter = JobFilter::default();
    let mut before = None;
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in &pairs {
        match key.as_str() {
            "state" => {
                for s in value.split(',') {
                    parse_state(s.trim(), &mut filter)?;
                }
            }
            "queue" | "task" | "note" => {
                check_name(key, value)?;
                let list = match key.as_str() {
                    "queue" => &mut filter.queues,
                    "task" => &mut filter.tasks,
                    _ => &mut filter.notes,
                };
                list.push(value.clone());
            }
            "id" => {
                for id in value.split(',') {
                    filter.ids.push(query_number("id", id)?);
                }
            }
            "finished_before" => {
                let at = DateTime::parse_from_rfc3339(value).map_err(|e| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!(
                            "finished_before={value:?}: {e}; give an RFC 3339 time such as 2026-12-24T18:00:00Z"
                        ),
                    )
                })?;
                filter.finished_before = Some(at.with_timezone(&Utc));
            }
            "before" => before = Some(query_number::<i64>("before", value)?),
            "limit" => {
                limit = query_number("limit", value)?;
                if !(1..=MAX_LIMIT).contains(&limit) {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        format!("limit={limit}: give 1 to {MAX_LIMIT}"),
                    ));
                }
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown parameter {other:?}: expected one of {LIST_PARAMETERS}"),
                ));
            }
        }
    }
    // One more than asked for tells whether there is a next page.
    let mut page = state
        .queue
        .list_jobs_before(&filter, before, limit + 1)
        .await?;
    let more = page.jobs.len() as u64 > limit;
    page.jobs
        .truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        page.jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(Json(JobPage {
        jobs: JobView::load(&state.queue, page.jobs).await?,
        total: page.total,
        next,
    }))
}

/// Changes to a job that is retried; unset fields keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Move the job to this queue.
    pub queue: Option<String>,
    /// New priority.
    pub priority: Option<i32>,
    /// Run no earlier than this long from now (default: at once).
    pub delay: Option<DurationField>,
    /// New maximum number of tries.
    pub attempts: Option<i32>,
}

/// How many jobs were retried.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    /// How many.
    pub retried: u64,
}

/// How many jobs were removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// How many.
    pub removed: u64,
}

/// Retry a job (from any state) as a new attempt, with optional changes. The body may be
/// empty.
#[utoipa::path(post, path = "/jobs/{id}/retry", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    request_body(content = Option<RetryRequest>, description = "Optional changes"),
    responses(
        (status = 200, description = "Retried", body = Retried),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 422, description = "A bad change", body = ErrorBody),
    ))]
async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Retried>> {
    let request: RetryRequest = optional_body(body)?;
    if let Some(queue) = &request.queue {
        check_name("queue name", queue)?;
    }
    let opts = RetryOptions {
        queue: request.queue,
        priority: request.priority,
        delay: request
            .delay
            .as_ref()
            .map(|d| d.parse("delay"))
            .transpose()?,
        attempts: request.attempts,
        ..RetryOptions::default()
    };
    state.queue.retry_job(id, opts).await?;
    Ok(Json(Retried { retried: 1 }))
}

/// Remove a job that is not active.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is running: stop it first", body = ErrorBody),
    ))]
async fn remove(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Removed>> {
    state.queue.remove_job(id).await?;
    Ok(Json(Removed { removed: 1 }))
}

/// What a stop or kill did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stopped {
    /// The job.
    pub job: i64,
    /// The worker that got the command.
    pub worker: i64,
    /// `stop` or `kill`.
    pub command: String,
}

/// Sends stop or kill for a running job to its worker.
async fn stop_or_kill(state: &AppState, id: i64, kill: bool) -> ApiResult<Json<Stopped>> {
    let worker = state.queue.stop_job(id, kill).await?;
    Ok(Json(Stopped {
        job: id,
        worker,
        command: if kill { "kill" } else { "stop" }.to_string(),
    }))
}

/// Stop a running job: its task is told to stop and has its stop grace to return.
#[utoipa::path(post, path = "/jobs/{id}/stop", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "Sent to its worker", body = Stopped),
        (status = 404, description = "No such job, or its worker is gone", body = ErrorBody),
        (status = 409, description = "The job is not running", body = ErrorBody),
    ))]
async fn stop(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Stopped>> {
    stop_or_kill(&state, id, false).await
}

/// Kill a running job: its task is dropped at once.
#[utoipa::path(post, path = "/jobs/{id}/kill", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "Sent to its worker", body = Stopped),
        (status = 404, description = "No such job, or its worker is gone", body = ErrorBody),
        (status = 409, description = "The job is not running", body = ErrorBody),
    ))]
async fn kill(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Stopped>> {
    stop_or_kill(&state, id, true).await
}

/// Merge notes into a job's notes (a null value deletes its key); answers the job.
#[utoipa::path(post, path = "/jobs/{id}/notes", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    request_body(content = Object, description = "The notes to merge, a JSON object"),
    responses(
        (status = 200, description = "The job with its notes merged", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 422, description = "Not an object, or a NUL character", body = ErrorBody),
    ))]
async fn note(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(notes): Json<Value>,
) -> ApiResult<Json<JobView>> {
    if let Some(key) = notes
        .as_object()
        .and_then(|m| m.keys().find(|k| k.len() > underling::MAX_NAME))
    {
        check_name("note key", key)?;
    }
    // The library says "job N not found" for a missing job only on some paths: look first.
    existing(&state, id).await?;
    state.queue.note(id, notes).await?;
    let job = existing(&state, id).await?;
    Ok(Json(JobView::one(&state.queue, job).await?))
}

/// Which jobs a bulk retry or remove applies to. Every field narrows the set; an empty
/// filter (every job) is refused unless `all` is true.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkFilter {
    /// Only these ids.
    #[serde(default)]
    pub ids: Vec<i64>,
    /// Only jobs in these states (stored or derived: scheduled, retryable, waiting).
    #[serde(default)]
    pub states: Vec<String>,
    /// Only jobs in these queues.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Only jobs of these tasks.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Only jobs whose notes have all of these keys.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Only jobs that ended before this time.
    pub finished_before: Option<DateTime<Utc>>,
    /// Allow an empty filter, which matches every job.
    #[serde(default)]
    pub all: bool,
}

impl BulkFilter {
    /// The library's filter, or why this one is refused.
    fn into_filter(self) -> ApiResult<JobFilter> {
        let mut filter = JobFilter {
            ids: self.ids,
            queues: self.queues,
            tasks: self.tasks,
            notes: self.notes,
            finished_before: self.finished_before,
            ..JobFilter::default()
        };
        for state in &self.states {
            parse_state(state, &mut filter)?;
        }
        for (what, names) in [
            ("queue", &filter.queues),
            ("task", &filter.tasks),
            ("note key", &filter.notes),
        ] {
            for name in names {
                check_name(what, name)?;
            }
        }
        filter.validate()?;
        if filter == JobFilter::default() && !self.all {
            return Err(ApiError::invalid(
                "empty_filter",
                "an empty filter matches every job: give ids, states, queues, tasks, notes or finished_before, or \"all\": true",
            ));
        }
        Ok(filter)
    }
}

/// Retry every job matching a filter.
#[utoipa::path(post, path = "/jobs/retry", tag = "jobs", request_body = BulkFilter,
    responses(
        (status = 200, description = "How many were retried", body = Retried),
        (status = 422, description = "A bad or empty filter", body = ErrorBody),
    ))]
async fn retry_all(
    State(state): State<AppState>,
    Json(filter): Json<BulkFilter>,
) -> ApiResult<Json<Retried>> {
    let filter = filter.into_filter()?;
    let retried = state.queue.retry_jobs(&filter).await?;
    Ok(Json(Retried { retried }))
}

/// Remove every job matching a filter, except active ones (stop those first): without
/// states, inactive, finished and failed jobs are removed.
#[utoipa::path(post, path = "/jobs/remove", tag = "jobs", request_body = BulkFilter,
    responses(
        (status = 200, description = "How many were removed", body = Removed),
        (status = 422, description = "A bad or empty filter, or active jobs asked for", body = ErrorBody),
    ))]
async fn remove_all(
    State(state): State<AppState>,
    Json(filter): Json<BulkFilter>,
) -> ApiResult<Json<Removed>> {
    let mut filter = filter.into_filter()?;
    if filter.states.contains(&JobState::Active) {
        return Err(ApiError::invalid(
            "job_active",
            "active jobs cannot be removed: stop them first (POST /api/v1/jobs/{id}/stop)",
        ));
    }
    if filter.states.is_empty() && filter.inactive.is_empty() {
        filter.states = vec![JobState::Inactive, JobState::Finished, JobState::Failed];
    }
    let removed = state.queue.purge(&filter, 1000, |_| {}).await?;
    Ok(Json(Removed { removed }))
}
