//! The face engine: detection, 5-point landmarks, a 128-d embedding, sharpness and head pose of every face in a
//! photo, and the same-person verdict for two faces.
//!
//! dlib does the learned parts ([`engine`]: its HOG detector, the 5-point shape predictor and the ResNet embedding
//! of the PyPI package `face_recognition_models`, found in [`FaceSettings::models`]); the rest is plain Rust
//! ([`sharpness`], [`light`], [`pose`], [`compare`]). The async functions below run the blocking work on tokio's blocking pool
//! and never on the runtime's worker threads. This module imports nothing from the rest of devatar.

pub mod compare;
pub mod engine;
pub mod error;
pub mod framing;
pub mod light;
pub mod models;
pub mod photo;
pub mod pose;
pub mod print;
pub mod sharpness;

use std::path::PathBuf;
use std::sync::Arc;

pub use compare::{DEFAULT_THRESHOLD, Embedding, Verdict};
pub use engine::FaceEngine;
pub use error::{FaceError, INSTALL_COMMAND};
pub use models::DEFAULT_MODELS_DIR;
pub use photo::Photo;
pub use pose::HeadPose;
pub use print::FacePrint;

/// The face engine's settings (`DEVATAR_FACE_MODELS`, `DEVATAR_FACE_THRESHOLD`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceSettings {
    /// The folder holding the model files.
    pub models: PathBuf,
    /// Embedding distances below this are the same person.
    pub threshold: f64,
}

impl Default for FaceSettings {
    fn default() -> Self {
        Self {
            models: PathBuf::from(DEFAULT_MODELS_DIR),
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// A face's bounding box in pixels, inside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FaceBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// One detected face.
#[derive(Debug, Clone)]
pub struct Face {
    /// Where it is.
    pub bbox: FaceBox,
    /// dlib's 5 points, in pixels: the two corners of one eye, of the other eye, and the base of the nose.
    pub landmarks: Vec<(i64, i64)>,
    /// Variance of the Laplacian of the grey face region (see [`sharpness`]).
    pub sharpness: f64,
    /// Mean luma of the face region, 0–255 (see [`light`]).
    pub brightness: f64,
    /// Yaw and pitch estimated from the landmarks (see [`pose`]); `None` when they are degenerate.
    pub pose: Option<HeadPose>,
    /// The 128-d embedding.
    pub embedding: Embedding,
}

/// The faces found in one photo.
#[derive(Debug, Clone)]
pub struct PhotoFaces {
    /// The photo's path (as given).
    pub path: PathBuf,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// Its faces, largest first.
    pub faces: Vec<Face>,
}

/// Runs blocking face work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FaceError> + Send + 'static,
) -> Result<T, FaceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| FaceError::Task(e.to_string()))?
}

/// Reads and decodes a photo (off the async runtime).
pub async fn open_photo(path: PathBuf) -> Result<Photo, FaceError> {
    blocking(move || Photo::open(&path)).await
}

/// The shared engine for `settings.models` (loaded off the async runtime on first use).
pub async fn load_engine(settings: &FaceSettings) -> Result<Arc<FaceEngine>, FaceError> {
    let dir = settings.models.clone();
    blocking(move || FaceEngine::load(&dir)).await
}

/// Every face in `photo` (off the async runtime).
pub async fn analyse(engine: Arc<FaceEngine>, photo: Photo) -> Result<PhotoFaces, FaceError> {
    blocking(move || {
        let faces = engine.analyse(&photo.rgb);
        Ok(PhotoFaces {
            width: photo.width(),
            height: photo.height(),
            path: photo.path,
            faces,
        })
    })
    .await
}

/// The 5 landmarks of the largest face in `photo`, without its embedding (off the async runtime); `None` when
/// there is no face.
pub async fn largest_face_landmarks(
    engine: Arc<FaceEngine>,
    photo: Photo,
) -> Result<Option<Vec<(i64, i64)>>, FaceError> {
    blocking(move || Ok(engine.largest_face_landmarks(&photo.rgb))).await
}
