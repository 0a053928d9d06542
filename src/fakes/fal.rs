//! Fake Fal queue API (PROVIDERS.md §2): submit on the full model id, status/result/cancel on
//! `owner/app/requests/{id}` only, for `fal-ai/flux-lora` (and `fal-ai/flux/dev|schnell`), Kling image-to-video,
//! Sync lip-sync, Kling AI Avatar and LoRA training (`fal-ai/flux-lora-fast-training`, see `fal_training.rs`).
//!
//! Unknown body fields are refused with 422, as is any URL with whitespace ("Failed to download file").
//! A cancelled request reports `COMPLETED`; its result call answers 400 "Request was cancelled" (unverified).
//! `?fal_webhook=<url>` gets `{request_id, gateway_request_id, status: "OK"|"ERROR", payload, error}` POSTed
//! once when the job finishes (see `callbacks`).

use std::collections::HashMap;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::faces::PersonAsk;
use super::faults::{Endpoint, ErrorKind, FaultAction, InjectedError, JobFate, Provider};
use super::jobs::{InputRef, OutputCell, OutputSpec, Produced, made_ahead, output};
use super::media::decode_data_uri;
use super::server::{Ctx, body_bytes, injected_error, lock, render_injected};
use super::util::{
    Checker, UrlRules, header_str, iso8601, json, loc, loc_push, query_get, query_pairs, unix_ms,
    with_header,
};
use super::{Clock, JobKind, LipSyncTier, Phase};

const P: Provider = Provider::Fal;

const URL_RULES: UrlRules = UrlRules {
    data: true,
    hf_path: false,
};

/// The Fal models the fake knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Flux { lora: bool, schnell: bool },
    KlingI2V { v3: bool },
    SyncLipSync { generation: u8 },
    Avatar,
    Training,
}

fn parse_model(id: &str) -> Option<Model> {
    let parts: Vec<&str> = id.split('/').collect();
    Some(match parts.as_slice() {
        ["fal-ai", "flux-lora"] => Model::Flux {
            lora: true,
            schnell: false,
        },
        ["fal-ai", "flux", "dev"] => Model::Flux {
            lora: false,
            schnell: false,
        },
        ["fal-ai", "flux", "schnell"] => Model::Flux {
            lora: false,
            schnell: true,
        },
        ["fal-ai", "kling-video", version, tier, "image-to-video"]
            if [
                "v1",
                "v1.5",
                "v1.6",
                "v2",
                "v2.1",
                "v2.5-turbo",
                "v2.6",
                "v3",
            ]
            .contains(version)
                && ["standard", "pro", "master"].contains(tier) =>
        {
            Model::KlingI2V {
                v3: *version == "v3",
            }
        }
        [
            "fal-ai",
            "kling-video",
            "v1",
            "standard" | "pro",
            "ai-avatar",
        ]
        | [
            "fal-ai",
            "kling-video",
            "ai-avatar",
            "v2",
            "standard" | "pro",
        ] => Model::Avatar,
        [
            "fal-ai",
            "flux-lora-fast-training" | "flux-lora-portrait-trainer",
        ] => Model::Training,
        ["fal-ai", "sync-lipsync"] => Model::SyncLipSync { generation: 1 },
        ["fal-ai", "sync-lipsync", "v2"] => Model::SyncLipSync { generation: 2 },
        ["fal-ai", "sync-lipsync", "v3"] => Model::SyncLipSync { generation: 3 },
        _ => return None,
    })
}

struct FalJob {
    app: String,
    model: Model,
    model_id: String,
    clock: Clock,
    fates: Vec<JobFate>,
    canceled: bool,
    regressed: bool,
    last: Phase,
    spec: OutputSpec,
    seed: Option<u64>,
    prompt: Option<String>,
    num_images: u32,
    sync_mode: bool,
    output: OutputCell,
}

/// Fal jobs by request id.
#[derive(Default)]
pub(crate) struct FalState {
    jobs: HashMap<String, FalJob>,
    order: Vec<String>,
}

fn detail(status: u16, msg: &str) -> Response {
    json(status, json!({"detail": msg}))
}

fn injected(e: &InjectedError) -> Response {
    render_injected(e, |e| match (e.kind, e.status) {
        (ErrorKind::Quota, _) => detail(
            403,
            "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.",
        ),
        (_, 429) => detail(429, "Too many concurrent requests for this user."),
        (_, 401) => detail(401, "No user found for Key ID and Secret"),
        (_, 504) => with_header(
            with_header(
                detail(504, "Request timed out"),
                "x-fal-error-type",
                "request_timeout",
            ),
            "x-fal-request-timeout-type",
            "user",
        ),
        (_, s) if s >= 500 => with_header(
            detail(s, "Internal Server Error"),
            "x-fal-error-type",
            "runner_disconnected",
        ),
        (_, s) => detail(s, "The request was rejected."),
    })
}

