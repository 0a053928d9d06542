//! `/identities`: cards (trigger word, LoRA status, voice, default star, scene count, last test), the
//! digital-twin status card, New/Edit Identity with the guide's fields and live validation, Test (the flask),
//! set default and delete.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::forms::{Control, FieldErrs, FormData, FormField, PostForm, number, with_errors};
use super::view;
use super::{Layout, Page, UiError, ok, render};
use crate::domain::{BaseModel, Identity, LoraScale};
use crate::storage::db::{Conflict, IdentityRecord};
use crate::web::AppState;
use crate::web::service::identities as service;

/// One check of an identity test, for display.
#[derive(Debug, Clone)]
pub(crate) struct CheckView {
    name: String,
    ok: bool,
    detail: String,
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
                .map(|a| {
                    a.iter()
                        .map(|c| CheckView {
                            name: c["name"].as_str().unwrap_or("").to_string(),
                            ok: c["ok"].as_bool().unwrap_or(false),
                            detail: c["detail"].as_str().unwrap_or("").to_string(),
                        })
                        .collect()
                })
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
    default_source: String,
    recommendations: Vec<String>,
    count: u64,
    active: u64,
}

#[derive(Template)]
#[template(path = "identity_test.html")]
struct TestFragment {
    t: TestView,
}

#[derive(Template)]
#[template(path = "identity_form.html")]
struct IdentityFormPage {
    l: Layout,
    id: String,
    fields: Vec<FormField>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "identity_validate.html")]
