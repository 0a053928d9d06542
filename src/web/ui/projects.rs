//! `/projects` (list, create) and `/projects/{id}` (scene cards, settings, reorder, generate, estimate, video).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::forms::{Control, FieldErrs, FormData, FormField, PostForm, number, with_errors};
use super::project_cards::{SCENE_STEPS, SceneCard, cards_with_facts, identity_name};
use super::scenes::PreviewMedia;
use super::view::{self, ProjectItem, RunView};
use super::{Layout, Page, UiError, render};
use crate::costs::{Estimate, PriceTable, Route, estimate};
use crate::domain::{AspectRatio, DEFAULT_IDENTITY_RETRIES, IdentityGate, Project};
use crate::domain::{IdentityId, ProjectId, SceneId};
use crate::storage::db::RunSummary;
use crate::storage::db::{IdentityRecord, ProjectRecord, SceneRecord};
use crate::web::AppState;
use crate::worker::StartError;

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    l: Layout,
    projects: Vec<ProjectItem>,
    form: Vec<FormField>,
    form_error: Option<String>,
}

/// The project settings fields, filled from `values` (name → value).
fn project_fields(p: Option<&ProjectRecord>, identities: &[IdentityRecord]) -> Vec<FormField> {
    let mut identity_options = vec![(String::new(), "None (use the default identity)".to_string())];
    identity_options.extend(identities.iter().map(|i| {
        (
            i.id.to_string(),
            format!("{} ({})", i.identity.display_name, i.identity.name),
        )
    }));
    vec![
        FormField::text(
            "name",
            "Name",
            p.map(|p| p.project.name.clone()).unwrap_or_default(),
        )
        .required(),
        FormField::text(
            "description",
            "Description",
            p.and_then(|p| p.project.description.clone())
                .unwrap_or_default(),
        )
        .control(Control::TextArea),
        FormField::text(
            "aspectRatio",
            "Aspect ratio",
            p.map(|p| p.project.aspect_ratio.as_str()).unwrap_or("16:9"),
        )
        .control(Control::Select(vec![
            ("16:9".into(), "16:9 landscape (1280×720)".into()),
            ("9:16".into(), "9:16 portrait (720×1280)".into()),
            ("1:1".into(), "1:1 square (720×720)".into()),
        ])),
        FormField::text(
            "budgetUsd",
            "Budget (USD)",
            p.and_then(|p| p.project.budget_usd)
                .map(|b| b.to_string())
                .unwrap_or_default(),
        )
        .control(Control::Number("0.01"))
        .hint(
            "Optional spending cap for paid providers; paid steps stop when it would be exceeded.",
        ),
        FormField::text(
            "identityGate",
            "Identity gate",
            p.map_or(IdentityGate::default(), |p| p.project.identity_gate)
                .as_str(),
        )
        .control(Control::Select(
            IdentityGate::ALL
                .iter()
                .map(|g| (g.as_str().into(), gate_label(*g).into()))
                .collect(),
        ))
        .hint("What IMAGE does when a generated still does not look like the identity (its face print)."),
        FormField::text(
            "identityRetries",
            "Identity retries",
            p.map_or(DEFAULT_IDENTITY_RETRIES, |p| p.project.identity_retries)
                .to_string(),
        )
        .control(Control::Number("1"))
        .hint("Extra paid stills (0–5) the retry and strict gates may generate per scene."),
        FormField::text(
            "defaultIdentityId",
            "Default identity",
            p.and_then(|p| p.default_identity_id.clone())
                .unwrap_or_default(),
        )
        .control(Control::Select(identity_options)),
    ]
}

/// The project's identity gate as its page says it: `off`, `warn`, `retry, 2 retries`.
fn gate_summary(p: &Project) -> String {
    match p.identity_gate.retries(p.identity_retries) {
        0 => p.identity_gate.as_str().to_string(),
        1 => format!("{}, 1 retry", p.identity_gate.as_str()),
        n => format!("{}, {n} retries", p.identity_gate.as_str()),
    }
}

/// How the project form names a gate.
fn gate_label(g: IdentityGate) -> &'static str {
    match g {
        IdentityGate::Off => "off: do not score stills",
        IdentityGate::Warn => "warn: score once and warn",
        IdentityGate::Retry => "retry: new seeds, then the best still with a warning",
        IdentityGate::Strict => "strict: new seeds, then fail the scene before video",
    }
}

