//! The server's event hub: one subscription to the queue's job events, numbered, kept in a
//! ring of the last [`RING`] events for clients that reconnect (`Last-Event-ID`), and fanned
//! out to every streaming client. A client that falls [`CLIENT_LAG`] events behind is dropped
//! with a message, so that a slow client never slows the queue or the other clients.
//!
//! Events cost the queue (see the README): by default ([`EventsMode::OnDemand`]) the hub
//! subscribes when the first streaming client arrives and lets go once none has been connected
//! for [`IDLE_AFTER`]; [`EventsMode::Always`] keeps it subscribed for the life of the server
//! (for the event-based metrics).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use underling::{JobEvent, Queue};

use crate::metrics::Metrics;

/// How many events the hub keeps for clients that reconnect.
pub const RING: usize = 16_384;

/// How far behind a client may fall before it is dropped.
pub const CLIENT_LAG: usize = 4_096;

/// How long the hub stays subscribed after the last streaming client left (on demand).
pub const IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// When the hub subscribes to the queue's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventsMode {
    /// While streaming clients are connected (and [`IDLE_AFTER`] more).
    #[default]
    OnDemand,
    /// For the life of the server.
    Always,
}

/// One event as the hub hands it out: numbered, and serialized once for every client.
#[derive(Debug)]
pub struct Stamped {
    /// Ascending from 1 for the life of this server (the SSE `id`).
    pub id: u64,
    /// The event.
    pub event: JobEvent,
    /// `{"id": …, "event": …, "job": {…}}` as JSON text.
    pub json: String,
}

/// What a new client gets: the kept events after the one it saw last, then the live ones.
pub struct Subscription {
    /// Kept events after the client's last one, oldest first.
    pub backlog: Vec<Arc<Stamped>>,
    /// Whether events between the client's last one and the backlog are gone (it asked to
    /// resume from an event older than the ring keeps, or from one this server never sent).
    pub gap: bool,
    /// The live events from the end of the backlog on.
    pub live: broadcast::Receiver<Arc<Stamped>>,
}

#[derive(Default)]
struct Ring {
    events: VecDeque<Arc<Stamped>>,
    next_id: u64,
    /// The first id handed out since the hub last subscribed: events before it and after the
    /// previous subscription ended were never seen.
    resumed_at: u64,
}

/// See the module documentation.
pub struct EventHub {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<Stamped>>,
    /// Whether the subscription to the queue's events is taken.
    ready: tokio::sync::watch::Receiver<bool>,
    /// Wakes the subscription task when a client wants events.
    wanted: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").finish_non_exhaustive()
    }
}

