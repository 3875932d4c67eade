//! The SQLite event source and audit log: row triggers (created while needed) write each
//! transition into an outbox table with the job's columns; a subscriber polls the outbox,
//! renews its lease, and prunes what every subscriber has long since read.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tokio::sync::broadcast;

use super::{SqliteJobRow, json_text, millis, ms};
use crate::error::Result;
use crate::events::{AuditEntry, JobEvent};
use crate::store::events::{
    AUDIT_PRUNE_BATCH, EVENT_LEASE, EVENT_RENEW, EVENT_TRIGGERS, EventSource,
};
use crate::store::rows::StoredTime;
use crate::store::{fill, statement};

/// How often a subscriber looks for new events.
const EVENT_POLL: Duration = Duration::from_millis(100);

/// How long events stay in the outbox after they were written.
const EVENT_KEEP: Duration = Duration::from_secs(60);

/// The most events read at once.
const EVENT_BATCH: i64 = 1_000;

/// A row of `underling_events` or `underling_audit`.
#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    seq: i64,
    at: i64,
    event: String,
    #[sqlx(flatten)]
    job: SqliteJobRow,
}

impl EventRow {
    fn into_event(self) -> Result<(i64, JobEvent)> {
        Ok((
            self.seq,
            JobEvent {
                event: self.event.parse()?,
                job: self.job.into_job()?,
                partial: false,
            },
        ))
    }

    pub(super) fn into_audit(self) -> Result<AuditEntry> {
        Ok(AuditEntry {
            id: self.seq,
            at: self.at.into_time(),
            event: self.event.parse()?,
            job: self.job.into_job()?,
        })
    }
}

/// The statement that creates (or drops) the triggers writing into `table`.
pub(super) fn triggers(table: &str, create: bool) -> String {
    let template = if create {
        statement!("event_triggers")
    } else {
        statement!("drop_event_triggers")
    };
    fill(template, &[("table", table)])
}

/// How many of `names` exist as triggers on the jobs table.
pub(super) async fn count_triggers(conn: &mut SqliteConnection, names: &[&str]) -> Result<i64> {
    Ok(sqlx::query_scalar(statement!("triggers"))
        .bind(json_text(names))
        .fetch_one(&mut *conn)
        .await?)
}

/// Takes the lease (creating the triggers if they are missing) and starts polling from the
/// newest event.
pub(super) async fn start(pool: SqlitePool) -> Result<EventSource> {
    let lease = crate::store::events::lease_id();
    take_lease(&pool, &lease).await?;
    let last: i64 = sqlx::query_scalar(statement!("last_event"))
        .fetch_one(&pool)
        .await?;
    Ok(EventSource::spawn(lease.clone(), |sender| {
        run(pool, lease, last, sender)
    }))
}

/// Stops `source` and gives its lease back (the last lease to go drops the triggers).
pub(super) async fn stop(source: EventSource, pool: &SqlitePool) {
    let lease = source.stop();
    if let Err(e) = give_back(pool, Some(&lease)).await {
        tracing::warn!(error = %e, "giving back the event lease failed; repair drops the event triggers once it runs out");
    }
}

/// Takes or renews `lease` and creates the event triggers if any is missing, in one
/// write transaction.
async fn take_lease(pool: &SqlitePool, lease: &str) -> Result<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(statement!("event_lease"))
        .bind(lease)
        .bind(millis(None) + ms(EVENT_LEASE))
        .execute(&mut *tx)
        .await?;
    if count_triggers(&mut tx, &EVENT_TRIGGERS).await? < EVENT_TRIGGERS.len() as i64 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(triggers("underling_events", true)))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Gives back `lease` (if any) and removes leases that ran out; when no live lease is left,
/// drops the event triggers and empties the outbox.
pub(super) async fn give_back(pool: &SqlitePool, lease: Option<&str>) -> Result<()> {
    let mut conn = pool.acquire().await?;
    if lease.is_none() && count_triggers(&mut conn, &EVENT_TRIGGERS).await? == 0 {
        return Ok(());
    }
    drop(conn);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let now = millis(None);
    sqlx::query(statement!("event_unlease"))
        .bind(lease)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let live: i64 = sqlx::query_scalar(statement!("event_leases"))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    if live == 0 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(triggers("underling_events", false)))
            .execute(&mut *tx)
            .await?;
        sqlx::query(statement!("prune_events"))
            .bind(i64::MAX)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Polls the outbox, renews the lease and prunes old events.
async fn run(pool: SqlitePool, lease: String, mut last: i64, sender: broadcast::Sender<JobEvent>) {
    let mut renew = tokio::time::interval(EVENT_RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: the lease was just taken (and the first subscriber is on
    // its way).
    renew.tick().await;
    let mut poll = tokio::time::interval(EVENT_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = poll.tick() => match read(&pool, last).await {
                Ok(events) => {
                    if events.len() as i64 == EVENT_BATCH {
                        // More are waiting: read on without waiting for the next tick.
                        poll.reset_immediately();
                    }
                    for (seq, event) in events {
                        last = seq;
                        // No subscriber is not an error.
                        let _ = sender.send(event);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading events failed; retrying"),
            },
            _ = renew.tick() => {
                if sender.receiver_count() == 0 {
                    // Nobody listens any more: the triggers go (with the last lease).
                    if let Err(e) = give_back(&pool, Some(&lease)).await {
                        tracing::warn!(error = %e, "giving back the event lease failed; repair drops the event triggers once it runs out");
                    }
                    return;
                }
                let renewed = async {
                    take_lease(&pool, &lease).await?;
                    let before = millis(None) - ms(EVENT_KEEP);
                    sqlx::query(statement!("prune_events")).bind(before).execute(&pool).await?;
                    Ok::<(), crate::Error>(())
                };
                if let Err(e) = renewed.await {
                    tracing::warn!(error = %e, "renewing the event lease failed");
                }
            }
        }
    }
}

/// The events after `last`, oldest first, each with its seq.
async fn read(pool: &SqlitePool, last: i64) -> Result<Vec<(i64, JobEvent)>> {
    let rows: Vec<EventRow> = sqlx::query_as(statement!("events", "event_columns"))
        .bind(last)
        .bind(EVENT_BATCH)
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(EventRow::into_event).collect()
}

/// Audit entries as the query asks.
pub(super) async fn audit(
    pool: &SqlitePool,
    job_id: Option<i64>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<AuditEntry>> {
    let rows: Vec<EventRow> = sqlx::query_as(statement!("audit", "event_columns"))
        .bind(job_id)
        .bind(before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(EventRow::into_audit).collect()
}

/// Removes one batch of the audit entries written before `before`; returns how many.
pub(super) async fn prune_audit_batch(pool: &SqlitePool, before: DateTime<Utc>) -> Result<u64> {
    let done = sqlx::query(statement!("prune_audit"))
        .bind(before.timestamp_millis())
        .bind(AUDIT_PRUNE_BATCH)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
