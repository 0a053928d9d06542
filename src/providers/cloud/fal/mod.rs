//! Fal's queue API and the models we run on it: `fal-ai/flux-lora` (identity-locked stills), Kling
//! image-to-video and Sync lip-sync, so one `FAL_KEY` drives the whole pipeline.
//!
//! A submit is recorded before it is sent and its `request_id` and URLs the moment Fal answers; a restarted
//! step resumes polling with the stored URLs. Fal has no client idempotency key, so a submit whose outcome is
//! unknown is parked (`needs attention`) unless `DEVATAR_FAL_RESUBMIT=1`. The model clients live in
//! [`models`] and are re-exported here.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::http::{self, ErrorClass, Net, Repeat, call_with_retries, client, data_uri, json_body};
use super::{Cadence, Secret};
use crate::failpoint;
use crate::providers::{JobCtx, JobState, ProviderError, ProviderJob};

mod models;
mod storage;
mod training;

pub use models::{FalAvatar, FalFlux, FalKling, FalSync, kling_duration};
pub use storage::FalStorage;
pub use training::{FalTrainer, TrainRequest, TrainedLora};

pub(super) const PROVIDER: &str = "fal";
/// Flux + LoRA model id.
pub const FLUX_LORA: &str = "fal-ai/flux-lora";
/// Kling 2.1 standard image-to-video on Fal.
pub const KLING_I2V: &str = "fal-ai/kling-video/v2.1/standard/image-to-video";
/// Sync lip-sync v2 on Fal.
pub const SYNC_V2: &str = "fal-ai/sync-lipsync/v2";
/// The Fal model id of the one-step talking avatar unless `FAL_AVATAR_MODEL` names another.
pub const AVATAR_DEFAULT: &str = "fal-ai/kling-video/ai-avatar/v2/standard";

/// The queue client: submit, poll, fetch the result, cancel.
#[derive(Debug, Clone)]
pub struct FalQueue {
    base: String,
    key: Secret,
    resubmit_uncertain: bool,
    net: Net,
}

/// The URLs of one queued request.
#[derive(Debug, Clone)]
struct Queued {
    request_id: String,
    status_url: String,
    response_url: String,
    cancel_url: String,
}

impl Queued {
    fn to_json(&self) -> Value {
        json!({"statusUrl": self.status_url, "responseUrl": self.response_url, "cancelUrl": self.cancel_url})
    }

    fn from_job(job: &ProviderJob) -> Option<Self> {
        let get = |k: &str| job.data.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            request_id: job.remote_id.clone()?,
            status_url: get("statusUrl")?,
            response_url: get("responseUrl")?,
            cancel_url: get("cancelUrl")?,
        })
    }
}

/// The queued request of an accepted submit. The request id must be path-safe; the status, response and cancel
/// URLs Fal answers with are used only when they are on the queue's own origin (scheme, host and port of `base`,
/// no user info) — our key goes with every request to them — else the documented paths under `base` are.
fn queued(base: &str, model: &str, body: &Value) -> Result<Queued, ProviderError> {
    let raw_id = body
        .get("request_id")
        .or_else(|| body.get("requestId"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ProviderError::BadOutput("fal accepted the job but sent no request_id".into())
        })?;
    let request_id = http::remote_id(PROVIDER, "request_id", raw_id)?;
    let app = format!("{base}/{}/requests/{request_id}", app_of(model));
    let origin = reqwest::Url::parse(base).ok();
    let same_origin = |u: &reqwest::Url| {
        origin.as_ref().is_some_and(|o| {
            u.scheme() == o.scheme()
                && u.host_str() == o.host_str()
                && u.port_or_known_default() == o.port_or_known_default()
                && u.username().is_empty()
                && u.password().is_none()
        })
    };
    let url_or = |k: &str, fallback: String| {
        body.get(k)
            .and_then(Value::as_str)
            .and_then(|s| http::clean_url(k, s).ok())
            .filter(|s| reqwest::Url::parse(s).is_ok_and(|u| same_origin(&u)))
            .unwrap_or(fallback)
    };
    Ok(Queued {
        status_url: url_or("status_url", format!("{app}/status")),
        response_url: url_or("response_url", app.clone()),
        cancel_url: url_or("cancel_url", format!("{app}/cancel")),
        request_id,
    })
}

