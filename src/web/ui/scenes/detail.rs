//! `/scenes/{id}`: the scene's player, captions, step timeline, logs and actions.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use super::{project, scene};
use crate::domain::{IdentityId, RunId, SceneId};
use crate::domain::{LogStep, SceneStatus, StepName, StepStatus};
use crate::pipeline::StepOutput;
use crate::storage::db::{Db, LogFilter, LogRow, SceneRecord, StepRow};
use crate::web::AppState;
use crate::web::ui::view;
use crate::web::ui::{Layout, Page, UiError, ok};

/// One row of the step timeline.
#[derive(Debug, Clone)]
struct TimelineRow {
    step: &'static str,
    log_name: &'static str,
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
            scene_id: r.scene_id.as_deref().unwrap_or_default().to_string(),
            project: String::new(),
            project_id: r.project_id.as_deref().unwrap_or_default().to_string(),
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
    /// "looks like Deven Spear · 0.38" from the final clip's identity score, or empty.
    identity_badge: String,
    /// The score is above the face threshold (warning style).
    identity_warn: bool,
    preview: PreviewMedia,
    running: String,
    timeline: Vec<TimelineRow>,
    run_id: String,
    run_status: String,
    run_error: String,
    run_started: String,
    logs: Vec<RunLogs>,
}

/// The scene's log rows of one run (newest run first).
#[derive(Debug, Clone)]
struct RunLogs {
    /// Run id (empty for rows written outside a run).
    run_id: String,
    /// When the run's first row shown here was written.
    at: String,
    rows: Vec<LogLine>,
}

/// Splits rows (newest first) into consecutive groups of one run each.
fn by_run(lines: Vec<LogLine>, logs: &[LogRow]) -> Vec<RunLogs> {
    let mut groups: Vec<RunLogs> = Vec::new();
    for (line, row) in lines.into_iter().zip(logs) {
        let run = row.run_id.as_deref().unwrap_or_default().to_string();
        match groups.last_mut() {
            Some(g) if g.run_id == run => {
                g.at = line.at.clone();
                g.rows.push(line);
            }
            _ => groups.push(RunLogs {
                run_id: run,
                at: line.at.clone(),
                rows: vec![line],
            }),
        }
    }
    groups
}

/// The log step that describes a pipeline step.
fn log_step_of(step: &str) -> &'static [&'static str] {
    match step {
        "AUDIO" => &["AUDIO_GENERATION"],
        "IMAGE" => &["IDENTITY_ANCHOR", "IMAGE_GENERATION"],
        "VIDEO" => &["VIDEO_GENERATION"],
        "LIPSYNC" => &["LIPSYNC_APPLICATION"],
        "FINALIZE" => &["VIDEO_FINALIZE"],
        _ => &["VIDEO_ASSEMBLY"],
    }
}

/// A scene: its video with captions, the latest run's step timeline, its logs and actions.
pub(crate) async fn scene_page(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<SceneId>,
) -> Result<Response, UiError> {
    let db = &state.storage.db;
    let s = scene(&state, &id).await?;
    let p = project(&state, &s.project_id).await?;
    let active = db.active_run_for(&s.project_id, Some(&id)).await?;
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
    let run = match &latest {
        Some(run_id) => latest_run(db, run_id, &id, &logs).await?,
        None => LatestRun::default(),
    };
    let final_output = final_output(db, &id).await?;
    let captions = final_output
        .as_ref()
        .and_then(|o| o.object("vtt").map(|k| view::media(&page.root, k)))
        .unwrap_or_default();
    let who = identity_name(db, &s, p.default_identity_id.as_ref()).await?;
    let threshold = state.config.face.threshold;
    let (identity_badge, identity_warn) = final_output
        .and_then(|o| o.identity_distance)
        .map_or((String::new(), false), |d| {
            identity_badge(&who, d, threshold)
        });
    let preview = PreviewMedia::latest(db, &id, "FINALIZE", &page.root).await?;
    let fresh = state.runs.freshness(&p, std::slice::from_ref(&s)).await?;
    let out_of_date = fresh.scene_out_of_date(&s);
    let rendered = super::facts::scene_facts(db, &s, !out_of_date).await?;
    let facts = scene_facts(db, &s, rendered).await?;
    let sc = &s.scene;
    ok(&ScenePage {
        l: page.layout(format!("Scene {}", sc.name), "scenes"),
        id: s.id.to_string(),
        name: sc.name.clone(),
        project_id: p.id.to_string(),
        project_name: p.project.name.clone(),
        status: if active.is_some() && s.status != SceneStatus::Generating {
            "queued"
        } else if out_of_date {
            "out of date"
        } else {
            view::status_word(s.status.as_str())
        },
        dialogue: sc.dialogue.clone(),
        facts,
        video: media_url(&page.root, s.output_object.as_deref()),
        captions,
        thumbnail: media_url(&page.root, s.thumbnail_object.as_deref()),
        identity_badge,
        identity_warn,
        preview,
        running: active.map(String::from).unwrap_or_default(),
        timeline: run.timeline,
        run_id: latest.map(|r| r.to_string()).unwrap_or_default(),
        run_status: run.status,
        run_error: run.error,
        run_started: run.started,
        logs: by_run(log_lines(&s, &logs, &payloads), &logs),
    })
}

