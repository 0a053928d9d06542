//! Steps of a run (one row per scene step, plus ASSEMBLE) and the step cache that makes unchanged work free.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::runs::scene_ref;
use super::{Db, DbError, flag, id_col, scene_column};
use crate::domain::{ProjectId, RunId, SceneId, StepName, StepStatus};
use crate::storage::{new_id, now_ms};

/// A stored step.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Id.
    pub id: String,
    /// Scene id; `None` for the project's ASSEMBLE.
    pub scene_id: Option<SceneId>,
    /// `AUDIO`, `IMAGE`, …
    pub step: StepName,
    /// Where the step is in its lifecycle.
    pub status: StepStatus,
    /// Executions started.
    pub attempts: i64,
    /// Provider id.
    pub provider: Option<String>,
    /// Content key.
    pub content_key: Option<String>,
    /// Output manifest JSON.
    pub output: Option<String>,
    /// Served from the cache.
    pub cached: bool,
    /// Estimated cost.
    pub cost_usd: f64,
    /// Failure reason.
    pub error: Option<String>,
    /// Start, epoch ms.
    pub started_at: Option<i64>,
    /// End, epoch ms.
    pub finished_at: Option<i64>,
}

/// One step of the latest run that touched a scene.
#[derive(Debug, Clone)]
pub struct SceneStep {
    /// The run.
    pub run_id: RunId,
    /// `AUDIO`, `IMAGE`, …
    pub step: StepName,
    /// Step status.
    pub status: StepStatus,
    /// Served from the cache.
    pub cached: bool,
}

fn step_row(r: &AnyRow) -> Result<StepRow, DbError> {
    Ok(StepRow {
        id: r.try_get("id")?,
        scene_id: scene_ref(r.try_get("scene_id")?),
        step: StepName::parse(&r.try_get::<String, _>("step")?)
            .ok_or_else(|| DbError::Corrupt("steps.step".into()))?,
        status: StepStatus::parse(&r.try_get::<String, _>("status")?)
            .ok_or_else(|| DbError::Corrupt("steps.status".into()))?,
        attempts: r.try_get("attempts")?,
        provider: r.try_get("provider")?,
        content_key: r.try_get("content_key")?,
        output: r.try_get("output")?,
        cached: flag(r.try_get("cached")?),
        cost_usd: r.try_get("cost_usd")?,
        error: r.try_get("error")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// Columns read into a [`StepRow`].
macro_rules! step_columns {
    () => {
        "id, scene_id, step, status, attempts, provider, content_key, output, cached, cost_usd, error, started_at, finished_at"
    };
}

impl Db {
    /// The step row of (run, scene, step), created pending if missing.
    pub async fn ensure_step(
        &self,
        run_id: &RunId,
        scene_id: Option<&SceneId>,
        step: &str,
    ) -> Result<StepRow, DbError> {
        // One statement: the no-op update makes an existing row come back too.
        let row = sqlx::query(concat!(
            "INSERT INTO steps (id, run_id, scene_id, step, status) VALUES ($1, $2, $3, $4, 'pending')
             ON CONFLICT (run_id, scene_id, step) DO UPDATE SET step = excluded.step RETURNING ",
            step_columns!()
        ))
        .bind(new_id())
        .bind(run_id.as_str())
        .bind(scene_column(scene_id))
        .bind(step)
        .fetch_one(&self.writes)
        .await?;
        step_row(&row)
    }

    /// All steps of a run.
    pub async fn run_steps(&self, run_id: &RunId) -> Result<Vec<StepRow>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE run_id = $1 ORDER BY id"
        ))
        .bind(run_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_row).collect()
    }

    /// Marks a step as executing (one more attempt).
    pub async fn step_started(
        &self,
        step_id: &str,
        provider: &str,
        content_key: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE steps SET status = 'running', attempts = attempts + 1, provider = $2, content_key = $3,
                started_at = $4, finished_at = NULL, error = NULL WHERE id = $1",
        )
        .bind(step_id)
        .bind(provider)
        .bind(content_key)
        .bind(now_ms())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Records a finished step; `started_at` is kept when the step was executed, set to now when cached.
    pub async fn step_succeeded(
        &self,
        step_id: &str,
        provider: &str,
        content_key: &str,
        output: &str,
        cached: bool,
        cost_usd: f64,
    ) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE steps SET status = 'succeeded', provider = $2, content_key = $3, output = $4, cached = $5,
                cost_usd = $6, started_at = COALESCE(started_at, $7), finished_at = $7, error = NULL WHERE id = $1",
        )
        .bind(step_id)
        .bind(provider)
        .bind(content_key)
        .bind(output)
        .bind(i64::from(cached))
        .bind(cost_usd)
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Records a failed or skipped step.
    pub async fn step_ended_without_output(
        &self,
        step_id: &str,
        status: StepStatus,
        error: &str,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE steps SET status = $2, error = $3, finished_at = $4 WHERE id = $1")
            .bind(step_id)
            .bind(status.as_str())
            .bind(error)
            .bind(now_ms())
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// The cached output manifest for a content key.
    pub async fn cached_output(&self, content_key: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT output FROM step_cache WHERE content_key = $1")
            .bind(content_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("output")).transpose()?)
    }

    /// Drops a cache entry whose objects have gone missing.
    pub async fn forget_cached(&self, content_key: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM step_cache WHERE content_key = $1")
            .bind(content_key)
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// Stores a finished output under its content key (first writer wins; the content is the same).
    pub async fn cache_output(
        &self,
        content_key: &str,
        step: &str,
        provider: &str,
        output: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO step_cache (content_key, step, provider, output, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (content_key) DO NOTHING",
        )
        .bind(content_key)
        .bind(step)
        .bind(provider)
        .bind(output)
        .bind(now_ms())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// For each scene of a project, the steps of the newest run (of the last 50) that has steps for it.
    pub async fn ui_latest_scene_steps(
        &self,
        project_id: &ProjectId,
    ) -> Result<HashMap<SceneId, Vec<SceneStep>>, DbError> {
        let rows = sqlx::query(
            "SELECT st.run_id, st.scene_id, st.step, st.status, st.cached FROM steps st
             WHERE st.run_id IN (SELECT id FROM runs WHERE project_id = $1 ORDER BY id DESC LIMIT 50)
             ORDER BY st.run_id DESC, st.id",
        )
        .bind(project_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<SceneId, Vec<SceneStep>> = HashMap::new();
        for r in &rows {
            // The project's own step (ASSEMBLE) belongs to no scene.
            let Some(scene) = scene_ref(r.try_get("scene_id")?) else {
                continue;
            };
            let step = SceneStep {
                run_id: id_col(r, "run_id")?,
                step: StepName::parse(&r.try_get::<String, _>("step")?)
                    .ok_or_else(|| DbError::Corrupt("steps.step".into()))?,
                status: StepStatus::parse(&r.try_get::<String, _>("status")?)
                    .ok_or_else(|| DbError::Corrupt("steps.status".into()))?,
                cached: flag(r.try_get("cached")?),
            };
            let list = out.entry(scene).or_default();
            // Rows come newest run first: keep only the first run seen for each scene.
            if list.first().is_none_or(|s| s.run_id == step.run_id) {
                list.push(step);
            }
        }
        Ok(out)
    }
}