/// Cancels the Fal request if the step is abandoned (run cancelled, deadline) before it completes.
struct CancelOnDrop {
    queue: FalQueue,
    url: Option<String>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(url) = self.url.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let queue = self.queue.clone();
            rt.spawn(async move { queue.cancel(&url).await });
        }
    }
}

fn classify(status: StatusCode, _body: &Value) -> ErrorClass {
    http::class_of(status)
}

/// The `owner/app` part of a model id: status, result and cancel live there.
fn app_of(model: &str) -> &str {
    let mut cut = model.len();
    if let Some((i, _)) = model.match_indices('/').nth(1) {
        cut = i;
    }
    &model[..cut]
}

impl FalQueue {
    /// A queue client for `base` (e.g. `https://queue.fal.run`).
    pub fn new(base: &str, key: Secret, resubmit_uncertain: bool, net: Net) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            resubmit_uncertain,
            net,
        }
    }

    fn auth(&self) -> String {
        format!("Key {}", self.key.expose())
    }

    /// The key this queue sends (the storage client sends the same).
    pub fn key(&self) -> &Secret {
        &self.key
    }

    async fn cancel(&self, url: &str) {
        if let Ok(http) = client(Duration::from_secs(15)) {
            let _ = http
                .put(url)
                .header("Authorization", self.auth())
                .send()
                .await;
        }
    }

    async fn submit(
        &self,
        model: &str,
        input: &Value,
        job: &JobCtx,
    ) -> Result<Queued, ProviderError> {
        let http = client(Duration::from_secs(60))?;
        let url = format!("{}/{model}", self.base);
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            4,
            Repeat::Unsafe,
            job,
            || {
                http.post(&url)
                    .header("Authorization", self.auth())
                    .header("X-Fal-Request-Timeout", "600")
                    .json(input)
            },
            classify,
        )
        .await?;
        queued(&self.base, model, &json_body(PROVIDER, resp).await?)
    }

    /// Runs `model` on `input` to completion and returns its output JSON, resuming a stored job if there is one.
    /// A new submit first reserves `estimate_usd` against the project budget.
    pub async fn run(
        &self,
        model: &str,
        input: &Value,
        estimate_usd: f64,
        mut cadence: Cadence,
        job: &JobCtx,
    ) -> Result<Value, ProviderError> {
        let tag = format!("fal:{model}");
        let (queued, attempt) = self
            .resume_or_submit(model, input, estimate_usd, &tag, job)
            .await?;
        self.await_completion(model, &queued, &mut cadence, &tag, attempt, job)
            .await?;
        let result = match self.result(&queued, job).await {
            Ok(v) => v,
            Err(e) => {
                record_failure(job, &tag, attempt, &queued, e.to_string()).await;
                return Err(e);
            }
        };
        let done = ProviderJob {
            state: JobState::Completed,
            attempt,
            remote_id: Some(queued.request_id.clone()),
            data: queued.to_json(),
            error: None,
        };
        job.save(&tag, &done)
            .await
            .map_err(ProviderError::Invalid)?;
        Ok(result)
    }

    /// The queued request of the stored job under `tag` when it was submitted, else a new submit (parked as
    /// `needs attention` when an earlier submit's outcome is unknown and resubmits are off); with its attempt.
    async fn resume_or_submit(
        &self,
        model: &str,
        input: &Value,
        estimate_usd: f64,
        tag: &str,
        job: &JobCtx,
    ) -> Result<(Queued, u32), ProviderError> {
        let stored = job.load(tag).await.map_err(ProviderError::Invalid)?;
        let previous = stored.as_ref().map_or(0, |j| j.attempt);
        match stored.as_ref().map(|j| (j.state, Queued::from_job(j))) {
            Some((JobState::Submitted | JobState::Completed, Some(q))) => {
                job.note(format!(
                    "fal: resuming request {} (no new submit)",
                    q.request_id
                ));
                Ok((q, previous))
            }
            Some((JobState::Submitting, _)) if !self.resubmit_uncertain => {
                Err(ProviderError::NeedsAttention(format!(
                    "a submit to {model} may have reached Fal but its request id was never stored; check the Fal \
                     dashboard, then set DEVATAR_FAL_RESUBMIT=1 to submit again"
                )))
            }
            _ => {
                let attempt = previous + 1;
                job.reserve(PROVIDER, estimate_usd)?;
                let q = self
                    .submit_recorded(model, input, tag, attempt, job)
                    .await?;
                Ok((q, attempt))
            }
        }
    }

    /// Submits with the ledger around it: `Submitting` before the request, `Submitted` with the request id and
    /// URLs once Fal answers, `Failed` when Fal refused it (a refused submit started nothing).
    async fn submit_recorded(
        &self,
        model: &str,
        input: &Value,
        tag: &str,
        attempt: u32,
        job: &JobCtx,
    ) -> Result<Queued, ProviderError> {
        let mut record = ProviderJob {
            state: JobState::Submitting,
            attempt,
            remote_id: None,
            data: Value::Null,
            error: None,
        };
        job.save(tag, &record)
            .await
            .map_err(ProviderError::Invalid)?;
        failpoint::hit(failpoint::AFTER_RECORD_BEFORE_SUBMIT);
        let q = match self.submit(model, input, job).await {
            Ok(q) => q,
            Err(e @ ProviderError::NeedsAttention(_)) => return Err(e),
            Err(e) => {
                // A refused submit started nothing: the next attempt may submit again.
                record.state = JobState::Failed;
                record.error = Some(e.to_string());
                let _ = job.save(tag, &record).await;
                return Err(e);
            }
        };
        failpoint::hit(failpoint::AFTER_SUBMIT_BEFORE_RECORD);
        record.state = JobState::Submitted;
        record.remote_id = Some(q.request_id.clone());
        record.data = q.to_json();
        job.save(tag, &record)
            .await
            .map_err(ProviderError::Invalid)?;
        Ok(q)
    }

    /// Polls `queued` until it completes; a deadline records the failure and cancels the request (as does
    /// abandoning the step meanwhile), a failed request is recorded and left alone.
    async fn await_completion(
        &self,
        model: &str,
        queued: &Queued,
        cadence: &mut Cadence,
        tag: &str,
        attempt: u32,
        job: &JobCtx,
    ) -> Result<(), ProviderError> {
        let mut guard = CancelOnDrop {
            queue: self.clone(),
            url: Some(queued.cancel_url.clone()),
        };
        match self.poll(model, queued, cadence, job).await {
            Ok(()) => {}
            Err(PollEnd::Deadline(msg)) => {
                // The guard cancels the request on drop.
                return Err(ProviderError::Unavailable {
                    provider: PROVIDER,
                    message: record_failure(job, tag, attempt, queued, msg).await,
                });
            }
            Err(PollEnd::Failed(msg)) => {
                guard.url = None;
                return Err(ProviderError::Rejected {
                    provider: PROVIDER,
                    message: record_failure(job, tag, attempt, queued, msg).await,
                });
            }
        }
        guard.url = None;
        Ok(())
    }

    async fn poll(
        &self,
        model: &str,
        q: &Queued,
        cadence: &mut Cadence,
        job: &JobCtx,
    ) -> Result<(), PollEnd> {
        let http = client(Duration::from_secs(30)).map_err(|e| PollEnd::Failed(e.to_string()))?;
        let url = if q.status_url.contains('?') {
            format!("{}&logs=1", q.status_url)
        } else {
            format!("{}?logs=1", q.status_url)
        };
        let mut seen = Seen::default();
        loop {
            failpoint::hit(failpoint::MID_POLL);
            match cadence.wait().await {
                Ok(true) => job.note(format!(
                    "fal: {model} request {} is still running after {:.0} s",
                    q.request_id,
                    cadence.elapsed().as_secs_f64()
                )),
                Ok(false) => {}
                Err(limit) => {
                    return Err(PollEnd::Deadline(format!(
                        "{model} did not finish within {:.0} s; the request was cancelled",
                        limit.as_secs_f64()
                    )));
                }
            }
            let resp = match http
                .get(&url)
                .header("Authorization", self.auth())
                .send()
                .await
            {
                Ok(r) => r,
                Err(_) => continue, // a failed status call never fails the job
            };
            let status = resp.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                continue;
            }
            let text = resp.text().await.unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(PollEnd::Failed(format!(
                    "status check answered HTTP {}: {}",
                    status.as_u16(),
                    http::reason(&body, &text)
                )));
            }
            let state = body.get("status").and_then(Value::as_str).unwrap_or("");
            seen.report(&body, job);
            match state.to_ascii_uppercase().as_str() {
                "IN_QUEUE" | "IN_PROGRESS" => {}
                "COMPLETED" | "OK" => return Ok(()),
                "" if body.is_null() => continue, // malformed body: ask again
                other => {
                    return Err(PollEnd::Failed(format!(
                        "unknown status {other:?} for request {}",
                        q.request_id
                    )));
                }
            }
        }
    }

    async fn result(&self, q: &Queued, job: &JobCtx) -> Result<Value, ProviderError> {
        let http = client(Duration::from_secs(60))?;
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            3,
            Repeat::Safe,
            job,
            || {
                http.get(&q.response_url)
                    .header("Authorization", self.auth())
            },
            classify,
        )
        .await?;
        json_body(PROVIDER, resp).await
    }
}

