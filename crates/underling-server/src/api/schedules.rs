//! `/schedules`: add, list, show, pause, resume, remove and run schedules (cron).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use underling::{CatchUp, Error, ScheduleInfo, ScheduleSpec};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::check_name;
use super::jobs::Enqueued;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(show, remove))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(run_now))
}

/// How many upcoming ticks `GET /schedules/{name}` shows.
const UPCOMING: usize = 5;

/// A schedule (`underling schedule list --json`).
#[derive(Debug, ToSchema)]
#[schema(as = ScheduleInfo)]
#[allow(dead_code)]
pub struct ScheduleDoc {
    /// The name.
    name: String,
    /// The cron expression (5 fields, or 6 with seconds first).
    cron: String,
    /// The IANA time zone it is read in.
    timezone: String,
    /// The task of its jobs.
    task: String,
    /// The arguments of its jobs.
    args: Value,
    /// The queue of its jobs (null: the task's default).
    queue: Option<String>,
    /// The priority of its jobs (null: the task's default).
    priority: Option<i32>,
    /// The attempts of its jobs (null: the task's default).
    attempts: Option<i32>,
    /// The other options of its jobs (`expire`, `timeout`, `notes`, `unique_key`, ...).
    #[schema(value_type = Object)]
    options: Value,
    /// What a scheduler does with ticks missed while none ran: `last` or `skip`.
    #[schema(value_type = String)]
    catch_up: CatchUp,
    /// A paused schedule enqueues nothing.
    paused: bool,
    /// The next tick to enqueue (null while paused).
    next_run: Option<DateTime<Utc>>,
    /// The tick of the last job it enqueued (for a run now, its time).
    last_run: Option<DateTime<Utc>>,
    /// The last job it enqueued.
    last_job_id: Option<i64>,
    /// When it was added.
    created: DateTime<Utc>,
    /// When it last changed.
    updated: DateTime<Utc>,
}

/// A schedule and its next ticks (`underling schedule show --json`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ScheduleDetail {
    /// The name.
    name: String,
    /// The cron expression (5 fields, or 6 with seconds first).
    cron: String,
    /// The IANA time zone it is read in.
    timezone: String,
    /// The task of its jobs.
    task: String,
    /// The arguments of its jobs.
    args: Value,
    /// The queue of its jobs (null: the task's default).
    queue: Option<String>,
    /// The priority of its jobs (null: the task's default).
    priority: Option<i32>,
    /// The attempts of its jobs (null: the task's default).
    attempts: Option<i32>,
    /// The other options of its jobs (`expire`, `timeout`, `notes`, `unique_key`, ...).
    #[schema(value_type = Object)]
    options: Value,
    /// What a scheduler does with ticks missed while none ran: `last` or `skip`.
    #[schema(value_type = String)]
    catch_up: CatchUp,
    /// A paused schedule enqueues nothing.
    paused: bool,
    /// The next tick to enqueue (null while paused).
    next_run: Option<DateTime<Utc>>,
    /// The tick of the last job it enqueued (for a run now, its time).
    last_run: Option<DateTime<Utc>>,
    /// The last job it enqueued.
    last_job_id: Option<i64>,
    /// When it was added.
    created: DateTime<Utc>,
    /// When it last changed.
    updated: DateTime<Utc>,
    /// Its next five ticks (empty while paused).
    upcoming: Vec<DateTime<Utc>>,
}

/// A schedule removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// The schedule.
    pub name: String,
    /// Always true (an unknown schedule answers 404).
    pub removed: bool,
}

/// The schedule of this name, or a 404.
async fn existing(state: &AppState, name: &str) -> ApiResult<ScheduleInfo> {
    check_name("schedule name", name)?;
    Ok(state
        .queue
        .schedule(name)
        .await?
        .ok_or_else(|| Error::ScheduleNotFound(name.to_string()))?)
}

/// Every schedule, by name, with its next run time.
#[utoipa::path(get, path = "/schedules", tag = "schedules",
    responses((status = 200, description = "The schedules", body = Vec<ScheduleDoc>)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<ScheduleInfo>>> {
    Ok(Json(state.queue.schedules().await?))
}

/// Add a schedule, or update the one of that name (its next run stays while its expression
/// and time zone do, and so does a pause). Everything is checked first; nothing is written
/// when something is wrong.
#[utoipa::path(post, path = "/schedules", tag = "schedules", request_body = ScheduleSpec,
    responses(
        (status = 201, description = "Added", body = ScheduleDoc),
        (status = 200, description = "Updated", body = ScheduleDoc),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A bad name, cron expression, time zone, task, queue or option", body = ErrorBody),
    ))]
async fn add(
    State(state): State<AppState>,
    Json(spec): Json<ScheduleSpec>,
) -> ApiResult<(StatusCode, Json<ScheduleInfo>)> {
    check_name("schedule name", &spec.name)?;
    check_name("task name", &spec.task)?;
    let stored = state.queue.add_schedule(spec.into_schedule()?).await?;
    let status = if stored.created == stored.updated {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)))
}

/// One schedule and its next five ticks.
#[utoipa::path(get, path = "/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleDetail),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ))]
async fn show(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let schedule = existing(&state, &name).await?;
    let upcoming = schedule.upcoming(UPCOMING)?;
    let mut shown = serde_json::to_value(&schedule).map_err(Error::from)?;
    if let Some(map) = shown.as_object_mut() {
        map.insert("upcoming".into(), json!(upcoming));
    }
    Ok(Json(shown))
}

/// Remove a schedule (the jobs it enqueued stay).
#[utoipa::path(delete, path = "/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ))]
async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    check_name("schedule name", &name)?;
    state.queue.remove_schedule(&name).await?;
    Ok(Json(Removed {
        name,
        removed: true,
    }))
}

/// Pause a schedule: it enqueues nothing until resumed.
#[utoipa::path(post, path = "/schedules/{name}/pause", tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "Paused", body = ScheduleDoc),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ))]
async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleInfo>> {
    check_name("schedule name", &name)?;
    state.queue.pause_schedule(&name).await?;
    Ok(Json(existing(&state, &name).await?))
}

/// Resume a paused schedule from its next tick (the ticks missed while paused do not run).
#[utoipa::path(post, path = "/schedules/{name}/resume", tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    responses(
        (status = 200, description = "Resumed", body = ScheduleDoc),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ))]
async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleInfo>> {
    check_name("schedule name", &name)?;
    state.queue.resume_schedule(&name).await?;
    Ok(Json(existing(&state, &name).await?))
}

/// Enqueue the schedule's job now, outside its ticks (also while it is paused); its next run
/// does not change.
#[utoipa::path(post, path = "/schedules/{name}/run-now", tag = "schedules",
    params(("name" = String, Path, description = "The schedule")),
    responses(
        (status = 201, description = "Enqueued", body = Enqueued),
        (status = 200, description = "A live job holds the schedule's own unique key: its id", body = Enqueued),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ))]
async fn run_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Enqueued>)> {
    check_name("schedule name", &name)?;
    let enqueued = state.queue.run_schedule_now(&name).await?;
    let status = if enqueued.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(Enqueued::from(enqueued))))
}