/// The auth error to answer with, if the credentials are wrong.
pub(crate) fn auth(ctx: &Ctx, req: &Request) -> Option<Response> {
    let header = header_str(req.headers(), "authorization")
        .unwrap_or("")
        .trim();
    if header.is_empty() {
        return Some(detail(401, "Missing authorization header"));
    }
    let key = header.strip_prefix("Key ").map(str::trim).unwrap_or("");
    let ok = match &ctx.shared.cfg.keys.fal {
        Some(k) => key == k,
        None => !key.is_empty(),
    };
    if ok {
        None
    } else {
        Some(detail(401, "No user found for Key ID and Secret"))
    }
}

/// Routes every path that belongs to no other fake.
pub(crate) async fn handle(ctx: &Ctx, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let method = req.method().clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (method, s.as_slice()) {
        (Method::GET, [owner, app, "requests", id, "status"]) => {
            let app = format!("{owner}/{app}");
            let id = id.to_string();
            status(ctx, req, &app, &id).await
        }
        (Method::GET, [owner, app, "requests", id]) => {
            let app = format!("{owner}/{app}");
            let id = id.to_string();
            result(ctx, req, &app, &id).await
        }
        (Method::PUT, [owner, app, "requests", id, "cancel"]) => {
            let app = format!("{owner}/{app}");
            let id = id.to_string();
            cancel(ctx, req, &app, &id).await
        }
        (Method::POST, [_, _, ..]) => {
            let model_id = s.join("/");
            submit(ctx, req, &model_id).await
        }
        _ => detail(404, "Not Found"),
    }
}

fn urls(ctx: &Ctx, app: &str, id: &str) -> (String, String, String) {
    let response_url = format!("{}/{app}/requests/{id}", ctx.base);
    (
        format!("{response_url}/status"),
        response_url.clone(),
        format!("{response_url}/cancel"),
    )
}

fn validation(c: &Checker) -> Response {
    let list: Vec<Value> = c.issues.iter().map(|i| i.to_json()).collect();
    json(422, json!({"detail": list}))
}

fn check_data_uri(c: &mut Checker, map: &Map<String, Value>, key: &str) {
    if let Some(Value::String(s)) = map.get(key)
        && let Some(rest) = s.strip_prefix("data:")
        && let Err(e) = decode_data_uri(rest)
    {
        c.add(
            loc(&["body", key]),
            format!("Failed to download file: {e}"),
            "file_download_error",
        );
    }
}

struct Plan {
    spec: OutputSpec,
    kind: JobKind,
    seed: Option<u64>,
    prompt: Option<String>,
    num_images: u32,
    sync_mode: bool,
}

const PRESETS: &[(&str, u32, u32)] = &[
    ("square_hd", 1024, 1024),
    ("square", 512, 512),
    ("portrait_4_3", 768, 1024),
    ("portrait_16_9", 576, 1024),
    ("landscape_4_3", 1024, 768),
    ("landscape_16_9", 1024, 576),
];

/// Checks the LoRA list: each item a `{path, scale}` object with a URL or Hugging Face path.
fn check_loras(c: &mut Checker, map: &Map<String, Value>) {
    let Some(loras) = c.array(map, &loc(&["body"]), "loras", false) else {
        return;
    };
    for (i, l) in loras.iter().enumerate() {
        let at = loc_push(&loc(&["body", "loras"]), i);
        let Some(o) = l.as_object() else {
            c.add(at, "value is not a valid dict", "type_error.dict");
            continue;
        };
        c.unknown_fields(o, &at, &["path", "scale"]);
        c.url(
            o,
            &at,
            "path",
            true,
            UrlRules {
                data: false,
                hf_path: true,
            },
        );
        c.number(o, &at, "scale", 0.0, 4.0);
    }
}

/// Checks `image_size` (a preset name or `{width, height}`); returns the frame size (1024×768 by default).
fn check_image_size(c: &mut Checker, map: &Map<String, Value>) -> (u32, u32) {
    let (mut w, mut h) = (1024, 768);
    match map.get("image_size") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => match PRESETS.iter().find(|p| p.0 == s) {
            Some(p) => (w, h) = (p.1, p.2),
            None => c.add(
                loc(&["body", "image_size"]),
                format!(
                    "value is not a valid enumeration member; permitted: {}",
                    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                ),
                "type_error.enum",
            ),
        },
        Some(Value::Object(o)) => {
            let at = loc(&["body", "image_size"]);
            c.unknown_fields(o, &at, &["width", "height"]);
            let cw = c.integer(o, &at, "width", 64, 14_142);
            let ch = c.integer(o, &at, "height", 64, 14_142);
            match (cw, ch) {
                (Some(cw), Some(ch)) => (w, h) = (cw as u32, ch as u32),
                _ => {
                    if !o.contains_key("width") || !o.contains_key("height") {
                        c.add(at, "width and height are required", "value_error.missing");
                    }
                }
            }
        }
        Some(_) => c.add(
            loc(&["body", "image_size"]),
            "expected a preset name or {width, height}",
            "type_error",
        ),
    }
    (w, h)
}

