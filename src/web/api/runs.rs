//! `/api/runs/{id}` and `/api/logs`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::domain::LogStep;
use crate::storage::db::LogFilter;
use crate::web::AppState;
use crate::web::error::ApiError;

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
    Query(q): Query<LogQuery>,
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
