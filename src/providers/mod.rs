//! Capability traits for every external (or local) generator, and their implementations.
//!
//! The pipeline holds providers as `Arc<dyn …>`; each provider says which of its parameters
//! change its output (`key_params`), so cache keys hold content only.

pub mod cloud;
pub mod hooks;
pub mod job;
pub mod local;
mod prices;

pub use job::{JobCtx, JobLedger, JobState, NoLedger, ProviderJob};
pub use prices::{PriceError, PriceTable};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::face::FaceSettings;
use crate::media::MediaError;
use crate::media::captions::WordTiming;

/// A provider could not produce its output.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A media tool failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// Reading or writing a work file failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// The request cannot be served by this provider.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The provider produced something unusable.
    #[error("bad output: {0}")]
    BadOutput(String),
    /// The provider refused or failed the job; retrying the same request will not help.
    #[error("{provider}: {message}")]
    Rejected {
        /// Provider id.
        provider: &'static str,
        /// What it said, without secrets.
        message: String,
    },
    /// The provider stayed unreachable or kept failing through every retry, or its deadline passed.
    #[error("{provider}: {message}")]
    Unavailable {
        /// Provider id.
        provider: &'static str,
        /// What happened.
        message: String,
    },
    /// A submit's outcome is unknown and submitting again could pay twice: a person must decide.
    #[error("needs attention: {0}")]
    NeedsAttention(String),
}

/// Text → speech.
#[derive(Debug, Clone)]
pub struct SpeechRequest {
    /// What to say.
    pub text: String,
    /// Provider voice id, if the identity has one.
    pub voice_id: Option<String>,
    /// Provider model id.
    pub voice_model: String,
    /// Stability 0–1.
    pub stability: f64,
    /// Similarity boost 0–1.
    pub similarity: f64,
    /// Style 0–1.
    pub style: f64,
    /// Speaker boost.
    pub speaker_boost: bool,
    /// The offline voice the identity names (a Piper voice such as `en_US-joe-medium`), if any.
    pub local_voice: Option<String>,
}

/// Speech written to a work file.
#[derive(Debug, Clone)]
pub struct SpeechOutput {
    /// The audio file.
    pub audio: PathBuf,
    /// Word timings from the engine, when it gives them.
    pub words: Option<Vec<WordTiming>>,
    /// The audio's length in seconds when the engine knows it (AUDIO probes the file otherwise).
    pub seconds: Option<f64>,
}

/// Synthesises speech.
#[async_trait]
pub trait SpeechSynth: Send + Sync {
    /// Provider id shown in logs and `--json` (e.g. `espeak-ng`).
    fn name(&self) -> &str;
    /// The parameters that change the output, for the cache key.
    fn key_params(&self, req: &SpeechRequest) -> Value;
    /// Writes the speech into `work_dir`.
    async fn synthesize(
        &self,
        req: &SpeechRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<SpeechOutput, ProviderError>;
}

/// Identity + scene → still.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// Full image prompt (trigger word first).
    pub prompt: String,
    /// Display name of the identity (placeholder label).
    pub display_name: String,
    /// Mood lighting text (placeholder tint).
    pub mood: Option<String>,
    /// A headshot to frame instead of generating, when the mode selection chose one.
    pub headshot: Option<PathBuf>,
    /// LoRA to apply (digital twin mode).
    pub lora: Option<LoraRef>,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// The generator's seed, when the caller picks one (the identity gate's retries); generators that have no
    /// seed ignore it, and it is never part of a cache key (it is derived from the step's content key).
    pub seed: Option<u64>,
}

/// A LoRA applied to image generation.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraRef {
    /// `.safetensors` URL.
    pub url: String,
    /// Strength.
    pub scale: f64,
    /// `flux-dev` or `flux-schnell`.
    pub base_model: String,
}

