//! Log rows of one node: the guide's step names (`AUDIO_GENERATION`, …), level, provider, message, duration.
//! Logging never fails a step.

use serde_json::json;

use super::error::StepError;
use super::report::NodeKey;
use super::runner::{Pipeline, RunCtx};
use crate::domain::{LogLevel, LogStep};
use crate::storage::db::LogInput;

/// Writes the log rows of one node of a run.
pub(super) struct StepLogger<'a> {
    pipeline: &'a Pipeline,
    run: &'a RunCtx,
    node: NodeKey,
}

impl Pipeline {
    /// The logger of `node` in `run`.
    pub(super) fn logger<'a>(&'a self, run: &'a RunCtx, node: NodeKey) -> StepLogger<'a> {
        StepLogger {
            pipeline: self,
            run,
            node,
        }
    }
}

impl StepLogger<'_> {
    /// Writes one row.
    pub(super) async fn row(
        &self,
        step: LogStep,
        level: LogLevel,
        provider: &str,
        message: String,
        ms: Option<u64>,
    ) {
        self.insert(step, level, provider, message, ms, None).await;
    }

    /// The step's own row (under its guide name) at `level`.
    pub(super) async fn step_row(&self, level: LogLevel, provider: &str, message: String) {
        self.row(self.node.1.log_step(), level, provider, message, None)
            .await;
    }

    /// `STEP reused a cached output`.
    pub(super) async fn cached(&self, provider: &str) {
        let msg = format!("{} reused a cached output", self.node.1.as_str());
        self.step_row(LogLevel::Debug, provider, msg).await;
    }

    /// `STEP started`.
    pub(super) async fn started(&self, provider: &str) {
        let msg = format!("{} started", self.node.1.as_str());
        self.step_row(LogLevel::Info, provider, msg).await;
    }

    /// `STEP finished in N ms`.
    pub(super) async fn finished(&self, provider: &str, ms: u64) {
        let step = self.node.1;
        let msg = format!("{} finished in {ms} ms", step.as_str());
        self.row(step.log_step(), LogLevel::Info, provider, msg, Some(ms))
            .await;
    }

    /// `STEP failed: reason`, with the error class as the row's payload.
    pub(super) async fn failed(&self, error: &StepError, ms: u64) {
        let step = self.node.1;
        let msg = format!("{} failed: {error}", step.as_str());
        let payload = json!({ "errorClass": error.class().as_str() }).to_string();
        self.insert(
            step.log_step(),
            LogLevel::Error,
            "devatar",
            msg,
            Some(ms),
            Some(payload),
        )
        .await;
    }

    async fn insert(
        &self,
        step: LogStep,
        level: LogLevel,
        provider: &str,
        message: String,
        ms: Option<u64>,
        payload: Option<String>,
    ) {
        let row = LogInput {
            run_id: Some(self.run.run_id.clone()),
            project_id: Some(self.run.plan.project_id.clone()),
            scene_id: self.node.0.map(|i| self.run.plan.scenes[i].id.clone()),
            step: step.as_str().into(),
            level: level.as_str().into(),
            provider: Some(provider.into()),
            message,
            duration_ms: ms.map(|m| m as i64),
            payload,
        };
        if let Err(e) = self.pipeline.logs.insert(row).await {
            tracing::warn!(error = %e, "could not write a log row");
        }
    }
}
