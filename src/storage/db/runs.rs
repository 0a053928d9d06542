//! Runs: one execution of a project or a scene — created leased (a render in this process) or queued (see
//! `queue.rs`), taken over, canceled, finished — and the pages' recent-run list.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{ClaimedRun, Db, DbError, scene_column};
use crate::domain::{ProjectId, RunId, RunStatus, SceneId};
use crate::storage::{new_id, now_ms};

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: RunId,
    /// Its project.
    pub project_id: ProjectId,
    /// The scene a scene run renders; `None` for a whole-project run.
    pub scene_id: Option<SceneId>,
    /// Where it is in its lifecycle.
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// End time, epoch ms.
    pub finished_at: Option<i64>,
    /// `host:pid` of the process executing it.
    pub owner: Option<String>,
    /// The holder's last lease renewal, epoch ms.
    pub heartbeat_at: Option<i64>,
    /// When the holder's lease ends (epoch ms); `None` for runs that were never leased.
    pub lease_expires_at: Option<i64>,
    /// A preview: local providers only, outputs kept on the run.
    pub preview: bool,
}

const RUN_COLUMNS: &str = "id, project_id, scene_id, status, error, created_at, finished_at, owner, heartbeat_at, lease_expires_at, preview";

fn run_row(r: &AnyRow) -> Result<RunRow, DbError> {
    let status: String = r.try_get("status")?;
    Ok(RunRow {
        id: r.try_get::<String, _>("id")?.into(),
        project_id: r.try_get::<String, _>("project_id")?.into(),
        scene_id: scene_ref(r.try_get("scene_id")?),
        status: RunStatus::parse(&status).ok_or_else(|| DbError::Corrupt("runs.status".into()))?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
        owner: r.try_get("owner")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        lease_expires_at: r.try_get("lease_expires_at")?,
        preview: r.try_get::<i64, _>("preview")? != 0,
    })
}

/// A stored scene reference: `""` (the column is NOT NULL) stands for "the whole project".
pub(super) fn scene_ref(stored: String) -> Option<SceneId> {
    (!stored.is_empty()).then(|| SceneId::from(stored))
}

/// A run with the names of what it covers.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub id: RunId,
    /// Project id.
    pub project_id: ProjectId,
    /// Project name (empty when the project is gone).
    pub project_name: String,
    /// Scene id; `None` for a whole-project run.
    pub scene_id: Option<SceneId>,
    /// Scene name, when the run covers one scene that still exists.
    pub scene_name: Option<String>,
    /// Where the run is.
    pub status: RunStatus,
    /// Failure reason.
    pub error: Option<String>,
    /// Start, epoch ms.
    pub created_at: i64,
    /// End, epoch ms.
    pub finished_at: Option<i64>,
    /// A preview run (local providers only).
    pub preview: bool,
}

impl RunSummary {
    /// Queued or running: its progress is still to come.
    pub fn is_active(&self) -> bool {
        !self.status.is_final()
    }
}

