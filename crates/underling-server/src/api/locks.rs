//! `/locks`: list, acquire and release named locks.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use underling::LockInfo;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{DurationField, check_name};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The routes of this module (see [`super::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(acquire, release))
}

/// A live hold on a lock (`underling lock list --json`).
#[derive(Debug, ToSchema)]
#[schema(as = LockInfo)]
#[allow(dead_code)]
pub struct LockDoc {
    /// Lock row id.
    id: i64,
    /// Lock name.
    name: String,
    /// When this hold expires.
    expires: DateTime<Utc>,
}

/// Which locks to list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LocksQuery {
    /// Only holds of this lock (repeatable); all when none is given.
    name: Option<Vec<String>>,
}

/// How to take a hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireRequest {
    /// How long the hold lasts (`"90s"`, `"5m"` or seconds).
    pub duration: DurationField,
    /// How many holds may be live at once (default 1).
    #[serde(default = "one")]
    pub limit: u32,
}

fn one() -> u32 {
    1
}

/// A hold taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct Acquired {
    /// The lock.
    pub name: String,
    /// Always true (a lock that is taken answers 409).
    pub acquired: bool,
}

/// A hold released, or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct Released {
    /// The lock.
    pub name: String,
    /// Whether a hold was released (false: none was held).
    pub released: bool,
}

/// Live lock holds, of the names given or all.
#[utoipa::path(get, path = "/locks", tag = "locks", params(LocksQuery),
    responses(
        (status = 200, description = "The holds", body = Vec<LockDoc>),
        (status = 400, description = "An unknown parameter", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Vec<LockInfo>>> {
    let mut names = Vec::new();
    for (key, value) in pairs {
        if key != "name" {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown parameter {key:?}: expected name"),
            ));
        }
        check_name("lock name", &value)?;
        names.push(value);
    }
    Ok(Json(state.queue.locks(&names).await?))
}

/// Take a hold on a named lock, unless `limit` holds are live (409 then).
#[utoipa::path(post, path = "/locks/{name}", tag = "locks",
    params(("name" = String, Path, description = "The lock")),
    request_body = AcquireRequest,
    responses(
        (status = 200, description = "Taken", body = Acquired),
        (status = 409, description = "Taken by others: `limit` holds are live", body = ErrorBody),
        (status = 422, description = "A bad name, duration or limit", body = ErrorBody),
    ))]
async fn acquire(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<AcquireRequest>,
) -> ApiResult<Json<Acquired>> {
    check_name("lock name", &name)?;
    let duration = request.duration.parse("duration")?;
    if !state.queue.lock(&name, duration, request.limit).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "lock_taken",
            format!(
                "lock {name} is taken: {} live hold(s) already; try again later",
                request.limit
            ),
        ));
    }
    Ok(Json(Acquired {
        name,
        acquired: true,
    }))
}

/// Release the hold on a lock that expires first.
#[utoipa::path(delete, path = "/locks/{name}", tag = "locks",
    params(("name" = String, Path, description = "The lock")),
    responses(
        (status = 200, description = "Released, or not held", body = Released),
        (status = 422, description = "A bad name", body = ErrorBody),
    ))]
async fn release(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Released>> {
    check_name("lock name", &name)?;
    let released = state.queue.unlock(&name).await?;
    Ok(Json(Released { name, released }))
}