/// Copies submitted values into the fields.
fn refill(mut fields: Vec<FormField>, form: &FormData) -> Vec<FormField> {
    for f in &mut fields {
        f.value = form.get(f.name).to_string();
    }
    fields
}

/// Validates the project form: the project and its default identity, or every field's error.
async fn parse_project(
    state: &AppState,
    form: &FormData,
    except_id: Option<&ProjectId>,
) -> Result<(Project, Option<IdentityId>), (StatusCode, FieldErrs)> {
    let mut errors = FieldErrs::default();
    let aspect = match AspectRatio::parse(form.get("aspectRatio")) {
        Some(a) => a,
        None => {
            errors.add("aspectRatio", "must be 16:9, 9:16 or 1:1");
            AspectRatio::default()
        }
    };
    let budget = number(form, "budgetUsd", &mut errors);
    let identity_gate = match form.get("identityGate").trim() {
        "" => IdentityGate::default(),
        g => IdentityGate::parse(g).unwrap_or_else(|| {
            errors.add("identityGate", "must be off, warn, retry or strict");
            IdentityGate::default()
        }),
    };
    let identity_retries = match form.get("identityRetries").trim() {
        "" => DEFAULT_IDENTITY_RETRIES,
        n => n.parse().unwrap_or_else(|_| {
            errors.add("identityRetries", "must be a whole number from 0 to 5");
            DEFAULT_IDENTITY_RETRIES
        }),
    };
    let project = Project {
        description: form.opt("description"),
        aspect_ratio: aspect,
        budget_usd: budget,
        identity_gate,
        identity_retries,
        ..Project::named(form.get("name"))
    }
    .validated();
    let project = errors.take(project);
    let db = &state.storage.db;
    let identity = form.opt("defaultIdentityId").map(IdentityId::from);
    if let Some(id) = &identity {
        match db.get_identity(id).await {
            Ok(Some(_)) => {}
            Ok(None) => errors.add("defaultIdentityId", "no such identity"),
            Err(e) => errors.add("defaultIdentityId", UiError::from(e).message_text()),
        }
    }
    let Some(project) = project.filter(|_| errors.is_empty()) else {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, errors));
    };
    match db.project_name_taken(&project.name, except_id).await {
        Ok(false) => Ok((project, identity)),
        Ok(true) => {
            errors.add("name", "a project with this name exists");
            Err((StatusCode::CONFLICT, errors))
        }
        Err(e) => {
            errors.add("name", UiError::from(e).message_text());
            Err((StatusCode::INTERNAL_SERVER_ERROR, errors))
        }
    }
}

async fn list(
    state: &AppState,
    page: &Page,
    status: StatusCode,
    form: Vec<FormField>,
    form_error: Option<String>,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let counts = db.ui_scene_counts_by_project().await?;
    let all = db.list_projects().await?;
    let stale = crate::web::service::projects::out_of_date_ids(state, &all).await?;
    let projects = all
        .iter()
        .map(|p| {
            ProjectItem::new(p, counts.get(&p.id).copied().unwrap_or(0))
                .out_of_date(stale.contains(&p.id))
        })
        .collect();
    render(
        status,
        &ProjectsPage {
            l: page.layout("Projects", "projects"),
            projects,
            form,
            form_error,
        },
    )
}

/// The project list with the create form.
pub(crate) async fn list_page(
    State(state): State<AppState>,
    page: Page,
) -> Result<Response, UiError> {
    let identities = state.storage.db.list_identities().await?;
    let fields = project_fields(None, &identities);
    list(&state, &page, StatusCode::OK, fields, None).await
}

