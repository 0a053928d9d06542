//! `/identities`: cards (trigger word, LoRA status, voice, default star, scene count, last test), the
//! digital-twin status card, New/Edit Identity with the guide's fields and live validation, Test (the flask),
//! set default and delete.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::forms::{FieldErrs, FormData, FormField, PostForm, number, with_errors};
use super::identity_help;
use super::identity_photos::{self, PhotosSection};
use super::view;
use super::{Layout, Page, UiError, ok, render};
use crate::domain::{AssetId, IdentityId};
use crate::domain::{BaseModel, Identity, LoraScale};
use crate::storage::db::{Conflict, IdentityRecord};
use crate::web::AppState;
use crate::web::service::identities as service;
use crate::web::service::identity_photos as photos_service;

use super::identity_fields::{FIELDS, identity_fields, refill};

/// One check of an identity test, for display.
#[derive(Debug, Clone)]
pub(crate) struct CheckView {
    /// Stable id (`loraReachable`), kept in `data-check`.
    name: String,
    /// What it checks, in words.
    label: String,
    ok: bool,
    /// The detail as one readable line.
    detail: String,
    /// The raw detail when it says more than `detail` (folded away), else empty.
    raw: String,
    /// The guide's Troubleshooting entry for a failed check.
    help: Option<identity_help::Help>,
}

impl CheckView {
    /// From one stored check (`{name, label?, ok, detail}`).
    fn from_json(c: &Value) -> Self {
        let name = c["name"].as_str().unwrap_or("").to_string();
        let ok = c["ok"].as_bool().unwrap_or(false);
        let raw = c["detail"].as_str().unwrap_or("").to_string();
        let detail = identity_help::summary(&raw);
        Self {
            label: c["label"]
                .as_str()
                .unwrap_or_else(|| crate::identity_check::check_label(&name))
                .to_string(),
            help: if ok {
                None
            } else {
                identity_help::for_check(&name)
            },
            raw: if raw == detail { String::new() } else { raw },
            detail,
            name,
            ok,
        }
    }
}

/// The LoRA header report, for display.
#[derive(Debug, Clone)]
pub(crate) struct LoraView {
    family: String,
    compatible: bool,
    convention: String,
    rank: String,
    trigger_found: &'static str,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// An identity test result (fresh, or the one stored on the identity).
#[derive(Debug, Clone)]
pub(crate) struct TestView {
    ok: bool,
    at: String,
    checks: Vec<CheckView>,
    lora: Option<LoraView>,
}

impl TestView {
    /// From the report's JSON (`{ok, checks, lora}`) tested at `at` (epoch ms).
    fn from_json(result: &Value, at: i64) -> Self {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let lora = result
            .get("lora")
            .filter(|l| l.is_object())
            .map(|l| LoraView {
                family: l["family"].as_str().unwrap_or("unknown").to_string(),
                compatible: l["compatible"].as_bool().unwrap_or(false),
                convention: l["convention"].as_str().unwrap_or("").to_string(),
                rank: l["rank"]
                    .as_u64()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                trigger_found: match l["triggerWordFound"].as_bool() {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown (no training captions in the file)",
                },
                errors: strings(&l["errors"]),
                warnings: strings(&l["warnings"]),
            });
        Self {
            ok: result["ok"].as_bool().unwrap_or(false),
            at: view::time(at),
            checks: result["checks"]
                .as_array()
                .map(|a| a.iter().map(CheckView::from_json).collect())
                .unwrap_or_default(),
            lora,
        }
    }
}

/// An identity card.
#[derive(Debug, Clone)]
struct IdentityCard {
    id: String,
    name: String,
    display_name: String,
    trigger_word: String,
    description: String,
    lora: String,
    scale: String,
    base_model: &'static str,
    voice: String,
    voice_model: String,
    is_default: bool,
    is_active: bool,
    scenes: i64,
    headshot: String,
    test: Option<TestView>,
}

#[derive(Template)]
#[template(path = "identities.html")]
struct IdentitiesPage {
    l: Layout,
    cards: Vec<IdentityCard>,
    fal: bool,
    twin_available: bool,
    default_identity: String,
    default_source: &'static str,
    /// The guide's entry when digital twin mode is not available.
    twin_help: Option<identity_help::Help>,
    recommendations: Vec<String>,
    count: u64,
    active: u64,
}

#[derive(Template)]
#[template(path = "identity_test.html")]
struct TestFragment {
    t: TestView,
    /// The identity, whose card's LoRA summary the fragment replaces too (htmx out-of-band swap).
    id: String,
    /// The card's LoRA summary after this test.
    lora: &'static str,
}

/// The card's LoRA line: none, set but untested (never, or since a checked field changed), checked or failed.
fn lora_summary(r: &IdentityRecord) -> &'static str {
    let has_lora = r.identity.lora_url.is_some() || r.lora_asset_id.is_some();
    match (has_lora, &r.last_test) {
        (false, _) => "no LoRA (standard mode only)",
        (true, None) => "LoRA set, not tested yet",
        (true, Some((true, _, _))) => "LoRA checked",
        (true, Some((false, _, _))) => "LoRA set, last test failed",
    }
}

