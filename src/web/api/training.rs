//! `/api/identities/{id}/consent`, `/api/identities/{id}/train` and the trainings: the person's consent on record
//! (never sent to a provider), training their digital twin (a Flux LoRA on Fal), its runs and the live events of
//! one. The work is in `web::service::training`.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::{IdentityId, RunId};
use crate::providers::cloud::fal::QUEUE_LINE;
use crate::storage::db::{ConsentRecord, Db, DbError, LogRow, TrainingRow};
use crate::training::consent::ConsentInput;
use crate::training::{DEFAULT_STEPS, STEP, TrainOptions};
use crate::web::AppState;
use crate::web::api::follow;
use crate::web::error::{ApiError, ApiJson};
use crate::web::service::training as service;

/// The identity's consent on record (404 when there is none).
#[utoipa::path(get, path = "/api/identities/{id}/consent", tag = "identities", params(("id" = String, Path)),
    responses((status = 200, body = ConsentRecord), (status = 404)))]
pub async fn get_consent(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
) -> Result<Json<ConsentRecord>, ApiError> {
    service::consent_of(&state, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("consent"))
}

/// How consent was given: who, and a note and/or a stored statement or recording (an asset id).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentBody {
    /// Who consented (the person, or who recorded it for them).
    consented_by: String,
    /// How consent was given (`""` = none).
    #[serde(default)]
    note: Option<String>,
    /// An uploaded asset holding the statement or recording (`""` = none).
    #[serde(default)]
    asset_id: Option<String>,
}

/// Record (or replace) the identity's consent: `consentedBy` and a `note` or an `assetId` (at least one).
#[utoipa::path(put, path = "/api/identities/{id}/consent", tag = "identities", params(("id" = String, Path)),
    request_body = ConsentBody, responses((status = 200, body = ConsentRecord), (status = 404), (status = 422)))]
pub async fn put_consent(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> Result<Json<ConsentRecord>, ApiError> {
    let some = |v: Option<String>| v.filter(|s| !s.is_empty());
    let input = ConsentInput {
        by: body.consented_by,
        note: some(body.note),
        asset_id: some(body.asset_id),
    };
    Ok(Json(service::set_consent(&state, &id, &input).await?))
}

/// Training settings.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainBody {
    /// Training steps (default 1000).
    #[serde(default)]
    steps: Option<u32>,
    /// Refuse (before anything is submitted) when the estimated price is above this many USD.
    #[serde(default)]
    max_usd: Option<f64>,
    /// Train anew even when the same photos and settings were trained before.
    #[serde(default)]
    force: Option<bool>,
}

/// Train the identity's digital twin from its usable photos (at least 4) on Fal: refused before any submit
/// without consent or without `FAL_KEY` (409), with too few usable photos or a price above `maxUsd` (422); otherwise
/// the training run starts (202) and runs on; its progress is in the logs (step `LORA_TRAINING`), `GET
/// /api/identities/{id}/trainings` and live in `GET /api/identities/{id}/trainings/{trainingId}/events`.
#[utoipa::path(post, path = "/api/identities/{id}/train", tag = "identities", params(("id" = String, Path)),
    request_body = TrainBody, responses((status = 202, body = TrainingRow), (status = 404), (status = 409),
        (status = 422)))]
pub async fn train(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
    ApiJson(body): ApiJson<TrainBody>,
) -> Result<(StatusCode, Json<TrainingRow>), ApiError> {
    let opts = TrainOptions {
        steps: body.steps.unwrap_or(DEFAULT_STEPS),
        max_usd: body.max_usd,
        force: body.force.unwrap_or(false),
    };
    let row = service::start(&state, &id, opts).await?;
    Ok((StatusCode::ACCEPTED, Json(row)))
}

/// The identity's training runs, newest first (status, cost, LoRA, score).
#[utoipa::path(get, path = "/api/identities/{id}/trainings", tag = "identities", params(("id" = String, Path)),
    responses((status = 200, body = Vec<TrainingRow>), (status = 404)))]
