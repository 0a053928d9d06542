//! An identity's reference photos for the API and the identity page: the multipart upload (the `file` fields,
//! each streamed to disk within the headshot limit, sniffed and decoded like an image upload — 413, 415, 422),
//! the reviewed collection, removal, and the headshot joining the collection when an identity is saved with one.
//! The collection itself is [`crate::identity_photos`].

use axum::extract::Multipart;
use axum::http::StatusCode;

use super::assets::{bad_multipart, checked_image, error, stream_file, upload_path};
use crate::domain::{AssetId, IdentityId};
use crate::identity_photos::{
    AddedPhoto, Collection, MAX_BYTES, PhotoError, Photos, PhotosAdded, RemoveError, check_file,
};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The most files one upload may carry.
const MAX_FILES: usize = 50;

fn photos(state: &AppState) -> Photos<'_> {
    Photos::new(&state.storage, &state.config.face)
}

/// 404 unless identity `id` exists.
async fn require_identity(state: &AppState, id: &IdentityId) -> Result<(), ApiError> {
    match state.storage.db.get_identity(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("identity")),
    }
}

/// A photo the service refused, as the upload's answer: 413, 415 or 422 for the file (the temporary path `tmp`
/// called "the file" in the message), 500 for the machine.
fn photo_error(e: PhotoError, tmp: &std::path::Path) -> ApiError {
    let (status, code) = match &e {
        PhotoError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        PhotoError::TooManyPixels { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        PhotoError::NotAnImage { .. }
        | PhotoError::Undecodable { .. }
        | PhotoError::Unreadable { .. } => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        PhotoError::Objects(_) | PhotoError::Db(_) => return internal(e),
    };
    let message = e
        .to_string()
        .replace(&tmp.display().to_string(), "the file");
    error(status, code, message, "file")
}

/// The reviewed collection of identity `id` (404 when unknown).
pub async fn list(state: &AppState, id: &IdentityId) -> Result<Collection, ApiError> {
    require_identity(state, id).await?;
    photos(state).list(id).await.map_err(internal)
}

/// A collection that cannot be read (database or media storage).
fn internal(e: PhotoError) -> ApiError {
    match e {
        PhotoError::Db(e) => e.into(),
        other => ApiError::internal(other),
    }
}

/// Receives the `file` fields of a multipart form into identity `id`'s collection (404 when unknown), each
/// checked like an image upload; the first refused file ends the upload (the files before it are kept).
pub async fn upload(
    state: &AppState,
    id: &IdentityId,
    mut multipart: Multipart,
) -> Result<PhotosAdded, ApiError> {
    if let Err(e) = require_identity(state, id).await {
        // Read the upload (within the body limit) before answering: a client still sending it would see a broken
        // pipe instead of the 404.
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
        return Err(e);
    }
    let mut added = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
        if added.len() == MAX_FILES {
            return Err(ApiError::bad_request(format!(
                "at most {MAX_FILES} files per upload"
            )));
        }
        if field.name() != Some("file") {
            let name = field.name().unwrap_or("").to_string();
            return Err(ApiError::bad_request(format!("unknown field {name:?}")));
        }
        let tmp = upload_path(state).await?;
        let result = async {
            let file = stream_file(&mut field, &tmp, MAX_BYTES).await?;
            receive(state, id, &tmp, file).await
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        added.push(result?);
    }
    if added.is_empty() {
        return Err(ApiError::invalid("file", "send at least one file"));
    }
    let collection = photos(state).list(id).await.map_err(internal)?;
    Ok(PhotosAdded::new(added, &collection))
}

/// Checks one streamed file (PNG or JPEG by content, decodable, within the pixel limit) and adds it.
async fn receive(
    state: &AppState,
    id: &IdentityId,
    tmp: &std::path::Path,
    file: super::assets::UploadedFile,
) -> Result<AddedPhoto, ApiError> {
    let Some((ext, _)) = crate::project_file::image_kind(&file.head) else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a reference photo must be a PNG or JPEG image",
            "file",
        ));
    };
    checked_image(tmp, ext).await?;
    let name = file.name.unwrap_or_else(|| format!("photo.{ext}"));
    let checked = check_file(tmp, Some(&name)).map_err(|e| photo_error(e, tmp))?;
    let added = photos(state)
        .add_file(id, &checked)
        .await
        .map_err(|e| photo_error(e, tmp))?;
    Ok(AddedPhoto::from(&added))
}

/// Removes photo `photo_id` from identity `id`'s collection; 404 when either is unknown.
pub async fn remove(state: &AppState, id: &IdentityId, photo_id: &str) -> Result<(), ApiError> {
    require_identity(state, id).await?;
    match photos(state).remove(id, photo_id).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::not_found("photo")),
        Err(RemoveError::Db(e)) => Err(e.into()),
        Err(e @ RemoveError::Ambiguous(_)) => Err(ApiError::invalid("photoId", e.to_string())),
    }
}

/// Adds the headshot an identity was saved with to its collection. The identity is saved either way: a headshot
/// that cannot join (not a PNG or JPEG, unreadable) is logged, not refused.
pub async fn headshot_joins(state: &AppState, id: &IdentityId, headshot: Option<&AssetId>) {
    let Some(asset) = headshot else { return };
    if let Err(e) = photos(state).add_headshot(id, asset).await {
        tracing::warn!(identity = %id, error = %e, "the headshot did not join the reference photos");
    }
}
