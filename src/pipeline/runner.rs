//! The pipeline and its small executor: a render plan becomes a DAG of durable nodes (`node.rs`), run with
//! the capacity policy of `capacity.rs`, logged by `log.rs`, reported as in `report.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::capacity::{run_gate, take_turn};
use super::dag::{NodeOutcome, run_dag};
use super::error::StepError;
use super::faces::{EngineScorer, FaceScorer};
use super::limits::ProviderLimits;
use super::prejoin::PreJoin;
use super::report::{NodeKey, Progress, RunReport, StepReport};
use super::{PipelineSettings, RenderOptions, RenderPlan};
use crate::domain::{RunId, SceneStatus, StepName, StepStatus};
use crate::media::{Ffmpeg, MediaEditor};
use crate::providers::Providers;
use crate::providers::job::Budget;
use crate::storage::db::Db;
use crate::storage::objects::ObjectStorage;

/// The pipeline executor: storage, providers and limits.
pub struct Pipeline {
    pub(super) db: Db,
    /// Writes the steps' log rows, grouping those of concurrent steps into one statement.
    pub(super) logs: crate::storage::db::LogBatcher,
    pub(super) objects: ObjectStorage,
    pub(super) providers: Providers,
    /// The media edits steps use (probe, normalise, thumbnail, join): ffmpeg unless a test swaps it.
    pub(super) media: Arc<dyn MediaEditor>,
    /// Scores faces against an identity's print (the face engine unless a test swaps it).
    pub(super) faces: Arc<dyn FaceScorer>,
    pub(super) work_root: PathBuf,
    pub(super) progress: Arc<dyn Progress>,
    /// Bounds concurrent ffmpeg-heavy steps on this machine.
    pub(super) heavy: Arc<Semaphore>,
    /// Per-provider concurrency, held across every process on the database.
    pub(crate) limits: ProviderLimits,
    /// Test hook: abort the process after this many executed steps (simulates `kill -9`).
    abort_after: Option<usize>,
    /// Deployment settings.
    pub(super) settings: PipelineSettings,
    executed: AtomicUsize,
    /// One lock per content key being executed (see `key_lock`).
    pub(super) key_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// LoRA header checks done by this pipeline, by URL + base model + trigger word.
    pub(super) lora_checks: tokio::sync::Mutex<HashMap<String, Result<(), String>>>,
}

/// One run of a plan.
pub(super) struct RunCtx {
    /// The run id.
    pub(super) run_id: RunId,
    /// What is rendered.
    pub(super) plan: RenderPlan,
    /// Render switches.
    pub(super) options: RenderOptions,
    /// Every finished step so far.
    pub(super) reports: Mutex<Vec<StepReport>>,
    /// The project's remaining budget, when it has one.
    pub(super) budget: Option<Arc<Budget>>,
    /// Each plan scene's input fingerprint (`fingerprint.rs`), recorded with its output.
    pub(super) fingerprints: Vec<String>,
    /// The project join's work, done as scenes finish (`prejoin.rs`).
    pub(super) prejoin: PreJoin,
}

