//! Unique jobs on SQLite: the rule of PostgreSQL's `underling_enqueue_unique`, applied in
//! Rust under SQLite's single writer (the caller holds a write transaction or savepoint).
//!
//! Each job with a key looks for the key's holder: a job of the same batch inserted before
//! it, or a stored row. A live holder makes the job a duplicate (by its policy: the holder's
//! id, the holder updated, or [`Error::UniqueConflict`]); a holder that no longer holds the
//! key gives it up. The jobs to insert then go in one statement, and the partial unique index
//! guards what this module decides.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnection;

use super::{due, insert_deps, job_row, ms};
use crate::error::{Error, Result};
use crate::job::NewJob;
use crate::store::statement;
use crate::unique::{Enqueued, OnConflict};

/// A stored job that has a unique key, as `sql/unique_holder.sql` reads it.
type Holder = (
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    bool,
    String,
);

/// Whether a stored holder still holds its key at `now` (ms): PostgreSQL's
/// `underling_holds_key`.
fn holds(holder: &Holder, now: i64) -> bool {
    let (_, state, scope, until, expires, _, _) = holder;
    let gone = state == "inactive" && expires.is_some_and(|e| e <= now);
    !gone
        && match scope.as_deref() {
            Some("inactive") => state == "inactive",
            Some("active") => state == "inactive" || state == "active",
            _ => until.is_some_and(|u| u > now),
        }
}

/// Inserts `jobs` (some with unique keys) at `now` (ms), in input order.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    jobs: &[NewJob],
    now: i64,
) -> Result<Vec<Enqueued>> {
    // What became of each job: inserted (its row's index among the new rows) or a duplicate.
    enum Fate {
        New(usize),
        Duplicate {
            id: i64,
            replaced: bool,
        },
        /// A duplicate of the new row with this index, of this batch.
        Same {
            row: usize,
            replaced: bool,
        },
    }
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut new_jobs: Vec<&NewJob> = Vec::new();
    let mut fates = Vec::with_capacity(jobs.len());
    let mut batch_keys: HashMap<String, usize> = HashMap::new();
    for job in jobs {
        let mut row = job_row(job, now);
        let Some(unique) = job.resolved_unique() else {
            row.extend([Value::Null, Value::Null, Value::Null]);
            fates.push(Fate::New(rows.len()));
            rows.push(row);
            new_jobs.push(job);
            continue;
        };
        if let Some(&earlier) = batch_keys.get(&unique.key) {
            // A job of this batch holds the key, and it is inactive: it has not been written.
            let replaced = match unique.on_conflict {
                OnConflict::Error => {
                    return Err(Error::Invariant(format!(
                        "two jobs of one batch have the unique key {:?} and the conflict \
                         policy error: enqueue them apart",
                        unique.key
                    )));
                }
                OnConflict::Replace => {
                    let target = &mut rows[earlier];
                    target[1] = json!(job.args().to_string());
                    target[3] = json!(job.priority());
                    target[5] = json!(due(job, now));
                    true
                }
                OnConflict::Existing => false,
            };
            fates.push(Fate::Same {
                row: earlier,
                replaced,
            });
            continue;
        }
        let holder: Option<Holder> = sqlx::query_as(statement!("unique_holder"))
            .bind(&unique.key)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(holder) = holder {
            if holds(&holder, now) {
                let id = holder.0;
                let replaced = match unique.on_conflict {
                    OnConflict::Error => {
                        return Err(Error::UniqueConflict {
                            key: unique.key,
                            existing: id,
                        });
                    }
                    OnConflict::Replace if holder.1 == "inactive" => {
                        sqlx::query(statement!("unique_replace"))
                            .bind(id)
                            .bind(job.args().to_string())
                            .bind(job.priority())
                            .bind(due(job, now))
                            .execute(&mut *conn)
                            .await?;
                        true
                    }
                    _ => false,
                };
                fates.push(Fate::Duplicate { id, replaced });
                continue;
            }
            sqlx::query(statement!("unique_release"))
                .bind(holder.0)
                .execute(&mut *conn)
                .await?;
        }
        row.extend([
            json!(unique.key),
            json!(unique.scope),
            json!(unique.period.map(|d| now.saturating_add(ms(d)))),
        ]);
        batch_keys.insert(unique.key, rows.len());
        fates.push(Fate::New(rows.len()));
        rows.push(row);
        new_jobs.push(job);
    }
    let mut ids: Vec<i64> = if rows.is_empty() {
        Vec::new()
    } else {
        let rows: Vec<Value> = rows.into_iter().map(Value::Array).collect();
        sqlx::query_scalar(statement!("enqueue_unique"))
            .bind(Value::Array(rows).to_string())
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
    };
    ids.sort_unstable();
    insert_deps(conn, new_jobs.into_iter().zip(&ids)).await?;
    let new_id = |row: usize| {
        ids.get(row).copied().ok_or_else(|| {
            Error::Invariant(format!("{} jobs were inserted, not {}", ids.len(), row + 1))
        })
    };
    fates
        .into_iter()
        .map(|fate| match fate {
            Fate::New(row) => Ok(Enqueued::inserted(new_id(row)?)),
            Fate::Duplicate { id, replaced } => Ok(Enqueued {
                id,
                duplicate: true,
                replaced,
            }),
            Fate::Same { row, replaced } => Ok(Enqueued {
                id: new_id(row)?,
                duplicate: true,
                replaced,
            }),
        })
        .collect()
}
