//! AUDIO: the scene's dialogue spoken in the identity's voice, with word timings and its length — or, when the
//! scene uses an uploaded recording, that recording converted to the speech format (no TTS call, $0), with word
//! timings estimated from the dialogue over its length.

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

/// Provider id of a scene spoken by its uploaded recording.
const RECORDING: &str = "recording";

/// The log note of a recorded scene: its captions' timings are not measured.
pub(in crate::pipeline) const ESTIMATED_NOTE: &str = "Speech is the scene's uploaded recording (no TTS); caption \
    word timings are estimated from the dialogue text over the recording's length (no transcript aligner is \
    available), so they may drift from the actual words";

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
        if let Some(key) = &s.speech_recording {
            return Ok(Prepared {
                provider: RECORDING.into(),
                params: serde_json::json!({ "recording": key, "text": s.scene.dialogue }),
                inputs: vec![key.clone()],
            });
        }
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
        let (provider, audio, words, seconds) = match &s.speech_recording {
            Some(key) => {
                let out = work.join("speech.wav");
                cx.media().speech_wav(&cx.path_of(key).await?, &out).await?;
                cx.log(
                    LogStep::AudioGeneration,
                    LogLevel::Info,
                    RECORDING,
                    ESTIMATED_NOTE.into(),
                )
                .await;
                (RECORDING, out, None, None)
            }
            None => {
                let provider = &cx.providers().speech;
                let speech = provider.synthesize(&speech_request(s), work, job).await?;
                (provider.name(), speech.audio, speech.words, speech.seconds)
            }
        };
        let duration = match seconds {
            Some(seconds) => seconds,
            None => cx.media().probe(&audio).await?.duration,
        };
        let ext = audio
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("wav")
            .to_string();
        let mut out = StepOutput::default();
        out.objects
            .insert("audio".into(), cx.store(&audio, &ext).await?);
        out.words = words.unwrap_or_else(|| estimate_word_timings(&s.scene.dialogue, duration));
        out.duration_seconds = Some(duration);
        if let Some(target) = s.scene.target_duration
            && (duration - target).abs() > 2.0
        {
            let msg = format!(
                "speech lasts {duration:.1} s but the target duration is {target:.1} s; the video follows the speech"
            );
            cx.log(LogStep::AudioGeneration, LogLevel::Warn, provider, msg)
                .await;
        }
        Ok(out)
    }
}
