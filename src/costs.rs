//! The price table and cost estimates: what each paid step will cost before it runs, and what it cost after.
//!
//! Defaults come from the provider price list (PROVIDERS.md §7, Fal-hosted prices): they are estimates and
//! change monthly; override them with `DEVATAR_PRICES` (a JSON object with any of the fields below).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Animation, Project, Scene, duration_bucket};

/// Prices in USD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PriceTable {
    /// ElevenLabs speech per 1,000 characters (Multilingual v2).
    pub speech_per_1k_chars: f64,
    /// Fal `flux-lora` per megapixel.
    pub image_per_megapixel: f64,
    /// Kling 2.1 standard image-to-video: the first 5 seconds.
    pub video_first_5s: f64,
    /// Kling 2.1 standard: each second after the first 5.
    pub video_per_extra_second: f64,
    /// Sync `lipsync-2` per minute of output.
    pub lipsync_per_minute: f64,
    /// Kling AI Avatar (one-step talking clip) per second.
    pub avatar_per_second: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            speech_per_1k_chars: 0.10,
            image_per_megapixel: 0.035,
            video_first_5s: 0.28,
            video_per_extra_second: 0.056,
            lipsync_per_minute: 3.0,
            avatar_per_second: 0.0562,
        }
    }
}

/// `DEVATAR_PRICES` could not be used.
#[derive(Debug, thiserror::Error)]
#[error("not a valid price table: {0}")]
pub struct PriceError(String);

impl PriceTable {
    /// The defaults, overridden field by field by `text` (the JSON of `DEVATAR_PRICES`).
    pub fn from_json(text: &str) -> Result<Self, PriceError> {
        let table: Self = serde_json::from_str(text).map_err(|e| PriceError(e.to_string()))?;
        table.validated()
    }

    fn validated(self) -> Result<Self, PriceError> {
        let all = [
            self.speech_per_1k_chars,
            self.image_per_megapixel,
            self.video_first_5s,
            self.video_per_extra_second,
            self.lipsync_per_minute,
            self.avatar_per_second,
        ];
        if all
            .iter()
            .all(|p| p.is_finite() && *p >= 0.0 && *p < 1000.0)
        {
            Ok(self)
        } else {
            Err(PriceError("prices must be between 0 and 1000".into()))
        }
    }

    /// Speech for `chars` characters.
    pub fn speech(&self, chars: usize) -> f64 {
        self.speech_per_1k_chars * chars as f64 / 1000.0
    }

    /// One still of `width`×`height`.
    pub fn image(&self, width: u32, height: u32) -> f64 {
        self.image_per_megapixel * f64::from(width) * f64::from(height) / 1_000_000.0
    }

    /// An image-to-video clip of `seconds`.
    pub fn video(&self, seconds: u32) -> f64 {
        self.video_first_5s + self.video_per_extra_second * f64::from(seconds.saturating_sub(5))
    }

    /// A one-step talking avatar clip of `seconds`.
    pub fn avatar(&self, seconds: f64) -> f64 {
        self.avatar_per_second * seconds.max(0.0)
    }

    /// Lip-sync of `seconds` of output.
    pub fn lipsync(&self, seconds: f64) -> f64 {
        self.lipsync_per_minute * seconds.max(0.0) / 60.0
    }
}

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
    let (w, h, _) = project.aspect_ratio.still_size();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_worked_example_costs_about_58_cents_a_scene() {
        let p = PriceTable::default();
        // PROVIDERS.md §7: ~80 characters, 1 MP still, 5 s Kling 2.1 std, 5 s lipsync-2 ≈ $0.58.
        let total = p.speech(80) + p.image(1024, 1024) + p.video(5) + p.lipsync(5.0);
        assert!((total - 0.575).abs() < 0.01, "{total}");
        assert!((p.video(10) - 0.56).abs() < 1e-9);
    }

    #[test]
    fn price_overrides_are_validated() {
        let t: PriceTable = serde_json::from_str(r#"{"lipsyncPerMinute": 5.0}"#).unwrap();
        assert_eq!(t.lipsync_per_minute, 5.0);
        assert_eq!(t.video_first_5s, 0.28);
        assert!(serde_json::from_str::<PriceTable>(r#"{"typo": 1}"#).is_err());
        let negative = PriceTable {
            image_per_megapixel: -1.0,
            ..PriceTable::default()
        };
        assert!(negative.validated().is_err());
    }
}
