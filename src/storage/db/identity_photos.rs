//! Identity photos: an identity's reference photos (once per content), in the order they were added, with what
//! the face engine found in each. Embeddings are stored as JSON text and never appear in `Debug` output.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, id_col, nullable_f64};
use crate::domain::IdentityId;
use crate::face::{Embedding, FaceBox};
use crate::storage::{new_id, now_ms};

/// A photo to add to an identity's collection (its object is already stored).
#[derive(Debug, Clone)]
pub struct NewPhoto {
    /// The identity.
    pub identity_id: IdentityId,
    /// Content-addressed object key.
    pub object_key: String,
    /// Content hash (one row per identity and content).
    pub sha256: String,
    /// Sniffed MIME type.
    pub mime: String,
    /// The base name of the file the user gave.
    pub file_name: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
}

/// The largest face of a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceFacts {
    /// Where it is.
    pub bbox: FaceBox,
    /// Variance of the Laplacian of the face region.
    pub sharpness: f64,
    /// Degrees, positive toward the image's right; `None` when the landmarks were degenerate.
    pub yaw: Option<f64>,
    /// Degrees, positive with the chin raised.
    pub pitch: Option<f64>,
    /// Mean luma of the face region, 0–255; `None` for a photo analysed before it was measured.
    pub brightness: Option<f64>,
}

/// What the face engine found in a photo.
#[derive(Clone, PartialEq)]
pub struct FaceAnalysis {
    /// How many faces.
    pub face_count: u32,
    /// The largest face, when there is one.
    pub largest: Option<FaceFacts>,
    /// The embedding, only when the photo shows exactly one face.
    pub embedding: Option<Embedding>,
}

