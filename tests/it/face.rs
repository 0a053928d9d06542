//! The face engine through the real binary: `devatar face inspect|compare` on public-domain photos of two people
//! (Eileen Collins from scikit-image, Grace Hopper from matplotlib), fetched by `scripts/install-deps.sh --test`
//! into a machine-wide folder, and on variants derived here.

use std::path::{Path, PathBuf};
use std::process::Output;

use image::{Rgb, RgbImage, imageops};
use serde_json::Value;

use crate::common;

/// Where `scripts/install-deps.sh --test` puts the test photos.
const PHOTOS: &str = "/usr/local/share/devatar/test-photos";

fn photo(name: &str) -> PathBuf {
    let path = Path::new(PHOTOS).join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `bash scripts/install-deps.sh --test`",
        path.display()
    );
    path
}

pub(crate) fn astronaut() -> PathBuf {
    photo("astronaut.png")
}

pub(crate) fn grace_hopper() -> PathBuf {
    photo("grace_hopper.jpg")
}

fn face(cwd: &Path, args: &[&str]) -> Output {
    let mut all = vec!["face"];
    all.extend_from_slice(args);
    common::run(cwd, &all)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The astronaut mirrored, brightened and cropped: the same person in a different photo.
pub(crate) fn same_person_variant(dir: &Path) -> PathBuf {
    let original = image::open(astronaut()).unwrap().to_rgb8();
    let mut img = imageops::flip_horizontal(&original);
    imageops::colorops::brighten_in_place(&mut img, 35);
    let cropped = imageops::crop_imm(&img, 40, 10, 440, 460).to_image();
    let path = dir.join("astronaut-variant.jpg");
    cropped.save(&path).unwrap();
    path
}

/// A smooth gradient: no face.
pub(crate) fn gradient(dir: &Path) -> PathBuf {
    let img = RgbImage::from_fn(320, 240, |x, y| {
        Rgb([(x * 255 / 320) as u8, (y * 255 / 240) as u8, 128])
    });
    let path = dir.join("gradient.png");
    img.save(&path).unwrap();
    path
}

#[test]
fn inspect_finds_one_face_with_five_landmarks_in_each_real_photo() {
    let dir = tempfile::tempdir().unwrap();
    let out = face(
        dir.path(),
        &["inspect", "--json", s(&astronaut()), s(&grace_hopper())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let images = doc["images"].as_array().expect("images");
    assert_eq!(images.len(), 2);
    for (image, size) in images.iter().zip([(512, 512), (512, 600)]) {
        assert_eq!(
            (
                image["width"].as_u64().unwrap(),
                image["height"].as_u64().unwrap()
            ),
            size
        );
        let faces = image["faces"].as_array().expect("faces");
        assert_eq!(faces.len(), 1, "{image}");
        let f = &faces[0];
        let b = &f["box"];
        let (x, y, w, h) = (
            b["x"].as_u64().unwrap(),
            b["y"].as_u64().unwrap(),
            b["w"].as_u64().unwrap(),
            b["h"].as_u64().unwrap(),
        );
        assert!(
            w >= 60 && h >= 60 && x + w <= size.0 && y + h <= size.1,
            "{b}"
        );
        let landmarks = f["landmarks"].as_array().unwrap();
        assert_eq!(landmarks.len(), 5);
        for p in landmarks {
            let (px, py) = (p[0].as_i64().unwrap(), p[1].as_i64().unwrap());
            // Every landmark lies in (or right at the edge of) the face box.
            assert!(
                px + 5 >= x as i64
                    && px <= (x + w) as i64 + 5
                    && py + 5 >= y as i64
                    && py <= (y + h) as i64 + 5,
                "{p} outside {b}"
            );
        }
        assert!(f["sharpness"].as_f64().unwrap() > 10.0, "{f}");
        // Both are portraits facing the camera.
        assert!(f["yaw"].as_f64().unwrap().abs() < 30.0, "{f}");
        assert!(f["pitch"].as_f64().unwrap().abs() < 30.0, "{f}");
    }
    // Human output names the photo and the face count.
    let out = face(dir.path(), &["inspect", s(&astronaut())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("astronaut.png") && text.contains("one face"),
        "{text}"
    );
}

#[test]
fn a_variant_of_one_photo_is_the_same_person_and_another_person_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let variant = same_person_variant(dir.path());
    let out = face(
        dir.path(),
        &["compare", "--json", s(&astronaut()), s(&variant)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let same = json(&out);
    assert_eq!(same["samePerson"], true, "{same}");
    assert_eq!(same["threshold"], 0.6);
    assert!(same["distance"].as_f64().unwrap() < 0.6, "{same}");

    let out = face(
        dir.path(),
        &["compare", "--json", s(&astronaut()), s(&grace_hopper())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let different = json(&out);
    assert_eq!(different["samePerson"], false, "{different}");
    assert!(different["distance"].as_f64().unwrap() > 0.6, "{different}");

    let out = face(
        dir.path(),
        &["compare", s(&grace_hopper()), s(&astronaut())],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("different people"),
        "{text}"
    );
}

#[test]
fn a_photo_without_a_face_fails_compare_with_a_json_error_but_not_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let gradient = gradient(dir.path());
    let out = face(
        dir.path(),
        &["compare", "--json", s(&astronaut()), s(&gradient)],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["faces"], serde_json::json!([1, 0]), "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("no face"), "{doc}");

    let out = face(dir.path(), &["inspect", "--json", s(&gradient)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["images"][0]["faces"], serde_json::json!([]));
}

#[test]
fn unreadable_or_undecodable_photos_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"definitely not a PNG").unwrap();
    for args in [
        vec!["inspect", "no-such-photo.jpg"],
        vec!["inspect", "--json", s(&junk)],
        vec!["compare", s(&astronaut()), "no-such-photo.jpg"],
    ] {
        let out = face(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no-such-photo.jpg") || err.contains("junk.png"),
            "{err}"
        );
    }
}

#[test]
fn missing_models_exit_3_with_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["face", "inspect", s(&astronaut())],
        vec![
            "face",
            "compare",
            "--json",
            s(&astronaut()),
            s(&grace_hopper()),
        ],
    ] {
        let out = common::command(dir.path(), &args)
            .env("DEVATAR_FACE_MODELS", "/nonexistent")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(
            err.contains("bash scripts/install-deps.sh") && err.contains("/nonexistent"),
            "{err}"
        );
    }
    let out = common::command(dir.path(), &["doctor", "--json"])
        .env("DEVATAR_FACE_MODELS", "/nonexistent")
        .output()
        .unwrap();
    let doc = json(&out);
    assert_eq!(doc["faceModels"]["found"], false, "{doc}");
    assert_eq!(doc["faceModels"]["install"], "bash scripts/install-deps.sh");
    let out = common::run(dir.path(), &["doctor", "--json"]);
    assert_eq!(
        json(&out)["faceModels"]["found"],
        true,
        "the default folder has the models"
    );
}

/// The pipeline's face-scoring seam on the real engine and real ffmpeg frames: a clip of the astronaut scores close
/// to her print (from another photo of her) in every sampled frame, Grace Hopper's photo far from it, the gradient
/// shows no face.
#[tokio::test]
async fn the_pipelines_engine_scorer_measures_stills_and_sampled_frames_against_a_print() {
    use devatar::face::{FacePrint, FaceSettings};
    use devatar::media::{Ffmpeg, MediaEditor};
    use devatar::pipeline::{EngineScorer, FaceScorer};

    let dir = tempfile::tempdir().unwrap();
    let scorer = EngineScorer {
        settings: FaceSettings::default(),
    };
    scorer.ready().await.expect("face models installed");
    let reference = scorer
        .embeddings(&same_person_variant(dir.path()))
        .await
        .unwrap();
    let print = FacePrint::from_embeddings(reference).unwrap();
    let threshold = FaceSettings::default().threshold;
    let hopper = scorer.score(&grace_hopper(), &print).await.unwrap();
    assert_eq!(hopper.faces, 1);
    assert!(!hopper.passes(threshold), "{hopper:?}");
    let blank = scorer.score(&gradient(dir.path()), &print).await.unwrap();
    assert_eq!((blank.faces, blank.distance), (0, None));

    let clip = dir.path().join("clip.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-loop",
            "1",
            "-i",
            s(&astronaut()),
            "-t",
            "1",
            "-r",
            "10",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:v", "libx264", s(&clip)])
        .status()
        .unwrap();
    assert!(made.success());
    let frames = Ffmpeg
        .frames(&clip, dir.path(), &[0.2, 0.5, 0.8])
        .await
        .unwrap();
    let scores = scorer.score_frames(&frames, &print).await.unwrap();
    assert_eq!(scores.len(), 3);
    // x264 makes HOG see a second, false face on the suit in these frames: frames score their closest face.
    assert!(
        scores.iter().all(|s| s.frame_passes(threshold)),
        "{scores:?}"
    );
}
