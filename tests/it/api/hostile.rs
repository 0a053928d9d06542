//! What a hostile client sent (issue 17), item by item, against the in-process router.

use crate::common::app::TestApp;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    devatar::net::client_builder().build().unwrap()
}

/// Uploads `bytes` as `kind`; returns the status and the JSON body (null when there is none).
pub(crate) async fn upload(app: &TestApp, token: &str, kind: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = Form::new()
        .text("kind", kind.to_string())
        .part("file", Part::bytes(bytes).file_name("upload.bin"));
    let r = client()
        .post(app.url("/api/assets"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A grayscale PNG of `width`×`height` whose IDAT holds `idat` as given.
fn png_with_idat(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", idat));
    out.extend(chunk(b"IEND", b""));
    out
}

/// A real grayscale PNG of `width`×`height` (all black), encoded by the `png` crate.
pub(super) fn encoded_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Grayscale);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(&vec![0u8; (width * height) as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

/// The data of the first IDAT chunk of `png`.
fn idat_of(png: &[u8]) -> Vec<u8> {
    let at = png.windows(4).position(|w| w == b"IDAT").unwrap();
    let len = u32::from_be_bytes(png[at - 4..at].try_into().unwrap()) as usize;
    png[at + 4..at + 4 + len].to_vec()
}

/// Item 3: undecodable images were accepted as headshots (201 with null width/height) and failed later in the
/// IMAGE step. Now each is refused with the reason; a small real PNG is stored with its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_or_oversized_images_are_refused_at_upload_with_the_reason() {
    let app = TestApp::start().await;
    let token = app.token().await;

    let (status, body) = upload(&app, &token, "headshot", png_with_idat(60000, 60000, b"x")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "file");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("60000×60000") && msg.contains("megapixels"),
        "{msg}"
    );

    // A zlib bomb: 49 megapixels of zeros in about 50 kB.
    let bomb = encoded_png(7000, 7000);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let (status, body) = upload(&app, &token, "background", bomb).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("7000×7000"),
        "{body}"
    );

    // A PNG whose image data is not zlib at all, and one whose data stops halfway.
    let (status, body) = upload(
        &app,
        &token,
        "headshot",
        png_with_idat(100, 100, &[0x78, 0x9c, 0xff, 0xff, 0xff]),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be decoded"),
        "{body}"
    );
    let data = idat_of(&encoded_png(100, 100));
    let truncated = png_with_idat(100, 100, &data[..data.len() / 2]);
    let (status, body) = upload(&app, &token, "headshot", truncated).await;
    assert_eq!(status, 415, "{body}");

    let mut html = vec![0xFF, 0xD8, 0xFF];
    html.extend_from_slice(b"<html><body><script>alert(1)</script></body></html>\n");
    let (status, body) = upload(&app, &token, "headshot", html).await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be decoded"),
        "{body}"
    );

    // Small is fine: a 3×2 PNG is stored with its dimensions.
    let (status, asset) = upload(&app, &token, "headshot", encoded_png(3, 2)).await;
    assert_eq!(status, 201, "{asset}");
    assert_eq!(
        (asset["width"].as_i64(), asset["height"].as_i64()),
        (Some(3), Some(2)),
        "{asset}"
    );
}

