//! The PostgreSQL event source: a lease in `underling_event_listeners` keeps the event
//! triggers of migration 0008 in place, and a LISTEN connection of its own receives each
//! statement's transitions as JSON (see `underling_events_notify`).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::sync::broadcast;

use super::PgJobRow;
use crate::error::{Error, Result};
use crate::events::JobEvent;
use crate::store::events::{
    EVENT_LEASE, EVENT_RENEW, EVENT_TRIGGERS, EventSource, Notified, parse_notification,
};
use crate::store::rows::JobRow;
use crate::store::{fill, statement};

/// The longest channel name PostgreSQL takes (`NAMEDATALEN - 1` bytes).
const MAX_CHANNEL_LEN: usize = 63;

/// Takes the lease (creating the triggers if they are missing) and starts listening.
pub(super) async fn start(
    pool: PgPool,
    options: PgConnectOptions,
    channel: String,
) -> Result<EventSource> {
    if channel.len() > MAX_CHANNEL_LEN {
        return Err(Error::InvalidOption(format!(
            "events need a NOTIFY channel named {channel:?}, longer than PostgreSQL's \
             {MAX_CHANNEL_LEN} bytes: use a shorter schema name"
        )));
    }
    let lease = crate::store::events::lease_id();
    // A connection of its own, as for wake-ups: a busy pool never delays events. It listens
    // before this returns, so that the caller sees every event from now on.
    let listen_pool = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&listen_pool).await?;
    listener.listen(&channel).await?;
    take_lease(&pool, &lease, &channel).await?;
    Ok(EventSource::spawn(lease.clone(), |sender| {
        run(pool, listen_pool, listener, channel, lease, sender)
    }))
}

/// Stops `source` and gives its lease back (the last lease to go drops the triggers).
pub(super) async fn stop(source: EventSource, pool: &PgPool) {
    let lease = source.stop();
    if let Err(e) = give_back(pool, Some(&lease)).await {
        tracing::warn!(error = %e, "giving back the event lease failed; repair drops the event triggers once it runs out");
    }
}

/// Takes or renews `lease`, and creates the event triggers (sending to `channel`) if any is
/// missing.
async fn take_lease(pool: &PgPool, lease: &str, channel: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(statement!("lock_event_listeners"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(statement!("event_lease"))
        .bind(lease)
        .bind(EVENT_LEASE.as_secs_f64())
        .execute(&mut *tx)
        .await?;
    if count_triggers(&mut tx, &EVENT_TRIGGERS).await? < EVENT_TRIGGERS.len() as i64 {
        // The channel is ours ("underling.<schema>.events", the schema checked to be letters,
        // digits and underscores); quoted all the same.
        let sql = fill(
            statement!("event_triggers"),
            &[("channel", &channel.replace('\'', "''"))],
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Gives back `lease` (if any) and removes leases that ran out; when no live lease is left,
/// drops the event triggers.
pub(super) async fn give_back(pool: &PgPool, lease: Option<&str>) -> Result<()> {
    let mut conn = pool.acquire().await?;
    // Most calls (repair's) find no triggers to drop: they take no lock.
    if lease.is_none() && count_triggers(&mut conn, &EVENT_TRIGGERS).await? == 0 {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    sqlx::query(statement!("lock_event_listeners"))
        .execute(&mut *tx)
        .await?;
    let live: i64 = sqlx::query_scalar(statement!("event_unlease"))
        .bind(lease)
        .fetch_one(&mut *tx)
        .await?;
    if live == 0 {
        sqlx::raw_sql(statement!("drop_event_triggers"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How many of `names` exist as triggers on the jobs table.
pub(super) async fn count_triggers(conn: &mut PgConnection, names: &[&str]) -> Result<i64> {
    Ok(sqlx::query_scalar(statement!("triggers"))
        .bind(names)
        .fetch_one(&mut *conn)
        .await?)
}

/// Listens (reconnecting when the connection drops) and renews the lease.
async fn run(
    pool: PgPool,
    listen_pool: PgPool,
    listener: PgListener,
    channel: String,
    lease: String,
    sender: broadcast::Sender<JobEvent>,
) {
    let mut renew = tokio::time::interval(EVENT_RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: the lease was just taken.
    renew.tick().await;
    let mut listener = Some(listener);
    loop {
        if let Some(mut listening) = listener.take() {
            loop {
                tokio::select! {
                    received = listening.try_recv() => match received {
                        Ok(Some(n)) => deliver(&pool, &sender, n.payload()).await,
                        Ok(None) => tracing::warn!(
                            "the event connection was lost and reconnected: events of that moment may be missing"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "event listener failed; reconnecting");
                            break;
                        }
                    },
                    _ = renew.tick() => {
                        if sender.receiver_count() == 0 {
                            // Nobody listens any more: the triggers go (with the last lease).
                            if let Err(e) = give_back(&pool, Some(&lease)).await {
                                tracing::warn!(error = %e, "giving back the event lease failed; repair drops the event triggers once it runs out");
                            }
                            return;
                        }
                        if let Err(e) = take_lease(&pool, &lease, &channel).await {
                            tracing::warn!(error = %e, "renewing the event lease failed");
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        match PgListener::connect_with(&listen_pool).await {
            Ok(mut again) => match again.listen(&channel).await {
                Ok(()) => listener = Some(again),
                Err(e) => tracing::warn!(error = %e, "LISTEN for events failed; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for events; retrying"),
        }
    }
}

/// Sends the events of one notification to the subscribers, completing partial records.
async fn deliver(pool: &PgPool, sender: &broadcast::Sender<JobEvent>, payload: &str) {
    let Some(entries) = parse_notification(payload) else {
        return;
    };
    for entry in entries {
        let event = match entry {
            Notified::Event(event) if !event.partial || event.event.as_str() == "removed" => {
                Some(*event)
            }
            Notified::Event(event) => read(pool, event.job.id).await.map(|job| JobEvent {
                job,
                partial: false,
                event: event.event,
            }),
            Notified::Id { event, id } => read(pool, id).await.map(|job| JobEvent {
                event,
                job,
                partial: false,
            }),
        };
        if let Some(event) = event {
            // No subscriber is not an error.
            let _ = sender.send(event);
        }
    }
}

/// The job's record now, for an event whose record was too large to send.
async fn read(pool: &PgPool, id: i64) -> Option<crate::Job> {
    let row: std::result::Result<Option<PgJobRow>, _> =
        sqlx::query_as(statement!("job", "job_columns"))
            .bind(id)
            .bind(None::<chrono::DateTime<chrono::Utc>>)
            .fetch_optional(pool)
            .await;
    match row
        .map_err(Error::from)
        .and_then(|row| row.map(JobRow::into_job).transpose())
    {
        Ok(Some(job)) => Some(job),
        Ok(None) => {
            tracing::warn!(
                job = id,
                "an event's job is gone before its record could be read; event dropped"
            );
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, job = id, "reading an event's job failed; event dropped");
            None
        }
    }
}
