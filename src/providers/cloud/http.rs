//! HTTP plumbing shared by the cloud clients: timeouts, error classes, retries with the one backoff
//! function, polling cadence, and capped, verified downloads of results.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::net::{FetchGuard, backoff_delay};
use crate::providers::{JobCtx, ProviderError};

/// How a failed call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Auth, validation, policy, quota: stop.
    Terminal,
    /// The provider's concurrency limit: wait for a slot without spending an attempt.
    WaitForSlot,
    /// Rate limit, 5xx, network: back off and retry.
    Retryable,
}

/// A failed call with its class and the delay the provider asked for.
#[derive(Debug, Clone)]
pub struct CallError {
    /// Class.
    pub class: ErrorClass,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Readable reason (no secrets).
    pub message: String,
    /// `Retry-After`, when given.
    pub retry_after: Option<Duration>,
    /// The request may have reached the provider (anything but a refused connection or an HTTP answer).
    pub maybe_delivered: bool,
    /// The error body, when it was JSON.
    pub body: Value,
}

impl CallError {
    /// A transport failure (connect, timeout, reset): retryable.
    pub fn transport(e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "connection failed"
        };
        Self {
            class: ErrorClass::Retryable,
            status: None,
            message: kind.to_string(),
            retry_after: None,
            maybe_delivered: !e.is_connect(),
            body: Value::Null,
        }
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600)),
    )
}

/// The default class of an HTTP status (providers refine it from the body).
pub fn class_of(status: StatusCode) -> ErrorClass {
    match status.as_u16() {
        408 | 429 | 500..=599 => ErrorClass::Retryable,
        _ => ErrorClass::Terminal,
    }
}

/// A random number in 0–1 for backoff jitter.
pub fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    }
}

/// Settings every provider call shares: the time scale of waits and the outbound address rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    /// Multiplies poll intervals, deadlines and backoff (`DEVATAR_PROVIDER_TIME_SCALE`; tests use small values).
    pub time_scale: f64,
    /// Result downloads may reach private addresses (`DEVATAR_ALLOW_PRIVATE_URLS=1`; tests and local fakes).
    pub allow_private_urls: bool,
    /// Where job-completion webhooks wake poll loops, when this process can be reached (see
    /// [`crate::providers::hooks`]); `None` sends no callback URL.
    pub hooks: Option<crate::providers::hooks::JobHooks>,
}

impl Default for Net {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            allow_private_urls: false,
            hooks: None,
        }
    }
}

impl Net {
    /// The settings of `cfg`.
    pub fn of(cfg: &super::CloudConfig) -> Self {
        Self {
            time_scale: cfg.time_scale,
            allow_private_urls: cfg.allow_private_urls,
            hooks: cfg.hooks.clone(),
        }
    }

    /// Registers a job for a webhook wake-up: under a fresh token, or again under the callback URL `stored` for
    /// it; `None` when no callback base is configured or `stored` is not one of ours.
    pub fn hook(&self, stored: Option<&str>) -> Option<crate::providers::hooks::Hook> {
        self.hooks.as_ref()?.register(stored)
    }

    /// `d` scaled by the time scale.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale)
    }
}

/// A provider client: one connection pool shared by every provider call in the process (connections to a
/// provider are kept alive and reused), with a total time limit applied to each request it builds.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
    total: Duration,
}

impl Client {
    /// A GET request limited to the client's total time.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A POST request limited to the client's total time.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A PUT request limited to the client's total time.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.inner.request(method, url).timeout(self.total)
    }
}

/// The provider client whose requests each take at most `total` (the connect timeout every provider call needs
/// included). Every call shares one pool: a client built per call opened a connection per request.
pub fn client(total: Duration) -> Result<Client, ProviderError> {
    static SHARED: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let inner = match SHARED.get() {
        Some(inner) => inner.clone(),
        None => {
            let built = crate::net::client_builder()
                .connect_timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(crate::net::IDLE_PER_HOST)
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .map_err(|e| ProviderError::Invalid(format!("cannot build an HTTP client: {e}")))?;
            SHARED.get_or_init(|| built).clone()
        }
    };
    Ok(Client { inner, total })
}

/// How much of a file an upload reads at a time, and how much of a download is gathered before it is written
/// (64 KiB: with 128 transfers in flight, 256 KiB buffers raised the 1,000-scene peak RSS by ~45 MB):
/// each read or write of a `tokio::fs::File` is a trip to the blocking thread pool, and the default 4-8 KiB
/// chunks made a few hundred of them per clip.
pub const FILE_CHUNK: usize = 64 << 10;

