//! `local-mux`: puts the speech onto the clip. It does not move the mouth.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::media::run_tool;
use crate::providers::{JobCtx, LipSync, LipSyncRequest, ProviderError};

/// Muxes speech onto the clip, looping the clip when the speech is longer, trimming it when shorter.
#[derive(Debug, Clone, Copy)]
pub struct LocalMux;

/// Audio every local clip carries: AAC, 48 kHz stereo.
pub const AUDIO_RATE: u32 = 48_000;

#[async_trait]
impl LipSync for LocalMux {
    fn name(&self) -> &str {
        "local-mux"
    }

    fn key_params(&self, req: &LipSyncRequest) -> Value {
        json!({ "fit": "loop", "tail": req.tail_seconds, "audioRate": AUDIO_RATE })
    }

    async fn apply(
        &self,
        req: &LipSyncRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        if req.speech_seconds.is_nan() || req.speech_seconds <= 0.0 {
            return Err(ProviderError::Invalid("speech has no duration".into()));
        }
        let out = work_dir.join("lipsync.mp4");
        let total = req.speech_seconds + req.tail_seconds;
        let args: Vec<String> = [
            "-y",
            "-v",
            "error",
            "-stream_loop",
            "-1",
            "-i",
            &req.video.display().to_string(),
            "-i",
            &req.audio.display().to_string(),
            "-filter_complex",
            &format!("[1:a]aresample={AUDIO_RATE},aformat=channel_layouts=stereo,apad[a]"),
            "-map",
            "0:v:0",
            "-map",
            "[a]",
            "-t",
            &format!("{total:.3}"),
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
            &out.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run_tool("ffmpeg", &args, None, Duration::from_secs(600)).await?;
        Ok(out)
    }
}
