//! The one HTTP server behind every fake: routing, shared state, call counts, admin routes, connection
//! dropping and the transport-level faults.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::faults::{
    Endpoint, ErrorKind, FaultAction, FaultSet, FaultSpec, InjectedError, JobFate, Provider,
    RetryAfter,
};
use super::media::MediaStore;
use super::util::{http_date, json as json_resp, unix_secs, with_header};
use super::{FakeConfig, FakesError, elevenlabs, faces, fal, fal_storage, kling, synclabs};

/// Bodies above this are refused (Sync uploads allow 20 MB of video; data URIs inflate by a third).
const BODY_LIMIT: usize = 160 * 1024 * 1024;

/// Counter keys that always exist in `/__stats`.
pub(crate) const BASE_KEYS: &[&str] = &[
    "elevenlabs.tts",
    "elevenlabs.characters",
    "elevenlabs.voices",
    "elevenlabs.models",
    "elevenlabs.user",
    "fal.submit",
    "fal.status",
    "fal.result",
    "fal.cancel",
    "fal.storage.initiate",
    "fal.storage.upload",
    "kling.submit",
    "kling.status",
    "kling.list",
    "sync.submit",
    "sync.status",
    "sync.list",
    "sync.replay",
    "media.get",
];

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub cfg: FakeConfig,
    pub addr: SocketAddr,
    stats: Mutex<BTreeMap<String, u64>>,
    pub faults: Mutex<FaultSet>,
    pub media: MediaStore,
    pub http: reqwest::Client,
    pub fal: Mutex<fal::FalState>,
    /// Files uploaded through the fake Fal storage (kept across `/__reset`).
    pub fal_files: Mutex<fal_storage::FalFiles>,
    pub kling: Mutex<kling::KlingState>,
    pub sync: Mutex<synclabs::SyncState>,
    /// The faces LoRAs stand for (`--lora-face`, `--other-face`, `POST /__faces`).
    pub faces: Mutex<faces::FaceBook>,
}

fn base_stats() -> BTreeMap<String, u64> {
    BASE_KEYS.iter().map(|k| (k.to_string(), 0)).collect()
}

impl Shared {
    pub(crate) fn new(
        cfg: FakeConfig,
        addr: SocketAddr,
        media: MediaStore,
        faces: faces::FaceBook,
    ) -> Self {
        let http = crate::net::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            faults: Mutex::new(FaultSet::new(&cfg.faults)),
            cfg,
            addr,
            stats: Mutex::new(base_stats()),
            media,
            http,
            fal: Mutex::new(fal::FalState::default()),
            fal_files: Mutex::new(fal_storage::FalFiles::default()),
            kling: Mutex::new(kling::KlingState::default()),
            sync: Mutex::new(synclabs::SyncState::default()),
            faces: Mutex::new(faces),
        }
    }

    /// Adds one to a counter.
    pub(crate) fn count(&self, key: &str) {
        self.count_by(key, 1);
    }

    /// Adds `n` to a counter.
    pub(crate) fn count_by(&self, key: &str, n: u64) {
        *lock(&self.stats).entry(key.to_string()).or_insert(0) += n;
    }

    /// Raises a high-water mark (e.g. `kling.peak_active`: most jobs ever in flight at once).
    pub(crate) fn peak(&self, key: &str, value: u64) {
        let mut stats = lock(&self.stats);
        let v = stats.entry(key.to_string()).or_insert(0);
        *v = (*v).max(value);
    }

    pub(crate) fn stats(&self) -> BTreeMap<String, u64> {
        lock(&self.stats).clone()
    }

    pub(crate) fn reset(&self) {
        *lock(&self.stats) = base_stats();
        *lock(&self.fal) = fal::FalState::default();
        *lock(&self.kling) = kling::KlingState::default();
        *lock(&self.sync) = synclabs::SyncState::default();
    }

    pub(crate) fn set_faults(&self, specs: &[FaultSpec]) {
        lock(&self.faults).replace(specs);
    }

    pub(crate) fn add_fault(&self, spec: FaultSpec) {
        lock(&self.faults).add(spec);
    }

    pub(crate) fn take_fates(&self, provider: Provider) -> Vec<JobFate> {
        lock(&self.faults).take_fates(provider)
    }

    /// Whether the Flux image with a LoRA being created now drifts to another person (an `identity-drift`
    /// count is spent only while faces are known).
    pub(crate) fn take_drift(&self) -> bool {
        let knows_faces = !lock(&self.faces).is_empty();
        knows_faces && lock(&self.faults).take_drift()
    }

    /// Reads the photos (off the async runtime) and replaces the known faces, or adds to them with `append`.
    pub(crate) async fn set_faces(
        &self,
        loras: Vec<faces::LoraFace>,
        others: Vec<PathBuf>,
        append: bool,
    ) -> Result<(), FakesError> {
        let models = self.cfg.face_models.clone();
        let book = tokio::task::spawn_blocking(move || faces::load(&loras, &others, &models))
            .await
            .map_err(|e| FakesError::Config(format!("reading face photos stopped: {e}")))??;
        let mut known = lock(&self.faces);
        if append {
            known.merge(book);
        } else {
            *known = book;
        }
        Ok(())
    }
}