impl Db {
    /// The newest unfinished run of a project (`scene_id` `None`) or of one scene, if any, of the same kind (a
    /// preview never continues a paid run, nor the reverse).
    pub async fn unfinished_run(
        &self,
        project_id: &ProjectId,
        scene_id: Option<&SceneId>,
        preview: bool,
    ) -> Result<Option<RunRow>, DbError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE project_id = $1 AND scene_id = $2 AND status = 'running' AND preview = $3
             ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project_id.as_str())
            .bind(scene_column(scene_id))
            .bind(i64::from(preview))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// Starts a run of a project (`scene_id` `None`) or one scene that `owner` executes at once under a lease
    /// of `lease_ms` (the same lease a worker holds on a claimed run).
    pub async fn create_leased_run(
        &self,
        project_id: &ProjectId,
        scene_id: Option<&SceneId>,
        owner: &str,
        lease_ms: i64,
        preview: bool,
    ) -> Result<ClaimedRun, DbError> {
        let (id, token, now) = (RunId::generate(), new_id(), now_ms());
        sqlx::query(
            "INSERT INTO runs (id, project_id, scene_id, status, owner, lease_token, lease_expires_at, heartbeat_at,
                               created_at, preview)
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $7, $8)",
        )
        .bind(id.as_str())
        .bind(project_id.as_str())
        .bind(scene_column(scene_id))
        .bind(owner)
        .bind(&token)
        .bind(now + lease_ms)
        .bind(now)
        .bind(i64::from(preview))
        .execute(&self.pool)
        .await?;
        Ok(ClaimedRun {
            id,
            project_id: project_id.clone(),
            scene_id: scene_id.cloned(),
            token,
            preview,
        })
    }

    /// Takes over a running run whose holder is gone (lease expired, or its process is dead), only if it still
    /// has the owner we saw: a new lease for `owner`. Steps left executing go back to pending.
    pub async fn adopt_run(
        &self,
        run: &RunRow,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedRun>, DbError> {
        let (token, now) = (new_id(), now_ms());
        let done = sqlx::query(
            "UPDATE runs SET owner = $1, lease_token = $2, lease_expires_at = $3, heartbeat_at = $4
             WHERE id = $5 AND status = 'running' AND COALESCE(owner, '') = COALESCE(CAST($6 AS TEXT), '')",
        )
        .bind(owner)
        .bind(&token)
        .bind(now + lease_ms)
        .bind(now)
        .bind(run.id.as_str())
        .bind(run.owner.as_deref())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        // Steps that were executing when the holder died start again (their outputs were never recorded).
        sqlx::query("UPDATE steps SET status = 'pending' WHERE run_id = $1 AND status = 'running'")
            .bind(run.id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(Some(ClaimedRun {
            id: run.id.clone(),
            project_id: run.project_id.clone(),
            scene_id: run.scene_id.clone(),
            token,
            preview: run.preview,
        }))
    }

    /// Marks a run and its unfinished steps canceled, and its generating scenes too.
    pub async fn cancel_run(&self, run_id: &RunId) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE steps SET status = 'canceled', finished_at = $2 WHERE run_id = $1 AND status IN ('pending', 'running')",
        )
        .bind(run_id.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "UPDATE scenes SET status = 'canceled'
             WHERE status = 'generating' AND project_id = (SELECT project_id FROM runs WHERE id = $1)",
        )
        .bind(run_id.as_str())
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE runs SET status = 'canceled', finished_at = $2 WHERE id = $1 AND status IN ('queued', 'running')")
            .bind(run_id.as_str())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a run.
    pub async fn finish_run(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE runs SET status = $2, error = $3, finished_at = $4, lease_token = NULL, lease_expires_at = NULL
             WHERE id = $1 AND status IN ('queued', 'running')",
        )
            .bind(run_id.as_str())
            .bind(status.as_str())
            .bind(error)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One run's record.
    pub async fn get_run(&self, id: &RunId) -> Result<Option<RunRow>, DbError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// The id of a live run covering the scene (or, for `None`, any of the project), if any.
    pub async fn active_run_for(
        &self,
        project_id: &ProjectId,
        scene_id: Option<&SceneId>,
    ) -> Result<Option<RunId>, DbError> {
        let row = sqlx::query(
            "SELECT id FROM runs WHERE project_id = $1 AND status IN ('queued', 'running') AND (scene_id = $2 OR scene_id = '' OR $2 = '')
             LIMIT 1",
        )
        .bind(project_id.as_str())
        .bind(scene_column(scene_id))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("id"))
            .transpose()?
            .map(RunId::from))
    }

    /// The newest run touching a scene (its own or its project's).
    pub async fn latest_run_for_scene(
        &self,
        project_id: &ProjectId,
        scene_id: &SceneId,
    ) -> Result<Option<RunId>, DbError> {
        let row = sqlx::query(
            "SELECT id FROM runs WHERE project_id = $1 AND (scene_id = $2 OR scene_id = '') ORDER BY id DESC LIMIT 1",
        )
        .bind(project_id.as_str())
        .bind(scene_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("id"))
            .transpose()?
            .map(RunId::from))
    }

    /// The newest runs (of one project when given), newest first.
    pub async fn ui_recent_runs(
        &self,
        project_id: Option<&ProjectId>,
        limit: i64,
    ) -> Result<Vec<RunSummary>, DbError> {
        let rows = sqlx::query(
            "SELECT r.id, r.project_id, COALESCE(p.name, '') AS project_name, r.scene_id, s.name AS scene_name,
                    r.status, r.error, r.created_at, r.finished_at, r.preview
             FROM runs r LEFT JOIN projects p ON p.id = r.project_id LEFT JOIN scenes s ON s.id = r.scene_id
             WHERE ($1 = '' OR r.project_id = $1)
             ORDER BY r.id DESC LIMIT $2",
        )
        .bind(project_id.map_or("", |p| p.as_str()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunSummary {
                    id: r.try_get::<String, _>("id")?.into(),
                    project_id: r.try_get::<String, _>("project_id")?.into(),
                    project_name: r.try_get("project_name")?,
                    scene_id: super::runs::scene_ref(r.try_get("scene_id")?),
                    scene_name: r.try_get("scene_name")?,
                    status: RunStatus::parse(&r.try_get::<String, _>("status")?)
                        .ok_or_else(|| DbError::Corrupt("runs.status".into()))?,
                    error: r.try_get("error")?,
                    created_at: r.try_get("created_at")?,
                    finished_at: r.try_get("finished_at")?,
                    preview: r.try_get::<i64, _>("preview")? != 0,
                })
            })
            .collect()
    }
}
