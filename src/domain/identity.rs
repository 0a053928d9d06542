//! The identity: a real person whose face (LoRA, headshot) and voice stay the same in every scene.

use serde::{Deserialize, Serialize};

use super::validate::{FieldErrors, in_range, optional_text, required_text};

/// The Flux variant a LoRA was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum BaseModel {
    /// `flux-dev`: quality.
    #[default]
    #[serde(rename = "flux-dev")]
    FluxDev,
    /// `flux-schnell`: speed.
    #[serde(rename = "flux-schnell")]
    FluxSchnell,
}

impl BaseModel {
    /// Parses `flux-dev` or `flux-schnell`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "flux-dev" => Some(Self::FluxDev),
            "flux-schnell" => Some(Self::FluxSchnell),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FluxDev => "flux-dev",
            Self::FluxSchnell => "flux-schnell",
        }
    }
}

/// LoRA strength: a fixed value in 0.0–1.0, or chosen per shot type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoraScale {
    /// A fixed scale.
    Fixed(f64),
    /// Picked by shot type (close-up 0.975, medium 0.925, wide 0.875).
    Auto,
}

impl Default for LoraScale {
    fn default() -> Self {
        Self::Fixed(0.95)
    }
}

impl LoraScale {
    /// Text form: the number, or `auto`.
    pub fn to_text(self) -> String {
        match self {
            Self::Fixed(v) => format!("{v}"),
            Self::Auto => "auto".into(),
        }
    }

    /// Parses the text form; `None` when it is neither a number nor `auto`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Some(Self::Auto);
        }
        s.parse::<f64>().ok().map(Self::Fixed)
    }
}

/// A validated identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Unique lowercase identifier, `[a-z0-9-]`.
    pub name: String,
    /// Friendly name shown in the UI and on placeholder portraits.
    pub display_name: String,
    /// Word that activates the LoRA in prompts, e.g. `TOK_DEVEN`.
    pub trigger_word: String,
    /// Optional notes.
    pub description: Option<String>,
    /// URL of the Flux LoRA `.safetensors` file.
    pub lora_url: Option<String>,
    /// LoRA strength.
    pub lora_scale: LoraScale,
    /// Flux variant.
    pub base_model: BaseModel,
    /// ElevenLabs voice id.
    pub voice_id: Option<String>,
    /// ElevenLabs model id.
    pub voice_model: String,
    /// Voice stability, 0–1.
    pub voice_stability: f64,
    /// Voice similarity boost, 0–1.
    pub voice_similarity: f64,
    /// Voice style exaggeration, 0–1.
    pub voice_style: f64,
    /// ElevenLabs speaker boost.
    pub voice_speaker_boost: bool,
    /// The offline voice (a Piper voice such as `en_US-joe-medium`, or part of its name); the default when unset.
    pub local_voice: Option<String>,
}

/// Default ElevenLabs model.
pub const DEFAULT_VOICE_MODEL: &str = "eleven_multilingual_v2";

impl Identity {
    /// Builds an identity with the guide's defaults for everything but the three required fields.
    pub fn new(name: &str, display_name: &str, trigger_word: &str) -> Self {
        Self {
            name: name.into(),
            display_name: display_name.into(),
            trigger_word: trigger_word.into(),
            description: None,
            lora_url: None,
            lora_scale: LoraScale::default(),
            base_model: BaseModel::default(),
            voice_id: None,
            voice_model: DEFAULT_VOICE_MODEL.into(),
            voice_stability: 0.5,
            voice_similarity: 0.8,
            voice_style: 0.2,
            voice_speaker_boost: true,
            local_voice: None,
        }
    }

