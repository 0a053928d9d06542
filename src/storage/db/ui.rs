//! Read-only queries the browser UI needs beyond the API's: counts, recent runs, cross-project scene lists,
//! the latest steps per scene, log payloads and the live log tail.

use std::collections::HashMap;

use sqlx::Row;

use super::projects::log_row;
use super::{Db, DbError, LogFilter, LogRow, flag};
use crate::domain::RunStatus;

/// How many of each thing exist (the dashboard's counters).
#[derive(Debug, Clone, Copy, Default)]
pub struct UiCounts {
    /// Projects.
    pub projects: i64,
    /// Scenes.
    pub scenes: i64,
    /// Identities.
    pub identities: i64,
    /// Uploaded assets.
    pub assets: i64,
    /// Runs queued or in progress.
    pub running: i64,
}

/// A run with the names of what it covers.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Project name (empty when the project is gone).
    pub project_name: String,
    /// Scene id; `None` for a whole-project run.
    pub scene_id: Option<String>,
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
}

impl RunSummary {
    /// Queued or running: its progress is still to come.
    pub fn is_active(&self) -> bool {
        !self.status.is_final()
    }
}

/// A scene with its project's name (the cross-project scene list).
#[derive(Debug, Clone)]
pub struct SceneSummary {
    /// Scene id.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Project name.
    pub project_name: String,
    /// Scene name.
    pub name: String,
    /// What is said.
    pub dialogue: String,
    /// Scene status.
    pub status: String,
    /// Thumbnail object key.
    pub thumbnail_object: Option<String>,
    /// Finished video object key.
    pub output_object: Option<String>,
    /// Finished length, seconds.
    pub duration_seconds: Option<f64>,
}

/// One step of the latest run that touched a scene.
#[derive(Debug, Clone)]
pub struct SceneStep {
    /// The run.
    pub run_id: String,
    /// `AUDIO`, `IMAGE`, …
    pub step: String,
    /// Step status.
    pub status: String,
    /// Served from the cache.
    pub cached: bool,
}

impl Db {
    /// Counters for the dashboard, in one round trip.
    pub async fn ui_counts(&self) -> Result<UiCounts, DbError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM projects) AS p, (SELECT COUNT(*) FROM scenes) AS s,
                    (SELECT COUNT(*) FROM identities) AS i, (SELECT COUNT(*) FROM assets) AS a,
                    (SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')) AS r",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(UiCounts {
            projects: row.try_get("p")?,
            scenes: row.try_get("s")?,
            identities: row.try_get("i")?,
            assets: row.try_get("a")?,
            running: row.try_get("r")?,
        })
    }

    /// The newest runs (of one project when given), newest first.
    pub async fn ui_recent_runs(
        &self,
        project_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunSummary>, DbError> {
        let rows = sqlx::query(
            "SELECT r.id, r.project_id, COALESCE(p.name, '') AS project_name, r.scene_id, s.name AS scene_name,
                    r.status, r.error, r.created_at, r.finished_at
             FROM runs r LEFT JOIN projects p ON p.id = r.project_id LEFT JOIN scenes s ON s.id = r.scene_id
             WHERE ($1 = '' OR r.project_id = $1)
             ORDER BY r.id DESC LIMIT $2",
        )
        .bind(project_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunSummary {
                    id: r.try_get("id")?,
                    project_id: r.try_get("project_id")?,
                    project_name: r.try_get("project_name")?,
                    scene_id: super::runs::scene_ref(r.try_get("scene_id")?),
                    scene_name: r.try_get("scene_name")?,
                    status: RunStatus::parse(&r.try_get::<String, _>("status")?)
                        .ok_or_else(|| DbError::Corrupt("runs.status".into()))?,
                    error: r.try_get("error")?,
                    created_at: r.try_get("created_at")?,
                    finished_at: r.try_get("finished_at")?,
                })
            })
            .collect()
    }

    /// Number of scenes of each project id.
    pub async fn ui_scene_counts_by_project(&self) -> Result<HashMap<String, i64>, DbError> {
        let rows = sqlx::query("SELECT project_id, COUNT(*) AS n FROM scenes GROUP BY project_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("project_id")?, r.try_get("n")?)))
            .collect()
    }

    /// A page of every project's scenes, by project name then position.
    pub async fn ui_all_scenes(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<SceneSummary>, DbError> {
        let rows = sqlx::query(
            "SELECT s.id, s.project_id, p.name AS project_name, s.name, s.dialogue, s.status, s.thumbnail_object,
                    s.output_object, s.duration_seconds
             FROM scenes s JOIN projects p ON p.id = s.project_id
             ORDER BY p.name, s.project_id, s.position LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SceneSummary {
                    id: r.try_get("id")?,
                    project_id: r.try_get("project_id")?,
                    project_name: r.try_get("project_name")?,
                    name: r.try_get("name")?,
                    dialogue: r.try_get("dialogue")?,
                    status: r.try_get("status")?,
                    thumbnail_object: r.try_get("thumbnail_object")?,
                    output_object: r.try_get("output_object")?,
                    duration_seconds: r.try_get("duration_seconds")?,
                })
            })
            .collect()
    }

    /// For each scene of a project, the steps of the newest run (of the last 50) that has steps for it.
    pub async fn ui_latest_scene_steps(
        &self,
        project_id: &str,
    ) -> Result<HashMap<String, Vec<SceneStep>>, DbError> {
        let rows = sqlx::query(
            "SELECT st.run_id, st.scene_id, st.step, st.status, st.cached FROM steps st
             WHERE st.run_id IN (SELECT id FROM runs WHERE project_id = $1 ORDER BY id DESC LIMIT 50)
             ORDER BY st.run_id DESC, st.id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, Vec<SceneStep>> = HashMap::new();
        for r in &rows {
            let scene: String = r.try_get("scene_id")?;
            let step = SceneStep {
                run_id: r.try_get("run_id")?,
                step: r.try_get("step")?,
                status: r.try_get("status")?,
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

    /// The output manifest of the scene's newest successful FINALIZE step (video, thumbnail, captions).
    pub async fn ui_scene_final_output(&self, scene_id: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT output FROM steps WHERE scene_id = $1 AND step = 'FINALIZE' AND status = 'succeeded'
               AND output IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        .bind(scene_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("output")).transpose()?)
    }

    /// The stored (redacted) payloads of these log rows, by id; rows without one are left out.
    pub async fn ui_log_payloads(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, DbError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, payload FROM logs WHERE payload IS NOT NULL AND id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("payload")?)))
            .collect()
    }

    /// Log rows newer than `after` (a log id) matching the filter, oldest first (the live tail).
    pub async fn ui_logs_after(&self, f: &LogFilter, after: &str) -> Result<Vec<LogRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, created_at FROM logs
             WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR scene_id = $2) AND ($3 = '' OR step = $3)
               AND ($4 = '' OR level = $4) AND id > $5
             ORDER BY id LIMIT $6",
        )
        .bind(f.project.as_deref().unwrap_or(""))
        .bind(f.scene.as_deref().unwrap_or(""))
        .bind(f.step.as_deref().unwrap_or(""))
        .bind(f.level.as_deref().unwrap_or(""))
        .bind(after)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_row).collect()
    }

    /// Every folder name in use by assets (of one kind when given), sorted.
    pub async fn ui_asset_folders(&self, kind: &str) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query(
            "SELECT DISTINCT folder FROM assets WHERE folder <> '' AND ($1 = '' OR kind = $1) ORDER BY folder",
        )
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("folder")?)).collect()
    }
}
