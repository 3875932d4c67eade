//! `/workers`: list and show workers, send them remote commands.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use underling::{Error, RemoteCommand, WorkerInfo};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(command))
        .routes(routes!(broadcast))
}

/// A registered worker (`underling worker show --json`).
#[derive(Debug, ToSchema)]
#[schema(as = WorkerInfo)]
#[allow(dead_code)]
pub struct WorkerDoc {
    /// Worker id.
    id: i64,
    /// Host name.
    host: String,
    /// Process id.
    pid: i32,
    /// When it registered.
    started: DateTime<Utc>,
    /// Its last heartbeat.
    last_heartbeat: DateTime<Utc>,
    /// What it last reported about itself (queues, concurrency, ...).
    status: Value,
    /// Ids of the jobs it is running.
    jobs: Vec<i64>,
}

/// A remote command for one worker.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// `stop`, `kill`, `jobs`, `pause` or `resume`.
    pub command: String,
    /// Its arguments: `[42]` (a job) for stop and kill, `[4]` for jobs; default `[]`.
    #[serde(default)]
    pub args: Value,
}

/// A remote command for some or all workers.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// `stop`, `kill`, `jobs`, `pause` or `resume`.
    pub command: String,
    /// Its arguments: `[42]` (a job) for stop and kill, `[4]` for jobs; default `[]`.
    #[serde(default)]
    pub args: Value,
    /// The workers to send it to; all when empty.
    #[serde(default)]
    pub ids: Vec<i64>,
}

/// How many workers got a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sent {
    /// The command.
    pub command: String,
    /// How many workers got it.
    pub sent: u64,
}

/// Registered workers, oldest first.
#[utoipa::path(get, path = "/workers", tag = "workers",
    responses((status = 200, description = "The workers", body = Vec<WorkerDoc>)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<WorkerInfo>>> {
    Ok(Json(state.queue.workers().await?))
}

/// One worker.
#[utoipa::path(get, path = "/workers/{id}", tag = "workers",
    params(("id" = i64, Path, description = "The worker id")),
    responses(
        (status = 200, description = "The worker", body = WorkerDoc),
        (status = 404, description = "No such worker", body = ErrorBody),
    ))]
async fn show(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<WorkerInfo>> {
    Ok(Json(state.queue.worker(id).await?))
}

/// Checks the command, then that every worker exists, then sends.
async fn send(state: &AppState, name: String, args: &Value, ids: &[i64]) -> ApiResult<Json<Sent>> {
    let args = if args.is_null() {
        Value::Array(Vec::new())
    } else {
        args.clone()
    };
    let command = RemoteCommand::parse(&name, &args)?;
    if !ids.is_empty() {
        let known: Vec<i64> = state.queue.workers().await?.iter().map(|w| w.id).collect();
        if let Some(&missing) = ids.iter().find(|id| !known.contains(id)) {
            return Err(Error::WorkerNotFound(missing).into());
        }
    }
    let sent = state.queue.send(command, ids).await?;
    Ok(Json(Sent {
        command: name,
        sent,
    }))
}

/// Send a remote command to one worker.
#[utoipa::path(post, path = "/workers/{id}/commands", tag = "workers",
    params(("id" = i64, Path, description = "The worker id")),
    request_body = CommandRequest,
    responses(
        (status = 200, description = "Sent", body = Sent),
        (status = 404, description = "No such worker", body = ErrorBody),
        (status = 422, description = "An unknown command or bad arguments", body = ErrorBody),
    ))]
async fn command(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(request): Json<CommandRequest>,
) -> ApiResult<Json<Sent>> {
    send(&state, request.command, &request.args, &[id]).await
}

/// Send a remote command to the workers given, or to all.
#[utoipa::path(post, path = "/workers/commands", tag = "workers",
    request_body = BroadcastRequest,
    responses(
        (status = 200, description = "Sent", body = Sent),
        (status = 404, description = "A worker does not exist (nothing was sent)", body = ErrorBody),
        (status = 422, description = "An unknown command or bad arguments", body = ErrorBody),
    ))]
async fn broadcast(
    State(state): State<AppState>,
    Json(request): Json<BroadcastRequest>,
) -> ApiResult<Json<Sent>> {
    send(&state, request.command, &request.args, &request.ids).await
}
