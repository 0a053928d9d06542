//! The provider sandbox over real HTTP: happy paths, auth, contract 422s, faults, stats.
//! Needs ffmpeg (the fakes make real media with it).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use devatar::fakes::{self, FakeConfig, FakeKeys, FakeServer, FaultSpec, LatencyProfile};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const EL_KEY: &str = "el-test-key";
const FAL_KEY: &str = "fal-id:fal-secret";
const KLING_AK: &str = "kling-access";
const KLING_SK: &str = "kling-secret";
const SYNC_KEY: &str = "sync-test-key";
const VOICE: &str = "21m00Tcm4TlvDq8ikWAM";

fn keys() -> FakeKeys {
    FakeKeys {
        fal: Some(FAL_KEY.into()),
        elevenlabs: Some(EL_KEY.into()),
        kling_access_key: Some(KLING_AK.into()),
        kling_secret_key: Some(KLING_SK.into()),
        synclabs: Some(SYNC_KEY.into()),
    }
}

async fn start(latency: LatencyProfile, scale: f64) -> FakeServer {
    let cfg = FakeConfig::default()
        .with_keys(keys())
        .with_latency(latency, scale);
    fakes::spawn(cfg)
        .await
        .expect("fakes start (is ffmpeg installed?)")
}

fn http() -> reqwest::Client {
    devatar::net::client_builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

async fn body_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
    (status, v)
}

async fn get_bytes(url: &str) -> (u16, String, Vec<u8>) {
    let resp = http().get(url).send().await.expect("download");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.bytes().await.expect("bytes").to_vec();
    (status, ct, bytes)
}

async fn stats(s: &FakeServer) -> Value {
    let (code, v) = body_json(
        http()
            .get(format!("{}/__stats", s.base_url()))
            .send()
            .await
            .expect("stats"),
    )
    .await;
    assert_eq!(code, 200);
    v
}

fn is_mp3(b: &[u8]) -> bool {
    b.starts_with(b"ID3") || (b.len() > 1 && b[0] == 0xFF && (b[1] & 0xE0) == 0xE0)
}

fn is_png(b: &[u8]) -> bool {
    b.starts_with(b"\x89PNG\r\n\x1a\n")
}

fn is_mp4(b: &[u8]) -> bool {
    b.len() > 8 && &b[4..8] == b"ftyp"
}

async fn duration_of(bytes: &[u8], ext: &str) -> devatar::media::MediaInfo {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join(format!("x.{ext}"));
    std::fs::write(&p, bytes).expect("write");
    devatar::media::probe(&p).await.expect("probe")
}

// ---------- ElevenLabs ----------

async fn tts(s: &FakeServer, key: &str, path_suffix: &str, body: Value) -> reqwest::Response {
    http()
        .post(format!(
            "{}/v1/text-to-speech/{VOICE}{path_suffix}",
            s.base_url()
        ))
        .header("xi-api-key", key)
        .json(&body)
        .send()
        .await
        .expect("tts")
}

