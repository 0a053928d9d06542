//! Listing and deleting assets.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, nullable_f64};

/// A stored asset as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetRecord {
    /// Id.
    pub id: String,
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
        id: r.try_get("id")?,
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

impl Db {
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
    pub async fn get_asset(&self, id: &str) -> Result<Option<AssetRecord>, DbError> {
        let row = sqlx::query(
            "SELECT id, kind, object_key, sha256, size_bytes, mime, width, height, duration_seconds, original_name, folder,
                    created_at
             FROM assets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Sets an asset's probed facts and folder.
    pub async fn set_asset_details(
        &self,
        id: &str,
        duration_seconds: Option<f64>,
        folder: &str,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE assets SET duration_seconds = CAST($2 AS DOUBLE PRECISION), folder = $3 WHERE id = $1")
            .bind(id)
            .bind(nullable_f64(duration_seconds))
            .bind(folder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes an asset row (its object stays while other rows may share the content).
    pub async fn delete_asset(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM assets WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
