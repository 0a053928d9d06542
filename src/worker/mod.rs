//! The in-process worker: turns stored projects/scenes into render plans, runs them in the background,
//! refuses a second run of the same scene, and cancels on request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;

use crate::app::Storage;
use crate::pipeline::{Event, Pipeline, PlannedScene, Progress, RenderOptions, RenderPlan};
use crate::providers::Providers;
use crate::storage::db::{DbError, SceneRecord};

/// A run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The project or scene does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A run covering it is already going.
    #[error("a run is already in progress ({0})")]
    Busy(String),
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
        run_id: String,
        /// `succeeded`, `failed` or `canceled`.
        status: String,
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
    pipeline: Arc<Pipeline>,
    owner: String,
    tasks: Mutex<HashMap<String, AbortHandle>>,
    events: tokio::sync::broadcast::Sender<RunEvent>,
}

impl RunService {
    /// A service using the local providers.
    pub fn new(storage: Storage) -> Arc<Self> {
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let pipeline = Arc::new(Pipeline::new(
            storage.db.clone(),
            storage.objects.clone(),
            crate::providers::cloud::providers(
                &crate::providers::cloud::CloudConfig::from_env(),
                crate::providers::cloud::ProviderChoice::Auto,
            )
            .unwrap_or_else(|_| Providers::local()),
            storage.work_dir(),
            Arc::new(Broadcast(events.clone())),
        ));
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let owner = format!("{}:{}", host.trim(), std::process::id());
        Arc::new(Self {
            storage,
            pipeline,
            owner,
            tasks: Mutex::default(),
            events,
        })
    }

    async fn planned_scene(
        &self,
        record: SceneRecord,
        project_default: Option<&str>,
    ) -> Result<PlannedScene, StartError> {
        let db = &self.storage.db;
        let identity_id = match record.identity_id.as_deref().or(project_default) {
            Some(id) => id.to_string(),
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
        let mut scene = record.scene;
        scene.identity = identity.identity.name.clone();
        Ok(PlannedScene {
            id: record.id,
            scene,
            identity: identity.identity,
            scene_headshot,
            identity_headshot,
        })
    }

    /// The plan for a whole project, or for one of its scenes.
    pub async fn load_plan(
        &self,
        project_id: &str,
        scene_id: Option<&str>,
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
                    .filter(|s| s.project_id == project_id)
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
                self.planned_scene(r, project.default_identity_id.as_deref())
                    .await?,
            );
        }
        Ok(RenderPlan {
            project_id: project.id,
            project: project.project,
            scenes,
        })
    }

    /// Starts a run in the background and returns its id; `Busy` while one covering it is going.
    pub async fn start(
        self: &Arc<Self>,
        project_id: &str,
        scene_id: Option<&str>,
    ) -> Result<String, StartError> {
        let plan = self.load_plan(project_id, scene_id).await?;
        let db = &self.storage.db;
        let scope = scene_id.unwrap_or("");
        if let Some(active) = db.active_run_for(project_id, scope).await? {
            return Err(StartError::Busy(active));
        }
        let run_id = db.create_run(project_id, scope, &self.owner).await?;
        let this = self.clone();
        let id = run_id.clone();
        let assemble = scene_id.is_none();
        let handle = tokio::spawn(async move {
            let report = this
                .pipeline
                .execute(&id, plan, RenderOptions::default(), assemble)
                .await;
            let (status, error) = if report.failures.is_empty() {
                ("succeeded", None)
            } else {
                (
                    "failed",
                    Some(
                        report
                            .failures
                            .iter()
                            .map(|(_, e)| e.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                )
            };
            let _ = this
                .storage
                .db
                .finish_run(&id, status, error.as_deref())
                .await;
            crate::webhooks::enqueue_run_finished(&this.storage.db, &id).await;
            let _ = this.events.send(RunEvent::Finished {
                run_id: id.clone(),
                status: status.into(),
            });
            let _ = tokio::fs::remove_dir_all(this.storage.work_dir().join(&id)).await;
            if let Ok(mut tasks) = this.tasks.lock() {
                tasks.remove(&id);
            }
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.insert(run_id.clone(), handle.abort_handle());
        }
        Ok(run_id)
    }

    /// Live progress of every run in this process.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }

    /// Cancels a live run in this process; false when it is not running here.
    pub async fn cancel(&self, run_id: &str) -> Result<bool, DbError> {
        let handle = self.tasks.lock().ok().and_then(|mut t| t.remove(run_id));
        let Some(handle) = handle else {
            return Ok(false);
        };
        handle.abort();
        self.storage.db.cancel_run(run_id).await?;
        crate::webhooks::enqueue_run_finished(&self.storage.db, run_id).await;
        let _ = self.events.send(RunEvent::Finished {
            run_id: run_id.into(),
            status: "canceled".into(),
        });
        Ok(true)
    }
}
