//! The provider sandbox: fake ElevenLabs, Fal, Kling and Sync Labs servers (`devatar fakes`).
//!
//! One local HTTP server speaks all four contracts of `PROVIDERS.md` from its root, so every provider base URL
//! (`ELEVENLABS_BASE_URL`, `FAL_BASE_URL`, `FAL_STORAGE_BASE_URL`, `KLING_BASE_URL`, `SYNCLABS_BASE_URL`) can be the same
//! `http://ADDR`. It checks each API's auth header against the keys in the environment variables the clients
//! read, validates request bodies strictly (a contract break gets the API's own 422/400), returns real media
//! made with ffmpeg, simulates job latency from elapsed time, and injects faults (see [`FaultSpec`] and the
//! grammar in the `faults` module docs, reproduced in `devatar fakes --help`).
//!
//! Admin routes: `GET /__stats` (call counts), `GET /__latency` (configured job seconds), `POST /__reset` (zero counts, forget jobs; faults stay),
//! `GET /__faults` (live rules with remaining counts), `POST /__faults` (a JSON array of specs replaces the
//! rules; `{"faults": [...], "append": true}` adds), `GET /__media/{name}` (result files; `sample.png`,
//! `sample.mp3` and `sample.mp4` always exist).
//!
//! `GET /__faces` / `POST /__faces`: the faces LoRAs stand for (see the `faces` module: `--lora-face`,
//! `--other-face`, the `identity-drift:N` fault; fake Kling and Sync clips show their input still or clip).
//!
//! `/__stats` keys: `elevenlabs.tts` (speech requests answered with audio, with or without timestamps),
//! `elevenlabs.characters` (characters billed), `elevenlabs.voices`, `elevenlabs.models`, `elevenlabs.user`,
//! `fal.submit`, `fal.status`, `fal.result`, `fal.cancel`, `kling.submit`, `kling.status`, `kling.list`,
//! `sync.submit`, `sync.status`, `sync.long_poll` (status calls with `wait=true`), `sync.list`, `sync.replay`
//! (idempotent replays, which create nothing), `media.get`; per model `fal.submit.<model id>`,
//! `kling.submit.<model_name>`, `sync.submit.<model>`, `elevenlabs.tts.<model_id>`; and `requests.<provider>.<endpoint>` for every HTTP request including those
//! refused (auth, validation, injected errors). `<provider>.submit` counts jobs created (a submit whose answer
//! a fault then drops or garbles still counts; an injected 429 does not); status, result, cancel and voices
//! count every authenticated call. `fal.peak_active`, `kling.peak_active` and `sync.peak_active` are high-water
//! marks: the most jobs of that provider ever queued or running at once (to check concurrency limits).
//! `inputs.inline` counts job inputs sent inline (data URIs, uploads, base64), `inputs.url` those given as remote
//! URLs (presigned), `inputs.url_fetched` / `inputs.url_unreadable` the remote sound and video inputs fetched.
//! `webhooks.sent` / `webhooks.failed` / `webhooks.refused` count job-completion webhooks (see `callbacks`).

mod callbacks;
mod elevenlabs;
mod faces;
mod fal;
mod fal_storage;
mod fal_training;
mod faults;
mod jobs;
mod kling;
mod media;
mod server;
mod synclabs;
mod util;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use faces::LoraFace;
pub use faults::{
    Endpoint, ErrorKind, FaultAction, FaultSpec, FaultTarget, InjectedError, JobFate, Provider,
    RetryAfter,
};

