//! ElevenLabs text-to-speech with word timings (`/v1/text-to-speech/{voice}/with-timestamps`).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{ErrorClass, Net, Repeat, call_with_retries, client, json_body};
use super::{CloudConfig, Secret};
use crate::media::captions::WordTiming;
use crate::providers::PriceTable;
use crate::providers::{JobCtx, ProviderError, SpeechOutput, SpeechRequest, SpeechSynth};

/// Provider id in logs, steps and `--json`.
pub const PROVIDER: &str = "elevenlabs";
/// ElevenLabs' premade "Rachel" voice, used when neither the identity nor `ELEVENLABS_VOICE_ID` names one.
const FALLBACK_VOICE: &str = "21m00Tcm4TlvDq8ikWAM";

/// Speech from ElevenLabs, with character timings turned into word timings for captions.
#[derive(Debug, Clone)]
pub struct ElevenLabsSpeech {
    base: String,
    key: Secret,
    default_voice: Option<String>,
    prices: PriceTable,
    net: Net,
}

#[derive(Serialize)]
struct TtsBody<'a> {
    text: &'a str,
    model_id: &'a str,
    voice_settings: VoiceSettings,
}

#[derive(Serialize)]
struct VoiceSettings {
    stability: f64,
    similarity_boost: f64,
    style: f64,
    use_speaker_boost: bool,
}

#[derive(Deserialize)]
struct TtsResponse {
    audio_base64: String,
    #[serde(default)]
    alignment: Option<Alignment>,
    #[serde(default)]
    normalized_alignment: Option<Alignment>,
}

#[derive(Deserialize)]
struct Alignment {
    characters: Vec<String>,
    character_start_times_seconds: Vec<f64>,
    character_end_times_seconds: Vec<f64>,
}

/// The per-request character limit of a model.
fn char_limit(model: &str) -> usize {
    match model {
        "eleven_v3" => 5_000,
        "eleven_flash_v2_5" | "eleven_turbo_v2_5" => 40_000,
        "eleven_flash_v2" | "eleven_turbo_v2" => 30_000,
        _ => 10_000,
    }
}

/// Groups character timings into words (runs of non-whitespace characters).
fn words(a: &Alignment) -> Option<Vec<WordTiming>> {
    let n = a.characters.len();
    if n == 0
        || a.character_start_times_seconds.len() != n
        || a.character_end_times_seconds.len() != n
    {
        return None;
    }
    let mut out = Vec::new();
    let mut current: Option<WordTiming> = None;
    for i in 0..n {
        let (c, start, end) = (
            &a.characters[i],
            a.character_start_times_seconds[i],
            a.character_end_times_seconds[i],
        );
        if !(start.is_finite() && end.is_finite()) {
            return None;
        }
        if c.trim().is_empty() {
            out.extend(current.take());
            continue;
        }
        match &mut current {
            Some(w) => {
                w.word.push_str(c);
                w.end = w.end.max(end);
            }
            None => {
                current = Some(WordTiming {
                    word: c.clone(),
                    start,
                    end: end.max(start),
                })
            }
        }
    }
    out.extend(current);
    Some(out)
}

/// The MP3 bytes of an answer: its base64 audio decoded and checked to be audio.
fn decoded_audio(parsed: &TtsResponse) -> Result<Vec<u8>, ProviderError> {
    let audio = base64::engine::general_purpose::STANDARD
        .decode(parsed.audio_base64.trim())
        .map_err(|_| ProviderError::BadOutput("elevenlabs audio is not valid base64".into()))?;
    if !super::http::magic_ok(super::http::MediaKind::Audio, &audio) {
        return Err(ProviderError::BadOutput(
            "elevenlabs returned something that is not audio".into(),
        ));
    }
    Ok(audio)
}

