//! FINALIZE: the scene clip normalised to the delivery format (optionally with burned captions), its
//! thumbnail and its SRT/VTT captions; the clip's identity score (`identity_score.rs`) when the identity has a
//! face print.

use std::path::Path;

use async_trait::async_trait;
use serde_json::json;

use super::identity_score::clip_score_for;
use super::{EDITOR, Prepared, Step, StepCx, object, words_hash};
use crate::domain::StepName;
use crate::media::captions::{cues, to_srt, to_vtt};
use crate::pipeline::StepOutput;
use crate::pipeline::error::StepError;
use crate::providers::JobCtx;

/// The FINALIZE step.
pub(super) struct Finalize;

#[async_trait]
impl Step for Finalize {
    async fn prepare(&self, cx: &StepCx<'_>) -> Result<Prepared, StepError> {
        cx.scene()?;
        let d = cx.delivery();
        let video = object(cx.dep(StepName::Lipsync)?, "video")?;
        let words = &cx.dep(StepName::Audio)?.words;
        let mut params = json!({ "burnCaptions": cx.run.options.burn_captions, "delivery": [d.width, d.height, d.fps, d.sample_rate] });
        if let Some(score) = clip_score_for(cx)? {
            params["identity"] = score.key_params();
        }
        Ok(Prepared {
            provider: EDITOR.into(),
            params,
            inputs: vec![video.into(), words_hash(words)],
        })
    }

    async fn execute(
        &self,
        cx: &StepCx<'_>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError> {
        cx.scene()?;
        let input = cx
            .path_of(object(cx.dep(StepName::Lipsync)?, "video")?)
            .await?;
        let words = cx.dep(StepName::Audio)?.words.clone();
        let c = cues(&words);
        let srt = to_srt(&c);
        let srt_path = work.join("captions.srt");
        tokio::fs::write(&srt_path, &srt)
            .await
            .map_err(|e| StepError::Internal(e.to_string()))?;
        let final_path = work.join("scene.mp4");
        let burn = cx.run.options.burn_captions.then_some(srt_path.as_path());
        let normalized = cx
            .media()
            .normalize(&input, &final_path, &cx.delivery(), burn)
            .await?;
        let info = &normalized.info;
        let score = clip_score_for(cx)?;
        if score.is_none() && normalized.video.is_some() {
            // The clip was encoded, the heavy part: the next scene's encode may start while this one is stored.
            // (A clip that was only copied keeps its share for its thumbnail, so that a thousand scenes of
            // copies do not start a thousand thumbnails at once.)
            job.local_work_done();
        }
        let thumb = work.join("thumb.jpg");
        // The thumbnail's ffmpeg runs while the clip is hashed and stored.
        let (thumbed, video) = tokio::join!(
            cx.media()
                .thumbnail(&final_path, &thumb, (info.duration / 2.0).min(1.0)),
            cx.store(&final_path, "mp4")
        );
        thumbed?;
        let video = video?;
        if let Some(packets) = &normalized.video {
            cx.run.prejoin.probed(&video, info, packets);
        }
        let mut out = StepOutput::default();
        out.objects.insert("video".into(), video);
        out.objects
            .insert("thumbnail".into(), cx.store(&thumb, "jpg").await?);
        out.objects
            .insert("srt".into(), cx.store_text(srt, "srt").await?);
        out.objects
            .insert("vtt".into(), cx.store_text(to_vtt(&c), "vtt").await?);
        out.duration_seconds = Some(info.duration);
        out.words = words;
        if let Some(score) = score {
            let scored = score.score(cx, &final_path, info.duration, work).await;
            (out.identity_distance, out.identity_median) = scored.unzip();
        }
        Ok(out)
    }
}