/// The fields a Flux body may carry (`loras` only on `flux-lora`).
const FLUX_FIELDS: &[&str] = &[
    "prompt",
    "image_size",
    "num_inference_steps",
    "seed",
    "guidance_scale",
    "sync_mode",
    "num_images",
    "enable_safety_checker",
    "output_format",
];

/// Validates a Flux body; the picture's mark comes from the seed (random when not given) and the prompt.
fn plan_flux(map: &Map<String, Value>, lora: bool, schnell: bool) -> Result<Plan, Checker> {
    let mut c = Checker::default();
    let base = loc(&["body"]);
    let mut allowed = FLUX_FIELDS.to_vec();
    if lora {
        allowed.push("loras");
    }
    c.unknown_fields(map, &base, &allowed);
    let prompt = c.text(map, &base, "prompt", true, None).map(String::from);
    if lora {
        check_loras(&mut c, map);
    }
    let (w, h) = check_image_size(&mut c, map);
    c.integer(
        map,
        &base,
        "num_inference_steps",
        1,
        if schnell { 12 } else { 50 },
    );
    let seed = c.integer(map, &base, "seed", 0, i64::MAX).map(|s| s as u64);
    c.number(map, &base, "guidance_scale", 0.0, 35.0);
    let sync_mode = c.boolean(map, &base, "sync_mode").unwrap_or(false);
    let num_images = c.integer(map, &base, "num_images", 1, 4).unwrap_or(1) as u32;
    c.boolean(map, &base, "enable_safety_checker");
    let format = c
        .one_of(map, &base, "output_format", &["jpeg", "png"], false)
        .unwrap_or("jpeg");
    if !c.ok() {
        return Err(c);
    }
    let seed = seed.unwrap_or_else(|| (uuid::Uuid::new_v4().as_u128() & 0xFFFF_FFFF) as u64);
    let digest =
        Sha256::digest(format!("{seed}\n{}", prompt.as_deref().unwrap_or_default()).as_bytes());
    let person = map
        .get("loras")
        .and_then(|l| l.pointer("/0/path"))
        .and_then(Value::as_str)
        .map(|lora| PersonAsk {
            lora: lora.to_string(),
            seed,
            drift: false,
        });
    Ok(Plan {
        spec: OutputSpec::Images {
            w,
            h,
            jpeg: format == "jpeg",
            mark: u32::from_be_bytes([0, digest[0], digest[1], digest[2]]),
            person,
        },
        kind: JobKind::FalImage,
        seed: Some(seed),
        prompt,
        num_images,
        sync_mode,
    })
}

fn plan_kling(map: &Map<String, Value>, v3: bool) -> Result<Plan, Checker> {
    let mut c = Checker::default();
    let base = loc(&["body"]);
    let image_key = if v3 { "start_image_url" } else { "image_url" };
    let mut allowed = vec![
        "prompt",
        image_key,
        "duration",
        "negative_prompt",
        "cfg_scale",
        "tail_image_url",
    ];
    if v3 {
        allowed.extend(["end_image_url", "generate_audio"]);
    }
    c.unknown_fields(map, &base, &allowed);
    c.text(map, &base, "prompt", true, Some(2500));
    let image = c
        .url(map, &base, image_key, true, URL_RULES)
        .map(String::from);
    check_data_uri(&mut c, map, image_key);
    for k in ["tail_image_url", "end_image_url"] {
        c.url(map, &base, k, false, URL_RULES);
        check_data_uri(&mut c, map, k);
    }
    let durations: Vec<String> = if v3 {
        (3..=15).map(|d| d.to_string()).collect()
    } else {
        vec!["5".into(), "10".into()]
    };
    let allowed_d: Vec<&str> = durations.iter().map(String::as_str).collect();
    let duration = c
        .one_of(map, &base, "duration", &allowed_d, false)
        .unwrap_or("5");
    let seconds: u32 = duration.parse().unwrap_or(5);
    c.text(map, &base, "negative_prompt", false, Some(2500));
    c.number(map, &base, "cfg_scale", 0.0, 1.0);
    c.boolean(map, &base, "generate_audio");
    match (c.ok(), image) {
        (true, Some(image)) => Ok(Plan {
            spec: OutputSpec::Video {
                secs: seconds as f64,
                image: InputRef::Url(image),
            },
            kind: JobKind::FalImageToVideo { seconds },
            seed: None,
            prompt: None,
            num_images: 1,
            sync_mode: false,
        }),
        _ => Err(c),
    }
}

