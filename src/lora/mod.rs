//! LoRA inspection from the safetensors header alone: a local file, or a URL read with HTTP Range requests
//! (never the whole file). See `docs/ARCHITECTURE.md` and LORA.md for the rules.

mod classify;
mod header;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use reqwest::{Method, StatusCode, header as http};
use serde::Serialize;

pub use classify::{Classification, classify, trigger_word_found};
pub use header::{Header, MAX_HEADER_BYTES, Tensor};

use crate::net::{FetchError, FetchGuard};

/// Bytes asked for in the first request: covers almost every LoRA header.
const FIRST_READ: u64 = 256 * 1024;
/// Below this the file is suspiciously small (the old "LoRA validation" threshold; a warning only).
const SMALL_FILE: u64 = 10 * 1024 * 1024;

/// What to check the LoRA against.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    /// The identity's trigger word.
    pub trigger_word: Option<String>,
    /// `flux-dev` or `flux-schnell`.
    pub base_model: Option<String>,
}

/// The inspection result (also `devatar lora inspect --json`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoraReport {
    /// `flux` | `flux2` | `sdxl` | `sd1` | `sd2` | `unknown`.
    pub family: String,
    /// Usable with the identity's base model through `fal-ai/flux-lora`.
    pub compatible: bool,
    /// `diffusers` | `kohya` | `other`.
    pub convention: String,
    /// Most common rank.
    pub rank: Option<u32>,
    /// Ranks differ per layer.
    pub rank_varies: bool,
    /// Alpha, when the metadata gives it.
    pub alpha: Option<f64>,
    /// dtypes of the tensors.
    pub dtypes: Vec<String>,
    /// Number of tensors.
    pub tensor_count: usize,
    /// File size, when known.
    pub file_size_bytes: Option<u64>,
    /// Bytes read to inspect it.
    pub bytes_read: u64,
    /// HTTP requests made (0 for files).
    pub requests: u32,
    /// Metadata, values trimmed for display.
    pub metadata: BTreeMap<String, String>,
    /// Trigger word in the training metadata: true/false, null when the metadata has no captions or names.
    pub trigger_word_found: Option<bool>,
    /// Blocking problems.
    pub errors: Vec<String>,
    /// Non-blocking remarks.
    pub warnings: Vec<String>,
}

impl LoraReport {
    /// True when nothing blocks using this LoRA.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn failed(error: String, bytes_read: u64, requests: u32, file_size: Option<u64>) -> Self {
        Self {
            family: "unknown".into(),
            convention: "other".into(),
            bytes_read,
            requests,
            file_size_bytes: file_size,
            errors: vec![error],
            ..Default::default()
        }
    }
}

/// The LoRA could not be read at all (as opposed to read and found wrong, which is a report with errors).
#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    /// Local file error.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The URL was refused or unreachable.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The server answered with an error status.
    #[error("the server answered {0}")]
    Status(StatusCode),
}

/// Builds the report from the header bytes read so far.
fn report(
    prefix: &[u8],
    file_size: Option<u64>,
    opts: &InspectOptions,
    bytes_read: u64,
    requests: u32,
) -> LoraReport {
    let h = match parse_prefix(prefix, file_size) {
        Ok(h) => h,
        Err(e) => return LoraReport::failed(e, bytes_read, requests, file_size),
    };
    let c = classify(&h);
    let mut r = LoraReport {
        family: c.family.into(),
        convention: c.convention.into(),
        rank: c.rank,
        rank_varies: c.rank_varies,
        alpha: c.alpha,
        dtypes: c.dtypes.clone(),
        tensor_count: h.tensors.len(),
        file_size_bytes: file_size,
        bytes_read,
        requests,
        metadata: h
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), display(v)))
            .collect(),
        ..Default::default()
    };
    r.errors.extend(blocking_error(&c, opts));
    r.compatible = r.errors.is_empty();
    add_warnings(&mut r, &c, &h, file_size, opts);
    r
}

/// The length prefix and the header it announces, parsed; the error a failed report carries otherwise.
fn parse_prefix(prefix: &[u8], file_size: Option<u64>) -> Result<Header, String> {
    let n = header::header_len(prefix)?;
    let Some(json) = prefix.get(8..8 + n as usize) else {
        return Err(format!(
            "truncated: header needs {} bytes, only {} available",
            8 + n,
            prefix.len()
        ));
    };
    header::parse(json, n, file_size)
}

/// What keeps the LoRA from being used with `fal-ai/flux-lora`, if anything (the first rule that applies).
fn blocking_error(c: &Classification, opts: &InspectOptions) -> Option<String> {
    if !c.is_lora {
        Some("not a LoRA: no LoRA factor tensors (lora_A/lora_down) in the file".into())
    } else if let Some(variant) = c.lycoris {
        Some(format!(
            "unsupported LyCORIS variant ({variant}): fal-ai/flux-lora expects a plain LoRA"
        ))
    } else if c.family != "flux" {
        let base = opts.base_model.as_deref().unwrap_or("flux-dev");
        Some(format!(
            "wrong family: this is a {} LoRA, not a Flux.1 LoRA for {base}",
            c.family
        ))
    } else {
        None
    }
}

