//! The cloud pipeline end to end against the provider sandbox (`devatar::fakes`) over real HTTP: one paid call
//! per step, nothing repeated on re-render, only the changed scene's speech and lip-sync after an edit, and a
//! killed render resumed by the stored provider ids.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::app::wait_until;
use common::cloud::{self, EL_KEY, VOICE, cloud_env};
use common::s3::S3;
use common::*;
use devatar::fakes::{FakeServer, LatencyProfile};
use serde_json::Value;

async fn fakes(latency: LatencyProfile) -> FakeServer {
    cloud::fakes(latency, 0.02).await
}

async fn serve_lora() -> String {
    cloud::serve_lora("TOK_DEVEN").await
}

/// The demo project with a LoRA and a voice on its identity.
fn project(dir: &Path, lora_url: &str) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(repo().join("examples/demo.toml")).unwrap();
    let with_lora = demo.replacen(
        "lora_scale = 0.95",
        &format!("lora_scale = 0.95\nlora_url = \"{lora_url}\"\nvoice_id = \"{VOICE}\""),
        1,
    );
    assert_ne!(with_lora, demo, "the demo identity changed shape");
    let path = dir.join("cloud.toml");
    std::fs::write(&path, with_lora).unwrap();
    path
}

/// `devatar render FILE --providers cloud --json` with every base URL at the fakes.
fn render(cwd: &Path, file: &Path, base: &str, routes: &[(&str, &str)]) -> Command {
    let mut cmd = command(
        cwd,
        &[
            "render",
            file.to_str().unwrap(),
            "--data",
            "data",
            "--providers",
            "cloud",
            "--json",
        ],
    );
    cloud_env(&mut cmd, base).envs(routes.iter().copied());
    cmd
}

/// [`render`] with media in the bucket of `s3`.
fn render_to(s3: &S3, cwd: &Path, file: &Path, base: &str) -> Command {
    let mut cmd = render(cwd, file, base, &[]);
    s3.env(&mut cmd);
    cmd
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "render failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A child process killed (SIGKILL) when the test ends, passed or failed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stat(stats: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    stats.get(key).copied().unwrap_or(0)
}