#[tokio::test]
async fn elevenlabs_speech_timestamps_voices_and_errors() {
    let s = start(LatencyProfile::None, 1.0).await;
    let text = "Hello there, this is a test of the speech fake with timings.";

    let resp = tts(
        &s,
        EL_KEY,
        "",
        json!({"text": text, "model_id": "eleven_multilingual_v2"}),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/mpeg");
    assert!(resp.headers().contains_key("request-id"));
    let audio = resp.bytes().await.expect("audio");
    assert!(is_mp3(&audio), "not an MP3");

    let (code, v) =
        body_json(tts(&s, EL_KEY, "/with-timestamps", json!({"text": text})).await).await;
    assert_eq!(code, 200, "{v}");
    let al = &v["alignment"];
    let n = text.chars().count();
    assert_eq!(al["characters"].as_array().map(Vec::len), Some(n));
    assert_eq!(
        al["character_start_times_seconds"].as_array().map(Vec::len),
        Some(n)
    );
    assert_eq!(
        al["character_end_times_seconds"].as_array().map(Vec::len),
        Some(n)
    );
    assert_eq!(v["normalized_alignment"], v["alignment"]);
    let last_end = al["character_end_times_seconds"][n - 1]
        .as_f64()
        .expect("end time");
    let expected = (0.06 * n as f64).max(1.0);
    assert!(
        (last_end - expected).abs() < 0.01,
        "{last_end} vs {expected}"
    );
    let mp3 = base64::engine::general_purpose::STANDARD
        .decode(v["audio_base64"].as_str().expect("audio_base64"))
        .expect("base64");
    assert!(is_mp3(&mp3));
    let info = duration_of(&mp3, "mp3").await;
    assert!(
        (info.duration - last_end).abs() < 0.2,
        "audio {} s, alignment {last_end} s",
        info.duration
    );

    // Auth, in ElevenLabs' own shape.
    let (code, v) = body_json(tts(&s, "wrong", "", json!({"text": text})).await).await;
    assert_eq!(
        (code, v["detail"]["status"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let resp = http()
        .post(format!("{}/v1/text-to-speech/{VOICE}", s.base_url()))
        .json(&json!({"text": text}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);

    // Contract breaks.
    for bad in [
        json!({"text": ""}),
        json!({"text": "x", "voice_settings": {"stability": 2.0}}),
        json!({"text": "x", "voice_setting": {"stability": 0.5}}),
        json!({"text": "x", "model_id": "eleven_nonexistent"}),
    ] {
        let (code, v) = body_json(tts(&s, EL_KEY, "", bad.clone()).await).await;
        assert_eq!(code, 422, "{bad} -> {v}");
        assert!(v["detail"].is_array(), "{v}");
    }
    let long = "a".repeat(5001);
    let (code, v) = body_json(
        tts(
            &s,
            EL_KEY,
            "",
            json!({"text": long, "model_id": "eleven_v3"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (code, v["detail"]["status"].as_str()),
        (400, Some("max_character_limit_exceeded"))
    );

    // Voices.
    let (code, v) = body_json(
        http()
            .get(format!("{}/v1/voices", s.base_url()))
            .header("xi-api-key", EL_KEY)
            .send()
            .await
            .expect("voices"),
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        v["voices"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["voice_id"] == VOICE))
    );
    let (code, v) = body_json(
        http()
            .get(format!("{}/v1/voices/nope", s.base_url()))
            .header("xi-api-key", EL_KEY)
            .send()
            .await
            .expect("voice"),
    )
    .await;
    assert_eq!(
        (code, v["detail"]["status"].as_str()),
        (400, Some("voice_not_found"))
    );
    let resp = http()
        .post(format!("{}/v1/text-to-speech/nope", s.base_url()))
        .header("xi-api-key", EL_KEY)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);

    let st = stats(&s).await;
    assert_eq!(st["elevenlabs.tts"], 2, "{st}");
    assert_eq!(st["elevenlabs.voices"], 2, "{st}");
    assert_eq!(st["elevenlabs.characters"], 2 * n as u64, "{st}");
    assert_eq!(st["requests.elevenlabs.tts"], 10, "{st}");
}

#[tokio::test]
async fn elevenlabs_faults_burst_then_success_and_429_kinds() {
    let s = start(LatencyProfile::None, 1.0).await;
    s.add_fault("elevenlabs.tts=500x3").expect("fault");
    for _ in 0..3 {
        let (code, v) = body_json(tts(&s, EL_KEY, "", json!({"text": "hello"})).await).await;
        assert_eq!(code, 500);
        assert!(v["detail"]["status"].is_string(), "{v}");
    }
    assert_eq!(
        tts(&s, EL_KEY, "", json!({"text": "hello"}))
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(stats(&s).await["elevenlabs.tts"], 1);

    s.add_fault("elevenlabs.tts=429slotretry-after=3x1")
        .expect("fault");
    s.add_fault("elevenlabs.tts=429x1").expect("fault");
    s.add_fault("elevenlabs.tts=quotax1").expect("fault");
    let resp = tts(&s, EL_KEY, "", json!({"text": "hello"})).await;
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let (code, v) = body_json(resp).await;
    assert_eq!(
        (code, v["detail"]["status"].as_str()),
        (429, Some("too_many_concurrent_requests"))
    );
    let (code, v) = body_json(tts(&s, EL_KEY, "", json!({"text": "hello"})).await).await;
    assert_eq!(
        (code, v["detail"]["status"].as_str()),
        (429, Some("system_busy"))
    );
    let (code, v) = body_json(tts(&s, EL_KEY, "", json!({"text": "hello"})).await).await;
    assert_eq!(
        (code, v["detail"]["status"].as_str()),
        (401, Some("quota_exceeded"))
    );
    assert_eq!(
        tts(&s, EL_KEY, "", json!({"text": "hello"}))
            .await
            .status()
            .as_u16(),
        200
    );
}

// ---------- Fal ----------

async fn fal_submit(s: &FakeServer, model: &str, body: Value) -> (u16, Value) {
    body_json(
        http()
            .post(format!("{}/{model}", s.base_url()))
            .header("authorization", format!("Key {FAL_KEY}"))
            .json(&body)
            .send()
            .await
            .expect("submit"),
    )
    .await
}

async fn fal_get(url: &str) -> (u16, Value) {
    body_json(
        http()
            .get(url)
            .header("authorization", format!("Key {FAL_KEY}"))
            .send()
            .await
            .expect("get"),
    )
    .await
}

async fn fal_wait(submit: &Value) -> Value {
    let status_url = submit["status_url"]
        .as_str()
        .expect("status_url")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, v) = fal_get(&format!("{status_url}?logs=1")).await;
        match v["status"].as_str() {
            Some("COMPLETED") => {
                assert_eq!(code, 200);
                assert!(v.get("logs").is_some());
                break;
            }
            Some("IN_QUEUE") => {
                assert_eq!(code, 202);
                assert!(v.get("queue_position").is_some(), "{v}");
            }
            Some("IN_PROGRESS") => assert_eq!(code, 202),
            other => panic!("unexpected status {other:?}: {v}"),
        }
        assert!(Instant::now() < deadline, "job did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, v) = fal_get(submit["response_url"].as_str().expect("response_url")).await;
    assert_eq!(code, 200, "{v}");
    v
}

#[tokio::test]
async fn fal_flux_lora_happy_path_and_url_shapes() {
    let s = start(LatencyProfile::Fast, 1.0).await;
    let (code, sub) = fal_submit(
        &s,
        "fal-ai/flux-lora",
        json!({
            "prompt": "TOK_DEVEN, a man in a navy blazer",
            "loras": [{"path": "https://example.test/deven.safetensors", "scale": 0.95}],
            "image_size": "landscape_16_9",
            "num_inference_steps": 28,
            "guidance_scale": 3.5,
            "seed": 42,
            "num_images": 1,
            "enable_safety_checker": false,
            "output_format": "png"
        }),
    )
    .await;
    assert_eq!(code, 200, "{sub}");
    let id = sub["request_id"].as_str().expect("request_id");
    assert_eq!(sub["status"], "IN_QUEUE");
    assert_eq!(
        sub["status_url"],
        format!("{}/fal-ai/flux-lora/requests/{id}/status", s.base_url())
    );
    assert_eq!(
        sub["response_url"],
        format!("{}/fal-ai/flux-lora/requests/{id}", s.base_url())
    );
    assert_eq!(
        sub["cancel_url"],
        format!("{}/fal-ai/flux-lora/requests/{id}/cancel", s.base_url())
    );
    let out = fal_wait(&sub).await;
    assert_eq!(out["seed"], 42);
    let img = &out["images"][0];
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(1024), Some(576))
    );
    assert_eq!(img["content_type"], "image/png");
    let (code, ct, bytes) = get_bytes(img["url"].as_str().expect("url")).await;
    assert_eq!((code, ct.as_str()), (200, "image/png"));
    assert!(is_png(&bytes));

    // Sub-path model ids: status/result live under owner/app only (case 23).
    let model = "fal-ai/kling-video/v2.1/standard/image-to-video";
    let (code, sub) = fal_submit(
        &s,
        model,
        json!({"prompt": "gentle drift", "image_url": format!("{}/__media/sample.png", s.base_url()), "duration": "5"}),
    )
    .await;
    assert_eq!(code, 200, "{sub}");
    let id = sub["request_id"].as_str().expect("id").to_string();
    assert_eq!(
        sub["status_url"],
        format!("{}/fal-ai/kling-video/requests/{id}/status", s.base_url())
    );
    let (code, _) = fal_get(&format!("{}/{model}/requests/{id}/status", s.base_url())).await;
    assert_eq!(code, 404);
    let (code, _) = fal_get(&format!(
        "{}/fal-ai/flux-lora/requests/{id}/status",
        s.base_url()
    ))
    .await;
    assert_eq!(code, 404, "a request is only found under its own app");
    let out = fal_wait(&sub).await;
    let (code, ct, bytes) = get_bytes(out["video"]["url"].as_str().expect("video url")).await;
    assert_eq!((code, ct.as_str()), (200, "video/mp4"));
    assert!(is_mp4(&bytes));
    let info = duration_of(&bytes, "mp4").await;
    assert!((info.duration - 5.0).abs() < 0.2, "{}", info.duration);

    let st = stats(&s).await;
    assert_eq!(st["fal.submit"], 2);
    assert_eq!(st["fal.submit.fal-ai/flux-lora"], 1);
    assert_eq!(st[format!("fal.submit.{model}")], 1);
    assert!(st["fal.status"].as_u64().is_some_and(|n| n >= 2));
    assert_eq!(st["fal.result"], 2);
}

#[tokio::test]
async fn fal_lipsync_and_avatar_follow_the_audio() {
    let s = start(LatencyProfile::None, 1.0).await;
    // Speech from the EL fake, sent as a data URI.
    let text = "This sentence lasts for a little while longer than the clip.";
    let resp = tts(&s, EL_KEY, "", json!({"text": text})).await;
    let mp3 = resp.bytes().await.expect("audio");
    let secs = 0.06 * text.chars().count() as f64;
    let data_uri = format!(
        "data:audio/mpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&mp3)
    );
    let video = format!("{}/__media/sample.mp4", s.base_url());

    let (code, sub) = fal_submit(
        &s,
        "fal-ai/sync-lipsync/v2",
        json!({"model": "lipsync-2", "video_url": video, "audio_url": data_uri, "sync_mode": "loop"}),
    )
    .await;
    assert_eq!(code, 200, "{sub}");
    let out = fal_wait(&sub).await;
    let (_, _, bytes) = get_bytes(out["video"]["url"].as_str().expect("url")).await;
    assert!(is_mp4(&bytes));
    let info = duration_of(&bytes, "mp4").await;
    assert!(
        (info.duration - secs).abs() < 0.3,
        "loop keeps all speech: {} vs {secs}",
        info.duration
    );
    assert!(info.audio_codec.is_some());

    // cut_off trims to the 3 s sample clip.
    let (_, sub) = fal_submit(
        &s,
        "fal-ai/sync-lipsync",
        json!({"video_url": video, "audio_url": data_uri}),
    )
    .await;
    let out = fal_wait(&sub).await;
    let (_, _, bytes) = get_bytes(out["video"]["url"].as_str().expect("url")).await;
    let info = duration_of(&bytes, "mp4").await;
    assert!(
        (info.duration - 3.0).abs() < 0.3,
        "cut_off: {}",
        info.duration
    );

    let (code, sub) = fal_submit(
        &s,
        "fal-ai/kling-video/ai-avatar/v2/standard",
        json!({"image_url": format!("{}/__media/sample.png", s.base_url()), "audio_url": data_uri}),
    )
    .await;
    assert_eq!(code, 200, "{sub}");
    assert!(
        sub["status_url"]
            .as_str()
            .is_some_and(|u| u.contains("/fal-ai/kling-video/requests/"))
    );
    let out = fal_wait(&sub).await;
    assert!(
        out["duration"]
            .as_f64()
            .is_some_and(|d| (d - secs).abs() < 0.3),
        "{out}"
    );
    let (_, _, bytes) = get_bytes(out["video"]["url"].as_str().expect("url")).await;
    assert!(is_mp4(&bytes));

    // Audio that is not audio fails the run: COMPLETED, then an erroring result.
    let (_, sub) = fal_submit(
        &s,
        "fal-ai/sync-lipsync/v2",
        json!({"video_url": video, "audio_url": "data:audio/mpeg;base64,PGh0bWw+PC9odG1sPg=="}),
    )
    .await;
    let (code, v) = fal_get(sub["response_url"].as_str().expect("url")).await;
    assert_eq!(code, 422, "{v}");
}

#[tokio::test]
async fn fal_auth_and_contract_breaks() {
    let s = start(LatencyProfile::None, 1.0).await;
    let good = json!({"prompt": "x", "loras": [{"path": "https://example.test/a.safetensors", "scale": 1.0}]});
    let resp = http()
        .post(format!("{}/fal-ai/flux-lora", s.base_url()))
        .header("authorization", "Key wrong")
        .json(&good)
        .send()
        .await
        .expect("send");
    let (code, v) = body_json(resp).await;
    assert_eq!(code, 401);
    assert!(v["detail"].is_string());
    let resp = http()
        .post(format!("{}/fal-ai/flux-lora", s.base_url()))
        .header("authorization", format!("Bearer {FAL_KEY}"))
        .json(&good)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401, "Bearer is not Fal's scheme");

    let (code, v) = fal_submit(
        &s,
        "fal-ai/flux-lora",
        json!({"prompt": "x", "loras": [{"path": "https://example.test/a.safetensors\n", "scale": 1.0}]}),
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        v["detail"][0]["msg"]
            .as_str()
            .is_some_and(|m| m.contains("Failed to download file")),
        "{v}"
    );
    assert_eq!(v["detail"][0]["loc"], json!(["body", "loras", 0, "path"]));
    for (model, body) in [
        (
            "fal-ai/flux-lora",
            json!({"prompt": "x", "aspect_ratio": "16:9"}),
        ),
        ("fal-ai/flux-lora", json!({"loras": []})),
        (
            "fal-ai/flux-lora",
            json!({"prompt": "x", "image_size": "widescreen"}),
        ),
        (
            "fal-ai/kling-video/v2.1/standard/image-to-video",
            json!({"prompt": "x", "image_url": "https://example.test/a.png", "duration": 5}),
        ),
        (
            "fal-ai/kling-video/v2.1/standard/image-to-video",
            json!({"prompt": "x", "image_url": "   "}),
        ),
        (
            "fal-ai/sync-lipsync/v2",
            json!({"video_url": "https://example.test/v.mp4"}),
        ),
        (
            "fal-ai/sync-lipsync/v2",
            json!({"video_url": "https://example.test/v.mp4", "audio_url": "https://example.test/a.mp3", "model": "lipsync-9"}),
        ),
    ] {
        let (code, v) = fal_submit(&s, model, body.clone()).await;
        assert_eq!(code, 422, "{model} {body} -> {v}");
    }
    let (code, _) = fal_submit(&s, "fal-ai/not-a-model", json!({"prompt": "x"})).await;
    assert_eq!(code, 404);
    let (code, v) = fal_submit(&s, "fal-ai/flux-lora", good).await;
    assert_eq!(code, 200, "{v}");
    let st = stats(&s).await;
    assert_eq!(
        st["fal.submit"], 1,
        "only the valid submit created a job: {st}"
    );
}

#[tokio::test]
async fn fal_queue_cancel_and_stall() {
    // Realistic latency: a Flux job sits in the queue for 2 s, so it can be seen queued and cancelled.
    let s = start(LatencyProfile::Realistic, 1.0).await;
    let body = json!({"prompt": "x"});
    let (_, sub) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    let (code, v) = fal_get(sub["status_url"].as_str().expect("url")).await;
    assert_eq!((code, v["status"].as_str()), (202, Some("IN_QUEUE")));
    assert_eq!(v["queue_position"], 0);
    let (_, sub2) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    let (_, v) = fal_get(sub2["status_url"].as_str().expect("url")).await;
    assert_eq!(v["queue_position"], 1);
    let cancel = |url: String| async move {
        body_json(
            http()
                .put(url)
                .header("authorization", format!("Key {FAL_KEY}"))
                .send()
                .await
                .expect("cancel"),
        )
        .await
    };
    let (code, v) = cancel(sub["cancel_url"].as_str().expect("url").to_string()).await;
    assert_eq!(
        (code, v["status"].as_str()),
        (202, Some("CANCELLATION_REQUESTED"))
    );
    let (code, v) = cancel(sub["cancel_url"].as_str().expect("url").to_string()).await;
    assert_eq!(
        (code, v["status"].as_str()),
        (400, Some("ALREADY_COMPLETED"))
    );
    let (code, v) = cancel(format!(
        "{}/fal-ai/flux-lora/requests/nope/cancel",
        s.base_url()
    ))
    .await;
    assert_eq!((code, v["status"].as_str()), (404, Some("NOT_FOUND")));
    let (code, _) = fal_get(sub["response_url"].as_str().expect("url")).await;
    assert_eq!(code, 400, "a cancelled request has no result");

    // Stall: the next job never leaves IN_QUEUE, even with latency none.
    let s = start(LatencyProfile::None, 1.0).await;
    s.add_fault("fal.status=stallx1").expect("fault");
    let (_, stalled) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    let (_, fine) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    for _ in 0..3 {
        let (code, v) = fal_get(stalled["status_url"].as_str().expect("url")).await;
        assert_eq!((code, v["status"].as_str()), (202, Some("IN_QUEUE")));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, v) = fal_get(fine["status_url"].as_str().expect("url")).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("COMPLETED")));

    // Result fates: no output, run error.
    s.add_fault("fal.result=no_outputx1").expect("fault");
    s.add_fault("fal.result=errorx1").expect("fault");
    let (_, a) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    let (_, b) = fal_submit(&s, "fal-ai/flux-lora", body).await;
    let (code, v) = fal_get(a["response_url"].as_str().expect("url")).await;
    assert_eq!((code, v["images"].as_array().map(Vec::len)), (200, Some(0)));
    let (code, _) = fal_get(b["response_url"].as_str().expect("url")).await;
    assert_eq!(code, 500);
}

// ---------- Kling ----------

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn jwt(ak: &str, sk: &str, nbf_offset: i64, exp_offset: i64) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64(
        json!({"iss": ak, "exp": now + exp_offset, "nbf": now + nbf_offset})
            .to_string()
            .as_bytes(),
    );
    let sig = b64(&hmac_sha256(
        sk.as_bytes(),
        format!("{header}.{claims}").as_bytes(),
    ));
    format!("{header}.{claims}.{sig}")
}

fn good_jwt() -> String {
    jwt(KLING_AK, KLING_SK, -5, 1800)
}

async fn kling_post(s: &FakeServer, token: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}/v1/videos/image2video", s.base_url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("kling")
}

