//! Scenes: the ordered parts of a project (one write transaction per project for order changes), and the
//! cross-project scene list.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, id_col, nullable_f64, opt_id_col};
use crate::domain::{
    Animation, AssetId, GenerationMode, IdentityId, ProjectId, Scene, SceneId, SceneStatus,
};
use crate::storage::now_ms;

/// A stored scene.
#[derive(Debug, Clone)]
pub struct SceneRecord {
    /// Id.
    pub id: SceneId,
    /// Project.
    pub project_id: ProjectId,
    /// Order in the project.
    pub position: i64,
    /// The scene (its `identity` field is empty; see `identity_id`).
    pub scene: Scene,
    /// Speaking identity.
    pub identity_id: Option<IdentityId>,
    /// Scene headshot asset.
    pub headshot_asset_id: Option<AssetId>,
    /// Uploaded recording (asset kind `audio`) spoken instead of TTS.
    pub speech_asset_id: Option<AssetId>,
    /// Background image (asset kind `background`) behind the framed headshot.
    pub background_asset_id: Option<AssetId>,
    /// Whether its video is recorded, being made, or failed.
    pub status: SceneStatus,
    /// Finished video object.
    pub output_object: Option<String>,
    /// Thumbnail object.
    pub thumbnail_object: Option<String>,
    /// Finished video length.
    pub duration_seconds: Option<f64>,
    /// Fingerprint of the inputs its recorded video was rendered from (`pipeline::fingerprint`).
    pub rendered_inputs: Option<String>,
}

/// The stored status of a scene row; an unknown name is a corrupt row.
fn scene_status(r: &AnyRow) -> Result<SceneStatus, DbError> {
    SceneStatus::parse(&r.try_get::<String, _>("status")?)
        .ok_or_else(|| DbError::Corrupt("scenes.status".into()))
}

/// A scene's recorded video: its objects and length, and the fingerprint of the inputs it was rendered from.
#[derive(Debug, Clone, Copy)]
pub struct SceneOutput<'a> {
    /// Finished video object.
    pub video: Option<&'a str>,
    /// Thumbnail object.
    pub thumbnail: Option<&'a str>,
    /// Length, seconds.
    pub duration: Option<f64>,
    /// `pipeline::fingerprint::scene_fingerprint` of what it was rendered from.
    pub inputs: &'a str,
}

/// A scene to store, with its references resolved to ids.
#[derive(Debug, Clone)]
pub struct SceneInput {
    /// The validated scene.
    pub scene: Scene,
    /// Speaking identity.
    pub identity_id: IdentityId,
    /// Scene-specific headshot.
    pub headshot_asset_id: Option<AssetId>,
}

/// A scene with its project's name (the cross-project scene list).
#[derive(Debug, Clone)]
pub struct SceneSummary {
    /// Scene id.
    pub id: SceneId,
    /// Project id.
    pub project_id: ProjectId,
    /// Project name.
    pub project_name: String,
    /// Scene name.
    pub name: String,
    /// What is said.
    pub dialogue: String,
    /// Scene status.
    pub status: SceneStatus,
    /// Thumbnail object key.
    pub thumbnail_object: Option<String>,
    /// Finished video object key.
    pub output_object: Option<String>,
    /// Finished length, seconds.
    pub duration_seconds: Option<f64>,
}

const SCENE_COLUMNS: &str = "id, project_id, position, name, dialogue, environment, wardrobe, mood_lighting, camera, \
    movement, target_duration, identity_id, headshot_asset_id, generation_mode, animation, status, output_object, \
    thumbnail_object, duration_seconds, rendered_inputs, speech_asset_id, background_asset_id";

fn scene_record(r: &AnyRow) -> Result<SceneRecord, DbError> {
    let mode: String = r.try_get("generation_mode")?;
    let animation: String = r.try_get("animation")?;
    Ok(SceneRecord {
        id: id_col(r, "id")?,
        project_id: id_col(r, "project_id")?,
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
        identity_id: opt_id_col(r, "identity_id")?,
        headshot_asset_id: opt_id_col(r, "headshot_asset_id")?,
        speech_asset_id: opt_id_col(r, "speech_asset_id")?,
        background_asset_id: opt_id_col(r, "background_asset_id")?,
        status: scene_status(r)?,
        output_object: r.try_get("output_object")?,
        thumbnail_object: r.try_get("thumbnail_object")?,
        duration_seconds: r.try_get("duration_seconds")?,
        rendered_inputs: r.try_get("rendered_inputs")?,
    })
}

