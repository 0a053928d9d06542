//! What a collection's photos say about themselves and about each other: each photo's problems (exactly one
//! face, large and sharp enough) and the references' agreement: each face's distance to the centre of the
//! collection's other faces (the element-wise median of their embeddings), farther than the same-person threshold
//! being an outlier. Leaving the photo itself out keeps it from pulling the centre toward itself, which in a small
//! collection hides an outlier: with two photos of one person and one of another (0.67 apart), the other person
//! is 0.61 from the centre of all three but farther from the centre of the other two. When no face stands out
//! but the faces fall into groups of people (two photos of each of two people), the agreement names the groups.
//!
//! The views (`PhotoView`, `CollectionView`) are what the API and `--json` show: never an embedding.

use serde::Serialize;
use utoipa::ToSchema;

use super::vet::{Verdict, VetReport, VetSummary, VettedPhoto};
use crate::face::print::median;
use crate::face::{Embedding, FaceBox};
use crate::storage::db::PhotoRecord;

/// Below this sharpness (variance of the Laplacian of the face region at 128×128) a face is too blurred to
/// serve as a reference. Calibrated on the test photos: crisp, they measure 138 (the astronaut, an 88-pixel face)
/// and 1121 (Grace Hopper, 216 pixels); blurred by a Gaussian of σ = 2 px the astronaut measures 8, and Grace
/// Hopper 57 at σ = 3 px and 18 at σ = 5 px; at σ = 1 px the astronaut measures 29 and Grace Hopper 237 at
/// σ = 1.5 px. The measure depends on the photo and the face's size, so this floor only catches clearly blurred
/// faces; photo vetting adds a rule relative to the rest of the set (`vet::RELATIVE_SHARPNESS`).
pub const SHARPNESS_FLOOR: f64 = 25.0;

/// The smallest face accepted, as a share of the photo's shorter side.
pub const MIN_FACE_SHARE: f64 = 0.10;

/// A photo with its review.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The stored photo.
    pub record: PhotoRecord,
    /// Its face's distance to the centre of the collection's other faces (photos with exactly one face, once two
    /// or more have one).
    pub distance: Option<f64>,
    /// The distance is above the same-person threshold.
    pub outlier: bool,
    /// What is wrong with it as a reference photo by itself (empty: nothing), in words: not exactly one face, a
    /// face too small or too blurred. Its likeness to the others is `outlier` (both: [`Reviewed::reasons`]).
    pub problems: Vec<String>,
}

impl Reviewed {
    /// Its face's box as a share of the photo's shorter side, when it shows a face.
    pub fn face_share(&self) -> Option<f64> {
        face_share(&self.record)
    }

    /// Its problems, then, for an outlier, that it looks like someone else.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = self.problems.clone();
        if let (true, Some(d)) = (self.outlier, self.distance) {
            reasons.push(format!(
                "looks like someone else: {d:.2} from the other photos"
            ));
        }
        reasons
    }

    /// One line: what was found and what is wrong, e.g. `a.jpg: one face (34 % of the shorter side), sharpness
    /// 210, yaw +3°, pitch -5°`.
    pub fn describe(&self) -> String {
        let r = &self.record;
        if r.analysis.is_none() {
            return format!("{}: stored, not analysed", r.file_name);
        }
        let reasons = self.reasons();
        let verdict = if reasons.is_empty() {
            "ok".to_string()
        } else {
            reasons.join("; ")
        };
        format!("{}: {} — {verdict}", r.file_name, self.facts())
    }

    /// What the face engine found, e.g. `one face (34 % of the shorter side), sharpness 210, yaw +3°, pitch -5°,
    /// distance 0.31` (empty while not analysed).
    pub fn facts(&self) -> String {
        let Some(a) = &self.record.analysis else {
            return String::new();
        };
        let mut facts = vec![faces_text(a.face_count)];
        if let (1, Some(face), Some(share)) = (a.face_count, &a.largest, self.face_share()) {
            facts[0] = format!("one face ({:.0} % of the shorter side)", share * 100.0);
            facts.push(format!("sharpness {:.0}", face.sharpness));
            if let (Some(yaw), Some(pitch)) = (face.yaw, face.pitch) {
                facts.push(format!("yaw {yaw:+.0}°, pitch {pitch:+.0}°"));
            }
        }
        if let Some(d) = self.distance {
            facts.push(format!("distance {d:.2}"));
        }
        facts.join(", ")
    }
}

