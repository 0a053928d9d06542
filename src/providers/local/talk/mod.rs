//! `local-talk`: the clip speaks. The mouth opens with the speech's loudness (rounded where its words have
//! rounded vowels), the eyes blink every few seconds and the head moves slightly, by warping each frame of
//! VIDEO's clip inside the face's box. The face is found in the clip's first frame — by the face engine on a
//! photo, by its known drawing on the bundled placeholder — and followed through the camera path. A clip with
//! no face to animate (or none that can be followed) gets `local-mux`, with a warning.

mod drive;
mod face;
mod frames;
mod warp;

pub use drive::{FrameDrive, PCM_RATE, drive, frame_loudness, mouth_opening};
pub use face::{FaceGeometry, shows_placeholder};
pub use warp::Warp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::FPS;
use super::mux::{AUDIO_RATE, LocalMux};
use crate::face::FaceSettings;
use crate::media::run_tool;
use crate::media::splice::{fade_frames, splice_keyframe_times};
use crate::providers::{CameraPath, JobCtx, LipSync, LipSyncRequest, ProviderError};
use frames::FramePipe;

/// Provider id.
pub const PROVIDER: &str = "local-talk";
/// Bumped whenever the animation changes, so cached clips are made again.
const VERSION: u32 = 2;
/// The longest a clip may take.
const DEADLINE: Duration = Duration::from_secs(600);

/// Makes the clip speak offline (see the module docs).
#[derive(Debug, Clone)]
pub struct LocalTalk {
    face: FaceSettings,
}

impl LocalTalk {
    /// Finds faces on photos with the face engine of `face`.
    pub fn new(face: FaceSettings) -> Self {
        Self { face }
    }

    /// The clip's first frame (its size is the clip's).
    async fn first_frame(&self, clip: &Path, work: &Path) -> Result<crate::face::Photo, String> {
        let png = work.join("first-frame.png");
        let args: Vec<String> = ["-y", "-v", "error", "-i"]
            .iter()
            .map(|s| s.to_string())
            .chain([clip.display().to_string()])
            .chain(["-frames:v", "1"].iter().map(|s| s.to_string()))
            .chain([png.display().to_string()])
            .collect();
        run_tool("ffmpeg", &args, None, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        crate::face::open_photo(png)
            .await
            .map_err(|e| e.to_string())
    }

    /// Where the face is in the still, from the clip's first frame `photo` seen through the camera's first
    /// transform; `Err` says why there is none.
    async fn locate(
        &self,
        photo: crate::face::Photo,
        camera: &CameraPath,
    ) -> Result<FaceGeometry, String> {
        let first = *camera.frames.first().ok_or("the camera path is empty")?;
        let still = photo.rgb.dimensions();
        if shows_placeholder(&photo.rgb, still, &first) {
            return Ok(FaceGeometry::placeholder(still.0, still.1));
        }
        let engine = crate::face::load_engine(&self.face)
            .await
            .map_err(|e| format!("the face engine is unavailable ({e})"))?;
        let found = crate::face::analyse(engine, photo)
            .await
            .map_err(|e| e.to_string())?;
        let face = found
            .faces
            .first()
            .ok_or("no face was found in the still")?;
        let g = FaceGeometry::from_landmarks(&face.landmarks)
            .ok_or("the face is too small to animate")?;
        Ok(g.unmapped(&first))
    }

    /// The speech's loudness per frame (ffmpeg decodes it to 16 kHz mono PCM).
    async fn loudness(&self, audio: &Path, frames: usize) -> Result<Vec<f32>, ProviderError> {
        let args: Vec<String> = ["-v", "error", "-i"]
            .iter()
            .map(|s| s.to_string())
            .chain([audio.display().to_string()])
            .chain(
                [
                    "-ac",
                    "1",
                    "-ar",
                    &PCM_RATE.to_string(),
                    "-f",
                    "s16le",
                    "pipe:1",
                ]
                .iter()
                .map(|s| s.to_string()),
            )
            .collect();
        let bytes = run_tool("ffmpeg", &args, None, Duration::from_secs(120)).await?;
        let pcm: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        Ok(frame_loudness(&pcm, FPS, frames))
    }

    async fn fall_back(
        &self,
        why: &str,
        req: &LipSyncRequest,
        work: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        tracing::warn!(
            "{PROVIDER}: {why}; the clip gets the speech without mouth motion (local-mux)"
        );
        LocalMux.apply(req, work, job).await
    }
}

/// Sets the flag when dropped, so the blocking frame loop stops with a cancelled step.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl LipSync for LocalTalk {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn key_params(&self, req: &LipSyncRequest) -> Value {
        let words = serde_json::to_string(&req.words).unwrap_or_default();
        json!({
            "version": VERSION,
            "tail": req.tail_seconds,
            "audioRate": AUDIO_RATE,
            "fps": FPS,
            "camera": req.camera.is_some(),
            "faceEngine": self.face.models.is_dir(),
            "words": hex::encode(Sha256::digest(words.as_bytes())),
        })
    }

    async fn apply(
        &self,
        req: &LipSyncRequest,
        work: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        if req.speech_seconds.is_nan() || req.speech_seconds <= 0.0 {
            return Err(ProviderError::Invalid("speech has no duration".into()));
        }
        let Some(camera) = req.camera.as_ref().filter(|c| !c.frames.is_empty()) else {
            let why =
                "the clip was not made by the local animation, so its face cannot be followed";
            return self.fall_back(why, req, work, job).await;
        };
        let located = match self.first_frame(&req.video, work).await {
            Ok(photo) => {
                let size = photo.rgb.dimensions();
                self.locate(photo, camera).await.map(|face| (face, size))
            }
            Err(why) => Err(format!("the clip's first frame is unreadable ({why})")),
        };
        let (face, (width, height)) = match located {
            Ok(found) => found,
            Err(why) => return self.fall_back(&why, req, work, job).await,
        };
        let seconds = req.speech_seconds + req.tail_seconds;
        let frames = (seconds * f64::from(FPS)).ceil() as usize;
        let motion = drive(&self.loudness(&req.audio, frames).await?, &req.words, FPS);
        let out = work.join("lipsync.mp4");
        let pipe = FramePipe {
            clip: req.video.clone(),
            audio: req.audio.clone(),
            out: out.clone(),
            width,
            height,
            fps: FPS,
            frames,
            seconds,
            audio_rate: AUDIO_RATE,
            keyframes: splice_keyframe_times(
                frames as u32,
                fade_frames(req.tail_seconds, FPS),
                FPS,
            ),
            work_dir: work.to_path_buf(),
        };
        let path = camera.frames.clone();
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = cancel.0.clone();
        let (w, h) = (width as usize, height as usize);
        tokio::task::spawn_blocking(move || {
            let mut original = Vec::new();
            pipe.run(&flag, DEADLINE, |i, frame| {
                original.clear();
                original.extend_from_slice(frame);
                let seen = face.mapped(&path[i % path.len()]);
                Warp::new(seen, motion[i]).apply(frame, &original, w, h);
            })
        })
        .await
        .map_err(|e| ProviderError::BadOutput(format!("the frame loop stopped: {e}")))??;
        drop(cancel);
        Ok(out)
    }
}
