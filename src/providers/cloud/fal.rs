//! Fal's queue API and the models we run on it: `fal-ai/flux-lora` (identity-locked stills), Kling
//! image-to-video and Sync lip-sync, so one `FAL_KEY` drives the whole pipeline.
//!
//! A submit is recorded before it is sent and its `request_id` and URLs the moment Fal answers; a restarted
//! step resumes polling with the stored URLs. Fal has no client idempotency key, so a submit whose outcome is
//! unknown is parked (`needs attention`) unless `DEVATAR_FAL_RESUBMIT=1`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::http::{
    self, ErrorClass, MediaKind, Net, Repeat, call_with_retries, clean_url, client, data_uri,
    json_body,
};
use super::{Cadence, Secret};
use crate::costs::PriceTable;
use crate::providers::local::PortraitStill;
use crate::providers::{
    AvatarRequest, ImageGen, ImageRequest, ImageToVideo, InputUrls, JobCtx, JobState, LipSync,
    LipSyncRequest, ProviderError, ProviderJob, TalkingAvatar, VideoRequest,
};

const PROVIDER: &str = "fal";
/// Flux + LoRA model id.
pub const FLUX_LORA: &str = "fal-ai/flux-lora";
/// Kling 2.1 standard image-to-video on Fal.
pub const KLING_I2V: &str = "fal-ai/kling-video/v2.1/standard/image-to-video";
/// Sync lip-sync v2 on Fal.
pub const SYNC_V2: &str = "fal-ai/sync-lipsync/v2";

/// The queue client: submit, poll, fetch the result, cancel.
#[derive(Debug, Clone)]
pub struct FalQueue {
    base: String,
    key: Secret,
    resubmit_uncertain: bool,
    net: Net,
}

/// The URLs of one queued request.
#[derive(Debug, Clone)]
struct Queued {
    request_id: String,
    status_url: String,
    response_url: String,
    cancel_url: String,
}

impl Queued {
    fn to_json(&self) -> Value {
        json!({"statusUrl": self.status_url, "responseUrl": self.response_url, "cancelUrl": self.cancel_url})
    }

    fn from_job(job: &ProviderJob) -> Option<Self> {
        let get = |k: &str| job.data.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            request_id: job.remote_id.clone()?,
            status_url: get("statusUrl")?,
            response_url: get("responseUrl")?,
            cancel_url: get("cancelUrl")?,
        })
    }
}

/// Cancels the Fal request if the step is abandoned (run cancelled, deadline) before it completes.
struct CancelOnDrop {
    queue: FalQueue,
    url: Option<String>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(url) = self.url.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let queue = self.queue.clone();
            rt.spawn(async move { queue.cancel(&url).await });
        }
    }
}

fn classify(status: StatusCode, _body: &Value) -> ErrorClass {
    http::class_of(status)
}

/// The `owner/app` part of a model id: status, result and cancel live there.
fn app_of(model: &str) -> &str {
    let mut cut = model.len();
    if let Some((i, _)) = model.match_indices('/').nth(1) {
        cut = i;
    }
    &model[..cut]
}

