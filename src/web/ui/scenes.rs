//! `/scenes` (every scene), `/scenes/{id}` (player, captions, step timeline, logs, regenerate, cancel,
//! download) and the add/edit scene form with every field.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::forms::{Control, FieldErrs, FormData, FormField, PostForm, number, with_errors};
use super::view;
use super::{Layout, Page, UiError, ok, render};
use crate::domain::{Animation, GenerationMode, LogStep, Scene, StepName};
use crate::pipeline::StepOutput;
use crate::storage::db::{LogFilter, ProjectRecord, SceneRecord};
use crate::web::AppState;
use crate::web::api::scenes::start_run;

/// The scene form's fields, filled from a stored scene (or blank).
async fn scene_fields(
    state: &AppState,
    s: Option<&SceneRecord>,
) -> Result<Vec<FormField>, UiError> {
    let db = &state.storage.db;
    let mut identities = vec![(String::new(), "Project default".to_string())];
    identities.extend(db.list_identities().await?.into_iter().map(|i| {
        (
            i.id,
            format!("{} ({})", i.identity.display_name, i.identity.name),
        )
    }));
    let mut headshots = vec![(
        String::new(),
        "None (the identity's headshot, or a portrait)".to_string(),
    )];
    headshots.extend(db.list_assets("headshot", "").await?.into_iter().map(|a| {
        let label = a.original_name.clone().unwrap_or_else(|| a.id.clone());
        let label = if a.folder.is_empty() {
            label
        } else {
            format!("{}/{label}", a.folder)
        };
        (a.id, label)
    }));
    let sc = s.map(|s| &s.scene);
    let text = |f: fn(&Scene) -> Option<String>| sc.and_then(f).unwrap_or_default();
    Ok(vec![
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
    ])
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
}

/// A validated scene and its references.
struct ParsedScene {
    scene: Scene,
    identity_id: Option<String>,
    headshot: Option<String>,
}

async fn parse_scene(
    state: &AppState,
    form: &FormData,
    project_id: &str,
    except_id: &str,
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
    let identity_id = form.opt("identityId");
    if let Some(id) = &identity_id
        && db.get_identity(id).await.map_err(internal)?.is_none()
    {
        errors.add("identityId", "no such identity");
    }
    let headshot = form.opt("headshotAssetId");
    if let Some(id) = &headshot
        && db.asset_object_key(id).await.map_err(internal)?.is_none()
    {
        errors.add("headshotAssetId", "no such asset");
    }
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
    })
}

fn refill(mut fields: Vec<FormField>, form: &FormData) -> Vec<FormField> {
    for f in &mut fields {
        f.value = form.get(f.name).to_string();
    }
    fields
}

async fn project(state: &AppState, id: &str) -> Result<ProjectRecord, UiError> {
    state
        .storage
        .db
        .get_project(id)
        .await?
        .ok_or_else(|| UiError::not_found("project"))
}

async fn scene(state: &AppState, id: &str) -> Result<SceneRecord, UiError> {
    state
        .storage
        .db
        .get_scene(id)
        .await?
        .ok_or_else(|| UiError::not_found("scene"))
}

/// The Add Scene form.
pub(crate) async fn new_page(
    State(state): State<AppState>,
    page: Page,
    Path(project_id): Path<String>,
) -> Result<Response, UiError> {
    let p = project(&state, &project_id).await?;
    ok(&SceneFormPage {
        l: page.layout("Add scene", "projects"),
        action: format!("{}projects/{}/scenes", page.root, p.id),
        project_id: p.id,
        project_name: p.project.name,
        scene_id: String::new(),
        fields: scene_fields(&state, None).await?,
        error: None,
    })
}

/// Adds a scene at the end of the project.
pub(crate) async fn create(
    State(state): State<AppState>,
    page: Page,
    Path(project_id): Path<String>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let p = project(&state, &project_id).await?;
    match parse_scene(&state, &form, &p.id, "").await {
        Ok(s) => {
            state
                .storage
                .db
                .save_scene(
                    None,
                    &p.id,
                    &s.scene,
                    s.identity_id.as_deref(),
                    s.headshot.as_deref(),
                )
                .await?;
            Ok(page.redirect(&format!("projects/{}?ok=scene-created", p.id)))
        }
        Err((status, errors)) => render(
            status,
            &SceneFormPage {
                l: page.layout("Add scene", "projects"),
                action: format!("{}projects/{}/scenes", page.root, p.id),
                project_id: p.id,
                project_name: p.project.name,
                scene_id: String::new(),
                fields: with_errors(refill(scene_fields(&state, None).await?, &form), &errors),
                error: Some("The scene was not added: fix the fields marked below.".into()),
            },
        ),
    }
}

