//! The sandbox learns faces, over real HTTP in process: a LoRA mapped to a person's photos makes the fake Flux
//! return that person (per seed, at the requested size), `identity-drift:N` swaps in somebody else, and fake
//! Kling and Sync clips keep the face of their input. Faces are checked with the face engine and the real test
//! photos (Eileen Collins, the astronaut; Grace Hopper).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use devatar::face::{self, Embedding, FaceBox, FaceSettings};
use devatar::fakes::{self, FakeConfig, FakeKeys, FakeServer, LatencyProfile, LoraFace};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const KEY: &str = "fal-id:fal-secret";
const LORA: &str = "https://loras.test/eileen.safetensors";

fn photo(name: &str) -> PathBuf {
    let path = Path::new("/usr/local/share/devatar/test-photos").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `bash scripts/install-deps.sh --test`",
        path.display()
    );
    path
}

/// A sandbox whose LoRA stands for the astronaut, with Grace Hopper as the other face.
async fn sandbox() -> FakeServer {
    let cfg = FakeConfig::default()
        .with_keys(FakeKeys {
            fal: Some(KEY.into()),
            ..FakeKeys::default()
        })
        .with_latency(LatencyProfile::None, 1.0)
        .with_faces(
            vec![LoraFace::new(LORA, vec![photo("astronaut.png")])],
            vec![photo("grace_hopper.jpg")],
        );
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

async fn post(url: &str, body: &Value) -> Value {
    let resp = http()
        .post(url)
        .header("authorization", format!("Key {KEY}"))
        .json(body)
        .send()
        .await
        .expect("post");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.expect("json")
}

async fn get(url: &str) -> reqwest::Response {
    http()
        .get(url)
        .header("authorization", format!("Key {KEY}"))
        .send()
        .await
        .expect("get")
}

/// Submits a Fal job, waits for it and returns the bytes at `pointer` in its result.
async fn fal_run(s: &FakeServer, model: &str, body: Value, pointer: &str) -> Vec<u8> {
    let sub = post(&format!("{}/{model}", s.base_url()), &body).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = get(sub["status_url"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        if v["status"] == "COMPLETED" {
            break;
        }
        assert!(Instant::now() < deadline, "the job did not complete: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let result: Value = get(sub["response_url"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let url = result
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{result}"));
    get(url).await.bytes().await.unwrap().to_vec()
}

async fn flux(s: &FakeServer, lora: &str, seed: u64, size: Value) -> Vec<u8> {
    let body = json!({"prompt": "TOK a portrait", "loras": [{"path": lora, "scale": 1.0}], "image_size": size,
                      "seed": seed, "output_format": "png", "num_images": 1});
    fal_run(s, "fal-ai/flux-lora", body, "/images/0/url").await
}

/// The one face in an image file: its box, the image's size and its embedding.
async fn one_face(path: &Path) -> (FaceBox, (u32, u32), Embedding) {
    let engine = face::load_engine(&FaceSettings::default())
        .await
        .expect("face models");
    let photo = face::open_photo(path.to_path_buf()).await.unwrap();
    let found = face::analyse(engine, photo).await.unwrap();
    assert_eq!(
        found.faces.len(),
        1,
        "{}: {:?}",
        path.display(),
        found.faces
    );
    let f = &found.faces[0];
    (f.bbox, (found.width, found.height), f.embedding.clone())
}

async fn face_of_bytes(dir: &Path, name: &str, bytes: &[u8]) -> (FaceBox, (u32, u32), Embedding) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    one_face(&path).await
}

/// The frame in the middle of a clip, as PNG.
fn middle_frame(dir: &Path, name: &str, clip: &[u8]) -> PathBuf {
    let input = dir.join(format!("{name}.mp4"));
    std::fs::write(&input, clip).unwrap();
    let out = dir.join(format!("{name}.png"));
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-ss", "2.5", "-i"])
        .arg(&input)
        .args(["-frames:v", "1"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(ok.success());
    out
}

const SAME: f64 = devatar::face::DEFAULT_THRESHOLD;

/// The embeddings of the two test people (Eileen Collins, Grace Hopper), computed once for every test.
async fn people() -> &'static (Embedding, Embedding) {
    static PEOPLE: tokio::sync::OnceCell<(Embedding, Embedding)> =
        tokio::sync::OnceCell::const_new();
    PEOPLE
        .get_or_init(|| async {
            let eileen = one_face(&photo("astronaut.png")).await.2;
            (eileen, one_face(&photo("grace_hopper.jpg")).await.2)
        })
        .await
}

#[tokio::test]
async fn a_mapped_lora_returns_its_person_cropped_per_seed_at_the_requested_size() {
    let s = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let (eileen, grace) = people().await;
    let one = flux(&s, LORA, 1, json!("landscape_16_9")).await;
    let (box1, size, face1) = face_of_bytes(dir.path(), "one.png", &one).await;
    assert_eq!(size, (1024, 576), "the requested image_size");
    assert!(face1.distance(eileen) < SAME, "{}", face1.distance(eileen));
    assert!(face1.distance(grace) > SAME, "{}", face1.distance(grace));
    let two = flux(&s, LORA, 2, json!("landscape_16_9")).await;
    let (box2, _, face2) = face_of_bytes(dir.path(), "two.png", &two).await;
    assert!(face2.distance(eileen) < SAME);
    assert_ne!(box1, box2, "another seed, another crop");
    assert_eq!(
        one,
        flux(&s, LORA, 1, json!("landscape_16_9")).await,
        "a seed is deterministic"
    );
    let square = flux(&s, LORA, 1, json!({"width": 512, "height": 512})).await;
    assert_eq!(
        face_of_bytes(dir.path(), "sq.png", &square).await.1,
        (512, 512)
    );

    // An unmapped LoRA still gets a test card (no face).
    let card = flux(
        &s,
        "https://loras.test/nobody.safetensors",
        1,
        json!("square"),
    )
    .await;
    let path = dir.path().join("card.png");
    std::fs::write(&path, card).unwrap();
    let engine = face::load_engine(&FaceSettings::default()).await.unwrap();
    let found = face::analyse(engine, face::open_photo(path).await.unwrap())
        .await
        .unwrap();
    assert!(found.faces.is_empty());
}

#[tokio::test]
async fn identity_drift_shows_somebody_else_for_n_images_and_faces_map_by_content_hash() {
    let s = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let (eileen, grace) = people().await;
    let faults = post(
        &format!("{}/__faults", s.base_url()),
        &json!(["identity-drift:1"]),
    )
    .await;
    assert_eq!(faults["ok"], true);
    let drifted = flux(&s, LORA, 5, json!("landscape_16_9")).await;
    let (_, _, b) = face_of_bytes(dir.path(), "b.png", &drifted).await;
    assert!(
        b.distance(grace) < SAME && b.distance(eileen) > SAME,
        "drifted to the other face"
    );
    let back = flux(&s, LORA, 5, json!("landscape_16_9")).await;
    let (_, _, a) = face_of_bytes(dir.path(), "a.png", &back).await;
    assert!(a.distance(eileen) < SAME, "the drift lasted one image");

    // A LoRA given by the SHA-256 of its content (here the sandbox's own sample file stands in for one).
    let lora_url = format!("{}/__media/sample.mp3", s.base_url());
    let content = get(&lora_url).await.bytes().await.unwrap();
    let sha: String = Sha256::digest(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let spec = format!("{sha}={}", photo("grace_hopper.jpg").display());
    let known = post(
        &format!("{}/__faces", s.base_url()),
        &json!({"loraFaces": [spec], "append": true}),
    )
    .await;
    assert_eq!(known["loras"].as_array().map(Vec::len), Some(2), "{known}");
    let hashed = flux(&s, &lora_url, 9, json!("square_hd")).await;
    let (_, _, g) = face_of_bytes(dir.path(), "g.png", &hashed).await;
    assert!(g.distance(grace) < SAME);
}

#[tokio::test]
async fn kling_and_sync_clips_keep_the_face_of_their_input() {
    let s = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let still = flux(&s, LORA, 3, json!("landscape_16_9")).await;
    let (_, _, face) = face_of_bytes(dir.path(), "still.png", &still).await;
    let data = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&still)
    );
    let body = json!({"prompt": "a slow push-in", "image_url": data, "duration": "5"});
    let clip = fal_run(
        &s,
        "fal-ai/kling-video/v2.1/standard/image-to-video",
        body,
        "/video/url",
    )
    .await;
    let (_, _, kling) = one_face(&middle_frame(dir.path(), "kling", &clip)).await;
    assert!(kling.distance(&face) < SAME, "{}", kling.distance(&face));

    let video = format!(
        "data:video/mp4;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&clip)
    );
    let audio = format!("{}/__media/sample.mp3", s.base_url());
    let body = json!({"video_url": video, "audio_url": audio, "sync_mode": "loop"});
    let synced = fal_run(&s, "fal-ai/sync-lipsync/v2", body, "/video/url").await;
    let (_, _, sync) = one_face(&middle_frame(dir.path(), "sync", &synced)).await;
    assert!(sync.distance(&face) < SAME, "{}", sync.distance(&face));
}

#[derive(clap::Parser)]
struct TestCli {
    #[command(flatten)]
    args: fakes::FakesArgs,
}

#[test]
fn the_face_flags_parse_into_the_config() {
    use clap::Parser as _;
    let lora = format!("{LORA}?X-Sig=a=b=/p/one.jpg,/p/two.png");
    let cli = TestCli::try_parse_from([
        "devatar",
        "--lora-face",
        &lora,
        "--other-face",
        "/p/stranger.jpg",
        "--fault",
        "identity-drift:2",
    ])
    .expect("parse");
    let cfg = FakeConfig::from_args(&cli.args, &devatar::config::Config::default().cloud)
        .expect("config");
    assert_eq!(cfg.lora_faces[0].lora, format!("{LORA}?X-Sig=a=b"));
    assert_eq!(cfg.lora_faces[0].photos.len(), 2);
    assert_eq!(cfg.other_faces, vec![PathBuf::from("/p/stranger.jpg")]);
    assert_eq!(cfg.faults[0].count, Some(2));
    assert!(TestCli::try_parse_from(["devatar", "--lora-face", "no-photo"]).is_err());
    assert!(TestCli::try_parse_from(["devatar", "--fault", "identity-drift:0"]).is_err());
}
