//! The models run on Fal's queue: Flux + LoRA stills, Kling image-to-video, Kling AI Avatar and Sync
//! lip-sync. Each builds its model input, runs it through [`FalQueue::run`] and downloads the output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::super::http::{self, MediaKind, clean_url};
use super::super::{Cadence, fit_to_speech};
use super::{
    FLUX_LORA, FalQueue, FalStorage, KLING_I2V, PROVIDER, SYNC_V2, audio_mime, input_field,
    result_url,
};
use crate::providers::PriceTable;
use crate::providers::local::PortraitStill;
use crate::providers::{
    AvatarRequest, ImageGen, ImageRequest, ImageToVideo, InputUrls, JobCtx, LipSync,
    LipSyncRequest, ProviderError, TalkingAvatar, VideoRequest,
};

/// `fal-ai/flux-lora`: identity-locked stills (trigger word first in the prompt, the identity's LoRA).
#[derive(Debug, Clone)]
pub struct FalFlux {
    queue: FalQueue,
    prices: PriceTable,
    storage: Option<FalStorage>,
    /// Frames a headshot in standard mode (nothing to pay for): the local portrait, around the face when it can.
    headshots: PortraitStill,
}

impl FalFlux {
    /// The image generator over `queue`.
    pub fn new(queue: FalQueue, prices: PriceTable) -> Self {
        Self {
            queue,
            prices,
            storage: None,
            headshots: PortraitStill::default(),
        }
    }

    /// Headshots (standard mode) are framed by `portrait` — e.g. around their face — instead of a centre crop.
    pub fn framing_headshots_with(mut self, portrait: PortraitStill) -> Self {
        self.headshots = portrait;
        self
    }

    /// Local LoRA files reach Fal through `storage`'s upload.
    pub fn with_storage(mut self, storage: FalStorage) -> Self {
        self.storage = Some(storage);
        self
    }
}

/// Fal's `image_size` preset for a frame shape and the still size it gives (width, height, preset name).
fn still_size(width: u32, height: u32) -> (u32, u32, &'static str) {
    match width.cmp(&height) {
        std::cmp::Ordering::Greater => (1024, 576, "landscape_16_9"),
        std::cmp::Ordering::Less => (576, 1024, "portrait_16_9"),
        std::cmp::Ordering::Equal => (1024, 1024, "square_hd"),
    }
}

/// Fal's preset name for a frame shape.
fn image_size(width: u32, height: u32) -> &'static str {
    still_size(width, height).2
}

/// A stable seed from the content key, so the same inputs give the same image.
fn seed_of(key: &str) -> u64 {
    key.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    }) % 4_294_967_295
}

/// The Flux LoRA request body: the request's seed (else one from the job's key) and its LoRA at its scale.
fn flux_input(req: &ImageRequest, job: &JobCtx) -> Result<Value, ProviderError> {
    let mut input = json!({
        "prompt": req.prompt,
        "image_size": image_size(req.width, req.height),
        "num_inference_steps": 28,
        "guidance_scale": 3.5,
        "num_images": 1,
        "enable_safety_checker": false,
        "output_format": "png",
        "seed": req.seed.map_or_else(|| seed_of(&job.key), |s| s % 4_294_967_295),
    });
    if let Some(lora) = &req.lora {
        input["loras"] =
            json!([{ "path": clean_url("loras[0].path", &lora.url)?, "scale": lora.scale }]);
    }
    Ok(input)
}

#[async_trait]
impl ImageGen for FalFlux {
    fn name(&self) -> &str {
        FLUX_LORA
    }

    fn key_params(&self, req: &ImageRequest) -> Value {
        if req.headshot.is_some() {
            // Standard mode: the still is the framed headshot, whatever Flux would do.
            return self.headshots.key_params(req);
        }
        json!({
            "prompt": req.prompt, "size": image_size(req.width, req.height), "width": req.width,
            "height": req.height, "headshot": req.headshot.is_some(),
            "lora": req.lora.as_ref().map(|l| json!({"url": l.url.trim(), "scale": l.scale, "base": l.base_model})),
            "steps": 28, "guidance": 3.5,
        })
    }

    fn supports_lora(&self) -> bool {
        true
    }

    fn generates(&self) -> bool {
        true
    }

