//! The add/edit scene form: its fields, parsing and validation, and the handlers that show and save it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{facts, project, scene};
use crate::domain::{Animation, GenerationMode, Scene};
use crate::domain::{AssetId, IdentityId, ProjectId, SceneId};
use crate::storage::db::{ProjectRecord, SceneRecord};
use crate::web::AppState;
use crate::web::ui::forms::{
    Control, FieldErrs, FormData, FormField, PostForm, number, with_errors,
};
use crate::web::ui::{Layout, Page, UiError, ok, render};

/// The scene form's fields, filled from a stored scene (or blank).
async fn scene_fields(
    state: &AppState,
    s: Option<&SceneRecord>,
) -> Result<Vec<FormField>, UiError> {
    let identities = identity_options(state).await?;
    let headshots = asset_options(
        state,
        "headshot",
        "None (the identity's headshot, or a portrait)",
    )
    .await?;
    let mut fields = description_fields(s.map(|s| &s.scene));
    fields.extend(choice_fields(s, identities, headshots));
    fields.extend(media_fields(state, s).await?);
    Ok(fields)
}

/// The uploaded recording spoken instead of TTS, and the background image behind the headshot.
async fn media_fields(
    state: &AppState,
    s: Option<&SceneRecord>,
) -> Result<Vec<FormField>, UiError> {
    let recordings =
        asset_options(state, "audio", "None (speech from the identity's voice)").await?;
    let backgrounds = asset_options(state, "background", "None").await?;
    let id = |a: Option<&AssetId>| a.map(|a| a.to_string()).unwrap_or_default();
    Ok(vec![
        FormField::text(
            "speechAssetId",
            "Recording",
            id(s.and_then(|s| s.speech_asset_id.as_ref())),
        )
        .control(Control::Select(recordings))
        .hint(
            "An uploaded audio file spoken instead of text-to-speech ($0). Captions come from the dialogue: \
             their word timings are estimated over the recording's length.",
        ),
        FormField::text(
            "backgroundAssetId",
            "Background",
            id(s.and_then(|s| s.background_asset_id.as_ref())),
        )
        .control(Control::Select(backgrounds))
        .hint(
            "Standard mode puts the framed headshot over this image; digital twin mode cannot use it \
             (the environment comes from the prompt).",
        ),
    ])
}

/// The identity choices: the project default, then every identity as "Display name (name)".
async fn identity_options(state: &AppState) -> Result<Vec<(String, String)>, UiError> {
    let mut identities = vec![(String::new(), "Project default".to_string())];
    identities.extend(
        state
            .storage
            .db
            .list_identities()
            .await?
            .into_iter()
            .map(|i| {
                (
                    i.id.into_string(),
                    format!("{} ({})", i.identity.display_name, i.identity.name),
                )
            }),
    );
    Ok(identities)
}

/// The choices of assets of `kind`: `none`, then every such asset as "folder/original name" (or its id).
async fn asset_options(
    state: &AppState,
    kind: &str,
    none: &str,
) -> Result<Vec<(String, String)>, UiError> {
    let mut options = vec![(String::new(), none.to_string())];
    options.extend(
        state
            .storage
            .db
            .list_assets(kind, "")
            .await?
            .into_iter()
            .map(|a| {
                let label = a.original_name.clone().unwrap_or_else(|| a.id.to_string());
                let label = if a.folder.is_empty() {
                    label
                } else {
                    format!("{}/{label}", a.folder)
                };
                (a.id.into_string(), label)
            }),
    );
    Ok(options)
}

