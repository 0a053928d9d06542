//! `/runs/{id}`: one run — every step it had (ASSEMBLE included) with the API's step name beside the log
//! name, provider, cache, time and cost; the prompts it sent (image and video, so the trigger word can be
//! checked); and its log rows.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use super::scenes::LogLine;
use super::{Layout, Page, UiError, ok, view};
use crate::domain::{LogStep, RunId, SceneId, StepName, StepStatus};
use crate::pipeline::PROMPT_PREFIX;
use crate::storage::db::{LogRow, RunRow, StepRow};
use crate::web::AppState;

/// Log rows shown on a run page.
const RUN_LOG_LIMIT: i64 = 1000;

/// One step of the run.
#[derive(Debug, Clone)]
struct StepLine {
    scene: String,
    scene_id: String,
    step: &'static str,
    log_name: &'static str,
    status: &'static str,
    provider: String,
    cached: bool,
    took: String,
    cost: String,
    attempts: i64,
    error: String,
}

/// The prompts one scene's steps sent.
#[derive(Debug, Clone, Default)]
struct Prompts {
    scene: String,
    image: String,
    video: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    l: Layout,
    id: String,
    project_id: String,
    project_name: String,
    what: String,
    status: &'static str,
    running: String,
    started: String,
    took: String,
    error: String,
    preview: bool,
    total_cost: String,
    steps: Vec<StepLine>,
    prompts: Vec<Prompts>,
    logs: Vec<LogLine>,
}

/// The run page.
pub(crate) async fn run_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<RunId>,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let run = db
        .get_run(&id)
        .await?
        .ok_or_else(|| UiError::not_found("run"))?;
    let project = db
        .get_project(&run.project_id)
        .await?
        .ok_or_else(|| UiError::not_found("project"))?;
    let scenes: Vec<(SceneId, String)> = db
        .list_scenes(&run.project_id, -1, 10_000)
        .await?
        .into_iter()
        .map(|s| (s.id, s.scene.name))
        .collect();
    let names: HashMap<&str, &str> = scenes
        .iter()
        .map(|(i, n)| (i.as_str(), n.as_str()))
        .collect();
    let mut rows = db.run_steps(&id).await?;
    let order = |sid: &Option<SceneId>| {
        sid.as_ref()
            .and_then(|s| scenes.iter().position(|(i, _)| i == s))
            .unwrap_or(usize::MAX)
    };
    rows.sort_by_key(|r| (order(&r.scene_id), r.step));
    let logs = db.ui_run_logs(&id, RUN_LOG_LIMIT).await?;
    let payloads = db
        .ui_log_payloads(&logs.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
        .await?;
    let scene_name = |sid: Option<&SceneId>| {
        sid.and_then(|s| names.get(s.as_str()).map(|n| n.to_string()))
            .unwrap_or_default()
    };
    let lines = logs
        .iter()
        .map(|r| LogLine::new(r, scene_name(r.scene_id.as_ref()), payloads.get(&r.id)))
        .collect();
    let what = match &run.scene_id {
        None => "all scenes".to_string(),
        Some(sid) => format!("scene {}", scene_name(Some(sid))),
    };
    ok(&RunPage {
        l: page.layout(format!("Run of {}", project.project.name), "projects"),
        id: run.id.to_string(),
        project_id: project.id.to_string(),
        project_name: project.project.name.clone(),
        what,
        status: view::status_word(run.status.as_str()),
        running: if !run.status.is_final() {
            run.id.to_string()
        } else {
            String::new()
        },
        started: view::time(run.created_at),
        took: run
            .finished_at
            .map(|f| view::ms(f - run.created_at))
            .unwrap_or_default(),
        error: run.error.clone().unwrap_or_default(),
        preview: run.preview,
        total_cost: view::usd(rows.iter().map(|r| r.cost_usd).sum()),
        steps: rows
            .iter()
            .map(|r| step_line(r, scene_name(r.scene_id.as_ref())))
            .collect(),
        prompts: prompts(&run, &logs, &scenes),
        logs: lines,
    })
}

/// One step row as the page shows it.
fn step_line(r: &StepRow, scene: String) -> StepLine {
    StepLine {
        scene: if r.step == StepName::Assemble {
            "the project".into()
        } else {
            scene
        },
        scene_id: r.scene_id.as_deref().unwrap_or_default().to_string(),
        step: r.step.as_str(),
        log_name: r.step.log_step().as_str(),
        status: view::status_word(r.status.as_str()),
        provider: r.provider.clone().unwrap_or_default(),
        cached: r.cached,
        took: match (r.started_at, r.finished_at, r.status) {
            (Some(a), Some(b), StepStatus::Succeeded | StepStatus::Failed) => view::ms(b - a),
            _ => String::new(),
        },
        cost: view::usd(r.cost_usd),
        attempts: r.attempts,
        error: r.error.clone().unwrap_or_default(),
    }
}

/// The last image and video prompt each scene of the run logged, in scene order.
fn prompts(run: &RunRow, logs: &[LogRow], scenes: &[(SceneId, String)]) -> Vec<Prompts> {
    let mut by_scene: HashMap<&str, Prompts> = HashMap::new();
    for l in logs {
        let (Some(sid), Some(prompt)) =
            (l.scene_id.as_deref(), l.message.strip_prefix(PROMPT_PREFIX))
        else {
            continue;
        };
        let entry = by_scene.entry(sid).or_default();
        if l.step == LogStep::ImageGeneration.as_str() {
            entry.image = prompt.to_string();
        } else if l.step == LogStep::VideoGeneration.as_str() {
            entry.video = prompt.to_string();
        }
    }
    scenes
        .iter()
        .filter(|(id, _)| run.scene_id.as_ref().is_none_or(|s| s == id))
        .filter_map(|(id, name)| {
            by_scene.remove(id.as_str()).map(|p| Prompts {
                scene: name.clone(),
                ..p
            })
        })
        .collect()
}
