//! `/api/identities/{id}/consent` and `/api/identities/{id}/train`: the person's consent on record (never sent to
//! a provider) and training their digital twin (a Flux LoRA on Fal). The work is in `web::service::training`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::IdentityId;
use crate::storage::db::{ConsentRecord, TrainingRow};
use crate::training::consent::ConsentInput;
use crate::training::{DEFAULT_STEPS, TrainOptions};
use crate::web::AppState;
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
/// without consent or without `FAL_KEY` (409), with too few usable photos or a price above `maxUsd` (422); otherwise the training run starts (202) and runs on; its progress is in the logs (step
/// `LORA_TRAINING`) and `GET /api/identities/{id}/trainings`.
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
