//! Issue 17 item 1: an uploaded LoRA is selectable for an identity (`loraAssetId`) and reaches Fal through Fal's
//! storage upload when media live in the local folder — uploaded once, reused by every later render.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::hostile::{encoded_png, upload};
use crate::common::app::TestApp;
use crate::common::cloud::{self, FAL_KEY};
use devatar::fakes::LatencyProfile;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_lora_renders_a_digital_twin_through_fal_storage_uploaded_once() {
    let fake = cloud::fakes(LatencyProfile::Fast, 0.02).await;
    let base = fake.base_url();
    let app = TestApp::builder()
        .envs(&[
            ("FAL_KEY", FAL_KEY),
            ("FAL_BASE_URL", &base),
            ("FAL_STORAGE_BASE_URL", &base),
            ("DEVATAR_ALLOW_PRIVATE_URLS", "1"),
            ("DEVATAR_PROVIDER_TIME_SCALE", "0.01"),
        ])
        .start()
        .await;
    let token = app.token().await;
    let (status, lora) = upload(&app, &token, "lora", cloud::flux_lora("TOK_DEVEN", 16)).await;
    assert_eq!(status, 201, "{lora}");
    let lora_id = lora["id"].as_str().unwrap();
    let (status, headshot) = upload(&app, &token, "headshot", encoded_png(64, 64)).await;
    assert_eq!(status, 201, "{headshot}");

    // The field is checked like headshotAssetId: unknown, not a LoRA, or next to a loraUrl → 422 naming it.
    let person = json!({"name": "deven", "displayName": "Deven", "triggerWord": "TOK_DEVEN"});
    for (asset, url) in [
        (json!("no-such-asset"), Value::Null),
        (headshot["id"].clone(), Value::Null),
        (
            json!(lora_id),
            json!("https://example.com/deven.safetensors"),
        ),
    ] {
        let mut body = person.clone();
        body["loraAssetId"] = asset;
        body["loraUrl"] = url;
        let (status, err) = send(&app, &token, "POST", "/api/identities", body).await;
        assert_eq!((status, field(&err)), (422, Some("loraAssetId")), "{err}");
    }
    let mut body = person.clone();
    body["loraAssetId"] = json!(lora_id);
    let (status, identity) = send(&app, &token, "POST", "/api/identities", body).await;
    assert_eq!(status, 201, "{identity}");
    assert_eq!(identity["loraAssetId"], lora_id, "{identity}");
    let iid = identity["id"].as_str().unwrap();
    let (status, err) = send(
        &app,
        &token,
        "PUT",
        &format!("/api/identities/{iid}"),
        json!({"loraAssetId": headshot["id"]}),
    )
    .await;
    assert_eq!((status, field(&err)), (422, Some("loraAssetId")), "{err}");

    let (status, project) = send(
        &app,
        &token,
        "POST",
        "/api/projects",
        json!({"name": "twin", "defaultIdentityId": iid}),
    )
    .await;
    assert_eq!(status, 201, "{project}");
    let scene_body = json!({"projectId": project["id"], "name": "one", "dialogue": "Hello.", "camera": "close-up"});
    let (status, scene) = send(&app, &token, "POST", "/api/scenes", scene_body).await;
    assert_eq!(status, 201, "{scene}");
    let generate = format!("/api/scenes/{}/generate", scene["id"].as_str().unwrap());

    // First render: the file goes up to Fal storage once and the still is a digital twin made on Fal.
    let (status, started) = send(&app, &token, "POST", &generate, json!({})).await;
    assert_eq!(status, 202, "{started}");
    let run = app
        .wait_for_run(&token, started["runId"].as_str().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
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
            &token,
            &format!(
                "/api/logs?scene={}&step=IDENTITY_ANCHOR",
                scene["id"].as_str().unwrap()
            ),
        )
        .await;
    assert!(
        logs.to_string().contains("Digital twin mode"),
        "the still is a digital twin: {logs}"
    );
    let stats = fake.stats();
    assert_eq!(stat(&stats, "fal.storage.initiate"), 1, "{stats:?}");
    assert_eq!(stat(&stats, "fal.storage.upload"), 1, "{stats:?}");
    assert_eq!(stat(&stats, "fal.submit.fal-ai/flux-lora"), 1, "{stats:?}");

    // Second render: nothing uploaded, nothing executed (the content key holds the object key, not the URL).
    fake.reset();
    let (status, started) = send(&app, &token, "POST", &generate, json!({})).await;
    assert_eq!(status, 202, "{started}");
    let run = app
        .wait_for_run(&token, started["runId"].as_str().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    for s in run["steps"].as_array().unwrap() {
        assert_eq!(s["cached"], true, "{s}");
    }
    let stats = fake.stats();
    for key in ["fal.storage.initiate", "fal.storage.upload", "fal.submit"] {
        assert_eq!(stat(&stats, key), 0, "{key}: {stats:?}");
    }
}
