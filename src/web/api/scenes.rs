//! `/api/scenes`: list (paged, by project), create, get, update, delete, generate, cancel, status.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{Animation, FieldErrors, GenerationMode, Scene};
use crate::domain::{AssetId, IdentityId, ProjectId, RunId, SceneId};
use crate::storage::db::SceneRecord;
use crate::web::error::{ApiError, ApiJson, ApiQuery};
use crate::web::{AppState, service};

/// A scene as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SceneView {
    #[schema(value_type = String)]
    id: SceneId,
    #[schema(value_type = String)]
    project_id: ProjectId,
    position: i64,
    name: String,
    dialogue: String,
    environment: Option<String>,
    wardrobe: Option<String>,
    mood_lighting: Option<String>,
    camera: Option<String>,
    movement: Option<String>,
    target_duration: Option<f64>,
    #[schema(value_type = Option<String>)]
    identity_id: Option<IdentityId>,
    #[schema(value_type = Option<String>)]
    headshot_asset_id: Option<AssetId>,
    /// The uploaded recording (asset of kind `audio`) spoken instead of TTS.
    #[schema(value_type = Option<String>)]
    speech_asset_id: Option<AssetId>,
    /// The background image (asset of kind `background`) behind the framed headshot (standard mode).
    #[schema(value_type = Option<String>)]
    background_asset_id: Option<AssetId>,
    generation_mode: String,
    animation: String,
    status: String,
    output_object: Option<String>,
    thumbnail_object: Option<String>,
    duration_seconds: Option<f64>,
    /// Its recorded video was rendered from other inputs than the scene has now (an edit of the dialogue, a
    /// rendered field or its identity); `status` still says `completed`: the video exists.
    out_of_date: bool,
}

impl From<SceneRecord> for SceneView {
    fn from(r: SceneRecord) -> Self {
        let s = r.scene;
        Self {
            id: r.id,
            project_id: r.project_id,
            position: r.position,
            name: s.name,
            dialogue: s.dialogue,
            environment: s.environment,
            wardrobe: s.wardrobe,
            mood_lighting: s.mood_lighting,
            camera: s.camera,
            movement: s.movement,
            target_duration: s.target_duration,
            identity_id: r.identity_id,
            headshot_asset_id: r.headshot_asset_id,
            speech_asset_id: r.speech_asset_id,
            background_asset_id: r.background_asset_id,
            generation_mode: s.generation_mode.as_str().into(),
            animation: s.animation.as_str().into(),
            status: r.status.as_str().into(),
            output_object: r.output_object,
            thumbnail_object: r.thumbnail_object,
            duration_seconds: r.duration_seconds,
            out_of_date: false,
        }
    }
}

/// The API's view of a scene, flagged out of date from `fresh`.
fn view(record: SceneRecord, fresh: &crate::worker::Freshness) -> SceneView {
    let out_of_date = fresh.scene_out_of_date(&record);
    SceneView {
        out_of_date,
        ..record.into()
    }
}

/// Fields a client may set on a scene (create needs `projectId`, `name`, `dialogue`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SceneInput {
    #[schema(value_type = Option<String>)]
    project_id: Option<ProjectId>,
    name: Option<String>,
    dialogue: Option<String>,
    environment: Option<String>,
    wardrobe: Option<String>,
    mood_lighting: Option<String>,
    camera: Option<String>,
    movement: Option<String>,
    target_duration: Option<f64>,
    #[schema(value_type = Option<String>)]
    identity_id: Option<IdentityId>,
    #[schema(value_type = Option<String>)]
    headshot_asset_id: Option<AssetId>,
    /// An uploaded recording (asset of kind `audio`) to speak instead of TTS; `""` clears it.
    #[schema(value_type = Option<String>)]
    speech_asset_id: Option<AssetId>,
    /// A background image (asset of kind `background`); `""` clears it.
    #[schema(value_type = Option<String>)]
    background_asset_id: Option<AssetId>,
    generation_mode: Option<String>,
    /// `standard` (image-to-video, then lip-sync) or `fast` (one-step talking avatar).
    animation: Option<String>,
}

/// A validated scene with its references.
struct SceneUpdate {
    scene: Scene,
    identity_id: Option<IdentityId>,
    headshot_asset_id: Option<AssetId>,
    /// Recording used as speech.
    speech_asset_id: Option<AssetId>,
    /// Background image.
    background_asset_id: Option<AssetId>,
}

