//! Fake Sync Labs direct API (PROVIDERS.md §4): `POST /v2/generate` (JSON) and `/v2/generate/upload`
//! (multipart), `GET /v2/generate/{id}` (with `wait`/`timeout` long-polling), `GET /v2/generate`, and signed
//! result URLs `/v2/generations/{id}/result?token=…`.
//!
//! `Idempotency-Key`: the same key with the same body returns the same generation (counted as
//! `sync.replay`, not as a submit); with a different body, 409 `IDEMPOTENCY_KEY_REUSED` (code name
//! unverified); malformed, 400 `INVALID_IDEMPOTENCY_KEY`. Multipart upload fields (unverified upstream):
//! `video`, `audio` (files) or `videoUrl`, `audioUrl`, plus `model`, `options` (JSON text), `webhookUrl`,
//! `outputFileName`. `webhookUrl` gets the generation object POSTed once when it finishes (see `callbacks`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::faults::{Endpoint, ErrorKind, FaultAction, InjectedError, JobFate, Provider};
use super::jobs::{InputRef, OutputCell, OutputSpec, made_ahead, output};
use super::server::{Ctx, body_bytes, injected_error, lock, render_injected, serve_media};
use super::util::{
    Checker, UrlRules, header_str, iso8601, json, loc, loc_push, query_get, query_pairs, unix_ms,
    with_header,
};
use super::{Clock, JobKind, LipSyncTier, Phase};

const P: Provider = Provider::Sync;

const MODELS: &[&str] = &[
    "lipsync-2",
    "lipsync-2-pro",
    "lipsync-1.9.0-beta",
    "lipsync-1.8.0",
    "lipsync-1.7.1",
    "lipsync-1.6.0",
    "react-1",
];

const OPTIONS: &[&str] = &[
    "sync_mode",
    "output_format",
    "temperature",
    "active_speaker",
    "pads",
    "speedup",
    "fps",
    "output_resolution",
    "max_credits",
];

const URL_RULES: UrlRules = UrlRules {
    data: false,
    hf_path: false,
};

/// Upload cap for the video file.
const VIDEO_UPLOAD_CAP: usize = 20 * 1024 * 1024;

struct Generation {
    created_ms: u64,
    model: String,
    input: Value,
    options: Value,
    webhook: Value,
    output_file_name: Value,
    clock: Clock,
    fates: Vec<JobFate>,
    regressed: bool,
    last: Phase,
    spec: OutputSpec,
    output: OutputCell,
    token: String,
}

/// Sync generations, and the idempotency keys seen.
#[derive(Default)]
pub(crate) struct SyncState {
    gens: HashMap<String, Generation>,
    order: Vec<String>,
    idempotency: HashMap<String, (String, String)>,
}

fn error(status: u16, message: &str, code: Option<&str>) -> Response {
    let mut body = json!({"statusCode": status, "message": message});
    if let Some(c) = code {
        body["errorCode"] = json!(c);
    }
    json(status, body)
}

fn injected(e: &InjectedError) -> Response {
    render_injected(e, |e| match (e.kind, e.status) {
        (ErrorKind::Quota, _) => error(
            402,
            "Payment required: your plan's generation allowance is used up",
            Some("payment_required"),
        ),
        (ErrorKind::AudioTooLong, _) => error(
            402,
            "The audio exceeds the maximum duration allowed by your plan",
            Some("audio_duration_exceeds_plan_limit"),
        ),
        (ErrorKind::Slot, _) => error(
            429,
            "Concurrency limit reached: too many PENDING or PROCESSING generations for your plan",
            Some("concurrency_limit_exceeded"),
        ),
        (_, 429) => error(429, "Rate limit exceeded", Some("rate_limit_exceeded")),
        (_, 401) => error(401, "Unauthorized", None),
        (_, s) if s >= 500 => error(s, "Internal server error", None),
        (_, s) => error(s, "The request was rejected", None),
    })
}

/// The auth error to answer with, if the credentials are wrong.
fn auth(ctx: &Ctx, req: &Request) -> Option<Response> {
    let given = header_str(req.headers(), "x-api-key")
        .map(str::trim)
        .unwrap_or("");
    let ok = match &ctx.shared.cfg.keys.synclabs {
        Some(k) => given == k,
        None => !given.is_empty(),
    };
    if ok {
        None
    } else {
        Some(error(401, "Unauthorized: missing or invalid API key", None))
    }
}