impl FalQueue {
    /// A queue client for `base` (e.g. `https://queue.fal.run`).
    pub fn new(base: &str, key: Secret, resubmit_uncertain: bool, net: Net) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            resubmit_uncertain,
            net,
        }
    }

    fn auth(&self) -> String {
        format!("Key {}", self.key.expose())
    }

    async fn cancel(&self, url: &str) {
        if let Ok(http) = client(Duration::from_secs(15)) {
            let _ = http
                .put(url)
                .header("Authorization", self.auth())
                .send()
                .await;
        }
    }

    async fn submit(
        &self,
        model: &str,
        input: &Value,
        job: &JobCtx,
    ) -> Result<Queued, ProviderError> {
        let http = client(Duration::from_secs(60))?;
        let url = format!("{}/{model}", self.base);
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            4,
            Repeat::Unsafe,
            job,
            || {
                http.post(&url)
                    .header("Authorization", self.auth())
                    .header("X-Fal-Request-Timeout", "600")
                    .json(input)
            },
            classify,
        )
        .await?;
        let body = json_body(PROVIDER, resp).await?;
        let request_id = body
            .get("request_id")
            .or_else(|| body.get("requestId"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ProviderError::BadOutput("fal accepted the job but sent no request_id".into())
            })?
            .trim()
            .to_string();
        let app = format!("{}/{}/requests/{request_id}", self.base, app_of(model));
        let url_or = |k: &str, fallback: String| {
            body.get(k)
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or(fallback)
        };
        Ok(Queued {
            status_url: url_or("status_url", format!("{app}/status")),
            response_url: url_or("response_url", app.clone()),
            cancel_url: url_or("cancel_url", format!("{app}/cancel")),
            request_id,
        })
    }

    /// Runs `model` on `input` to completion and returns its output JSON, resuming a stored job if there is one.
    /// A new submit first reserves `estimate_usd` against the project budget.
    pub async fn run(
        &self,
        model: &str,
        input: &Value,
        estimate_usd: f64,
        mut cadence: Cadence,
        job: &JobCtx,
    ) -> Result<Value, ProviderError> {
        let tag = format!("fal:{model}");
        let stored = job.load(&tag).await.map_err(ProviderError::Invalid)?;
        let previous = stored.as_ref().map_or(0, |j| j.attempt);
        let (queued, attempt) = match stored.as_ref().map(|j| (j.state, Queued::from_job(j))) {
            Some((JobState::Submitted | JobState::Completed, Some(q))) => {
                job.note(format!(
                    "fal: resuming request {} (no new submit)",
                    q.request_id
                ));
                (q, previous)
            }
            Some((JobState::Submitting, _)) if !self.resubmit_uncertain => {
                return Err(ProviderError::NeedsAttention(format!(
                    "a submit to {model} may have reached Fal but its request id was never stored; check the Fal \
                     dashboard, then set DEVATAR_FAL_RESUBMIT=1 to submit again"
                )));
            }
            _ => {
                let attempt = previous + 1;
                job.reserve(PROVIDER, estimate_usd)?;
                let mut record = ProviderJob {
                    state: JobState::Submitting,
                    attempt,
                    remote_id: None,
                    data: Value::Null,
                    error: None,
                };
                job.save(&tag, &record)
                    .await
                    .map_err(ProviderError::Invalid)?;
                let q = match self.submit(model, input, job).await {
                    Ok(q) => q,
                    Err(e @ ProviderError::NeedsAttention(_)) => return Err(e),
                    Err(e) => {
                        // A refused submit started nothing: the next attempt may submit again.
                        record.state = JobState::Failed;
                        record.error = Some(e.to_string());
                        let _ = job.save(&tag, &record).await;
                        return Err(e);
                    }
                };
                record.state = JobState::Submitted;
                record.remote_id = Some(q.request_id.clone());
                record.data = q.to_json();
                job.save(&tag, &record)
                    .await
                    .map_err(ProviderError::Invalid)?;
                (q, attempt)
            }
        };
        let mut guard = CancelOnDrop {
            queue: self.clone(),
            url: Some(queued.cancel_url.clone()),
        };
        match self.poll(model, &queued, &mut cadence, job).await {
            Ok(()) => {}
            Err(PollEnd::Deadline(msg)) => {
                // The guard cancels the request on drop.
                return Err(ProviderError::Unavailable {
                    provider: PROVIDER,
                    message: record_failure(job, &tag, attempt, &queued, msg).await,
                });
            }
            Err(PollEnd::Failed(msg)) => {
                guard.url = None;
                return Err(ProviderError::Rejected {
                    provider: PROVIDER,
                    message: record_failure(job, &tag, attempt, &queued, msg).await,
                });
            }
        }
        guard.url = None;
        let result = match self.result(&queued, job).await {
            Ok(v) => v,
            Err(e) => {
                record_failure(job, &tag, attempt, &queued, e.to_string()).await;
                return Err(e);
            }
        };
        let done = ProviderJob {
            state: JobState::Completed,
            attempt,
            remote_id: Some(queued.request_id.clone()),
            data: queued.to_json(),
            error: None,
        };
        job.save(&tag, &done)
            .await
            .map_err(ProviderError::Invalid)?;
        Ok(result)
    }

    async fn poll(
        &self,
        model: &str,
        q: &Queued,
        cadence: &mut Cadence,
        job: &JobCtx,
    ) -> Result<(), PollEnd> {
        let http = client(Duration::from_secs(30)).map_err(|e| PollEnd::Failed(e.to_string()))?;
        let url = if q.status_url.contains('?') {
            format!("{}&logs=1", q.status_url)
        } else {
            format!("{}?logs=1", q.status_url)
        };
        loop {
            match cadence.wait().await {
                Ok(true) => job.note(format!(
                    "fal: {model} request {} is still running after {:.0} s",
                    q.request_id,
                    cadence.elapsed().as_secs_f64()
                )),
                Ok(false) => {}
                Err(limit) => {
                    return Err(PollEnd::Deadline(format!(
                        "{model} did not finish within {:.0} s; the request was cancelled",
                        limit.as_secs_f64()
                    )));
                }
            }
            let resp = match http
                .get(&url)
                .header("Authorization", self.auth())
                .send()
                .await
            {
                Ok(r) => r,
                Err(_) => continue, // a failed status call never fails the job
            };
            let status = resp.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                continue;
            }
            let text = resp.text().await.unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(PollEnd::Failed(format!(
                    "status check answered HTTP {}: {}",
                    status.as_u16(),
                    http::reason(&body, &text)
                )));
            }
            let state = body.get("status").and_then(Value::as_str).unwrap_or("");
            match state.to_ascii_uppercase().as_str() {
                "IN_QUEUE" | "IN_PROGRESS" => {}
                "COMPLETED" | "OK" => return Ok(()),
                "" if body.is_null() => continue, // malformed body: ask again
                other => {
                    return Err(PollEnd::Failed(format!(
                        "unknown status {other:?} for request {}",
                        q.request_id
                    )));
                }
            }
        }
    }

    async fn result(&self, q: &Queued, job: &JobCtx) -> Result<Value, ProviderError> {
        let http = client(Duration::from_secs(60))?;
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            3,
            Repeat::Safe,
            job,
            || {
                http.get(&q.response_url)
                    .header("Authorization", self.auth())
            },
            classify,
        )
        .await?;
        json_body(PROVIDER, resp).await
    }
}

