//! What a run tells its caller: the run report, and progress events while it runs.

use std::collections::HashMap;

use super::StepOutput;
use super::error::StepError;
use crate::domain::{RunId, SceneId, StepName};

/// A DAG node: (scene index, step); ASSEMBLE has no scene.
pub type NodeKey = (Option<usize>, StepName);

/// What happened to one step in this run.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Scene index, `None` for ASSEMBLE.
    pub scene: Option<usize>,
    /// The step.
    pub step: StepName,
    /// Provider id.
    pub provider: String,
    /// True when no work was executed (output reused).
    pub cached: bool,
    /// Wall time in this run, ms.
    pub ms: u64,
    /// Estimated cost, USD.
    pub cost_usd: f64,
    /// Start, epoch ms.
    pub started_at_ms: i64,
    /// End, epoch ms.
    pub finished_at_ms: i64,
    /// Distance of the face to the identity's face print (IMAGE's kept still, FINALIZE's worst frame); `None`
    /// where nothing was scored.
    pub identity_distance: Option<f64>,
    /// FINALIZE: the median distance of its sampled frames.
    pub identity_median: Option<f64>,
}

/// The result of executing a plan.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Run id.
    pub run_id: RunId,
    /// Every finished step.
    pub steps: Vec<StepReport>,
    /// Outputs by node.
    pub outputs: HashMap<NodeKey, StepOutput>,
    /// Failures by node, with reasons (their `Display` is the message logged and stored).
    pub failures: Vec<(NodeKey, StepError)>,
}

impl RunReport {
    /// The project video output, when ASSEMBLE finished.
    pub fn assembled(&self) -> Option<&StepOutput> {
        self.outputs.get(&(None, StepName::Assemble))
    }
}

/// Progress notifications (for bars, plain lines or SSE).
#[derive(Debug, Clone)]
pub struct Event {
    /// The run.
    pub run_id: RunId,
    /// Scene id, `None` for ASSEMBLE.
    pub scene_id: Option<SceneId>,
    /// Scene name, `None` for ASSEMBLE.
    pub scene: Option<String>,
    /// The step.
    pub step: StepName,
    /// What happened.
    pub kind: EventKind,
}

/// Kinds of progress notification.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// Work started.
    Started,
    /// Finished; `cached` when nothing was executed.
    Finished {
        /// Reused output.
        cached: bool,
        /// Wall time, ms.
        ms: u64,
    },
    /// Failed with a reason.
    Failed(String),
}

/// Receives progress notifications.
pub trait Progress: Send + Sync {
    /// Called for every event.
    fn on(&self, event: &Event);
}
