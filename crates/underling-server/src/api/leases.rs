//! Pull workers over HTTP: `POST /claims` hands out jobs with a lease each; the holder then
//! reports with `POST /jobs/{id}/ack` or `/reject`, or renews the lease with `/extend`,
//! quoting the lease's token (see [`underling::Queue::claim_leased`]). A lease that ran out
//! is lost: the job goes back to the queue (retried per its attempts) and whatever its old
//! holder reports afterwards is refused with 409 `lease_lost`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use underling::{LeaseOptions, LeasedJob, MAX_LEASED_CLAIM, Rejection, Settled};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{DurationField, check_name, optional_body};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(claim))
        .routes(routes!(ack))
        .routes(routes!(reject))
        .routes(routes!(extend))
}

/// The lease of a claim that names none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// What to claim. Every field is optional: by default one job of any task from the queue
/// `default`, for 30 seconds.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Queues to claim from (default: `default` and the queues the tasks' workers published).
    #[serde(default)]
    pub queues: Vec<String>,
    /// Tasks to claim (default: any).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// At most this many jobs (1 to 1000; default 1).
    pub limit: Option<usize>,
    /// How long each lease lasts (`"30s"`, `"5m"` or seconds; at least 1 s; default 30 s).
    pub lease: Option<DurationField>,
}

/// A job handed out with a lease.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimedJob {
    /// The job's id.
    pub id: i64,
    /// The task name.
    pub task: String,
    /// The queue.
    pub queue: String,
    /// The job's arguments.
    pub args: Value,
    /// Higher runs first.
    pub priority: i32,
    /// How many times it may be tried in all.
    pub attempts: i32,
    /// How many times it was retried before this attempt.
    pub retries: i32,
    /// When it was enqueued.
    pub created: DateTime<Utc>,
    /// Its notes.
    #[schema(value_type = Object)]
    pub notes: Map<String, Value>,
    /// The lease's token: quote it to ack, reject or extend.
    pub token: String,
    /// When the lease runs out unless it is extended.
    pub lease_expires: DateTime<Utc>,
}

impl From<LeasedJob> for ClaimedJob {
    fn from(leased: LeasedJob) -> Self {
        let job = leased.job;
        ClaimedJob {
            id: job.id,
            task: job.task,
            queue: job.queue,
            args: job.args,
            priority: job.priority,
            attempts: job.attempts,
            retries: job.retries,
            created: job.created,
            notes: job.notes,
            token: leased.lease.token,
            lease_expires: leased.lease.expires,
        }
    }
}

/// The jobs of a claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct Claimed {
    /// The jobs, highest priority first, then oldest; empty when none is ready.
    pub jobs: Vec<ClaimedJob>,
}

/// Claim jobs with a lease, for a worker that is not an underling worker (a pull worker).
/// Leases that ran out are rescued first.
#[utoipa::path(post, path = "/claims", tag = "leases",
    request_body(content = Option<ClaimRequest>, description = "What to claim (empty: the defaults)"),
    responses(
        (status = 200, description = "The jobs claimed (maybe none)", body = Claimed),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
    ))]
async fn claim(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Claimed>> {
    let request: ClaimRequest = optional_body(body)?;
    for queue in &request.queues {
        check_name("queue name", queue)?;
    }
    for task in &request.tasks {
        check_name("task name", task)?;
    }
    let limit = request.limit.unwrap_or(1);
    if limit == 0 || limit > MAX_LEASED_CLAIM {
        return Err(ApiError::invalid(
            "invalid_option",
            format!("limit: give 1 to {MAX_LEASED_CLAIM} jobs, got {limit}"),
        ));
    }
    let lease = match &request.lease {
        Some(lease) => lease.parse("lease")?,
        None => DEFAULT_LEASE,
    };
    let opts = LeaseOptions {
        queues: request.queues,
        tasks: request.tasks,
        limit,
        lease,
    };
    let jobs = state.queue.claim_leased(&opts).await?;
    Ok(Json(Claimed {
        jobs: jobs.into_iter().map(ClaimedJob::from).collect(),
    }))
}

/// An ack: the lease and the job's result.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// The token the claim gave with the job.
    pub token: String,
    /// The job's result, any JSON (default `null`).
    #[serde(default)]
    pub result: Value,
}