/// The largest face's box (its shorter side) as a share of the photo's shorter side.
fn face_share(record: &PhotoRecord) -> Option<f64> {
    let face = record.analysis.as_ref()?.largest.as_ref()?;
    let shorter = record.width.min(record.height).max(1) as f64;
    Some(f64::from(face.bbox.w.min(face.bbox.h)) / shorter)
}

fn faces_text(n: u32) -> String {
    match n {
        0 => "no face".into(),
        1 => "one face".into(),
        n => format!("{n} faces"),
    }
}

/// Whether the references show one person.
#[derive(Debug, Clone, PartialEq)]
pub enum Agreement {
    /// Fewer than two photos show exactly one face: nothing to compare (the count of those that do).
    TooFew(usize),
    /// Every face is within the threshold of the others' centre: how many, and the largest distance.
    Agree {
        /// Photos compared.
        count: usize,
        /// The largest distance.
        worst: f64,
    },
    /// Faces farther than the threshold from the others' centre: file names and distances, farthest first.
    Outliers(Vec<(String, f64)>),
    /// No face stands out from the rest, yet they are more than one person: groups of faces, each linked by
    /// distances under the threshold (directly or through others) and farther than it from every other group,
    /// largest first (file names), and the closest distance between two groups. Two photos of two people, or
    /// two of each, end here.
    People {
        /// The file names of each group.
        groups: Vec<Vec<String>>,
        /// The smallest distance between faces of different groups.
        closest: f64,
    },
}

impl Agreement {
    /// True unless the references disagree.
    pub fn ok(&self) -> bool {
        matches!(self, Self::TooFew(_) | Self::Agree { .. })
    }

    /// The agreement in words, e.g. `4 photos agree (worst 0.31)`.
    pub fn summary(&self) -> String {
        match self {
            Self::TooFew(0) => "no photo shows exactly one face yet: nothing to compare".into(),
            Self::TooFew(_) => "one photo shows a face: add another to compare them".into(),
            Self::Agree { count, worst } => format!("{count} photos agree (worst {worst:.2})"),
            Self::Outliers(list) => {
                let named: Vec<String> = list
                    .iter()
                    .map(|(name, d)| format!("{name} ({d:.2})"))
                    .collect();
                if named.len() == 1 {
                    format!("photo {} looks like someone else", named[0])
                } else {
                    format!("photos {} look like someone else", named.join(", "))
                }
            }
            Self::People { groups, closest } => {
                let listed: Vec<String> = groups.iter().map(|g| g.join(", ")).collect();
                format!(
                    "the photos show {} different people ({closest:.2} apart at the closest): {}",
                    groups.len(),
                    listed.join(" / ")
                )
            }
        }
    }
}

/// A reviewed collection.
#[derive(Debug, Clone)]
pub struct Collection {
    /// Its photos in order.
    pub photos: Vec<Reviewed>,
    /// Whether they show one person.
    pub agreement: Agreement,
    /// Why photos are not analysed (face models missing), when some are not.
    pub note: Option<String>,
    /// The same-person threshold applied.
    pub threshold: f64,
}

impl Collection {
    /// Reviews `photos` under the same-person `threshold`; `note` says why pending photos are not analysed.
    pub fn review(photos: Vec<PhotoRecord>, threshold: f64, note: Option<String>) -> Self {
        let embeddings: Vec<(usize, &Embedding)> = photos
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, p.analysis.as_ref()?.embedding.as_ref()?)))
            .collect();
        let mut distances = vec![None; photos.len()];
        for (i, e) in &embeddings {
            let others: Vec<Embedding> = embeddings
                .iter()
                .filter(|(j, _)| j != i)
                .map(|(_, o)| (*o).clone())
                .collect();
            distances[*i] = median(&others).map(|centre| centre.distance(e));
        }
        let agreement = agreement(&photos, &embeddings, &distances, threshold);
        let photos = photos
            .into_iter()
            .zip(distances)
            .map(|(record, distance)| Reviewed {
                problems: problems(&record),
                outlier: distance.is_some_and(|d| d > threshold),
                record,
                distance,
            })
            .collect();
        Self {
            photos,
            agreement,
            note,
            threshold,
        }
    }

    /// Its vetting: which photos may train and why the others may not.
    pub fn vet(&self) -> VetReport {
        VetReport::of(self)
    }

    /// The photos shown as the API and `--json` show them (media URLs under `/media/`), with their vetting.
    pub fn view(&self) -> CollectionView {
        let vet = self.vet();
        CollectionView {
            photos: self
                .photos
                .iter()
                .zip(&vet.photos)
                .map(|(p, v)| PhotoView::new(p, v, self.note.as_deref()))
                .collect(),
            agreement: self.agreement.summary(),
            agree: self.agreement.ok(),
            threshold: self.threshold,
            note: self.note.clone(),
            verdict: vet.verdict,
            usable_photos: vet.usable_photos,
            summary: vet.summary,
        }
    }
}

