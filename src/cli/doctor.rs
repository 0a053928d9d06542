//! `devatar doctor`: what is installed and configured (never a key's value).

use super::CliError;
use crate::config::Config;
use crate::media::{REQUIRED_TOOLS, find_tool};

/// Prints the report; exit 3 when a required tool is missing.
pub fn doctor(cfg: &Config) -> Result<(), CliError> {
    let mut missing = Vec::new();
    println!("System tools:");
    for (tool, package) in REQUIRED_TOOLS {
        match find_tool(tool) {
            Some(path) => println!("  ok       {tool:<10} {}", path.display()),
            None => {
                println!("  MISSING  {tool:<10} (Debian package: {package})");
                missing.push(package);
            }
        }
    }
    println!("Provider keys (set or not; values are never shown):");
    let c = &cfg.cloud;
    for (var, set) in [
        ("FAL_KEY", c.fal_key.is_some()),
        ("ELEVENLABS_API_KEY", c.elevenlabs_key.is_some()),
        ("KLING_ACCESS_KEY", c.kling_access.is_some()),
        ("KLING_SECRET_KEY", c.kling_secret.is_some()),
        ("SYNCLABS_API_KEY", c.sync_key.is_some()),
        ("DEVEN_LORA_URL", cfg.default_lora_url.is_some()),
        ("ELEVENLABS_VOICE_ID", c.default_voice.is_some()),
    ] {
        println!("  {:<8} {var}", if set { "set" } else { "not set" });
    }
    println!(
        "Database: {}",
        if cfg.database_url.is_some() {
            "DATABASE_URL (external)"
        } else {
            "SQLite in the data folder"
        }
    );
    if missing.is_empty() {
        println!("Everything needed for offline rendering is installed.");
        Ok(())
    } else {
        missing.dedup();
        Err(CliError::missing_tool(format!(
            "missing system tools. Install them with: sudo apt-get install -y {}",
            missing.join(" ")
        )))
    }
}