#[derive(Template)]
#[template(path = "identity_form.html")]
struct IdentityFormPage {
    l: Layout,
    id: String,
    fields: Vec<FormField>,
    error: Option<String>,
    /// The reference photos (an existing identity only).
    photos: Option<PhotosSection>,
    /// Consent and training (an existing identity only).
    twin: Option<super::identity_twin::TwinSection>,
}

#[derive(Template)]
#[template(path = "identity_validate.html")]
struct ValidateFragment {
    errors: Vec<(&'static str, String)>,
}

/// The identity the form describes, validated, with its headshot and uploaded LoRA; or every field's error.
async fn parse_identity(
    state: &AppState,
    form: &FormData,
    except_id: Option<&IdentityId>,
) -> Result<(Identity, Option<AssetId>, Option<AssetId>), (StatusCode, FieldErrs)> {
    let mut errors = FieldErrs::default();
    let mut i = Identity::new(
        form.get("name"),
        form.get("displayName"),
        form.get("triggerWord"),
    );
    i.description = form.opt("description");
    i.lora_url = form.opt("loraUrl");
    if let Some(s) = form.opt("loraScale") {
        match LoraScale::parse(&s) {
            Some(v) => i.lora_scale = v,
            None => errors.add("loraScale", "must be a number from 0.0 to 1.0 or \"auto\""),
        }
    }
    match BaseModel::parse(form.get("baseModel")) {
        Some(b) => i.base_model = b,
        None => errors.add("baseModel", "must be flux-dev or flux-schnell"),
    }
    i.voice_id = form.opt("voiceId");
    i.local_voice = form.opt("localVoice");
    if let Some(m) = form.opt("voiceModel") {
        i.voice_model = m;
    }
    for (field, slot) in [
        ("voiceStability", &mut i.voice_stability),
        ("voiceSimilarity", &mut i.voice_similarity),
        ("voiceStyle", &mut i.voice_style),
    ] {
        if let Some(v) = number(form, field, &mut errors) {
            *slot = v;
        }
    }
    i.voice_speaker_boost = form.checked("voiceSpeakerBoost");
    let identity = errors.take(i.validated());
    let db = &state.storage.db;
    let internal = FieldErrs::internal;
    let headshot = form.opt("headshotAssetId").map(AssetId::from);
    if let Some(h) = &headshot
        && db.asset_object_key(h).await.map_err(internal)?.is_none()
    {
        errors.add("headshotAssetId", "no such asset");
    }
    let lora = form.opt("loraAssetId").map(AssetId::from);
    if let Some(l) = &lora {
        match db.get_asset(l).await.map_err(internal)? {
            Some(a) if a.kind == "lora" => {}
            _ => errors.add("loraAssetId", "no such LoRA asset"),
        }
        if form.opt("loraUrl").is_some() {
            errors.add(
                "loraAssetId",
                "choose either a LoRA URL or an uploaded LoRA, not both",
            );
        }
    }
    let Some(identity) = identity.filter(|_| errors.is_empty()) else {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, errors));
    };
    match db
        .identity_conflict(&identity, except_id)
        .await
        .map_err(internal)?
    {
        None => Ok((identity, headshot, lora)),
        Some(Conflict::Name) => {
            errors.add("name", "an identity with this name exists");
            Err((StatusCode::CONFLICT, errors))
        }
        Some(Conflict::TriggerWord) => {
            errors.add("triggerWord", "an identity with this trigger word exists");
            Err((StatusCode::CONFLICT, errors))
        }
    }
}