fn plan_lipsync(map: &Map<String, Value>, generation: u8) -> Result<Plan, Checker> {
    let mut c = Checker::default();
    let base = loc(&["body"]);
    let mut allowed = vec!["video_url", "audio_url", "sync_mode"];
    let models: &[&str] = match generation {
        1 => &["lipsync-1.9.0-beta", "lipsync-1.8.0", "lipsync-1.7.1"],
        2 => &["lipsync-2", "lipsync-2-pro"],
        _ => &[],
    };
    if !models.is_empty() {
        allowed.push("model");
    }
    c.unknown_fields(map, &base, &allowed);
    let model = if models.is_empty() {
        None
    } else {
        c.one_of(map, &base, "model", models, false)
    };
    let video = c
        .url(map, &base, "video_url", true, URL_RULES)
        .map(String::from);
    let audio = c
        .url(map, &base, "audio_url", true, URL_RULES)
        .map(String::from);
    check_data_uri(&mut c, map, "video_url");
    check_data_uri(&mut c, map, "audio_url");
    let mode = c
        .one_of(
            map,
            &base,
            "sync_mode",
            &["cut_off", "loop", "bounce", "silence", "remap"],
            false,
        )
        .unwrap_or("cut_off")
        .to_string();
    let tier = match (generation, model) {
        (1, _) => LipSyncTier::V1,
        (2, Some("lipsync-2-pro")) => LipSyncTier::Pro,
        (2, _) => LipSyncTier::V2,
        _ => LipSyncTier::V3,
    };
    match (c.ok(), video, audio) {
        (true, Some(video), Some(audio)) => Ok(Plan {
            spec: OutputSpec::LipSync {
                video: InputRef::Url(video),
                audio: InputRef::Url(audio),
                mode,
            },
            kind: JobKind::FalLipSync { tier },
            seed: None,
            prompt: None,
            num_images: 1,
            sync_mode: false,
        }),
        _ => Err(c),
    }
}

fn plan_avatar(map: &Map<String, Value>) -> Result<Plan, Checker> {
    let mut c = Checker::default();
    let base = loc(&["body"]);
    c.unknown_fields(map, &base, &["image_url", "audio_url", "prompt"]);
    let image = c
        .url(map, &base, "image_url", true, URL_RULES)
        .map(String::from);
    let audio = c
        .url(map, &base, "audio_url", true, URL_RULES)
        .map(String::from);
    check_data_uri(&mut c, map, "image_url");
    check_data_uri(&mut c, map, "audio_url");
    c.string(map, &base, "prompt", false);
    match (c.ok(), image, audio) {
        (true, Some(image), Some(audio)) => Ok(Plan {
            spec: OutputSpec::Avatar {
                image: InputRef::Url(image),
                audio: InputRef::Url(audio),
            },
            kind: JobKind::FalAvatar,
            seed: None,
            prompt: None,
            num_images: 1,
            sync_mode: false,
        }),
        _ => Err(c),
    }
}

/// Reads the request body as a JSON object; any other body gets Fal's 422 `json_invalid`.
async fn body_object(req: Request) -> Result<Map<String, Value>, Response> {
    let body = body_bytes(req.into_body())
        .await
        .map_err(|e| detail(400, &e))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => {
            let mut c = Checker::default();
            c.add(
                loc(&["body"]),
                "Input should be a valid JSON object",
                "json_invalid",
            );
            Err(validation(&c))
        }
    }
}

/// Validates a body for `model`.
fn plan_for(model: Model, map: &Map<String, Value>) -> Result<Plan, Checker> {
    match model {
        Model::Flux { lora, schnell } => plan_flux(map, lora, schnell),
        Model::KlingI2V { v3 } => plan_kling(map, v3),
        Model::SyncLipSync { generation } => plan_lipsync(map, generation),
        Model::Avatar => plan_avatar(map),
        Model::Training => super::fal_training::spec(map, URL_RULES).map(|spec| Plan {
            spec,
            kind: JobKind::FalTraining,
            seed: None,
            prompt: None,
            num_images: 1,
            sync_mode: false,
        }),
    }
}

