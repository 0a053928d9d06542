//! Reading and changing projects and scenes (the API's view of them), runs and logs queries.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, nullable_f64};
use crate::domain::{Animation, AspectRatio, GenerationMode, Project, Scene};
use crate::storage::{new_id, now_ms};

/// A stored project.
#[derive(Debug, Clone)]
pub struct ProjectRecord {
    /// Id.
    pub id: String,
    /// The project.
    pub project: Project,
    /// Default identity for its scenes.
    pub default_identity_id: Option<String>,
    /// `draft`, `completed`, …
    pub status: String,
    /// Assembled video object.
    pub final_object: Option<String>,
    /// Project captions (VTT) object.
    pub captions_object: Option<String>,
    /// Assembled video length.
    pub duration_seconds: Option<f64>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
}

/// A stored scene.
#[derive(Debug, Clone)]
pub struct SceneRecord {
    /// Id.
    pub id: String,
    /// Project.
    pub project_id: String,
    /// Order in the project.
    pub position: i64,
    /// The scene (its `identity` field is empty; see `identity_id`).
    pub scene: Scene,
    /// Speaking identity.
    pub identity_id: Option<String>,
    /// Scene headshot asset.
    pub headshot_asset_id: Option<String>,
    /// `draft`, `generating`, `completed`, `failed`, `canceled`.
    pub status: String,
    /// Finished video object.
    pub output_object: Option<String>,
    /// Thumbnail object.
    pub thumbnail_object: Option<String>,
    /// Finished video length.
    pub duration_seconds: Option<f64>,
}

/// One stored log row.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRow {
    /// Id (time-ordered; also the paging cursor).
    pub id: String,
    /// Run.
    pub run_id: Option<String>,
    /// Project.
    pub project_id: Option<String>,
    /// Scene.
    pub scene_id: Option<String>,
    /// Guide step name.
    pub step: String,
    /// Level.
    pub level: String,
    /// Provider.
    pub provider: Option<String>,
    /// Message.
    pub message: String,
    /// Duration, ms.
    pub duration_ms: Option<i64>,
    /// Time, epoch ms.
    pub created_at: i64,
}

/// Filters of the log query.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Project id.
    pub project: Option<String>,
    /// Scene id.
    pub scene: Option<String>,
    /// Guide step name.
    pub step: Option<String>,
    /// Level.
    pub level: Option<String>,
    /// Only rows older than this id (newest first paging).
    pub before: Option<String>,
    /// Page size.
    pub limit: i64,
}

const PROJECT_COLUMNS: &str = "id, name, description, aspect_ratio, default_identity_id, budget_usd, status, \
    final_object, captions_object, duration_seconds, created_at, updated_at";
const SCENE_COLUMNS: &str = "id, project_id, position, name, dialogue, environment, wardrobe, mood_lighting, camera, \
    movement, target_duration, identity_id, headshot_asset_id, generation_mode, animation, status, output_object, \
    thumbnail_object, duration_seconds";

