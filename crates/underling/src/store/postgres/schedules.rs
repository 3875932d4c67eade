//! Schedules on PostgreSQL: the statements of `sql/schedule*.sql`, and the firing of a tick
//! (the compare-and-set on `next_run`, the enqueue and the record of the job, in one
//! transaction).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};

use super::PostgresStore;
use crate::ScheduleInfo;
use crate::error::{Error, Result};
use crate::store::rows::ScheduleRow;
use crate::store::{self, DueSchedule, Fired, statement};

/// A schedule row as PostgreSQL returns it.
type PgScheduleRow = ScheduleRow<DateTime<Utc>, Value>;

impl PostgresStore {
    pub(super) async fn upsert(&self, p: store::UpsertSchedule<'_>) -> Result<bool> {
        Ok(sqlx::query_scalar(statement!("schedule_upsert"))
            .bind(p.name)
            .bind(p.cron)
            .bind(p.timezone)
            .bind(p.task)
            .bind(p.args)
            .bind(p.queue)
            .bind(p.priority)
            .bind(p.attempts)
            .bind(p.options)
            .bind(p.paused)
            .bind(p.catch_up.as_str())
            .bind(p.next_run)
            .bind(p.now)
            .fetch_one(&self.db)
            .await?)
    }

    pub(super) async fn read_schedules(&self, names: &[String]) -> Result<Vec<ScheduleInfo>> {
        let rows: Vec<PgScheduleRow> = sqlx::query_as(statement!("schedules", "schedule_columns"))
            .bind(names)
            .fetch_all(&self.db)
            .await?;
        rows.into_iter().map(ScheduleRow::into_info).collect()
    }

    pub(super) async fn due(&self, now: store::Now) -> Result<Vec<DueSchedule>> {
        let rows: Vec<PgRow> = sqlx::query(statement!("schedules_due", "schedule_columns"))
            .bind(now)
            .fetch_all(&self.db)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DueSchedule {
                    schedule: PgScheduleRow::from_row(row)?.into_info()?,
                    now: row.try_get("pass_now")?,
                })
            })
            .collect()
    }

    pub(super) async fn fire(&self, p: store::FireSchedule<'_>) -> Result<Fired> {
        let mut tx = self.pool.begin().await?;
        let moved: Option<String> = sqlx::query_scalar(statement!("schedule_move"))
            .bind(p.name)
            .bind(p.seen)
            .bind(p.next_run)
            .bind(p.now)
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
        let enqueued = self
            .insert(
                &mut tx,
                store::Enqueue {
                    jobs: std::slice::from_ref(job),
                    now: Some(p.now),
                },
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invariant("a tick's enqueue returned no job".into()))?;
        sqlx::query(statement!("schedule_ran"))
            .bind(p.name)
            .bind(p.tick)
            .bind(enqueued.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Fired::Moved(Some(enqueued)))
    }

    pub(super) async fn pause_schedule(&self, p: store::PauseSchedule<'_>) -> Result<bool> {
        let result = sqlx::query(statement!("schedule_pause"))
            .bind(p.name)
            .bind(p.paused)
            .bind(p.next_run)
            .bind(p.now)
            .execute(&self.db)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    pub(super) async fn delete_schedule(&self, name: &str) -> Result<bool> {
        let result = sqlx::query(statement!("schedule_remove"))
            .bind(name)
            .execute(&self.db)
            .await?;
        Ok(result.rows_affected() > 0)
    }
}