/// Routes `/v2/generate…` and `/v2/generations/{id}/result`.
pub(crate) async fn handle(ctx: &Ctx, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (method, segs.as_slice()) {
        (Method::POST, ["v2", "generate"]) => create(ctx, req, false).await,
        (Method::POST, ["v2", "generate", "upload"]) => create(ctx, req, true).await,
        (Method::GET, ["v2", "generate"]) => list(ctx, req).await,
        (Method::GET, ["v2", "generate", id]) => {
            let id = id.to_string();
            get(ctx, req, &id).await
        }
        (Method::GET | Method::HEAD, ["v2", "generations", id, "result"]) => {
            let id = id.to_string();
            result_file(ctx, req, &id).await
        }
        _ => error(404, "Cannot find the requested route", None),
    }
}

fn invalid(c: &Checker) -> Response {
    let msg = c
        .issues
        .iter()
        .map(|i| {
            if i.kind == "value_error.extra" {
                i.msg.clone()
            } else {
                format!("{} {}", i.field(), i.msg)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    error(422, &msg, Some("validation_error"))
}

struct Plan {
    model: String,
    input: Value,
    options: Value,
    webhook: Value,
    output_file_name: Value,
    video: InputRef,
    audio: InputRef,
    mode: String,
}

fn check_options(c: &mut Checker, options: &Map<String, Value>) -> String {
    let at = loc(&["body", "options"]);
    c.unknown_fields(options, &at, OPTIONS);
    let mode = c
        .one_of(
            options,
            &at,
            "sync_mode",
            &["cut_off", "loop", "bounce", "silence", "remap"],
            false,
        )
        .unwrap_or("cut_off")
        .to_string();
    c.one_of(options, &at, "output_format", &["mp4"], false);
    c.number(options, &at, "temperature", 0.0, 1.0);
    c.boolean(options, &at, "active_speaker");
    if let Some(p) = c.array(options, &at, "pads", false)
        && (p.len() != 4 || !p.iter().all(Value::is_i64))
    {
        c.add(loc_push(&at, "pads"), "must be 4 integers", "value_error");
    }
    c.number(options, &at, "speedup", 0.0, 100.0);
    c.number(options, &at, "fps", 1.0, 120.0);
    if let Some(r) = c.array(options, &at, "output_resolution", false)
        && (r.len() != 2 || !r.iter().all(|v| v.as_u64().is_some_and(|n| n > 0)))
    {
        c.add(
            loc_push(&at, "output_resolution"),
            "must be [width, height]",
            "value_error",
        );
    }
    c.number(options, &at, "max_credits", 0.0, f64::MAX);
    mode
}

/// Checks the `options` object when given; returns it (or `{}`) and its sync mode (default `cut_off`).
fn checked_options(c: &mut Checker, options: Option<&Map<String, Value>>) -> (Value, String) {
    match options {
        Some(o) => {
            let mode = check_options(c, o);
            (Value::Object(o.clone()), mode)
        }
        None => (json!({}), "cut_off".to_string()),
    }
}

/// The media found in a JSON `input` array.
#[derive(Default)]
struct JsonInputs {
    video: Option<String>,
    audio: Option<String>,
    texts: u32,
}

/// Checks item `i` of the `input` array: a `text` input with its `provider`, or one `video` / `audio` URL.
fn check_input_item(c: &mut Checker, i: usize, item: &Value, found: &mut JsonInputs) {
    let at = loc_push(&loc(&["body", "input"]), i);
    let Some(o) = item.as_object() else {
        c.add(at, "must be an object", "value_error");
        return;
    };
    match c.one_of(o, &at, "type", &["video", "audio", "text"], true) {
        Some("text") => {
            c.unknown_fields(o, &at, &["type", "provider"]);
            c.object(o, &at, "provider", true);
            found.texts += 1;
        }
        Some(kind) => {
            c.unknown_fields(o, &at, &["type", "url"]);
            if let Some(u) = c.url(o, &at, "url", true, URL_RULES) {
                let slot = if kind == "video" {
                    &mut found.video
                } else {
                    &mut found.audio
                };
                if slot.is_some() {
                    c.add(
                        at,
                        format!("only one {kind} input is allowed"),
                        "value_error",
                    );
                } else {
                    *slot = Some(u.to_string());
                }
            }
        }
        None => {}
    }
}

/// Checks the required `input` array: exactly one video, and exactly one audio or text input.
fn check_inputs(c: &mut Checker, map: &Map<String, Value>) -> JsonInputs {
    let mut found = JsonInputs::default();
    let Some(items) = c.array(map, &loc(&["body"]), "input", true) else {
        return found;
    };
    for (i, item) in items.iter().enumerate() {
        check_input_item(c, i, item, &mut found);
    }
    if found.video.is_none() && c.ok() {
        c.add(
            loc(&["body", "input"]),
            "must contain exactly one video input",
            "value_error",
        );
    }
    if (found.audio.is_some() as u32 + found.texts) != 1 && c.ok() {
        c.add(
            loc(&["body", "input"]),
            "must contain exactly one audio or text input",
            "value_error",
        );
    }
    found
}

/// Validates a `POST /v2/generate` JSON body.
fn validate_json(map: &Map<String, Value>) -> Result<Plan, Checker> {
    let mut c = Checker::default();
    let base = loc(&["body"]);
    c.unknown_fields(
        map,
        &base,
        &["model", "input", "options", "webhookUrl", "outputFileName"],
    );
    let model = c
        .one_of(map, &base, "model", MODELS, false)
        .unwrap_or("lipsync-2")
        .to_string();
    let JsonInputs { video, audio, .. } = check_inputs(&mut c, map);
    let options = c.object(map, &base, "options", false);
    let (options, mode) = checked_options(&mut c, options);
    c.url(map, &base, "webhookUrl", false, URL_RULES);
    c.string(map, &base, "outputFileName", false);
    if !c.ok() {
        return Err(c);
    }
    let Some(video) = video else { return Err(c) };
    Ok(Plan {
        model,
        input: map.get("input").cloned().unwrap_or(Value::Null),
        options,
        webhook: map.get("webhookUrl").cloned().unwrap_or(Value::Null),
        output_file_name: map.get("outputFileName").cloned().unwrap_or(Value::Null),
        video: InputRef::Url(video),
        // A text (TTS) input has no audio file: the output length falls back to the default.
        audio: InputRef::Url(audio.unwrap_or_default()),
        mode,
    })
}

/// The parts of a multipart upload, as read.
#[derive(Default)]
struct Upload {
    video: Option<InputRef>,
    audio: Option<InputRef>,
    /// The text fields, by name.
    text: HashMap<String, String>,
}

impl Upload {
    /// Files one part: the `video` / `audio` files (a video over 20 MB is an issue), the known text fields, and
    /// an issue for any other name.
    fn take(&mut self, c: &mut Checker, name: String, data: bytes::Bytes) {
        match name.as_str() {
            "video" => {
                if data.len() > VIDEO_UPLOAD_CAP {
                    c.add(
                        loc(&["body", "video"]),
                        "the video exceeds 20 MB",
                        "value_error",
                    );
                }
                self.video = Some(InputRef::Bytes(data));
            }
            "audio" => self.audio = Some(InputRef::Bytes(data)),
            "videoUrl" | "audioUrl" | "model" | "options" | "webhookUrl" | "outputFileName" => {
                self.text
                    .insert(name, String::from_utf8_lossy(&data).into_owned());
            }
            other => c.add(
                loc(&["body", other]),
                format!("property {other} does not exist"),
                "value_error.extra",
            ),
        }
    }

    /// The text fields as a JSON body (`options` parsed as a JSON object, an issue when it is not one).
    fn text_map(&self, c: &mut Checker) -> Map<String, Value> {
        let mut map = Map::new();
        for (k, v) in &self.text {
            if k == "options" {
                match serde_json::from_str::<Value>(v) {
                    Ok(o @ Value::Object(_)) => {
                        map.insert(k.clone(), o);
                    }
                    _ => c.add(
                        loc(&["body", "options"]),
                        "must be a JSON object",
                        "value_error",
                    ),
                }
            } else {
                map.insert(k.clone(), Value::String(v.clone()));
            }
        }
        map
    }

    /// Takes `videoUrl` / `audioUrl` (each instead of its file, never both) and requires a video and an audio.
    fn take_urls(&mut self, c: &mut Checker, map: &Map<String, Value>) {
        let base = loc(&["body"]);
        for (key, slot) in [("videoUrl", &mut self.video), ("audioUrl", &mut self.audio)] {
            if let Some(u) = c.url(map, &base, key, false, URL_RULES) {
                if slot.is_some() {
                    c.add(
                        loc(&["body", key]),
                        "send either the file or its URL, not both",
                        "value_error",
                    );
                }
                *slot = Some(InputRef::Url(u.to_string()));
            }
        }
        if self.video.is_none() {
            c.add(
                loc(&["body", "video"]),
                "a video file or videoUrl is required",
                "value_error.missing",
            );
        }
        if self.audio.is_none() {
            c.add(
                loc(&["body", "audio"]),
                "an audio file or audioUrl is required",
                "value_error.missing",
            );
        }
    }
}

/// Reads every part of a multipart body into an [`Upload`], with a SHA-256 fingerprint (hex) of the names,
/// lengths and bytes of the parts in order.
async fn read_upload(req: Request, c: &mut Checker) -> Result<(Upload, String), Response> {
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| error(400, &format!("expected multipart/form-data: {e}"), None))?;
    let mut fp = Sha256::new();
    let mut upload = Upload::default();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(error(400, &format!("malformed multipart body: {e}"), None)),
        };
        let name = field.name().unwrap_or("").to_string();
        let data = field
            .bytes()
            .await
            .map_err(|e| error(400, &format!("malformed multipart body: {e}"), None))?;
        fp.update(name.as_bytes());
        fp.update((data.len() as u64).to_le_bytes());
        fp.update(&data);
        upload.take(c, name, data);
    }
    Ok((upload, hex::encode(fp.finalize())))
}