/// Non-blocking remarks, in order: unusual rank, no metadata, small file, trigger word missing (which also
/// sets `trigger_word_found`).
fn add_warnings(
    r: &mut LoraReport,
    c: &Classification,
    h: &Header,
    file_size: Option<u64>,
    opts: &InspectOptions,
) {
    if let Some(rank) = c.rank
        && !(4..=128).contains(&rank)
    {
        r.warnings
            .push(format!("unusual rank {rank} (typical: 4–128)"));
    }
    if h.metadata.is_empty() {
        r.warnings.push("no metadata in the file".into());
    }
    if let Some(size) = file_size
        && size < SMALL_FILE
    {
        r.warnings.push(format!(
            "file is small ({:.1} MB): fine for a partial LoRA, check it is the right file",
            size as f64 / 1e6
        ));
    }
    if let Some(trigger) = &opts.trigger_word {
        r.trigger_word_found = trigger_word_found(&h.metadata, trigger);
        if r.trigger_word_found == Some(false) {
            r.warnings.push(format!(
                "trigger word {trigger} not found in the training metadata"
            ));
        }
    }
}

/// Trims a metadata value for display.
fn display(v: &str) -> String {
    let mut s: String = v.chars().take(200).collect();
    if v.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// Inspects a local `.safetensors` file, reading only its header.
pub fn inspect_file(path: &Path, opts: &InspectOptions) -> Result<LoraReport, LoraError> {
    let io = |source| LoraError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let mut prefix = [0u8; 8];
    let got = f.read(&mut prefix).map_err(io)?;
    if got < 8 {
        return Ok(LoraReport::failed(
            "truncated: fewer than 8 bytes".into(),
            got as u64,
            0,
            Some(size),
        ));
    }
    let n = match header::header_len(&prefix) {
        Ok(n) => n,
        Err(e) => return Ok(LoraReport::failed(e, 8, 0, Some(size))),
    };
    let mut buf = prefix.to_vec();
    f.take(n).read_to_end(&mut buf).map_err(io)?;
    let read = buf.len() as u64;
    Ok(report(&buf, Some(size), opts, read, 0))
}

/// Reads at most `cap` bytes of a response body.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: u64,
    into: &mut Vec<u8>,
) -> Result<(), LoraError> {
    while (into.len() as u64) < cap {
        match resp.chunk().await.map_err(FetchError::transport)? {
            Some(chunk) => {
                let room = (cap - into.len() as u64) as usize;
                into.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(())
}

/// Total size from `Content-Range: bytes a-b/TOTAL`.
fn content_range_total(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(http::CONTENT_RANGE)?
        .to_str()
        .ok()?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

/// Inspects a LoRA at a URL through the fetch guard with Range requests: 256 KiB first, then exactly the missing
/// header bytes if needed; a server that ignores Range is read only up to the cap.
pub async fn inspect_url(
    guard: &FetchGuard,
    url: &str,
    opts: &InspectOptions,
) -> Result<LoraReport, LoraError> {
    let range = |a: u64, b: u64| vec![(http::RANGE, format!("bytes={a}-{b}"))];
    let resp = guard
        .send(Method::GET, url, &range(0, FIRST_READ - 1))
        .await?;
    let mut requests = 1;
    let mut buf = Vec::new();
    let file_size;
    match resp.status() {
        StatusCode::PARTIAL_CONTENT => {
            file_size = content_range_total(&resp);
            read_capped(resp, FIRST_READ, &mut buf).await?;
        }
        StatusCode::OK => {
            // Range ignored: read the header at most, never the file.
            file_size = resp.content_length();
            read_header_only(resp, &mut buf).await?;
        }
        s => return Err(LoraError::Status(s)),
    }
    if buf.len() >= 8
        && let Ok(n) = header::header_len(&buf)
        && (buf.len() as u64) < 8 + n
        && file_size.is_none_or(|s| s >= 8 + n)
    {
        let resp = guard
            .send(Method::GET, url, &range(buf.len() as u64, 8 + n - 1))
            .await?;
        requests += 1;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(LoraError::Status(resp.status()));
        }
        let want = 8 + n;
        read_capped(resp, want, &mut buf).await?;
    }
    let read = buf.len() as u64;
    Ok(report(&buf, file_size, opts, read, requests))
}

/// For a 200 answer (Range ignored): read the length prefix and the header, never more.
async fn read_header_only(mut resp: reqwest::Response, buf: &mut Vec<u8>) -> Result<(), LoraError> {
    let mut limit = 8 + MAX_HEADER_BYTES;
    while (buf.len() as u64) < limit {
        let Some(chunk) = resp.chunk().await.map_err(FetchError::transport)? else {
            break;
        };
        let room = (limit - buf.len() as u64) as usize;
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= 8 {
            limit = header::header_len(buf)
                .map(|n| 8 + n)
                .unwrap_or(8)
                .min(limit);
        }
    }
    buf.truncate(limit as usize);
    Ok(())
}
