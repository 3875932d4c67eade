//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use underling::Queue;

use crate::ServerOptions;
use crate::auth::Auth;
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::ui::session::Sessions;

/// The state every handler gets: cheap to clone (the queue and the rest sit behind `Arc`s).
///
/// Features that need state of their own (live events, the audit log, metrics) add a field
/// here, behind an `Arc`, and set it in [`AppState::new`].
#[derive(Clone, Debug)]
pub struct AppState {
    /// The queue every route works on: the server is a layer over it, never beside it.
    pub queue: Queue,
    /// Who may do what ([`Auth`]).
    pub auth: Arc<Auth>,
    /// The options the server was started with.
    pub options: Arc<ServerOptions>,
    /// Job events, numbered and kept for clients that reconnect ([`EventHub`]).
    pub events: Arc<EventHub>,
    /// The Prometheus metrics ([`Metrics`]).
    pub metrics: Arc<Metrics>,
    /// The web UI's login sessions ([`Sessions`]).
    pub sessions: Arc<Sessions>,
}

impl AppState {
    /// The state for `queue` under `options` (tokens, limits, CORS).
    /// Starts the event hub: call it inside a Tokio runtime.
    pub fn new(queue: Queue, options: ServerOptions) -> AppState {
        let metrics = Arc::new(Metrics::new());
        AppState {
            events: EventHub::start(queue.clone(), metrics.clone(), options.events),
            metrics,
            sessions: Arc::new(Sessions::default()),
            queue,
            auth: Arc::new(
                Auth::new(options.token.as_deref(), options.read_only_token.as_deref())
                    .with_workload(options.workload_token.as_deref()),
            ),
            options: Arc::new(options),
        }
    }
}
