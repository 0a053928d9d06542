//! The identity test shared by `devatar identity test` and `POST /api/identities/{id}/test`:
//! trigger word, base model, voice (format, and lookup when an ElevenLabs key is set), the
//! LoRA judged from its safetensors header, and the reference photos (each shows exactly one face,
//! large and sharp enough; together they show one person).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{
    Animation, GenerationMode, Identity, Scene, image_prompt, is_voice_id, lora_scale_for,
};
use crate::identity_photos::{Collection, Photos, Reviewed};
use crate::lora::{InspectOptions, LoraReport, inspect_url};
use crate::net::FetchGuard;
use crate::providers::{ImageGen, ImageRequest, JobCtx, LoraRef};
use crate::storage::objects::ObjectStorage;

/// One named check and its outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// Stable check name (`triggerWord`, `baseModel`, `voiceId`, `voiceLookup`, `loraUrl`, `loraReachable`, `loraFile`,
    /// `testRender`, `referencePhotos`, `referencePhoto` (one per analysed photo), `referenceAgreement`).
    pub name: String,
    /// What it checks, in words (`Trigger word`, `LoRA download`, …); see [`check_label`].
    pub label: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, in words a user understands.
    pub detail: String,
}

/// The whole result, stored on the identity and shown by the UI's green check.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityTestReport {
    /// Every check passed.
    pub ok: bool,
    /// The checks in order.
    pub checks: Vec<Check>,
    /// The LoRA header report, when the identity has a reachable LoRA.
    #[schema(value_type = Option<Object>)]
    pub lora: Option<LoraReport>,
    /// Object key of the test still, when a test render was asked for and succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_key: Option<String>,
}

impl IdentityTestReport {
    /// Adds `checks` (the report is ok only while every check is).
    pub fn extend(&mut self, checks: Vec<Check>) {
        self.ok &= checks.iter().all(|c| c.ok);
        self.checks.extend(checks);
    }
}

/// The reference-photo checks of identity `identity_id` (named `name`): `referencePhotos` (how many; a note when
/// the face models are missing — not a failure), one `referencePhoto` per analysed photo (exactly one face, large
/// and sharp enough) and `referenceAgreement` (the outliers named). A collection that cannot be read is a failed
/// check.
pub async fn reference_photo_checks(
    photos: &Photos<'_>,
    name: &str,
    identity_id: &crate::domain::IdentityId,
) -> Vec<Check> {
    match photos.list(identity_id).await {
        Ok(collection) => photo_checks(&collection, name),
        Err(e) => vec![check(
            "referencePhotos",
            false,
            format!("cannot read the reference photos: {e}"),
        )],
    }
}

fn photo_checks(collection: &Collection, name: &str) -> Vec<Check> {
    let n = collection.photos.len();
    if n == 0 {
        return vec![check(
            "referencePhotos",
            true,
            format!(
                "no reference photos: add some with `devatar identity photos {name} add PHOTO…` so generated \
                 stills can be measured against the face"
            ),
        )];
    }
    let photos = if n == 1 { "photo" } else { "photos" };
    let analysed: Vec<&Reviewed> = collection
        .photos
        .iter()
        .filter(|p| p.record.analysis.is_some())
        .collect();
    let summary = match &collection.note {
        Some(note) if analysed.len() < n => format!(
            "{n} reference {photos}, {} not analysed: {note}",
            n - analysed.len()
        ),
        _ => format!("{n} reference {photos}"),
    };
    let mut checks = vec![check("referencePhotos", true, summary)];
    for p in &analysed {
        let file = &p.record.file_name;
        checks.push(if p.problems.is_empty() {
            check("referencePhoto", true, format!("{file}: {}", p.facts()))
        } else {
            check(
                "referencePhoto",
                false,
                format!("{file}: {}", p.problems.join("; ")),
            )
        });
    }
    if !analysed.is_empty() {
        checks.push(check(
            "referenceAgreement",
            collection.agreement.ok(),
            collection.agreement.summary(),
        ));
    }
    checks
}