/// Creates a project and opens it; the form comes back with the errors next to the fields otherwise.
pub(crate) async fn create(
    State(state): State<AppState>,
    page: Page,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    match parse_project(&state, &form, None).await {
        Ok((project, identity)) => {
            let id = state
                .storage
                .db
                .upsert_project(&project, identity.as_ref())
                .await?;
            Ok(page.redirect(&format!("projects/{id}?ok=project-created")))
        }
        Err((status, errors)) => {
            let identities = state.storage.db.list_identities().await?;
            let fields = with_errors(refill(project_fields(None, &identities), &form), &errors);
            list(
                &state,
                &page,
                status,
                fields,
                Some("The project was not created: fix the fields marked below.".into()),
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    l: Layout,
    id: String,
    name: String,
    description: String,
    status: &'static str,
    aspect: &'static str,
    budget: String,
    /// The identity gate and its retries, as the page says them (`retry, 2 retries`).
    identity_gate: String,
    default_identity: String,
    cards: Vec<SceneCard>,
    running: String,
    /// A live run of the project (Generate all waits for it), else empty.
    busy: String,
    runs: Vec<RunView>,
    video: String,
    captions: String,
    duration: String,
    preview: PreviewMedia,
    estimate_total: String,
    estimate_route: &'static str,
    /// What the cloud providers would cost, beside a local estimate (empty on the cloud route).
    estimate_cloud: String,
    form: Vec<FormField>,
    form_open: bool,
    form_error: Option<String>,
    step_total: usize,
}

/// The project page answered with `status`; `form` is a refilled settings form and its error, shown open.
async fn project_page_with(
    state: &AppState,
    page: &Page,
    id: &ProjectId,
    status: StatusCode,
    form: Option<(Vec<FormField>, String)>,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let p = db
        .get_project(id)
        .await?
        .ok_or_else(|| UiError::not_found("project"))?;
    let scenes = db.list_scenes(id, -1, 10_000).await?;
    let identities = db.list_identities().await?;
    let steps = db.ui_latest_scene_steps(id).await?;
    let runs = db.ui_recent_runs(Some(id), 10).await?;
    let running: Vec<&str> = runs
        .iter()
        .filter(|r| r.is_active())
        .map(|r| r.id.as_str())
        .collect();
    let (route, est, estimate_cloud) = estimates(state, &p, &scenes);
    let (cards, out_of_date) = cards_with_facts(
        state,
        &page.root,
        &p,
        &scenes,
        &steps,
        &runs,
        &identities,
        &est,
    )
    .await?;
    let (form, form_error) = match form {
        Some((f, e)) => (f, Some(e)),
        None => (project_fields(Some(&p), &identities), None),
    };
    render(
        status,
        &ProjectPage {
            l: page.layout(p.project.name.clone(), "projects"),
            id: p.id.to_string(),
            name: p.project.name.clone(),
            description: p.project.description.clone().unwrap_or_default(),
            status: project_status(&p, &runs, out_of_date),
            aspect: p.project.aspect_ratio.as_str(),
            budget: p.project.budget_usd.map(view::usd).unwrap_or_default(),
            identity_gate: gate_summary(&p.project),
            default_identity: default_identity(&p, &identities),
            cards,
            running: running.join(" "),
            busy: running.first().map(|r| r.to_string()).unwrap_or_default(),
            runs: runs.iter().map(RunView::from).collect(),
            video: p
                .final_object
                .as_deref()
                .map(|k| view::media(&page.root, k))
                .unwrap_or_default(),
            captions: p
                .captions_object
                .as_deref()
                .map(|k| view::media(&page.root, k))
                .unwrap_or_default(),
            duration: p.duration_seconds.map(view::seconds).unwrap_or_default(),
            preview: PreviewMedia::latest(db, &p.id, "ASSEMBLE", &page.root).await?,
            estimate_total: view::usd(est.total_usd),
            estimate_route: match route {
                Route::Local => "local providers: nothing is paid",
                Route::Cloud => "cloud providers, from the price table",
            },
            estimate_cloud,
            form_open: form_error.is_some(),
            form,
            form_error,
            step_total: SCENE_STEPS.len(),
        },
    )
}

/// The route renders take here, its estimate, and (when it is the local one) what the cloud providers would cost.
fn estimates(
    state: &AppState,
    p: &ProjectRecord,
    scenes: &[SceneRecord],
) -> (Route, Estimate, String) {
    let prices = &state.config.cloud.prices;
    let route = if state.config.cloud_configured() {
        Route::Cloud
    } else {
        Route::Local
    };
    let cloud = match route {
        Route::Local => view::usd(price_estimate(prices, p, scenes, Route::Cloud).total_usd),
        Route::Cloud => String::new(),
    };
    (route, price_estimate(prices, p, scenes, route), cloud)
}

/// The project's cost estimate on `route` from the price table.
fn price_estimate(
    prices: &PriceTable,
    p: &ProjectRecord,
    scenes: &[SceneRecord],
    route: Route,
) -> Estimate {
    let list: Vec<_> = scenes.iter().map(|s| s.scene.clone()).collect();
    let mut est = estimate(prices, &p.project, &list, route);
    for (i, s) in scenes.iter().enumerate() {
        if s.speech_asset_id.is_some() {
            est.speech_recorded(i);
        }
    }
    est
}

/// The project's status word: generating while a whole-project run is active, out of date when its video no
/// longer matches its scenes.
fn project_status(p: &ProjectRecord, runs: &[RunSummary], out_of_date: bool) -> &'static str {
    if runs.iter().any(|r| r.is_active() && r.scene_id.is_none()) {
        "generating"
    } else if out_of_date {
        "out of date"
    } else {
        view::status_word(p.status.as_str())
    }
}

/// The project's default identity, else the global default identity (marked so), else "none".
fn default_identity(p: &ProjectRecord, identities: &[IdentityRecord]) -> String {
    identity_name(identities, p.default_identity_id.as_deref())
        .or_else(|| {
            identities
                .iter()
                .find(|i| i.is_default)
                .map(|i| format!("{} (the default identity)", i.identity.display_name))
        })
        .unwrap_or_else(|| "none".into())
}

/// A project: its scenes, settings, estimate, runs and video.
pub(crate) async fn project_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<ProjectId>,
) -> Result<Response, UiError> {
    project_page_with(&state, &page, &id, StatusCode::OK, None).await
}

/// Saves the project settings (rename, description, aspect ratio, budget, default identity).
pub(crate) async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<ProjectId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    if db.get_project(&id).await?.is_none() {
        return Err(UiError::not_found("project"));
    }
    match parse_project(&state, &form, Some(&id)).await {
        Ok((project, identity)) => {
            db.update_project(&id, &project, identity.as_ref()).await?;
            Ok(page.redirect(&format!("projects/{id}?ok=project-saved")))
        }
        Err((status, errors)) => {
            let identities = db.list_identities().await?;
            let fields = with_errors(refill(project_fields(None, &identities), &form), &errors);
            project_page_with(
                &state,
                &page,
                &id,
                status,
                Some((
                    fields,
                    "The project was not saved: fix the fields marked below.".into(),
                )),
            )
            .await
        }
    }
}

