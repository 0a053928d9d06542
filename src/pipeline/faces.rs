//! The pipeline's face-scoring seam: how far a still (IMAGE's gate) or a clip's frames (FINALIZE) are from an
//! identity's [`FacePrint`]. [`EngineScorer`] (the face engine, off the async runtime) is what renders use;
//! tests swap in `testkit::FakeFaces` with [`Pipeline::with_face_scorer`](super::Pipeline::with_face_scorer).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::face::{Embedding, FaceError, FacePrint, FaceSettings};

/// One image scored against a print.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceScore {
    /// Faces found.
    pub faces: usize,
    /// Distance of the largest face to the print (`None` without a face).
    pub distance: Option<f64>,
    /// Distance of the face closest to the print (`None` without a face): a frame's score, where a second
    /// detection is a bystander or a false positive rather than a failure.
    pub closest: Option<f64>,
}

impl FaceScore {
    /// The score of an image whose faces (largest first) have these embeddings.
    pub fn of(faces: &[Embedding], print: &FacePrint) -> Self {
        Self {
            faces: faces.len(),
            distance: faces.first().map(|e| print.distance(e)),
            closest: faces
                .iter()
                .map(|e| print.distance(e))
                .min_by(f64::total_cmp),
        }
    }

    /// An image in which no face was found (or that could not be read).
    pub fn faceless() -> Self {
        Self {
            faces: 0,
            distance: None,
            closest: None,
        }
    }

    /// Whether the image shows exactly one face closer to the print than `threshold`.
    pub fn passes(&self, threshold: f64) -> bool {
        self.faces == 1 && self.distance.is_some_and(|d| d < threshold)
    }

    /// What ranks scores (lower is better): the distance with exactly one face, else infinity (failing).
    pub fn rank(&self) -> f64 {
        match (self.faces, self.distance) {
            (1, Some(d)) => d,
            _ => f64::INFINITY,
        }
    }

    /// Whether a sampled frame looks like the identity: a face closer to the print than `threshold`.
    pub fn frame_passes(&self, threshold: f64) -> bool {
        self.closest.is_some_and(|d| d < threshold)
    }

    /// A frame's score for logs: `0.42`, `no face` or `2 faces (closest 0.42)`.
    pub fn describe_frame(&self) -> String {
        match (self.faces, self.closest) {
            (0, _) | (_, None) => "no face".into(),
            (1, Some(d)) => format!("{d:.3}"),
            (n, Some(d)) => format!("{n} faces (closest {d:.3})"),
        }
    }

    /// A still's score for logs: `0.42`, `no face` or `3 faces (largest 0.42)`.
    pub fn describe(&self) -> String {
        match (self.faces, self.distance) {
            (0, _) | (_, None) => "no face".into(),
            (1, Some(d)) => format!("{d:.3}"),
            (n, Some(d)) => format!("{n} faces (largest {d:.3})"),
        }
    }
}

/// Finds the faces of an image; everything else is computed from their embeddings.
#[async_trait]
pub trait FaceScorer: Send + Sync {
    /// `Ok` when the scorer can work here; an [`FaceError::is_installation`] error (models missing) otherwise.
    async fn ready(&self) -> Result<(), FaceError> {
        Ok(())
    }

    /// The embeddings of every face in the image at `path`, largest first. [`FaceError::is_installation`]
    /// errors mean the scorer cannot work on this machine (scoring is then skipped).
    async fn embeddings(&self, path: &Path) -> Result<Vec<Embedding>, FaceError>;

    /// The still at `path` scored against `print`.
    async fn score(&self, path: &Path, print: &FacePrint) -> Result<FaceScore, FaceError> {
        Ok(FaceScore::of(&self.embeddings(path).await?, print))
    }

