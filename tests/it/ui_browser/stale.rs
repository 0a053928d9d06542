//! Issue 19's stale state in Chromium: a dialogue edit shows the scene and the project video as out of date
//! until the scene is regenerated (which re-runs only the changed steps and re-assembles the project video with
//! the new line); an identity's test result is shown at once and cleared by an edit of what it checked; Generate
//! waits for a live run and a second generate lands back on the project with a notice; a digital-twin scene
//! warns while digital twin is impossible and says the mode it ran in; the speech length sits beside the target.
//! Screenshots: `target/ui-screenshots/stale-*.png` at 1400 px and 390 px.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thirtyfour::prelude::*;

use super::{
    Api, Driver, PASSWORD, browser, click, fill, js, no_redirects, serve_lora, shot, start_server,
    text, wait_for, wait_js, wait_path,
};
use crate::common::app::{TestApp, wait_until};

/// Logs the browser in to `base`.
pub(super) async fn login(driver: &WebDriver, base: &str) {
    driver.goto(format!("{base}/login")).await.unwrap();
    fill(driver, "password", PASSWORD).await;
    click(driver, "form button[type=submit]").await;
    wait_path(driver, "/").await;
}

/// Screenshots of the current page at 1400 px and 390 px (`stale-<name>.png`, `stale-<name>-phone.png`), scrolled
/// to the element `at`.
async fn shots(driver: &WebDriver, name: &str, at: &str) {
    let scroll = format!("document.querySelector(\"{at}\").scrollIntoView()");
    driver.execute(&scroll, vec![]).await.unwrap();
    shot(driver, &format!("stale-{name}")).await;
    driver.set_window_rect(0, 0, 390, 844).await.unwrap();
    wait_js(driver, "window.innerWidth <= 400", 5).await;
    driver.execute(&scroll, vec![]).await.unwrap();
    shot(driver, &format!("stale-{name}-phone")).await;
    driver.set_window_rect(0, 0, 1400, 1000).await.unwrap();
    wait_js(driver, "window.innerWidth > 1000", 5).await;
}

