//! LIPSYNC: the clip fitted to the speech (speech + tail) with the speech as its sound; `passthrough` for a
//! `fast` scene, whose VIDEO already speaks.

use std::path::Path;

use async_trait::async_trait;
use serde_json::json;

use super::video::STILL;
use super::{Prepared, Step, StepCx, ensure_covers_speech, object};
use crate::domain::StepName;
use crate::pipeline::PlannedScene;
use crate::pipeline::error::StepError;
use crate::pipeline::{SCENE_TAIL_SECONDS, StepOutput};
use crate::providers::{CameraPath, InputUrls, JobCtx, LipSyncRequest};

/// Provider id of the LIPSYNC step of a `fast` scene, whose VIDEO already speaks.
const PASSTHROUGH: &str = "passthrough";

/// The LIPSYNC step.
pub(super) struct Lipsync;

/// The camera path of the scene's VIDEO clip, when its provider knows it (the local animation).
fn camera(cx: &StepCx<'_>, s: &PlannedScene, speech_seconds: f64) -> Option<CameraPath> {
    let req = super::video::video_request(cx, s, Path::new(""), speech_seconds);
    cx.providers().video.camera_path(&req)
}

#[async_trait]
impl Step for Lipsync {
    async fn prepare(&self, cx: &StepCx<'_>) -> Result<Prepared, StepError> {
        let s = cx.scene()?;
        let video = object(cx.dep(StepName::Video)?, "video")?;
        if cx.one_step_avatar(s).is_some() {
            return Ok(Prepared {
                provider: PASSTHROUGH.into(),
                params: json!({}),
                inputs: vec![video.into()],
            });
        }
        let audio = cx.dep(StepName::Audio)?;
        let speech_seconds = audio.duration_seconds.unwrap_or(0.0);
        let req = LipSyncRequest {
            video: video.into(),
            audio: object(audio, "audio")?.into(),
            speech_seconds,
            tail_seconds: SCENE_TAIL_SECONDS,
            urls: InputUrls::default(),
            camera: camera(cx, s, speech_seconds),
            still: None,
            words: audio.words.clone(),
        };
        let lipsync = &cx.providers().lipsync;
        Ok(Prepared {
            provider: lipsync.name().into(),
            params: lipsync.key_params(&req),
            inputs: vec![video.into(), object(audio, "audio")?.into()],
        })
    }

    async fn execute(
        &self,
        cx: &StepCx<'_>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError> {
        let s = cx.scene()?;
        let mut out = StepOutput::default();
        if cx.one_step_avatar(s).is_some() {
            // The avatar clip already speaks and is fitted to the speech: hand it on unchanged.
            let spoken = cx.dep(StepName::Video)?;
            out.objects
                .insert("video".into(), object(spoken, "video")?.to_string());
            out.duration_seconds = spoken.duration_seconds;
            return Ok(out);
        }
        let audio = cx.dep(StepName::Audio)?;
        let video_out = cx.dep(StepName::Video)?;
        let video_key = object(video_out, "video")?;
        let audio_key = object(audio, "audio")?;
        let still = match video_out.object(STILL) {
            Some(key) => Some(cx.path_of(key).await?),
            None => None,
        };
        let speech_seconds = audio.duration_seconds.unwrap_or(0.0);
        let req = LipSyncRequest {
            video: cx.path_of(video_key).await?,
            audio: cx.path_of(audio_key).await?,
            speech_seconds,
            tail_seconds: SCENE_TAIL_SECONDS,
            urls: cx
                .input_urls(job, None, Some(video_key), Some(audio_key))
                .await?,
            camera: camera(cx, s, speech_seconds),
            still,
            words: audio.words.clone(),
        };
        let clip = cx.providers().lipsync.apply(&req, work, job).await?;
        let info = cx.media().probe(&clip).await?;
        ensure_covers_speech("lip-sync", info.duration, req.speech_seconds)?;
        out.objects
            .insert("video".into(), cx.store(&clip, "mp4").await?);
        out.duration_seconds = Some(info.duration);
        Ok(out)
    }
}
