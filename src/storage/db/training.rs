//! Training runs: one row per LoRA training of an identity (step `LORA_TRAINING`), with its content key, outcome
//! and cost. Log rows of a training name its id as their `run_id`.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, nullable_f64};
use crate::storage::{new_id, now_ms};

/// A stored training run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrainingRow {
    /// Id.
    pub id: String,
    /// The identity trained.
    pub identity_id: String,
    /// `running`, `succeeded`, `failed` or `interrupted` (its process died; a later training took over).
    pub status: String,
    /// Content key over the usable photos and the settings.
    pub content_key: String,
    /// Training steps.
    pub steps: i64,
    /// Photos trained on.
    pub photo_count: i64,
    /// The result was reused from an earlier training with the same key (no provider request).
    pub cached: bool,
    /// Cost in USD (0 when reused).
    pub cost_usd: f64,
    /// The LoRA's URL (Fal's output or a presigned bucket URL).
    pub lora_url: Option<String>,
    /// The LoRA's copy in devatar's media storage.
    pub lora_object: Option<String>,
    /// The test image's distance to the identity's photos.
    pub score: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Start, epoch ms.
    pub created_at: i64,
    /// End, epoch ms.
    pub finished_at: Option<i64>,
}

/// How a training run ended.
#[derive(Debug, Clone, Default)]
pub struct TrainingEnd {
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// Reused from an earlier training.
    pub cached: bool,
    /// Cost in USD.
    pub cost_usd: f64,
    /// The LoRA's URL.
    pub lora_url: Option<String>,
    /// The LoRA's object key.
    pub lora_object: Option<String>,
    /// The test image's distance.
    pub score: Option<f64>,
    /// Failure reason.
    pub error: Option<String>,
}

const COLUMNS: &str = "id, identity_id, status, content_key, steps, photo_count, cached, cost_usd, lora_url, \
    lora_object, score, error, created_at, finished_at";

fn row(r: &AnyRow) -> Result<TrainingRow, DbError> {
    Ok(TrainingRow {
        id: r.try_get("id")?,
        identity_id: r.try_get("identity_id")?,
        status: r.try_get("status")?,
        content_key: r.try_get("content_key")?,
        steps: r.try_get("steps")?,
        photo_count: r.try_get("photo_count")?,
        cached: r.try_get::<i64, _>("cached")? != 0,
        cost_usd: r.try_get("cost_usd")?,
        lora_url: r.try_get("lora_url")?,
        lora_object: r.try_get("lora_object")?,
        score: r.try_get("score")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

impl Db {
    /// Starts a training run of `identity_id` (status `running`, held by `owner`); returns its id.
    pub async fn start_training(
        &self,
        identity_id: &str,
        content_key: &str,
        steps: i64,
        photo_count: i64,
        owner: &str,
    ) -> Result<String, DbError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO training_runs (id, identity_id, status, content_key, steps, photo_count, owner, created_at)
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(identity_id)
        .bind(content_key)
        .bind(steps)
        .bind(photo_count)
        .bind(owner)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Ends the identity's trainings still marked running (a process that died, or was killed, while it trained)
    /// as `interrupted`: a new training of the same photos resumes their Fal request from the job ledger.
    pub async fn interrupt_trainings(&self, identity_id: &str) -> Result<u64, DbError> {
        let done = sqlx::query(
            "UPDATE training_runs SET status = 'interrupted', error = 'interrupted; a later training took over',
             finished_at = $2 WHERE identity_id = $1 AND status = 'running'",
        )
        .bind(identity_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Whether a training of the identity is running in the process `owner`.
    pub async fn training_running_in(
        &self,
        identity_id: &str,
        owner: &str,
    ) -> Result<bool, DbError> {
        let row = sqlx::query(
            "SELECT id FROM training_runs WHERE identity_id = $1 AND status = 'running' AND owner = $2 LIMIT 1",
        )
        .bind(identity_id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Records how a training run ended.
    pub async fn finish_training(&self, id: &str, end: &TrainingEnd) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE training_runs SET status = $2, cached = $3, cost_usd = $4, lora_url = CAST($5 AS TEXT),
             lora_object = CAST($6 AS TEXT), score = CAST($7 AS DOUBLE PRECISION),
             error = CAST($8 AS TEXT), finished_at = $9 WHERE id = $1",
        )
        .bind(id)
        .bind(end.status)
        .bind(i64::from(end.cached))
        .bind(end.cost_usd)
        .bind(end.lora_url.clone())
        .bind(end.lora_object.clone())
        .bind(nullable_f64(end.score))
        .bind(end.error.clone())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An identity's training runs, newest first.
    pub async fn trainings(&self, identity_id: &str) -> Result<Vec<TrainingRow>, DbError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM training_runs WHERE identity_id = $1 ORDER BY id DESC LIMIT 50"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(identity_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row).collect()
    }

    /// The newest training runs of every identity with the identity's display name, newest first.
    pub async fn ui_recent_trainings(
        &self,
        limit: i64,
    ) -> Result<Vec<(TrainingRow, String)>, DbError> {
        let sql = format!(
            "SELECT {}, i.display_name AS identity_name FROM training_runs t
             JOIN identities i ON i.id = t.identity_id ORDER BY t.id DESC LIMIT $1",
            COLUMNS
                .split(", ")
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((row(r)?, r.try_get("identity_name")?)))
            .collect()
    }

    /// A training run by id.
    pub async fn training(&self, id: &str) -> Result<Option<TrainingRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM training_runs WHERE id = $1");
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    /// Sets the identity's LoRA after a training: its URL and base model (the trigger word is kept).
    pub async fn set_trained_lora(
        &self,
        identity_id: &str,
        lora_url: &str,
        base_model: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE identities SET lora_url = $2, base_model = $3, lora_asset_id = NULL, updated_at = $4
             WHERE id = $1",
        )
        .bind(identity_id)
        .bind(lora_url)
        .bind(base_model)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