/// A job after an ack or a reject.
#[derive(Debug, Serialize, ToSchema)]
pub struct Settlement {
    /// The job.
    pub id: i64,
    /// Its state now: `finished`, `inactive` (to be retried) or `failed`.
    pub state: String,
}

/// Finish a leased job with its result.
#[utoipa::path(post, path = "/jobs/{id}/ack", tag = "leases", request_body = AckRequest,
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job is finished", body = Settlement),
        (status = 400, description = "Not JSON, or not an id", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The lease is lost: it ran out, or the job was settled or handed out again", body = ErrorBody),
        (status = 422, description = "Not a token of this job", body = ErrorBody),
    ))]
async fn ack(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(request): Json<AckRequest>,
) -> ApiResult<Json<Settlement>> {
    state.queue.ack(id, &request.token, request.result).await?;
    Ok(Json(Settlement {
        id,
        state: "finished".into(),
    }))
}

/// A reject: the lease, the error and whether to retry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// The token the claim gave with the job.
    pub token: String,
    /// The error, any JSON, stored as the job's result (default `"rejected"`).
    pub error: Option<Value>,
    /// Retry where tries are left (default `true`); `false` fails the job for good.
    #[serde(default = "yes")]
    pub retry: bool,
    /// The delay before the retry (`"90s"` or seconds; default: the backoff, `(retries + 1)⁴` s).
    pub delay: Option<DurationField>,
}

fn yes() -> bool {
    true
}

/// Fail a leased attempt: retried where tries are left (unless `retry` is false), failed for
/// good otherwise.
#[utoipa::path(post, path = "/jobs/{id}/reject", tag = "leases", request_body = RejectRequest,
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job is to be retried (inactive) or failed", body = Settlement),
        (status = 400, description = "Not JSON, or not an id", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The lease is lost: it ran out, or the job was settled or handed out again", body = ErrorBody),
        (status = 422, description = "Not a token of this job, or a bad delay", body = ErrorBody),
    ))]
async fn reject(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(request): Json<RejectRequest>,
) -> ApiResult<Json<Settlement>> {
    let delay = match &request.delay {
        Some(_) if !request.retry => {
            return Err(ApiError::invalid(
                "invalid_option",
                "delay is the delay before a retry: give it with retry true (or leave it out)",
            ));
        }
        Some(delay) => Some(delay.parse("delay")?),
        None => None,
    };
    let rejection = Rejection {
        error: request
            .error
            .unwrap_or_else(|| Value::String("rejected".into())),
        retry: request.retry,
        delay,
    };
    let settled = state.queue.reject(id, &request.token, rejection).await?;
    let state = match settled {
        Settled::Retried => "inactive",
        Settled::Failed => "failed",
        // The lease check and the settle hold the row: neither happens here.
        other => {
            return Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the reject of job {id} settled it as {other:?}"),
            ));
        }
    };
    Ok(Json(Settlement {
        id,
        state: state.into(),
    }))
}

/// An extend: the lease and how long it should last from now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// The token the claim gave with the job.
    pub token: String,
    /// How long the lease lasts from now (`"30s"`, `"5m"` or seconds; default 30 s).
    pub lease: Option<DurationField>,
}

/// A renewed lease.
#[derive(Debug, Serialize, ToSchema)]
pub struct Extended {
    /// The job.
    pub id: i64,
    /// When the lease now runs out.
    pub lease_expires: DateTime<Utc>,
}

/// Renew the lease on a job: it then runs out `lease` from now.
#[utoipa::path(post, path = "/jobs/{id}/extend", tag = "leases", request_body = ExtendRequest,
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The lease is renewed", body = Extended),
        (status = 400, description = "Not JSON, or not an id", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The lease is lost: it ran out, or the job was settled or handed out again", body = ErrorBody),
        (status = 422, description = "Not a token of this job, or a bad lease", body = ErrorBody),
    ))]
async fn extend(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(request): Json<ExtendRequest>,
) -> ApiResult<Json<Extended>> {
    let lease = match &request.lease {
        Some(lease) => lease.parse("lease")?,
        None => DEFAULT_LEASE,
    };
    let lease_expires = state.queue.extend(id, &request.token, lease).await?;
    Ok(Json(Extended { id, lease_expires }))
}
