//! Issue 17 item 1: an uploaded LoRA is selectable for an identity (`loraAssetId`) and reaches Fal through Fal's
//! storage upload when media live in the local folder (uploaded once), or as a presigned GET when they live in a
//! bucket; either way a second render uploads and executes nothing.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::hostile::{encoded_png, upload};
use crate::common::app::TestApp;
use crate::common::cloud::{self, FAL_KEY};
use crate::common::s3::S3;
use devatar::fakes::{FakeServer, LatencyProfile};

fn stat(stats: &BTreeMap<String, u64>, key: &str) -> u64 {
    stats.get(key).copied().unwrap_or(0)
}

/// POSTs or PUTs `body`; the status and the JSON answer.
async fn send(app: &TestApp, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let http = devatar::net::client_builder().build().unwrap();
    let req = match method {
        "PUT" => http.put(app.url(path)),
        _ => http.post(app.url(path)),
    };
    let r = req.bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

/// The app on the sandbox `base` (Fal only), plus `extra` settings.
async fn app_on(base: &str, extra: &[(&str, String)]) -> TestApp {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("FAL_KEY", FAL_KEY),
        ("FAL_BASE_URL", base),
        ("FAL_STORAGE_BASE_URL", base),
        ("DEVATAR_ALLOW_PRIVATE_URLS", "1"),
        ("DEVATAR_PROVIDER_TIME_SCALE", "0.01"),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    TestApp::builder().envs(&pairs).start().await
}

/// Uploads a LoRA, makes it the identity's, and a one-scene project speaking as it; the scene's generate path.
async fn twin_scene(app: &TestApp, token: &str) -> (String, String) {
    let (status, lora) = upload(app, token, "lora", cloud::flux_lora("TOK_DEVEN", 16)).await;
    assert_eq!(status, 201, "{lora}");
    let person = json!({"name": "deven", "displayName": "Deven", "triggerWord": "TOK_DEVEN",
                        "loraAssetId": lora["id"]});
    let (status, identity) = send(app, token, "POST", "/api/identities", person).await;
    assert_eq!(status, 201, "{identity}");
    assert_eq!(identity["loraAssetId"], lora["id"], "{identity}");
    let project = json!({"name": "twin", "defaultIdentityId": identity["id"]});
    let (status, project) = send(app, token, "POST", "/api/projects", project).await;
    assert_eq!(status, 201, "{project}");
    let scene_body = json!({"projectId": project["id"], "name": "one", "dialogue": "Hello.", "camera": "close-up"});
    let (status, scene) = send(app, token, "POST", "/api/scenes", scene_body).await;
    assert_eq!(status, 201, "{scene}");
    let id = scene["id"].as_str().unwrap().to_string();
    (format!("/api/scenes/{id}/generate"), id)
}

/// Generates the scene and waits for its run; the run record.
async fn generate(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, started) = send(app, token, "POST", path, json!({})).await;
    assert_eq!(status, 202, "{started}");
    let run = app
        .wait_for_run(token, started["runId"].as_str().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    run
}

/// The scene's still was a digital twin made on Fal.
async fn assert_twin(app: &TestApp, token: &str, run: &Value, scene: &str) {
    let image = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "IMAGE")
        .cloned()
        .unwrap();
    assert_eq!(image["provider"], "fal-ai/flux-lora", "{image}");
    let logs = app
        .get_json(
            token,
            &format!("/api/logs?scene={scene}&step=IDENTITY_ANCHOR"),
        )
        .await;
    assert!(
        logs.to_string().contains("Digital twin mode"),
        "the still is a digital twin: {logs}"
    );
}