    async fn lora_file_url(
        &self,
        path: &Path,
        job: &JobCtx,
    ) -> Result<Option<String>, ProviderError> {
        match &self.storage {
            Some(s) => s
                .file_url(path, "lora.safetensors", "application/octet-stream", job)
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    async fn generate(
        &self,
        req: &ImageRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        if req.headshot.is_some() {
            // Standard mode with a headshot: frame it, nothing to pay for.
            return self.headshots.generate(req, work_dir, job).await;
        }
        let input = flux_input(req, job)?;
        let cadence = Cadence::still(&self.queue.net);
        let (w, h, _) = still_size(req.width, req.height);
        let estimate = self.prices.image(w, h);
        let result = self
            .queue
            .run(FLUX_LORA, &input, estimate, cadence, job)
            .await?;
        let url = result_url(&result, &["/images/0/url"])?;
        let raw = work_dir.join("fal-still");
        http::download(
            &self.queue.net,
            PROVIDER,
            &url,
            &raw,
            MediaKind::Image,
            50 << 20,
        )
        .await?;
        let w = result
            .pointer("/images/0/width")
            .and_then(Value::as_f64)
            .unwrap_or(1024.0);
        let h = result
            .pointer("/images/0/height")
            .and_then(Value::as_f64)
            .unwrap_or(1024.0);
        job.add_cost(self.prices.image(w as u32, h as u32));
        // Frame the generated image to the delivery size (PNG).
        let framed = ImageRequest {
            headshot: Some(raw),
            ..req.clone()
        };
        PortraitStill::default()
            .generate(&framed, work_dir, job)
            .await
    }
}

/// Kling 2.1 image-to-video on Fal.
#[derive(Debug, Clone)]
pub struct FalKling {
    queue: FalQueue,
    prices: PriceTable,
}

impl FalKling {
    /// The video generator over `queue`.
    pub fn new(queue: FalQueue, prices: PriceTable) -> Self {
        Self { queue, prices }
    }
}

/// Kling clip length for a duration bucket: 5 or 10 seconds (longer speech loops the clip in lip-sync).
pub fn kling_duration(bucket: u32) -> u32 {
    if bucket <= 5 { 5 } else { 10 }
}

#[async_trait]
impl ImageToVideo for FalKling {
    fn name(&self) -> &str {
        KLING_I2V
    }

    fn key_params(&self, req: &VideoRequest) -> Value {
        json!({"prompt": req.prompt, "duration": kling_duration(req.duration_seconds), "cfg": 0.5})
    }

    async fn animate(
        &self,
        req: &VideoRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let seconds = kling_duration(req.duration_seconds);
        let input = json!({
            "prompt": req.prompt,
            "image_url": input_field(&req.urls.image, &req.image, "image/png").await?,
            "duration": seconds.to_string(),
            "negative_prompt": "blur, distort, and low quality",
            "cfg_scale": 0.5,
        });
        let cadence = Cadence::video(
            &self.queue.net,
            Duration::from_secs(480),
            Duration::from_secs(1800),
        );
        let result = self
            .queue
            .run(KLING_I2V, &input, self.prices.video(seconds), cadence, job)
            .await?;
        let url = result_url(&result, &["/video/url"])?;
        job.provider_done();
        let out = work_dir.join("kling.mp4");
        http::download(
            &self.queue.net,
            PROVIDER,
            &url,
            &out,
            MediaKind::Video,
            500 << 20,
        )
        .await?;
        job.add_cost(self.prices.video(seconds));
        Ok(out)
    }
}

/// Kling AI Avatar on Fal: still + speech → talking clip in one job (the `fast` animation).
#[derive(Debug, Clone)]
pub struct FalAvatar {
    queue: FalQueue,
    model: String,
    prices: PriceTable,
}

impl FalAvatar {
    /// The avatar model `model` over `queue`.
    pub fn new(queue: FalQueue, model: impl Into<String>, prices: PriceTable) -> Self {
        Self {
            queue,
            model: model.into(),
            prices,
        }
    }
}

#[async_trait]
impl TalkingAvatar for FalAvatar {
    fn name(&self) -> &str {
        &self.model
    }

    fn key_params(&self, req: &AvatarRequest) -> Value {
        json!({"prompt": req.prompt, "tail": req.tail_seconds})
    }

    async fn speak(
        &self,
        req: &AvatarRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let prompt: String = req.prompt.chars().take(2500).collect();
        let input = json!({
            "image_url": input_field(&req.urls.image, &req.image, "image/png").await?,
            "audio_url": input_field(&req.urls.audio, &req.audio, audio_mime(&req.audio)).await?,
            "prompt": if prompt.trim().is_empty() { ".".to_string() } else { prompt },
        });
        let speech = req.speech_seconds.max(1.0);
        let cadence = Cadence::video(
            &self.queue.net,
            Duration::from_secs(480),
            Duration::from_secs(1800),
        );
        let result = self
            .queue
            .run(
                &self.model,
                &input,
                self.prices.avatar(speech),
                cadence,
                job,
            )
            .await?;
        let url = result_url(&result, &["/video/url"])?;
        job.provider_done();
        let spoken = work_dir.join("fal-avatar.mp4");
        http::download(
            &self.queue.net,
            PROVIDER,
            &url,
            &spoken,
            MediaKind::Video,
            500 << 20,
        )
        .await?;
        job.add_cost(self.prices.avatar(speech));
        let fit = LipSyncRequest {
            video: spoken.clone(),
            audio: req.audio.clone(),
            speech_seconds: req.speech_seconds,
            tail_seconds: req.tail_seconds,
            urls: InputUrls::default(),
            camera: None,
            still: None,
            words: Vec::new(),
        };
        fit_to_speech(spoken, &fit, work_dir, job).await
    }
}

/// Sync `lipsync-2` on Fal, with `sync_mode: loop` so long speech is never cut.
#[derive(Debug, Clone)]
pub struct FalSync {
    queue: FalQueue,
    prices: PriceTable,
}

impl FalSync {
    /// The lip-sync over `queue`.
    pub fn new(queue: FalQueue, prices: PriceTable) -> Self {
        Self { queue, prices }
    }
}

#[async_trait]
impl LipSync for FalSync {
    fn name(&self) -> &str {
        SYNC_V2
    }

    fn key_params(&self, req: &LipSyncRequest) -> Value {
        json!({"model": "lipsync-2", "syncMode": "loop", "tail": req.tail_seconds})
    }

    async fn apply(
        &self,
        req: &LipSyncRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let input = json!({
            "model": "lipsync-2",
            "video_url": input_field(&req.urls.video, &req.video, "video/mp4").await?,
            "audio_url": input_field(&req.urls.audio, &req.audio, audio_mime(&req.audio)).await?,
            "sync_mode": "loop",
        });
        let speech = req.speech_seconds.max(1.0);
        let cadence = Cadence::lipsync(&self.queue.net, speech);
        let result = self
            .queue
            .run(SYNC_V2, &input, self.prices.lipsync(speech), cadence, job)
            .await?;
        let url = result_url(&result, &["/video/url"])?;
        job.provider_done();
        let synced = work_dir.join("fal-sync.mp4");
        http::download(
            &self.queue.net,
            PROVIDER,
            &url,
            &synced,
            MediaKind::Video,
            500 << 20,
        )
        .await?;
        job.add_cost(self.prices.lipsync(speech));
        fit_to_speech(synced, req, work_dir, job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_seeds() {
        assert_eq!(image_size(1280, 720), "landscape_16_9");
        assert_eq!(image_size(720, 1280), "portrait_16_9");
        assert_eq!(image_size(720, 720), "square_hd");
        assert_eq!(
            (kling_duration(5), kling_duration(10), kling_duration(15)),
            (5, 10, 10)
        );
        assert_eq!(seed_of("abc"), seed_of("abc"));
        assert_ne!(seed_of("abc"), seed_of("abd"));
    }

    /// The identity gate's retries reach Fal: the attempt's seed and LoRA scale are what is submitted.
    #[test]
    fn flux_sends_the_requests_seed_and_lora_scale() {
        let mut req = ImageRequest {
            prompt: "TOK a person".into(),
            display_name: "T".into(),
            mood: None,
            headshot: None,
            lora: Some(crate::providers::LoraRef {
                url: "https://example.com/t.safetensors".into(),
                scale: 0.975,
                base_model: "flux-dev".into(),
            }),
            width: 1280,
            height: 720,
            seed: None,
        };
        let job = JobCtx::detached("key-1");
        let input = flux_input(&req, &job).unwrap();
        assert_eq!(input["seed"], seed_of("key-1"));
        assert_eq!(input["loras"][0]["scale"], 0.975);
        req.seed = Some(42);
        req.lora.as_mut().unwrap().scale = 1.0;
        let input = flux_input(&req, &job).unwrap();
        assert_eq!(
            (input["seed"].as_u64(), input["loras"][0]["scale"].as_f64()),
            (Some(42), Some(1.0))
        );
    }
}
