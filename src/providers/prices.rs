//! What provider work costs: the price table every paid call reserves and records against.
//!
//! Defaults come from the provider price list (PROVIDERS.md §7, Fal-hosted prices): they are estimates and
//! change monthly; override them with `DEVATAR_PRICES` (a JSON object with any of the fields below).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// Fal `flux-lora-fast-training` per 1,000 training steps (about $2 a run at the default 1,000 steps).
    pub lora_training_per_1k_steps: f64,
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
            lora_training_per_1k_steps: 2.0,
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
            self.lora_training_per_1k_steps,
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

    /// A LoRA training of `steps` steps.
    pub fn lora_training(&self, steps: u32) -> f64 {
        self.lora_training_per_1k_steps * f64::from(steps) / 1000.0
    }

    /// Lip-sync of `seconds` of output.
    pub fn lipsync(&self, seconds: f64) -> f64 {
        self.lipsync_per_minute * seconds.max(0.0) / 60.0
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
