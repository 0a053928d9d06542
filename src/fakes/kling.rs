//! Fake Kling official API (PROVIDERS.md §3): HS256 JWT auth, `POST /v1/videos/image2video`, query by
//! `task_id` or `external_task_id`, and the list endpoint, all in Kling's `{code, message, request_id, data}`
//! envelope. Unknown body fields (e.g. `aspect_ratio`) are refused with 400/1201. `callback_url` gets the
//! task envelope POSTed once when the task finishes (see `callbacks`).

use std::collections::HashMap;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::faults::{
    Endpoint, ErrorKind, FaultAction, InjectedError, JobFate, Provider, kling_http_status,
};
use super::jobs::{InputRef, OutputCell, OutputSpec, made_ahead, output};
use super::media::{decode_base64, image_dims};
use super::server::{Ctx, body_bytes, injected_error, lock, render_injected};
use super::util::{
    Checker, UrlRules, header_str, json, loc, query_get, query_pairs, unix_ms, unix_secs,
    url_problem,
};
use super::{Clock, DuplicatePolicy, JobKind, Phase};

const P: Provider = Provider::Kling;

const MODELS: &[&str] = &[
    "kling-v1",
    "kling-v1-5",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
];

const FIELDS: &[&str] = &[
    "model_name",
    "model",
    "image",
    "image_tail",
    "prompt",
    "negative_prompt",
    "cfg_scale",
    "mode",
    "duration",
    "camera_control",
    "static_mask",
    "dynamic_masks",
    "callback_url",
    "external_task_id",
    "sound",
    "voice_list",
];

struct Task {
    task_id: String,
    external_task_id: Option<String>,
    clock: Clock,
    created_ms: u64,
    fates: Vec<JobFate>,
    regressed: bool,
    last: Phase,
    spec: OutputSpec,
    output: OutputCell,
}

/// Kling tasks by id, and the external-id index.
#[derive(Default)]
pub(crate) struct KlingState {
    tasks: HashMap<String, Task>,
    by_external: HashMap<String, String>,
    order: Vec<String>,
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn envelope(status: u16, code: u32, message: &str) -> Response {
    json(
        status,
        json!({"code": code, "message": message, "request_id": request_id()}),
    )
}

fn code_message(code: u32) -> &'static str {
    match code {
        1000 => "Authentication failed",
        1001 => "Authorization is empty",
        1002 => "Authorization is invalid",
        1003 => "Authorization is not yet valid",
        1004 => "Authorization has expired",
        1100 => "Account exception",
        1101 => "Account in arrears (postpaid scenario)",
        1102 => "Resource pack depleted or expired (prepaid scenario)",
        1103 => "Unauthorized access to requested resource",
        1200 => "Invalid request parameters",
        1201 => "Invalid parameters",
        1202 => "Invalid request method",
        1203 => "Requested resource does not exist",
        1300 => "Trigger strategy of the platform",
        1301 => "Trigger the content security policy of the platform",
        1302 => "The API request is too fast, exceeding the platform's rate limit",
        1303 => "Concurrency or QPS exceeds the prepaid resource package limit",
        1304 => "Trigger the platform's IP whitelisting policy",
        5001 => "Server temporarily unavailable",
        5002 => "Server internal timeout",
        _ => "Server internal error",
    }
}

fn coded(code: u32) -> Response {
    envelope(kling_http_status(code), code, code_message(code))
}

fn injected(e: &InjectedError) -> Response {
    render_injected(e, |e| {
        if let Some(code) = e.kling_code {
            return coded(code);
        }
        let code = match (e.kind, e.status) {
            (ErrorKind::Quota, _) => 1102,
            (ErrorKind::Slot, _) => 1303,
            (_, 429) => 1302,
            (_, 401) => 1000,
            (_, 403) => 1103,
            (_, 404) => 1203,
            (_, 400) => 1200,
            (_, 503) => 5001,
            (_, 504) => 5002,
            _ => 5000,
        };
        let status = if e.status == 0 {
            kling_http_status(code)
        } else {
            e.status
        };
        envelope(status, code, code_message(code))
    })
}

/// HMAC-SHA256 (RFC 2104).
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

