//! Paid providers over HTTP: ElevenLabs speech, Fal (Flux + LoRA stills, Kling video, Sync lip-sync), the Kling
//! official API and Sync Labs. Each client keeps its wire types private; all share [`http`] and the job ledger.
//!
//! Configuration comes from the guide's environment variables; base URLs can point at `devatar fakes`.

pub mod elevenlabs;
pub mod failover;
pub mod fal;
pub mod http;
pub mod kling;
pub mod synclabs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::providers::PriceTable;
use crate::providers::{ImageToVideo, LipSync, Providers, local};
use failover::Failover;

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The key, for building one request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which route the video and lip-sync steps take when both a direct key and `FAL_KEY` are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Direct when its own keys are set, else Fal-hosted.
    Auto,
    /// Always the direct API.
    Direct,
    /// Always the Fal-hosted model.
    Fal,
}

/// The Fal trainer a digital twin's LoRA is trained with (`FAL_LORA_TRAINER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoraTrainer {
    /// `fal-ai/flux-lora-fast-training` (PROVIDERS.md §2.8; the default).
    #[default]
    Fast,
    /// `fal-ai/flux-lora-portrait-trainer`, tuned for portraits (same queue shape; its input names the trigger
    /// `trigger_phrase`).
    Portrait,
}

impl LoraTrainer {
    /// The Fal model id.
    pub fn model(self) -> &'static str {
        match self {
            Self::Fast => "fal-ai/flux-lora-fast-training",
            Self::Portrait => "fal-ai/flux-lora-portrait-trainer",
        }
    }
}

/// Every cloud setting (built by [`crate::config`]).
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// `ELEVENLABS_API_KEY`.
    pub elevenlabs_key: Option<Secret>,
    /// `ELEVENLABS_BASE_URL` (default `https://api.elevenlabs.io`).
    pub elevenlabs_base: String,
    /// `ELEVENLABS_VOICE_ID`: the voice when an identity has none.
    pub default_voice: Option<String>,
    /// `FAL_KEY`.
    pub fal_key: Option<Secret>,
    /// `FAL_BASE_URL`: the queue host (default `https://queue.fal.run`).
    pub fal_base: String,
    /// `FAL_STORAGE_BASE_URL`: the storage upload host (default `https://rest.fal.ai`).
    pub fal_storage_base: String,
    /// `FAL_AVATAR_MODEL`: the one-step talking avatar of `fast` scenes (default Kling AI Avatar v2 standard).
    pub fal_avatar_model: String,
    /// `KLING_ACCESS_KEY`.
    pub kling_access: Option<Secret>,
    /// `KLING_SECRET_KEY`.
    pub kling_secret: Option<Secret>,
    /// `KLING_BASE_URL` (default `https://api-singapore.klingai.com`).
    pub kling_base: String,
    /// `KLING_MODEL` (default `kling-v2-1`).
    pub kling_model: String,
    /// `KLING_MODE`: `std` (default) or `pro`.
    pub kling_mode: String,
    /// `SYNCLABS_API_KEY`.
    pub sync_key: Option<Secret>,
    /// `SYNCLABS_BASE_URL` (default `https://api.sync.so`).
    pub sync_base: String,
    /// `DEVATAR_VIDEO_ROUTE` / `DEVATAR_LIPSYNC_ROUTE`: `auto`, `direct` or `fal`.
    pub video_route: Route,
    /// See `video_route`.
    pub lipsync_route: Route,
    /// `DEVATAR_FAL_RESUBMIT=1`: resubmit a Fal job whose submit outcome is unknown instead of parking it.
    pub fal_resubmit: bool,
    /// `FAL_LORA_TRAINER`: `fast` (default) or `portrait`.
    pub lora_trainer: LoraTrainer,
    /// `DEVATAR_FAILOVER` (default on; `0` turns it off): with route `auto` and `FAL_KEY` set, a direct Kling or
    /// Sync that keeps failing before any job was accepted hands the step to its Fal-hosted model.
    pub failover: bool,
    /// `DEVATAR_ALLOW_PRIVATE_URLS=1`: provider downloads may reach private addresses (tests, local fakes).
    pub allow_private_urls: bool,
    /// `DEVATAR_PROVIDER_TIME_SCALE`: multiplies poll intervals, deadlines and backoff (default 1).
    pub time_scale: f64,
    /// Prices for cost records.
    pub prices: PriceTable,
    /// The face engine's settings: a headshot framed in standard mode is framed around its face.
    pub face: Option<crate::face::FaceSettings>,
    /// `DEVATAR_PUBLIC_URL`: the base URL at which providers reach this process (job webhooks).
    pub public_url: Option<String>,
    /// `DEVATAR_CALLBACK_LISTEN`: an address on which a command that runs provider jobs starts a small listener
    /// for job webhooks (its address is the callback base unless `DEVATAR_PUBLIC_URL` is set).
    pub callback_listen: Option<std::net::SocketAddr>,
    /// The live webhook registry, attached at start-up when a callback base is known (never from the
    /// environment directly); `None` sends no callback URLs and only polls.
    pub hooks: Option<crate::providers::hooks::JobHooks>,
}

