//! `POST /api/estimate`: what rendering a project (or some of its scenes) will cost before anything is paid.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::costs::{Estimate, Route, estimate};
use crate::storage::db::SceneRecord;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiJson};

/// What to price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EstimateInput {
    /// The project.
    #[schema(value_type = String)]
    project_id: crate::domain::ProjectId,
    /// Only these scenes (default: all of them).
    #[serde(default)]
    scene_ids: Option<Vec<String>>,
    /// `local`, `cloud`, or `auto` (default: cloud when a provider key is configured).
    #[serde(default)]
    providers: Option<String>,
}

/// Price a project's scenes with the configured price table.
#[utoipa::path(post, path = "/api/estimate", tag = "projects", request_body = EstimateInput,
    responses((status = 200, body = Estimate), (status = 404), (status = 422)))]
pub async fn estimate_route(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<EstimateInput>,
) -> Result<Json<Estimate>, ApiError> {
    let route = match input.providers.as_deref().map(str::trim) {
        None | Some("auto") => {
            if state.config.cloud_configured() {
                Route::Cloud
            } else {
                Route::Local
            }
        }
        Some("local") => Route::Local,
        Some("cloud") => Route::Cloud,
        Some(_) => {
            return Err(ApiError::invalid(
                "providers",
                "must be local, cloud or auto",
            ));
        }
    };
    let prices = &state.config.cloud.prices;
    let db = &state.storage.db;
    let project = db
        .get_project(&input.project_id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let records = db.list_scenes(&project.id, -1, 10_000).await?;
    let picked: Vec<&SceneRecord> = match &input.scene_ids {
        None => records.iter().collect(),
        Some(ids) => {
            let mut picked = Vec::with_capacity(ids.len());
            for id in ids {
                let r = records.iter().find(|r| &r.id == id).ok_or_else(|| {
                    ApiError::invalid("sceneIds", format!("{id} is not a scene of this project"))
                })?;
                picked.push(r);
            }
            picked
        }
    };
    let scenes: Vec<_> = picked.iter().map(|r| r.scene.clone()).collect();
    let mut est = estimate(prices, &project.project, &scenes, route);
    for (i, r) in picked.iter().enumerate() {
        if r.speech_asset_id.is_some() {
            est.speech_recorded(i);
        }
    }
    Ok(Json(est))
}
