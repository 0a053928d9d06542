//! One typed configuration, built once at start-up and handed down explicitly.
//!
//! Values come from command-line flags, then the environment, then an optional TOML config file (`--config FILE`
//! or `DEVATAR_CONFIG`; its keys are the variable names below), then defaults. Every value is validated here;
//! an error names the variable. Nothing else in devatar reads the environment (see [`source`]).

pub mod source;

use std::path::PathBuf;
use std::time::Duration;

pub use source::{Layers, executable_search_path};

use crate::costs::PriceTable;
use crate::face::FaceSettings;
use crate::pipeline::limits::Caps;
use crate::providers::Providers;
use crate::providers::cloud::{CloudConfig, LoraTrainer, ProviderChoice, Route, Secret};
use crate::providers::local::{DEFAULT_PIPER_DIR, EspeakSpeech, PiperSpeech};
use crate::storage::objects::MediaConfig;

/// The whole configuration of one devatar process.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: an external database; `None` means SQLite inside the data folder.
    pub database_url: Option<String>,
    /// `DEVATAR_LOG`: the stderr log filter (default `warn`).
    pub log_filter: String,
    /// `DEVATAR_ADMIN_PASSWORD`: the admin password `serve` stores (hashed) at start-up.
    pub admin_password: Option<Secret>,
    /// `DEVATAR_ALLOW_PRIVATE_URLS=1`: user-supplied URLs may reach private/loopback addresses (development
    /// and tests only).
    pub allow_private_urls: bool,
    /// `DEVATAR_TRUSTED_PROXY_HEADER`: the request header a trusted reverse proxy sets to the client's address
    /// (e.g. `x-forwarded-for`, lower-cased); login pacing uses its right-most address. Unset: the peer address.
    pub trusted_proxy_header: Option<String>,
    /// `DEVATAR_ESPEAK_VOICE`: the offline voice (default `en-us`).
    pub espeak_voice: String,
    /// `DEVATAR_ESPEAK_RATE`: the offline voice's words per minute, 80–450 (default 165).
    pub espeak_rate: u32,
    /// `DEVEN_LORA_URL`: the default identity's LoRA when no identity sets one (the guide's variable).
    pub default_lora_url: Option<String>,
    /// Paid providers: keys, hosts, routes, prices (`DEVATAR_PRICES`), `ELEVENLABS_VOICE_ID`, time scale.
    pub cloud: CloudConfig,
    /// Media storage: `R2_*` or `DEVATAR_S3_*`, else the local folder; `DEVATAR_PRESIGN_TTL_SECS`.
    pub media: MediaConfig,
    /// `DEVATAR_LEASE_SECS`: how long a run or provider-slot claim lasts without renewal, 1–3600 s (default 15).
    pub lease: Duration,
    /// `DEVATAR_PROVIDER_LIMITS`: jobs in flight per provider account across all workers.
    pub provider_limits: Caps,
    /// `DEVATAR_POLL_MS`: how often an idle worker looks for queued runs, 10–600000 ms (default 500, or 2000
    /// when PostgreSQL notifications wake it).
    pub poll: Option<Duration>,
    /// `DEVATAR_TEST_ABORT_AFTER_STEPS`: crash tests only — SIGKILL the process after this many executed steps.
    pub test_abort_after_steps: Option<usize>,
    /// `DEVATAR_FAILPOINT` (`NAME` or `NAME:N`): crash tests only — SIGKILL the process at that crash point (see
    /// [`crate::failpoint`]).
    pub failpoint: Option<crate::failpoint::Failpoint>,
    /// `DEVATAR_FACE_MODELS` (the face models folder; default `/usr/local/share/devatar/face-models`, independent
    /// of `--data`) and `DEVATAR_FACE_THRESHOLD` (same-person distance, above 0 and below 2; default 0.6).
    pub face: FaceSettings,
    /// `DEVATAR_PIPER_DIR`: where Piper, the neural offline voice, is installed (default
    /// `/usr/local/share/devatar/piper`, independent of `--data`); espeak-ng speaks when it is not there.
    pub piper_dir: PathBuf,
    /// Deferred warnings about values that were replaced by defaults; logged once logging is set up.
    pub warnings: Vec<String>,
}

