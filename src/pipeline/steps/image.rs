//! IMAGE: the scene's still, in the mode chosen for it (digital twin, headshot, generated or placeholder);
//! the choice and its reasons are logged under `IDENTITY_ANCHOR`. A generated still of an identity with a face
//! print passes the identity gate (`identity_gate.rs`).

use std::path::Path;

use async_trait::async_trait;
use serde_json::json;

use super::identity_gate::gate_for;
use super::{PROMPT_PREFIX, Prepared, Step, StepCx, object};
use crate::domain::{GenerationMode, Identity, LogLevel, LogStep, image_prompt, lora_scale_for};
use crate::lora::{InspectOptions, inspect_file, inspect_url};
use crate::net::FetchGuard;
use crate::pipeline::error::StepError;
use crate::pipeline::mode::{ModeDecision, ModeInputs, select_mode};
use crate::pipeline::{PlannedScene, StepOutput};
use crate::providers::{ImageRequest, JobCtx, LoraRef};

/// The IMAGE step.
pub(super) struct Image;

#[async_trait]
impl Step for Image {
    async fn prepare(&self, cx: &StepCx<'_>) -> Result<Prepared, StepError> {
        let s = cx.scene()?;
        let decision = mode(cx, s).await;
        for (degraded, reason) in &decision.reasons {
            let level = if *degraded {
                LogLevel::Warn
            } else {
                LogLevel::Info
            };
            cx.log(LogStep::IdentityAnchor, level, "devatar", reason.clone())
                .await;
        }
        let lora_id = lora_source(s).map(LoraSource::id);
        let req = image_request(cx, s, &decision, lora_id).await?;
        let image = &cx.providers().image;
        let prompt = format!("{PROMPT_PREFIX}{}", req.prompt);
        cx.log(
            LogStep::ImageGeneration,
            LogLevel::Info,
            image.name(),
            prompt,
        )
        .await;
        let mut params = image.key_params(&req);
        params["mode"] = json!(decision.mode);
        if let Some(gate) = gate_for(cx, s, &decision) {
            params["identityGate"] = gate.key_params();
        }
        let mut inputs: Vec<String> = decision.headshot.iter().cloned().collect();
        if let Some(bg) = background(cx, s, &decision).await {
            params["background"] = json!(bg);
            inputs.push(bg.to_string());
        }
        Ok(Prepared {
            provider: image.name().into(),
            params,
            inputs,
        })
    }

    async fn execute(
        &self,
        cx: &StepCx<'_>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError> {
        let s = cx.scene()?;
        let decision = mode(cx, s).await;
        let lora = match lora_source(s) {
            Some(source) if decision.mode == "digital-twin" => {
                Some(lora_url(cx, source, job).await?)
            }
            _ => None,
        };
        let req = image_request(cx, s, &decision, lora).await?;
        let mut out = match gate_for(cx, s, &decision) {
            Some(gate) => gate.generate(cx, &req, work, job).await?,
            None => {
                let still = cx.providers().image.generate(&req, work, job).await?;
                let mut out = StepOutput::default();
                out.objects
                    .insert("image".into(), cx.store(&still, "png").await?);
                out
            }
        };
        if let Some(bg) = s
            .background
            .as_deref()
            .filter(|_| decision.mode == "standard")
        {
            let still = cx.path_of(object(&out, "image")?).await?;
            let composed = work.join("composited.png");
            cx.media()
                .composite_over(&still, &cx.path_of(bg).await?, &composed, cx.frame_size())
                .await?;
            out.objects
                .insert("image".into(), cx.store(&composed, "png").await?);
        }
        out.mode = Some(decision.mode.into());
        Ok(out)
    }
}

/// The background the still is composited over (`prepare`): the scene's, in standard mode. In digital twin mode
/// (Flux LoRA takes no environment reference image) it is unused, and a WARN row says so.
async fn background<'s>(
    cx: &StepCx<'_>,
    s: &'s PlannedScene,
    decision: &ModeDecision,
) -> Option<&'s str> {
    let bg = s.background.as_deref()?;
    if decision.mode == "standard" {
        return Some(bg);
    }
    let msg = "The scene's background image is unused in digital twin mode: the LoRA image model takes no \
        environment reference image (the environment comes from the prompt)";
    cx.log(
        LogStep::ImageGeneration,
        LogLevel::Warn,
        cx.providers().image.name(),
        msg.into(),
    )
    .await;
    None
}

/// Where the identity's LoRA comes from: its URL (or `DEVEN_LORA_URL`), or an uploaded file (an object key).
#[derive(Clone, Copy)]
enum LoraSource<'a> {
    Url(&'a str),
    Object(&'a str),
}

impl LoraSource<'_> {
    /// What names the LoRA in content keys and memos: the URL, or `object:<key>` (the file's content hash) —
    /// never the temporary URL a provider is given for a file.
    fn id(self) -> String {
        match self {
            Self::Url(url) => url.to_string(),
            Self::Object(key) => format!("object:{key}"),
        }
    }
}