/// A scene with nothing set yet: what a create request fills in.
fn blank_scene() -> Scene {
    Scene {
        name: String::new(),
        dialogue: String::new(),
        environment: None,
        wardrobe: None,
        mood_lighting: None,
        camera: None,
        movement: None,
        target_duration: None,
        identity: String::new(),
        generation_mode: GenerationMode::Auto,
        animation: Animation::Standard,
    }
}

impl SceneInput {
    /// The scene after this input is applied to `current` (or to a blank scene), validated, references checked.
    async fn apply(
        mut self,
        state: &AppState,
        current: Option<SceneRecord>,
    ) -> Result<SceneUpdate, ApiError> {
        let mut e = FieldErrors::default();
        let (mut scene, mut identity_id, mut headshot, mut speech, mut background) = match current {
            Some(c) => (
                c.scene,
                c.identity_id,
                c.headshot_asset_id,
                c.speech_asset_id,
                c.background_asset_id,
            ),
            None => (blank_scene(), None, None, None, None),
        };
        self.merge_into(&mut scene, &mut e);
        let db = &state.storage.db;
        if let Some(id) = self.identity_id {
            if db.get_identity(&id).await?.is_none() {
                e.push("identityId", "no such identity");
            }
            identity_id = Some(id);
        }
        if let Some(id) = self.headshot_asset_id {
            if db.asset_object_key(&id).await?.is_none() {
                e.push("headshotAssetId", "no such asset");
            }
            headshot = Some(id);
        }
        if let Some(id) = self.speech_asset_id.take() {
            speech = media_asset(state, id, "audio", "speechAssetId", &mut e).await?;
        }
        if let Some(id) = self.background_asset_id.take() {
            background = media_asset(state, id, "background", "backgroundAssetId", &mut e).await?;
        }
        match scene.validated() {
            Ok(scene) if e.is_empty() => Ok(SceneUpdate {
                scene,
                identity_id,
                headshot_asset_id: headshot,
                speech_asset_id: speech,
                background_asset_id: background,
            }),
            Ok(_) => Err(e.into()),
            Err(v) => {
                e.0.extend(v.0);
                Err(e.into())
            }
        }
    }

    /// Moves the scene's own fields this input sets into `scene`; an unknown mode or animation is noted in `e`.
    fn merge_into(&mut self, scene: &mut Scene, e: &mut FieldErrors) {
        if let Some(v) = self.name.take() {
            scene.name = v;
        }
        if let Some(v) = self.dialogue.take() {
            scene.dialogue = v;
        }
        for (slot, v) in [
            (&mut scene.environment, self.environment.take()),
            (&mut scene.wardrobe, self.wardrobe.take()),
            (&mut scene.mood_lighting, self.mood_lighting.take()),
            (&mut scene.camera, self.camera.take()),
            (&mut scene.movement, self.movement.take()),
        ] {
            if v.is_some() {
                *slot = v;
            }
        }
        if self.target_duration.is_some() {
            scene.target_duration = self.target_duration;
        }
        if let Some(m) = self.generation_mode.take() {
            match GenerationMode::parse(&m) {
                Some(m) => scene.generation_mode = m,
                None => e.push("generationMode", "must be auto, standard or digital-twin"),
            }
        }
        if let Some(a) = self.animation.take() {
            match Animation::parse(&a) {
                Some(a) => scene.animation = a,
                None => e.push("animation", "must be standard or fast"),
            }
        }
    }
}

/// A scene's `field` asset after input `id`: `None` for `""` (cleared), else the asset when it exists and is
/// of `kind` (otherwise the problem is noted in `e`, naming `field`).
async fn media_asset(
    state: &AppState,
    id: AssetId,
    kind: &str,
    field: &str,
    e: &mut FieldErrors,
) -> Result<Option<AssetId>, ApiError> {
    if id.is_empty() {
        return Ok(None);
    }
    match state.storage.db.get_asset(&id).await? {
        Some(a) if a.kind == kind => {}
        Some(_) => e.push(field, format!("is not an asset of kind {kind}")),
        None => e.push(field, "no such asset"),
    }
    Ok(Some(id))
}

