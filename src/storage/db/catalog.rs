//! Identities, assets, projects and scenes.

use sqlx::Row;

use super::{Db, DbError, nullable_f64};
use crate::domain::{Identity, Project, Scene};
use crate::storage::{new_id, now_ms};

/// A stored media file to register as an asset.
#[derive(Debug, Clone)]
pub struct AssetInput {
    /// `headshot`, `background`, `audio`, `lora`, …
    pub kind: String,
    /// Object key.
    pub object_key: String,
    /// Content hash.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Sniffed MIME type.
    pub mime: String,
    /// Pixel width, for images and video.
    pub width: Option<i64>,
    /// Pixel height.
    pub height: Option<i64>,
    /// The uploaded file's name (display only).
    pub original_name: Option<String>,
}

/// A scene to store, with its references resolved to ids.
#[derive(Debug, Clone)]
pub struct SceneInput {
    /// The validated scene.
    pub scene: Scene,
    /// Speaking identity.
    pub identity_id: String,
    /// Scene-specific headshot.
    pub headshot_asset_id: Option<String>,
}

impl Db {
    /// Registers an asset, returning the existing id when the same content of the same kind is known.
    pub async fn upsert_asset(&self, a: &AssetInput) -> Result<String, DbError> {
        if let Some(row) = sqlx::query("SELECT id FROM assets WHERE kind = $1 AND sha256 = $2")
            .bind(&a.kind)
            .bind(&a.sha256)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(row.try_get("id")?);
        }
        let id = new_id();
        sqlx::query(
            "INSERT INTO assets (id, kind, object_key, sha256, size_bytes, mime, width, height, original_name, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT), CAST($8 AS BIGINT), $9, $10)
             ON CONFLICT (kind, sha256) DO NOTHING",
        )
        .bind(&id)
        .bind(&a.kind)
        .bind(&a.object_key)
        .bind(&a.sha256)
        .bind(a.size_bytes)
        .bind(&a.mime)
        .bind(a.width)
        .bind(a.height)
        .bind(&a.original_name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT id FROM assets WHERE kind = $1 AND sha256 = $2")
            .bind(&a.kind)
            .bind(&a.sha256)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Object key of an asset.
    pub async fn asset_object_key(&self, asset_id: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT object_key FROM assets WHERE id = $1")
            .bind(asset_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("object_key")).transpose()?)
    }

    /// Creates or updates the identity with this name; returns its id.
    pub async fn upsert_identity(
        &self,
        i: &Identity,
        headshot_asset_id: Option<&str>,
    ) -> Result<String, DbError> {
        let existing = sqlx::query("SELECT id FROM identities WHERE name = $1")
            .bind(&i.name)
            .fetch_optional(&self.pool)
            .await?;
        let id = match existing {
            Some(row) => row.try_get::<String, _>("id")?,
            None => new_id(),
        };
        self.write_identity(&id, i, headshot_asset_id, true).await?;
        Ok(id)
    }

    /// Creates a new identity; a taken name or trigger word is [`DbError::Unique`] (decided by the database's
    /// unique constraints, so of two concurrent creations exactly one succeeds).
    pub async fn insert_identity(
        &self,
        i: &Identity,
        headshot_asset_id: Option<&str>,
    ) -> Result<String, DbError> {
        let id = new_id();
        self.write_identity(&id, i, headshot_asset_id, false)
            .await?;
        Ok(id)
    }

