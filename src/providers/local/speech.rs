//! espeak-ng speech to WAV.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::media::run_tool;
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
    fn default() -> Self {
        let voice = std::env::var("DEVATAR_ESPEAK_VOICE")
            .ok()
            .filter(|v| {
                !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c))
            })
            .unwrap_or_else(|| "en-us".into());
        let rate = std::env::var("DEVATAR_ESPEAK_RATE")
            .ok()
            .and_then(|r| r.parse().ok())
            .filter(|r| (80..=450).contains(r))
            .unwrap_or(165);
        Self { voice, rate }
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
            audio: out,
            words: None,
        })
    }
}