/// A re-render executes nothing and sends Fal nothing (the content key holds the object key, not the URL).
async fn assert_second_render_is_free(app: &TestApp, token: &str, fake: &FakeServer, path: &str) {
    fake.reset();
    let run = generate(app, token, path).await;
    for s in run["steps"].as_array().unwrap() {
        assert_eq!(s["cached"], true, "{s}");
    }
    let stats = fake.stats();
    for key in ["fal.storage.initiate", "fal.storage.upload", "fal.submit"] {
        assert_eq!(stat(&stats, key), 0, "{key}: {stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lora_asset_is_checked_like_every_reference() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let (status, lora) = upload(&app, &token, "lora", cloud::flux_lora("TOK_DEVEN", 16)).await;
    assert_eq!(status, 201, "{lora}");
    let (status, headshot) = upload(&app, &token, "headshot", encoded_png(64, 64)).await;
    assert_eq!(status, 201, "{headshot}");
    // Unknown, not a LoRA, or next to a loraUrl → 422 naming the field, like headshotAssetId.
    let person = json!({"name": "deven", "displayName": "Deven", "triggerWord": "TOK_DEVEN"});
    for (asset, url) in [
        (json!("no-such-asset"), Value::Null),
        (headshot["id"].clone(), Value::Null),
        (
            lora["id"].clone(),
            json!("https://example.com/deven.safetensors"),
        ),
    ] {
        let mut body = person.clone();
        body["loraAssetId"] = asset;
        body["loraUrl"] = url;
        let (status, err) = send(&app, &token, "POST", "/api/identities", body).await;
        assert_eq!((status, field(&err)), (422, Some("loraAssetId")), "{err}");
    }
    let (status, identity) = send(&app, &token, "POST", "/api/identities", person).await;
    assert_eq!(status, 201, "{identity}");
    let path = format!("/api/identities/{}", identity["id"].as_str().unwrap());
    let (status, err) = send(
        &app,
        &token,
        "PUT",
        &path,
        json!({"loraAssetId": headshot["id"]}),
    )
    .await;
    assert_eq!((status, field(&err)), (422, Some("loraAssetId")), "{err}");
    let (status, set) = send(
        &app,
        &token,
        "PUT",
        &path,
        json!({"loraAssetId": lora["id"]}),
    )
    .await;
    assert_eq!((status, &set["loraAssetId"]), (200, &lora["id"]), "{set}");
    // The identity test judges the uploaded file.
    let (status, tested) = send(&app, &token, "POST", &format!("{path}/test"), json!({})).await;
    assert_eq!(status, 200, "{tested}");
    let file = tested["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "loraFile");
    assert_eq!(file.map(|c| &c["ok"]), Some(&json!(true)), "{tested}");
    assert_eq!(tested["lora"]["compatible"], true, "{tested}");
    let (status, cleared) = send(&app, &token, "PUT", &path, json!({"loraAssetId": ""})).await;
    assert_eq!(
        (status, &cleared["loraAssetId"]),
        (200, &Value::Null),
        "{cleared}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_lora_reaches_fal_through_its_storage_uploaded_once() {
    let fake = cloud::fakes(LatencyProfile::Fast, 0.02).await;
    let app = app_on(&fake.base_url(), &[]).await;
    let token = app.token().await;
    let (path, scene) = twin_scene(&app, &token).await;
    let run = generate(&app, &token, &path).await;
    assert_twin(&app, &token, &run, &scene).await;
    let stats = fake.stats();
    for (key, n) in [
        ("fal.storage.initiate", 1),
        ("fal.storage.upload", 1),
        ("fal.lora.storage", 1),
        ("fal.submit.fal-ai/flux-lora", 1),
    ] {
        assert_eq!(stat(&stats, key), n, "{key}: {stats:?}");
    }
    assert_second_render_is_free(&app, &token, &fake, &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lora_in_the_bucket_reaches_fal_presigned_without_an_upload() {
    let fake = cloud::fakes(LatencyProfile::Fast, 0.02).await;
    let s3 = S3::start().await;
    let app = app_on(&fake.base_url(), &s3.pairs()).await;
    let token = app.token().await;
    let (path, scene) = twin_scene(&app, &token).await;
    let run = generate(&app, &token, &path).await;
    assert_twin(&app, &token, &run, &scene).await;
    let stats = fake.stats();
    for (key, n) in [
        ("fal.storage.initiate", 0),
        ("fal.lora.url", 1),
        ("fal.submit.fal-ai/flux-lora", 1),
    ] {
        assert_eq!(stat(&stats, key), n, "{key}: {stats:?}");
    }
    assert_second_render_is_free(&app, &token, &fake, &path).await;
}