/// Marks the stored job failed (so a later attempt may submit again) and returns the message.
async fn record_failure(
    job: &JobCtx,
    tag: &str,
    attempt: u32,
    q: &Queued,
    message: String,
) -> String {
    let record = ProviderJob {
        state: JobState::Failed,
        attempt,
        remote_id: Some(q.request_id.clone()),
        data: q.to_json(),
        error: Some(message.clone()),
    };
    let _ = job.save(tag, &record).await;
    message
}

enum PollEnd {
    Deadline(String),
    Failed(String),
}

/// The first URL at `pointer` in a result, trimmed.
fn result_url(result: &Value, pointers: &[&str]) -> Result<String, ProviderError> {
    pointers
        .iter()
        .find_map(|p| result.pointer(p).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ProviderError::BadOutput(format!(
                "fal completed without an output URL (completed_without_output): {}",
                http::reason(result, "")
            ))
        })
}

/// `fal-ai/flux-lora`: identity-locked stills (trigger word first in the prompt, the identity's LoRA).
#[derive(Debug, Clone)]
pub struct FalFlux {
    queue: FalQueue,
    prices: PriceTable,
}

impl FalFlux {
    /// The image generator over `queue`.
    pub fn new(queue: FalQueue, prices: PriceTable) -> Self {
        Self { queue, prices }
    }
}

/// Fal's preset for a frame shape: the project aspect's still size (width, height, preset name).
fn still_size(width: u32, height: u32) -> (u32, u32, &'static str) {
    use crate::domain::AspectRatio;
    match width.cmp(&height) {
        std::cmp::Ordering::Greater => AspectRatio::Landscape,
        std::cmp::Ordering::Less => AspectRatio::Portrait,
        std::cmp::Ordering::Equal => AspectRatio::Square,
    }
    .still_size()
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

#[async_trait]
impl ImageGen for FalFlux {
    fn name(&self) -> &str {
        FLUX_LORA
    }

    fn key_params(&self, req: &ImageRequest) -> Value {
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

    async fn generate(
        &self,
        req: &ImageRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        if req.headshot.is_some() {
            // Standard mode with a headshot: frame it, nothing to pay for.
            return PortraitStill.generate(req, work_dir, job).await;
        }
        let mut input = json!({
            "prompt": req.prompt,
            "image_size": image_size(req.width, req.height),
            "num_inference_steps": 28,
            "guidance_scale": 3.5,
            "num_images": 1,
            "enable_safety_checker": false,
            "output_format": "png",
            "seed": seed_of(&job.key),
        });
        if let Some(lora) = &req.lora {
            input["loras"] =
                json!([{ "path": clean_url("loras[0].path", &lora.url)?, "scale": lora.scale }]);
        }
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
        PortraitStill.generate(&framed, work_dir, job).await
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

/// The Fal model id of the one-step talking avatar unless `FAL_AVATAR_MODEL` names another.
pub const AVATAR_DEFAULT: &str = "fal-ai/kling-video/ai-avatar/v2/standard";

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

/// An input as Fal takes it: the presigned URL of the object when there is one (Fal fetches it), else the file
/// inline as a data URI.
async fn input_field(
    url: &Option<String>,
    path: &Path,
    mime: &str,
) -> Result<String, ProviderError> {
    match url {
        Some(u) => Ok(u.clone()),
        None => data_uri(path, mime).await,
    }
}

/// The MIME type of a speech work file, from its extension.
fn audio_mime(path: &Path) -> &'static str {
    if path.extension().is_some_and(|e| e == "mp3") {
        "audio/mpeg"
    } else {
        "audio/wav"
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
        };
        super::fit_to_speech(spoken, &fit, work_dir, job).await
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
        super::fit_to_speech(synced, req, work_dir, job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lives_under_owner_and_app() {
        assert_eq!(app_of("fal-ai/flux-lora"), "fal-ai/flux-lora");
        assert_eq!(
            app_of("fal-ai/kling-video/v2.1/standard/image-to-video"),
            "fal-ai/kling-video"
        );
        assert_eq!(app_of("fal-ai/sync-lipsync/v2"), "fal-ai/sync-lipsync");
    }

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
}
