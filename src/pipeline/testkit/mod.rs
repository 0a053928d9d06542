//! **Test support, not used by renders.** Runs the real [`Pipeline`] (runner, durable nodes, steps, content
//! keys, cache, DAG) in process, in milliseconds, against a real SQLite [`Db`] in a temporary folder, with
//! instant fakes instead of providers and ffmpeg: [`fakes`] (tiny text files that say what they stand for and
//! how long they last; calls counted in [`Calls`]; failures on request with [`Calls::fail`]) and [`faces`] (fake
//! stills say who they show, so tests script identity drift).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use devatar::pipeline::testkit::{TestPipeline, scene};
//! let t = TestPipeline::new().await?;
//! let plan = t.plan(vec![scene("intro", "Hello there."), scene("outro", "Bye now.")]).await?;
//! let run = t.start_run(&plan).await?;
//! let report = t.execute(&run, &plan).await;
//! assert!(report.failures.is_empty());
//! # Ok(()) }
//! ```
//!
//! It is public (not `#[cfg(test)]`) so integration tests can use it as well as the crate's unit tests.

pub mod faces;
pub mod fakes;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::watch;

pub use faces::{FakeFaces, fake_face, fake_print};
pub use fakes::{Calls, FakeMedia, Op, fake_providers};

use super::report::{Event, EventKind, NodeKey, Progress, RunReport};
use super::{Pipeline, PipelineSettings, PlannedScene, RenderOptions, RenderPlan};
use crate::domain::{Animation, GenerationMode, Identity, Project, RunId, Scene};
use crate::storage::db::{Db, SceneInput, StepRow};
use crate::storage::objects::ObjectStorage;

/// Records a pipeline's progress events and counts executed (not cached) steps.
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    executed: watch::Sender<usize>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            events: Mutex::default(),
            executed: watch::channel(0).0,
        }
    }
}

impl Recorder {
    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Steps executed (finished, not cached) so far, over every run.
    pub fn executed(&self) -> usize {
        *self.executed.borrow()
    }

    /// Resolves once `n` steps have finished executing (counted over every run).
    pub async fn executed_reaches(&self, n: usize) {
        let mut rx = self.executed.subscribe();
        let _ = rx.wait_for(|count| *count >= n).await;
    }
}

impl Progress for Recorder {
    fn on(&self, event: &Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event.clone());
        }
        if let EventKind::Finished { cached: false, .. } = event.kind {
            self.executed.send_modify(|n| *n += 1);
        }
    }
}

/// A scene of `name` saying `dialogue`, spoken by the kit's identity; its environment (image prompt) and
/// movement (video prompt) name the scene, so [`Calls::fail`] can target one scene.
pub fn scene(name: &str, dialogue: &str) -> Scene {
    Scene {
        name: name.into(),
        dialogue: dialogue.into(),
        environment: Some(format!("the set of {name}")),
        wardrobe: None,
        mood_lighting: None,
        camera: None,
        movement: Some(format!("{name} nods")),
        target_duration: None,
        identity: IDENTITY.into(),
        generation_mode: GenerationMode::Auto,
        animation: Animation::Standard,
    }
}

/// Name of the identity every kit scene uses.
const IDENTITY: &str = "ana";

/// A pipeline with fake providers and media, a SQLite database and media folder in a temporary folder.
pub struct TestPipeline {
    dir: tempfile::TempDir,
    /// The database (real SQLite).
    pub db: Db,
    /// The media objects (a local folder).
    pub objects: ObjectStorage,
    /// Calls to the fakes, and their failure rules.
    pub calls: Arc<Calls>,
    /// Progress events of every run.
    pub recorder: Arc<Recorder>,
    avatar: bool,
    pipeline: Arc<Pipeline>,
}

impl TestPipeline {
    /// A fresh kit (no talking-avatar provider).
    pub async fn new() -> anyhow::Result<Self> {
        Self::build(false).await
    }

    /// A fresh kit whose providers include a fake talking avatar (`fast` scenes use it).
    pub async fn with_avatar() -> anyhow::Result<Self> {
        Self::build(true).await
    }

    async fn build(avatar: bool) -> anyhow::Result<Self> {
        let dir = data_folder()?;
        let db = Db::connect(&Db::sqlite_url(dir.path()))
            .await
            .context("opening the test database")?;
        let objects = ObjectStorage::local(&dir.path().join("media"))
            .context("opening the test media folder")?;
        let calls = Arc::new(Calls::default());
        let recorder = Arc::new(Recorder::default());
        let pipeline = pipeline(&dir, &db, &objects, &calls, &recorder, avatar);
        Ok(Self {
            dir,
            db,
            objects,
            calls,
            recorder,
            avatar,
            pipeline,
        })
    }

