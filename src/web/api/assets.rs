//! `/api/assets`: upload and delete (both in `web::service::assets`), list; and `/media/…` serving.

use axum::Json;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower::ServiceExt;
use utoipa::IntoParams;

use crate::domain::AssetId;
use crate::storage::db::AssetRecord;
use crate::web::error::{ApiError, ApiQuery};
use crate::web::{AppState, service};

/// The upload form, in this order.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// What the file is (decides its size limit and accepted formats).
    kind: String,
    /// A folder name on the Assets page.
    folder: Option<String>,
    /// The file: PNG/JPEG/WebP (headshot, background), audio ffprobe decodes, or a `.safetensors` LoRA.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

/// Upload an asset: multipart fields `kind` (headshot, background, audio, lora, consent), optional `folder`, then `file`.
#[utoipa::path(post, path = "/api/assets", tag = "assets", request_body(content_type = "multipart/form-data", content = UploadForm),
    responses((status = 201, body = service::assets::UploadedAsset), (status = 400), (status = 413), (status = 415), (status = 422)))]
pub async fn upload(
    State(state): State<AppState>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<service::assets::UploadedAsset>), ApiError> {
    let asset = service::assets::upload(&state, multipart).await?;
    Ok((StatusCode::CREATED, Json(asset)))
}

/// Asset list filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssetQuery {
    /// headshot, background, audio or lora.
    kind: Option<String>,
    /// Folder.
    folder: Option<String>,
}

/// The assets of a kind and folder.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AssetList {
    /// Newest first.
    pub items: Vec<AssetRecord>,
}

/// List assets, newest first.
#[utoipa::path(get, path = "/api/assets", tag = "assets", params(AssetQuery), responses((status = 200, body = AssetList)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AssetQuery>,
) -> Result<Json<AssetList>, ApiError> {
    let items = state
        .storage
        .db
        .list_assets(
            q.kind.as_deref().unwrap_or(""),
            q.folder.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(Json(AssetList { items }))
}

/// Delete an asset.
#[utoipa::path(delete, path = "/api/assets/{id}", tag = "assets", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<AssetId>,
) -> Result<StatusCode, ApiError> {
    service::assets::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Serves a stored media object (`/media/<aa>/<sha256>.<ext>`) with HTTP Range support.
pub async fn media(
    State(state): State<AppState>,
    Path(key): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let key = format!("media/{key}");
    let valid = key.split('/').count() == 3
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.')
        && !key.contains("..");
    if !valid || !state.storage.objects.exists(&key).await {
        return Err(ApiError::not_found("media"));
    }
    let path = state
        .storage
        .objects
        .local_path(&key)
        .await
        .map_err(ApiError::internal)?;
    match tower_http::services::ServeFile::new(path)
        .oneshot(req)
        .await
    {
        Ok(r) => {
            // Media are served as their sniffed type only: a PNG with HTML appended is never rendered as a page.
            let mut r = r.into_response();
            r.headers_mut().insert(
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                axum::http::HeaderValue::from_static("nosniff"),
            );
            Ok(r)
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}