    /// Inserts the identity row `id`; with `upsert`, an existing row with that id is updated instead.
    async fn write_identity(
        &self,
        id: &str,
        i: &Identity,
        headshot_asset_id: Option<&str>,
        upsert: bool,
    ) -> Result<(), DbError> {
        const INSERT: &str = "INSERT INTO identities (id, name, display_name, trigger_word, description, lora_url,
                lora_scale, base_model, voice_id, voice_model, voice_stability, voice_similarity, voice_style,
                voice_speaker_boost, headshot_asset_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)";
        const UPDATE: &str = " ON CONFLICT (id) DO UPDATE SET display_name = $3, trigger_word = $4, description = $5,
                lora_url = $6, lora_scale = $7, base_model = $8, voice_id = $9, voice_model = $10,
                voice_stability = $11, voice_similarity = $12, voice_style = $13, voice_speaker_boost = $14,
                headshot_asset_id = $15, updated_at = $16";
        let sql = if upsert {
            format!("{INSERT}{UPDATE}")
        } else {
            INSERT.to_string()
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(&i.name)
            .bind(&i.display_name)
            .bind(&i.trigger_word)
            .bind(&i.description)
            .bind(&i.lora_url)
            .bind(i.lora_scale.to_text())
            .bind(i.base_model.as_str())
            .bind(&i.voice_id)
            .bind(&i.voice_model)
            .bind(i.voice_stability)
            .bind(i.voice_similarity)
            .bind(i.voice_style)
            .bind(i64::from(i.voice_speaker_boost))
            .bind(headshot_asset_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates or updates the project with this name; returns its id.
    pub async fn upsert_project(
        &self,
        p: &Project,
        default_identity_id: Option<&str>,
    ) -> Result<String, DbError> {
        let now = now_ms();
        let existing = sqlx::query("SELECT id FROM projects WHERE name = $1")
            .bind(&p.name)
            .fetch_optional(&self.pool)
            .await?;
        let id = match existing {
            Some(row) => row.try_get::<String, _>("id")?,
            None => new_id(),
        };
        sqlx::query(
            "INSERT INTO projects (id, name, description, aspect_ratio, default_identity_id, budget_usd, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS DOUBLE PRECISION), $7, $7)
             ON CONFLICT (id) DO UPDATE SET description = $3, aspect_ratio = $4, default_identity_id = $5,
                budget_usd = CAST($6 AS DOUBLE PRECISION), updated_at = $7",
        )
        .bind(&id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.aspect_ratio.as_str())
        .bind(default_identity_id)
        .bind(nullable_f64(p.budget_usd))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Makes the project's scenes exactly `scenes` (matched by name, in order); returns their ids in order.
    pub async fn sync_scenes(
        &self,
        project_id: &str,
        scenes: &[SceneInput],
    ) -> Result<Vec<String>, DbError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let existing = sqlx::query("SELECT id, name FROM scenes WHERE project_id = $1")
            .bind(project_id)
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
                Some(r) => r.try_get::<String, _>("id")?,
                None => new_id(),
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
            .bind(&id)
            .bind(project_id)
            .bind(pos as i64)
            .bind(&sc.name)
            .bind(&sc.dialogue)
            .bind(&sc.environment)
            .bind(&sc.wardrobe)
            .bind(&sc.mood_lighting)
            .bind(&sc.camera)
            .bind(&sc.movement)
            .bind(nullable_f64(sc.target_duration))
            .bind(&s.identity_id)
            .bind(&s.headshot_asset_id)
            .bind(sc.generation_mode.as_str())
            .bind(now)
            .bind(sc.animation.as_str())
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        for r in &existing {
            let id: String = r.try_get("id")?;
            if !ids.contains(&id) {
                sqlx::query("DELETE FROM scenes WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Records a scene's finished output.
    pub async fn set_scene_output(
        &self,
        scene_id: &str,
        status: &str,
        output_object: Option<&str>,
        thumbnail_object: Option<&str>,
        duration: Option<f64>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE scenes SET status = $2, output_object = COALESCE(CAST($3 AS TEXT), output_object),
                thumbnail_object = COALESCE(CAST($4 AS TEXT), thumbnail_object), duration_seconds = COALESCE(CAST($5 AS DOUBLE PRECISION), duration_seconds),
                updated_at = $6 WHERE id = $1",
        )
        .bind(scene_id)
        .bind(status)
        .bind(output_object)
        .bind(thumbnail_object)
        .bind(nullable_f64(duration))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the project's assembled video.
    pub async fn set_project_output(
        &self,
        project_id: &str,
        status: &str,
        final_object: Option<&str>,
        captions_object: Option<&str>,
        duration: Option<f64>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE projects SET status = $2, final_object = COALESCE(CAST($3 AS TEXT), final_object),
                captions_object = COALESCE(CAST($4 AS TEXT), captions_object), duration_seconds = COALESCE(CAST($5 AS DOUBLE PRECISION), duration_seconds),
                updated_at = $6 WHERE id = $1",
        )
        .bind(project_id)
        .bind(status)
        .bind(final_object)
        .bind(captions_object)
        .bind(nullable_f64(duration))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