fn lora_source(s: &PlannedScene) -> Option<LoraSource<'_>> {
    match (&s.identity.lora_url, &s.identity_lora) {
        (Some(url), _) => Some(LoraSource::Url(url)),
        (None, Some(key)) => Some(LoraSource::Object(key)),
        (None, None) => None,
    }
}

/// The LoRA header check for digital twin mode, once per LoRA per pipeline (only when it matters): over HTTP
/// for a URL, from the stored file for an upload.
async fn lora_check(cx: &StepCx<'_>, s: &PlannedScene) -> Result<(), String> {
    let Some(source) = lora_source(s) else {
        return Ok(());
    };
    if !cx.providers().image.supports_lora() || s.scene.generation_mode == GenerationMode::Standard
    {
        return Ok(());
    }
    let cache_key = lora_check_key(&source.id(), &s.identity);
    let mut checks = cx.pipeline.lora_checks.lock().await;
    if let Some(done) = checks.get(&cache_key) {
        return done.clone();
    }
    let opts = InspectOptions {
        trigger_word: Some(s.identity.trigger_word.clone()),
        base_model: Some(s.identity.base_model.as_str().into()),
    };
    let report = match source {
        LoraSource::Url(url) => {
            let guard = FetchGuard::new(cx.pipeline.settings.allow_private_urls);
            inspect_url(&guard, url, &opts)
                .await
                .map_err(|e| e.to_string())
        }
        LoraSource::Object(key) => match cx.path_of(key).await {
            Ok(path) => tokio::task::spawn_blocking(move || inspect_file(&path, &opts))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        },
    };
    let result = match report {
        Ok(report) if report.ok() => Ok(()),
        Ok(report) => Err(report.errors.join("; ")),
        Err(e) => Err(e),
    };
    checks.insert(cache_key, result.clone());
    result
}

/// The URL the image provider fetches the LoRA from: the identity's URL; for an uploaded file its presigned GET
/// (signed at the step's recorded time) when media live in a bucket, else the provider's own upload, recorded
/// per object so a file goes up once.
async fn lora_url(
    cx: &StepCx<'_>,
    source: LoraSource<'_>,
    job: &JobCtx,
) -> Result<String, StepError> {
    let key = match source {
        LoraSource::Url(url) => return Ok(url.to_string()),
        LoraSource::Object(key) => key,
    };
    if let Some(url) = cx.presigned(job, key).await? {
        return Ok(url);
    }
    let path = cx.path_of(key).await?;
    cx.providers()
        .image
        .lora_file_url(&path, &job.for_object(key))
        .await?
        .ok_or_else(|| {
            StepError::Internal(
                "the image provider cannot fetch an uploaded LoRA file from the local media folder"
                    .into(),
            )
        })
}

/// The key of a LoRA header check in the pipeline's memo (`Pipeline::lora_checks`).
pub(in crate::pipeline) fn lora_check_key(url: &str, identity: &Identity) -> String {
    format!(
        "{url}\n{}\n{}",
        identity.base_model.as_str(),
        identity.trigger_word
    )
}

/// The generation mode of the scene's still, with the reasons.
async fn mode(cx: &StepCx<'_>, s: &PlannedScene) -> ModeDecision {
    let lora_check = lora_check(cx, s).await;
    let image = &cx.providers().image;
    select_mode(&ModeInputs {
        requested: s.scene.generation_mode,
        identity: &s.identity.name,
        has_lora: lora_source(s).is_some(),
        lora_provider: image.supports_lora(),
        lora_check,
        scene_headshot: s.scene_headshot.as_deref(),
        identity_headshot: s.identity_headshot.as_deref(),
        generator: image.generates(),
    })
}

/// The still's request; `lora_url` is what the provider is given for the identity's LoRA (in `prepare`, the
/// LoRA's [`LoraSource::id`], so the content key never holds a temporary URL).
async fn image_request(
    cx: &StepCx<'_>,
    s: &PlannedScene,
    decision: &ModeDecision,
    lora_url: Option<String>,
) -> Result<ImageRequest, StepError> {
    let (width, height) = cx.frame_size();
    let headshot = match &decision.headshot {
        Some(key) => Some(cx.path_of(key).await?),
        None => None,
    };
    let lora = match (decision.mode, lora_url) {
        ("digital-twin", Some(url)) => Some(LoraRef {
            url,
            scale: lora_scale_for(s.identity.lora_scale, s.scene.camera.as_deref()),
            base_model: s.identity.base_model.as_str().into(),
        }),
        _ => None,
    };
    Ok(ImageRequest {
        prompt: image_prompt(&s.identity, &s.scene),
        display_name: s.identity.display_name.clone(),
        mood: s.scene.mood_lighting.clone(),
        headshot,
        lora,
        width,
        height,
        seed: None,
    })
}
