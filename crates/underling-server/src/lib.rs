//! # underling-server
//!
//! The HTTP JSON API of underling (`underling serve`): a thin layer over [`underling::Queue`]
//! (no SQL here), built on axum and tower-http.
//!
//! - Everything the `underling` CLI does, under `/api/v1` ([`api`]), with the JSON shapes of
//!   its `--json` output; errors are `{"error": {"code": "...", "message": "..."}}` with the
//!   right status ([`error`]), and bad input changes nothing.
//! - `/healthz` and `/readyz` ([`health`]), never behind a token.
//! - Bearer tokens ([`auth`]): a full one, and optionally a read-only one (GET only).
//!   Binding an address other than loopback without a token is refused.
//! - The web UI for operators at `/` ([`ui`]), over this same API.
//! - The OpenAPI 3.1 document at `/api/v1/openapi.json` ([`openapi`]), built from the same
//!   registrations as the router.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = underling::Queue::connect("sqlite://jobs.db").await?;
//! let server = underling_server::Server::bind(queue, underling_server::ServerOptions::default()).await?;
//! println!("listening on http://{}", server.local_addr()?);
//! server.run(underling_server::shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::Layer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use underling::Queue;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod api;
pub mod auth;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod state;
mod strict;
pub mod ui;

pub use error::{ApiError, ErrorBody};
pub use state::AppState;

/// The address `underling serve` listens on by default.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8474);

/// The default request body limit: 10 MB.
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// The default request timeout (long polls have their own, longer one).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long requests still running at shutdown (long polls) may go on before the server
/// stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the server runs.
#[derive(Clone)]
pub struct ServerOptions {
    /// Where to listen (default `127.0.0.1:8474`). An address other than loopback needs a
    /// token.
    pub listen: SocketAddr,
    /// The token every request but the health probes must bear (`Authorization: Bearer`).
    pub token: Option<String>,
    /// A token that may only read (`GET`, `HEAD`).
    pub read_only_token: Option<String>,
    /// A token for HTTP workloads: it may only enqueue (`POST /api/v1/jobs`, `/jobs/batch`)
    /// and ack, reject or extend leased jobs.
    pub workload_token: Option<String>,
    /// Origins allowed by CORS (none: CORS off); `*` allows any.
    pub cors_origins: Vec<String>,
    /// The largest request body accepted, in bytes (default 10 MB).
    pub body_limit: usize,
    /// How long a request may take (default 30 s; `GET /jobs/{id}/wait` may take up to its
    /// own cap, 5 minutes).
    pub request_timeout: Duration,
    /// When the server subscribes to job events (default: while streaming clients are
    /// connected; they cost the queue).
    pub events: events::EventsMode,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("ServerOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field(
                "read_only_token",
                &self.read_only_token.as_ref().map(|_| "***"),
            )
            .field(
                "workload_token",
                &self.workload_token.as_ref().map(|_| "***"),
            )
            .field("cors_origins", &self.cors_origins)
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field("events", &self.events)
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: DEFAULT_LISTEN,
            token: None,
            read_only_token: None,
            workload_token: None,
            cors_origins: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            events: events::EventsMode::OnDemand,
        }
    }
}

impl ServerOptions {
    /// Checks the options before anything is bound: a token for any address but loopback,
    /// tokens that are not empty and differ, CORS origins that are header values.
    pub fn check(&self) -> Result<(), ServerError> {
        let tokens = [&self.token, &self.read_only_token, &self.workload_token];
        for token in tokens.into_iter().flatten() {
            if token.trim().is_empty() {
                return Err(ServerError::EmptyToken);
            }
        }
        if (self.read_only_token.is_some() || self.workload_token.is_some()) && self.token.is_none()
        {
            return Err(ServerError::ReadOnlyWithoutToken);
        }
        let given: Vec<&String> = tokens.into_iter().flatten().collect();
        if given
            .iter()
            .enumerate()
            .any(|(i, a)| given[i + 1..].contains(a))
        {
            return Err(ServerError::SameTokens);
        }
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            return Err(ServerError::Unprotected(self.listen));
        }
        for origin in &self.cors_origins {
            if origin != "*" && HeaderValue::from_str(origin).is_err() {
                return Err(ServerError::InvalidCorsOrigin(origin.clone()));
            }
        }
        if self.request_timeout.is_zero() {
            return Err(ServerError::InvalidOption(
                "the request timeout must be above zero".into(),
            ));
        }
        Ok(())
    }
}