/// Renders one still of `identity` through `image` (a neutral medium shot) and stores it.
/// The LoRA is applied only when the provider supports it and the LoRA check passed.
pub async fn test_render(
    report: &mut IdentityTestReport,
    identity: &Identity,
    image: &dyn ImageGen,
    objects: &ObjectStorage,
    work_dir: &Path,
) {
    let scene = Scene {
        name: "identity test".into(),
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
    let lora_ok = report.lora.as_ref().is_some_and(LoraReport::ok);
    let lora = match (&identity.lora_url, image.supports_lora() && lora_ok) {
        (Some(url), true) => Some(LoraRef {
            url: url.clone(),
            scale: lora_scale_for(identity.lora_scale, scene.camera.as_deref()),
            base_model: identity.base_model.as_str().into(),
        }),
        _ => None,
    };
    let request = ImageRequest {
        prompt: image_prompt(identity, &scene),
        display_name: identity.display_name.clone(),
        mood: scene.mood_lighting.clone(),
        headshot: None,
        lora,
        width: 768,
        height: 1024,
        seed: None,
    };
    let outcome = async {
        tokio::fs::create_dir_all(work_dir)
            .await
            .map_err(|e| format!("cannot create the work folder: {e}"))?;
        let still = image
            .generate(&request, work_dir, &JobCtx::detached("identity-test"))
            .await
            .map_err(|e| e.to_string())?;
        let stored = objects
            .put_file(&still, "png")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(stored.key)
    }
    .await;
    let check = match outcome {
        Ok(key) => {
            let c = check(
                "testRender",
                true,
                format!("{} rendered a still ({key})", image.name()),
            );
            report.render_key = Some(key);
            c
        }
        Err(e) => check("testRender", false, format!("{} failed: {e}", image.name())),
    };
    report.extend(vec![check]);
}

/// Where to look voices up: ElevenLabs' base URL and key (from `ELEVENLABS_BASE_URL`, `ELEVENLABS_API_KEY`).
#[derive(Clone)]
pub struct VoiceDirectory {
    base_url: String,
    api_key: String,
}

impl std::fmt::Debug for VoiceDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceDirectory")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl VoiceDirectory {
    /// The directory of the configured ElevenLabs account, when `ELEVENLABS_API_KEY` is set.
    pub fn configured(cfg: &crate::providers::cloud::CloudConfig) -> Option<Self> {
        let key = cfg.elevenlabs_key.as_ref()?;
        Some(Self {
            base_url: cfg.elevenlabs_base.clone(),
            api_key: key.expose().to_string(),
        })
    }

    /// Looks a voice up: `Ok(Some(name))` when it exists, `Ok(None)` when the provider does not know it.
    async fn lookup(&self, voice_id: &str) -> Result<Option<String>, String> {
        let client = crate::net::client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        let url = format!("{}/v1/voices/{voice_id}", self.base_url);
        let resp = client
            .get(&url)
            .header("xi-api-key", &self.api_key)
            .send()
            .await
            .map_err(|e| format!("ElevenLabs did not answer: {}", e.without_url()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::BAD_REQUEST {
            return Ok(None);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err("ElevenLabs refused the API key (401)".into());
        }
        if !status.is_success() {
            return Err(format!("ElevenLabs answered HTTP {}", status.as_u16()));
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|_| "ElevenLabs answered with something that is not JSON".to_string())?;
        Ok(Some(
            body.get("name")
                .and_then(|n| n.as_str())
                .unwrap_or(voice_id)
                .to_string(),
        ))
    }
}

/// The human label of a check's stable name.
pub fn check_label(name: &str) -> &'static str {
    match name {
        "triggerWord" => "Trigger word",
        "baseModel" => "Base model",
        "voiceId" => "Voice id",
        "voiceLookup" => "Voice at ElevenLabs",
        "loraUrl" => "LoRA",
        "loraReachable" => "LoRA download",
        "loraFile" => "LoRA file",
        "testRender" => "Test image",
        "referencePhotos" => "Reference photos",
        "referencePhoto" => "Reference photo",
        "referenceAgreement" => "Reference photos agree",
        _ => "Check",
    }
}

/// A stored report (JSON) with every check's `label` filled in: results stored before labels existed get them
/// from their names.
pub fn with_labels(mut report: serde_json::Value) -> serde_json::Value {
    if let Some(checks) = report["checks"].as_array_mut() {
        for c in checks {
            if c.get("label").is_none() {
                let label = check_label(c["name"].as_str().unwrap_or(""));
                c["label"] = serde_json::Value::from(label);
            }
        }
    }
    report
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        label: check_label(name).into(),
        ok,
        detail: detail.into(),
    }
}

/// Runs every check for `identity`. Network problems become failed checks, never errors.
pub async fn test_identity(
    identity: &Identity,
    guard: &FetchGuard,
    voices: Option<&VoiceDirectory>,
) -> IdentityTestReport {
    let mut checks = field_checks(identity);
    checks.extend(voice_checks(identity, voices).await);
    let (lora_checks, lora) = lora_checks(identity, guard).await;
    checks.extend(lora_checks);
    IdentityTestReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
        lora,
        render_key: None,
    }
}

/// `triggerWord` and `baseModel`: the identity's own validation of those two fields.
fn field_checks(identity: &Identity) -> Vec<Check> {
    let revalidated = identity.clone().validated();
    let field_error = |field: &str| {
        revalidated.as_ref().err().and_then(|e| {
            e.0.iter()
                .find(|f| f.field == field)
                .map(|f| f.message.clone())
        })
    };
    vec![
        match field_error("triggerWord") {
            None => check(
                "triggerWord",
                true,
                format!("{} is well-formed", identity.trigger_word),
            ),
            Some(m) => check("triggerWord", false, m),
        },
        match field_error("baseModel") {
            None => check(
                "baseModel",
                true,
                format!(
                    "{} is a supported Flux base model",
                    identity.base_model.as_str()
                ),
            ),
            Some(m) => check("baseModel", false, m),
        },
    ]
}