impl Pipeline {
    /// Builds a pipeline writing temporary files under `work_root`, editing media with ffmpeg ([`Ffmpeg`]).
    pub fn new(
        db: Db,
        objects: ObjectStorage,
        providers: Providers,
        work_root: PathBuf,
        progress: Arc<dyn Progress>,
        settings: PipelineSettings,
    ) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            db: db.clone(),
            logs: crate::storage::db::LogBatcher::new(db.clone()),
            objects,
            providers,
            media: Arc::new(Ffmpeg),
            faces: Arc::new(EngineScorer {
                settings: settings.face.clone(),
            }),
            work_root,
            progress,
            heavy: Arc::new(Semaphore::new(cores.clamp(1, 4))),
            limits: ProviderLimits::new(
                db.clone(),
                settings.provider_limits.clone(),
                settings.lease,
            ),
            abort_after: settings.abort_after_steps,
            settings,
            executed: AtomicUsize::new(0),
            lora_checks: tokio::sync::Mutex::default(),
            key_locks: Mutex::default(),
        }
    }

    /// This pipeline with another media editor (tests: `testkit::FakeMedia`, which needs no ffmpeg).
    pub fn with_media_editor(mut self, media: Arc<dyn MediaEditor>) -> Self {
        self.media = media;
        self
    }

    /// This pipeline with another face scorer (tests: `testkit::FakeFaces`, which needs no models).
    pub fn with_face_scorer(mut self, faces: Arc<dyn FaceScorer>) -> Self {
        self.faces = faces;
        self
    }

    /// Executes every scene's DAG and the project ASSEMBLE for `run_id`.
    /// `assemble` adds the project ASSEMBLE step (a single-scene run leaves it out). Scenes in `plan.recorded`
    /// are not rendered: ASSEMBLE takes their recorded FINALIZE output.
    pub async fn execute(
        self: &Arc<Self>,
        run_id: &RunId,
        plan: RenderPlan,
        options: RenderOptions,
        assemble: bool,
    ) -> RunReport {
        let fingerprints = super::fingerprint::plan_fingerprints(&plan);
        let plan = self.settings.apply_defaults(plan);
        let budget = match plan.project.budget_usd {
            Some(limit) => {
                let spent = self.db.project_cost(&plan.project_id).await.unwrap_or(0.0);
                Some(Arc::new(Budget::new(limit, spent)))
            }
            None => None,
        };
        let prejoin = PreJoin::new(
            self.media.clone(),
            self.objects.clone(),
            &self.work_root,
            run_id,
            &plan,
            assemble,
        );
        let ctx = Arc::new(RunCtx {
            run_id: run_id.clone(),
            plan,
            options,
            reports: Mutex::default(),
            budget,
            fingerprints,
            prejoin,
        });
        let nodes = graph(ctx.plan.scenes.len(), assemble, &ctx.plan.recorded);
        for (i, s) in ctx.plan.scenes.iter().enumerate() {
            if !ctx.options.preview && !ctx.plan.recorded.contains_key(&i) {
                let _ = self
                    .db
                    .set_scene_output(&s.id, SceneStatus::Generating, None)
                    .await;
            }
        }
        let (this, c, gate) = (self.clone(), ctx.clone(), run_gate(&ctx.options));
        let outcomes = run_dag(nodes, move |node, mut deps| {
            let (this, ctx, gate) = (this.clone(), c.clone(), gate.clone());
            async move {
                let _turn = take_turn(&gate).await?;
                if node.0.is_none() {
                    for (i, out) in &ctx.plan.recorded {
                        deps.insert((Some(*i), StepName::Finalize), out.clone());
                    }
                }
                this.run_node(&ctx, node, deps).await
            }
        })
        .await;
        let mut report = RunReport {
            run_id: run_id.clone(),
            steps: Vec::new(),
            outputs: HashMap::new(),
            failures: Vec::new(),
        };
        match outcomes {
            Ok(outcomes) => {
                for (node, outcome) in outcomes {
                    self.settle(&ctx, &mut report, node, outcome).await;
                }
            }
            Err(e) => report.failures.push((
                (None, StepName::Assemble),
                StepError::Internal(e.to_string()),
            )),
        }
        self.finish(&ctx, report).await
    }

    /// Files one node's outcome in the report (a skipped node's `steps` row says why).
    async fn settle(
        &self,
        ctx: &RunCtx,
        report: &mut RunReport,
        node: NodeKey,
        outcome: NodeOutcome<super::StepOutput, StepError>,
    ) {
        match outcome {
            NodeOutcome::Done(o) => {
                report.outputs.insert(node, o);
            }
            NodeOutcome::Failed(e) => report.failures.push((node, e)),
            NodeOutcome::Skipped => {
                let scene_id = self.scene_id(ctx, node);
                if let Ok(row) = self
                    .db
                    .ensure_step(&ctx.run_id, scene_id, node.1.as_str())
                    .await
                {
                    let _ = self
                        .db
                        .step_ended_without_output(
                            &row.id,
                            StepStatus::Skipped,
                            "a dependency failed",
                        )
                        .await;
                }
            }
        }
    }

    /// Marks failed scenes and orders the report.
    async fn finish(&self, ctx: &RunCtx, mut report: RunReport) -> RunReport {
        report.failures.sort_by_key(|(n, _)| *n);
        for (node, _) in report.failures.iter().filter(|_| !ctx.options.preview) {
            if let Some(i) = node.0 {
                let _ = self
                    .db
                    .set_scene_output(&ctx.plan.scenes[i].id, SceneStatus::Failed, None)
                    .await;
            }
        }
        let mut steps = ctx.reports.lock().map(|r| r.clone()).unwrap_or_default();
        steps.sort_by_key(|s| (s.scene.map_or(usize::MAX, |i| i), s.step));
        report.steps = steps;
        report
    }

    /// Counts an executed (not cached) step; the test hook kills the process after the configured number.
    pub(super) fn count_execution(&self) {
        let n = self.executed.fetch_add(1, Ordering::SeqCst) + 1;
        if self.abort_after == Some(n) {
            eprintln!("DEVATAR_TEST_ABORT_AFTER_STEPS={n}: killing this process (SIGKILL)");
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

/// The nodes of a plan with `scenes` scenes and their dependencies, leaving out the `recorded` scenes; ASSEMBLE
/// waits for every FINALIZE rendered.
fn graph(
    scenes: usize,
    assemble: bool,
    recorded: &BTreeMap<usize, super::StepOutput>,
) -> Vec<(NodeKey, Vec<NodeKey>)> {
    let rendered = || (0..scenes).filter(|i| !recorded.contains_key(i));
    let mut nodes: Vec<(NodeKey, Vec<NodeKey>)> = Vec::new();
    for i in rendered() {
        for step in StepName::SCENE_STEPS {
            nodes.push((
                (Some(i), step),
                step.dependencies().iter().map(|d| (Some(i), *d)).collect(),
            ));
        }
    }
    if assemble {
        let finals = rendered().map(|i| (Some(i), StepName::Finalize)).collect();
        nodes.push(((None, StepName::Assemble), finals));
    }
    nodes
}
