//! VIDEO: the still animated to the speech's duration bucket (image-to-video), or — for a `fast` scene with a
//! talking-avatar provider — a talking clip from the still and the speech in one paid job.

use std::path::Path;

use async_trait::async_trait;
use serde_json::json;

use super::{PROMPT_PREFIX, Prepared, Step, StepCx, ensure_covers_speech, object};
use crate::domain::{Animation, LogLevel, LogStep, ShotType, StepName, shot_type, video_prompt};
use crate::pipeline::error::StepError;
use crate::pipeline::keys::duration_bucket;
use crate::pipeline::{PlannedScene, SCENE_TAIL_SECONDS, StepOutput};
use crate::providers::{AvatarRequest, Framing, InputUrls, JobCtx, TalkingAvatar, VideoRequest};

/// The VIDEO step.
pub(super) struct Video;

/// The output role of the still a known camera path moves over.
pub(super) const STILL: &str = "still";

fn avatar_request(
    s: &PlannedScene,
    image: &Path,
    audio: &Path,
    speech_seconds: f64,
) -> AvatarRequest {
    AvatarRequest {
        image: image.to_path_buf(),
        audio: audio.to_path_buf(),
        prompt: video_prompt(&s.scene),
        speech_seconds,
        tail_seconds: SCENE_TAIL_SECONDS,
        urls: InputUrls::default(),
    }
}

/// The scene's camera text as the providers' framing.
pub(super) fn framing(camera: Option<&str>) -> Framing {
    match shot_type(camera) {
        ShotType::CloseUp => Framing::CloseUp,
        ShotType::Medium => Framing::Medium,
        ShotType::Wide => Framing::Wide,
    }
}

pub(super) fn video_request(
    cx: &StepCx<'_>,
    s: &PlannedScene,
    image: &Path,
    speech_seconds: f64,
) -> VideoRequest {
    let (width, height) = cx.frame_size();
    let mut req = VideoRequest {
        image: image.to_path_buf(),
        prompt: video_prompt(&s.scene),
        framing: framing(s.scene.camera.as_deref()),
        movement: s.scene.movement.clone(),
        duration_seconds: duration_bucket(speech_seconds),
        width,
        height,
        urls: InputUrls::default(),
        proxy: false,
    };
    let providers = cx.providers();
    req.proxy =
        providers.lipsync.renders_from_still() && providers.video.camera_path(&req).is_some();
    req
}

#[async_trait]
impl Step for Video {
    async fn prepare(&self, cx: &StepCx<'_>) -> Result<Prepared, StepError> {
        let s = cx.scene()?;
        let image = object(cx.dep(StepName::Image)?, "image")?;
        let audio = cx.dep(StepName::Audio)?;
        let speech = audio.duration_seconds.unwrap_or(0.0);
        if let Some(avatar) = cx.one_step_avatar(s) {
            let req = avatar_request(s, Path::new(image), Path::new(""), speech);
            log_prompt(cx, avatar.name(), &req.prompt).await;
            let mut params = avatar.key_params(&req);
            params["animation"] = json!("fast");
            return Ok(Prepared {
                provider: avatar.name().into(),
                params,
                inputs: vec![image.into(), object(audio, "audio")?.into()],
            });
        }
        if s.scene.animation == Animation::Fast {
            cx.log(
                LogStep::VideoGeneration,
                LogLevel::Info,
                "devatar",
                "fast animation needs a talking-avatar provider (FAL_KEY): animating with image-to-video \
                 and lip-sync instead"
                    .into(),
            )
            .await;
        }
        let req = video_request(cx, s, Path::new(image), speech);
        let video = &cx.providers().video;
        log_prompt(cx, video.name(), &req.prompt).await;
        Ok(Prepared {
            provider: video.name().into(),
            params: video.key_params(&req),
            inputs: vec![image.into()],
        })
    }

    async fn execute(
        &self,
        cx: &StepCx<'_>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError> {
        let s = cx.scene()?;
        if let Some(avatar) = cx.one_step_avatar(s) {
            return speak(cx, s, avatar.as_ref(), work, job).await;
        }
        let image_key = object(cx.dep(StepName::Image)?, "image")?;
        let image = cx.path_of(image_key).await?;
        let speech = cx.dep(StepName::Audio)?.duration_seconds.unwrap_or(0.0);
        let mut req = video_request(cx, s, &image, speech);
        req.urls = cx.input_urls(job, Some(image_key), None, None).await?;
        let clip = cx.providers().video.animate(&req, work, job).await?;
        let mut out = StepOutput::default();
        out.objects
            .insert("video".into(), cx.store(&clip, "mp4").await?);
        if cx.providers().video.camera_path(&req).is_some() {
            // The still the camera moves over: a lip-sync that renders from it (local-talk) reads it here.
            out.objects.insert(STILL.into(), image_key.to_string());
        }
        out.duration_seconds = Some(f64::from(req.duration_seconds));
        Ok(out)
    }
}

/// Logs the video prompt the provider is given (the run page shows it), as `Prompt: …`.
async fn log_prompt(cx: &StepCx<'_>, provider: &str, prompt: &str) {
    cx.log(
        LogStep::VideoGeneration,
        LogLevel::Info,
        provider,
        format!("{PROMPT_PREFIX}{prompt}"),
    )
    .await;
}

/// The one-step talking clip of a `fast` scene.
async fn speak(
    cx: &StepCx<'_>,
    s: &PlannedScene,
    avatar: &dyn TalkingAvatar,
    work: &Path,
    job: &JobCtx,
) -> Result<StepOutput, StepError> {
    let image_key = object(cx.dep(StepName::Image)?, "image")?;
    let image = cx.path_of(image_key).await?;
    let audio = cx.dep(StepName::Audio)?;
    let audio_key = object(audio, "audio")?;
    let audio_path = cx.path_of(audio_key).await?;
    let mut req = avatar_request(
        s,
        &image,
        &audio_path,
        audio.duration_seconds.unwrap_or(0.0),
    );
    req.urls = cx
        .input_urls(job, Some(image_key), None, Some(audio_key))
        .await?;
    let clip = avatar.speak(&req, work, job).await?;
    let info = cx.media().probe(&clip).await?;
    ensure_covers_speech("talking-avatar", info.duration, req.speech_seconds)?;
    let mut out = StepOutput::default();
    out.objects
        .insert("video".into(), cx.store(&clip, "mp4").await?);
    out.duration_seconds = Some(info.duration);
    Ok(out)
}