/// Generates (or frames) a still.
#[async_trait]
pub trait ImageGen: Send + Sync {
    /// Provider id.
    fn name(&self) -> &str;
    /// The parameters that change the output (input files are hashed by the pipeline).
    fn key_params(&self, req: &ImageRequest) -> Value;
    /// True when this provider applies a LoRA (digital twin mode is possible).
    fn supports_lora(&self) -> bool {
        false
    }
    /// True when this provider generates portraits from a prompt (not only frames a headshot).
    fn generates(&self) -> bool {
        false
    }
    /// Writes a PNG still into `work_dir`.
    async fn generate(
        &self,
        req: &ImageRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError>;
    /// A URL this provider can fetch the local LoRA file at `path` from (Fal: its storage upload, recorded under
    /// `job` so one file goes up once); `None` when it takes LoRAs by URL only.
    async fn lora_file_url(
        &self,
        _path: &Path,
        _job: &JobCtx,
    ) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }
}

/// Presigned `GET` URLs of a request's input files, when media live in S3/R2: providers that fetch inputs by URL
/// use them instead of sending the files inline. They are bearer credentials: `Debug` never shows them, and
/// they must never reach a log, an error or the database. Never part of a cache key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InputUrls {
    /// The still.
    pub image: Option<String>,
    /// The clip.
    pub video: Option<String>,
    /// The speech.
    pub audio: Option<String>,
}

impl std::fmt::Debug for InputUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |u: &Option<String>| if u.is_some() { "Some(***)" } else { "None" };
        f.debug_struct("InputUrls")
            .field("image", &shown(&self.image))
            .field("video", &shown(&self.video))
            .field("audio", &shown(&self.audio))
            .finish()
    }
}

/// How tight a shot frames the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Close-up / portrait.
    CloseUp,
    /// Medium shot (the default).
    Medium,
    /// Wide / full-body / establishing.
    Wide,
}

/// Still + prompt → clip.
#[derive(Debug, Clone)]
pub struct VideoRequest {
    /// The still.
    pub image: PathBuf,
    /// Video prompt (movement, camera).
    pub prompt: String,
    /// How tight the scene's camera frames the person (from its camera text).
    pub framing: Framing,
    /// Movement text of the scene.
    pub movement: Option<String>,
    /// Clip length: the speech's duration bucket, seconds.
    pub duration_seconds: u32,
    /// Presigned URL of the still, when it lives in a bucket.
    pub urls: InputUrls,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Only a stand-in clip is needed: the lip-sync renders every frame from the still itself
    /// ([`LipSync::renders_from_still`]), so the clip is never shown.
    pub proxy: bool,
}

/// Where the still lies in one frame of a clip: a still pixel `p` is seen at `p × scale + offset`
/// (`apply`, `invert`).
pub use still_frames::Placement as FrameTransform;

/// The camera path of a clip made from a still by a known move (one transform per frame, at the local fps),
/// so a later step can find in every frame what it found in the still.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraPath {
    /// Frame `i`'s transform.
    pub frames: Vec<FrameTransform>,
    /// Frame width, pixels (the still is seen at this size before the transform).
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
}

