//! Project operations shared by the API and the pages.

use crate::domain::ProjectId;
use crate::storage::db::{ProjectRecord, SceneRecord};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::worker::Freshness;

/// Deletes a project with its scenes and runs: 404 when unknown, 409 while it is rendering.
pub async fn delete(state: &AppState, id: &ProjectId) -> Result<(), ApiError> {
    let db = &state.storage.db;
    if db.get_project(id).await?.is_none() {
        return Err(ApiError::not_found("project"));
    }
    if let Some(run) = db.active_run_for(id, None).await? {
        return Err(ApiError::conflict(
            "id",
            format!("the project is rendering (run {run})"),
        ));
    }
    db.delete_project(id).await?;
    Ok(())
}

/// Which of the project's recorded videos are out of date: the project's, and each of `scenes`' (see
/// [`crate::worker::Freshness`]). `scenes` may be a page of them; the project's flag needs all of them.
pub async fn freshness(
    state: &AppState,
    project: &ProjectRecord,
    scenes: &[SceneRecord],
) -> Result<Freshness, ApiError> {
    Ok(state.runs.freshness(project, scenes).await?)
}

/// The project's video is out of date (an edit, a reorder, a removed or a failed scene since it was assembled).
pub async fn project_out_of_date(
    state: &AppState,
    project: &ProjectRecord,
) -> Result<bool, ApiError> {
    let scenes = state
        .storage
        .db
        .list_scenes(&project.id, -1, 10_000)
        .await?;
    let fresh = freshness(state, project, &scenes).await?;
    Ok(fresh.project_out_of_date(project, &scenes))
}

/// The scene's recorded video is out of date (its inputs changed since it was rendered).
pub async fn scene_out_of_date(state: &AppState, scene: &SceneRecord) -> Result<bool, ApiError> {
    let Some(project) = state.storage.db.get_project(&scene.project_id).await? else {
        return Ok(false);
    };
    let fresh = freshness(state, &project, std::slice::from_ref(scene)).await?;
    Ok(fresh.scene_out_of_date(scene))
}

/// The ids of those `projects` whose assembled video is out of date (project lists).
pub async fn out_of_date_ids(
    state: &AppState,
    projects: &[ProjectRecord],
) -> Result<std::collections::HashSet<ProjectId>, ApiError> {
    let mut ids = std::collections::HashSet::new();
    for p in projects.iter().filter(|p| p.final_object.is_some()) {
        if project_out_of_date(state, p).await? {
            ids.insert(p.id.clone());
        }
    }
    Ok(ids)
}

/// The ids of the scenes of `projects` whose recorded video is out of date (the cross-project scene list).
pub async fn out_of_date_scene_ids(
    state: &AppState,
    projects: &std::collections::BTreeSet<ProjectId>,
) -> Result<std::collections::HashSet<crate::domain::SceneId>, ApiError> {
    let db = &state.storage.db;
    let mut ids = std::collections::HashSet::new();
    for id in projects {
        let Some(project) = db.get_project(id).await? else {
            continue;
        };
        let scenes = db.list_scenes(id, -1, 10_000).await?;
        let fresh = freshness(state, &project, &scenes).await?;
        ids.extend(
            scenes
                .into_iter()
                .filter(|s| fresh.scene_out_of_date(s))
                .map(|s| s.id),
        );
    }
    Ok(ids)
}