/// A setting is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that cannot be used.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong (never the value of a secret).
        reason: String,
    },
    /// The config file cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The media storage variables are incomplete or conflicting.
    #[error(transparent)]
    Media(#[from] crate::storage::s3::ConfigError),
}

impl Default for Config {
    /// The defaults: nothing set.
    fn default() -> Self {
        Self::from_layers(&Layers::default()).expect("the defaults are valid")
    }
}

impl Config {
    /// Builds the configuration of this process: `flags` (variable name → value), the environment and the config
    /// file (`config_file`, else `DEVATAR_CONFIG`).
    pub fn load(
        flags: std::collections::BTreeMap<String, String>,
        config_file: Option<&std::path::Path>,
    ) -> Result<Self, ConfigError> {
        Self::from_layers(&Layers::from_process(flags, config_file)?)
    }

    /// Builds a configuration from explicit variables only (tests, embedders).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::from_layers(&Layers::from_pairs(pairs))
    }

    /// Builds and validates the configuration from layered values.
    pub fn from_layers(l: &Layers) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        let lookup = |name: &str| l.raw(name);
        Ok(Self {
            database_url: l.raw("DATABASE_URL"),
            log_filter: l.raw("DEVATAR_LOG").unwrap_or_else(|| "warn".into()),
            admin_password: l.raw("DEVATAR_ADMIN_PASSWORD").map(Secret::new),
            allow_private_urls: flag(l, "DEVATAR_ALLOW_PRIVATE_URLS")?.unwrap_or(false),
            trusted_proxy_header: trusted_proxy_header(l)?,
            espeak_voice: espeak_voice(l)?,
            espeak_rate: number(l, "DEVATAR_ESPEAK_RATE", 80..=450)?.unwrap_or(165),
            default_lora_url: l.raw("DEVEN_LORA_URL"),
            cloud: cloud(l, &mut warnings)?,
            media: MediaConfig::from_lookup(&lookup)?,
            lease: Duration::from_secs(number(l, "DEVATAR_LEASE_SECS", 1..=3600)?.unwrap_or(15)),
            provider_limits: match l.raw("DEVATAR_PROVIDER_LIMITS") {
                Some(spec) => Caps::parse(&spec).map_err(|reason| ConfigError::Invalid {
                    var: "DEVATAR_PROVIDER_LIMITS",
                    reason: reason
                        .trim_start_matches("DEVATAR_PROVIDER_LIMITS: ")
                        .to_string(),
                })?,
                None => Caps::default(),
            },
            poll: number(l, "DEVATAR_POLL_MS", 10..=600_000)?.map(Duration::from_millis),
            test_abort_after_steps: number(l, "DEVATAR_TEST_ABORT_AFTER_STEPS", 0..=1_000_000)?
                .map(|n: u64| n as usize),
            failpoint: failpoint(l)?,
            face: face(l)?,
            piper_dir: l
                .raw("DEVATAR_PIPER_DIR")
                .map_or_else(|| PathBuf::from(DEFAULT_PIPER_DIR), PathBuf::from),
            warnings,
        })
    }

    /// Whether any paid provider key is set.
    pub fn cloud_configured(&self) -> bool {
        self.cloud.any()
    }

    /// The offline providers, speaking with Piper when it is installed (the identity's voice is chosen per scene),
    /// else with the configured espeak-ng voice, and framing headshots around their face.
    pub fn local_providers(&self) -> Providers {
        Providers::local_speaking(self.local_speech(), self.face.clone())
            .with_face_framing(self.face.clone())
    }

    /// The offline voice: Piper when it is installed in `piper_dir`, else espeak-ng (logged).
    pub fn local_speech(&self) -> std::sync::Arc<dyn crate::providers::SpeechSynth> {
        match PiperSpeech::find(&self.piper_dir, None) {
            Some(piper) => std::sync::Arc::new(piper),
            None => {
                tracing::info!(
                    "Piper is not installed in {} (scripts/install-deps.sh installs it): speaking with espeak-ng",
                    self.piper_dir.display()
                );
                std::sync::Arc::new(EspeakSpeech {
                    voice: self.espeak_voice.clone(),
                    rate: self.espeak_rate,
                })
            }
        }
    }

    /// The providers for `choice` (cloud where keys are set, offline otherwise); an error explains why
    /// `cloud` cannot be honoured.
    pub fn providers(&self, choice: ProviderChoice) -> Result<Providers, String> {
        crate::providers::cloud::providers(&self.cloud, choice, self.local_providers())
    }

    /// The providers `auto` picks.
    pub fn configured_providers(&self) -> Providers {
        crate::providers::cloud::configured(&self.cloud, self.local_providers())
    }

    /// The pipeline's share of the configuration.
    pub fn pipeline_settings(&self) -> crate::pipeline::PipelineSettings {
        crate::pipeline::PipelineSettings {
            provider_limits: self.provider_limits.clone(),
            lease: self.lease,
            allow_private_urls: self.allow_private_urls,
            default_lora_url: self.default_lora_url.clone(),
            abort_after_steps: self.test_abort_after_steps,
            face: self.face.clone(),
        }
    }

    /// How often an idle worker looks for queued runs: the configured value, else 2 s when database
    /// notifications wake it and 500 ms when they do not.
    pub fn poll_interval(&self, listening: bool) -> Duration {
        self.poll
            .unwrap_or(Duration::from_millis(if listening { 2000 } else { 500 }))
    }

    /// The outbound URL guard for user-supplied URLs.
    pub fn fetch_guard(&self) -> crate::net::FetchGuard {
        crate::net::FetchGuard::new(self.allow_private_urls)
    }
}