    /// Each frame scored against `print`, in order; a frame that cannot be read counts as showing no face. Only
    /// an installation error fails the whole list.
    async fn score_frames(
        &self,
        frames: &[PathBuf],
        print: &FacePrint,
    ) -> Result<Vec<FaceScore>, FaceError> {
        let mut scores = Vec::with_capacity(frames.len());
        for frame in frames {
            scores.push(match self.score(frame, print).await {
                Err(e) if e.is_installation() => return Err(e),
                Err(e) => {
                    tracing::warn!(frame = %frame.display(), error = %e, "a sampled frame cannot be scored");
                    FaceScore::faceless()
                }
                Ok(score) => score,
            });
        }
        Ok(scores)
    }
}

/// The real scorer: the face engine of `settings.models` (loaded once per process, run on the blocking pool).
#[derive(Debug, Clone)]
pub struct EngineScorer {
    /// Where the models are.
    pub settings: FaceSettings,
}

#[async_trait]
impl FaceScorer for EngineScorer {
    async fn ready(&self) -> Result<(), FaceError> {
        crate::face::load_engine(&self.settings).await.map(|_| ())
    }

    async fn embeddings(&self, path: &Path) -> Result<Vec<Embedding>, FaceError> {
        let engine = crate::face::load_engine(&self.settings).await?;
        let photo = crate::face::open_photo(path.to_path_buf()).await?;
        let found = crate::face::analyse(engine, photo).await?;
        Ok(found.faces.into_iter().map(|f| f.embedding).collect())
    }
}

/// Worst and median distance of the sampled frames that show a face (each frame's face closest to the print;
/// `None` when no frame shows one); frames without a face are failing and counted apart.
pub fn worst_and_median(scores: &[FaceScore]) -> Option<(f64, f64)> {
    let mut distances: Vec<f64> = scores.iter().filter_map(|s| s.closest).collect();
    distances.sort_by(f64::total_cmp);
    let n = distances.len();
    let worst = *distances.last()?;
    let median = if n % 2 == 1 {
        distances[n / 2]
    } else {
        (distances[n / 2 - 1] + distances[n / 2]) / 2.0
    };
    Some((worst, median))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print() -> FacePrint {
        FacePrint::from_embeddings(vec![Embedding(vec![0.0, 0.0])]).unwrap()
    }

    #[test]
    fn no_face_or_several_faces_fail_and_rank_last() {
        let p = print();
        let one = FaceScore::of(&[Embedding(vec![0.3, 0.4])], &p);
        assert!((one.distance.unwrap() - 0.5).abs() < 1e-6);
        assert!(one.passes(0.6) && !one.passes(0.4));
        let none = FaceScore::of(&[], &p);
        assert!(!none.passes(0.6) && none.rank().is_infinite());
        assert_eq!(none.describe(), "no face");
        let two = FaceScore::of(&[Embedding(vec![0.1, 0.0]), Embedding(vec![0.0, 0.0])], &p);
        assert!(!two.passes(0.6) && two.rank().is_infinite());
        assert!(two.describe().starts_with("2 faces"), "{}", two.describe());
    }

    #[test]
    fn frames_score_their_closest_face_and_faceless_frames_are_left_out() {
        let p = print();
        let s = |d: f32| FaceScore::of(&[Embedding(vec![d, 0.0])], &p);
        let crowd = FaceScore::of(&[Embedding(vec![0.9, 0.0]), Embedding(vec![0.3, 0.0])], &p);
        assert!(crowd.frame_passes(0.6) && !crowd.passes(0.6));
        assert!(
            crowd.describe_frame().contains("closest 0.300"),
            "{}",
            crowd.describe_frame()
        );
        let (worst, median) = worst_and_median(&[s(0.5), s(0.2), crowd]).unwrap();
        assert!((worst - 0.5).abs() < 1e-6 && (median - 0.3).abs() < 1e-6);
        let (worst, median) = worst_and_median(&[s(0.2), FaceScore::faceless(), s(0.4)]).unwrap();
        assert!((worst - 0.4).abs() < 1e-6 && (median - 0.3).abs() < 1e-6);
        assert!(!FaceScore::faceless().frame_passes(0.6));
        assert_eq!(worst_and_median(&[FaceScore::faceless()]), None);
        assert_eq!(worst_and_median(&[]), None);
    }
}