/// The Edit Scene form.
pub(crate) async fn edit_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    let p = project(&state, &s.project_id).await?;
    ok(&SceneFormPage {
        l: page.layout(format!("Edit scene {}", s.scene.name), "projects"),
        action: format!("{}scenes/{}", page.root, s.id),
        project_id: p.id,
        project_name: p.project.name,
        scene_id: s.id.clone(),
        fields: scene_fields(&state, Some(&s)).await?,
        error: None,
    })
}

/// Saves a scene.
pub(crate) async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    match parse_scene(&state, &form, &s.project_id, &id).await {
        Ok(parsed) => {
            state
                .storage
                .db
                .save_scene(
                    Some(&id),
                    &s.project_id,
                    &parsed.scene,
                    parsed.identity_id.as_deref(),
                    parsed.headshot.as_deref(),
                )
                .await?;
            Ok(page.redirect(&format!("projects/{}?ok=scene-saved", s.project_id)))
        }
        Err((status, errors)) => {
            let p = project(&state, &s.project_id).await?;
            render(
                status,
                &SceneFormPage {
                    l: page.layout(format!("Edit scene {}", s.scene.name), "projects"),
                    action: format!("{}scenes/{}", page.root, s.id),
                    project_id: p.id,
                    project_name: p.project.name,
                    scene_id: s.id.clone(),
                    fields: with_errors(
                        refill(scene_fields(&state, Some(&s)).await?, &form),
                        &errors,
                    ),
                    error: Some("The scene was not saved: fix the fields marked below.".into()),
                },
            )
        }
    }
}

/// Deletes a scene.
pub(crate) async fn delete(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    _form: PostForm,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    if let Some(run) = state.storage.db.active_run_for(&s.project_id, &id).await? {
        return Err(UiError::new(
            StatusCode::CONFLICT,
            format!("The scene is being generated (run {run}); cancel it first."),
        ));
    }
    state.storage.db.delete_scene(&id).await?;
    Ok(page.redirect(&format!("projects/{}?ok=scene-deleted", s.project_id)))
}

/// Generates (or regenerates) one scene; back to the project page when asked (`back=project`).
pub(crate) async fn generate(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    start_run(&state, &s.project_id, Some(&id)).await?;
    if form.get("back") == "project" {
        Ok(page.redirect(&format!("projects/{}?ok=generating", s.project_id)))
    } else {
        Ok(page.redirect(&format!("scenes/{id}?ok=generating")))
    }
}

/// Cancels the scene's running generation.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    _form: PostForm,
) -> Result<Response, UiError> {
    let _ = crate::web::api::scenes::cancel(State(state), Path(id.clone())).await?;
    Ok(page.redirect(&format!("scenes/{id}?ok=canceled")))
}

/// One row of the step timeline.
#[derive(Debug, Clone)]
struct TimelineRow {
    step: &'static str,
    status: String,
    provider: String,
    cached: bool,
    took: String,
    cost: String,
    attempts: i64,
    error: String,
    notes: Vec<String>,
}

/// One log row on a page.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    /// Id.
    pub id: String,
    /// Time.
    pub at: String,
    /// ISO time.
    pub at_iso: String,
    /// Level.
    pub level: String,
    /// Guide step.
    pub step: String,
    /// Scene name (or empty).
    pub scene: String,
    /// Scene id (or empty).
    pub scene_id: String,
    /// Project name (or empty).
    pub project: String,
    /// Project id (or empty).
    pub project_id: String,
    /// Provider.
    pub provider: String,
    /// Message.
    pub message: String,
    /// Duration.
    pub took: String,
    /// Pretty-printed redacted payload, or empty.
    pub payload: String,
}

