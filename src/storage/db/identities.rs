//! Identities: the people a project speaks as (unique name and trigger word), their headshot and test results.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, flag, id_col, opt_id_col};
use crate::domain::{AssetId, BaseModel, Identity, IdentityId, LoraScale};
use crate::storage::now_ms;

/// A stored identity with its bookkeeping fields.
#[derive(Debug, Clone)]
pub struct IdentityRecord {
    /// Id.
    pub id: IdentityId,
    /// The identity.
    pub identity: Identity,
    /// Headshot asset.
    pub headshot_asset_id: Option<AssetId>,
    /// The uploaded LoRA (an asset of kind `lora`) used instead of `identity.lora_url`.
    pub lora_asset_id: Option<AssetId>,
    /// The default identity for new scenes.
    pub is_default: bool,
    /// Usable.
    pub is_active: bool,
    /// Last identity test: ok, time, result JSON.
    pub last_test: Option<(bool, i64, String)>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
}

/// Which unique field a write collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Conflict {
    /// `name` is taken.
    Name,
    /// `triggerWord` is taken.
    TriggerWord,
}

const COLUMNS: &str = "id, name, display_name, trigger_word, description, lora_url, lora_scale, base_model, voice_id, \
    voice_model, voice_stability, voice_similarity, voice_style, voice_speaker_boost, local_voice, headshot_asset_id, \
    lora_asset_id, \
    is_default, is_active, last_test_ok, last_test_at, last_test_result, created_at, updated_at";