/// The identity cards and the digital twin status.
pub(crate) async fn list_page(
    State(state): State<AppState>,
    page: Page,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let records = db.list_identities().await?;
    let counts = db.scene_counts_by_identity().await?;
    let headshots = db.list_assets("headshot", "").await?;
    let status = service::twin_status(&state).await?;
    let cards = records
        .iter()
        .map(|r| {
            let i = &r.identity;
            IdentityCard {
                id: r.id.to_string(),
                name: i.name.clone(),
                display_name: i.display_name.clone(),
                trigger_word: i.trigger_word.clone(),
                description: i.description.clone().unwrap_or_default(),
                lora: lora_summary(r).into(),
                scale: i.lora_scale.to_text(),
                base_model: i.base_model.as_str(),
                voice: i.voice_id.clone().unwrap_or_else(|| "default voice".into()),
                voice_model: i.voice_model.clone(),
                is_default: r.is_default,
                is_active: r.is_active,
                scenes: counts
                    .iter()
                    .find(|(id, _)| *id == r.id)
                    .map(|(_, n)| *n)
                    .unwrap_or(0),
                headshot: r
                    .headshot_asset_id
                    .as_ref()
                    .and_then(|h| headshots.iter().find(|a| &a.id == h))
                    .map(|a| view::media(&page.root, &a.object_key))
                    .unwrap_or_default(),
                test: r.last_test.as_ref().map(|(_, at, result)| {
                    TestView::from_json(&serde_json::from_str(result).unwrap_or(Value::Null), *at)
                }),
            }
        })
        .collect();
    let default_identity = status
        .default_identity
        .map(|d| d.name)
        .unwrap_or_else(|| "none chosen yet".to_string());
    ok(&IdentitiesPage {
        l: page.layout("Identities", "identities"),
        cards,
        fal: status.fal_key_configured,
        twin_available: status.digital_twin_available,
        default_identity,
        default_source: identity_help::default_source(&status.default_identity_source),
        twin_help: (!status.digital_twin_available).then(identity_help::twin_unavailable),
        recommendations: status.recommendations,
        count: status.identities.count as u64,
        active: status.identities.active as u64,
    })
}

/// The New Identity form.
pub(crate) async fn new_page(
    State(state): State<AppState>,
    page: Page,
) -> Result<Response, UiError> {
    ok(&IdentityFormPage {
        l: page.layout("New identity", "identities"),
        id: String::new(),
        fields: identity_fields(&state, None).await?,
        error: None,
        photos: None,
        twin: None,
    })
}

