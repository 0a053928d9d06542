//! `/`: counts, recent projects and runs, provider status, and "render the demo" on an empty install.

use std::path::Path;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::forms::PostForm;
use super::view::{ProjectItem, RunView};
use super::{Layout, Page, UiError, ok};
use crate::project_file::ProjectFile;
use crate::storage::db::UiCounts;
use crate::web::AppState;
use crate::web::service;

/// The bundled demo project.
const DEMO_TOML: &str = include_str!("../../../examples/demo.toml");

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    l: Layout,
    counts: UiCounts,
    projects: Vec<ProjectItem>,
    runs: Vec<RunView>,
    providers: Vec<(String, bool)>,
    tools_ok: bool,
}

impl DashboardPage {
    /// The noun for a count: singular for exactly one.
    fn noun<'a>(&self, n: &i64, one: &'a str, many: &'a str) -> &'a str {
        if *n == 1 { one } else { many }
    }
}

/// Provider name → configured, from the settings status the API serves.
pub(crate) fn provider_status(cfg: &crate::config::Config) -> (Vec<(String, bool)>, Value) {
    let status = serde_json::to_value(service::system::settings_status(cfg)).unwrap_or_default();
    let providers = status["providers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v["configured"].as_bool().unwrap_or(false)))
                .collect()
        })
        .unwrap_or_default();
    (providers, status)
}

/// The dashboard.
pub(crate) async fn page(State(state): State<AppState>, page: Page) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let counts = db.ui_counts().await?;
    let counts_by_project = db.ui_scene_counts_by_project().await?;
    let recent: Vec<_> = db.list_projects().await?.into_iter().take(5).collect();
    let stale = service::projects::out_of_date_ids(&state, &recent).await?;
    let projects = recent
        .iter()
        .map(|p| {
            ProjectItem::new(p, counts_by_project.get(&p.id).copied().unwrap_or(0))
                .out_of_date(stale.contains(&p.id))
        })
        .collect();
    let mut runs: Vec<(i64, RunView)> = db
        .ui_recent_runs(None, 8)
        .await?
        .iter()
        .map(|r| (r.created_at, RunView::from(r)))
        .collect();
    runs.extend(
        db.ui_recent_trainings(8)
            .await?
            .iter()
            .map(|(t, name)| (t.created_at, RunView::training(t, name))),
    );
    runs.sort_by_key(|r| std::cmp::Reverse(r.0));
    let runs = runs.into_iter().take(8).map(|(_, r)| r).collect();
    let (providers, status) = provider_status(&state.config);
    let tools_ok = status["tools"]
        .as_object()
        .is_some_and(|t| t.values().all(|v| v == true));
    ok(&DashboardPage {
        l: page.layout("Dashboard", "dashboard"),
        counts,
        projects,
        runs,
        providers,
        tools_ok,
    })
}

/// Stores the bundled demo project (reusing an identity with the same name or trigger word) and renders it.
pub(crate) async fn render_demo(
    State(state): State<AppState>,
    page: Page,
    _form: PostForm,
) -> Result<Response, UiError> {
    let file = ProjectFile::parse(DEMO_TOML, Path::new("examples/demo.toml"), Path::new("."))
        .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let project_id = crate::worker::import_project(
        &state.storage,
        &state.config.face,
        &file,
        crate::worker::IdentityPolicy::KeepExisting,
    )
    .await
    .map_err(|e| UiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    state.runs.start(&project_id, None, false).await?;
    Ok(page.redirect(&format!("projects/{project_id}?ok=demo")))
}
