//! Mode selection: digital twin when it can work, otherwise the standard fallback chain.

use crate::domain::GenerationMode;

/// Where a scene's still comes from, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeDecision {
    /// `digital-twin` or `standard`.
    pub mode: &'static str,
    /// Headshot object to frame, if the standard chain found one.
    pub headshot: Option<String>,
    /// One log line per decision, with the reason; `true` marks a degradation (WARN).
    pub reasons: Vec<(bool, String)>,
}

/// Facts the decision depends on.
#[derive(Debug, Clone)]
pub struct ModeInputs<'a> {
    /// What the scene asked for.
    pub requested: GenerationMode,
    /// Identity name (for messages).
    pub identity: &'a str,
    /// The identity has a LoRA URL.
    pub has_lora: bool,
    /// The configured image provider can apply a LoRA (Fal with `FAL_KEY`).
    pub lora_provider: bool,
    /// The LoRA header check: `Err(reason)` when the file is unreachable or not a fitting Flux LoRA.
    pub lora_check: Result<(), String>,
    /// The scene's headshot.
    pub scene_headshot: Option<&'a str>,
    /// The identity's headshot.
    pub identity_headshot: Option<&'a str>,
    /// The configured image provider can generate a portrait without a LoRA.
    pub generator: bool,
}

/// Picks the mode as the user guide says, recording the reason for each choice.
pub fn select_mode(i: &ModeInputs<'_>) -> ModeDecision {
    let mut reasons = Vec::new();
    let wants_twin = i.requested != GenerationMode::Standard;
    if wants_twin {
        let explicit = i.requested == GenerationMode::DigitalTwin;
        if !i.has_lora {
            reasons.push((
                explicit,
                format!(
                    "Identity {} has no LoRA URL: digital twin unavailable, using standard mode",
                    i.identity
                ),
            ));
        } else if !i.lora_provider {
            reasons.push((
                true,
                "Digital twin unavailable: FAL_KEY is not configured, falling back to standard mode".to_string(),
            ));
        } else if let Err(why) = &i.lora_check {
            reasons.push((
                true,
                format!(
                    "Digital twin unavailable: the LoRA check for identity {} failed ({why}), falling back to \
                     standard mode",
                    i.identity
                ),
            ));
        } else {
            reasons.push((
                false,
                format!(
                    "Digital twin mode: identity {} has a LoRA that passed the header check and FAL_KEY is set",
                    i.identity
                ),
            ));
            return ModeDecision {
                mode: "digital-twin",
                headshot: None,
                reasons,
            };
        }
    } else {
        reasons.push((false, "Standard mode requested for this scene".to_string()));
    }
    let (headshot, why) = match (i.scene_headshot, i.identity_headshot) {
        (Some(h), _) => (
            Some(h.to_string()),
            "Using the scene's headshot".to_string(),
        ),
        (None, Some(h)) => (
            Some(h.to_string()),
            format!("Using identity {}'s headshot", i.identity),
        ),
        (None, None) if i.generator => (
            None,
            "No headshot: generating a portrait without LoRA".to_string(),
        ),
        (None, None) => (
            None,
            "No headshot: rendering the local placeholder portrait".to_string(),
        ),
    };
    reasons.push((false, why));
    ModeDecision {
        mode: "standard",
        headshot,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ModeInputs<'static> {
        ModeInputs {
            requested: GenerationMode::Auto,
            identity: "deven",
            has_lora: true,
            lora_provider: true,
            lora_check: Ok(()),
            scene_headshot: None,
            identity_headshot: Some("media/ab/id.png"),
            generator: false,
        }
    }

    #[test]
    fn auto_with_lora_and_fal_is_digital_twin() {
        assert_eq!(select_mode(&inputs()).mode, "digital-twin");
    }

    #[test]
    fn missing_fal_key_falls_back_to_identity_headshot_with_a_warning() {
        let d = select_mode(&ModeInputs {
            lora_provider: false,
            ..inputs()
        });
        assert_eq!(d.mode, "standard");
        assert_eq!(d.headshot.as_deref(), Some("media/ab/id.png"));
        assert!(d.reasons[0].0 && d.reasons[0].1.contains("FAL_KEY"));
    }

    #[test]
    fn a_failed_lora_check_falls_back_with_its_reason() {
        let d = select_mode(&ModeInputs {
            lora_check: Err("this is a sdxl LoRA".into()),
            ..inputs()
        });
        assert_eq!(d.mode, "standard");
        assert!(
            d.reasons[0].0 && d.reasons[0].1.contains("sdxl"),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn scene_headshot_wins_then_placeholder_last() {
        let d = select_mode(&ModeInputs {
            requested: GenerationMode::Standard,
            scene_headshot: Some("s"),
            ..inputs()
        });
        assert_eq!(d.headshot.as_deref(), Some("s"));
        let d = select_mode(&ModeInputs {
            has_lora: false,
            identity_headshot: None,
            ..inputs()
        });
        assert_eq!((d.mode, d.headshot), ("standard", None));
        assert!(d.reasons.last().unwrap().1.contains("placeholder"));
    }
}