/// What the scene says and shows: name, dialogue, environment, wardrobe, lighting, camera, movement, duration.
fn description_fields(sc: Option<&Scene>) -> Vec<FormField> {
    let text = |f: fn(&Scene) -> Option<String>| sc.and_then(f).unwrap_or_default();
    vec![
        FormField::text(
            "name",
            "Name",
            sc.map(|s| s.name.clone()).unwrap_or_default(),
        )
        .required()
        .hint("Unique in the project, e.g. welcome."),
        FormField::text(
            "dialogue",
            "Dialogue",
            sc.map(|s| s.dialogue.clone()).unwrap_or_default(),
        )
        .control(Control::TextArea)
        .required()
        .hint("What the person says. The speech decides the scene's length."),
        FormField::text(
            "environment",
            "Environment",
            text(|s| s.environment.clone()),
        )
        .hint("Where it takes place, e.g. modern office with natural lighting."),
        FormField::text("wardrobe", "Wardrobe", text(|s| s.wardrobe.clone()))
            .hint("What the person wears, e.g. navy blazer."),
        FormField::text(
            "moodLighting",
            "Mood lighting",
            text(|s| s.mood_lighting.clone()),
        )
        .hint("e.g. warm golden hour."),
        FormField::text("camera", "Camera", text(|s| s.camera.clone()))
            .hint("close-up, medium shot or wide shot (also picks the LoRA scale on auto)."),
        FormField::text("movement", "Movement", text(|s| s.movement.clone()))
            .hint("e.g. subtle head movements, static, pan left, zoom out."),
        FormField::text(
            "targetDuration",
            "Target duration (seconds)",
            sc.and_then(|s| s.target_duration)
                .map(|d| d.to_string())
                .unwrap_or_default(),
        )
        .control(Control::Number("0.1"))
        .hint("Advisory, 1–300 s: a warning is logged when the speech differs by more than 2 s."),
    ]
}

/// How the scene is made: identity, headshot, generation mode and animation.
fn choice_fields(
    s: Option<&SceneRecord>,
    identities: Vec<(String, String)>,
    headshots: Vec<(String, String)>,
) -> Vec<FormField> {
    let sc = s.map(|s| &s.scene);
    vec![
        FormField::text(
            "identityId",
            "Identity",
            s.and_then(|s| s.identity_id.clone()).unwrap_or_default(),
        )
        .control(Control::Select(identities)),
        FormField::text(
            "headshotAssetId",
            "Headshot",
            s.and_then(|s| s.headshot_asset_id.clone())
                .unwrap_or_default(),
        )
        .control(Control::Select(headshots))
        .hint("Upload headshots on the Assets page."),
        FormField::text(
            "generationMode",
            "Generation mode",
            sc.map(|s| s.generation_mode.as_str()).unwrap_or("auto"),
        )
        .control(Control::Select(vec![
            (
                "auto".into(),
                "Auto: digital twin when available, else standard".into(),
            ),
            ("standard".into(), "Standard: headshot or portrait".into()),
            (
                "digital-twin".into(),
                "Digital twin: LoRA-generated, identity-locked".into(),
            ),
        ])),
        FormField::text(
            "animation",
            "Animation",
            sc.map(|s| s.animation.as_str()).unwrap_or("standard"),
        )
        .control(Control::Select(vec![
            (
                "standard".into(),
                "Standard: image-to-video, then lip-sync".into(),
            ),
            (
                "fast".into(),
                "Fast: one-step talking avatar (needs FAL_KEY)".into(),
            ),
        ])),
    ]
}

#[derive(Template)]
#[template(path = "scene_form.html")]
struct SceneFormPage {
    l: Layout,
    project_id: String,
    project_name: String,
    scene_id: String,
    action: String,
    fields: Vec<FormField>,
    error: Option<String>,
    /// The speech length beside the target duration (see `facts.rs`), and whether it is far off.
    speech: (String, bool),
    /// Why digital twin cannot work for this scene; shown while the mode says digital twin.
    twin_warning: Option<String>,
}

