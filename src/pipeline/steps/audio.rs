//! AUDIO: the scene's dialogue spoken in the identity's voice, with word timings and its length.

use std::path::Path;

use async_trait::async_trait;

use super::{Prepared, Step, StepCx};
use crate::domain::{LogLevel, LogStep};
use crate::media::captions::estimate_word_timings;
use crate::pipeline::error::StepError;
use crate::pipeline::{PlannedScene, StepOutput};
use crate::providers::{JobCtx, SpeechRequest};

/// The AUDIO step.
pub(super) struct Audio;

fn speech_request(s: &PlannedScene) -> SpeechRequest {
    let i = &s.identity;
    SpeechRequest {
        text: s.scene.dialogue.clone(),
        voice_id: i.voice_id.clone(),
        voice_model: i.voice_model.clone(),
        stability: i.voice_stability,
        similarity: i.voice_similarity,
        style: i.voice_style,
        speaker_boost: i.voice_speaker_boost,
        local_voice: i.local_voice.clone(),
    }
}

#[async_trait]
impl Step for Audio {
    async fn prepare(&self, cx: &StepCx<'_>) -> Result<Prepared, StepError> {
        let s = cx.scene()?;
        let speech = &cx.providers().speech;
        Ok(Prepared {
            provider: speech.name().into(),
            params: speech.key_params(&speech_request(s)),
            inputs: vec![],
        })
    }

    async fn execute(
        &self,
        cx: &StepCx<'_>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError> {
        let s = cx.scene()?;
        let provider = &cx.providers().speech;
        let speech = provider.synthesize(&speech_request(s), work, job).await?;
        let duration = match speech.seconds {
            Some(seconds) => seconds,
            None => cx.media().probe(&speech.audio).await?.duration,
        };
        let ext = speech
            .audio
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("wav")
            .to_string();
        let mut out = StepOutput::default();
        out.objects
            .insert("audio".into(), cx.store(&speech.audio, &ext).await?);
        out.words = speech
            .words
            .unwrap_or_else(|| estimate_word_timings(&s.scene.dialogue, duration));
        out.duration_seconds = Some(duration);
        if let Some(target) = s.scene.target_duration
            && (duration - target).abs() > 2.0
        {
            let msg = format!(
                "speech lasts {duration:.1} s but the target duration is {target:.1} s; the video follows the speech"
            );
            cx.log(
                LogStep::AudioGeneration,
                LogLevel::Warn,
                provider.name(),
                msg,
            )
            .await;
        }
        Ok(out)
    }
}
