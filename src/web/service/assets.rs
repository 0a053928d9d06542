//! Asset intake shared by the API and the pages: the multipart upload (kind, folder, file streamed to disk
//! within the kind's size limit, content sniffed, media probed, stored content-addressed) and deletion.

use std::path::Path as FsPath;

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::domain::AssetId;
use crate::lora::LoraReport;
use crate::storage::db::{AssetInput, AssetRecord, Db};
use crate::web::AppState;
use crate::web::error::ApiError;

/// Upload kinds and their size limits in bytes.
const KINDS: [(&str, u64); 5] = [
    ("headshot", 20 << 20),
    ("background", 20 << 20),
    ("audio", 50 << 20),
    ("lora", 2 << 30),
    ("consent", 100 << 20),
];

/// How much of an oversized upload is read and dropped before answering 413.
const DRAIN_LIMIT: u64 = 64 << 20;

/// What the content turned out to be: (extension, MIME type).
fn sniff(kind: &str, head: &[u8], size: u64) -> Option<(&'static str, &'static str)> {
    let at = |i: usize, pat: &[u8]| head.get(i..i + pat.len()) == Some(pat);
    match kind {
        "headshot" | "background" => {
            if at(0, &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
                Some(("png", "image/png"))
            } else if at(0, &[0xFF, 0xD8, 0xFF]) {
                Some(("jpg", "image/jpeg"))
            } else if at(0, b"RIFF") && at(8, b"WEBP") {
                Some(("webp", "image/webp"))
            } else {
                None
            }
        }
        "audio" => {
            if at(0, b"RIFF") && at(8, b"WAVE") {
                Some(("wav", "audio/wav"))
            } else if at(0, b"ID3") || (head.len() > 1 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
            {
                Some(("mp3", "audio/mpeg"))
            } else if at(0, b"OggS") {
                Some(("ogg", "audio/ogg"))
            } else if at(4, b"ftyp") {
                Some(("m4a", "audio/mp4"))
            } else {
                None
            }
        }
        "consent" => consent_kind(head),
        "lora" => {
            let len = u64::from_le_bytes(head.get(..8)?.try_into().ok()?);
            // Checked: a header length near 2^64 must not wrap around into "fits".
            let fits = len.checked_add(8).is_some_and(|end| end <= size);
            (len > 1 && fits && head.get(8) == Some(&b'{'))
                .then_some(("safetensors", "application/octet-stream"))
        }
        _ => None,
    }
}

/// A consent statement or recording: a PDF, an image, audio, a video, or plain UTF-8 text.
fn consent_kind(head: &[u8]) -> Option<(&'static str, &'static str)> {
    let at = |i: usize, pat: &[u8]| head.get(i..i + pat.len()) == Some(pat);
    if at(0, b"%PDF-") {
        Some(("pdf", "application/pdf"))
    } else if at(0, &[0x89, b'P', b'N', b'G']) {
        Some(("png", "image/png"))
    } else if at(0, &[0xFF, 0xD8, 0xFF]) {
        Some(("jpg", "image/jpeg"))
    } else if at(0, b"RIFF") && at(8, b"WAVE") {
        Some(("wav", "audio/wav"))
    } else if at(0, b"ID3") || (head.len() > 1 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        Some(("mp3", "audio/mpeg"))
    } else if at(0, b"OggS") {
        Some(("ogg", "audio/ogg"))
    } else if at(4, b"ftyp") {
        Some(("mp4", "video/mp4"))
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Some(("webm", "video/webm"))
    } else if !head.is_empty() && !head.contains(&0) && std::str::from_utf8(head).is_ok() {
        Some(("txt", "text/plain"))
    } else {
        None
    }
}

pub(super) fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    field: &str,
) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
        field: Some(field.into()),
    }
}

/// A stored upload and, for a LoRA, what inspecting its header found (reported, not enforced: an incompatible
/// LoRA is stored and its report says why it cannot be used).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UploadedAsset {
    /// The stored asset.
    #[serde(flatten)]
    pub asset: AssetRecord,
    /// LoRA uploads only: family, compatibility, rank, trigger-word evidence, errors and warnings (the report
    /// of `devatar lora inspect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub lora: Option<LoraReport>,
}

/// The `kind` and `folder` fields as they were sent (a page's form shows them again after a failed upload).
#[derive(Debug, Default, Clone)]
pub struct SentFields {
    /// The kind field, trimmed (possibly not a valid kind).
    pub kind: String,
    /// The folder field, trimmed, at most 100 characters.
    pub folder: String,
}

/// Receives an upload (multipart fields `kind`, optional `folder`, then `file`) and stores it as an asset.
pub async fn upload(state: &AppState, multipart: Multipart) -> Result<UploadedAsset, ApiError> {
    upload_keeping_fields(state, multipart)
        .await
        .map_err(|(e, _)| e)
}

