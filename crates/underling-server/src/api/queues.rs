//! `/queues`: list, pause and resume queues, turn FIFO order on and off, the age of their
//! backlogs and their throughput.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use underling::{QueueDue, QueueInfo, QueueThroughput};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::check_name;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(oldest_due))
        .routes(routes!(throughput))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(fifo))
}

/// A queue and its job counts (`underling queue list --json`).
#[derive(Debug, ToSchema)]
#[schema(as = QueueInfo)]
#[allow(dead_code)]
pub struct QueueDoc {
    /// Queue name.
    name: String,
    /// A paused queue is not claimed from.
    paused: bool,
    /// A FIFO queue runs one job at a time, in claim order.
    fifo: bool,
    /// Jobs waiting.
    inactive: u64,
    /// Jobs running.
    active: u64,
    /// Jobs failed.
    failed: u64,
    /// Jobs finished.
    finished: u64,
}

/// How long a queue's backlog has waited (`Queue::oldest_due`).
#[derive(Debug, ToSchema)]
#[schema(as = QueueDue)]
#[allow(dead_code)]
pub struct QueueDueDoc {
    /// The queue.
    queue: String,
    /// When its longest-waiting inactive job that is due fell due.
    oldest_due: DateTime<Utc>,
}

/// The jobs of one queue that ended recently (`Queue::throughput`).
#[derive(Debug, ToSchema)]
#[schema(as = QueueThroughput)]
#[allow(dead_code)]
pub struct QueueThroughputDoc {
    /// The queue.
    queue: String,
    /// Jobs that finished in the last hour (the current minute and the 59 before it).
    finished_last_hour: u64,
    /// Jobs that failed for good in the last hour.
    failed_last_hour: u64,
    /// Jobs that finished in the last five minutes (the current minute and the 4 before it).
    finished_last_5m: u64,
    /// Jobs that failed for good in the last five minutes.
    failed_last_5m: u64,
}

/// A queue's pause flag after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paused {
    /// The queue.
    pub queue: String,
    /// Whether it is paused now.
    pub paused: bool,
}

/// Every queue with jobs or a pause flag, with counts per state.
#[utoipa::path(get, path = "/queues", tag = "queues",
    responses((status = 200, description = "The queues", body = Vec<QueueDoc>)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<QueueInfo>>> {
    Ok(Json(state.queue.queues().await?))
}

/// For each queue with due inactive jobs, when the longest-waiting of them fell due (the age
/// of its backlog): index ranges only on PostgreSQL, however deep the backlog.
#[utoipa::path(get, path = "/queues/due", tag = "queues",
    responses((status = 200, description = "One entry per queue with due jobs", body = Vec<QueueDueDoc>)))]
async fn oldest_due(State(state): State<AppState>) -> ApiResult<Json<Vec<QueueDue>>> {
    Ok(Json(state.queue.oldest_due().await?))
}

/// For each queue where jobs ended in the last hour, how many finished and failed in that
/// hour and in its last five minutes (counters kept as jobs end, not a scan of the jobs).
#[utoipa::path(get, path = "/queues/throughput", tag = "queues",
    responses((status = 200, description = "One entry per queue where jobs ended, by name", body = Vec<QueueThroughputDoc>)))]
async fn throughput(State(state): State<AppState>) -> ApiResult<Json<Vec<QueueThroughput>>> {
    Ok(Json(state.queue.throughput().await?))
}

/// Sets a queue's pause flag.
async fn set_paused(state: &AppState, name: String, paused: bool) -> ApiResult<Json<Paused>> {
    check_name("queue name", &name)?;
    if paused {
        state.queue.pause_queue(&name).await?;
    } else {
        state.queue.resume_queue(&name).await?;
    }
    Ok(Json(Paused {
        queue: name,
        paused,
    }))
}

/// Pause a queue: its jobs are not claimed until it is resumed.
#[utoipa::path(post, path = "/queues/{name}/pause", tag = "queues",
    params(("name" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "Paused", body = Paused),
        (status = 422, description = "A bad queue name", body = ErrorBody),
    ))]
async fn pause(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Paused>> {
    set_paused(&state, name, true).await
}

/// Resume a paused queue.
#[utoipa::path(post, path = "/queues/{name}/resume", tag = "queues",
    params(("name" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "Resumed", body = Paused),
        (status = 422, description = "A bad queue name", body = ErrorBody),
    ))]
async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Paused>> {
    set_paused(&state, name, false).await
}

/// The body of `POST /queues/{name}/fifo`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FifoBody {
    /// `true` for strict FIFO order, `false` to let the queue's jobs run side by side.
    pub fifo: bool,
}

/// A queue's FIFO flag after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Fifo {
    /// The queue.
    pub queue: String,
    /// Whether it is FIFO now.
    pub fifo: bool,
}

/// Turn a queue's strict FIFO order on or off: a FIFO queue runs one job at a time across
/// all workers, in claim order (priority, then id), the next only after the previous one
/// settled for good (a job waiting for a retry holds the line).
#[utoipa::path(post, path = "/queues/{name}/fifo", tag = "queues",
    params(("name" = String, Path, description = "The queue")),
    request_body = FifoBody,
    responses(
        (status = 200, description = "Changed", body = Fifo),
        (status = 422, description = "A bad queue name or body", body = ErrorBody),
    ))]
async fn fifo(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<FifoBody>,
) -> ApiResult<Json<Fifo>> {
    check_name("queue name", &name)?;
    state.queue.set_fifo(&name, body.fifo).await?;
    Ok(Json(Fifo {
        queue: name,
        fifo: body.fifo,
    }))
}
