//! `/stats`, `/history`, `/history/minutes` and `/tasks`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use underling::{HistoryPoint, MinutePoint, Stats, TaskDefaults};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::Json;
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(history))
        .routes(routes!(history_minutes))
        .routes(routes!(tasks))
}

/// Counts across the store (`underling stats --json`).
#[derive(Debug, ToSchema)]
#[schema(as = Stats)]
#[allow(dead_code)]
pub struct StatsDoc {
    /// Inactive jobs (including delayed ones).
    inactive_jobs: u64,
    /// Active jobs.
    active_jobs: u64,
    /// Finished jobs.
    finished_jobs: u64,
    /// Failed jobs.
    failed_jobs: u64,
    /// Inactive jobs that are not yet due.
    delayed_jobs: u64,
    /// Workers running at least one job.
    active_workers: u64,
    /// Workers running none.
    inactive_workers: u64,
    /// Locks currently held.
    active_locks: u64,
    /// Jobs ever enqueued (the highest id handed out).
    enqueued_jobs: u64,
    /// Seconds the database server has been up (PostgreSQL), or null.
    uptime: Option<u64>,
}

/// Finished and failed jobs in one hour (`underling history --json`).
#[derive(Debug, ToSchema)]
#[schema(as = HistoryPoint)]
#[allow(dead_code)]
pub struct HistoryDoc {
    /// The start of the hour (UTC).
    hour: DateTime<Utc>,
    /// Jobs that finished in that hour.
    finished: u64,
    /// Jobs that failed for good in that hour.
    failed: u64,
    /// Attempts that failed in that hour, retried or not.
    failed_attempts: u64,
}

/// Finished and failed jobs in one minute.
#[derive(Debug, ToSchema)]
#[schema(as = MinutePoint)]
#[allow(dead_code)]
pub struct MinuteDoc {
    /// The start of the minute (UTC).
    minute: DateTime<Utc>,
    /// Jobs that finished in that minute.
    finished: u64,
    /// Jobs that failed for good in that minute.
    failed: u64,
    /// Attempts that failed in that minute, retried or not.
    failed_attempts: u64,
}

/// A task's enqueue defaults, as its workers published them (`underling task list --json`).
#[derive(Debug, ToSchema)]
#[schema(as = TaskDefaults)]
#[allow(dead_code)]
pub struct TaskDoc {
    /// The task's name.
    name: String,
    /// The queue its jobs go to when the enqueue names none.
    queue: Option<String>,
    /// Their priority when the enqueue gives none.
    priority: Option<i32>,
    /// Their attempts when the enqueue gives none.
    attempts: Option<i32>,
    /// How long one of its jobs may run, in milliseconds.
    timeout_ms: Option<u64>,
    /// When a worker last published these.
    published: DateTime<Utc>,
}

/// Job, worker and lock counts.
#[utoipa::path(get, path = "/stats", tag = "stats",
    responses((status = 200, description = "The counts", body = StatsDoc)))]
async fn stats(State(state): State<AppState>) -> ApiResult<Json<Stats>> {
    Ok(Json(state.queue.stats().await?))
}

/// Finished and failed jobs, and failed attempts, per hour over the last 24 hours, oldest
/// first.
#[utoipa::path(get, path = "/history", tag = "stats",
    responses((status = 200, description = "One point per hour", body = Vec<HistoryDoc>)))]
async fn history(State(state): State<AppState>) -> ApiResult<Json<Vec<HistoryPoint>>> {
    Ok(Json(state.queue.history().await?))
}

/// Finished and failed jobs, and failed attempts, per minute over the last hour, oldest first
/// (the current minute last).
#[utoipa::path(get, path = "/history/minutes", tag = "stats",
    responses((status = 200, description = "One point per minute", body = Vec<MinuteDoc>)))]
async fn history_minutes(State(state): State<AppState>) -> ApiResult<Json<Vec<MinutePoint>>> {
    Ok(Json(state.queue.history_minutes().await?))
}

/// Every task a worker published, with the defaults its jobs get.
#[utoipa::path(get, path = "/tasks", tag = "stats",
    responses((status = 200, description = "The tasks", body = Vec<TaskDoc>)))]
async fn tasks(State(state): State<AppState>) -> ApiResult<Json<Vec<TaskDefaults>>> {
    Ok(Json(state.queue.tasks().await?))
}