fn classify(status: StatusCode, body: &Value) -> ErrorClass {
    let code = body
        .pointer("/detail/status")
        .or_else(|| body.pointer("/detail/code"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match (status.as_u16(), code) {
        (429, "too_many_concurrent_requests") => ErrorClass::WaitForSlot,
        (408 | 429 | 500..=599, _) => ErrorClass::Retryable,
        _ => ErrorClass::Terminal,
    }
}

impl ElevenLabsSpeech {
    /// A client for the configured account.
    pub fn new(cfg: &CloudConfig, key: Secret) -> Self {
        Self {
            base: cfg.elevenlabs_base.clone(),
            key,
            default_voice: cfg.default_voice.clone(),
            prices: cfg.prices.clone(),
            net: Net::of(cfg),
        }
    }

    fn voice<'a>(&'a self, req: &'a SpeechRequest) -> &'a str {
        req.voice_id
            .as_deref()
            .or(self.default_voice.as_deref())
            .unwrap_or(FALLBACK_VOICE)
    }

    /// The trimmed text, its character count and the voice id, once the text is non-empty and within the
    /// model's limit and the voice looks like an ElevenLabs id.
    fn checked<'a>(
        &'a self,
        req: &'a SpeechRequest,
    ) -> Result<(&'a str, usize, &'a str), ProviderError> {
        let text = req.text.trim();
        if text.is_empty() {
            return Err(ProviderError::Invalid(
                "there is no dialogue to speak".into(),
            ));
        }
        let chars = text.chars().count();
        if chars > char_limit(&req.voice_model) {
            return Err(ProviderError::Invalid(format!(
                "the dialogue has {chars} characters; {} accepts at most {} per request",
                req.voice_model,
                char_limit(&req.voice_model)
            )));
        }
        let voice = self.voice(req);
        if !is_path_safe_id(voice) {
            return Err(ProviderError::Invalid(format!(
                "{voice:?} is not an ElevenLabs voice id"
            )));
        }
        Ok((text, chars, voice))
    }
}

#[async_trait]
impl SpeechSynth for ElevenLabsSpeech {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn key_params(&self, req: &SpeechRequest) -> Value {
        json!({
            "text": req.text, "voice": self.voice(req), "model": req.voice_model,
            "stability": req.stability, "similarity": req.similarity, "style": req.style,
            "speakerBoost": req.speaker_boost, "format": "mp3_44100_128",
        })
    }

    async fn synthesize(
        &self,
        req: &SpeechRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<SpeechOutput, ProviderError> {
        let (text, chars, voice) = self.checked(req)?;
        // Whole-body timeout: 30 s + 2 s per 100 characters, capped at 10 minutes.
        let timeout = Duration::from_secs((30 + 2 * chars as u64 / 100).min(600));
        let http = client(timeout)?;
        let url = format!(
            "{}/v1/text-to-speech/{voice}/with-timestamps?output_format=mp3_44100_128",
            self.base
        );
        let body = TtsBody {
            text,
            model_id: &req.voice_model,
            voice_settings: VoiceSettings {
                stability: req.stability,
                similarity_boost: req.similarity,
                style: req.style,
                use_speaker_boost: req.speaker_boost,
            },
        };
        job.reserve(PROVIDER, self.prices.speech(chars))?;
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            4,
            Repeat::Safe,
            job,
            || {
                http.post(&url)
                    .header("xi-api-key", self.key.expose())
                    .json(&body)
            },
            classify,
        )
        .await?;
        if let Some(id) = resp
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
        {
            job.note(format!("elevenlabs request-id {id}"));
        }
        let parsed: TtsResponse = serde_json::from_value(json_body(PROVIDER, resp).await?)
            .map_err(|e| ProviderError::BadOutput(format!("elevenlabs answer: {e}")))?;
        let audio = decoded_audio(&parsed)?;
        let path = work_dir.join("speech.mp3");
        tokio::fs::write(&path, &audio).await?;
        job.add_cost(self.prices.speech(chars));
        let words = parsed
            .alignment
            .as_ref()
            .and_then(words)
            .or_else(|| parsed.normalized_alignment.as_ref().and_then(words));
        Ok(SpeechOutput {
            audio: path,
            words,
            seconds: None,
        })
    }
}

/// A voice id is placed in the URL path: letters and digits only, 1 to 64 of them.
fn is_path_safe_id(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_timings_become_words() {
        let text = "Hi there";
        let a = Alignment {
            characters: text.chars().map(String::from).collect(),
            character_start_times_seconds: (0..8).map(|i| i as f64 * 0.1).collect(),
            character_end_times_seconds: (0..8).map(|i| i as f64 * 0.1 + 0.1).collect(),
        };
        let w = words(&a).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].word.as_str(), w[0].start, w[0].end), ("Hi", 0.0, 0.2));
        assert_eq!(w[1].word, "there");
        assert!((w[1].start - 0.3).abs() < 1e-9 && (w[1].end - 0.8).abs() < 1e-9);
        let uneven = Alignment {
            characters: vec!["a".into()],
            character_start_times_seconds: vec![],
            character_end_times_seconds: vec![0.1],
        };
        assert!(words(&uneven).is_none());
    }

    #[test]
    fn concurrency_429_waits_for_a_slot_and_quota_is_terminal() {
        let busy = json!({"detail": {"status": "too_many_concurrent_requests", "message": "x"}});
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &busy),
            ErrorClass::WaitForSlot
        );
        let sys = json!({"detail": {"status": "system_busy", "message": "x"}});
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &sys),
            ErrorClass::Retryable
        );
        let quota = json!({"detail": {"status": "quota_exceeded", "message": "x"}});
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, &quota),
            ErrorClass::Terminal
        );
    }
}