/// Checks `Authorization: Bearer <HS256 JWT>`: signature with the secret key, `iss` = access key, `exp`, `nbf`.
fn verify(ctx: &Ctx, header: &str) -> Result<(), u32> {
    let header = header.trim();
    if header.is_empty() {
        return Err(1001);
    }
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or(1002u32)?;
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err(1002);
    };
    let head: Value = b64url(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(1002u32)?;
    if head.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(1002);
    }
    let claims: Value = b64url(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(1002u32)?;
    let sig = b64url(s).ok_or(1002u32)?;
    let keys = &ctx.shared.cfg.keys;
    if let Some(secret) = &keys.kling_secret_key {
        let expected = hmac_sha256(secret.as_bytes(), format!("{h}.{p}").as_bytes());
        let same = sig.len() == expected.len()
            && sig
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(1000);
        }
    }
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    match &keys.kling_access_key {
        Some(ak) if iss != ak => return Err(1000),
        None if iss.is_empty() => return Err(1002),
        _ => {}
    }
    let now = unix_secs();
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(1002u32)?;
    if now >= exp {
        return Err(1004);
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && now < nbf
    {
        return Err(1003);
    }
    Ok(())
}

/// The auth error to answer with, if the credentials are wrong.
fn auth(ctx: &Ctx, req: &Request) -> Option<Response> {
    verify(
        ctx,
        header_str(req.headers(), "authorization").unwrap_or(""),
    )
    .err()
    .map(coded)
}

/// Routes `/v1/videos/image2video…`.
pub(crate) async fn handle(ctx: &Ctx, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (method, segs.as_slice()) {
        (Method::POST, ["v1", "videos", "image2video"]) => create(ctx, req).await,
        (Method::GET, ["v1", "videos", "image2video"]) => list(ctx, req).await,
        (Method::GET, ["v1", "videos", "image2video", id]) => {
            let id = id.to_string();
            query(ctx, req, &id).await
        }
        (Method::POST | Method::PUT | Method::DELETE, ["v1", "videos", "image2video", ..]) => {
            coded(1202)
        }
        _ => coded(1203),
    }
}

fn invalid(c: &Checker) -> Response {
    let msg = c
        .issues
        .iter()
        .map(|i| format!("{}: {}", i.field(), i.msg))
        .collect::<Vec<_>>()
        .join("; ");
    envelope(400, 1201, &format!("Invalid parameters: {msg}"))
}

fn check_image(c: &mut Checker, map: &Map<String, Value>, key: &str) -> Option<InputRef> {
    let s = c.string(map, &loc(&["body"]), key, false)?;
    let at = loc(&["body", key]);
    let trimmed = s.trim_start();
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        if let Some(p) = url_problem(
            s,
            UrlRules {
                data: false,
                hf_path: false,
            },
        ) {
            c.add(at, p, "value_error.url");
            return None;
        }
        return Some(InputRef::Url(s.to_string()));
    }
    if s.trim().is_empty() {
        c.add(at, "must not be empty", "value_error");
        return None;
    }
    if s.starts_with("data:") {
        c.add(
            at,
            "base64 images must not carry a data: prefix",
            "value_error",
        );
        return None;
    }
    let bytes = match decode_base64(s) {
        Ok(b) => b,
        Err(e) => {
            c.add(at, format!("not a URL and not base64: {e}"), "value_error");
            return None;
        }
    };
    if bytes.len() > 10 * 1024 * 1024 {
        c.add(at, "image larger than 10 MB", "value_error");
        return None;
    }
    let Some((w, h)) = image_dims(&bytes) else {
        c.add(at, "image must be jpg, jpeg or png", "value_error");
        return None;
    };
    if w < 300 || h < 300 {
        c.add(
            at,
            format!("image is {w}x{h}; each side must be at least 300 px"),
            "value_error",
        );
        return None;
    }
    let ratio = w as f64 / h as f64;
    if !(0.4..=2.5).contains(&ratio) {
        c.add(
            at,
            format!("image aspect ratio {w}:{h} is outside 1:2.5 to 2.5:1"),
            "value_error",
        );
        return None;
    }
    Some(InputRef::Bytes(bytes::Bytes::from(bytes)))
}

struct Plan {
    model: String,
    seconds: u32,
    pro: bool,
    image: InputRef,
    external: Option<String>,
}

/// The model named by `model_name` (or the older `model`), defaulting to `kling-v1`; `None` (with the issue
/// recorded) when Kling has no such model.
fn check_model(c: &mut Checker, map: &Map<String, Value>) -> Option<String> {
    let model_key = if map.contains_key("model_name") {
        "model_name"
    } else {
        "model"
    };
    let model = c
        .string(map, &loc(&["body"]), model_key, false)
        .unwrap_or("kling-v1")
        .to_string();
    if !MODELS.contains(&model.as_str()) {
        c.add(
            loc(&["body", model_key]),
            format!("model {model} does not exist"),
            "value_error",
        );
        return None;
    }
    Some(model)
}

