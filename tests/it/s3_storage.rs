//! Media storage on S3: an in-process S3 server (s3s-fs, SigV4 checked) on 127.0.0.1, reached through the same
//! configuration path the app uses (`MediaConfig` from variables, `ObjectStorage::open`), and one `devatar render`
//! with `DEVATAR_S3_*` pointing at it.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use devatar::storage::objects::{MediaBackend, MediaConfig, ObjectStorage, PART_SIZE};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use sha2::{Digest, Sha256};

const BUCKET: &str = "devatar-media";
const ACCESS_KEY: &str = "test-access-key-id";
const SECRET_KEY: &str = "test-secret-value-never-printed";

/// One request the S3 server received: (method, path and query).
type Log = Arc<Mutex<Vec<(String, String)>>>;

/// An S3 server on a random local port, storing objects under a temporary folder.
struct S3Server {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    log: Log,
}

impl S3Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let s3 =
            axum::error_handling::HandleError::new(builder.build(), |_: s3s::HttpError| async {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            });
        let log: Log = Arc::default();
        let app = axum::Router::new()
            .fallback_service(s3)
            .layer(middleware::from_fn_with_state(log.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, dir, log }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The variables that point devatar at this server (generic S3, path style, plain HTTP).
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DEVATAR_S3_BUCKET", BUCKET.into()),
            ("DEVATAR_S3_ENDPOINT", self.endpoint()),
            ("DEVATAR_S3_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("DEVATAR_S3_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("DEVATAR_S3_ALLOW_HTTP", "1".into()),
            ("DEVATAR_S3_PATH_STYLE", "1".into()),
        ]
    }

    /// Object storage for a data folder, configured exactly as `Storage::open` does from these variables.
    fn storage(&self, data: &Path) -> ObjectStorage {
        let config = config_from(&self.vars());
        assert!(matches!(config.backend, MediaBackend::S3(_)), "{config:?}");
        ObjectStorage::open(&config, data).unwrap()
    }

    /// Where s3s-fs keeps an object's bytes.
    fn object_file(&self, key: &str) -> PathBuf {
        self.dir.path().join(BUCKET).join(key)
    }

    /// Requests received so far.
    fn requests(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }
}

async fn record(State(log): State<Log>, req: Request, next: Next) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    log.lock()
        .unwrap()
        .push((req.method().as_str().to_string(), target));
    next.run(req).await
}

