//! Shared pieces of the cloud-provider tests: the sandbox with known keys, the environment that points a
//! `devatar` process at it, and a LoRA file served over HTTP.

use std::process::Command;

use devatar::fakes::{FakeConfig, FakeKeys, FakeServer, LatencyProfile, spawn};
use serde_json::json;

use super::safetensors::{kohya_flux, safetensors};

/// `FAL_KEY` the sandbox accepts.
pub const FAL_KEY: &str = "fal-test-key";
/// `ELEVENLABS_API_KEY` the sandbox accepts.
pub const EL_KEY: &str = "el-test-key";
/// `KLING_ACCESS_KEY` the sandbox accepts.
pub const KLING_ACCESS: &str = "kling-access";
/// `KLING_SECRET_KEY` the sandbox accepts.
pub const KLING_SECRET: &str = "kling-secret";
/// `SYNCLABS_API_KEY` the sandbox accepts.
pub const SYNC_KEY: &str = "sync-test-key";
/// A voice the ElevenLabs fake knows.
pub const VOICE: &str = "21m00Tcm4TlvDq8ikWAM";

/// The provider sandbox accepting exactly the keys above, with `latency` scaled by `scale`.
pub async fn fakes(latency: LatencyProfile, scale: f64) -> FakeServer {
    let keys = FakeKeys {
        fal: Some(FAL_KEY.into()),
        elevenlabs: Some(EL_KEY.into()),
        kling_access_key: Some(KLING_ACCESS.into()),
        kling_secret_key: Some(KLING_SECRET.into()),
        synclabs: Some(SYNC_KEY.into()),
    };
    spawn(
        FakeConfig::default()
            .with_keys(keys)
            .with_latency(latency, scale),
    )
    .await
    .unwrap()
}

/// Points `cmd` at the sandbox at `base`: every key and base URL, private URLs allowed (downloads come from
/// 127.0.0.1) and provider waits scaled down.
pub fn cloud_env<'a>(cmd: &'a mut Command, base: &str) -> &'a mut Command {
    cmd.env("FAL_KEY", FAL_KEY)
        .env("ELEVENLABS_API_KEY", EL_KEY)
        .env("KLING_ACCESS_KEY", KLING_ACCESS)
        .env("KLING_SECRET_KEY", KLING_SECRET)
        .env("SYNCLABS_API_KEY", SYNC_KEY)
        .env("FAL_BASE_URL", base)
        .env("FAL_STORAGE_BASE_URL", base)
        .env("ELEVENLABS_BASE_URL", base)
        .env("KLING_BASE_URL", base)
        .env("SYNCLABS_BASE_URL", base)
        .env("DEVATAR_ALLOW_PRIVATE_URLS", "1")
        .env("DEVATAR_PROVIDER_TIME_SCALE", "0.01")
}

/// A kohya Flux LoRA of `rank` whose training captions name `trigger`.
pub fn flux_lora(trigger: &str, rank: u64) -> Vec<u8> {
    let captions = format!("{{\"10_{trigger}\": {{\"{trigger}\": 12}}}}");
    safetensors(
        &kohya_flux(rank),
        Some(
            json!({"ss_network_dim": rank.to_string(), "ss_network_alpha": rank.to_string(),
                    "ss_tag_frequency": captions}),
        ),
    )
}

/// Serves `files` (path → bytes) on a random loopback port; returns the base URL.
pub async fn serve_files(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let mut app = axum::Router::new();
    for (path, bytes) in files {
        app = app.route(path, axum::routing::get(move || async move { bytes }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Serves a Flux LoRA trained on `trigger`; returns its URL.
pub async fn serve_lora(trigger: &str) -> String {
    let base = serve_files(vec![("/lora.safetensors", flux_lora(trigger, 16))]).await;
    format!("{base}/lora.safetensors")
}
