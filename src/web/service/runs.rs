//! Run operations shared by the API and the pages (starting goes through `RunService::start` directly).

use crate::domain::{RunId, SceneId};
use crate::web::AppState;
use crate::web::error::ApiError;

/// Cancels the running generation of scene `id`; returns the canceled run's id. 404 for an unknown scene, 409
/// when nothing runs for it or another process owns the run.
pub async fn cancel_scene(state: &AppState, id: &SceneId) -> Result<RunId, ApiError> {
    let db = &state.storage.db;
    let scene = db
        .get_scene(id)
        .await?
        .ok_or_else(|| ApiError::not_found("scene"))?;
    let Some(run) = db.active_run_for(&scene.project_id, Some(id)).await? else {
        return Err(ApiError::conflict(
            "id",
            "no generation is running for this scene",
        ));
    };
    if !state.runs.cancel(&run).await? {
        return Err(ApiError::conflict(
            "id",
            "the run is owned by another process",
        ));
    }
    Ok(run)
}