/// A request body streaming `file` in [`FILE_CHUNK`] reads.
pub fn file_body(file: tokio::fs::File) -> reqwest::Body {
    reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
        file, FILE_CHUNK,
    ))
}

/// Whether a request may be sent again after it possibly reached the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads, and submits the provider deduplicates (idempotency key, unique external id).
    Safe,
    /// A submit that could start (and bill) a second job: an uncertain outcome stops with `NeedsAttention`.
    Unsafe,
}

/// Sends `build()` until it succeeds, retrying retryable failures up to `attempts` times (waiting for a slot
/// does not spend an attempt, up to a bounded number of waits). `classify` refines the class from the body.
pub async fn call_with_retries<B, C>(
    net: &Net,
    provider: &'static str,
    attempts: u32,
    repeat: Repeat,
    job: &JobCtx,
    build: B,
    classify: C,
) -> Result<Response, ProviderError>
where
    B: Fn() -> RequestBuilder,
    C: Fn(StatusCode, &Value) -> ErrorClass,
{
    call_keeping_body(net, provider, attempts, repeat, job, build, classify)
        .await
        .map_err(|(e, _)| e)
}

/// [`call_with_retries`], also returning the JSON body of a terminal error (e.g. an id to adopt).
pub async fn call_keeping_body<B, C>(
    net: &Net,
    provider: &'static str,
    attempts: u32,
    repeat: Repeat,
    job: &JobCtx,
    build: B,
    classify: C,
) -> Result<Response, (ProviderError, Value)>
where
    B: Fn() -> RequestBuilder,
    C: Fn(StatusCode, &Value) -> ErrorClass,
{
    let mut failures = 0u32;
    let mut slot_waits = 0u32;
    loop {
        let err = match send(build(), &classify).await {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        if err.maybe_delivered && repeat == Repeat::Unsafe {
            return Err((
                ProviderError::NeedsAttention(format!(
                    "{provider}: the submit {} after it may have reached the provider; submitting again \
                     could pay twice",
                    err.message
                )),
                err.body,
            ));
        }
        match err.class {
            ErrorClass::Terminal => {
                return Err((
                    ProviderError::Rejected {
                        provider,
                        message: err.message,
                    },
                    err.body,
                ));
            }
            ErrorClass::WaitForSlot if slot_waits < 30 => {
                slot_waits += 1;
                wait_for_slot(net, provider, job, slot_waits, &err).await;
            }
            _ => {
                failures += 1;
                if failures >= attempts {
                    return Err((
                        ProviderError::Unavailable {
                            provider,
                            message: format!("{} (after {failures} attempts)", err.message),
                        },
                        err.body,
                    ));
                }
                back_off(net, provider, job, failures, &err).await;
            }
        }
    }
}

/// Sleeps before asking again for a busy provider's slot (the `slot_waits`-th wait), noting why.
async fn wait_for_slot(
    net: &Net,
    provider: &'static str,
    job: &JobCtx,
    slot_waits: u32,
    err: &CallError,
) {
    let wait = backoff_delay(
        slot_waits.min(5),
        net.scaled(Duration::from_secs(2)),
        net.scaled(Duration::from_secs(60)),
        err.retry_after.map(|d| net.scaled(d)),
        jitter(),
    );
    job.note(format!(
        "{provider}: waiting for a free slot ({})",
        err.message
    ));
    tokio::time::sleep(wait).await;
}

/// Sleeps before retry number `failures` of a retryable failure, noting the retry.
async fn back_off(net: &Net, provider: &'static str, job: &JobCtx, failures: u32, err: &CallError) {
    let wait = backoff_delay(
        failures - 1,
        net.scaled(Duration::from_secs(1)),
        net.scaled(Duration::from_secs(60)),
        err.retry_after.map(|d| net.scaled(d)),
        jitter(),
    );
    job.note(format!(
        "{provider}: {} — retry {failures} in {:.1} s",
        err.message,
        wait.as_secs_f64()
    ));
    tokio::time::sleep(wait).await;
}

/// Sends once: a 2xx response, or the classified error (the body is read for the reason).
pub async fn send<C>(req: RequestBuilder, classify: &C) -> Result<Response, CallError>
where
    C: Fn(StatusCode, &Value) -> ErrorClass,
{
    let resp = req.send().await.map_err(|e| CallError::transport(&e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = retry_after(resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Err(CallError {
        class: classify(status, &body),
        status: Some(status.as_u16()),
        message: format!("HTTP {}: {}", status.as_u16(), reason(&body, &text)),
        retry_after,
        maybe_delivered: false,
        body,
    })
}

/// A short human reason from an error body (any provider's shape), never more than 300 characters.
pub fn reason(body: &Value, raw: &str) -> String {
    let pick = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(_) => v
                .get("message")
                .or_else(|| v.get("msg"))
                .and_then(Value::as_str)
                .map(|m| match v.get("status").and_then(Value::as_str) {
                    Some(code) => format!("{code}: {m}"),
                    None => m.to_string(),
                }),
            Value::Array(items) => items.first().and_then(|i| {
                i.get("msg").and_then(Value::as_str).map(|m| {
                    format!(
                        "{m} ({})",
                        i.get("loc").map(Value::to_string).unwrap_or_default()
                    )
                })
            }),
            _ => None,
        }
    };
    let text = body
        .get("detail")
        .and_then(pick)
        .or_else(|| body.get("message").and_then(pick))
        .or_else(|| body.get("error").and_then(pick))
        .unwrap_or_else(|| {
            let t = raw.trim();
            if t.starts_with('<') {
                "an HTML page instead of JSON".to_string()
            } else if t.is_empty() {
                "an empty body".to_string()
            } else {
                t.to_string()
            }
        });
    redact_signed_urls(&text).chars().take(300).collect()
}

/// Replaces the query of every presigned URL in `text` (one carrying an `X-Amz-` signature) with `?…`: a provider
/// that echoes our input URL in an error must not put a bearer credential into our logs or database.
pub fn redact_signed_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(q) = rest.find('?') {
        let end = rest[q..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '>' | ','))
            .map_or(rest.len(), |e| q + e);
        let query = &rest[q..end];
        out.push_str(&rest[..q]);
        if query.to_ascii_lowercase().contains("x-amz-") {
            out.push_str("?…");
        } else {
            out.push_str(query);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Reads a 2xx response as JSON, with a clear error for HTML or truncated bodies.
pub async fn json_body(provider: &'static str, resp: Response) -> Result<Value, ProviderError> {
    let text = resp.text().await.map_err(|e| ProviderError::Unavailable {
        provider,
        message: format!(
            "reading the answer failed: {}",
            CallError::transport(&e).message
        ),
    })?;
    serde_json::from_str(&text).map_err(|_| {
        ProviderError::BadOutput(format!(
            "{provider} answered with something that is not JSON ({})",
            reason(&Value::Null, &text)
        ))
    })
}

/// Kinds of media a download must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// PNG or JPEG.
    Image,
    /// MP4 / MOV.
    Video,
    /// MP3, WAV, OGG, M4A.
    Audio,
    /// A safetensors file (a LoRA): a little-endian header length, then the JSON header.
    Safetensors,
}

/// Whether `head` starts like `kind`.
pub fn magic_ok(kind: MediaKind, head: &[u8]) -> bool {
    match kind {
        MediaKind::Image => {
            head.starts_with(b"\x89PNG\r\n\x1a\n")
                || head.starts_with(&[0xFF, 0xD8, 0xFF])
                || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP")
        }
        MediaKind::Video => head.len() >= 8 && &head[4..8] == b"ftyp",
        MediaKind::Audio => {
            head.starts_with(b"ID3")
                || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
                || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE")
                || head.starts_with(b"OggS")
                || (head.len() >= 8 && &head[4..8] == b"ftyp")
        }
        MediaKind::Safetensors => head.len() >= 9 && head[8] == b'{' && head[4..8] == [0; 4],
    }
}

/// Downloads a provider result to `dest` through the fetch guard: streamed, capped at `cap` bytes, the
/// `Content-Length` verified, the content checked by magic bytes. Retried (from scratch) up to 3 times on
/// transport errors or truncation; never leaves a partial file.
pub async fn download(
    net: &Net,
    provider: &'static str,
    url: &str,
    dest: &Path,
    kind: MediaKind,
    cap: u64,
) -> Result<u64, ProviderError> {
    let guard = FetchGuard::new(net.allow_private_urls);
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(net.scaled(Duration::from_millis(500 * 2u64.pow(attempt)))).await;
        }
        match download_once(&guard, url, dest, kind, cap).await {
            Ok(n) => return Ok(n),
            Err((retry, msg)) => {
                let _ = tokio::fs::remove_file(dest).await;
                if !retry {
                    return Err(ProviderError::BadOutput(format!(
                        "{provider} result: {msg}"
                    )));
                }
                last = msg;
            }
        }
    }
    Err(ProviderError::Unavailable {
        provider,
        message: format!("downloading the result failed: {last}"),
    })
}

