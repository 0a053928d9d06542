//! Finding the system tools the local pipeline needs.

use std::path::PathBuf;

/// Tools the offline pipeline runs, with the Debian package that provides each.
pub const REQUIRED_TOOLS: [(&str, &str); 3] = [
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffmpeg"),
    ("espeak-ng", "espeak-ng"),
];

/// Some required tools are not installed.
#[derive(Debug, thiserror::Error)]
#[error("missing system tools: {}. Install them with: {}", .missing.join(", "), .install_command)]
pub struct MissingTools {
    /// Names of the missing programs.
    pub missing: Vec<String>,
    /// The exact command that installs them.
    pub install_command: String,
}

/// Looks a program up on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = crate::config::executable_search_path()?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Fails with the install command when any of `tools` (name, Debian package) is missing.
pub fn require_tools(tools: &[(&str, &str)]) -> Result<(), MissingTools> {
    let missing: Vec<(&str, &str)> = tools
        .iter()
        .copied()
        .filter(|(n, _)| find_tool(n).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    packages.dedup();
    Err(MissingTools {
        missing: missing.iter().map(|(n, _)| n.to_string()).collect(),
        install_command: format!("sudo apt-get install -y {}", packages.join(" ")),
    })
}
