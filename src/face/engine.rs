//! dlib behind a small safe interface: HOG face detection, 5-point landmarks and the ResNet embedding.
//!
//! Loading the models takes a fraction of a second and some 100 MB, so each models folder is loaded once per
//! process and shared ([`FaceEngine::load`]). dlib's detector and network are not safe to use from two threads at
//! once, so calls are serialised by a mutex. Everything here blocks: async code calls it through
//! `tokio::task::spawn_blocking` (see [`super::analyse`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dlib_face_recognition::{
    FaceDetector, FaceDetectorTrait, FaceEncoderNetwork, FaceEncoderTrait, FaceLandmarks,
    ImageMatrix, LandmarkPredictor, LandmarkPredictorTrait, Rectangle,
};
use image::RgbImage;

use super::compare::Embedding;
use super::error::FaceError;
use super::models::ModelPaths;
use super::{Face, FaceBox, light, pose, sharpness};

struct Dlib {
    detector: FaceDetector,
    predictor: LandmarkPredictor,
    encoder: FaceEncoderNetwork,
}

/// A loaded face engine (one per models folder per process).
pub struct FaceEngine {
    dir: PathBuf,
    dlib: Mutex<Dlib>,
}

impl std::fmt::Debug for FaceEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceEngine")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Engines loaded so far, by models folder.
static LOADED: Mutex<Vec<(PathBuf, Arc<FaceEngine>)>> = Mutex::new(Vec::new());

unsafe extern "C" {
    /// OpenBLAS's own setting of its thread count (libopenblas, linked for dlib).
    fn openblas_set_num_threads(num_threads: std::os::raw::c_int);
}

/// Keeps OpenBLAS on the calling thread. With its worker threads, a `fork` (every ffmpeg this process starts sets
/// a parent-death signal before `exec`, so the standard library forks) runs OpenBLAS's fork handler, which joins
/// those threads, and OpenBLAS 0.3.21 (Debian 12) can deadlock there when a face was analysed concurrently: the
/// whole process hung. The embedding's matrix products are small, so one thread costs nothing measurable.
fn single_threaded_blas() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: a plain setter of OpenBLAS, called once, before this process's first face analysis.
    ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaceEngine {
    /// The engine for the models in `dir`, loaded on first use and shared afterwards. Blocking.
    pub fn load(dir: &Path) -> Result<Arc<Self>, FaceError> {
        let mut loaded = lock(&LOADED);
        if let Some((_, engine)) = loaded.iter().find(|(d, _)| d == dir) {
            return Ok(Arc::clone(engine));
        }
        let paths = ModelPaths::find(dir)?;
        single_threaded_blas();
        let predictor =
            LandmarkPredictor::open(&paths.landmarks).map_err(load_error(&paths.landmarks))?;
        let encoder =
            FaceEncoderNetwork::open(&paths.embedding).map_err(load_error(&paths.embedding))?;
        let engine = Arc::new(Self {
            dir: dir.to_path_buf(),
            dlib: Mutex::new(Dlib {
                detector: FaceDetector::new(),
                predictor,
                encoder,
            }),
        });
        loaded.push((dir.to_path_buf(), Arc::clone(&engine)));
        Ok(engine)
    }

    /// The models folder this engine was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every face in `image`: box, landmarks, sharpness, pose and embedding, largest face first. Blocking.
    pub fn analyse(&self, image: &RgbImage) -> Vec<Face> {
        let matrix = ImageMatrix::from_image(image);
        let (small, scale) = detection_copy(image);
        let small_matrix = small.as_ref().map(ImageMatrix::from_image);
        let dlib = lock(&self.dlib);
        let rects: Vec<Rectangle> = dlib
            .detector
            .face_locations(small_matrix.as_ref().unwrap_or(&matrix))
            .iter()
            .map(|r| upscale(r, scale))
            .collect();
        if rects.is_empty() {
            return Vec::new();
        }
        let shapes: Vec<FaceLandmarks> = rects
            .iter()
            .map(|r| dlib.predictor.face_landmarks(&matrix, r))
            .collect();
        let encodings = dlib.encoder.get_face_encodings(&matrix, &shapes, 0);
        drop(dlib);
        let mut faces: Vec<Face> = rects
            .iter()
            .zip(&shapes)
            .zip(encodings.iter())
            .map(|((rect, shape), encoding)| {
                let bbox = clip(rect, image.width(), image.height());
                let landmarks: Vec<(i64, i64)> = shape.iter().map(|p| (p.x(), p.y())).collect();
                let points: Vec<(f64, f64)> = landmarks
                    .iter()
                    .map(|&(x, y)| (x as f64, y as f64))
                    .collect();
                Face {
                    sharpness: sharpness::face_sharpness(image, &bbox),
                    brightness: light::face_brightness(image, &bbox),
                    pose: pose::pose_from_landmarks(&points),
                    bbox,
                    landmarks,
                    embedding: Embedding(encoding.as_ref().iter().map(|v| *v as f32).collect()),
                }
            })
            .collect();
        faces.sort_by_key(|f| std::cmp::Reverse(u64::from(f.bbox.w) * u64::from(f.bbox.h)));
        faces
    }
}

