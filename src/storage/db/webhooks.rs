//! Project webhooks and the delivery outbox.

use sqlx::Row;

use super::{Db, DbError};
use crate::domain::{ProjectId, RunId};
use crate::storage::{new_id, now_ms};

/// A project's webhook: where to POST and the key that signs each delivery.
#[derive(Clone)]
pub struct Webhook {
    /// Receiver URL.
    pub url: String,
    /// HMAC-SHA256 signing secret.
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One delivery waiting in the outbox.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    /// Delivery id (sent as `X-Devatar-Delivery`).
    pub id: String,
    /// Project id, to find the signing secret.
    pub project_id: ProjectId,
    /// Event name, e.g. `run.succeeded`.
    pub event: String,
    /// Receiver URL captured when the event happened.
    pub url: String,
    /// JSON body.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: i64,
}

/// Delivery state, for the API and tests.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatus {
    /// Delivery id.
    pub id: String,
    /// Run the event is about.
    pub run_id: RunId,
    /// Event name.
    pub event: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was accepted by the receiver (ms since epoch).
    pub delivered_at: Option<i64>,
    /// When we gave up (ms since epoch).
    pub failed_at: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl Db {
    /// Sets (or, with `None`, removes) a project's webhook; false when the project does not exist.
    pub async fn set_project_webhook(
        &self,
        project_id: &ProjectId,
        webhook: Option<&Webhook>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE projects SET webhook_url = CAST($1 AS TEXT), webhook_secret = CAST($2 AS TEXT), updated_at = $3 WHERE id = $4",
        )
        .bind(webhook.map(|w| w.url.clone()))
        .bind(webhook.map(|w| w.secret.clone()))
        .bind(now_ms())
        .bind(project_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A project's webhook, if it has one.
    pub async fn project_webhook(
        &self,
        project_id: &ProjectId,
    ) -> Result<Option<Webhook>, DbError> {
        let row = sqlx::query("SELECT webhook_url, webhook_secret FROM projects WHERE id = $1")
            .bind(project_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let url: Option<String> = row.try_get("webhook_url")?;
        let secret: Option<String> = row.try_get("webhook_secret")?;
        Ok(url.zip(secret).map(|(url, secret)| Webhook { url, secret }))
    }

    /// Queues an event for the project's webhook, if it has one; returns the delivery id.
    pub async fn enqueue_webhook(
        &self,
        project_id: &ProjectId,
        run_id: &RunId,
        event: &str,
        payload: &str,
    ) -> Result<Option<String>, DbError> {
        let Some(hook) = self.project_webhook(project_id).await? else {
            return Ok(None);
        };
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, project_id, run_id, event, url, payload, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(&id)
        .bind(project_id.as_str())
        .bind(run_id.as_str())
        .bind(event)
        .bind(&hook.url)
        .bind(payload)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Some(id))
    }

    /// Deliveries due now (not delivered, not given up), oldest first.
    pub async fn due_webhooks(&self, limit: i64) -> Result<Vec<PendingDelivery>, DbError> {
        let rows = sqlx::query(
            "SELECT id, project_id, event, url, payload, attempts FROM webhook_deliveries \
             WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingDelivery {
                    id: r.try_get("id")?,
                    project_id: super::id_col(r, "project_id")?,
                    event: r.try_get("event")?,
                    url: r.try_get("url")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Records an accepted delivery.
    pub async fn webhook_delivered(&self, id: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = $1, last_error = NULL WHERE id = $2",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `next_attempt_at` (ms), or given up when `None`.
    pub async fn webhook_attempt_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $1, \
             next_attempt_at = $2, failed_at = CAST($3 AS BIGINT) WHERE id = $4",
        )
        .bind(error)
        .bind(next_attempt_at.unwrap_or(now))
        .bind(if next_attempt_at.is_none() {
            Some(now)
        } else {
            None
        })
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A project's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        project_id: &ProjectId,
    ) -> Result<Vec<DeliveryStatus>, DbError> {
        let rows = sqlx::query(
            "SELECT id, run_id, event, attempts, delivered_at, failed_at, last_error FROM webhook_deliveries \
             WHERE project_id = $1 ORDER BY created_at DESC LIMIT 100",
        )
        .bind(project_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryStatus {
                    id: r.try_get("id")?,
                    run_id: super::id_col(r, "run_id")?,
                    event: r.try_get("event")?,
                    attempts: r.try_get("attempts")?,
                    delivered_at: r.try_get("delivered_at")?,
                    failed_at: r.try_get("failed_at")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}
