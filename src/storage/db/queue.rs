//! The run queue: runs are enqueued, claimed by workers under a renewable lease, and rescued when a lease
//! expires. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`; SQLite's single writer makes the same UPDATE atomic.

use sqlx::Row;

use super::{Db, DbError, scene_column};
use crate::domain::{ProjectId, RunId, SceneId};
use crate::storage::{new_id, now_ms};

/// A run a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    /// Run id.
    pub id: RunId,
    /// Project id.
    pub project_id: ProjectId,
    /// The scene a scene run renders; `None` for a whole-project run.
    pub scene_id: Option<SceneId>,
    /// The lease token that proves ownership.
    pub token: String,
    /// A preview run: local providers only.
    pub preview: bool,
}

impl Db {
    /// Queues a run of a project (`scene_id` `None`) or one scene, a preview or not; a worker will claim it.
    pub async fn enqueue_run(
        &self,
        project_id: &ProjectId,
        scene_id: Option<&SceneId>,
        preview: bool,
    ) -> Result<RunId, DbError> {
        let id = RunId::generate();
        sqlx::query(
            "INSERT INTO runs (id, project_id, scene_id, status, created_at, preview)
             VALUES ($1, $2, $3, 'queued', $4, $5)",
        )
        .bind(id.as_str())
        .bind(project_id.as_str())
        .bind(scene_column(scene_id))
        .bind(now_ms())
        .bind(i64::from(preview))
        .execute(&self.pool)
        .await?;
        self.notify(super::RUNS_CHANNEL, &id).await;
        Ok(id)
    }

    /// Claims the oldest queued run, or a running one whose lease expired, for `owner`; `None` when there is
    /// nothing to do. Steps left `running` by a lost worker go back to `pending`.
    pub async fn claim_run(
        &self,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedRun>, DbError> {
        let now = now_ms();
        let token = new_id();
        let lock = if self.is_sqlite {
            ""
        } else {
            " FOR UPDATE SKIP LOCKED"
        };
        let sql = format!(
            "UPDATE runs SET status = 'running', owner = $1, lease_token = $2, lease_expires_at = $3, heartbeat_at = $4
             WHERE id = (SELECT id FROM runs WHERE status = 'queued'
                            OR (status = 'running' AND lease_expires_at IS NOT NULL AND lease_expires_at < $4)
                         ORDER BY created_at, id LIMIT 1{lock})
             RETURNING id, project_id, scene_id, preview"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(&token)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let claimed = ClaimedRun {
            id: row.try_get::<String, _>("id")?.into(),
            project_id: row.try_get::<String, _>("project_id")?.into(),
            scene_id: super::runs::scene_ref(row.try_get("scene_id")?),
            token,
            preview: row.try_get::<i64, _>("preview")? != 0,
        };
        sqlx::query("UPDATE steps SET status = 'pending' WHERE run_id = $1 AND status = 'running'")
            .bind(claimed.id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(Some(claimed))
    }

    /// Extends the lease; false when it was lost (expired and taken over, or the run was cancelled).
    pub async fn renew_lease(
        &self,
        run_id: &RunId,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE runs SET lease_expires_at = $1, heartbeat_at = $2
             WHERE id = $3 AND lease_token = $4 AND status = 'running'",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(run_id.as_str())
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a run back to the queue (a worker stopping before it finished); its finished steps stay cached.
    pub async fn release_run(&self, run_id: &RunId, token: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'queued', owner = NULL, lease_token = NULL, lease_expires_at = NULL
             WHERE id = $1 AND lease_token = $2 AND status = 'running'",
        )
        .bind(run_id.as_str())
        .bind(token)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE steps SET status = 'pending' WHERE run_id = $1 AND status = 'running'",
            )
            .bind(run_id.as_str())
            .execute(&self.pool)
            .await?;
            self.notify(super::RUNS_CHANNEL, run_id).await;
        }
        Ok(done.rows_affected() == 1)
    }

    /// Whether a run is still queued or running.
    pub async fn run_is_live(&self, run_id: &RunId) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT status FROM runs WHERE id = $1")
            .bind(run_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => matches!(
                r.try_get::<String, _>("status")?.as_str(),
                "queued" | "running"
            ),
            None => false,
        })
    }
}
