//! The web UI against the real router served in-process ([`TestApp`]): strangers are redirected to the login
//! page and pages load nothing from another host (plain HTTP), and the whole guide walked through in Debian's Chromium driven by
//! chromedriver (thirtyfour): log in, identities (validation errors, Test), assets (upload), projects and
//! scenes (every field, reorder), generation watched live to completion, the video playing, logs filtered
//! by IDENTITY_ANCHOR, delete, log out. Every main action is checked through the JSON API afterwards.
//! Screenshots of each page go to `target/ui-screenshots/<page>.png`.

use crate::common;

mod newuser;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::app::TestApp;
use futures::FutureExt;
use serde_json::{Value, json};
use thirtyfour::components::SelectElement;
use thirtyfour::prelude::*;

pub(crate) const PASSWORD: &str = "ui-correct-horse";

/// The server under test: the real router in-process ([`TestApp`]) with its worker, the UI's admin password and
/// private URLs allowed (the LoRA is served from this machine).
async fn start_server() -> TestApp {
    TestApp::builder()
        .password(Some(PASSWORD))
        .env("DEVATAR_ALLOW_PRIVATE_URLS", "1")
        .start()
        .await
}

/// The JSON API with a bearer token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn new(server: &TestApp) -> Self {
        Self {
            http: no_redirects(),
            base: server.base.clone(),
            token: server.token_named("ui-tests").await,
        }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap()
    }
}

/// An `application/x-www-form-urlencoded` body.
pub(crate) fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(crate) fn no_redirects() -> reqwest::Client {
    devatar::net::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where a redirect goes, resolved against the request URL.
fn location(base: &str, path: &str, r: &reqwest::Response) -> url::Url {
    let loc = r
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("{path}: no Location header"))
        .to_str()
        .unwrap();
    url::Url::parse(&format!("{base}{path}"))
        .unwrap()
        .join(loc)
        .unwrap()
}

