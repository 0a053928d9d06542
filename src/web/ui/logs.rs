//! `/logs`: filter by project, scene, step (every guide step, `IDENTITY_ANCHOR` included) and level; page
//! through older rows; the redacted payload of each row; and a live tail (`/logs/tail`, SSE) that pushes new
//! matching rows when the worker reports progress.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Deserialize;

use super::scenes::LogLine;
use super::{Layout, Page, UiError, enc, render};
use crate::domain::{LogStep, ProjectId, SceneId, StepName};
use crate::storage::db::{LogFilter, LogRow};
use crate::web::AppState;

/// Rows per page.
const PAGE_SIZE: i64 = 50;

/// The levels, most detailed first.
const LEVELS: [&str; 4] = ["DEBUG", "INFO", "WARN", "ERROR"];

/// Log filters (all optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogQuery {
    project: Option<String>,
    scene: Option<String>,
    step: Option<String>,
    level: Option<String>,
    cursor: Option<String>,
    after: Option<String>,
}

impl LogQuery {
    fn filter(&self, limit: i64) -> LogFilter {
        let v = |o: &Option<String>| {
            o.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        LogFilter {
            project: v(&self.project).map(ProjectId::from),
            scene: v(&self.scene).map(SceneId::from),
            step: v(&self.step),
            level: v(&self.level),
            before: v(&self.cursor),
            limit,
        }
    }

    /// The errors of invalid step/level values, in words.
    fn problems(&self) -> Vec<String> {
        let f = self.filter(1);
        let mut out = Vec::new();
        if let Some(step) = &f.step
            && !LogStep::ALL.iter().any(|s| s.as_str() == step)
        {
            out.push(format!(
                "{step:?} is not a step of the guide; choose one from the list."
            ));
        }
        if let Some(level) = &f.level
            && !LEVELS.contains(&level.as_str())
        {
            out.push(format!(
                "{level:?} is not a level; choose DEBUG, INFO, WARN or ERROR."
            ));
        }
        out
    }
}

/// The query string of the current filters (without paging).
fn filter_query(f: &LogFilter) -> String {
    [
        ("project", f.project.as_deref()),
        ("scene", f.scene.as_deref()),
        ("step", f.step.as_deref()),
        ("level", f.level.as_deref()),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k}={}", enc(v))))
    .collect::<Vec<_>>()
    .join("&")
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    l: Layout,
    root: String,
    projects: Vec<(String, String)>,
    scenes: Vec<(String, String)>,
    /// (log step name, with the API's step name beside it).
    steps: Vec<(&'static str, String)>,
    levels: Vec<&'static str>,
    project: String,
    scene: String,
    step: String,
    level: String,
    rows: Vec<LogLine>,
    problems: Vec<String>,
    older: String,
    newest: String,
    paged: bool,
    tail: String,
}

#[derive(Template)]
#[template(path = "log_row_fragment.html")]
struct RowFragment {
    root: String,
    r: LogLine,
}

/// Rows with their scene and project names and payloads.
async fn lines(state: &AppState, rows: &[LogRow]) -> Result<Vec<LogLine>, UiError> {
    let db = &state.storage.db;
    let payloads = db
        .ui_log_payloads(&rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>())
        .await?;
    let mut scene_names: HashMap<SceneId, String> = HashMap::new();
    let mut project_names: HashMap<ProjectId, String> = HashMap::new();
    for r in rows {
        if let Some(sid) = &r.scene_id
            && !scene_names.contains_key(sid)
        {
            let name = db
                .get_scene(sid)
                .await?
                .map(|s| s.scene.name)
                .unwrap_or_default();
            scene_names.insert(sid.clone(), name);
        }
        if let Some(pid) = &r.project_id
            && !project_names.contains_key(pid)
        {
            let name = db
                .get_project(pid)
                .await?
                .map(|p| p.project.name)
                .unwrap_or_default();
            project_names.insert(pid.clone(), name);
        }
    }
    Ok(rows
        .iter()
        .map(|r| {
            let scene = r
                .scene_id
                .as_ref()
                .and_then(|s| scene_names.get(s))
                .cloned()
                .unwrap_or_default();
            let mut line = LogLine::new(r, scene, payloads.get(&r.id));
            line.project = r
                .project_id
                .as_ref()
                .and_then(|p| project_names.get(p))
                .cloned()
                .unwrap_or_default();
            line
        })
        .collect())
}

/// The log page.
pub(crate) async fn page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<LogQuery>,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let filter = q.filter(PAGE_SIZE);
    let problems = q.problems();
    let projects: Vec<(String, String)> = db
        .list_projects()
        .await?
        .into_iter()
        .map(|p| (p.id.into_string(), p.project.name))
        .collect();
    let scenes = match &filter.project {
        Some(p) => db
            .list_scenes(p, -1, 10_000)
            .await?
            .into_iter()
            .map(|s| (s.id.into_string(), s.scene.name))
            .collect(),
        None => Vec::new(),
    };
    let rows = if problems.is_empty() {
        db.query_logs(&filter).await?
    } else {
        Vec::new()
    };
    let query = filter_query(&filter);
    let older = if rows.len() as i64 == PAGE_SIZE {
        rows.last()
            .map(|r| {
                let sep = if query.is_empty() { "" } else { "&" };
                format!("{}logs?{query}{sep}cursor={}", page.root, enc(&r.id))
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    let newest = if query.is_empty() {
        format!("{}logs", page.root)
    } else {
        format!("{}logs?{query}", page.root)
    };
    let paged = filter.before.is_some();
    let tail = if paged || !problems.is_empty() {
        String::new()
    } else {
        let after = rows.first().map(|r| r.id.clone()).unwrap_or_default();
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}logs/tail?{query}{sep}after={}", page.root, enc(&after))
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        &LogsPage {
            l: page.layout("Logs", "logs"),
            root: page.root.clone(),
            projects,
            scenes,
            steps: LogStep::ALL.iter().map(|s| step_option(*s)).collect(),
            levels: LEVELS.to_vec(),
            project: filter.project.as_deref().unwrap_or_default().to_string(),
            scene: filter.scene.as_deref().unwrap_or_default().to_string(),
            step: filter.step.clone().unwrap_or_default(),
            level: filter.level.clone().unwrap_or_default(),
            rows: lines(&state, &rows).await?,
            problems,
            older,
            newest,
            paged,
            tail,
        },
    )
}

/// A step filter choice: the log name, labelled with the step name `--json` and the API use.
fn step_option(s: LogStep) -> (&'static str, String) {
    let api = StepName::SCENE_STEPS
        .into_iter()
        .chain([StepName::Assemble])
        .find(|n| n.log_step() == s);
    let label = match (s, api) {
        (LogStep::IdentityAnchor, _) => format!("{} (IMAGE: the mode chosen)", s.as_str()),
        (_, Some(n)) => format!("{} ({})", s.as_str(), n.as_str()),
        (_, None) => s.as_str().to_string(),
    };
    (s.as_str(), label)
}

/// How often the live tail looks for rows when no progress in this process prompts it.
const TAIL_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Live tail: the new rows matching the filters (event `row`, data = the row's HTML as a JSON string), oldest
/// first, whichever process wrote them; looked up after each progress event here, and every [`TAIL_POLL`].
pub(crate) async fn tail(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<LogQuery>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, UiError> {
    if let Some(p) = q.problems().first() {
        return Err(UiError::new(StatusCode::UNPROCESSABLE_ENTITY, p.clone()));
    }
    let mut filter = q.filter(200);
    filter.before = None;
    let after = q.after.clone().unwrap_or_default();
    let rx = state.runs.subscribe();
    // The rows are inserted into the page at `/logs`, one level above this stream.
    let _ = page;
    let root = super::root_for("/logs");
    let stream = futures::stream::unfold(
        (state, rx, filter, after, root, VecDeque::<Event>::new()),
        |(state, mut rx, filter, mut after, root, mut queue)| async move {
            loop {
                if let Some(ev) = queue.pop_front() {
                    return Some((Ok(ev), (state, rx, filter, after, root, queue)));
                }
                // Progress in this process prompts a look at once; rows written by other worker processes
                // are found by looking every TAIL_POLL.
                if let Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) =
                    tokio::time::timeout(TAIL_POLL, rx.recv()).await
                {
                    return None;
                }
                let Ok(rows) = state.storage.db.ui_logs_after(&filter, &after).await else {
                    continue;
                };
                let Ok(lines) = lines(&state, &rows).await else {
                    continue;
                };
                for r in lines {
                    after = r.id.clone();
                    let html = RowFragment {
                        root: root.clone(),
                        r,
                    }
                    .render()
                    .unwrap_or_default();
                    let data = serde_json::to_string(&html).unwrap_or_default();
                    queue.push_back(Event::default().event("row").data(data));
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
