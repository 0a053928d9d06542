//! `/api/projects`: list, create, get, update, delete, render, reorder scenes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{AspectRatio, FieldErrors, IdentityGate, Project};
use crate::domain::{IdentityId, ProjectId, SceneId};
use crate::storage::db::ProjectRecord;
use crate::web::error::{ApiError, ApiJson};
use crate::web::{AppState, service};

/// A project as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    #[schema(value_type = String)]
    id: ProjectId,
    name: String,
    description: Option<String>,
    aspect_ratio: String,
    #[schema(value_type = Option<String>)]
    default_identity_id: Option<IdentityId>,
    budget_usd: Option<f64>,
    /// What IMAGE does when a generated still does not look like the identity: `off`, `warn`, `retry`, `strict`.
    identity_gate: String,
    /// Extra paid stills (0–5) the `retry` and `strict` gates may generate per scene.
    identity_retries: u32,
    status: String,
    final_object: Option<String>,
    captions_object: Option<String>,
    duration_seconds: Option<f64>,
    created_at: i64,
    updated_at: i64,
    /// The project video no longer matches its scenes (an edit, a reorder, an added, removed, failed or canceled
    /// scene since it was assembled); `status` still says `completed`: the video exists.
    out_of_date: bool,
}

impl From<ProjectRecord> for ProjectView {
    fn from(r: ProjectRecord) -> Self {
        Self {
            id: r.id,
            name: r.project.name,
            description: r.project.description,
            aspect_ratio: r.project.aspect_ratio.as_str().into(),
            default_identity_id: r.default_identity_id,
            budget_usd: r.project.budget_usd,
            identity_gate: r.project.identity_gate.as_str().into(),
            identity_retries: r.project.identity_retries,
            status: r.status.as_str().into(),
            final_object: r.final_object,
            captions_object: r.captions_object,
            duration_seconds: r.duration_seconds,
            created_at: r.created_at,
            updated_at: r.updated_at,
            out_of_date: false,
        }
    }
}

/// Fields a client may set on a project (all optional on update; `name` required on create).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectInput {
    name: Option<String>,
    description: Option<String>,
    aspect_ratio: Option<String>,
    #[schema(value_type = Option<String>)]
    default_identity_id: Option<IdentityId>,
    budget_usd: Option<f64>,
    /// `off`, `warn`, `retry` (the default) or `strict`.
    identity_gate: Option<String>,
    /// 0–5 (default 2).
    identity_retries: Option<u32>,
}

impl ProjectInput {
    fn apply(
        self,
        mut base: Project,
        mut default_identity: Option<IdentityId>,
    ) -> Result<(Project, Option<IdentityId>), ApiError> {
        let mut e = FieldErrors::default();
        if let Some(n) = self.name {
            base.name = n;
        }
        if self.description.is_some() {
            base.description = self.description;
        }
        if let Some(a) = self.aspect_ratio {
            match AspectRatio::parse(&a) {
                Some(a) => base.aspect_ratio = a,
                None => e.push("aspectRatio", "must be 16:9, 9:16 or 1:1"),
            }
        }
        if self.budget_usd.is_some() {
            base.budget_usd = self.budget_usd;
        }
        if let Some(g) = self.identity_gate {
            match IdentityGate::parse(&g) {
                Some(g) => base.identity_gate = g,
                None => e.push("identityGate", "must be off, warn, retry or strict"),
            }
        }
        if let Some(n) = self.identity_retries {
            base.identity_retries = n;
        }
        if self.default_identity_id.is_some() {
            default_identity = self.default_identity_id;
        }
        match base.validated() {
            Ok(p) if e.is_empty() => Ok((p, default_identity)),
            Ok(_) => Err(e.into()),
            Err(v) => {
                e.0.extend(v.0);
                Err(e.into())
            }
        }
    }
}

async fn check_identity(state: &AppState, id: Option<&IdentityId>) -> Result<(), ApiError> {
    if let Some(id) = id
        && state.storage.db.get_identity(id).await?.is_none()
    {
        let mut e = FieldErrors::default();
        e.push("defaultIdentityId", "no such identity");
        return Err(e.into());
    }
    Ok(())
}

/// List projects, newest first.
#[utoipa::path(get, path = "/api/projects", tag = "projects", responses((status = 200, body = [ProjectView])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ProjectView>>, ApiError> {
    let mut views = Vec::new();
    for record in state.storage.db.list_projects().await? {
        views.push(view(&state, record).await?);
    }
    Ok(Json(views))
}

