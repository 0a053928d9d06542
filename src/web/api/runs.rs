//! `/api/runs/{id}` and `/api/logs`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::domain::LogStep;
use crate::storage::db::LogFilter;
use crate::web::AppState;
use crate::web::error::{ApiError, ApiQuery};

/// A run with its steps (only those of `scene` when given).
pub async fn run_json(
    state: &AppState,
    run_id: &str,
    scene: Option<&str>,
) -> Result<Value, ApiError> {
    let db = &state.storage.db;
    let (project_id, scene_id, status, error, created_at, finished_at) = db
        .get_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found("run"))?;
    let steps: Vec<Value> = db
        .run_steps(run_id)
        .await?
        .into_iter()
        .filter(|s| scene.is_none_or(|sc| s.scene_id == sc))
        .map(|s| {
            json!({
                "sceneId": if s.scene_id.is_empty() { Value::Null } else { json!(s.scene_id) },
                "step": s.step, "status": s.status, "provider": s.provider, "cached": s.cached,
                "attempts": s.attempts, "costUsd": s.cost_usd, "error": s.error,
                "startedAt": s.started_at, "finishedAt": s.finished_at,
                "ms": match (s.started_at, s.finished_at) { (Some(a), Some(b)) => json!(b - a), _ => Value::Null },
            })
        })
        .collect();
    Ok(json!({
        "id": run_id, "projectId": project_id, "sceneId": if scene_id.is_empty() { Value::Null } else { json!(scene_id) },
        "status": status, "error": error, "createdAt": created_at, "finishedAt": finished_at, "steps": steps,
    }))
}

/// A run: status and steps (provider, cached, timings, cost).
#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = Object), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(run_json(&state, &id, None).await?))
}

/// Log query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Project id.
    project: Option<String>,
    /// Scene id.
    scene: Option<String>,
    /// Guide step name (`AUDIO_GENERATION`, `IDENTITY_ANCHOR`, …).
    step: Option<String>,
    /// `DEBUG`, `INFO`, `WARN`, `ERROR`.
    level: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1–500 (default 100).
    limit: Option<i64>,
}

/// Log rows, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/logs", tag = "runs", params(LogQuery), responses((status = 200, body = Object), (status = 422)))]
pub async fn logs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "items": rows, "nextCursor": next })))
}

/// Live progress of a run as Server-Sent Events: `step` events (`started`, `finished`, `failed`) and one
/// final `finished` event with the run's status, after which the stream ends.
#[utoipa::path(get, path = "/api/runs/{id}/events", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404)))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<
    axum::response::sse::Sse<
        impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use crate::pipeline::EventKind;
    use crate::worker::RunEvent;
    use axum::response::sse::{Event as Sse_, KeepAlive, Sse};

    let mut rx = state.runs.as_ref().map(|r| r.subscribe());
    let db = &state.storage.db;
    let (_, _, status, _, _, _) = db
        .get_run(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("run"))?;
    // Catch up from the database first (steps that started or finished before the client connected).
    let mut backlog: std::collections::VecDeque<Sse_> = db
        .run_steps(&id)
        .await?
        .into_iter()
        .filter(|s| s.status == "running" || s.status == "succeeded" || s.status == "failed")
        .map(|s| {
            let event = match s.status.as_str() {
                "running" => "started",
                "succeeded" => "finished",
                _ => "failed",
            };
            let ms = match (s.started_at, s.finished_at) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            };
            let data = json!({ "sceneId": if s.scene_id.is_empty() { None } else { Some(s.scene_id) }, "step": s.step,
                               "event": event, "cached": s.cached, "ms": ms, "reason": s.error });
            Sse_::default().event("step").data(data.to_string())
        })
        .collect();
    let done = !matches!(status.as_str(), "queued" | "running") || rx.is_none();
    if done {
        backlog.push_back(
            Sse_::default()
                .event("finished")
                .data(json!({ "runId": id, "status": status }).to_string()),
        );
    }
    let db = db.clone();
    let stream = futures::stream::unfold(
        (backlog, rx.take(), id, done),
        move |(mut backlog, mut rx, id, done)| {
            let db = db.clone();
            async move {
                if let Some(ev) = backlog.pop_front() {
                    return Some((Ok(ev), (backlog, rx, id, done)));
                }
                if done {
                    return None;
                }
                let receiver = rx.as_mut()?;
                loop {
                    // A run executed by another worker process sends no events here: check its stored status
                    // every few seconds so the stream still ends when it does.
                    let next = match tokio::time::timeout(Duration::from_secs(2), receiver.recv())
                        .await
                    {
                        Ok(next) => next,
                        Err(_) => match db.get_run(&id).await {
                            Ok(Some((_, _, status, _, _, _)))
                                if !matches!(status.as_str(), "queued" | "running") =>
                            {
                                let data = json!({ "runId": id, "status": status });
                                return Some((
                                    Ok(Sse_::default().event("finished").data(data.to_string())),
                                    (backlog, rx, id, true),
                                ));
                            }
                            _ => continue,
                        },
                    };
                    match next {
                        Ok(RunEvent::Step(e)) if e.run_id == id => {
                            let (kind, cached, ms, reason) = match &e.kind {
                                EventKind::Started => ("started", None, None, None),
                                EventKind::Finished { cached, ms } => {
                                    ("finished", Some(*cached), Some(*ms), None)
                                }
                                EventKind::Failed(r) => ("failed", None, None, Some(r.clone())),
                            };
                            let data = json!({ "sceneId": e.scene_id, "scene": e.scene, "step": e.step.as_str(), "event": kind,
                                       "cached": cached, "ms": ms, "reason": reason });
                            return Some((
                                Ok(Sse_::default().event("step").data(data.to_string())),
                                (backlog, rx, id, false),
                            ));
                        }
                        Ok(RunEvent::Finished { run_id, status }) if run_id == id => {
                            let data = json!({ "runId": run_id, "status": status });
                            return Some((
                                Ok(Sse_::default().event("finished").data(data.to_string())),
                                (backlog, rx, id, true),
                            ));
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            continue;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