/// Camera movement types Kling knows.
const CAMERA_TYPES: &[&str] = &[
    "simple",
    "down_back",
    "forward_up",
    "right_turn_forward",
    "left_turn_forward",
];

/// Checks `camera_control` (type `simple` needs exactly one non-zero axis in its config; the other types take
/// no config); returns whether it was given.
fn check_camera_control(c: &mut Checker, map: &Map<String, Value>) -> bool {
    let Some(cc) = c.object(map, &loc(&["body"]), "camera_control", false) else {
        return false;
    };
    let at = loc(&["body", "camera_control"]);
    c.unknown_fields(cc, &at, &["type", "config"]);
    let kind = c.one_of(cc, &at, "type", CAMERA_TYPES, true);
    let config = cc.get("config").filter(|v| !v.is_null());
    match (kind, config) {
        (Some("simple"), Some(Value::Object(cfg))) => {
            let cat = loc(&["body", "camera_control", "config"]);
            let axes = ["horizontal", "vertical", "pan", "tilt", "roll", "zoom"];
            c.unknown_fields(cfg, &cat, &axes);
            let nonzero = axes
                .iter()
                .filter_map(|a| c.number(cfg, &cat, a, -10.0, 10.0))
                .filter(|v| *v != 0.0)
                .count();
            if nonzero != 1 {
                c.add(
                    cat,
                    "exactly one of the six camera axes must be non-zero",
                    "value_error",
                );
            }
        }
        (Some("simple"), _) => c.add(at, "type simple needs a config object", "value_error"),
        (Some(_), Some(_)) => c.add(
            at,
            "config must be null for this camera type",
            "value_error",
        ),
        _ => {}
    }
    true
}

/// Checks `static_mask` and `dynamic_masks` (at most 6 groups, each with a mask and 2 to 77 trajectory
/// points); returns whether either was given.
fn check_masks(c: &mut Checker, map: &Map<String, Value>) -> bool {
    let base = loc(&["body"]);
    let given = map.get("static_mask").is_some_and(|v| !v.is_null())
        || map.get("dynamic_masks").is_some_and(|v| !v.is_null());
    c.string(map, &base, "static_mask", false);
    if let Some(groups) = c.array(map, &base, "dynamic_masks", false) {
        if groups.len() > 6 {
            c.add(
                loc(&["body", "dynamic_masks"]),
                "at most 6 groups",
                "value_error",
            );
        }
        for g in groups {
            let points = g
                .get("trajectories")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            if !(2..=77).contains(&points) || g.get("mask").and_then(Value::as_str).is_none() {
                c.add(
                    loc(&["body", "dynamic_masks"]),
                    "each group needs a mask and 2 to 77 trajectory points",
                    "value_error",
                );
            }
        }
    }
    given
}

/// Checks `callback_url`, `external_task_id` (at most 256 characters, not blank), `sound` and `voice_list`;
/// returns the external task id.
fn check_extras(c: &mut Checker, map: &Map<String, Value>) -> Option<String> {
    let base = loc(&["body"]);
    c.url(
        map,
        &base,
        "callback_url",
        false,
        UrlRules {
            data: false,
            hf_path: false,
        },
    );
    let external = c
        .text(map, &base, "external_task_id", false, Some(256))
        .map(String::from);
    if external.as_deref().is_some_and(|e| e.trim().is_empty()) {
        c.add(
            loc(&["body", "external_task_id"]),
            "must not be blank",
            "value_error",
        );
    }
    c.string(map, &base, "sound", false);
    c.array(map, &base, "voice_list", false);
    external
}

