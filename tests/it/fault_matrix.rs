//! The edge-case table of PROVIDERS.md §6, row by row, against the provider sandbox: each row's fault is
//! injected into a one-scene cloud render, which must either succeed after retries or end with a specific,
//! readable reason — never a panic, never a run left running, never two submits for one step.

use crate::common;

use std::path::Path;

use common::cloud::{self, VOICE, cloud_env};
use common::*;
use devatar::fakes::LatencyProfile;

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

fn project(lora: &str) -> String {
    format!(
        r#"
[project]
name = "Faults"
aspect_ratio = "1:1"

[[identities]]
name = "deven"
display_name = "Deven"
trigger_word = "TOK_DEVEN"
lora_url = "{lora}"
voice_id = "{VOICE}"

[[scenes]]
name = "only"
dialogue = "A short line for the fault matrix."
camera = "close-up"
"#
    )
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_case_row_succeeds_or_fails_clearly_and_never_pays_twice() {
    let fake = cloud::fakes(LatencyProfile::None, 0.0).await;
    let lora = cloud::serve_lora("TOK_DEVEN").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("faults.toml"), project(&lora)).unwrap();
    let base = fake.base_url();
    let mut covered = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    for (i, (row, what, faults, env, expect)) in rows().into_iter().enumerate() {
        covered.insert(row);
        fake.reset();
        let specs: Vec<_> = faults.iter().map(|f| f.parse().unwrap()).collect();
        fake.set_faults(&specs);
        let data = format!("data-{i}");
        let mut cmd = command(
            dir.path(),
            &[
                "render",
                "faults.toml",
                "--data",
                &data,
                "--providers",
                "cloud",
                "--json",
            ],
        );
        let out = cloud_env(&mut cmd, &base)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let label = format!("row {row} ({what})");
        if text.contains("panicked") {
            problems.push(format!("{label}: panicked\n{text}"));
        }
        match (&expect, out.status.success()) {
            (Expect::Success, true) => {}
            (Expect::Success, false) => problems.push(format!("{label}: expected success\n{text}")),
            (Expect::Failure(_), true) => problems.push(format!("{label}: expected a failure")),
            (Expect::Failure(needle), false) => {
                if !text.to_lowercase().contains(&needle.to_lowercase()) {
                    problems.push(format!("{label}: failure does not say {needle:?}\n{text}"));
                }
                if out.status.code() != Some(1) {
                    problems.push(format!(
                        "{label}: exit code {:?}, want 1",
                        out.status.code()
                    ));
                }
            }
        }
        let statuses = run_statuses(&dir.path().join(&data)).await;
        if statuses.iter().any(|s| s == "running") {
            problems.push(format!("{label}: a run was left running: {statuses:?}"));
        }
        let stats = fake.stats();
        // One step per provider in a one-scene render, except Fal, which may serve several steps (one
        // submit per model then).
        for (key, n) in &stats {
            let per_step = matches!(
                key.as_str(),
                "elevenlabs.tts" | "kling.submit" | "sync.submit"
            ) || key.starts_with("fal.submit.");
            if per_step && *n > 1 {
                problems.push(format!("{label}: {key} = {n}, at most one per step"));
            }
        }
    }
    let all: std::collections::BTreeSet<u32> = (1..=28).filter(|r| *r != 24).collect();
    assert_eq!(
        covered, all,
        "every row except 24 (webhooks, not used) is exercised"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