/// A new queued job of `app` for `plan`, with its latency clock and fates.
fn new_job(
    ctx: &Ctx,
    app: &str,
    model: Model,
    model_id: &str,
    plan: Plan,
    fates: Vec<JobFate>,
) -> FalJob {
    let stalled = fates.contains(&JobFate::Stall);
    FalJob {
        app: app.to_string(),
        model,
        model_id: model_id.to_string(),
        clock: Clock::new(ctx.shared.cfg.job_latency(plan.kind), stalled),
        fates,
        canceled: false,
        regressed: false,
        last: Phase::Queued,
        output: made_ahead(&ctx.shared, &plan.spec, input_fields(model), stalled),
        spec: plan.spec,
        seed: plan.seed,
        prompt: plan.prompt,
        num_images: plan.num_images,
        sync_mode: plan.sync_mode,
    }
}

/// Queues the job under `id`; returns its queue position (the jobs of its app queued ahead of it) and
/// updates `fal.peak_active`.
fn enqueue(ctx: &Ctx, id: &str, job: FalJob) -> usize {
    let mut st = lock(&ctx.shared.fal);
    let ahead = st
        .order
        .iter()
        .filter_map(|i| st.jobs.get(i))
        .filter(|j| j.app == job.app && !j.canceled && j.clock.phase() == Phase::Queued)
        .count();
    st.jobs.insert(id.to_string(), job);
    st.order.push(id.to_string());
    let active = st
        .jobs
        .values()
        .filter(|j| !j.canceled && j.clock.phase() != Phase::Done)
        .count();
    ctx.shared.peak("fal.peak_active", active as u64);
    ahead
}

/// The `IN_QUEUE` answer to a submit, with the request's URLs (`requestId` instead of `request_id` under the
/// `alias` fault).
fn queued_answer(ctx: &Ctx, app: &str, id: &str, queue_position: usize, alias: bool) -> Response {
    let (status_url, response_url, cancel_url) = urls(ctx, app, id);
    let id_key = if alias { "requestId" } else { "request_id" };
    let mut body = json!({
        "status": "IN_QUEUE",
        "queue_position": queue_position,
        "status_url": status_url,
        "response_url": response_url,
        "cancel_url": cancel_url,
        "gateway_request_id": id,
    });
    body[id_key] = json!(id);
    with_header(json(200, body), "x-fal-request-id", id)
}

/// `POST {model id}`: validates the body for the model and queues a job.
async fn submit(ctx: &Ctx, req: Request, model_id: &str) -> Response {
    ctx.request("fal.submit");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    let actions = ctx.take_call(P, Endpoint::Submit);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let Some(model) = parse_model(model_id) else {
        return ctx
            .finish(
                detail(404, &format!("Application '{model_id}' not found")),
                &actions,
            )
            .await;
    };
    let webhook = query_get(&query_pairs(req.uri().query()), "fal_webhook");
    let map = match body_object(req).await {
        Ok(m) => m,
        Err(r) => return ctx.finish(r, &actions).await,
    };
    let mut plan = match plan_for(model, &map) {
        Ok(p) => p,
        Err(c) => return ctx.finish(validation(&c), &actions).await,
    };
    if let Some(refused) = super::fal_storage::check_lora_paths(ctx, &map) {
        return ctx.finish(refused, &actions).await;
    }
    if let OutputSpec::Images {
        person: Some(ask), ..
    } = &mut plan.spec
    {
        ask.drift = ctx.shared.take_drift();
    }
    let parts: Vec<&str> = model_id.split('/').collect();
    let app = format!("{}/{}", parts[0], parts.get(1).copied().unwrap_or(""));
    let id = uuid::Uuid::new_v4().to_string();
    let fates = ctx.shared.take_fates(P);
    let job = new_job(ctx, &app, model, model_id, plan, fates);
    let due = job.clock.done_in();
    let queue_position = enqueue(ctx, &id, job);
    let (hook_app, hook_id) = (app.clone(), id.clone());
    super::callbacks::after_finish(ctx, webhook, due, move |ctx| {
        webhook_body(ctx, hook_app, hook_id)
    });
    ctx.shared.count("fal.submit");
    ctx.shared.count(&format!("fal.submit.{model_id}"));
    let alias = actions.contains(&FaultAction::Alias);
    let resp = queued_answer(ctx, &app, &id, queue_position, alias);
    ctx.finish(resp, &actions).await
}

/// Looks a job up by app and id; a job asked for under another app is not found (case 23).
fn with_job<T>(
    ctx: &Ctx,
    app: &str,
    id: &str,
    f: impl FnOnce(&mut FalJob, usize) -> T,
) -> Option<T> {
    let mut st = lock(&ctx.shared.fal);
    let ahead = {
        let job = st.jobs.get(id)?;
        if job.app != app {
            return None;
        }
        st.order
            .iter()
            .take_while(|i| i.as_str() != id)
            .filter_map(|i| st.jobs.get(i))
            .filter(|j| j.app == app && !j.canceled && j.clock.phase() == Phase::Queued)
            .count()
    };
    let job = st.jobs.get_mut(id)?;
    Some(f(job, ahead))
}