/// Validates an image2video body; `Err((issues, true))` when the model does not exist (Kling's 1203).
fn validate(map: &Map<String, Value>) -> Result<Plan, (Checker, bool)> {
    let mut c = Checker::default();
    let base = loc(&["body"]);
    c.unknown_fields(map, &base, FIELDS);
    let Some(model) = check_model(&mut c, map) else {
        return Err((c, true));
    };
    let image = check_image(&mut c, map, "image");
    let tail = check_image(&mut c, map, "image_tail");
    if !map.contains_key("image") && !map.contains_key("image_tail") {
        c.add(
            loc(&["body", "image"]),
            "image or image_tail is required",
            "value_error.missing",
        );
    }
    c.text(map, &base, "prompt", false, Some(2500));
    c.text(map, &base, "negative_prompt", false, Some(2500));
    if c.number(map, &base, "cfg_scale", 0.0, 1.0).is_some() && model.starts_with("kling-v2") {
        c.add(
            loc(&["body", "cfg_scale"]),
            format!("cfg_scale is not supported by {model}"),
            "value_error",
        );
    }
    let mode = c
        .one_of(map, &base, "mode", &["std", "pro"], false)
        .unwrap_or("std");
    let duration = c
        .one_of(map, &base, "duration", &["5", "10"], false)
        .unwrap_or("5");
    let seconds: u32 = duration.parse().unwrap_or(5);
    let tail_given = map.get("image_tail").is_some_and(|v| !v.is_null());
    let camera_given = check_camera_control(&mut c, map);
    let masks_given = check_masks(&mut c, map);
    if [tail_given, camera_given, masks_given]
        .iter()
        .filter(|g| **g)
        .count()
        > 1
    {
        c.add(
            loc(&["body"]),
            "image_tail, the motion masks and camera_control are mutually exclusive",
            "value_error",
        );
    }
    let external = check_extras(&mut c, map);
    let image = image.or(tail);
    match (c.ok(), image) {
        (true, Some(image)) => Ok(Plan {
            model,
            seconds,
            pro: mode == "pro",
            image,
            external,
        }),
        _ => Err((c, false)),
    }
}

/// What a reused `external_task_id` does: the call's `dup_existing` / `dup_reject` fault, else the configured policy.
fn duplicate_policy(ctx: &Ctx, actions: &[FaultAction]) -> DuplicatePolicy {
    if actions.contains(&FaultAction::DuplicateReturnsExisting) {
        DuplicatePolicy::ReturnExisting
    } else if actions.contains(&FaultAction::DuplicateRejected) {
        DuplicatePolicy::Reject
    } else {
        ctx.shared.cfg.kling_duplicate_external_id
    }
}

/// Reads the request body as a JSON object; any other body gets Kling's 400/1200.
async fn body_object(req: Request) -> Result<Map<String, Value>, Response> {
    let body = body_bytes(req.into_body()).await.map_err(|_| coded(1200))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(envelope(
            400,
            1200,
            "Invalid request parameters: body is not a JSON object",
        )),
    }
}

/// A new task for `plan` under a random 18-digit id, with its latency clock and fates.
fn new_task(ctx: &Ctx, plan: Plan, fates: Vec<JobFate>, now_ms: u64) -> Task {
    let stalled = fates.contains(&JobFate::Stall);
    let spec = OutputSpec::Video {
        secs: plan.seconds as f64,
        image: plan.image,
    };
    Task {
        task_id: format!("{}", uuid::Uuid::new_v4().as_u128() % 10u128.pow(18)),
        external_task_id: plan.external,
        clock: Clock::new(
            ctx.shared.cfg.job_latency(JobKind::KlingImageToVideo {
                seconds: plan.seconds,
                pro: plan.pro,
            }),
            stalled,
        ),
        created_ms: now_ms,
        fates,
        regressed: false,
        last: Phase::Queued,
        output: made_ahead(&ctx.shared, &spec, ["image", "image"], stalled),
        spec,
    }
}

/// Creates the task (or, for a reused `external_task_id`, applies `policy`): `Ok((task id, created))`, or
/// `Err(())` when the duplicate is rejected. Updates `kling.peak_active`.
fn admit(
    ctx: &Ctx,
    plan: Plan,
    policy: DuplicatePolicy,
    fates: Vec<JobFate>,
    now_ms: u64,
) -> Result<(String, bool), ()> {
    let mut st = lock(&ctx.shared.kling);
    let existing = plan
        .external
        .as_ref()
        .and_then(|e| st.by_external.get(e).cloned());
    match (existing, policy) {
        (Some(_), DuplicatePolicy::Reject) => Err(()),
        (Some(id), DuplicatePolicy::ReturnExisting) => Ok((id, false)),
        (None, _) => {
            let task = new_task(ctx, plan, fates, now_ms);
            let task_id = task.task_id.clone();
            if let Some(e) = &task.external_task_id {
                st.by_external.insert(e.clone(), task_id.clone());
            }
            st.tasks.insert(task_id.clone(), task);
            st.order.push(task_id.clone());
            let active = st
                .tasks
                .values()
                .filter(|t| t.clock.phase() != Phase::Done)
                .count();
            ctx.shared.peak("kling.peak_active", active as u64);
            Ok((task_id, true))
        }
    }
}

