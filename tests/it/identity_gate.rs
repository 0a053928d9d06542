//! Issue 14's acceptance, end to end through `devatar render`: on the provider sandbox, which answers a LoRA with
//! the face of its person (and another person's under `identity-drift:N`), the IMAGE gate retries a drifted still,
//! pays for each attempt, keeps the identity's face and hands it to VIDEO — or, `strict`, fails the scene before any
//! video is paid; offline, a real headshot renders with FINALIZE's identity score below the threshold.

use std::path::{Path, PathBuf};
use std::process::Output;

use devatar::fakes::{FakeServer, LatencyProfile, LoraFace};
use serde_json::Value;

use crate::common::cloud::{self, VOICE, cloud_env};
use crate::common::{command, database_url_for};

const PHOTOS: &str = "/usr/local/share/devatar/test-photos";
const TRIGGER: &str = "TOK_EILEEN";

fn photo(name: &str) -> PathBuf {
    let path = Path::new(PHOTOS).join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `bash scripts/install-deps.sh --test`",
        path.display()
    );
    path
}

/// A one-scene digital-twin project whose identity's reference photo is the astronaut and whose LoRA is `lora`.
fn project(lora: &str, gate: &str) -> String {
    format!(
        r#"
[project]
name = "Gate"
aspect_ratio = "16:9"
identity_gate = "{gate}"
identity_retries = 2

[[identities]]
name = "eileen"
display_name = "Eileen Collins"
trigger_word = "{TRIGGER}"
lora_url = "{lora}"
voice_id = "{VOICE}"
reference_photos = ["{}"]

[[scenes]]
name = "launch"
dialogue = "Ready for launch."
camera = "close-up"
mode = "digital-twin"
"#,
        photo("astronaut.png").display()
    )
}

async fn render(dir: &Path, fake: &FakeServer, file: &str) -> (Output, Value) {
    let mut cmd = command(
        dir,
        &[
            "render",
            file,
            "--data",
            "data",
            "--providers",
            "cloud",
            "--json",
        ],
    );
    cloud_env(&mut cmd, &fake.base_url());
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, doc)
}

fn step<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["scenes"][0]["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == name))
        .unwrap_or_else(|| panic!("no {name} step in {doc}"))
}

/// The IDENTITY_ANCHOR log lines of the data folder's runs.
async fn anchor_logs(data: &Path) -> Vec<String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database_url_for(data))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT message FROM logs WHERE step = 'IDENTITY_ANCHOR' ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter().map(|r| r.get::<String, _>("message")).collect()
}

async fn sandbox(lora: &str, drift: &str) -> FakeServer {
    let fake = cloud::fakes(LatencyProfile::None, 0.0).await;
    fake.set_faces(
        vec![LoraFace::new(lora, vec![photo("astronaut.png")])],
        vec![photo("grace_hopper.jpg")],
        false,
    )
    .await
    .unwrap();
    fake.add_fault(drift).unwrap();
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_still_is_retried_paid_and_replaced_before_video_and_strict_stops_before_paying_video()
 {
    let lora = cloud::serve_lora(TRIGGER).await;
    let dir = tempfile::tempdir().unwrap();

    // retry: the first two stills show someone else; the third (the LoRA scale raised) shows Eileen.
    let fake = sandbox(&lora, "identity-drift:2").await;
    std::fs::write(dir.path().join("retry.toml"), project(&lora, "retry")).unwrap();
    let (out, doc) = render(dir.path(), &fake, "retry.toml").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stats = fake.stats();
    assert_eq!(
        stats["fal.submit"], 3,
        "one still and two retries: {stats:?}"
    );
    assert_eq!(
        (stats["kling.submit"], stats["sync.submit"]),
        (1, 1),
        "{stats:?}"
    );
    let image = step(&doc, "IMAGE");
    let single = 0.025;
    assert!(
        image["costUsd"].as_f64().unwrap() > 2.0 * single,
        "each attempt is priced: {image}"
    );
    let kept = image["identityDistance"].as_f64().expect("IMAGE scored");
    assert!(kept < 0.6, "the kept still shows the identity: {image}");
    // VIDEO received that still: the fake clips keep their input's face, so the final clip shows Eileen.
    let finale = step(&doc, "FINALIZE");
    let worst = finale["identityDistance"]
        .as_f64()
        .expect("FINALIZE scored");
    assert!(worst < 0.6, "{finale}");
    assert!(finale["identityMedian"].as_f64().unwrap() <= worst);
    let logs = anchor_logs(&dir.path().join("data")).await;
    let scored: Vec<&String> = logs.iter().filter(|l| l.contains("attempt")).collect();
    assert!(
        scored.len() >= 3,
        "every attempt is logged with its score: {logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("does not look like Eileen Collins"))
            && logs.iter().any(|l| l.contains("looks like Eileen Collins")),
        "{logs:#?}"
    );

    // An unchanged re-render executes nothing and pays nothing; the scores come from the cache.
    let before = fake.stats();
    let (out, again) = render(dir.path(), &fake, "retry.toml").await;
    assert!(out.status.success());
    assert_eq!(again["providerCalls"], 0, "{again}");
    assert_eq!(fake.stats(), before);
    assert_eq!(
        step(&again, "IMAGE")["identityDistance"],
        image["identityDistance"]
    );

    // strict, and more drift than retries: the scene fails before VIDEO; no video or lip-sync is submitted.
    let fake = sandbox(&lora, "identity-drift:3").await;
    std::fs::write(dir.path().join("strict.toml"), project(&lora, "strict")).unwrap();
    let strict = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("strict.toml"),
        strict.path().join("strict.toml"),
    )
    .unwrap();
    let (out, _) = render(strict.path(), &fake, "strict.toml").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("LoRA scale") && stderr.contains("trigger word"),
        "the message names the guide's remedies: {stderr}"
    );
    let stats = fake.stats();
    assert_eq!(stats["fal.submit"], 3, "{stats:?}");
    assert_eq!(
        (stats["kling.submit"], stats["sync.submit"]),
        (0, 0),
        "{stats:?}"
    );
}

/// Offline, a real headshot: the local portrait frames the face and the final clip is scored as the identity.
#[test]
fn an_offline_render_of_a_real_headshot_scores_the_final_clip_as_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        r#"
[project]
name = "Offline face"

[[identities]]
name = "grace"
display_name = "Grace Hopper"
trigger_word = "TOK_GRACE"
headshot = "{}"

[[scenes]]
name = "hello"
dialogue = "Hello from a real photo."
"#,
        photo("grace_hopper.jpg").display()
    );
    std::fs::write(dir.path().join("p.toml"), file).unwrap();
    let doc = crate::common::render_json(
        dir.path(),
        &[
            "render",
            "p.toml",
            "--data",
            "data",
            "--providers",
            "local",
            "--json",
        ],
    );
    assert_eq!(doc["scenes"][0]["mode"], "standard", "{doc}");
    let finale = step(&doc, "FINALIZE");
    let d = finale["identityDistance"]
        .as_f64()
        .unwrap_or_else(|| panic!("{finale}"));
    assert!(
        d < 0.6,
        "the final clip looks like the headshot's person: {finale}"
    );
    assert!(
        step(&doc, "IMAGE")["identityDistance"].is_null(),
        "a headshot still is not generated, so not gated"
    );
}
