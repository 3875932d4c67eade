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

/// What makes a claim of some queues a limited one: the limits, and whether one of the
/// queues is a FIFO queue.
pub(super) struct Rules {
    limits: Vec<Limit>,
}

/// A candidate row's arguments and notes, parsed.
fn parsed(args: &str, notes: &str) -> Result<(Value, Value)> {
    Ok((serde_json::from_str(args)?, serde_json::from_str(notes)?))
}

/// The rules a claim of `queues` must follow, or `None` when no limit and no FIFO queue
/// concerns it (the plain claim serves it).
pub(super) async fn claim_rules(
    conn: &mut SqliteConnection,
    queues: &[String],
) -> Result<Option<Rules>> {
    let limits = read_limits(conn).await?;
    let fifo: bool = sqlx::query_scalar(statement!("fifo_queues"))
        .bind(json_text(queues))
        .fetch_one(&mut *conn)
        .await?;
    Ok((fifo || crate::limits::concerns(&limits, queues)).then_some(Rules { limits }))
}

/// The FIFO queues among `queues` and the job at the head of each line that may start now:
/// the holder while it waits for a retry, none while a job of the queue is active, else the
/// first ready job (as in PostgreSQL's `underling_pick_limited`).
async fn fifo_heads(
    conn: &mut SqliteConnection,
    now: i64,
    queues: &[String],
) -> Result<(Vec<String>, Vec<CandidateRow>)> {
    let lines: Vec<(String, Option<i64>, bool)> = sqlx::query_as(statement!("fifo_lines"))
        .bind(json_text(queues))
        .fetch_all(&mut *conn)
        .await?;
    let mut heads = Vec::new();
    for (queue, holder, _) in lines.iter().filter(|(_, _, paused)| !paused) {
        let holder_state: Option<String> = match holder {
            Some(id) => {
                sqlx::query_scalar(statement!("fifo_holder_state"))
                    .bind(id)
                    .bind(queue)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            None => None,
        };
        let head: Option<CandidateRow> = match (holder, holder_state.as_deref()) {
            (Some(id), Some("inactive")) => {
                sqlx::query_as(statement!("fifo_ready_holder", "ready"))
                    .bind(now)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            _ => {
                let busy: bool = sqlx::query_scalar(statement!("fifo_busy"))
                    .bind(queue)
                    .fetch_one(&mut *conn)
                    .await?;
                if busy {
                    None
                } else {
                    sqlx::query_as(statement!("limit_candidates", "ready"))
                        .bind(now)
                        .bind(json_text(std::slice::from_ref(queue)))
                        .bind("[]")
                        .bind(1_i64)
                        .fetch_optional(&mut *conn)
                        .await?
                }
            }
        };
        heads.extend(head);
    }
    // FIFO queues are claimed from their heads only (paused ones not at all).
    let fifo = lines.into_iter().map(|(name, _, _)| name).collect();
    Ok((fifo, heads))
}

/// A job as the limited claim reads it.
type CandidateRow = (i64, String, String, String, String);

/// How many candidates (ready jobs whose groups all had room when the claim began) the limited
/// claim looks at: 4 x `limit`, 64 at least (as `underling_pick_limited` in PostgreSQL's
/// 0016_limits_fifo.sql).
fn candidates_wanted(limit: usize) -> usize {
    limit.saturating_mul(4).clamp(64, SCAN_CAP as usize)
}

/// The most ready jobs the limited claim reads: what waits behind more jobs of full groups
/// waits for them to start.
const SCAN_CAP: i64 = 50_000;

/// The most rounds of candidates one limited claim looks at.
const MAX_ROUNDS: usize = 4;

/// The limited claim, inside the caller's write transaction: picks up to `limit` ready jobs of
/// the queues (and tasks) that `limits` let start at `now` (ms), claims them for `worker`
/// (none: leased) and stores the rate windows the picks changed.
pub(super) async fn claim_limited(
    conn: &mut SqliteConnection,
    rules: &Rules,
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
    let (fifo, heads) = fifo_heads(conn, now, queues).await?;
    let mut picker = Picker::new(&rules.limits, &active, windows, now);
    let mut picked: Vec<i64> = Vec::new();
    let mut held: Vec<(String, i64)> = Vec::new();
    for (id, queue, task, args, notes) in heads {
        if picked.len() >= limit || !(tasks.is_empty() || tasks.contains(&task)) {
            continue;
        }
        let (args, notes) = parsed(&args, &notes)?;
        let candidate = Candidate {
            queue: &queue,
            task: &task,
            args: &args,
            notes: &notes,
        };
        if picker.admit(&candidate) {
            picked.push(id);
            held.push((queue, id));
        }
    }
    let others: Vec<&String> = queues.iter().filter(|q| !fifo.contains(q)).collect();

    // The walk goes in rounds, as PostgreSQL's: a round looks at `wanted` candidates, ready
    // jobs whose groups all had room when the round began; jobs of groups that were full then
    // are passed over without counting. So a claim that asks for more jobs than the limits
    // let start reads a bounded number of candidates, not the whole backlog of full groups,
    // yet reaches the groups behind a group that filled in an earlier round.
    let wanted = candidates_wanted(limit);
    let mut round_start = picker.clone();
    let mut candidates = 0;
    let mut rounds = 1;
    let mut read = 0;
    let mut page = i64::try_from(wanted).unwrap_or(SCAN_CAP);
    'walk: while picked.len() < limit && !others.is_empty() {
        let rows: Vec<CandidateRow> = sqlx::query_as(statement!("limit_candidates", "ready"))
            .bind(now)
            .bind(json_text(&others))
            .bind(json_text(tasks))
            .bind(page)
            .fetch_all(&mut *conn)
            .await?;
        let seen = rows.len() as i64;
        // Nothing changes inside the write transaction: a longer page starts with the rows
        // of the shorter one, which were walked already.
        for (id, queue, task, args, notes) in rows.into_iter().skip(read) {
            read += 1;
            let (args, notes) = parsed(&args, &notes)?;
            let candidate = Candidate {
                queue: &queue,
                task: &task,
                args: &args,
                notes: &notes,
            };
            if !round_start.has_room(&candidate) {
                continue;
            }
            candidates += 1;
            if picker.admit(&candidate) {
                picked.push(id);
                if picked.len() >= limit {
                    break 'walk;
                }
            }
            if candidates >= wanted {
                if rounds >= MAX_ROUNDS {
                    break 'walk;
                }
                rounds += 1;
                candidates = 0;
                round_start = picker.clone();
            }
        }
        if seen < page || page >= SCAN_CAP {
            break;
        }
        page = (page * 4).min(SCAN_CAP);
    }
    for (queue, id) in &held {
        sqlx::query(statement!("fifo_hold"))
            .bind(queue)
            .bind(id)
            .execute(&mut *conn)
            .await?;
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
