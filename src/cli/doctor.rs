//! `devatar doctor`: what is installed and configured (never a key's value).

use std::path::PathBuf;

use serde_json::json;

use super::CliError;
use crate::config::Config;
use crate::face::{INSTALL_COMMAND, models};
use crate::media::{REQUIRED_TOOLS, find_tool};

/// Prints the report (one JSON document with `json`); exit 3 when a required tool is missing. Missing face models
/// are reported but do not fail it: only the face features need them.
pub fn doctor(cfg: &Config, json: bool) -> Result<(), CliError> {
    let tools: Vec<(&str, &str, Option<PathBuf>)> = REQUIRED_TOOLS
        .iter()
        .map(|(tool, package)| (*tool, *package, find_tool(tool)))
        .collect();
    let c = &cfg.cloud;
    let keys = [
        ("FAL_KEY", c.fal_key.is_some()),
        ("ELEVENLABS_API_KEY", c.elevenlabs_key.is_some()),
        ("KLING_ACCESS_KEY", c.kling_access.is_some()),
        ("KLING_SECRET_KEY", c.kling_secret.is_some()),
        ("SYNCLABS_API_KEY", c.sync_key.is_some()),
        ("DEVEN_LORA_URL", cfg.default_lora_url.is_some()),
        ("ELEVENLABS_VOICE_ID", c.default_voice.is_some()),
    ];
    let database = if cfg.database_url.is_some() {
        "DATABASE_URL (external)"
    } else {
        "SQLite in the data folder"
    };
    let face_missing = models::missing_in(&cfg.face.models);
    let mut missing: Vec<&str> = tools
        .iter()
        .filter(|(_, _, path)| path.is_none())
        .map(|(_, package, _)| *package)
        .collect();
    missing.dedup();
    let report = Report {
        tools: &tools,
        keys: &keys,
        database,
        cfg,
        face_missing: &face_missing,
    };
    if json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    if missing.is_empty() {
        if !json {
            println!("Everything needed for offline rendering is installed.");
        }
        Ok(())
    } else {
        Err(CliError::missing_tool(format!(
            "missing system tools. Install them with: sudo apt-get install -y {}",
            missing.join(" ")
        )))
    }
}

/// What doctor found.
struct Report<'a> {
    tools: &'a [(&'a str, &'a str, Option<PathBuf>)],
    keys: &'a [(&'a str, bool)],
    database: &'a str,
    cfg: &'a Config,
    face_missing: &'a [&'static str],
}

impl Report<'_> {
    fn json(&self) -> serde_json::Value {
        json!({
            "tools": self.tools.iter().map(|(tool, package, path)| json!({
                "name": tool,
                "found": path.is_some(),
                "path": path.as_ref().map(|p| p.display().to_string()),
                "package": package,
            })).collect::<Vec<_>>(),
            "keys": self.keys.iter().map(|(var, set)| (var.to_string(), json!(set))).collect::<serde_json::Map<_, _>>(),
            "database": self.database,
            "faceModels": {
                "folder": self.cfg.face.models.display().to_string(),
                "found": self.face_missing.is_empty(),
                "missing": self.face_missing,
                "install": INSTALL_COMMAND,
                "threshold": self.cfg.face.threshold,
            },
        })
    }

    fn print(&self) {
        println!("System tools:");
        for (tool, package, path) in self.tools {
            match path {
                Some(path) => println!("  ok       {tool:<10} {}", path.display()),
                None => println!("  MISSING  {tool:<10} (Debian package: {package})"),
            }
        }
        println!("Provider keys (set or not; values are never shown):");
        for (var, set) in self.keys {
            println!("  {:<8} {var}", if *set { "set" } else { "not set" });
        }
        println!("Database: {}", self.database);
        let dir = self.cfg.face.models.display();
        if self.face_missing.is_empty() {
            println!("Face models: ok in {dir}");
        } else {
            println!(
                "Face models: MISSING in {dir} ({}); face features need them. Install with: {INSTALL_COMMAND}",
                self.face_missing.join(", ")
            );
        }
    }
}
