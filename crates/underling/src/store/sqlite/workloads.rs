//! Stored HTTP workloads on SQLite.

use super::{SqliteStore, millis};
use crate::error::Result;
use crate::store::rows::StoredTime;
use crate::store::{self, WorkloadRow, statement};

impl SqliteStore {
    pub(super) async fn write_workload(&self, p: store::PutWorkload<'_>) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let written: Option<String> = sqlx::query_scalar(statement!("put_workload"))
            .bind(p.name)
            .bind(p.definition.to_string())
            .bind(p.replace)
            .bind(millis(p.now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(written.is_some())
    }

    pub(super) async fn read_workloads(&self) -> Result<Vec<WorkloadRow>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(statement!("workloads"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(name, definition, created, updated)| {
                Ok(WorkloadRow {
                    name,
                    definition: serde_json::from_str(&definition)?,
                    created: created.into_time(),
                    updated: updated.into_time(),
                })
            })
            .collect()
    }

    pub(super) async fn delete_workload(&self, name: &str) -> Result<bool> {
        let _writer = self.writer.lock().await;
        // The workload and its token go together, or neither does.
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(statement!("remove_workload"))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(statement!("remove_workload_token"))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn write_workload_token(&self, p: store::PutWorkloadToken<'_>) -> Result<()> {
        let _writer = self.writer.lock().await;
        sqlx::query(statement!("put_workload_token"))
            .bind(p.workload)
            .bind(p.token_sha256)
            .bind(millis(p.now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn read_workload_of_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(statement!("workload_of_token"))
            .bind(token_sha256)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub(super) async fn delete_workload_token(&self, workload: &str) -> Result<bool> {
        let _writer = self.writer.lock().await;
        let result = sqlx::query(statement!("remove_workload_token"))
            .bind(workload)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }
}