/// Deletes a project (refused while it renders).
pub(crate) async fn delete(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<ProjectId>,
    _form: PostForm,
) -> Result<Response, UiError> {
    crate::web::service::projects::delete(&state, &id).await?;
    Ok(page.redirect("projects?ok=project-deleted"))
}

/// Generates every scene and assembles the project video — a $0 local preview with `preview=1`.
pub(crate) async fn generate_all(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<ProjectId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let preview = form.get("preview") == "1";
    let ok = match state.runs.start(&id, None, preview).await {
        Ok(_) if preview => "previewing",
        Ok(_) => "generating",
        Err(StartError::Busy(_)) => "busy",
        Err(e) => return Err(e.into()),
    };
    Ok(page.redirect(&format!("projects/{id}?ok={ok}")))
}

/// Moves one scene up or down (`scene`, `dir` = `up`/`down`), or sets the whole order (`order`, repeated).
pub(crate) async fn reorder(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<ProjectId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    if db.get_project(&id).await?.is_none() {
        return Err(UiError::not_found("project"));
    }
    let mut ids: Vec<SceneId> = db
        .list_scenes(&id, -1, 10_000)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let order = form.all("order");
    if !order.is_empty() {
        ids = order.into_iter().map(SceneId::from).collect();
    } else {
        let scene = form.get("scene");
        let Some(pos) = ids.iter().position(|s| s == scene) else {
            return Err(UiError::not_found("scene"));
        };
        match form.get("dir") {
            "up" if pos > 0 => ids.swap(pos, pos - 1),
            "down" if pos + 1 < ids.len() => ids.swap(pos, pos + 1),
            "up" | "down" => {}
            _ => {
                return Err(UiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Choose whether to move the scene up or down.",
                ));
            }
        }
    }
    if !db.reorder_scenes(&id, &ids).await? {
        return Err(UiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The new order must list every scene of the project exactly once.",
        ));
    }
    Ok(page.redirect(&format!("projects/{id}?ok=reordered")))
}