/// Validates a `POST /v2/generate/upload` multipart body; returns the plan and the body's fingerprint.
async fn validate_upload(req: Request) -> Result<(Plan, String), Response> {
    let mut c = Checker::default();
    let (mut upload, fingerprint) = read_upload(req, &mut c).await?;
    let map = upload.text_map(&mut c);
    let base = loc(&["body"]);
    let model = c
        .one_of(&map, &base, "model", MODELS, false)
        .unwrap_or("lipsync-2")
        .to_string();
    upload.take_urls(&mut c, &map);
    let (options, mode) = checked_options(&mut c, map.get("options").and_then(Value::as_object));
    c.url(&map, &base, "webhookUrl", false, URL_RULES);
    let (Some(video), Some(audio), true) = (upload.video, upload.audio, c.ok()) else {
        return Err(invalid(&c));
    };
    let echo = |r: &InputRef, kind: &str| match r {
        InputRef::Url(u) => json!({"type": kind, "url": u}),
        InputRef::Bytes(_) => json!({"type": kind}),
    };
    let plan = Plan {
        model,
        input: json!([echo(&video, "video"), echo(&audio, "audio")]),
        options,
        webhook: map.get("webhookUrl").cloned().unwrap_or(Value::Null),
        output_file_name: map.get("outputFileName").cloned().unwrap_or(Value::Null),
        video,
        audio,
        mode,
    };
    Ok((plan, fingerprint))
}