impl SceneFormPage {
    /// Fills the speech line and the digital-twin warning for scene `s` (as stored, or as submitted in `form`).
    async fn with_facts(
        mut self,
        state: &AppState,
        p: &ProjectRecord,
        s: Option<&SceneRecord>,
        form: Option<&FormData>,
    ) -> Result<Self, UiError> {
        self.twin_warning = facts::twin_unavailable(state, p, s).await?;
        self.speech = match (form, s) {
            (Some(form), _) => {
                let target = form.get("targetDuration").trim().parse().ok();
                facts::speech_line(form.get("dialogue"), target, None)
            }
            (None, Some(s)) => {
                let current = !state
                    .runs
                    .freshness(p, std::slice::from_ref(s))
                    .await?
                    .scene_out_of_date(s);
                let f = facts::scene_facts(&state.storage.db, s, current).await?;
                (f.speech, f.speech_off)
            }
            (None, None) => Default::default(),
        };
        Ok(self)
    }
}

/// A validated scene and its references.
struct ParsedScene {
    scene: Scene,
    identity_id: Option<IdentityId>,
    headshot: Option<AssetId>,
    /// Recording used as speech.
    speech: Option<AssetId>,
    /// Background image.
    background: Option<AssetId>,
}

/// The asset chosen in `field`, noted in `errors` when it is unknown or not of `kind`.
async fn media_choice(
    state: &AppState,
    form: &FormData,
    field: &'static str,
    kind: &str,
    errors: &mut FieldErrs,
) -> Result<Option<AssetId>, (StatusCode, FieldErrs)> {
    let Some(id) = form.opt(field).map(AssetId::from) else {
        return Ok(None);
    };
    match state.storage.db.get_asset(&id).await {
        Ok(Some(a)) if a.kind == kind => {}
        Ok(Some(_)) => errors.add(field, format!("is not an asset of kind {kind}")),
        Ok(None) => errors.add(field, "no such asset"),
        Err(e) => return Err(FieldErrs::internal(e)),
    }
    Ok(Some(id))
}

async fn parse_scene(
    state: &AppState,
    form: &FormData,
    project_id: &ProjectId,
    except_id: Option<&SceneId>,
) -> Result<ParsedScene, (StatusCode, FieldErrs)> {
    let mut errors = FieldErrs::default();
    let target = number(form, "targetDuration", &mut errors);
    let mode = GenerationMode::parse(form.get("generationMode")).unwrap_or_else(|| {
        errors.add("generationMode", "must be auto, standard or digital-twin");
        GenerationMode::Auto
    });
    let animation = match form.get("animation") {
        "" => Animation::Standard,
        a => Animation::parse(a).unwrap_or_else(|| {
            errors.add("animation", "must be standard or fast");
            Animation::Standard
        }),
    };
    let scene = Scene {
        name: form.get("name").to_string(),
        dialogue: form.get("dialogue").to_string(),
        environment: form.opt("environment"),
        wardrobe: form.opt("wardrobe"),
        mood_lighting: form.opt("moodLighting"),
        camera: form.opt("camera"),
        movement: form.opt("movement"),
        target_duration: target,
        identity: String::new(),
        generation_mode: mode,
        animation,
    }
    .validated();
    let scene = errors.take(scene);
    let db = &state.storage.db;
    let internal = FieldErrs::internal;
    let identity_id = form.opt("identityId").map(IdentityId::from);
    if let Some(id) = &identity_id
        && db.get_identity(id).await.map_err(internal)?.is_none()
    {
        errors.add("identityId", "no such identity");
    }
    let headshot = form.opt("headshotAssetId").map(AssetId::from);
    if let Some(id) = &headshot
        && db.asset_object_key(id).await.map_err(internal)?.is_none()
    {
        errors.add("headshotAssetId", "no such asset");
    }
    let speech = media_choice(state, form, "speechAssetId", "audio", &mut errors).await?;
    let background =
        media_choice(state, form, "backgroundAssetId", "background", &mut errors).await?;
    let Some(scene) = scene.filter(|_| errors.is_empty()) else {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, errors));
    };
    if db
        .scene_name_taken(project_id, &scene.name, except_id)
        .await
        .map_err(internal)?
    {
        errors.add("name", "a scene with this name exists in the project");
        return Err((StatusCode::CONFLICT, errors));
    }
    Ok(ParsedScene {
        scene,
        identity_id,
        headshot,
        speech,
        background,
    })
}

