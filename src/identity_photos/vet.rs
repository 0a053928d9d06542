//! Photo vetting: the one rule set that decides which of an identity's reference photos may train its digital
//! twin (CLI `identity vet` and `photos add`, the API's `vet` route and photo lists, the identity page, training).
//!
//! Per photo, *blocked* (left out of training, still listed with its reasons): not a PNG/JPEG, under 512×512, not
//! analysed (face models missing), not exactly one face, a face under 10 % of the shorter side, a face blurred
//! below [`SHARPNESS_FLOOR`] or below [`RELATIVE_SHARPNESS`] of the set's median sharpness, a face farther than the
//! same-person threshold from the others' median embedding (or in a minority group of another person). *Warned*
//! (still usable): under 1024×1024, a near-duplicate of an earlier photo (embeddings closer than
//! [`NEAR_DUPLICATE`]). For the set: the count (warned outside [`RECOMMENDED`]), training refused with fewer than
//! [`MIN_USABLE`] usable photos, and the variety of head pose and of lighting over the usable photos.

use serde::Serialize;
use utoipa::ToSchema;

use super::review::{Agreement, Collection, Reviewed, SHARPNESS_FLOOR};
use crate::face::Embedding;

/// Photos under this size on either side are blocked.
pub const MIN_SIDE: i64 = 512;
/// Photos under this size on either side are warned.
pub const GOOD_SIDE: i64 = 1024;
/// A face whose sharpness is under this share of the set's median is blocked (a relative rule: photos of one
/// set share a camera and a resolution far more than the floor can assume). Calibrated on the test photos:
/// a Gaussian blur of σ = 1 px leaves the astronaut at 21 % of its sharpness (138 → 29), σ = 1.5 px Grace Hopper
/// at 21 % (1121 → 237), while crisp photos of one person and size differ far less.
pub const RELATIVE_SHARPNESS: f64 = 0.25;
/// The relative sharpness rule needs this many faces to take a median from.
pub const MIN_FACES_FOR_MEDIAN: usize = 3;
/// Two faces closer than this embedding distance are near-duplicates (the same shot resized, rotated or
/// re-cropped measures 0.05–0.07 on the test photos; different photos of one person 0.2–0.5).
pub const NEAR_DUPLICATE: f64 = 0.12;
/// The recommended number of photos in a set.
pub const RECOMMENDED: std::ops::RangeInclusive<usize> = 15..=30;
/// Training is refused with fewer usable photos.
pub const MIN_USABLE: usize = 4;

/// A verdict: on a photo or on the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing to say.
    Ok,
    /// Usable, with something to improve.
    Warn,
    /// A photo left out of training; a set that may not train.
    Blocked,
}

impl Verdict {
    /// `ok`, `warn` or `blocked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Blocked => "blocked",
        }
    }
}

/// One photo's vetting.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VettedPhoto {
    /// The photo's id in the collection.
    #[serde(skip)]
    pub id: String,
    /// The base name of the file given to `add`.
    pub file_name: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// Whether training uses it (not blocked).
    pub usable: bool,
    /// Why it is blocked or warned (blocking reasons first).
    pub reasons: Vec<String>,
    /// Its content-addressed object key (what training packs).
    #[serde(skip)]
    pub object_key: String,
    /// Its content hash.
    #[serde(skip)]
    pub sha256: String,
    /// Its MIME type (`image/png` or `image/jpeg`).
    #[serde(skip)]
    pub mime: String,
}

/// How varied something is across the usable photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Variety {
    /// Fewer than two usable photos measure it.
    Unknown,
    /// Nearly the same everywhere.
    Low,
    /// Some.
    Some,
    /// Good.
    Good,
}

impl Variety {
    /// `unknown`, `low`, `some` or `good`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Low => "low",
            Self::Some => "some",
            Self::Good => "good",
        }
    }
}

/// The head poses of the usable photos.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoseSummary {
    /// Yaw range, degrees (positive toward the image's right): lowest, highest.
    pub yaw: Option<[f64; 2]>,
    /// Pitch range, degrees (positive with the chin raised): lowest, highest.
    pub pitch: Option<[f64; 2]>,
    /// How varied: low under 15° of yaw and 10° of pitch, good from 30° of yaw or 20° of pitch.
    pub variety: Variety,
}

/// The lighting of the usable photos' faces.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LightingSummary {
    /// Mean face luma range, 0–255: darkest, brightest.
    pub brightness: Option<[f64; 2]>,
    /// How varied: low under 20 levels apart, good from 50.
    pub variety: Variety,
}

/// The set as a whole.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VetSummary {
    /// Photos in the set.
    pub count: usize,
    /// Photos blocked.
    pub blocked: usize,
    /// Photos warned (usable).
    pub warned: usize,
    /// What is said of the set: the count outside 15–30, training refused, photos not analysed, little variety.
    pub reasons: Vec<String>,
    /// Head-pose variety.
    pub head_pose: PoseSummary,
    /// Lighting variety.
    pub lighting: LightingSummary,
}