fn valid_idempotency_key(k: &str) -> bool {
    (1..=128).contains(&k.len())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
}

fn tier(model: &str) -> LipSyncTier {
    match model {
        "lipsync-2" => LipSyncTier::V2,
        "lipsync-2-pro" => LipSyncTier::Pro,
        "react-1" => LipSyncTier::Pro,
        _ => LipSyncTier::V1,
    }
}

/// The 400 `INVALID_IDEMPOTENCY_KEY` for a malformed `Idempotency-Key` header, if there is one.
fn bad_idempotency_key(req: &Request, key: Option<&str>) -> Option<Response> {
    if !req.headers().contains_key("idempotency-key") || key.is_some_and(valid_idempotency_key) {
        return None;
    }
    Some(error(
        400,
        "Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ ~ -",
        Some("INVALID_IDEMPOTENCY_KEY"),
    ))
}

/// Reads and validates a JSON or multipart submit; returns the plan and the body's fingerprint (for
/// idempotency).
async fn read_plan(req: Request, upload: bool) -> Result<(Plan, String), Response> {
    if upload {
        return validate_upload(req).await;
    }
    let body = body_bytes(req.into_body())
        .await
        .map_err(|e| error(400, &e, None))?;
    let map = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => return Err(error(400, "the body must be a JSON object", None)),
    };
    let plan = validate_json(&map).map_err(|c| invalid(&c))?;
    let fp = hex::encode(Sha256::digest(Value::Object(map).to_string().as_bytes()));
    Ok((plan, fp))
}

