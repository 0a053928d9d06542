//! Identity consents: who agreed to their likeness being trained, when and how (a stored `consent` asset and/or a
//! note). One record per identity; setting it again replaces it. Never sent to a provider.

use serde::Serialize;
use sqlx::Row;

use super::{Db, DbError};

/// An identity's consent record.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRecord {
    /// The identity.
    pub identity_id: String,
    /// Who consented (the person, or who recorded it for them).
    pub consented_by: String,
    /// The statement or recording, stored as an asset of kind `consent`.
    pub asset_id: Option<String>,
    /// A note on how consent was given.
    pub note: Option<String>,
    /// When it was recorded, epoch ms.
    pub consented_at: i64,
}

impl Db {
    /// The consent on record for an identity, if any.
    pub async fn consent(&self, identity_id: &str) -> Result<Option<ConsentRecord>, DbError> {
        let row = sqlx::query(
            "SELECT identity_id, consented_by, asset_id, note, consented_at FROM identity_consents
             WHERE identity_id = $1",
        )
        .bind(identity_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ConsentRecord {
                identity_id: r.try_get("identity_id")?,
                consented_by: r.try_get("consented_by")?,
                asset_id: r.try_get("asset_id")?,
                note: r.try_get("note")?,
                consented_at: r.try_get("consented_at")?,
            })
        })
        .transpose()
    }

    /// Records (or replaces) an identity's consent; a missing identity or asset is [`DbError::ForeignKey`].
    pub async fn set_consent(&self, c: &ConsentRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO identity_consents (identity_id, consented_by, asset_id, note, consented_at)
             VALUES ($1, $2, CAST($3 AS TEXT), CAST($4 AS TEXT), $5)
             ON CONFLICT (identity_id) DO UPDATE SET consented_by = excluded.consented_by,
             asset_id = excluded.asset_id, note = excluded.note, consented_at = excluded.consented_at",
        )
        .bind(&c.identity_id)
        .bind(&c.consented_by)
        .bind(c.asset_id.clone())
        .bind(c.note.clone())
        .bind(c.consented_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
