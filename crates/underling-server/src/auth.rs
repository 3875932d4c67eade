//! Bearer tokens: with a token set, every route but `/healthz` and `/readyz` needs
//! `Authorization: Bearer <token>`; a read-only token may only `GET` (and `HEAD`); a workload
//! token may only enqueue and report on leased jobs (see [`workload_may`]).
//! Tokens are compared in constant time. The web UI's session cookie stands for the token it
//! was opened with; requests that a browser sends by itself (by cookie, or to a server without
//! a token) may change something only from this server's own pages (see [`CSRF_HEADER`]).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The tokens the server accepts. Without a full token, every request has full access (the
/// server then listens on a loopback address only: see [`crate::ServerOptions::check`]).
pub struct Auth {
    token: Option<Vec<u8>>,
    read_only: Option<Vec<u8>>,
    workload: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("Auth")
            .field("token", &self.token.is_some())
            .field("read_only", &self.read_only.is_some())
            .field("workload", &self.workload.is_some())
            .finish()
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything.
    Full,
    /// `GET` and `HEAD` only.
    ReadOnly,
    /// What HTTP workloads need: enqueue, and ack, reject or extend leased jobs (see
    /// [`workload_may`]).
    Workload,
}

impl Auth {
    /// Accepts `token` for everything and `read_only` for reads.
    pub fn new(token: Option<&str>, read_only: Option<&str>) -> Auth {
        Auth {
            token: token.map(|t| t.as_bytes().to_vec()),
            read_only: read_only.map(|t| t.as_bytes().to_vec()),
            workload: None,
        }
    }

    /// Also accepts `workload` for what HTTP workloads need ([`Access::Workload`]).
    pub fn with_workload(mut self, workload: Option<&str>) -> Auth {
        self.workload = workload.map(|t| t.as_bytes().to_vec());
        self
    }

    /// Whether any token is required.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.read_only.is_some()
    }

    /// What the `Authorization` header (if any) grants, or why it grants nothing.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<Access, ApiError> {
        if !self.enabled() {
            return Ok(Access::Full);
        }
        let Some(value) = authorization else {
            return Err(unauthorized(
                "this server needs a token: send the header Authorization: Bearer <token>",
            ));
        };
        let Some(given) = bearer(value) else {
            return Err(unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        // Both compared, whatever the first says, so the time taken does not tell which
        // token was close.
        let full = matches(self.token.as_deref(), given);
        let read = matches(self.read_only.as_deref(), given);
        let workload = matches(self.workload.as_deref(), given);
        if full {
            Ok(Access::Full)
        } else if read {
            Ok(Access::ReadOnly)
        } else if workload {
            Ok(Access::Workload)
        } else {
            Err(unauthorized("the token is not valid for this server"))
        }
    }
}

/// The token of a `Bearer <token>` header value (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Constant-time equality of a configured token and the one given.
fn matches(expected: Option<&[u8]>, given: &[u8]) -> bool {
    expected.is_some_and(|expected| bool::from(expected.ct_eq(given)))
}

/// 401 with the `WWW-Authenticate` challenge.
fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// How a request proved its access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer` (scripts, the CLI): a browser never adds it by itself, so it
    /// needs no CSRF check.
    Bearer,
    /// The web UI's session cookie ([`crate::ui::session`]): a browser sends it by itself.
    Cookie,
    /// Nothing: the server has no token (it listens on loopback only).
    Open,
}

/// The header the web UI sends with every request that changes something. A page of another
/// origin cannot send a custom header without a CORS preflight, which this server does not
/// grant (unless `--cors-origin` says so), so its presence proves the request came from the
/// UI's own pages.
pub const CSRF_HEADER: &str = "x-underling-csrf";

/// What a request may do, and how it proved it.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(Access, Via), ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return state
            .auth
            .check(Some(value.as_bytes()))
            .map(|access| (access, Via::Bearer));
    }
    if !state.auth.enabled() {
        return Ok((Access::Full, Via::Open));
    }
    let session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(crate::ui::session::from_cookie_header);
    if let Some(id) = session {
        return match state.sessions.access(id) {
            Some(access) => Ok((access, Via::Cookie)),
            None => Err(unauthorized(
                "the session has expired or was ended: log in again",
            )),
        };
    }
    state.auth.check(None).map(|access| (access, Via::Bearer))
}

/// Whether a request that a browser may have sent by itself (cookie-authenticated, or to a
/// server without a token) may change something: it must come from this server's own pages
/// (an `Origin`, when the browser sends one, of this host or of a `--cors-origin`), and a
/// cookie-authenticated one must also carry [`CSRF_HEADER`].
fn cross_site(state: &AppState, headers: &HeaderMap, via: Via) -> Option<ApiError> {
    if via == Via::Bearer {
        return None;
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| !host.is_empty() && rest == host);
        let allowed = state
            .options
            .cors_origins
            .iter()
            .any(|o| o == "*" || o == origin);
        if !own && !allowed {
            return Some(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site",
                format!(
                    "a request from the page of another origin ({origin}) may not change anything here"
                ),
            ));
        }
    }
    if via == Via::Cookie && !headers.contains_key(CSRF_HEADER) {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "a request authenticated by the session cookie must send the header X-Underling-CSRF: 1 to change anything",
        ));
    }
    None
}

/// Whether the workload token may make this request: `POST /api/v1/jobs` and
/// `/api/v1/jobs/batch` (publish follow-up jobs), and `POST /api/v1/jobs/{id}/ack`, `/reject`
/// and `/extend` (report on a leased job). Nothing else, reads included.
pub fn workload_may(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let Some(rest) = path.strip_prefix("/api/v1/jobs") else {
        return false;
    };
    match rest {
        "" | "/batch" => true,
        _ => rest
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(id, action)| {
                id.parse::<i64>().is_ok() && matches!(action, "ack" | "reject" | "extend")
            }),
    }
}