/// `DEVATAR_TRUSTED_PROXY_HEADER`: a valid HTTP header name, lower-cased; `None` when unset or empty.
fn trusted_proxy_header(l: &Layers) -> Result<Option<String>, ConfigError> {
    const VAR: &str = "DEVATAR_TRUSTED_PROXY_HEADER";
    let Some(v) = l.raw(VAR).map(|v| v.trim().to_ascii_lowercase()) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    axum::http::HeaderName::from_bytes(v.as_bytes()).map_err(|_| ConfigError::Invalid {
        var: VAR,
        reason: "expected an HTTP header name such as x-forwarded-for".into(),
    })?;
    Ok(Some(v))
}

/// A whole number in `range`, or `None` when unset.
fn number<T>(
    l: &Layers,
    var: &'static str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(v) = l.raw(var) else { return Ok(None) };
    match v.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!(
                "expected a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

/// `1`/`0` (also `true`/`false`), or `None` when unset.
fn flag(l: &Layers, var: &'static str) -> Result<Option<bool>, ConfigError> {
    match l.raw(var).as_deref() {
        None => Ok(None),
        Some("1" | "true") => Ok(Some(true)),
        Some("0" | "false") => Ok(Some(false)),
        Some(_) => Err(ConfigError::Invalid {
            var,
            reason: "expected 1 or 0".into(),
        }),
    }
}

fn espeak_voice(l: &Layers) -> Result<String, ConfigError> {
    match l.raw("DEVATAR_ESPEAK_VOICE") {
        None => Ok("en-us".into()),
        Some(v)
            if v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c)) =>
        {
            Ok(v)
        }
        Some(_) => Err(ConfigError::Invalid {
            var: "DEVATAR_ESPEAK_VOICE",
            reason: "expected an espeak-ng voice name such as en-us".into(),
        }),
    }
}

fn failpoint(l: &Layers) -> Result<Option<crate::failpoint::Failpoint>, ConfigError> {
    l.raw("DEVATAR_FAILPOINT")
        .map(|v| {
            crate::failpoint::Failpoint::parse(&v).map_err(|reason| ConfigError::Invalid {
                var: "DEVATAR_FAILPOINT",
                reason,
            })
        })
        .transpose()
}

fn face(l: &Layers) -> Result<FaceSettings, ConfigError> {
    let mut face = FaceSettings::default();
    if let Some(dir) = l.raw("DEVATAR_FACE_MODELS") {
        let dir = PathBuf::from(dir);
        if dir.is_file() {
            return Err(ConfigError::Invalid {
                var: "DEVATAR_FACE_MODELS",
                reason: format!(
                    "{} is a file; expected the folder of the model files",
                    dir.display()
                ),
            });
        }
        face.models = dir;
    }
    if let Some(v) = l.raw("DEVATAR_FACE_THRESHOLD") {
        face.threshold = v
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 2.0)
            .ok_or_else(|| ConfigError::Invalid {
                var: "DEVATAR_FACE_THRESHOLD",
                reason: "expected a distance above 0 and below 2 (default 0.6)".into(),
            })?;
    }
    Ok(face)
}