fn project_record(r: &AnyRow) -> Result<ProjectRecord, DbError> {
    let aspect: String = r.try_get("aspect_ratio")?;
    Ok(ProjectRecord {
        id: r.try_get("id")?,
        project: Project {
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            aspect_ratio: AspectRatio::parse(&aspect)
                .ok_or_else(|| DbError::Corrupt("projects.aspect_ratio".into()))?,
            budget_usd: r.try_get("budget_usd")?,
        },
        default_identity_id: r.try_get("default_identity_id")?,
        status: r.try_get("status")?,
        final_object: r.try_get("final_object")?,
        captions_object: r.try_get("captions_object")?,
        duration_seconds: r.try_get("duration_seconds")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn scene_record(r: &AnyRow) -> Result<SceneRecord, DbError> {
    let mode: String = r.try_get("generation_mode")?;
    let animation: String = r.try_get("animation")?;
    Ok(SceneRecord {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        position: r.try_get("position")?,
        scene: Scene {
            name: r.try_get("name")?,
            dialogue: r.try_get("dialogue")?,
            environment: r.try_get("environment")?,
            wardrobe: r.try_get("wardrobe")?,
            mood_lighting: r.try_get("mood_lighting")?,
            camera: r.try_get("camera")?,
            movement: r.try_get("movement")?,
            target_duration: r.try_get("target_duration")?,
            identity: String::new(),
            generation_mode: GenerationMode::parse(&mode)
                .ok_or_else(|| DbError::Corrupt("scenes.generation_mode".into()))?,
            animation: Animation::parse(&animation)
                .ok_or_else(|| DbError::Corrupt("scenes.animation".into()))?,
        },
        identity_id: r.try_get("identity_id")?,
        headshot_asset_id: r.try_get("headshot_asset_id")?,
        status: r.try_get("status")?,
        output_object: r.try_get("output_object")?,
        thumbnail_object: r.try_get("thumbnail_object")?,
        duration_seconds: r.try_get("duration_seconds")?,
    })
}

impl Db {
    /// Every project, newest first.
    pub async fn list_projects(&self) -> Result<Vec<ProjectRecord>, DbError> {
        let sql =
            format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(project_record).collect()
    }

    /// One project.
    pub async fn get_project(&self, id: &str) -> Result<Option<ProjectRecord>, DbError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_record).transpose()
    }

    /// True when another project has this name.
    pub async fn project_name_taken(&self, name: &str, except_id: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT id FROM projects WHERE name = $1 AND id <> $2")
            .bind(name)
            .bind(except_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Renames/updates a project by id; false when missing.
    pub async fn update_project(
        &self,
        id: &str,
        p: &Project,
        default_identity_id: Option<&str>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE projects SET name = $2, description = $3, aspect_ratio = $4, default_identity_id = $5,
                budget_usd = CAST($6 AS DOUBLE PRECISION), updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.aspect_ratio.as_str())
        .bind(default_identity_id)
        .bind(nullable_f64(p.budget_usd))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a project and its scenes and runs.
    pub async fn delete_project(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM scenes WHERE project_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE project_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM runs WHERE project_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// A page of a project's scenes in order, after `after_position`.
    pub async fn list_scenes(
        &self,
        project_id: &str,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<SceneRecord>, DbError> {
        let sql = format!(
            "SELECT {SCENE_COLUMNS} FROM scenes WHERE project_id = $1 AND position > $2 ORDER BY position LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(after_position)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scene_record).collect()
    }

    /// One scene.
    pub async fn get_scene(&self, id: &str) -> Result<Option<SceneRecord>, DbError> {
        let sql = format!("SELECT {SCENE_COLUMNS} FROM scenes WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(scene_record).transpose()
    }

    /// True when another scene of the project has this name.
    pub async fn scene_name_taken(
        &self,
        project_id: &str,
        name: &str,
        except_id: &str,
    ) -> Result<bool, DbError> {
        let row =
            sqlx::query("SELECT id FROM scenes WHERE project_id = $1 AND name = $2 AND id <> $3")
                .bind(project_id)
                .bind(name)
                .bind(except_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Inserts (id `None`, appended last) or updates a scene; returns its id.
    pub async fn save_scene(
        &self,
        id: Option<&str>,
        project_id: &str,
        s: &Scene,
        identity_id: Option<&str>,
        headshot_asset_id: Option<&str>,
    ) -> Result<String, DbError> {
        let now = now_ms();
        match id {
            Some(id) => {
                self.update_scene(id, s, identity_id, headshot_asset_id, now)
                    .await?;
                Ok(id.to_string())
            }
            None => {
                self.insert_scene(project_id, s, identity_id, headshot_asset_id, now)
                    .await
            }
        }
    }

    /// Overwrites scene `id`'s fields (its project and position stay).
    async fn update_scene(
        &self,
        id: &str,
        s: &Scene,
        identity_id: Option<&str>,
        headshot_asset_id: Option<&str>,
        now: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE scenes SET name = $2, dialogue = $3, environment = $4, wardrobe = $5, mood_lighting = $6,
                        camera = $7, movement = $8, target_duration = CAST($9 AS DOUBLE PRECISION), identity_id = $10,
                        headshot_asset_id = $11, generation_mode = $12, updated_at = $13, animation = $14 WHERE id = $1",
        )
        .bind(id)
        .bind(&s.name)
        .bind(&s.dialogue)
        .bind(&s.environment)
        .bind(&s.wardrobe)
        .bind(&s.mood_lighting)
        .bind(&s.camera)
        .bind(&s.movement)
        .bind(nullable_f64(s.target_duration))
        .bind(identity_id)
        .bind(headshot_asset_id)
        .bind(s.generation_mode.as_str())
        .bind(now)
        .bind(s.animation.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends a new scene to the project in one transaction; returns its id.
    async fn insert_scene(
        &self,
        project_id: &str,
        s: &Scene,
        identity_id: Option<&str>,
        headshot_asset_id: Option<&str>,
        now: i64,
    ) -> Result<String, DbError> {
        let id = new_id();
        // Concurrent creates in one project must get distinct positions: touching the project row first
        // serialises them (a row lock on PostgreSQL, the write lock on SQLite) until commit.
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE projects SET updated_at = $2 WHERE id = $1")
            .bind(project_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let next: i64 = sqlx::query(
            "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM scenes WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("p")?;
        sqlx::query(
            "INSERT INTO scenes (id, project_id, position, name, dialogue, environment, wardrobe, mood_lighting,
                        camera, movement, target_duration, identity_id, headshot_asset_id, generation_mode, created_at,
                        updated_at, animation)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CAST($11 AS DOUBLE PRECISION), $12, $13, $14, $15, $15,
                        $16)",
        )
        .bind(&id)
        .bind(project_id)
        .bind(next)
        .bind(&s.name)
        .bind(&s.dialogue)
        .bind(&s.environment)
        .bind(&s.wardrobe)
        .bind(&s.mood_lighting)
        .bind(&s.camera)
        .bind(&s.movement)
        .bind(nullable_f64(s.target_duration))
        .bind(identity_id)
        .bind(headshot_asset_id)
        .bind(s.generation_mode.as_str())
        .bind(now)
        .bind(s.animation.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes a scene.
    pub async fn delete_scene(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM scenes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets scene order; `ids` must be exactly the project's scenes.
    pub async fn reorder_scenes(&self, project_id: &str, ids: &[String]) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        // Touching the project row first serialises reorders of one project (a row lock on PostgreSQL, where
        // two reorders updating the same scenes in different orders deadlocked; the write lock on SQLite).
        sqlx::query("UPDATE projects SET updated_at = $2 WHERE id = $1")
            .bind(project_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT id FROM scenes WHERE project_id = $1")
            .bind(project_id)
            .fetch_all(&mut *tx)
            .await?;
        let mut existing: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        let mut wanted = ids.to_vec();
        existing.sort();
        wanted.sort();
        if existing != wanted {
            return Ok(false);
        }
        for (pos, id) in ids.iter().enumerate() {
            sqlx::query("UPDATE scenes SET position = $1 WHERE id = $2")
                .bind(pos as i64)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The id of a live run covering the scene (or its whole project), if any.
    pub async fn active_run_for(
        &self,
        project_id: &str,
        scene_id: &str,
    ) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT id FROM runs WHERE project_id = $1 AND status IN ('queued', 'running') AND (scene_id = $2 OR scene_id = '' OR $2 = '')
             LIMIT 1",
        )
        .bind(project_id)
        .bind(scene_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// The newest run touching a scene (its own or its project's).
    pub async fn latest_run_for_scene(
        &self,
        project_id: &str,
        scene_id: &str,
    ) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT id FROM runs WHERE project_id = $1 AND (scene_id = $2 OR scene_id = '') ORDER BY id DESC LIMIT 1",
        )
        .bind(project_id)
        .bind(scene_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Log rows matching the filter, newest first.
    pub async fn query_logs(&self, f: &LogFilter) -> Result<Vec<LogRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, created_at FROM logs
             WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR scene_id = $2) AND ($3 = '' OR step = $3)
               AND ($4 = '' OR level = $4) AND ($5 = '' OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(f.project.as_deref().unwrap_or(""))
        .bind(f.scene.as_deref().unwrap_or(""))
        .bind(f.step.as_deref().unwrap_or(""))
        .bind(f.level.as_deref().unwrap_or(""))
        .bind(f.before.as_deref().unwrap_or(""))
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_row).collect()
    }
}

/// One `logs` row (the columns of `SELECT id, run_id, project_id, scene_id, step, level, provider, message,
/// duration_ms, created_at`).
pub(super) fn log_row(r: &sqlx::any::AnyRow) -> Result<LogRow, DbError> {
    Ok(LogRow {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        project_id: r.try_get("project_id")?,
        scene_id: r.try_get("scene_id")?,
        step: r.try_get("step")?,
        level: r.try_get("level")?,
        provider: r.try_get("provider")?,
        message: r.try_get("message")?,
        duration_ms: r.try_get("duration_ms")?,
        created_at: r.try_get("created_at")?,
    })
}
