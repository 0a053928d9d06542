//! IMAGE: the scene's still, in the mode chosen for it (digital twin, headshot, generated or placeholder);
//! the choice and its reasons are logged under `IDENTITY_ANCHOR`. A generated still of an identity with a face
//! print passes the identity gate (`identity_gate.rs`).

use std::path::Path;

use async_trait::async_trait;
use serde_json::json;

use super::identity_gate::gate_for;
use super::{Prepared, Step, StepCx};
use crate::domain::{GenerationMode, Identity, LogLevel, LogStep, image_prompt, lora_scale_for};
use crate::lora::{InspectOptions, inspect_url};
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
        let req = image_request(cx, s, &decision).await?;
        let image = &cx.providers().image;
        let mut params = image.key_params(&req);
        params["mode"] = json!(decision.mode);
        if let Some(gate) = gate_for(cx, s, &decision) {
            params["identityGate"] = gate.key_params();
        }
        Ok(Prepared {
            provider: image.name().into(),
            params,
            inputs: decision.headshot.into_iter().collect(),
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
        let req = image_request(cx, s, &decision).await?;
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
        out.mode = Some(decision.mode.into());
        Ok(out)
    }
}

/// The LoRA header check for digital twin mode, once per URL per pipeline (only when it matters).
async fn lora_check(cx: &StepCx<'_>, s: &PlannedScene) -> Result<(), String> {
    let Some(url) = &s.identity.lora_url else {
        return Ok(());
    };
    if !cx.providers().image.supports_lora() || s.scene.generation_mode == GenerationMode::Standard
    {
        return Ok(());
    }
    let cache_key = lora_check_key(url, &s.identity);
    let mut checks = cx.pipeline.lora_checks.lock().await;
    if let Some(done) = checks.get(&cache_key) {
        return done.clone();
    }
    let opts = InspectOptions {
        trigger_word: Some(s.identity.trigger_word.clone()),
        base_model: Some(s.identity.base_model.as_str().into()),
    };
    let result = match inspect_url(
        &FetchGuard::new(cx.pipeline.settings.allow_private_urls),
        url,
        &opts,
    )
    .await
    {
        Ok(report) if report.ok() => Ok(()),
        Ok(report) => Err(report.errors.join("; ")),
        Err(e) => Err(e.to_string()),
    };
    checks.insert(cache_key, result.clone());
    result
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
        has_lora: s.identity.lora_url.is_some(),
        lora_provider: image.supports_lora(),
        lora_check,
        scene_headshot: s.scene_headshot.as_deref(),
        identity_headshot: s.identity_headshot.as_deref(),
        generator: image.generates(),
    })
}

async fn image_request(
    cx: &StepCx<'_>,
    s: &PlannedScene,
    decision: &ModeDecision,
) -> Result<ImageRequest, StepError> {
    let (width, height) = cx.frame_size();
    let headshot = match &decision.headshot {
        Some(key) => Some(cx.path_of(key).await?),
        None => None,
    };
    let lora = match (decision.mode, &s.identity.lora_url) {
        ("digital-twin", Some(url)) => Some(LoraRef {
            url: url.clone(),
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