/// The phase to report, applying cancellation and the regress fate.
fn report_phase(job: &mut FalJob) -> Phase {
    let real = if job.canceled {
        Phase::Done
    } else {
        job.clock.phase()
    };
    let mut shown = real;
    if job.fates.contains(&JobFate::Regress)
        && !job.regressed
        && job.last >= Phase::Running
        && real >= job.last
    {
        job.regressed = true;
        shown = match real {
            Phase::Done => Phase::Running,
            _ => Phase::Queued,
        };
    }
    job.last = real;
    shown
}

async fn status(ctx: &Ctx, req: Request, app: &str, id: &str) -> Response {
    ctx.request("fal.status");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("fal.status");
    let actions = ctx.take_call(P, Endpoint::Status);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let logs =
        query_get(&query_pairs(req.uri().query()), "logs").is_some_and(|v| v == "1" || v == "true");
    let found = with_job(ctx, app, id, |job, ahead| {
        let phase = report_phase(job);
        let literal = job.fates.iter().find_map(|f| match f {
            JobFate::Status(s) => Some(s.clone()),
            _ => None,
        });
        let training = match &job.spec {
            OutputSpec::Training { steps, .. } => Some((job.clock.run_fraction(), *steps)),
            _ => None,
        };
        (
            phase,
            ahead,
            literal,
            job.fates.contains(&JobFate::ExtraFields),
            job.clock.run_secs(),
            training,
        )
    });
    let Some((phase, ahead, literal, extra, run_secs, training)) = found else {
        return ctx.finish(detail(404, "Request not found"), &actions).await;
    };
    let (status_url, response_url, cancel_url) = urls(ctx, app, id);
    let log_lines = || {
        let now = iso8601(unix_ms());
        if let Some((fraction, steps)) = training {
            return super::fal_training::log_lines(fraction, steps, &now);
        }
        json!([
            {"message": "Loading model", "level": "INFO", "source": "user", "timestamp": now},
            {"message": "Running inference", "level": "INFO", "source": "user", "timestamp": now},
        ])
    };
    let mut body = json!({
        "request_id": id,
        "response_url": response_url,
        "status_url": status_url,
        "cancel_url": cancel_url,
    });
    let code = match phase {
        Phase::Queued => {
            body["status"] = json!("IN_QUEUE");
            body["queue_position"] = json!(ahead);
            202
        }
        Phase::Running => {
            body["status"] = json!("IN_PROGRESS");
            body["logs"] = if logs { log_lines() } else { Value::Null };
            202
        }
        Phase::Done => {
            body["status"] = json!(literal.unwrap_or_else(|| "COMPLETED".into()));
            body["logs"] = if logs { log_lines() } else { Value::Null };
            body["metrics"] = json!({"inference_time": (run_secs * 1000.0).round() / 1000.0});
            200
        }
    };
    if extra {
        body["x_unknown_field"] = json!({"nested": [1, "two"]});
    }
    ctx.finish(json(code, body), &actions).await
}

/// What `result` needs of a job, copied out under the lock.
struct ResultView {
    phase: Phase,
    canceled: bool,
    fates: Vec<JobFate>,
    spec: OutputSpec,
    cell: OutputCell,
    model: Model,
    model_id: String,
    seed: Option<u64>,
    prompt: Option<String>,
    num_images: u32,
    sync_mode: bool,
}

impl ResultView {
    /// Copies out a job's state (a cancelled job counts as done).
    fn of(job: &FalJob) -> Self {
        Self {
            phase: if job.canceled {
                Phase::Done
            } else {
                job.clock.phase()
            },
            canceled: job.canceled,
            fates: job.fates.clone(),
            spec: job.spec.clone(),
            cell: job.output.clone(),
            model: job.model,
            model_id: job.model_id.clone(),
            seed: job.seed,
            prompt: job.prompt.clone(),
            num_images: job.num_images,
            sync_mode: job.sync_mode,
        }
    }
}

