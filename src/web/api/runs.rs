//! `/api/runs/{id}` and `/api/logs`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, Sse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::domain::{LogStep, RunStatus, StepName, StepStatus};
use crate::domain::{ProjectId, RunId, SceneId};
use crate::storage::db::{Db, LogFilter};
use crate::web::AppState;
use crate::web::api::follow::{self, FOLLOW_POLL};
use crate::web::error::{ApiError, ApiQuery};
use crate::worker::RunEvent;

/// A run record as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Run id.
    #[schema(value_type = String)]
    pub id: RunId,
    /// Its project.
    #[schema(value_type = String)]
    pub project_id: ProjectId,
    /// The scene of a scene run; `null` for a whole-project run.
    #[schema(value_type = Option<String>)]
    pub scene_id: Option<SceneId>,
    /// `queued`, `running`, `succeeded`, `failed` or `canceled`.
    #[schema(value_type = String)]
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// End time, epoch ms.
    pub finished_at: Option<i64>,
    /// A preview: rendered with the local providers only ($0); its outputs never replace the paid ones.
    pub preview: bool,
    /// Its steps, in execution order.
    pub steps: Vec<StepView>,
}

/// One step of a run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// The scene; `null` for the project's ASSEMBLE.
    #[schema(value_type = Option<String>)]
    pub scene_id: Option<SceneId>,
    /// `AUDIO`, `IMAGE`, `VIDEO`, `LIPSYNC`, `FINALIZE` or `ASSEMBLE`.
    pub step: String,
    /// `pending`, `running`, `succeeded`, `failed`, `skipped` or `canceled`.
    pub status: String,
    /// The provider that did (or would do) the work.
    pub provider: Option<String>,
    /// Served from the cache (nothing paid).
    pub cached: bool,
    /// Executions started.
    pub attempts: i64,
    /// Cost, USD.
    pub cost_usd: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// Start, epoch ms.
    pub started_at: Option<i64>,
    /// End, epoch ms.
    pub finished_at: Option<i64>,
    /// Duration, ms.
    pub ms: Option<i64>,
    /// Distance of the face to the identity's face print (IMAGE: the kept still; FINALIZE: the worst sampled
    /// frame); `null` where nothing was scored. Below the face threshold (0.6 by default) it looks like the
    /// identity.
    pub identity_distance: Option<f64>,
    /// FINALIZE: the median distance of the sampled frames; `null` elsewhere.
    pub identity_median: Option<f64>,
}

/// A page of log rows.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    /// Rows, newest first.
    pub items: Vec<crate::storage::db::LogRow>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A run with its steps (only those of `scene` when given).
pub async fn run_view(
    state: &AppState,
    run_id: &RunId,
    scene: Option<&SceneId>,
) -> Result<RunView, ApiError> {
    let db = &state.storage.db;
    let run = db
        .get_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found("run"))?;
    let steps = db
        .run_steps(run_id)
        .await?
        .into_iter()
        .filter(|s| scene.is_none_or(|sc| s.scene_id.as_deref() == Some(sc)))
        .map(|s| {
            let scored = identity_scores(s.output.as_deref());
            StepView {
                scene_id: s.scene_id,
                step: s.step.as_str().to_string(),
                status: s.status.as_str().to_string(),
                provider: s.provider,
                cached: s.cached,
                attempts: s.attempts,
                cost_usd: s.cost_usd,
                error: s.error,
                started_at: s.started_at,
                finished_at: s.finished_at,
                ms: s.started_at.zip(s.finished_at).map(|(a, b)| b - a),
                identity_distance: scored.0,
                identity_median: scored.1,
            }
        })
        .collect();
    Ok(RunView {
        id: run.id,
        project_id: run.project_id,
        scene_id: run.scene_id,
        status: run.status,
        error: run.error,
        created_at: run.created_at,
        finished_at: run.finished_at,
        preview: run.preview,
        steps,
    })
}

/// The identity distance and median a stored step output records.
fn identity_scores(output: Option<&str>) -> (Option<f64>, Option<f64>) {
    output
        .and_then(|o| serde_json::from_str::<crate::pipeline::StepOutput>(o).ok())
        .map_or((None, None), |o| (o.identity_distance, o.identity_median))
}

/// A run: status and steps (provider, cached, timings cost, identity scores).
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<RunId>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(run_view(&state, &id, None).await?))
}

/// Log query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Project id.
    #[param(value_type = Option<String>)]
    project: Option<ProjectId>,
    /// Scene id.
    #[param(value_type = Option<String>)]
    scene: Option<SceneId>,
    /// Guide step name (`AUDIO_GENERATION`, `IDENTITY_ANCHOR`, …).
    step: Option<String>,
    /// `DEBUG`, `INFO`, `WARN`, `ERROR`: rows of this level and above (`WARN` includes `ERROR`).
    level: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–500 (default 100).
    limit: Option<i64>,
}

