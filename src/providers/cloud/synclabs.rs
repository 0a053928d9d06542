//! Sync Labs lip-sync (`/v2/generate/upload`, `lipsync-2`): local media is uploaded, `sync_mode` is always
//! sent (`loop`, so speech longer than the clip is never cut), and an `Idempotency-Key` derived from the step
//! makes a repeated submit adopt the first generation instead of paying twice. After the first look the status
//! is long-polled (`?wait=true&timeout=10`), so a finished generation is seen at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::http::{
    self, ErrorClass, MediaKind, Net, Repeat, call_keeping_body, call_with_retries, client,
    json_body,
};
use super::{Cadence, CloudConfig, Secret};
use crate::failpoint;
use crate::providers::PriceTable;
use crate::providers::hooks::Hook;
use crate::providers::{JobCtx, JobState, LipSync, LipSyncRequest, ProviderError, ProviderJob};

/// Provider id in logs, steps and `--json`.
pub const PROVIDER: &str = "synclabs";
const MODEL: &str = "lipsync-2";
/// The longest long poll Sync allows (`timeout` 1–10 s).
const LONG_POLL_SECS: u64 = 10;

/// Sync Labs' direct API.
#[derive(Debug, Clone)]
pub struct SyncLipSync {
    base: String,
    key: Secret,
    prices: PriceTable,
    net: Net,
}

