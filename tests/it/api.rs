//! The JSON API, served in-process by [`TestApp`] (the real router with an injected configuration): auth on
//! every documented route, identities, sessions, runs through the worker, events, uploads, webhooks. One test
//! starts the real `devatar serve` process so the binary's wiring (listening line, CLI tokens) stays covered.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::app::{PASSWORD, TestApp, wait_until};
use common::*;
use serde_json::{Value, json};

/// Serves `/deven.safetensors` (a kohya Flux LoRA, rank 16, trained on TOK_DEVEN) and
/// `/sdxl.safetensors` on a random loopback port; returns its base URL.
async fn serve_lora() -> String {
    use common::safetensors::safetensors;
    let sdxl = safetensors(
        &[
            (
                "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k.lora_down.weight",
                "F16",
                vec![8, 640],
            ),
            (
                "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k.lora_up.weight",
                "F16",
                vec![640, 8],
            ),
            (
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                "F16",
                vec![8, 1280],
            ),
            (
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
                "F16",
                vec![5120, 8],
            ),
        ],
        None,
    );
    common::cloud::serve_files(vec![
        (
            "/deven.safetensors",
            common::cloud::flux_lora("TOK_DEVEN", 16),
        ),
        ("/sdxl.safetensors", sdxl),
    ])
    .await
}

