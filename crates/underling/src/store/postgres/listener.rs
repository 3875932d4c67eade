//! LISTEN for wake-ups on a connection of its own, reconnecting when it drops, and fan them
//! out to the workers of this process.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::task::JoinHandle;

use crate::store::notify::{ANY_JOB, ANY_QUEUE, Wakeups};

/// Starts listening on `channel` and `settled_channel`, and forwards every notification to
/// `wakeups`: a queue name on `channel` wakes workers, a job id on `settled_channel` wakes the
/// waiters of that job.
///
/// The connection is opened outside the store's pool, so that a busy pool never delays
/// wake-ups and wake-ups never take a pool connection. Notifications sent while it is not
/// listening are lost, so every (re)connection wakes every worker once (`*`) and every waiter
/// once ([`ANY_JOB`]); workers and waiters poll as well.
pub(super) fn start(
    options: PgConnectOptions,
    channel: String,
    settled_channel: String,
    wakeups: Wakeups,
) -> JoinHandle<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options);
    tokio::spawn(async move {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => match listener
                    .listen_all([channel.as_str(), settled_channel.as_str()])
                    .await
                {
                    Ok(()) => {
                        wakeups.wake(ANY_QUEUE);
                        wakeups.settled(ANY_JOB);
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) if n.channel() == settled_channel => {
                                    wakeups.settled(n.payload().parse().unwrap_or(ANY_JOB));
                                }
                                Ok(Some(n)) => wakeups.wake(n.payload()),
                                // The connection was lost and sqlx reconnected it.
                                Ok(None) => {
                                    wakeups.wake(ANY_QUEUE);
                                    wakeups.settled(ANY_JOB);
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "listener failed; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN; workers fall back to polling")
                }
            }
            if pool.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}