impl EventHub {
    /// A hub for `queue`'s events (`metrics` counts them), subscribing as `mode` says. The
    /// subscription is taken in the background and tried again every 2 s until it succeeds (a
    /// database not yet migrated or not reachable must not keep the server from starting):
    /// [`EventHub::want`] asks for it and [`EventHub::ready`] waits for it.
    pub fn start(queue: Queue, metrics: Arc<Metrics>, mode: EventsMode) -> Arc<EventHub> {
        let (live, _) = broadcast::channel(CLIENT_LAG);
        let (ready_tx, ready) = tokio::sync::watch::channel(false);
        let wanted = Arc::new(tokio::sync::Notify::new());
        let hub = Arc::new(EventHub {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(RING),
                next_id: 1,
                resumed_at: 1,
            }),
            live,
            ready,
            wanted: wanted.clone(),
        });
        if mode == EventsMode::Always {
            wanted.notify_one();
        }
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                // Idle until a client (or Always) wants events.
                wanted.notified().await;
                let mut events = loop {
                    match queue.events().await {
                        Ok(events) => break events,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot subscribe to job events yet; trying again in 2 s");
                            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                        }
                    }
                    if weak.strong_count() == 0 {
                        return;
                    }
                };
                match weak.upgrade() {
                    Some(hub) => hub.resumed(),
                    None => return,
                }
                let _ = ready_tx.send(true);
                let mut idle_since: Option<tokio::time::Instant> = None;
                let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tokio::select! {
                        next = events.next() => {
                            let Some(hub) = weak.upgrade() else { return };
                            match next {
                                Some(Ok(event)) => {
                                    metrics.observe(&event);
                                    hub.publish(event);
                                }
                                Some(Err(missed)) => {
                                    tracing::warn!(error = %missed, "the server fell behind the job events");
                                    metrics.events_dropped(missed.0);
                                }
                                // The store closed (or its source stopped): subscribe again
                                // if someone still wants events.
                                None => break,
                            }
                        }
                        _ = check.tick(), if mode == EventsMode::OnDemand => {
                            let Some(hub) = weak.upgrade() else { return };
                            if hub.live.receiver_count() > 0 {
                                idle_since = None;
                            } else if idle_since.get_or_insert_with(tokio::time::Instant::now).elapsed() >= IDLE_AFTER {
                                break;
                            }
                        }
                    }
                }
                drop(events);
                let _ = ready_tx.send(false);
                let Some(hub) = weak.upgrade() else { return };
                if mode == EventsMode::Always || hub.live.receiver_count() > 0 {
                    wanted.notify_one();
                }
            }
        });
        hub
    }

    /// Asks for the subscription (a client arrived); see [`EventHub::ready`].
    pub fn want(&self) {
        // Only while unsubscribed: a stored wake-up would subscribe again once idle. (A client
        // that arrives as the hub goes idle is seen by its check for receivers after it.)
        if !*self.ready.borrow() {
            self.wanted.notify_one();
        }
    }

    /// Notes that the hub subscribed (again): what happened before was not seen.
    fn resumed(&self) {
        let mut ring = self.lock();
        ring.resumed_at = ring.next_id;
    }

    /// Waits until the hub receives events, at most `timeout`; `false` if it does not.
    pub async fn ready(&self, timeout: std::time::Duration) -> bool {
        let mut ready = self.ready.clone();
        matches!(
            tokio::time::timeout(timeout, ready.wait_for(|ready| *ready)).await,
            Ok(Ok(_))
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Nothing panics while the lock is held; a poisoned ring is used all the same.
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Numbers, keeps and sends one event.
    fn publish(&self, event: JobEvent) {
        let mut ring = self.lock();
        let id = ring.next_id;
        ring.next_id += 1;
        let json = serde_json::json!({ "id": id, "event": event.event, "job": event.job });
        let stamped = Arc::new(Stamped {
            id,
            json: json.to_string(),
            event,
        });
        if ring.events.len() == RING {
            ring.events.pop_front();
        }
        ring.events.push_back(stamped.clone());
        // Sent under the lock, so that a client subscribing now gets each event exactly once:
        // in its backlog or live. No client is not an error.
        let _ = self.live.send(stamped);
    }

    /// A new client that saw events up to `last` (none: it starts with the next event).
    pub fn subscribe(&self, last: Option<u64>) -> Subscription {
        let ring = self.lock();
        let live = self.live.subscribe();
        let Some(last) = last else {
            return Subscription {
                backlog: Vec::new(),
                gap: false,
                live,
            };
        };
        let oldest = ring.events.front().map_or(ring.next_id, |e| e.id);
        Subscription {
            backlog: ring
                .events
                .iter()
                .filter(|e| e.id > last)
                .cloned()
                .collect(),
            // Resuming from just before the oldest kept event loses nothing; resuming from
            // before the latest subscription lost what happened while unsubscribed.
            gap: last + 1 < oldest || last >= ring.next_id || last + 1 < ring.resumed_at,
            live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> EventHub {
        let (live, _) = broadcast::channel(CLIENT_LAG);
        EventHub {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                next_id: 1,
                resumed_at: 1,
            }),
            live,
            ready: tokio::sync::watch::channel(true).1,
            wanted: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn event(id: i64) -> JobEvent {
        serde_json::from_value(serde_json::json!({"event": "enqueued", "job": {
            "id": id, "task": "t", "queue": "default", "args": {}, "state": "inactive",
            "priority": 0, "attempts": 1, "retries": 0, "created": "2026-12-02T00:00:00Z",
            "delayed": "2026-12-02T00:00:00Z", "started": null, "finished": null,
            "retried": null, "expires": null, "lax": false, "worker_id": null, "result": null,
            "notes": {}}}))
        .expect("an event")
    }

    #[test]
    fn a_client_resuming_gets_the_kept_events_after_its_last_one_in_order() {
        let hub = hub();
        for n in 1..=5 {
            hub.publish(event(n));
        }
        let sub = hub.subscribe(Some(2));
        assert_eq!(
            sub.backlog.iter().map(|e| e.id).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert!(!sub.gap);
    }

    #[test]
    fn a_client_resuming_from_before_the_ring_is_told_of_the_gap() {
        let hub = hub();
        for n in 1..=(RING as i64 + 10) {
            hub.publish(event(n));
        }
        let sub = hub.subscribe(Some(5));
        assert!(sub.gap);
        assert_eq!(sub.backlog.len(), RING);
        assert_eq!(sub.backlog[0].id, 11);
        let sub = hub.subscribe(Some(10));
        assert!(
            !sub.gap,
            "event 11 is the oldest kept: nothing between is lost"
        );
    }

    #[test]
    fn a_client_resuming_from_an_id_this_server_never_sent_is_told_of_the_gap() {
        let hub = hub();
        hub.publish(event(1));
        assert!(hub.subscribe(Some(99)).gap);
    }

    #[test]
    fn events_published_after_subscribing_arrive_live_and_not_in_the_backlog() {
        let hub = hub();
        hub.publish(event(1));
        let mut sub = hub.subscribe(Some(0));
        hub.publish(event(2));
        assert_eq!(sub.backlog.iter().map(|e| e.id).collect::<Vec<_>>(), [1]);
        assert_eq!(sub.live.try_recv().map(|e| e.id).ok(), Some(2));
    }
}