/// The sandbox failed to start or was misconfigured.
#[derive(Debug, thiserror::Error)]
pub enum FakesError {
    /// A `--fault` spec did not parse.
    #[error("bad fault spec `{spec}`: {reason}")]
    BadFault {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("bad fakes setting: {0}")]
    Config(String),
    /// ffmpeg is missing or failed to make the media.
    #[error("fakes media: {0}")]
    Media(String),
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How long simulated jobs take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LatencyProfile {
    /// Jobs are complete at the first status poll; speech answers at once.
    None,
    /// Every job completes within about a second.
    #[default]
    Fast,
    /// The providers' typical times from PROVIDERS.md (seconds for speech and stills, minutes for video).
    Realistic,
}

/// The kind of simulated job, for latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A Fal Flux still.
    FalImage,
    /// Kling image-to-video on Fal, of this many output seconds.
    FalImageToVideo {
        /// Output seconds.
        seconds: u32,
    },
    /// Sync lip-sync on Fal.
    FalLipSync {
        /// Model tier.
        tier: LipSyncTier,
    },
    /// Kling AI Avatar on Fal.
    FalAvatar,
    /// Fal `flux-lora-fast-training`.
    FalTraining,
    /// Kling's official image2video.
    KlingImageToVideo {
        /// Output seconds.
        seconds: u32,
        /// `mode: "pro"`.
        pro: bool,
    },
    /// Sync Labs' direct lip-sync.
    SyncLipSync {
        /// Model tier.
        tier: LipSyncTier,
    },
}

/// Lip-sync model tiers (they differ in speed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LipSyncTier {
    /// lipsync-1.x.
    V1,
    /// lipsync-2.
    V2,
    /// lipsync-2-pro.
    Pro,
    /// sync-3.
    V3,
}

/// Time a job spends queued, then running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobLatency {
    /// In the queue (Fal `IN_QUEUE`, Kling `submitted`, Sync `PENDING`).
    pub queued: Duration,
    /// Running (Fal `IN_PROGRESS`, Kling `processing`, Sync `PROCESSING`).
    pub running: Duration,
}

impl JobLatency {
    /// Submit to completion.
    pub fn total(&self) -> Duration {
        self.queued + self.running
    }
}

/// The keys the fakes accept. A provider whose key is unset accepts any non-empty key (and, for Kling, any
/// well-formed, unexpired HS256 token; its signature cannot be checked without the secret).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FakeKeys {
    /// `FAL_KEY`.
    pub fal: Option<String>,
    /// `ELEVENLABS_API_KEY`.
    pub elevenlabs: Option<String>,
    /// `KLING_ACCESS_KEY` (the JWT `iss`).
    pub kling_access_key: Option<String>,
    /// `KLING_SECRET_KEY` (the JWT HMAC key).
    pub kling_secret_key: Option<String>,
    /// `SYNCLABS_API_KEY`.
    pub synclabs: Option<String>,
}

impl fmt::Debug for FakeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |k: &Option<String>| if k.is_some() { "set" } else { "unset" };
        f.debug_struct("FakeKeys")
            .field("fal", &s(&self.fal))
            .field("elevenlabs", &s(&self.elevenlabs))
            .field("kling_access_key", &s(&self.kling_access_key))
            .field("kling_secret_key", &s(&self.kling_secret_key))
            .field("synclabs", &s(&self.synclabs))
            .finish()
    }
}

impl FakeKeys {
    /// The keys the clients of `cloud` send: `FAL_KEY`, `ELEVENLABS_API_KEY`, `KLING_ACCESS_KEY`,
    /// `KLING_SECRET_KEY`, `SYNCLABS_API_KEY`.
    pub fn configured(cloud: &crate::providers::cloud::CloudConfig) -> Self {
        let key = |s: &Option<crate::providers::cloud::Secret>| {
            s.as_ref().map(|k| k.expose().to_string())
        };
        Self {
            fal: key(&cloud.fal_key),
            elevenlabs: key(&cloud.elevenlabs_key),
            kling_access_key: key(&cloud.kling_access),
            kling_secret_key: key(&cloud.kling_secret),
            synclabs: key(&cloud.sync_key),
        }
    }
}

/// What happens when a Kling `external_task_id` is reused (unverified upstream, so configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// 400 with code 1201.
    #[default]
    Reject,
    /// Answer with the existing task (no new job).
    ReturnExisting,
}

