//! espeak-ng speech to WAV.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::media::{run_tool, wav_seconds};
use crate::providers::{JobCtx, ProviderError, SpeechOutput, SpeechRequest, SpeechSynth};

/// Speech from the espeak-ng engine. It gives no word timings; the pipeline estimates them.
#[derive(Debug, Clone)]
pub struct EspeakSpeech {
    /// espeak-ng voice, e.g. `en-us`.
    pub voice: String,
    /// Words per minute.
    pub rate: u32,
}

impl Default for EspeakSpeech {
    /// `en-us` at 165 words per minute.
    fn default() -> Self {
        Self {
            voice: "en-us".into(),
            rate: 165,
        }
    }
}

#[async_trait]
impl SpeechSynth for EspeakSpeech {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn key_params(&self, req: &SpeechRequest) -> Value {
        json!({ "voice": self.voice, "rate": self.rate, "text": req.text })
    }

    async fn synthesize(
        &self,
        req: &SpeechRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<SpeechOutput, ProviderError> {
        let out = work_dir.join("speech.wav");
        let args = vec![
            "-v".into(),
            self.voice.clone(),
            "-s".into(),
            self.rate.to_string(),
            "-w".into(),
            out.display().to_string(),
            "--stdin".into(),
        ];
        run_tool(
            "espeak-ng",
            &args,
            Some(req.text.as_bytes()),
            Duration::from_secs(120),
        )
        .await?;
        Ok(SpeechOutput {
            seconds: wav_seconds(&out).await,
            audio: out,
            words: None,
        })
    }
}