    /// The pipeline under test.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// Like a process restart: closes the database (waiting for writes still in flight), opens it again and
    /// builds a new pipeline (no in-memory state survives; the data folder does).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.db.close().await;
        self.db = Db::connect(&Db::sqlite_url(self.dir.path()))
            .await
            .context("reopening the test database")?;
        let (dir, db, objects) = (&self.dir, &self.db, &self.objects);
        self.pipeline = pipeline(dir, db, objects, &self.calls, &self.recorder, self.avatar);
        Ok(())
    }

    /// Stores a project of `scenes` (and the kit's identity) and returns its render plan.
    pub async fn plan(&self, scenes: Vec<Scene>) -> anyhow::Result<RenderPlan> {
        let identity = Identity::new(IDENTITY, "Ana", "TOK_ANA");
        let identity_id = self
            .db
            .upsert_identity(&identity, None)
            .await
            .context("storing the identity")?;
        let project = Project::named("testkit");
        let project_id = self
            .db
            .upsert_project(&project, Some(&identity_id))
            .await
            .context("storing the project")?;
        let inputs: Vec<SceneInput> = scenes
            .iter()
            .map(|scene| SceneInput {
                scene: scene.clone(),
                identity_id: identity_id.clone(),
                headshot_asset_id: None,
            })
            .collect();
        let ids = self
            .db
            .sync_scenes(&project_id, &inputs)
            .await
            .context("storing the scenes")?;
        let scenes = ids
            .into_iter()
            .zip(scenes)
            .map(|(id, scene)| PlannedScene {
                id,
                scene,
                identity: identity.clone(),
                scene_headshot: None,
                speech_recording: None,
                background: None,
                identity_headshot: None,
                identity_lora: None,
                face_print: None,
            })
            .collect();
        Ok(RenderPlan {
            project_id,
            project,
            scenes,
            recorded: Default::default(),
        })
    }

    /// Takes `identity`'s LoRA as checked (no header is fetched), so its scenes render as digital twins with the
    /// fake image provider (which applies LoRAs). Lost on [`restart`](Self::restart), like any memo.
    pub async fn trust_lora(&self, identity: &Identity) {
        if let Some(url) = &identity.lora_url {
            let key = super::steps::lora_check_key(url, identity);
            self.pipeline.lora_checks.lock().await.insert(key, Ok(()));
        }
    }

    /// Creates a leased run of the whole project; returns its id.
    pub async fn start_run(&self, plan: &RenderPlan) -> anyhow::Result<RunId> {
        let run = self
            .db
            .create_leased_run(&plan.project_id, None, "testkit", 60_000, false)
            .await
            .context("creating a run")?;
        Ok(run.id)
    }

    /// Executes `plan` (every scene and ASSEMBLE) as run `run_id` with default options.
    pub async fn execute(&self, run_id: &RunId, plan: &RenderPlan) -> RunReport {
        self.pipeline
            .execute(run_id, plan.clone(), RenderOptions::default(), true)
            .await
    }

    /// Executes `plan` as run `run_id` but stops it, like a kill, once `n` more steps have executed in this
    /// call: the run's tasks are dropped at their next await. `None` when stopped, else the finished report.
    pub async fn execute_until(
        &self,
        run_id: &RunId,
        plan: &RenderPlan,
        options: RenderOptions,
        n: usize,
    ) -> Option<RunReport> {
        let target = self.recorder.executed() + n;
        let run = self.pipeline.execute(run_id, plan.clone(), options, true);
        tokio::select! {
            biased;
            () = self.recorder.executed_reaches(target) => None,
            report = run => Some(report),
        }
    }

    /// The `steps` rows of a run.
    pub async fn steps(&self, run_id: &RunId) -> anyhow::Result<Vec<StepRow>> {
        self.db.run_steps(run_id).await.context("reading the steps")
    }

    /// Number of step outputs in the render cache.
    pub async fn cached_outputs(&self) -> anyhow::Result<usize> {
        use sqlx::Row;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM step_cache")
            .fetch_one(self.db.pool())
            .await
            .context("counting cached outputs")?;
        Ok(row.try_get::<i64, _>("n")? as usize)
    }
}

/// A temporary data folder: in memory (`/dev/shm`) when the system has one, since SQLite syncs every commit.
fn data_folder() -> anyhow::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.context("creating the test data folder")
}

fn pipeline(
    dir: &tempfile::TempDir,
    db: &Db,
    objects: &ObjectStorage,
    calls: &Arc<Calls>,
    recorder: &Arc<Recorder>,
    avatar: bool,
) -> Arc<Pipeline> {
    let pipeline = Pipeline::new(
        db.clone(),
        objects.clone(),
        fake_providers(calls, avatar),
        dir.path().join("work"),
        recorder.clone(),
        PipelineSettings::default(),
    );
    Arc::new(
        pipeline
            .with_media_editor(Arc::new(FakeMedia(calls.clone())))
            .with_face_scorer(Arc::new(FakeFaces(calls.clone()))),
    )
}

/// The nodes a run executed (not served from the cache).
pub fn executed(report: &RunReport) -> BTreeSet<NodeKey> {
    report
        .steps
        .iter()
        .filter(|s| !s.cached)
        .map(|s| (s.scene, s.step))
        .collect()
}

/// The nodes a run served from the cache.
pub fn cached(report: &RunReport) -> BTreeSet<NodeKey> {
    report
        .steps
        .iter()
        .filter(|s| s.cached)
        .map(|s| (s.scene, s.step))
        .collect()
}

#[cfg(test)]
mod gate_tests;
#[cfg(test)]
mod tests;
