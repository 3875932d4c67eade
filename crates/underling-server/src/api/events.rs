//! Live job events: `GET /events` (Server-Sent Events) and `GET /events/ws` (WebSocket), and
//! the audit log, `GET /audit`.
//!
//! Every event carries the job's whole record (see [`underling::JobEvent`]) as
//! `{"id": N, "event": "...", "job": {...}}`; `id` counts up for the life of the server, and a
//! client that reconnects with `Last-Event-ID` (or `?last_event_id=`) gets every event after
//! it that the server still keeps (the last 16,384). The filters `queue`, `task`, `event` and
//! `state` (each repeatable) keep only matching events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use underling::{AuditEntry, AuditQuery, JobEventKind, JobState};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::events::{Stamped, Subscription};
use crate::extract::{Json, Query};
use crate::state::AppState;

/// The streaming routes: no request timeout applies to them.
pub fn streams() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sse))
        .routes(routes!(websocket))
}

/// The audit route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

/// Which events a client wants.
#[derive(Debug, Default)]
struct EventFilter {
    queues: Vec<String>,
    tasks: Vec<String>,
    events: Vec<JobEventKind>,
    states: Vec<JobState>,
}

impl EventFilter {
    fn wants(&self, e: &Stamped) -> bool {
        let job = &e.event.job;
        (self.queues.is_empty() || self.queues.contains(&job.queue))
            && (self.tasks.is_empty() || self.tasks.contains(&job.task))
            && (self.events.is_empty() || self.events.contains(&e.event.event))
            && (self.states.is_empty() || self.states.contains(&job.state))
    }
}

/// The query parameters of the event streams.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EventsQuery {
    /// Only events of jobs in this queue (repeatable).
    queue: Option<Vec<String>>,
    /// Only events of jobs of this task (repeatable).
    task: Option<Vec<String>>,
    /// Only these events: enqueued, started, noted, finished, failed, retried, rescued,
    /// removed (repeatable, or comma-separated).
    event: Option<Vec<String>>,
    /// Only events after which the job is in this state: inactive, active, finished, failed
    /// (repeatable, or comma-separated).
    state: Option<Vec<String>>,
    /// Resume after this event id (as the `Last-Event-ID` header does).
    last_event_id: Option<u64>,
}

const EVENTS_PARAMETERS: &str = "queue, task, event, state, last_event_id";

/// Parses the filters and where to resume (the `Last-Event-ID` header, or the parameter).
fn parse(pairs: &[(String, String)], headers: &HeaderMap) -> ApiResult<(EventFilter, Option<u64>)> {
    let mut filter = EventFilter::default();
    let mut last = None;
    let bad = |message: String| ApiError::bad_request("invalid_query", message);
    for (key, value) in pairs {
        match key.as_str() {
            "queue" => {
                super::check_name("queue", value)?;
                filter.queues.push(value.clone());
            }
            "task" => {
                super::check_name("task", value)?;
                filter.tasks.push(value.clone());
            }
            "event" => {
                for e in value.split(',') {
                    filter.events.push(
                        e.trim()
                            .parse()
                            .map_err(|e: underling::Error| bad(e.to_string()))?,
                    );
                }
            }
            "state" => {
                for s in value.split(',') {
                    filter.states.push(
                        s.trim()
                            .parse()
                            .map_err(|e: underling::Error| bad(e.to_string()))?,
                    );
                }
            }
            "last_event_id" => last = Some(event_id(value)?),
            other => {
                return Err(bad(format!(
                    "unknown parameter {other:?}: expected one of {EVENTS_PARAMETERS}"
                )));
            }
        }
    }
    if let Some(header) = headers.get("last-event-id") {
        let text = header
            .to_str()
            .map_err(|_| bad("the Last-Event-ID header is not text".into()))?;
        last = Some(event_id(text)?);
    }
    Ok((filter, last))
}

fn event_id(text: &str) -> ApiResult<u64> {
    text.trim().parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "last event id {text:?} is not an event id (a whole number from an event's id)"
            ),
        )
    })
}

/// Waits (a few seconds at most) for the server's subscription to the job events.
async fn ready(state: &AppState) -> ApiResult<()> {
    state.events.want();
    if state.events.ready(std::time::Duration::from_secs(5)).await {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "events_unavailable",
            "the server cannot subscribe to job events yet (is the database reachable and migrated?); try again",
        ))
    }
}

/// What a stream sends.
enum Item {
    /// An event.
    Event(Arc<Stamped>),
    /// Events between the client's last one and the next are gone.
    Gap,
    /// The client fell too far behind and is dropped.
    Dropped(u64),
}

