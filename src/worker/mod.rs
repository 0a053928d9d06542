//! The in-process worker: turns stored projects/scenes into render plans, runs them in the background,
//! refuses a second run of the same scene, and cancels on request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::app::Storage;
use crate::config::Config;
use crate::domain::{IdentityId, ProjectId, RunId, RunStatus, SceneId};
use crate::pipeline::{
    Event, Pipeline, PlannedScene, Progress, RenderOptions, RenderPlan, RunReport,
};
use crate::providers::Providers;
use crate::storage::db::{ClaimedRun, DbError, RUNS_CHANNEL, SLOTS_CHANNEL, SceneRecord};

mod freshness;
mod import;
mod lease;

pub use freshness::Freshness;
pub use import::{IdentityPolicy, ImportError, import_project};
pub use lease::{ClaimError, claim_project_run, hold_lease, is_held, owner_id};

/// A run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The project or scene does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A run covering it is already going.
    #[error("a run is already in progress ({0})")]
    Busy(RunId),
    /// The stored data cannot be rendered (e.g. no identity).
    #[error("{0}")]
    Invalid(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What the live-progress stream carries.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A step event.
    Step(Event),
    /// The run ended with this status.
    Finished {
        /// Run id.
        run_id: RunId,
        /// `succeeded`, `failed` or `canceled`.
        status: RunStatus,
    },
}

/// Forwards pipeline progress to subscribers.
struct Broadcast(tokio::sync::broadcast::Sender<RunEvent>);

impl Progress for Broadcast {
    fn on(&self, event: &Event) {
        // No subscriber is fine: progress is also in the database.
        let _ = self.0.send(RunEvent::Step(event.clone()));
    }
}

/// Starts and tracks background runs.
pub struct RunService {
    storage: Storage,
    config: Arc<Config>,
    pipeline: Arc<Pipeline>,
    /// The pipeline of preview runs (local providers only), built on the first preview.
    preview_pipeline: OnceLock<Arc<Pipeline>>,
    progress: Arc<dyn Progress>,
    owner: String,
    tasks: Mutex<HashMap<RunId, AbortHandle>>,
    events: tokio::sync::broadcast::Sender<RunEvent>,
    wake: Arc<tokio::sync::Notify>,
}

impl RunService {
    /// A service using the configured providers (cloud where keys are set, offline otherwise); progress goes
    /// to [`subscribe`](Self::subscribe)rs.
    pub fn new(storage: Storage, config: Arc<Config>) -> Arc<Self> {
        let providers = config.configured_providers();
        Self::with_providers(storage, config, providers, None)
    }

