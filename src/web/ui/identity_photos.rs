//! The reference photos on the identity's edit page: thumbnails with what each shows and its vetting verdict and
//! reasons (a blocked photo marked "left out of training"), the references' agreement, the set's verdict and
//! summary, upload (multipart, several files, by drag and drop or a plain file input; the CSRF token is the form's
//! first field, as on the Assets page) and removal. Both go through `web::service::identity_photos`, like the API.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::forms::PostForm;
use super::library::csrf_field_matches;
use super::{Page, UiError, view};
use crate::domain::IdentityId;
use crate::identity_photos::{Collection, Variety, Verdict};
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
    /// `ok`, `warn` or `blocked` (the vetting).
    pub verdict: &'static str,
    /// Why it is blocked or warned.
    pub reasons: Vec<String>,
    pub usable: bool,
}

/// The section of the edit page.
#[derive(Debug, Clone)]
pub(crate) struct PhotosSection {
    pub tiles: Vec<PhotoTile>,
    /// e.g. "4 photos agree (worst 0.31)".
    pub agreement: String,
    pub agree: bool,
    /// The set's vetting verdict: `ok`, `warn` or `blocked`.
    pub set_verdict: &'static str,
    /// e.g. "5 of 8 photos usable for training".
    pub set_line: String,
    /// e.g. "head-pose variety: some (yaw −12° to +9°) · lighting variety: low".
    pub variety: String,
    /// What is said of the set.
    pub set_reasons: Vec<String>,
    /// Why photos are not analysed (face models missing).
    pub note: Option<String>,
    /// Why the last upload was refused.
    pub error: Option<String>,
}

fn variety_word(v: Variety) -> &'static str {
    match v {
        Variety::Unknown => "not measured yet",
        Variety::Low => "low",
        Variety::Some => "some",
        Variety::Good => "good",
    }
}

impl PhotosSection {
    fn new(root: &str, c: &Collection, error: Option<String>) -> Self {
        let vet = c.vet();
        let tiles = c
            .photos
            .iter()
            .zip(&vet.photos)
            .map(|(p, v)| PhotoTile {
                id: p.record.id.clone(),
                name: p.record.file_name.clone(),
                url: view::media(root, &p.record.object_key),
                facts: p.facts(),
                size: format!("{}×{}", p.record.width, p.record.height),
                verdict: v.verdict.as_str(),
                reasons: v.reasons.clone(),
                usable: v.usable,
            })
            .collect();
        let s = &vet.summary;
        let degrees = |r: Option<[f64; 2]>| {
            r.map(|[lo, hi]| format!(" (yaw {lo:+.0}° to {hi:+.0}°)"))
                .unwrap_or_default()
        };
        Self {
            tiles,
            agreement: c.agreement.summary(),
            agree: c.agreement.ok(),
            set_verdict: vet.verdict.as_str(),
            set_line: format!(
                "{} of {} photos usable for training{}",
                vet.usable_photos,
                s.count,
                if vet.verdict == Verdict::Blocked {
                    ": training may not go ahead"
                } else {
                    ""
                }
            ),
            variety: format!(
                "head-pose variety: {}{} · lighting variety: {}",
                variety_word(s.head_pose.variety),
                degrees(s.head_pose.yaw),
                variety_word(s.lighting.variety)
            ),
            set_reasons: s.reasons.clone(),
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
