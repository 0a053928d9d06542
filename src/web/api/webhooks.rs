//! `/api/projects/{id}/webhook`: register, inspect and remove a project's outbound webhook.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ProjectId;
use crate::storage::db::{DeliveryStatus, Webhook};
use crate::web::AppState;
use crate::web::error::{ApiError, ApiJson};
use crate::webhooks::new_secret;

/// The receiver to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// http(s) URL that receives `run.succeeded`, `run.failed` and `run.canceled` POSTs.
    url: String,
}

/// A registered webhook; `secret` is shown only in the answer that creates it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    url: String,
    /// HMAC-SHA256 key for `X-Devatar-Signature` (only when just created).
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Recent deliveries, newest first.
    #[schema(value_type = Vec<Object>)]
    deliveries: Vec<DeliveryStatus>,
}

/// Register (or replace) the project's webhook; a new signing secret is returned once.
#[utoipa::path(put, path = "/api/projects/{id}/webhook", tag = "projects", params(("id" = String, Path)),
    request_body = WebhookInput,
    responses((status = 200, body = WebhookView), (status = 404), (status = 422)))]
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<Json<WebhookView>, ApiError> {
    let url = input.url.trim();
    if url.len() > 2048 || url.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "url",
            "must be an http(s) URL of at most 2048 characters",
        ));
    }
    // Checked now (scheme, resolution, address rule) as well as at every delivery.
    let parsed = state
        .config
        .fetch_guard()
        .check(url)
        .await
        .map_err(|e| ApiError::invalid("url", e.to_string()))?;
    let hook = Webhook {
        url: parsed.to_string(),
        secret: new_secret().map_err(ApiError::internal)?,
    };
    if !state
        .storage
        .db
        .set_project_webhook(&id, Some(&hook))
        .await?
    {
        return Err(ApiError::not_found("project"));
    }
    Ok(Json(WebhookView {
        url: hook.url,
        secret: Some(hook.secret),
        deliveries: Vec::new(),
    }))
}

/// The project's webhook and its recent deliveries (never the secret).
#[utoipa::path(get, path = "/api/projects/{id}/webhook", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
) -> Result<Json<WebhookView>, ApiError> {
    let db = &state.storage.db;
    let hook = db
        .project_webhook(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(Json(WebhookView {
        url: hook.url,
        secret: None,
        deliveries: db.webhook_deliveries(&id).await?,
    }))
}

/// Remove the project's webhook.
#[utoipa::path(delete, path = "/api/projects/{id}/webhook", tag = "projects", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
) -> Result<StatusCode, ApiError> {
    if state.storage.db.set_project_webhook(&id, None).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("project"))
    }
}
