//! `/healthz` (the process is up) and `/readyz` (the database answers and is migrated): for
//! load balancers and orchestrators, never behind a token.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;

/// How long `/readyz` waits for the database before it says 503.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The health routes (outside `/api/v1`, without a token).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (the process is up) or `ready` (the database answers and is migrated).
    pub status: String,
}

/// The process is up: always 200 while it runs.
#[utoipa::path(get, path = "/healthz", tag = "health", security(),
    responses((status = 200, description = "Up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_string(),
    })
}

/// The database answers and every migration is applied: 200, else 503.
#[utoipa::path(get, path = "/readyz", tag = "health", security(),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database cannot be reached or is not migrated", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    match tokio::time::timeout(READY_TIMEOUT, state.queue.check_migrated()).await {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ready".to_string(),
        })),
        Ok(Err(underling::Error::NotMigrated(reason))) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_migrated",
            format!("the database is not migrated ({reason}): run `underling migrate`"),
        )),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database cannot be reached",
            ))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            format!(
                "the database did not answer within {}",
                humantime::format_duration(READY_TIMEOUT)
            ),
        )),
    }
}
