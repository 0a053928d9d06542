//! Where setting values come from: command-line flags, then the environment, then an optional TOML config
//! file, then (in the caller) defaults. This is the only place in devatar that reads the process environment.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Every variable a config file may set: the names README's Configuration table documents.
pub const KNOWN: &[&str] = &[
    "DATABASE_URL",
    "DEVATAR_LOG",
    "DEVATAR_ADMIN_PASSWORD",
    "DEVATAR_ALLOW_PRIVATE_URLS",
    "DEVATAR_TRUSTED_PROXY_HEADER",
    "DEVATAR_ESPEAK_VOICE",
    "DEVATAR_ESPEAK_RATE",
    "DEVATAR_PRICES",
    "ELEVENLABS_API_KEY",
    "ELEVENLABS_BASE_URL",
    "ELEVENLABS_VOICE_ID",
    "DEVEN_LORA_URL",
    "FAL_KEY",
    "FAL_BASE_URL",
    "FAL_STORAGE_BASE_URL",
    "FAL_AVATAR_MODEL",
    "KLING_ACCESS_KEY",
    "KLING_SECRET_KEY",
    "KLING_BASE_URL",
    "KLING_MODEL",
    "KLING_MODE",
    "SYNCLABS_API_KEY",
    "SYNCLABS_BASE_URL",
    "DEVATAR_VIDEO_ROUTE",
    "DEVATAR_LIPSYNC_ROUTE",
    "DEVATAR_FAILOVER",
    "DEVATAR_FAL_RESUBMIT",
    "FAL_LORA_TRAINER",
    "DEVATAR_LEASE_SECS",
    "DEVATAR_PROVIDER_LIMITS",
    "DEVATAR_POLL_MS",
    "DEVATAR_PROVIDER_TIME_SCALE",
    "DEVATAR_PUBLIC_URL",
    "DEVATAR_CALLBACK_LISTEN",
    "DEVATAR_PRESIGN_TTL_SECS",
    "DEVATAR_TEST_ABORT_AFTER_STEPS",
    "DEVATAR_FAILPOINT",
    "DEVATAR_FACE_MODELS",
    "DEVATAR_FACE_THRESHOLD",
    "DEVATAR_PIPER_DIR",
    "R2_ACCOUNT_ID",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_BUCKET_NAME",
    "R2_PUBLIC_URL",
    "DEVATAR_S3_BUCKET",
    "DEVATAR_S3_ENDPOINT",
    "DEVATAR_S3_REGION",
    "DEVATAR_S3_ACCESS_KEY_ID",
    "DEVATAR_S3_SECRET_ACCESS_KEY",
    "DEVATAR_S3_PATH_STYLE",
    "DEVATAR_S3_ALLOW_HTTP",
    "DEVATAR_S3_PUBLIC_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The variable that names a config file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "DEVATAR_CONFIG";

/// Layered setting values, highest precedence first: flags, environment, config file.
#[derive(Debug, Default, Clone)]
pub struct Layers {
    flags: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    file: BTreeMap<String, String>,
}

impl Layers {
    /// Flags given on the command line (variable name → value), the process environment, and the config file
    /// named by `config_file` (else by `DEVATAR_CONFIG`), if any.
    pub fn from_process(
        flags: BTreeMap<String, String>,
        config_file: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| KNOWN.contains(&k.as_str()) || k == CONFIG_FILE_VAR)
            .collect();
        let path: Option<PathBuf> = config_file.map(Path::to_path_buf).or_else(|| {
            env.get(CONFIG_FILE_VAR)
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from)
        });
        let file = match path {
            Some(p) => read_file(&p)?,
            None => BTreeMap::new(),
        };
        Ok(Self { flags, env, file })
    }

    /// Explicit values only (tests and embedders): nothing is read from the process.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Self::default()
        }
    }

    /// These layers with the config file at `path` as the lowest layer.
    pub fn with_file(mut self, path: &Path) -> Result<Self, ConfigError> {
        self.file = read_file(path)?;
        Ok(self)
    }

    /// These layers with `name` set by a command-line flag (the highest layer).
    pub fn with_flag(&self, name: &str, value: &str) -> Self {
        let mut out = self.clone();
        out.flags.insert(name.to_string(), value.to_string());
        out
    }

    /// The raw value of `name`, trimmed; `None` when unset or blank in every layer that has it.
    pub fn raw(&self, name: &str) -> Option<String> {
        [&self.flags, &self.env, &self.file]
            .into_iter()
            .find_map(|layer| layer.get(name))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Whether the value is set and non-blank.
    pub fn is_set(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

/// Reads a config file: a TOML table whose keys are the variable names of README's Configuration table
/// (strings, numbers or booleans). Unknown keys are errors naming the key.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        if !KNOWN.contains(&key.as_str()) {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                reason: format!("unknown setting {key} (keys are the variable names README lists)"),
            });
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => if b { "1" } else { "0" }.to_string(),
            _ => {
                return Err(ConfigError::File {
                    path: path.to_path_buf(),
                    reason: format!("{key} must be a string, a number or a boolean"),
                });
            }
        };
        out.insert(key, text);
    }
    Ok(out)
}

/// The executable search path (`PATH`), for finding system tools.
pub fn executable_search_path() -> Option<OsString> {
    std::env::var_os("PATH")
}
