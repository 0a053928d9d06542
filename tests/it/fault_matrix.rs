//! The edge-case table of PROVIDERS.md §6, row by row, against the provider sandbox: each row's fault is
//! injected into the provider clients a one-scene cloud render uses (speech, still, video, lip-sync: the
//! clients `--providers cloud` builds from the same settings, with a durable job ledger on SQLite), in process;
//! every step must either succeed after retries or end with a specific, readable reason — never a panic, never
//! two submits for one step. A few rows also run as real `devatar render` processes, concurrently, each with its
//! own sandbox: success after retries, terminal failures (exit code 1, no run left running) and the
//! never-pay-twice rules end to end.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::cloud::{self, VOICE, cloud_env};
use common::*;
use devatar::fakes::{FakeServer, LatencyProfile};
use devatar::providers::{
    ImageRequest, JobCtx, LipSyncRequest, LoraRef, Providers, SpeechRequest, VideoRequest,
};

/// What a row must end with.
enum Expect {
    /// The render succeeds.
    Success,
    /// The render fails and its output names this (case-insensitive).
    Failure(&'static str),
}

/// (§6 row, what it exercises, faults, extra env, expectation).
type Row = (
    u32,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    Expect,
);

const FAL_ROUTES: &[(&str, &str)] = &[
    ("DEVATAR_VIDEO_ROUTE", "fal"),
    ("DEVATAR_LIPSYNC_ROUTE", "fal"),
];

fn rows() -> Vec<Row> {
    use Expect::*;
    vec![
        (
            1,
            "429 with Retry-After seconds",
            &["kling.submit=429retry-after=1x2"],
            &[],
            Success,
        ),
        (
            1,
            "429 with Retry-After date",
            &["sync.submit=429retry-after-date=1x1"],
            &[],
            Success,
        ),
        (
            2,
            "concurrency 429 waits for a slot",
            &["elevenlabs.tts=429slotx2", "kling.submit=1303x1"],
            &[],
            Success,
        ),
        (
            3,
            "ElevenLabs quota is terminal",
            &["elevenlabs.tts=quota"],
            &[],
            Failure("quota"),
        ),
        (
            3,
            "Sync 402 is terminal",
            &["sync.submit=quota"],
            &[],
            Failure("402"),
        ),
        (
            4,
            "5xx bursts then success",
            &[
                "kling.submit=503x2",
                "fal.status=500x3",
                "sync.status=502x2",
            ],
            &[],
            Success,
        ),
        (
            4,
            "5xx forever fails after bounded retries",
            &["elevenlabs.tts=500"],
            &[],
            Failure("after 4 attempts"),
        ),
        (
            5,
            "Kling submit dropped: adopted by external id",
            &["kling.submit=dropx1"],
            &[],
            Success,
        ),
        (
            5,
            "Sync submit dropped: same Idempotency-Key",
            &["sync.submit=dropx1"],
            &[],
            Success,
        ),
        (
            5,
            "Fal submit dropped: parked, not resubmitted",
            &["fal.submit=dropx1"],
            &[],
            Failure("needs attention"),
        ),
        (
            6,
            "slow status answers",
            &["sync.status=slow=1x2"],
            &[],
            Success,
        ),
        (
            7,
            "stalled Fal job fails at its deadline",
            &["fal.status=stall"],
            &[],
            Failure("did not finish"),
        ),
        (
            8,
            "Sync completed without URL",
            &["sync.status=no_output"],
            &[],
            Failure("completed_without_output"),
        ),
        (
            8,
            "Kling succeed without videos",
            &["kling.status=no_output"],
            &[],
            Failure("completed_without_output"),
        ),
        (
            8,
            "Fal result errors",
            &["fal.result=error"],
            &[],
            Failure("fal"),
        ),
        (
            9,
            "Sync legacy output_url",
            &["sync.status=output_url"],
            &[],
            Success,
        ),
        (
            9,
            "Fal requestId alias",
            &["fal.submit=alias"],
            &[],
            Success,
        ),
        (
            10,
            "odd shapes: url object, extra fields, numeric duration",
            &[
                "sync.status=url_object",
                "kling.status=numeric_duration",
                "*.status=extra_fields",
            ],
            &[],
            Success,
        ),
        (
            11,
            "COMPLETE spelling",
            &["sync.status=COMPLETE"],
            &[],
            Success,
        ),
        (
            11,
            "unknown status is terminal",
            &["sync.status=WEIRD"],
            &[],
            Failure("unknown status"),
        ),
        (
            12,
            "Sync REJECTED",
            &["sync.status=REJECTED"],
            &[],
            Failure("rejected"),
        ),
        (
            12,
            "Sync TIMED_OUT",
            &["sync.status=TIMED_OUT"],
            &[],
            Failure("timed out"),
        ),
        (
            12,
            "Kling failed with a reason",
            &["kling.status=failed"],
            &[],
            Failure("failed"),
        ),
        (
            13,
            "malformed and HTML status bodies are retried",
            &["kling.status=malformedx1", "sync.status=html502x1"],
            &[],
            Success,
        ),
        (
            14,
            "truncated download is retried",
            &["media=truncatex1"],
            &[],
            Success,
        ),
        (
            15,
            "HTML instead of media",
            &["media=html"],
            &[],
            Failure("wrong content"),
        ),
        (
            16,
            "expired result URL",
            &["media=expired"],
            &[],
            Failure("expired"),
        ),
        (
            17,
            "URLs are trimmed before submit (the fake 422s whitespace)",
            &[],
            &[],
            Success,
        ),
        (
            18,
            "only documented options are sent (the fake 422s others)",
            &[],
            &[],
            Success,
        ),
        (
            19,
            "Sync audio over the plan cap",
            &["sync.submit=audio_too_long"],
            &[],
            Failure("402"),
        ),
        (
            20,
            "Kling token expired: new token, retry",
            &["kling.submit=1004x1"],
            &[],
            Success,
        ),
        (
            21,
            "duplicate external_task_id returns the existing task",
            &["kling.submit=dropx1", "kling.submit=dup_existingx1"],
            &[],
            Success,
        ),
        (
            22,
            "Sync IDEMPOTENCY_OUTCOME_UNKNOWN: generationId adopted",
            &["sync.submit=outcome_unknownx1"],
            &[],
            Success,
        ),
        (
            23,
            "Fal sub-path model ids use the returned URLs",
            &[],
            FAL_ROUTES,
            Success,
        ),
        (
            25,
            "Range ignored and redirects on downloads",
            &["media=redirectx1"],
            &[],
            Success,
        ),
        (
            26,
            "oversize result body",
            &["media=oversize"],
            &[],
            Failure("larger than"),
        ),
        (
            27,
            "Fal cancel ignored after a stall",
            &["fal.status=stall", "fal.cancel=ignored"],
            &[],
            Failure("did not finish"),
        ),
        (
            28,
            "status going backwards",
            &["sync.status=regress", "kling.status=regress"],
            &[],
            Success,
        ),
    ]
}

/// The rows that also run as `devatar render` processes: success after retries on every provider, a terminal
/// failure before any paid video job, an uncertain Fal submit parked (never resubmitted), an uncertain Sync
/// submit adopted, and a failure after the paid steps.
const END_TO_END: &[&str] = &[
    "5xx bursts then success",
    "ElevenLabs quota is terminal",
    "Fal submit dropped: parked, not resubmitted",
    "Sync IDEMPOTENCY_OUTCOME_UNKNOWN: generationId adopted",
    "Sync REJECTED",
];

/// The identity of the render.
const TRIGGER: &str = "TOK_DEVEN";
/// The scene's line.
const DIALOGUE: &str = "A short line for the fault matrix.";

fn project(lora: &str) -> String {
    format!(
        r#"
[project]
name = "Faults"
aspect_ratio = "1:1"

[[identities]]
name = "deven"
display_name = "Deven"
trigger_word = "{TRIGGER}"
lora_url = "{lora}"
voice_id = "{VOICE}"

[[scenes]]
name = "only"
dialogue = "{DIALOGUE}"
camera = "close-up"
"#
    )
}

/// A sandbox with `faults` (and the keys of `common::cloud`), no latency.
async fn sandbox(faults: &[&str]) -> FakeServer {
    let fake = cloud::fakes(LatencyProfile::None, 0.0).await;
    let specs: Vec<_> = faults.iter().map(|f| f.parse().unwrap()).collect();
    fake.set_faults(&specs);
    fake
}

/// Problems with the sandbox's call counts: one step per provider in a one-scene render, except Fal, which may
/// serve several steps (one submit per model then).
fn paid_twice(label: &str, fake: &FakeServer) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, n) in &fake.stats() {
        let per_step = matches!(
            key.as_str(),
            "elevenlabs.tts" | "kling.submit" | "sync.submit"
        ) || key.starts_with("fal.submit.");
        if per_step && *n > 1 {
            problems.push(format!("{label}: {key} = {n}, at most one per step"));
        }
    }
    problems
}

