//! Raw-SQL reference loops for the benchmark: what the database can do at best on this machine,
//! with no queue logic at all, measured in the same run as underling itself.
//!
//! Each loop works on `raw_jobs`, a copy of the jobs table with the same columns and indexes,
//! so that the ceiling pays the same index maintenance as the real thing.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{PgPool, SqlitePool};

use crate::error::Result;

/// Creates (or empties) `raw_jobs` beside the jobs table.
pub async fn pg_prepare(pool: &PgPool) -> Result<()> {
    sqlx::query("DROP TABLE IF EXISTS raw_jobs")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE raw_jobs (LIKE underling_jobs INCLUDING DEFAULTS INCLUDING INDEXES) \
         WITH (fillfactor = 80)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops `raw_jobs`.
pub async fn pg_cleanup(pool: &PgPool) -> Result<()> {
    sqlx::query("DROP TABLE IF EXISTS raw_jobs")
        .execute(pool)
        .await?;
    Ok(())
}

/// Empties the jobs table and `raw_jobs` between measurements.
pub async fn pg_reset(pool: &PgPool) -> Result<()> {
    sqlx::query("TRUNCATE underling_jobs, underling_job_deps, raw_jobs")
        .execute(pool)
        .await?;
    Ok(())
}

/// Multi-row INSERT of `total` rows, `batch` rows per statement, the rows sent as arrays.
pub async fn pg_insert_batches(pool: &PgPool, total: usize, batch: usize) -> Result<Duration> {
    let args: Vec<Value> = vec![Value::Object(Default::default()); batch];
    let tasks: Vec<&str> = vec!["raw.noop"; batch];
    let queues: Vec<&str> = vec!["raw"; batch];
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let n = batch.min(total - done);
        sqlx::query(
            "INSERT INTO raw_jobs (task, args, queue) \
             SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[])",
        )
        .bind(&tasks[..n])
        .bind(&args[..n])
        .bind(&queues[..n])
        .execute(pool)
        .await?;
        done += n;
    }
    Ok(start.elapsed())
}

