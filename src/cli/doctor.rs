//! `devatar doctor`: what is installed and configured (never a key's value).

use super::CliError;
use crate::media::{REQUIRED_TOOLS, find_tool};

/// Prints the report; exit 3 when a required tool is missing.
pub fn doctor() -> Result<(), CliError> {
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
    for var in [
        "FAL_KEY",
        "ELEVENLABS_API_KEY",
        "KLING_ACCESS_KEY",
        "KLING_SECRET_KEY",
        "SYNCLABS_API_KEY",
        "DEVEN_LORA_URL",
        "ELEVENLABS_VOICE_ID",
    ] {
        let set = std::env::var(var)
            .map(|v| !v.trim().is_empty())
            .unwrap_or(false);
        println!("  {:<8} {var}", if set { "set" } else { "not set" });
    }
    println!(
        "Database: {}",
        if std::env::var("DATABASE_URL")
            .map(|v| !v.is_empty())
            .unwrap_or(false)
        {
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