async fn download_once(
    guard: &FetchGuard,
    url: &str,
    dest: &Path,
    kind: MediaKind,
    cap: u64,
) -> Result<u64, (bool, String)> {
    let resp = guard
        .send(Method::GET, url, &[])
        .await
        .map_err(|e| (true, e.to_string()))?;
    result_status(resp.status())?;
    let expected = resp.content_length();
    if expected.is_some_and(|n| n > cap) {
        return Err((false, format!("the result is larger than {cap} bytes")));
    }
    let file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| (false, format!("cannot write {}: {e}", dest.display())))?;
    let mut file = tokio::io::BufWriter::with_capacity(FILE_CHUNK, file);
    let mut stream = resp.bytes_stream();
    let mut written = 0u64;
    let mut head = Vec::with_capacity(16);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            (
                true,
                format!(
                    "the download broke off: {}",
                    CallError::transport(&e).message
                ),
            )
        })?;
        written += chunk.len() as u64;
        if written > cap {
            return Err((false, format!("the result is larger than {cap} bytes")));
        }
        if head.len() < 16 {
            head.extend_from_slice(&chunk[..chunk.len().min(16 - head.len())]);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| (false, format!("cannot write {}: {e}", dest.display())))?;
        crate::failpoint::hit(crate::failpoint::MID_DOWNLOAD);
    }
    file.flush().await.map_err(|e| (false, e.to_string()))?;
    if let Some(n) = expected
        && n != written
    {
        return Err((true, format!("truncated download: {written} of {n} bytes")));
    }
    if !magic_ok(kind, &head) {
        return Err((
            false,
            format!("the result is not {} (wrong content)", kind_name(kind)),
        ));
    }
    Ok(written)
}