/// `FAL_AVATAR_MODEL`, which becomes part of request URLs: a Fal model id (`owner/app[/path…]` of lowercase
/// letters, digits, `-`, `.`, `_`) or, when unset or malformed (with a warning), the default.
/// A malformed value adds a warning to `warnings`.
pub fn avatar_model(value: Option<&str>, warnings: &mut Vec<String>) -> String {
    match value {
        Some(v) if is_model_id(v) => v.to_string(),
        Some(_) => {
            warnings.push(format!(
                "FAL_AVATAR_MODEL is not a Fal model id (owner/app/…); using {}",
                fal::AVATAR_DEFAULT
            ));
            fal::AVATAR_DEFAULT.into()
        }
        None => fal::AVATAR_DEFAULT.into(),
    }
}

fn is_model_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')
                })
        })
}

impl CloudConfig {
    /// True when any paid provider is configured.
    pub fn any(&self) -> bool {
        self.elevenlabs_key.is_some()
            || self.fal_key.is_some()
            || (self.kling_access.is_some() && self.kling_secret.is_some())
            || self.sync_key.is_some()
    }
}

/// `--providers`: which set a render uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderChoice {
    /// Offline providers only.
    Local,
    /// Cloud where keys are set, local otherwise.
    Auto,
    /// Like `Auto`, but at least one cloud provider must be configured.
    Cloud,
}

impl ProviderChoice {
    /// Parses `local`, `auto` or `cloud`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "local" => Some(Self::Local),
            "auto" => Some(Self::Auto),
            "cloud" => Some(Self::Cloud),
            _ => None,
        }
    }
}

/// The providers for `choice`: per step, the cloud client whose keys are set, else the offline one.
/// Routing for video and lip-sync: the direct API when its own keys are set, else the Fal-hosted model.
pub fn providers(
    cfg: &CloudConfig,
    choice: ProviderChoice,
    local: Providers,
) -> Result<Providers, String> {
    let mut p = local;
    let local_lipsync = p.lipsync.clone();
    if choice == ProviderChoice::Local {
        return Ok(p);
    }
    if choice == ProviderChoice::Cloud && !cfg.any() {
        return Err(
            "--providers cloud needs at least one provider key (FAL_KEY, ELEVENLABS_API_KEY, \
                    KLING_ACCESS_KEY + KLING_SECRET_KEY or SYNCLABS_API_KEY)"
                .into(),
        );
    }
    if let Some(key) = &cfg.elevenlabs_key {
        p.speech = Arc::new(elevenlabs::ElevenLabsSpeech::new(cfg, key.clone()));
    }
    let fal = cfg
        .fal_key
        .clone()
        .map(|k| fal::FalQueue::new(&cfg.fal_base, k, cfg.fal_resubmit, http::Net::of(cfg)));
    if let Some(q) = &fal {
        let storage =
            fal::FalStorage::new(&cfg.fal_storage_base, q.key().clone(), http::Net::of(cfg));
        let flux = fal::FalFlux::new(q.clone(), cfg.prices.clone()).with_storage(storage);
        p.image = Arc::new(match &cfg.face {
            Some(face) => {
                flux.framing_headshots_with(local::PortraitStill::following_faces(face.clone()))
            }
            None => flux,
        });
        p.avatar = Some(Arc::new(fal::FalAvatar::new(
            q.clone(),
            cfg.fal_avatar_model.clone(),
            cfg.prices.clone(),
        )));
    }
    let kling_direct = match (&cfg.kling_access, &cfg.kling_secret) {
        (Some(a), Some(s)) => Some(kling::KlingVideo::new(cfg, a.clone(), s.clone())),
        _ => None,
    };
    let fal_video = |q: &fal::FalQueue| -> Arc<dyn ImageToVideo> {
        Arc::new(fal::FalKling::new(q.clone(), cfg.prices.clone()))
    };
    p.video = match (cfg.video_route, kling_direct, &fal) {
        (Route::Auto, Some(k), Some(q)) if cfg.failover => {
            let tag = k.ledger_tag();
            Arc::new(Failover::new(
                Arc::new(k) as Arc<dyn ImageToVideo>,
                tag,
                fal_video(q),
            ))
        }
        (Route::Auto | Route::Direct, Some(k), _) => Arc::new(k),
        (Route::Auto | Route::Fal, _, Some(q)) => fal_video(q),
        _ => Arc::new(local::FfmpegAnimation),
    };
    let sync_direct = cfg
        .sync_key
        .clone()
        .map(|k| synclabs::SyncLipSync::new(cfg, k));
    let fal_lipsync = |q: &fal::FalQueue| -> Arc<dyn LipSync> {
        Arc::new(fal::FalSync::new(q.clone(), cfg.prices.clone()))
    };
    p.lipsync = match (cfg.lipsync_route, sync_direct, &fal) {
        (Route::Auto, Some(s), Some(q)) if cfg.failover => Arc::new(Failover::new(
            Arc::new(s) as Arc<dyn LipSync>,
            synclabs::PROVIDER,
            fal_lipsync(q),
        )),
        (Route::Auto | Route::Direct, Some(s), _) => Arc::new(s),
        (Route::Auto | Route::Fal, _, Some(q)) => fal_lipsync(q),
        _ => local_lipsync,
    };
    Ok(p)
}

