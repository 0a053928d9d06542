//! Bad input: exit code 2 with a message naming the file and field (and line), nothing written;
//! missing tools: exit code 3 with the install command.

use crate::common;

use common::*;

fn assert_rejected(toml: &str, expect: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.toml"), toml).unwrap();
    let out = run(
        tmp.path(),
        &["render", "p.toml", "--data", "data", "--json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("p.toml"),
        "message names the file: {stderr}"
    );
    for e in expect {
        assert!(stderr.contains(e), "message should contain {e:?}: {stderr}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(
        !tmp.path().join("data").exists(),
        "nothing may be written to the data folder"
    );
}

#[test]
fn syntax_error_names_the_line() {
    assert_rejected(
        &SMALL_PROJECT.replace("name = \"one\"", "name = \"one"),
        &["line 12"],
    );
}

#[test]
fn unknown_field_is_rejected() {
    assert_rejected(
        &SMALL_PROJECT.replace(
            "camera = \"close-up\"",
            "camera = \"close-up\"\nlens = \"50mm\"",
        ),
        &["unknown field `lens`", "line 15"],
    );
}

#[test]
fn empty_dialogue_is_rejected() {
    assert_rejected(
        &SMALL_PROJECT.replace("Hello there.", "  "),
        &["scenes[0].dialogue"],
    );
}

#[test]
fn bad_aspect_ratio_is_rejected() {
    assert_rejected(
        &SMALL_PROJECT.replace("\"1:1\"", "\"4:3\""),
        &["project.aspect_ratio"],
    );
}

#[test]
fn missing_headshot_file_is_rejected() {
    assert_rejected(
        &SMALL_PROJECT.replace(
            "trigger_word = \"TOK_TESS\"",
            "trigger_word = \"TOK_TESS\"\nheadshot = \"missing.jpg\"",
        ),
        &["identities[0].headshot", "missing.jpg"],
    );
}

#[test]
fn bad_trigger_word_is_rejected() {
    assert_rejected(
        &SMALL_PROJECT.replace("TOK_TESS", "TOK TESS!"),
        &["identities[0].trigger_word"],
    );
}

#[test]
fn headshot_that_is_not_an_image_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("face.jpg"), b"not really a jpeg").unwrap();
    std::fs::write(
        tmp.path().join("p.toml"),
        SMALL_PROJECT.replace(
            "camera = \"wide shot\"",
            "camera = \"wide shot\"\nheadshot = \"face.jpg\"",
        ),
    )
    .unwrap();
    let out = run(tmp.path(), &["render", "p.toml", "--data", "data"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scenes[1].headshot"));
    assert!(!tmp.path().join("data").exists());
}

#[test]
fn unreadable_file_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(tmp.path(), &["render", "nope.toml", "--data", "data"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
    assert!(!tmp.path().join("data").exists());
}

#[test]
fn missing_tools_exit_3_with_the_install_command() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.toml"), SMALL_PROJECT).unwrap();
    let out = command(tmp.path(), &["render", "p.toml", "--data", "data"])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("sudo apt-get install -y ffmpeg espeak-ng"),
        "{stderr}"
    );
    assert!(!tmp.path().join("data").exists());
}

#[test]
fn headshot_is_framed_to_the_aspect_ratio() {
    let tmp = tempfile::tempdir().unwrap();
    // A real 300×400 JPEG made by ffmpeg.
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=300x400",
            "-frames:v",
            "1",
        ])
        .arg(tmp.path().join("face.jpg"))
        .status()
        .unwrap();
    assert!(status.success());
    let toml = SMALL_PROJECT.replace("\"1:1\"", "\"9:16\"").replace(
        "trigger_word = \"TOK_TESS\"",
        "trigger_word = \"TOK_TESS\"\nheadshot = \"face.jpg\"",
    );
    std::fs::write(tmp.path().join("p.toml"), toml).unwrap();
    let doc = render_json(
        tmp.path(),
        &[
            "render", "p.toml", "--data", "data", "--out", "v.mp4", "--json",
        ],
    );
    let (_, _, w, h, _) = probe(&tmp.path().join("v.mp4"));
    assert_eq!((w, h), (720, 1280));
    assert_eq!(doc["scenes"][0]["mode"], "standard");
}
