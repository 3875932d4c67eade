//! Job events: every transition of a job, with the job's whole record at that moment.
//!
//! [`crate::Queue::events`] streams them live, whichever process on whichever host made the
//! transition; [`crate::Queue::enable_audit`] keeps them in the database (the audit log,
//! [`crate::Queue::audit`]), past `job purge` and repair's removal of old jobs.
//!
//! Neither costs the queue anything while unused: the database captures transitions only while
//! an event subscriber holds its lease or the audit log is enabled.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::Job;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobEventKind {
    /// It was inserted.
    Enqueued,
    /// A worker claimed it: it is active.
    Started,
    /// Its attempt succeeded.
    Finished,
    /// Its attempt failed with no tries left (or it was failed by repair as stuck).
    Failed,
    /// It went back to the queue: a failed attempt with tries left, or a retry by hand.
    Retried,
    /// Its task snoozed it: it runs again after a delay, without using an attempt (its
    /// `snoozes` went up by one).
    Snoozed,
    /// Its worker went away and repair failed its attempt (retried where tries are left: the
    /// record's state says which).
    Rescued,
    /// Its notes changed (progress, metadata).
    Noted,
    /// It was removed (by hand, by `purge`, or by repair as old or expired).
    Removed,
}

impl JobEventKind {
    /// Every kind, in the order of a job's life.
    pub const ALL: [JobEventKind; 9] = [
        JobEventKind::Enqueued,
        JobEventKind::Started,
        JobEventKind::Noted,
        JobEventKind::Finished,
        JobEventKind::Failed,
        JobEventKind::Retried,
        JobEventKind::Snoozed,
        JobEventKind::Rescued,
        JobEventKind::Removed,
    ];

    /// The name stored and sent for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            JobEventKind::Enqueued => "enqueued",
            JobEventKind::Started => "started",
            JobEventKind::Finished => "finished",
            JobEventKind::Failed => "failed",
            JobEventKind::Retried => "retried",
            JobEventKind::Snoozed => "snoozed",
            JobEventKind::Rescued => "rescued",
            JobEventKind::Noted => "noted",
            JobEventKind::Removed => "removed",
        }
    }
}

impl fmt::Display for JobEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobEventKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        JobEventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::InvalidOption(format!(
                    "unknown event {s:?}: expected one of enqueued, started, noted, finished, \
                     failed, retried, snoozed, rescued, removed"
                ))
            })
    }
}

/// One transition of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// What happened.
    pub event: JobEventKind,
    /// The job's record right after it happened (for a removal, right before). Its
    /// `children` are not filled; its `parents` are those stored when the transition happened.
    pub job: Job,
    /// On PostgreSQL, a record too large for one notification (8,000 bytes) comes without its
    /// args, result and notes; for every event but a removal they are read back from the
    /// job as it is when the event arrives, and this stays `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Ascending: later entries have higher ids.
    pub id: i64,
    /// When the transition was written.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: JobEventKind,
    /// The job's record right after it happened (for a removal, right before).
    pub job: Job,
}

/// Which audit entries to read ([`crate::Queue::audit`]), newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only the entries of this job.
    pub job_id: Option<i64>,
    /// Only entries with a lower id (keyset paging: the last id of the previous page).
    pub before: Option<i64>,
    /// At most this many (1 to 10,000).
    pub limit: u64,
}

/// The most entries one [`AuditQuery`] may ask for.
pub const MAX_AUDIT_PAGE: u64 = 10_000;

impl AuditQuery {
    /// Checks the limit.
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_AUDIT_PAGE {
            return Err(Error::InvalidOption(format!(
                "audit limit must be between 1 and {MAX_AUDIT_PAGE}, got {}",
                self.limit
            )));
        }
        Ok(())
    }
}

/// A live stream of job events ([`crate::Queue::events`]).
#[derive(Debug)]
pub struct EventStream {
    receiver: tokio::sync::broadcast::Receiver<JobEvent>,
}

/// A subscriber fell so far behind that this many events were dropped for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} events were missed: the subscriber fell more than 10,000 events behind")]
pub struct MissedEvents(pub u64);

impl EventStream {
    /// The next event; `Err` when events were dropped because this subscriber fell behind
    /// (the stream goes on with the oldest event still kept), `None` once the store closed.
    pub async fn next(&mut self) -> Option<std::result::Result<JobEvent, MissedEvents>> {
        use tokio::sync::broadcast::error::RecvError;
        match self.receiver.recv().await {
            Ok(event) => Some(Ok(event)),
            Err(RecvError::Lagged(n)) => Some(Err(MissedEvents(n))),
            Err(RecvError::Closed) => None,
        }
    }
}

/// Events and the audit log.
impl crate::Queue {
    /// Streams every job's transitions, made by any process on any host, from now on: see
    /// [`JobEvent`]. While any process subscribes, each statement that changes jobs also
    /// sends its transitions (PostgreSQL: a NOTIFY per statement; SQLite: a row per
    /// transition in an outbox that subscribers poll every 100 ms).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use underling::{EnqueueOptions, JobEventKind, Queue};
    ///
    /// let queue = Queue::connect_and_migrate("sqlite::memory:").await?;
    /// let mut events = queue.events().await?;
    /// let id = queue.enqueue("report.build", serde_json::json!({}), EnqueueOptions::new()).await?;
    /// let event = events.next().await.unwrap().unwrap();
    /// assert_eq!((event.event, event.job.id), (JobEventKind::Enqueued, id));
    /// # Ok::<(), underling::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn events(&self) -> Result<EventStream> {
        Ok(EventStream {
            receiver: self.store.events().await?,
        })
    }

    /// Turns the audit log on: from now on every transition of every job is written, by the
    /// statement that made it, with the job's record (see [`crate::Queue::audit`]). It costs
    /// processing throughput (see the README); entries stay until [`crate::Queue::prune_audit`].
    pub async fn enable_audit(&self) -> Result<()> {
        self.store.set_audit(true).await
    }

    /// Turns the audit log off (its entries stay).
    pub async fn disable_audit(&self) -> Result<()> {
        self.store.set_audit(false).await
    }

    /// Whether the audit log is on.
    pub async fn audit_enabled(&self) -> Result<bool> {
        self.store.audit_enabled().await
    }

    /// Entries of the audit log, newest first.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        query.validate()?;
        self.store.audit(query).await
    }

    /// Removes the audit entries older than `older_than`; returns how many.
    pub async fn prune_audit(&self, older_than: std::time::Duration) -> Result<u64> {
        let age = chrono::Duration::from_std(older_than)
            .map_err(|_| Error::InvalidOption(format!("{older_than:?} is too long an age")))?;
        let before = Utc::now()
            .checked_sub_signed(age)
            .ok_or_else(|| Error::InvalidOption(format!("{older_than:?} is too long an age")))?;
        self.store.prune_audit(before).await
    }
}