/// A result URL's HTTP status as a download error: gone for good (403/404/410 — expired or removed), or another
/// failure, retried only for a server error.
fn result_status(status: StatusCode) -> Result<(), (bool, String)> {
    if status == StatusCode::FORBIDDEN
        || status == StatusCode::GONE
        || status == StatusCode::NOT_FOUND
    {
        return Err((
            false,
            format!(
                "the result URL answered HTTP {} (expired or removed)",
                status.as_u16()
            ),
        ));
    }
    if !status.is_success() {
        return Err((
            status.is_server_error(),
            format!("the result URL answered HTTP {}", status.as_u16()),
        ));
    }
    Ok(())
}

/// What a media kind is called in a wrong-content error.
fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "an image",
        MediaKind::Video => "a video",
        MediaKind::Audio => "audio",
        MediaKind::Safetensors => "a safetensors file",
    }
}

/// A `data:` URI of a local file, for APIs that accept inline media.
pub async fn data_uri(path: &Path, mime: &str) -> Result<String, ProviderError> {
    use base64::Engine;
    let bytes = tokio::fs::read(path).await?;
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// A job id a provider answered with, checked before it is stored or placed in a URL path: 1 to 128 letters,
/// digits, `-`, `_`, `.` or `:`, and not `.` or `..` — anything else (a `/`, `?`, `%` or a space) could send a later
/// request, with our key, to another path.
pub fn remote_id(provider: &'static str, what: &str, raw: &str) -> Result<String, ProviderError> {
    let id = raw.trim();
    let safe = (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        && id != "."
        && id != "..";
    if !safe {
        return Err(ProviderError::BadOutput(format!(
            "{provider} answered with an unusable {what} ({} characters; expected letters, digits, '-', '_', '.' \
             or ':')",
            id.chars().count()
        )));
    }
    Ok(id.to_string())
}

/// Trims a URL and rejects control characters and inner whitespace before it is sent anywhere.
pub fn clean_url(field: &str, url: &str) -> Result<String, ProviderError> {
    let t = url.trim();
    if t.is_empty() || t.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ProviderError::Invalid(format!(
            "{field} is empty or contains spaces or control characters"
        )));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Provider calls share one connection pool (a client per call opened a connection per request), and each
    /// request still ends at its client's total time.
    #[tokio::test]
    async fn provider_calls_reuse_a_connection_and_keep_their_time_limit() {
        let server = crate::net::test_server::CountingServer::start(false).await;
        for _ in 0..3 {
            let http = client(Duration::from_secs(5)).unwrap();
            let resp = http.get(&server.url("/status")).send().await.unwrap();
            assert_eq!(resp.text().await.unwrap(), "ok");
        }
        assert_eq!(server.connections(), 1);

        let silent = crate::net::test_server::CountingServer::start(true).await;
        let started = std::time::Instant::now();
        let err = client(Duration::from_millis(300))
            .unwrap()
            .post(&silent.url("/submit"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn presigned_urls_are_cut_from_provider_messages() {
        let msg = "cannot fetch https://b.r2.dev/media/ab/x.mp4?X-Amz-Algorithm=AWS4&X-Amz-Signature=abc123, \
                   nor https://x.test/a.png?size=2";
        let clean = redact_signed_urls(msg);
        assert!(
            !clean.contains("abc123") && !clean.contains("X-Amz"),
            "{clean}"
        );
        assert!(
            clean.contains("https://b.r2.dev/media/ab/x.mp4?…"),
            "{clean}"
        );
        assert!(clean.contains("a.png?size=2"), "{clean}");
        let body = serde_json::json!({"message": "bad url https://h/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=s"});
        assert!(!reason(&body, "").contains("AK%2F1"));
    }

    #[test]
    fn reasons_come_from_every_error_shape() {
        let el = serde_json::json!({"detail": {"status": "quota_exceeded", "message": "Quota exceeded"}});
        assert_eq!(reason(&el, ""), "quota_exceeded: Quota exceeded");
        let fastapi =
            serde_json::json!({"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]});
        assert!(reason(&fastapi, "").starts_with("field required"));
        let sync =
            serde_json::json!({"statusCode": 422, "message": "property synergize does not exist"});
        assert_eq!(reason(&sync, ""), "property synergize does not exist");
        assert_eq!(
            reason(&Value::Null, "<html>502</html>"),
            "an HTML page instead of JSON"
        );
    }

    #[test]
    fn magic_bytes_tell_media_from_error_pages() {
        assert!(magic_ok(MediaKind::Image, b"\x89PNG\r\n\x1a\n...."));
        assert!(magic_ok(MediaKind::Video, b"\0\0\0\x20ftypisom"));
        assert!(magic_ok(MediaKind::Audio, b"ID3\x04\0\0"));
        assert!(!magic_ok(MediaKind::Video, b"<html><body>"));
        assert!(!magic_ok(MediaKind::Image, b"{\"error\":1}"));
    }

    #[test]
    fn urls_are_trimmed_and_control_characters_refused() {
        assert_eq!(
            clean_url("loras[0].path", " https://x/a.safetensors\n").unwrap(),
            "https://x/a.safetensors"
        );
        assert!(clean_url("u", "https://x/a b").is_err());
        assert!(clean_url("u", "  ").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{json_value, target, text_from};

    const KEYS: &[&str] = &["detail", "message", "msg", "error", "status", "loc", "code"];
    const STRINGS: &[&str] = &[
        "<html>",
        "",
        "quota exceeded",
        "https://b.example/o.png?X-Amz-Signature=abc",
    ];
    const PIECES: &[&str] = &[
        " ",
        "\"",
        "'",
        ",",
        ")",
        "]",
        ">",
        "?",
        "&",
        "=",
        "é",
        "\n",
        "x-amz-",
        "https://h/p",
    ];

    /// An error reason is at most 300 characters and never carries the signature of a presigned URL it echoes,
    /// whatever surrounds the URL.
    #[test]
    fn fuzz_error_reason_and_redaction() {
        target("error_reason_and_redaction", |u| {
            let secret = format!("{:016x}", u.arbitrary::<u64>()? | 1 << 63);
            let url = format!(
                "https://bucket.example/media/ab/c.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=K%2F20261206\
                 %2Fauto%2Fs3%2Faws4_request&X-Amz-Date=20261206T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=\
                 host&X-Amz-Signature={secret}"
            );
            let raw = format!("{}{url}{}", text_from(u, PIECES)?, text_from(u, PIECES)?);
            assert!(!redact_signed_urls(&raw).contains(&secret), "{raw}");
            let mut body = json_value(u, KEYS, STRINGS, 3)?;
            if let Value::Object(map) = &mut body {
                let key = *u.choose(&["detail", "message", "error"])?;
                map.insert(key.into(), Value::String(raw.clone()));
            }
            let why = reason(&body, &raw);
            assert!(why.chars().count() <= 300);
            assert!(!why.contains(&secret), "{why}");
            let id = text_from(
                u,
                &[
                    "a", "Z", "9", "-", "_", ".", ":", "/", "?", "%2F", " ", "..", "é",
                ],
            )?;
            if let Ok(ok) = remote_id("p", "id", &id) {
                assert!(!ok.is_empty() && ok.len() <= 128 && ok != "." && ok != "..");
                assert!(
                    ok.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
                );
            }
            Ok(())
        });
    }
}