/// One accepted connection, which a handler may cut.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    kill: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Makes every later read or write on the connection fail, so it closes without an answer.
    pub(crate) fn kill(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be cut from inside a handler.
pub(crate) struct KillableListener(pub TcpListener);

impl Listener for KillableListener {
    type Io = KillableIo;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let kill = Arc::new(AtomicBool::new(false));
                    return (
                        KillableIo {
                            inner: stream,
                            kill: kill.clone(),
                        },
                        ConnHandle { kill },
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr().map(|_| ConnHandle {
            kill: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// A TCP stream that fails every operation once killed.
pub(crate) struct KillableIo {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl KillableIo {
    fn dead(&self) -> bool {
        self.kill.load(Ordering::SeqCst)
    }
}

fn reset_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection dropped by fault",
    )
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(reset_err()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One request's view of the server.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub conn: ConnHandle,
    /// `http://host:port` as the client reached us; URLs we return start with it.
    pub base: String,
}

impl Ctx {
    /// Counts an HTTP request under `requests.<key>` (every request, whatever its outcome).
    pub(crate) fn request(&self, key: &str) {
        self.shared.count(&format!("requests.{key}"));
    }

    /// Per-call fault actions for this call.
    pub(crate) fn take_call(&self, provider: Provider, endpoint: Endpoint) -> Vec<FaultAction> {
        lock(&self.shared.faults).take_call(provider, endpoint)
    }

    /// A URL for one of our media files.
    pub(crate) fn media_url(&self, name: &str) -> String {
        format!("{}/__media/{name}", self.base)
    }

    /// Applies the transport-level faults (delay, drop, garbled bodies) to an answer.
    pub(crate) async fn finish(&self, resp: Response, actions: &[FaultAction]) -> Response {
        for a in actions {
            if let FaultAction::Slow(d) = a {
                tokio::time::sleep(*d).await;
            }
        }
        let mut resp = resp;
        for a in actions {
            match a {
                FaultAction::Drop => {
                    self.conn.kill();
                    return resp;
                }
                FaultAction::Malformed => {
                    let (parts, body) = resp.into_parts();
                    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
                        .await
                        .unwrap_or_default();
                    let cut = bytes.slice(0..bytes.len() / 2);
                    let mut r = Response::from_parts(parts, Body::from(cut));
                    r.headers_mut().remove(header::CONTENT_LENGTH);
                    resp = r;
                }
                FaultAction::Html => {
                    resp = html_page(StatusCode::OK);
                }
                FaultAction::Empty => {
                    let (parts, _) = resp.into_parts();
                    let mut r = Response::from_parts(parts, Body::empty());
                    r.headers_mut().remove(header::CONTENT_LENGTH);
                    resp = r;
                }
                FaultAction::WrongContentType => {
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                }
                _ => {}
            }
        }
        if let Some(d) = actions.iter().find_map(|a| match a {
            FaultAction::Trickle(d) => Some(*d),
            _ => None,
        }) {
            resp = trickle(resp, d).await;
        }
        resp
    }
}

async fn trickle(resp: Response, over: Duration) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let pieces = 10usize;
    let step = bytes.len().div_ceil(pieces).max(1);
    let chunks: Vec<Bytes> = (0..bytes.len())
        .step_by(step)
        .map(|i| bytes.slice(i..(i + step).min(bytes.len())))
        .collect();
    let delay = over / (chunks.len().max(1) as u32);
    let stream = futures::stream::unfold(chunks.into_iter(), move |mut it| async move {
        let next = it.next()?;
        tokio::time::sleep(delay).await;
        Some((Ok::<Bytes, io::Error>(next), it))
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// An HTML error page (what a proxy or CDN sends).
pub(crate) fn html_page(status: StatusCode) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center><hr><center>nginx</center></body></html>\n",
        status
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The first injected error among the actions.
pub(crate) fn injected_error(actions: &[FaultAction]) -> Option<&InjectedError> {
    actions.iter().find_map(|a| match a {
        FaultAction::Error(e) => Some(e),
        _ => None,
    })
}

/// Adds the `Retry-After` an injected error asks for.
pub(crate) fn retry_after(resp: Response, e: &InjectedError) -> Response {
    match e.retry_after {
        Some(RetryAfter::Seconds(s)) => with_header(resp, "retry-after", &s.to_string()),
        Some(RetryAfter::Date(s)) => {
            with_header(resp, "retry-after", &http_date(unix_secs() + s as i64))
        }
        None => resp,
    }
}

/// The generic part of rendering an injected error: HTML pages, then the provider's own body.
pub(crate) fn render_injected(
    e: &InjectedError,
    provider_body: impl FnOnce(&InjectedError) -> Response,
) -> Response {
    let resp = if e.kind == ErrorKind::Html {
        html_page(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY))
    } else {
        provider_body(e)
    };
    retry_after(resp, e)
}

fn base_url(headers: &HeaderMap, addr: SocketAddr) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        });
    match host {
        Some(h) => format!("http://{h}"),
        None => format!("http://{addr}"),
    }
}

/// Builds the router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(shared)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
) -> Response {
    let base = base_url(req.headers(), shared.addr);
    let ctx = Ctx { shared, conn, base };
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["__stats"] => return json_resp(200, json!(ctx.shared.stats())),
        ["__reset"] if req.method() == Method::POST => {
            ctx.shared.reset();
            return json_resp(200, json!({"ok": true}));
        }
        ["__faults"] => return faults_admin(&ctx, req).await,
        ["__faces"] => return faces::admin(&ctx, req).await,
        ["__health"] => return json_resp(200, json!({"ok": true})),
        ["__latency"] => return json_resp(200, ctx.shared.cfg.latency_table()),
        ["__media", name] => {
            let (parts, _) = req.into_parts();
            return media_route(&ctx, &parts, name).await;
        }
        _ => {}
    }
    if path.starts_with("/v1/text-to-speech/")
        || path == "/v1/voices"
        || path.starts_with("/v1/voices/")
        || path == "/v1/models"
        || path.starts_with("/v1/user")
    {
        elevenlabs::handle(&ctx, req).await
    } else if path.starts_with("/v1/videos/image2video") {
        kling::handle(&ctx, req).await
    } else if path.starts_with("/v2/generate") || path.starts_with("/v2/generations/") {
        synclabs::handle(&ctx, req).await
    } else if fal_storage::owns(&path) {
        fal_storage::handle(&ctx, req).await
    } else {
        fal::handle(&ctx, req).await
    }
}

async fn media_route(ctx: &Ctx, req: &Parts, name: &str) -> Response {
    if req.method != Method::GET && req.method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "").into_response();
    }
    let Some(item) = ctx.shared.media.get(name) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        )
            .into_response();
    };
    serve_media(ctx, &item, req).await
}