impl FaceEngine {
    /// The 5 landmarks of the largest face in `image`, without the embedding (no network: detection and the
    /// shape predictor only); `None` when there is no face. Blocking.
    pub fn largest_face_landmarks(&self, image: &RgbImage) -> Option<Vec<(i64, i64)>> {
        let matrix = ImageMatrix::from_image(image);
        let (small, scale) = detection_copy(image);
        let small_matrix = small.as_ref().map(ImageMatrix::from_image);
        let dlib = lock(&self.dlib);
        let largest = dlib
            .detector
            .face_locations(small_matrix.as_ref().unwrap_or(&matrix))
            .iter()
            .map(|r| upscale(r, scale))
            .max_by_key(|r| (r.right - r.left) * (r.bottom - r.top))?;
        let shape = dlib.predictor.face_landmarks(&matrix, &largest);
        Some(shape.iter().map(|p| (p.x(), p.y())).collect())
    }
}

/// Longest side faces are detected at: HOG detection costs grows with the pixel count, and a talking-head face
/// stays far above the detector's 80-pixel minimum at this size. Landmarks and embeddings use the full image.
const DETECT_SIDE: u32 = 640;

/// A copy of `image` scaled down to [`DETECT_SIDE`] for detection (`None` when it is small enough) and the factor
/// that maps its coordinates back.
fn detection_copy(image: &RgbImage) -> (Option<RgbImage>, f64) {
    let longest = image.width().max(image.height());
    if longest <= DETECT_SIDE {
        return (None, 1.0);
    }
    let scale = f64::from(longest) / f64::from(DETECT_SIDE);
    let (w, h) = (
        ((f64::from(image.width()) / scale).round() as u32).max(1),
        ((f64::from(image.height()) / scale).round() as u32).max(1),
    );
    let small = image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle);
    (Some(small), scale)
}

/// A rectangle found on the detection copy, in the full image's coordinates.
fn upscale(r: &Rectangle, scale: f64) -> Rectangle {
    let up = |v: std::os::raw::c_long| (v as f64 * scale).round() as std::os::raw::c_long;
    Rectangle {
        left: up(r.left),
        top: up(r.top),
        right: up(r.right),
        bottom: up(r.bottom),
    }
}

/// The error for a model file dlib cannot deserialise.
fn load_error(path: &Path) -> impl FnOnce(String) -> FaceError + '_ {
    move |reason| FaceError::ModelLoad {
        path: path.to_path_buf(),
        reason,
    }
}

/// dlib's rectangle (inclusive corners in `c_long` = i64 on 64-bit Linux, possibly outside the image) as a box inside a `width`×`height` image.
fn clip(r: &Rectangle, width: u32, height: u32) -> FaceBox {
    let (w, h) = (i64::from(width), i64::from(height));
    let x0 = r.left.clamp(0, w);
    let y0 = r.top.clamp(0, h);
    let x1 = (r.right + 1).clamp(x0, w);
    let y1 = (r.bottom + 1).clamp(y0, h);
    let to_u32 = |v: i64| u32::try_from(v).unwrap_or(0);
    FaceBox {
        x: to_u32(x0),
        y: to_u32(y0),
        w: to_u32(x1 - x0),
        h: to_u32(y1 - y0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_images_are_detected_on_a_640_pixel_copy_and_boxes_map_back() {
        let (copy, scale) = detection_copy(&RgbImage::new(1280, 720));
        let copy = copy.expect("scaled");
        assert_eq!((copy.width(), copy.height()), (640, 360));
        assert!((scale - 2.0).abs() < 1e-9);
        let r = upscale(
            &Rectangle {
                left: 10,
                top: 20,
                right: 110,
                bottom: 120,
            },
            scale,
        );
        assert_eq!((r.left, r.top, r.right, r.bottom), (20, 40, 220, 240));
        assert!(detection_copy(&RgbImage::new(512, 512)).0.is_none());
    }

    #[test]
    fn boxes_are_clipped_to_the_image() {
        let r = Rectangle {
            left: -10,
            top: 5,
            right: 49,
            bottom: 200,
        };
        assert_eq!(
            clip(&r, 100, 100),
            FaceBox {
                x: 0,
                y: 5,
                w: 50,
                h: 95
            }
        );
    }
}
