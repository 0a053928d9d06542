//! Fake Fal storage upload (PROVIDERS.md §2.9): `POST /storage/upload/initiate?storage_type=fal-cdn-v3` (with the
//! Fal key, JSON `{file_name, content_type}`) answers `{upload_url, file_url}`; a `PUT` of the bytes to
//! `upload_url` (no key: it is presigned) with the same `Content-Type` stores them, and `GET file_url` serves
//! them. Counters: `fal.storage.initiate`, `fal.storage.upload`, `fal.storage.get`; a Flux submit's LoRA on
//! this storage counts `fal.lora.storage` (and must have been uploaded), any other LoRA URL `fal.lora.url`.
//! Uploaded files outlive `/__reset`, as Fal's CDN files do.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::{Ctx, body_bytes, lock};
use super::util::{header_str, json as json_resp, query_get, query_pairs};

/// One upload slot: what `initiate` promised and, once `PUT`, the bytes.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    content_type: String,
    bytes: Option<Bytes>,
}

/// Upload slots by token.
#[derive(Debug, Default)]
pub(crate) struct FalFiles(HashMap<String, Upload>);

impl FalFiles {
    /// Stores a file the sandbox made itself (a trained LoRA); returns its path under `/__fal-files/`
    /// (`token/file_name`).
    pub(crate) fn insert_ready(
        &mut self,
        file_name: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> String {
        let token = uuid::Uuid::now_v7().simple().to_string();
        self.0.insert(
            token.clone(),
            Upload {
                content_type: content_type.into(),
                bytes: Some(bytes),
            },
        );
        format!("{token}/{file_name}")
    }
}

fn detail(status: u16, msg: &str) -> Response {
    json_resp(status, json!({"detail": msg}))
}

/// Whether this path is the storage API's; `handle` serves it.
pub(crate) fn owns(path: &str) -> bool {
    path == "/storage/upload/initiate"
        || path.starts_with("/__fal-upload/")
        || path.starts_with("/__fal-files/")
}

/// Serves the three storage calls.
pub(crate) async fn handle(ctx: &Ctx, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (req.method().clone(), segs.as_slice()) {
        (Method::POST, ["storage", "upload", "initiate"]) => initiate(ctx, req).await,
        (Method::PUT, ["__fal-upload", token]) => {
            let token = token.to_string();
            put(ctx, req, &token).await
        }
        (Method::GET, ["__fal-files", token, _name]) => get(ctx, token),
        _ => detail(405, "Method Not Allowed"),
    }
}

async fn initiate(ctx: &Ctx, req: Request) -> Response {
    if let Some(refused) = super::fal::auth(ctx, &req) {
        return refused;
    }
    let pairs = query_pairs(req.uri().query());
    if query_get(&pairs, "storage_type").as_deref() != Some("fal-cdn-v3") {
        return detail(422, "storage_type must be fal-cdn-v3");
    }
    let body = match body_bytes(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return detail(400, &e),
    };
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
        return detail(422, "the body must be a JSON object");
    };
    let text = |k: &str| map.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(name), Some(content_type)) = (text("file_name"), text("content_type")) else {
        return detail(422, "file_name and content_type are required");
    };
    if name.contains(['/', '?', '#', ' ']) {
        return detail(422, "file_name must be a plain file name");
    }
    ctx.shared.count("fal.storage.initiate");
    let token = uuid::Uuid::now_v7().simple().to_string();
    lock(&ctx.shared.fal_files).0.insert(
        token.clone(),
        Upload {
            content_type: content_type.to_string(),
            bytes: None,
        },
    );
    json_resp(
        200,
        json!({
            "upload_url": format!("{}/__fal-upload/{token}", ctx.base),
            "file_url": format!("{}/__fal-files/{token}/{name}", ctx.base),
        }),
    )
}

async fn put(ctx: &Ctx, req: Request, token: &str) -> Response {
    let sent_type = header_str(req.headers(), "content-type")
        .unwrap_or("")
        .to_string();
    let expected = match lock(&ctx.shared.fal_files).0.get(token) {
        Some(u) if u.bytes.is_none() => u.content_type.clone(),
        Some(_) => return detail(409, "this upload URL was used already"),
        None => return detail(403, "the upload URL is not valid"),
    };
    if sent_type != expected {
        return detail(
            403,
            "Content-Type differs from the one the upload was initiated with",
        );
    }
    let bytes = match body_bytes(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return detail(400, &e),
    };
    ctx.shared.count("fal.storage.upload");
    if let Some(u) = lock(&ctx.shared.fal_files).0.get_mut(token) {
        u.bytes = Some(bytes);
    }
    (axum::http::StatusCode::OK, "").into_response()
}

fn get(ctx: &Ctx, token: &str) -> Response {
    ctx.shared.count("fal.storage.get");
    match lock(&ctx.shared.fal_files).0.get(token) {
        Some(Upload {
            content_type,
            bytes: Some(bytes),
        }) => (
            [(header::CONTENT_TYPE, content_type.clone())],
            bytes.clone(),
        )
            .into_response(),
        _ => detail(404, "Not Found"),
    }
}

/// Checks the LoRA paths of a Flux body against the storage, as Fal downloads them: one of our own file URLs
/// must have been uploaded (else 422 `file_download_error`) and counts as `fal.lora.storage`; any other URL
/// counts as `fal.lora.url`.
pub(crate) fn check_lora_paths(
    ctx: &Ctx,
    body: &serde_json::Map<String, Value>,
) -> Option<Response> {
    let loras = body.get("loras").and_then(Value::as_array)?;
    let own = format!("{}/__fal-files/", ctx.base);
    for (i, l) in loras.iter().enumerate() {
        let Some(path) = l.get("path").and_then(Value::as_str) else {
            continue;
        };
        let Some(rest) = path.strip_prefix(&own) else {
            ctx.shared.count("fal.lora.url");
            continue;
        };
        let token = rest.split('/').next().unwrap_or("");
        let uploaded = lock(&ctx.shared.fal_files)
            .0
            .get(token)
            .is_some_and(|u| u.bytes.is_some());
        if !uploaded {
            return Some(json_resp(
                422,
                json!({"detail": [{"loc": ["body", "loras", i, "path"], "msg": "Failed to download file",
                                   "type": "file_download_error"}]}),
            ));
        }
        ctx.shared.count("fal.lora.storage");
    }
    None
}