/// An identity's photo set, vetted: what `identity vet --json` and `GET /api/identities/{id}/vet` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VetReport {
    /// `blocked` when training may not go ahead, `warn` when it may with something to improve, else `ok`.
    pub verdict: Verdict,
    /// Photos training would use.
    pub usable_photos: usize,
    /// Every photo, in collection order.
    pub photos: Vec<VettedPhoto>,
    /// The set.
    pub summary: VetSummary,
}

impl VetReport {
    /// Vets a reviewed collection.
    pub fn of(collection: &Collection) -> Self {
        let set = SetFacts::of(collection);
        let photos: Vec<VettedPhoto> = collection
            .photos
            .iter()
            .enumerate()
            .map(|(i, p)| vet_photo(i, p, collection, &set))
            .collect();
        let usable: Vec<&Reviewed> = collection
            .photos
            .iter()
            .zip(&photos)
            .filter(|(_, v)| v.usable)
            .map(|(p, _)| p)
            .collect();
        let summary = summarise(collection, &photos, &usable);
        let usable_photos = usable.len();
        let verdict = if usable_photos < MIN_USABLE {
            Verdict::Blocked
        } else if summary.reasons.is_empty() && photos.iter().all(|p| p.verdict == Verdict::Ok) {
            Verdict::Ok
        } else {
            Verdict::Warn
        };
        Self {
            verdict,
            usable_photos,
            photos,
            summary,
        }
    }

    /// Whether training may go ahead: at least [`MIN_USABLE`] usable photos.
    pub fn may_train(&self) -> bool {
        self.usable_photos >= MIN_USABLE
    }

    /// The photos training uses.
    pub fn usable(&self) -> impl Iterator<Item = &VettedPhoto> {
        self.photos.iter().filter(|p| p.usable)
    }
}

/// What the per-photo rules need to know of the whole set.
struct SetFacts {
    /// The median sharpness of the photos with exactly one face, when enough have one.
    median_sharpness: Option<f64>,
    /// File names of faces in a minority group of people, with the reason.
    other_people: Vec<(String, String)>,
}

impl SetFacts {
    fn of(c: &Collection) -> Self {
        let mut sharpness: Vec<f64> = c
            .photos
            .iter()
            .filter_map(|p| one_face(p).map(|(f, _)| f.sharpness))
            .collect();
        sharpness.sort_by(f64::total_cmp);
        let median_sharpness = (sharpness.len() >= MIN_FACES_FOR_MEDIAN).then(|| {
            let n = sharpness.len();
            if n % 2 == 1 {
                sharpness[n / 2]
            } else {
                (sharpness[n / 2 - 1] + sharpness[n / 2]) / 2.0
            }
        });
        Self {
            median_sharpness,
            other_people: other_people(&c.agreement),
        }
    }
}

/// When the faces fall into groups of people and no face stands out: the faces outside the largest group (every
/// grouped face when the largest is tied), each with its reason.
fn other_people(agreement: &Agreement) -> Vec<(String, String)> {
    let Agreement::People { groups, .. } = agreement else {
        return Vec::new();
    };
    let tied = groups.len() > 1 && groups[0].len() == groups[1].len();
    let blocked = if tied { &groups[..] } else { &groups[1..] };
    let reason = if tied {
        format!(
            "the photos show {} different people in equal numbers: keep one person's photos",
            groups.len()
        )
    } else {
        format!(
            "looks like another person than most photos ({})",
            groups[0].join(", ")
        )
    };
    blocked
        .iter()
        .flatten()
        .map(|name| (name.clone(), reason.clone()))
        .collect()
}

/// The lone face of a photo and its embedding, when it shows exactly one face.
fn one_face(p: &Reviewed) -> Option<(&crate::storage::db::FaceFacts, &Embedding)> {
    let a = p.record.analysis.as_ref()?;
    if a.face_count != 1 {
        return None;
    }
    Some((a.largest.as_ref()?, a.embedding.as_ref()?))
}

/// The rules for photo `i` of the collection.
fn vet_photo(i: usize, p: &Reviewed, c: &Collection, set: &SetFacts) -> VettedPhoto {
    let r = &p.record;
    let mut blocked = Vec::new();
    let mut warned = Vec::new();
    if !matches!(r.mime.as_str(), "image/png" | "image/jpeg") {
        blocked.push(format!("not a PNG or JPEG image ({})", r.mime));
    }
    if r.width.min(r.height) < MIN_SIDE {
        blocked.push(format!(
            "too small: {}×{} pixels (at least {MIN_SIDE}×{MIN_SIDE})",
            r.width, r.height
        ));
    } else if r.width.min(r.height) < GOOD_SIDE {
        warned.push(format!(
            "{}×{} pixels: {GOOD_SIDE}×{GOOD_SIDE} or more is recommended",
            r.width, r.height
        ));
    }
    if r.analysis.is_none() {
        let why = c.note.as_deref().unwrap_or("not analysed yet");
        blocked.push(format!("not analysed: {why}"));
    }
    blocked.extend(p.reasons());
    if let (Some((face, _)), Some(median)) = (one_face(p), set.median_sharpness)
        && face.sharpness >= SHARPNESS_FLOOR
        && face.sharpness < RELATIVE_SHARPNESS * median
    {
        blocked.push(format!(
            "face blurred compared with the other photos: sharpness {:.0}, the set's median {median:.0} \
             (at least {:.0} % of it)",
            face.sharpness,
            RELATIVE_SHARPNESS * 100.0
        ));
    }
    if let Some((_, why)) = set.other_people.iter().find(|(n, _)| *n == r.file_name) {
        blocked.push(why.clone());
    }
    if let Some(dup) = near_duplicate(i, p, c) {
        warned.push(dup);
    }
    let verdict = match (blocked.is_empty(), warned.is_empty()) {
        (false, _) => Verdict::Blocked,
        (true, false) => Verdict::Warn,
        (true, true) => Verdict::Ok,
    };
    blocked.extend(warned);
    VettedPhoto {
        id: r.id.clone(),
        file_name: r.file_name.clone(),
        verdict,
        usable: verdict != Verdict::Blocked,
        reasons: blocked,
        object_key: r.object_key.clone(),
        sha256: r.sha256.clone(),
        mime: r.mime.clone(),
    }
}