/// What a submit did.
enum Outcome {
    /// The key was seen with the same body: this existing generation.
    Replay(String),
    /// A new generation.
    Created(String),
    /// The key was seen with another body.
    Conflict,
}

/// A new generation for `plan`, with its latency clock, fates and result token.
fn new_generation(ctx: &Ctx, plan: Plan, fates: Vec<JobFate>) -> Generation {
    let stalled = fates.contains(&JobFate::Stall);
    let spec = OutputSpec::LipSync {
        video: plan.video,
        audio: plan.audio,
        mode: plan.mode,
    };
    Generation {
        created_ms: unix_ms(),
        clock: Clock::new(
            ctx.shared.cfg.job_latency(JobKind::SyncLipSync {
                tier: tier(&plan.model),
            }),
            stalled,
        ),
        model: plan.model,
        input: plan.input,
        options: plan.options,
        webhook: plan.webhook,
        output_file_name: plan.output_file_name,
        fates,
        regressed: false,
        last: Phase::Queued,
        output: made_ahead(&ctx.shared, &spec, ["input.video", "input.audio"], stalled),
        spec,
        token: uuid::Uuid::new_v4().to_string(),
    }
}

/// Replays, refuses or creates the generation by its idempotency key; updates `sync.peak_active`.
fn admit(
    ctx: &Ctx,
    plan: Plan,
    fates: Vec<JobFate>,
    key: Option<String>,
    fingerprint: String,
) -> Outcome {
    let mut st = lock(&ctx.shared.sync);
    match key.as_ref().and_then(|k| st.idempotency.get(k).cloned()) {
        Some((fp, id)) if fp == fingerprint => Outcome::Replay(id),
        Some(_) => Outcome::Conflict,
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            let g = new_generation(ctx, plan, fates);
            st.gens.insert(id.clone(), g);
            st.order.push(id.clone());
            let active = st
                .gens
                .values()
                .filter(|g| g.clock.phase() != Phase::Done)
                .count();
            ctx.shared.peak("sync.peak_active", active as u64);
            if let Some(k) = key {
                st.idempotency.insert(k, (fingerprint, id.clone()));
            }
            Outcome::Created(id)
        }
    }
}

/// The answer to a submit, by its outcome (a created generation is counted; `outcome_unknown` answers 409 with
/// its id).
async fn submit_answer(
    ctx: &Ctx,
    outcome: Outcome,
    model: &str,
    actions: &[FaultAction],
) -> Response {
    let id = match outcome {
        Outcome::Conflict => {
            return error(
                409,
                "This Idempotency-Key was already used with a different request body",
                Some("IDEMPOTENCY_KEY_REUSED"),
            );
        }
        Outcome::Replay(id) => {
            ctx.shared.count("sync.replay");
            let body = created_json(ctx, &id).unwrap_or(Value::Null);
            return with_header(json(201, body), "idempotent-replayed", "true");
        }
        Outcome::Created(id) => id,
    };
    ctx.shared.count("sync.submit");
    ctx.shared.count(&format!("sync.submit.{model}"));
    if actions.contains(&FaultAction::OutcomeUnknown) {
        let mut body = json!({
            "statusCode": 409,
            "message": "The outcome of the original request with this Idempotency-Key is unknown; poll the generation",
            "errorCode": "IDEMPOTENCY_OUTCOME_UNKNOWN",
        });
        body["generationId"] = json!(id);
        return json(409, body);
    }
    let body = created_json(ctx, &id).unwrap_or(Value::Null);
    json(201, body)
}

