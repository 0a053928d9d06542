//! Fake ElevenLabs (PROVIDERS.md §1): text-to-speech (plain, stream, with timestamps), voices, models, user.
//!
//! Speech lasts `max(1 s, 0.06 s × characters ÷ speed)`; the alignment spreads the characters evenly over that
//! time, so word timings agree with the audio. Unknown body fields are refused with 422 (stricter than the
//! real API, so a client typo cannot pass silently).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::faults::{Endpoint, ErrorKind, InjectedError, Provider};
use super::media::AudioFormat;
use super::server::{Ctx, body_bytes, injected_error, render_injected};
use super::util::{
    Checker, header_str, is_json_content_type, json, loc, query_get, query_pairs, with_header,
};

const P: Provider = Provider::ElevenLabs;

/// Built-in voices: (id, name, gender, accent).
const VOICES: &[(&str, &str, &str, &str)] = &[
    ("21m00Tcm4TlvDq8ikWAM", "Rachel", "female", "american"),
    ("EXAVITQu4vr4xnSDxMaL", "Sarah", "female", "american"),
    ("pNInz6obpgDQGcFmaJgB", "Adam", "male", "american"),
    ("JBFqnCBsd6RMkjVDRZzb", "George", "male", "british"),
];

/// Models and their per-request character limits.
const MODELS: &[(&str, usize)] = &[
    ("eleven_multilingual_v2", 10_000),
    ("eleven_flash_v2_5", 40_000),
    ("eleven_turbo_v2_5", 40_000),
    ("eleven_flash_v2", 30_000),
    ("eleven_turbo_v2", 30_000),
    ("eleven_v3", 5_000),
];

const BODY_FIELDS: &[&str] = &[
    "text",
    "model_id",
    "voice_settings",
    "language_code",
    "seed",
    "previous_text",
    "next_text",
    "previous_request_ids",
    "next_request_ids",
    "pronunciation_dictionary_locators",
    "apply_text_normalization",
    "apply_language_text_normalization",
    "use_pvc_as_ivc",
];

fn detail(status: u16, code: &str, message: &str) -> Response {
    json(
        status,
        json!({"detail": {"status": code, "message": message}}),
    )
}

fn injected(e: &InjectedError) -> Response {
    render_injected(e, |e| match (e.kind, e.status) {
        (ErrorKind::Quota, _) => detail(
            401,
            "quota_exceeded",
            "This request exceeds your quota. You have 0 credits remaining.",
        ),
        (ErrorKind::Slot, _) => detail(
            429,
            "too_many_concurrent_requests",
            "Too many concurrent requests. Your plan allows a limited number of concurrent requests.",
        ),
        (_, 429) => detail(
            429,
            "system_busy",
            "The system is experiencing heavy traffic, please try again.",
        ),
        (_, 401) => detail(401, "invalid_api_key", "Invalid API key"),
        (_, s) if s >= 500 => detail(s, "internal_server_error", "An internal error occurred."),
        (_, s) => detail(s, "bad_request", "The request was rejected."),
    })
}

fn voice_known(ctx: &Ctx, id: &str) -> bool {
    VOICES.iter().any(|v| v.0 == id) || ctx.shared.cfg.extra_voices.iter().any(|v| v == id)
}

fn voice_json(ctx: &Ctx, id: &str) -> Value {
    let (name, gender, accent) = VOICES
        .iter()
        .find(|v| v.0 == id)
        .map(|v| (v.1, v.2, v.3))
        .unwrap_or(("Configured voice", "neutral", "neutral"));
    json!({
        "voice_id": id,
        "name": name,
        "category": "premade",
        "labels": {"gender": gender, "accent": accent, "age": "middle aged", "use_case": "narration"},
        "description": "A voice served by the devatar fakes.",
        "preview_url": ctx.media_url("sample.mp3"),
        "settings": null,
        "available_for_tiers": [],
        "high_quality_base_model_ids": ["eleven_multilingual_v2", "eleven_flash_v2_5"],
    })
}

