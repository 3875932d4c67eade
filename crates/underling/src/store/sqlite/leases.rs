//! Leases for pull workers on SQLite: the workers' claim (`sql/claim.sql`) for no worker and
//! the lease on the rows it claimed, in one write transaction; settles and renewals that check
//! the lease inside the write transaction; and the rescue of leases that ran out through the
//! workers' settle (`sql/settle.sql`).

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;

use super::{SqliteJobRow, SqliteStore, json_text, millis, ms};
use crate::error::{Error, Result};
use crate::job::{JobState, Settle, Settled};
use crate::lease::{Lease, LeasedJob};
use crate::store::rows::{self, AbandonedRow, LEASE_EXPIRED, StoredTime};
use crate::store::{self, Attempt, LeaseRow, statement};

impl SqliteStore {
    pub(super) async fn claim_with_lease(
        &self,
        p: store::ClaimLeased<'_>,
    ) -> Result<Vec<LeasedJob>> {
        if p.limit == 0 || p.spec.queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = millis(p.now);
        let expires = now.saturating_add(ms(p.lease));
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(statement!("promote"))
            .bind(now)
            .bind(json_text(&p.spec.queues))
            .execute(&mut *tx)
            .await?;
        let rules = super::limits::claim_rules(&mut tx, &p.spec.queues).await?;
        let mut jobs = if let Some(rules) = rules {
            let spec = p.spec;
            super::limits::claim_limited(
                &mut tx,
                &rules,
                now,
                None,
                &spec.queues,
                &spec.tasks,
                p.limit,
            )
            .await?
        } else {
            let rows: Vec<SqliteJobRow> =
                sqlx::query_as(statement!("claim", "ready", "returning_columns"))
                    .bind(now)
                    .bind(None::<i64>)
                    .bind(json_text(&p.spec.queues))
                    .bind(json_text(&p.spec.tasks))
                    .bind(i64::try_from(p.limit).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await?;
            rows::into_jobs(rows)?
        };
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        if !ids.is_empty() {
            sqlx::query(statement!("lease"))
                .bind(expires)
                .bind(json_text(&ids))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        store::claim_order(&mut jobs);
        let expires = expires.into_time();
        Ok(jobs
            .into_iter()
            .map(|job| {
                let token = Lease::token(Attempt {
                    id: job.id,
                    retries: job.retries,
                });
                LeasedJob {
                    job,
                    lease: Lease { token, expires },
                }
            })
            .collect())
    }

    pub(super) async fn settle_with_lease(&self, p: store::SettleLeased<'_>) -> Result<Settled> {
        let writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = lease_row(&mut tx, p.attempt, p.now).await?;
        LeaseRow::check(row.as_ref(), p.attempt)?;
        if p.give_up {
            sqlx::query(statement!("give_up"))
                .bind(p.attempt.id)
                .execute(&mut *tx)
                .await?;
        }
        let settles = [Settle {
            id: p.attempt.id,
            retries: p.attempt.retries,
            outcome: p.outcome.clone(),
        }];
        let settled = self.settle_on(&mut tx, &settles, p.now).await?;
        tx.commit().await?;
        drop(writer);
        let settled = settled.first().copied().unwrap_or(Settled::Stale);
        if matches!(settled, Settled::Finished | Settled::Failed) {
            self.wakeups.settled(p.attempt.id);
        }
        Ok(settled)
    }

    pub(super) async fn extend_with_lease(&self, p: store::ExtendLease) -> Result<DateTime<Utc>> {
        let now = millis(p.now);
        let _writer = self.writer.lock().await;
        let renewed: Option<i64> = sqlx::query_scalar(statement!("extend_lease"))
            .bind(p.attempt.id)
            .bind(p.attempt.retries)
            .bind(now)
            .bind(now.saturating_add(ms(p.lease)))
            .fetch_optional(&self.pool)
            .await?;
        if let Some(expires) = renewed {
            return Ok(expires.into_time());
        }
        // Why not: read the row and say (a lease that no longer holds never holds again).
        let mut conn = self.pool.acquire().await?;
        let row = lease_row(&mut conn, p.attempt, Some(now.into_time())).await?;
        LeaseRow::check(row.as_ref(), p.attempt)?;
        Err(Error::Invariant(format!(
            "the lease on job {} holds, but renewing it changed nothing",
            p.attempt.id
        )))
    }

    pub(super) async fn expire(&self, p: store::ExpireLeases<'_>) -> Result<u64> {
        let now = millis(p.now);
        let writer = self.writer.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let expired: Vec<AbandonedRow> = sqlx::query_as(statement!("expired_leases"))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let settles = rows::rescue_settles(&expired, p.backoff, LEASE_EXPIRED);
        let settled = self
            .settle_on(&mut tx, &settles, Some(now.into_time()))
            .await?;
        tx.commit().await?;
        drop(writer);
        for (s, outcome) in settles.iter().zip(&settled) {
            if *outcome == Settled::Failed {
                self.wakeups.settled(s.id);
            }
        }
        Ok(rows::applied(&settled))
    }
}

/// The lease row of `attempt`'s job (read inside the caller's write transaction, if any).
async fn lease_row(
    conn: &mut SqliteConnection,
    attempt: Attempt,
    now: store::Now,
) -> Result<Option<LeaseRow>> {
    type Row = (String, i32, bool, Option<i64>);
    let row: Option<Row> = sqlx::query_as(statement!("lease_row"))
        .bind(attempt.id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(state, retries, leased, lease_expires)| {
        Ok(LeaseRow {
            state: state.parse::<JobState>()?,
            retries,
            leased,
            lease_expires: lease_expires.map(StoredTime::into_time),
            now: millis(now).into_time(),
        })
    })
    .transpose()
}
