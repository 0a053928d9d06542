//! Cost estimates: what each paid step of a project will cost before it runs (prices from the providers'
//! [`PriceTable`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Animation, Project, Scene, duration_bucket};
pub use crate::providers::{PriceError, PriceTable};

/// Speech length predicted from the text, before any speech exists: about 2.6 words a second plus a breath.
pub fn predicted_speech_seconds(text: &str) -> f64 {
    let words = text.split_whitespace().count() as f64;
    words / 2.6 + 0.4
}

/// Which providers an estimate assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// Offline providers: nothing is paid.
    Local,
    /// ElevenLabs, Fal Flux, Kling, Sync.
    Cloud,
}

/// The estimate of one step.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepEstimate {
    /// `AUDIO`, `IMAGE`, `VIDEO`, `LIPSYNC`.
    pub step: String,
    /// USD.
    pub usd: f64,
    /// What the price is based on.
    pub basis: String,
}

/// The estimate of one scene.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SceneEstimate {
    /// Scene name.
    pub name: String,
    /// Predicted speech length, seconds.
    pub speech_seconds: f64,
    /// Clip length the video step will request, seconds.
    pub video_seconds: u32,
    /// Per step.
    pub steps: Vec<StepEstimate>,
    /// Sum of the steps.
    pub usd: f64,
}

/// The estimate of a project (or some of its scenes).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// The providers assumed.
    pub route: Route,
    /// Per scene.
    pub scenes: Vec<SceneEstimate>,
    /// Sum over scenes, USD.
    pub total_usd: f64,
    /// The prices used.
    pub prices: PriceTable,
}

/// Estimates one scene. Cached steps are not subtracted: this is the price of rendering from scratch.
pub fn estimate_scene(
    prices: &PriceTable,
    project: &Project,
    scene: &Scene,
    route: Route,
) -> SceneEstimate {
    let speech_seconds = predicted_speech_seconds(&scene.dialogue);
    let video_seconds = duration_bucket(speech_seconds);
    let (w, h) = project.aspect_ratio.still_size();
    let chars = scene.dialogue.chars().count();
    let steps: Vec<StepEstimate> = match route {
        Route::Local => ["AUDIO", "IMAGE", "VIDEO", "LIPSYNC"]
            .iter()
            .map(|s| StepEstimate {
                step: (*s).into(),
                usd: 0.0,
                basis: "local provider".into(),
            })
            .collect(),
        Route::Cloud => vec![
            StepEstimate {
                step: "AUDIO".into(),
                usd: prices.speech(chars),
                basis: format!("{chars} characters of speech"),
            },
            StepEstimate {
                step: "IMAGE".into(),
                usd: prices.image(w, h),
                basis: format!("one {w}×{h} still"),
            },
        ]
        .into_iter()
        .chain(match scene.animation {
            Animation::Standard => [
                StepEstimate {
                    step: "VIDEO".into(),
                    usd: prices.video(video_seconds),
                    basis: format!("{video_seconds} s clip"),
                },
                StepEstimate {
                    step: "LIPSYNC".into(),
                    usd: prices.lipsync(speech_seconds + 0.3),
                    basis: format!("{:.1} s of lip-sync", speech_seconds + 0.3),
                },
            ],
            Animation::Fast => [
                StepEstimate {
                    step: "VIDEO".into(),
                    usd: prices.avatar(speech_seconds),
                    basis: format!("{speech_seconds:.1} s one-step talking avatar (fast)"),
                },
                StepEstimate {
                    step: "LIPSYNC".into(),
                    usd: 0.0,
                    basis: "included in the talking-avatar clip".into(),
                },
            ],
        })
        .collect(),
    };
    let usd = steps.iter().map(|s| s.usd).sum();
    SceneEstimate {
        name: scene.name.clone(),
        speech_seconds: (speech_seconds * 10.0).round() / 10.0,
        video_seconds,
        steps,
        usd,
    }
}

impl Estimate {
    /// Scene `index` speaks an uploaded recording: its AUDIO synthesises nothing and costs nothing.
    pub fn speech_recorded(&mut self, index: usize) {
        let Some(scene) = self.scenes.get_mut(index) else {
            return;
        };
        if let Some(audio) = scene.steps.iter_mut().find(|s| s.step == "AUDIO") {
            audio.usd = 0.0;
            audio.basis = "an uploaded recording (no speech synthesis)".into();
        }
        scene.usd = scene.steps.iter().map(|s| s.usd).sum();
        self.total_usd = self.scenes.iter().map(|s| s.usd).sum();
    }
}

/// Estimates `scenes` of `project`.
pub fn estimate(
    prices: &PriceTable,
    project: &Project,
    scenes: &[Scene],
    route: Route,
) -> Estimate {
    let scenes: Vec<SceneEstimate> = scenes
        .iter()
        .map(|s| estimate_scene(prices, project, s, route))
        .collect();
    Estimate {
        route,
        total_usd: scenes.iter().map(|s| s.usd).sum(),
        scenes,
        prices: prices.clone(),
    }
}