/// The error a result call gets instead of the output: still running, cancelled, or the `error` fate.
fn result_refusal(v: &ResultView) -> Option<Response> {
    if v.phase != Phase::Done {
        return Some(detail(400, "Request is still in progress"));
    }
    if v.canceled {
        return Some(detail(400, "Request was cancelled"));
    }
    if v.fates.contains(&JobFate::TrainingFailed) {
        let r = json(
            422,
            json!({"detail": "Training failed: the loss diverged at step 412 (injected fault)",
                   "error_type": "training_failed"}),
        );
        return Some(with_header(r, "x-fal-error-type", "training_failed"));
    }
    if v.fates.contains(&JobFate::ResultError) {
        let r = json(
            500,
            json!({"detail": "Runner disconnected", "error_type": "runner_disconnected"}),
        );
        return Some(with_header(r, "x-fal-error-type", "runner_disconnected"));
    }
    None
}

/// The request fields a model's inputs come from (named in input failures).
fn input_fields(model: Model) -> [&'static str; 2] {
    match model {
        Model::Flux { .. } => ["prompt", "prompt"],
        Model::KlingI2V { v3: true } => ["start_image_url", "start_image_url"],
        Model::KlingI2V { v3: false } => ["image_url", "image_url"],
        Model::SyncLipSync { .. } => ["video_url", "audio_url"],
        Model::Avatar => ["image_url", "audio_url"],
        Model::Training => ["images_data_url", "images_data_url"],
    }
}

/// Where the output is: a `data:` URI of its bytes when `sync_mode` asked for them (falling back to the media
/// URL), else the media URL.
async fn output_url(ctx: &Ctx, produced: &Produced, sync_mode: bool) -> String {
    if !sync_mode {
        return ctx.media_url(&produced.name);
    }
    match ctx.shared.media.get(&produced.name) {
        Some(item) => match ctx.shared.media.bytes(&item).await {
            Ok(b) => {
                use base64::Engine as _;
                format!(
                    "data:{};base64,{}",
                    produced.content_type,
                    base64::engine::general_purpose::STANDARD.encode(&b)
                )
            }
            Err(_) => ctx.media_url(&produced.name),
        },
        None => ctx.media_url(&produced.name),
    }
}

/// The result body of a model: Flux images with seed and timings, or a video file (with its duration for
/// the avatar); the `no_output` and `extra_fields` fates applied.
fn result_body(v: &ResultView, produced: &Produced, url: &str) -> Value {
    let no_output = v.fates.contains(&JobFate::NoOutput);
    let n = v.num_images as usize;
    let file = json!({
        "url": url,
        "content_type": produced.content_type,
        "file_name": produced.name,
        "file_size": produced.size,
    });
    let mut body = match v.model {
        Model::Flux { .. } => {
            let image = json!({
                "url": url,
                "width": produced.w,
                "height": produced.h,
                "content_type": produced.content_type,
            });
            json!({
                "images": if no_output { json!([]) } else { json!(vec![image; n]) },
                "seed": v.seed,
                "has_nsfw_concepts": vec![false; n],
                "timings": {"inference": 1.234},
                "prompt": v.prompt,
            })
        }
        Model::Avatar => json!({"video": file, "duration": produced.duration}),
        _ => json!({"video": file}),
    };
    if no_output && let Some(o) = body.as_object_mut() {
        o.remove("video");
    }
    if v.fates.contains(&JobFate::ExtraFields) {
        body["x_unknown_field"] = json!({"model": v.model_id});
    }
    body
}

/// `GET owner/app/requests/{id}`: the job's output, made on first ask.
async fn result(ctx: &Ctx, req: Request, app: &str, id: &str) -> Response {
    ctx.request("fal.result");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("fal.result");
    let actions = ctx.take_call(P, Endpoint::Result);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let Some(v) = with_job(ctx, app, id, |job, _| ResultView::of(job)) else {
        return ctx.finish(detail(404, "Request not found"), &actions).await;
    };
    if let Some(r) = result_refusal(&v) {
        return ctx.finish(r, &actions).await;
    }
    let produced = match output(&ctx.shared, &v.cell, &v.spec, input_fields(v.model)).await {
        Ok(p) => p,
        Err(f) => {
            let r = json(
                422,
                json!({"detail": [{"loc": ["body", f.field], "msg": f.reason, "type": "file_download_error"}]}),
            );
            let r = with_header(r, "x-fal-error-type", "file_download_error");
            return ctx.finish(r, &actions).await;
        }
    };
    if v.model == Model::Training {
        let body = super::fal_training::result_body(&ctx.shared, &produced);
        return ctx.finish(json(200, body), &actions).await;
    }
    let url = output_url(ctx, &produced, v.sync_mode).await;
    ctx.finish(json(200, result_body(&v, &produced, &url)), &actions)
        .await
}