struct ValidateFragment {
    errors: Vec<(&'static str, String)>,
}

/// The form's field names (also the API's), in order.
const FIELDS: [&str; 15] = [
    "name",
    "displayName",
    "triggerWord",
    "description",
    "loraUrl",
    "loraScale",
    "baseModel",
    "voiceId",
    "voiceModel",
    "voiceStability",
    "voiceSimilarity",
    "voiceStyle",
    "voiceSpeakerBoost",
    "headshotAssetId",
    "isActive",
];

/// The identity form's fields, filled from a stored identity (or the defaults of a new one).
async fn identity_fields(
    state: &AppState,
    r: Option<&IdentityRecord>,
) -> Result<Vec<FormField>, UiError> {
    let blank = Identity::new("", "", "");
    let i = r.map(|r| &r.identity).unwrap_or(&blank);
    let headshots = headshot_options(state).await?;
    let mut fields = profile_fields(i);
    fields.extend(voice_fields(i));
    fields.push(
        FormField::text(
            "headshotAssetId",
            "Headshot",
            r.and_then(|r| r.headshot_asset_id.clone())
                .unwrap_or_default(),
        )
        .control(Control::Select(headshots))
        .hint("Used in standard mode; upload headshots on the Assets page."),
    );
    if let Some(r) = r {
        fields.push(
            FormField::text("isActive", "Active", if r.is_active { "on" } else { "" })
                .control(Control::Checkbox),
        );
    }
    Ok(fields)
}

/// The headshot choices: none, then every uploaded headshot by its original name (or id).
async fn headshot_options(state: &AppState) -> Result<Vec<(String, String)>, UiError> {
    let mut headshots = vec![(String::new(), "None".to_string())];
    headshots.extend(
        state
            .storage
            .db
            .list_assets("headshot", "")
            .await?
            .into_iter()
            .map(|a| {
                let label = a.original_name.clone().unwrap_or_else(|| a.id.clone());
                (a.id, label)
            }),
    );
    Ok(headshots)
}

/// Who the identity is and its LoRA: name, display name, trigger word, description, LoRA URL, scale, base model.
fn profile_fields(i: &Identity) -> Vec<FormField> {
    vec![
        FormField::text("name", "Name", i.name.clone())
            .required()
            .hint("Unique identifier: lowercase letters, digits and '-', e.g. deven-primary."),
        FormField::text("displayName", "Display name", i.display_name.clone())
            .required()
            .hint("Friendly name shown in the UI, e.g. Deven Spear."),
        FormField::text("triggerWord", "Trigger word", i.trigger_word.clone())
            .required()
            .hint("Unique word that activates the LoRA in prompts, e.g. TOK_DEVEN."),
        FormField::text(
            "description",
            "Description",
            i.description.clone().unwrap_or_default(),
        )
        .control(Control::TextArea),
        FormField::text(
            "loraUrl",
            "LoRA URL",
            i.lora_url.clone().unwrap_or_default(),
        )
        .control(Control::Url)
        .hint("Full URL of the Flux LoRA .safetensors file; needed for digital twin mode."),
        FormField::text("loraScale", "LoRA scale", i.lora_scale.to_text()).hint(
            "Strength of the identity, 0.0–1.0 (0.95 recommended), or auto to pick by shot type.",
        ),
        FormField::text("baseModel", "Base model", i.base_model.as_str()).control(Control::Select(
            vec![
                ("flux-dev".into(), "flux-dev (quality)".into()),
                ("flux-schnell".into(), "flux-schnell (speed)".into()),
            ],
        )),
    ]
}

/// The voice: ElevenLabs voice id, model (the identity's own kept as a choice), stability, similarity, style, boost.
fn voice_fields(i: &Identity) -> Vec<FormField> {
    let mut models = vec![
        (
            "eleven_multilingual_v2".to_string(),
            "eleven_multilingual_v2 (quality)".to_string(),
        ),
        (
            "eleven_turbo_v2_5".to_string(),
            "eleven_turbo_v2_5 (faster)".to_string(),
        ),
    ];
    if !models.iter().any(|(m, _)| *m == i.voice_model) {
        models.push((i.voice_model.clone(), i.voice_model.clone()));
    }
    vec![
        FormField::text(
            "voiceId",
            "Voice ID",
            i.voice_id.clone().unwrap_or_default(),
        )
        .hint("Your ElevenLabs voice clone id (optional)."),
        FormField::text("voiceModel", "Voice model", i.voice_model.clone())
            .control(Control::Select(models)),
        FormField::text(
            "voiceStability",
            "Voice stability",
            i.voice_stability.to_string(),
        )
        .control(Control::Number("0.05"))
        .hint("0–1; 0.5 is balanced."),
        FormField::text(
            "voiceSimilarity",
            "Voice similarity",
            i.voice_similarity.to_string(),
        )
        .control(Control::Number("0.05"))
        .hint("0–1; 0.8 stays close to the original."),
        FormField::text("voiceStyle", "Voice style", i.voice_style.to_string())
            .control(Control::Number("0.05"))
            .hint("0–1; 0.2 is subtle."),
        FormField::text(
            "voiceSpeakerBoost",
            "Speaker boost",
            if i.voice_speaker_boost { "on" } else { "" },
        )
        .control(Control::Checkbox),
        FormField::text(
            "localVoice",
            "Offline voice",
            i.local_voice.clone().unwrap_or_default(),
        )
        .hint("The Piper voice for offline renders, e.g. en_US-joe-medium (optional; the default voice when empty)."),
    ]
}

fn refill(mut fields: Vec<FormField>, form: &FormData) -> Vec<FormField> {
    for f in &mut fields {
        f.value = if f.is_checkbox() {
            if form.checked(f.name) { "on" } else { "" }.to_string()
        } else {
            form.get(f.name).to_string()
        };
    }
    fields
}

/// The identity the form describes, validated, with its headshot; or every field's error.
async fn parse_identity(
    state: &AppState,
    form: &FormData,
    except_id: Option<&str>,
) -> Result<(Identity, Option<String>), (StatusCode, FieldErrs)> {
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
    let headshot = form.opt("headshotAssetId");
    if let Some(h) = &headshot
        && db.asset_object_key(h).await.map_err(internal)?.is_none()
    {
        errors.add("headshotAssetId", "no such asset");
    }
    let Some(identity) = identity.filter(|_| errors.is_empty()) else {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, errors));
    };
    match db
        .identity_conflict(&identity, except_id)
        .await
        .map_err(internal)?
    {
        None => Ok((identity, headshot)),
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
                id: r.id.clone(),
                name: i.name.clone(),
                display_name: i.display_name.clone(),
                trigger_word: i.trigger_word.clone(),
                description: i.description.clone().unwrap_or_default(),
                lora: match (&i.lora_url, &r.last_test) {
                    (None, _) => "no LoRA (standard mode only)".into(),
                    (Some(_), None) => "LoRA set, not tested yet".into(),
                    (Some(_), Some((true, _, _))) => "LoRA checked".into(),
                    (Some(_), Some((false, _, _))) => "LoRA set, last test failed".into(),
                },
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
        .unwrap_or_else(|| "none".to_string());
    ok(&IdentitiesPage {
        l: page.layout("Identities", "identities"),
        cards,
        fal: status.fal_key_configured,
        twin_available: status.digital_twin_available,
        default_identity,
        default_source: status.default_identity_source,
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
    })
}

