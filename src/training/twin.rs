//! The digital twin's first picture: one still through Flux with the new LoRA (a neutral medium shot), stored,
//! and its face scored against the identity's photos (the distance to their face print's centre).

use std::path::Path;

use crate::app::Storage;
use crate::domain::IdentityId;
use crate::domain::{Animation, GenerationMode, Identity, Scene, image_prompt, lora_scale_for};
use crate::face::{self, FaceSettings};
use crate::identity_photos::face_print;
use crate::providers::{ImageGen, ImageRequest, JobCtx, LoraRef};

/// The test still and its score.
#[derive(Debug, Clone, Default)]
pub struct TwinCheck {
    /// Object key of the still.
    pub image: Option<String>,
    /// Distance of its face to the photos' print; `None` when it could not be scored.
    pub score: Option<f64>,
    /// Why it could not be made or scored.
    pub note: Option<String>,
}

fn request(identity: &Identity, lora_url: &str) -> ImageRequest {
    let scene = Scene {
        name: "digital twin test".into(),
        dialogue: String::new(),
        environment: Some("neutral studio backdrop".into()),
        wardrobe: None,
        mood_lighting: Some("soft even light".into()),
        camera: Some("medium shot".into()),
        movement: None,
        target_duration: None,
        identity: identity.name.clone(),
        generation_mode: GenerationMode::DigitalTwin,
        animation: Animation::Standard,
    };
    ImageRequest {
        prompt: image_prompt(identity, &scene),
        display_name: identity.display_name.clone(),
        mood: scene.mood_lighting.clone(),
        headshot: None,
        lora: Some(LoraRef {
            url: lora_url.into(),
            scale: lora_scale_for(identity.lora_scale, scene.camera.as_deref()),
            base_model: "flux-dev".into(),
        }),
        width: 768,
        height: 1024,
        seed: None,
    }
}

/// What the test still needs.
pub struct TwinInputs<'a> {
    /// Where the still is stored and the photos are.
    pub storage: &'a Storage,
    /// The face engine's settings.
    pub face: &'a FaceSettings,
    /// Flux with LoRAs.
    pub image: &'a dyn ImageGen,
    /// The identity's id (its photos' print).
    pub identity_id: &'a IdentityId,
    /// The identity (prompt, trigger word).
    pub identity: &'a Identity,
    /// The new LoRA.
    pub lora_url: &'a str,
    /// Work folder.
    pub work_dir: &'a Path,
}

/// Renders the test still with the new LoRA (its paid job under `job`) and scores it; a failure is a note, never
/// an error (the LoRA is trained either way).
pub async fn check(t: &TwinInputs<'_>, job: &JobCtx) -> TwinCheck {
    let req = request(t.identity, t.lora_url);
    let still = match t.image.generate(&req, t.work_dir, job).await {
        Ok(p) => p,
        Err(e) => {
            return TwinCheck {
                note: Some(format!("the test image failed: {e}")),
                ..TwinCheck::default()
            };
        }
    };
    let image = t
        .storage
        .objects
        .put_file(&still, "png")
        .await
        .ok()
        .map(|s| s.key);
    let (score, note) = match score(t.storage, t.face, t.identity_id, &still).await {
        Ok(d) => (Some(d), None),
        Err(why) => (None, Some(why)),
    };
    TwinCheck { image, score, note }
}

/// The distance of the still's largest face to the print of the identity's photos.
async fn score(
    storage: &Storage,
    settings: &FaceSettings,
    identity_id: &IdentityId,
    still: &Path,
) -> Result<f64, String> {
    let print = face_print(&storage.db, identity_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the photos have no face print to score against")?;
    let engine = face::load_engine(settings)
        .await
        .map_err(|e| e.to_string())?;
    let photo = face::open_photo(still.to_path_buf())
        .await
        .map_err(|e| e.to_string())?;
    let faces = face::analyse(engine, photo)
        .await
        .map_err(|e| e.to_string())?;
    let first = faces.faces.first().ok_or("the test image shows no face")?;
    Ok(print.distance(&first.embedding))
}