/// [`upload`], which also hands back the kind and folder that were sent when it fails.
pub async fn upload_keeping_fields(
    state: &AppState,
    mut multipart: Multipart,
) -> Result<UploadedAsset, (ApiError, SentFields)> {
    let mut sent = SentFields::default();
    let tmp = match upload_path(state).await {
        Ok(tmp) => tmp,
        Err(e) => return Err((e, sent)),
    };
    let result = receive_and_store(state, &mut multipart, &tmp, &mut sent).await;
    let _ = tokio::fs::remove_file(&tmp).await;
    result.map_err(|e| (e, sent))
}

/// A fresh path for an upload in the work folder's `uploads` (created when needed).
pub(super) async fn upload_path(state: &AppState) -> Result<std::path::PathBuf, ApiError> {
    let tmp_dir = state.storage.work_dir().join("uploads");
    tokio::fs::create_dir_all(&tmp_dir)
        .await
        .map_err(ApiError::internal)?;
    Ok(tmp_dir.join(crate::storage::new_id()))
}

/// Deletes an asset; 404 when there is none with this id.
pub async fn delete(state: &AppState, id: &AssetId) -> Result<(), ApiError> {
    if state.storage.db.delete_asset(id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("asset"))
    }
}

/// The multipart form as read: the kind (with its size limit), the folder and the file streamed to disk.
struct UploadForm {
    kind: Option<(&'static str, u64)>,
    folder: String,
    file: Option<UploadedFile>,
}

/// A file streamed to the temporary path: its size, its first 64 bytes and its original name (at most 200 chars).
pub(super) struct UploadedFile {
    pub size: u64,
    pub head: Vec<u8>,
    pub name: Option<String>,
}

/// What probing found: pixel size for images, duration in seconds for audio, the inspection of a LoRA.
#[derive(Default)]
struct MediaDetails {
    width: Option<i64>,
    height: Option<i64>,
    duration: Option<f64>,
    lora: Option<LoraReport>,
}

/// Reads the form into `tmp`, checks the file's content, then stores it and returns the asset record.
async fn receive_and_store(
    state: &AppState,
    multipart: &mut Multipart,
    tmp: &FsPath,
    sent: &mut SentFields,
) -> Result<UploadedAsset, ApiError> {
    let form = read_form(multipart, tmp, sent).await?;
    let Some((kind, _)) = form.kind else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "kind is required",
            "kind",
        ));
    };
    let Some(file) = form.file else {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "file is required",
            "file",
        ));
    };
    let Some((ext, mime)) = sniff(kind, &file.head, file.size) else {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the file's content is not a supported {kind} format"),
            "file",
        ));
    };
    let details = probe_details(kind, ext, tmp).await?;
    let stored = state
        .storage
        .objects
        .put_file(tmp, ext)
        .await
        .map_err(ApiError::internal)?;
    let input = AssetInput {
        kind: kind.into(),
        object_key: stored.key,
        sha256: stored.sha256,
        size_bytes: stored.size as i64,
        mime: mime.into(),
        width: details.width,
        height: details.height,
        original_name: file.name,
    };
    let asset = record_asset(&state.storage.db, &input, details.duration, &form.folder).await?;
    Ok(UploadedAsset {
        asset,
        lora: details.lora,
    })
}

/// A multipart read error as a 400 carrying the parser's message.
pub(super) fn bad_multipart(e: MultipartError) -> ApiError {
    ApiError::bad_request(e.body_text())
}

/// Reads the multipart fields in order; the file is streamed to `tmp` within the kind's size limit.
async fn read_form(
    multipart: &mut Multipart,
    tmp: &FsPath,
    sent: &mut SentFields,
) -> Result<UploadForm, ApiError> {
    let mut form = UploadForm {
        kind: None,
        folder: String::new(),
        file: None,
    };
    while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
        match field.name().unwrap_or("") {
            "kind" => {
                let v = field.text().await.map_err(bad_multipart)?;
                sent.kind = v.trim().chars().take(20).collect();
                form.kind = Some(parse_kind(&v)?);
            }
            "folder" => {
                let v = field.text().await.map_err(bad_multipart)?;
                sent.folder = v.trim().chars().take(100).collect();
                form.folder = parse_folder(&v)?;
            }
            "file" => {
                let Some((_, limit)) = form.kind else {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "send the kind field before the file",
                        "kind",
                    ));
                };
                form.file = Some(stream_file(&mut field, tmp, limit).await?);
            }
            other => return Err(ApiError::bad_request(format!("unknown field {other:?}"))),
        }
    }
    Ok(form)
}

/// The `kind` field: one of [`KINDS`], with its size limit.
fn parse_kind(v: &str) -> Result<(&'static str, u64), ApiError> {
    KINDS
        .iter()
        .copied()
        .find(|(k, _)| *k == v.trim())
        .ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "kind must be headshot, background, audio or lora",
                "kind",
            )
        })
}

/// The `folder` field, trimmed: at most 100 bytes and no control characters.
fn parse_folder(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.len() > 100 || v.chars().any(|c| c.is_control()) {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "folder must be at most 100 characters",
            "folder",
        ));
    }
    Ok(v.to_string())
}