fn lora_trainer(l: &Layers) -> Result<LoraTrainer, ConfigError> {
    match l.raw("FAL_LORA_TRAINER").as_deref() {
        None | Some("fast") => Ok(LoraTrainer::Fast),
        Some("portrait") => Ok(LoraTrainer::Portrait),
        Some(_) => Err(ConfigError::Invalid {
            var: "FAL_LORA_TRAINER",
            reason: "expected fast or portrait".into(),
        }),
    }
}

fn route(l: &Layers, var: &'static str) -> Result<Route, ConfigError> {
    match l.raw(var).as_deref() {
        None | Some("auto") => Ok(Route::Auto),
        Some("direct") => Ok(Route::Direct),
        Some("fal") => Ok(Route::Fal),
        Some(_) => Err(ConfigError::Invalid {
            var,
            reason: "expected auto, direct or fal".into(),
        }),
    }
}

fn base(l: &Layers, var: &str, default: &str) -> String {
    l.raw(var)
        .unwrap_or_else(|| default.to_string())
        .trim_end_matches('/')
        .to_string()
}

fn cloud(l: &Layers, warnings: &mut Vec<String>) -> Result<CloudConfig, ConfigError> {
    let prices = match l.raw("DEVATAR_PRICES") {
        Some(text) => PriceTable::from_json(&text).map_err(|e| ConfigError::Invalid {
            var: "DEVATAR_PRICES",
            reason: e.to_string(),
        })?,
        None => PriceTable::default(),
    };
    let time_scale = match l.raw("DEVATAR_PROVIDER_TIME_SCALE") {
        None => 1.0,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0 && *v <= 10.0)
            .ok_or_else(|| ConfigError::Invalid {
                var: "DEVATAR_PROVIDER_TIME_SCALE",
                reason: "expected a number above 0 and at most 10".into(),
            })?,
    };
    let avatar = l.raw("FAL_AVATAR_MODEL");
    let fal_avatar_model = crate::providers::cloud::avatar_model(avatar.as_deref(), warnings);
    Ok(CloudConfig {
        face: Some(face(l)?),
        elevenlabs_key: l.raw("ELEVENLABS_API_KEY").map(Secret::new),
        elevenlabs_base: base(l, "ELEVENLABS_BASE_URL", "https://api.elevenlabs.io"),
        default_voice: l.raw("ELEVENLABS_VOICE_ID"),
        fal_key: l.raw("FAL_KEY").map(Secret::new),
        fal_base: base(l, "FAL_BASE_URL", "https://queue.fal.run"),
        fal_storage_base: base(l, "FAL_STORAGE_BASE_URL", "https://rest.fal.ai"),
        fal_avatar_model,
        kling_access: l.raw("KLING_ACCESS_KEY").map(Secret::new),
        kling_secret: l.raw("KLING_SECRET_KEY").map(Secret::new),
        kling_base: base(l, "KLING_BASE_URL", "https://api-singapore.klingai.com"),
        kling_model: l.raw("KLING_MODEL").unwrap_or_else(|| "kling-v2-1".into()),
        kling_mode: match l.raw("KLING_MODE").as_deref() {
            None | Some("std") => "std".into(),
            Some("pro") => "pro".into(),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    var: "KLING_MODE",
                    reason: "expected std or pro".into(),
                });
            }
        },
        sync_key: l.raw("SYNCLABS_API_KEY").map(Secret::new),
        sync_base: base(l, "SYNCLABS_BASE_URL", "https://api.sync.so"),
        video_route: route(l, "DEVATAR_VIDEO_ROUTE")?,
        lipsync_route: route(l, "DEVATAR_LIPSYNC_ROUTE")?,
        fal_resubmit: flag(l, "DEVATAR_FAL_RESUBMIT")?.unwrap_or(false),
        lora_trainer: lora_trainer(l)?,
        failover: flag(l, "DEVATAR_FAILOVER")?.unwrap_or(true),
        allow_private_urls: flag(l, "DEVATAR_ALLOW_PRIVATE_URLS")?.unwrap_or(false),
        time_scale,
        prices,
        public_url: public_url(l)?,
        callback_listen: match l.raw("DEVATAR_CALLBACK_LISTEN") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| ConfigError::Invalid {
                var: "DEVATAR_CALLBACK_LISTEN",
                reason: "expected an address such as 127.0.0.1:0 or 0.0.0.0:8091".into(),
            })?),
        },
        hooks: None,
    })
}