/// The scene's latest run as the page shows it (all empty when it has none).
#[derive(Default)]
struct LatestRun {
    timeline: Vec<TimelineRow>,
    status: String,
    error: String,
    started: String,
}

/// The run's status, error and start time, and one timeline row per scene step.
async fn latest_run(
    db: &Db,
    run_id: &RunId,
    scene_id: &SceneId,
    logs: &[LogRow],
) -> Result<LatestRun, UiError> {
    let Some(run) = db.get_run(run_id).await? else {
        return Ok(LatestRun::default());
    };
    let steps = db.run_steps(run_id).await?;
    Ok(LatestRun {
        timeline: StepName::SCENE_STEPS
            .iter()
            .map(|name| timeline_row(name.as_str(), &steps, scene_id, run_id, logs))
            .collect(),
        status: view::status_word(run.status.as_str()).to_string(),
        error: run.error.unwrap_or_default(),
        started: view::time(run.created_at),
    })
}

/// One timeline row: the scene's step in the run (pending when it has not started) with its notable logs.
fn timeline_row(
    step: &'static str,
    steps: &[StepRow],
    scene_id: &SceneId,
    run_id: &RunId,
    logs: &[LogRow],
) -> TimelineRow {
    let row = steps
        .iter()
        .find(|x| x.scene_id.as_ref() == Some(scene_id) && x.step.as_str() == step);
    let notes = logs
        .iter()
        .filter(|l| l.run_id.as_ref() == Some(run_id))
        .filter(|l| log_step_of(step).contains(&l.step.as_str()))
        .filter(|l| {
            l.level == "WARN" || l.level == "ERROR" || l.step == LogStep::IdentityAnchor.as_str()
        })
        .map(|l| format!("{} {}", l.level, l.message))
        .collect();
    TimelineRow {
        step,
        log_name: StepName::parse(step).map_or("", |n| n.log_step().as_str()),
        status: row
            .map_or(StepStatus::Pending, |r| r.status)
            .as_str()
            .to_string(),
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
    }
}

/// The output of the scene's last finished FINALIZE.
async fn final_output(db: &Db, scene_id: &SceneId) -> Result<Option<StepOutput>, UiError> {
    Ok(db
        .ui_scene_final_output(scene_id)
        .await?
        .and_then(|json| serde_json::from_str::<StepOutput>(&json).ok()))
}

/// The display name of the scene's identity (its own, else the project's default).
async fn identity_name(
    db: &Db,
    s: &SceneRecord,
    project_default: Option<&IdentityId>,
) -> Result<String, UiError> {
    let Some(id) = s.identity_id.as_ref().or(project_default) else {
        return Ok("the identity".into());
    };
    Ok(db
        .get_identity(id)
        .await?
        .map_or_else(|| "the identity".into(), |i| i.identity.display_name))
}

/// The identity badge of a final clip whose worst sampled frame is `distance` from `who`'s face print, and
/// whether it is above the threshold.
fn identity_badge(who: &str, distance: f64, threshold: f64) -> (String, bool) {
    if distance < threshold {
        (format!("looks like {who} · {distance:.2}"), false)
    } else {
        (format!("may not look like {who} · {distance:.2}"), true)
    }
}

/// The newest preview's video and captions (empty when there is none).
#[derive(Default)]
pub(crate) struct PreviewMedia {
    /// Video URL.
    pub video: String,
    /// WebVTT URL.
    pub captions: String,
}

