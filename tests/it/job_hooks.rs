//! Provider job webhooks as wake-ups, in process against the sandbox: a webhook cuts a long poll wait short (one
//! status call instead of waiting out the interval), unknown tokens get 404 and wake nothing, and a forged
//! "success" for a running job only makes the poller ask the provider, whose answer wins.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::cloud::{self, FAL_KEY};
use devatar::fakes::{FakeServer, LatencyProfile};
use devatar::providers::cloud::fal::FalQueue;
use devatar::providers::cloud::http::Net;
use devatar::providers::cloud::{Cadence, Secret};
use devatar::providers::hooks::JobHooks;
use devatar::providers::{JobCtx, JobLedger, ProviderJob};
use serde_json::json;

const MODEL: &str = "fal-ai/flux/dev";

/// A ledger in memory, so a test can read the callback URL a submit stored.
#[derive(Default)]
struct MemLedger(Mutex<HashMap<String, ProviderJob>>);

#[async_trait]
impl JobLedger for MemLedger {
    async fn load(&self, key: &str, provider: &str) -> Result<Option<ProviderJob>, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&format!("{key}/{provider}"))
            .cloned())
    }
    async fn save(&self, key: &str, provider: &str, job: &ProviderJob) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .insert(format!("{key}/{provider}"), job.clone());
        Ok(())
    }
}

fn stat(fake: &FakeServer, key: &str) -> u64 {
    fake.stats().get(key).copied().unwrap_or(0)
}

/// A Fal queue client at the sandbox, with webhooks to `hooks` when given.
fn queue(fake: &FakeServer, hooks: Option<JobHooks>) -> (FalQueue, Net) {
    let net = Net {
        time_scale: 1.0,
        allow_private_urls: true,
        hooks,
    };
    let q = FalQueue::new(&fake.base_url(), Secret::new(FAL_KEY), false, net.clone());
    (q, net)
}

/// A schedule whose first status call comes after 30 s: polling alone is slow.
fn slow_cadence(net: &Net) -> Cadence {
    let long = Duration::from_secs(30);
    Cadence::new(net, long, 1.0, long, long * 4, long * 4)
}