/// Marks the stored job failed (so a later attempt may submit again) and returns the message.
async fn record_failure(
    job: &JobCtx,
    tag: &str,
    attempt: u32,
    q: &Queued,
    message: String,
) -> String {
    let record = ProviderJob {
        state: JobState::Failed,
        attempt,
        remote_id: Some(q.request_id.clone()),
        data: q.to_json(),
        error: Some(message.clone()),
    };
    let _ = job.save(tag, &record).await;
    message
}

/// How a progress line reporting the queue position starts (the position follows).
pub const QUEUE_LINE: &str = "in the queue at position ";

/// What a poll loop already reported as progress: the last queue position and how many log lines.
#[derive(Default)]
struct Seen {
    position: Option<u64>,
    logs: usize,
}

impl Seen {
    /// Reports a changed queue position and the log lines not reported yet (a status answer with `logs=1`
    /// carries every line so far).
    fn report(&mut self, body: &Value, job: &JobCtx) {
        if let Some(pos) = body.get("queue_position").and_then(Value::as_u64)
            && self.position != Some(pos)
        {
            self.position = Some(pos);
            job.progress(&format!("{QUEUE_LINE}{pos}"));
        }
        let Some(logs) = body.get("logs").and_then(Value::as_array) else {
            return;
        };
        for line in logs.iter().skip(self.logs) {
            if let Some(message) = line.get("message").and_then(Value::as_str) {
                let message: String = message
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect();
                job.progress(&message);
            }
        }
        self.logs = self.logs.max(logs.len());
    }
}

