//! Projects and their ordered scenes.

use serde::{Deserialize, Serialize};

use super::gate::{DEFAULT_IDENTITY_RETRIES, IdentityGate, MAX_IDENTITY_RETRIES};
use super::validate::{FieldErrors, in_range, optional_text, required_text};

/// Output frame shape of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AspectRatio {
    /// 16:9, 1280×720.
    #[default]
    #[serde(rename = "16:9")]
    Landscape,
    /// 9:16, 720×1280.
    #[serde(rename = "9:16")]
    Portrait,
    /// 1:1, 720×720.
    #[serde(rename = "1:1")]
    Square,
}

impl AspectRatio {
    /// Parses `16:9`, `9:16` or `1:1`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "16:9" => Some(Self::Landscape),
            "9:16" => Some(Self::Portrait),
            "1:1" => Some(Self::Square),
            _ => None,
        }
    }

    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Landscape => "16:9",
            Self::Portrait => "9:16",
            Self::Square => "1:1",
        }
    }

    /// Generated still size (width, height): what the image model returns for this shape.
    pub fn still_size(self) -> (u32, u32) {
        match self {
            Self::Landscape => (1024, 576),
            Self::Portrait => (576, 1024),
            Self::Square => (1024, 1024),
        }
    }

    /// Output frame size in pixels (width, height).
    pub fn frame_size(self) -> (u32, u32) {
        match self {
            Self::Landscape => (1280, 720),
            Self::Portrait => (720, 1280),
            Self::Square => (720, 720),
        }
    }
}

/// How a scene's still is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GenerationMode {
    /// Digital twin when it is available, standard otherwise.
    #[default]
    Auto,
    /// The headshot (or a generated/placeholder portrait).
    Standard,
    /// A LoRA-generated, identity-locked still.
    DigitalTwin,
}

impl GenerationMode {
    /// Parses `auto`, `standard` or `digital-twin`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "auto" => Some(Self::Auto),
            "standard" => Some(Self::Standard),
            "digital-twin" => Some(Self::DigitalTwin),
            _ => None,
        }
    }

    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Standard => "standard",
            Self::DigitalTwin => "digital-twin",
        }
    }
}

/// How a scene's still becomes a talking clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Animation {
    /// Image-to-video (Kling), then lip-sync (Sync): two paid jobs, the best motion.
    #[default]
    Standard,
    /// One step: still + speech → talking clip (Kling AI Avatar on Fal); cheaper and faster. Without an avatar
    /// provider the scene is animated the standard way.
    Fast,
}

impl Animation {
    /// Parses `standard` or `fast`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "standard" => Some(Self::Standard),
            "fast" => Some(Self::Fast),
            _ => None,
        }
    }

    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Fast => "fast",
        }
    }
}

/// A validated project.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Display name (unique).
    pub name: String,
    /// Optional notes.
    pub description: Option<String>,
    /// Output frame shape.
    pub aspect_ratio: AspectRatio,
    /// Spending cap in USD for paid providers.
    pub budget_usd: Option<f64>,
    /// What IMAGE does when a generated still does not look like the identity.
    pub identity_gate: IdentityGate,
    /// Extra paid stills IMAGE may generate per scene to find one that does (0–5).
    pub identity_retries: u32,
}

impl Project {
    /// A project named `name` with every other field at its default.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            aspect_ratio: AspectRatio::default(),
            budget_usd: None,
            identity_gate: IdentityGate::default(),
            identity_retries: DEFAULT_IDENTITY_RETRIES,
        }
    }
}