/// `voiceId` (format), then `voiceLookup` when the id is well-formed and a voice directory is configured.
async fn voice_checks(identity: &Identity, voices: Option<&VoiceDirectory>) -> Vec<Check> {
    let mut checks = Vec::new();
    match identity.voice_id.as_deref() {
        Some(v) if is_voice_id(v) => {
            checks.push(check("voiceId", true, "voice id has the ElevenLabs format"));
            if let Some(dir) = voices {
                checks.push(match dir.lookup(v).await {
                    Ok(Some(name)) => check(
                        "voiceLookup",
                        true,
                        format!("ElevenLabs knows this voice: {name}"),
                    ),
                    Ok(None) => check("voiceLookup", false, "ElevenLabs has no voice with this id"),
                    Err(e) => check("voiceLookup", false, e),
                });
            }
        }
        Some(_) => checks.push(check(
            "voiceId",
            false,
            "voice id is not in the ElevenLabs format (10-40 letters and digits)",
        )),
        None => checks.push(check(
            "voiceId",
            true,
            "no voice id: the default voice is used",
        )),
    }
    checks
}

/// `loraUrl` when there is no LoRA; else `loraReachable` and, when its header was read, `loraFile` and the report.
async fn lora_checks(identity: &Identity, guard: &FetchGuard) -> (Vec<Check>, Option<LoraReport>) {
    let Some(url) = identity.lora_url.as_deref() else {
        let none = check(
            "loraUrl",
            true,
            "no LoRA: standard mode only (digital twin needs a LoRA URL)",
        );
        return (vec![none], None);
    };
    let opts = InspectOptions {
        trigger_word: Some(identity.trigger_word.clone()),
        base_model: Some(identity.base_model.as_str().into()),
    };
    let report = match inspect_url(guard, url, &opts).await {
        Ok(report) => report,
        Err(e) => return (vec![check("loraReachable", false, e.to_string())], None),
    };
    let reachable = check(
        "loraReachable",
        true,
        format!(
            "read {} bytes in {} request(s)",
            report.bytes_read, report.requests
        ),
    );
    let file = file_check(&report);
    (vec![reachable, file], Some(report))
}

/// `loraFile`: the verdict on a LoRA's header.
fn file_check(report: &LoraReport) -> Check {
    let detail = if report.ok() {
        format!(
            "{} LoRA ({}), rank {}",
            report.family,
            report.convention,
            report.rank.map_or("unknown".into(), |r| r.to_string())
        )
    } else {
        report.errors.join("; ")
    };
    check("loraFile", report.ok(), detail)
}

/// For an identity whose LoRA is an uploaded file at `path` (no `loraUrl`): replaces the "no LoRA" check by the
/// file's `loraFile` verdict and report.
pub async fn check_lora_file(report: &mut IdentityTestReport, identity: &Identity, path: &Path) {
    let opts = InspectOptions {
        trigger_word: Some(identity.trigger_word.clone()),
        base_model: Some(identity.base_model.as_str().into()),
    };
    let path = path.to_path_buf();
    let inspected = tokio::task::spawn_blocking(move || crate::lora::inspect_file(&path, &opts))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    report.checks.retain(|c| c.name != "loraUrl");
    match inspected {
        Ok(lora) => {
            report.checks.push(file_check(&lora));
            report.lora = Some(lora);
        }
        Err(e) => report.checks.push(check("loraFile", false, e)),
    }
    report.ok = report.checks.iter().all(|c| c.ok);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::{FaceAnalysis, PhotoRecord};

    fn record(name: &str, analysis: Option<FaceAnalysis>) -> PhotoRecord {
        PhotoRecord {
            id: name.into(),
            identity_id: "i".into(),
            object_key: format!("media/aa/{name}"),
            sha256: name.into(),
            mime: "image/png".into(),
            file_name: name.into(),
            width: 100,
            height: 100,
            position: 0,
            created_at: 0,
            analysis,
        }
    }

    #[test]
    fn photo_checks_fail_a_faceless_photo_and_only_note_missing_models() {
        assert!(photo_checks(&Collection::review(Vec::new(), 0.6, None), "eileen")[0].ok);
        let faceless = FaceAnalysis {
            face_count: 0,
            largest: None,
            embedding: None,
        };
        let collection = Collection::review(
            vec![record("wall.png", Some(faceless)), record("new.png", None)],
            0.6,
            Some("face models not installed".into()),
        );
        let checks = photo_checks(&collection, "eileen");
        let names: Vec<(&str, bool)> = checks.iter().map(|c| (c.name.as_str(), c.ok)).collect();
        assert_eq!(
            names,
            [
                ("referencePhotos", true),
                ("referencePhoto", false),
                ("referenceAgreement", true)
            ]
        );
        assert_eq!(
            checks[0].detail,
            "2 reference photos, 1 not analysed: face models not installed"
        );
        assert!(checks[1].detail.starts_with("wall.png: no face found"));
    }
}
