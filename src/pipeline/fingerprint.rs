//! Input fingerprints: what a scene's or the project's recorded video was rendered from, hashed, so a page can
//! tell a video that no longer matches its scene ("out of date") without rendering anything.
//!
//! A scene's fingerprint covers exactly the stored inputs its steps' content keys are built from: the dialogue
//! and every scene field that enters a prompt, a provider parameter or a mode choice, the identity's fields
//! (name, display name, trigger word, LoRA, voice settings, local voice), the headshot and LoRA objects, the
//! project's frame shape and identity gate (with the face print's centre when the gate scores). It is computed
//! from the plan *before* deployment defaults (`DEVEN_LORA_URL`) are applied, so only an edit changes it, never
//! a configuration change. The project's fingerprint is the ordered list of its scenes' fingerprints, so an
//! edit, a reorder, an added or a removed scene makes the project video out of date.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{PlannedScene, RenderPlan};
use crate::domain::IdentityGate;

/// Bump when the meaning of a fingerprint changes (every recorded video then reads as out of date).
const FINGERPRINT_VERSION: u32 = 1;

/// The fingerprint of one scene of `plan` (see the module doc).
pub fn scene_fingerprint(plan: &RenderPlan, scene: &PlannedScene) -> String {
    let (s, i, p) = (&scene.scene, &scene.identity, &plan.project);
    let print = (p.identity_gate != IdentityGate::Off)
        .then_some(scene.face_print.as_ref())
        .flatten()
        .map(|f| serde_json::to_string(&f.centre).unwrap_or_default());
    let mut doc = json!({
        "v": FINGERPRINT_VERSION,
        "scene": [s.dialogue, s.environment, s.wardrobe, s.mood_lighting, s.camera, s.movement,
                  s.generation_mode.as_str(), s.animation.as_str()],
        "identity": [i.name, i.display_name, i.trigger_word, i.lora_url, i.lora_scale.to_text(),
                     i.base_model.as_str(), i.voice_id, i.voice_model, i.voice_stability, i.voice_similarity,
                     i.voice_style, i.voice_speaker_boost, i.local_voice],
        "objects": [scene.scene_headshot, scene.identity_headshot, scene.identity_lora],
        "project": [p.aspect_ratio.as_str(), p.identity_gate.as_str(), p.identity_retries, print],
    });
    // Only scenes that use a recording or a background carry them, so other scenes' fingerprints stay as they were.
    if scene.speech_recording.is_some() || scene.background.is_some() {
        doc["media"] = json!([scene.speech_recording, scene.background]);
    }
    hash(&doc.to_string())
}

/// The fingerprint of the project video assembled from `scenes` (their fingerprints, in order).
pub fn project_fingerprint<'a>(scenes: impl IntoIterator<Item = &'a str>) -> String {
    let list: Vec<&str> = scenes.into_iter().collect();
    hash(&json!({ "v": FINGERPRINT_VERSION, "scenes": list }).to_string())
}

/// Every scene's fingerprint of `plan`, in order.
pub fn plan_fingerprints(plan: &RenderPlan) -> Vec<String> {
    plan.scenes
        .iter()
        .map(|s| scene_fingerprint(plan, s))
        .collect()
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Identity, Project, Scene};

    fn plan(dialogue: &str, camera: Option<&str>) -> RenderPlan {
        let scene = Scene {
            name: "a".into(),
            dialogue: dialogue.into(),
            environment: None,
            wardrobe: None,
            mood_lighting: None,
            camera: camera.map(str::to_string),
            movement: None,
            target_duration: None,
            identity: "deven".into(),
            generation_mode: Default::default(),
            animation: Default::default(),
        };
        RenderPlan {
            project_id: "p".into(),
            project: Project::named("p"),
            scenes: vec![PlannedScene {
                id: "s".into(),
                scene,
                identity: Identity::new("deven", "Deven", "TOK"),
                scene_headshot: None,
                identity_headshot: None,
                speech_recording: None,
                background: None,
                identity_lora: None,
                face_print: None,
            }],
            recorded: Default::default(),
        }
    }

    #[test]
    fn rendered_fields_change_the_fingerprint_and_others_do_not() {
        let base = plan_fingerprints(&plan("Hello there.", None));
        assert_eq!(base, plan_fingerprints(&plan("Hello there.", None)));
        assert_ne!(base, plan_fingerprints(&plan("Hello again.", None)));
        assert_ne!(
            base,
            plan_fingerprints(&plan("Hello there.", Some("close-up")))
        );
        let mut renamed = plan("Hello there.", None);
        renamed.scenes[0].scene.name = "b".into();
        renamed.scenes[0].scene.target_duration = Some(9.0);
        assert_eq!(base, plan_fingerprints(&renamed));
        let mut voiced = plan("Hello there.", None);
        voiced.scenes[0].identity.voice_id = Some("v2".into());
        assert_ne!(base, plan_fingerprints(&voiced));
        let (a, b) = ("x".to_string(), "y".to_string());
        assert_ne!(
            project_fingerprint([a.as_str(), b.as_str()]),
            project_fingerprint([b.as_str(), a.as_str()])
        );
    }
}
