//! Project operations shared by the API and the pages.

use crate::domain::ProjectId;
use crate::web::AppState;
use crate::web::error::ApiError;

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