/// The webhook body of a finished job (PROVIDERS.md §2.2): `OK` with the result as `payload`, or `ERROR` when
/// its result call would fail; nothing for a cancelled or forgotten job.
async fn webhook_body(ctx: Ctx, app: String, id: String) -> Option<Value> {
    let v = with_job(&ctx, &app, &id, |job, _| ResultView::of(job))?;
    if v.canceled {
        return None;
    }
    let mut body = json!({"request_id": id, "gateway_request_id": id, "status": "ERROR",
                          "payload": null, "error": "the request failed"});
    if result_refusal(&v).is_some() {
        return Some(body);
    }
    match output(&ctx.shared, &v.cell, &v.spec, input_fields(v.model)).await {
        Ok(produced) => {
            body["payload"] = if v.model == Model::Training {
                super::fal_training::result_body(&ctx.shared, &produced)
            } else {
                let url = output_url(&ctx, &produced, v.sync_mode).await;
                result_body(&v, &produced, &url)
            };
            body["status"] = json!("OK");
            body["error"] = Value::Null;
        }
        Err(f) => body["error"] = json!(f.reason),
    }
    Some(body)
}

async fn cancel(ctx: &Ctx, req: Request, app: &str, id: &str) -> Response {
    ctx.request("fal.cancel");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("fal.cancel");
    let actions = ctx.take_call(P, Endpoint::Cancel);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let ignored = actions.contains(&FaultAction::CancelIgnored);
    let outcome = with_job(ctx, app, id, |job, _| {
        if job.canceled || job.clock.phase() == Phase::Done {
            false
        } else {
            if !ignored {
                job.canceled = true;
            }
            true
        }
    });
    let resp = match outcome {
        None => json(404, json!({"status": "NOT_FOUND"})),
        Some(false) => json(400, json!({"status": "ALREADY_COMPLETED"})),
        Some(true) => json(202, json!({"status": "CANCELLATION_REQUESTED"})),
    };
    ctx.finish(resp, &actions).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_parse() {
        assert!(matches!(
            parse_model("fal-ai/flux-lora"),
            Some(Model::Flux { lora: true, .. })
        ));
        assert_eq!(
            parse_model("fal-ai/kling-video/v2.1/standard/image-to-video"),
            Some(Model::KlingI2V { v3: false })
        );
        assert_eq!(
            parse_model("fal-ai/kling-video/v3/pro/image-to-video"),
            Some(Model::KlingI2V { v3: true })
        );
        assert_eq!(
            parse_model("fal-ai/sync-lipsync/v2"),
            Some(Model::SyncLipSync { generation: 2 })
        );
        assert_eq!(
            parse_model("fal-ai/kling-video/ai-avatar/v2/standard"),
            Some(Model::Avatar)
        );
        assert_eq!(
            parse_model("fal-ai/kling-video/v1/pro/ai-avatar"),
            Some(Model::Avatar)
        );
        assert_eq!(parse_model("fal-ai/nothing"), None);
    }

    #[test]
    fn flux_bodies() {
        let ok = json!({"prompt": "TOK a man", "loras": [{"path": "https://x.test/a.safetensors", "scale": 0.95}],
                        "image_size": "landscape_16_9", "output_format": "png", "seed": 7});
        let p = plan_flux(ok.as_object().unwrap_or(&Map::new()), true, false);
        assert!(matches!(
            p,
            Ok(Plan {
                spec: OutputSpec::Images {
                    w: 1024,
                    h: 576,
                    jpeg: false,
                    ..
                },
                ..
            })
        ));
        let newline = json!({"prompt": "x", "loras": [{"path": "https://x.test/a.safetensors\n"}]});
        let err = plan_flux(newline.as_object().unwrap_or(&Map::new()), true, false).err();
        assert!(err.is_some_and(|c| c.issues[0].msg.starts_with("Failed to download file")));
        let extra = json!({"prompt": "x", "aspect_ratio": "16:9"});
        assert!(plan_flux(extra.as_object().unwrap_or(&Map::new()), true, false).is_err());
        let custom = json!({"prompt": "x", "image_size": {"width": 1280, "height": 720}});
        assert!(matches!(
            plan_flux(custom.as_object().unwrap_or(&Map::new()), true, false),
            Ok(Plan {
                spec: OutputSpec::Images {
                    w: 1280,
                    h: 720,
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn kling_duration_must_be_a_string() {
        let bad = json!({"prompt": "x", "image_url": "https://x.test/a.png", "duration": 5});
        assert!(plan_kling(bad.as_object().unwrap_or(&Map::new()), false).is_err());
        let good = json!({"prompt": "x", "image_url": "https://x.test/a.png", "duration": "10"});
        assert!(matches!(
            plan_kling(good.as_object().unwrap_or(&Map::new()), false),
            Ok(Plan {
                kind: JobKind::FalImageToVideo { seconds: 10 },
                ..
            })
        ));
    }
}