fn client() -> reqwest::Client {
    devatar::net::client_builder().build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_needs_credentials_and_accepts_a_token() {
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let doc: Value = http
        .get(format!("{}/api/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "{paths:?}");
    let public = ["/healthz", "/api/login"];
    let mut checked = 0;
    for (path, ops) in paths {
        let url = format!(
            "{}{}",
            server.base,
            path.replace("{id}", "00000000-0000-0000-0000-000000000000")
        );
        for method in ops.as_object().unwrap().keys() {
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            let anonymous = http
                .request(m.clone(), &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status();
            let with_token = http
                .request(m, &url)
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status();
            if public.contains(&path.as_str()) {
                assert_ne!(anonymous, 401, "{method} {path} is public");
            } else {
                assert_eq!(anonymous, 401, "{method} {path} without credentials");
                assert_ne!(with_token, 401, "{method} {path} with a token");
                assert_ne!(
                    with_token, 500,
                    "{method} {path} with an empty body must not be a 500"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10);
    // A wrong or revoked token is refused.
    let status = http
        .get(format!("{}/api/identities", server.base))
        .bearer_auth("dvt_nope")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    assert!(server.revoke("tests").await);
    let status = http
        .get(format!("{}/api/identities", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "revoked tokens stop working at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guide_identity_is_created_and_bad_ones_name_the_field() {
    // The identity test fetches the LoRA header from a server on this machine.
    let server = TestApp::builder()
        .env("DEVATAR_ALLOW_PRIVATE_URLS", "1")
        .start()
        .await;
    let lora_host = serve_lora().await;
    let token = server.token().await;
    let http = client();
    let post = |body: Value| {
        let req = http
            .post(format!("{}/api/identities", server.base))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let guide = json!({"name": "deven-primary", "displayName": "Deven Spear", "triggerWord": "TOK_DEVEN",
                       "loraScale": 0.95, "baseModel": "flux-dev", "description": "Primary digital twin",
                       "localVoice": "en_US-joe-medium"});
    let (status, created) = post(guide.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["triggerWord"], "TOK_DEVEN");
    assert_eq!(created["loraScale"], 0.95);
    assert_eq!(created["localVoice"], "en_US-joe-medium");

    let cases = [
        (
            json!({"name": "deven-primary", "displayName": "D", "triggerWord": "TOK_OTHER"}),
            409,
            "name",
        ),
        (
            json!({"name": "other", "displayName": "D", "triggerWord": "TOK_DEVEN"}),
            409,
            "triggerWord",
        ),
        (
            json!({"name": "other", "displayName": "D", "triggerWord": "TOK_O", "loraScale": 1.5}),
            422,
            "loraScale",
        ),
        (
            json!({"name": "other", "displayName": "D", "triggerWord": "TOK_O", "baseModel": "sdxl"}),
            422,
            "baseModel",
        ),
        (
            json!({"name": "Bad Name", "displayName": "D", "triggerWord": "TOK_O"}),
            422,
            "name",
        ),
        (
            json!({"displayName": "D", "triggerWord": "TOK_O"}),
            422,
            "name",
        ),
        (
            json!({"name": "other", "displayName": "D", "triggerWord": "TOK_O", "localVoice": "a/b"}),
            422,
            "localVoice",
        ),
    ];
    for (body, want_status, field) in cases {
        let (status, err) = post(body.clone()).await;
        assert_eq!(status, want_status, "{body} → {err}");
        assert_eq!(err["error"]["field"], field, "{body} → {err}");
    }
    // Unknown fields (mass assignment) are refused.
    let (status, _) =
        post(json!({"name": "x1", "displayName": "X", "triggerWord": "TOK_X1", "isDefault": true}))
            .await;
    assert_eq!(status, 422);

    // Update, set default, status, delete.
    let id = created["id"].as_str().unwrap();
    let url = format!("{}/api/identities/{id}", server.base);
    let updated: Value = http
        .put(&url)
        .bearer_auth(&token)
        .json(&json!({"loraScale": "auto"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["loraScale"], "auto");
    assert_eq!(updated["displayName"], "Deven Spear");
    let def: Value = http
        .post(format!("{url}/set-default"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(def["isDefault"], true);
    let status: Value = http
        .get(format!("{}/api/identities/status", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["defaultIdentity"]["name"], "deven-primary");
    assert_eq!(status["defaultIdentitySource"], "database");
    assert_eq!(status["falKeyConfigured"], false);
    // Test: every check is reported and the result is stored on the identity.
    let tested: Value = http
        .post(format!("{url}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], true, "{tested}");
    let names: Vec<&str> = tested["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "triggerWord",
            "baseModel",
            "voiceId",
            "loraUrl",
            "referencePhotos"
        ]
    );
    assert!(tested["lora"].is_null());
    // Asked for, a test render adds one still through the image provider, served from storage.
    let rendered: Value = http
        .post(format!("{url}/test?render=true"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rendered["checks"][5]["name"], "testRender", "{rendered}");
    assert_eq!(rendered["checks"][5]["ok"], true, "{rendered}");
    let key = rendered["renderKey"].as_str().unwrap();
    let still = http
        .get(format!("{}/{key}", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
    assert!(still.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let bad_query = http
        .post(format!("{url}/test?render=maybe"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_query.status(), 400);
    let body: Value = bad_query.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");

    // With a Flux LoRA trained on the trigger word, the header report is part of the result.
    let set_lora = |lora_url: String| {
        let req = http
            .put(&url)
            .bearer_auth(&token)
            .json(&json!({ "loraUrl": lora_url }));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let good = format!("{lora_host}/deven.safetensors");
    assert_eq!(set_lora(good.clone()).await["loraUrl"], good.as_str());
    let tested: Value = http
        .post(format!("{url}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], true, "{tested}");
    let names: Vec<&str> = tested["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "triggerWord",
            "baseModel",
            "voiceId",
            "loraReachable",
            "loraFile",
            "referencePhotos"
        ]
    );
    assert_eq!(tested["lora"]["family"], "flux");
    assert_eq!(tested["lora"]["rank"], 16);
    assert_eq!(tested["lora"]["triggerWordFound"], true);

    // The CLI runs the same test on the same data folder.
    let out = command(
        server.data.path(),
        &["identity", "test", "deven-primary", "--data", ".", "--json"],
    )
    .env("DEVATAR_ALLOW_PRIVATE_URLS", "1")
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["ok"], true);
    assert_eq!(cli["lora"]["convention"], "kohya");
    let unknown = run(
        server.data.path(),
        &["identity", "test", "nobody", "--data", "."],
    );
    assert_eq!(unknown.status.code(), Some(2));

    // An SDXL LoRA fails with the reason; so does a URL that is not there.
    let sdxl = format!("{lora_host}/sdxl.safetensors");
    set_lora(sdxl).await;
    let tested: Value = http
        .post(format!("{url}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], false, "{tested}");
    let file_check = &tested["checks"][4];
    assert_eq!(file_check["name"], "loraFile");
    assert_eq!(file_check["ok"], false);
    assert!(
        file_check["detail"]
            .as_str()
            .unwrap()
            .contains("wrong family"),
        "{file_check}"
    );
    set_lora(format!("{lora_host}/missing.safetensors")).await;
    let tested: Value = http
        .post(format!("{url}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], false, "{tested}");
    assert_eq!(tested["checks"][3]["name"], "loraReachable");
    assert_eq!(tested["checks"][3]["ok"], false);
    let stored: Value = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["lastTest"]["ok"], false);
    assert_eq!(
        http.delete(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        http.get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_sets_a_session_whose_writes_need_the_csrf_token() {
    let server = TestApp::start().await;
    let http = client();
    let wrong = http
        .post(format!("{}/api/login", server.base))
        .json(&json!({"password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = http
        .post(format!("{}/api/login", server.base))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let csrf = ok.json::<Value>().await.unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_string();

    let list = http
        .get(format!("{}/api/identities", server.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let body = json!({"name": "tess", "displayName": "Tess", "triggerWord": "TOK_TESS"});
    let no_csrf = http
        .post(format!("{}/api/identities", server.base))
        .header("cookie", &session)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    // A cross-site form (multipart or urlencoded) cannot set the header either, so it is refused too.
    let form = reqwest::multipart::Form::new()
        .text("kind", "headshot")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"\x89PNG".to_vec()).file_name("x.png"),
        );
    let forged = http
        .post(format!("{}/api/assets", server.base))
        .header("cookie", &session)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let forged = http
        .post(format!("{}/api/identities/x/set-default", server.base))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let with_csrf = http
        .post(format!("{}/api/identities", server.base))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(with_csrf.status(), 201);

    let out = http
        .post(format!("{}/api/logout", server.base))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = http
        .get(format!("{}/api/identities", server.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

/// A real `devatar serve` process on a random port with its data folder; killed on drop. Only the test of
/// the binary's own wiring uses it; every other API test runs on [`TestApp`].
struct ServeProcess {
    child: std::process::Child,
    base: String,
    data: tempfile::TempDir,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = command(
            data.path(),
            &["serve", "--bind", "127.0.0.1:0", "--data", "."],
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
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "server exited before listening"
            );
            if let Some(addr) = line.trim().strip_prefix("devatar listening on ") {
                break addr.to_string();
            }
        };
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
            }
        });
        ServeProcess { child, base, data }
    }

    /// `devatar token create` on the server's data folder.
    fn cli_token(&self) -> String {
        let out = run(
            self.data.path(),
            &["token", "create", "--name", "tests", "--data", "."],
        );
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_string()
    }
}

/// The binary's wiring: `devatar serve` prints its listening line, stores the admin password from the
/// environment (login works), runs its worker (a scene renders), and honours tokens made and revoked by
/// `devatar token` on the same data folder at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_process_listens_logs_in_renders_and_honours_cli_tokens() {
    let server = ServeProcess::start();
    let http = client();
    let login = http
        .post(format!("{}/api/login", server.base))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = server.cli_token();
    let identities = format!("{}/api/identities", server.base);
    assert_eq!(http.get(&identities).send().await.unwrap().status(), 401);
    let post = |path: &str, body: Value| {
        let req = http
            .post(format!("{}{path}", server.base))
            .bearer_auth(&token)
            .json(&body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    post(
        "/api/identities",
        json!({"name": "tess", "displayName": "Tess", "triggerWord": "TOK_TESS"}),
    )
    .await;
    let project = post(
        "/api/projects",
        json!({"name": "Process", "aspectRatio": "1:1"}),
    )
    .await;
    let scene = post(
        "/api/scenes",
        json!({"projectId": project["id"], "name": "s", "dialogue": "From the real process."}),
    )
    .await;
    let started = post(
        &format!("/api/scenes/{}/generate", scene["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    let run_path = format!(
        "{}/api/runs/{}",
        server.base,
        started["runId"].as_str().unwrap()
    );
    let finished = wait_until("the run to finish", Duration::from_secs(120), || async {
        let run: Value = http
            .get(&run_path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (run["status"] != "running" && run["status"] != "queued").then_some(run)
    })
    .await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert!(
        run(
            server.data.path(),
            &["token", "revoke", "tests", "--data", "."]
        )
        .status
        .success()
    );
    let status = http
        .get(&identities)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401, "revoked tokens stop working at once");
}

#[test]
fn non_loopback_bind_without_a_password_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(tmp.path(), &["serve", "--bind", "0.0.0.0:0", "--data", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_a_scene_through_the_in_process_worker_then_render_the_project() {
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let post = |path: &str, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (_, identity) = post(
        "/api/identities",
        json!({"name": "deven-primary", "displayName": "Deven Spear", "triggerWord": "TOK_DEVEN"}),
    )
    .await;
    let (status, project) = post(
        "/api/projects",
        json!({"name": "API demo", "aspectRatio": "1:1", "defaultIdentityId": identity["id"]}),
    )
    .await;
    assert_eq!(status, 201, "{project}");
    let pid = project["id"].as_str().unwrap();
    let (status, one) = post("/api/scenes", json!({"projectId": pid, "name": "one", "dialogue": "Hello from the API.", "camera": "close-up", "moodLighting": "warm"})).await;
    assert_eq!(status, 201, "{one}");
    let (_, two) = post(
        "/api/scenes",
        json!({"projectId": pid, "name": "two", "dialogue": "And goodbye.", "camera": "wide shot"}),
    )
    .await;
    let (status, err) = post(
        "/api/scenes",
        json!({"projectId": pid, "name": "three", "dialogue": "  "}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("dialogue"))
    );
    let (status, err) = post(
        "/api/scenes",
        json!({"projectId": pid, "name": "three", "dialogue": "Hi.", "animation": "quick"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("animation"))
    );
    assert_eq!(one["animation"], "standard", "{one}");
    let (status, fast) = post(
        "/api/scenes",
        json!({"projectId": pid, "name": "fast", "dialogue": "Quick one.", "animation": "fast"}),
    )
    .await;
    assert_eq!((status, fast["animation"].as_str()), (201, Some("fast")));
    let gone = http
        .delete(format!(
            "{base}/api/scenes/{}",
            fast["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);

    // A preview of scene two runs on the local providers and leaves the scene's recorded output alone.
    let two_id = two["id"].as_str().unwrap();
    let (status, started) = post(&format!("/api/scenes/{two_id}/preview"), json!({})).await;
    assert_eq!(status, 202, "{started}");
    let run = server
        .wait_for_run(&token, started["runId"].as_str().unwrap())
        .await;
    assert_eq!(
        (run["status"].as_str(), run["preview"].as_bool()),
        (Some("succeeded"), Some(true)),
        "{run}"
    );
    assert_eq!(run["steps"].as_array().map(Vec::len), Some(5), "{run}");
    let scene: Value = http
        .get(format!("{base}/api/scenes/{two_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (scene["status"].as_str(), scene["outputObject"].as_str()),
        (Some("draft"), None),
        "{scene}"
    );

    // Generate scene one; a second generate while it runs is refused.
    let sid = one["id"].as_str().unwrap();
    let (status, started) = post(&format!("/api/scenes/{sid}/generate"), json!({})).await;
    assert_eq!(status, 202, "{started}");
    let (again, _) = post(&format!("/api/scenes/{sid}/generate"), json!({})).await;
    assert_eq!(again, 409);
    let run = server
        .wait_for_run(&token, started["runId"].as_str().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["preview"], false, "{run}");
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 5, "{steps:?}");
    for name in ["AUDIO", "IMAGE", "VIDEO", "LIPSYNC", "FINALIZE"] {
        assert!(steps.contains(&name), "{name} in {steps:?}");
    }
    assert!(
        run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "succeeded" && s["provider"].is_string())
    );
    for s in run["steps"].as_array().unwrap() {
        let scored = s.get("identityDistance");
        assert!(scored.is_some_and(|d| d.is_null() || d.is_f64()), "{s}");
        assert!(s.get("identityMedian").is_some(), "{s}");
    }
    let scene: Value = http
        .get(format!("{base}/api/scenes/{sid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(scene["status"], "completed");
    assert!(
        scene["outputObject"]
            .as_str()
            .unwrap()
            .starts_with("media/")
    );

    // Logs: the mode decision is filed under IDENTITY_ANCHOR for this scene.
    let logs: Value = http
        .get(format!("{base}/api/logs?scene={sid}&step=IDENTITY_ANCHOR"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = logs["items"].as_array().unwrap();
    assert!(
        !items.is_empty() && items.iter().all(|l| l["step"] == "IDENTITY_ANCHOR"),
        "{logs}"
    );
    let bad = http
        .get(format!("{base}/api/logs?step=NOPE"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    // Reorder, then render the whole project: scene one is reused from the cache.
    let order = json!({"sceneIds": [two["id"], one["id"]]});
    let (status, _) = post(&format!("/api/projects/{pid}/scenes/reorder"), order).await;
    assert_eq!(status, 204);
    let listed: Value = http
        .get(format!("{base}/api/scenes?project={pid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["name"], "two");
    let (status, render) = post(&format!("/api/projects/{pid}/render"), json!({})).await;
    assert_eq!(status, 202);
    let run = server
        .wait_for_run(&token, render["runId"].as_str().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 11);
    let cached_one = steps
        .iter()
        .filter(|s| s["sceneId"] == one["id"] && s["cached"] == true)
        .count();
    assert_eq!(cached_one, 5, "scene one was generated before: {run}");
    let project: Value = http
        .get(format!("{base}/api/projects/{pid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(project["status"], "completed");
    assert!(project["durationSeconds"].as_f64().unwrap() > 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_events_stream_each_step_then_the_final_status() {
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let post = |path: &str, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    post(
        "/api/identities",
        json!({"name": "tess", "displayName": "Tess", "triggerWord": "TOK_TESS"}),
    )
    .await;
    let project = post(
        "/api/projects",
        json!({"name": "SSE", "aspectRatio": "1:1"}),
    )
    .await;
    let scene = post(
        "/api/scenes",
        json!({"projectId": project["id"], "name": "s", "dialogue": "Streaming steps."}),
    )
    .await;
    let started = post(
        &format!("/api/scenes/{}/generate", scene["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    let run_id = started["runId"].as_str().unwrap();
    let path = format!("/api/runs/{run_id}/events");
    let events = server.events(&token, &path).await;
    for step in ["AUDIO", "IMAGE", "VIDEO", "LIPSYNC", "FINALIZE"] {
        assert!(
            events
                .iter()
                .any(|(n, d)| n == "step" && d["step"] == step && d["event"] == "finished"),
            "{step} finished missing from {events:?}"
        );
    }
    let last = events.last().unwrap();
    assert_eq!(last.0, "finished");
    assert_eq!(last.1["status"], "succeeded");
    // The stream agrees with the stored run; a finished run's stream replays and closes at once.
    let replay = server.events(&token, &path).await;
    let steps = replay.iter().filter(|(n, _)| n == "step").count();
    assert_eq!(steps, 5, "{replay:?}");
    assert_eq!(
        replay.last().map(|e| &e.1["status"]),
        Some(&json!("succeeded"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_sniffed_limited_probed_and_served_with_ranges() {
    use reqwest::multipart::{Form, Part};
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let upload = |kind: &str, name: &str, bytes: Vec<u8>| {
        let form = Form::new()
            .text("kind", kind.to_string())
            .text("folder", "team")
            .part("file", Part::bytes(bytes).file_name(name.to_string()));
        let req = http
            .post(format!("{base}/api/assets"))
            .bearer_auth(&token)
            .multipart(form);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // A real JPEG made by ffmpeg, under a hostile file name.
    let dir = tempfile::tempdir().unwrap();
    let jpg = dir.path().join("face.jpg");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240",
            "-frames:v",
            "1",
        ])
        .arg(&jpg)
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&jpg).unwrap();
    let (status, asset) = upload("headshot", "../../etc/passwd.png", bytes.clone()).await;
    assert_eq!(status, 201, "{asset}");
    assert_eq!(
        (
            asset["mime"].as_str(),
            asset["width"].as_i64(),
            asset["height"].as_i64()
        ),
        (Some("image/jpeg"), Some(320), Some(240))
    );
    let key = asset["objectKey"].as_str().unwrap();
    assert!(
        key.starts_with("media/") && key.ends_with(".jpg") && !key.contains("passwd"),
        "{key}"
    );

    let (status, err) = upload(
        "headshot",
        "notes.png",
        b"just some text, not an image".to_vec(),
    )
    .await;
    assert_eq!(status, 415, "{err}");
    let mut big = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    big.resize(21 << 20, 0);
    let (status, _) = upload("headshot", "big.png", big).await;
    assert_eq!(status, 413);
    let (status, err) = upload("video", "x.mp4", bytes.clone()).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("kind"))
    );

    let listed: Value = http
        .get(format!("{base}/api/assets?kind=headshot&folder=team"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Served with Range support, only to authenticated callers.
    let url = format!("{base}/{key}");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let part = http
        .get(&url)
        .bearer_auth(&token)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[..10]);
    assert_eq!(
        http.get(format!("{base}/media/zz/nothing.mp4"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let id = asset["id"].as_str().unwrap();
    assert_eq!(
        http.delete(format!("{base}/api/assets/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_docs_and_openapi_are_public_and_vendored() {
    let server = TestApp::start().await;
    let http = client();
    let docs = http
        .get(format!("{}/api/docs/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "no CDN: everything is served from this server"
    );
    let doc: Value = http
        .get(format!("{}/api/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/scenes/{id}/generate"]["post"].is_object());
}

/// What the test receiver saw: (headers, body) of each POST, and how many to refuse first.
#[derive(Clone, Default)]
struct Receiver {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    refuse_first: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    r.seen.lock().unwrap().push((headers, body));
    let refuse = r.refuse_first.load(std::sync::atomic::Ordering::SeqCst);
    if refuse > 0 {
        r.refuse_first
            .store(refuse - 1, std::sync::atomic::Ordering::SeqCst);
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    axum::http::StatusCode::NO_CONTENT
}

/// Verifies `X-Devatar-Signature` the way an integrator would.
fn signature_valid(secret: &str, headers: &axum::http::HeaderMap, body: &str) -> bool {
    use hmac::{Hmac, Mac};
    let timestamp = headers["x-devatar-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    headers["x-devatar-signature"].to_str().unwrap() == expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_completion_is_posted_to_the_project_webhook_signed_and_retried() {
    let receiver = Receiver::default();
    receiver
        .refuse_first
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = TestApp::builder()
        .env("DEVATAR_ALLOW_PRIVATE_URLS", "1")
        .start()
        .await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let send = |method: reqwest::Method, path: &str, body: Value| {
        let req = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    use reqwest::Method;
    send(
        Method::POST,
        "/api/identities",
        json!({"name": "wes", "displayName": "Wes", "triggerWord": "TOK_WES"}),
    )
    .await;
    let (_, project) = send(
        Method::POST,
        "/api/projects",
        json!({"name": "Hooked", "aspectRatio": "1:1"}),
    )
    .await;
    let pid = project["id"].as_str().unwrap();
    // Bad URLs are refused naming the field; a good one returns the secret once.
    let (status, err) = send(
        Method::PUT,
        &format!("/api/projects/{pid}/webhook"),
        json!({"url": "ftp://x/y"}),
    )
    .await;
    assert_eq!((status, err["error"]["field"].as_str()), (422, Some("url")));
    let (status, hook) = send(
        Method::PUT,
        &format!("/api/projects/{pid}/webhook"),
        json!({"url": hook_url}),
    )
    .await;
    assert_eq!(status, 200, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let (_, shown) = send(
        Method::GET,
        &format!("/api/projects/{pid}/webhook"),
        Value::Null,
    )
    .await;
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown only once: {shown}"
    );

    let (_, scene) = send(
        Method::POST,
        "/api/scenes",
        json!({"projectId": pid, "name": "s", "dialogue": "Tell the webhook."}),
    )
    .await;
    let (_, started) = send(
        Method::POST,
        &format!("/api/scenes/{}/generate", scene["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    let run_id = started["runId"].as_str().unwrap().to_string();
    let run = server.wait_for_run(&token, &run_id).await;
    assert_eq!(run["status"], "succeeded");

    // First attempt refused (503), the retry accepted; both signed over the same body.
    let webhook = format!("/api/projects/{pid}/webhook");
    let state = wait_until(
        "the webhook to be delivered after a retry",
        Duration::from_secs(20),
        || async {
            let (_, state) = send(Method::GET, &webhook, Value::Null).await;
            state["deliveries"][0]["deliveredAt"]
                .is_number()
                .then_some(state)
        },
    )
    .await;
    assert_eq!(state["deliveries"][0]["attempts"], 2, "{state}");
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (headers, body) in &seen {
        assert!(signature_valid(&secret, headers, body), "bad signature");
        assert!(!signature_valid("whsec_wrong", headers, body));
        assert_eq!(headers["x-devatar-event"], "run.succeeded");
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["runId"], run_id.as_str());
        assert_eq!(payload["status"], "succeeded");
        assert_eq!(payload["sceneId"], scene["id"]);
    }
    assert_eq!(
        seen[0].0["x-devatar-delivery"],
        seen[1].0["x-devatar-delivery"]
    );

    let (status, _) = send(
        Method::DELETE,
        &format!("/api/projects/{pid}/webhook"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        Method::GET,
        &format!("/api/projects/{pid}/webhook"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_prices_a_project_before_it_runs() {
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let post = |path: &str, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    post(
        "/api/identities",
        json!({"name": "ann", "displayName": "Ann", "triggerWord": "TOK_ANN"}),
    )
    .await;
    let (status, bad) = post(
        "/api/projects",
        json!({"name": "Priced", "identityGate": "sometimes", "identityRetries": 9}),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    for field in ["identityGate", "identityRetries"] {
        assert!(bad.to_string().contains(field), "{field} in {bad}");
    }
    let (_, project) = post(
        "/api/projects",
        json!({"name": "Priced", "aspectRatio": "1:1", "identityGate": "strict", "identityRetries": 4}),
    )
    .await;
    assert_eq!(
        (&project["identityGate"], &project["identityRetries"]),
        (&json!("strict"), &json!(4))
    );
    let pid = project["id"].as_str().unwrap();
    let short = "Hello there.";
    let long = "word ".repeat(30).trim_end().to_string();
    let (_, one) = post(
        "/api/scenes",
        json!({"projectId": pid, "name": "one", "dialogue": short}),
    )
    .await;
    post(
        "/api/scenes",
        json!({"projectId": pid, "name": "two", "dialogue": long}),
    )
    .await;

    let (status, cloud) = post(
        "/api/estimate",
        json!({"projectId": pid, "providers": "cloud"}),
    )
    .await;
    assert_eq!(status, 200, "{cloud}");
    let scenes = cloud["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), 2);
    // The longer line needs a 15 s clip and costs more; the total is the sum.
    assert_eq!(scenes[0]["videoSeconds"], 5);
    assert_eq!(scenes[1]["videoSeconds"], 15);
    let a = scenes[0]["usd"].as_f64().unwrap();
    let b = scenes[1]["usd"].as_f64().unwrap();
    assert!(a > 0.3 && b > a, "{cloud}");
    assert!((cloud["totalUsd"].as_f64().unwrap() - (a + b)).abs() < 1e-9);
    let image = &scenes[0]["steps"][1];
    assert_eq!(image["step"], "IMAGE");
    assert!((image["usd"].as_f64().unwrap() - 0.035 * 1.048576).abs() < 1e-6);

    let (_, only) = post(
        "/api/estimate",
        json!({"projectId": pid, "providers": "cloud", "sceneIds": [one["id"]]}),
    )
    .await;
    assert!((only["totalUsd"].as_f64().unwrap() - a).abs() < 1e-9);
    let (_, local) = post(
        "/api/estimate",
        json!({"projectId": pid, "providers": "local"}),
    )
    .await;
    assert_eq!(local["totalUsd"], 0.0);
    let (status, bad) = post(
        "/api/estimate",
        json!({"projectId": pid, "providers": "cheap"}),
    )
    .await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (422, Some("providers"))
    );
    let (status, bad) = post(
        "/api/estimate",
        json!({"projectId": pid, "sceneIds": ["nope"]}),
    )
    .await;
    assert_eq!(
        (status, bad["error"]["field"].as_str()),
        (422, Some("sceneIds"))
    );
    let (status, _) = post("/api/estimate", json!({"projectId": "missing"})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scene_creation_gives_distinct_positions() {
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let project: Value = http
        .post(format!("{base}/api/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": "Race"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = project["id"].as_str().unwrap().to_string();
    let creates = (0..24).map(|i| {
        let req = http
            .post(format!("{base}/api/scenes"))
            .bearer_auth(&token)
            .json(&json!({"projectId": pid, "name": format!("s{i}"), "dialogue": "Hi."}));
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(creates).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let page: Value = http
        .get(format!("{base}/api/scenes?project={pid}&limit=100"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut positions: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["position"].as_i64().unwrap())
        .collect();
    positions.sort();
    assert_eq!(positions, (0..24).collect::<Vec<i64>>());
}

/// Concurrent creations with one name: the database's unique constraint decides, so exactly one answers 201
/// and every other one 409 naming the field (never a silent update of the first, never a 500). A trigger word
/// taken by another name is a 409 on `triggerWord`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identity_creations_with_one_name_give_one_201_and_409s() {
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let creates = (0..50).map(|i| {
        let req = http
            .post(format!("{base}/api/identities"))
            .bearer_auth(&token)
            .json(&json!({"name": "twin", "displayName": format!("Twin {i}"), "triggerWord": "TOK_TWIN"}));
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    let answers = futures::future::join_all(creates).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 409, "{body}");
        let field = body["error"]["field"].as_str().unwrap_or("");
        assert!(field == "name" || field == "triggerWord", "{body}");
    }
    let list: Value = http
        .get(format!("{base}/api/identities"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list
        .as_array()
        .or_else(|| list["items"].as_array())
        .unwrap();
    assert_eq!(items.len(), 1, "{list}");
    // The winner's fields were never overwritten by a loser.
    assert_eq!(items[0]["displayName"], created[0]["displayName"]);
    let clash = http
        .post(format!("{base}/api/identities"))
        .bearer_auth(&token)
        .json(&json!({"name": "other", "displayName": "Other", "triggerWord": "TOK_TWIN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(clash.status().as_u16(), 409);
    let body: Value = clash.json().await.unwrap();
    assert_eq!(body["error"]["field"], "triggerWord", "{body}");
}

/// What a hostile client hit (issue 17): a LoRA upload answered 500 (its extension was longer than object keys
/// allowed), `/media` let browsers sniff, a lowercase `bearer` scheme was refused, and concurrent reorders on
/// SQLite answered 500 "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lora_uploads_media_headers_bearer_case_and_concurrent_reorders() {
    use reqwest::multipart::{Form, Part};
    let server = TestApp::start().await;
    let token = server.token().await;
    let http = client();
    let base = server.base.clone();
    let lora = common::cloud::flux_lora("TOK_DEVEN", 16);
    let form = Form::new()
        .text("kind", "lora")
        .part("file", Part::bytes(lora).file_name("deven.safetensors"));
    let r = http
        .post(format!("{base}/api/assets"))
        .header("authorization", format!("bearer {token}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "lowercase bearer + LoRA upload");
    let asset: Value = r.json().await.unwrap();
    let key = asset["objectKey"].as_str().unwrap();
    assert!(key.ends_with(".safetensors"), "{key}");
    let media = http
        .get(format!("{base}/{key}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(media.status().as_u16(), 200);
    assert_eq!(media.headers()["x-content-type-options"], "nosniff");

    let project: Value = http
        .post(format!("{base}/api/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": "Reorders"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = project["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for i in 0..20 {
        let scene: Value = http
            .post(format!("{base}/api/scenes"))
            .bearer_auth(&token)
            .json(&json!({"projectId": pid, "name": format!("s{i}"), "dialogue": "Hi."}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(scene["id"].as_str().unwrap().to_string());
    }
    let reorders = (0..40).map(|i| {
        let mut order = ids.clone();
        order.rotate_left(i % ids.len());
        let req = http
            .post(format!("{base}/api/projects/{pid}/scenes/reorder"))
            .bearer_auth(&token)
            .json(&json!({"sceneIds": order}));
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(reorders).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
}

pub(crate) mod hostile;
mod lora_asset;
mod photos;
mod scene_media;
mod schema;
mod training;
