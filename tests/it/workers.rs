//! Scale-out: `serve --no-worker` queues runs, separate `devatar worker` processes claim them under leases.
//! A worker killed with SIGKILL loses its runs to the others once its lease expires; a worker told to stop
//! with SIGTERM stops claiming and finishes or releases what it holds. Paid steps go to the provider sandbox,
//! which counts that every paid step was submitted at most once.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cloud::{self, cloud_env};
use common::s3::S3;
use common::*;
use devatar::fakes::{FakeServer, LatencyProfile};
use serde_json::{Value, json};

const PASSWORD: &str = "workers-password";
const SCENES: usize = 6;

/// Kills the child on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the processes keep media, and the provider limits they share.
#[derive(Default)]
struct Setup<'a> {
    s3: Option<&'a S3>,
    limits: Option<&'a str>,
    slots: usize,
}

impl Setup<'_> {
    fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        if let Some(s3) = self.s3 {
            s3.env(cmd);
        }
        if let Some(limits) = self.limits {
            cmd.env("DEVATAR_PROVIDER_LIMITS", limits);
        }
        cmd
    }
}

fn worker(data: &Path, base: &str) -> Proc {
    worker_with(data, base, &Setup::default())
}

fn worker_with(data: &Path, base: &str, setup: &Setup) -> Proc {
    let slots = setup.slots.max(1).to_string();
    let mut cmd = command(
        data,
        &["worker", "--data", ".", "--slots", &slots, "--grace", "20"],
    );
    cloud_env(&mut cmd, base).env("DEVATAR_LEASE_SECS", "2");
    setup.apply(&mut cmd);
    Proc(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn fakes() -> FakeServer {
    cloud::fakes(LatencyProfile::Realistic, 0.01).await
}

/// Starts `serve --no-worker`; returns (process, base URL, token).
fn api(data: &Path) -> (Proc, String, String) {
    api_with(data, &Setup::default())
}

fn api_with(data: &Path, setup: &Setup) -> (Proc, String, String) {
    let mut cmd = command(
        data,
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data",
            ".",
            "--no-worker",
        ],
    );
    setup.apply(&mut cmd);
    let mut child = cmd
        .env("DEVATAR_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(addr) = line.trim().strip_prefix("devatar listening on ") {
            break addr.to_string();
        }
    };
    std::thread::spawn(move || for _ in reader.lines() {});
    let out = run(data, &["token", "create", "--name", "w", "--data", "."]);
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    (Proc(child), base, token)
}