/// The API's view of a project, with whether its video is out of date.
async fn view(state: &AppState, record: ProjectRecord) -> Result<ProjectView, ApiError> {
    let out_of_date = service::projects::project_out_of_date(state, &record).await?;
    Ok(ProjectView {
        out_of_date,
        ..record.into()
    })
}

/// Create a project.
#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = ProjectInput,
    responses((status = 201, body = ProjectView), (status = 409), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ProjectInput>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    if input.name.is_none() {
        let mut e = FieldErrors::default();
        e.push("name", "is required");
        return Err(e.into());
    }
    let blank = Project::named("");
    let (project, default_identity) = input.apply(blank, None)?;
    check_identity(&state, default_identity.as_ref()).await?;
    let db = &state.storage.db;
    if db.project_name_taken(&project.name, None).await? {
        return Err(ApiError::conflict(
            "name",
            "a project with this name exists",
        ));
    }
    let id = db
        .upsert_project(&project, default_identity.as_ref())
        .await
        .map_err(ApiError::missing_reference("defaultIdentityId", "identity"))?;
    let record = db
        .get_project(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Get a project.
#[utoipa::path(get, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = ProjectView), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
) -> Result<Json<ProjectView>, ApiError> {
    let record = state
        .storage
        .db
        .get_project(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    Ok(Json(view(&state, record).await?))
}

/// Update a project (only the fields given).
#[utoipa::path(put, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)), request_body = ProjectInput,
    responses((status = 200, body = ProjectView), (status = 404), (status = 409), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
    ApiJson(input): ApiJson<ProjectInput>,
) -> Result<Json<ProjectView>, ApiError> {
    let db = &state.storage.db;
    let current = db
        .get_project(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let (project, default_identity) = input.apply(current.project, current.default_identity_id)?;
    check_identity(&state, default_identity.as_ref()).await?;
    if db.project_name_taken(&project.name, Some(&id)).await? {
        return Err(ApiError::conflict(
            "name",
            "a project with this name exists",
        ));
    }
    db.update_project(&id, &project, default_identity.as_ref())
        .await
        .map_err(ApiError::missing_reference("defaultIdentityId", "identity"))?;
    get(State(state), Path(id)).await
}

/// Delete a project with its scenes and runs.
#[utoipa::path(delete, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
) -> Result<StatusCode, ApiError> {
    service::projects::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Render every scene and assemble the project video (background run).
#[utoipa::path(post, path = "/api/projects/{id}/render", tag = "projects", params(("id" = String, Path)),
    responses((status = 202, body = super::scenes::RunStarted), (status = 404), (status = 409), (status = 422)))]
pub async fn render(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
) -> Result<(StatusCode, Json<super::scenes::RunStarted>), ApiError> {
    let run_id = state.runs.start(&id, None, false).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(super::scenes::RunStarted { run_id }),
    ))
}

/// Preview every scene and the project video with the local providers only ($0; background run). The scenes'
/// and project's recorded outputs stay as they are; the preview's are on its run.
#[utoipa::path(post, path = "/api/projects/{id}/preview", tag = "projects", params(("id" = String, Path)),
    responses((status = 202, body = super::scenes::RunStarted), (status = 404), (status = 409), (status = 422)))]
pub async fn preview(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
) -> Result<(StatusCode, Json<super::scenes::RunStarted>), ApiError> {
    let run_id = state.runs.start(&id, None, true).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(super::scenes::RunStarted { run_id }),
    ))
}

/// New scene order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReorderInput {
    /// Every scene id of the project, in the new order.
    #[schema(value_type = Vec<String>)]
    scene_ids: Vec<SceneId>,
}

/// Reorder the project's scenes.
#[utoipa::path(post, path = "/api/projects/{id}/scenes/reorder", tag = "scenes", params(("id" = String, Path)),
    request_body = ReorderInput, responses((status = 204), (status = 404), (status = 422)))]
pub async fn reorder(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
    ApiJson(input): ApiJson<ReorderInput>,
) -> Result<StatusCode, ApiError> {
    let db = &state.storage.db;
    if db.get_project(&id).await?.is_none() {
        return Err(ApiError::not_found("project"));
    }
    if db.reorder_scenes(&id, &input.scene_ids).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        let mut e = FieldErrors::default();
        e.push(
            "sceneIds",
            "must list every scene of the project exactly once",
        );
        Err(e.into())
    }
}
