//! Face embeddings and the same-person verdict.
//!
//! Two embeddings of dlib's ResNet are compared by Euclidean distance; below the threshold (0.6 by default, the
//! model's published operating point; `DEVATAR_FACE_THRESHOLD`) they are taken to show the same person.

use serde::{Deserialize, Serialize};

/// The same-person threshold used when none is configured.
pub const DEFAULT_THRESHOLD: f64 = 0.6;

/// A 128-d face embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// The Euclidean distance to `other`; infinite when the lengths differ (they never do for one model).
    pub fn distance(&self, other: &Self) -> f64 {
        if self.0.len() != other.0.len() {
            return f64::INFINITY;
        }
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            .sqrt()
    }
}

/// The comparison of two faces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The embeddings' distance.
    pub distance: f64,
    /// Whether the distance is below the threshold.
    pub same_person: bool,
    /// The threshold applied.
    pub threshold: f64,
}

impl Verdict {
    /// The verdict for two embeddings under `threshold`.
    pub fn new(a: &Embedding, b: &Embedding, threshold: f64) -> Self {
        Self::from_distance(a.distance(b), threshold)
    }

    /// The verdict for a distance already measured.
    pub fn from_distance(distance: f64, threshold: f64) -> Self {
        Self {
            distance,
            same_person: distance < threshold,
            threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_euclidean() {
        let a = Embedding(vec![0.0; 128]);
        let mut b = a.clone();
        b.0[0] = 0.3;
        b.0[5] = 0.4;
        assert!((a.distance(&b) - 0.5).abs() < 1e-6);
        assert_eq!(a.distance(&a), 0.0);
        assert!(a.distance(&Embedding(vec![0.0; 3])).is_infinite());
    }

    #[test]
    fn the_threshold_separates_same_from_different() {
        assert!(Verdict::from_distance(0.59, DEFAULT_THRESHOLD).same_person);
        assert!(!Verdict::from_distance(0.6, DEFAULT_THRESHOLD).same_person);
        assert!(!Verdict::from_distance(0.45, 0.4).same_person);
        let json = serde_json::to_value(Verdict::from_distance(0.7, 0.6)).unwrap();
        assert_eq!(json["samePerson"], false);
        assert_eq!(json["threshold"], 0.6);
    }
}