pub async fn trainings(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
) -> Result<Json<Vec<TrainingRow>>, ApiError> {
    Ok(Json(service::trainings(&state, &id).await?))
}

/// Live progress of one training as Server-Sent Events: a `progress` event per log line of the training (step
/// `LORA_TRAINING`: `{"message", "level", "createdAt", "queuePosition"}`, the position set on Fal's queue lines),
/// a `status` event when its status changes (`running`, then `succeeded`, `failed` or `interrupted`), and a final
/// `done` event carrying the training row, after which the stream ends. A finished training's stream replays its
/// lines and ends at once. Read from the stored rows, so a training run by the CLI streams too.
#[utoipa::path(get, path = "/api/identities/{id}/trainings/{trainingId}/events", tag = "identities",
    params(("id" = String, Path), ("trainingId" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404)))]
pub async fn events(
    State(state): State<AppState>,
    Path((id, training_id)): Path<(IdentityId, String)>,
) -> Result<Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let row = service::training_of(&state, &id, &training_id).await?;
    Ok(follow::sse(TrainingSource {
        db: state.storage.db.clone(),
        id: RunId::from(row.id),
        status: None,
        after: String::new(),
    }))
}

/// Log rows read per query while catching up.
const LOG_PAGE: i64 = 200;

/// Turns a stored training row and its log rows into events, each once.
struct TrainingSource {
    db: Db,
    /// The training's id (its log rows carry it as their run id).
    id: RunId,
    /// The last status sent.
    status: Option<String>,
    /// The id of the last log row sent.
    after: String,
}

impl follow::Source for TrainingSource {
    fn label(&self) -> String {
        format!("training {}", self.id)
    }

    /// Queues the new log lines, then the status when it changed, then the end when the training is over. The
    /// row is read before the lines: a training writes its last line before its row ends, so a final row's
    /// lines are all there.
    async fn look(&mut self, out: &mut VecDeque<SseEvent>) -> Result<bool, DbError> {
        let Some(row) = self.db.training(&self.id).await? else {
            return Ok(true);
        };
        loop {
            let lines = self
                .db
                .run_logs_after(&self.id, STEP, &self.after, LOG_PAGE)
                .await?;
            out.extend(lines.iter().map(progress_event));
            if let Some(last) = lines.last() {
                self.after = last.id.clone();
            }
            if (lines.len() as i64) < LOG_PAGE {
                break;
            }
        }
        if self.status.as_deref() != Some(row.status.as_str()) {
            self.status = Some(row.status.clone());
            let data = json!({"trainingId": row.id, "status": row.status});
            out.push_back(SseEvent::default().event("status").data(data.to_string()));
        }
        if row.status == "running" {
            return Ok(false);
        }
        let data = serde_json::to_string(&row).unwrap_or_default();
        out.push_back(SseEvent::default().event("done").data(data));
        Ok(true)
    }
}

/// One log line of a training as a `progress` event.
fn progress_event(line: &LogRow) -> SseEvent {
    let data = json!({
        "message": line.message, "level": line.level, "createdAt": line.created_at,
        "queuePosition": queue_position(&line.message),
    });
    SseEvent::default().event("progress").data(data.to_string())
}

/// The queue position a Fal queue line reports (`in the queue at position 3` → 3).
fn queue_position(message: &str) -> Option<u64> {
    message.strip_prefix(QUEUE_LINE)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lines_tell_the_position_and_other_lines_none() {
        assert_eq!(queue_position(&format!("{QUEUE_LINE}3")), Some(3));
        assert_eq!(queue_position(&format!("{QUEUE_LINE}0")), Some(0));
        assert_eq!(queue_position("Training step 250/1000"), None);
        assert_eq!(queue_position(&format!("{QUEUE_LINE}soon")), None);
    }
}