enum PollEnd {
    Deadline(String),
    Failed(String),
}

/// The first URL at `pointer` in a result, trimmed.
pub(super) fn result_url(result: &Value, pointers: &[&str]) -> Result<String, ProviderError> {
    pointers
        .iter()
        .find_map(|p| result.pointer(p).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ProviderError::BadOutput(format!(
                "fal completed without an output URL (completed_without_output): {}",
                http::reason(result, "")
            ))
        })
}

/// An input as Fal takes it: the presigned URL of the object when there is one (Fal fetches it), else the file
/// inline as a data URI.
pub(super) async fn input_field(
    url: &Option<String>,
    path: &Path,
    mime: &str,
) -> Result<String, ProviderError> {
    match url {
        Some(u) => Ok(u.clone()),
        None => data_uri(path, mime).await,
    }
}

/// The MIME type of a speech work file, from its extension.
pub(super) fn audio_mime(path: &Path) -> &'static str {
    if path.extension().is_some_and(|e| e == "mp3") {
        "audio/mpeg"
    } else {
        "audio/wav"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lives_under_owner_and_app() {
        assert_eq!(app_of("fal-ai/flux-lora"), "fal-ai/flux-lora");
        assert_eq!(
            app_of("fal-ai/kling-video/v2.1/standard/image-to-video"),
            "fal-ai/kling-video"
        );
        assert_eq!(app_of("fal-ai/sync-lipsync/v2"), "fal-ai/sync-lipsync");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{json_value, target};

    const BASE: &str = "https://queue.fal.run";
    const KEYS: &[&str] = &[
        "request_id",
        "requestId",
        "status_url",
        "response_url",
        "cancel_url",
        "images",
        "video",
        "url",
        "detail",
    ];
    const STRINGS: &[&str] = &[
        "req-1",
        "../../other",
        "a/b",
        "",
        "https://queue.fal.run/fal-ai/flux-lora/requests/req-1/status",
        "https://evil.example/steal",
        "https://queue.fal.run.evil.example/x",
        "https://user@queue.fal.run/x",
        "http://queue.fal.run/x",
        "https://queue.fal.run:444/x",
        " https://queue.fal.run/x ",
        "https://cdn.fal.media/o.png",
    ];

    /// What the fuzz target found possible before: a queue URL on another host (our key would follow it) and a
    /// request id that climbs out of its path.
    #[test]
    fn foreign_queue_urls_are_replaced_and_unsafe_ids_refused() {
        let body = json!({"request_id": "req-1", "status_url": "https://evil.example/s",
            "response_url": "https://queue.fal.run/fal-ai/flux-lora/requests/req-1", "cancel_url": "https://queue.fal.run@evil.example/c"});
        let q = queued(BASE, FLUX_LORA, &body).expect("queued");
        assert_eq!(
            q.status_url,
            "https://queue.fal.run/fal-ai/flux-lora/requests/req-1/status"
        );
        assert_eq!(
            q.response_url,
            "https://queue.fal.run/fal-ai/flux-lora/requests/req-1"
        );
        assert_eq!(
            q.cancel_url,
            "https://queue.fal.run/fal-ai/flux-lora/requests/req-1/cancel"
        );
        for id in ["../../admin", "a/b", "a?b", " ", "x y"] {
            let err = queued(BASE, FLUX_LORA, &json!({"request_id": id})).map(|q| q.request_id);
            assert!(
                matches!(err, Err(ProviderError::BadOutput(_))),
                "{id}: {err:?}"
            );
        }
    }

    /// Any submit answer gives a path-safe request id and queue URLs on the queue's own origin (our key goes to
    /// them), or a clear error; result URLs are trimmed and non-empty. Never a panic.
    #[test]
    fn fuzz_fal_answers() {
        target("fal_answers", |u| {
            let body = json_value(u, KEYS, STRINGS, 3)?;
            let model = *u.choose(&[FLUX_LORA, KLING_I2V, SYNC_V2, "x", ""])?;
            if let Ok(q) = queued(BASE, model, &body) {
                assert!(http::remote_id(PROVIDER, "request_id", &q.request_id).is_ok());
                for url in [&q.status_url, &q.response_url, &q.cancel_url] {
                    assert!(url.starts_with("https://queue.fal.run/"), "{url}");
                    assert!(
                        !url.contains('@') && !url.contains(char::is_whitespace),
                        "{url}"
                    );
                }
            }
            if let Ok(url) = result_url(&body, &["/images/0/url", "/video/url"]) {
                assert!(!url.is_empty() && url.trim() == url);
            }
            Ok(())
        });
    }
}