/// Everything a fake server needs.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Where to listen; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Job latency profile.
    pub latency: LatencyProfile,
    /// Multiplies every latency.
    pub time_scale: f64,
    /// Faults active from the start.
    pub faults: Vec<FaultSpec>,
    /// Accepted keys.
    pub keys: FakeKeys,
    /// Reused Kling `external_task_id`.
    pub kling_duplicate_external_id: DuplicatePolicy,
    /// ElevenLabs voice ids accepted besides the built-in ones (`ELEVENLABS_VOICE_ID` when read from env).
    pub extra_voices: Vec<String>,
    /// Fetch http(s) input URLs (best effort, 30 s, 256 MiB cap) to measure their duration and show their
    /// frames; our own `/__media` URLs, `data:` URIs and uploads are always read.
    pub fetch_remote_inputs: bool,
    /// Which face photos a LoRA URL (or the SHA-256 of its content) stands for (`--lora-face`).
    pub lora_faces: Vec<LoraFace>,
    /// Faces of nobody in particular, shown by `identity-drift` when only one person is mapped (`--other-face`).
    pub other_faces: Vec<std::path::PathBuf>,
    /// The face engine's models folder (finds the face in each photo; without it the middle of the photo is kept).
    pub face_models: std::path::PathBuf,
    /// Serve pre-made media (`--premade-media`): each kind of output made once and marked per job, clips flat
    /// grey at 1280×720-ish with every frame a keyframe; for benchmarks of devatar itself.
    pub premade_media: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency: LatencyProfile::Fast,
            time_scale: 1.0,
            faults: Vec::new(),
            keys: FakeKeys::default(),
            kling_duplicate_external_id: DuplicatePolicy::Reject,
            extra_voices: Vec::new(),
            fetch_remote_inputs: true,
            lora_faces: Vec::new(),
            other_faces: Vec::new(),
            face_models: crate::face::DEFAULT_MODELS_DIR.into(),
            premade_media: false,
        }
    }
}

impl FakeConfig {
    /// Defaults plus the keys (and `ELEVENLABS_VOICE_ID`) of the configuration.
    pub fn configured(cloud: &crate::providers::cloud::CloudConfig) -> Self {
        Self {
            keys: FakeKeys::configured(cloud),
            extra_voices: cloud.default_voice.clone().into_iter().collect(),
            ..Self::default()
        }
    }

