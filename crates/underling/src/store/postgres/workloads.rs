//! Stored HTTP workloads on PostgreSQL.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::PostgresStore;
use crate::error::Result;
use crate::store::{self, WorkloadRow, statement};

impl PostgresStore {
    pub(super) async fn write_workload(&self, p: store::PutWorkload<'_>) -> Result<bool> {
        let written: Option<String> = sqlx::query_scalar(statement!("put_workload"))
            .bind(p.name)
            .bind(p.definition)
            .bind(p.replace)
            .bind(p.now)
            .fetch_optional(&self.db)
            .await?;
        Ok(written.is_some())
    }

    pub(super) async fn read_workloads(&self) -> Result<Vec<WorkloadRow>> {
        let rows: Vec<(String, Value, DateTime<Utc>, DateTime<Utc>)> =
            sqlx::query_as(statement!("workloads"))
                .fetch_all(&self.db)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, definition, created, updated)| WorkloadRow {
                name,
                definition,
                created,
                updated,
            })
            .collect())
    }

    pub(super) async fn delete_workload(&self, name: &str) -> Result<bool> {
        let removed: i64 = sqlx::query_scalar(statement!("remove_workload"))
            .bind(name)
            .fetch_one(&self.db)
            .await?;
        Ok(removed > 0)
    }

    pub(super) async fn write_workload_token(&self, p: store::PutWorkloadToken<'_>) -> Result<()> {
        sqlx::query(statement!("put_workload_token"))
            .bind(p.workload)
            .bind(p.token_sha256)
            .bind(p.now)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    pub(super) async fn read_workload_of_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(statement!("workload_of_token"))
            .bind(token_sha256)
            .fetch_optional(&self.db)
            .await?)
    }

    pub(super) async fn delete_workload_token(&self, workload: &str) -> Result<bool> {
        let result = sqlx::query(statement!("remove_workload_token"))
            .bind(workload)
            .execute(&self.db)
            .await?;
        Ok(result.rows_affected() > 0)
    }
}