/// Animates a still.
#[async_trait]
pub trait ImageToVideo: Send + Sync {
    /// Provider id.
    fn name(&self) -> &str;
    /// The parameters that change the output.
    fn key_params(&self, req: &VideoRequest) -> Value;
    /// The clip's camera path, when this provider moves a camera over the still (and nothing else moves).
    fn camera_path(&self, _req: &VideoRequest) -> Option<CameraPath> {
        None
    }
    /// Writes an MP4 clip into `work_dir`.
    async fn animate(
        &self,
        req: &VideoRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError>;
}

/// Clip + speech → clip fitted to the speech.
#[derive(Debug, Clone)]
pub struct LipSyncRequest {
    /// The clip (its length is the duration bucket).
    pub video: PathBuf,
    /// The speech.
    pub audio: PathBuf,
    /// Exact speech length, seconds; the output is this long plus `tail_seconds`, never shorter.
    pub speech_seconds: f64,
    /// Quiet tail after the speech (room for the crossfade), seconds.
    pub tail_seconds: f64,
    /// Presigned URLs of the clip and the speech, when they live in a bucket.
    pub urls: InputUrls,
    /// The clip's camera path, when the image-to-video provider knows it (local animation).
    pub camera: Option<CameraPath>,
    /// The still the clip was animated from, when the camera path is known.
    pub still: Option<PathBuf>,
    /// The speech's word timings (from the engine, or estimated), empty when unknown.
    pub words: Vec<WordTiming>,
}

/// Makes the clip speak.
#[async_trait]
pub trait LipSync: Send + Sync {
    /// Provider id.
    fn name(&self) -> &str;
    /// The parameters that change the output.
    fn key_params(&self, req: &LipSyncRequest) -> Value;
    /// True when it renders every frame from the still along the camera path (given both), so VIDEO need
    /// only make a stand-in clip ([`VideoRequest::proxy`]).
    fn renders_from_still(&self) -> bool {
        false
    }
    /// Writes the fitted MP4 into `work_dir`.
    async fn apply(
        &self,
        req: &LipSyncRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError>;
}

/// Still + speech → talking clip in one step (the `fast` animation).
#[derive(Debug, Clone)]
pub struct AvatarRequest {
    /// The still.
    pub image: PathBuf,
    /// The speech.
    pub audio: PathBuf,
    /// Motion prompt (camera, movement).
    pub prompt: String,
    /// Exact speech length, seconds; the output is this long plus `tail_seconds`.
    pub speech_seconds: f64,
    /// Quiet tail after the speech (room for the crossfade), seconds.
    pub tail_seconds: f64,
    /// Presigned URLs of the still and the speech, when they live in a bucket.
    pub urls: InputUrls,
}

/// Makes a still speak, in one paid job.
#[async_trait]
pub trait TalkingAvatar: Send + Sync {
    /// Provider id.
    fn name(&self) -> &str;
    /// The parameters that change the output.
    fn key_params(&self, req: &AvatarRequest) -> Value;
    /// Writes a clip of the still speaking `req.audio`, fitted to speech + tail, into `work_dir`.
    async fn speak(
        &self,
        req: &AvatarRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError>;
}

/// The providers one render uses.
#[derive(Clone)]
pub struct Providers {
    /// Speech.
    pub speech: Arc<dyn SpeechSynth>,
    /// Stills.
    pub image: Arc<dyn ImageGen>,
    /// Image-to-video.
    pub video: Arc<dyn ImageToVideo>,
    /// Lip-sync.
    pub lipsync: Arc<dyn LipSync>,
    /// One-step talking avatar for `fast` scenes, when one is configured (else they animate the standard way).
    pub avatar: Option<Arc<dyn TalkingAvatar>>,
}

impl Providers {
    /// The offline providers: espeak-ng, local portrait, ffmpeg animation, local talk (default face models).
    pub fn local() -> Self {
        Self::local_speaking(
            Arc::new(local::EspeakSpeech::default()),
            FaceSettings::default(),
        )
    }

    /// The offline providers with the given voice; `face` finds the faces the local lip-sync animates.
    pub fn local_speaking(speech: Arc<dyn SpeechSynth>, face: FaceSettings) -> Self {
        Self {
            speech,
            image: Arc::new(local::PortraitStill::default()),
            video: Arc::new(local::FfmpegAnimation),
            lipsync: Arc::new(local::LocalTalk::new(face)),
            avatar: None,
        }
    }
}

impl Providers {
    /// The same providers with the local portrait framing headshots around their face (`face`: the engine's
    /// settings); other image providers are kept.
    pub fn with_face_framing(mut self, face: crate::face::FaceSettings) -> Self {
        if self.image.name() == "local-portrait" {
            self.image = Arc::new(local::PortraitStill::following_faces(face));
        }
        self
    }
}
