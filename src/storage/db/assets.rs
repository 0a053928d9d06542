//! Assets: stored media files (content-addressed objects) with their kind, details and folder.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, id_col, nullable_f64};
use crate::domain::AssetId;
use crate::storage::now_ms;

/// A stored asset as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetRecord {
    /// Id.
    #[schema(value_type = String)]
    pub id: AssetId,
    /// `headshot`, `background`, `audio`, `lora`.
    pub kind: String,
    /// Server-generated object key.
    pub object_key: String,
    /// Content hash.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Sniffed MIME type.
    pub mime: String,
    /// Pixel width.
    pub width: Option<i64>,
    /// Pixel height.
    pub height: Option<i64>,
    /// Length of audio, seconds.
    pub duration_seconds: Option<f64>,
    /// The uploaded file's name (display only).
    pub original_name: Option<String>,
    /// Folder (free text, for grouping).
    pub folder: String,
    /// Upload time, epoch ms.
    pub created_at: i64,
}

fn record(r: &AnyRow) -> Result<AssetRecord, DbError> {
    Ok(AssetRecord {
        id: id_col(r, "id")?,
        kind: r.try_get("kind")?,
        object_key: r.try_get("object_key")?,
        sha256: r.try_get("sha256")?,
        size_bytes: r.try_get("size_bytes")?,
        mime: r.try_get("mime")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        duration_seconds: r.try_get("duration_seconds")?,
        original_name: r.try_get("original_name")?,
        folder: r.try_get("folder")?,
        created_at: r.try_get("created_at")?,
    })
}

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

impl Db {
    /// Who uses which asset, as (asset id, user in words): identities by their headshot or uploaded LoRA
    /// (`identity Deven Spear`), scenes by their headshot, recording or background (`scene one of Launch`). Deleting an asset clears
    /// these references, so the pages warn first.
    pub async fn ui_asset_users(&self) -> Result<Vec<(AssetId, String)>, DbError> {
        let rows = sqlx::query(
            "SELECT headshot_asset_id AS asset, 'identity ' || display_name AS who FROM identities
               WHERE headshot_asset_id IS NOT NULL
             UNION ALL
             SELECT lora_asset_id AS asset, 'identity ' || display_name AS who FROM identities
               WHERE lora_asset_id IS NOT NULL
             UNION ALL
             SELECT s.headshot_asset_id AS asset, 'scene ' || s.name || ' of ' || p.name AS who
               FROM scenes s JOIN projects p ON p.id = s.project_id WHERE s.headshot_asset_id IS NOT NULL
             UNION ALL
             SELECT s.speech_asset_id AS asset, 'scene ' || s.name || ' of ' || p.name AS who
               FROM scenes s JOIN projects p ON p.id = s.project_id WHERE s.speech_asset_id IS NOT NULL
             UNION ALL
             SELECT s.background_asset_id AS asset, 'scene ' || s.name || ' of ' || p.name AS who
               FROM scenes s JOIN projects p ON p.id = s.project_id WHERE s.background_asset_id IS NOT NULL
             ORDER BY who",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((id_col(r, "asset")?, r.try_get("who")?)))
            .collect()
    }

    /// Assets filtered by kind and folder (empty = any), newest first.
    pub async fn list_assets(&self, kind: &str, folder: &str) -> Result<Vec<AssetRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT id, kind, object_key, sha256, size_bytes, mime, width, height, duration_seconds, original_name, folder,
                    created_at
             FROM assets WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR folder = $2) ORDER BY id DESC LIMIT 1000",
        )
        .bind(kind)
        .bind(folder)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// One asset.
    pub async fn get_asset(&self, id: &AssetId) -> Result<Option<AssetRecord>, DbError> {
        let row = sqlx::query(
            "SELECT id, kind, object_key, sha256, size_bytes, mime, width, height, duration_seconds, original_name, folder,
                    created_at
             FROM assets WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Sets an asset's probed facts and folder.
    pub async fn set_asset_details(
        &self,
        id: &AssetId,
        duration_seconds: Option<f64>,
        folder: &str,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE assets SET duration_seconds = CAST($2 AS DOUBLE PRECISION), folder = $3 WHERE id = $1")
            .bind(id.as_str())
            .bind(nullable_f64(duration_seconds))
            .bind(folder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes an asset row (its object stays while other rows may share the content).
    pub async fn delete_asset(&self, id: &AssetId) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM assets WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Registers an asset, returning the existing id when the same content of the same kind is known.
    pub async fn upsert_asset(&self, a: &AssetInput) -> Result<AssetId, DbError> {
        if let Some(row) = sqlx::query("SELECT id FROM assets WHERE kind = $1 AND sha256 = $2")
            .bind(&a.kind)
            .bind(&a.sha256)
            .fetch_optional(&self.pool)
            .await?
        {
            return id_col(&row, "id");
        }
        let id = AssetId::generate();
        sqlx::query(
            "INSERT INTO assets (id, kind, object_key, sha256, size_bytes, mime, width, height, original_name, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT), CAST($8 AS BIGINT), $9, $10)
             ON CONFLICT (kind, sha256) DO NOTHING",
        )
        .bind(id.as_str())
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
        id_col(&row, "id")
    }

    /// Object key of an asset.
    pub async fn asset_object_key(&self, asset_id: &AssetId) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT object_key FROM assets WHERE id = $1")
            .bind(asset_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("object_key")).transpose()?)
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
