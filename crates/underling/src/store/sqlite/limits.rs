//! Limits on SQLite: the limits table, and the limited claim made by [`crate::limits::Picker`]
//! inside a write transaction (the caller's `BEGIN IMMEDIATE`), which every other writer of
//! the file waits for, so that the active jobs it counts cannot change under it.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::sqlite::SqliteConnection;

use super::{SqliteJobRow, SqliteStore, json_text};
use crate::error::Result;
use crate::job::Job;
use crate::limits::{Candidate, Limit, LimitScope, Picker};
use crate::store::{rows, statement};

/// A stored limit: kind, name, concurrency, rate count, rate period in ms.
type LimitRow = (String, String, Option<i64>, Option<i64>, Option<i64>);

/// Every limit, on a connection.
pub(super) async fn read_limits(conn: &mut SqliteConnection) -> Result<Vec<Limit>> {
    let rows: Vec<LimitRow> = sqlx::query_as(statement!("limits"))
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|(kind, name, c, n, ms)| crate::limits::from_stored(kind, name, c, n, ms))
        .collect()
}

/// A job as the limited claim reads it.
type CandidateRow = (i64, String, String, String, String);

/// How many ready jobs the limited claim reads at first, and the most it reads in one pass
/// (see `underling_pick_limited` in PostgreSQL's 0015_limits.sql).
fn first_page(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(LAST_PAGE)
        .saturating_mul(4)
        .clamp(64, LAST_PAGE)
}
const LAST_PAGE: i64 = 16_384;

/// The limited claim, inside the caller's write transaction: picks up to `limit` ready jobs of
/// the queues (and tasks) that `limits` let start at `now` (ms), claims them for `worker`
/// (none: leased) and stores the rate windows the picks changed.
pub(super) async fn claim_limited(
    conn: &mut SqliteConnection,
    limits: &[Limit],
    now: i64,
    worker: Option<i64>,
    queues: &[String],
    tasks: &[String],
    limit: usize,
) -> Result<Vec<Job>> {
    let active: Vec<(String, String, String, String)> = sqlx::query_as(statement!("limit_active"))
        .fetch_all(&mut *conn)
        .await?;
    let active: Vec<(String, String, Value, Value)> = active
        .into_iter()
        .map(|(q, t, a, n)| Ok((q, t, serde_json::from_str(&a)?, serde_json::from_str(&n)?)))
        .collect::<Result<_>>()?;
    let active: Vec<Candidate<'_>> = active
        .iter()
        .map(|(queue, task, args, notes)| Candidate {
            queue,
            task,
            args,
            notes,
        })
        .collect();
    let windows: Vec<(String, String)> = sqlx::query_as(statement!("limit_windows"))
        .fetch_all(&mut *conn)
        .await?;
    let windows: HashMap<String, Vec<i64>> = windows
        .into_iter()
        .map(|(g, starts)| Ok((g, serde_json::from_str(&starts)?)))
        .collect::<Result<_>>()?;
    let mut picker = Picker::new(limits, &active, windows, now);

    let mut picked: Vec<i64> = Vec::new();
    let mut page = first_page(limit);
    loop {
        let rows: Vec<CandidateRow> = sqlx::query_as(statement!("limit_candidates", "ready"))
            .bind(now)
            .bind(json_text(queues))
            .bind(json_text(tasks))
            .bind(page)
            .fetch_all(&mut *conn)
            .await?;
        let seen = rows.len() as i64;
        for (id, queue, task, args, notes) in rows {
            if picked.contains(&id) {
                continue;
            }
            let (args, notes): (Value, Value) =
                (serde_json::from_str(&args)?, serde_json::from_str(&notes)?);
            let candidate = Candidate {
                queue: &queue,
                task: &task,
                args: &args,
                notes: &notes,
            };
            if picker.admit(&candidate) {
                picked.push(id);
                if picked.len() >= limit {
                    break;
                }
            }
        }
        if picked.len() >= limit || seen < page || page >= LAST_PAGE {
            break;
        }
        page = (page * 4).min(LAST_PAGE);
    }
    for (group, starts) in picker.changed_windows() {
        sqlx::query(statement!("limit_window_set"))
            .bind(group)
            .bind(json_text(starts))
            .execute(&mut *conn)
            .await?;
    }
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<SqliteJobRow> = sqlx::query_as(statement!("claim_ids", "returning_columns"))
        .bind(now)
        .bind(worker)
        .bind(json_text(&picked))
        .fetch_all(&mut *conn)
        .await?;
    rows::into_jobs(rows)
}

impl SqliteStore {
    pub(super) async fn write_limit(&self, limit: &Limit) -> Result<()> {
        let (kind, name, concurrency, count, period) = crate::limits::stored_columns(limit);
        let writer = self.writer.lock().await;
        sqlx::query(statement!("set_limit"))
            .bind(kind)
            .bind(name)
            .bind(concurrency)
            .bind(count)
            .bind(period)
            .execute(&self.pool)
            .await?;
        drop(writer);
        // The limit may let more jobs start now.
        self.wakeups.wake(crate::store::notify::ANY_QUEUE);
        Ok(())
    }

    pub(super) async fn delete_limit(&self, scope: &LimitScope) -> Result<bool> {
        let writer = self.writer.lock().await;
        let done = sqlx::query(statement!("remove_limit"))
            .bind(scope.kind())
            .bind(scope.name())
            .execute(&self.pool)
            .await?;
        drop(writer);
        let removed = done.rows_affected() > 0;
        if removed {
            self.wakeups.wake(crate::store::notify::ANY_QUEUE);
        }
        Ok(removed)
    }

    pub(super) async fn all_limits(&self) -> Result<Vec<Limit>> {
        let mut conn = self.pool.acquire().await?;
        read_limits(&mut conn).await
    }
}