    /// [`FakeConfig::configured`] with the command-line settings applied.
    pub fn from_args(
        args: &FakesArgs,
        cloud: &crate::providers::cloud::CloudConfig,
    ) -> Result<Self, FakesError> {
        let cfg = Self {
            bind: args.bind,
            latency: args.latency,
            time_scale: args.time_scale,
            faults: args.faults.clone(),
            lora_faces: args.lora_faces.clone(),
            other_faces: args.other_faces.clone(),
            premade_media: args.premade_media,
            ..Self::configured(cloud)
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The same config with these keys (for tests that must not touch the environment).
    pub fn with_keys(mut self, keys: FakeKeys) -> Self {
        self.keys = keys;
        self
    }

    /// The same config with this latency profile and time scale.
    pub fn with_latency(mut self, latency: LatencyProfile, time_scale: f64) -> Self {
        self.latency = latency;
        self.time_scale = time_scale;
        self
    }

    /// The same config with these faults.
    pub fn with_faults(mut self, faults: Vec<FaultSpec>) -> Self {
        self.faults = faults;
        self
    }

    /// The same config with these face mappings and other faces.
    pub fn with_faces(
        mut self,
        lora_faces: Vec<LoraFace>,
        other_faces: Vec<std::path::PathBuf>,
    ) -> Self {
        self.lora_faces = lora_faces;
        self.other_faces = other_faces;
        self
    }

    /// The same config finding faces with the models in `dir`.
    pub fn with_face_models(mut self, dir: std::path::PathBuf) -> Self {
        self.face_models = dir;
        self
    }

    fn validate(&self) -> Result<(), FakesError> {
        if !self.time_scale.is_finite() || self.time_scale < 0.0 || self.time_scale > 1000.0 {
            return Err(FakesError::Config(format!(
                "time scale must be between 0 and 1000, got {}",
                self.time_scale
            )));
        }
        Ok(())
    }

    fn scaled(&self, secs: f64) -> Duration {
        Duration::from_secs_f64((secs * self.time_scale).max(0.0))
    }

    /// How long a job of this kind stays queued and running under the configured profile and scale.
    pub fn job_latency(&self, kind: JobKind) -> JobLatency {
        let (q, r) = match self.latency {
            LatencyProfile::None => (0.0, 0.0),
            LatencyProfile::Fast => match kind {
                JobKind::FalImage => (0.1, 0.2),
                JobKind::FalImageToVideo { .. } | JobKind::KlingImageToVideo { .. } => (0.1, 0.5),
                JobKind::FalLipSync { .. } | JobKind::SyncLipSync { .. } | JobKind::FalAvatar => {
                    (0.1, 0.6)
                }
                JobKind::FalTraining => (0.2, 1.0),
            },
            LatencyProfile::Realistic => match kind {
                JobKind::FalImage => (2.0, 12.0),
                JobKind::FalImageToVideo { seconds } => (10.0, 20.0 * seconds as f64),
                JobKind::FalAvatar => (10.0, 150.0),
                // Fast training: a short queue, then a few minutes at the default steps.
                JobKind::FalTraining => (20.0, 240.0),
                JobKind::KlingImageToVideo { seconds, pro } => {
                    (30.0, if seconds > 5 || pro { 330.0 } else { 210.0 })
                }
                JobKind::FalLipSync { tier } | JobKind::SyncLipSync { tier } => {
                    let q = if matches!(kind, JobKind::SyncLipSync { .. }) {
                        10.0
                    } else {
                        5.0
                    };
                    let r = match tier {
                        LipSyncTier::V1 => 40.0,
                        LipSyncTier::V2 => 90.0,
                        LipSyncTier::Pro => 180.0,
                        LipSyncTier::V3 => 600.0,
                    };
                    (q, r)
                }
            },
        };
        JobLatency {
            queued: self.scaled(q),
            running: self.scaled(r),
        }
    }

    /// The configured job times in seconds (queued + running, after scaling) of the jobs a render submits,
    /// as `GET /__latency` reports them: what a benchmark needs to compute its critical-path bound.
    pub fn latency_table(&self) -> serde_json::Value {
        let secs = |kind| self.job_latency(kind).total().as_secs_f64();
        let tts0 = self.tts_latency(0).as_secs_f64();
        let tts1000 = self.tts_latency(1000).as_secs_f64();
        serde_json::json!({
            "falImage": secs(JobKind::FalImage),
            "falImageToVideo5s": secs(JobKind::FalImageToVideo { seconds: 5 }),
            "falImageToVideo10s": secs(JobKind::FalImageToVideo { seconds: 10 }),
            "falLipSync2": secs(JobKind::FalLipSync { tier: LipSyncTier::V2 }),
            "falAvatar": secs(JobKind::FalAvatar),
            "falTraining": secs(JobKind::FalTraining),
            "klingVideo5s": secs(JobKind::KlingImageToVideo { seconds: 5, pro: false }),
            "klingVideo10s": secs(JobKind::KlingImageToVideo { seconds: 10, pro: false }),
            "syncLipSync2": secs(JobKind::SyncLipSync { tier: LipSyncTier::V2 }),
            "ttsBase": tts0,
            "ttsPerChar": (tts1000 - tts0) / 1000.0,
        })
    }

    /// How long a speech request takes before its answer.
    pub fn tts_latency(&self, characters: usize) -> Duration {
        match self.latency {
            LatencyProfile::None => Duration::ZERO,
            LatencyProfile::Fast => self.scaled(0.02),
            LatencyProfile::Realistic => self.scaled(0.3 + 0.005 * characters as f64),
        }
    }
}

/// Where a simulated job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Queued,
    Running,
    Done,
}

/// A job's timeline, computed from elapsed time (no background tasks).
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    created: Instant,
    latency: JobLatency,
    stalled: bool,
}

impl Clock {
    pub(crate) fn new(latency: JobLatency, stalled: bool) -> Self {
        Self {
            created: Instant::now(),
            latency,
            stalled,
        }
    }