/// Sends `body` as JSON with `method` to `path`; returns the status and the JSON answer.
async fn send(app: &TestApp, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = client()
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Item 4: `PUT /api/identities/{id}` with an unknown `headshotAssetId` answered 500 (foreign key). Every route
/// that takes another record's id answers 422 naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_references_are_422_naming_the_field_on_every_route() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let identity = json!({"name": "refs", "displayName": "Refs", "triggerWord": "TOK_REFS"});
    let (status, created) = send(&app, &token, "POST", "/api/identities", identity).await;
    assert_eq!(status, 201, "{created}");
    let iid = created["id"].as_str().unwrap();
    let missing = json!({"headshotAssetId": "0190aaaa-0000-7000-8000-000000000000"});
    let (status, err) = send(
        &app,
        &token,
        "PUT",
        &format!("/api/identities/{iid}"),
        missing.clone(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("headshotAssetId")),
        "{err}"
    );
    let mut bad_create = missing.clone();
    bad_create.as_object_mut().unwrap().extend(
        json!({"name": "refs2", "displayName": "Refs", "triggerWord": "TOK_REFS2"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let (status, err) = send(&app, &token, "POST", "/api/identities", bad_create).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("headshotAssetId")),
        "{err}"
    );

    let (status, err) = send(
        &app,
        &token,
        "POST",
        "/api/projects",
        json!({"name": "P", "defaultIdentityId": "nope"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("defaultIdentityId")),
        "{err}"
    );
    let (_, project) = send(&app, &token, "POST", "/api/projects", json!({"name": "P"})).await;
    let pid = project["id"].as_str().unwrap();
    let (status, err) = send(
        &app,
        &token,
        "PUT",
        &format!("/api/projects/{pid}"),
        json!({"defaultIdentityId": "nope"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("defaultIdentityId")),
        "{err}"
    );

    let scene = json!({"projectId": pid, "name": "s", "dialogue": "Hi.", "identityId": "nope"});
    let (status, err) = send(&app, &token, "POST", "/api/scenes", scene).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("identityId")),
        "{err}"
    );
    let (status, scene) = send(
        &app,
        &token,
        "POST",
        "/api/scenes",
        json!({"projectId": pid, "name": "s", "dialogue": "Hi."}),
    )
    .await;
    assert_eq!(status, 201, "{scene}");
    let sid = scene["id"].as_str().unwrap();
    for (field, value) in [("identityId", "nope"), ("headshotAssetId", "nope")] {
        let (status, err) = send(
            &app,
            &token,
            "PUT",
            &format!("/api/scenes/{sid}"),
            json!({field: value}),
        )
        .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{err}"
        );
    }
}

/// Item 7: an over-limit JSON body answered 400 "Failed to buffer…", multipart without a boundary a plain-text
/// 400, and 405 had no body. Each is now the JSON error shape with the right status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_use_the_json_error_shape() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let http = client();
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20));
    // The server answers 413 before reading the whole body and then closes the connection: the client must not
    // pool it, or the next request races that close (hyper "IncompleteMessage").
    let r = http
        .post(app.url("/api/projects"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("connection", "close")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large", "{body}");

    let r = http
        .post(app.url("/api/assets"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("boundary"),
        "{body}"
    );

    let r = http
        .delete(app.url("/api/identities"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers().get("allow").is_some(), "{:?}", r.headers());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
}

/// Item 10: a private webhook URL was accepted at registration and refused only at delivery; now it is a 422
/// naming `url` (the guard's address rule, here without DEVATAR_ALLOW_PRIVATE_URLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_webhook_urls_are_refused_at_registration() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let (_, project) = send(
        &app,
        &token,
        "POST",
        "/api/projects",
        json!({"name": "Hooks"}),
    )
    .await;
    let pid = project["id"].as_str().unwrap();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest",
        "http://[64:ff9b::a00:1]/hook",
        "http://[2002:c0a8:101::1]/hook",
        "http://localhost:9/hook",
    ] {
        let (status, err) = send(
            &app,
            &token,
            "PUT",
            &format!("/api/projects/{pid}/webhook"),
            json!({"url": url}),
        )
        .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("url")),
            "{url}: {err}"
        );
    }
}