    /// A service with chosen `providers` (the CLI's `--providers`) and, when given, its own progress display
    /// instead of the live-event broadcast.
    pub fn with_providers(
        storage: Storage,
        config: Arc<Config>,
        providers: Providers,
        progress: Option<Arc<dyn Progress>>,
    ) -> Arc<Self> {
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let progress = progress.unwrap_or_else(|| Arc::new(Broadcast(events.clone())));
        let pipeline = Arc::new(Pipeline::new(
            storage.db.clone(),
            storage.objects.clone(),
            providers,
            storage.work_dir(),
            progress.clone(),
            config.pipeline_settings(),
        ));
        let owner = owner_id();
        Arc::new(Self {
            storage,
            config,
            pipeline,
            preview_pipeline: OnceLock::new(),
            progress,
            owner,
            tasks: Mutex::default(),
            events,
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    async fn planned_scene(
        &self,
        record: SceneRecord,
        project_default: Option<&IdentityId>,
    ) -> Result<PlannedScene, StartError> {
        let db = &self.storage.db;
        let identity_id = match record.identity_id.as_ref().or(project_default) {
            Some(id) => id.clone(),
            None => {
                let all = db.list_identities().await?;
                match all.iter().find(|i| i.is_default).or(if all.len() == 1 {
                    all.first()
                } else {
                    None
                }) {
                    Some(i) => i.id.clone(),
                    None => {
                        return Err(StartError::Invalid(format!(
                            "scene {:?} has no identity and there is no default identity",
                            record.scene.name
                        )));
                    }
                }
            }
        };
        let identity = db
            .get_identity(&identity_id)
            .await?
            .ok_or(StartError::NotFound("identity"))?;
        let scene_headshot = match &record.headshot_asset_id {
            Some(a) => db.asset_object_key(a).await?,
            None => None,
        };
        let identity_headshot = match &identity.headshot_asset_id {
            Some(a) => db.asset_object_key(a).await?,
            None => None,
        };
        let identity_lora = match &identity.lora_asset_id {
            Some(a) => db.asset_object_key(a).await?,
            None => None,
        };
        let speech_recording = match &record.speech_asset_id {
            Some(a) => db.asset_object_key(a).await?,
            None => None,
        };
        let background = match &record.background_asset_id {
            Some(a) => db.asset_object_key(a).await?,
            None => None,
        };
        let face_print = crate::identity_photos::face_print(db, &identity.id)
            .await?
            .map(Arc::new);
        let mut scene = record.scene;
        scene.identity = identity.identity.name.clone();
        Ok(PlannedScene {
            id: record.id,
            scene,
            identity: identity.identity,
            scene_headshot,
            identity_headshot,
            speech_recording,
            background,
            identity_lora,
            face_print,
        })
    }

    /// The plan for a whole project, or for one of its scenes.
    pub async fn load_plan(
        &self,
        project_id: &ProjectId,
        scene_id: Option<&SceneId>,
    ) -> Result<RenderPlan, StartError> {
        let db = &self.storage.db;
        let project = db
            .get_project(project_id)
            .await?
            .ok_or(StartError::NotFound("project"))?;
        let records = match scene_id {
            Some(id) => vec![
                db.get_scene(id)
                    .await?
                    .filter(|s| &s.project_id == project_id)
                    .ok_or(StartError::NotFound("scene"))?,
            ],
            None => db.list_scenes(project_id, -1, 10_000).await?,
        };
        if records.is_empty() {
            return Err(StartError::Invalid("the project has no scenes".into()));
        }
        let mut scenes = Vec::with_capacity(records.len());
        for r in records {
            scenes.push(
                self.planned_scene(r, project.default_identity_id.as_ref())
                    .await?,
            );
        }
        Ok(RenderPlan {
            project_id: project.id,
            project: project.project,
            scenes,
            recorded: Default::default(),
        })
    }

    /// The pipeline a run executes on: the configured providers, or the local ones for a preview.
    fn pipeline_for(&self, preview: bool) -> Arc<Pipeline> {
        if !preview {
            return self.pipeline.clone();
        }
        self.preview_pipeline
            .get_or_init(|| {
                Arc::new(Pipeline::new(
                    self.storage.db.clone(),
                    self.storage.objects.clone(),
                    self.config.local_providers(),
                    self.storage.work_dir(),
                    self.progress.clone(),
                    self.config.pipeline_settings(),
                ))
            })
            .clone()
    }

    /// Queues a run (a preview when `preview`: local providers, $0) and returns its id; `Busy` while one covering
    /// it is queued or going. A worker (this process's, or a `devatar worker`) claims it.
    pub async fn start(
        self: &Arc<Self>,
        project_id: &ProjectId,
        scene_id: Option<&SceneId>,
        preview: bool,
    ) -> Result<RunId, StartError> {
        // Validate now so the caller hears about a missing identity at once, not from the worker.
        self.load_plan(project_id, scene_id).await?;
        let db = &self.storage.db;
        if let Some(active) = db.active_run_for(project_id, scene_id).await? {
            return Err(StartError::Busy(active));
        }
        let run_id = db.enqueue_run(project_id, scene_id, preview).await?;
        self.wake.notify_one();
        Ok(run_id)
    }

    /// Claims and executes queued runs until `stop` is notified, at most `slots` at a time; then waits up to
    /// `grace` for the runs in progress and gives the rest back to the queue.
    pub async fn work(
        self: Arc<Self>,
        slots: usize,
        grace: Duration,
        stop: Arc<tokio::sync::Notify>,
    ) {
        let listening = {
            let (wake, freed) = (self.wake.clone(), self.pipeline.limits.freed());
            self.storage
                .db
                .listen(&[RUNS_CHANNEL, SLOTS_CHANNEL], move |channel| {
                    if channel == RUNS_CHANNEL {
                        wake.notify_one();
                    } else {
                        freed.notify_waiters();
                    }
                })
        };
        let poll = self.config.poll_interval(listening);
        let mut running = tokio::task::JoinSet::new();
        let mut leases: HashMap<tokio::task::Id, (RunId, String)> = HashMap::new();
        let stopped = stop.notified();
        tokio::pin!(stopped);
        loop {
            while running.len() < slots.max(1) {
                match self
                    .storage
                    .db
                    .claim_run(&self.owner, self.config.lease.as_millis() as i64)
                    .await
                {
                    Ok(Some(claim)) => {
                        let ids = (claim.id.clone(), claim.token.clone());
                        let handle = running.spawn(self.clone().execute_claimed(claim));
                        leases.insert(handle.id(), ids);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("claiming a run failed: {e}");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = &mut stopped => break,
                _ = self.wake.notified() => {}
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let id = match &done {
                        Ok((id, ())) => *id,
                        Err(e) => e.id(),
                    };
                    leases.remove(&id);
                }
                _ = tokio::time::sleep(poll) => {}
            }
        }
        // Stop claiming; let runs in progress finish for a while, then release the rest.
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        while !running.is_empty() {
            tokio::select! {
                done = running.join_next_with_id() => {
                    if let Some(Ok((id, ()))) = done { leases.remove(&id); }
                }
                _ = &mut deadline => break,
            }
        }
        running.abort_all();
        while running.join_next().await.is_some() {}
        for (run_id, token) in leases.into_values() {
            match self.storage.db.release_run(&run_id, &token).await {
                Ok(true) => tracing::info!(run = %run_id, "released to the queue on shutdown"),
                Ok(false) => {}
                Err(e) => tracing::warn!(run = %run_id, "could not release: {e}"),
            }
        }
    }

    /// Executes a claimed run, renewing its lease; stops at once if the lease is lost or the run cancelled.
    async fn execute_claimed(self: Arc<Self>, claim: ClaimedRun) {
        let db = self.storage.db.clone();
        let id = claim.id.clone();
        let scene = claim.scene_id.as_ref();
        let planned = match scene {
            Some(s) if !claim.preview => self.scene_run_plan(&claim.project_id, s).await,
            _ => self
                .load_plan(&claim.project_id, scene)
                .await
                .map(|p| (p, scene.is_none())),
        };
        let (plan, assemble) = match planned {
            Ok(planned) => planned,
            Err(e) => {
                let _ = db
                    .finish_run(&id, RunStatus::Failed, Some(&e.to_string()))
                    .await;
                self.finished(&id, RunStatus::Failed).await;
                return;
            }
        };
        let options = RenderOptions {
            preview: claim.preview,
            ..RenderOptions::default()
        };
        let report = self
            .clone()
            .execute_leased(&claim, plan, options, assemble)
            .await;
        let Some(report) = report else { return };
        let (status, error) = if report.failures.is_empty() {
            (RunStatus::Succeeded, None)
        } else {
            let why: Vec<String> = report.failures.iter().map(|(_, e)| e.to_string()).collect();
            (RunStatus::Failed, Some(why.join("; ")))
        };
        let _ = db.finish_run(&id, status, error.as_deref()).await;
        self.finished(&id, status).await;
    }

    /// Executes `plan` as the claimed run while holding its lease; `None` when the lease was lost (taken over,
    /// or the run canceled) and the work stopped. The run's scratch folder is removed either way.
    pub async fn execute_leased(
        self: Arc<Self>,
        claim: &ClaimedRun,
        plan: RenderPlan,
        options: RenderOptions,
        assemble: bool,
    ) -> Option<RunReport> {
        let id = claim.id.clone();
        let pipeline = self.pipeline_for(options.preview);
        let run_id = id.clone();
        let work =
            tokio::spawn(async move { pipeline.execute(&run_id, plan, options, assemble).await });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.insert(id.clone(), work.abort_handle());
        }
        let abort = work.abort_handle();
        let lease = hold_lease(self.storage.db.clone(), claim.clone(), self.config.lease);
        let report = tokio::select! {
            r = work => r.ok(),
            () = lease => {
                tracing::warn!(run = %id, "lease lost or run cancelled: stopping");
                abort.abort();
                None
            }
        };
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.remove(&id);
        }
        let _ = tokio::fs::remove_dir_all(self.storage.work_dir().join(id.as_str())).await;
        report
    }

    /// Stores a project file (see [`import_project`]) and returns the plan of the whole project.
    pub async fn import(
        &self,
        file: &crate::project_file::ProjectFile,
        policy: IdentityPolicy,
    ) -> Result<RenderPlan, ImportError> {
        let project_id = import_project(&self.storage, &self.config.face, file, policy).await?;
        self.load_plan(&project_id, None)
            .await
            .map_err(ImportError::Plan)
    }

    /// Takes the project's run (a preview or not) for a render in this process (see [`claim_project_run`]).
    pub async fn claim_project(
        &self,
        project_id: &ProjectId,
        preview: bool,
    ) -> Result<(ClaimedRun, bool), ClaimError> {
        claim_project_run(
            &self.storage.db,
            project_id,
            &self.owner,
            self.config.lease,
            preview,
        )
        .await
    }

    /// Announces a finished run (webhook outbox + live subscribers).
    pub async fn finished(&self, run_id: &RunId, status: RunStatus) {
        crate::webhooks::enqueue_run_finished(&self.storage.db, run_id).await;
        let _ = self.events.send(RunEvent::Finished {
            run_id: run_id.clone(),
            status,
        });
    }

    /// Live progress of every run in this process.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }

    /// Cancels a queued or running run: at once when this process runs it, otherwise its worker stops at
    /// its next lease renewal. False when the run was not live.
    pub async fn cancel(&self, run_id: &RunId) -> Result<bool, DbError> {
        if !self.storage.db.run_is_live(run_id).await? {
            return Ok(false);
        }
        if let Some(handle) = self.tasks.lock().ok().and_then(|mut t| t.remove(run_id)) {
            handle.abort();
        }
        self.storage.db.cancel_run(run_id).await?;
        self.finished(run_id, RunStatus::Canceled).await;
        Ok(true)
    }
}
