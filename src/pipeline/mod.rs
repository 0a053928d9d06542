//! The scene pipeline: a DAG of durable, content-addressed steps per scene, plus the project ASSEMBLE step.
//!
//! ```text
//! AUDIO ─────────────┬─(duration bucket)─┐
//! IMAGE ─────────────┴──► VIDEO ─────────┴─► LIPSYNC ─► FINALIZE ─┐
//!                                   (all scenes) FINALIZE ────────┴─► ASSEMBLE
//! ```

mod capacity;
pub mod dag;
mod error;
pub mod keys;
pub mod ledger;
pub mod limits;
mod log;
mod mode;
mod node;
mod report;
mod runner;
mod steps;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use error::{ErrorClass, StepError};
pub use mode::{ModeDecision, select_mode};
pub use report::{Event, EventKind, NodeKey, Progress, RunReport, StepReport};
pub use runner::Pipeline;

use crate::domain::{Identity, Project, Scene};
use crate::media::captions::WordTiming;

/// One scene ready to render: validated, stored, with its identity and headshot objects resolved.
#[derive(Debug, Clone)]
pub struct PlannedScene {
    /// Stored scene id.
    pub id: String,
    /// The scene.
    pub scene: Scene,
    /// The speaking identity.
    pub identity: Identity,
    /// Object key of the scene's own headshot.
    pub scene_headshot: Option<String>,
    /// Object key of the identity's headshot.
    pub identity_headshot: Option<String>,
}

/// Everything one project render needs.
#[derive(Debug, Clone)]
pub struct RenderPlan {
    /// Stored project id.
    pub project_id: String,
    /// The project.
    pub project: Project,
    /// Scenes in order.
    pub scenes: Vec<PlannedScene>,
}

/// Render switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Burn captions into the scene videos (changes outputs).
    pub burn_captions: bool,
    /// At most this many steps at once in this run (`Some(1)`: strictly one after another); `None` runs every
    /// ready step, within provider limits. Outputs are the same either way.
    pub max_parallel_steps: Option<usize>,
}

/// What a finished step produced: object keys by role, plus the facts downstream steps need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    /// Role (`audio`, `image`, `video`, `thumbnail`, `srt`, `vtt`) → object key.
    #[serde(default)]
    pub objects: BTreeMap<String, String>,
    /// Media length, seconds.
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    /// Word timings (AUDIO, FINALIZE).
    #[serde(default)]
    pub words: Vec<WordTiming>,
    /// Effective generation mode (IMAGE).
    #[serde(default)]
    pub mode: Option<String>,
}

impl StepOutput {
    /// The object key for a role.
    pub fn object(&self, role: &str) -> Option<&str> {
        self.objects.get(role).map(String::as_str)
    }
}

/// Seconds of quiet kept after each scene's speech; equal to the crossfade, so speech is never faded.
pub const SCENE_TAIL_SECONDS: f64 = 0.3;
/// Crossfade between scenes in the project video.
pub const CROSSFADE_SECONDS: f64 = 0.3;
