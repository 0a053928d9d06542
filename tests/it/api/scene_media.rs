//! Issue 19 item 12: a scene speaks an uploaded recording (no TTS; captions with estimated word timings, said in
//! the log) and stands in front of an uploaded background (standard mode composites the framed headshot over it;
//! digital twin mode says it is unused). Wrong-kind assets are refused naming the field.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::hostile::{encoded_png, upload};
use crate::common::app::{PASSWORD, TestApp};
use crate::common::cloud::{self, EL_KEY, FAL_KEY, KLING_ACCESS, KLING_SECRET, SYNC_KEY};
use devatar::fakes::LatencyProfile;

/// Length of the test recording, seconds.
const RECORDING_SECONDS: f64 = 2.0;

/// A mono 16 kHz 16-bit WAV of a 440 Hz tone lasting [`RECORDING_SECONDS`].
fn recording() -> Vec<u8> {
    let rate = 16_000u32;
    let samples: Vec<i16> = (0..(f64::from(rate) * RECORDING_SECONDS) as u32)
        .map(|i| {
            ((f64::from(i) * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin() * 8000.0) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A solid red 32×18 PNG.
fn red_background() -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 32, 18);
    enc.set_color(png::ColorType::Rgb);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(&[255u8, 0, 0].repeat(32 * 18))
        .unwrap();
    writer.finish().unwrap();
    out
}

async fn send(app: &TestApp, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let http = devatar::net::client_builder().build().unwrap();
    let req = match method {
        "PUT" => http.put(app.url(path)),
        _ => http.post(app.url(path)),
    };
    let r = req.bearer_auth(token).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn uploaded(app: &TestApp, token: &str, kind: &str, bytes: Vec<u8>) -> Value {
    let (status, asset) = upload(app, token, kind, bytes).await;
    assert_eq!(status, 201, "{asset}");
    asset["id"].clone()
}

/// Generates scene `id` and waits for its run to succeed; the run.
async fn generate(app: &TestApp, token: &str, id: &str) -> Value {
    let path = format!("/api/scenes/{id}/generate");
    let (status, started) = send(app, token, "POST", &path, json!({})).await;
    assert_eq!(status, 202, "{started}");
    let run = app
        .wait_for_run(token, started["runId"].as_str().unwrap())
        .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    run
}

/// The run's view of scene `scene`'s `step`.
fn step<'r>(run: &'r Value, scene: &str, step: &str) -> &'r Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step && s["sceneId"] == scene)
        .unwrap_or_else(|| panic!("no {step} of {scene}: {run}"))
}

/// The stored output manifest of the newest `step` of `scene`.
async fn output(app: &TestApp, scene: &str, step: &str) -> Value {
    let row: (String,) = sqlx::query_as(
        "SELECT output FROM steps WHERE scene_id = $1 AND step = $2 AND output IS NOT NULL
         ORDER BY finished_at DESC LIMIT 1",
    )
    .bind(scene)
    .bind(step)
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    serde_json::from_str(&row.0).unwrap()
}

async fn logs(app: &TestApp, token: &str, scene: &str, step: &str) -> String {
    app.get_json(token, &format!("/api/logs?scene={scene}&step={step}"))
        .await
        .to_string()
}

/// A session cookie of the admin.
async fn session(app: &TestApp) -> String {
    let http = devatar::net::client_builder().build().unwrap();
    let login = http
        .post(app.url("/api/login"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// The HTML of page `path` in `session`.
async fn page(app: &TestApp, session: &str, path: String) -> String {
    let http = devatar::net::client_builder().build().unwrap();
    let r = http
        .get(app.url(&path))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The app on the provider sandbox (every provider) with a project; its id.
async fn cloud_app() -> (devatar::fakes::FakeServer, TestApp) {
    let fake = cloud::fakes(LatencyProfile::Fast, 0.02).await;
    let base = fake.base_url();
    let pairs: Vec<(&str, &str)> = vec![
        ("FAL_KEY", FAL_KEY),
        ("ELEVENLABS_API_KEY", EL_KEY),
        ("KLING_ACCESS_KEY", KLING_ACCESS),
        ("KLING_SECRET_KEY", KLING_SECRET),
        ("SYNCLABS_API_KEY", SYNC_KEY),
        ("FAL_BASE_URL", &base),
        ("FAL_STORAGE_BASE_URL", &base),
        ("ELEVENLABS_BASE_URL", &base),
        ("KLING_BASE_URL", &base),
        ("SYNCLABS_BASE_URL", &base),
        ("DEVATAR_ALLOW_PRIVATE_URLS", "1"),
        ("DEVATAR_PROVIDER_TIME_SCALE", "0.01"),
    ];
    let app = TestApp::builder().envs(&pairs).start().await;
    (fake, app)
}

fn stat(stats: &BTreeMap<String, u64>, key: &str) -> u64 {
    stats.get(key).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_scene_speaks_without_tts_in_front_of_its_background() {
    let (fake, app) = cloud_app().await;
    let token = app.token().await;
    let audio = uploaded(&app, &token, "audio", recording()).await;
    let background = uploaded(&app, &token, "background", red_background()).await;
    let headshot = uploaded(&app, &token, "headshot", encoded_png(64, 64)).await;
    let lora = uploaded(&app, &token, "lora", cloud::flux_lora("TOK_DEVEN", 16)).await;
    let person = json!({"name": "deven", "displayName": "Deven", "triggerWord": "TOK_DEVEN",
                        "voiceId": cloud::VOICE, "loraAssetId": lora});
    let (status, identity) = send(&app, &token, "POST", "/api/identities", person).await;
    assert_eq!(status, 201, "{identity}");
    let project = json!({"name": "media", "defaultIdentityId": identity["id"]});
    let (status, project) = send(&app, &token, "POST", "/api/projects", project).await;
    assert_eq!(status, 201, "{project}");
    // Wrong kinds and unknown assets are refused, naming the field.
    let base =
        json!({"projectId": project["id"], "name": "one", "dialogue": "Hello there, friends."});
    for (field, asset) in [
        ("speechAssetId", &background),
        ("backgroundAssetId", &audio),
        (
            "speechAssetId",
            &json!("0190aaaa-0000-7000-8000-000000000000"),
        ),
    ] {
        let mut body = base.clone();
        body[field] = asset.clone();
        let (status, err) = send(&app, &token, "POST", "/api/scenes", body).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{err}"
        );
    }
    let mut body = base.clone();
    body["generationMode"] = json!("standard");
    body["headshotAssetId"] = headshot;
    body["speechAssetId"] = audio.clone();
    body["backgroundAssetId"] = background.clone();
    let (status, one) = send(&app, &token, "POST", "/api/scenes", body).await;
    assert_eq!(status, 201, "{one}");
    assert_eq!(
        (&one["speechAssetId"], &one["backgroundAssetId"]),
        (&audio, &background)
    );
    let one = one["id"].as_str().unwrap().to_string();
    let twin = json!({"projectId": project["id"], "name": "two", "dialogue": "Hi.", "camera": "close-up",
                      "generationMode": "digital-twin", "speechAssetId": audio, "backgroundAssetId": background});
    let (status, two) = send(&app, &token, "POST", "/api/scenes", twin).await;
    assert_eq!(status, 201, "{two}");
    let two = two["id"].as_str().unwrap().to_string();

    // The cloud estimate prices no speech synthesis for scenes that speak a recording.
    let (status, est) = send(
        &app,
        &token,
        "POST",
        "/api/estimate",
        json!({"projectId": project["id"], "providers": "cloud"}),
    )
    .await;
    assert_eq!(status, 200, "{est}");
    for scene in est["scenes"].as_array().unwrap() {
        let audio = &scene["steps"][0];
        assert_eq!(
            (&audio["step"], &audio["usd"]),
            (&json!("AUDIO"), &json!(0.0)),
            "{scene}"
        );
    }

    let run = generate(&app, &token, &one).await;
    let speech = step(&run, &one, "AUDIO");
    assert_eq!(
        (&speech["provider"], &speech["costUsd"]),
        (&json!("recording"), &json!(0.0)),
        "{speech}"
    );
    let out = output(&app, &one, "AUDIO").await;
    let seconds = out["durationSeconds"].as_f64().unwrap();
    assert!((seconds - RECORDING_SECONDS).abs() < 0.05, "{out}");
    assert!(!out["words"].as_array().unwrap().is_empty(), "{out}");
    assert!(
        logs(&app, &token, &one, "AUDIO_GENERATION")
            .await
            .contains("estimated")
    );
    let finalized = output(&app, &one, "FINALIZE").await;
    assert!(
        finalized["objects"]["srt"].is_string(),
        "captions: {finalized}"
    );
    // The still is the framed headshot over the red background: its top-left corner is red.
    let key = output(&app, &one, "IMAGE").await["objects"]["image"].clone();
    let path = app.data_dir().join("objects").join(key.as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let still = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let px = still.get_pixel(2, 2).0;
    assert!(px[0] > 200 && px[1] < 40 && px[2] < 40, "corner {px:?}");

    let run = generate(&app, &token, &two).await;
    assert_eq!(step(&run, &two, "AUDIO")["provider"], "recording", "{run}");
    assert!(
        logs(&app, &token, &two, "IMAGE_GENERATION")
            .await
            .contains("unused in digital twin mode")
    );

    // The pages say which assets the scene uses: the scene page, the form's selects, the assets' "in use".
    let session = session(&app).await;
    let page = |path: String| page(&app, &session, path);
    let shown = page(format!("/scenes/{one}")).await;
    assert!(
        shown.contains("caption timings estimated") && shown.contains("behind the framed headshot")
    );
    let form = page(format!("/scenes/{one}/edit")).await;
    assert!(form.contains("f-speechAssetId") && form.contains("f-backgroundAssetId"));
    let assets = page("/assets?kind=audio".into()).await;
    assert!(assets.contains("scene one of media") && assets.contains("voice again"));

    // New words re-run AUDIO (the content key holds the dialogue); the still stays.
    let path = format!("/api/scenes/{one}");
    let (status, _) = send(
        &app,
        &token,
        "PUT",
        &path,
        json!({"dialogue": "Goodbye now."}),
    )
    .await;
    assert_eq!(status, 200);
    let run = generate(&app, &token, &one).await;
    assert_eq!(step(&run, &one, "AUDIO")["cached"], false, "{run}");
    assert_eq!(step(&run, &one, "IMAGE")["cached"], true, "{run}");
    assert_eq!(stat(&fake.stats(), "elevenlabs.tts"), 0, "no TTS call");
}
