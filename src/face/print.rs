//! An identity's face print: the embeddings of its reference photos and their element-wise median, the point a
//! generated still or a final clip is measured against.

use serde::{Deserialize, Serialize};

use super::compare::Embedding;

/// The face print of one identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacePrint {
    /// One embedding per usable reference photo, in the collection's order.
    pub references: Vec<Embedding>,
    /// The element-wise median of `references`.
    pub centre: Embedding,
}

impl FacePrint {
    /// The print of `references`; `None` when there are none.
    pub fn from_embeddings(references: Vec<Embedding>) -> Option<Self> {
        let centre = median(&references)?;
        Some(Self { references, centre })
    }

    /// The distance of a face to this print (to its centre).
    pub fn distance(&self, face: &Embedding) -> f64 {
        self.centre.distance(face)
    }
}

/// The element-wise median of equally long embeddings; `None` for an empty set.
pub fn median(embeddings: &[Embedding]) -> Option<Embedding> {
    let first = embeddings.first()?;
    let mut column = Vec::with_capacity(embeddings.len());
    let values = (0..first.0.len())
        .map(|i| {
            column.clear();
            column.extend(embeddings.iter().filter_map(|e| e.0.get(i).copied()));
            column.sort_by(f32::total_cmp);
            let n = column.len();
            if n % 2 == 1 {
                column[n / 2]
            } else {
                (column[n / 2 - 1] + column[n / 2]) / 2.0
            }
        })
        .collect();
    Some(Embedding(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centre_is_the_element_wise_median() {
        let e = |v: [f32; 2]| Embedding(v.to_vec());
        let print =
            FacePrint::from_embeddings(vec![e([0.0, 1.0]), e([0.2, 5.0]), e([10.0, 2.0])]).unwrap();
        assert_eq!(print.centre, e([0.2, 2.0]));
        assert_eq!(median(&[e([1.0, 2.0]), e([3.0, 4.0])]), Some(e([2.0, 3.0])));
        assert!(FacePrint::from_embeddings(Vec::new()).is_none());
        assert!((print.distance(&e([0.2, 2.5])) - 0.5).abs() < 1e-6);
        let json = serde_json::to_string(&print).unwrap();
        assert_eq!(serde_json::from_str::<FacePrint>(&json).unwrap(), print);
    }
}
