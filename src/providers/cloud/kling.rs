//! Kling's official image-to-video API: an HS256 JWT we sign from `KLING_ACCESS_KEY` + `KLING_SECRET_KEY`, one
//! task per step named by our `external_task_id`, so an uncertain submit is reconciled by looking that id up.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::fal::kling_duration;
use super::http::{self, ErrorClass, MediaKind, Net, Repeat, call_with_retries, client, json_body};
use super::{Cadence, CloudConfig, Secret};
use crate::failpoint;
use crate::providers::PriceTable;
use crate::providers::hooks::Hook;
use crate::providers::{ImageToVideo, JobCtx, JobState, ProviderError, ProviderJob, VideoRequest};

/// Submits sent for one task when each breaks off before Kling's answer (see `submit_once`).
const SUBMIT_TRIES: u32 = 3;

/// Provider id in logs, steps and `--json`.
pub const PROVIDER: &str = "kling";

/// Kling image-to-video through the official API.
#[derive(Debug, Clone)]
pub struct KlingVideo {
    base: String,
    access: Secret,
    secret: Secret,
    model: String,
    mode: String,
    prices: PriceTable,
    net: Net,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    exp: u64,
    nbf: u64,
}

fn classify(status: StatusCode, body: &Value) -> ErrorClass {
    match body.get("code").and_then(Value::as_i64) {
        Some(1303) => ErrorClass::WaitForSlot,
        // 1003/1004: token not yet valid or expired: each request signs a fresh one, so retry.
        Some(1003 | 1004 | 1302 | 5000..=5002) => ErrorClass::Retryable,
        Some(_) => ErrorClass::Terminal,
        None => http::class_of(status),
    }
}

/// What a task query says.
enum TaskState {
    Running,
    Succeeded(Option<String>),
    Failed(String),
}

fn task_state(body: &Value) -> TaskState {
    let data = body.get("data").unwrap_or(&Value::Null);
    let status = data
        .get("task_status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    match status.as_str() {
        "submitted" | "processing" | "queued" | "pending" => TaskState::Running,
        "succeed" | "succeeded" | "success" | "completed" | "complete" => TaskState::Succeeded(
            data.pointer("/task_result/videos/0/url")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string),
        ),
        "failed" | "failure" | "error" => TaskState::Failed(
            data.get("task_status_msg")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or("the task failed without a reason")
                .to_string(),
        ),
        other => TaskState::Failed(format!(
            "unknown task status {other:?}: {}",
            body.to_string().chars().take(300).collect::<String>()
        )),
    }
}

impl KlingVideo {
    /// A client for the configured account.
    pub fn new(cfg: &CloudConfig, access: Secret, secret: Secret) -> Self {
        Self {
            base: cfg.kling_base.clone(),
            access,
            secret,
            model: cfg.kling_model.clone(),
            mode: cfg.kling_mode.clone(),
            prices: cfg.prices.clone(),
            net: Net::of(cfg),
        }
    }

    /// A fresh token: `iss` = access key, valid from 5 s ago for 30 minutes.
    fn token(&self) -> Result<String, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            iss: self.access.expose(),
            exp: now + 1800,
            nbf: now.saturating_sub(5),
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.secret.expose().as_bytes()),
        )
        .map_err(|e| ProviderError::Invalid(format!("cannot sign the Kling token: {e}")))
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token().unwrap_or_default())
    }

    /// Queries a task by Kling's id or our external id; `None` when Kling does not know it.
    async fn query(&self, id: &str, job: &JobCtx) -> Result<Option<Value>, ProviderError> {
        let http = client(Duration::from_secs(30))?;
        let url = format!("{}/v1/videos/image2video/{id}", self.base);
        match call_with_retries(
            &self.net,
            PROVIDER,
            4,
            Repeat::Safe,
            job,
            || http.get(&url).header("Authorization", self.bearer()),
            classify,
        )
        .await
        {
            Ok(resp) => {
                let body = json_body(PROVIDER, resp).await?;
                match body.get("code").and_then(Value::as_i64) {
                    Some(0) | None => Ok(Some(body)),
                    Some(_) => Ok(None),
                }
            }
            Err(ProviderError::Rejected { message, .. })
                if message.contains("HTTP 404") || message.contains("HTTP 400") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn submit(&self, body: &SubmitBody, job: &JobCtx) -> Result<String, ProviderError> {
        self.token()?;
        let http = client(Duration::from_secs(60))?;
        let url = format!("{}/v1/videos/image2video", self.base);
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            4,
            Repeat::Unsafe,
            job,
            || {
                http.post(&url)
                    .header("Authorization", self.bearer())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.json.clone())
            },
            classify,
        )
        .await?;
        let answer = json_body(PROVIDER, resp).await?;
        if answer.get("code").and_then(Value::as_i64).unwrap_or(0) != 0 {
            return Err(ProviderError::Rejected {
                provider: PROVIDER,
                message: http::reason(&answer, ""),
            });
        }
        task_id(&answer)
    }
}