/// The items of one client: the gap (if any), the backlog, then live events until the
/// client falls behind.
fn items(sub: Subscription, filter: EventFilter) -> impl Stream<Item = Item> + Send {
    struct Feed {
        gap: bool,
        backlog: VecDeque<Arc<Stamped>>,
        live: tokio::sync::broadcast::Receiver<Arc<Stamped>>,
        filter: EventFilter,
        done: bool,
    }
    let feed = Feed {
        gap: sub.gap,
        backlog: sub.backlog.into(),
        live: sub.live,
        filter,
        done: false,
    };
    stream::unfold(feed, |mut feed| async move {
        if feed.done {
            return None;
        }
        if std::mem::take(&mut feed.gap) {
            return Some((Item::Gap, feed));
        }
        while let Some(e) = feed.backlog.pop_front() {
            if feed.filter.wants(&e) {
                return Some((Item::Event(e), feed));
            }
        }
        loop {
            match feed.live.recv().await {
                Ok(e) if feed.filter.wants(&e) => return Some((Item::Event(e), feed)),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    feed.done = true;
                    return Some((Item::Dropped(n), feed));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

fn dropped_message(n: u64) -> String {
    json!({"error": {"code": "too_slow", "message": format!(
        "this client fell {n} events behind and was dropped; reconnect with Last-Event-ID to resume"
    )}})
    .to_string()
}

const GAP_MESSAGE: &str = r#"{"gap": true, "message": "some events before the next one are no longer kept (or the server restarted): read the jobs you follow again"}"#;

/// Stream job events as Server-Sent Events: each with `id`, `event` (the transition) and
/// `data` (`{"id", "event", "job"}`). A `gap` event says events were lost before the next
/// one; a `dropped` event says the client fell too far behind and the stream ends.
#[utoipa::path(get, path = "/events", tag = "events", params(EventsQuery),
    responses(
        (status = 200, description = "A stream of events (text/event-stream)", content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad parameter", body = ErrorBody),
    ))]
async fn sse(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (filter, last) = parse(&pairs, &headers)?;
    ready(&state).await?;
    let sub = state.events.subscribe(last);
    let metrics = state.metrics.clone();
    let stream = items(sub, filter).map(move |item| {
        Ok(match item {
            Item::Event(e) => Event::default()
                .id(e.id.to_string())
                .event(e.event.event.as_str())
                .data(e.json.as_str()),
            Item::Gap => Event::default().event("gap").data(GAP_MESSAGE),
            Item::Dropped(n) => {
                metrics.client_dropped();
                Event::default().event("dropped").data(dropped_message(n))
            }
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Stream job events over a WebSocket: each a text message `{"id", "event", "job"}`; a
/// `{"gap": true, ...}` message says events were lost before the next one; a client that
/// falls too far behind gets `{"error": {"code": "too_slow", ...}}` and a close.
#[utoipa::path(get, path = "/events/ws", tag = "events", params(EventsQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "A bad parameter, or not a WebSocket request", body = ErrorBody),
    ))]
async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let (filter, last) = parse(&pairs, &headers)?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::bad_request(
            "not_websocket",
            format!("{e}: connect with a WebSocket client, or use GET /api/v1/events for Server-Sent Events"),
        )
    })?;
    ready(&state).await?;
    let sub = state.events.subscribe(last);
    let metrics = state.metrics.clone();
    Ok(upgrade
        .on_upgrade(move |socket| forward(socket, sub, filter, metrics))
        .into_response())
}

/// How often an open WebSocket is pinged.
const WS_PING: std::time::Duration = std::time::Duration::from_secs(20);

/// Sends a client's items over its socket until it closes or falls behind.
async fn forward(
    socket: WebSocket,
    sub: Subscription,
    filter: EventFilter,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let (mut sink, mut incoming) = socket.split();
    let items = items(sub, filter);
    tokio::pin!(items);
    // Pings keep an idle stream open through proxies that close silent connections (SSE
    // streams send keep-alive comments for the same reason).
    let mut ping = tokio::time::interval(WS_PING);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            item = items.next() => {
                let text = match item {
                    Some(Item::Event(e)) => e.json.clone(),
                    Some(Item::Gap) => GAP_MESSAGE.to_string(),
                    Some(Item::Dropped(n)) => {
                        metrics.client_dropped();
                        let _ = sink.send(Message::Text(dropped_message(n).into())).await;
                        let _ = sink.close().await;
                        return;
                    }
                    None => {
                        let _ = sink.close().await;
                        return;
                    }
                };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            message = incoming.next() => match message {
                // The client's pings are answered by axum; anything else it sends is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// The query parameters of `GET /audit`.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only the entries of this job.
    job: Option<i64>,
    /// Only entries older than this entry id (the last id of the previous page).
    before: Option<i64>,
    /// At most this many (default 100, at most 10,000).
    limit: Option<u64>,
}

/// A page of the audit log.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Entries, newest first: `{"id", "at", "event", "job"}`.
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts: pass it as `before`; `null` on the last page.
    pub next: Option<i64>,
    /// Whether the audit log is on.
    pub enabled: bool,
}

/// Read the audit log, newest first (`underling audit list --json`).
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    responses(
        (status = 200, description = "A page of audit entries", body = AuditPage),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 422, description = "A limit out of range", body = ErrorBody),
    ))]
async fn audit(
    State(state): State<AppState>,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let limit = params.limit.unwrap_or(100);
    let query = AuditQuery {
        job_id: params.job,
        before: params.before,
        limit: limit.saturating_add(1),
    };
    if limit == 0 || limit > underling::MAX_AUDIT_PAGE {
        return Err(ApiError::invalid(
            "invalid_option",
            format!("limit={limit}: give 1 to {}", underling::MAX_AUDIT_PAGE),
        ));
    }
    let mut entries = state
        .queue
        .audit(&AuditQuery {
            limit: query.limit.min(underling::MAX_AUDIT_PAGE),
            ..query
        })
        .await?;
    let more = entries.len() as u64 > limit;
    entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        next,
        enabled: state.queue.audit_enabled().await?,
    }))
}