/// The generation as its create call answers it (a replay answers the same): `PENDING`, no output yet. The
/// answer never waits for the output media — made at the first look after the generation is done — so a
/// submit answers at once however busy the sandbox is (it used to make the clip first: with a thousand scenes in
/// flight that took longer than the client's 120 s submit timeout).
fn created_json(ctx: &Ctx, id: &str) -> Option<Value> {
    let v = view_generation(ctx, id, false)?;
    let mut body = v.body;
    body["status"] = json!("PENDING");
    for field in [
        "outputDuration",
        "error",
        "error_code",
        "outputUrl",
        "outputMediaUrl",
        "segmentOutputUrl",
    ] {
        body[field] = Value::Null;
    }
    if let Some(o) = body.as_object_mut() {
        apply_url_fates(o, &v.fates, &Value::Null);
    }
    Some(body)
}

/// `POST /v2/generate` (JSON) and `/v2/generate/upload` (multipart).
async fn create(ctx: &Ctx, req: Request, upload: bool) -> Response {
    ctx.request(if upload {
        "sync.submit.upload"
    } else {
        "sync.submit"
    });
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    let actions = ctx.take_call(P, Endpoint::Submit);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let key = header_str(req.headers(), "idempotency-key").map(String::from);
    if let Some(r) = bad_idempotency_key(&req, key.as_deref()) {
        return ctx.finish(r, &actions).await;
    }
    let (plan, fingerprint) = match read_plan(req, upload).await {
        Ok(p) => p,
        Err(r) => return ctx.finish(r, &actions).await,
    };
    let fates = ctx.shared.take_fates(P);
    let model = plan.model.clone();
    let outcome = admit(ctx, plan, fates, key, fingerprint);
    if let Outcome::Created(id) = &outcome {
        webhook_on_finish(ctx, id);
    }
    let resp = submit_answer(ctx, outcome, &model, &actions).await;
    ctx.finish(resp, &actions).await
}

/// Sends the generation object to its `webhookUrl` (if any) once it finishes.
fn webhook_on_finish(ctx: &Ctx, id: &str) {
    let Some(v) = view_generation(ctx, id, false) else {
        return;
    };
    let url = v
        .body
        .get("webhookUrl")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = id.to_string();
    super::callbacks::after_finish(ctx, url, v.due, move |ctx| async move {
        generation_json(&ctx, &id, false).await
    });
}

fn terminal(status: &str) -> bool {
    !matches!(status, "PENDING" | "PROCESSING")
}

/// What `generation_json` needs of a generation, copied out under the lock.
struct GenView {
    /// The request echo (`id`, `createdAt`, `model`, `input`, `options`, `webhookUrl`, `outputFileName`).
    body: Value,
    fates: Vec<JobFate>,
    phase: Phase,
    spec: OutputSpec,
    cell: OutputCell,
    token: String,
    /// Time left until the generation is done (`None`: stalled).
    due: Option<Duration>,
}

/// Copies out a generation's state; `poll` applies the once-only regress fate (the status shown steps back once).
fn view_generation(ctx: &Ctx, id: &str, poll: bool) -> Option<GenView> {
    let mut st = lock(&ctx.shared.sync);
    let g = st.gens.get_mut(id)?;
    let real = g.clock.phase();
    let mut shown = real;
    if poll {
        if g.fates.contains(&JobFate::Regress)
            && !g.regressed
            && g.last >= Phase::Running
            && real >= g.last
        {
            g.regressed = true;
            shown = if real == Phase::Done {
                Phase::Running
            } else {
                Phase::Queued
            };
        }
        g.last = real;
    }
    let body = json!({
        "id": id,
        "createdAt": iso8601(g.created_ms),
        "model": g.model,
        "input": g.input,
        "options": g.options,
        "webhookUrl": g.webhook,
        "outputFileName": g.output_file_name,
    });
    Some(GenView {
        body,
        fates: g.fates.clone(),
        phase: shown,
        spec: g.spec.clone(),
        cell: g.output.clone(),
        token: g.token.clone(),
        due: g.clock.done_in(),
    })
}

