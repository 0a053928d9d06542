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
pub mod faces;
pub mod fingerprint;
pub mod keys;
pub mod ledger;
pub mod limits;
mod log;
mod mode;
mod node;
mod prejoin;
mod report;
mod runner;
mod steps;
pub mod testkit;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use error::{ErrorClass, StepError};
pub use faces::{EngineScorer, FaceScore, FaceScorer};
pub use mode::{ModeDecision, select_mode};
pub use report::{Event, EventKind, NodeKey, Progress, RunReport, StepReport};
pub use runner::Pipeline;
pub use steps::PROMPT_PREFIX;

use crate::domain::{Identity, Project, ProjectId, Scene, SceneId};
use crate::media::captions::WordTiming;

/// One scene ready to render: validated, stored, with its identity and headshot objects resolved.
#[derive(Debug, Clone)]
pub struct PlannedScene {
    /// Stored scene id.
    pub id: SceneId,
    /// The scene.
    pub scene: Scene,
    /// The speaking identity.
    pub identity: Identity,
    /// Object key of the scene's own headshot.
    pub scene_headshot: Option<String>,
    /// Object key of the identity's headshot.
    pub identity_headshot: Option<String>,
    /// Object key of the uploaded recording spoken instead of TTS (AUDIO).
    pub speech_recording: Option<String>,
    /// Object key of the background image the framed headshot is composited over (IMAGE, standard mode).
    pub background: Option<String>,
    /// Object key of the identity's uploaded LoRA file (used instead of `identity.lora_url`).
    pub identity_lora: Option<String>,
    /// The identity's face print (from its reference photos), when it has one: what IMAGE and FINALIZE score
    /// against.
    pub face_print: Option<std::sync::Arc<crate::face::FacePrint>>,
}

/// Everything one project render needs.
#[derive(Debug, Clone)]
pub struct RenderPlan {
    /// Stored project id.
    pub project_id: ProjectId,
    /// The project.
    pub project: Project,
    /// Scenes in order.
    pub scenes: Vec<PlannedScene>,
    /// Scenes (by index) this run does not render: their recorded FINALIZE output goes into ASSEMBLE as it is
    /// (a scene run that re-assembles the project video around its one scene).
    pub recorded: BTreeMap<usize, StepOutput>,
}

/// How a pipeline behaves on this deployment (from [`crate::config::Config`]).
#[derive(Debug, Clone, Default)]
pub struct PipelineSettings {
    /// Jobs in flight per provider account, across every process sharing the database.
    pub provider_limits: limits::Caps,
    /// How long a provider-slot claim lasts without renewal.
    pub lease: std::time::Duration,
    /// User-supplied URLs (LoRA files) may reach private addresses (development and tests only).
    pub allow_private_urls: bool,
    /// The LoRA an identity without its own uses (`DEVEN_LORA_URL`).
    pub default_lora_url: Option<String>,
    /// Crash tests only: SIGKILL the process after this many executed steps.
    pub abort_after_steps: Option<usize>,
    /// The face engine's models and same-person threshold (IMAGE's identity gate, FINALIZE's score).
    pub face: crate::face::FaceSettings,
}

impl PipelineSettings {
    /// `plan` with the deployment's defaults filled in: identities without a LoRA get the default LoRA.
    pub fn apply_defaults(&self, mut plan: RenderPlan) -> RenderPlan {
        if let Some(url) = &self.default_lora_url {
            for s in &mut plan.scenes {
                if s.identity.lora_url.is_none() && s.identity_lora.is_none() {
                    s.identity.lora_url = Some(url.clone());
                }
            }
        }
        plan
    }
}

/// Render switches.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Burn captions into the scene videos (changes outputs).
    pub burn_captions: bool,
    /// At most this many steps at once in this run (`Some(1)`: strictly one after another); `None` runs every
    /// ready step, within provider limits. Outputs are the same either way.
    pub max_parallel_steps: Option<usize>,
    /// A preview run (the caller gives it local providers): its outputs stay on the run and never replace the
    /// scenes' or the project's recorded outputs.
    pub preview: bool,
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
    /// Distance of the face to the identity's face print: IMAGE's chosen still, or FINALIZE's worst sampled
    /// frame; `None` when nothing was scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_distance: Option<f64>,
    /// FINALIZE: the median distance of the sampled frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_median: Option<f64>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Animation, GenerationMode};

    fn planned(identity: Identity) -> PlannedScene {
        PlannedScene {
            id: "s1".into(),
            scene: Scene {
                name: "intro".into(),
                dialogue: "Hello.".into(),
                environment: None,
                wardrobe: None,
                mood_lighting: None,
                camera: None,
                movement: None,
                target_duration: None,
                identity: identity.name.clone(),
                generation_mode: GenerationMode::Auto,
                animation: Animation::default(),
            },
            identity,
            scene_headshot: None,
            speech_recording: None,
            background: None,
            identity_headshot: None,
            identity_lora: None,
            face_print: None,
        }
    }

    /// `DEVEN_LORA_URL` is the LoRA of identities that set none, and never replaces an identity's own.
    #[test]
    fn the_default_lora_fills_only_identities_without_one() {
        let bare = Identity::new("deven", "Deven Spear", "TOK_DEVEN");
        let mut own = Identity::new("ana", "Ana", "TOK_ANA");
        own.lora_url = Some("https://example.com/ana.safetensors".into());
        let plan = RenderPlan {
            project_id: "p".into(),
            project: Project::named("P"),
            scenes: vec![planned(bare.clone()), planned(own)],
            recorded: Default::default(),
        };
        let settings = PipelineSettings {
            default_lora_url: Some("https://example.com/deven.safetensors".into()),
            ..PipelineSettings::default()
        };
        let filled = settings.apply_defaults(plan.clone());
        assert_eq!(
            filled.scenes[0].identity.lora_url.as_deref(),
            Some("https://example.com/deven.safetensors")
        );
        assert_eq!(
            filled.scenes[1].identity.lora_url.as_deref(),
            Some("https://example.com/ana.safetensors")
        );
        let untouched = PipelineSettings::default().apply_defaults(plan);
        assert_eq!(untouched.scenes[0].identity.lora_url, None);
        assert_eq!(bare.lora_url, None);
    }
}