/// The warning for photo `i` when its face is a near-duplicate of an earlier photo's (the closest one).
fn near_duplicate(i: usize, p: &Reviewed, c: &Collection) -> Option<String> {
    let (_, mine) = one_face(p)?;
    let (name, d) = c.photos[..i]
        .iter()
        .filter_map(|o| Some((&o.record.file_name, one_face(o)?.1.distance(mine))))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    (d < NEAR_DUPLICATE)
        .then(|| format!("near-duplicate of {name} (distance {d:.2}): it adds little to training"))
}

/// The set's summary: counts, the set's own reasons, pose and lighting variety over the `usable` photos.
fn summarise(c: &Collection, photos: &[VettedPhoto], usable: &[&Reviewed]) -> VetSummary {
    let count = photos.len();
    let mut reasons = Vec::new();
    if !RECOMMENDED.contains(&count) {
        reasons.push(format!(
            "{count} photos: {}–{} are recommended",
            RECOMMENDED.start(),
            RECOMMENDED.end()
        ));
    }
    if usable.len() < MIN_USABLE {
        reasons.push(format!(
            "{} usable photos: training needs at least {MIN_USABLE}",
            usable.len()
        ));
    }
    if let Some(note) = c
        .note
        .as_ref()
        .filter(|_| c.photos.iter().any(|p| p.record.analysis.is_none()))
    {
        reasons.push(format!("photos not analysed: {note}"));
    }
    let head_pose = pose_summary(usable);
    if head_pose.variety == Variety::Low {
        reasons.push(
            "little head-pose variety: add photos with the head turned left, right, up and down"
                .into(),
        );
    }
    let lighting = lighting_summary(usable);
    if lighting.variety == Variety::Low {
        reasons.push("little lighting variety: add photos taken in other light".into());
    }
    VetSummary {
        count,
        blocked: photos
            .iter()
            .filter(|p| p.verdict == Verdict::Blocked)
            .count(),
        warned: photos.iter().filter(|p| p.verdict == Verdict::Warn).count(),
        reasons,
        head_pose,
        lighting,
    }
}

/// The lowest and highest of `values` (rounded to 0.1), when there are two or more.
fn range(values: impl Iterator<Item = f64>) -> Option<[f64; 2]> {
    let values: Vec<f64> = values.collect();
    if values.len() < 2 {
        return None;
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let round = |v: f64| (v * 10.0).round() / 10.0;
    Some([round(lo), round(hi)])
}

fn pose_summary(usable: &[&Reviewed]) -> PoseSummary {
    let faces = || usable.iter().filter_map(|p| one_face(p).map(|(f, _)| f));
    let yaw = range(faces().filter_map(|f| f.yaw));
    let pitch = range(faces().filter_map(|f| f.pitch));
    let span = |r: Option<[f64; 2]>| r.map(|[lo, hi]| hi - lo);
    let variety = match (span(yaw), span(pitch)) {
        (Some(y), Some(p)) if y >= 30.0 || p >= 20.0 => Variety::Good,
        (Some(y), Some(p)) if y < 15.0 && p < 10.0 => Variety::Low,
        (Some(_), Some(_)) => Variety::Some,
        _ => Variety::Unknown,
    };
    PoseSummary {
        yaw,
        pitch,
        variety,
    }
}

fn lighting_summary(usable: &[&Reviewed]) -> LightingSummary {
    let brightness = range(
        usable
            .iter()
            .filter_map(|p| one_face(p).and_then(|(f, _)| f.brightness)),
    );
    let variety = match brightness.map(|[lo, hi]| hi - lo) {
        None => Variety::Unknown,
        Some(s) if s < 20.0 => Variety::Low,
        Some(s) if s < 50.0 => Variety::Some,
        Some(_) => Variety::Good,
    };
    LightingSummary {
        brightness,
        variety,
    }
}

#[cfg(test)]
#[path = "vet_tests.rs"]
mod tests;