/// The `error` and `error_code` of a generation that ended with this (upper-case) literal status.
fn failure_of(upper: &str) -> Option<(&'static str, &'static str)> {
    match upper {
        "FAILED" => Some(("Generation failed", "generation_failed")),
        "REJECTED" => Some((
            "The input was rejected by the content policy",
            "input_rejected",
        )),
        "TIMED_OUT" => Some(("The generation timed out", "generation_timed_out")),
        _ => None,
    }
}

/// How a generation stands: its status, output URL and duration, and error (all null when not applicable).
struct GenOutcome {
    status: String,
    url: Value,
    duration: Value,
    err: Value,
    err_code: Value,
}

/// Works out the status and output of a generation; a completed one whose output cannot be made turns `FAILED`.
async fn generation_outcome(ctx: &Ctx, id: &str, v: &GenView) -> GenOutcome {
    let literal = v.fates.iter().find_map(|f| match f {
        JobFate::Status(s) => Some(s.clone()),
        _ => None,
    });
    let status = match v.phase {
        Phase::Queued => "PENDING".to_string(),
        Phase::Running => "PROCESSING".to_string(),
        Phase::Done => literal.unwrap_or_else(|| "COMPLETED".into()),
    };
    let upper = status.to_ascii_uppercase();
    let mut out = GenOutcome {
        status,
        url: Value::Null,
        duration: Value::Null,
        err: Value::Null,
        err_code: Value::Null,
    };
    if v.phase != Phase::Done {
        return out;
    }
    if upper != "COMPLETED" && upper != "COMPLETE" {
        if let Some((err, code)) = failure_of(&upper) {
            out.err = json!(err);
            out.err_code = json!(code);
        }
        return out;
    }
    match output(
        &ctx.shared,
        &v.cell,
        &v.spec,
        ["input.video", "input.audio"],
    )
    .await
    {
        Ok(p) => {
            out.duration = json!(p.duration);
            if !v.fates.contains(&JobFate::NoOutput) {
                out.url = json!(format!(
                    "{}/v2/generations/{id}/result?token={}",
                    ctx.base, v.token
                ));
            }
        }
        Err(f) => {
            out.status = "FAILED".into();
            out.err = json!(format!("{}: {}", f.field, f.reason));
            out.err_code = json!("invalid_input_media");
        }
    }
    out
}

/// Applies the presentation fates: which output URL fields appear and how, and unknown extra fields.
fn apply_url_fates(o: &mut Map<String, Value>, fates: &[JobFate], url: &Value) {
    for f in fates {
        match f {
            JobFate::SnakeUrl => {
                o.remove("outputUrl");
                o.remove("outputMediaUrl");
                o.insert("output_url".into(), url.clone());
            }
            JobFate::MediaUrlOnly => {
                o.remove("outputUrl");
            }
            JobFate::LegacyUrlOnly => {
                o.remove("outputMediaUrl");
            }
            JobFate::UrlObject => {
                o.insert("outputUrl".into(), json!({}));
            }
            JobFate::UrlNull => {
                o.insert("outputUrl".into(), Value::Null);
            }
            JobFate::ExtraFields => {
                o.insert("unexpectedField".into(), json!({"nested": [1, 2]}));
            }
            _ => {}
        }
    }
}

/// The generation object; `poll` applies the once-only regress fate.
async fn generation_json(ctx: &Ctx, id: &str, poll: bool) -> Option<Value> {
    let v = view_generation(ctx, id, poll)?;
    let out = generation_outcome(ctx, id, &v).await;
    let mut body = v.body;
    body["status"] = json!(out.status);
    body["outputDuration"] = out.duration;
    body["error"] = out.err;
    body["error_code"] = out.err_code;
    body["outputUrl"] = out.url.clone();
    body["outputMediaUrl"] = out.url.clone();
    body["segmentOutputUrl"] = Value::Null;
    if let Some(o) = body.as_object_mut() {
        apply_url_fates(o, &v.fates, &out.url);
    }
    Some(body)
}