/// Creates an identity with a LoRA, a project with `scenes` scenes, and queues one run per scene.
async fn queue_scenes(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    lora: &str,
    scenes: usize,
) -> Vec<String> {
    let post = |path: String, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            assert!(status < 300, "{path}: {status} {v}");
            v
        }
    };
    post(
        "/api/identities".into(),
        json!({"name": "w", "displayName": "W", "triggerWord": "TOK_W", "loraUrl": lora,
               "voiceId": "21m00Tcm4TlvDq8ikWAM"}),
    )
    .await;
    let project = post(
        "/api/projects".into(),
        json!({"name": "Workers", "aspectRatio": "1:1"}),
    )
    .await;
    let mut runs = Vec::new();
    for i in 0..scenes {
        let scene = post(
            "/api/scenes".into(),
            // Distinct stills and speech lengths, so no scene reuses another's cached outputs.
            json!({"projectId": project["id"], "name": format!("s{i}"),
                   "dialogue": format!("Scene {}", "word ".repeat(i + 2).trim_end()), "environment": format!("room {i}")}),
        )
        .await;
        let started = post(
            format!("/api/scenes/{}/generate", scene["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
        runs.push(started["runId"].as_str().unwrap().to_string());
    }
    runs
}

async fn status(http: &reqwest::Client, base: &str, token: &str, run: &str) -> String {
    let v: Value = http
        .get(format!("{base}/api/runs/{run}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match v["status"].as_str().unwrap_or_default() {
        "failed" => format!("failed: {}", v["error"]),
        s => s.to_string(),
    }
}

async fn wait_all(http: &reqwest::Client, base: &str, token: &str, runs: &[String]) -> Vec<String> {
    for _ in 0..900 {
        let mut all = Vec::new();
        for r in runs {
            all.push(status(http, base, token, r).await);
        }
        if all.iter().all(|s| s != "queued" && s != "running") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("runs did not finish");
}

/// Every paid step of `scenes` distinct scenes was submitted exactly once (the sandbox gives every prompt its
/// own still, so no two scenes share a video).
fn assert_paid_once(fake: &FakeServer, scenes: usize) {
    let stats = fake.stats();
    let n = |k: &str| stats.get(k).copied().unwrap_or(0);
    let scenes = scenes as u64;
    assert_eq!(n("fal.submit.fal-ai/flux-lora"), scenes, "{stats:?}");
    assert_eq!(n("kling.submit"), scenes, "{stats:?}");
    assert_eq!(n("sync.submit"), scenes, "{stats:?}");
    // Speech is synchronous and has no job id: a worker killed mid-request may have it redone once.
    assert!(
        (scenes..=scenes + 1).contains(&n("elevenlabs.tts")),
        "{stats:?}"
    );
}

/// The scale-out acceptance run: 12 scenes (twice the run slots of three workers), three workers sharing the database (PostgreSQL in the suite's
/// PostgreSQL pass) and an S3 bucket; one worker is SIGKILLed while it holds paid jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_its_runs_to_the_others_and_nothing_is_paid_twice() {
    const MANY: usize = 12;
    let fake = fakes().await;
    let lora = cloud::serve_lora("TOK_W").await;
    let s3 = S3::start().await;
    let setup = Setup {
        s3: Some(&s3),
        limits: Some("fal=8,kling=8,sync=8,elevenlabs=8"),
        slots: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let (_api, base, token) = api_with(dir.path(), &setup);
    let http = devatar::net::client_builder().build().unwrap();
    let mut victim = worker_with(dir.path(), &fake.base_url(), &setup);
    let _a = worker_with(dir.path(), &fake.base_url(), &setup);
    let _b = worker_with(dir.path(), &fake.base_url(), &setup);
    let runs = queue_scenes(&http, &base, &token, &lora, MANY).await;
    // Kill one worker with SIGKILL while paid jobs are in flight.
    for _ in 0..300 {
        if fake.stats().get("sync.submit").copied().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    let statuses = wait_all(&http, &base, &token, &runs).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    assert_paid_once(&fake, MANY);
    // The media went to the bucket: every scene's final video at least.
    let videos = s3
        .objects()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .count();
    assert!(videos >= MANY, "{videos} videos in the bucket");
    // (`token create` opens the data folder without the bucket settings, so the folder itself may exist.)
    let local = files_under(&dir.path().join("objects"));
    assert!(local.is_empty(), "media written locally: {local:?}");
}

/// Provider limits bind across processes: two workers with three run slots each, six scenes, at most one
/// Kling and one Sync job and two Fal jobs in flight at any time, as the sandbox saw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_limits_hold_across_two_worker_processes() {
    let fake = fakes().await;
    let lora = cloud::serve_lora("TOK_W").await;
    let setup = Setup {
        s3: None,
        limits: Some("kling=1,sync=1,fal=2"),
        slots: 3,
    };
    let dir = tempfile::tempdir().unwrap();
    let (_api, base, token) = api(dir.path());
    let http = devatar::net::client_builder().build().unwrap();
    let _a = worker_with(dir.path(), &fake.base_url(), &setup);
    let _b = worker_with(dir.path(), &fake.base_url(), &setup);
    let runs = queue_scenes(&http, &base, &token, &lora, SCENES).await;
    let statuses = wait_all(&http, &base, &token, &runs).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    assert_paid_once(&fake, SCENES);
    let stats = fake.stats();
    let peak = |k: &str| stats.get(k).copied().unwrap_or(0);
    assert_eq!(peak("kling.peak_active"), 1, "{stats:?}");
    assert_eq!(peak("sync.peak_active"), 1, "{stats:?}");
    assert!((1..=2).contains(&peak("fal.peak_active")), "{stats:?}");
    // Steps that queued behind the limit say so in their log.
    let logs: Value = http
        .get(format!("{base}/api/logs?limit=500"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let waited = logs
        .to_string()
        .matches("for a free kling slot (limit 1)")
        .count();
    assert!(waited >= 1, "no step waited for a Kling slot: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_claiming_and_loses_nothing() {
    let fake = fakes().await;
    let lora = cloud::serve_lora("TOK_W").await;
    let dir = tempfile::tempdir().unwrap();
    let (_api, base, token) = api(dir.path());
    let http = devatar::net::client_builder().build().unwrap();
    let stopping = worker(dir.path(), &fake.base_url());
    let runs = queue_scenes(&http, &base, &token, &lora, SCENES).await;
    for _ in 0..300 {
        if fake.stats().get("elevenlabs.tts").copied().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM mid-step: the worker exits cleanly after finishing (or releasing) its run.
    let pid = stopping.0.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut stopping = stopping;
    let exit = stopping.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let after: Vec<String> = {
        let mut v = Vec::new();
        for r in &runs {
            v.push(status(&http, &base, &token, r).await);
        }
        v
    };
    assert!(
        after.iter().all(|s| s != "running"),
        "nothing left claimed by a stopped worker: {after:?}"
    );
    assert!(
        after.iter().filter(|s| *s == "queued").count() >= SCENES - 2,
        "it stopped claiming: {after:?}"
    );
    // Another worker takes the rest (three at a time); every step is paid once.
    let three = Setup {
        slots: 3,
        ..Setup::default()
    };
    let _next = worker_with(dir.path(), &fake.base_url(), &three);
    let statuses = wait_all(&http, &base, &token, &runs).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    assert_paid_once(&fake, SCENES);
}

/// `serve --no-worker` streams the live progress of a run that a separate worker process executes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_stream_live_from_another_process() {
    let fake = fakes().await;
    let lora = cloud::serve_lora("TOK_W").await;
    let dir = tempfile::tempdir().unwrap();
    let (_api, base, token) = api(dir.path());
    let http = devatar::net::client_builder().build().unwrap();
    // Queued with no worker yet: nothing is stored, so whatever the stream says arrives live.
    let runs = queue_scenes(&http, &base, &token, &lora, 1).await;
    let response = http
        .get(format!("{base}/api/runs/{}/events", runs[0]))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _worker = worker(dir.path(), &fake.base_url());
    let body = tokio::time::timeout(Duration::from_secs(120), response.text())
        .await
        .expect("the stream ends with the run")
        .unwrap();
    let events: Vec<(String, Value)> = body
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_string(), serde_json::from_str(data).unwrap()))
        })
        .collect();
    let step_event = |step: &str, event: &str| {
        events
            .iter()
            .position(|(n, d)| n == "step" && d["step"] == step && d["event"] == event)
    };
    for step in ["AUDIO", "IMAGE", "VIDEO", "LIPSYNC", "FINALIZE"] {
        assert!(step_event(step, "finished").is_some(), "{step}: {body}");
    }
    // VIDEO runs for seconds on the sandbox, so its start is seen before its end.
    let started = step_event("VIDEO", "started").expect("VIDEO started streamed live");
    assert!(started < step_event("VIDEO", "finished").unwrap(), "{body}");
    let last = events.last().unwrap();
    assert_eq!(last.0, "finished", "{body}");
    assert_eq!(last.1["status"], "succeeded", "{body}");
}

/// On PostgreSQL a queued run wakes an idle worker through `NOTIFY`: with polling set to ten minutes, runs
/// queued after the worker went idle are still claimed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_woken_by_a_notification_on_postgres() {
    if std::env::var("DEVATAR_TEST_BACKEND").ok().as_deref() != Some("postgres") {
        eprintln!("LISTEN/NOTIFY is PostgreSQL's: tested in the suite's PostgreSQL pass");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_api, base, token) = api(dir.path());
    let http = devatar::net::client_builder().build().unwrap();
    let mut cmd = command(dir.path(), &["worker", "--data", ".", "--slots", "1"]);
    let mut child = cmd
        .env("DEVATAR_POLL_MS", "600000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "worker exited");
    }
    std::thread::spawn(move || for _ in reader.lines() {});
    let _worker = Proc(child);
    // Offline providers; distinct scenes so each run does real work.
    let post = |path: String, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    post(
        "/api/identities".into(),
        json!({"name": "n", "displayName": "N", "triggerWord": "TOK_N"}),
    )
    .await;
    let project = post(
        "/api/projects".into(),
        json!({"name": "Notify", "aspectRatio": "1:1"}),
    )
    .await;
    for i in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let scene = post(
            "/api/scenes".into(),
            json!({"projectId": project["id"], "name": format!("n{i}"), "dialogue": format!("Wake up {i}.")}),
        )
        .await;
        let run = post(
            format!("/api/scenes/{}/generate", scene["id"].as_str().unwrap()),
            json!({}),
        )
        .await["runId"]
            .as_str()
            .unwrap()
            .to_string();
        let mut status = String::new();
        for _ in 0..300 {
            status = self::status(&http, &base, &token, &run).await;
            if status != "queued" && status != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, "succeeded", "run {i} was not picked up promptly");
    }
}