/// The answer to a submit whose task was admitted (or refused as a duplicate); counts it.
async fn submit_answer(ctx: &Ctx, outcome: Result<(String, bool), ()>, model: &str) -> Response {
    let Ok((id, created)) = outcome else {
        return envelope(
            400,
            1201,
            "Invalid parameters: external_task_id already exists",
        );
    };
    if created {
        ctx.shared.count("kling.submit");
        ctx.shared.count(&format!("kling.submit.{model}"));
    } else {
        ctx.shared.count("kling.duplicate");
    }
    match task_data(ctx, &id, false).await {
        Some(data) => json(
            200,
            json!({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}),
        ),
        None => coded(5000),
    }
}

/// `POST /v1/videos/image2video`.
async fn create(ctx: &Ctx, req: Request) -> Response {
    ctx.request("kling.submit");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    let actions = ctx.take_call(P, Endpoint::Submit);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let map = match body_object(req).await {
        Ok(m) => m,
        Err(r) => return ctx.finish(r, &actions).await,
    };
    let plan = match validate(&map) {
        Ok(p) => p,
        Err((_, true)) => return ctx.finish(coded(1203), &actions).await,
        Err((c, false)) => return ctx.finish(invalid(&c), &actions).await,
    };
    let policy = duplicate_policy(ctx, &actions);
    let fates = ctx.shared.take_fates(P);
    let now_ms = unix_ms();
    let model = plan.model.clone();
    let callback = map
        .get("callback_url")
        .and_then(Value::as_str)
        .map(str::to_string);
    let outcome = admit(ctx, plan, policy, fates, now_ms);
    if let Ok((id, true)) = &outcome {
        let due = view_task(ctx, id, false).and_then(|v| v.due);
        let id = id.clone();
        super::callbacks::after_finish(ctx, callback, due, move |ctx| async move {
            let data = task_data(&ctx, &id, false).await?;
            Some(json!({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}))
        });
    }
    let resp = submit_answer(ctx, outcome, &model).await;
    ctx.finish(resp, &actions).await
}

/// What `task_data` needs of a task, copied out under the lock.
struct TaskView {
    task_id: String,
    external: Option<String>,
    phase: Phase,
    created_ms: u64,
    elapsed_ms: u64,
    fates: Vec<JobFate>,
    spec: OutputSpec,
    cell: OutputCell,
    /// Time left until the task is done (`None`: stalled).
    due: Option<std::time::Duration>,
}

/// Finds a task by `task_id` or `external_task_id` and copies out its state; `poll` applies the once-only
/// regress fate (the status shown steps back once).
fn view_task(ctx: &Ctx, id: &str, poll: bool) -> Option<TaskView> {
    let mut st = lock(&ctx.shared.kling);
    let id = if st.tasks.contains_key(id) {
        id.to_string()
    } else {
        st.by_external.get(id)?.clone()
    };
    let t = st.tasks.get_mut(&id)?;
    let real = t.clock.phase();
    let mut shown = real;
    if poll {
        if t.fates.contains(&JobFate::Regress)
            && !t.regressed
            && t.last >= Phase::Running
            && real >= t.last
        {
            t.regressed = true;
            shown = if real == Phase::Done {
                Phase::Running
            } else {
                Phase::Queued
            };
        }
        t.last = real;
    }
    Some(TaskView {
        task_id: t.task_id.clone(),
        external: t.external_task_id.clone(),
        phase: shown,
        created_ms: t.created_ms,
        elapsed_ms: (t.clock.run_secs() * 1000.0) as u64,
        fates: t.fates.clone(),
        spec: t.spec.clone(),
        cell: t.output.clone(),
        due: t.clock.done_in(),
    })
}

