//! Scale-out: `serve --no-worker` queues runs, separate `devatar worker` processes claim them under leases.
//! A worker killed with SIGKILL loses its runs to the others once its lease expires; a worker told to stop
//! with SIGTERM stops claiming and finishes or releases what it holds. Paid steps go to the provider sandbox,
//! which counts that every paid step was submitted at most once.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::cloud::{self, cloud_env};
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

fn worker(data: &Path, base: &str) -> Proc {
    let mut cmd = command(
        data,
        &["worker", "--data", ".", "--slots", "1", "--grace", "20"],
    );
    cloud_env(&mut cmd, base).env("DEVATAR_LEASE_SECS", "2");
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
    let mut child = command(
        data,
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data",
            ".",
            "--no-worker",
        ],
    )
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

/// Creates an identity with a LoRA, a project with `SCENES` scenes, and queues one run per scene.
async fn queue_scenes(http: &reqwest::Client, base: &str, token: &str, lora: &str) -> Vec<String> {
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
    for i in 0..SCENES {
        let scene = post(
            "/api/scenes".into(),
            // Distinct stills and speech lengths, so no scene reuses another's cached outputs.
            json!({"projectId": project["id"], "name": format!("s{i}"),
                   "dialogue": format!("Scene {}", "word ".repeat(i + 2)), "environment": format!("room {i}")}),
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

/// Every distinct piece of paid work was submitted exactly once. The sandbox returns the same still for every
/// prompt, so all scenes share one video (the cache), while stills, speech and lip-syncs differ per scene.
fn assert_paid_once(fake: &FakeServer) {
    let stats = fake.stats();
    let n = |k: &str| stats.get(k).copied().unwrap_or(0);
    let scenes = SCENES as u64;
    assert_eq!(n("fal.submit.fal-ai/flux-lora"), scenes, "{stats:?}");
    assert_eq!(n("sync.submit"), scenes, "{stats:?}");
    assert_eq!(n("kling.submit"), 1, "{stats:?}");
    // Speech is synchronous and has no job id: a worker killed mid-request may have it redone once.
    assert!(
        (scenes..=scenes + 1).contains(&n("elevenlabs.tts")),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_its_runs_to_the_others_and_nothing_is_paid_twice() {
    let fake = fakes().await;
    let lora = cloud::serve_lora("TOK_W").await;
    let dir = tempfile::tempdir().unwrap();
    let (_api, base, token) = api(dir.path());
    let http = reqwest::Client::new();
    let mut victim = worker(dir.path(), &fake.base_url());
    let _a = worker(dir.path(), &fake.base_url());
    let _b = worker(dir.path(), &fake.base_url());
    let runs = queue_scenes(&http, &base, &token, &lora).await;
    // Kill one worker with SIGKILL while it holds a run (paid jobs in flight).
    for _ in 0..300 {
        if fake.stats().get("sync.submit").copied().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    let statuses = wait_all(&http, &base, &token, &runs).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    assert_paid_once(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_claiming_and_loses_nothing() {
    let fake = fakes().await;
    let lora = cloud::serve_lora("TOK_W").await;
    let dir = tempfile::tempdir().unwrap();
    let (_api, base, token) = api(dir.path());
    let http = reqwest::Client::new();
    let stopping = worker(dir.path(), &fake.base_url());
    let runs = queue_scenes(&http, &base, &token, &lora).await;
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
    // Another worker takes the rest; every step is paid once.
    let _next = worker(dir.path(), &fake.base_url());
    let statuses = wait_all(&http, &base, &token, &runs).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    assert_paid_once(&fake);
}
