//! The vetting rules on synthetic analysis values: each rule on its own, so each can fail.

use super::*;
use crate::face::FaceBox;
use crate::storage::db::{FaceAnalysis, FaceFacts, PhotoRecord};

/// A 1200×1200 JPEG with one large, sharp face at `embedding`, yaw/pitch and brightness given.
fn photo(name: &str, embedding: [f32; 2], yaw: f64, brightness: f64) -> PhotoRecord {
    PhotoRecord {
        id: name.into(),
        identity_id: "i".into(),
        object_key: format!("media/aa/{name}"),
        sha256: format!("sha-{name}"),
        mime: "image/jpeg".into(),
        file_name: name.into(),
        width: 1200,
        height: 1200,
        position: 0,
        created_at: 0,
        analysis: Some(FaceAnalysis {
            face_count: 1,
            largest: Some(FaceFacts {
                bbox: FaceBox {
                    x: 100,
                    y: 100,
                    w: 400,
                    h: 400,
                },
                sharpness: 200.0,
                yaw: Some(yaw),
                pitch: Some(yaw / 2.0),
                brightness: Some(brightness),
            }),
            embedding: Some(Embedding(embedding.to_vec())),
        }),
    }
}

/// Embedding `i` of one person: on a grid 0.13 apart (no near-duplicates, all within 0.5 of the centre).
fn grid(i: usize) -> [f32; 2] {
    [(i % 6) as f32 * 0.13, (i / 6) as f32 * 0.13]
}

/// `n` good photos of one person: no near-duplicates, varied pose and light.
fn good_set(n: usize) -> Vec<PhotoRecord> {
    (0..n)
        .map(|i| {
            photo(
                &format!("p{i}.jpg"),
                grid(i),
                -20.0 + 40.0 * i as f64 / n as f64,
                60.0 + 120.0 * i as f64 / n as f64,
            )
        })
        .collect()
}

fn face(p: &mut PhotoRecord) -> &mut FaceFacts {
    p.analysis.as_mut().unwrap().largest.as_mut().unwrap()
}

fn vet(photos: Vec<PhotoRecord>) -> VetReport {
    VetReport::of(&Collection::review(photos, 0.6, None))
}

fn reasons_of<'a>(r: &'a VetReport, name: &str) -> &'a VettedPhoto {
    r.photos.iter().find(|p| p.file_name == name).unwrap()
}

#[test]
fn a_good_set_of_twenty_is_ok_and_may_train() {
    let r = vet(good_set(20));
    assert_eq!(r.verdict, Verdict::Ok, "{r:#?}");
    assert!(r.may_train());
    assert_eq!(r.usable_photos, 20);
    assert_eq!(r.summary.head_pose.variety, Variety::Good);
    assert_eq!(r.summary.lighting.variety, Variety::Good);
    assert_eq!(r.usable().next().unwrap().object_key, "media/aa/p0.jpg");
}

#[test]
fn size_blocks_under_512_and_warns_under_1024() {
    let mut set = good_set(16);
    (set[0].width, set[0].height) = (511, 900);
    (set[1].width, set[1].height) = (800, 1000);
    let r = vet(set);
    let tiny = reasons_of(&r, "p0.jpg");
    assert_eq!((tiny.verdict, tiny.usable), (Verdict::Blocked, false));
    assert_eq!(
        tiny.reasons,
        ["too small: 511×900 pixels (at least 512×512)"]
    );
    let small = reasons_of(&r, "p1.jpg");
    assert_eq!((small.verdict, small.usable), (Verdict::Warn, true));
    assert!(small.reasons[0].contains("1024×1024 or more is recommended"));
    assert_eq!(r.verdict, Verdict::Warn);
    assert_eq!((r.summary.blocked, r.summary.warned), (1, 1));
}

#[test]
fn a_format_other_than_png_or_jpeg_is_blocked() {
    let mut set = good_set(16);
    set[3].mime = "image/webp".into();
    let r = vet(set);
    assert_eq!(
        reasons_of(&r, "p3.jpg").reasons,
        ["not a PNG or JPEG image (image/webp)"]
    );
}

#[test]
fn faces_other_than_one_large_sharp_face_are_blocked() {
    let mut set = good_set(16);
    let mut none = set[0].analysis.clone().unwrap();
    (none.face_count, none.largest, none.embedding) = (0, None, None);
    set[0].analysis = Some(none);
    set[1].analysis.as_mut().unwrap().face_count = 2;
    set[1].analysis.as_mut().unwrap().embedding = None;
    face(&mut set[2]).bbox.w = 100;
    face(&mut set[3]).sharpness = 10.0;
    let r = vet(set);
    assert!(reasons_of(&r, "p0.jpg").reasons[0].starts_with("no face found"));
    assert!(reasons_of(&r, "p1.jpg").reasons[0].starts_with("2 faces"));
    assert!(reasons_of(&r, "p2.jpg").reasons[0].starts_with("face too small: 8 %"));
    assert!(reasons_of(&r, "p3.jpg").reasons[0].starts_with("face too blurred: sharpness 10"));
    assert_eq!(r.usable_photos, 12);
}