/// `DEVATAR_PUBLIC_URL`: an http(s) base URL without user info, query or fragment, trailing `/` removed.
fn public_url(l: &Layers) -> Result<Option<String>, ConfigError> {
    const VAR: &str = "DEVATAR_PUBLIC_URL";
    let Some(v) = l.raw(VAR) else { return Ok(None) };
    crate::providers::hooks::JobHooks::new(&v)
        .map(|h| Some(h.base().to_string()))
        .map_err(|e| ConfigError::Invalid {
            var: VAR,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_nothing_set() {
        let c = Config::from_pairs(&[]).unwrap();
        assert_eq!(c.lease, Duration::from_secs(15));
        assert_eq!(c.espeak_rate, 165);
        assert!(!c.cloud_configured());
        assert!(c.database_url.is_none());
        assert_eq!(c.cloud.time_scale, 1.0);
    }

    #[test]
    fn face_settings_default_to_the_machine_wide_folder_and_0_6() {
        let c = Config::from_pairs(&[]).unwrap();
        assert_eq!(
            c.face.models,
            PathBuf::from("/usr/local/share/devatar/face-models")
        );
        assert_eq!(c.face.threshold, 0.6);
        let c = Config::from_pairs(&[
            ("DEVATAR_FACE_MODELS", "/opt/models"),
            ("DEVATAR_FACE_THRESHOLD", "0.5"),
        ])
        .unwrap();
        assert_eq!(c.face.models, PathBuf::from("/opt/models"));
        assert_eq!(c.face.threshold, 0.5);
    }

    #[test]
    fn bad_values_are_errors_that_name_the_variable() {
        for (var, bad) in [
            ("DEVATAR_LEASE_SECS", "0"),
            ("DEVATAR_POLL_MS", "fast"),
            ("DEVATAR_ESPEAK_RATE", "9000"),
            ("DEVATAR_PROVIDER_LIMITS", "fal=zero"),
            ("DEVATAR_PRICES", r#"{"videoFirst5s": -1}"#),
            ("DEVATAR_PROVIDER_TIME_SCALE", "-2"),
            ("DEVATAR_VIDEO_ROUTE", "sideways"),
            ("DEVATAR_ALLOW_PRIVATE_URLS", "yes please"),
            ("KLING_MODE", "turbo"),
            ("DEVATAR_FACE_THRESHOLD", "2"),
            ("DEVATAR_FACE_THRESHOLD", "0"),
            ("DEVATAR_FACE_THRESHOLD", "close"),
            ("DEVATAR_FACE_MODELS", "Cargo.toml"),
            ("DEVATAR_PUBLIC_URL", "ftp://x"),
            ("DEVATAR_CALLBACK_LISTEN", "anywhere"),
        ] {
            let err = Config::from_pairs(&[(var, bad)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}={bad}: {err}");
        }
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("devatar.toml");
        std::fs::write(
            &file,
            "DEVATAR_LEASE_SECS = 40\nDEVATAR_POLL_MS = 30\nFAL_BASE_URL = \"http://f/\"\n",
        )
        .unwrap();
        let mut l = Layers::from_pairs(&[("DEVATAR_POLL_MS", "20")]);
        l = l.with_file(&file).unwrap();
        let c = Config::from_layers(&l).unwrap();
        assert_eq!(c.lease, Duration::from_secs(40));
        assert_eq!(c.poll, Some(Duration::from_millis(20)));
        assert_eq!(c.cloud.fal_base, "http://f");
        let c = Config::from_layers(&l.with_flag("DEVATAR_POLL_MS", "11")).unwrap();
        assert_eq!(c.poll, Some(Duration::from_millis(11)));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("devatar.toml");
        std::fs::write(&file, "FAL_KYE = \"x\"\n").unwrap();
        let err = Layers::default().with_file(&file).unwrap_err().to_string();
        assert!(err.contains("FAL_KYE"), "{err}");
    }
}