async fn listener() -> JobHooks {
    devatar::web::hooks::listen("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_wakes_the_poller_long_before_its_next_poll() {
    let fake = cloud::fakes(LatencyProfile::Fast, 1.0).await;
    let hooks = listener().await;
    let (q, net) = queue(&fake, Some(hooks.clone()));
    let started = Instant::now();
    let job = JobCtx::detached("hooked");
    let out = q
        .run(
            MODEL,
            &json!({"prompt": "a face"}),
            0.0,
            slow_cadence(&net),
            &job,
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(out["images"][0]["url"].is_string(), "{out}");
    // One status call, made when the webhook arrived, instead of none for 30 s.
    assert_eq!(stat(&fake, "fal.status"), 1);
    assert_eq!(stat(&fake, "webhooks.sent"), 1);
    assert_eq!(hooks.wakes(), 1);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(hooks.waiting(), 0, "the finished job left the registry");

    // Without a callback base the same job is only polled: after 1 s nothing has asked yet.
    let (q, net) = queue(&fake, None);
    let plain = tokio::spawn(async move {
        let job = JobCtx::detached("plain");
        q.run(
            MODEL,
            &json!({"prompt": "a face"}),
            0.0,
            slow_cadence(&net),
            &job,
        )
        .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stat(&fake, "fal.submit"), 2);
    assert_eq!(stat(&fake, "fal.status"), 1, "no status call yet");
    assert_eq!(stat(&fake, "webhooks.sent"), 1, "no webhook was asked for");
    assert!(!plain.is_finished());
    plain.abort();
}

#[tokio::test]
async fn unknown_or_malformed_tokens_get_404_and_wake_nothing() {
    let hooks = listener().await;
    let hook = hooks.register(None).unwrap();
    let http = devatar::net::client_builder().build().unwrap();
    let post = |url: String, body: &'static str| http.post(url).body(body).send();
    let base = hooks.base().to_string();
    let forged = format!("{base}/hooks/jobs/{}", "ab".repeat(32));
    assert_eq!(post(forged, "{}").await.unwrap().status(), 404);
    let short = format!("{base}/hooks/jobs/abc");
    assert_eq!(post(short, "{}").await.unwrap().status(), 404);
    let other = format!(
        "{base}/hooks/jobs/..%2f{}",
        &hook.url()[hook.url().len() - 64..]
    );
    assert_eq!(post(other, "{}").await.unwrap().status(), 404);
    assert_eq!(hooks.wakes(), 0, "nothing was woken");
    // The job's own URL answers 204 whatever the body, and wakes it once.
    let got = post(hook.url().to_string(), "not json at all")
        .await
        .unwrap();
    assert_eq!(got.status(), 204);
    assert_eq!(hooks.wakes(), 1);
    let get = http.get(hook.url()).send().await.unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn serve_with_a_public_url_serves_the_route_on_its_own_listener() {
    let app = common::app::TestApp::builder()
        .env("DEVATAR_PUBLIC_URL", "https://devatar.example/")
        .no_worker()
        .start()
        .await;
    let hooks = app.config.cloud.hooks.clone().expect("a registry");
    assert_eq!(hooks.base(), "https://devatar.example");
    let hook = hooks.register(None).unwrap();
    let token = hook.url().strip_prefix("https://devatar.example").unwrap();
    let http = devatar::net::client_builder().build().unwrap();
    let known = http.post(format!("{}{token}", app.base)).body("{}");
    assert_eq!(known.send().await.unwrap().status(), 204);
    let unknown = http.post(format!("{}/hooks/jobs/{}", app.base, "0".repeat(64)));
    assert_eq!(unknown.send().await.unwrap().status(), 404);
    assert_eq!(hooks.wakes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_success_makes_the_poller_ask_and_keep_waiting() {
    // Flux takes 14 s × 0.15 = 2.1 s here.
    let fake = cloud::fakes(LatencyProfile::Realistic, 0.15).await;
    let hooks = listener().await;
    let (q, net) = queue(&fake, Some(hooks.clone()));
    let ledger = Arc::new(MemLedger::default());
    let job = JobCtx::new("forged", ledger.clone());
    let run = tokio::spawn(async move {
        q.run(
            MODEL,
            &json!({"prompt": "a face"}),
            0.0,
            slow_cadence(&net),
            &job,
        )
        .await
    });
    let mut hook_url = None;
    for _ in 0..200 {
        hook_url = ledger.0.lock().unwrap().values().find_map(|j| {
            (j.remote_id.is_some())
                .then(|| j.data["hookUrl"].as_str().map(str::to_string))
                .flatten()
        });
        if hook_url.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hook_url = hook_url.expect("the submit stored its callback URL");
    assert!(hook_url.starts_with(hooks.base()), "{hook_url}");
    let claim = json!({"request_id": "x", "status": "OK", "payload": {"images": [{"url": "https://evil/x.png"}]}});
    let got = devatar::net::client_builder()
        .build()
        .unwrap()
        .post(&hook_url)
        .json(&claim)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 204);
    for _ in 0..100 {
        if stat(&fake, "fal.status") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stat(&fake, "fal.status"),
        1,
        "the forged call caused one status call"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!run.is_finished(), "the provider said the job still runs");
    assert_eq!(stat(&fake, "fal.result"), 0);
    // The sandbox's own webhook at completion ends the wait; the result is the provider's, not the claim's.
    let out = run.await.unwrap().unwrap();
    let url = out["images"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&fake.base_url()), "{url}");
    assert_eq!(stat(&fake, "fal.status"), 2);
    // The sandbox counts its webhook once our listener has answered it, which can be after the woken poller
    // has finished.
    for _ in 0..200 {
        if stat(&fake, "webhooks.sent") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stat(&fake, "webhooks.sent"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_kling_task_is_seen_when_its_callback_arrives() {
    use devatar::providers::{Framing, VideoRequest};
    // Kling takes 0.6 s here; its first status call is due 10 s after the submit.
    let fake = cloud::fakes(LatencyProfile::Fast, 1.0).await;
    let base = fake.base_url();
    let mut cfg = devatar::config::Config::from_pairs(&[
        ("KLING_ACCESS_KEY", cloud::KLING_ACCESS),
        ("KLING_SECRET_KEY", cloud::KLING_SECRET),
        ("KLING_BASE_URL", &base),
        ("DEVATAR_ALLOW_PRIVATE_URLS", "1"),
    ])
    .unwrap();
    let hooks = listener().await;
    cfg.cloud.hooks = Some(hooks.clone());
    let video = cfg
        .providers(devatar::providers::cloud::ProviderChoice::Cloud)
        .unwrap()
        .video;
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("still.png");
    let png = reqwest::get(format!("{base}/__media/sample.png"))
        .await
        .unwrap();
    std::fs::write(&image, png.bytes().await.unwrap()).unwrap();
    let req = VideoRequest {
        image,
        prompt: "a calm look".into(),
        framing: Framing::Medium,
        movement: None,
        duration_seconds: 5,
        urls: Default::default(),
        width: 640,
        height: 360,
        proxy: false,
    };
    let started = Instant::now();
    let clip = video
        .animate(&req, work.path(), &JobCtx::detached("kling-hooked"))
        .await
        .unwrap();
    assert!(clip.is_file());
    assert_eq!(stat(&fake, "kling.submit"), 1);
    assert_eq!(
        stat(&fake, "kling.status"),
        1,
        "one status call, when woken"
    );
    assert_eq!(stat(&fake, "webhooks.sent"), 1);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}