/// The task's `task_status`, `task_status_msg` and `task_result` (null until it succeeded); a succeeded task
/// whose output cannot be made turns `failed`.
async fn task_outcome(ctx: &Ctx, v: &TaskView) -> (String, String, Value) {
    let literal = v.fates.iter().find_map(|f| match f {
        JobFate::Status(s) => Some(s.clone()),
        _ => None,
    });
    let status = match v.phase {
        Phase::Queued => "submitted".to_string(),
        Phase::Running => "processing".to_string(),
        Phase::Done => literal.unwrap_or_else(|| "succeed".into()),
    };
    if v.phase != Phase::Done {
        return (status, String::new(), Value::Null);
    }
    if status.eq_ignore_ascii_case("failed") {
        return (
            status,
            "Failure to pass the risk control system".into(),
            Value::Null,
        );
    }
    if !status.eq_ignore_ascii_case("succeed") {
        return (status, String::new(), Value::Null);
    }
    match output(&ctx.shared, &v.cell, &v.spec, ["image", "image"]).await {
        Ok(p) => {
            let duration = if v.fates.contains(&JobFate::NumericDuration) {
                json!(p.duration.unwrap_or(5.0))
            } else {
                json!(format!("{}", p.duration.unwrap_or(5.0)))
            };
            let videos = if v.fates.contains(&JobFate::NoOutput) {
                json!([])
            } else {
                json!([{"id": format!("{}-0", v.task_id), "url": ctx.media_url(&p.name), "duration": duration}])
            };
            (status, String::new(), json!({"videos": videos}))
        }
        Err(f) => ("failed".into(), f.reason, Value::Null),
    }
}

/// The `data` object of one task; `poll` applies the once-only regress fate.
async fn task_data(ctx: &Ctx, id: &str, poll: bool) -> Option<Value> {
    let v = view_task(ctx, id, poll)?;
    let (status, msg, result) = task_outcome(ctx, &v).await;
    let updated = if v.fates.contains(&JobFate::Regress) {
        v.created_ms.saturating_sub(1000)
    } else {
        v.created_ms + v.elapsed_ms
    };
    let mut data = json!({
        "task_id": v.task_id,
        "task_status": status,
        "task_status_msg": msg,
        "task_info": {"external_task_id": v.external},
        "created_at": v.created_ms,
        "updated_at": updated,
    });
    if !result.is_null() {
        data["task_result"] = result;
    }
    if v.fates.contains(&JobFate::ExtraFields) {
        data["x_unknown_field"] = json!({"nested": true});
    }
    Some(data)
}

async fn query(ctx: &Ctx, req: Request, id: &str) -> Response {
    ctx.request("kling.status");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("kling.status");
    let actions = ctx.take_call(P, Endpoint::Status);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let resp = match task_data(ctx, id, true).await {
        Some(data) => json(
            200,
            json!({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}),
        ),
        None => envelope(
            404,
            1203,
            "Requested resource does not exist: task not found",
        ),
    };
    ctx.finish(resp, &actions).await
}

async fn list(ctx: &Ctx, req: Request) -> Response {
    ctx.request("kling.list");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("kling.list");
    let q = query_pairs(req.uri().query());
    let page: usize = query_get(&q, "pageNum")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let size: usize = query_get(&q, "pageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .clamp(1, 500);
    let ids: Vec<String> = {
        let st = lock(&ctx.shared.kling);
        st.order
            .iter()
            .rev()
            .skip((page - 1) * size)
            .take(size)
            .cloned()
            .collect()
    };
    let mut data = Vec::new();
    for id in ids {
        if let Some(d) = task_data(ctx, &id, false).await {
            data.push(d);
        }
    }
    json(
        200,
        json!({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_follow_the_contract() {
        let ok = json!({"model_name": "kling-v2-1", "image": "https://x.test/a.png", "prompt": "p",
                        "duration": "10", "mode": "pro", "external_task_id": "step-1"});
        assert!(matches!(
            validate(ok.as_object().unwrap_or(&Map::new())),
            Ok(Plan {
                seconds: 10,
                pro: true,
                ..
            })
        ));
        for bad in [
            json!({"image": "https://x.test/a.png", "duration": 5}),
            json!({"image": "https://x.test/a.png", "aspect_ratio": "16:9"}),
            json!({"model_name": "kling-v2-1", "image": "https://x.test/a.png", "cfg_scale": 0.5}),
            json!({"image": "data:image/png;base64,AAAA"}),
            json!({"prompt": "no image"}),
            json!({"image": "https://x.test/a.png", "camera_control": {"type": "simple", "config": {"pan": 1, "zoom": 2}}}),
        ] {
            assert!(
                validate(bad.as_object().unwrap_or(&Map::new())).is_err(),
                "{bad}"
            );
        }
        let unknown_model = json!({"model_name": "kling-v9", "image": "https://x.test/a.png"});
        assert!(matches!(
            validate(unknown_model.as_object().unwrap_or(&Map::new())),
            Err((_, true))
        ));
    }
}