    /// Normalises (trims) and validates every field.
    pub fn validated(mut self) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        self.name = self.name.trim().to_string();
        if !is_identity_name(&self.name) {
            e.push(
                "name",
                "must be 1-64 characters of lowercase letters, digits and '-', starting with a letter or digit",
            );
        }
        self.display_name = required_text(&mut e, "displayName", &self.display_name, 100);
        self.trigger_word = self.trigger_word.trim().to_string();
        if !is_trigger_word(&self.trigger_word) {
            e.push(
                "triggerWord",
                "must be 3-40 characters of letters, digits and '_', starting with a letter (e.g. TOK_DEVEN)",
            );
        }
        self.description = optional_text(&mut e, "description", self.description.as_deref(), 1000);
        self.lora_url = optional_text(&mut e, "loraUrl", self.lora_url.as_deref(), 2048);
        if let Some(url) = &self.lora_url {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("https://") || lower.starts_with("http://")) {
                e.push("loraUrl", "must be an http(s) URL");
            } else if url.chars().any(char::is_whitespace) {
                e.push("loraUrl", "must not contain spaces");
            }
        }
        if let LoraScale::Fixed(v) = self.lora_scale {
            in_range(&mut e, "loraScale", v, 0.0, 1.0);
        }
        self.voice_id = optional_text(&mut e, "voiceId", self.voice_id.as_deref(), 64);
        if let Some(v) = &self.voice_id
            && !is_voice_id(v)
        {
            e.push(
                "voiceId",
                "must be an ElevenLabs voice id: 10-40 letters and digits",
            );
        }
        self.voice_model = self.voice_model.trim().to_string();
        if !(self.voice_model.starts_with("eleven_")
            && self.voice_model.len() <= 64
            && self
                .voice_model
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            e.push(
                "voiceModel",
                "must be an ElevenLabs model id such as eleven_multilingual_v2",
            );
        }
        self.local_voice = optional_text(&mut e, "localVoice", self.local_voice.as_deref(), 64);
        if let Some(v) = &self.local_voice
            && !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            e.push(
                "localVoice",
                "must be a voice name of letters, digits, '-', '_' and '.' (e.g. en_US-joe-medium)",
            );
        }
        in_range(&mut e, "voiceStability", self.voice_stability, 0.0, 1.0);
        in_range(&mut e, "voiceSimilarity", self.voice_similarity, 0.0, 1.0);
        in_range(&mut e, "voiceStyle", self.voice_style, 0.0, 1.0);
        e.into_result(self)
    }
}

/// `[a-z0-9][a-z0-9-]{0,63}`.
fn is_identity_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `[A-Za-z][A-Za-z0-9_]{2,39}`.
fn is_trigger_word(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && (3..=40).contains(&s.len())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `v` has the shape of an ElevenLabs voice id: 10-40 ASCII letters and digits.
pub fn is_voice_id(v: &str) -> bool {
    (10..=40).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_example_identity_is_valid() {
        let mut id = Identity::new("deven-primary", "Deven Spear", "TOK_DEVEN");
        id.lora_url = Some(" https://bucket.r2.dev/model.safetensors ".into());
        let id = id.validated().expect("valid");
        assert_eq!(
            id.lora_url.as_deref(),
            Some("https://bucket.r2.dev/model.safetensors")
        );
        assert_eq!(id.lora_scale, LoraScale::Fixed(0.95));
    }

    #[test]
    fn bad_fields_are_each_reported() {
        let mut id = Identity::new("Deven Primary", " ", "TOK DEVEN");
        id.lora_scale = LoraScale::Fixed(1.5);
        id.lora_url = Some("ftp://x".into());
        id.voice_id = Some("short".into());
        let errs = id.validated().unwrap_err();
        let fields: Vec<_> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "displayName",
                "triggerWord",
                "loraUrl",
                "loraScale",
                "voiceId"
            ]
        );
    }

    #[test]
    fn lora_scale_parses_auto_and_numbers() {
        assert_eq!(LoraScale::parse("auto"), Some(LoraScale::Auto));
        assert_eq!(LoraScale::parse("0.9"), Some(LoraScale::Fixed(0.9)));
        assert_eq!(LoraScale::parse("big"), None);
    }
}