/// Creates an identity; the form comes back with the errors next to the fields otherwise.
pub(crate) async fn create(
    State(state): State<AppState>,
    page: Page,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let created = match parse_identity(&state, &form, None).await {
        Ok((identity, headshot, lora)) => {
            insert(&state, &identity, headshot.as_ref(), lora.as_ref()).await?
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(id) => Ok(page.redirect(&format!("identities?ok=identity-created#identity-{id}"))),
        Err((status, errors)) => render(
            status,
            &IdentityFormPage {
                l: page.layout("New identity", "identities"),
                id: String::new(),
                fields: with_errors(refill(identity_fields(&state, None).await?, &form), &errors),
                error: Some("The identity was not created: fix the fields marked below.".into()),
                photos: None,
                twin: None,
            },
        ),
    }
}

/// Inserts a new identity; a name or trigger word taken meanwhile (the database's unique constraint decides,
/// so a concurrent twin never overwrites it) comes back as a 409 next to the field.
async fn insert(
    state: &AppState,
    identity: &Identity,
    headshot: Option<&AssetId>,
    lora: Option<&AssetId>,
) -> Result<Result<IdentityId, (StatusCode, FieldErrs)>, UiError> {
    match state.storage.db.insert_identity(identity, headshot).await {
        Ok(id) => {
            if lora.is_some() {
                state.storage.db.set_identity_lora_asset(&id, lora).await?;
            }
            photos_service::headshot_joins(state, &id, headshot).await;
            Ok(Ok(id))
        }
        Err(e) if e.is_unique_on("trigger_word") || e.is_unique_on("name") => {
            let mut errors = FieldErrs::default();
            if e.is_unique_on("trigger_word") {
                errors.add("triggerWord", "an identity with this trigger word exists");
            } else {
                errors.add("name", "an identity with this name exists");
            }
            Ok(Err((StatusCode::CONFLICT, errors)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn record(state: &AppState, id: &IdentityId) -> Result<IdentityRecord, UiError> {
    state
        .storage
        .db
        .get_identity(id)
        .await?
        .ok_or_else(|| UiError::not_found("identity"))
}

/// The Edit Identity form.
pub(crate) async fn edit_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
) -> Result<Response, UiError> {
    edit_form(&state, &page, &id, StatusCode::OK, None).await
}

/// The Edit Identity form with its reference photos, answered with `status` (and why a photo upload was
/// refused, when one was).
pub(crate) async fn edit_form(
    state: &AppState,
    page: &Page,
    id: &IdentityId,
    status: StatusCode,
    photo_error: Option<String>,
) -> Result<Response, UiError> {
    edit_form_with(state, page, id, status, photo_error, None).await
}

/// [`edit_form`] with why a consent or training request was refused, when one was.
pub(crate) async fn edit_form_with(
    state: &AppState,
    page: &Page,
    id: &IdentityId,
    status: StatusCode,
    photo_error: Option<String>,
    twin_error: Option<String>,
) -> Result<Response, UiError> {
    let r = record(state, id).await?;
    render(
        status,
        &IdentityFormPage {
            l: page.layout(format!("Edit {}", r.identity.display_name), "identities"),
            id: r.id.to_string(),
            fields: identity_fields(state, Some(&r)).await?,
            error: None,
            photos: Some(identity_photos::section(state, page, id, photo_error).await?),
            twin: Some(super::identity_twin::section(state, id, twin_error).await?),
        },
    )
}

/// Saves an identity.
pub(crate) async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let r = record(&state, &id).await?;
    match parse_identity(&state, &form, Some(&id)).await {
        Ok((identity, headshot, lora)) => {
            let db = &state.storage.db;
            db.update_identity(&id, &identity, headshot.as_ref(), form.checked("isActive"))
                .await?;
            db.set_identity_lora_asset(&id, lora.as_ref()).await?;
            photos_service::headshot_joins(&state, &id, headshot.as_ref()).await;
            Ok(page.redirect(&format!("identities?ok=identity-saved#identity-{id}")))
        }
        Err((status, errors)) => render(
            status,
            &IdentityFormPage {
                l: page.layout(format!("Edit {}", r.identity.display_name), "identities"),
                id: r.id.to_string(),
                fields: with_errors(
                    refill(identity_fields(&state, Some(&r)).await?, &form),
                    &errors,
                ),
                error: Some("The identity was not saved: fix the fields marked below.".into()),
                photos: Some(identity_photos::section(&state, &page, &id, None).await?),
                twin: Some(super::identity_twin::section(&state, &id, None).await?),
            },
        ),
    }
}

/// Live validation (htmx): every field's current error as out-of-band swaps; nothing is stored.
pub(crate) async fn validate(
    State(state): State<AppState>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let except = form.opt("id").map(IdentityId::from);
    let errors = match parse_identity(&state, &form, except.as_ref()).await {
        Ok(_) => FieldErrs::default(),
        Err((_, e)) => e,
    };
    ok(&ValidateFragment {
        errors: FIELDS
            .iter()
            .map(|f| (*f, errors.get(f).unwrap_or("").to_string()))
            .collect(),
    })
}

/// Runs the identity test (shared with the API): every check and the LoRA report. htmx gets the result fragment;
/// a plain form post returns to the cards, which show the stored result.
pub(crate) async fn test(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
    _form: PostForm,
) -> Result<Response, UiError> {
    let report = service::test(&state, &id, false).await?;
    if !page.htmx {
        return Ok(page.redirect(&format!("identities?ok=identity-tested#identity-{id}")));
    }
    let value = serde_json::to_value(&report).unwrap_or(Value::Null);
    let record = state.storage.db.get_identity(&id).await?;
    ok(&TestFragment {
        t: TestView::from_json(&value, crate::storage::now_ms()),
        lora: record.as_ref().map_or("", lora_summary),
        id: id.to_string(),
    })
}

/// Makes the identity the default.
pub(crate) async fn set_default(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
    _form: PostForm,
) -> Result<Response, UiError> {
    if !state.storage.db.set_default_identity(&id).await? {
        return Err(UiError::not_found("identity"));
    }
    Ok(page.redirect(&format!("identities?ok=default-set#identity-{id}")))
}

/// Deletes an identity (its scenes fall back to the project's default identity).
pub(crate) async fn delete(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<IdentityId>,
    _form: PostForm,
) -> Result<Response, UiError> {
    if !state.storage.db.delete_identity(&id).await? {
        return Err(UiError::not_found("identity"));
    }
    Ok(page.redirect("identities?ok=identity-deleted"))
}