fn config_from(vars: &[(&'static str, String)]) -> MediaConfig {
    let map: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
    MediaConfig::from_lookup(&|name| map.get(name).cloned()).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic, incompressible-looking test bytes.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn count(requests: &[(String, String)], method: &str, contains: &str) -> usize {
    requests
        .iter()
        .filter(|(m, t)| m == method && t.contains(contains))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_with_content_addressed_keys_multipart_and_a_local_cache() {
    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let storage = s3.storage(data.path());

    // Small bytes: one PUT under media/<aa>/<sha256>.<ext>.
    let caption = b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n".to_vec();
    let stored = storage.put_bytes(caption.clone(), "vtt").await.unwrap();
    let sha = sha256_hex(&caption);
    assert_eq!(stored.key, format!("media/{}/{sha}.vtt", &sha[..2]));
    assert_eq!(
        (stored.sha256.as_str(), stored.size),
        (sha.as_str(), caption.len() as u64)
    );
    assert_eq!(std::fs::read(s3.object_file(&stored.key)).unwrap(), caption);
    assert_eq!(storage.read_bytes(&stored.key).await.unwrap(), caption);

    // A small file: a single PUT, no multipart.
    let small = data.path().join("still.png");
    let small_bytes = pattern(300_000, 1);
    std::fs::write(&small, &small_bytes).unwrap();
    let before = s3.requests().len();
    let png = storage.put_file(&small, "png").await.unwrap();
    let sha = sha256_hex(&small_bytes);
    assert_eq!(png.key, format!("media/{}/{sha}.png", &sha[..2]));
    let reqs = s3.requests()[before..].to_vec();
    assert_eq!(count(&reqs, "PUT", &png.key), 1, "{reqs:?}");
    assert_eq!(count(&reqs, "POST", "uploads"), 0, "{reqs:?}");
    assert_eq!(
        std::fs::read(s3.object_file(&png.key)).unwrap(),
        small_bytes
    );

    // Storing the same content again only asks whether it exists.
    let before = s3.requests().len();
    assert_eq!(storage.put_file(&small, "png").await.unwrap(), png);
    let reqs = s3.requests()[before..].to_vec();
    assert!(reqs.iter().all(|(m, _)| m == "HEAD"), "{reqs:?}");

    // 20 MiB: multipart in 8 MiB parts (8 + 8 + 4), then complete.
    let big = data.path().join("final.mp4");
    let big_bytes = pattern(20 << 20, 2);
    std::fs::write(&big, &big_bytes).unwrap();
    let before = s3.requests().len();
    let video = storage.put_file(&big, "mp4").await.unwrap();
    let sha = sha256_hex(&big_bytes);
    assert_eq!(video.key, format!("media/{}/{sha}.mp4", &sha[..2]));
    assert_eq!(video.size, 20 << 20);
    let reqs = s3.requests()[before..].to_vec();
    assert_eq!(count(&reqs, "POST", "?uploads"), 1, "{reqs:?}");
    assert_eq!(count(&reqs, "PUT", "partNumber="), 3, "{reqs:?}");
    assert_eq!(count(&reqs, "POST", "uploadId="), 1, "{reqs:?}");
    assert_eq!(PART_SIZE, 8 << 20);
    let on_server = std::fs::read(s3.object_file(&video.key)).unwrap();
    assert_eq!(
        (on_server.len(), sha256_hex(&on_server)),
        (20 << 20, sha.clone())
    );
    let copy = data.path().join("copy.mp4");
    storage.download(&video.key, &copy).await.unwrap();
    let copied = std::fs::read(&copy).unwrap();
    assert_eq!((copied.len(), sha256_hex(&copied)), (20 << 20, sha.clone()));

    // exists is a HEAD.
    assert!(storage.exists(&video.key).await);
    assert!(storage.exists(&png.key).await);
    let absent = format!("media/00/{}.mp4", "0".repeat(64));
    assert!(!storage.exists(&absent).await);
    assert!(!storage.try_exists(&absent).await.unwrap());

    // local_path downloads once into the data folder's cache, then reuses the file without a request.
    let gets = |r: &[(String, String)]| count(r, "GET", &video.key);
    let before = gets(&s3.requests());
    let path = storage.local_path(&video.key).await.unwrap();
    assert!(
        path.starts_with(data.path().join("media-cache")),
        "{path:?}"
    );
    assert_eq!(sha256_hex(&std::fs::read(&path).unwrap()), sha);
    assert_eq!(gets(&s3.requests()), before + 1);
    std::fs::remove_file(s3.object_file(&video.key)).unwrap();
    assert!(
        !storage.exists(&video.key).await,
        "the object is gone remotely"
    );
    let again = storage.local_path(&video.key).await.unwrap();
    assert_eq!(again, path);
    assert_eq!(sha256_hex(&std::fs::read(&again).unwrap()), sha);
    assert_eq!(gets(&s3.requests()), before + 1, "no second download");
    // A key that was never stored is an error, and leaves no partial file behind.
    assert!(storage.local_path(&absent).await.is_err());
    let leftovers: Vec<_> = common::tree(&data.path().join("media-cache"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Only server-shaped keys are accepted.
    assert!(storage.local_path("media/../../etc/passwd").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_object_is_not_handed_out() {
    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let storage = s3.storage(data.path());
    let stored = storage.put_bytes(pattern(4096, 3), "wav").await.unwrap();
    std::fs::write(s3.object_file(&stored.key), pattern(4096, 4)).unwrap();
    let err = storage
        .local_path(&stored.key)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("SHA-256"), "{err}");
    assert!(!data.path().join("media-cache").join(&stored.key).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_get_urls_work_until_they_expire_and_only_as_signed() {
    let s3 = S3Server::start().await;
    let data = tempfile::tempdir().unwrap();
    let storage = s3.storage(data.path());
    let body = pattern(100_000, 5);
    let clip = data.path().join("clip.mp4");
    std::fs::write(&clip, &body).unwrap();
    let a = storage.put_file(&clip, "mp4").await.unwrap();
    let b = storage.put_bytes(pattern(5000, 6), "mp4").await.unwrap();
    let http = devatar::net::client_builder().build().unwrap();

    // The default lifetime is the configured 6 hours.
    assert_eq!(storage.presign_ttl(), Duration::from_secs(6 * 3600));
    let url = storage
        .presigned_get(&a.key, storage.presign_ttl())
        .unwrap()
        .expect("S3 storage signs URLs");
    assert!(url.starts_with(&format!("{}/{BUCKET}/{}?", s3.endpoint(), a.key)));
    assert!(url.contains("X-Amz-Expires=21600"), "lifetime in the URL");
    assert!(!url.contains(SECRET_KEY));
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), body.as_slice());

    // Without a signature, or with any signed part changed, the server refuses.
    let plain = format!("{}/{BUCKET}/{}", s3.endpoint(), a.key);
    assert_eq!(http.get(&plain).send().await.unwrap().status(), 403);
    let other_key = url.replace(&a.key, &b.key);
    assert_ne!(other_key, url);
    assert_eq!(http.get(&other_key).send().await.unwrap().status(), 403);
    let longer = url.replace("X-Amz-Expires=21600", "X-Amz-Expires=604800");
    assert_eq!(http.get(&longer).send().await.unwrap().status(), 403);
    // The unmodified URL still works (the refusals were about the changes).
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);

    // Signed as at a given time, the URL is the same every time and works for its lifetime from then.
    let earlier = std::time::SystemTime::now() - Duration::from_secs(600);
    let at = storage
        .presigned_get_at(&a.key, storage.presign_ttl(), earlier)
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(at.clone()),
        storage
            .presigned_get_at(&a.key, storage.presign_ttl(), earlier)
            .unwrap()
    );
    assert_ne!(at, url);
    assert_eq!(http.get(&at).send().await.unwrap().status(), 200);
    let gone = storage
        .presigned_get_at(&a.key, Duration::from_secs(60), earlier)
        .unwrap()
        .unwrap();
    assert_eq!(http.get(&gone).send().await.unwrap().status(), 403);

    // A short-lived URL stops working once it expires.
    let short = storage
        .presigned_get(&b.key, Duration::from_secs(1))
        .unwrap()
        .unwrap();
    assert_eq!(http.get(&short).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(http.get(&short).send().await.unwrap().status(), 403);

    // Lifetimes beyond SigV4's 7 days are refused before signing.
    assert!(
        storage
            .presigned_get(&a.key, Duration::from_secs(8 * 24 * 3600))
            .is_err()
    );
    // DEVATAR_PRESIGN_TTL_SECS sets the default lifetime.
    let mut vars = s3.vars();
    vars.push(("DEVATAR_PRESIGN_TTL_SECS", "900".into()));
    let config = config_from(&vars);
    assert_eq!(config.presign_ttl, Duration::from_secs(900));
    let storage = ObjectStorage::open(&config, data.path()).unwrap();
    let url = storage
        .presigned_get(&a.key, storage.presign_ttl())
        .unwrap()
        .unwrap();
    assert!(url.contains("X-Amz-Expires=900"), "lifetime in the URL");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn r2_configuration_is_complete_or_a_clear_error() {
    let secret = "r2-secret-0123456789abcdef";
    let access = "r2-access-id-fedcba";
    let full: HashMap<&str, &str> = [
        ("R2_ACCOUNT_ID", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
        ("R2_ACCESS_KEY_ID", access),
        ("R2_SECRET_ACCESS_KEY", secret),
        ("R2_BUCKET_NAME", "twin-media"),
        ("R2_PUBLIC_URL", "https://media.example.com/"),
    ]
    .into_iter()
    .collect();
    for missing in ["R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_BUCKET_NAME"] {
        let err = MediaConfig::from_lookup(&|name| {
            (name != missing)
                .then(|| full.get(name).map(|v| v.to_string()))
                .flatten()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(missing), "{err}");
        assert!(!err.contains(secret) && !err.contains(access), "{err}");
    }
    let err = MediaConfig::from_lookup(&|name| {
        (name == "R2_SECRET_ACCESS_KEY").then(|| secret.to_string())
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_BUCKET_NAME") && !err.contains(secret),
        "{err}"
    );

    // Complete: R2's endpoint, region `auto`, path style; signing needs no network.
    let config = MediaConfig::from_lookup(&|name| full.get(name).map(|v| v.to_string())).unwrap();
    let debug = format!("{config:?}");
    assert!(
        !debug.contains(secret) && !debug.contains(access),
        "{debug}"
    );
    let data = tempfile::tempdir().unwrap();
    let storage = ObjectStorage::open(&config, data.path()).unwrap();
    assert!(
        !data.path().join("objects").exists(),
        "no local media folder"
    );
    let key = format!("media/ab/{}.png", "ab".repeat(32));
    let url = storage
        .presigned_get(&key, storage.presign_ttl())
        .unwrap()
        .unwrap();
    let expected = format!(
        "https://0f1e2d3c4b5a69788796a5b4c3d2e1f0.r2.cloudflarestorage.com/twin-media/{key}?"
    );
    assert!(url.starts_with(&expected), "{url}");
    assert!(url.contains("%2Fauto%2Fs3%2Faws4_request"), "{url}");
    assert!(url.contains("X-Amz-Expires=21600"), "{url}");
    assert!(!url.contains(secret));
    assert_eq!(
        storage.public_url(&key).unwrap().as_deref(),
        Some(format!("https://media.example.com/{key}").as_str())
    );
}

#[test]
fn the_cli_names_a_missing_r2_variable_without_printing_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.toml"), common::SMALL_PROJECT).unwrap();
    let out = common::command(tmp.path(), &["render", "p.toml", "--data", "data"])
        .env("R2_ACCOUNT_ID", "0f1e2d3c4b5a6978")
        .env("R2_ACCESS_KEY_ID", "cli-access-id-123")
        .env("R2_SECRET_ACCESS_KEY", "cli-secret-value-456")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("R2_BUCKET_NAME"), "{stderr}");
    assert!(
        !stderr.contains("cli-secret-value-456") && !stderr.contains("cli-access-id-123"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devatar_render_keeps_its_media_in_the_bucket() {
    let s3 = S3Server::start().await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("p.toml"), common::SMALL_PROJECT).unwrap();
    let mut cmd = common::command(
        tmp.path(),
        &[
            "render",
            "p.toml",
            "--data",
            "data",
            "--out",
            "out.mp4",
            "--providers",
            "local",
        ],
    );
    for (k, v) in s3.vars() {
        cmd.env(k, v);
    }
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The final video and its captions are objects in the bucket, under their content hashes.
    let video = std::fs::read(tmp.path().join("out.mp4")).unwrap();
    assert!(video.len() > 10_000);
    let sha = sha256_hex(&video);
    let key = format!("media/{}/{sha}.mp4", &sha[..2]);
    assert_eq!(std::fs::read(s3.object_file(&key)).unwrap(), video);
    let vtt = std::fs::read(tmp.path().join("out.vtt")).unwrap();
    let sha = sha256_hex(&vtt);
    assert!(
        s3.object_file(&format!("media/{}/{sha}.vtt", &sha[..2]))
            .is_file()
    );
    // Every step's media went to the bucket; none to a local media folder.
    let objects = common::tree(&s3.dir.path().join(BUCKET).join("media"))
        .into_iter()
        .filter(|p| p.is_file())
        .count();
    assert!(objects >= 10, "only {objects} objects in the bucket");
    assert!(!tmp.path().join("data/objects").exists());
    let reqs = s3.requests();
    assert!(count(&reqs, "PUT", "/media/") >= 10, "{}", reqs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_route_serves_bucket_objects_with_ranges() {
    use std::io::BufRead;
    let s3 = S3Server::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let body = pattern(50_000, 7);
    let stored = s3
        .storage(&data)
        .put_bytes(body.clone(), "png")
        .await
        .unwrap();

    let with_s3 = |mut cmd: std::process::Command| {
        for (k, v) in s3.vars() {
            cmd.env(k, v);
        }
        cmd
    };
    let token = with_s3(common::command(
        tmp.path(),
        &["token", "create", "--name", "s3", "--data", "data"],
    ))
    .output()
    .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap();
    let token = token.lines().last().unwrap().to_string();
    let mut child = with_s3(common::command(
        tmp.path(),
        &["serve", "--bind", "127.0.0.1:0", "--data", "data"],
    ))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let base = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr).lines();
        let base = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.trim()
                .strip_prefix("devatar listening on ")
                .map(str::to_string)
        });
        std::thread::spawn(move || lines.for_each(drop));
        base
    })
    .await
    .unwrap();
    let Some(base) = base else {
        let _ = child.kill();
        panic!("server exited before listening");
    };

    let http = devatar::net::client_builder().build().unwrap();
    let get = |key: String, range: Option<&'static str>| {
        let mut req = http.get(format!("{base}/{key}")).bearer_auth(&token);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send()
    };
    let whole = get(stored.key.clone(), None).await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), body.as_slice());
    let part = get(stored.key.clone(), Some("bytes=100-199"))
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &body[100..200]);
    let absent = format!("media/00/{}.png", "0".repeat(64));
    assert_eq!(get(absent, None).await.unwrap().status(), 404);
    assert!(!data.join("objects").exists(), "served from the bucket");
    let _ = child.kill();
    let _ = child.wait();
}