/// Problems with an outcome: `failures` holds the text of every failed step (empty when all succeeded).
fn outcome_problems(label: &str, expect: &Expect, failures: &[String]) -> Vec<String> {
    let text = failures.join("\n");
    let mut problems = Vec::new();
    if text.contains("panicked") {
        problems.push(format!("{label}: panicked\n{text}"));
    }
    match (expect, failures.is_empty()) {
        (Expect::Success, true) => {}
        (Expect::Success, false) => problems.push(format!("{label}: expected success\n{text}")),
        (Expect::Failure(_), true) => problems.push(format!("{label}: expected a failure")),
        (Expect::Failure(needle), false) => {
            if !text.to_lowercase().contains(&needle.to_lowercase()) {
                problems.push(format!("{label}: failure does not say {needle:?}\n{text}"));
            }
        }
    }
    problems
}

/// The settings a cloud render against the sandbox at `base` has (`cloud_env`), plus `extra`.
fn cloud_config(base: &str, extra: &[(&str, &str)]) -> devatar::config::Config {
    let mut pairs = vec![
        ("FAL_KEY", cloud::FAL_KEY),
        ("ELEVENLABS_API_KEY", cloud::EL_KEY),
        ("KLING_ACCESS_KEY", cloud::KLING_ACCESS),
        ("KLING_SECRET_KEY", cloud::KLING_SECRET),
        ("SYNCLABS_API_KEY", cloud::SYNC_KEY),
        ("FAL_BASE_URL", base),
        ("ELEVENLABS_BASE_URL", base),
        ("KLING_BASE_URL", base),
        ("SYNCLABS_BASE_URL", base),
        ("DEVATAR_ALLOW_PRIVATE_URLS", "1"),
        ("DEVATAR_PROVIDER_TIME_SCALE", "0.01"),
    ];
    pairs.extend_from_slice(extra);
    devatar::config::Config::from_pairs(&pairs).unwrap()
}

