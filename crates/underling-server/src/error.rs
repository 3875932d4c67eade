//! The one error shape of the API: `{"error": {"code": "...", "message": "..."}}` with the
//! right status, for the library's errors, bad requests and axum's own rejections alike.
//!
//! Messages say what was wrong and how to fix it. Server-side failures (a database error, a
//! broken invariant) are logged in full and answered with a generic message: no SQL, no
//! driver text, no password or stack trace ever leaves the server.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An API error: a status, a stable machine-readable code and a message for people.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code, e.g. `not_found`, `invalid_json`, `unauthorized`.
    pub code: &'static str,
    /// What went wrong and how to fix it.
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`not_found`, `invalid_json`, `unauthorized`, ...).
    pub code: String,
    /// What went wrong and how to fix it.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: a request that cannot be understood (syntax).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: a well-formed request with a value that cannot be used.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404 for a path that no route serves.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no_route",
            format!(
                "no route for {path}: the API is under /api/v1 (its routes are listed in /api/v1/openapi.json)"
            ),
        )
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        // For the request log: which error this was.
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// The code of an error response, kept in the response's extensions for logs and tests of
/// middleware.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// What the client sees of an error that is the server's fault.
const INTERNAL: &str = "the server failed to handle the request; the details are in its log";

impl From<underling::Error> for ApiError {
    fn from(error: underling::Error) -> Self {
        use underling::Error as E;
        let message = error.to_string();
        match &error {
            E::JobNotFound(_) | E::WorkerNotFound(_) | E::ScheduleNotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            E::ParentNotFound(_) => ApiError::invalid("parent_not_found", message),
            E::NameTooLong { .. } => ApiError::invalid("too_long", message),
            E::InvalidTask(_) => ApiError::invalid("invalid_task", message),
            E::InvalidQueue(_) => ApiError::invalid("invalid_queue", message),
            E::InvalidArgs(_) => ApiError::invalid("invalid_args", message),
            E::InvalidNotes(_) => ApiError::invalid("invalid_notes", message),
            E::InvalidOption(_) => ApiError::invalid("invalid_option", message),
            E::InvalidLimit(_) => ApiError::invalid("invalid_limit", message),
            E::InvalidDuration(_) => ApiError::invalid("invalid_duration", message),
            E::UniqueConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "unique_conflict", message)
            }
            E::InvalidCron { .. } => ApiError::invalid("invalid_cron", message),
            E::InvalidTimezone(_) => ApiError::invalid("invalid_timezone", message),
            E::InvalidScheduleName(_) => ApiError::invalid("invalid_schedule_name", message),
            E::InvalidSchedule { .. } => ApiError::invalid("invalid_schedule", message),
            E::InvalidCommand(_) => ApiError::invalid("invalid_command", message),
            E::UnknownState(_) => ApiError::invalid("unknown_state", message),
            E::InvalidLease { .. } => ApiError::invalid("invalid_lease", message),
            E::LeaseLost { .. } => ApiError::new(StatusCode::CONFLICT, "lease_lost", message),
            E::JobActive(_) => ApiError::new(StatusCode::CONFLICT, "job_active", message),
            E::JobNotActive { .. } => {
                ApiError::new(StatusCode::CONFLICT, "job_not_active", message)
            }
            E::NotMigrated(_) => {
                tracing::error!(error = %message, "the database is not migrated");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_migrated",
                    "the database is not migrated: run `underling migrate`",
                )
            }
            E::Connect { .. } | E::DatabaseMissing { .. } => unavailable(&message),
            E::Database(db) if is_unavailable(db) => unavailable(&message),
            _ => {
                tracing::error!(error = %message, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", INTERNAL)
            }
        }
    }
}

/// 503: the database cannot be reached now (logged in full, answered without details).
fn unavailable(message: &str) -> ApiError {
    tracing::error!(error = %message, "the database is unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
        "the database cannot be reached; try again later",
    )
}

/// Whether a driver error means the database is out of reach (rather than a failed query).
fn is_unavailable(error: &underling::sqlx::Error) -> bool {
    use underling::sqlx::Error as S;
    matches!(
        error,
        S::Io(_) | S::PoolTimedOut | S::PoolClosed | S::Tls(_) | S::WorkerCrashed
    )
}

/// 413: the body is over the server's limit.
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the server's limit (--body-limit): send a smaller body (fewer jobs per batch, shorter arguments)",
    )
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(
            "invalid_path",
            format!(
                "{}: ids are whole numbers, e.g. /api/v1/jobs/42",
                rejection.body_text()
            ),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

/// `Result` with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;