/// Stores the scene's recording and background; an asset deleted meanwhile is a 422 naming its field.
async fn store_media(state: &AppState, id: &SceneId, u: &SceneUpdate) -> Result<(), ApiError> {
    let db = &state.storage.db;
    let saved = db
        .set_scene_media(
            id,
            u.speech_asset_id.as_ref(),
            u.background_asset_id.as_ref(),
        )
        .await;
    match saved {
        Ok(()) => Ok(()),
        Err(e) if e.is_foreign_key() => {
            if let Some(a) = &u.speech_asset_id
                && db.get_asset(a).await?.is_none()
            {
                return Err(ApiError::invalid("speechAssetId", "no such asset"));
            }
            Err(ApiError::invalid("backgroundAssetId", "no such asset"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Scene list query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SceneListQuery {
    /// Project id (required).
    #[param(value_type = String)]
    project: ProjectId,
    /// Return scenes after this position (from the previous page's `nextCursor`).
    cursor: Option<i64>,
    /// Page size, 1–200 (default 50).
    limit: Option<i64>,
}

/// A page of scenes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScenePage {
    /// Scenes in project order.
    pub items: Vec<SceneView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<i64>,
}

/// List a project's scenes in order, paged.
#[utoipa::path(get, path = "/api/scenes", tag = "scenes", params(SceneListQuery),
    responses((status = 200, body = ScenePage), (status = 404)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SceneListQuery>,
) -> Result<Json<ScenePage>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let db = &state.storage.db;
    let Some(project) = db.get_project(&q.project).await? else {
        return Err(ApiError::not_found("project"));
    };
    let scenes = db
        .list_scenes(&q.project, q.cursor.unwrap_or(-1), limit)
        .await?;
    let fresh = service::projects::freshness(&state, &project, &scenes).await?;
    let next = if scenes.len() as i64 == limit {
        scenes.last().map(|s| s.position)
    } else {
        None
    };
    let items: Vec<SceneView> = scenes.into_iter().map(|s| view(s, &fresh)).collect();
    Ok(Json(ScenePage {
        items,
        next_cursor: next,
    }))
}

/// Create a scene at the end of its project.
#[utoipa::path(post, path = "/api/scenes", tag = "scenes", request_body = SceneInput,
    responses((status = 201, body = SceneView), (status = 404), (status = 409), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<SceneInput>,
) -> Result<(StatusCode, Json<SceneView>), ApiError> {
    let Some(project_id) = input.project_id.clone() else {
        let mut e = FieldErrors::default();
        e.push("projectId", "is required");
        return Err(e.into());
    };
    let db = &state.storage.db;
    if db.get_project(&project_id).await?.is_none() {
        return Err(ApiError::not_found("project"));
    }
    let u = input.apply(&state, None).await?;
    if db
        .scene_name_taken(&project_id, &u.scene.name, None)
        .await?
    {
        return Err(ApiError::conflict(
            "name",
            "a scene with this name exists in the project",
        ));
    }
    let id = db
        .save_scene(
            None,
            &project_id,
            &u.scene,
            u.identity_id.as_ref(),
            u.headshot_asset_id.as_ref(),
        )
        .await;
    let id = saved_or_missing(&state, &u, id).await?;
    store_media(&state, &id, &u).await?;
    let record = db
        .get_scene(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("scene"))?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Get a scene.
#[utoipa::path(get, path = "/api/scenes/{id}", tag = "scenes", params(("id" = String, Path)),
    responses((status = 200, body = SceneView), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
) -> Result<Json<SceneView>, ApiError> {
    let record = state
        .storage
        .db
        .get_scene(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("scene"))?;
    let out_of_date = service::projects::scene_out_of_date(&state, &record).await?;
    Ok(Json(SceneView {
        out_of_date,
        ..record.into()
    }))
}

/// Update a scene (only the fields given; `projectId` cannot change).
#[utoipa::path(put, path = "/api/scenes/{id}", tag = "scenes", params(("id" = String, Path)), request_body = SceneInput,
    responses((status = 200, body = SceneView), (status = 404), (status = 409), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
    ApiJson(input): ApiJson<SceneInput>,
) -> Result<Json<SceneView>, ApiError> {
    let db = &state.storage.db;
    let current = db
        .get_scene(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("scene"))?;
    if input
        .project_id
        .as_ref()
        .is_some_and(|p| *p != current.project_id)
    {
        let mut e = FieldErrors::default();
        e.push("projectId", "cannot be changed");
        return Err(e.into());
    }
    let project_id = current.project_id.clone();
    let u = input.apply(&state, Some(current)).await?;
    if db
        .scene_name_taken(&project_id, &u.scene.name, Some(&id))
        .await?
    {
        return Err(ApiError::conflict(
            "name",
            "a scene with this name exists in the project",
        ));
    }
    let saved = db
        .save_scene(
            Some(&id),
            &project_id,
            &u.scene,
            u.identity_id.as_ref(),
            u.headshot_asset_id.as_ref(),
        )
        .await;
    saved_or_missing(&state, &u, saved).await?;
    store_media(&state, &id, &u).await?;
    get(State(state), Path(id)).await
}

/// A scene write's result; a reference deleted between the check and the write (the foreign key refuses it)
/// is a 422 naming the field whose record is gone (a project deleted meanwhile is a 404).
async fn saved_or_missing<T>(
    state: &AppState,
    u: &SceneUpdate,
    saved: Result<T, crate::storage::db::DbError>,
) -> Result<T, ApiError> {
    let e = match saved {
        Ok(v) => return Ok(v),
        Err(e) if e.is_foreign_key() => e,
        Err(e) => return Err(e.into()),
    };
    let db = &state.storage.db;
    if let Some(id) = &u.identity_id
        && db.get_identity(id).await?.is_none()
    {
        return Err(ApiError::invalid("identityId", "no such identity"));
    }
    if let Some(id) = &u.headshot_asset_id
        && db.asset_object_key(id).await?.is_none()
    {
        return Err(ApiError::invalid("headshotAssetId", "no such asset"));
    }
    tracing::debug!(error = %e, "scene write referenced a missing project");
    Err(ApiError::not_found("project"))
}

/// Delete a scene.
#[utoipa::path(delete, path = "/api/scenes/{id}", tag = "scenes", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
) -> Result<StatusCode, ApiError> {
    if state.storage.db.delete_scene(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("scene"))
    }
}

/// A run was queued.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    /// Follow it at `/api/runs/{runId}` and `/api/runs/{runId}/events`.
    #[schema(value_type = String)]
    pub run_id: RunId,
}

/// A run was canceled.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunCanceled {
    /// The run.
    #[schema(value_type = String)]
    pub run_id: RunId,
    /// Always `canceled`.
    pub status: String,
}