/// One single-row INSERT per transaction, from `clients` connections at once.
pub async fn pg_insert_singles(pool: &PgPool, total: usize, clients: usize) -> Result<Duration> {
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let pool = pool.clone();
        let share = total / clients + usize::from(c < total % clients);
        handles.push(tokio::spawn(async move {
            for _ in 0..share {
                sqlx::query("INSERT INTO raw_jobs (task, args, queue) VALUES ($1, $2, $3)")
                    .bind("raw.noop")
                    .bind(Value::Object(Default::default()))
                    .bind("raw")
                    .execute(&pool)
                    .await?;
            }
            Ok::<(), crate::BenchError>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(start.elapsed())
}

/// Fills `raw_jobs` with `total` inactive rows (not timed).
pub async fn pg_fill(pool: &PgPool, total: usize) -> Result<()> {
    sqlx::query(
        "INSERT INTO raw_jobs (task, args, queue) \
         SELECT 'raw.noop', '{}'::jsonb, 'raw' FROM generate_series(1, $1)",
    )
    .bind(total as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Claims 100 rows with `FOR UPDATE SKIP LOCKED` and finishes them with one UPDATE, in a loop
/// on `clients` connections until nothing is left; returns the time and rows processed. The
/// claim walks the same index as underling's (the ready index of one queue, 0004_claims).
pub async fn pg_claim_finish(pool: &PgPool, clients: usize) -> Result<(Duration, u64)> {
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let mut count = 0u64;
            loop {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE raw_jobs SET state = 'active', started = now(), worker_id = 1 \
                     WHERE id IN (SELECT id FROM raw_jobs WHERE queue = 'raw' \
                                    AND state = 'inactive' \
                                    AND delayed <= GREATEST(created, retried, promoted) \
                                  ORDER BY priority DESC, id LIMIT 100 FOR UPDATE SKIP LOCKED) \
                     RETURNING id",
                )
                .fetch_all(&pool)
                .await?;
                if ids.is_empty() {
                    return Ok::<u64, crate::BenchError>(count);
                }
                count += ids.len() as u64;
                sqlx::query(
                    "UPDATE raw_jobs SET state = 'finished', finished = now(), result = 'null' \
                     WHERE id = ANY($1)",
                )
                .bind(&ids)
                .execute(&pool)
                .await?;
            }
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await??;
    }
    Ok((start.elapsed(), total))
}

/// Creates (or empties) `raw_jobs` in SQLite.
pub async fn sqlite_prepare(pool: &SqlitePool) -> Result<()> {
    sqlx::query("DROP TABLE IF EXISTS raw_jobs")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE raw_jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, \
         queue TEXT NOT NULL, args TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'inactive', \
         priority INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0, \
         started INTEGER, finished INTEGER, result TEXT, worker_id INTEGER)",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "CREATE INDEX raw_jobs_ready ON raw_jobs (priority DESC, id) WHERE state = 'inactive'",
    )
    .execute(pool)
    .await?;
    // The same partial indexes as the jobs table, so the ceiling pays the same index writes.
    sqlx::query("CREATE INDEX raw_jobs_active ON raw_jobs (worker_id) WHERE state = 'active'")
        .execute(pool)
        .await?;
    sqlx::query("CREATE INDEX raw_jobs_finished ON raw_jobs (finished) WHERE state = 'finished'")
        .execute(pool)
        .await?;
    Ok(())
}

/// Empties the jobs table and `raw_jobs` between measurements.
pub async fn sqlite_reset(pool: &SqlitePool) -> Result<()> {
    sqlx::query("DELETE FROM underling_job_deps")
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM underling_jobs")
        .execute(pool)
        .await?;
    sqlx::query("DELETE FROM raw_jobs").execute(pool).await?;
    Ok(())
}

/// Multi-row INSERT of `total` rows, `batch` per statement.
pub async fn sqlite_insert_batches(
    pool: &SqlitePool,
    total: usize,
    batch: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let n = batch.min(total - done);
        let rows = Value::Array(vec![Value::Null; n]).to_string();
        sqlx::query(
            "INSERT INTO raw_jobs (task, queue, args) \
             SELECT 'raw.noop', 'raw', '{}' FROM json_each(?1)",
        )
        .bind(rows)
        .execute(pool)
        .await?;
        done += n;
    }
    Ok(start.elapsed())
}

/// One single-row INSERT per transaction.
pub async fn sqlite_insert_singles(pool: &SqlitePool, total: usize) -> Result<Duration> {
    let start = Instant::now();
    for _ in 0..total {
        sqlx::query("INSERT INTO raw_jobs (task, queue, args) VALUES (?1, ?2, ?3)")
            .bind("raw.noop")
            .bind("raw")
            .bind("{}")
            .execute(pool)
            .await?;
    }
    Ok(start.elapsed())
}

/// Fills `raw_jobs` with `total` inactive rows (not timed).
pub async fn sqlite_fill(pool: &SqlitePool, total: usize) -> Result<()> {
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO raw_jobs (task, queue, args) SELECT 'raw.noop', 'raw', '{}' FROM n",
    )
    .bind(total as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Claims 100 rows and finishes them with one UPDATE, in a loop until nothing is left.
pub async fn sqlite_claim_finish(pool: &SqlitePool) -> Result<(Duration, u64)> {
    let start = Instant::now();
    let mut count = 0u64;
    loop {
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE raw_jobs SET state = 'active', started = 1, worker_id = 1 \
             WHERE id IN (SELECT id FROM raw_jobs WHERE state = 'inactive' \
                          ORDER BY priority DESC, id LIMIT 100) RETURNING id",
        )
        .fetch_all(pool)
        .await?;
        if ids.is_empty() {
            return Ok((start.elapsed(), count));
        }
        count += ids.len() as u64;
        sqlx::query(
            "UPDATE raw_jobs SET state = 'finished', finished = 1, result = 'null' \
             WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .execute(pool)
        .await?;
    }
}
