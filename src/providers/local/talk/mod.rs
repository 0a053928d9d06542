//! `local-talk`: the clip speaks. Every frame is rendered once from the still along VIDEO's camera path
//! (bilinear, in the `still-frames` crate), the mouth opens with the speech's loudness (rounded where its words
//! have rounded vowels), the eyes blink every few seconds and the head moves slightly, by warping the frame
//! inside the face's box; one x264 encode writes the frames with the speech. The face is found in the still —
//! by the face engine on a photo, by its known drawing on the bundled placeholder. A still with no face to
//! animate gets the camera move without mouth motion, with a warning; a clip not made by the local animation
//! (no camera path, no still) gets `local-mux`.

mod drive;
mod face;
mod frames;

pub use drive::{PCM_RATE, drive, frame_loudness, mouth_opening};
pub use face::{FaceGeometry, placeholder_face, shows_placeholder};
pub use still_frames::{FrameDrive, Warp};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use image::RgbImage;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use still_frames::{Camera, Yuv420};

use super::FPS;
use super::mux::{AUDIO_RATE, LocalMux};
use crate::face::{FaceSettings, Photo};
use crate::media::run_tool;
use crate::media::splice::{fade_frames, splice_keyframe_times};
use crate::providers::{
    CameraPath, FrameTransform, JobCtx, LipSync, LipSyncRequest, ProviderError,
};
use frames::FramePipe;

/// Provider id.
pub const PROVIDER: &str = "local-talk";
/// Bumped whenever the animation changes, so cached clips are made again.
const VERSION: u32 = 3;
/// The longest a clip may take.
const DEADLINE: Duration = Duration::from_secs(600);

/// Makes the clip speak offline (see the module docs).
#[derive(Debug, Clone)]
pub struct LocalTalk {
    face: FaceSettings,
}

/// The still at the frame size: RGB (to find the face in) and yuv420p (to render from).
struct Still {
    rgb: RgbImage,
    yuv: Yuv420,
}

impl Still {
    /// Reads `path` and fits it to `width`×`height` (stretched, as the animation's scale is), off the runtime.
    async fn open(path: &Path, width: u32, height: u32) -> Result<Self, ProviderError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let photo = Photo::open(&path).map_err(|e| ProviderError::Invalid(e.to_string()))?;
            let mut rgb = photo.rgb;
            if rgb.dimensions() != (width, height) {
                rgb = image::imageops::resize(
                    &rgb,
                    width,
                    height,
                    image::imageops::FilterType::Triangle,
                );
            }
            let yuv = Yuv420::from_rgb(rgb.as_raw(), width as usize, height as usize)
                .map_err(|e| ProviderError::Invalid(e.to_string()))?;
            Ok(Self { rgb, yuv })
        })
        .await
        .map_err(|e| ProviderError::BadOutput(format!("reading the still stopped: {e}")))?
    }
}

impl LocalTalk {
    /// Finds faces on photos with the face engine of `face`.
    pub fn new(face: FaceSettings) -> Self {
        Self { face }
    }

    /// Where the face is in `still`; `Err` says why there is none.
    async fn locate(&self, still: &RgbImage) -> Result<FaceGeometry, String> {
        let size = still.dimensions();
        let identity = FrameTransform {
            scale_x: 1.0,
            scale_y: 1.0,
            offset_x: 0.0,
            offset_y: 0.0,
        };
        if shows_placeholder(still, size, &identity) {
            return Ok(placeholder_face(size.0, size.1));
        }
        let engine = crate::face::load_engine(&self.face)
            .await
            .map_err(|e| format!("the face engine is unavailable ({e})"))?;
        let photo = Photo {
            path: PathBuf::from("still"),
            rgb: still.clone(),
        };
        let found = crate::face::analyse(engine, photo)
            .await
            .map_err(|e| e.to_string())?;
        let face = found
            .faces
            .first()
            .ok_or("no face was found in the still")?;
        FaceGeometry::from_landmarks(&face.landmarks)
            .ok_or_else(|| "the face is too small to animate".into())
    }

    /// The speech's loudness per frame: read from a 16-bit PCM WAV (the local voices'), else decoded by ffmpeg
    /// to 16 kHz mono PCM.
    async fn loudness(&self, audio: &Path, frames: usize) -> Result<Vec<f32>, ProviderError> {
        let wav = tokio::fs::read(audio).await?;
        if let Some((rate, pcm)) = crate::media::pcm16_mono(&wav) {
            return Ok(frame_loudness(&pcm, rate, FPS, frames));
        }
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
        Ok(frame_loudness(&pcm, PCM_RATE, FPS, frames))
    }

    /// The encode of `frames` frames of `camera`'s size with the speech, in `work`.
    fn pipe(req: &LipSyncRequest, camera: &CameraPath, frames: usize, work: &Path) -> FramePipe {
        FramePipe {
            audio: req.audio.clone(),
            out: work.join("lipsync.mp4"),
            width: camera.width,
            height: camera.height,
            fps: FPS,
            frames,
            seconds: req.speech_seconds + req.tail_seconds,
            audio_rate: AUDIO_RATE,
            keyframes: splice_keyframe_times(
                frames as u32,
                fade_frames(req.tail_seconds, FPS),
                FPS,
            ),
            work_dir: work.to_path_buf(),
        }
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

    fn renders_from_still(&self) -> bool {
        true
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
        let camera = req.camera.as_ref().filter(|c| !c.frames.is_empty());
        let (Some(camera), Some(still)) = (camera, req.still.as_ref()) else {
            tracing::warn!(
                "{PROVIDER}: the clip was not made by the local animation, so its face cannot be followed; \
                 the clip gets the speech without mouth motion (local-mux)"
            );
            return LocalMux.apply(req, work, job).await;
        };
        let still = Still::open(still, camera.width, camera.height).await?;
        let frames = ((req.speech_seconds + req.tail_seconds) * f64::from(FPS)).ceil() as usize;
        let face = match self.locate(&still.rgb).await {
            Ok(face) => Some(face),
            Err(why) => {
                tracing::warn!("{PROVIDER}: {why}; the clip gets the speech without mouth motion");
                None
            }
        };
        let motion = match face {
            Some(_) => drive(&self.loudness(&req.audio, frames).await?, &req.words, FPS),
            None => Vec::new(),
        };
        let pipe = Self::pipe(req, camera, frames, work);
        let out = pipe.out.clone();
        let path = camera.frames.clone();
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = cancel.0.clone();
        let (w, h) = (camera.width as usize, camera.height as usize);
        tokio::task::spawn_blocking(move || {
            let mut lens = Camera::new();
            let mut original = vec![0_u8; still_frames::frame_bytes(w, h)];
            pipe.run(&flag, DEADLINE, |i, frame| {
                let t = &path[i % path.len()];
                let (Some(face), Some(&m)) = (face, motion.get(i)) else {
                    return lens
                        .render(&still.yuv, t, frame, w, h)
                        .map_err(|e| e.to_string());
                };
                lens.render(&still.yuv, t, &mut original, w, h)
                    .map_err(|e| e.to_string())?;
                frame.copy_from_slice(&original);
                Warp::new(face.mapped(t), m).apply(frame, &original, w, h);
                Ok(())
            })
        })
        .await
        .map_err(|e| ProviderError::BadOutput(format!("the frame loop stopped: {e}")))??;
        drop(cancel);
        Ok(out)
    }
}
