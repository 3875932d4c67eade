//! Leases for pull workers on PostgreSQL: the leased claim (one round trip, the function
//! `underling_claim_leased` of migration 0012), settles and renewals that check the lease on
//! the locked row, and the rescue of leases that ran out through the workers' settle
//! (`underling_cycle`), which applies the retry transition and wakes workers.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::postgres::PgRow;

use super::{PgJobRow, PostgresStore, run_cycle, secs};
use crate::error::{Error, Result};
use crate::job::{JobState, Settle, Settled};
use crate::lease::{Lease, LeasedJob};
use crate::store::rows::{self, AbandonedRow, LEASE_EXPIRED};
use crate::store::{self, Attempt, LeaseRow, statement};

impl PostgresStore {
    pub(super) async fn claim_with_lease(
        &self,
        p: store::ClaimLeased<'_>,
    ) -> Result<Vec<LeasedJob>> {
        if p.limit == 0 || p.spec.queues.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<PgRow> = sqlx::query(statement!("claim_leased"))
            .bind(&p.spec.queues)
            .bind(&p.spec.tasks)
            .bind(i64::try_from(p.limit).unwrap_or(i64::MAX))
            .bind(secs(p.lease))
            .bind(p.now)
            .fetch_all(&self.db)
            .await?;
        let mut leased = Vec::with_capacity(rows.len());
        for row in &rows {
            let expires: DateTime<Utc> = sqlx::Row::try_get(row, "lease_expires")?;
            let job = PgJobRow::from_row(row)?.into_job()?;
            let token = Lease::token(Attempt {
                id: job.id,
                retries: job.retries,
            });
            leased.push(LeasedJob {
                job,
                lease: Lease { token, expires },
            });
        }
        leased.sort_by(|a, b| {
            b.job
                .priority
                .cmp(&a.job.priority)
                .then(a.job.id.cmp(&b.job.id))
        });
        Ok(leased)
    }

    pub(super) async fn settle_with_lease(&self, p: store::SettleLeased<'_>) -> Result<Settled> {
        let mut tx = self.pool.begin().await?;
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
        let reply = run_cycle(
            &mut tx,
            &self.channel,
            store::Cycle {
                settles: &settles,
                claim: None,
                now: p.now,
            },
        )
        .await?;
        tx.commit().await?;
        let settled = reply.settled.first().copied().unwrap_or(Settled::Stale);
        if settled == Settled::Retried {
            self.retry_wake.wake(&self.send_wake);
        }
        Ok(settled)
    }

    pub(super) async fn extend_with_lease(&self, p: store::ExtendLease) -> Result<DateTime<Utc>> {
        let renewed: Option<DateTime<Utc>> = sqlx::query_scalar(statement!("extend_lease"))
            .bind(p.attempt.id)
            .bind(p.attempt.retries)
            .bind(p.now)
            .bind(secs(p.lease))
            .fetch_optional(&self.db)
            .await?;
        if let Some(expires) = renewed {
            return Ok(expires);
        }
        // Why not: read the row and say (a lease that no longer holds never holds again).
        let mut conn = self.pool.acquire().await?;
        let row = lease_row(&mut conn, p.attempt, p.now).await?;
        LeaseRow::check(row.as_ref(), p.attempt)?;
        Err(Error::Invariant(format!(
            "the lease on job {} holds, but renewing it changed nothing",
            p.attempt.id
        )))
    }

    pub(super) async fn expire(&self, p: store::ExpireLeases<'_>) -> Result<u64> {
        let expired: Vec<AbandonedRow> = sqlx::query_as(statement!("expired_leases"))
            .bind(p.now)
            .fetch_all(&self.db)
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let settles = rows::rescue_settles(&expired, p.backoff, LEASE_EXPIRED);
        let mut conn = self.db.acquire().await?;
        let reply = run_cycle(
            &mut conn,
            &self.channel,
            store::Cycle {
                settles: &settles,
                claim: None,
                now: p.now,
            },
        )
        .await?;
        conn.commit().await?;
        if reply.settled.contains(&Settled::Retried) {
            self.retry_wake.wake(&self.send_wake);
        }
        Ok(rows::applied(&reply.settled))
    }
}

/// The lease row of `attempt`'s job, locked until the transaction ends.
async fn lease_row(
    conn: &mut sqlx::PgConnection,
    attempt: Attempt,
    now: store::Now,
) -> Result<Option<LeaseRow>> {
    type Row = (String, i32, bool, Option<DateTime<Utc>>, DateTime<Utc>);
    let row: Option<Row> = sqlx::query_as(statement!("lease_row"))
        .bind(attempt.id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|(state, retries, leased, lease_expires, now)| {
        Ok(LeaseRow {
            state: state.parse::<JobState>()?,
            retries,
            leased,
            lease_expires,
            now,
        })
    })
    .transpose()
}
