//! `/limits`: set, list and remove exact concurrency and rate limits.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use underling::{Limit, LimitScope, Rate};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::check_name;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, set))
        .routes(routes!(remove))
}

/// What a limit counts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    /// `queue` (the jobs of one queue), `task` (of one task, in any queue), `args` or `notes`
    /// (for each value of a key of the jobs' arguments or notes, the jobs with that value).
    pub kind: String,
    /// The queue, the task, or the key's dotted path (`tenant`, `customer.id`).
    pub name: String,
}

impl ScopeBody {
    fn scope(self) -> ApiResult<LimitScope> {
        check_name("limit name", &self.name)?;
        let scope = match self.kind.as_str() {
            "queue" => LimitScope::Queue(self.name),
            "task" => LimitScope::Task(self.name),
            "args" => LimitScope::Args(self.name),
            "notes" => LimitScope::Notes(self.name),
            other => {
                return Err(ApiError::invalid(
                    "invalid_limit",
                    format!("unknown limit kind {other:?}: expected queue, task, args or notes"),
                ));
            }
        };
        scope.validate()?;
        Ok(scope)
    }
}

/// A limit to set (`underling limit set`): a concurrency, a rate or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimit {
    /// Which jobs it counts.
    pub scope: ScopeBody,
    /// At most this many jobs of a group active at once.
    pub concurrency: Option<u32>,
    /// At most COUNT starts of a group in any window of PERIOD: `"100/1m"`, `"5/s"`.
    pub rate: Option<String>,
}

/// A limit (`underling limit list --json`).
#[derive(Debug, ToSchema)]
#[schema(as = Limit)]
#[allow(dead_code)]
pub struct LimitDoc {
    /// `{"kind": "queue" | "task" | "args" | "notes", "name": "..."}`.
    scope: serde_json::Value,
    /// At most this many jobs of a group active at once.
    concurrency: Option<u32>,
    /// `COUNT/PERIOD`, e.g. `"100/1m"`.
    rate: Option<String>,
}

/// What a removal did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// Always true (a missing limit is a 404).
    pub removed: bool,
}

/// Every limit, by kind and name.
#[utoipa::path(get, path = "/limits", tag = "limits",
    responses((status = 200, description = "The limits", body = Vec<LimitDoc>)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<Limit>>> {
    Ok(Json(state.queue.limits().await?))
}

/// Set a limit, replacing the one of the same scope; claims obey it from now on.
#[utoipa::path(post, path = "/limits", tag = "limits", request_body = SetLimit,
    responses(
        (status = 200, description = "The limit as set", body = LimitDoc),
        (status = 422, description = "A malformed limit (nothing changed)", body = ErrorBody),
    ))]
async fn set(State(state): State<AppState>, Json(body): Json<SetLimit>) -> ApiResult<Json<Limit>> {
    let rate = body.rate.as_deref().map(str::parse::<Rate>).transpose()?;
    let limit = Limit {
        scope: body.scope.scope()?,
        concurrency: body.concurrency,
        rate,
    };
    state.queue.set_limit(&limit).await?;
    Ok(Json(limit))
}

/// Remove a limit.
#[utoipa::path(delete, path = "/limits/{kind}/{name}", tag = "limits",
    params(
        ("kind" = String, Path, description = "queue, task, args or notes"),
        ("name" = String, Path, description = "The queue, the task or the key's path"),
    ),
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 404, description = "No such limit", body = ErrorBody),
        (status = 422, description = "A malformed scope", body = ErrorBody),
    ))]
async fn remove(
    State(state): State<AppState>,
    Path((kind, name)): Path<(String, String)>,
) -> ApiResult<Json<Removed>> {
    let scope = ScopeBody { kind, name }.scope()?;
    if !state.queue.remove_limit(&scope).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no limit on {scope}"),
        ));
    }
    Ok(Json(Removed { removed: true }))
}