/// The four paid steps of the one-scene render, in the render's order (speech and still together, then the
/// clip, then the lip-sync), each with its own content key on one durable ledger; stops at the first failed
/// step as the render skips its dependents. Returns the text of every failed step.
async fn client_chain(
    providers: &Providers,
    ledger: Arc<devatar::pipeline::ledger::DbLedger>,
    work: &Path,
    lora: &str,
) -> Vec<String> {
    use devatar::domain::{
        Identity, LoraScale, duration_bucket, image_prompt, lora_scale_for, video_prompt,
    };
    let job = |step: &str| JobCtx::new(format!("fault-matrix-{step}"), ledger.clone());
    let dir = |step: &str| {
        let d = work.join(step);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let mut identity = Identity::new("deven", "Deven", TRIGGER);
    identity.voice_id = Some(VOICE.into());
    identity.lora_url = Some(lora.into());
    let scene = devatar::domain::Scene {
        name: "only".into(),
        dialogue: DIALOGUE.into(),
        environment: None,
        wardrobe: None,
        mood_lighting: None,
        camera: Some("close-up".into()),
        movement: None,
        target_duration: None,
        identity: "deven".into(),
        generation_mode: Default::default(),
        animation: Default::default(),
    };
    let (width, height) = devatar::domain::AspectRatio::Square.frame_size();
    let speech = SpeechRequest {
        text: DIALOGUE.into(),
        voice_id: identity.voice_id.clone(),
        voice_model: identity.voice_model.clone(),
        stability: identity.voice_stability,
        similarity: identity.voice_similarity,
        style: identity.voice_style,
        speaker_boost: identity.voice_speaker_boost,
        local_voice: identity.local_voice.clone(),
    };
    let still = ImageRequest {
        prompt: image_prompt(&identity, &scene),
        display_name: identity.display_name.clone(),
        mood: None,
        headshot: None,
        lora: Some(LoraRef {
            url: lora.into(),
            scale: lora_scale_for(LoraScale::default(), scene.camera.as_deref()),
            base_model: identity.base_model.as_str().into(),
        }),
        width,
        height,
        seed: None,
    };
    let (audio_dir, image_dir) = (dir("audio"), dir("image"));
    let (audio_job, image_job) = (job("audio"), job("image"));
    let (audio, image) = tokio::join!(
        providers.speech.synthesize(&speech, &audio_dir, &audio_job),
        providers.image.generate(&still, &image_dir, &image_job),
    );
    let mut failures: Vec<String> = [audio.as_ref().err(), image.as_ref().err()]
        .into_iter()
        .flatten()
        .map(|e| format!("AUDIO/IMAGE: {e}"))
        .collect();
    let (Ok(audio), Ok(image)) = (audio, image) else {
        return failures;
    };
    let speech_seconds = devatar::media::probe(&audio.audio).await.unwrap().duration;
    let clip = VideoRequest {
        image,
        prompt: video_prompt(&scene),
        framing: devatar::providers::Framing::CloseUp,
        movement: None,
        duration_seconds: duration_bucket(speech_seconds),
        urls: Default::default(),
        width,
        height,
        proxy: false,
    };
    let video = match providers
        .video
        .animate(&clip, &dir("video"), &job("video"))
        .await
    {
        Ok(v) => v,
        Err(e) => {
            failures.push(format!("VIDEO: {e}"));
            return failures;
        }
    };
    let sync = LipSyncRequest {
        video,
        audio: audio.audio,
        speech_seconds,
        tail_seconds: devatar::pipeline::SCENE_TAIL_SECONDS,
        urls: Default::default(),
        camera: None,
        still: None,
        words: Vec::new(),
    };
    if let Err(e) = providers
        .lipsync
        .apply(&sync, &dir("lipsync"), &job("lipsync"))
        .await
    {
        failures.push(format!("LIPSYNC: {e}"));
    }
    failures
}

/// One row against the provider clients in process, on `fake` (reset, with the row's faults) and its own
/// ledger; its problems.
async fn client_row(fake: &FakeServer, row: Row, lora: &str) -> Vec<String> {
    let (number, what, faults, env, expect) = row;
    let label = format!("row {number} ({what}), provider clients");
    fake.reset();
    let specs: Vec<_> = faults.iter().map(|f| f.parse().unwrap()).collect();
    fake.set_faults(&specs);
    let mut cfg = cloud_config(&fake.base_url(), env);
    // Every row also runs with job webhooks on: the sandbox calls back, the clients are woken, nothing changes.
    let hooks = devatar::web::hooks::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    cfg.cloud.hooks = Some(hooks);
    let providers = cfg
        .providers(devatar::providers::cloud::ProviderChoice::Cloud)
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let db = devatar::storage::db::Db::connect(&devatar::storage::db::Db::sqlite_url(work.path()))
        .await
        .unwrap();
    let ledger = Arc::new(devatar::pipeline::ledger::DbLedger(db));
    let failures = client_chain(&providers, ledger, work.path(), lora).await;
    let mut problems = outcome_problems(&label, &expect, &failures);
    problems.extend(paid_twice(&label, fake));
    problems
}

/// Statuses of every run recorded in a data folder.
async fn run_statuses(data: &Path) -> Vec<String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database_url_for(data))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT status FROM runs")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter().map(|r| r.get::<String, _>("status")).collect()
}

