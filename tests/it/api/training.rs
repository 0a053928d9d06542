//! Consent and training through the API on the sandbox: training refused without consent (409) and above
//! `maxUsd` (422) with nothing sent to Fal, consent recorded and read back, then a training started (202) followed
//! through its event stream (progress lines, status, the finished row) to the identity's LoRA, listed with its
//! outcome and logged under `LORA_TRAINING`.

use devatar::domain::IdentityId;
use devatar::fakes::LatencyProfile;
use devatar::identity_photos::{Photos, check_file};
use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::cloud::{FAL_KEY, fakes};
use crate::training::photo_set;

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_then_training_through_the_api() {
    let fakes = fakes(LatencyProfile::Fast, 0.05).await;
    let base = fakes.base_url();
    let app = TestApp::builder()
        .envs(&[
            ("FAL_KEY", FAL_KEY),
            ("FAL_BASE_URL", &base),
            ("FAL_STORAGE_BASE_URL", &base),
            ("DEVATAR_ALLOW_PRIVATE_URLS", "1"),
            ("DEVATAR_PROVIDER_TIME_SCALE", "0.01"),
        ])
        .password(Some(crate::ui_browser::PASSWORD))
        .start()
        .await;
    let token = app.token().await;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let (status, created) = send(
        &app,
        &token,
        post.clone(),
        "/api/identities",
        json!({"name": "eileen", "displayName": "Eileen Collins", "triggerWord": "TOK_EILEEN"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let train = format!("/api/identities/{id}/train");
    let consent = format!("/api/identities/{id}/consent");

    let (status, refused) = send(&app, &token, post.clone(), &train, json!({})).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("devatar identity consent eileen"),
        "{refused}"
    );
    let (status, _) = send(&app, &token, reqwest::Method::GET, &consent, Value::Null).await;
    assert_eq!(status, 404);
    let (status, bad) = send(
        &app,
        &token,
        put.clone(),
        &consent,
        json!({"consentedBy": "Eileen", "note": ""}),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let (status, saved) = send(
        &app,
        &token,
        put,
        &consent,
        json!({"consentedBy": "Eileen Collins", "note": "agreed on camera"}),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        app.get_json(&token, &consent).await["consentedBy"],
        "Eileen Collins"
    );
    let (status, few) = send(&app, &token, post.clone(), &train, json!({})).await;
    assert_eq!(
        (status, few["error"]["field"].as_str()),
        (422, Some("photos")),
        "{few}"
    );

    let dir = tempfile::tempdir().unwrap();
    let photos = Photos::new(&app.storage, &app.config.face);
    for p in photo_set(dir.path()) {
        photos
            .add_file(
                &IdentityId::from(id.as_str()),
                &check_file(&p, None).unwrap(),
            )
            .await
            .unwrap();
    }
    let (status, over) = send(&app, &token, post.clone(), &train, json!({"maxUsd": 0.5})).await;
    assert_eq!(
        (status, over["error"]["field"].as_str()),
        (422, Some("maxUsd")),
        "{over}"
    );
    assert_eq!(fakes.stats().get("fal.submit").copied().unwrap_or(0), 0);

    let stale = a_page_follows_a_training_another_process_left(&app, &id).await;
    let (status, started) = send(&app, &token, post, &train, json!({"steps": 500})).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "running");
    // Training anew took over from the one left running: its stream ends, interrupted.
    let path = format!("/api/identities/{id}/trainings/{stale}/events");
    let ended = app.events(&token, &path).await;
    assert_eq!(
        ended.last().map(|(n, d)| (n.as_str(), &d["status"])),
        Some(("done", &json!("interrupted"))),
        "{ended:?}"
    );
    let trainings = format!("/api/identities/{id}/trainings");
    let events = format!("{trainings}/{}/events", started["id"].as_str().unwrap());
    let streamed = app.events(&token, &events).await;
    assert_training_stream(&streamed);
    let done = streamed.last().unwrap().1.clone();
    assert_eq!(done["id"], started["id"]);
    assert_eq!(
        app.get_json(&token, &trainings).await[0],
        done,
        "the stream ends with the stored row"
    );
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["costUsd"].as_f64().unwrap() > 0.9, "{done}");
    // A finished training's stream replays its lines and ends at once; an unknown one is a 404.
    let replay = app.events(&token, &events).await;
    let lines = |e: &[(String, Value)]| -> Vec<Value> {
        e.iter()
            .filter(|(n, _)| n == "progress")
            .map(|(_, d)| d.clone())
            .collect()
    };
    assert_eq!(lines(&replay), lines(&streamed));
    assert_eq!(replay.last(), streamed.last());
    let r = app
        .http
        .get(app.url(&format!("{trainings}/no-such-training/events")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let identity = app.get_json(&token, &format!("/api/identities/{id}")).await;
    assert_eq!(identity["loraUrl"], done["loraUrl"]);
    let logs = app.get_json(&token, "/api/logs?step=LORA_TRAINING").await;
    assert!(
        logs.to_string()
            .contains("Digital twin ready: looks like you"),
        "{logs}"
    );
    fakes.shutdown().await;
}

/// A training's event stream: Fal's training log lines as `progress`, `running` then `succeeded` as `status`, and
/// last the finished row as `done`, after the verdict line.
fn assert_training_stream(events: &[(String, Value)]) {
    let progress: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "progress")
        .filter_map(|(_, d)| d["message"].as_str())
        .collect();
    assert!(
        progress.iter().any(|m| m.starts_with("Training step")),
        "{events:?}"
    );
    // Fal's queue lines carry the position as a number; other lines none.
    for (_, d) in events.iter().filter(|(n, _)| n == "progress") {
        let queued = d["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("in the queue at position"));
        assert_eq!(d["queuePosition"].is_u64(), queued, "{d}");
    }
    assert!(
        progress
            .last()
            .is_some_and(|m| m.starts_with("Digital twin ready: looks like you")),
        "{events:?}"
    );
    let statuses: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "status")
        .map(|(_, d)| &d["status"])
        .collect();
    assert_eq!(statuses.last(), Some(&&json!("succeeded")), "{events:?}");
    let (name, row) = events.last().unwrap();
    assert_eq!(name, "done", "{events:?}");
    assert_eq!(row["status"], "succeeded", "{row}");
    assert!(row["loraUrl"].as_str().is_some(), "{row}");
}

/// A training a dead process left `running`: the identity page follows its stream, and Train stays enabled (a
/// new training takes over from it; only one running in this process disables it). Returns its id.
async fn a_page_follows_a_training_another_process_left(app: &TestApp, id: &str) -> String {
    let stale = app
        .storage
        .db
        .start_training(id, "stale-key", 500, 4, "a-process-that-died")
        .await
        .unwrap();
    let http = crate::ui_browser::no_redirects();
    let cookie = crate::ui_browser::form_login(&http, &app.base).await;
    let page = http
        .get(app.url(&format!("/identities/{id}/edit")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stream =
        format!("data-training-events=\"../../api/identities/{id}/trainings/{stale}/events\"");
    assert!(page.contains(&stream), "{page}");
    assert!(
        page.contains("id=\"train-button\">Train my digital twin"),
        "Train stays enabled: {page}"
    );
    stale
}