impl LogLine {
    /// A row from the database, with the scene's name and payload when known.
    pub fn new(r: &crate::storage::db::LogRow, scene: String, payload: Option<&String>) -> Self {
        Self {
            id: r.id.clone(),
            at: view::time(r.created_at),
            at_iso: view::iso(r.created_at),
            level: r.level.clone(),
            step: r.step.clone(),
            scene,
            scene_id: r.scene_id.clone().unwrap_or_default(),
            project: String::new(),
            project_id: r.project_id.clone().unwrap_or_default(),
            provider: r.provider.clone().unwrap_or_default(),
            message: r.message.clone(),
            took: r.duration_ms.map(view::ms).unwrap_or_default(),
            payload: payload
                .map(|p| {
                    serde_json::from_str::<serde_json::Value>(p)
                        .ok()
                        .and_then(|v| serde_json::to_string_pretty(&v).ok())
                        .unwrap_or_else(|| p.clone())
                })
                .unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "scene.html")]
struct ScenePage {
    l: Layout,
    id: String,
    name: String,
    project_id: String,
    project_name: String,
    status: &'static str,
    dialogue: String,
    facts: Vec<(&'static str, String)>,
    video: String,
    captions: String,
    thumbnail: String,
    running: String,
    timeline: Vec<TimelineRow>,
    run_status: String,
    run_error: String,
    run_started: String,
    logs: Vec<LogLine>,
}

/// The log step that describes a pipeline step.
fn log_step_of(step: &str) -> &'static [&'static str] {
    match step {
        "AUDIO" => &["AUDIO_GENERATION"],
        "IMAGE" => &["IDENTITY_ANCHOR", "IMAGE_GENERATION"],
        "VIDEO" => &["VIDEO_GENERATION"],
        "LIPSYNC" => &["LIPSYNC_APPLICATION"],
        _ => &["VIDEO_ASSEMBLY"],
    }
}

/// A scene: its video with captions, the latest run's step timeline, its logs and actions.
pub(crate) async fn scene_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let s = scene(&state, &id).await?;
    let p = project(&state, &s.project_id).await?;
    let active = db.active_run_for(&s.project_id, &id).await?;
    let latest = db.latest_run_for_scene(&s.project_id, &id).await?;
    let logs = db
        .query_logs(&LogFilter {
            scene: Some(id.clone()),
            limit: 100,
            ..LogFilter::default()
        })
        .await?;
    let payloads = db
        .ui_log_payloads(&logs.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
        .await?;
    let (mut timeline, mut run_status, mut run_error, mut run_started) =
        (Vec::new(), String::new(), String::new(), String::new());
    if let Some(run_id) = &latest
        && let Some(run) = db.get_run(run_id).await?
    {
        run_status = view::status_word(run.status.as_str()).to_string();
        run_error = run.error.unwrap_or_default();
        run_started = view::time(run.created_at);
        let steps = db.run_steps(run_id).await?;
        for name in StepName::SCENE_STEPS {
            let step = name.as_str();
            let row = steps.iter().find(|x| x.scene_id == id && x.step == step);
            let notes = logs
                .iter()
                .filter(|l| l.run_id.as_deref() == Some(run_id.as_str()))
                .filter(|l| log_step_of(step).contains(&l.step.as_str()))
                .filter(|l| {
                    l.level == "WARN"
                        || l.level == "ERROR"
                        || l.step == LogStep::IdentityAnchor.as_str()
                })
                .map(|l| format!("{} {}", l.level, l.message))
                .collect();
            timeline.push(TimelineRow {
                step,
                status: row
                    .map(|r| r.status.clone())
                    .unwrap_or_else(|| "pending".into()),
                provider: row.and_then(|r| r.provider.clone()).unwrap_or_default(),
                cached: row.is_some_and(|r| r.cached),
                took: match row.and_then(|r| r.started_at.zip(r.finished_at)) {
                    Some((a, b)) => view::ms(b - a),
                    None => String::new(),
                },
                cost: row.map(|r| view::usd(r.cost_usd)).unwrap_or_default(),
                attempts: row.map(|r| r.attempts).unwrap_or(0),
                error: row.and_then(|r| r.error.clone()).unwrap_or_default(),
                notes,
            });
        }
    }
    let captions = match db.ui_scene_final_output(&id).await? {
        Some(json) => serde_json::from_str::<StepOutput>(&json)
            .ok()
            .and_then(|o| o.object("vtt").map(|k| view::media(&page.root, k)))
            .unwrap_or_default(),
        None => String::new(),
    };
    let sc = &s.scene;
    let identity = match &s.identity_id {
        Some(iid) => db
            .get_identity(iid)
            .await?
            .map(|i| i.identity.display_name)
            .unwrap_or_else(|| "a deleted identity".into()),
        None => "project default".into(),
    };
    let facts = [
        ("Identity", Some(identity)),
        ("Mode", Some(sc.generation_mode.as_str().to_string())),
        ("Animation", Some(sc.animation.as_str().to_string())),
        ("Environment", sc.environment.clone()),
        ("Wardrobe", sc.wardrobe.clone()),
        ("Mood lighting", sc.mood_lighting.clone()),
        ("Camera", sc.camera.clone()),
        ("Movement", sc.movement.clone()),
        ("Target duration", sc.target_duration.map(view::seconds)),
        ("Length", s.duration_seconds.map(view::seconds)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let scene_names = [(s.id.clone(), sc.name.clone())];
    ok(&ScenePage {
        l: page.layout(format!("Scene {}", sc.name), "scenes"),
        id: s.id.clone(),
        name: sc.name.clone(),
        project_id: p.id.clone(),
        project_name: p.project.name.clone(),
        status: if active.is_some() && s.status != "generating" {
            "queued"
        } else {
            view::status_word(&s.status)
        },
        dialogue: sc.dialogue.clone(),
        facts,
        video: s
            .output_object
            .as_deref()
            .map(|k| view::media(&page.root, k))
            .unwrap_or_default(),
        captions,
        thumbnail: s
            .thumbnail_object
            .as_deref()
            .map(|k| view::media(&page.root, k))
            .unwrap_or_default(),
        running: active.unwrap_or_default(),
        timeline,
        run_status,
        run_error,
        run_started,
        logs: logs
            .iter()
            .map(|r| {
                let scene = scene_names
                    .iter()
                    .find(|(i, _)| Some(i) == r.scene_id.as_ref())
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default();
                LogLine::new(r, scene, payloads.get(&r.id))
            })
            .collect(),
    })
}

/// A scene in the cross-project list.
#[derive(Debug, Clone)]
struct SceneItem {
    id: String,
    project_id: String,
    project_name: String,
    name: String,
    dialogue: String,
    status: &'static str,
    thumbnail: String,
    duration: String,
}

#[derive(Template)]
#[template(path = "scenes.html")]
struct ScenesPage {
    l: Layout,
    scenes: Vec<SceneItem>,
    page: i64,
    more: bool,
}

/// Query of the scene list.
#[derive(Debug, Deserialize)]
pub(crate) struct ScenesQuery {
    page: Option<String>,
}

/// Scenes per page of the scene list.
const SCENES_PER_PAGE: i64 = 100;

/// Every scene of every project, paged.
pub(crate) async fn list_page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<ScenesQuery>,
) -> Result<Response, UiError> {
    let n = q
        .page
        .and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 1_000_000);
    let mut rows = state
        .storage
        .db
        .ui_all_scenes((n - 1) * SCENES_PER_PAGE, SCENES_PER_PAGE + 1)
        .await?;
    let more = rows.len() as i64 > SCENES_PER_PAGE;
    rows.truncate(SCENES_PER_PAGE as usize);
    let scenes = rows
        .iter()
        .map(|r| SceneItem {
            id: r.id.clone(),
            project_id: r.project_id.clone(),
            project_name: r.project_name.clone(),
            name: r.name.clone(),
            dialogue: view::excerpt(&r.dialogue, 120),
            status: view::status_word(&r.status),
            thumbnail: r
                .thumbnail_object
                .as_deref()
                .map(|k| view::media(&page.root, k))
                .unwrap_or_default(),
            duration: r.duration_seconds.map(view::seconds).unwrap_or_default(),
        })
        .collect();
    ok(&ScenesPage {
        l: page.layout("Scenes", "scenes"),
        scenes,
        page: n,
        more,
    })
}