/// Serves a media item with the media faults (shared with Sync's signed result URLs).
pub(crate) async fn serve_media(
    ctx: &Ctx,
    item: &super::media::MediaItem,
    req: &Parts,
) -> Response {
    ctx.shared.count("media.get");
    let actions = lock(&ctx.shared.faults).take_media();
    let resp = super::media::serve(
        &ctx.shared.media,
        item,
        &req.method,
        &req.uri,
        &req.headers,
        &actions,
    )
    .await;
    ctx.finish(resp, &actions).await
}

async fn faults_admin(ctx: &Ctx, req: Request) -> Response {
    if req.method() == Method::GET {
        let list: Vec<Value> = lock(&ctx.shared.faults)
            .describe()
            .into_iter()
            .map(|(spec, remaining)| json!({"spec": spec, "remaining": remaining}))
            .collect();
        return json_resp(200, json!(list));
    }
    if req.method() != Method::POST {
        return json_resp(405, json!({"error": "use GET or POST"}));
    }
    let bytes = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return json_resp(400, json!({"error": e.to_string()})),
    };
    let (specs, append): (Vec<String>, bool) = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => (
            items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            false,
        ),
        Ok(Value::Object(o)) => (
            o.get("faults")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            o.get("append").and_then(Value::as_bool).unwrap_or(false),
        ),
        _ => {
            return json_resp(
                400,
                json!({"error": "expected a JSON array of fault specs or {\"faults\": [...], \"append\": bool}"}),
            );
        }
    };
    let mut parsed = Vec::new();
    for s in &specs {
        match s.parse::<FaultSpec>() {
            Ok(f) => parsed.push(f),
            Err(e) => return json_resp(400, json!({"error": e.to_string()})),
        }
    }
    if append {
        for f in parsed {
            ctx.shared.add_fault(f);
        }
    } else {
        ctx.shared.set_faults(&parsed);
    }
    json_resp(200, json!({"ok": true, "faults": specs}))
}

/// Reads a whole request body.
pub(crate) async fn body_bytes(body: Body) -> Result<Bytes, String> {
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|e| format!("could not read the body: {e}"))
}