impl std::fmt::Debug for FaceAnalysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceAnalysis")
            .field("face_count", &self.face_count)
            .field("largest", &self.largest)
            .field("embedding", &self.embedding.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// A stored reference photo.
#[derive(Debug, Clone)]
pub struct PhotoRecord {
    /// Id.
    pub id: String,
    /// The identity it belongs to.
    pub identity_id: IdentityId,
    /// Content-addressed object key.
    pub object_key: String,
    /// Content hash.
    pub sha256: String,
    /// Sniffed MIME type.
    pub mime: String,
    /// The base name of the file the user gave.
    pub file_name: String,
    /// Pixel width.
    pub width: i64,
    /// Pixel height.
    pub height: i64,
    /// Order in the collection.
    pub position: i64,
    /// When it was added, epoch ms.
    pub created_at: i64,
    /// The face analysis; `None` while pending (no face models when it was added).
    pub analysis: Option<FaceAnalysis>,
}

const COLUMNS: &str = "id, identity_id, object_key, sha256, mime, file_name, width, height, position, created_at, \
    analysed_at, face_count, box_x, box_y, box_w, box_h, sharpness, yaw, pitch, brightness, embedding";

fn record(r: &AnyRow) -> Result<PhotoRecord, DbError> {
    let analysed_at: Option<i64> = r.try_get("analysed_at")?;
    let analysis = match analysed_at {
        None => None,
        Some(_) => Some(analysis(r)?),
    };
    Ok(PhotoRecord {
        id: r.try_get("id")?,
        identity_id: id_col(r, "identity_id")?,
        object_key: r.try_get("object_key")?,
        sha256: r.try_get("sha256")?,
        mime: r.try_get("mime")?,
        file_name: r.try_get("file_name")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        position: r.try_get("position")?,
        created_at: r.try_get("created_at")?,
        analysis,
    })
}

fn analysis(r: &AnyRow) -> Result<FaceAnalysis, DbError> {
    let corrupt = |column: &str| DbError::Corrupt(format!("identity_photos.{column}"));
    let count: Option<i64> = r.try_get("face_count")?;
    let face_count = u32::try_from(count.unwrap_or(0)).map_err(|_| corrupt("face_count"))?;
    let side = |column: &str| -> Result<Option<u32>, DbError> {
        let v: Option<i64> = r.try_get(column)?;
        v.map(|v| u32::try_from(v).map_err(|_| corrupt(column)))
            .transpose()
    };
    let sides = (
        side("box_x")?,
        side("box_y")?,
        side("box_w")?,
        side("box_h")?,
    );
    let sharpness: Option<f64> = r.try_get("sharpness")?;
    let largest = match (sides, sharpness) {
        ((Some(x), Some(y), Some(w), Some(h)), Some(sharpness)) => Some(FaceFacts {
            bbox: FaceBox { x, y, w, h },
            sharpness,
            yaw: r.try_get("yaw")?,
            pitch: r.try_get("pitch")?,
            brightness: r.try_get("brightness")?,
        }),
        _ => None,
    };
    let embedding: Option<String> = r.try_get("embedding")?;
    let embedding = embedding
        .map(|text| serde_json::from_str::<Embedding>(&text).map_err(|_| corrupt("embedding")))
        .transpose()?;
    Ok(FaceAnalysis {
        face_count,
        largest,
        embedding,
    })
}

impl Db {
    /// Adds a photo at the end of its identity's collection; `None` when the identity already has this content
    /// (the unique constraint decides, so two concurrent adds of one photo store it once).
    pub async fn insert_identity_photo(
        &self,
        photo: &NewPhoto,
        analysis: Option<&FaceAnalysis>,
    ) -> Result<Option<String>, DbError> {
        let id = new_id();
        let done = sqlx::query(
            "INSERT INTO identity_photos (id, identity_id, object_key, sha256, mime, file_name, width, height,
                position, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, COALESCE(MAX(position), -1) + 1, $9
             FROM identity_photos WHERE identity_id = $2
             ON CONFLICT (identity_id, sha256) DO NOTHING",
        )
        .bind(&id)
        .bind(photo.identity_id.as_str())
        .bind(&photo.object_key)
        .bind(&photo.sha256)
        .bind(&photo.mime)
        .bind(&photo.file_name)
        .bind(i64::from(photo.width))
        .bind(i64::from(photo.height))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(a) = analysis {
            self.set_photo_analysis(&id, a).await?;
        }
        Ok(Some(id))
    }

    /// Stores what the face engine found in a photo.
    pub async fn set_photo_analysis(&self, id: &str, a: &FaceAnalysis) -> Result<(), DbError> {
        let side = |f: fn(&FaceBox) -> u32| a.largest.as_ref().map(|l| i64::from(f(&l.bbox)));
        let embedding = a
            .embedding
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|_| DbError::Corrupt("identity_photos.embedding".into()))?;
        sqlx::query(
            "UPDATE identity_photos SET analysed_at = $2, face_count = $3, box_x = CAST($4 AS BIGINT),
                box_y = CAST($5 AS BIGINT), box_w = CAST($6 AS BIGINT), box_h = CAST($7 AS BIGINT),
                sharpness = CAST($8 AS DOUBLE PRECISION), yaw = CAST($9 AS DOUBLE PRECISION),
                pitch = CAST($10 AS DOUBLE PRECISION), embedding = $11,
                brightness = CAST($12 AS DOUBLE PRECISION)
             WHERE id = $1",
        )
        .bind(id)
        .bind(now_ms())
        .bind(i64::from(a.face_count))
        .bind(side(|b| b.x))
        .bind(side(|b| b.y))
        .bind(side(|b| b.w))
        .bind(side(|b| b.h))
        .bind(nullable_f64(a.largest.as_ref().map(|l| l.sharpness)))
        .bind(nullable_f64(a.largest.as_ref().and_then(|l| l.yaw)))
        .bind(nullable_f64(a.largest.as_ref().and_then(|l| l.pitch)))
        .bind(embedding)
        .bind(nullable_f64(a.largest.as_ref().and_then(|l| l.brightness)))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An identity's photos in the order they were added.
    pub async fn list_identity_photos(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Vec<PhotoRecord>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM identity_photos WHERE identity_id = $1 ORDER BY position, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(identity_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// The identity's photo with this content, if it has one.
    pub async fn identity_photo_by_content(
        &self,
        identity_id: &IdentityId,
        sha256: &str,
    ) -> Result<Option<PhotoRecord>, DbError> {
        let sql =
            format!("SELECT {COLUMNS} FROM identity_photos WHERE identity_id = $1 AND sha256 = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(identity_id.as_str())
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// The embeddings of an identity's photos that show exactly one face, in collection order.
    pub async fn identity_embeddings(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Vec<Embedding>, DbError> {
        let rows = sqlx::query(
            "SELECT embedding FROM identity_photos WHERE identity_id = $1 AND embedding IS NOT NULL
             ORDER BY position, id",
        )
        .bind(identity_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("embedding")?;
                serde_json::from_str(&text)
                    .map_err(|_| DbError::Corrupt("identity_photos.embedding".into()))
            })
            .collect()
    }

    /// Removes one photo of an identity; false when it has no photo with this id.
    pub async fn delete_identity_photo(
        &self,
        identity_id: &IdentityId,
        photo_id: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM identity_photos WHERE identity_id = $1 AND id = $2")
            .bind(identity_id.as_str())
            .bind(photo_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
