//! What both stores' event sources share: the lease, the buffer, and the payloads of
//! PostgreSQL's event notifications.

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

#[cfg(feature = "postgres")]
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::events::JobEvent;
#[cfg(feature = "postgres")]
use crate::events::JobEventKind;
#[cfg(feature = "postgres")]
use crate::job::Job;

/// How many audit entries one statement of a prune removes.
pub(crate) const AUDIT_PRUNE_BATCH: i64 = 10_000;

/// How many events a subscriber may fall behind before it is told it missed some.
pub(crate) const EVENT_BUFFER: usize = 10_000;

/// How long an event lease lasts unless renewed: the triggers stay this long after a
/// subscriber died without giving its lease back (then repair drops them).
pub(crate) const EVENT_LEASE: Duration = Duration::from_secs(30);

/// How often a subscriber renews its lease.
pub(crate) const EVENT_RENEW: Duration = Duration::from_secs(10);

/// The names of the event triggers (`underling_events_*`) and the audit triggers
/// (`underling_audit_*`), the same on both backends.
pub(crate) const EVENT_TRIGGERS: [&str; 3] = [
    "underling_events_insert",
    "underling_events_update",
    "underling_events_delete",
];
/// See [`EVENT_TRIGGERS`].
pub(crate) const AUDIT_TRIGGERS: [&str; 3] = [
    "underling_audit_insert",
    "underling_audit_update",
    "underling_audit_delete",
];

/// A running event source (a backend's listener or poller) under a lease.
pub(crate) struct EventSource {
    /// Subscribers get a receiver of this while the source runs (its task holds the only
    /// strong sender: once it stopped, every receiver is closed).
    sender: broadcast::WeakSender<JobEvent>,
    /// The source's lease in `underling_event_listeners`.
    lease: String,
    task: JoinHandle<()>,
}

impl EventSource {
    /// Spawns `run` with the one strong sender of a new event channel; `run` stops (and gives
    /// `lease` back) when no receiver is left.
    pub(crate) fn spawn<F>(
        lease: String,
        run: impl FnOnce(broadcast::Sender<JobEvent>) -> F,
    ) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (sender, _) = broadcast::channel(EVENT_BUFFER);
        let weak = sender.downgrade();
        EventSource {
            sender: weak,
            lease,
            task: tokio::spawn(run(sender)),
        }
    }

    /// A new subscriber, unless the source stopped (for want of subscribers).
    fn subscribe(&self) -> Option<broadcast::Receiver<JobEvent>> {
        self.sender.upgrade().map(|sender| sender.subscribe())
    }

    /// Stops the source; returns its lease, for the backend to give back.
    pub(crate) fn stop(self) -> String {
        self.task.abort();
        self.lease
    }
}

/// A subscriber of the store's running source, or of a new one that `start` starts when there
/// is none (yet, or any more: a source stops once its last subscriber left).
pub(crate) async fn subscribe_or_start(
    slot: &tokio::sync::Mutex<Option<EventSource>>,
    start: impl Future<Output = Result<EventSource>>,
) -> Result<broadcast::Receiver<JobEvent>> {
    let mut source = slot.lock().await;
    if let Some(receiver) = source.as_ref().and_then(EventSource::subscribe) {
        return Ok(receiver);
    }
    let started = start.await?;
    let receiver = started
        .subscribe()
        .ok_or_else(|| Error::Invariant("the event source stopped as it started".into()))?;
    *source = Some(started);
    Ok(receiver)
}

/// A name for this process's event lease, unique across hosts and restarts.
pub(crate) fn lease_id() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into());
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{host}:{}:{nanos}", std::process::id())
}

/// One entry of an event notification: `{"event", "job"}` (maybe `"partial"`), or
/// `{"event", "id"}` when the record was too large to send. (One struct with optional fields,
/// not an untagged enum, which serde would buffer and parse twice.)
#[cfg(feature = "postgres")]
#[derive(Debug, Deserialize)]
pub(crate) struct Raw {
    event: JobEventKind,
    #[serde(default)]
    partial: bool,
    job: Option<Job>,
    id: Option<i64>,
}

/// One entry of an event notification.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub(crate) enum Notified {
    /// The event with the job's record (maybe partial).
    Event(Box<JobEvent>),
    /// Only the job's id: its record was too large to send.
    Id {
        /// What happened.
        event: JobEventKind,
        /// The job.
        id: i64,
    },
}

/// The entries of one notification's payload (a JSON array); `None` if it is not one.
#[cfg(feature = "postgres")]
pub(crate) fn parse_notification(payload: &str) -> Option<Vec<Notified>> {
    let raw: Vec<Raw> = match serde_json::from_str(payload) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "an event notification could not be read; dropped");
            return None;
        }
    };
    let entries = raw
        .into_iter()
        .filter_map(|r| match (r.job, r.id) {
            (Some(job), _) => Some(Notified::Event(Box::new(JobEvent {
                event: r.event,
                job,
                partial: r.partial,
            }))),
            (None, Some(id)) => Some(Notified::Id { event: r.event, id }),
            (None, None) => {
                tracing::warn!("an event without a job or an id; dropped");
                None
            }
        })
        .collect();
    Some(entries)
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::{Notified, parse_notification};
    use crate::JobEventKind;

    #[test]
    fn a_notification_holds_events_with_records_and_events_with_ids_alone() {
        let payload = r#"[{"event": "started", "job": {"id": 1, "lax": false, "args": {"x": 1},
            "task": "a", "notes": {}, "queue": "default", "state": "active", "result": null,
            "created": "2026-12-02T14:21:29.551902+00:00",
            "delayed": "2026-12-02T14:21:29.551902+00:00", "expires": null, "parents": [],
            "retried": null, "retries": 0, "started": "2026-12-02T14:21:29.55951+00:00",
            "attempts": 1, "finished": null, "priority": 0, "worker_id": 7}},
            {"event": "removed", "id": 2}]"#;
        let entries = parse_notification(payload).expect("a JSON array");
        assert_eq!(entries.len(), 2);
        match &entries[0] {
            Notified::Event(e) => {
                assert_eq!(e.event, JobEventKind::Started);
                assert_eq!(e.job.id, 1);
                assert_eq!(e.job.worker_id, Some(7));
                assert!(!e.partial);
            }
            other => panic!("expected an event with its record, got {other:?}"),
        }
        match &entries[1] {
            Notified::Id { event, id } => {
                assert_eq!((*event, *id), (JobEventKind::Removed, 2));
            }
            other => panic!("expected an id alone, got {other:?}"),
        }
    }

    #[test]
    fn a_payload_that_is_not_a_json_array_is_dropped() {
        assert!(parse_notification("*").is_none());
    }
}