/// The auth error to answer with, if the credentials are wrong.
fn auth(ctx: &Ctx, req: &Request) -> Option<Response> {
    let given = header_str(req.headers(), "xi-api-key")
        .map(str::trim)
        .unwrap_or("");
    let ok = match &ctx.shared.cfg.keys.elevenlabs {
        Some(k) => given == k,
        None => !given.is_empty(),
    };
    if ok {
        None
    } else {
        Some(detail(401, "invalid_api_key", "Invalid API key"))
    }
}

/// Routes `/v1/text-to-speech/…`, `/v1/voices…`, `/v1/models`, `/v1/user…`.
pub(crate) async fn handle(ctx: &Ctx, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (method, &segs[1..]) {
        (Method::POST, ["text-to-speech", voice, rest @ ..]) => {
            let (stream, timestamps) = match rest {
                [] => (false, false),
                ["stream"] => (true, false),
                ["with-timestamps"] => (false, true),
                ["stream", "with-timestamps"] => (true, true),
                _ => return detail(404, "not_found", "Not Found"),
            };
            let voice = voice.to_string();
            tts(ctx, req, &voice, stream, timestamps).await
        }
        (Method::GET, ["voices", rest @ ..]) => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            voices(ctx, req, &rest).await
        }
        (Method::GET, ["models"]) => {
            ctx.request("elevenlabs.models");
            if let Some(r) = auth(ctx, &req) {
                return r;
            }
            ctx.shared.count("elevenlabs.models");
            let models: Vec<Value> = MODELS
                .iter()
                .map(|(id, limit)| {
                    json!({
                        "model_id": id,
                        "name": id,
                        "can_do_text_to_speech": true,
                        "can_use_style": true,
                        "can_use_speaker_boost": true,
                        "maximum_text_length_per_request": limit,
                        "languages": [{"language_id": "en", "name": "English"}],
                    })
                })
                .collect();
            json(200, Value::Array(models))
        }
        (Method::GET, ["user", rest @ ..]) => {
            ctx.request("elevenlabs.user");
            if let Some(r) = auth(ctx, &req) {
                return r;
            }
            ctx.shared.count("elevenlabs.user");
            let used = ctx
                .shared
                .stats()
                .get("elevenlabs.characters")
                .copied()
                .unwrap_or(0);
            let sub = json!({
                "tier": "creator",
                "character_count": used,
                "character_limit": 100_000,
                "status": "active",
                "max_voice_add_edits": 0,
                "can_extend_character_limit": true,
            });
            match rest {
                [] => json(
                    200,
                    json!({"subscription": sub, "is_new_user": false, "user_id": "fake-user"}),
                ),
                ["subscription"] => json(200, sub),
                _ => detail(404, "not_found", "Not Found"),
            }
        }
        _ => detail(404, "not_found", "Not Found"),
    }
}

async fn voices(ctx: &Ctx, req: Request, rest: &[String]) -> Response {
    ctx.request("elevenlabs.voices");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    ctx.shared.count("elevenlabs.voices");
    let actions = ctx.take_call(P, Endpoint::Voices);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let default_settings = json!({
        "stability": 0.5, "similarity_boost": 0.75, "style": 0.0, "use_speaker_boost": true, "speed": 1.0
    });
    let resp = match rest {
        [] => {
            let mut ids: Vec<&str> = VOICES.iter().map(|v| v.0).collect();
            ids.extend(ctx.shared.cfg.extra_voices.iter().map(String::as_str));
            ids.dedup();
            let list: Vec<Value> = ids.iter().map(|id| voice_json(ctx, id)).collect();
            json(200, json!({"voices": list}))
        }
        [a, b] if a == "settings" && b == "default" => json(200, default_settings),
        [id] | [id, _] if !voice_known(ctx, id) => detail(
            400,
            "voice_not_found",
            &format!("A voice with the voice_id {id} was not found."),
        ),
        [id] => json(200, voice_json(ctx, id)),
        [_, s] if s == "settings" => json(200, default_settings),
        _ => detail(404, "not_found", "Not Found"),
    };
    ctx.finish(resp, &actions).await
}

fn limit_of(model: &str) -> Option<usize> {
    MODELS.iter().find(|m| m.0 == model).map(|m| m.1)
}

struct TtsInput {
    text: String,
    model: String,
    speed: f64,
}