/// The references' agreement: too few faces to compare; the faces farther than `threshold` from the others'
/// centre, when some (not all) are; else the groups of people when there are several; else agreement.
fn agreement(
    photos: &[PhotoRecord],
    faces: &[(usize, &Embedding)],
    distances: &[Option<f64>],
    threshold: f64,
) -> Agreement {
    if faces.len() < 2 {
        return Agreement::TooFew(faces.len());
    }
    let mut far: Vec<(String, f64)> = faces
        .iter()
        .filter_map(|(i, _)| {
            distances[*i]
                .filter(|d| *d > threshold)
                .map(|d| (photos[*i].file_name.clone(), d))
        })
        .collect();
    if !far.is_empty() && far.len() < faces.len() {
        far.sort_by(|a, b| b.1.total_cmp(&a.1));
        return Agreement::Outliers(far);
    }
    let groups = linked_groups(faces, threshold);
    if groups.len() > 1 {
        let closest = groups
            .iter()
            .enumerate()
            .flat_map(|(g, members)| {
                groups[g + 1..]
                    .iter()
                    .flatten()
                    .flat_map(move |b| members.iter().map(move |a| (*a, *b)))
            })
            .map(|(a, b)| faces[a].1.distance(faces[b].1))
            .fold(f64::INFINITY, f64::min);
        let groups = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|k| photos[faces[*k].0].file_name.clone())
                    .collect()
            })
            .collect();
        return Agreement::People { groups, closest };
    }
    Agreement::Agree {
        count: faces.len(),
        worst: distances.iter().flatten().copied().fold(0.0, f64::max),
    }
}

