//! Schedules on SQLite: the statements of `sql/schedule*.sql`, and the firing of a tick (the
//! compare-and-set on `next_run`, the enqueue and the record of the job, in one write
//! transaction).

use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row};

use super::{SqliteStore, insert_jobs, json_text};
use crate::ScheduleInfo;
use crate::error::{Error, Result};
use crate::store::rows::{ScheduleRow, StoredTime};
use crate::store::{self, DueSchedule, Fired, statement};

/// A schedule row as SQLite returns it.
type SqliteScheduleRow = ScheduleRow<i64, String>;

impl SqliteStore {
    pub(super) async fn upsert(&self, p: store::UpsertSchedule<'_>) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let exists: bool = sqlx::query_scalar(statement!("schedule_exists"))
            .bind(p.name)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(statement!("schedule_upsert"))
            .bind(p.name)
            .bind(p.cron)
            .bind(p.timezone)
            .bind(p.task)
            .bind(p.args.to_string())
            .bind(p.queue)
            .bind(p.priority)
            .bind(p.attempts)
            .bind(p.options.to_string())
            .bind(p.paused)
            .bind(p.catch_up.as_str())
            .bind(p.next_run.timestamp_millis())
            .bind(p.now.timestamp_millis())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(!exists)
    }

    pub(super) async fn read_schedules(&self, names: &[String]) -> Result<Vec<ScheduleInfo>> {
        let rows: Vec<SqliteScheduleRow> =
            sqlx::query_as(statement!("schedules", "schedule_columns"))
                .bind(json_text(names))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(ScheduleRow::into_info).collect()
    }

    pub(super) async fn due(&self, now: store::Now) -> Result<Vec<DueSchedule>> {
        let rows: Vec<SqliteRow> = sqlx::query(statement!("schedules_due", "schedule_columns"))
            .bind(super::millis(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DueSchedule {
                    schedule: SqliteScheduleRow::from_row(row)?.into_info()?,
                    now: row.try_get::<i64, _>("pass_now")?.into_time(),
                })
            })
            .collect()
    }

    pub(super) async fn fire(&self, p: store::FireSchedule<'_>) -> Result<Fired> {
        let writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let moved: Option<String> = sqlx::query_scalar(statement!("schedule_move"))
            .bind(p.name)
            .bind(p.seen.map(|t| t.timestamp_millis()))
            .bind(p.next_run.map(|t| t.timestamp_millis()))
            .bind(p.now.timestamp_millis())
            .fetch_optional(&mut *tx)
            .await?;
        if moved.is_none() {
            tx.rollback().await?;
            return Ok(Fired::Lost);
        }
        let Some(job) = p.job else {
            tx.commit().await?;
            return Ok(Fired::Moved(None));
        };
        let jobs = std::slice::from_ref(job);
        let enqueued = insert_jobs(
            &mut tx,
            store::Enqueue {
                jobs,
                now: Some(p.now),
            },
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Invariant("a tick's enqueue returned no job".into()))?;
        sqlx::query(statement!("schedule_ran"))
            .bind(p.name)
            .bind(p.tick.timestamp_millis())
            .bind(enqueued.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(writer);
        self.wake_for(jobs);
        Ok(Fired::Moved(Some(enqueued)))
    }

    pub(super) async fn pause_schedule(&self, p: store::PauseSchedule<'_>) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let result = sqlx::query(statement!("schedule_pause"))
            .bind(p.name)
            .bind(p.paused)
            .bind(p.next_run.timestamp_millis())
            .bind(p.now.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    pub(super) async fn delete_schedule(&self, name: &str) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let result = sqlx::query(statement!("schedule_remove"))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }
}