/// A scene's status and its latest run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SceneStatus {
    /// The scene.
    #[schema(value_type = String)]
    pub scene_id: SceneId,
    /// `draft`, `generating`, `completed`, `failed` or `canceled`.
    pub status: String,
    /// Object key of its finished video.
    pub output_object: Option<String>,
    /// Its recorded video was rendered from other inputs than the scene has now.
    pub out_of_date: bool,
    /// Its latest run (its own or its project's), with this scene's steps only.
    pub run: Option<super::runs::RunView>,
}

/// Generate one scene (speech, still, video, lip-sync, finalize) in the background.
#[utoipa::path(post, path = "/api/scenes/{id}/generate", tag = "scenes", params(("id" = String, Path)),
    responses((status = 202, body = RunStarted), (status = 404), (status = 409)))]
pub async fn generate(
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    start_scene_run(&state, &id, false).await
}

/// Queues a run of scene `id` (a local preview when `preview`): 202 with its id.
async fn start_scene_run(
    state: &AppState,
    id: &SceneId,
    preview: bool,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    let scene = state
        .storage
        .db
        .get_scene(id)
        .await?
        .ok_or_else(|| ApiError::not_found("scene"))?;
    let run_id = state
        .runs
        .start(&scene.project_id, Some(id), preview)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(RunStarted { run_id })))
}

/// Preview one scene with the local providers only ($0; background run); its recorded output stays as it is.
#[utoipa::path(post, path = "/api/scenes/{id}/preview", tag = "scenes", params(("id" = String, Path)),
    responses((status = 202, body = RunStarted), (status = 404), (status = 409)))]
pub async fn preview(
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    start_scene_run(&state, &id, true).await
}

/// Cancel the scene's running generation.
#[utoipa::path(post, path = "/api/scenes/{id}/cancel", tag = "scenes", params(("id" = String, Path)),
    responses((status = 200, body = RunCanceled), (status = 404), (status = 409)))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
) -> Result<Json<RunCanceled>, ApiError> {
    let run = service::runs::cancel_scene(&state, &id).await?;
    Ok(Json(RunCanceled {
        run_id: run,
        status: "canceled".into(),
    }))
}

/// The scene's status and its latest run's steps.
#[utoipa::path(get, path = "/api/scenes/{id}/status", tag = "scenes", params(("id" = String, Path)),
    responses((status = 200, body = SceneStatus), (status = 404)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<SceneId>,
) -> Result<Json<SceneStatus>, ApiError> {
    let db = &state.storage.db;
    let scene = db
        .get_scene(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("scene"))?;
    let run = match db.latest_run_for_scene(&scene.project_id, &id).await? {
        Some(run_id) => Some(super::runs::run_view(&state, &run_id, Some(&id)).await?),
        None => None,
    };
    let out_of_date = service::projects::scene_out_of_date(&state, &scene).await?;
    Ok(Json(SceneStatus {
        scene_id: id,
        out_of_date,
        status: scene.status.as_str().into(),
        output_object: scene.output_object,
        run,
    }))
}