/// Creates an identity; the form comes back with the errors next to the fields otherwise.
pub(crate) async fn create(
    State(state): State<AppState>,
    page: Page,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let created = match parse_identity(&state, &form, None).await {
        Ok((identity, headshot)) => insert(&state, &identity, headshot.as_deref()).await?,
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
            },
        ),
    }
}

/// Inserts a new identity; a name or trigger word taken meanwhile (the database's unique constraint decides,
/// so a concurrent twin never overwrites it) comes back as a 409 next to the field.
async fn insert(
    state: &AppState,
    identity: &Identity,
    headshot: Option<&str>,
) -> Result<Result<String, (StatusCode, FieldErrs)>, UiError> {
    match state.storage.db.insert_identity(identity, headshot).await {
        Ok(id) => Ok(Ok(id)),
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

async fn record(state: &AppState, id: &str) -> Result<IdentityRecord, UiError> {
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
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let r = record(&state, &id).await?;
    ok(&IdentityFormPage {
        l: page.layout(format!("Edit {}", r.identity.display_name), "identities"),
        id: r.id.clone(),
        fields: identity_fields(&state, Some(&r)).await?,
        error: None,
    })
}

/// Saves an identity.
pub(crate) async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let r = record(&state, &id).await?;
    match parse_identity(&state, &form, Some(&id)).await {
        Ok((identity, headshot)) => {
            state
                .storage
                .db
                .update_identity(
                    &id,
                    &identity,
                    headshot.as_deref(),
                    form.checked("isActive"),
                )
                .await?;
            Ok(page.redirect(&format!("identities?ok=identity-saved#identity-{id}")))
        }
        Err((status, errors)) => render(
            status,
            &IdentityFormPage {
                l: page.layout(format!("Edit {}", r.identity.display_name), "identities"),
                id: r.id.clone(),
                fields: with_errors(
                    refill(identity_fields(&state, Some(&r)).await?, &form),
                    &errors,
                ),
                error: Some("The identity was not saved: fix the fields marked below.".into()),
            },
        ),
    }
}

/// Live validation (htmx): every field's current error as out-of-band swaps; nothing is stored.
pub(crate) async fn validate(
    State(state): State<AppState>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let except = form.opt("id");
    let errors = match parse_identity(&state, &form, except.as_deref()).await {
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
    Path(id): Path<String>,
    _form: PostForm,
) -> Result<Response, UiError> {
    let report = service::test(&state, &id, false).await?;
    if !page.htmx {
        return Ok(page.redirect(&format!("identities?ok=identity-tested#identity-{id}")));
    }
    let value = serde_json::to_value(&report).unwrap_or(Value::Null);
    ok(&TestFragment {
        t: TestView::from_json(&value, crate::storage::now_ms()),
    })
}

/// Makes the identity the default.
pub(crate) async fn set_default(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
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
    Path(id): Path<String>,
    _form: PostForm,
) -> Result<Response, UiError> {
    if !state.storage.db.delete_identity(&id).await? {
        return Err(UiError::not_found("identity"));
    }
    Ok(page.redirect("identities?ok=identity-deleted"))
}