/// The `voice_settings` fields.
const VOICE_SETTINGS: &[&str] = &[
    "stability",
    "similarity_boost",
    "style",
    "use_speaker_boost",
    "speed",
];

/// Checks the optional `voice_settings` object; returns the speaking speed (1.0 unless given).
fn check_voice_settings(c: &mut Checker, map: &Map<String, Value>) -> f64 {
    let mut speed = 1.0;
    if let Some(vs) = c.object(map, &loc(&["body"]), "voice_settings", false) {
        let vbase = loc(&["body", "voice_settings"]);
        c.unknown_fields(vs, &vbase, VOICE_SETTINGS);
        c.number(vs, &vbase, "stability", 0.0, 1.0);
        c.number(vs, &vbase, "similarity_boost", 0.0, 1.0);
        c.number(vs, &vbase, "style", 0.0, 1.0);
        c.boolean(vs, &vbase, "use_speaker_boost");
        if let Some(s) = c.number(vs, &vbase, "speed", 0.7, 1.2) {
            speed = s;
        }
    }
    speed
}

/// Checks the request-stitching and pronunciation lists (at most 3 items each).
fn check_context_lists(c: &mut Checker, map: &Map<String, Value>) {
    let base = loc(&["body"]);
    for key in [
        "previous_request_ids",
        "next_request_ids",
        "pronunciation_dictionary_locators",
    ] {
        if let Some(a) = c.array(map, &base, key, false)
            && a.len() > 3
        {
            c.add(
                loc(&["body", key]),
                "ensure this value has at most 3 items",
                "value_error.list.max_items",
            );
        }
    }
}

/// Validates a text-to-speech body.
fn validate(body: &Value) -> Result<TtsInput, Checker> {
    let mut c = Checker::default();
    let Some(map) = body.as_object() else {
        c.add(
            loc(&["body"]),
            "value is not a valid dict",
            "type_error.dict",
        );
        return Err(c);
    };
    let base = loc(&["body"]);
    c.unknown_fields(map, &base, BODY_FIELDS);
    let text = c.text(map, &base, "text", true, None).map(String::from);
    let model = c
        .one_of(
            map,
            &base,
            "model_id",
            &MODELS.iter().map(|m| m.0).collect::<Vec<_>>(),
            false,
        )
        .unwrap_or("eleven_multilingual_v2")
        .to_string();
    if let Some(code) = c.string(map, &base, "language_code", false)
        && !(code.len() == 2 || code.len() == 3)
    {
        c.add(
            loc(&["body", "language_code"]),
            "language_code must be an ISO 639-1 code",
            "value_error",
        );
    }
    c.integer(map, &base, "seed", 0, 4_294_967_295);
    c.string(map, &base, "previous_text", false);
    c.string(map, &base, "next_text", false);
    check_context_lists(&mut c, map);
    c.one_of(
        map,
        &base,
        "apply_text_normalization",
        &["auto", "on", "off"],
        false,
    );
    c.boolean(map, &base, "apply_language_text_normalization");
    c.boolean(map, &base, "use_pvc_as_ivc");
    let speed = check_voice_settings(&mut c, map);
    match (c.ok(), text) {
        (true, Some(text)) => Ok(TtsInput { text, model, speed }),
        _ => Err(c),
    }
}

fn validation_error(c: &Checker) -> Response {
    let list: Vec<Value> = c.issues.iter().map(|i| i.to_json()).collect();
    json(422, json!({"detail": list}))
}

/// Seconds of speech for `chars` characters.
pub(crate) fn speech_secs(chars: usize, speed: f64) -> f64 {
    let secs = (0.06 * chars as f64 / speed.max(0.1)).max(1.0);
    (secs * 1000.0).round() / 1000.0
}

fn alignment(text: &str, secs: f64) -> Value {
    let chars: Vec<String> = text.chars().map(|c| c.to_string()).collect();
    let n = chars.len().max(1) as f64;
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    let starts: Vec<f64> = (0..chars.len()).map(|i| r(i as f64 * secs / n)).collect();
    let ends: Vec<f64> = (0..chars.len())
        .map(|i| r((i + 1) as f64 * secs / n))
        .collect();
    json!({
        "characters": chars,
        "character_start_times_seconds": starts,
        "character_end_times_seconds": ends,
    })
}