/// The faces (positions in `faces`) grouped by links of distances under `threshold`, directly or through other
/// faces; largest group first, each in collection order.
fn linked_groups(faces: &[(usize, &Embedding)], threshold: f64) -> Vec<Vec<usize>> {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..faces.len()).collect();
    for a in 0..faces.len() {
        for b in a + 1..faces.len() {
            if faces[a].1.distance(faces[b].1) < threshold {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    for k in 0..faces.len() {
        let r = root(&mut parent, k);
        match roots.iter().position(|x| *x == r) {
            Some(g) => groups[g].push(k),
            None => {
                roots.push(r);
                groups.push(vec![k]);
            }
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    groups
}

/// What keeps a photo from being a good reference by itself: not exactly one face, a face under
/// [`MIN_FACE_SHARE`] of the shorter side or under [`SHARPNESS_FLOOR`].
fn problems(record: &PhotoRecord) -> Vec<String> {
    let Some(a) = &record.analysis else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match a.face_count {
        0 => out.push("no face found: a reference photo must show exactly one face".into()),
        1 => {}
        n => out.push(format!(
            "{n} faces: a reference photo must show exactly one face"
        )),
    }
    if let (1, Some(face), Some(share)) = (a.face_count, &a.largest, face_share(record)) {
        if share < MIN_FACE_SHARE {
            out.push(format!(
                "face too small: {:.0} % of the shorter side (at least {:.0} %)",
                share * 100.0,
                MIN_FACE_SHARE * 100.0
            ));
        }
        if face.sharpness < SHARPNESS_FLOOR {
            out.push(format!(
                "face too blurred: sharpness {:.0} (at least {SHARPNESS_FLOOR:.0})",
                face.sharpness
            ));
        }
    }
    out
}

/// A reference photo as the API and `--json` show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhotoView {
    /// Id.
    pub id: String,
    /// The base name of the file the user gave.
    pub file_name: String,
    /// Where the photo is served (`/media/<key>`, with credentials).
    pub url: String,
    /// Pixel width.
    pub width: i64,
    /// Pixel height.
    pub height: i64,
    /// Faces found (`null` until analysed).
    pub face_count: Option<u32>,
    /// The largest face's box, in pixels.
    #[serde(rename = "box")]
    #[schema(value_type = Option<Object>)]
    pub face_box: Option<FaceBox>,
    /// The largest face's sharpness (variance of the Laplacian at 128×128).
    pub sharpness: Option<f64>,
    /// The largest face's yaw, degrees (positive toward the image's right).
    pub yaw: Option<f64>,
    /// The largest face's pitch, degrees (positive with the chin raised).
    pub pitch: Option<f64>,
    /// Distance of its face to the centre of the collection's other faces (when two or more photos show exactly
    /// one face).
    pub distance: Option<f64>,
    /// The distance is above the same-person threshold: it looks like someone else.
    pub outlier: bool,
    /// What keeps it from being a good reference (empty: nothing).
    pub problems: Vec<String>,
    /// Why it is not analysed, when it is not.
    pub note: Option<String>,
    /// When it was added, epoch ms.
    pub created_at: i64,
    /// Its vetting verdict (see `GET /api/identities/{id}/vet`).
    pub verdict: Verdict,
    /// Whether training uses it (not blocked).
    pub usable: bool,
    /// Why it is blocked or warned.
    pub reasons: Vec<String>,
}

impl PhotoView {
    fn new(p: &Reviewed, vet: &VettedPhoto, note: Option<&str>) -> Self {
        let r = &p.record;
        let face = r.analysis.as_ref().and_then(|a| a.largest.as_ref());
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        Self {
            id: r.id.clone(),
            file_name: r.file_name.clone(),
            url: format!("/{}", r.object_key),
            width: r.width,
            height: r.height,
            face_count: r.analysis.as_ref().map(|a| a.face_count),
            face_box: face.map(|f| f.bbox),
            sharpness: face.map(|f| round(f.sharpness)),
            yaw: face.and_then(|f| f.yaw).map(round),
            pitch: face.and_then(|f| f.pitch).map(round),
            distance: p.distance.map(round),
            outlier: p.outlier,
            problems: p.reasons(),
            note: match &r.analysis {
                None => Some(note.unwrap_or("not analysed yet").to_string()),
                Some(_) => None,
            },
            created_at: r.created_at,
            verdict: vet.verdict,
            usable: vet.usable,
            reasons: vet.reasons.clone(),
        }
    }
}

/// An identity's reference photos as the API and `--json` show them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionView {
    /// In the order they were added.
    pub photos: Vec<PhotoView>,
    /// Reference agreement in words, e.g. `4 photos agree (worst 0.31)` or `photo b.jpg looks like someone
    /// else (0.72)`.
    pub agreement: String,
    /// False when the references look like more than one person.
    pub agree: bool,
    /// The same-person threshold (`DEVATAR_FACE_THRESHOLD`).
    pub threshold: f64,
    /// Why photos are not analysed (face models missing), when some are not.
    pub note: Option<String>,
    /// The set's vetting verdict: `blocked` when training may not go ahead.
    pub verdict: Verdict,
    /// Photos training would use.
    pub usable_photos: usize,
    /// The set's vetting summary.
    pub summary: VetSummary,
}

/// One photo of an `add`: its id, the base name of its file, and whether it was new.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddedPhoto {
    /// The photo's id in the collection.
    pub id: String,
    /// The base name of the file.
    pub file_name: String,
    /// False when the identity already had this content (nothing was added).
    pub new: bool,
}

impl From<&super::Added> for AddedPhoto {
    fn from(a: &super::Added) -> Self {
        Self {
            id: a.photo.id.clone(),
            file_name: a.photo.file_name.clone(),
            new: a.new,
        }
    }
}

/// The answer to an `add` (the API's upload, `identity photos add --json`): each file, then the collection.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhotosAdded {
    /// The files given, in order.
    pub added: Vec<AddedPhoto>,
    /// The collection after the add.
    #[serde(flatten)]
    pub collection: CollectionView,
}