/// The workload a bearer token is scoped to ([`underling::Queue::set_workload_token`]), when
/// the server has tokens and the request's token is none of its own.
async fn scoped_workload(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    if !state.auth.enabled() {
        return Ok(None);
    }
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()))
        .and_then(|token| std::str::from_utf8(token).ok())
    else {
        return Ok(None);
    };
    Ok(state.queue.workload_of_token(token).await?)
}

/// What a token scoped to one workload may do: `POST /api/v1/jobs` (publish a follow-up
/// job), and `POST /api/v1/jobs/{id}/ack`, `/reject` and `/extend` of a job of that
/// workload's task (a job that does not exist is left to the route's 404). Anything else is
/// 403 `forbidden`.
async fn scoped_may(
    state: &AppState,
    workload: &str,
    method: &Method,
    path: &str,
) -> Result<(), ApiError> {
    let forbidden = |message: String| ApiError::new(StatusCode::FORBIDDEN, "forbidden", message);
    if method == Method::POST && path == "/api/v1/jobs" {
        return Ok(());
    }
    let report = (method == Method::POST)
        .then(|| path.strip_prefix("/api/v1/jobs/"))
        .flatten()
        .and_then(|rest| rest.split_once('/'))
        .filter(|(_, action)| matches!(*action, "ack" | "reject" | "extend"))
        .and_then(|(id, _)| id.parse::<i64>().ok());
    let Some(id) = report else {
        return Err(forbidden(format!(
            "this token is scoped to the workload {workload:?}: it may only enqueue (POST /api/v1/jobs) and ack, reject or extend that workload's jobs"
        )));
    };
    match state.queue.job(id).await? {
        Some(job) if job.task != workload => Err(forbidden(format!(
            "this token is scoped to the workload {workload:?}: job {id} is of task {:?}",
            job.task
        ))),
        _ => Ok(()),
    }
}

/// A 401 with the `WWW-Authenticate` challenge.
fn challenge(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// The middleware that enforces [`Auth`] (or a UI session, or a token scoped to one
/// workload) on the routes it wraps.
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri().path(), |uri| uri.0.path())
        .to_string();
    let authenticated = match authenticate(&state, request.headers()) {
        Ok(found) => Ok(found),
        // Not one of the server's own tokens: maybe one scoped to a workload.
        Err(error) => match scoped_workload(&state, request.headers()).await {
            Ok(Some(workload)) => {
                return match scoped_may(&state, &workload, request.method(), &path).await {
                    Ok(()) => next.run(request).await,
                    Err(refused) => refused.into_response(),
                };
            }
            Ok(None) => Err(error),
            Err(failed) => return failed.into_response(),
        },
    };
    match authenticated {
        Ok((access, via)) => {
            if access == Access::Workload && !workload_may(request.method(), &path) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the workload token may only enqueue (POST /api/v1/jobs, /api/v1/jobs/batch) and ack, reject or extend leased jobs: use the full token for anything else",
                )
                .into_response();
            }
            if !safe {
                if let Some(error) = cross_site(&state, request.headers(), via) {
                    return error.into_response();
                }
                if access == Access::ReadOnly {
                    return ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "the read-only token may only read (GET): use the full token to change anything",
                    )
                    .into_response();
                }
            }
            next.run(request).await
        }
        Err(error) => challenge(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let auth = Auth::new(Some("s3cret"), Some("look"));
        assert_eq!(auth.check(Some(b"Bearer s3cret")).ok(), Some(Access::Full));
        assert_eq!(auth.check(Some(b"bearer s3cret")).ok(), Some(Access::Full));
        assert_eq!(
            auth.check(Some(b"Bearer look")).ok(),
            Some(Access::ReadOnly)
        );
        assert!(auth.check(Some(b"Bearer s3cre")).is_err());
        assert!(auth.check(Some(b"Bearer s3cret2")).is_err());
        assert!(auth.check(Some(b"Basic s3cret")).is_err());
        assert!(auth.check(Some(b"Bearer ")).is_err());
        assert!(auth.check(None).is_err());
    }

    #[test]
    fn the_workload_token_may_only_enqueue_and_report_on_leased_jobs() {
        for (method, path) in [
            (Method::POST, "/api/v1/jobs"),
            (Method::POST, "/api/v1/jobs/batch"),
            (Method::POST, "/api/v1/jobs/42/ack"),
            (Method::POST, "/api/v1/jobs/42/reject"),
            (Method::POST, "/api/v1/jobs/42/extend"),
        ] {
            assert!(workload_may(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/api/v1/jobs"),
            (Method::GET, "/api/v1/jobs/42"),
            (Method::POST, "/api/v1/jobs/42/retry"),
            (Method::POST, "/api/v1/jobs/retry"),
            (Method::DELETE, "/api/v1/jobs/42"),
            (Method::POST, "/api/v1/claims"),
            (Method::POST, "/api/v1/jobs/x/ack"),
            (Method::POST, "/api/v1/jobs/42/ack/more"),
            (Method::POST, "/api/v1/jobsx"),
        ] {
            assert!(!workload_may(&method, path), "{method} {path}");
        }
        let auth = Auth::new(Some("full"), None).with_workload(Some("wl"));
        assert_eq!(auth.check(Some(b"Bearer wl")).ok(), Some(Access::Workload));
    }

    #[test]
    fn without_tokens_everything_is_allowed() {
        assert_eq!(Auth::new(None, None).check(None).ok(), Some(Access::Full));
    }
}
