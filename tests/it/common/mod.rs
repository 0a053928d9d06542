//! Helpers shared by the CLI integration tests: run the real binary, read its JSON, probe media.
#![allow(dead_code)]

pub mod app;
pub mod cloud;
pub mod s3;
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

/// A Piper folder that does not exist: the suite's renders speak with espeak-ng (quick, and the same length
/// every time); `local_voice` tests Piper and a render with it.
pub const NO_PIPER: &str = "/nonexistent/piper";

/// The command, without running it.
pub fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(cwd);
    cmd.env("DEVATAR_PIPER_DIR", NO_PIPER);
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
    // Never let a developer's environment send the suite to a real bucket.
    for (var, _) in std::env::vars() {
        if var.starts_with("R2_") || var.starts_with("DEVATAR_S3_") {
            cmd.env_remove(var);
        }
    }
    let data = args
        .iter()
        .position(|a| *a == "--data")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| cwd.join("devatar-data"), |d| cwd.join(d));
    if let Some(url) = postgres_url_for(&data) {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

/// The database URL a command with this data folder uses: the per-folder PostgreSQL database under
/// `DEVATAR_TEST_BACKEND=postgres`, else the folder's SQLite file.
pub fn database_url_for(data: &Path) -> String {
    postgres_url_for(data)
        .unwrap_or_else(|| format!("sqlite://{}", data.join("devatar.db").display()))
}

/// With `DEVATAR_TEST_BACKEND=postgres`, the whole suite runs on PostgreSQL: every data folder (one or more
/// per test) gets its own database next to `DEVATAR_TEST_DATABASE_URL`, created on first use.
/// `scripts/test.sh` drops the `dt_*` databases before the run.
pub fn postgres_url_for(data: &Path) -> Option<String> {
    use std::collections::HashSet;
    use std::hash::{Hash, Hasher};
    use std::sync::Mutex;
    static CREATED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if std::env::var("DEVATAR_TEST_BACKEND").ok().as_deref() != Some("postgres") {
        return None;
    }
    let admin = std::env::var("DEVATAR_TEST_DATABASE_URL")
        .expect("DEVATAR_TEST_BACKEND=postgres needs DEVATAR_TEST_DATABASE_URL");
    // The folder may not exist yet: resolve its parent, then normalise `.` away.
    let canonical = match (data.parent(), data.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(name),
        _ => data.canonicalize().unwrap_or_else(|_| data.to_path_buf()),
    };
    let canonical: PathBuf = canonical
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    canonical.hash(&mut h);
    let name = format!("dt_{:016x}", h.finish());
    let mut created = CREATED.lock().unwrap();
    let set = created.get_or_insert_with(HashSet::new);
    if set.insert(name.clone()) {
        let out = Command::new("psql")
            .args([
                admin.as_str(),
                "-q",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .expect("psql runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("already exists"),
            "cannot create {name}: {err}"
        );
    }
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Some(format!("{base}/{name}"))
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
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
