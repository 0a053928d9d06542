//! `/api/identities/{id}/photos`: an identity's reference photos — list (with each photo's analysis, its
//! distance to the others, the references' agreement and each photo's vetting), upload, remove — and
//! `/api/identities/{id}/vet`, the vetting alone (the document of `devatar identity vet --json`). The work is in
//! `web::service::identity_photos`; embeddings never appear here.

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;

use crate::domain::IdentityId;
use crate::identity_photos::{CollectionView, PhotosAdded, VetReport};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::service::identity_photos as service;

/// The identity's reference photos (its headshot among them), in the order they were added.
#[utoipa::path(get, path = "/api/identities/{id}/photos", tag = "identities", params(("id" = String, Path)),
    responses((status = 200, body = CollectionView), (status = 404)))]
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
) -> Result<Json<CollectionView>, ApiError> {
    Ok(Json(service::list(&state, &id).await?.view()))
}

/// Add reference photos: multipart `file` fields (PNG or JPEG, up to 20 MB and 40 megapixels each). Each is
/// stored once per identity (the same content again is the same photo) and analysed by the face engine.
#[utoipa::path(post, path = "/api/identities/{id}/photos", tag = "identities", params(("id" = String, Path)),
    request_body(content_type = "multipart/form-data", content = String),
    responses((status = 201, body = PhotosAdded), (status = 400), (status = 404), (status = 413), (status = 415),
        (status = 422)))]
pub async fn upload(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<PhotosAdded>), ApiError> {
    let added = service::upload(&state, &id, multipart).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Remove a reference photo.
#[utoipa::path(delete, path = "/api/identities/{id}/photos/{photoId}", tag = "identities",
    params(("id" = String, Path), ("photoId" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    Path((id, photo_id)): Path<(IdentityId, String)>,
) -> Result<StatusCode, ApiError> {
    service::remove(&state, &id, &photo_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Vet the identity's photos for training: each photo's verdict (`ok`, `warn`, `blocked` — a blocked photo is left
/// out of training) and reasons, the number of usable photos, and the set's verdict (`blocked` when training may
/// not go ahead: fewer than 4 usable photos) and summary (count, head-pose and lighting variety). The same
/// document as `devatar identity vet NAME --json`.
#[utoipa::path(get, path = "/api/identities/{id}/vet", tag = "identities", params(("id" = String, Path)),
    responses((status = 200, body = VetReport), (status = 404)))]
pub async fn vet(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
) -> Result<Json<VetReport>, ApiError> {
    Ok(Json(service::list(&state, &id).await?.vet()))
}