fn classify(status: StatusCode, body: &Value) -> ErrorClass {
    let code = body
        .get("errorCode")
        .or_else(|| body.get("error_code"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match (status.as_u16(), code) {
        (429, "rate_limit_exceeded") => ErrorClass::Retryable,
        (429, _) => ErrorClass::WaitForSlot,
        (408 | 500..=599, _) => ErrorClass::Retryable,
        _ => ErrorClass::Terminal,
    }
}

/// What a generation says.
enum GenState {
    Running,
    Completed(Option<String>),
    Failed(String),
}

/// A URL field that may be a string, null or `{}`.
fn url_field(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        v.get(*n)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

fn gen_state(body: &Value) -> GenState {
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    let why = || {
        let error = body.get("error").and_then(Value::as_str).unwrap_or("");
        let code = body
            .get("error_code")
            .or_else(|| body.get("errorCode"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match (error.is_empty(), code.is_empty()) {
            (true, true) => "no reason given".to_string(),
            (false, true) => error.to_string(),
            (true, false) => code.to_string(),
            (false, false) => format!("{error} ({code})"),
        }
    };
    match status.as_str() {
        "PENDING" | "PROCESSING" | "QUEUED" => GenState::Running,
        "COMPLETED" | "COMPLETE" => GenState::Completed(url_field(
            body,
            &["outputMediaUrl", "outputUrl", "output_url", "outputURL"],
        )),
        "FAILED" | "ERROR" => GenState::Failed(format!("failed: {}", why())),
        "REJECTED" => GenState::Failed(format!("rejected the input: {}", why())),
        "CANCELED" | "CANCELLED" => GenState::Failed("the generation was canceled".into()),
        "TIMED_OUT" => GenState::Failed("the generation timed out at Sync".into()),
        other => GenState::Failed(format!(
            "unknown status {other:?}: {}",
            body.to_string().chars().take(300).collect::<String>()
        )),
    }
}

/// What a submit sends: a JSON body naming presigned URLs (Sync fetches the inputs itself) when both inputs
/// have one, otherwise the local media uploaded as a multipart form.
enum Payload {
    ByUrl(Value),
    Upload(Upload),
}

/// Local media for an upload, streamed from disk (never held in memory whole); the form is rebuilt for every
/// attempt.
struct Upload {
    options: String,
    webhook: Option<String>,
    video: PathBuf,
    audio: PathBuf,
    audio_name: (&'static str, &'static str),
}

/// The `options` object of every submit.
fn submit_options() -> Value {
    json!({"sync_mode": "loop", "output_format": "mp4"})
}

impl Payload {
    /// The payload for `req` (with `webhookUrl` when a callback URL is given): by URL when both presigned URLs
    /// are set, else the files read from disk.
    async fn of(req: &LipSyncRequest, webhook: Option<&str>) -> Result<Self, ProviderError> {
        let options = submit_options();
        if let (Some(video), Some(audio)) = (&req.urls.video, &req.urls.audio) {
            let mut body = json!({
                "model": MODEL,
                "input": [{"type": "video", "url": video}, {"type": "audio", "url": audio}],
                "options": options,
            });
            if let Some(url) = webhook {
                body["webhookUrl"] = json!(url);
            }
            return Ok(Self::ByUrl(body));
        }
        let audio_name = if req.audio.extension().is_some_and(|e| e == "mp3") {
            ("speech.mp3", "audio/mpeg")
        } else {
            ("speech.wav", "audio/wav")
        };
        Ok(Self::Upload(Upload {
            options: options.to_string(),
            webhook: webhook.map(str::to_string),
            video: req.video.clone(),
            audio: req.audio.clone(),
            audio_name,
        }))
    }

    /// The endpoint path; an upload first checks that its form can be built.
    fn path(&self) -> Result<&'static str, ProviderError> {
        match self {
            Self::ByUrl(_) => Ok("/v2/generate"),
            Self::Upload(upload) => {
                upload.form()?;
                Ok("/v2/generate/upload")
            }
        }
    }

    /// `request` with this payload as its body.
    fn attach(&self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::ByUrl(body) => request.json(body),
            Self::Upload(upload) => match upload.form() {
                Ok(f) => request.multipart(f),
                Err(_) => request,
            },
        }
    }
}

impl Upload {
    /// The multipart form: model, options, the clip and the speech.
    fn form(&self) -> Result<Form, ProviderError> {
        let mut form = Form::new()
            .text("model", MODEL)
            .text("options", self.options.clone());
        if let Some(url) = &self.webhook {
            form = form.text("webhookUrl", url.clone());
        }
        Ok(form
            .part(
                "video",
                file_part(&self.video)?
                    .file_name("clip.mp4")
                    .mime_str("video/mp4")
                    .map_err(|e| ProviderError::Invalid(e.to_string()))?,
            )
            .part(
                "audio",
                file_part(&self.audio)?
                    .file_name(self.audio_name.0)
                    .mime_str(self.audio_name.1)
                    .map_err(|e| ProviderError::Invalid(e.to_string()))?,
            ))
    }
}

/// A form part streaming the file at `path` (its length sent up front, as a browser's upload would).
fn file_part(path: &Path) -> Result<Part, ProviderError> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    Ok(Part::stream_with_length(
        http::file_body(tokio::fs::File::from_std(file)),
        len,
    ))
}

/// The generation id of an accepted submit.
fn generation_id(body: &Value) -> Result<String, ProviderError> {
    let id = body
        .get("id")
        .or_else(|| body.get("generationId"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::BadOutput("sync accepted the job but sent no id".into()))?;
    http::remote_id(PROVIDER, "generation id", id)
}

/// The generation an uncertain submit started, when its error (IDEMPOTENCY_OUTCOME_UNKNOWN) names one: adopted.
fn adopted_generation(body: &Value, job: &JobCtx) -> Option<String> {
    let raw = body.get("generationId").and_then(Value::as_str)?;
    let id = http::remote_id(PROVIDER, "generation id", raw).ok()?;
    job.note(format!(
        "synclabs: adopted generation {id} after an uncertain submit"
    ));
    Some(id)
}

impl SyncLipSync {
    /// A client for the configured account.
    pub fn new(cfg: &CloudConfig, key: Secret) -> Self {
        Self {
            base: cfg.sync_base.clone(),
            key,
            prices: cfg.prices.clone(),
            net: Net::of(cfg),
        }
    }

    async fn record(
        &self,
        job: &JobCtx,
        state: JobState,
        attempt: u32,
        id: Option<&str>,
        hook_url: Option<&str>,
    ) -> Result<(), ProviderError> {
        let mut data = json!({"idempotencyKey": job.stable_id(attempt)});
        if let Some(url) = hook_url {
            data["hookUrl"] = json!(url);
        }
        let record = ProviderJob {
            state,
            attempt,
            remote_id: id.map(str::to_string),
            data,
            error: None,
        };
        job.save(PROVIDER, &record)
            .await
            .map_err(ProviderError::Invalid)
    }

    /// Submits with the step's idempotency key; a repeat with the same key returns the same generation.
    async fn submit(
        &self,
        req: &LipSyncRequest,
        attempt: u32,
        hook_url: Option<&str>,
        job: &JobCtx,
    ) -> Result<String, ProviderError> {
        let http = client(Duration::from_secs(120))?;
        let key = job.stable_id(attempt);
        let payload = Payload::of(req, hook_url).await?;
        let url = format!("{}{}", self.base, payload.path()?);
        let resp = call_keeping_body(
            &self.net,
            PROVIDER,
            4,
            Repeat::Safe,
            job,
            || {
                payload.attach(
                    http.post(&url)
                        .header("x-api-key", self.key.expose())
                        .header("Idempotency-Key", &key),
                )
            },
            classify,
        )
        .await;
        match resp {
            Ok(resp) => generation_id(&json_body(PROVIDER, resp).await?),
            Err((e, body)) => adopted_generation(&body, job).ok_or(e),
        }
    }

    /// The generation's state, long-polled: Sync holds the request until the generation ends or `wait` seconds
    /// (1–10) pass (§4.1); the flag returned says whether it did (`X-Sync-Wait-Mode: long_poll`).
    async fn get(&self, id: &str, wait: u64, job: &JobCtx) -> Result<(Value, bool), ProviderError> {
        let http = client(Duration::from_secs(30))?;
        let url = format!(
            "{}/v2/generate/{id}?wait=true&timeout={}",
            self.base,
            wait.clamp(1, LONG_POLL_SECS)
        );
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            4,
            Repeat::Safe,
            job,
            || http.get(&url).header("x-api-key", self.key.expose()),
            classify,
        )
        .await?;
        let long_polled = resp
            .headers()
            .get("x-sync-wait-mode")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"long_poll"));
        Ok((json_body(PROVIDER, resp).await?, long_polled))
    }
}

