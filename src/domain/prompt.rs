//! Prompt building and shot classification from scene fields.

use super::{Identity, LoraScale, Scene};

/// Framing class of a scene's camera text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShotType {
    /// Close-up / portrait framing.
    CloseUp,
    /// Medium shot (the default).
    Medium,
    /// Wide / full-body / establishing.
    Wide,
}

/// Classifies free camera text (`"close-up"`, `"wide establishing shot"`…).
pub fn shot_type(camera: Option<&str>) -> ShotType {
    let c = camera.unwrap_or("").to_ascii_lowercase();
    if c.contains("close") || c.contains("portrait") || c.contains("tight") {
        ShotType::CloseUp
    } else if c.contains("wide")
        || c.contains("full")
        || c.contains("establishing")
        || c.contains("long shot")
    {
        ShotType::Wide
    } else {
        ShotType::Medium
    }
}

/// Image prompt: trigger word first (so the LoRA activates), then wardrobe, environment and lighting.
pub fn image_prompt(identity: &Identity, scene: &Scene) -> String {
    let mut parts = vec![
        identity.trigger_word.clone(),
        "a person speaking to the camera".to_string(),
    ];
    if let Some(w) = &scene.wardrobe {
        parts.push(format!("wearing {w}"));
    }
    parts.push(format!(
        "in {}",
        scene
            .environment
            .as_deref()
            .unwrap_or("a professional studio setting")
    ));
    parts.push(format!(
        "{} lighting",
        scene.mood_lighting.as_deref().unwrap_or("soft cinematic")
    ));
    parts.push("photorealistic, detailed, professional photography".into());
    parts.join(", ")
}

/// Video prompt: movement and camera, lip-sync friendly.
pub fn video_prompt(scene: &Scene) -> String {
    format!(
        "{}, {}, the person is speaking naturally, smooth motion",
        scene.movement.as_deref().unwrap_or("subtle head movements"),
        scene.camera.as_deref().unwrap_or("medium close-up shot"),
    )
}

/// The LoRA scale for a scene: fixed, or by shot type for `auto` (guide: close-up 0.95–1.0, medium 0.90–0.95, wide 0.85–0.90).
pub fn lora_scale_for(scale: LoraScale, camera: Option<&str>) -> f64 {
    match scale {
        LoraScale::Fixed(v) => v,
        LoraScale::Auto => match shot_type(camera) {
            ShotType::CloseUp => 0.975,
            ShotType::Medium => 0.925,
            ShotType::Wide => 0.875,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shot_types_follow_camera_text() {
        assert_eq!(shot_type(Some("Close-up, eye level")), ShotType::CloseUp);
        assert_eq!(shot_type(Some("wide establishing shot")), ShotType::Wide);
        assert_eq!(shot_type(Some("over the shoulder")), ShotType::Medium);
        assert_eq!(shot_type(None), ShotType::Medium);
    }
}