/// A submit's JSON body, serialised once (attempts share its bytes), and the callback URL it names.
struct SubmitBody {
    json: bytes::Bytes,
    hook_url: Option<String>,
}

impl SubmitBody {
    fn new(body: Value) -> Self {
        Self {
            hook_url: body
                .get("callback_url")
                .and_then(Value::as_str)
                .map(str::to_string),
            json: serde_json::to_vec(&body).unwrap_or_default().into(),
        }
    }
}

/// The task id of an accepted submit (a string or a number), checked before it is stored or used in a path.
fn task_id(answer: &Value) -> Result<String, ProviderError> {
    let id = answer
        .pointer("/data/task_id")
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ProviderError::BadOutput("kling accepted the task but sent no task_id".into())
        })?;
    http::remote_id(PROVIDER, "task_id", &id)
}

#[async_trait]
impl ImageToVideo for KlingVideo {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn key_params(&self, req: &VideoRequest) -> Value {
        json!({"model": self.model, "mode": self.mode, "prompt": req.prompt,
               "duration": kling_duration(req.duration_seconds)})
    }

    async fn animate(
        &self,
        req: &VideoRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let seconds = kling_duration(req.duration_seconds);
        let tag = self.ledger_tag();
        let stored = job.load(&tag).await.map_err(ProviderError::Invalid)?;
        let previous = stored.as_ref().map_or(0, |j| j.attempt);
        // The callback URL an earlier submit carried: registered again, so a resumed task is still woken.
        let stored_hook = stored
            .as_ref()
            .and_then(|j| j.data.get("hookUrl"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let resumed_hook = || stored_hook.as_deref().and_then(|u| self.net.hook(Some(u)));
        let (task_id, attempt, hook) = match stored {
            Some(j)
                if matches!(j.state, JobState::Submitted | JobState::Completed)
                    && j.remote_id.is_some() =>
            {
                let id = j.remote_id.unwrap_or_default();
                job.note(format!("kling: resuming task {id} (no new submit)"));
                (id, j.attempt, resumed_hook())
            }
            Some(j) if j.state == JobState::Submitting => {
                // The last submit's outcome is unknown: look our external id up before anything else.
                let hook = resumed_hook();
                let url = hook.as_ref().map(Hook::url);
                match self.adopt(job, &tag, j.attempt, url).await? {
                    Some(id) => (id, j.attempt, hook),
                    None => {
                        self.submit_new(req, seconds, j.attempt, &tag, job, stored_hook.as_deref())
                            .await?
                    }
                }
            }
            _ => {
                self.submit_new(req, seconds, previous + 1, &tag, job, None)
                    .await?
            }
        };
        let url = self
            .await_video(&task_id, attempt, seconds, &tag, job, hook.as_ref())
            .await?;
        job.provider_done();
        let out = work_dir.join("kling.mp4");
        http::download(&self.net, PROVIDER, &url, &out, MediaKind::Video, 500 << 20).await?;
        self.record(job, &tag, JobState::Completed, attempt, Some(&task_id))
            .await?;
        job.add_cost(self.prices.video(seconds));
        Ok(out)
    }
}

impl KlingVideo {
    /// Polls task `task_id` until it yields its video URL (a longer deadline for 10 s clips and `pro`); a deadline,
    /// a failed task or one that succeeded without a video (after one re-read) marks the job failed.
    async fn await_video(
        &self,
        task_id: &str,
        attempt: u32,
        seconds: u32,
        tag: &str,
        job: &JobCtx,
        hook: Option<&Hook>,
    ) -> Result<String, ProviderError> {
        let deadline = if seconds > 5 || self.mode == "pro" {
            1800
        } else {
            1200
        };
        let mut cadence = Cadence::video(
            &self.net,
            Duration::from_secs(600),
            Duration::from_secs(deadline),
        )
        .woken_by(hook);
        let mut reread = false;
        loop {
            failpoint::hit(failpoint::MID_POLL);
            match cadence.wait().await {
                Ok(true) => job.note(format!(
                    "kling: task {task_id} still running after 10 minutes"
                )),
                Ok(false) => {}
                Err(limit) => {
                    self.record(job, tag, JobState::Failed, attempt, Some(task_id))
                        .await?;
                    return Err(ProviderError::Unavailable {
                        provider: PROVIDER,
                        message: format!(
                            "task {task_id} did not finish within {:.0} s",
                            limit.as_secs_f64()
                        ),
                    });
                }
            }
            let Ok(Some(body)) = self.query(task_id, job).await else {
                continue;
            };
            match task_state(&body) {
                TaskState::Running => {}
                TaskState::Succeeded(Some(url)) => return Ok(url),
                TaskState::Succeeded(None) if !reread => reread = true,
                TaskState::Succeeded(None) => {
                    self.record(job, tag, JobState::Failed, attempt, Some(task_id))
                        .await?;
                    return Err(ProviderError::BadOutput(format!(
                        "kling task {task_id} succeeded without a video (completed_without_output)"
                    )));
                }
                TaskState::Failed(reason) => {
                    self.record(job, tag, JobState::Failed, attempt, Some(task_id))
                        .await?;
                    return Err(ProviderError::Rejected {
                        provider: PROVIDER,
                        message: format!("task {task_id} failed: {reason}"),
                    });
                }
            }
        }
    }

    /// The name its jobs are stored under in the job ledger.
    pub fn ledger_tag(&self) -> String {
        format!("kling:{}", self.model)
    }

    async fn record(
        &self,
        job: &JobCtx,
        tag: &str,
        state: JobState,
        attempt: u32,
        task_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        self.record_hooked(job, tag, state, attempt, task_id, None)
            .await
    }

    /// Records the job with the callback URL its submit carried (kept so a resumed task is still woken).
    async fn record_hooked(
        &self,
        job: &JobCtx,
        tag: &str,
        state: JobState,
        attempt: u32,
        task_id: Option<&str>,
        hook_url: Option<&str>,
    ) -> Result<(), ProviderError> {
        let mut data = json!({"externalTaskId": job.stable_id(attempt)});
        if let Some(url) = hook_url {
            data["hookUrl"] = json!(url);
        }
        let record = ProviderJob {
            state,
            attempt,
            remote_id: task_id.map(str::to_string),
            data,
            error: None,
        };
        job.save(tag, &record).await.map_err(ProviderError::Invalid)
    }

    /// Looks our external id up; when Kling has the task, records it as ours and returns its id.
    async fn adopt(
        &self,
        job: &JobCtx,
        tag: &str,
        attempt: u32,
        hook_url: Option<&str>,
    ) -> Result<Option<String>, ProviderError> {
        let external = job.stable_id(attempt);
        let Some(body) = self.query(&external, job).await? else {
            return Ok(None);
        };
        let id = body
            .pointer("/data/task_id")
            .and_then(Value::as_str)
            .unwrap_or(&external)
            .to_string();
        job.note(format!(
            "kling: adopted task {id} found by external id {external}"
        ));
        self.record_hooked(job, tag, JobState::Submitted, attempt, Some(&id), hook_url)
            .await?;
        Ok(Some(id))
    }

    async fn submit_new(
        &self,
        req: &VideoRequest,
        seconds: u32,
        attempt: u32,
        tag: &str,
        job: &JobCtx,
        stored_hook: Option<&str>,
    ) -> Result<(String, u32, Option<Hook>), ProviderError> {
        // Kling takes the still as a URL it fetches (presigned, when media live in a bucket) or as raw base64.
        let image = match &req.urls.image {
            Some(url) => url.clone(),
            None => {
                base64::engine::general_purpose::STANDARD.encode(tokio::fs::read(&req.image).await?)
            }
        };
        // A resubmit keeps its earlier callback URL when it is still ours.
        let hook = stored_hook
            .and_then(|u| self.net.hook(Some(u)))
            .or_else(|| self.net.hook(None));
        let mut body = json!({
            "model_name": self.model,
            "image": image,
            "prompt": req.prompt.chars().take(2500).collect::<String>(),
            "negative_prompt": "blur, distort, and low quality",
            "mode": self.mode,
            "duration": seconds.to_string(),
            "external_task_id": job.stable_id(attempt),
        });
        let hook_url = hook.as_ref().map(Hook::url);
        if let Some(url) = hook_url {
            body["callback_url"] = json!(url);
        }
        // Serialised once: the still's base64 lives in memory once per submit, not once per attempt.
        let body = SubmitBody::new(body);
        job.reserve(PROVIDER, self.prices.video(seconds))?;
        self.record_hooked(job, tag, JobState::Submitting, attempt, None, hook_url)
            .await?;
        failpoint::hit(failpoint::AFTER_RECORD_BEFORE_SUBMIT);
        let (id, attempt) = self.submit_once(&body, attempt, tag, job).await?;
        Ok((id, attempt, hook))
    }

    /// Submits `body` and records the task: a submit that broke off is looked up by its external id, and sent
    /// again only when Kling has no task with that id — safe, because Kling refuses a second task with the same
    /// external id ("already exists", then adopted), so at most one task is ever started.
    async fn submit_once(
        &self,
        body: &SubmitBody,
        attempt: u32,
        tag: &str,
        job: &JobCtx,
    ) -> Result<(String, u32), ProviderError> {
        let hook_url = body.hook_url.as_deref();
        for _ in 0..SUBMIT_TRIES {
            match self.submit(body, job).await {
                Ok(id) => {
                    failpoint::hit(failpoint::AFTER_SUBMIT_BEFORE_RECORD);
                    self.record_hooked(job, tag, JobState::Submitted, attempt, Some(&id), hook_url)
                        .await?;
                    return Ok((id, attempt));
                }
                // The same work submitted elsewhere (another run or worker) already holds our external id.
                Err(ProviderError::Rejected { message, .. })
                    if message.contains("already exists") =>
                {
                    return match self.adopt(job, tag, attempt, hook_url).await? {
                        Some(id) => Ok((id, attempt)),
                        None => Err(ProviderError::Rejected {
                            provider: PROVIDER,
                            message,
                        }),
                    };
                }
                Err(ProviderError::NeedsAttention(why)) => {
                    if let Some(id) = self.adopt(job, tag, attempt, hook_url).await? {
                        return Ok((id, attempt));
                    }
                    job.note(format!(
                        "kling: {why}; Kling has no task with our external id, so it is submitted again"
                    ));
                }
                Err(e) => {
                    self.record(job, tag, JobState::Failed, attempt, None)
                        .await?;
                    return Err(e);
                }
            }
        }
        Err(ProviderError::Unavailable {
            provider: PROVIDER,
            message: format!(
                "the submit broke off {SUBMIT_TRIES} times and Kling has no task with our id; run again to retry"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-request-per-connection HTTP server: the first submit is read and its connection closed without an
    /// answer (it never reached Kling's queue); lookups by external id find nothing; the next submit is accepted.
    async fn flaky_kling() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let submits = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = submits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 1 << 20];
                let mut got = Vec::new();
                while let Ok(n) = sock.read(&mut buf).await {
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if n == 0 || body.len() >= len {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&got).to_string();
                let answer = if head.starts_with("POST") {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        continue; // dropped: the connection closes unanswered
                    }
                    r#"{"code":0,"data":{"task_id":"task-2"}}"#
                } else {
                    r#"{"code":1203,"message":"task not found"}"#
                };
                let status = if head.starts_with("POST") {
                    "200 OK"
                } else {
                    "404 Not Found"
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            }
        });
        (base, submits)
    }

    /// A submit that broke off before Kling had the task is sent again (Kling refuses a second task with the same
    /// external id, so this can never start two): one task, no error.
    #[tokio::test]
    async fn a_submit_that_broke_off_before_kling_had_it_is_sent_again() {
        let (base, submits) = flaky_kling().await;
        let cfg = crate::config::Config::from_pairs(&[("KLING_BASE_URL", base.as_str())]).unwrap();
        let kling = KlingVideo::new(&cfg.cloud, Secret::new("a"), Secret::new("s"));
        let job = JobCtx::detached("kling-test");
        let body = SubmitBody::new(json!({"external_task_id": "ext-1"}));
        let (id, _) = kling.submit_once(&body, 1, "kling", &job).await.unwrap();
        assert_eq!(id, "task-2");
        assert_eq!(submits.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(
            job.take_notes()
                .iter()
                .any(|n| n.contains("submitted again"))
        );
    }

    #[test]
    fn statuses_are_case_insensitive_and_unknown_is_terminal() {
        let ok = json!({"code": 0, "data": {"task_status": "SUCCEED", "task_result": {"videos": [{"url": " https://x/v.mp4 "}]}}});
        assert!(matches!(task_state(&ok), TaskState::Succeeded(Some(u)) if u == "https://x/v.mp4"));
        let empty =
            json!({"code": 0, "data": {"task_status": "succeed", "task_result": {"videos": []}}});
        assert!(matches!(task_state(&empty), TaskState::Succeeded(None)));
        let failed =
            json!({"data": {"task_status": "failed", "task_status_msg": "content safety"}});
        assert!(matches!(task_state(&failed), TaskState::Failed(m) if m == "content safety"));
        let odd = json!({"data": {"task_status": "exploded"}});
        assert!(matches!(task_state(&odd), TaskState::Failed(m) if m.contains("exploded")));
        let running = json!({"data": {"task_status": "Processing"}});
        assert!(matches!(task_state(&running), TaskState::Running));
    }

    #[test]
    fn error_codes_map_to_classes() {
        let c = |code: i64| classify(StatusCode::TOO_MANY_REQUESTS, &json!({"code": code}));
        assert_eq!(c(1303), ErrorClass::WaitForSlot);
        assert_eq!(c(1302), ErrorClass::Retryable);
        assert_eq!(c(1102), ErrorClass::Terminal);
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, &json!({"code": 1004})),
            ErrorClass::Retryable
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{json_value, target};

    const KEYS: &[&str] = &[
        "code",
        "data",
        "task_id",
        "task_status",
        "task_status_msg",
        "task_result",
        "videos",
        "url",
        "message",
    ];
    const STRINGS: &[&str] = &[
        "succeed",
        "SUCCEED",
        "failed",
        "processing",
        "submitted",
        "https://cdn.example/v.mp4",
        "",
        " ",
        "../x",
        "123",
        "a/b",
        "?x=1",
    ];

    /// Any answer decodes to a task state and a task id that is safe in a URL path, or a clear error; never a
    /// panic. A succeeded task's video URL is trimmed and non-empty.
    #[test]
    fn fuzz_kling_answers() {
        target("kling_answers", |u| {
            let body = json_value(u, KEYS, STRINGS, 4)?;
            if let Ok(id) = task_id(&body) {
                assert!(http::remote_id(PROVIDER, "task_id", &id).is_ok_and(|again| again == id));
            }
            if let TaskState::Succeeded(Some(url)) = task_state(&body) {
                assert!(!url.is_empty() && url.trim() == url);
            }
            let status = StatusCode::from_u16(u.int_in_range(100..=599)?).unwrap_or(StatusCode::OK);
            let _ = classify(status, &body);
            Ok(())
        });
    }
}