async fn get(ctx: &Ctx, req: Request, id: &str) -> Response {
    ctx.request("sync.status");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("sync.status");
    let actions = ctx.take_call(P, Endpoint::Status);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let q = query_pairs(req.uri().query());
    let wait = query_get(&q, "wait").is_some_and(|v| v == "true" || v == "1");
    let mut timeout = Duration::ZERO;
    if wait {
        let t = query_get(&q, "timeout").unwrap_or_else(|| "10".into());
        match t.parse::<u64>() {
            Ok(n) if (1..=10).contains(&n) => timeout = Duration::from_secs(n),
            _ => {
                let r = error(
                    400,
                    "timeout must be an integer between 1 and 10",
                    Some("validation_error"),
                );
                return ctx.finish(r, &actions).await;
            }
        }
    }
    if wait {
        ctx.shared.count("sync.long_poll");
    }
    let deadline = Instant::now() + timeout;
    let mut body = generation_json(ctx, id, true).await;
    if wait {
        while let Some(b) = &body {
            let s = b.get("status").and_then(Value::as_str).unwrap_or("");
            if terminal(s) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            body = generation_json(ctx, id, false).await;
        }
    }
    let resp = match body {
        Some(b) => json(200, b),
        None => error(404, "Generation not found", Some("not_found")),
    };
    let resp = if wait {
        with_header(
            with_header(resp, "retry-after", "2"),
            "x-sync-wait-mode",
            "long_poll",
        )
    } else {
        resp
    };
    ctx.finish(resp, &actions).await
}

async fn list(ctx: &Ctx, req: Request) -> Response {
    ctx.request("sync.list");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("sync.list");
    let ids: Vec<String> = lock(&ctx.shared.sync).order.iter().rev().cloned().collect();
    let mut out = Vec::new();
    for id in ids {
        if let Some(g) = generation_json(ctx, &id, false).await {
            out.push(g);
        }
    }
    json(200, Value::Array(out))
}

async fn result_file(ctx: &Ctx, req: Request, id: &str) -> Response {
    ctx.request("sync.result");
    let token = query_get(&query_pairs(req.uri().query()), "token").unwrap_or_default();
    let found = {
        let st = lock(&ctx.shared.sync);
        st.gens
            .get(id)
            .map(|g| (g.token == token, g.output.clone()))
    };
    let Some((token_ok, cell)) = found else {
        return error(404, "Generation not found", Some("not_found"));
    };
    if !token_ok {
        return error(403, "Invalid or expired token", Some("forbidden"));
    }
    let name = match cell.get() {
        Some(Ok(p)) => p.name.clone(),
        _ => return error(404, "The generation has no output", Some("not_found")),
    };
    let Some(item) = ctx.shared.media.get(&name) else {
        return error(404, "The generation has no output", Some("not_found"));
    };
    let (parts, _) = req.into_parts();
    serve_media(ctx, &item, &parts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn bodies_follow_the_contract() {
        let ok = map(json!({"model": "lipsync-2",
            "input": [{"type": "video", "url": "https://x.test/v.mp4"}, {"type": "audio", "url": "https://x.test/a.mp3"}],
            "options": {"sync_mode": "loop", "output_format": "mp4"}}));
        assert!(validate_json(&ok).is_ok());
        let unknown = map(json!({
            "input": [{"type": "video", "url": "https://x.test/v.mp4"}, {"type": "audio", "url": "https://x.test/a.mp3"}],
            "options": {"synergize": true}}));
        let err = validate_json(&unknown).err().map(|c| invalid_message(&c));
        assert_eq!(err.as_deref(), Some("property synergize does not exist"));
        let two_videos = map(
            json!({"input": [{"type": "video", "url": "https://x.test/v.mp4"},
                                              {"type": "video", "url": "https://x.test/w.mp4"}]}),
        );
        assert!(validate_json(&two_videos).is_err());
        let blank = map(
            json!({"input": [{"type": "video", "url": " "}, {"type": "audio", "url": "https://x.test/a.mp3"}]}),
        );
        assert!(validate_json(&blank).is_err());
    }

    fn invalid_message(c: &Checker) -> String {
        c.issues
            .iter()
            .map(|i| i.msg.clone())
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn idempotency_keys() {
        assert!(valid_idempotency_key("step-01HX.a_b~c"));
        assert!(!valid_idempotency_key(""));
        assert!(!valid_idempotency_key("has space"));
        assert!(!valid_idempotency_key(&"a".repeat(129)));
    }
}