/// One row as a `devatar render --providers cloud` process with its own sandbox and data folder; its problems.
async fn end_to_end_row(row: Row, dir: &Path, lora: &str) -> Vec<String> {
    let (number, what, faults, env, expect) = row;
    let label = format!("row {number} ({what}), end to end");
    let fake = sandbox(faults).await;
    let data = tempfile::tempdir_in(dir).unwrap();
    std::fs::write(data.path().join("faults.toml"), project(lora)).unwrap();
    let mut cmd = command(
        data.path(),
        &[
            "render",
            "faults.toml",
            "--data",
            "data",
            "--providers",
            "cloud",
            "--json",
        ],
    );
    cloud_env(&mut cmd, &fake.base_url()).envs(env.iter().copied());
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let failures = if out.status.success() {
        Vec::new()
    } else {
        vec![text.clone()]
    };
    let mut problems = outcome_problems(&label, &expect, &failures);
    if text.contains("panicked") && failures.is_empty() {
        problems.push(format!("{label}: panicked\n{text}"));
    }
    if matches!(expect, Expect::Failure(_)) && !out.status.success() && out.status.code() != Some(1)
    {
        problems.push(format!(
            "{label}: exit code {:?}, want 1",
            out.status.code()
        ));
    }
    let statuses = run_statuses(&data.path().join("data")).await;
    if statuses.iter().any(|s| s == "running") {
        problems.push(format!("{label}: a run was left running: {statuses:?}"));
    }
    problems.extend(paid_twice(&label, &fake));
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_case_row_succeeds_or_fails_clearly_and_never_pays_twice() {
    let lora = cloud::serve_lora(TRIGGER).await;
    let rows = rows();
    let covered: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.0).collect();
    let all: std::collections::BTreeSet<u32> = (1..=28).filter(|r| *r != 24).collect();
    assert_eq!(
        covered, all,
        "every row except 24 (webhooks, not used) is exercised"
    );
    // Rows run in a few lanes at once, one after another within a lane on the lane's sandbox (reset between
    // rows): a sandbox makes its media with ffmpeg, so one per row would cost more than the rows themselves.
    const LANES: usize = 4;
    let mut lanes: Vec<Vec<Row>> = (0..LANES).map(|_| Vec::new()).collect();
    for (i, row) in rows.into_iter().enumerate() {
        lanes[i % LANES].push(row);
    }
    let tasks = lanes.into_iter().map(|lane| {
        let lora = lora.clone();
        tokio::spawn(async move {
            let fake = sandbox(&[]).await;
            let mut problems = Vec::new();
            for row in lane {
                problems.extend(client_row(&fake, row, &lora).await);
            }
            problems
        })
    });
    let problems: Vec<String> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(|lane| lane.unwrap_or_else(|e| vec![format!("a lane of rows panicked: {e}")]))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_rows_exit_clearly_leave_no_run_running_and_never_pay_twice() {
    let lora = cloud::serve_lora(TRIGGER).await;
    let dir = tempfile::tempdir().unwrap();
    let chosen: Vec<Row> = rows()
        .into_iter()
        .filter(|r| END_TO_END.contains(&r.1))
        .collect();
    assert_eq!(
        chosen.len(),
        END_TO_END.len(),
        "every end-to-end row exists"
    );
    let problems: Vec<String> = futures::future::join_all(
        chosen
            .into_iter()
            .map(|row| end_to_end_row(row, dir.path(), &lora)),
    )
    .await
    .concat();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
