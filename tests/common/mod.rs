//! Helpers shared by the CLI integration tests: run the real binary, read its JSON, probe media.
#![allow(dead_code)]

pub mod safetensors;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The built `devatar` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_devatar"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `devatar args…` in `cwd` with a clean provider environment.
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    command(cwd, args).output().expect("devatar runs")
}

/// The command, without running it.
pub fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(cwd);
    for var in [
        "FAL_KEY",
        "ELEVENLABS_API_KEY",
        "KLING_ACCESS_KEY",
        "KLING_SECRET_KEY",
        "SYNCLABS_API_KEY",
        "DATABASE_URL",
        "DEVATAR_TEST_ABORT_AFTER_STEPS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a render that must succeed and returns its `--json` document.
pub fn render_json(cwd: &Path, args: &[&str]) -> Value {
    let out = run(cwd, args);
    assert!(
        out.status.success(),
        "devatar {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Every (scene or "project", step, cached) of a render report.
pub fn steps(doc: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for scene in doc["scenes"].as_array().expect("scenes") {
        for s in scene["steps"].as_array().expect("steps") {
            out.push((
                scene["name"].as_str().unwrap().to_string(),
                s["step"].as_str().unwrap().to_string(),
                s["cached"].as_bool().unwrap(),
            ));
        }
    }
    for s in doc["steps"].as_array().expect("project steps") {
        out.push((
            "project".into(),
            s["step"].as_str().unwrap().to_string(),
            s["cached"].as_bool().unwrap(),
        ));
    }
    out
}

/// The steps that executed (not cached).
pub fn executed(doc: &Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = steps(doc)
        .into_iter()
        .filter(|(_, _, c)| !c)
        .map(|(s, n, _)| (s, n))
        .collect();
    v.sort();
    v
}

/// ffprobe facts: (video codec, audio codec, width, height, duration).
pub fn probe(path: &Path) -> (String, String, u64, u64, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video stream");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("audio stream");
    (
        video["codec_name"].as_str().unwrap().into(),
        audio["codec_name"].as_str().unwrap().into(),
        video["width"].as_u64().unwrap(),
        video["height"].as_u64().unwrap(),
        v["format"]["duration"].as_str().unwrap().parse().unwrap(),
    )
}

/// A small two-scene project (short speech, square frames) for tests that render many times.
/// Every one of its 11 steps has a distinct content key.
pub const SMALL_PROJECT: &str = r#"
[project]
name = "Small"
aspect_ratio = "1:1"

[[identities]]
name = "tess"
display_name = "Tess Tester"
trigger_word = "TOK_TESS"

[[scenes]]
name = "one"
dialogue = "Hello there."
camera = "close-up"
mood_lighting = "warm"

[[scenes]]
name = "two"
dialogue = "Goodbye now."
camera = "wide shot"
mood_lighting = "cool blue"
"#;

/// Files and folders under `dir` (recursively), for "nothing was written" checks.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path());
            if e.path().is_dir() {
                out.extend(tree(&e.path()));
            }
        }
    }
    out.sort();
    out
}
