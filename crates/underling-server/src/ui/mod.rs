//! The web UI for operators, served at `/` by the same router as the API.
//!
//! A small dependency-free JavaScript application (`assets/`), embedded in the binary at build
//! time: no Node, no CDN, nothing fetched at run time. It reads everything through the JSON
//! API under `/api/v1` (its only data source) and the event stream, and builds the page with
//! DOM calls that set text, never HTML, so that job args, notes, names and errors (attacker
//! controlled) cannot run as script; the Content-Security-Policy forbids inline script too.
//!
//! Login: the form posts the token to `/ui/login`; a valid one opens a session ([`session`])
//! whose id goes back in an `HttpOnly`, `SameSite=Strict` cookie, which the API accepts in
//! place of the bearer token (see [`crate::auth::authenticate`]; changes by cookie need the
//! `X-Underling-CSRF` header). A server without a token needs no login.

pub mod session;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::auth::{Access, CSRF_HEADER, authenticate};
use crate::error::ApiError;
use crate::state::AppState;

/// The page every route of the UI starts from.
const INDEX_HTML: &str = include_str!("../../assets/index.html");
/// The application.
const APP_JS: &str = include_str!("../../assets/app.js");
/// Its styles.
const APP_CSS: &str = include_str!("../../assets/app.css");

/// What the UI's pages may load and do: only this server's own script, styles and API (no
/// inline script, so an injected `<script>` or `onerror=` would not run even if some text were
/// ever put in as HTML), and no framing by other sites.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes (outside `/api/v1`, not behind the token: the pages hold no data).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/app.js", get(app_js))
        .route("/ui/app.css", get(app_css))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/session", get(session_info))
}

/// An embedded file with the UI's security headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            // Not `no-referrer`: with it, Chromium sends `Origin: null` on the UI's own POSTs,
            // which the CSRF check must refuse.
            (header::REFERRER_POLICY, "same-origin"),
            // A new binary may bring a new app.js: always ask (the files are small).
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The full or read-only token.
    pub token: String,
}

/// Whether the request's `Origin` (when the browser sent one) is this server: a login form on
/// another site must not log the operator in with a token of its choosing.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().unwrap_or("");
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((rest, host), (Some(rest), Some(host)) if rest == host)
}

/// A `303 See Other` to `location`, with more headers.
fn see_other(location: &'static str, cookie: Option<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Checks the token posted by the login form; a valid one opens a session (cookie) and goes
/// to the dashboard, another goes back to the form, which says so.
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "the login form of another site may not log in here",
        )
        .into_response();
    }
    let Ok(Form(form)) = form else {
        return see_other("/?login=failed", None);
    };
    if !state.auth.enabled() {
        return see_other("/", None);
    }
    let header = format!("Bearer {}", form.token.trim());
    let Ok(access) = state.auth.check(Some(header.as_bytes())) else {
        return see_other("/?login=failed", None);
    };
    match state.sessions.open(access) {
        Ok(id) => see_other(
            "/",
            Some(format!(
                "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                session::COOKIE,
                session::SESSION_LIFETIME.as_secs()
            )),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot open a session");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server could not open a session; the details are in its log",
            )
            .into_response()
        }
    }
}

/// Ends the session of the cookie (the UI sends the CSRF header, so that no other site can
/// log the operator out).
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !headers.contains_key(CSRF_HEADER) || !same_origin(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "log out from the UI's own page (the request must send X-Underling-CSRF: 1)",
        )
        .into_response();
    }
    if let Some(id) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
    {
        state.sessions.close(id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "underling_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    response
}

/// What the UI needs to know before it asks the API anything.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    /// Whether the server needs a token (then the UI shows the login form until logged in).
    pub token_required: bool,
    /// What this browser may do: `full`, `read_only`, or `null` (log in first).
    pub access: Option<&'static str>,
}

async fn session_info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let access = match authenticate(&state, &headers) {
        Ok((Access::Full, _)) => Some("full"),
        Ok((Access::ReadOnly, _)) => Some("read_only"),
        // The workload token is for workloads, not for the UI.
        Ok((Access::Workload, _)) | Err(_) => None,
    };
    axum::Json(SessionInfo {
        token_required: state.auth.enabled(),
        access,
    })
    .into_response()
}
