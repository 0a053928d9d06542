//! Issue 19 (what a new user hit), items 4, 5, 8, 9, 10, 11 and 13, in one browser session on one server: the
//! identity form uploads a headshot inline and an asset's delete names its users; identity tests speak plain
//! words with the guide's troubleshooting; the cloud estimate beside the local one; the run page (every step,
//! both step names, prompts, cost, its logs) and the scene's logs by run; the log level filter, the empty
//! result, phone cards and the folding navigation; a failed upload keeps type and folder; the login card is
//! centred and Settings names each provider's variables. Layout is checked at 1400 px and 390 px.
//!
//! With `NEWUSER_SHOTS=<folder>` every changed page is also photographed at both widths.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

use super::{
    Api, Driver, PASSWORD, choose, click, fill, js, start_server, wait_for, wait_js, wait_path,
};
use crate::common::app::TestApp;

const PROJECT: &str = "Issue nineteen walkthrough";

/// The ids the walk needs.
struct Setup {
    identity: String,
    project: String,
    scene: String,
    headshot: String,
    run: String,
}

/// A plain-colour PNG made by ffmpeg.
fn png(path: &Path, colour: &str) {
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("color=c={colour}:s=128x128"))
        .args(["-frames:v", "1", "-y"])
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

/// An identity whose LoRA cannot be reached, a project with one scene using an uploaded headshot, a few log
/// rows of every level, and a render of the project started.
async fn setup(server: &TestApp, api: &Api, files: &Path) -> Setup {
    use reqwest::multipart::{Form, Part};
    let team = files.join("team.png");
    png(&team, "0x3366cc");
    let upload = Form::new().text("kind", "headshot").part(
        "file",
        Part::bytes(std::fs::read(&team).unwrap()).file_name("team.png"),
    );
    let asset: Value = api
        .http
        .post(format!("{}/api/assets", api.base))
        .bearer_auth(&api.token)
        .multipart(upload)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let headshot = asset["id"].as_str().unwrap().to_string();
    let identity = api
        .post(
            "/api/identities",
            json!({"name": "nineteen", "displayName": "Nina Nineteen", "triggerWord": "TOK_NINETEEN",
                   "loraUrl": "http://127.0.0.1:9/nina.safetensors", "headshotAssetId": headshot}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let project = api.post("/api/projects", json!({"name": PROJECT})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let scene = api
        .post(
            "/api/scenes",
            json!({"projectId": project, "name": "one", "dialogue": "Hi there.", "identityId": identity,
                   "headshotAssetId": headshot, "generationMode": "standard"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let long = "a long message that squeezes the other columns of the log table ".repeat(5);
    for (level, message) in [
        ("INFO", long.as_str()),
        ("WARN", "a warning"),
        ("ERROR", "an error"),
    ] {
        server
            .storage
            .db
            .insert_log(&devatar::storage::db::LogInput {
                project_id: Some(devatar::domain::ProjectId::from(&project)),
                scene_id: Some(devatar::domain::SceneId::from(&scene)),
                step: "AUDIO_GENERATION".into(),
                level: level.into(),
                message: message.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let run = api
        .post(&format!("/api/projects/{project}/render"), json!({}))
        .await["runId"]
        .as_str()
        .unwrap()
        .to_string();
    Setup {
        identity,
        project,
        scene,
        headshot,
        run,
    }
}

/// Resizes the window to a desktop (1400 px) or phone (390 px) width and waits for the layout.
async fn width(driver: &WebDriver, w: u32) {
    let h = if w < 500 { 844 } else { 1000 };
    driver.set_window_rect(0, 0, w, h).await.unwrap();
    let cond = if w < 500 {
        "window.innerWidth <= 400".to_string()
    } else {
        format!("window.innerWidth >= {}", w - 40)
    };
    wait_js(driver, &cond, 5).await;
}

/// The text of the first element matching `css`, read by a script once it exists: no element handle that a live
/// refresh (a run finishing swaps `#live`) could make stale.
async fn jtext(driver: &WebDriver, css: &str) -> String {
    let q = format!("document.querySelector(\"{css}\")");
    wait_js(driver, &q, 10).await;
    js(driver, &format!("return {q}.textContent.trim()"))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn goto(driver: &WebDriver, base: &str, path: &str) {
    driver.goto(format!("{base}{path}")).await.unwrap();
    wait_js(driver, "document.readyState === 'complete'", 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_users_stumbling_blocks_are_gone() {
    let server = start_server().await;
    let api = Api::new(&server).await;
    let files = tempfile::tempdir().unwrap();
    let s = setup(&server, &api, files.path()).await;
    let chromedriver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = super::browser(&chromedriver, profile.path()).await;
    let result = std::panic::AssertUnwindSafe(tokio::time::timeout(
        Duration::from_secs(120),
        walk(&driver, &server, &api, &s, files.path()),
    ))
    .catch_unwind()
    .await;
    let _ = driver.quit().await;
    match result {
        Ok(done) => done.expect("the walk took longer than 120 s"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn walk(driver: &WebDriver, server: &TestApp, api: &Api, s: &Setup, files: &Path) {
    let base = server.base.as_str();
    login_and_settings(driver, base).await;
    identities(driver, base, api, s, files).await;
    assets(driver, base, s, files).await;
    estimate(driver, base, api, s).await;
    logs(driver, base, s).await;
    runs(driver, server, api, s).await;
    scene_media(driver, base, api, s, files).await;
    if let Ok(dir) = std::env::var("NEWUSER_SHOTS") {
        tour(driver, base, s, Path::new(&dir)).await;
    }
}

/// Uploads `path` as an asset of `kind`; returns its id.
async fn upload(api: &Api, kind: &str, path: &Path) -> String {
    use reqwest::multipart::{Form, Part};
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let form = Form::new().text("kind", kind.to_string()).part(
        "file",
        Part::bytes(std::fs::read(path).unwrap()).file_name(name),
    );
    let asset: Value = api
        .http
        .post(format!("{}/api/assets", api.base))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    asset["id"].as_str().unwrap().to_string()
}

/// Item 12: the scene form offers uploaded recordings and backgrounds; chosen, the scene page says how each is
/// used.
async fn scene_media(driver: &WebDriver, base: &str, api: &Api, s: &Setup, files: &Path) {
    let wall = files.join("office-wall.png");
    png(&wall, "0x884422");
    let voice = files.join("nina-reads.wav");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=220:duration=1",
        ])
        .arg("-y")
        .arg(&voice)
        .status()
        .unwrap();
    assert!(made.success());
    let background = upload(api, "background", &wall).await;
    let recording = upload(api, "audio", &voice).await;
    goto(driver, base, &format!("/scenes/{}/edit", s.scene)).await;
    choose(driver, "f-speechAssetId", &recording).await;
    choose(driver, "f-backgroundAssetId", &background).await;
    click(driver, "#scene-form button[type=submit]").await;
    wait_path(driver, &format!("/projects/{}", s.project)).await;
    goto(driver, base, &format!("/scenes/{}", s.scene)).await;
    let page = jtext(driver, "main").await;
    assert!(
        page.contains(
            "nina-reads.wav (spoken instead of text-to-speech; caption timings estimated)"
        ),
        "{page}"
    );
    assert!(
        page.contains("office-wall.png (behind the framed headshot in standard mode)"),
        "{page}"
    );
    let stored = api.get(&format!("/api/scenes/{}", s.scene)).await;
    assert_eq!(
        (&stored["speechAssetId"], &stored["backgroundAssetId"]),
        (&json!(recording), &json!(background))
    );
}

/// Item 13: the login card is centred at both widths; Settings names each provider's variables.
async fn login_and_settings(driver: &WebDriver, base: &str) {
    goto(driver, base, "/login").await;
    let off_centre = "(() => { const r = document.querySelector('.login-card').getBoundingClientRect(); \
                      return Math.abs(r.left + r.width / 2 - document.documentElement.clientWidth / 2); })()";
    for w in [390, 1400] {
        width(driver, w).await;
        let off = js(driver, &format!("return {off_centre}")).await;
        assert!(
            off.as_f64().unwrap() < 3.0,
            "the login card is centred at {w} px: {off} px off"
        );
    }
    fill(driver, "password", PASSWORD).await;
    click(driver, "form button[type=submit]").await;
    wait_path(driver, "/").await;
    goto(driver, base, "/settings").await;
    let needs = |p: &str| {
        format!(
            "return document.querySelector(\"[data-provider='{p}'] .provider-needs\").textContent"
        )
    };
    let kling = js(driver, &needs("kling")).await;
    assert!(
        kling
            .as_str()
            .unwrap()
            .contains("KLING_ACCESS_KEY + KLING_SECRET_KEY"),
        "{kling}"
    );
    for (p, var) in [
        ("fal", "FAL_KEY"),
        ("elevenlabs", "ELEVENLABS_API_KEY"),
        ("synclabs", "SYNCLABS_API_KEY"),
    ] {
        assert!(
            js(driver, &needs(p)).await.as_str().unwrap().contains(var),
            "{p}"
        );
    }
    assert!(!jtext(driver, "main").await.contains("see the README"));
}

/// Items 5 and 4: plain words and the guide's troubleshooting on the identity test; a headshot uploaded from
/// inside the identity form, keeping what was typed.
async fn identities(driver: &WebDriver, base: &str, api: &Api, s: &Setup, files: &Path) {
    goto(driver, base, "/identities").await;
    let page = jtext(driver, "main").await;
    for dev in ["POST /api", "(from ", "set-default"] {
        assert!(!page.contains(dev), "no developer-speak: {dev:?} in {page}");
    }
    assert!(
        jtext(driver, "#twin-help summary")
            .await
            .contains("Digital twin not available")
    );
    click(driver, "[data-identity='nineteen'] .test-button").await;
    let result = format!("#test-{} .test-result", s.identity);
    let lora = format!("{result} [data-check='loraReachable']");
    // Read through scripts only: the result may be swapped in (htmx) or the page reloaded (plain form).
    wait_js(
        driver,
        &format!("document.readyState === 'complete' && !!document.querySelector(\"{lora}\")"),
        20,
    )
    .await;
    assert_eq!(
        js(
            driver,
            &format!("return document.querySelector(\"{lora}\").dataset.ok")
        )
        .await,
        "false"
    );
    assert_eq!(
        js(
            driver,
            &format!("return document.querySelector(\"{lora} .check-label\").textContent")
        )
        .await,
        "LoRA download"
    );
    let said = js(
        driver,
        &format!("return document.querySelector(\"{lora}\").innerText"),
    )
    .await
    .as_str()
    .unwrap()
    .to_string();
    assert!(
        said.contains("the server refused the connection") && !said.contains("os error"),
        "plain words, the raw error chain folded away: {said}"
    );
    let raw = js(
        driver,
        &format!("return document.querySelector(\"{lora} details.raw-detail pre\").textContent"),
    )
    .await;
    assert!(
        raw.as_str().unwrap().contains("Connection refused"),
        "{raw}"
    );
    assert!(
        js(
            driver,
            &format!("return document.querySelector(\"{lora} .troubleshoot\").textContent")
        )
        .await
        .as_str()
        .unwrap()
        .contains("LoRA validation failed"),
        "the failed check points to the guide's troubleshooting"
    );
    let labels = js(
        driver,
        &format!("return Array.from(document.querySelectorAll(\"{result} .check-label\")).map(e => e.textContent)"),
    )
    .await;
    for l in labels.as_array().unwrap() {
        let l = l.as_str().unwrap();
        assert!(
            l.starts_with(char::is_uppercase),
            "a label in words, not a camelCase id: {l}"
        );
    }
    let tested = api.get(&format!("/api/identities/{}", s.identity)).await;
    let checks = tested["lastTest"]["result"]["checks"]
        .as_array()
        .unwrap()
        .clone();
    let reach = checks
        .iter()
        .find(|c| c["name"] == "loraReachable")
        .expect("stable name");
    assert_eq!(reach["label"], "LoRA download");

    // Item 4: upload a headshot without leaving the form; the typed display name stays.
    goto(driver, base, &format!("/identities/{}/edit", s.identity)).await;
    fill(driver, "f-displayName", "Nina Typed").await;
    let inline = files.join("inline.png");
    png(&inline, "0xcc6633");
    driver
        .find(By::Id("headshot-file"))
        .await
        .unwrap()
        .send_keys(inline.display().to_string())
        .await
        .unwrap();
    click(driver, "#headshot-upload").await;
    wait_js(
        driver,
        "document.getElementById('headshot-upload-result').textContent.includes('Uploaded and chosen')",
        20,
    )
    .await;
    let chosen = js(
        driver,
        "return document.getElementById('f-headshotAssetId').value",
    )
    .await;
    assert_ne!(chosen, json!(""));
    assert_ne!(chosen, json!(s.headshot), "the new upload is chosen");
    assert_eq!(
        js(
            driver,
            "return document.getElementById('f-displayName').value"
        )
        .await,
        "Nina Typed",
        "what was typed is kept"
    );
    click(driver, "#identity-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=identity-saved')", 10).await;
    let saved = api.get(&format!("/api/identities/{}", s.identity)).await;
    assert_eq!(saved["headshotAssetId"], chosen);
    assert_eq!(saved["displayName"], "Nina Typed");
}

/// Items 11 and 4: a failed upload keeps type and folder; deleting an asset in use names its users first.
async fn assets(driver: &WebDriver, base: &str, s: &Setup, files: &Path) {
    goto(driver, base, "/assets").await;
    let users = |id: &str| {
        format!(
            "return (document.querySelector(\"[data-asset='{id}'] .asset-users\") || {{}}).textContent || ''"
        )
    };
    let old = js(driver, &users(&s.headshot)).await;
    assert!(
        old.as_str()
            .unwrap()
            .contains(&format!("scene one of {PROJECT}")),
        "{old}"
    );
    let inline = js(
        driver,
        "return Array.from(document.querySelectorAll('[data-asset]')).find(e => e.textContent.includes('inline.png')).dataset.asset",
    )
    .await;
    let new = js(driver, &users(inline.as_str().unwrap())).await;
    assert!(
        new.as_str().unwrap().contains("identity Nina Typed"),
        "{new}"
    );

    let fake = files.join("notes.png");
    std::fs::write(&fake, "just text").unwrap();
    choose(driver, "upload-kind", "background").await;
    fill(driver, "upload-folder", "office").await;
    driver
        .find(By::Id("upload-file"))
        .await
        .unwrap()
        .send_keys(fake.display().to_string())
        .await
        .unwrap();
    click(driver, "#upload-submit").await;
    wait_for(driver, "#upload-error", 10).await;
    assert_eq!(
        js(
            driver,
            "return document.getElementById('upload-kind').value"
        )
        .await,
        "background"
    );
    assert_eq!(
        js(
            driver,
            "return document.getElementById('upload-folder').value"
        )
        .await,
        "office"
    );
}

/// Item 8: the local estimate has the cloud one beside it.
async fn estimate(driver: &WebDriver, base: &str, api: &Api, s: &Setup) {
    goto(driver, base, &format!("/projects/{}", s.project)).await;
    let cloud = api
        .post(
            "/api/estimate",
            json!({"projectId": s.project, "providers": "cloud"}),
        )
        .await["totalUsd"]
        .as_f64()
        .unwrap();
    assert!(cloud > 0.0);
    assert_eq!(
        jtext(driver, "#estimate-cloud").await,
        format!("${cloud:.2} with cloud providers")
    );
    assert_eq!(jtext(driver, "#estimate-total").await, "$0.00");
}

/// Item 10: level and above, the project beside the scene without breaking, no bare table for nothing, cards
/// and a folded navigation on a phone.
async fn logs(driver: &WebDriver, base: &str, s: &Setup) {
    goto(
        driver,
        base,
        &format!("/logs?project={}&level=WARN", s.project),
    )
    .await;
    let levels = js(
        driver,
        "return Array.from(document.querySelectorAll('#log-rows tr')).map(r => r.dataset.level)",
    )
    .await;
    let levels: Vec<&str> = levels
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        levels.contains(&"ERROR") && levels.contains(&"WARN"),
        "{levels:?}"
    );
    assert!(
        levels.iter().all(|l| *l == "WARN" || *l == "ERROR"),
        "{levels:?}"
    );
    let finalize = js(
        driver,
        "return document.querySelector(\"#filter-step option[value='VIDEO_FINALIZE']\").textContent",
    )
    .await;
    assert_eq!(
        finalize, "VIDEO_FINALIZE (FINALIZE)",
        "the filter shows both names"
    );
    goto(
        driver,
        base,
        &format!("/logs?project={}&level=INFO", s.project),
    )
    .await;
    let one_line = "Array.from(document.querySelectorAll('#log-rows .log-project')).every(a => \
                    a.getBoundingClientRect().height < 2 * parseFloat(getComputedStyle(a).fontSize))";
    assert_eq!(
        js(driver, &format!("return {one_line}")).await,
        true,
        "the project name does not wrap"
    );
    goto(
        driver,
        base,
        &format!(
            "/logs?project={}&step=LIPSYNC_APPLICATION&level=ERROR",
            s.project
        ),
    )
    .await;
    assert!(driver.find(By::Id("no-rows")).await.is_ok());
    assert_eq!(
        js(
            driver,
            "return document.getElementById('log-table').getBoundingClientRect().height"
        )
        .await,
        0,
        "no bare table header for an empty result"
    );
    assert_eq!(
        js(
            driver,
            "return !!document.querySelector('.menu-toggle').offsetParent"
        )
        .await,
        false
    );
    width(driver, 390).await;
    goto(driver, base, &format!("/logs?project={}", s.project)).await;
    let cards = js(
        driver,
        "const rows = Array.from(document.querySelectorAll('#log-rows tr')); \
         return {head: getComputedStyle(document.querySelector('#log-table thead')).display, \
                 inside: rows.every(r => r.getBoundingClientRect().right <= window.innerWidth + 1 \
                   && r.querySelector('.log-message').getBoundingClientRect().right <= window.innerWidth + 1), \
                 rows: rows.length}",
    )
    .await;
    assert_eq!(cards["head"], "none", "{cards}");
    assert_eq!(
        cards["inside"], true,
        "every row and its message fit a phone: {cards}"
    );
    let nav = "return document.getElementById('main-nav').getBoundingClientRect().height";
    assert_eq!(
        js(driver, nav).await,
        0,
        "the navigation is folded on a phone"
    );
    let side = js(
        driver,
        "return document.querySelector('.sidebar').getBoundingClientRect().height",
    )
    .await;
    assert!(
        side.as_f64().unwrap() < 70.0,
        "the folded sidebar is one line: {side}"
    );
    click(driver, ".menu-toggle").await;
    assert!(
        js(driver, nav).await.as_f64().unwrap() > 20.0,
        "Menu opens it"
    );
    width(driver, 1400).await;
    assert!(
        js(driver, nav).await.as_f64().unwrap() > 100.0,
        "the desktop sidebar is open"
    );
}

/// Item 9: the run page from the project's run row; the scene page's logs by run.
async fn runs(driver: &WebDriver, server: &TestApp, api: &Api, s: &Setup) {
    let base = server.base.as_str();
    let done = server.wait_for_run(&api.token, &s.run).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let names: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|st| st["step"].as_str())
        .collect();
    assert!(
        names.contains(&"FINALIZE") && names.contains(&"ASSEMBLE"),
        "the API keeps step names: {names:?}"
    );
    goto(driver, base, &format!("/projects/{}", s.project)).await;
    click(driver, &format!("tr[data-run='{}'] a.run-link", s.run)).await;
    wait_path(driver, &format!("/runs/{}", s.run)).await;
    let log_name = |step: &str| format!("#run-steps tr[data-step='{step}'] .log-name");
    assert_eq!(jtext(driver, &log_name("ASSEMBLE")).await, "VIDEO_ASSEMBLY");
    assert_eq!(jtext(driver, &log_name("FINALIZE")).await, "VIDEO_FINALIZE");
    assert_eq!(
        driver
            .find_all(By::Css("#run-steps tbody tr"))
            .await
            .unwrap()
            .len(),
        6,
        "five scene steps and ASSEMBLE"
    );
    assert!(
        jtext(driver, ".prompt-image")
            .await
            .starts_with("TOK_NINETEEN")
    );
    assert!(!jtext(driver, ".prompt-video").await.is_empty());
    assert_eq!(jtext(driver, "#run-cost").await, "$0.00");
    assert!(
        driver
            .find(By::Css("#run-logs tr[data-step='VIDEO_FINALIZE']"))
            .await
            .is_ok()
    );
    assert!(
        driver
            .find(By::Css("#run-logs tr[data-step='VIDEO_ASSEMBLY']"))
            .await
            .is_ok()
    );
    // The scene page's logs come in one group per run (the rows written by setup() belong to none).
    goto(driver, base, &format!("/scenes/{}", s.scene)).await;
    let groups = js(
        driver,
        "return Array.from(document.querySelectorAll('tbody.run-logs')).map(b => b.dataset.run)",
    )
    .await;
    let groups: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(groups.contains(&s.run.as_str()), "{groups:?}");
    assert!(groups.contains(&""), "rows outside a run: {groups:?}");
    assert_eq!(groups.len(), 2, "one group per run: {groups:?}");
    assert_eq!(
        jtext(driver, "#timeline tr[data-step='FINALIZE'] .log-name").await,
        "VIDEO_FINALIZE"
    );
}

/// Every changed page at 1400 px and 390 px, into `dir`.
async fn tour(driver: &WebDriver, base: &str, s: &Setup, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // (file name, page, element scrolled to the top)
    let pages = [
        ("dashboard", "/".to_string(), "main"),
        ("settings", "/settings".into(), "main"),
        ("identities", "/identities".into(), "main"),
        ("identity-test", "/identities".into(), ".test-result"),
        (
            "identity-edit",
            format!("/identities/{}/edit", s.identity),
            ".inline-upload",
        ),
        ("assets", "/assets".into(), "#asset-list"),
        ("project", format!("/projects/{}", s.project), "main"),
        ("run", format!("/runs/{}", s.run), "main"),
        ("run-logs", format!("/runs/{}", s.run), "#run-logs"),
        ("scene", format!("/scenes/{}", s.scene), "#timeline"),
        ("scene-logs", format!("/scenes/{}", s.scene), "#logs-h"),
        ("logs", "/logs".into(), "#log-results"),
        (
            "logs-empty",
            "/logs?step=LIPSYNC_APPLICATION&level=ERROR".into(),
            "#log-results",
        ),
    ];
    for w in [1400, 390] {
        width(driver, w).await;
        for (name, path, at) in &pages {
            goto(driver, base, path).await;
            let script = format!(
                "document.querySelectorAll('details').forEach(d => d.open = true); \
                 document.querySelector('{at}').scrollIntoView(); return null"
            );
            js(driver, &script).await;
            let png = driver.screenshot_as_png().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{w}.png")), png).unwrap();
        }
    }
    // Logged out: the login page.
    driver.delete_all_cookies().await.unwrap();
    for w in [1400, 390] {
        width(driver, w).await;
        goto(driver, base, "/login").await;
        let png = driver.screenshot_as_png().await.unwrap();
        std::fs::write(dir.join(format!("login-{w}.png")), png).unwrap();
    }
}