async fn kling_get(s: &FakeServer, id: &str) -> (u16, Value) {
    body_json(
        http()
            .get(format!("{}/v1/videos/image2video/{id}", s.base_url()))
            .bearer_auth(good_jwt())
            .send()
            .await
            .expect("kling get"),
    )
    .await
}

async fn sample_png_b64(s: &FakeServer) -> String {
    let (_, _, png) = get_bytes(&format!("{}/__media/sample.png", s.base_url())).await;
    base64::engine::general_purpose::STANDARD.encode(png)
}

#[tokio::test]
async fn kling_jwt_create_poll_external_id_and_duplicates() {
    let s = start(LatencyProfile::Fast, 1.0).await;
    let body = json!({
        "model_name": "kling-v2-1",
        "image": sample_png_b64(&s).await,
        "prompt": "subtle head movements",
        "negative_prompt": "blur",
        "mode": "std",
        "duration": "5",
        "external_task_id": "step-0001",
    });
    let (code, v) = body_json(kling_post(&s, &good_jwt(), &body).await).await;
    assert_eq!((code, v["code"].as_u64()), (200, Some(0)), "{v}");
    assert_eq!(v["data"]["task_status"], "submitted");
    assert_eq!(v["data"]["task_info"]["external_task_id"], "step-0001");
    let task_id = v["data"]["task_id"].as_str().expect("task_id").to_string();

    let deadline = Instant::now() + Duration::from_secs(30);
    let data = loop {
        let (code, v) = kling_get(&s, &task_id).await;
        assert_eq!(code, 200, "{v}");
        match v["data"]["task_status"].as_str() {
            Some("succeed") => break v["data"].clone(),
            Some("submitted" | "processing") => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let video = &data["task_result"]["videos"][0];
    assert_eq!(video["duration"], "5");
    let (code, ct, bytes) = get_bytes(video["url"].as_str().expect("url")).await;
    assert_eq!((code, ct.as_str()), (200, "video/mp4"));
    assert!(is_mp4(&bytes));

    // Query by our external id.
    let (code, v) = kling_get(&s, "step-0001").await;
    assert_eq!(
        (code, v["data"]["task_id"].as_str()),
        (200, Some(task_id.as_str()))
    );
    let (code, v) = kling_get(&s, "no-such-task").await;
    assert_eq!((code, v["code"].as_u64()), (404, Some(1203)));

    // Duplicate external_task_id: rejected by default, adopted with the dup_existing fault.
    let (code, v) = body_json(kling_post(&s, &good_jwt(), &body).await).await;
    assert_eq!((code, v["code"].as_u64()), (400, Some(1201)), "{v}");
    s.add_fault("kling.submit=dup_existingx1").expect("fault");
    let (code, v) = body_json(kling_post(&s, &good_jwt(), &body).await).await;
    assert_eq!(
        (code, v["data"]["task_id"].as_str()),
        (200, Some(task_id.as_str()))
    );
    let st = stats(&s).await;
    assert_eq!(st["kling.submit"], 1, "{st}");
    assert_eq!(st["kling.submit.kling-v2-1"], 1);

    // JWT problems.
    for (token, code) in [
        (jwt(KLING_AK, KLING_SK, -5, -10), 1004),
        (jwt(KLING_AK, KLING_SK, 600, 1800), 1003),
        (jwt(KLING_AK, "other-secret", -5, 1800), 1000),
        (jwt("other-access", KLING_SK, -5, 1800), 1000),
        ("not.a.jwt".to_string(), 1002),
    ] {
        let (status, v) = body_json(kling_post(&s, &token, &body).await).await;
        assert_eq!((status, v["code"].as_u64()), (401, Some(code)), "{v}");
    }
    let resp = http()
        .post(format!("{}/v1/videos/image2video", s.base_url()))
        .json(&body)
        .send()
        .await
        .expect("send");
    let (status, v) = body_json(resp).await;
    assert_eq!((status, v["code"].as_u64()), (401, Some(1001)));

    // Contract breaks.
    for bad in [
        json!({"image": "https://example.test/a.png", "duration": 5}),
        json!({"image": "https://example.test/a.png", "aspect_ratio": "16:9"}),
        json!({"image": "data:image/png;base64,AAAA"}),
        json!({"model_name": "kling-v2-1", "image": "https://example.test/a.png", "cfg_scale": 0.5}),
        json!({"image": "https://example.test/a.png", "external_task_id": "step-0001"}),
    ] {
        let (status, v) = body_json(kling_post(&s, &good_jwt(), &bad).await).await;
        assert_eq!(
            (status, v["code"].as_u64()),
            (400, Some(1201)),
            "{bad} -> {v}"
        );
    }
    assert_eq!(stats(&s).await["kling.submit"], 1);
}

/// A job's output is made while the job runs, as a real provider's is ready when the job is done: a four-minute
/// Kling task has its clip made long before it finishes.
#[tokio::test]
async fn a_job_output_is_made_while_the_job_runs() {
    let s = start(LatencyProfile::Realistic, 1.0).await;
    let body = json!({"model_name": "kling-v2-1", "image": sample_png_b64(&s).await,
                      "prompt": "subtle head movements", "mode": "std", "duration": "5"});
    let (code, v) = body_json(kling_post(&s, &good_jwt(), &body).await).await;
    assert_eq!((code, v["code"].as_u64()), (200, Some(0)), "{v}");
    let task_id = v["data"]["task_id"].as_str().expect("task_id").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats(&s).await["outputs.made"].as_u64().unwrap_or(0) < 1 {
        assert!(Instant::now() < deadline, "the clip was not made ahead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, v) = kling_get(&s, &task_id).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["task_status"], "submitted", "still queued: {v}");
}

#[tokio::test]
async fn kling_429_twice_then_success_and_status_faults() {
    let s = start(LatencyProfile::None, 1.0).await;
    s.add_fault("kling.submit=429x2").expect("fault");
    let body = json!({"image": "https://example.test/a.png", "duration": "5"});
    for _ in 0..2 {
        let (code, v) = body_json(kling_post(&s, &good_jwt(), &body).await).await;
        assert_eq!((code, v["code"].as_u64()), (429, Some(1302)));
    }
    let (code, v) = body_json(kling_post(&s, &good_jwt(), &body).await).await;
    assert_eq!(code, 200, "{v}");
    let st = stats(&s).await;
    assert_eq!(
        (
            st["kling.submit"].as_u64(),
            st["requests.kling.submit"].as_u64()
        ),
        (Some(1), Some(3))
    );

    s.add_fault("kling.submit=1303retry-after-date=5x1")
        .expect("fault");
    let resp = kling_post(&s, &good_jwt(), &body).await;
    let ra = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ra.ends_with(" GMT"), "HTTP-date Retry-After: {ra}");
    let (code, v) = body_json(resp).await;
    assert_eq!((code, v["code"].as_u64()), (429, Some(1303)));

    s.add_fault("kling.status=succeed_no_videosx1")
        .expect("fault");
    s.add_fault("kling.status=failedx1").expect("fault");
    s.add_fault("kling.status=stallx1").expect("fault");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, v) = body_json(kling_post(&s, &good_jwt(), &body).await).await;
        ids.push(v["data"]["task_id"].as_str().expect("id").to_string());
    }
    let (_, v) = kling_get(&s, &ids[0]).await;
    assert_eq!(v["data"]["task_status"], "succeed");
    assert_eq!(v["data"]["task_result"]["videos"], json!([]));
    let (_, v) = kling_get(&s, &ids[1]).await;
    assert_eq!(v["data"]["task_status"], "failed");
    assert!(
        v["data"]["task_status_msg"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let (_, v) = kling_get(&s, &ids[2]).await;
    assert_eq!(v["data"]["task_status"], "submitted");

    s.add_fault("kling.status=malformedx1").expect("fault");
    let resp = http()
        .get(format!("{}/v1/videos/image2video/{}", s.base_url(), ids[0]))
        .bearer_auth(good_jwt())
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 200);
    let bytes = resp.bytes().await.expect("body");
    assert!(
        serde_json::from_slice::<Value>(&bytes).is_err(),
        "body should be cut"
    );
}

// ---------- Sync ----------

async fn sync_post(s: &FakeServer, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut r = http()
        .post(format!("{}/v2/generate", s.base_url()))
        .header("x-api-key", SYNC_KEY)
        .json(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    r.send().await.expect("sync post")
}

async fn sync_get(s: &FakeServer, id: &str) -> (u16, Value) {
    body_json(
        http()
            .get(format!("{}/v2/generate/{id}", s.base_url()))
            .header("x-api-key", SYNC_KEY)
            .send()
            .await
            .expect("sync get"),
    )
    .await
}

fn sync_body(s: &FakeServer) -> Value {
    json!({
        "model": "lipsync-2",
        "input": [
            {"type": "video", "url": format!("{}/__media/sample.mp4", s.base_url())},
            {"type": "audio", "url": format!("{}/__media/sample.mp3", s.base_url())}
        ],
        "options": {"sync_mode": "cut_off", "output_format": "mp4"}
    })
}

#[tokio::test]
async fn sync_happy_path_idempotency_and_contract() {
    let s = start(LatencyProfile::Fast, 1.0).await;
    let body = sync_body(&s);
    let (code, created) = body_json(sync_post(&s, Some("step-42"), &body).await).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["status"], "PENDING");
    let id = created["id"].as_str().expect("id").to_string();

    // Same key + same body: same generation, no second job.
    let (code, again) = body_json(sync_post(&s, Some("step-42"), &body).await).await;
    assert_eq!((code, again["id"].as_str()), (201, Some(id.as_str())));
    // Same key, different body: conflict.
    let mut other = body.clone();
    other["options"]["sync_mode"] = json!("loop");
    let (code, _) = body_json(sync_post(&s, Some("step-42"), &other).await).await;
    assert_eq!(code, 409);
    let (code, v) = body_json(sync_post(&s, Some("bad key!"), &body).await).await;
    assert_eq!(
        (code, v["errorCode"].as_str()),
        (400, Some("INVALID_IDEMPOTENCY_KEY"))
    );
    let st = stats(&s).await;
    assert_eq!(
        (st["sync.submit"].as_u64(), st["sync.replay"].as_u64()),
        (Some(1), Some(1)),
        "{st}"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let (code, v) = sync_get(&s, &id).await;
        assert_eq!(code, 200);
        match v["status"].as_str() {
            Some("COMPLETED") => break v,
            Some("PENDING" | "PROCESSING") => {}
            other => panic!("unexpected {other:?}: {v}"),
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let url = done["outputUrl"].as_str().expect("outputUrl").to_string();
    assert_eq!(done["outputMediaUrl"], done["outputUrl"]);
    assert!(
        done["outputDuration"]
            .as_f64()
            .is_some_and(|d| (d - 3.0).abs() < 0.1),
        "{done}"
    );
    let (code, ct, bytes) = get_bytes(&url).await;
    assert_eq!((code, ct.as_str()), (200, "video/mp4"));
    assert!(is_mp4(&bytes));
    let bad_token = format!("{}?token=wrong", url.split('?').next().unwrap_or(""));
    assert_eq!(get_bytes(&bad_token).await.0, 403);

    // Long poll on a finished job answers at once, with the documented headers.
    let resp = http()
        .get(format!(
            "{}/v2/generate/{id}?wait=true&timeout=5",
            s.base_url()
        ))
        .header("x-api-key", SYNC_KEY)
        .send()
        .await
        .expect("wait");
    assert_eq!(
        resp.headers()
            .get("x-sync-wait-mode")
            .and_then(|v| v.to_str().ok()),
        Some("long_poll")
    );
    let resp = http()
        .get(format!(
            "{}/v2/generate/{id}?wait=true&timeout=11",
            s.base_url()
        ))
        .header("x-api-key", SYNC_KEY)
        .send()
        .await
        .expect("wait");
    assert_eq!(resp.status().as_u16(), 400);

    // Auth and contract.
    let resp = http()
        .post(format!("{}/v2/generate", s.base_url()))
        .header("x-api-key", "nope")
        .json(&body)
        .send()
        .await
        .expect("send");
    let (code, v) = body_json(resp).await;
    assert_eq!((code, v["statusCode"].as_u64()), (401, Some(401)));
    let mut unknown = body.clone();
    unknown["options"]["synergize"] = json!(true);
    let (code, v) = body_json(sync_post(&s, None, &unknown).await).await;
    assert_eq!(code, 422);
    assert_eq!(v["message"], "property synergize does not exist");
    let mut blank = body.clone();
    blank["input"][1]["url"] = json!("  ");
    assert_eq!(sync_post(&s, None, &blank).await.status().as_u16(), 422);
    let (code, _) = sync_get(&s, "00000000-0000-0000-0000-000000000000").await;
    assert_eq!(code, 404);
    assert_eq!(stats(&s).await["sync.submit"], 1);
}

#[tokio::test]
async fn sync_terminal_statuses_and_dropped_submit() {
    let s = start(LatencyProfile::None, 1.0).await;
    let body = sync_body(&s);
    // Outcome fates queue up (one per job); the presentation fate is added just before its job.
    s.add_fault("sync.status=REJECTEDx1").expect("fault");
    s.add_fault("sync.status=COMPLETED_no_urlx1")
        .expect("fault");
    s.add_fault("sync.status=stallx1").expect("fault");
    let mut ids = Vec::new();
    for i in 0..5 {
        if i == 3 {
            s.add_fault("sync.status=url_objectx1").expect("fault");
        }
        let (code, v) = body_json(sync_post(&s, None, &body).await).await;
        assert_eq!(code, 201);
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    // Fates stick to their job: poll twice.
    for _ in 0..2 {
        let (_, v) = sync_get(&s, &ids[0]).await;
        assert_eq!(v["status"], "REJECTED");
        assert!(v["error"].is_string());
    }
    let (_, v) = sync_get(&s, &ids[1]).await;
    assert_eq!(v["status"], "COMPLETED");
    assert!(
        v["outputUrl"].is_null() && v["outputMediaUrl"].is_null(),
        "{v}"
    );
    let (_, v) = sync_get(&s, &ids[2]).await;
    assert_eq!(v["status"], "PENDING");
    let (_, v) = sync_get(&s, &ids[3]).await;
    assert_eq!(v["outputUrl"], json!({}));
    assert!(v["outputMediaUrl"].is_string());
    let (_, v) = sync_get(&s, &ids[4]).await;
    assert_eq!(v["status"], "COMPLETED");
    assert!(v["outputUrl"].is_string());

    // Accepted, then the connection drops: the client sees no answer, the fake has the job; replaying the same
    // Idempotency-Key adopts it without a second submit.
    s.reset();
    s.add_fault("sync.submit=dropx1").expect("fault");
    let sent = http()
        .post(format!("{}/v2/generate", s.base_url()))
        .header("x-api-key", SYNC_KEY)
        .header("Idempotency-Key", "step-drop")
        .json(&body)
        .send()
        .await;
    assert!(sent.is_err(), "the dropped submit must not answer");
    assert_eq!(stats(&s).await["sync.submit"], 1);
    let (code, v) = body_json(sync_post(&s, Some("step-drop"), &body).await).await;
    assert_eq!(code, 201, "{v}");
    let st = stats(&s).await;
    assert_eq!(
        (st["sync.submit"].as_u64(), st["sync.replay"].as_u64()),
        (Some(1), Some(1))
    );

    s.add_fault("sync.submit=outcome_unknownx1").expect("fault");
    let (code, v) = body_json(sync_post(&s, Some("step-unknown"), &body).await).await;
    assert_eq!(
        (code, v["errorCode"].as_str()),
        (409, Some("IDEMPOTENCY_OUTCOME_UNKNOWN"))
    );
    let gen_id = v["generationId"].as_str().expect("generationId");
    assert_eq!(sync_get(&s, gen_id).await.0, 200);

    s.add_fault("sync.submit=audio_too_longx1").expect("fault");
    let (code, _) = body_json(sync_post(&s, None, &body).await).await;
    assert_eq!(code, 402);
    s.add_fault("sync.submit=429x1").expect("fault");
    let (code, v) = body_json(sync_post(&s, None, &body).await).await;
    assert_eq!(
        (code, v["errorCode"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
}

#[tokio::test]
async fn sync_upload_creates_a_job() {
    let s = start(LatencyProfile::None, 1.0).await;
    let (_, _, mp4) = get_bytes(&format!("{}/__media/sample.mp4", s.base_url())).await;
    let (_, _, mp3) = get_bytes(&format!("{}/__media/sample.mp3", s.base_url())).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "video",
            reqwest::multipart::Part::bytes(mp4).file_name("v.mp4"),
        )
        .part(
            "audio",
            reqwest::multipart::Part::bytes(mp3).file_name("a.mp3"),
        )
        .text("model", "lipsync-2")
        .text("options", r#"{"sync_mode":"bounce"}"#);
    let resp = http()
        .post(format!("{}/v2/generate/upload", s.base_url()))
        .header("x-api-key", SYNC_KEY)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let (code, v) = body_json(resp).await;
    assert_eq!(code, 201, "{v}");
    // The create call answers as Sync's does, before any output exists: it never waits for the clip to be made
    // (even when the latency profile has the generation done at once), so a busy sandbox still answers submits.
    assert_eq!(
        (v["status"].as_str(), &v["outputUrl"]),
        (Some("PENDING"), &Value::Null),
        "{v}"
    );
    let (_, v) = sync_get(&s, v["id"].as_str().expect("id")).await;
    assert_eq!(v["status"], "COMPLETED");
    assert!(
        v["outputDuration"]
            .as_f64()
            .is_some_and(|d| (d - 3.0).abs() < 0.1),
        "{v}"
    );
    assert_eq!(stats(&s).await["sync.submit"], 1);
}

// ---------- Admin, media, config ----------

#[tokio::test]
async fn stats_reset_faults_endpoint_and_media_faults() {
    let s = start(LatencyProfile::None, 1.0).await;
    let st = stats(&s).await;
    for key in [
        "elevenlabs.tts",
        "elevenlabs.voices",
        "fal.submit",
        "fal.status",
        "fal.result",
        "fal.cancel",
        "kling.submit",
        "kling.status",
        "sync.submit",
        "sync.status",
    ] {
        assert_eq!(st[key], 0, "{key} in {st}");
    }
    let (_, sub) = fal_submit(&s, "fal-ai/flux-lora", json!({"prompt": "x"})).await;
    assert_eq!(stats(&s).await["fal.submit"], 1);
    let resp = http()
        .post(format!("{}/__reset", s.base_url()))
        .send()
        .await
        .expect("reset");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(stats(&s).await["fal.submit"], 0);
    let (code, _) = fal_get(sub["status_url"].as_str().expect("url")).await;
    assert_eq!(code, 404, "jobs are forgotten");

    let post = |v: Value| {
        let url = format!("{}/__faults", s.base_url());
        async move {
            http()
                .post(url)
                .json(&v)
                .send()
                .await
                .expect("faults")
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(json!(["kling.submit=nonsense"])).await, 400);
    assert_eq!(post(json!(["media=truncatex1", "media=htmlx1"])).await, 200);
    let (_, listed) = body_json(
        http()
            .get(format!("{}/__faults", s.base_url()))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(listed[0]["remaining"], 1);

    let url = format!("{}/__media/sample.mp4", s.base_url());
    let resp = http().get(&url).send().await.expect("get");
    let declared = resp.content_length();
    let got = resp.bytes().await;
    match got {
        Err(_) => {}
        Ok(b) => assert!(
            declared.is_some_and(|n| (b.len() as u64) < n),
            "truncated download"
        ),
    }
    let (code, ct, _) = get_bytes(&url).await;
    assert_eq!((code, ct.as_str()), (200, "text/html; charset=utf-8"));
    let (code, ct, bytes) = get_bytes(&url).await;
    assert_eq!((code, ct.as_str()), (200, "video/mp4"));
    assert!(is_mp4(&bytes));
    let resp = http()
        .get(&url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(resp.bytes().await.expect("bytes").len(), 100);
    assert_eq!(
        get_bytes(&format!("{}/__media/missing.mp4", s.base_url()))
            .await
            .0,
        404
    );
    assert!(
        stats(&s).await["media.get"]
            .as_u64()
            .is_some_and(|n| n >= 4)
    );
}

#[tokio::test]
async fn bad_specs_and_settings_are_refused() {
    for bad in [
        "kling.submit",
        "kling.tts=500",
        "sync.submit=REJECTED",
        "fal.submit=1303",
        "media=bogus",
        "x.y=1",
    ] {
        assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
    }
    let cfg = FakeConfig::default().with_latency(LatencyProfile::Fast, -1.0);
    assert!(fakes::spawn(cfg).await.is_err());
    let s = start(LatencyProfile::None, 1.0).await;
    assert!(s.add_fault("fal.status=stall").is_ok());
    assert!(s.add_fault("fal.status=").is_err());
}

#[tokio::test]
async fn latency_scales_with_time_scale() {
    let cfg = FakeConfig::default().with_latency(LatencyProfile::Realistic, 0.01);
    let k = cfg.job_latency(fakes::JobKind::KlingImageToVideo {
        seconds: 5,
        pro: false,
    });
    assert_eq!(k.total(), Duration::from_millis(2400));
    let none = FakeConfig::default().with_latency(LatencyProfile::None, 1.0);
    assert_eq!(
        none.job_latency(fakes::JobKind::FalImage).total(),
        Duration::ZERO
    );
}

#[derive(clap::Parser)]
struct TestCli {
    #[command(flatten)]
    args: fakes::FakesArgs,
}

#[test]
fn cli_arguments_parse_and_reject_bad_faults() {
    use clap::Parser as _;
    let cli = TestCli::try_parse_from([
        "devatar",
        "--latency",
        "realistic",
        "--time-scale",
        "0.1",
        "--fault",
        "kling.submit=429x2",
        "--fault",
        "sync.status=REJECTED",
    ])
    .expect("parse");
    assert_eq!(cli.args.latency, LatencyProfile::Realistic);
    assert_eq!(cli.args.faults.len(), 2);
    assert_eq!(cli.args.bind.to_string(), "127.0.0.1:8090");
    let cfg = FakeConfig::from_args(&cli.args, &devatar::config::Config::default().cloud)
        .expect("config");
    assert_eq!(cfg.time_scale, 0.1);
    assert!(TestCli::try_parse_from(["devatar", "--fault", "kling.submit=teapot"]).is_err());
    assert!(TestCli::try_parse_from(["devatar", "--latency", "glacial"]).is_err());
}

#[tokio::test]
async fn transport_faults_slow_html_alias_and_regress() {
    let s = start(LatencyProfile::None, 1.0).await;
    let body = json!({"prompt": "x"});

    s.add_fault("fal.submit=slow=1x1").expect("fault");
    let t = Instant::now();
    let (code, _) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    assert_eq!(code, 200);
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "answered after {:?}",
        t.elapsed()
    );

    s.add_fault("fal.submit=html502x1").expect("fault");
    let resp = http()
        .post(format!("{}/fal-ai/flux-lora", s.base_url()))
        .header("authorization", format!("Key {FAL_KEY}"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 502);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/html"))
    );

    s.add_fault("fal.submit=aliasx1").expect("fault");
    let (_, v) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    assert!(
        v.get("request_id").is_none() && v["requestId"].is_string(),
        "{v}"
    );

    s.add_fault("fal.status=trickle=1x1").expect("fault");
    let (_, v) = fal_submit(&s, "fal-ai/flux-lora", body.clone()).await;
    let t = Instant::now();
    let (code, v) = fal_get(v["status_url"].as_str().expect("url")).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("COMPLETED")));
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "trickled over {:?}",
        t.elapsed()
    );

    // Status going back once, and updated_at before created_at (case 28).
    s.add_fault("kling.status=regressx1").expect("fault");
    let (_, v) = body_json(
        kling_post(
            &s,
            &good_jwt(),
            &json!({"image": "https://example.test/a.png"}),
        )
        .await,
    )
    .await;
    let id = v["data"]["task_id"].as_str().expect("id").to_string();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (_, v) = kling_get(&s, &id).await;
        seen.push(v["data"]["task_status"].as_str().unwrap_or("").to_string());
        assert!(v["data"]["updated_at"].as_u64() < v["data"]["created_at"].as_u64());
    }
    assert_eq!(seen, ["succeed", "processing", "succeed"]);

    s.add_fault("sync.status=output_urlx1").expect("fault");
    let (_, v) = body_json(sync_post(&s, None, &sync_body(&s)).await).await;
    let (_, v) = sync_get(&s, v["id"].as_str().expect("id")).await;
    assert!(
        v["output_url"].is_string() && v.get("outputUrl").is_none(),
        "{v}"
    );
}
