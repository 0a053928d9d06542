//! One durable node: ensure its `steps` row → compute its content key → reuse a cached output whose objects
//! still exist, or do the work in a fresh work folder, store the outputs and the cache row → record the step.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::StepOutput;
use super::error::StepError;
use super::fingerprint::project_fingerprint;
use super::keys::content_key;
use super::ledger::DbLedger;
use super::report::{Event, EventKind, NodeKey, StepReport};
use super::runner::{Pipeline, RunCtx};
use super::steps::{Prepared, Step, StepCx, step};
use crate::domain::{LogLevel, ProjectStatus, SceneId, SceneStatus, StepName, StepStatus};
use crate::providers::JobCtx;
use crate::storage::db::SceneOutput;
use crate::storage::now_ms;

/// A node that ended well in this run.
pub(super) struct NodeRun {
    /// Provider id.
    provider: String,
    /// Its output manifest, as a later run reads it from the cache.
    output: StepOutput,
    /// True when the output was reused and no work was executed.
    cached: bool,
    /// Estimated cost of the work, USD.
    cost_usd: f64,
}

impl Pipeline {
    /// Runs `node` durably: cached or executed, recorded, logged and reported either way.
    pub(super) async fn run_node(
        &self,
        ctx: &RunCtx,
        node: NodeKey,
        deps: HashMap<NodeKey, StepOutput>,
    ) -> Result<StepOutput, StepError> {
        let started = Instant::now();
        let started_at_ms = now_ms();
        let cx = StepCx {
            pipeline: self,
            run: ctx,
            node,
            deps: &deps,
        };
        let result = self.attempt(&cx).await;
        let ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(run) => {
                self.succeeded(ctx, node, &run, ms, started_at_ms).await;
                Ok(run.output)
            }
            Err(e) => {
                self.failed(ctx, node, &e, ms).await;
                Err(e)
            }
        }
    }

    /// A progress event of `node`.
    pub(super) fn event(&self, ctx: &RunCtx, node: NodeKey, kind: EventKind) -> Event {
        Event {
            run_id: ctx.run_id.clone(),
            scene_id: node.0.map(|i| ctx.plan.scenes[i].id.clone()),
            scene: node.0.map(|i| ctx.plan.scenes[i].scene.name.clone()),
            step: node.1,
            kind,
        }
    }

    /// The node's scene id (`None` for ASSEMBLE).
    pub(super) fn scene_id<'c>(&self, ctx: &'c RunCtx, node: NodeKey) -> Option<&'c SceneId> {
        node.0.map(|i| &ctx.plan.scenes[i].id)
    }

    async fn attempt(&self, cx: &StepCx<'_>) -> Result<NodeRun, StepError> {
        let (ctx, node) = (cx.run, cx.node);
        let name = node.1.as_str();
        let row = self
            .db
            .ensure_step(&ctx.run_id, self.scene_id(ctx, node), name)
            .await?;
        let step = step(node.1);
        let prepared = step.prepare(cx).await?;
        let input_refs: Vec<&str> = prepared.inputs.iter().map(String::as_str).collect();
        let key = content_key(name, &prepared.provider, &prepared.params, &input_refs);
        // One execution per content key at a time in this process.
        let key_lock = self.key_lock(&key);
        let _held = key_lock.lock().await;
        if let Some(output) = self.cached(&key).await? {
            let json = serde_json::to_string(&output).unwrap_or_default();
            self.db
                .step_succeeded(&row.id, &prepared.provider, &key, &json, true, 0.0)
                .await?;
            self.logger(ctx, node).cached(&prepared.provider).await;
            return Ok(NodeRun {
                provider: prepared.provider,
                output,
                cached: true,
                cost_usd: 0.0,
            });
        }
        self.execute_fresh(cx, step, &row.id, prepared, &key).await
    }

    /// Does the work of a node whose output is not cached, in a fresh work folder, and stores it.
    async fn execute_fresh(
        &self,
        cx: &StepCx<'_>,
        step: &dyn Step,
        row_id: &str,
        prepared: Prepared,
        key: &str,
    ) -> Result<NodeRun, StepError> {
        let (ctx, node) = (cx.run, cx.node);
        let log = self.logger(ctx, node);
        self.progress.on(&self.event(ctx, node, EventKind::Started));
        self.db
            .step_started(row_id, &prepared.provider, key)
            .await?;
        log.started(&prepared.provider).await;
        let work = self.work_root.join(ctx.run_id.as_str()).join(format!(
            "{}-{}-{}",
            node.0.map_or("project".into(), |i| i.to_string()),
            node.1.as_str(),
            crate::storage::new_id()
        ));
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| StepError::Internal(format!("work folder {}: {e}", work.display())))?;
        let mut capacity = self.capacity(node.1, &prepared).await?;
        let mut job = JobCtx::new(key.to_string(), Arc::new(DbLedger(self.db.clone())))
            .with_budget(ctx.budget.clone());
        if let Some(note) = capacity.wait_note(self) {
            job.note(note);
        }
        if let Some(slot) = capacity.take_slot() {
            job = job.holding(slot);
        } else if let Some(cores) = capacity.take_cores() {
            job = job.holding(cores);
        }
        let out = step.execute(cx, &work, &job).await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        for note in job.take_notes() {
            log.step_row(LogLevel::Info, &prepared.provider, note).await;
        }
        let cost_usd = job.cost();
        let output = self
            .persist(key, node.1, &prepared.provider, row_id, &out?, cost_usd)
            .await?;
        Ok(NodeRun {
            provider: prepared.provider,
            output,
            cached: false,
            cost_usd,
        })
    }

    /// Stores an executed step's output in the cache and its `steps` row; returns the manifest downstream
    /// steps get: exactly what a later run will read from the cache, so keys match.
    async fn persist(
        &self,
        key: &str,
        step: StepName,
        provider: &str,
        row_id: &str,
        out: &StepOutput,
        cost: f64,
    ) -> Result<StepOutput, StepError> {
        let json = serde_json::to_string(out).map_err(|e| StepError::Internal(e.to_string()))?;
        let out: StepOutput =
            serde_json::from_str(&json).map_err(|e| StepError::Internal(e.to_string()))?;
        self.db
            .cache_output(key, step.as_str(), provider, &json)
            .await?;
        self.db
            .step_succeeded(row_id, provider, key, &json, false, cost)
            .await?;
        Ok(out)
    }

    /// A cached output whose objects all still exist.
    /// `Err` when storage cannot tell (e.g. S3 unreachable): the step then fails rather than paying again.
    async fn cached(&self, key: &str) -> Result<Option<StepOutput>, StepError> {
        let Some(json) = self.db.cached_output(key).await? else {
            return Ok(None);
        };
        let Ok(out) = serde_json::from_str::<StepOutput>(&json) else {
            return Ok(None);
        };
        for object in out.objects.values() {
            let exists = self.objects.try_exists(object).await.map_err(|e| {
                StepError::Storage(format!(
                    "cannot check the cached output in media storage (not re-running a paid step): {e}"
                ))
            })?;
            if !exists {
                let _ = self.db.forget_cached(key).await;
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    /// Records, logs and reports a node that ended well.
    async fn succeeded(
        &self,
        ctx: &RunCtx,
        node: NodeKey,
        run: &NodeRun,
        ms: u64,
        started_at_ms: i64,
    ) {
        self.after_success(ctx, node, &run.output).await;
        if let (Some(i), StepName::Finalize) = node {
            ctx.prejoin.finalized(i, &run.output, run.cached);
        }
        if !run.cached {
            self.logger(ctx, node).finished(&run.provider, ms).await;
        }
        if let Ok(mut r) = ctx.reports.lock() {
            r.push(StepReport {
                scene: node.0,
                step: node.1,
                provider: run.provider.clone(),
                cached: run.cached,
                ms,
                cost_usd: run.cost_usd,
                started_at_ms,
                finished_at_ms: now_ms(),
                identity_distance: run.output.identity_distance,
                identity_median: run.output.identity_median,
            });
        }
        let cached = run.cached;
        self.progress
            .on(&self.event(ctx, node, EventKind::Finished { cached, ms }));
        if !cached {
            self.count_execution();
        }
    }

    /// Records, logs and reports a node that failed.
    async fn failed(&self, ctx: &RunCtx, node: NodeKey, error: &StepError, ms: u64) {
        let reason = error.to_string();
        if let Ok(row) = self
            .db
            .ensure_step(&ctx.run_id, self.scene_id(ctx, node), node.1.as_str())
            .await
        {
            let _ = self
                .db
                .step_ended_without_output(&row.id, StepStatus::Failed, &reason)
                .await;
        }
        self.logger(ctx, node).failed(error, ms).await;
        self.progress
            .on(&self.event(ctx, node, EventKind::Failed(reason)));
    }

    /// Records scene and project outputs (for cached and executed steps alike; never for a preview).
    async fn after_success(&self, ctx: &RunCtx, node: NodeKey, out: &StepOutput) {
        if ctx.options.preview {
            return;
        }
        let result = match node {
            (Some(i), StepName::Finalize) => {
                let recorded = SceneOutput {
                    video: out.object("video"),
                    thumbnail: out.object("thumbnail"),
                    duration: out.duration_seconds,
                    inputs: &ctx.fingerprints[i],
                };
                self.db
                    .set_scene_output(
                        &ctx.plan.scenes[i].id,
                        SceneStatus::Completed,
                        Some(&recorded),
                    )
                    .await
            }
            (None, StepName::Assemble) => {
                self.db
                    .set_project_output(
                        &ctx.plan.project_id,
                        ProjectStatus::Completed,
                        out.object("video"),
                        out.object("vtt"),
                        out.duration_seconds,
                        &project_fingerprint(ctx.fingerprints.iter().map(String::as_str)),
                    )
                    .await
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record an output");
        }
    }
}
