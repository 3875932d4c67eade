//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use underling::Queue;

use crate::ServerOptions;
use crate::auth::Auth;

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
}

impl AppState {
    /// The state for `queue` under `options` (tokens, limits, CORS).
    pub fn new(queue: Queue, options: ServerOptions) -> AppState {
        AppState {
            queue,
            auth: Arc::new(Auth::new(
                options.token.as_deref(),
                options.read_only_token.as_deref(),
            )),
            options: Arc::new(options),
        }
    }
}
