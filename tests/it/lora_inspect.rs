//! LoRA header inspection: synthetic safetensors files for each family, local files and HTTP Range serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use devatar::lora::{InspectOptions, inspect_file, inspect_url};
use devatar::net::FetchGuard;
use serde_json::{Value, json};

use crate::common;
use common::safetensors::{kohya_flux, safetensors};

fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

fn opts() -> InspectOptions {
    InspectOptions {
        trigger_word: Some("TOK_DEVEN".into()),
        base_model: Some("flux-dev".into()),
    }
}

#[test]
fn kohya_flux_lora_is_recognised_with_rank_alpha_and_trigger() {
    let meta = json!({"ss_network_alpha": "16", "ss_network_dim": "32",
                      "ss_tag_frequency": "{\"10_tok_deven man\": {\"tok_deven\": 20}}"});
    let f = write(&safetensors(&kohya_flux(32), Some(meta)));
    let r = inspect_file(f.path(), &opts()).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        (r.family.as_str(), r.convention.as_str(), r.rank, r.alpha),
        ("flux", "kohya", Some(32), Some(16.0))
    );
    assert!(r.compatible && !r.rank_varies);
    assert_eq!(r.dtypes, ["BF16"]);
    assert_eq!(r.tensor_count, 5);
    assert_eq!(r.trigger_word_found, Some(true));
    assert!(
        r.warnings.iter().any(|w| w.contains("small")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn diffusers_flux_without_metadata_has_null_trigger_and_a_warning() {
    let t = vec![
        (
            "transformer.transformer_blocks.0.attn.to_q.lora_A.weight",
            "BF16",
            vec![16, 3072],
        ),
        (
            "transformer.transformer_blocks.0.attn.to_q.lora_B.weight",
            "BF16",
            vec![3072, 16],
        ),
        (
            "transformer.single_transformer_blocks.0.proj_out.lora_A.weight",
            "BF16",
            vec![8, 15360],
        ),
        (
            "transformer.single_transformer_blocks.0.proj_out.lora_B.weight",
            "BF16",
            vec![3072, 8],
        ),
    ];
    let r = inspect_file(write(&safetensors(&t, None)).path(), &opts()).unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        (r.family.as_str(), r.convention.as_str()),
        ("flux", "diffusers")
    );
    assert!(r.rank_varies);
    assert_eq!(r.trigger_word_found, None);
    assert!(r.warnings.iter().any(|w| w.contains("no metadata")));
}

#[test]
fn other_families_and_broken_files_are_blocking_errors() {
    let sdxl = vec![
        (
            "lora_unet_input_blocks_4_1_proj_in.lora_down.weight",
            "F16",
            vec![8, 640],
        ),
        (
            "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
            "F16",
            vec![8, 1280],
        ),
    ];
    let r = inspect_file(write(&safetensors(&sdxl, None)).path(), &opts()).unwrap();
    assert_eq!(r.family, "sdxl");
    assert!(
        !r.compatible && r.errors[0].contains("wrong family"),
        "{:?}",
        r.errors
    );

    let sd1 = vec![(
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
        "F16",
        vec![4, 768],
    )];
    assert_eq!(
        inspect_file(write(&safetensors(&sd1, None)).path(), &opts())
            .unwrap()
            .family,
        "sd1"
    );
    let sd2 = vec![(
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
        "F16",
        vec![4, 1024],
    )];
    assert_eq!(
        inspect_file(write(&safetensors(&sd2, None)).path(), &opts())
            .unwrap()
            .family,
        "sd2"
    );

    let loha = vec![(
        "lora_unet_double_blocks_0_img_attn_qkv.hada_w1_a",
        "BF16",
        vec![3072, 8],
    )];
    let r = inspect_file(write(&safetensors(&loha, None)).path(), &opts()).unwrap();
    assert!(r.errors[0].contains("LyCORIS"), "{:?}", r.errors);

    let not_lora = vec![("model.embed.weight", "F32", vec![10, 10])];
    assert!(
        inspect_file(write(&safetensors(&not_lora, None)).path(), &opts())
            .unwrap()
            .errors[0]
            .contains("not a LoRA")
    );

    let mut truncated = safetensors(&kohya_flux(8), None);
    truncated.truncate(truncated.len() - 10);
    assert!(
        inspect_file(write(&truncated).path(), &opts())
            .unwrap()
            .errors[0]
            .contains("file size")
    );

    let mut huge = (100u64 << 20).to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    assert!(inspect_file(write(&huge).path(), &opts()).unwrap().errors[0].contains("too large"));

    let mut bad_json = 10u64.to_le_bytes().to_vec();
    bad_json.extend_from_slice(b"{\"a\": [1, ");
    assert!(
        inspect_file(write(&bad_json).path(), &opts())
            .unwrap()
            .errors[0]
            .contains("malformed")
    );

    let r = inspect_file(write(b"PK\x03\x04 this is a zip").path(), &opts()).unwrap();
    assert!(!r.ok());

    let dup = br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut dup_file = (dup.len() as u64).to_le_bytes().to_vec();
    dup_file.extend_from_slice(dup);
    dup_file.extend_from_slice(&[0; 4]);
    assert!(
        inspect_file(write(&dup_file).path(), &opts())
            .unwrap()
            .errors[0]
            .contains("duplicate")
    );
}

#[derive(Clone)]
struct Served {
    file: Arc<Vec<u8>>,
    honour_range: bool,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

async fn serve_file(State(s): State<Served>, headers: HeaderMap) -> impl IntoResponse {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let len = s.file.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="));
    if let (true, Some(r)) = (s.honour_range, range) {
        let (a, b) = r.split_once('-').unwrap();
        let a: u64 = a.parse().unwrap();
        let b: u64 = b.parse::<u64>().unwrap().min(len - 1);
        let body = s.file[a as usize..=b as usize].to_vec();
        s.bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
        return (
            StatusCode::PARTIAL_CONTENT,
            [(header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}"))],
            body,
        )
            .into_response();
    }
    // Ignoring Range: stream the whole file in chunks, counting what the client actually pulls.
    let file = s.file.clone();
    let bytes = s.bytes.clone();
    let stream = futures::stream::iter((0..file.len()).step_by(64 * 1024).map(move |i| {
        let chunk = file[i..(i + 64 * 1024).min(file.len())].to_vec();
        bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk)
    }));
    (
        StatusCode::OK,
        [(header::CONTENT_LENGTH, len.to_string())],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

async fn start(file: Vec<u8>, honour_range: bool) -> (String, Served) {
    let served = Served {
        file: Arc::new(file),
        honour_range,
        requests: Arc::default(),
        bytes: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/model.safetensors", axum::routing::get(serve_file))
        .with_state(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/model.safetensors"), served)
}

/// A ~12 MB kohya Flux LoRA whose header is larger than the first 256 KiB read.
fn big_lora() -> Vec<u8> {
    let names: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                "lora_unet_double_blocks_{}_img_attn_qkv_{i:04}.lora_down.weight",
                i % 19
            )
        })
        .collect();
    let mut tensors: Vec<(&str, &str, Vec<u64>)> = names
        .iter()
        .map(|n| (n.as_str(), "BF16", vec![1, 2]))
        .collect();
    tensors.push((
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
        "BF16",
        vec![16, 3072],
    ));
    tensors.push((
        "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight",
        "BF16",
        vec![9216, 16],
    ));
    tensors.push((
        "lora_unet_single_blocks_0_linear1.lora_down.weight",
        "BF16",
        vec![16, 3072],
    ));
    tensors.push((
        "lora_unet_single_blocks_0_linear1.lora_up.weight",
        "BF16",
        vec![21504, 16],
    ));
    tensors.push(("pad.lora_up.weight", "BF16", vec![5_500_000]));
    let meta = json!({"ss_tag_frequency": "{\"10_tok_deven\": {\"tok_deven\": 9}}", "ss_network_alpha": "8"});
    safetensors(&tensors, Some(meta))
}

#[tokio::test]
async fn url_inspection_reads_only_the_header_with_ranges() {
    let file = big_lora();
    assert!(file.len() > 11_000_000);
    let (url, served) = start(file.clone(), true).await;
    let r = inspect_url(&FetchGuard::new(true), &url, &opts())
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        (r.family.as_str(), r.convention.as_str(), r.alpha),
        ("flux", "kohya", Some(8.0))
    );
    assert_eq!(r.trigger_word_found, Some(true));
    assert_eq!(r.file_size_bytes, Some(file.len() as u64));
    assert_eq!(
        r.requests, 2,
        "256 KiB first, then exactly the missing header bytes"
    );
    assert!(r.bytes_read < 1 << 20, "{}", r.bytes_read);
    assert_eq!(served.requests.load(Ordering::SeqCst), 2);
    assert!(served.bytes.load(Ordering::SeqCst) < 1 << 20);
}

#[tokio::test]
async fn a_server_ignoring_range_is_not_downloaded_whole() {
    let file = big_lora();
    let (url, served) = start(file.clone(), false).await;
    let r = inspect_url(&FetchGuard::new(true), &url, &opts())
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(r.bytes_read < 1 << 20);
    assert!(
        (served.bytes.load(Ordering::SeqCst) as usize) < file.len() / 2,
        "the client stopped reading early"
    );
}

#[tokio::test]
async fn missing_files_and_private_addresses_are_clear_errors() {
    let (url, _) = start(vec![], true).await;
    let missing = url.replace("model.safetensors", "nope.safetensors");
    let err = inspect_url(&FetchGuard::new(true), &missing, &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    let err = inspect_url(&FetchGuard::new(false), &url, &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
}

/// `devatar lora inspect` prints the report as the top-level JSON object and maps verdicts to exit codes.
#[test]
fn cli_inspect_prints_the_report_and_exits_by_verdict() {
    let meta = json!({"ss_network_dim": "32", "ss_network_alpha": "16",
                      "ss_tag_frequency": "{\"10_tok_deven\": {\"tok_deven\": 9}}"});
    let file = write(&safetensors(&kohya_flux(32), Some(meta)));
    let path = file.path().to_str().unwrap();
    let out = common::run(
        std::path::Path::new("."),
        &["lora", "inspect", path, "--trigger", "TOK_DEVEN", "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["family"], "flux");
    assert_eq!(r["compatible"], true);
    assert_eq!(r["convention"], "kohya");
    assert_eq!(r["rank"], 32);
    assert_eq!(r["rankVaries"], false);
    assert_eq!(r["alpha"], 16.0);
    assert_eq!(r["triggerWordFound"], true);
    assert_eq!(r["errors"], json!([]));

    // Without --trigger the trigger verdict is null.
    let out = common::run(
        std::path::Path::new("."),
        &["lora", "inspect", path, "--json"],
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["triggerWordFound"].is_null(), "{r}");

    // Not a safetensors file: blocking error, exit 1.
    let junk = write(b"<html>not a model</html>");
    let out = common::run(
        std::path::Path::new("."),
        &["lora", "inspect", junk.path().to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!r["errors"].as_array().unwrap().is_empty(), "{r}");

    // Bad arguments: exit 2.
    let out = common::run(
        std::path::Path::new("."),
        &["lora", "inspect", path, "--base-model", "sdxl"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = common::run(
        std::path::Path::new("."),
        &["lora", "inspect", "/no/such/file.safetensors"],
    );
    assert_eq!(out.status.code(), Some(2));
}