fn record(r: &AnyRow) -> Result<IdentityRecord, DbError> {
    let scale: String = r.try_get("lora_scale")?;
    let base: String = r.try_get("base_model")?;
    let identity = Identity {
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        trigger_word: r.try_get("trigger_word")?,
        description: r.try_get("description")?,
        lora_url: r.try_get("lora_url")?,
        lora_scale: LoraScale::parse(&scale)
            .ok_or_else(|| DbError::Corrupt("identities.lora_scale".into()))?,
        base_model: BaseModel::parse(&base)
            .ok_or_else(|| DbError::Corrupt("identities.base_model".into()))?,
        voice_id: r.try_get("voice_id")?,
        voice_model: r.try_get("voice_model")?,
        voice_stability: r.try_get("voice_stability")?,
        voice_similarity: r.try_get("voice_similarity")?,
        voice_style: r.try_get("voice_style")?,
        voice_speaker_boost: flag(r.try_get("voice_speaker_boost")?),
        local_voice: r.try_get("local_voice")?,
    };
    let test_ok: Option<i64> = r.try_get("last_test_ok")?;
    let test_at: Option<i64> = r.try_get("last_test_at")?;
    let test_result: Option<String> = r.try_get("last_test_result")?;
    Ok(IdentityRecord {
        id: id_col(r, "id")?,
        identity,
        headshot_asset_id: opt_id_col(r, "headshot_asset_id")?,
        lora_asset_id: opt_id_col(r, "lora_asset_id")?,
        is_default: flag(r.try_get("is_default")?),
        is_active: flag(r.try_get("is_active")?),
        last_test: match (test_ok, test_at, test_result) {
            (Some(ok), Some(at), Some(result)) => Some((flag(ok), at, result)),
            _ => None,
        },
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// SQL true while an update (`$4` trigger word, `$6` LoRA URL, `$8` base model, `$9` voice id) keeps every field
/// the identity test checked: the stored result still applies.
const TEST_STILL_VALID: &str = "trigger_word = $4 AND base_model = $8 AND COALESCE(lora_url, '') = COALESCE($6, '') \
    AND COALESCE(voice_id, '') = COALESCE($9, '')";

impl Db {
    /// Every identity, by name.
    pub async fn list_identities(&self) -> Result<Vec<IdentityRecord>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM identities ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// One identity by id.
    pub async fn get_identity(&self, id: &IdentityId) -> Result<Option<IdentityRecord>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM identities WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Which unique field (if any) another identity already uses.
    pub async fn identity_conflict(
        &self,
        identity: &Identity,
        except_id: Option<&IdentityId>,
    ) -> Result<Option<Conflict>, DbError> {
        let row = sqlx::query(
            "SELECT name, trigger_word FROM identities WHERE (name = $1 OR trigger_word = $2) AND id <> $3 LIMIT 1",
        )
        .bind(&identity.name)
        .bind(&identity.trigger_word)
        .bind(except_id.map_or("", |i| i.as_str()))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            let name: String = r.try_get("name").unwrap_or_default();
            if name == identity.name {
                Conflict::Name
            } else {
                Conflict::TriggerWord
            }
        }))
    }

    /// Replaces an identity's fields; false when it does not exist. A stored test result is cleared when a field
    /// the test checked changes (trigger word, base model, LoRA URL, voice id).
    pub async fn update_identity(
        &self,
        id: &IdentityId,
        i: &Identity,
        headshot_asset_id: Option<&AssetId>,
        is_active: bool,
    ) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE identities SET last_test_ok = CASE WHEN {KEPT} THEN last_test_ok END,
                last_test_at = CASE WHEN {KEPT} THEN last_test_at END,
                last_test_result = CASE WHEN {KEPT} THEN last_test_result END,
                name = $2, display_name = $3, trigger_word = $4, description = $5, lora_url = $6,
                lora_scale = $7, base_model = $8, voice_id = $9, voice_model = $10, voice_stability = $11,
                voice_similarity = $12, voice_style = $13, voice_speaker_boost = $14, headshot_asset_id = $15,
                is_active = $16, updated_at = $17, local_voice = $18 WHERE id = $1",
            KEPT = TEST_STILL_VALID
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
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
            .bind(headshot_asset_id.map(|a| a.as_str()))
            .bind(i64::from(is_active))
            .bind(now_ms())
            .bind(&i.local_voice)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets (or clears) the identity's uploaded LoRA asset; a missing asset is [`DbError::ForeignKey`]. A changed
    /// LoRA clears the stored test result (it checked the old one).
    pub async fn set_identity_lora_asset(
        &self,
        id: &IdentityId,
        lora_asset_id: Option<&AssetId>,
    ) -> Result<(), DbError> {
        let same = "COALESCE(lora_asset_id, '') = COALESCE($2, '')";
        let sql = format!(
            "UPDATE identities SET last_test_ok = CASE WHEN {same} THEN last_test_ok END,
                last_test_at = CASE WHEN {same} THEN last_test_at END,
                last_test_result = CASE WHEN {same} THEN last_test_result END, lora_asset_id = $2 WHERE id = $1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(lora_asset_id.map(|a| a.as_str()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes an identity; false when it does not exist.
    pub async fn delete_identity(&self, id: &IdentityId) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM identities WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Makes one identity the default (and no other); false when it does not exist.
    pub async fn set_default_identity(&self, id: &IdentityId) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT id FROM identities WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("UPDATE identities SET is_default = 0 WHERE is_default <> 0")
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE identities SET is_default = 1 WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores an identity test result (cleared again by an edit of a field it checked).
    pub async fn record_identity_test(
        &self,
        id: &IdentityId,
        ok: bool,
        result_json: &str,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE identities SET last_test_ok = $2, last_test_at = $3, last_test_result = $4 WHERE id = $1")
            .bind(id.as_str())
            .bind(i64::from(ok))
            .bind(now_ms())
            .bind(result_json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Number of scenes that use each identity id.
    pub async fn scene_counts_by_identity(&self) -> Result<Vec<(IdentityId, i64)>, DbError> {
        let rows = sqlx::query("SELECT identity_id, COUNT(*) AS n FROM scenes WHERE identity_id IS NOT NULL GROUP BY identity_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((id_col(r, "identity_id")?, r.try_get("n")?)))
            .collect()
    }
    /// Creates or updates the identity with this name; returns its id. An update keeps the stored LoRA URL and
    /// headshot when `i` has none (a project file that leaves them out never undoes a training or an upload).
    pub async fn upsert_identity(
        &self,
        i: &Identity,
        headshot_asset_id: Option<&AssetId>,
    ) -> Result<IdentityId, DbError> {
        let existing = sqlx::query("SELECT id FROM identities WHERE name = $1")
            .bind(&i.name)
            .fetch_optional(&self.pool)
            .await?;
        let id = match existing {
            Some(row) => id_col(&row, "id")?,
            None => IdentityId::generate(),
        };
        self.write_identity(&id, i, headshot_asset_id, true).await?;
        Ok(id)
    }

    /// Creates a new identity; a taken name or trigger word is [`DbError::Unique`] (decided by the database's
    /// unique constraints, so of two concurrent creations exactly one succeeds).
    pub async fn insert_identity(
        &self,
        i: &Identity,
        headshot_asset_id: Option<&AssetId>,
    ) -> Result<IdentityId, DbError> {
        let id = IdentityId::generate();
        self.write_identity(&id, i, headshot_asset_id, false)
            .await?;
        Ok(id)
    }

    /// Inserts the identity row `id`; with `upsert`, an existing row with that id is updated instead.
    async fn write_identity(
        &self,
        id: &IdentityId,
        i: &Identity,
        headshot_asset_id: Option<&AssetId>,
        upsert: bool,
    ) -> Result<(), DbError> {
        const INSERT: &str = "INSERT INTO identities (id, name, display_name, trigger_word, description, lora_url,
                lora_scale, base_model, voice_id, voice_model, voice_stability, voice_similarity, voice_style,
                voice_speaker_boost, headshot_asset_id, created_at, updated_at, local_voice)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17)";
        const UPDATE: &str = " ON CONFLICT (id) DO UPDATE SET display_name = $3, trigger_word = $4, description = $5,
                lora_url = COALESCE(CAST($6 AS TEXT), identities.lora_url), lora_scale = $7, base_model = $8,
                voice_id = $9, voice_model = $10, voice_stability = $11, voice_similarity = $12, voice_style = $13,
                voice_speaker_boost = $14,
                headshot_asset_id = COALESCE(CAST($15 AS TEXT), identities.headshot_asset_id), updated_at = $16,
                local_voice = $17";
        let sql = if upsert {
            format!("{INSERT}{UPDATE}")
        } else {
            INSERT.to_string()
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
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
            .bind(headshot_asset_id.map(|a| a.as_str()))
            .bind(now_ms())
            .bind(&i.local_voice)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