    /// Time left until the job is done; `None` for a stalled job, which never is.
    pub(crate) fn done_in(&self) -> Option<Duration> {
        (!self.stalled).then(|| self.latency.total().saturating_sub(self.created.elapsed()))
    }

    pub(crate) fn phase(&self) -> Phase {
        if self.stalled {
            return Phase::Queued;
        }
        let e = self.created.elapsed();
        if e >= self.latency.total() {
            Phase::Done
        } else if e >= self.latency.queued {
            Phase::Running
        } else {
            Phase::Queued
        }
    }

    /// The share of its running time a job has run (0 while queued, 1 when done).
    pub(crate) fn run_fraction(&self) -> f64 {
        let running = self.latency.running.as_secs_f64();
        if running <= 0.0 {
            return if self.phase() == Phase::Done {
                1.0
            } else {
                0.0
            };
        }
        (self.run_secs() / running).clamp(0.0, 1.0)
    }

    /// Seconds spent running so far.
    pub(crate) fn run_secs(&self) -> f64 {
        self.created
            .elapsed()
            .saturating_sub(self.latency.queued)
            .min(self.latency.running)
            .as_secs_f64()
    }
}

/// `devatar fakes`: run the provider sandbox.
#[derive(clap::Args, Debug, Clone)]
#[command(after_long_help = FAULT_HELP)]
pub struct FakesArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub bind: SocketAddr,
    /// Job latency: none (done at the first poll), fast (under a second), realistic (typical provider times).
    #[arg(long, value_enum, default_value_t = LatencyProfile::Fast)]
    pub latency: LatencyProfile,
    /// Multiplies every latency (0.1 = ten times faster).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Inject a fault, e.g. `kling.submit=429x2`, `sync.status=REJECTED`, `media=truncate`, `identity-drift:1`
    /// (repeatable).
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<FaultSpec>,
    /// The face photos a LoRA stands for: Flux images with that LoRA (matched by URL, or by the SHA-256 of its
    /// content) show one of them, cropped per seed (repeatable).
    #[arg(long = "lora-face", value_name = "URL_OR_SHA256=PHOTO[,PHOTO…]")]
    pub lora_faces: Vec<LoraFace>,
    /// A face photo of somebody else, shown by `identity-drift` when only one person is mapped (repeatable).
    #[arg(long = "other-face", value_name = "PHOTO")]
    pub other_faces: Vec<std::path::PathBuf>,
    /// Serve pre-made media: each kind of still, speech or clip is made once and every job gets a copy marked
    /// as its own (clips flat grey, twice the usual size, every frame a keyframe), so the sandbox does almost
    /// no media work. For benchmarks of devatar itself (`bench/scenes.sh`); tests that look at the media
    /// leave it off.
    #[arg(long)]
    pub premade_media: bool,
}