async fn tts(ctx: &Ctx, req: Request, voice: &str, stream: bool, timestamps: bool) -> Response {
    ctx.request("elevenlabs.tts");
    if let Some(r) = auth(ctx, &req) {
        return r;
    }
    let actions = ctx.take_call(P, Endpoint::Tts);
    if let Some(e) = injected_error(&actions) {
        return ctx.finish(injected(e), &actions).await;
    }
    let query = query_pairs(req.uri().query());
    let format_name = query_get(&query, "output_format").unwrap_or_else(|| "mp3_44100_128".into());
    let json_ct = is_json_content_type(req.headers());
    let body = match body_bytes(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return detail(400, "invalid_request", &e),
    };
    let resp = tts_answer(ctx, voice, stream, timestamps, &format_name, json_ct, &body).await;
    ctx.finish(resp, &actions).await
}

/// A checker holding one issue.
fn one_issue(at: &[&str], msg: String, kind: &'static str) -> Checker {
    let mut c = Checker::default();
    c.add(loc(at), msg, kind);
    c
}

/// Parses the `output_format`, the JSON body and its fields; the issues (for a 422) when any of them is wrong.
fn parse_tts_request(
    format_name: &str,
    json_ct: bool,
    body: &[u8],
) -> Result<(AudioFormat, TtsInput), Checker> {
    let Some(format) = AudioFormat::parse(format_name) else {
        return Err(one_issue(
            &["query", "output_format"],
            format!("unsupported output_format {format_name}"),
            "type_error.enum",
        ));
    };
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) if json_ct => v,
        _ => {
            return Err(one_issue(
                &["body"],
                "Expecting a JSON object body".into(),
                "value_error.jsondecode",
            ));
        }
    };
    let input = validate(&parsed)?;
    Ok((format, input))
}

/// The 400 for an unknown voice or a text of `chars` characters over the model's limit, if either applies.
fn voice_or_length_refusal(
    ctx: &Ctx,
    voice: &str,
    input: &TtsInput,
    chars: usize,
) -> Option<Response> {
    if !voice_known(ctx, voice) {
        return Some(detail(
            400,
            "voice_not_found",
            &format!("A voice with the voice_id {voice} was not found."),
        ));
    }
    let limit = limit_of(&input.model).unwrap_or(10_000);
    if chars > limit {
        return Some(detail(
            400,
            "max_character_limit_exceeded",
            &format!(
                "You are sending {chars} characters; the maximum for {} is {limit} characters per request.",
                input.model
            ),
        ));
    }
    None
}

/// One newline-terminated JSON chunk of a timestamped stream: `bytes` of audio with the alignment of `text`,
/// spread over `dur` seconds starting at `offset`.
fn timestamped_chunk(bytes: &[u8], text: String, offset: f64, dur: f64) -> String {
    let mut a = alignment(&text, dur);
    for key in [
        "character_start_times_seconds",
        "character_end_times_seconds",
    ] {
        if let Some(arr) = a.get_mut(key).and_then(Value::as_array_mut) {
            for t in arr.iter_mut() {
                let v = t.as_f64().unwrap_or(0.0) + offset;
                *t = json!((v * 1000.0).round() / 1000.0);
            }
        }
    }
    let line = json!({
        "audio_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        "alignment": a.clone(),
        "normalized_alignment": a,
    });
    format!("{line}\n")
}