/// Why the server did not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// An address other than loopback without a token.
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could change every job. Give --token-file FILE (or set UNDERLING_TOKEN), or listen on 127.0.0.1"
    )]
    Unprotected(SocketAddr),
    /// A token that is empty.
    #[error("a token must not be empty")]
    EmptyToken,
    /// A read-only or workload token without a full one.
    #[error(
        "a read-only or workload token needs a full token too (--token-file or UNDERLING_TOKEN)"
    )]
    ReadOnlyWithoutToken,
    /// The same token for two kinds of access.
    #[error("the full, read-only and workload tokens must all differ")]
    SameTokens,
    /// A CORS origin that cannot be a header value.
    #[error("invalid CORS origin {0:?}: give an origin such as https://admin.example.com, or *")]
    InvalidCorsOrigin(String),
    /// Another option that cannot be used.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("the server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The whole application: the API under `/api/v1` behind the token check, the health probes,
/// the web UI, and the layers (request logs, CORS, body limit, timeouts, JSON errors for everything).
pub fn router(state: AppState) -> Router {
    let options = state.options.clone();
    let (protected, _) = OpenApiRouter::new()
        .nest("/api/v1", api_routes(Some(options.request_timeout)))
        .merge(metrics::routes())
        .split_for_parts();
    let protected = protected
        .fallback(no_route)
        .layer(from_fn_with_state(state.clone(), auth::require));
    let (health, _) = health::routes().split_for_parts();
    let routes = health
        .merge(ui::routes())
        .merge(protected)
        .layer(DefaultBodyLimit::max(options.body_limit))
        .with_state(state);
    // Around the whole router rather than as its layer: a router's layers wrap each route,
    // inside the method router, and so see a 405 before it has its `Allow` header.
    let mut app = Router::new().fallback_service(from_fn(json_errors).layer(routes));
    if let Some(cors) = cors_layer(&options.cors_origins) {
        app = app.layer(cors);
    }
    app.layer(
        TraceLayer::new_for_http()
            .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
}

/// The routes under `/api/v1`, with their timeouts when `request_timeout` is given.
fn api_routes(request_timeout: Option<Duration>) -> OpenApiRouter<AppState> {
    let mut timed = api::routes().routes(routes!(openapi::openapi_json));
    let mut long = api::long_lived();
    if let Some(timeout) = request_timeout {
        timed = timed.layer(timeout_layer(timeout));
        let long_timeout = timeout.max(api::jobs::MAX_WAIT + Duration::from_secs(30));
        long = long.layer(timeout_layer(long_timeout));
    }
    timed.merge(long).merge(api::streams())
}

/// Every documented route, for the OpenAPI document ([`openapi::document`]).
pub(crate) fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::routes())
        .merge(metrics::routes())
        .nest("/api/v1", api_routes(None))
}

fn timeout_layer(timeout: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout)
}

/// CORS for the origins given; `None` (CORS off) when there are none.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

/// The answer for a path no route serves.
async fn no_route(uri: Uri) -> ApiError {
    ApiError::no_route(uri.path())
}

/// Turns every error response that is not already the API's JSON (axum's 405, the timeout's
/// 503, ...) into it.
async fn json_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<error::ErrorCode>().is_some()
    {
        return response;
    }
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = response
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            ApiError::new(
                status,
                "method_not_allowed",
                format!("{path} does not take this method; it takes: {allowed}"),
            )
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took longer than the server's limit (--request-timeout)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => error::payload_too_large(),
        StatusCode::NOT_FOUND => ApiError::no_route(&path),
        other => ApiError::new(
            other,
            "error",
            other.canonical_reason().unwrap_or("error").to_string(),
        ),
    };
    let mut json = error.into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(value) = response.headers().get(&name) {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}

/// A server bound to its address, ready to [`Server::run`].
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks the options ([`ServerOptions::check`]) and binds the address (port 0: any free
    /// port, see [`Server::local_addr`]).
    pub async fn bind(queue: Queue, options: ServerOptions) -> Result<Server, ServerError> {
        options.check()?;
        let addr = options.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let always = options.events == events::EventsMode::Always;
        let state = AppState::new(queue, options);
        if always {
            // Metrics count from the first request on, when the database allows: a little wait
            // for the event subscription (it goes on trying in the background).
            state.events.ready(Duration::from_secs(2)).await;
        }
        Ok(Server {
            listener,
            router: router(state),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        self.listener.local_addr().map_err(ServerError::Serve)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets running requests end
    /// (at most [`SHUTDOWN_GRACE`] more) and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let (stopping, mut stopped) = tokio::sync::watch::channel(false);
        let server = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; running requests may end");
            let _ = stopping.send(true);
        });
        let deadline = async move {
            let _ = stopped.wait_for(|stopping| *stopping).await;
            if !*stopped.borrow() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = server => result.map_err(ServerError::Serve),
            () = deadline => {
                tracing::warn!("requests still running after the shutdown grace; stopping anyway");
                Ok(())
            }
        }
    }
}

/// Binds and serves `queue` until `shutdown` completes.
pub async fn serve(
    queue: Queue,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::bind(queue, options).await?.run(shutdown).await
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
