//! The reference photos on the identity's edit page: thumbnails with what each shows and its verdict, the
//! references' agreement, upload (multipart; the CSRF token is the form's first field, as on the Assets page) and
//! removal. Both go through `web::service::identity_photos`, like the API.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::forms::PostForm;
use super::library::csrf_field_matches;
use super::{Page, UiError, view};
use crate::domain::IdentityId;
use crate::identity_photos::Collection;
use crate::web::AppState;
use crate::web::service::identity_photos as service;

/// One photo tile.
#[derive(Debug, Clone)]
pub(crate) struct PhotoTile {
    pub id: String,
    pub name: String,
    pub url: String,
    pub facts: String,
    pub size: String,
    /// `ok`, or the reasons it is not a good reference.
    pub verdict: String,
    pub ok: bool,
    pub pending: bool,
}

/// The section of the edit page.
#[derive(Debug, Clone)]
pub(crate) struct PhotosSection {
    pub tiles: Vec<PhotoTile>,
    /// e.g. "4 photos agree (worst 0.31)".
    pub agreement: String,
    pub agree: bool,
    /// Why photos are not analysed (face models missing).
    pub note: Option<String>,
    /// Why the last upload was refused.
    pub error: Option<String>,
}

impl PhotosSection {
    fn new(root: &str, c: &Collection, error: Option<String>) -> Self {
        let tiles = c
            .photos
            .iter()
            .map(|p| {
                let reasons = p.reasons();
                let pending = p.record.analysis.is_none();
                PhotoTile {
                    id: p.record.id.clone(),
                    name: p.record.file_name.clone(),
                    url: view::media(root, &p.record.object_key),
                    facts: p.facts(),
                    size: format!("{}×{}", p.record.width, p.record.height),
                    verdict: if pending {
                        "not analysed".into()
                    } else if reasons.is_empty() {
                        "ok".into()
                    } else {
                        reasons.join("; ")
                    },
                    ok: !pending && reasons.is_empty(),
                    pending,
                }
            })
            .collect();
        Self {
            tiles,
            agreement: c.agreement.summary(),
            agree: c.agreement.ok(),
            note: c.note.clone(),
            error,
        }
    }
}

/// The section for identity `id`, with the refusal of an upload when there was one.
pub(crate) async fn section(
    state: &AppState,
    page: &Page,
    id: &IdentityId,
    error: Option<String>,
) -> Result<PhotosSection, UiError> {
    let collection = service::list(state, id).await?;
    Ok(PhotosSection::new(&page.root, &collection, error))
}

/// Adds the uploaded photos; back to the edit page, or the page again with the refusal (and its status).
pub(crate) async fn upload(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
    mut multipart: Multipart,
) -> Result<Response, UiError> {
    if !csrf_field_matches(&mut multipart, &page.csrf).await {
        return Err(UiError::forbidden());
    }
    match service::upload(&state, &id, multipart).await {
        Ok(_) => Ok(page.redirect(&format!("identities/{id}/edit?ok=photos-added#photos"))),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(e.into()),
        Err(e) => {
            let message = view::sentence(&e.message);
            super::identities::edit_form(&state, &page, &id, e.status, Some(message)).await
        }
    }
}

/// Removes a photo.
pub(crate) async fn remove(
    State(state): State<AppState>,
    page: Page,
    Path((id, photo)): Path<(IdentityId, String)>,
    _form: PostForm,
) -> Result<Response, UiError> {
    service::remove(&state, &id, &photo).await?;
    Ok(page.redirect(&format!("identities/{id}/edit?ok=photo-removed#photos")))
}
