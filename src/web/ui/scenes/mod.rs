//! `/scenes` (every scene), `/scenes/{id}` (player, captions, step timeline, logs, regenerate, cancel,
//! download) and the add/edit scene form with every field.

mod detail;
mod facts;
mod form;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub(crate) use detail::{LogLine, PreviewMedia, scene_page};
pub(crate) use facts::{CardFacts, card_facts};
pub(crate) use form::{create, edit_page, new_page, update};

use super::forms::PostForm;
use super::view;
use super::{Layout, Page, UiError, ok};
use crate::domain::{ProjectId, SceneId};
use crate::storage::db::{ProjectRecord, SceneRecord};
use crate::web::AppState;

async fn project(state: &AppState, id: &ProjectId) -> Result<ProjectRecord, UiError> {
    state
        .storage
        .db
        .get_project(id)
        .await?
        .ok_or_else(|| UiError::not_found("project"))
}

async fn scene(state: &AppState, id: &SceneId) -> Result<SceneRecord, UiError> {
    state
        .storage
        .db
        .get_scene(id)
        .await?
        .ok_or_else(|| UiError::not_found("scene"))
}

/// Deletes a scene.
pub(crate) async fn delete(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<SceneId>,
    _form: PostForm,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    if let Some(run) = state
        .storage
        .db
        .active_run_for(&s.project_id, Some(&id))
        .await?
    {
        return Err(UiError::new(
            StatusCode::CONFLICT,
            format!("The scene is being generated (run {run}); cancel it first."),
        ));
    }
    state.storage.db.delete_scene(&id).await?;
    Ok(page.redirect(&format!("projects/{}?ok=scene-deleted", s.project_id)))
}

/// Generates (or regenerates) one scene — a $0 local preview with `preview=1` — and goes back to the project page
/// when asked (`back=project`).
pub(crate) async fn generate(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<SceneId>,
    PostForm(form): PostForm,
) -> Result<Response, UiError> {
    let s = scene(&state, &id).await?;
    let preview = form.get("preview") == "1";
    let ok = match state.runs.start(&s.project_id, Some(&id), preview).await {
        Ok(_) if preview => "previewing",
        Ok(_) => "generating",
        Err(crate::worker::StartError::Busy(_)) => "busy",
        Err(e) => return Err(e.into()),
    };
    if ok == "busy" || form.get("back") == "project" {
        Ok(page.redirect(&format!("projects/{}?ok={ok}", s.project_id)))
    } else {
        Ok(page.redirect(&format!("scenes/{id}?ok={ok}")))
    }
}

/// Cancels the scene's running generation.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<SceneId>,
    _form: PostForm,
) -> Result<Response, UiError> {
    crate::web::service::runs::cancel_scene(&state, &id).await?;
    Ok(page.redirect(&format!("scenes/{id}?ok=canceled")))
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
    let rendered = rows
        .iter()
        .filter(|r| r.status == crate::domain::SceneStatus::Completed)
        .map(|r| r.project_id.clone())
        .collect();
    let stale = crate::web::service::projects::out_of_date_scene_ids(&state, &rendered).await?;
    let scenes = rows
        .iter()
        .map(|r| SceneItem {
            id: r.id.to_string(),
            project_id: r.project_id.to_string(),
            project_name: r.project_name.clone(),
            name: r.name.clone(),
            dialogue: view::excerpt(&r.dialogue, 120),
            status: match stale.contains(&r.id) {
                true => "out of date",
                false => view::status_word(r.status.as_str()),
            },
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