impl Db {
    /// A page of a project's scenes in order, after `after_position`.
    pub async fn list_scenes(
        &self,
        project_id: &ProjectId,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<SceneRecord>, DbError> {
        let sql = format!(
            "SELECT {SCENE_COLUMNS} FROM scenes WHERE project_id = $1 AND position > $2 ORDER BY position LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project_id.as_str())
            .bind(after_position)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scene_record).collect()
    }

    /// One scene.
    pub async fn get_scene(&self, id: &SceneId) -> Result<Option<SceneRecord>, DbError> {
        let sql = format!("SELECT {SCENE_COLUMNS} FROM scenes WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(scene_record).transpose()
    }

    /// True when another scene of the project has this name.
    pub async fn scene_name_taken(
        &self,
        project_id: &ProjectId,
        name: &str,
        except_id: Option<&SceneId>,
    ) -> Result<bool, DbError> {
        let row =
            sqlx::query("SELECT id FROM scenes WHERE project_id = $1 AND name = $2 AND id <> $3")
                .bind(project_id.as_str())
                .bind(name)
                .bind(except_id.map_or("", |id| id.as_str()))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Inserts (id `None`, appended last) or updates a scene; returns its id.
    pub async fn save_scene(
        &self,
        id: Option<&SceneId>,
        project_id: &ProjectId,
        s: &Scene,
        identity_id: Option<&IdentityId>,
        headshot_asset_id: Option<&AssetId>,
    ) -> Result<SceneId, DbError> {
        let now = now_ms();
        match id {
            Some(id) => {
                self.update_scene(id, s, identity_id, headshot_asset_id, now)
                    .await?;
                Ok(id.clone())
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
        id: &SceneId,
        s: &Scene,
        identity_id: Option<&IdentityId>,
        headshot_asset_id: Option<&AssetId>,
        now: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE scenes SET name = $2, dialogue = $3, environment = $4, wardrobe = $5, mood_lighting = $6,
                        camera = $7, movement = $8, target_duration = CAST($9 AS DOUBLE PRECISION), identity_id = $10,
                        headshot_asset_id = $11, generation_mode = $12, updated_at = $13, animation = $14 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(&s.name)
        .bind(&s.dialogue)
        .bind(&s.environment)
        .bind(&s.wardrobe)
        .bind(&s.mood_lighting)
        .bind(&s.camera)
        .bind(&s.movement)
        .bind(nullable_f64(s.target_duration))
        .bind(identity_id.map(|i| i.as_str()))
        .bind(headshot_asset_id.map(|a| a.as_str()))
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
        project_id: &ProjectId,
        s: &Scene,
        identity_id: Option<&IdentityId>,
        headshot_asset_id: Option<&AssetId>,
        now: i64,
    ) -> Result<SceneId, DbError> {
        let id = SceneId::generate();
        // Concurrent creates in one project must get distinct positions: touching the project row first
        // serialises them (a row lock on PostgreSQL, the write lock on SQLite) until commit.
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE projects SET updated_at = $2 WHERE id = $1")
            .bind(project_id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let next: i64 = sqlx::query(
            "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM scenes WHERE project_id = $1",
        )
        .bind(project_id.as_str())
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
        .bind(id.as_str())
        .bind(project_id.as_str())
        .bind(next)
        .bind(&s.name)
        .bind(&s.dialogue)
        .bind(&s.environment)
        .bind(&s.wardrobe)
        .bind(&s.mood_lighting)
        .bind(&s.camera)
        .bind(&s.movement)
        .bind(nullable_f64(s.target_duration))
        .bind(identity_id.map(|i| i.as_str()))
        .bind(headshot_asset_id.map(|a| a.as_str()))
        .bind(s.generation_mode.as_str())
        .bind(now)
        .bind(s.animation.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Sets the scene's recording (used as its speech) and background image assets.
    pub async fn set_scene_media(
        &self,
        id: &SceneId,
        speech_asset_id: Option<&AssetId>,
        background_asset_id: Option<&AssetId>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE scenes SET speech_asset_id = $2, background_asset_id = $3 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(speech_asset_id.map(|a| a.as_str()))
        .bind(background_asset_id.map(|a| a.as_str()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a scene.
    pub async fn delete_scene(&self, id: &SceneId) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM scenes WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets scene order; `ids` must be exactly the project's scenes.
    pub async fn reorder_scenes(
        &self,
        project_id: &ProjectId,
        ids: &[SceneId],
    ) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        // Touching the project row first serialises reorders of one project (a row lock on PostgreSQL, where
        // two reorders updating the same scenes in different orders deadlocked; the write lock on SQLite).
        sqlx::query("UPDATE projects SET updated_at = $2 WHERE id = $1")
            .bind(project_id.as_str())
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT id FROM scenes WHERE project_id = $1")
            .bind(project_id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let mut existing: Vec<SceneId> = rows
            .iter()
            .map(|r| id_col(r, "id"))
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
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Makes the project's scenes exactly `scenes` (matched by name, in order); returns their ids in order.
    pub async fn sync_scenes(
        &self,
        project_id: &ProjectId,
        scenes: &[SceneInput],
    ) -> Result<Vec<SceneId>, DbError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let existing = sqlx::query("SELECT id, name FROM scenes WHERE project_id = $1")
            .bind(project_id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let mut ids = Vec::with_capacity(scenes.len());
        for (pos, s) in scenes.iter().enumerate() {
            let found = existing.iter().find(|r| {
                r.try_get::<String, _>("name")
                    .map(|n| n == s.scene.name)
                    .unwrap_or(false)
            });
            let id = match found {
                Some(r) => id_col(r, "id")?,
                None => SceneId::generate(),
            };
            let sc = &s.scene;
            sqlx::query(
                "INSERT INTO scenes (id, project_id, position, name, dialogue, environment, wardrobe, mood_lighting,
                    camera, movement, target_duration, identity_id, headshot_asset_id, generation_mode, created_at, updated_at,
                    animation)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CAST($11 AS DOUBLE PRECISION), $12, $13, $14, $15, $15, $16)
                 ON CONFLICT (id) DO UPDATE SET position = $3, dialogue = $5, environment = $6, wardrobe = $7,
                    mood_lighting = $8, camera = $9, movement = $10, target_duration = CAST($11 AS DOUBLE PRECISION), identity_id = $12,
                    headshot_asset_id = $13, generation_mode = $14, updated_at = $15, animation = $16",
            )
            .bind(id.as_str())
            .bind(project_id.as_str())
            .bind(pos as i64)
            .bind(&sc.name)
            .bind(&sc.dialogue)
            .bind(&sc.environment)
            .bind(&sc.wardrobe)
            .bind(&sc.mood_lighting)
            .bind(&sc.camera)
            .bind(&sc.movement)
            .bind(nullable_f64(sc.target_duration))
            .bind(s.identity_id.as_str())
            .bind(s.headshot_asset_id.as_ref().map(|a| a.as_str()))
            .bind(sc.generation_mode.as_str())
            .bind(now)
            .bind(sc.animation.as_str())
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        for r in &existing {
            let id: SceneId = id_col(r, "id")?;
            if !ids.contains(&id) {
                sqlx::query("DELETE FROM scenes WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Records a scene's status and, when given, its finished output and the fingerprint of the inputs it was
    /// rendered from (`None` keeps what is stored).
    pub async fn set_scene_output(
        &self,
        scene_id: &SceneId,
        status: SceneStatus,
        output: Option<&SceneOutput<'_>>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE scenes SET status = $2, output_object = COALESCE(CAST($3 AS TEXT), output_object),
                thumbnail_object = COALESCE(CAST($4 AS TEXT), thumbnail_object), duration_seconds = COALESCE(CAST($5 AS DOUBLE PRECISION), duration_seconds),
                rendered_inputs = COALESCE(CAST($7 AS TEXT), rendered_inputs), updated_at = $6 WHERE id = $1",
        )
        .bind(scene_id.as_str())
        .bind(status.as_str())
        .bind(output.and_then(|o| o.video))
        .bind(output.and_then(|o| o.thumbnail))
        .bind(nullable_f64(output.and_then(|o| o.duration)))
        .bind(now_ms())
        .bind(output.map(|o| o.inputs))
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Number of scenes of each project id.
    pub async fn ui_scene_counts_by_project(&self) -> Result<HashMap<ProjectId, i64>, DbError> {
        let rows = sqlx::query("SELECT project_id, COUNT(*) AS n FROM scenes GROUP BY project_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((id_col(r, "project_id")?, r.try_get("n")?)))
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
                    id: id_col(r, "id")?,
                    project_id: id_col(r, "project_id")?,
                    project_name: r.try_get("project_name")?,
                    name: r.try_get("name")?,
                    dialogue: r.try_get("dialogue")?,
                    status: scene_status(r)?,
                    thumbnail_object: r.try_get("thumbnail_object")?,
                    output_object: r.try_get("output_object")?,
                    duration_seconds: r.try_get("duration_seconds")?,
                })
            })
            .collect()
    }

    /// The output manifest of the scene's newest successful FINALIZE step of a paid (not preview) run (video,
    /// thumbnail, captions).
    pub async fn ui_scene_final_output(
        &self,
        scene_id: &SceneId,
    ) -> Result<Option<String>, DbError> {
        self.latest_output(scene_id, "FINALIZE", false).await
    }

    /// The output manifest of the newest succeeded `step` (`FINALIZE` of a scene id, or `ASSEMBLE` with
    /// `scope` = the project id) of paid runs, or of previews when `preview`.
    pub async fn latest_output(
        &self,
        scope: &str,
        step: &str,
        preview: bool,
    ) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT s.output FROM steps s JOIN runs r ON r.id = s.run_id
             WHERE (s.scene_id = $1 OR (s.scene_id = '' AND r.project_id = $1)) AND s.step = $2
               AND s.status = 'succeeded' AND s.output IS NOT NULL AND r.preview = $3
             ORDER BY s.finished_at DESC, s.id DESC LIMIT 1",
        )
        .bind(scope)
        .bind(step)
        .bind(i64::from(preview))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("output")).transpose()?)
    }
}