/// Streams the `file` field to `tmp`, keeping its first 64 bytes for sniffing; 413 once it passes `limit`.
pub(super) async fn stream_file(
    field: &mut Field<'_>,
    tmp: &FsPath,
    limit: u64,
) -> Result<UploadedFile, ApiError> {
    let name = field
        .file_name()
        .map(|n| n.chars().take(200).collect::<String>());
    let mut out = tokio::fs::File::create(tmp)
        .await
        .map_err(ApiError::internal)?;
    let (mut size, mut head) = (0u64, Vec::new());
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        size += chunk.len() as u64;
        if size > limit {
            drain(field).await;
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("file is larger than {} MB", limit >> 20),
                "file",
            ));
        }
        if head.len() < 64 {
            head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
        }
        out.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    out.flush().await.map_err(ApiError::internal)?;
    Ok(UploadedFile { size, head, name })
}

/// Reads (and drops) a bounded remainder of an oversized field so the client is still listening for the 413.
async fn drain(field: &mut Field<'_>) {
    let mut drained = 0u64;
    while drained < DRAIN_LIMIT {
        match field.chunk().await {
            Ok(Some(c)) => drained += c.len() as u64,
            _ => break,
        }
    }
}

/// Checks images by decoding them (415 when undecodable, 422 over the pixel limit), probes audio with ffprobe
/// (415 when it cannot be decoded) and inspects a LoRA's header (its well-formedness was checked by sniffing).
async fn probe_details(kind: &str, ext: &str, tmp: &FsPath) -> Result<MediaDetails, ApiError> {
    let mut details = MediaDetails::default();
    match kind {
        "headshot" | "background" => {
            let (w, h) = checked_image(tmp, ext).await?;
            (details.width, details.height) = (Some(i64::from(w)), Some(i64::from(h)));
        }
        "audio" => match crate::media::probe(tmp).await {
            Ok(i) => details.duration = Some(i.duration),
            Err(_) => {
                return Err(error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the audio could not be decoded",
                    "file",
                ));
            }
        },
        "lora" => {
            let path = tmp.to_path_buf();
            let inspected = tokio::task::spawn_blocking(move || {
                crate::lora::inspect_file(&path, &crate::lora::InspectOptions::default())
            })
            .await;
            details.lora = match inspected {
                Ok(Ok(report)) => Some(report),
                Ok(Err(e)) => return Err(ApiError::internal(e)),
                Err(e) => return Err(ApiError::internal(e)),
            };
        }
        _ => {}
    }
    Ok(details)
}

/// The image check of uploads ([`super::images::check`]): its size, or 415 when it cannot be decoded and 422
/// above the pixel limit.
pub(super) async fn checked_image(tmp: &FsPath, ext: &str) -> Result<(u32, u32), ApiError> {
    super::images::check(tmp, ext).await.map_err(|p| match p {
        super::images::ImageProblem::TooManyPixels { .. } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            p.to_string(),
            "file",
        ),
        super::images::ImageProblem::Undecodable(_) => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            p.to_string(),
            "file",
        ),
    })
}

/// Records the stored object as an asset (deduplicated by kind and content), sets its details, reads it back.
async fn record_asset(
    db: &Db,
    input: &AssetInput,
    duration: Option<f64>,
    folder: &str,
) -> Result<AssetRecord, ApiError> {
    let id = db.upsert_asset(input).await?;
    db.set_asset_details(&id, duration, folder).await?;
    db.get_asset(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("asset"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header length of 2^64 - 8 once passed `len + 8 <= size` by wrapping around (and panicked in debug).
    #[test]
    fn a_lora_header_length_near_the_u64_limit_is_not_a_safetensors_file() {
        let mut head = (u64::MAX - 7).to_le_bytes().to_vec();
        head.extend_from_slice(b"{\"a\":1}");
        assert_eq!(sniff("lora", &head, 1000), None);
        let mut ok = 8u64.to_le_bytes().to_vec();
        ok.extend_from_slice(b"{\"a\":1}");
        assert_eq!(
            sniff("lora", &ok, 16),
            Some(("safetensors", "application/octet-stream"))
        );
    }

    #[test]
    fn sniffing_trusts_content_not_names() {
        assert_eq!(
            sniff("headshot", b"\x89PNG\r\n\x1a\n....", 100),
            Some(("png", "image/png"))
        );
        assert_eq!(sniff("headshot", b"hello, I am text", 100), None);
        assert_eq!(
            sniff("audio", b"RIFF\0\0\0\0WAVEfmt ", 100),
            Some(("wav", "audio/wav"))
        );
        let mut st = 10u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"a\":1}   ");
        assert_eq!(
            sniff("lora", &st, 18),
            Some(("safetensors", "application/octet-stream"))
        );
        assert_eq!(sniff("lora", &st, 12), None, "header longer than the file");
    }
}