/// Fits a provider's lip-synced clip to exactly speech + tail with the original audio (the crossfade needs
/// the tail, and a provider clip may end early or late).
pub(crate) async fn fit_to_speech(
    synced: std::path::PathBuf,
    req: &crate::providers::LipSyncRequest,
    work_dir: &std::path::Path,
    job: &crate::providers::JobCtx,
) -> Result<std::path::PathBuf, crate::providers::ProviderError> {
    use crate::providers::LipSync;
    let fitted = work_dir.join("fitted");
    tokio::fs::create_dir_all(&fitted).await?;
    local::LocalMux
        .apply(
            &crate::providers::LipSyncRequest {
                video: synced,
                ..req.clone()
            },
            &fitted,
            job,
        )
        .await
}

/// The concurrency pool a provider id counts against (each paid service limits jobs per account, whatever
/// the model); `None` for offline providers.
pub fn concurrency_pool(provider: &str) -> Option<&'static str> {
    match provider {
        elevenlabs::PROVIDER => Some("elevenlabs"),
        kling::PROVIDER => Some("kling"),
        synclabs::PROVIDER => Some("sync"),
        p if p.starts_with("fal-ai/") => Some("fal"),
        _ => None,
    }
}

/// The providers `auto` picks from `cfg` (cloud where keys are set, `local` otherwise).
pub fn configured(cfg: &CloudConfig, local: Providers) -> Providers {
    providers(cfg, ProviderChoice::Auto, local.clone()).unwrap_or(local)
}

/// A polling schedule: first wait, interval growing by `growth` up to `cap`, a warning time and a deadline,
/// all scaled by the [`http::Net`] time scale.
#[derive(Debug, Clone)]
pub struct Cadence {
    next: Duration,
    growth: f64,
    cap: Duration,
    warn_at: Duration,
    deadline: Duration,
    started: Instant,
    warned: bool,
    wake: Option<Arc<Notify>>,
    last: Instant,
    woken: u32,
}

/// The least time between two status calls when webhooks keep waking a poll loop (forged calls cannot turn it
/// into a busy loop).
const MIN_WOKEN_GAP: Duration = Duration::from_millis(100);

impl Cadence {
    /// A schedule (unscaled values; scaling is applied here).
    pub fn new(
        net: &http::Net,
        first: Duration,
        growth: f64,
        cap: Duration,
        warn_at: Duration,
        deadline: Duration,
    ) -> Self {
        Self {
            next: net.scaled(first),
            growth,
            cap: net.scaled(cap),
            warn_at: net.scaled(warn_at),
            deadline: net.scaled(deadline),
            started: Instant::now(),
            warned: false,
            wake: None,
            last: Instant::now(),
            woken: 0,
        }
    }

    /// The same schedule, cut short whenever `hook`'s webhook arrives (the next status call is made at once).
    pub fn woken_by(mut self, hook: Option<&crate::providers::hooks::Hook>) -> Self {
        self.wake = hook.map(crate::providers::hooks::Hook::notify);
        self
    }