fn refill(mut fields: Vec<FormField>, form: &FormData) -> Vec<FormField> {
    for f in &mut fields {
        f.value = form.get(f.name).to_string();
    }
    fields
}

/// The form page for a new scene of `p` or for scene `s`: refilled from a rejected `form` with its errors.
async fn form_page(
    state: &AppState,
    page: &Page,
    p: &ProjectRecord,
    s: Option<&SceneRecord>,
    rejected: Option<(&FormData, &FieldErrs)>,
) -> Result<SceneFormPage, UiError> {
    let fields = scene_fields(state, s).await?;
    let (fields, error) = match rejected {
        Some((form, errors)) => {
            let what = if s.is_some() { "saved" } else { "added" };
            (
                with_errors(refill(fields, form), errors),
                Some(format!(
                    "The scene was not {what}: fix the fields marked below."
                )),
            )
        }
        None => (fields, None),
    };
    let (title, action) = match s {
        Some(s) => (
            format!("Edit scene {}", s.scene.name),
            format!("{}scenes/{}", page.root, s.id),
        ),
        None => (
            "Add scene".to_string(),
            format!("{}projects/{}/scenes", page.root, p.id),
        ),
    };
    SceneFormPage {
        l: page.layout(title, "projects"),
        action,
        project_id: p.id.to_string(),
        project_name: p.project.name.clone(),
        scene_id: s.map(|s| s.id.to_string()).unwrap_or_default(),
        fields,
        error,
        speech: Default::default(),
        twin_warning: None,
    }
    .with_facts(state, p, s, rejected.map(|r| r.0))
    .await
}

/// The Add Scene form.
pub(crate) async fn new_page(
    State(state): State<AppState>,
    page: Page,
    Path(project_id): Path<ProjectId>,
) -> Result<Response, UiError> {
    let p = project(&state, &project_id).await?;
    ok(&form_page(&state, &page, &p, None, None).await?)
}

/// Adds a scene at the end of the project.
pub(crate) async fn create(
    State(state): State<AppState>,
    page: Page,
    Path(project_id): Path<ProjectId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let p = project(&state, &project_id).await?;
    match parse_scene(&state, &form, &p.id, None).await {
        Ok(s) => {
            let db = &state.storage.db;
            let id = db
                .save_scene(
                    None,
                    &p.id,
                    &s.scene,
                    s.identity_id.as_ref(),
                    s.headshot.as_ref(),
                )
                .await?;
            db.set_scene_media(&id, s.speech.as_ref(), s.background.as_ref())
                .await?;
            Ok(page.redirect(&format!("projects/{}?ok=scene-created", p.id)))
        }
        Err((status, errors)) => render(
            status,
            &form_page(&state, &page, &p, None, Some((&form, &errors))).await?,
        ),
    }
}

/// The Edit Scene form.
pub(crate) async fn edit_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<SceneId>,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    let p = project(&state, &s.project_id).await?;
    ok(&form_page(&state, &page, &p, Some(&s), None).await?)
}

/// Saves a scene.
pub(crate) async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<SceneId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    match parse_scene(&state, &form, &s.project_id, Some(&id)).await {
        Ok(parsed) => {
            state
                .storage
                .db
                .save_scene(
                    Some(&id),
                    &s.project_id,
                    &parsed.scene,
                    parsed.identity_id.as_ref(),
                    parsed.headshot.as_ref(),
                )
                .await?;
            state
                .storage
                .db
                .set_scene_media(&id, parsed.speech.as_ref(), parsed.background.as_ref())
                .await?;
            Ok(page.redirect(&format!("projects/{}?ok=scene-saved", s.project_id)))
        }
        Err((status, errors)) => {
            let p = project(&state, &s.project_id).await?;
            let rejected = Some((&form, &errors));
            render(
                status,
                &form_page(&state, &page, &p, Some(&s), rejected).await?,
            )
        }
    }
}