/// Log rows, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/logs", tag = "runs", params(LogQuery), responses((status = 200, body = LogPage), (status = 422)))]
pub async fn logs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let mut e = crate::domain::FieldErrors::default();
    if let Some(step) = &q.step
        && !LogStep::ALL.iter().any(|s| s.as_str() == step)
    {
        e.push(
            "step",
            "must be one of the guide's step names, e.g. IDENTITY_ANCHOR",
        );
    }
    if let Some(level) = &q.level
        && !["DEBUG", "INFO", "WARN", "ERROR"].contains(&level.as_str())
    {
        e.push("level", "must be DEBUG, INFO, WARN or ERROR");
    }
    if !e.is_empty() {
        return Err(e.into());
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = state
        .storage
        .db
        .query_logs(&LogFilter {
            project: q.project,
            scene: q.scene,
            step: q.step,
            level: q.level,
            before: q.cursor,
            limit,
        })
        .await?;
    let next = if rows.len() as i64 == limit {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Json(LogPage {
        items: rows,
        next_cursor: next,
    }))
}

/// Live progress of a run as Server-Sent Events: `step` events (`started`, `finished`, `failed`) and one
/// final `finished` event with the run's status, after which the stream ends. Progress is read from the
/// stored steps, so a run executed by any worker process streams live; a step in this process wakes the
/// stream at once, others are seen within [`FOLLOW_POLL`].
#[utoipa::path(get, path = "/api/runs/{id}/events", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404)))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<RunId>,
) -> Result<Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let db = state.storage.db.clone();
    db.get_run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("run"))?;
    Ok(follow::sse(RunSource {
        wake: state.runs.subscribe(),
        db,
        id,
        seen: HashMap::new(),
    }))
}

/// Turns the stored steps of one run into events, each state change once.
struct RunSource {
    db: Db,
    id: RunId,
    /// Local progress of this process, used only as a prompt to look again.
    wake: tokio::sync::broadcast::Receiver<RunEvent>,
    /// The last event sent per (scene id, step).
    seen: HashMap<(Option<SceneId>, StepName), &'static str>,
}

impl follow::Source for RunSource {
    fn label(&self) -> String {
        format!("run {}", self.id)
    }

    /// Until this process reports progress of the run, or the poll interval passes.
    async fn wait(&mut self) {
        let rx = &mut self.wake;
        let id = &self.id;
        let _ = tokio::time::timeout(FOLLOW_POLL, async {
            loop {
                match rx.recv().await {
                    Ok(RunEvent::Step(e)) if e.run_id == *id => return,
                    Ok(RunEvent::Finished { run_id, .. }) if run_id == *id => return,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await
                    }
                    _ => {}
                }
            }
        })
        .await;
    }

    /// Queues an event for every step whose state changed, then the end when the run is over. The run's
    /// status is read before its steps, so a finished run's steps are already final when read.
    async fn look(
        &mut self,
        out: &mut VecDeque<SseEvent>,
    ) -> Result<bool, crate::storage::db::DbError> {
        let Some(run) = self.db.get_run(&self.id).await? else {
            return Ok(true);
        };
        for s in self.db.run_steps(&self.id).await? {
            let event = match s.status {
                StepStatus::Running => "started",
                StepStatus::Succeeded => "finished",
                StepStatus::Failed => "failed",
                _ => continue,
            };
            let key = (s.scene_id.clone(), s.step);
            if self.seen.get(&key) == Some(&event) {
                continue;
            }
            self.seen.insert(key, event);
            let ms = match (s.started_at, s.finished_at) {
                (Some(a), Some(b)) if event != "started" => Some(b - a),
                _ => None,
            };
            let (distance, median) = identity_scores(s.output.as_deref());
            let data = json!({
                "sceneId": s.scene_id,
                "step": s.step.as_str(), "event": event, "provider": s.provider,
                "cached": (event == "finished").then_some(s.cached), "ms": ms, "reason": s.error,
                "identityDistance": distance, "identityMedian": median,
            });
            out.push_back(SseEvent::default().event("step").data(data.to_string()));
        }
        if run.status.is_final() {
            let data = json!({ "runId": self.id, "status": run.status });
            out.push_back(SseEvent::default().event("finished").data(data.to_string()));
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_records_read_the_identity_scores_of_the_stored_output() {
        let out = crate::pipeline::StepOutput {
            identity_distance: Some(0.41),
            identity_median: Some(0.3),
            ..Default::default()
        };
        let json = serde_json::to_string(&out).unwrap();
        assert_eq!(identity_scores(Some(&json)), (Some(0.41), Some(0.3)));
        assert_eq!(identity_scores(Some("{\"objects\":{}}")), (None, None));
        assert_eq!(identity_scores(None), (None, None));
    }
}