impl PreviewMedia {
    /// The newest preview output of `step` for `scope` (a scene id with FINALIZE, a project id with ASSEMBLE).
    pub(crate) async fn latest(
        db: &Db,
        scope: &str,
        step: &str,
        root: &str,
    ) -> Result<Self, UiError> {
        let Some(json) = db.latest_output(scope, step, true).await? else {
            return Ok(Self::default());
        };
        let out = serde_json::from_str::<StepOutput>(&json).unwrap_or_default();
        let url = |role: &str| {
            out.object(role)
                .map(|k| view::media(root, k))
                .unwrap_or_default()
        };
        Ok(Self {
            video: url("video"),
            captions: url("vtt"),
        })
    }
}

/// The URL of a stored media object, or empty when there is none.
fn media_url(root: &str, key: Option<&str>) -> String {
    key.map(|k| view::media(root, k)).unwrap_or_default()
}

/// The scene's settings that are set, as (label, value): identity, mode, animation, looks, durations.
async fn scene_facts(
    db: &Db,
    s: &SceneRecord,
    rendered: super::facts::SceneFacts,
) -> Result<Vec<(&'static str, String)>, UiError> {
    let sc = &s.scene;
    let mode = match rendered.ran_mode.as_str() {
        "" => sc.generation_mode.as_str().to_string(),
        ran if ran == sc.generation_mode.as_str() => ran.to_string(),
        ran => format!("{} (ran as {ran})", sc.generation_mode.as_str()),
    };
    let identity = match &s.identity_id {
        Some(iid) => db
            .get_identity(iid)
            .await?
            .map(|i| i.identity.display_name)
            .unwrap_or_else(|| "a deleted identity".into()),
        None => "project default".into(),
    };
    let recording = asset_label(db, s.speech_asset_id.as_ref())
        .await?
        .map(|n| format!("{n} (spoken instead of text-to-speech; caption timings estimated)"));
    let background = asset_label(db, s.background_asset_id.as_ref())
        .await?
        .map(|n| match sc.generation_mode {
            crate::domain::GenerationMode::DigitalTwin => {
                format!("{n} (unused in digital twin mode)")
            }
            _ => format!("{n} (behind the framed headshot in standard mode)"),
        });
    Ok([
        ("Identity", Some(identity)),
        ("Recording", recording),
        ("Background", background),
        ("Mode", Some(mode)),
        ("Animation", Some(sc.animation.as_str().to_string())),
        ("Environment", sc.environment.clone()),
        ("Wardrobe", sc.wardrobe.clone()),
        ("Mood lighting", sc.mood_lighting.clone()),
        ("Camera", sc.camera.clone()),
        ("Movement", sc.movement.clone()),
        (
            "Speech",
            rendered.speech.strip_prefix("speech ").map(str::to_string),
        ),
        ("Target duration", sc.target_duration.map(view::seconds)),
        ("Length", s.duration_seconds.map(view::seconds)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect())
}

/// An asset's display name (its uploaded file name, else its id); `None` without one.
async fn asset_label(
    db: &Db,
    id: Option<&crate::domain::AssetId>,
) -> Result<Option<String>, UiError> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(Some(
        db.get_asset(id)
            .await?
            .and_then(|a| a.original_name)
            .unwrap_or_else(|| id.to_string()),
    ))
}

/// The scene's log rows for display, each named after the scene and carrying its payload.
fn log_lines(s: &SceneRecord, logs: &[LogRow], payloads: &HashMap<String, String>) -> Vec<LogLine> {
    let scene_names = [(s.id.clone(), s.scene.name.clone())];
    logs.iter()
        .map(|r| {
            let scene = scene_names
                .iter()
                .find(|(i, _)| Some(i) == r.scene_id.as_ref())
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            LogLine::new(r, scene, payloads.get(&r.id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_identity_badge_warns_above_the_threshold() {
        let (text, warn) = super::identity_badge("Deven Spear", 0.381, 0.6);
        assert_eq!(
            (text.as_str(), warn),
            ("looks like Deven Spear · 0.38", false)
        );
        let (text, warn) = super::identity_badge("Deven Spear", 0.71, 0.6);
        assert!(warn && text.contains("0.71"), "{text}");
    }
}
