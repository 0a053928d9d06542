//! Outbound webhooks: run completion and failure POSTed to a project's URL, signed with HMAC-SHA256,
//! retried with backoff from a durable outbox, through the fetch guard (no SSRF).
//!
//! Receivers verify `X-Devatar-Signature: sha256=<hex>` = HMAC-SHA256(secret, `"{timestamp}.{body}"`) with the
//! timestamp from `X-Devatar-Timestamp` (seconds), and dedupe by `X-Devatar-Delivery`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderName};
use sha2::Sha256;

use crate::domain::RunId;
use crate::net::{FetchError, FetchGuard, backoff_delay};
use crate::storage::db::{Db, PendingDelivery};
use crate::storage::now_ms;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;

/// The signature header value for `body` sent at `timestamp` (seconds since the epoch).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A fresh signing secret (`whsec_` + 64 hex characters).
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

/// Queues `run.<status>` for the run's project webhook (if any), after the run record is final.
pub async fn enqueue_run_finished(db: &Db, run_id: &RunId) {
    let result = async {
        let Some(run) = db.get_run(run_id).await? else {
            return Ok(None);
        };
        let payload = serde_json::json!({
            "event": format!("run.{}", run.status),
            "runId": run_id,
            "projectId": &run.project_id,
            "sceneId": run.scene_id,
            "status": run.status,
            "error": run.error,
            "createdAt": run.created_at,
            "finishedAt": run.finished_at,
        });
        db.enqueue_webhook(
            &run.project_id,
            run_id,
            &format!("run.{}", run.status),
            &payload.to_string(),
        )
        .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(run = %run_id, "cannot queue the run's webhook: {e}");
    }
}

/// Delivers due webhooks until the process ends.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    db: Db,
    guard: FetchGuard,
    base_delay: Duration,
    poll: Duration,
}

impl Dispatcher {
    /// A dispatcher over `db`; the first retry waits about `base_delay`, doubling after each failure.
    pub fn new(db: Db, guard: FetchGuard, base_delay: Duration) -> Self {
        Self {
            db,
            guard,
            base_delay,
            poll: Duration::from_millis(500),
        }
    }

    /// Polls the outbox forever (spawn it).
    pub async fn run(self) {
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!("webhook outbox: {e}");
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Makes one attempt for every due delivery; returns how many were accepted.
    pub async fn deliver_due(&self) -> Result<usize, crate::storage::db::DbError> {
        let mut delivered = 0;
        for d in self.db.due_webhooks(20).await? {
            match self.attempt(&d).await {
                Ok(()) => {
                    self.db.webhook_delivered(&d.id).await?;
                    delivered += 1;
                }
                Err((error, retryable)) => {
                    let next = (retryable && d.attempts + 1 < MAX_ATTEMPTS).then(|| {
                        let delay = backoff_delay(
                            d.attempts as u32,
                            self.base_delay,
                            Duration::from_secs(600),
                            None,
                            jitter(),
                        );
                        now_ms() + delay.as_millis() as i64
                    });
                    tracing::info!(delivery = %d.id, attempt = d.attempts + 1, "webhook attempt failed: {error}");
                    self.db.webhook_attempt_failed(&d.id, &error, next).await?;
                }
            }
        }
        Ok(delivered)
    }

    /// One POST; `Err((reason, retryable))` on failure.
    async fn attempt(&self, d: &PendingDelivery) -> Result<(), (String, bool)> {
        let hook = self
            .db
            .project_webhook(&d.project_id)
            .await
            .map_err(|e| (e.to_string(), true))?
            .ok_or_else(|| ("the project or its webhook was removed".to_string(), false))?;
        let timestamp = now_ms() / 1000;
        let headers = [
            (CONTENT_TYPE, "application/json".to_string()),
            (HeaderName::from_static("x-devatar-event"), d.event.clone()),
            (HeaderName::from_static("x-devatar-delivery"), d.id.clone()),
            (
                HeaderName::from_static("x-devatar-timestamp"),
                timestamp.to_string(),
            ),
            (
                HeaderName::from_static("x-devatar-signature"),
                signature(&hook.secret, timestamp, &d.payload),
            ),
        ];
        let resp = self
            .guard
            .send_body(
                Method::POST,
                &d.url,
                &headers,
                d.payload.clone().into_bytes(),
            )
            .await
            .map_err(|e| {
                let retryable =
                    !matches!(e, FetchError::Forbidden { .. } | FetchError::InvalidUrl(_));
                (e.to_string(), retryable)
            })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            // 4xx other than 408/429 means the receiver rejects this delivery for good.
            let retryable =
                status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
            Err((
                format!("receiver answered HTTP {}", status.as_u16()),
                retryable,
            ))
        }
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let a = signature("whsec_k", 1_700_000_000, "{\"a\":1}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature("whsec_k", 1_700_000_001, "{\"a\":1}"));
        assert_ne!(a, signature("whsec_k", 1_700_000_000, "{\"a\":2}"));
        assert_ne!(a, signature("whsec_other", 1_700_000_000, "{\"a\":1}"));
        assert_eq!(a, signature("whsec_k", 1_700_000_000, "{\"a\":1}"));
    }
}
