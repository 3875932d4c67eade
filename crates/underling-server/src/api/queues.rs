//! `/queues`: list, pause and resume queues, the age of their backlogs and their throughput.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
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