#[test]
fn a_face_far_below_the_sets_median_sharpness_is_blocked_even_above_the_floor() {
    let mut set = good_set(16);
    face(&mut set[4]).sharpness = 40.0; // above the floor, 20 % of the median 200
    face(&mut set[5]).sharpness = 60.0; // 30 %: soft, yet kept
    let r = vet(set.clone());
    let soft = reasons_of(&r, "p4.jpg");
    assert_eq!(soft.verdict, Verdict::Blocked);
    assert!(
        soft.reasons[0].starts_with(
            "face blurred compared with the other photos: sharpness 40, the set's median 200"
        ),
        "{:?}",
        soft.reasons
    );
    assert_eq!(reasons_of(&r, "p5.jpg").verdict, Verdict::Ok);
    // Relative: in a set whose faces all measure 40 it is fine.
    for p in &mut set {
        face(p).sharpness = 40.0;
    }
    assert!(vet(set).photos.iter().all(|p| p.usable));
}

#[test]
fn another_person_is_blocked_and_named() {
    let mut set = good_set(16);
    set.push(photo("someone-else.jpg", [1.5, 1.5], 0.0, 100.0));
    let r = vet(set);
    let other = reasons_of(&r, "someone-else.jpg");
    assert_eq!(other.verdict, Verdict::Blocked);
    assert!(
        other.reasons[0].starts_with("looks like someone else: 1.8"),
        "{:?}",
        other.reasons
    );
    assert_eq!(r.usable_photos, 16);
}

#[test]
fn two_people_in_equal_numbers_are_all_blocked() {
    let split = vec![
        photo("a.jpg", [0.0, 0.0], 0.0, 100.0),
        photo("x.jpg", [0.9, 0.0], 0.0, 100.0),
        photo("b.jpg", [0.05, 0.0], 0.0, 100.0),
        photo("y.jpg", [0.95, 0.05], 0.0, 100.0),
    ];
    let r = vet(split);
    assert!(r.photos.iter().all(|p| !p.usable), "{r:#?}");
    assert!(
        r.photos[0]
            .reasons
            .iter()
            .any(|w| w.contains("2 different people in equal numbers")),
        "{r:#?}"
    );
    assert_eq!(r.verdict, Verdict::Blocked);
}

#[test]
fn a_near_duplicate_is_warned_and_still_usable() {
    let mut set = good_set(16);
    set.push(photo("again.jpg", [0.0, 0.03], 5.0, 100.0)); // 0.03 from p0
    let r = vet(set);
    let dup = reasons_of(&r, "again.jpg");
    assert_eq!((dup.verdict, dup.usable), (Verdict::Warn, true));
    assert_eq!(
        dup.reasons,
        ["near-duplicate of p0.jpg (distance 0.03): it adds little to training"]
    );
    assert_eq!(reasons_of(&r, "p0.jpg").verdict, Verdict::Ok);
}

#[test]
fn the_count_is_warned_outside_15_to_30_and_training_needs_4_usable() {
    let r = vet(good_set(5));
    assert_eq!(r.verdict, Verdict::Warn);
    assert_eq!(r.summary.reasons, ["5 photos: 15–30 are recommended"]);
    assert!(vet(good_set(31)).summary.reasons[0].starts_with("31 photos"));
    assert!(vet(good_set(15)).summary.reasons.is_empty());
    let mut set = good_set(5);
    (set[0].width, set[0].height) = (100, 100);
    (set[1].width, set[1].height) = (100, 100);
    let r = vet(set);
    assert_eq!(
        (r.verdict, r.usable_photos, r.may_train()),
        (Verdict::Blocked, 3, false)
    );
    assert!(
        r.summary
            .reasons
            .contains(&"3 usable photos: training needs at least 4".to_string())
    );
    let empty = vet(Vec::new());
    assert!(!empty.may_train() && empty.verdict == Verdict::Blocked);
}

#[test]
fn pending_photos_are_blocked_with_the_install_command() {
    let mut set = good_set(5);
    for p in &mut set {
        p.analysis = None;
    }
    let note = "face models not installed — run `bash scripts/install-deps.sh`";
    let r = VetReport::of(&Collection::review(set, 0.6, Some(note.into())));
    assert_eq!(r.verdict, Verdict::Blocked);
    assert_eq!(r.photos[0].reasons, [format!("not analysed: {note}")]);
    assert!(
        r.summary
            .reasons
            .contains(&format!("photos not analysed: {note}"))
    );
    assert_eq!(r.summary.head_pose.variety, Variety::Unknown);
}

#[test]
fn pose_and_lighting_variety_are_summarised_over_usable_photos() {
    let same: Vec<PhotoRecord> = (0..16)
        .map(|i| photo(&format!("s{i}.jpg"), grid(i), 2.0, 120.0 + i as f64))
        .collect();
    let r = vet(same);
    assert_eq!(r.summary.head_pose.variety, Variety::Low);
    assert_eq!(r.summary.head_pose.yaw, Some([2.0, 2.0]));
    assert_eq!(r.summary.lighting.variety, Variety::Low);
    assert_eq!(r.summary.lighting.brightness, Some([120.0, 135.0]));
    assert_eq!(r.verdict, Verdict::Warn);
    assert_eq!(r.summary.reasons.len(), 2, "{:?}", r.summary.reasons);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["summary"]["headPose"]["variety"], "low");
    assert_eq!(json["photos"][0]["verdict"], "ok");
    let keys: Vec<&String> = json["photos"][0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        4,
        "only fileName, verdict, usable, reasons: {keys:?}"
    );
}