impl Project {
    /// Normalises and validates the project fields.
    pub fn validated(mut self) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        self.name = required_text(&mut e, "name", &self.name, 120);
        self.description = optional_text(&mut e, "description", self.description.as_deref(), 2000);
        if let Some(b) = self.budget_usd {
            in_range(&mut e, "budgetUsd", b, 0.0, 1_000_000.0);
        }
        if self.identity_retries > MAX_IDENTITY_RETRIES {
            e.push(
                "identityRetries",
                format!(
                    "must be between 0 and {MAX_IDENTITY_RETRIES} (got {})",
                    self.identity_retries
                ),
            );
        }
        e.into_result(self)
    }

    /// A file-system-safe stem derived from the name (`My Demo!` → `my-demo`).
    pub fn file_stem(&self) -> String {
        let mut out = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let out = out.trim_end_matches('-').to_string();
        if out.is_empty() {
            "project".into()
        } else {
            out
        }
    }
}

/// A validated scene (its identity is referenced by name).
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Name, unique within the project.
    pub name: String,
    /// What the person says.
    pub dialogue: String,
    /// Where the scene takes place (image prompt).
    pub environment: Option<String>,
    /// What the person wears (image prompt).
    pub wardrobe: Option<String>,
    /// Lighting mood (image prompt, placeholder tint).
    pub mood_lighting: Option<String>,
    /// Camera framing (video prompt, local camera move).
    pub camera: Option<String>,
    /// Subject/camera movement (video prompt).
    pub movement: Option<String>,
    /// Intended length in seconds; advisory, the speech decides the real length.
    pub target_duration: Option<f64>,
    /// Name of the identity that speaks.
    pub identity: String,
    /// Requested generation mode.
    pub generation_mode: GenerationMode,
    /// How the still is animated.
    pub animation: Animation,
}

/// Longest dialogue accepted for one scene, in characters.
pub const MAX_DIALOGUE_CHARS: usize = 5000;

impl Scene {
    /// Normalises and validates the scene fields.
    pub fn validated(mut self) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        self.name = required_text(&mut e, "name", &self.name, 120);
        self.dialogue = required_text(&mut e, "dialogue", &self.dialogue, MAX_DIALOGUE_CHARS);
        if !self.dialogue.is_empty() && !self.dialogue.chars().any(char::is_alphanumeric) {
            e.push("dialogue", "must contain at least one word to speak");
        }
        self.environment = optional_text(&mut e, "environment", self.environment.as_deref(), 500);
        self.wardrobe = optional_text(&mut e, "wardrobe", self.wardrobe.as_deref(), 500);
        self.mood_lighting =
            optional_text(&mut e, "moodLighting", self.mood_lighting.as_deref(), 200);
        self.camera = optional_text(&mut e, "camera", self.camera.as_deref(), 200);
        self.movement = optional_text(&mut e, "movement", self.movement.as_deref(), 200);
        if let Some(d) = self.target_duration {
            in_range(&mut e, "targetDuration", d, 1.0, 300.0);
        }
        e.into_result(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(dialogue: &str) -> Scene {
        Scene {
            name: "intro".into(),
            dialogue: dialogue.into(),
            environment: Some("  ".into()),
            wardrobe: None,
            mood_lighting: None,
            camera: None,
            movement: None,
            target_duration: Some(8.0),
            identity: "deven".into(),
            generation_mode: GenerationMode::Auto,
            animation: Animation::default(),
        }
    }

    #[test]
    fn empty_dialogue_is_rejected_and_blank_options_become_none() {
        assert_eq!(scene("   ").validated().unwrap_err().0[0].field, "dialogue");
        assert_eq!(scene("...").validated().unwrap_err().0[0].field, "dialogue");
        assert_eq!(scene("Hello").validated().unwrap().environment, None);
    }

    #[test]
    fn aspect_ratios_map_to_frame_sizes() {
        assert_eq!(
            AspectRatio::parse("9:16").unwrap().frame_size(),
            (720, 1280)
        );
        assert_eq!(AspectRatio::parse("4:3"), None);
    }

    #[test]
    fn file_stem_is_safe() {
        let p = Project::named("Devatar Demo: 3 scenes!");
        assert_eq!(p.file_stem(), "devatar-demo-3-scenes");
        let too_many = Project {
            identity_retries: 6,
            ..p
        };
        assert_eq!(
            too_many.validated().unwrap_err().0[0].field,
            "identityRetries"
        );
    }
}
