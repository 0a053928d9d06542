//! Provider jobs: the durable record of paid work submitted to a provider.

use sqlx::Row;

use super::{Db, DbError};
use crate::storage::now_ms;

impl Db {
    /// The stored job document for (content key, provider).
    pub async fn provider_job(&self, key: &str, provider: &str) -> Result<Option<String>, DbError> {
        let row =
            sqlx::query("SELECT job FROM provider_jobs WHERE content_key = $1 AND provider = $2")
                .bind(key)
                .bind(provider)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("job")).transpose()?)
    }

    /// Inserts or replaces the job document; `state` and `remote_id` are copied out for queries.
    pub async fn save_provider_job(
        &self,
        key: &str,
        provider: &str,
        state: &str,
        remote_id: Option<&str>,
        job: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO provider_jobs (content_key, provider, state, remote_id, job, updated_at) \
             VALUES ($1, $2, $3, CAST($4 AS TEXT), $5, $6) \
             ON CONFLICT (content_key, provider) DO UPDATE SET state = excluded.state, \
             remote_id = excluded.remote_id, job = excluded.job, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(provider)
        .bind(state)
        .bind(remote_id.map(str::to_string))
        .bind(job)
        .bind(now_ms())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// What a project's runs have cost so far (USD), from the recorded step costs.
    pub async fn project_cost(
        &self,
        project_id: &crate::domain::ProjectId,
    ) -> Result<f64, DbError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(s.cost_usd), 0) AS DOUBLE PRECISION) AS total FROM steps s \
             JOIN runs r ON r.id = s.run_id WHERE r.project_id = $1",
        )
        .bind(project_id.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<f64, _>("total")?)
    }
}