impl PhotosAdded {
    /// The answer for `added` photos, now part of `collection`.
    pub fn new(added: Vec<AddedPhoto>, collection: &Collection) -> Self {
        Self {
            added,
            collection: collection.view(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::{FaceAnalysis, FaceFacts};

    fn photo(name: &str, embedding: Option<[f32; 2]>, faces: u32) -> PhotoRecord {
        PhotoRecord {
            id: name.into(),
            identity_id: "i".into(),
            object_key: format!("media/aa/{name}"),
            sha256: name.into(),
            mime: "image/jpeg".into(),
            file_name: name.into(),
            width: 500,
            height: 400,
            position: 0,
            created_at: 0,
            analysis: Some(FaceAnalysis {
                face_count: faces,
                largest: (faces > 0).then_some(FaceFacts {
                    bbox: FaceBox {
                        x: 10,
                        y: 10,
                        w: 100,
                        h: 100,
                    },
                    sharpness: 200.0,
                    yaw: Some(1.0),
                    pitch: Some(-2.0),
                    brightness: Some(100.0),
                }),
                embedding: embedding.map(|e| Embedding(e.to_vec())),
            }),
        }
    }

    #[test]
    fn an_odd_face_out_is_named_and_agreeing_faces_give_the_worst_distance() {
        let a = photo("a.jpg", Some([0.0, 0.0]), 1);
        let b = photo("b.jpg", Some([0.1, 0.0]), 1);
        let c = photo("c.jpg", Some([0.0, 0.2]), 1);
        let agree = Collection::review(vec![a.clone(), b.clone(), c], 0.6, None);
        assert!(
            matches!(agree.agreement, Agreement::Agree { count: 3, worst } if (worst - 0.206).abs() < 1e-3),
            "{:?}",
            agree.agreement
        );
        assert_eq!(agree.agreement.summary(), "3 photos agree (worst 0.21)");
        let other = photo("other.jpg", Some([0.9, 0.9]), 1);
        let c2 = photo("c.jpg", Some([0.05, 0.0]), 1);
        let mixed = Collection::review(vec![a.clone(), b.clone(), c2, other], 0.6, None);
        let Agreement::Outliers(list) = &mixed.agreement else {
            panic!("{:?}", mixed.agreement)
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].0, "other.jpg");
        assert!(mixed.agreement.summary().starts_with("photo other.jpg (1."));
        assert!(mixed.photos[3].outlier && !mixed.photos[0].outlier);
        assert!(mixed.photos[3].problems.is_empty());
        assert!(mixed.photos[3].reasons()[0].starts_with("looks like someone else: 1."));
        assert!(!mixed.agreement.ok());
        let x = photo("x.jpg", Some([0.9, 0.0]), 1);
        let pair = Collection::review(vec![a.clone(), x.clone()], 0.6, None);
        assert_eq!(
            pair.agreement.summary(),
            "the photos show 2 different people (0.90 apart at the closest): a.jpg / x.jpg"
        );
        // Two of each: nobody stands out from the others' centre, yet they are two people.
        let y = photo("y.jpg", Some([0.95, 0.05]), 1);
        let split = Collection::review(vec![a, x, b, y], 0.6, None);
        let Agreement::People { groups, closest } = &split.agreement else {
            panic!("{:?}", split.agreement)
        };
        assert_eq!(groups, &[vec!["a.jpg", "b.jpg"], vec!["x.jpg", "y.jpg"]]);
        assert!((closest - 0.8).abs() < 1e-6, "{closest}");
        assert!(!split.agreement.ok());
    }

    #[test]
    fn photos_without_exactly_one_sharp_large_face_have_problems() {
        let none = photo("none.jpg", None, 0);
        let two = photo("two.jpg", None, 2);
        let mut small = photo("small.jpg", Some([0.0, 0.0]), 1);
        if let Some(f) = small.analysis.as_mut().and_then(|a| a.largest.as_mut()) {
            f.bbox.w = 30;
            f.bbox.h = 30;
            f.sharpness = 5.0;
        }
        let c = Collection::review(vec![none, two, small], 0.6, None);
        assert_eq!(c.agreement, Agreement::TooFew(1));
        assert!(c.photos[0].problems[0].starts_with("no face found"));
        assert!(c.photos[1].problems[0].starts_with("2 faces"));
        let small = &c.photos[2];
        assert_eq!(small.problems.len(), 2, "{:?}", small.problems);
        assert!(small.problems[0].contains("8 % of the shorter side"));
        assert!(small.problems[1].contains("sharpness 5"));
        assert!(
            small
                .describe()
                .starts_with("small.jpg: one face (8 % of the shorter side), sharpness 5")
        );
    }

    #[test]
    fn pending_photos_carry_the_note_and_never_an_embedding() {
        let mut p = photo("a.jpg", Some([0.3, 0.4]), 1);
        let pending = PhotoRecord {
            analysis: None,
            ..p.clone()
        };
        p.id = "b".into();
        let c = Collection::review(vec![pending], 0.6, Some("face models not installed".into()));
        let json = serde_json::to_value(c.view()).unwrap();
        assert_eq!(json["photos"][0]["note"], "face models not installed");
        assert_eq!(json["photos"][0]["faceCount"], serde_json::Value::Null);
        assert_eq!(json["photos"][0]["url"], "/media/aa/a.jpg");
        let analysed =
            serde_json::to_string(&Collection::review(vec![p], 0.6, None).view()).unwrap();
        assert!(
            !analysed.contains("0.3") && !analysed.contains("embedding"),
            "{analysed}"
        );
    }
}