/// `stream/with-timestamps`: two newline-delimited JSON chunks, each with its own slice of audio and characters
/// (framing unverified upstream).
fn timestamped_stream(audio: &[u8], text: &str, secs: f64) -> Response {
    let split_b = audio.len() / 2;
    let chars_v: Vec<char> = text.chars().collect();
    let split_c = chars_v.len() / 2;
    let first_secs = secs * split_c as f64 / chars_v.len().max(1) as f64;
    let first = timestamped_chunk(
        &audio[..split_b],
        chars_v[..split_c].iter().collect(),
        0.0,
        first_secs,
    );
    let second = timestamped_chunk(
        &audio[split_b..],
        chars_v[split_c..].iter().collect(),
        first_secs,
        secs - first_secs,
    );
    let stream = futures::stream::iter(vec![
        Ok::<Bytes, std::io::Error>(Bytes::from(first)),
        Ok(Bytes::from(second)),
    ]);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The speech in the shape the path asked for: raw audio (whole or chunked) or JSON with timestamps.
fn speech_body(
    audio: Bytes,
    text: &str,
    secs: f64,
    format: AudioFormat,
    stream: bool,
    timestamps: bool,
) -> Response {
    match (timestamps, stream) {
        (true, true) => timestamped_stream(&audio, text, secs),
        (true, false) => {
            let al = alignment(text, secs);
            json(
                200,
                json!({
                    "audio_base64": base64::engine::general_purpose::STANDARD.encode(&audio),
                    "alignment": al.clone(),
                    "normalized_alignment": al,
                }),
            )
        }
        (false, true) => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = audio
                .chunks(4096)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, format.content_type())],
                Body::from_stream(futures::stream::iter(chunks)),
            )
                .into_response()
        }
        (false, false) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.content_type())],
            audio,
        )
            .into_response(),
    }
}

/// Adds ElevenLabs' speech response headers (request and history ids, character cost, concurrency).
fn with_speech_headers(resp: Response, request_id: &str, chars: usize) -> Response {
    let resp = with_header(resp, "request-id", request_id);
    let resp = with_header(
        resp,
        "history-item-id",
        &uuid::Uuid::new_v4().simple().to_string(),
    );
    let resp = with_header(resp, "character-cost", &chars.to_string());
    let resp = with_header(resp, "x-character-count", &chars.to_string());
    let resp = with_header(resp, "current-concurrent-requests", "1");
    with_header(resp, "maximum-concurrent-requests", "5")
}

/// Validates a speech request, waits the simulated latency, makes the audio and answers in the asked shape.
async fn tts_answer(
    ctx: &Ctx,
    voice: &str,
    stream: bool,
    timestamps: bool,
    format_name: &str,
    json_ct: bool,
    body: &[u8],
) -> Response {
    let (format, input) = match parse_tts_request(format_name, json_ct, body) {
        Ok(v) => v,
        Err(c) => return validation_error(&c),
    };
    let chars = input.text.chars().count();
    if let Some(r) = voice_or_length_refusal(ctx, voice, &input, chars) {
        return r;
    }
    tokio::time::sleep(ctx.shared.cfg.tts_latency(chars)).await;
    let secs = speech_secs(chars, input.speed);
    let audio = match ctx.shared.media.speech(secs, format, &input.text).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("fakes: speech generation failed: {e}");
            return detail(500, "internal_server_error", "audio generation failed");
        }
    };
    ctx.shared.count("elevenlabs.tts");
    ctx.shared.count(&format!("elevenlabs.tts.{}", input.model));
    ctx.shared.count_by("elevenlabs.characters", chars as u64);
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let resp = speech_body(audio, &input.text, secs, format, stream, timestamps);
    with_speech_headers(resp, &request_id, chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_follows_text() {
        assert_eq!(speech_secs(5, 1.0), 1.0);
        assert_eq!(speech_secs(100, 1.0), 6.0);
        assert_eq!(speech_secs(100, 1.2), 5.0);
    }

    #[test]
    fn alignment_covers_the_audio() {
        let a = alignment("Hi you", 1.2);
        let ends = a["character_end_times_seconds"].as_array().map(|v| v.len());
        assert_eq!(ends, Some(6));
        assert_eq!(a["character_end_times_seconds"][5], json!(1.2));
        assert_eq!(a["character_start_times_seconds"][0], json!(0.0));
    }

    #[test]
    fn body_rules() {
        assert!(validate(&json!({"text": "hello"})).is_ok());
        assert!(validate(&json!({"text": "  "})).is_err());
        assert!(validate(&json!({"text": "x", "model_id": "eleven_nope"})).is_err());
        assert!(validate(&json!({"text": "x", "voice_settings": {"stability": 1.5}})).is_err());
        assert!(validate(&json!({"text": "x", "voice_setting": {}})).is_err());
        assert!(
            validate(&json!({"text": "x", "previous_request_ids": ["a", "b", "c", "d"]})).is_err()
        );
    }
}