    /// How many waits a webhook cut short.
    pub fn woken(&self) -> u32 {
        self.woken
    }

    /// Sleeps until the next poll; `Err` when the deadline has passed. Returns true once, when the
    /// warning time is crossed.
    pub async fn wait(&mut self) -> Result<bool, Duration> {
        let left = self.remaining();
        if left.is_zero() {
            return Err(self.deadline);
        }
        let due = tokio::time::Instant::now() + self.next.min(left);
        match &self.wake {
            Some(wake) => {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = wake.notified() => {
                        self.woken += 1;
                        // Never later than the timer would have been, never sooner than the gap allows.
                        let earliest = tokio::time::Instant::from_std(self.last + MIN_WOKEN_GAP);
                        tokio::time::sleep_until(earliest.min(due)).await;
                    }
                }
            }
            None => tokio::time::sleep_until(due).await,
        }
        self.last = Instant::now();
        self.next = self
            .next
            .mul_f64(self.growth)
            .min(self.cap)
            .max(Duration::from_millis(5));
        self.tick()
    }

    /// Like [`Cadence::wait`] without the sleep, for long polls (the provider holds the request until the job
    /// changes): `Err` once the deadline has passed, true once when the warning time is crossed.
    pub fn tick(&mut self) -> Result<bool, Duration> {
        if self.remaining().is_zero() {
            return Err(self.deadline);
        }
        if !self.warned && self.started.elapsed() >= self.warn_at {
            self.warned = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_sub(self.started.elapsed())
    }

    /// PROVIDERS.md §2.7 for Flux stills: first look at 1 s, then ×1.5 up to 5 s; warn at 2 min, give up at 10.
    pub fn still(net: &http::Net) -> Self {
        Self::new(
            net,
            Duration::from_secs(1),
            1.5,
            Duration::from_secs(5),
            Duration::from_secs(120),
            Duration::from_secs(600),
        )
    }

    /// PROVIDERS.md §2.7 for Kling image-to-video and AI Avatar: first look at 10 s, then every 5 s (the table's
    /// interval, kept flat: a finished clip is seen within 5 s), warning at `warn_at`, giving up at `deadline`.
    pub fn video(net: &http::Net, warn_at: Duration, deadline: Duration) -> Self {
        Self::new(
            net,
            Duration::from_secs(10),
            1.0,
            Duration::from_secs(5),
            warn_at,
            deadline,
        )
    }

    /// PROVIDERS.md §2.7 for lip-sync: first look at 10 s, then every 10 s (flat, under the 20 s cap) where the
    /// provider does not long-poll; warn at 10 minutes; give up after 600 s + 5 s per second of speech (the Sync
    /// formula of §4.7).
    pub fn lipsync(net: &http::Net, speech_seconds: f64) -> Self {
        Self::new(
            net,
            Duration::from_secs(10),
            1.0,
            Duration::from_secs(10),
            Duration::from_secs(600),
            Duration::from_secs_f64(600.0 + 5.0 * speech_seconds),
        )
    }

    /// PROVIDERS.md §2.8 for LoRA training (minutes): first look at 10 s, then every 10–15 s; warn at 20 minutes,
    /// give up after an hour.
    pub fn training(net: &http::Net) -> Self {
        Self::new(
            net,
            Duration::from_secs(10),
            1.2,
            Duration::from_secs(15),
            Duration::from_secs(1200),
            Duration::from_secs(3600),
        )
    }

    /// Time since the schedule began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avatar_model_must_be_a_fal_model_id() {
        for good in [
            "fal-ai/kling-video/ai-avatar/v2/pro",
            "fal-ai/kling-video/v1/standard/ai-avatar",
        ] {
            assert_eq!(avatar_model(Some(good), &mut Vec::new()), good);
        }
        for bad in [
            "fal-ai",
            "fal-ai/../x",
            "https://evil/x",
            "fal-ai/kling video",
            "Fal-AI/X",
            "a//b",
        ] {
            let mut warnings = Vec::new();
            assert_eq!(
                avatar_model(Some(bad), &mut warnings),
                fal::AVATAR_DEFAULT,
                "{bad}"
            );
            assert_eq!(warnings.len(), 1);
        }
        assert_eq!(avatar_model(None, &mut Vec::new()), fal::AVATAR_DEFAULT);
    }
}
