//! The face engine's errors: bad photos (the caller's input) versus a missing or broken installation.

use std::path::PathBuf;

/// The command that installs the face models (and the libraries the engine links).
pub const INSTALL_COMMAND: &str = "bash scripts/install-deps.sh";

/// Why face work could not be done.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// A photo cannot be read (missing file, permissions).
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The photo.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A photo is not a PNG or JPEG image that can be decoded.
    #[error("cannot decode {path} as a PNG or JPEG image: {reason}")]
    Undecodable {
        /// The photo.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },
    /// The model files are not in the models folder.
    #[error(
        "face models missing in {}: {} (install them with `{INSTALL_COMMAND}`, or point DEVATAR_FACE_MODELS at a \
         folder that has them)",
        dir.display(),
        missing.join(", ")
    )]
    ModelsMissing {
        /// The folder that was searched.
        dir: PathBuf,
        /// The file names that are not there.
        missing: Vec<&'static str>,
    },
    /// A model file is there but cannot be loaded (truncated or corrupt).
    #[error(
        "cannot load the face model {}: {reason} (delete it and reinstall with `{INSTALL_COMMAND}`)",
        path.display()
    )]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// dlib's reason.
        reason: String,
    },
    /// The blocking face task died (a bug, reported rather than propagated as a panic).
    #[error("face task failed: {0}")]
    Task(String),
}

impl FaceError {
    /// Whether the error is about the installation (models), not about the photos.
    pub fn is_installation(&self) -> bool {
        matches!(self, Self::ModelsMissing { .. } | Self::ModelLoad { .. })
    }
}