/// Runs `cmd` and kills it (SIGKILL) as soon as the fakes count `at_least` of `key`, or after a minute.
async fn kill_when(cmd: &mut Command, fake: &FakeServer, key: &str, at_least: u64) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..1200 {
        if stat(&fake.stats(), key) >= at_least {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_render_pays_once_per_step_and_never_twice() {
    let fake = fakes(LatencyProfile::Fast).await;
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let base = fake.base_url();

    // Direct Kling and Sync (their keys are set), Fal for the stills, ElevenLabs for speech; a callback
    // listener in the render, so every job's submit carries a webhook URL.
    let listen = [("DEVATAR_CALLBACK_LISTEN", "127.0.0.1:0")];
    let doc = json_of(&render(dir.path(), &file, &base, &listen).output().unwrap());
    let stats = fake.stats();
    assert_eq!(stat(&stats, "elevenlabs.tts"), 3, "{stats:?}");
    assert_eq!(stat(&stats, "fal.submit"), 3, "{stats:?}");
    assert_eq!(stat(&stats, "kling.submit"), 3, "{stats:?}");
    assert_eq!(stat(&stats, "sync.submit"), 3, "{stats:?}");
    // One webhook per job; one that arrives after its poller already saw the job finish finds the token gone.
    let called = stat(&stats, "webhooks.sent") + stat(&stats, "webhooks.failed");
    assert_eq!(called, 9, "{stats:?}");
    assert_eq!(stat(&stats, "webhooks.refused"), 0, "{stats:?}");
    let scenes = doc["scenes"].as_array().unwrap();
    for s in scenes {
        assert_eq!(s["mode"], "digital-twin", "{s}");
        let providers: Vec<&str> = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| st["provider"].as_str().unwrap())
            .collect();
        assert_eq!(
            &providers[..4],
            ["elevenlabs", "fal-ai/flux-lora", "kling", "synclabs"],
            "{s}"
        );
        // The scene lasts as long as its speech (plus the crossfade tail), whatever the clip length.
        let speech = s["speechSeconds"].as_f64().unwrap();
        let length = s["durationSeconds"].as_f64().unwrap();
        assert!((length - speech - 0.3).abs() < 0.3, "{speech} vs {length}");
    }
    assert!(
        doc["costUsd"].as_f64().unwrap() > 0.5,
        "costs are recorded: {doc}"
    );
    let (_, _, w, h, duration) = probe(&dir.path().join(doc["output"].as_str().unwrap()));
    assert_eq!((w, h), (1280, 720));
    assert!(duration > 10.0);
    let vtt = std::fs::read_to_string(dir.path().join("data/devatar-demo.vtt")).unwrap();
    assert!(vtt.contains("WEBVTT") && vtt.contains("Deven"), "{vtt}");

    // Unchanged: nothing is submitted again.
    fake.reset();
    let again = json_of(&render(dir.path(), &file, &base, &[]).output().unwrap());
    assert_eq!(again["providerCalls"], 0);
    let stats = fake.stats();
    for key in [
        "elevenlabs.tts",
        "fal.submit",
        "kling.submit",
        "sync.submit",
    ] {
        assert_eq!(stat(&stats, key), 0, "{key}: {stats:?}");
    }

    // One dialogue edit (same duration bucket): one TTS and one lip-sync submit.
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "Thanks for watching, and see you in the next scene.",
        "Thanks for watching, and see you in the next one.",
        1,
    );
    std::fs::write(&file, text).unwrap();
    fake.reset();
    json_of(&render(dir.path(), &file, &base, &[]).output().unwrap());
    let stats = fake.stats();
    assert_eq!(stat(&stats, "elevenlabs.tts"), 1, "{stats:?}");
    assert_eq!(stat(&stats, "sync.submit"), 1, "{stats:?}");
    assert_eq!(stat(&stats, "fal.submit"), 0, "{stats:?}");
    assert_eq!(stat(&stats, "kling.submit"), 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fal_key_drives_the_whole_pipeline() {
    let fake = fakes(LatencyProfile::Fast).await;
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let base = fake.base_url();
    let routes = [
        ("DEVATAR_VIDEO_ROUTE", "fal"),
        ("DEVATAR_LIPSYNC_ROUTE", "fal"),
    ];
    let doc = json_of(&render(dir.path(), &file, &base, &routes).output().unwrap());
    let stats = fake.stats();
    assert_eq!(stat(&stats, "fal.submit"), 9, "{stats:?}");
    assert_eq!(stat(&stats, "kling.submit"), 0, "{stats:?}");
    assert_eq!(stat(&stats, "sync.submit"), 0, "{stats:?}");
    let steps = doc["scenes"][0]["steps"].as_array().unwrap();
    assert_eq!(
        steps[2]["provider"],
        "fal-ai/kling-video/v2.1/standard/image-to-video"
    );
    assert_eq!(steps[3]["provider"], "fal-ai/sync-lipsync/v2");
}

/// `animation = "fast"` with only `FAL_KEY` (and ElevenLabs): per scene one speech, one still and ONE Kling AI
/// Avatar job — no image-to-video, no lip-sync — and the clip follows the speech; a re-render pays nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_scenes_speak_in_one_avatar_job() {
    let fake = fakes(LatencyProfile::Fast).await;
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let text = std::fs::read_to_string(&file).unwrap();
    let fast = text.replace("[[scenes]]\n", "[[scenes]]\nanimation = \"fast\"\n");
    assert_eq!(fast.matches("animation = \"fast\"").count(), 3);
    std::fs::write(&file, fast).unwrap();
    let base = fake.base_url();
    let fal_only = || {
        let mut cmd = render(dir.path(), &file, &base, &[]);
        for var in ["KLING_ACCESS_KEY", "KLING_SECRET_KEY", "SYNCLABS_API_KEY"] {
            cmd.env_remove(var);
        }
        cmd
    };
    let doc = json_of(&fal_only().output().unwrap());
    let stats = fake.stats();
    assert_eq!(stat(&stats, "elevenlabs.tts"), 3, "{stats:?}");
    assert_eq!(stat(&stats, "fal.submit.fal-ai/flux-lora"), 3, "{stats:?}");
    assert_eq!(
        stat(
            &stats,
            "fal.submit.fal-ai/kling-video/ai-avatar/v2/standard"
        ),
        3,
        "{stats:?}"
    );
    assert_eq!(stat(&stats, "fal.submit"), 6, "{stats:?}");
    assert_eq!(
        stat(&stats, "kling.submit") + stat(&stats, "sync.submit"),
        0
    );
    for scene in doc["scenes"].as_array().unwrap() {
        let steps = scene["steps"].as_array().unwrap();
        let provider = |name: &str| {
            steps.iter().find(|s| s["step"] == name).unwrap()["provider"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            provider("VIDEO"),
            "fal-ai/kling-video/ai-avatar/v2/standard"
        );
        assert_eq!(provider("LIPSYNC"), "passthrough");
        let speech = scene["speechSeconds"].as_f64().unwrap();
        let duration = scene["durationSeconds"].as_f64().unwrap();
        assert!(
            (duration - (speech + 0.3)).abs() < 0.15,
            "the clip follows the speech: {duration} vs {speech}"
        );
    }
    fake.reset();
    let again = json_of(&fal_only().output().unwrap());
    assert_eq!(again["providerCalls"], 0, "{again}");
    assert_eq!(stat(&fake.stats(), "fal.submit"), 0);

    // Offline, a fast scene is animated the standard way and the log says why.
    let offline = tempfile::tempdir().unwrap();
    let local = file.to_str().unwrap();
    let doc = render_json(
        offline.path(),
        &[
            "render",
            local,
            "--data",
            "data",
            "--providers",
            "local",
            "--json",
        ],
    );
    assert_eq!(doc["scenes"][0]["steps"][2]["provider"], "ffmpeg-animate");
    let db = devatar::storage::db::Db::connect(&database_url_for(&offline.path().join("data")))
        .await
        .unwrap();
    let logs = db
        .query_logs(&devatar::storage::db::LogFilter {
            project: None,
            scene: None,
            step: Some("VIDEO_GENERATION".into()),
            level: None,
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(
        logs.iter().any(|r| r
            .message
            .contains("fast animation needs a talking-avatar provider")),
        "{logs:?}"
    );
}

/// With media in an S3 bucket, providers get presigned GET URLs and fetch the inputs themselves (Kling the still,
/// Sync the clip and the speech; the sandbox fetches all three, its clips show them): nothing is sent inline or
/// uploaded, and no signed URL reaches the database.
/// With the local folder the same render sends everything inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_bucket_providers_fetch_presigned_inputs() {
    let fake = fakes(LatencyProfile::Fast).await;
    let lora = serve_lora().await;
    let s3 = S3::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let base = fake.base_url();
    json_of(&render_to(&s3, dir.path(), &file, &base).output().unwrap());
    let stats = fake.stats();
    assert_eq!(stat(&stats, "inputs.inline"), 0, "{stats:?}");
    assert_eq!(stat(&stats, "inputs.url"), 9, "{stats:?}");
    assert_eq!(stat(&stats, "inputs.url_fetched"), 9, "{stats:?}");
    assert_eq!(stat(&stats, "inputs.url_unreadable"), 0, "{stats:?}");
    assert_eq!(stat(&stats, "requests.sync.submit.upload"), 0, "{stats:?}");
    assert_eq!(stat(&stats, "sync.submit"), 3, "{stats:?}");
    // Keys are stored, never signed URLs.
    let db = devatar::storage::db::Db::connect(&database_url_for(&dir.path().join("data")))
        .await
        .unwrap();
    for sql in [
        "SELECT message AS t FROM logs",
        "SELECT COALESCE(output, '') || COALESCE(error, '') AS t FROM steps",
        "SELECT job AS t FROM provider_jobs",
    ] {
        use sqlx::Row;
        for row in sqlx::query(sql).fetch_all(db.pool()).await.unwrap() {
            let text: String = row.get("t");
            assert!(!text.contains("X-Amz-"), "{sql}: {text}");
        }
    }

    fake.reset();
    let local = tempfile::tempdir().unwrap();
    let file = project(local.path(), &lora);
    json_of(&render(local.path(), &file, &base, &[]).output().unwrap());
    let stats = fake.stats();
    assert_eq!(stat(&stats, "inputs.url"), 0, "{stats:?}");
    assert_eq!(stat(&stats, "requests.sync.submit.upload"), 3, "{stats:?}");
    assert!(stat(&stats, "inputs.inline") >= 9, "{stats:?}");
}

/// Direct Kling and Sync that keep failing (503 on every submit) hand their steps to the Fal-hosted models; with
/// `DEVATAR_FAILOVER=0` the same render fails with the direct provider's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_provider_that_keeps_failing_fails_over_to_fal() {
    let fake = fakes(LatencyProfile::Fast).await;
    fake.add_fault("kling.submit=503x1000").unwrap();
    fake.add_fault("sync.submit=503x1000").unwrap();
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let base = fake.base_url();
    let doc = json_of(&render(dir.path(), &file, &base, &[]).output().unwrap());
    let stats = fake.stats();
    assert_eq!(stat(&stats, "kling.submit"), 0, "{stats:?}");
    assert_eq!(stat(&stats, "sync.submit"), 0, "{stats:?}");
    assert!(stat(&stats, "requests.kling.submit") >= 3, "{stats:?}");
    assert_eq!(
        stat(
            &stats,
            "fal.submit.fal-ai/kling-video/v2.1/standard/image-to-video"
        ),
        3,
        "{stats:?}"
    );
    assert_eq!(
        stat(&stats, "fal.submit.fal-ai/sync-lipsync/v2"),
        3,
        "{stats:?}"
    );
    assert!(doc["durationSeconds"].as_f64().unwrap() > 3.0, "{doc}");
    let db = devatar::storage::db::Db::connect(&database_url_for(&dir.path().join("data")))
        .await
        .unwrap();
    let logs = db
        .query_logs(&devatar::storage::db::LogFilter {
            project: None,
            scene: None,
            step: None,
            level: None,
            before: None,
            limit: 500,
        })
        .await
        .unwrap();
    let failed_over = |to: &str| {
        logs.iter()
            .filter(|r| r.message.contains(&format!("failing over to {to}")))
            .count()
    };
    assert_eq!(failed_over("fal-ai/kling-video"), 3, "{logs:?}");
    assert_eq!(failed_over("fal-ai/sync-lipsync"), 3, "{logs:?}");

    let off = tempfile::tempdir().unwrap();
    let file = project(off.path(), &lora);
    let out = render(off.path(), &file, &base, &[("DEVATAR_FAILOVER", "0")])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the render should fail without fail-over"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kling"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_render_resumes_provider_jobs_by_their_stored_ids() {
    // Slow jobs, so the process is killed while Kling and Sync jobs are in flight.
    let fake = fakes(LatencyProfile::Realistic).await;
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let base = fake.base_url();
    // Kill -9 once every video job has been submitted.
    kill_when(
        &mut render(dir.path(), &file, &base, &[]),
        &fake,
        "kling.submit",
        3,
    )
    .await;
    assert_eq!(stat(&fake.stats(), "kling.submit"), 3);
    let doc = json_of(&render(dir.path(), &file, &base, &[]).output().unwrap());
    assert!(doc["output"].is_string());
    let stats = fake.stats();
    // Resumed by stored id: still one submit per paid step.
    assert_eq!(stat(&stats, "kling.submit"), 3, "{stats:?}");
    assert_eq!(stat(&stats, "fal.submit"), 3, "{stats:?}");
    assert_eq!(stat(&stats, "sync.submit"), 3, "{stats:?}");
    // Sync generations that take a while are long-polled (the fakes answer 400 to a bad `timeout`).
    assert!(stat(&stats, "sync.long_poll") >= 1, "{stats:?}");
}

/// A provider slot is given back as soon as the provider has finished the job, not after its result is
/// downloaded and stored: with one Kling slot and the first clip's download hanging, the next scene's Kling job
/// is still submitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_slot_is_free_while_the_finished_job_is_downloaded() {
    let fake = fakes(LatencyProfile::Realistic).await;
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let base = fake.base_url();
    let limits = [("DEVATAR_PROVIDER_LIMITS", "kling=1")];
    let child = render(dir.path(), &file, &base, &limits)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _render = KillOnDrop(child);
    // Once the three stills are downloaded (the only media fetched before a clip), every download hangs.
    let within = Duration::from_secs(60);
    wait_until("the stills and the first Kling submit", within, || async {
        let stats = fake.stats();
        (stat(&stats, "media.get") >= 3 && stat(&stats, "kling.submit") >= 1).then_some(())
    })
    .await;
    fake.add_fault("media=slow=600").unwrap();
    let submitted = wait_until("a second Kling submit", within, || async {
        let stats = fake.stats();
        (stat(&stats, "kling.submit") >= 2).then_some(stats)
    })
    .await;
    // No clip has been downloaded: at most the first one's download has started (and hangs).
    assert!(
        (3..=4).contains(&stat(&submitted, "media.get")),
        "{submitted:?}"
    );
    assert_eq!(stat(&submitted, "kling.peak_active"), 1, "{submitted:?}");
}

/// With media in a bucket, a render killed while a Sync submit is unanswered (the generation exists, its id was
/// never recorded) repeats that submit with the same `Idempotency-Key` and byte-identical presigned URLs: Sync
/// replays the generation it already started instead of refusing the changed body, and nothing is paid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_bucket_an_uncertain_sync_submit_is_replayed_after_a_kill() {
    let fake = fakes(LatencyProfile::Fast).await;
    // The first Sync submit creates its generation, then answers only after a minute.
    fake.add_fault("sync.submit=slow=60x1").unwrap();
    let lora = serve_lora().await;
    let s3 = S3::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let base = fake.base_url();
    kill_when(
        &mut render_to(&s3, dir.path(), &file, &base),
        &fake,
        "sync.submit",
        1,
    )
    .await;
    assert!(stat(&fake.stats(), "sync.submit") >= 1);

    // Time passes between the two processes: URLs signed anew would differ.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let doc = json_of(&render_to(&s3, dir.path(), &file, &base).output().unwrap());
    assert!(doc["output"].is_string());
    let stats = fake.stats();
    assert!(stat(&stats, "sync.replay") >= 1, "{stats:?}");
    assert_eq!(stat(&stats, "sync.submit"), 3, "{stats:?}");
    assert_eq!(stat(&stats, "kling.submit"), 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_stops_submission_with_a_clear_error() {
    let fake = fakes(LatencyProfile::None).await;
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "aspect_ratio = \"16:9\"",
        "aspect_ratio = \"16:9\"\nbudget_usd = 0.5",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let out = render(dir.path(), &file, &fake.base_url(), &[])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("budget") || doc.to_string().contains("budget"),
        "{stderr}"
    );
    // The whole project costs about $3: with $0.50 most paid submits never happen.
    let stats = fake.stats();
    let submits = stat(&stats, "kling.submit") + stat(&stats, "sync.submit");
    assert!(submits < 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_test_looks_the_voice_up_with_an_elevenlabs_key() {
    let fake = fakes(LatencyProfile::None).await;
    let lora = serve_lora().await;
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path(), &lora);
    // A local render stores the project's identity in the data folder.
    let out = command(
        dir.path(),
        &[
            "render",
            file.to_str().unwrap(),
            "--data",
            "data",
            "--providers",
            "local",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let test = |voice_key: &str| {
        command(
            dir.path(),
            &[
                "identity",
                "test",
                "deven-primary",
                "--data",
                "data",
                "--json",
            ],
        )
        .env("ELEVENLABS_API_KEY", voice_key)
        .env("ELEVENLABS_BASE_URL", fake.base_url())
        .env("DEVATAR_ALLOW_PRIVATE_URLS", "1")
        .output()
        .unwrap()
    };
    let ok = test(EL_KEY);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    let lookup = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "voiceLookup")
        .cloned()
        .expect("voiceLookup check");
    assert_eq!(lookup["ok"], true, "{report}");
    assert_eq!(fake.stats()["elevenlabs.voices"], 1);
    // A key the provider refuses fails the check, without printing the key.
    let bad = test("wrong-key");
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains("refused the API key") && !text.contains("wrong-key"),
        "{text}"
    );
}