const FAULT_HELP: &str = "\
Fault specs: TARGET=ACTION[xCOUNT], TARGET = PROVIDER.ENDPOINT (elevenlabs|fal|kling|sync|* . \
tts|voices|submit|status|result|cancel|*) or media. COUNT limits the rule to that many calls (jobs, for fates). Errors queue: one per call, in the order given; \
outcome fates likewise one per job.
Per call: NNN (HTTP error in the API's own shape; 429 = rate limit), 429slot (concurrency), suffix \
retry-after=S or retry-after-date=S, quota, NNNN (Kling code), drop, slow=S, trickle=S, malformed, html, \
html502, empty, wrong_content_type; fal.submit=alias, sync.submit=outcome_unknown|audio_too_long, \
kling.submit=dup_existing|dup_reject, fal.cancel=ignored; media=truncate|html|json|expired|ignore_range|416|\
redirect|no_length|oversize.
Job fates (on .status/.result, fixed at submit): stall, no_output (COMPLETED_no_url, succeed_no_videos), error, \
output_url, media_url_only, legacy_url_only, url_object, url_null, extra_fields, numeric_duration, regress, \
training_failed (Fal training: the result answers 422 \"Training failed\"), or a \
literal final status such as REJECTED, FAILED, CANCELED, TIMED_OUT, COMPLETE, failed.
Faces (with --lora-face): identity-drift:N (= fal.submit=identity-driftxN) shows another person in the next N \
Flux images with a mapped LoRA.
Examples: --fault kling.submit=429x2 --fault sync.status=REJECTED --fault '*.submit=429retry-after=2'";

/// A running fake server. Dropping it stops the server.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`: the base URL for every provider.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The current call counts (as `GET /__stats`).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.shared.stats()
    }

    /// Zeroes the counts and forgets every job (as `POST /__reset`); faults stay.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Replaces the fault rules.
    pub fn set_faults(&self, faults: &[FaultSpec]) {
        self.shared.set_faults(faults);
    }

    /// Parses and adds one fault rule.
    pub fn add_fault(&self, spec: &str) -> Result<(), FakesError> {
        self.shared.add_fault(spec.parse()?);
        Ok(())
    }

    /// Replaces the known faces (as `POST /__faces`), or adds to them with `append`; the photos are read now.
    pub async fn set_faces(
        &self,
        lora_faces: Vec<LoraFace>,
        other_faces: Vec<std::path::PathBuf>,
        append: bool,
    ) -> Result<(), FakesError> {
        self.shared.set_faces(lora_faces, other_faces, append).await
    }

    /// Stops accepting, lets open requests finish for up to a second, then stops.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Makes the media, binds `config.bind` and serves in the background.
pub async fn spawn(config: FakeConfig) -> Result<FakeServer, FakesError> {
    config.validate()?;
    let media = media::MediaStore::new()
        .await?
        .with_premade(config.premade_media);
    let (loras, others, models) = (
        config.lora_faces.clone(),
        config.other_faces.clone(),
        config.face_models.clone(),
    );
    let faces = tokio::task::spawn_blocking(move || faces::load(&loras, &others, &models))
        .await
        .map_err(|e| FakesError::Config(format!("reading face photos stopped: {e}")))??;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| FakesError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| FakesError::Bind {
        addr: config.bind,
        source,
    })?;
    let shared = Arc::new(server::Shared::new(config, addr, media, faces));
    let app = server::router(shared.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(
            server::KillableListener(listener),
            app.into_make_service_with_connect_info::<server::ConnHandle>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!("fakes server stopped: {e}");
        }
    });
    Ok(FakeServer {
        addr,
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// `devatar fakes`: serves until Ctrl-C.
pub async fn run(
    args: FakesArgs,
    cloud: &crate::providers::cloud::CloudConfig,
    face: &crate::face::FaceSettings,
) -> anyhow::Result<()> {
    let config = FakeConfig::from_args(&args, cloud)?.with_face_models(face.models.clone());
    let unset: Vec<&str> = [
        ("FAL_KEY", config.keys.fal.is_none()),
        ("ELEVENLABS_API_KEY", config.keys.elevenlabs.is_none()),
        (
            "KLING_ACCESS_KEY/KLING_SECRET_KEY",
            config.keys.kling_access_key.is_none() || config.keys.kling_secret_key.is_none(),
        ),
        ("SYNCLABS_API_KEY", config.keys.synclabs.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, unset)| unset.then_some(name))
    .collect();
    let latency = config.latency;
    let scale = config.time_scale;
    let faults: Vec<String> = config.faults.iter().map(|f| f.to_string()).collect();
    let mapped = config.lora_faces.len();
    let server = spawn(config).await?;
    eprintln!("devatar fakes listening on {}", server.base_url());
    eprintln!(
        "  latency {latency:?} x{scale}; faults: {}",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(", ")
        }
    );
    if !unset.is_empty() {
        eprintln!(
            "  not set, so any non-empty key is accepted: {}",
            unset.join(", ")
        );
    }
    if mapped > 0 {
        eprintln!("  {mapped} LoRA(s) stand for faces (GET /__faces)");
    }
    eprintln!(
        "  point ELEVENLABS_BASE_URL, FAL_BASE_URL, FAL_STORAGE_BASE_URL, KLING_BASE_URL and SYNCLABS_BASE_URL at it; stats at /__stats"
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
