//! The digital twin on the identity's edit page: the consent on record and a form to record it, the usable photo
//! count with the training price, the "Train my digital twin" button, the identity's training runs, the LoRA in
//! use and the newest training's verdict. While a training runs the section names its event stream, which
//! `app.js` follows (queue position, Fal's latest line) and at its end swaps the section in anew. Both forms go
//! through `web::service::training`, like the API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::forms::PostForm;
use super::{Page, UiError, view};
use crate::domain::IdentityId;
use crate::identity_photos::Photos;
use crate::training::consent::ConsentInput;
use crate::training::{DEFAULT_STEPS, MIN_PHOTOS, TrainOptions, usable_photos, verdict};
use crate::web::AppState;
use crate::web::service::training as service;

/// One training run, in words.
#[derive(Debug, Clone)]
pub(crate) struct TrainingLine {
    pub status: String,
    pub text: String,
}

/// The section of the edit page.
#[derive(Debug, Clone)]
pub(crate) struct TwinSection {
    /// Who consented, when and how; `None` without consent.
    pub consent: Option<String>,
    /// Usable photos.
    pub usable: usize,
    /// The fewest usable photos training accepts.
    pub needed: usize,
    /// The price of a training at the default steps.
    pub estimate: String,
    /// Newest first.
    pub trainings: Vec<TrainingLine>,
    /// Why the last consent or training request was refused.
    pub error: Option<String>,
    /// Uploaded consent statements and recordings (asset id, name), to link to the record.
    pub consent_files: Vec<(String, String)>,
    /// The event stream of the newest training while it runs (a path under the site's root).
    pub live: Option<String>,
    /// A training of this identity runs in this process (Train would be refused); one that another process
    /// left running does not count: training anew takes over from it.
    pub busy: bool,
    /// The newest training's verdict when it succeeded, and whether it looks like the person.
    pub verdict: Option<(String, bool)>,
    /// The identity's LoRA as the form holds it: URL, uploaded asset id, base model.
    pub lora: Option<TwinLora>,
}

/// The LoRA an identity renders with (set by a training, or by hand).
#[derive(Debug, Clone)]
pub(crate) struct TwinLora {
    /// Its URL (`""` when it is an uploaded asset).
    pub url: String,
    /// The uploaded asset's id (`""` when it is a URL).
    pub asset_id: String,
    /// The base model.
    pub base_model: String,
}

fn training_line(r: &crate::storage::db::TrainingRow) -> TrainingLine {
    let mut text = format!(
        "{} · {} photos, {} steps · {}",
        view::time(r.created_at),
        r.photo_count,
        r.steps,
        r.status
    );
    if r.cached {
        text.push_str(" (reused an earlier training, $0)");
    } else if r.cost_usd > 0.0 {
        text.push_str(&format!(" · {}", view::usd(r.cost_usd)));
    }
    if let Some(d) = r.score {
        text.push_str(&format!(" · test image distance {d:.2}"));
    }
    if let Some(e) = &r.error {
        text.push_str(&format!(" · {e}"));
    }
    TrainingLine {
        status: r.status.clone(),
        text,
    }
}

/// The section for identity `id`, with the refusal of a request when there was one.
pub(crate) async fn section(
    state: &AppState,
    id: &IdentityId,
    error: Option<String>,
) -> Result<TwinSection, UiError> {
    let consent = service::consent_of(state, id).await?.map(|c| {
        let how: Vec<String> = [
            c.note.clone(),
            c.asset_id
                .as_ref()
                .map(|a| format!("statement stored as asset {a}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!(
            "{}, {} — {}",
            c.consented_by,
            view::time(c.consented_at),
            how.join("; ")
        )
    });
    let usable = match Photos::new(&state.storage, &state.config.face)
        .list(id)
        .await
    {
        Ok(c) => usable_photos(&c).len(),
        Err(_) => 0,
    };
    let trainings = service::trainings(state, id).await?;
    let newest = trainings.first();
    let live = newest
        .filter(|t| t.status == "running")
        .map(|t| format!("api/identities/{id}/trainings/{}/events", t.id));
    let threshold = state.config.face.threshold;
    let judged = newest.filter(|t| t.status == "succeeded").map(|t| {
        let good = t.score.is_some_and(|d| d <= threshold);
        (verdict(t.score, threshold, None), good)
    });
    let consent_files = state
        .storage
        .db
        .list_assets("consent", "")
        .await?
        .into_iter()
        .map(|a| {
            let name = a.original_name.clone().unwrap_or_else(|| a.id.to_string());
            (a.id.into_string(), name)
        })
        .collect();
    Ok(TwinSection {
        consent_files,
        consent,
        usable,
        needed: MIN_PHOTOS,
        estimate: view::usd(state.config.cloud.prices.lora_training(DEFAULT_STEPS)),
        trainings: trainings.iter().map(training_line).collect(),
        error,
        busy: live.is_some()
            && state
                .storage
                .db
                .training_running_in(id, &crate::worker::owner_id())
                .await?,
        live,
        verdict: judged,
        lora: lora_of(state, id).await?,
    })
}

/// The identity's LoRA, `None` when it has none.
async fn lora_of(state: &AppState, id: &IdentityId) -> Result<Option<TwinLora>, UiError> {
    let Some(r) = state.storage.db.get_identity(id).await? else {
        return Ok(None);
    };
    if r.identity.lora_url.is_none() && r.lora_asset_id.is_none() {
        return Ok(None);
    }
    Ok(Some(TwinLora {
        url: r.identity.lora_url.clone().unwrap_or_default(),
        asset_id: r.lora_asset_id.map(String::from).unwrap_or_default(),
        base_model: r.identity.base_model.as_str().to_string(),
    }))
}

/// The edit page again with the refusal, or the error page for a missing identity.
async fn refused(
    state: &AppState,
    page: &Page,
    id: &IdentityId,
    e: crate::web::error::ApiError,
) -> Result<Response, UiError> {
    if e.status == StatusCode::NOT_FOUND {
        return Err(e.into());
    }
    let message = view::sentence(&e.message);
    super::identities::edit_form_with(state, page, id, e.status, None, Some(message)).await
}

/// Records the consent (who, and how it was given).
pub(crate) async fn consent(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let input = ConsentInput {
        by: form.get("by").to_string(),
        note: form.opt("note"),
        asset_id: form.opt("assetId"),
    };
    match service::set_consent(&state, &id, &input).await {
        Ok(_) => Ok(page.redirect(&format!("identities/{id}/edit?ok=consent-saved#twin"))),
        Err(e) => refused(&state, &page, &id, e).await,
    }
}

/// Starts a training at the default settings (the button shows its price).
pub(crate) async fn train(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
    _form: PostForm,
) -> Result<Response, UiError> {
    match service::start(&state, &id, TrainOptions::default()).await {
        Ok(_) => Ok(page.redirect(&format!("identities/{id}/edit?ok=training-started#twin"))),
        Err(e) => refused(&state, &page, &id, e).await,
    }
}