/// Logs in with `password`, the request seeming to come from `forwarded` (an `X-Forwarded-For` value).
async fn login(app: &TestApp, password: &str, forwarded: &str) -> u16 {
    client()
        .post(app.url("/api/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Item 11: after 10 failures the right password also got 429 for 60 s, so anyone could lock the admin out.
/// Now failures only slow the address down; the right password still logs in. With a trusted proxy header,
/// the client's own address is paced, not the proxy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_slow_down_but_never_lock_out_the_right_one() {
    use crate::common::app::PASSWORD;
    let app = TestApp::start().await;
    for _ in 0..10 {
        assert_eq!(login(&app, "wrong", "203.0.113.7").await, 401);
    }
    assert_eq!(login(&app, PASSWORD, "203.0.113.7").await, 200);

    let proxied = TestApp::builder()
        .env("DEVATAR_TRUSTED_PROXY_HEADER", "X-Forwarded-For")
        .start()
        .await;
    for _ in 0..11 {
        assert_eq!(login(&proxied, "wrong", "203.0.113.7").await, 401);
    }
    // Another client behind the same proxy is not slowed by the first one's failures.
    let started = std::time::Instant::now();
    assert_eq!(login(&proxied, PASSWORD, "198.51.100.9").await, 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Item 1: a LoRA upload reports its inspection (family, compatibility…) with the asset; compatibility is
/// reported, not enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lora_upload_reports_its_inspection() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let lora = crate::common::cloud::flux_lora("TOK_DEVEN", 16);
    let (status, asset) = upload(&app, &token, "lora", lora).await;
    assert_eq!(status, 201, "{asset}");
    assert!(
        asset["objectKey"]
            .as_str()
            .unwrap()
            .ends_with(".safetensors"),
        "{asset}"
    );
    let report = &asset["lora"];
    assert_eq!(
        (
            report["family"].as_str(),
            report["compatible"].as_bool(),
            report["rank"].as_u64()
        ),
        (Some("flux"), Some(true), Some(16)),
        "{asset}"
    );
    // Not a Flux LoRA: stored all the same, and the report says why it cannot be used.
    let sdxl = crate::common::safetensors::safetensors(
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
        ],
        None,
    );
    let (status, asset) = upload(&app, &token, "lora", sdxl).await;
    assert_eq!(status, 201, "{asset}");
    assert_eq!(asset["lora"]["compatible"], false, "{asset}");
    assert!(
        !asset["lora"]["errors"].as_array().unwrap().is_empty(),
        "{asset}"
    );
}

/// Item 8 (in part): `loraScale` was declared an object and required on create; operations with a body did not
/// document 400/413/415; a JSON array was accepted in place of an object (`[[]]` to reorder → 204).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_declares_lora_scale_and_body_errors_and_arrays_are_not_objects() {
    let app = TestApp::start().await;
    let token = app.token().await;
    let doc: Value = client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let input = &doc["components"]["schemas"]["IdentityInput"];
    let required = input["required"].as_array().cloned().unwrap_or_default();
    assert!(!required.contains(&json!("loraScale")), "{input}");
    let scale = input["properties"]["loraScale"].to_string();
    assert!(
        scale.contains("\"auto\"") && scale.contains("number"),
        "{scale}"
    );
    let view = doc["components"]["schemas"]["IdentityView"]["properties"]["loraScale"].to_string();
    assert!(view.contains("\"auto\""), "{view}");
    for (path, method) in [
        ("/api/identities", "post"),
        ("/api/assets", "post"),
        ("/api/projects/{id}/scenes/reorder", "post"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        for code in ["400", "413", "415", "422"] {
            assert!(
                responses.get(code).is_some(),
                "{method} {path} lacks {code}: {responses}"
            );
        }
    }

    let (_, project) = send(
        &app,
        &token,
        "POST",
        "/api/projects",
        json!({"name": "Arrays"}),
    )
    .await;
    let pid = project["id"].as_str().unwrap();
    let (status, err) = send(
        &app,
        &token,
        "POST",
        &format!("/api/projects/{pid}/scenes/reorder"),
        json!([[]]),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object"),
        "{err}"
    );
    let (status, _) = send(
        &app,
        &token,
        "POST",
        "/api/identities",
        json!(["a", "b", "c"]),
    )
    .await;
    assert_eq!(status, 422);
}