/// An identity, a project and its scenes made through the API; returns the project and scene ids.
async fn project(api: &Api, lora_url: Option<&str>, scenes: &[Value]) -> (String, Vec<String>) {
    let identity = api
        .post(
            "/api/identities",
            json!({"name": "ana", "displayName": "Ana", "triggerWord": "TOK_ANA", "loraUrl": lora_url}),
        )
        .await;
    let project = api
        .post(
            "/api/projects",
            json!({"name": "Stale", "aspectRatio": "1:1", "defaultIdentityId": identity["id"]}),
        )
        .await;
    let pid = project["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for s in scenes {
        let mut s = s.clone();
        s["projectId"] = json!(pid);
        ids.push(
            api.post("/api/scenes", s).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    (pid, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_outputs_test_results_busy_runs_twin_warning_and_speech_length() {
    let started = Instant::now();
    let chromedriver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = browser(&chromedriver, profile.path()).await;
    let result =
        std::panic::AssertUnwindSafe(tokio::time::timeout(Duration::from_secs(150), async {
            busy_generate(&driver).await;
            stale_walk(&driver).await;
        }))
        .catch_unwind()
        .await;
    let _ = driver.quit().await;
    match result {
        Ok(done) => done.expect("the stale-state walk took longer than 150 s"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    eprintln!("stale-state browser test took {:?}", started.elapsed());
}

use futures::FutureExt;

/// Item 3 on a server without a worker (runs stay queued): Generate is disabled with a link to the live run,
/// and a generate posted from a page opened before the run started lands back on the project with a notice.
async fn busy_generate(driver: &WebDriver) {
    let server = TestApp::builder()
        .password(Some(PASSWORD))
        .no_worker()
        .start()
        .await;
    let api = Api::new(&server).await;
    let one = json!({"name": "one", "dialogue": "Hello there."});
    let (pid, scenes) = project(&api, None, &[one]).await;
    login(driver, &server.base).await;
    driver
        .goto(format!("{}/projects/{pid}", server.base))
        .await
        .unwrap();
    wait_for(driver, "#generate-all", 10).await;
    assert_eq!(
        js(
            driver,
            "return document.getElementById('generate-all').disabled"
        )
        .await,
        false
    );
    let run = api
        .post(&format!("/api/projects/{pid}/render"), json!({}))
        .await;
    let run_id = run["runId"].as_str().unwrap();
    // The page still offers Generate: the second one is refused (409) and says so on the project page.
    click(driver, "#generate-all").await;
    wait_path(driver, &format!("/projects/{pid}")).await;
    let notice = text(driver, ".flash").await;
    assert!(
        notice.contains("already running"),
        "a notice, not a dead end: {notice}"
    );
    assert_eq!(
        js(
            driver,
            "return document.getElementById('generate-all').disabled"
        )
        .await,
        true
    );
    let link = wait_for(driver, "#busy-note a", 5).await;
    assert_eq!(
        link.attr("href").await.unwrap().unwrap(),
        format!("#run-{run_id}")
    );
    assert!(
        driver.find(By::Id(format!("run-{run_id}"))).await.is_ok(),
        "the link leads to the run"
    );
    let card = format!("[data-scene='{}']", scenes[0]);
    assert_eq!(
        js(
            driver,
            &format!(
                "return document.querySelector(\"{card} button[aria-label^='Generate']\").disabled"
            )
        )
        .await,
        true,
        "the scene's Generate waits too"
    );
    shots(driver, "project-busy", "#gen-h").await;
    driver
        .goto(format!("{}/scenes/{}", server.base, scenes[0]))
        .await
        .unwrap();
    wait_for(driver, "#running-run", 5).await;
}

/// Items 1, 2, 6 and 7 on a server with its worker (local providers, espeak).
async fn stale_walk(driver: &WebDriver) {
    let server = start_server().await;
    let base = server.base.clone();
    let api = Api::new(&server).await;
    let lora = serve_lora().await;
    let twin = json!({"name": "one", "dialogue": "Hello there.", "generationMode": "digital-twin"});
    let short = json!({"name": "two", "dialogue": "Hi.", "targetDuration": 5.0});
    let (pid, scenes) = project(&api, Some(&lora), &[twin, short]).await;
    let run = api
        .post(&format!("/api/projects/{pid}/render"), json!({}))
        .await;
    let token = api.token.clone();
    server
        .wait_for_run(&token, run["runId"].as_str().unwrap())
        .await;
    login(driver, &base).await;

    // Item 2: the card's summary follows Test at once; an edit of the LoRA URL clears the stored result.
    driver.goto(format!("{base}/identities")).await.unwrap();
    let ana = api.get("/api/identities").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text(driver, &format!("#lora-summary-{ana}")).await,
        "LoRA set, not tested yet"
    );
    click(driver, "[data-identity='ana'] .test-button").await;
    wait_for(driver, &format!("#test-{ana} .test-result"), 20).await;
    wait_js(driver, &format!("document.getElementById('lora-summary-{ana}').textContent !== 'LoRA set, not tested yet'"), 5).await;
    let summary = text(driver, &format!("#lora-summary-{ana}")).await;
    assert!(
        summary == "LoRA checked" || summary == "LoRA set, last test failed",
        "{summary}"
    );
    shots(driver, "identities-tested", &format!("#identity-{ana}")).await;
    let http = no_redirects();
    let moved = http
        .put(format!("{base}/api/identities/{ana}"))
        .bearer_auth(&token)
        .json(&json!({"loraUrl": format!("{lora}?v=2")}))
        .send()
        .await
        .unwrap();
    assert!(moved.status().is_success(), "{}", moved.status());
    assert_eq!(
        api.get(&format!("/api/identities/{ana}")).await["lastTest"],
        Value::Null
    );
    driver.refresh().await.unwrap();
    assert_eq!(
        text(driver, &format!("#lora-summary-{ana}")).await,
        "LoRA set, not tested yet"
    );
    assert!(
        text(driver, &format!("#test-{ana}"))
            .await
            .contains("Not tested yet")
    );
    // The LoRA URL is an input of every scene's fingerprint: put it back, so the renders stay current.
    http.put(format!("{base}/api/identities/{ana}"))
        .bearer_auth(&token)
        .json(&json!({"loraUrl": lora}))
        .send()
        .await
        .unwrap();

    // Items 6 and 7 on the cards: the mode the twin scene ran in, the real speech beside the target.
    driver.goto(format!("{base}/projects/{pid}")).await.unwrap();
    let (one, two) = (
        format!("[data-scene='{}']", scenes[0]),
        format!("[data-scene='{}']", scenes[1]),
    );
    assert_eq!(text(driver, "#project-status").await, "completed");
    assert!(
        text(driver, &format!("{one} .scene-mode"))
            .await
            .contains("digital-twin (ran as standard)")
    );
    let speech = text(driver, &format!("{two} .speech-line")).await;
    assert!(
        speech.starts_with("speech ") && speech.contains("target 5 s: shorter than the target"),
        "{speech}"
    );
    assert!(
        !speech.contains('≈'),
        "the rendered length, not the estimate: {speech}"
    );

    // Item 6 on the form: the twin warning; item 7: the estimate follows the words as they are typed.
    driver
        .goto(format!("{base}/scenes/{}/edit", scenes[0]))
        .await
        .unwrap();
    let warning = wait_for(driver, "#twin-warning", 5).await;
    assert!(
        warning.is_displayed().await.unwrap(),
        "shown while the mode is digital twin"
    );
    assert!(warning.text().await.unwrap().contains("FAL_KEY"));
    fill(
        driver,
        "f-dialogue",
        "Hello again, with a much longer line than one second allows.",
    )
    .await;
    fill(driver, "f-targetDuration", "1").await;
    assert_eq!(
        text(driver, "#speech-estimate").await,
        "speech ≈ 4.6 s (estimated) · target 1 s: longer than the target"
    );
    shots(driver, "scene-form", "#f-targetDuration").await;
    fill(driver, "f-dialogue", "A brand new line.").await;
    fill(driver, "f-targetDuration", "").await;
    click(driver, "#scene-form button[type=submit]").await;
    wait_path(driver, &format!("/projects/{pid}")).await;

    // Item 1: the edit makes the scene and the project video out of date (the other scene stays current).
    assert_eq!(
        text(driver, &format!("{one} .scene-status")).await,
        "out of date"
    );
    assert_eq!(
        text(driver, &format!("{two} .scene-status")).await,
        "completed"
    );
    assert_eq!(text(driver, "#project-status").await, "out of date");
    assert_eq!(
        api.get(&format!("/api/scenes/{}", scenes[0])).await["outOfDate"],
        true
    );
    assert_eq!(
        api.get(&format!("/api/projects/{pid}")).await["outOfDate"],
        true
    );
    shots(driver, "project-out-of-date", "#scene-cards").await;
    driver.goto(format!("{base}/scenes")).await.unwrap();
    let listed = text(driver, "#scene-list").await;
    assert_eq!(listed.matches("out of date").count(), 1, "{listed}");
    driver.goto(format!("{base}/projects/{pid}")).await.unwrap();
    wait_for(driver, "#scene-cards", 10).await;

    // Regenerating the scene re-runs only what changed and re-assembles the project video with the new line.
    click(driver, &format!("{one} button[aria-label^='Generate']")).await;
    wait_path(driver, &format!("/projects/{pid}")).await;
    let status = format!("/api/scenes/{}/status", scenes[0]);
    let rerun: String = wait_until("the scene run", Duration::from_secs(20), || async {
        let run = &server.get_json(&token, &status).await["run"];
        (run["sceneId"] == scenes[0].as_str()).then(|| run["id"].as_str().unwrap().to_string())
    })
    .await;
    let rerun = server.wait_for_run(&token, &rerun).await;
    assert_eq!(rerun["status"], "succeeded", "{rerun}");
    let mut ran: Vec<(String, bool)> = rerun["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["cached"].as_bool().unwrap(),
            )
        })
        .collect();
    ran.sort();
    let executed: Vec<&str> = ran
        .iter()
        .filter(|(_, c)| !c)
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(
        executed,
        ["ASSEMBLE", "AUDIO", "FINALIZE", "LIPSYNC"],
        "{ran:?}"
    );
    assert!(
        rerun["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["sceneId"] != scenes[1].as_str()),
        "the other scene is not rendered again"
    );
    wait_js(
        driver,
        "document.getElementById('project-status').textContent === 'completed'",
        20,
    )
    .await;
    assert_eq!(
        text(driver, &format!("{one} .scene-status")).await,
        "completed"
    );
    let vtt = js(
        driver,
        "const t = document.querySelector('#project-video track'); \
         const r = new XMLHttpRequest(); r.open('GET', t.src, false); r.send(); return r.responseText;",
    )
    .await;
    assert!(vtt.as_str().unwrap().contains("brand new line"), "{vtt}");
    assert_eq!(
        api.get(&format!("/api/projects/{pid}")).await["outOfDate"],
        false
    );
    driver
        .goto(format!("{base}/scenes/{}", scenes[0]))
        .await
        .unwrap();
    assert_eq!(text(driver, "#scene-status").await, "completed");
    assert!(
        text(driver, ".facts")
            .await
            .contains("digital-twin (ran as standard)")
    );
    shots(driver, "scene", "#details-h").await;
}