/// Serves a Flux LoRA (kohya, rank 16, trained on TOK_DEVEN) on a loopback port; returns its URL.
async fn serve_lora() -> String {
    use common::safetensors::{kohya_flux, safetensors};
    let flux = safetensors(
        &kohya_flux(16),
        Some(json!({"ss_network_dim": "16", "ss_network_alpha": "16",
                    "ss_tag_frequency": "{\"10_TOK_DEVEN\": {\"TOK_DEVEN\": 12}}"})),
    );
    let app = axum::Router::new().route(
        "/deven.safetensors",
        axum::routing::get(move || async move { flux }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/deven.safetensors")
}

/// Every page a signed-in user can open, for the given ids.
fn pages(project: &str, scene: &str, identity: &str) -> Vec<String> {
    vec![
        "/".into(),
        "/projects".into(),
        format!("/projects/{project}"),
        format!("/projects/{project}/scenes/new"),
        "/scenes".into(),
        format!("/scenes/{scene}"),
        format!("/scenes/{scene}/edit"),
        "/identities".into(),
        "/identities/new".into(),
        format!("/identities/{identity}/edit"),
        "/assets".into(),
        "/assets?kind=headshot".into(),
        "/logs".into(),
        "/logs?step=IDENTITY_ANCHOR".into(),
        "/settings".into(),
        "/settings?check=1".into(),
    ]
}

/// Logs in through the form (double-submit token) and returns the session cookie `name=value`.
pub(crate) async fn form_login(http: &reqwest::Client, base: &str) -> String {
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let set = page.headers()["set-cookie"].to_str().unwrap().to_string();
    let token_cookie = set.split(';').next().unwrap().to_string();
    let token = token_cookie.split_once('=').unwrap().1.to_string();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{token}\"")),
        "the form carries the cookie's token"
    );
    // Without the matching cookie the form is refused.
    let refused = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("csrf", token.as_str()),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let ok = http
        .post(format!("{base}/login"))
        .header("cookie", &token_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("csrf", token.as_str()),
            ("password", PASSWORD),
            ("next", "projects"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(location(base, "/login", &ok).path(), "/projects");
    ok.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("devatar_session="))
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_sent_to_login_and_pages_load_nothing_from_other_hosts() {
    let server = start_server().await;
    let base = server.base.clone();
    let api = Api::new(&server).await;
    let http = no_redirects();

    let identity = api
        .post(
            "/api/identities",
            json!({"name": "tess", "displayName": "Tess Tester", "triggerWord": "TOK_TESS"}),
        )
        .await;
    let project = api
        .post(
            "/api/projects",
            json!({"name": "Pages", "aspectRatio": "1:1"}),
        )
        .await;
    let scene = api
        .post(
            "/api/scenes",
            json!({"projectId": project["id"], "name": "one", "dialogue": "Hello there."}),
        )
        .await;
    let (pid, sid, iid) = (
        project["id"].as_str().unwrap(),
        scene["id"].as_str().unwrap(),
        identity["id"].as_str().unwrap(),
    );

    // An unknown address gets the app's own page (not the browser's bare 404); under /api/ the JSON shape.
    let r = http
        .get(format!("{base}/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("id=\"error-message\"") && body.contains("no page at this address"),
        "{body}"
    );
    let r = http
        .get(format!("{base}/api/no-such-route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "not_found", "{v}");

    // Strangers: every page (and every form action) is a 303 to the login page; the API stays 401 JSON.
    let mut stranger_paths = pages(pid, sid, iid);
    stranger_paths.push("/logs/tail".into());
    for path in &stranger_paths {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "GET {path} as a stranger");
        assert_eq!(location(&base, path, &r).path(), "/login", "GET {path}");
    }
    for path in ["/projects", "/identities", "/logout", "/demo"] {
        let r = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("name", "x")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "POST {path} as a stranger");
        assert_eq!(location(&base, path, &r).path(), "/login");
    }
    let r = http
        .get(format!("{base}/api/projects"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = http
        .get(format!("{base}/projects/{pid}"))
        .send()
        .await
        .unwrap();
    let next = location(&base, "/", &r);
    assert_eq!(
        next.query(),
        Some(format!("next=projects%2F{pid}").as_str()),
        "the login page returns to the page asked for"
    );

    // Static files: compiled in, long-cached, typed; nothing else is served there.
    for (file, mime) in [
        ("htmx.min.js", "text/javascript"),
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let r = http
            .get(format!("{base}/assets/{file}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(mime)
        );
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    let r = http
        .get(format!("{base}/assets/..%2Fdevatar.db"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Signed in: every page renders, with relative URLs only and nothing from another host.
    let session = form_login(&http, &base).await;
    let mut checked = 0;
    for path in pages(pid, sid, iid)
        .iter()
        .map(String::as_str)
        .chain(["/login"])
    {
        let r = http
            .get(format!("{base}{path}"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let expected = if path == "/login" { 303 } else { 200 };
        assert_eq!(r.status(), expected, "GET {path}");
        if expected != 200 {
            continue;
        }
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        let html = r.text().await.unwrap();
        assert!(html.starts_with("<!doctype html>"), "{path}");
        for absolute in [
            "http://",
            "https://",
            "//cdn",
            "src=\"/",
            "href=\"/",
            "action=\"/",
        ] {
            assert!(
                !html.contains(absolute),
                "{path} contains {absolute:?}: pages use relative URLs only"
            );
        }
        // Every form control has a label (by `for`, or an aria-label).
        for id in html
            .split(" id=\"f-")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
        {
            assert!(
                html.contains(&format!("for=\"f-{id}\"")),
                "{path}: control f-{id} has no label"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, pages(pid, sid, iid).len());

    // A form without the CSRF token is refused and changes nothing.
    let r = http
        .post(format!("{base}/projects"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("name", "Forged"), ("aspectRatio", "16:9")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("did not come from this site")
    );
    let names: Vec<Value> = api
        .get("/api/projects")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("Pages")]);

    // The core forms work without JavaScript: plain POSTs answered with a 303 to the result.
    let page = http
        .get(format!("{base}/projects"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("forms carry the CSRF token")
        .to_string();
    let post = |path: String, pairs: Vec<(&'static str, String)>| {
        let http = http.clone();
        let (base, session, csrf) = (base.clone(), session.clone(), csrf.clone());
        async move {
            let mut pairs: Vec<(&str, &str)> =
                pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            pairs.push(("csrf", &csrf));
            http.post(format!("{base}{path}"))
                .header("cookie", &session)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(&pairs))
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(
        "/projects".into(),
        vec![
            ("name", "No Script".into()),
            ("aspectRatio", "9:16".into()),
            ("budgetUsd", "2.5".into()),
            ("identityGate", "warn".into()),
            ("identityRetries", "1".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let created = location(&base, "/projects", &r);
    let new_pid = created.path().trim_start_matches("/projects/").to_string();
    let p = api.get(&format!("/api/projects/{new_pid}")).await;
    assert_eq!(
        (
            p["name"].as_str(),
            p["aspectRatio"].as_str(),
            p["budgetUsd"].as_f64()
        ),
        (Some("No Script"), Some("9:16"), Some(2.5))
    );
    assert_eq!(
        (p["identityGate"].as_str(), p["identityRetries"].as_u64()),
        (Some("warn"), Some(1))
    );
    let project_page = http
        .get(format!("{base}/projects/{new_pid}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        project_page.contains("identity gate: warn"),
        "the page says the gate"
    );
    let r = post(
        "/projects".into(),
        vec![
            ("name", "No Script".into()),
            ("aspectRatio", "4:3".into()),
            ("budgetUsd", "lots".into()),
            ("identityRetries", "9".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 422, "bad fields come back on the form");
    let html = r.text().await.unwrap();
    assert!(html.contains("must be 16:9, 9:16 or 1:1") && html.contains("must be a number"));
    assert!(
        html.contains("must be between 0 and 5"),
        "identityRetries is checked"
    );
    let r = post(
        format!("/projects/{new_pid}/scenes"),
        vec![
            ("name", "hello".into()),
            ("dialogue", "Hi.".into()),
            ("generationMode", "auto".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let scenes = api.get(&format!("/api/scenes?project={new_pid}")).await;
    assert_eq!(scenes["items"][0]["dialogue"], "Hi.");
    let r = post(format!("/identities/{iid}/test"), vec![]).await;
    assert_eq!(r.status(), 303, "the Test button works as a plain form");
    assert_eq!(location(&base, "/identities", &r).path(), "/identities");
    assert_eq!(
        api.get(&format!("/api/identities/{iid}")).await["lastTest"]["ok"],
        true
    );

    // Generate and cancel as plain forms: a long scene is still rendering when Cancel is pressed.
    let long = "This sentence is here to make the speech long enough to cancel it. ".repeat(25);
    let r = post(
        format!("/projects/{new_pid}/scenes"),
        vec![
            ("name", "long".into()),
            ("dialogue", long),
            ("generationMode", "auto".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let long_id = api.get(&format!("/api/scenes?project={new_pid}")).await["items"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post(format!("/scenes/{long_id}/generate"), vec![]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&base, "/scenes/x/generate", &r).path(),
        format!("/scenes/{long_id}")
    );
    let page = http
        .get(format!("{base}/scenes/{long_id}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"cancel\""),
        "a running scene offers Cancel"
    );
    let r = post(format!("/scenes/{long_id}/cancel"), vec![]).await;
    assert_eq!(r.status(), 303);
    let status = api.get(&format!("/api/scenes/{long_id}/status")).await;
    assert_eq!(status["run"]["status"], "canceled");
    let r = post(format!("/scenes/{long_id}/cancel"), vec![]).await;
    assert_eq!(r.status(), 409, "nothing left to cancel");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("No generation is running for this scene")
    );

    // htmx requests get fragments: an error in words for the element that asked, and a stranger is sent to
    // the login page with HX-Redirect.
    let r = http
        .post(format!("{base}/identities/nope/test"))
        .header("cookie", &session)
        .header("hx-request", "true")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let fragment = r.text().await.unwrap();
    assert!(fragment.starts_with("<p class=\"error-box\""), "{fragment}");
    assert!(fragment.contains("Identity not found."), "{fragment}");
    let r = http
        .get(format!("{base}/identities"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["hx-redirect"], "./login");

    // "Render the demo" stores the bundled demo and starts rendering it (canceled here to save time).
    let r = post("/demo".into(), vec![]).await;
    assert_eq!(r.status(), 303);
    let demo_id = location(&base, "/demo", &r)
        .path()
        .trim_start_matches("/projects/")
        .to_string();
    let demo = api.get(&format!("/api/projects/{demo_id}")).await;
    assert_eq!(demo["name"], "Devatar Demo");
    let demo_scenes = api.get(&format!("/api/scenes?project={demo_id}")).await;
    assert_eq!(demo_scenes["items"].as_array().unwrap().len(), 3);
    let first = demo_scenes["items"][0]["id"].as_str().unwrap().to_string();
    let r = post(format!("/scenes/{first}/cancel"), vec![]).await;
    assert_eq!(r.status(), 303, "the demo's project run is canceled");

    // Delete an identity with a plain form.
    let r = post(format!("/identities/{iid}/delete"), vec![]).await;
    assert_eq!(r.status(), 303);
    let r = http
        .get(format!("{base}/api/identities/{iid}"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A missing thing is a 404 page in words.
    let r = http
        .get(format!("{base}/projects/nope"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("That project does not exist")
    );
}

/// Debian's chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Self {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run `bash scripts/install-deps.sh --test` (installs chromium chromium-driver)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = devatar::net::client_builder().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url }
    }
}

/// Issue 17 item 13: the upload form put the session's CSRF token in the URL (`assets?csrf=…`), where proxies
/// log it. It travels as the form's first field now; a token in the URL alone is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_form_sends_its_csrf_token_in_the_body() {
    use reqwest::multipart::{Form, Part};
    let server = start_server().await;
    let base = server.base.clone();
    let http = no_redirects();
    let session = form_login(&http, &base).await;
    let page = http
        .get(format!("{base}/assets"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = page
        .split("id=\"upload-form\"")
        .next()
        .and_then(|s| s.rsplit("<form").next())
        .unwrap()
        .to_string();
    assert!(!form.contains("csrf="), "no token in the action: {form}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let wav = |csrf: Option<&str>| {
        let mut form = Form::new();
        if let Some(c) = csrf {
            form = form.text("csrf", c.to_string());
        }
        form.text("kind", "audio").part(
            "file",
            Part::bytes(b"not audio".to_vec()).file_name("x.wav"),
        )
    };
    let in_url = http
        .post(format!("{base}/assets?csrf={csrf}"))
        .header("cookie", &session)
        .multipart(wav(None))
        .send()
        .await
        .unwrap();
    assert_eq!(in_url.status(), 403);
    let in_body = http
        .post(format!("{base}/assets"))
        .header("cookie", &session)
        .multipart(wav(Some(&csrf)))
        .send()
        .await
        .unwrap();
    // Past the CSRF check: the intake itself refuses the content.
    assert_eq!(in_body.status(), 415);
}

fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the current page as `target/ui-screenshots/<name>.png`.
async fn shot(driver: &WebDriver, name: &str) {
    let path = shots().join(format!("{name}.png"));
    driver.screenshot(&path).await.unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 1000, "{name}.png");
}

/// Waits for an element (up to `secs`).
async fn wait_for(driver: &WebDriver, css: &str, secs: u64) -> WebElement {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(e) = driver.find(By::Css(css)).await {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "{css} did not appear on {}",
            driver.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a JavaScript expression is true (up to `secs`).
async fn wait_js(driver: &WebDriver, expr: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = driver
            .execute(format!("return !!({expr});"), vec![])
            .await
            .map(|r| r.json().clone())
            .unwrap_or(Value::Bool(false));
        if v == Value::Bool(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {expr} on {}",
            driver.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Every visible form control has a label (a `<label>`, or `aria-label`), and the first Tab reaches the
/// skip link.
async fn assert_labelled(driver: &WebDriver) {
    let unlabelled = js(
        driver,
        "return Array.from(document.querySelectorAll('input, select, textarea')) \
           .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label')) \
           .map(e => e.outerHTML)",
    )
    .await;
    assert_eq!(unlabelled, json!([]), "unlabelled controls");
    driver.refresh().await.unwrap();
    wait_js(driver, "document.readyState === 'complete'", 10).await;
    driver
        .action_chain()
        .send_keys(Key::Tab)
        .perform()
        .await
        .unwrap();
    assert_eq!(
        js(driver, "return document.activeElement.className").await,
        "skip",
        "keyboard users reach the skip link first"
    );
}

/// A headless Chromium session on `chromedriver`, 1400 px wide.
async fn browser(chromedriver: &Driver, profile: &std::path::Path) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary("/usr/bin/chromium").unwrap();
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
    ] {
        caps.add_arg(arg).unwrap();
    }
    caps.add_arg(&format!("--user-data-dir={}", profile.display()))
        .unwrap();
    devatar::net::install_tls_provider();
    WebDriver::new(&chromedriver.url, caps).await.unwrap()
}

async fn js(driver: &WebDriver, script: &str) -> Value {
    driver.execute(script, vec![]).await.unwrap().json().clone()
}

/// Replaces a form control's text.
async fn fill(driver: &WebDriver, id: &str, text: &str) {
    let e = driver.find(By::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    if !text.is_empty() {
        e.send_keys(text).await.unwrap();
    }
}

async fn choose(driver: &WebDriver, id: &str, value: &str) {
    let e = driver.find(By::Id(id)).await.unwrap();
    SelectElement::new(&e)
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

async fn click(driver: &WebDriver, css: &str) {
    let e = wait_for(driver, css, 10).await;
    e.scroll_into_view().await.unwrap();
    e.click().await.unwrap();
}

async fn text(driver: &WebDriver, css: &str) -> String {
    wait_for(driver, css, 10).await.text().await.unwrap()
}

/// Clicks a sidebar entry and waits for its page.
async fn nav(driver: &WebDriver, label: &str, path: &str) {
    driver
        .find(By::XPath(format!(
            "//nav[@aria-label='Main']//a[normalize-space()='{label}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(driver, &format!("location.pathname === '{path}'"), 10).await;
}

/// Waits until the page at `path` has loaded (after a form post and its redirect).
async fn wait_path(driver: &WebDriver, path: &str) {
    wait_js(
        driver,
        &format!("location.pathname === '{path}' && document.readyState === 'complete'"),
        30,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_in_a_real_browser() {
    let started = Instant::now();
    let server = start_server().await;
    let base = server.base.clone();
    let api = Api::new(&server).await;
    let lora_url = serve_lora().await;
    let chromedriver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let driver = browser(&chromedriver, profile.path()).await;
    // Quit the browser whatever happens (a panic must not leave the session to a blocking Drop).
    let result = std::panic::AssertUnwindSafe(tokio::time::timeout(
        Duration::from_secs(150),
        walkthrough(&driver, &base, &api, &lora_url),
    ))
    .catch_unwind()
    .await;
    let _ = driver.quit().await;
    match result {
        Ok(done) => done.expect("the walkthrough took longer than 150 s"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    eprintln!("browser walkthrough took {:?}", started.elapsed());
}

async fn walkthrough(driver: &WebDriver, base: &str, api: &Api, lora_url: &str) {
    // Log in: a stranger lands on the login page; a wrong password is refused in words.
    driver.goto(format!("{base}/projects")).await.unwrap();
    wait_path(driver, "/login").await;
    shot(driver, "login").await;
    fill(driver, "password", "not-the-password").await;
    click(driver, "form button[type=submit]").await;
    let refused = text(driver, "#login-error").await;
    assert!(
        refused.contains("Wrong password"),
        "wrong password is explained: {refused}"
    );
    assert!(
        !refused.contains("admin password is set"),
        "a set password is not called unset: {refused}"
    );
    fill(driver, "password", PASSWORD).await;
    click(driver, "form button[type=submit]").await;
    wait_path(driver, "/projects").await;
    assert_eq!(
        text(driver, "h1").await,
        "Projects",
        "back to the page asked for"
    );

    // Dashboard of an empty install offers the demo.
    nav(driver, "Dashboard", "/").await;
    assert_eq!(text(driver, "#count-projects").await, "0");
    assert!(driver.find(By::Id("render-demo")).await.is_ok());
    shot(driver, "dashboard-empty").await;

    // Identities: New Identity with bad values shows each error next to its field, stores nothing.
    nav(driver, "Identities", "/identities").await;
    click(driver, "#new-identity").await;
    wait_path(driver, "/identities/new").await;
    shot(driver, "identity-new").await;
    assert_labelled(driver).await;
    fill(driver, "f-name", "Deven Primary").await;
    fill(driver, "f-displayName", "").await;
    fill(driver, "f-triggerWord", "TOK DEVEN").await;
    fill(driver, "f-loraScale", "1.5").await;
    click(driver, "#identity-form button[type=submit]").await;
    wait_for(driver, "#form-error", 10).await;
    assert!(text(driver, "#err-name").await.contains("lowercase"));
    assert!(text(driver, "#err-displayName").await.contains("required"));
    assert!(text(driver, "#err-triggerWord").await.contains("TOK_DEVEN"));
    assert!(
        text(driver, "#err-loraScale")
            .await
            .contains("between 0 and 1")
    );
    assert_eq!(
        js(driver, "return document.getElementById('f-name').value").await,
        "Deven Primary",
        "the values typed are kept"
    );
    shot(driver, "identity-errors").await;
    assert_eq!(api.get("/api/identities").await, json!([]));
    // Live validation: fixing a field clears its error without submitting.
    fill(driver, "f-name", "deven-primary").await;
    driver
        .find(By::Id("f-displayName"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        driver,
        "document.getElementById('err-name').textContent.trim() === ''",
        10,
    )
    .await;
    assert!(text(driver, "#err-triggerWord").await.contains("TOK_DEVEN"));
    // The guide's example identity.
    fill(driver, "f-displayName", "Deven Spear").await;
    fill(driver, "f-triggerWord", "TOK_DEVEN").await;
    fill(driver, "f-description", "Primary digital twin").await;
    fill(driver, "f-loraUrl", lora_url).await;
    fill(driver, "f-loraScale", "0.95").await;
    choose(driver, "f-baseModel", "flux-dev").await;
    click(driver, "#identity-form button[type=submit]").await;
    wait_path(driver, "/identities").await;
    let card = "[data-identity='deven-primary']";
    wait_for(driver, card, 10).await;
    let identities = api.get("/api/identities").await;
    let deven = &identities[0];
    assert_eq!(identities.as_array().unwrap().len(), 1);
    assert_eq!(deven["name"], "deven-primary");
    assert_eq!(deven["displayName"], "Deven Spear");
    assert_eq!(deven["triggerWord"], "TOK_DEVEN");
    assert_eq!(deven["loraScale"], 0.95);
    assert_eq!(deven["baseModel"], "flux-dev");
    assert_eq!(deven["loraUrl"], lora_url);
    let deven_id = deven["id"].as_str().unwrap().to_string();

    // Test (the flask): every check and the LoRA report appear in place, with the green check.
    assert!(
        text(driver, &format!("#test-{deven_id}"))
            .await
            .contains("Not tested yet")
    );
    click(driver, &format!("{card} .test-button")).await;
    let result = format!("#test-{deven_id} .test-result");
    wait_for(driver, &result, 20).await;
    assert!(text(driver, &result).await.contains("Ready to use"));
    assert_eq!(
        wait_for(driver, &result, 1)
            .await
            .attr("data-ok")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    for check in [
        "triggerWord",
        "baseModel",
        "voiceId",
        "loraReachable",
        "loraFile",
    ] {
        let li = wait_for(driver, &format!("{result} [data-check='{check}']"), 5).await;
        assert_eq!(
            li.attr("data-ok").await.unwrap().as_deref(),
            Some("true"),
            "{check}"
        );
    }
    assert!(
        text(driver, &format!("{result} .lora-family"))
            .await
            .starts_with("flux")
    );
    assert_eq!(text(driver, &format!("{result} .lora-rank")).await, "16");
    assert_eq!(
        text(driver, &format!("{result} .lora-trigger")).await,
        "yes"
    );
    let tested = api.get(&format!("/api/identities/{deven_id}")).await;
    assert_eq!(tested["lastTest"]["ok"], true);
    assert_eq!(tested["lastTest"]["result"]["lora"]["rank"], 16);
    // Set default.
    click(driver, &format!("{card} button[aria-label^='Make']")).await;
    wait_js(driver, "location.search.includes('ok=default-set')", 10).await;
    assert!(driver.find(By::Css(format!("{card} .star"))).await.is_ok());
    assert_eq!(
        api.get(&format!("/api/identities/{deven_id}")).await["isDefault"],
        true
    );
    shot(driver, "identities").await;
    // Edit: the voice settings.
    click(
        driver,
        &format!("{card} a[aria-label='Edit deven-primary']"),
    )
    .await;
    wait_path(driver, &format!("/identities/{deven_id}/edit")).await;
    fill(driver, "f-voiceId", "abcdefghij1234567890").await;
    choose(driver, "f-voiceModel", "eleven_turbo_v2_5").await;
    fill(driver, "f-voiceStability", "0.6").await;
    click(driver, "#identity-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=identity-saved')", 10).await;
    let edited = api.get(&format!("/api/identities/{deven_id}")).await;
    assert_eq!(edited["voiceId"], "abcdefghij1234567890");
    assert_eq!(edited["voiceModel"], "eleven_turbo_v2_5");
    assert_eq!(edited["voiceStability"], 0.6);
    assert_eq!(edited["loraUrl"], lora_url, "other fields are kept");
    assert_eq!(edited["isActive"], true);

    // Reference photos: several files dropped at once fill the photo form; an upload shows each photo's verdict
    // and the set's vetting (one photo: training may not go ahead yet).
    driver
        .goto(format!("{base}/identities/{deven_id}/edit"))
        .await
        .unwrap();
    wait_for(driver, "#photo-upload-form", 10).await;
    js(
        driver,
        "const dt = new DataTransfer(); \
         ['a.png', 'b.jpg'].forEach(n => dt.items.add(new File(['x'], n, {type: 'image/png'}))); \
         const zone = document.querySelector('[data-dropzone=\"photo-files\"]'); \
         zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); return null;",
    )
    .await;
    assert_eq!(
        js(
            driver,
            "return document.getElementById('photo-files').files.length"
        )
        .await,
        2
    );
    assert!(
        text(driver, "[data-dropzone='photo-files'] .drop-name")
            .await
            .contains("a.png and 1 more")
    );
    js(
        driver,
        "document.getElementById('photo-files').value = ''; return null;",
    )
    .await;
    driver
        .find(By::Id("photo-files"))
        .await
        .unwrap()
        .send_keys(crate::face::astronaut().display().to_string())
        .await
        .unwrap();
    click(driver, "#photo-upload-submit").await;
    wait_js(driver, "location.search.includes('ok=photos-added')", 20).await;
    assert!(
        text(driver, "#photo-vet[data-verdict='blocked']")
            .await
            .contains("1 of 1 photos usable for training: training may not go ahead")
    );
    assert!(
        text(driver, "#photo-list [data-verdict='warn'] .reasons")
            .await
            .contains("1024×1024 or more is recommended")
    );

    // Assets: a file that is not an image is refused in words; a real headshot uploads into a folder.
    let files = tempfile::tempdir().unwrap();
    let png = files.path().join("deven-headshot.png");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=0x3366cc:s=256x256",
            "-frames:v",
            "1",
            "-y",
        ])
        .arg(&png)
        .status()
        .unwrap();
    assert!(made.success());
    let fake = files.path().join("notes.png");
    std::fs::write(&fake, "just text, not a picture").unwrap();
    nav(driver, "Assets", "/assets").await;
    // Drag and drop puts the dropped file into the form.
    js(
        driver,
        "const dt = new DataTransfer(); dt.items.add(new File(['x'], 'dropped.png', {type: 'image/png'})); \
         const zone = document.querySelector('[data-dropzone]'); \
         zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true})); \
         zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); return null;",
    )
    .await;
    assert_eq!(
        js(
            driver,
            "return document.getElementById('upload-file').files[0].name"
        )
        .await,
        "dropped.png"
    );
    assert!(text(driver, ".drop-name").await.contains("dropped.png"));
    driver
        .find(By::Id("upload-file"))
        .await
        .unwrap()
        .send_keys(fake.display().to_string())
        .await
        .unwrap();
    click(driver, "#upload-submit").await;
    assert!(
        text(driver, "#upload-error")
            .await
            .contains("not a supported headshot format")
    );
    choose(driver, "upload-kind", "headshot").await;
    fill(driver, "upload-folder", "team").await;
    driver
        .find(By::Id("upload-file"))
        .await
        .unwrap()
        .send_keys(png.display().to_string())
        .await
        .unwrap();
    click(driver, "#upload-submit").await;
    wait_js(driver, "location.search.includes('ok=uploaded')", 20).await;
    let tile = "#asset-list [data-kind='headshot']";
    wait_for(driver, tile, 10).await;
    wait_js(
        driver,
        &format!("document.querySelector(\"{tile} img\").naturalWidth === 256"),
        10,
    )
    .await;
    assert!(
        driver
            .find(By::XPath(
                "//nav[@aria-label='Folders']//a[normalize-space()='team']"
            ))
            .await
            .is_ok(),
        "the folder is listed"
    );
    let assets = api.get("/api/assets?kind=headshot").await;
    let asset = &assets["items"][0];
    assert_eq!(assets["items"].as_array().unwrap().len(), 1);
    assert_eq!(asset["folder"], "team");
    assert_eq!(asset["width"], 256);
    assert_eq!(asset["originalName"], "deven-headshot.png");
    let asset_id = asset["id"].as_str().unwrap().to_string();
    shot(driver, "assets").await;

    // Projects: create, rename; a scratch project is deleted from the list.
    nav(driver, "Projects", "/projects").await;
    fill(driver, "f-name", "Scratch").await;
    click(driver, "#project-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=project-created')", 10).await;
    nav(driver, "Projects", "/projects").await;
    fill(driver, "f-name", "UI Walk").await;
    choose(driver, "f-aspectRatio", "1:1").await;
    click(driver, "#project-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=project-created')", 10).await;
    let project_path = js(driver, "return location.pathname").await;
    let project_id = project_path
        .as_str()
        .unwrap()
        .trim_start_matches("/projects/")
        .to_string();
    click(driver, "#settings-h").await;
    fill(driver, "f-name", "UI Walkthrough").await;
    click(driver, "#project-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=project-saved')", 10).await;
    assert_eq!(text(driver, "#project-name").await, "UI Walkthrough");
    let project = api.get(&format!("/api/projects/{project_id}")).await;
    assert_eq!(project["name"], "UI Walkthrough");
    assert_eq!(project["aspectRatio"], "1:1");
    nav(driver, "Projects", "/projects").await;
    let scratch = api
        .get("/api/projects")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Scratch")
        .expect("scratch project")["id"]
        .as_str()
        .unwrap()
        .to_string();
    click(driver, &format!("[data-project='{scratch}'] summary")).await;
    click(driver, &format!("[data-project='{scratch}'] button.danger")).await;
    wait_js(driver, "location.search.includes('ok=project-deleted')", 10).await;
    let names: Vec<Value> = api
        .get("/api/projects")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("UI Walkthrough")]);
    shot(driver, "projects").await;

    // Scenes: the first with every field, the second with the defaults.
    driver
        .goto(format!("{base}/projects/{project_id}"))
        .await
        .unwrap();
    click(driver, "#add-scene").await;
    wait_path(driver, &format!("/projects/{project_id}/scenes/new")).await;
    assert_labelled(driver).await;
    fill(driver, "f-name", "one").await;
    fill(driver, "f-dialogue", "Hello there.").await;
    fill(driver, "f-environment", "modern office").await;
    fill(driver, "f-wardrobe", "navy blazer").await;
    fill(driver, "f-moodLighting", "warm golden hour").await;
    fill(driver, "f-camera", "close-up").await;
    fill(driver, "f-movement", "subtle head movements").await;
    fill(driver, "f-targetDuration", "3").await;
    choose(driver, "f-identityId", &deven_id).await;
    choose(driver, "f-headshotAssetId", &asset_id).await;
    choose(driver, "f-generationMode", "standard").await;
    shot(driver, "scene-form").await;
    click(driver, "#scene-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=scene-created')", 10).await;
    click(driver, "#add-scene").await;
    wait_path(driver, &format!("/projects/{project_id}/scenes/new")).await;
    fill(driver, "f-name", "two").await;
    fill(driver, "f-dialogue", "Goodbye now.").await;
    fill(driver, "f-camera", "wide shot").await;
    click(driver, "#scene-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=scene-created')", 10).await;
    let scenes = api.get(&format!("/api/scenes?project={project_id}")).await;
    let one = &scenes["items"][0];
    assert_eq!(one["name"], "one");
    assert_eq!(one["dialogue"], "Hello there.");
    assert_eq!(one["environment"], "modern office");
    assert_eq!(one["wardrobe"], "navy blazer");
    assert_eq!(one["moodLighting"], "warm golden hour");
    assert_eq!(one["camera"], "close-up");
    assert_eq!(one["movement"], "subtle head movements");
    assert_eq!(one["targetDuration"], 3.0);
    assert_eq!(one["identityId"], deven_id.as_str());
    assert_eq!(one["headshotAssetId"], asset_id.as_str());
    assert_eq!(one["generationMode"], "standard");
    assert_eq!(scenes["items"][1]["name"], "two");
    assert_eq!(scenes["items"][1]["generationMode"], "auto");
    let one_id = one["id"].as_str().unwrap().to_string();

    // Edit a scene from its card.
    click(driver, "a[aria-label='Edit scene two']").await;
    wait_path(
        driver,
        &format!(
            "/scenes/{}/edit",
            scenes["items"][1]["id"].as_str().unwrap()
        ),
    )
    .await;
    fill(driver, "f-movement", "slow zoom out").await;
    click(driver, "#scene-form button[type=submit]").await;
    wait_js(driver, "location.search.includes('ok=scene-saved')", 10).await;
    let two = api
        .get(&format!(
            "/api/scenes/{}",
            scenes["items"][1]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(two["movement"], "slow zoom out");
    assert_eq!(two["dialogue"], "Goodbye now.", "other fields are kept");

    // Reorder: move "one" down.
    click(driver, "button[aria-label='Move scene one down']").await;
    wait_js(driver, "location.search.includes('ok=reordered')", 10).await;
    let order: Vec<Value> = api.get(&format!("/api/scenes?project={project_id}")).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(order, vec![json!("two"), json!("one")]);

    // The estimate shown before generating is the API's.
    let estimate = api
        .post("/api/estimate", json!({"projectId": project_id}))
        .await;
    assert_eq!(
        text(driver, "#estimate-total").await,
        format!("${:.2}", estimate["totalUsd"].as_f64().unwrap())
    );

    // Generate all and watch the statuses change live (no reload) to completed.
    click(driver, "#generate-all").await;
    wait_js(driver, "location.search.includes('ok=generating')", 10).await;
    let first: Value = js(
        driver,
        "return Array.from(document.querySelectorAll('.scene-status')).map(e => e.textContent.trim())",
    )
    .await;
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s == "queued" || s == "generating"),
        "right after Generate all the scenes are in progress: {first}"
    );
    assert_ne!(
        text(driver, "#live").await.len(),
        0,
        "the live region is on the page"
    );
    assert!(
        !js(
            driver,
            "return document.getElementById('live').dataset.runs"
        )
        .await
        .as_str()
        .unwrap()
        .is_empty(),
        "the page listens to the running run"
    );
    js(driver, "window.__stillTheSamePage = 42; return null").await;
    wait_js(
        driver,
        "Array.from(document.querySelectorAll('.chip')).some(c => c.dataset.state === 'succeeded')",
        60,
    )
    .await;
    shot(driver, "project-generating").await;
    wait_js(
        driver,
        "document.querySelectorAll('.scene-status').length === 2 && Array.from(document.querySelectorAll('.scene-status')).every(e => e.textContent.trim() === 'completed') && document.getElementById('project-video')",
        120,
    )
    .await;
    assert_eq!(
        js(driver, "return window.__stillTheSamePage").await,
        42,
        "progress arrived live, without reloading the page"
    );
    wait_js(
        driver,
        "document.getElementById('project-video').readyState >= 2",
        20,
    )
    .await;
    assert!(
        driver
            .find(By::Css("#project-video track[kind='captions']"))
            .await
            .is_ok()
    );
    let project = api.get(&format!("/api/projects/{project_id}")).await;
    assert_eq!(project["status"], "completed");
    assert!(project["finalObject"].is_string());
    for s in api.get(&format!("/api/scenes?project={project_id}")).await["items"]
        .as_array()
        .unwrap()
    {
        assert_eq!(s["status"], "completed", "{}", s["name"]);
    }
    shot(driver, "project").await;
    assert_labelled(driver).await;
    driver.set_window_rect(0, 0, 390, 844).await.unwrap();
    wait_js(driver, "window.innerWidth <= 400", 5).await;
    let wide = js(
        driver,
        "return Array.from(document.querySelectorAll('body *')) \
           .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap')) \
           .map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 8)",
    )
    .await;
    assert_eq!(wide, json!([]), "nothing overflows a phone-width screen");
    shot(driver, "project-phone").await;
    driver.set_window_rect(0, 0, 1280, 1000).await.unwrap();

    // Scene page: the video plays (HTTP Range), captions, the step timeline and its logs.
    click(driver, &format!("[data-scene='{one_id}'] h3 a")).await;
    wait_path(driver, &format!("/scenes/{one_id}")).await;
    wait_js(
        driver,
        "document.getElementById('scene-video').readyState >= 2",
        20,
    )
    .await;
    assert!(
        driver
            .find(By::Css("#scene-video track[kind='captions']"))
            .await
            .is_ok()
    );
    let rows = driver
        .find_all(By::Css("#timeline tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    for row in rows {
        assert_eq!(
            row.attr("data-state").await.unwrap().as_deref(),
            Some("succeeded")
        );
    }
    assert!(
        text(driver, "#timeline").await.contains("local"),
        "the provider of each step is shown"
    );
    assert!(
        !driver
            .find_all(By::Css("table.logs tbody tr"))
            .await
            .unwrap()
            .is_empty()
    );
    let download = wait_for(driver, "#download", 5)
        .await
        .prop("href")
        .await
        .unwrap()
        .unwrap();
    let ranged = api
        .http
        .get(&download)
        .bearer_auth(&api.token)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206, "the video is served with HTTP Range");
    assert_eq!(ranged.bytes().await.unwrap().len(), 100);
    shot(driver, "scene").await;
    // Regenerate (everything is cached, so it finishes at once) and the API shows the scene's own run.
    click(driver, "#regenerate").await;
    wait_js(driver, "location.search.includes('ok=generating')", 10).await;
    wait_js(
        driver,
        "document.getElementById('scene-status').textContent.trim() === 'completed' && !!document.getElementById('regenerate')",
        30,
    )
    .await;
    let status = api.get(&format!("/api/scenes/{one_id}/status")).await;
    assert_eq!(status["run"]["sceneId"], one_id.as_str());
    assert_eq!(status["run"]["status"], "succeeded");

    // Logs: filter by IDENTITY_ANCHOR; the rows are the API's.
    nav(driver, "Logs", "/logs").await;
    choose(driver, "filter-step", "IDENTITY_ANCHOR").await;
    click(driver, "#apply-filters").await;
    wait_js(
        driver,
        "location.search.includes('step=IDENTITY_ANCHOR')",
        10,
    )
    .await;
    let shown = driver.find_all(By::Css("#log-rows tr")).await.unwrap();
    let from_api = api.get("/api/logs?step=IDENTITY_ANCHOR&limit=50").await;
    assert!(!shown.is_empty(), "IDENTITY_ANCHOR rows are shown");
    assert_eq!(shown.len(), from_api["items"].as_array().unwrap().len());
    for row in &shown {
        assert_eq!(
            row.attr("data-step").await.unwrap().as_deref(),
            Some("IDENTITY_ANCHOR")
        );
    }
    assert_eq!(
        shown[0].attr("data-log").await.unwrap().as_deref(),
        from_api["items"][0]["id"].as_str()
    );
    shot(driver, "logs").await;
    // Live tail: a new run's rows appear at the top without reloading.
    js(driver, "window.__stillTheSamePage = 7; return null").await;
    let before = shown.len();
    api.post(&format!("/api/scenes/{one_id}/generate"), json!({}))
        .await;
    wait_js(
        driver,
        &format!("document.querySelectorAll('#log-rows tr').length > {before}"),
        30,
    )
    .await;
    assert_eq!(js(driver, "return window.__stillTheSamePage").await, 7);
    assert_eq!(
        js(
            driver,
            "return document.querySelector('#log-rows tr').dataset.step"
        )
        .await,
        "IDENTITY_ANCHOR",
        "the tail keeps the filter"
    );

    // Scenes and settings pages.
    nav(driver, "Scenes", "/scenes").await;
    assert_eq!(
        driver
            .find_all(By::Css("#scene-list tbody tr"))
            .await
            .unwrap()
            .len(),
        2
    );
    shot(driver, "scenes").await;
    nav(driver, "Settings", "/settings").await;
    click(driver, "#health-check").await;
    wait_for(driver, "#health-results", 10).await;
    assert!(
        text(driver, "#health-results")
            .await
            .contains("Database: reachable")
    );
    let settings = api.get("/api/settings/status").await;
    for (name, p) in settings["providers"].as_object().unwrap() {
        let li = wait_for(driver, &format!("[data-provider='{name}']"), 5).await;
        assert_eq!(
            li.attr("data-configured").await.unwrap(),
            Some(p["configured"].to_string()),
            "{name}"
        );
    }
    shot(driver, "settings").await;
    nav(driver, "Dashboard", "/").await;
    assert_eq!(text(driver, "#count-projects").await, "1");
    // One of a thing is singular ("1 projects" before).
    let words = |t: String| t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(text(driver, "#counter-projects").await), "1 project");
    assert_eq!(
        words(text(driver, "#counter-identities").await),
        "1 identity"
    );
    shot(driver, "dashboard").await;

    // Delete the headshot.
    nav(driver, "Assets", "/assets").await;
    click(driver, &format!("[data-asset='{asset_id}'] summary")).await;
    click(driver, &format!("[data-asset='{asset_id}'] button.danger")).await;
    wait_js(driver, "location.search.includes('ok=asset-deleted')", 10).await;
    assert_eq!(api.get("/api/assets").await["items"], json!([]));

    // Log out: the old session is refused by pages and the API alike.
    let session = driver
        .get_named_cookie("devatar_session")
        .await
        .unwrap()
        .value;
    driver
        .find(By::XPath("//button[normalize-space()='Log out']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_path(driver, "/login").await;
    assert_eq!(
        text(driver, "#login-notice").await,
        "You are logged out.",
        "logging out says so"
    );
    driver.goto(format!("{base}/identities")).await.unwrap();
    wait_path(driver, "/login").await;
    let http = no_redirects();
    let r = http
        .get(format!("{base}/projects"))
        .header("cookie", format!("devatar_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(format!("{base}/api/projects"))
        .header("cookie", format!("devatar_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Issue 17 item 1: the identity form offers the uploaded LoRAs next to the LoRA URL; one or the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_form_offers_uploaded_loras_next_to_the_url() {
    use reqwest::multipart::{Form, Part};
    let server = start_server().await;
    let base = server.base.clone();
    let api = Api::new(&server).await;
    let http = no_redirects();
    let session = form_login(&http, &base).await;
    let lora_bytes = crate::common::cloud::flux_lora("TOK_LENA", 8);
    let upload = Form::new().text("kind", "lora").part(
        "file",
        Part::bytes(lora_bytes).file_name("lena.safetensors"),
    );
    let lora: Value = http
        .post(format!("{base}/api/assets"))
        .bearer_auth(&api.token)
        .multipart(upload)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lora_id = lora["id"].as_str().unwrap().to_string();
    let page = http
        .get(format!("{base}/identities/new"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"loraAssetId\""), "the select is there");
    assert!(
        page.contains(&format!("value=\"{lora_id}\"")),
        "the upload is a choice"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let post = |url: &'static str| {
        let fields = [
            ("csrf", csrf.as_str()),
            ("name", "lena"),
            ("displayName", "Lena"),
            ("triggerWord", "TOK_LENA"),
            ("loraUrl", url),
            ("loraAssetId", lora_id.as_str()),
            ("loraScale", "0.95"),
            ("baseModel", "flux-dev"),
            ("voiceModel", "eleven_multilingual_v2"),
            ("voiceStability", "0.5"),
            ("voiceSimilarity", "0.8"),
            ("voiceStyle", "0.2"),
        ];
        http.post(format!("{base}/identities"))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&fields))
            .send()
    };
    let both = post("https://example.com/lena.safetensors").await.unwrap();
    assert_eq!(both.status(), 422);
    assert!(both.text().await.unwrap().contains("not both"));
    let created = post("").await.unwrap();
    assert_eq!(created.status(), 303);
    let identities = api.get("/api/identities").await;
    assert_eq!(
        identities[0]["loraAssetId"],
        lora_id.as_str(),
        "{identities}"
    );
}

mod stale;
mod twin;