#[async_trait]
impl LipSync for SyncLipSync {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn key_params(&self, req: &LipSyncRequest) -> Value {
        json!({"model": MODEL, "syncMode": "loop", "tail": req.tail_seconds})
    }

    async fn apply(
        &self,
        req: &LipSyncRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let (id, attempt, hook) = self.resume_or_submit(req, job).await?;
        let speech = req.speech_seconds.max(1.0);
        let url = self
            .await_output(&id, attempt, speech, job, hook.as_ref())
            .await?;
        job.provider_done();
        let synced = work_dir.join("sync.mp4");
        http::download(
            &self.net,
            PROVIDER,
            &url,
            &synced,
            MediaKind::Video,
            500 << 20,
        )
        .await?;
        self.record(job, JobState::Completed, attempt, Some(&id), None)
            .await?;
        job.add_cost(self.prices.lipsync(speech));
        super::fit_to_speech(synced, req, work_dir, job).await
    }
}

impl SyncLipSync {
    /// The stored generation when one was submitted, else a (re)submit: an uncertain one with its own attempt's
    /// idempotency key (and the same callback URL, so the body is the same), a new one after reserving its price;
    /// with the attempt and the webhook registration.
    async fn resume_or_submit(
        &self,
        req: &LipSyncRequest,
        job: &JobCtx,
    ) -> Result<(String, u32, Option<Hook>), ProviderError> {
        let stored = job.load(PROVIDER).await.map_err(ProviderError::Invalid)?;
        let previous = stored.as_ref().map_or(0, |j| j.attempt);
        let stored_url = stored
            .as_ref()
            .and_then(|j| j.data.get("hookUrl"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let stored_hook = stored_url.as_deref().and_then(|u| self.net.hook(Some(u)));
        Ok(match stored {
            Some(j)
                if matches!(j.state, JobState::Submitted | JobState::Completed)
                    && j.remote_id.is_some() =>
            {
                let id = j.remote_id.unwrap_or_default();
                job.note(format!(
                    "synclabs: resuming generation {id} (no new submit)"
                ));
                (id, j.attempt, stored_hook)
            }
            // An uncertain submit is repeated with the same idempotency key: Sync returns the same generation.
            // The body is the same too: the stored callback URL is sent verbatim, even when it is no longer ours.
            Some(j) if j.state == JobState::Submitting => {
                let url = stored_url.as_deref();
                let id = self.submit_recorded(req, j.attempt, url, job).await?;
                (id, j.attempt, stored_hook)
            }
            _ => {
                job.reserve(PROVIDER, self.prices.lipsync(req.speech_seconds.max(1.0)))?;
                let hook = self.net.hook(None);
                let url = hook.as_ref().map(Hook::url);
                let id = self.submit_recorded(req, previous + 1, url, job).await?;
                (id, previous + 1, hook)
            }
        })
    }

    /// Polls generation `id` until it yields its output URL; a deadline, a failed generation or one completed
    /// without output (after one re-read) marks the job failed.
    async fn await_output(
        &self,
        id: &str,
        attempt: u32,
        speech: f64,
        job: &JobCtx,
        hook: Option<&Hook>,
    ) -> Result<String, ProviderError> {
        let mut cadence = Cadence::lipsync(&self.net, speech).woken_by(hook);
        let mut reread = false;
        // After the first look, long polls (§4.7): Sync answers as soon as the generation ends. A server that
        // does not hold the request (no long-poll header, or an early answer) is polled on the cadence instead.
        let mut long_poll = false;
        loop {
            failpoint::hit(failpoint::MID_POLL);
            let turn = if long_poll {
                cadence.tick()
            } else {
                cadence.wait().await
            };
            match turn {
                Ok(true) => job.note(format!(
                    "synclabs: generation {id} still pending after 10 minutes"
                )),
                Ok(false) => {}
                Err(limit) => {
                    let e = ProviderError::Unavailable {
                        provider: PROVIDER,
                        message: format!(
                            "generation {id} did not finish within {:.0} s",
                            limit.as_secs_f64()
                        ),
                    };
                    return self.fail(job, attempt, id, e).await;
                }
            }
            let asked = Instant::now();
            let wait = cadence.remaining().as_secs();
            let body = match self.get(id, wait, job).await {
                Ok((body, held)) => {
                    long_poll = held && asked.elapsed() >= Duration::from_millis(900);
                    body
                }
                Err(ProviderError::Unavailable { .. } | ProviderError::BadOutput(_)) => {
                    long_poll = false;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match gen_state(&body) {
                GenState::Running => {}
                GenState::Completed(Some(url)) => return Ok(url),
                GenState::Completed(None) if !reread => reread = true,
                GenState::Completed(None) => {
                    let e = ProviderError::BadOutput(format!(
                        "sync generation {id} completed without an output URL (completed_without_output)"
                    ));
                    return self.fail(job, attempt, id, e).await;
                }
                GenState::Failed(reason) => {
                    let e = ProviderError::Rejected {
                        provider: PROVIDER,
                        message: format!("generation {id} {reason}"),
                    };
                    return self.fail(job, attempt, id, e).await;
                }
            }
        }
    }

    /// Marks generation `id` failed in the ledger, then returns `e`.
    async fn fail(
        &self,
        job: &JobCtx,
        attempt: u32,
        id: &str,
        e: ProviderError,
    ) -> Result<String, ProviderError> {
        self.record(job, JobState::Failed, attempt, Some(id), None)
            .await?;
        Err(e)
    }

    /// Submits with the ledger around it: `Submitting` before the request, `Submitted` with the generation id,
    /// `Failed` when Sync refused it.
    async fn submit_recorded(
        &self,
        req: &LipSyncRequest,
        attempt: u32,
        hook_url: Option<&str>,
        job: &JobCtx,
    ) -> Result<String, ProviderError> {
        self.record(job, JobState::Submitting, attempt, None, hook_url)
            .await?;
        failpoint::hit(failpoint::AFTER_RECORD_BEFORE_SUBMIT);
        match self.submit(req, attempt, hook_url, job).await {
            Ok(id) => {
                failpoint::hit(failpoint::AFTER_SUBMIT_BEFORE_RECORD);
                self.record(job, JobState::Submitted, attempt, Some(&id), hook_url)
                    .await?;
                Ok(id)
            }
            Err(e @ ProviderError::NeedsAttention(_)) => Err(e),
            Err(e) => {
                self.record(job, JobState::Failed, attempt, None, None)
                    .await?;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_mapped_and_url_names_are_tolerated() {
        let done = json!({"status": "COMPLETED", "outputUrl": "https://x/r.mp4"});
        assert!(matches!(gen_state(&done), GenState::Completed(Some(u)) if u == "https://x/r.mp4"));
        let media =
            json!({"status": "completed", "outputMediaUrl": "https://x/m.mp4", "outputUrl": {}});
        assert!(
            matches!(gen_state(&media), GenState::Completed(Some(u)) if u == "https://x/m.mp4")
        );
        let empty = json!({"status": "COMPLETED", "outputUrl": {}});
        assert!(matches!(gen_state(&empty), GenState::Completed(None)));
        for s in ["REJECTED", "CANCELED", "TIMED_OUT", "FAILED", "WHATEVER"] {
            assert!(
                matches!(gen_state(&json!({"status": s})), GenState::Failed(_)),
                "{s}"
            );
        }
        assert!(matches!(
            gen_state(&json!({"status": "PENDING"})),
            GenState::Running
        ));
    }

    #[test]
    fn rate_limits_differ_from_concurrency() {
        let rate = json!({"statusCode": 429, "errorCode": "rate_limit_exceeded"});
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &rate),
            ErrorClass::Retryable
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &json!({})),
            ErrorClass::WaitForSlot
        );
        assert_eq!(
            classify(StatusCode::PAYMENT_REQUIRED, &json!({})),
            ErrorClass::Terminal
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{json_value, target};

    const KEYS: &[&str] = &[
        "id",
        "generationId",
        "status",
        "error",
        "error_code",
        "errorCode",
        "outputUrl",
        "outputMediaUrl",
        "output_url",
        "outputURL",
    ];
    const STRINGS: &[&str] = &[
        "COMPLETED",
        "completed",
        "FAILED",
        "REJECTED",
        "PENDING",
        "https://cdn.example/o.mp4",
        "",
        " ",
        "../../v2/x",
        "gen_1",
        "a?b",
        "rate_limit_exceeded",
    ];

    /// Any answer decodes to a generation state and a path-safe generation id, or a clear error; never a panic.
    #[test]
    fn fuzz_sync_answers() {
        target("sync_answers", |u| {
            let body = json_value(u, KEYS, STRINGS, 3)?;
            if let Ok(id) = generation_id(&body) {
                assert!(
                    http::remote_id(PROVIDER, "generation id", &id).is_ok_and(|again| again == id)
                );
            }
            match gen_state(&body) {
                GenState::Completed(Some(url)) => assert!(!url.is_empty() && url.trim() == url),
                GenState::Failed(why) => assert!(!why.is_empty()),
                _ => {}
            }
            let status = StatusCode::from_u16(u.int_in_range(100..=599)?).unwrap_or(StatusCode::OK);
            let _ = classify(status, &body);
            Ok(())
        });
    }
}
