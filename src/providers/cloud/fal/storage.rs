//! Fal's storage upload (PROVIDERS.md §2.9), the one route for a local file Fal must fetch (an uploaded LoRA
//! when media live in the local folder): `POST {base}/storage/upload/initiate?storage_type=fal-cdn-v3` with the
//! file's name and type answers an `upload_url` and a `file_url`; the bytes are `PUT` (streamed) to the first,
//! the second is the model input. The `file_url` is recorded in the job ledger of the caller's job (keyed by the
//! object's content key), so one file is uploaded once, whichever step or run needs it.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{Value, json};

use super::super::Secret;
use super::super::http::{self, Net, Repeat, call_with_retries, clean_url, client, json_body};
use super::PROVIDER;
use crate::providers::{JobCtx, JobState, ProviderError, ProviderJob};

/// The ledger tag of a finished upload: `{"fileUrl": …}`.
const UPLOADED: &str = "fal-storage";

/// The storage client (its own host: `FAL_STORAGE_BASE_URL`, default `https://rest.fal.ai`).
#[derive(Debug, Clone)]
pub struct FalStorage {
    base: String,
    key: Secret,
    net: Net,
}

impl FalStorage {
    /// A storage client for `base`.
    pub fn new(base: &str, key: Secret, net: Net) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            net,
        }
    }

    /// The URL Fal fetches the file at `path` from: the one recorded under `job` when it was uploaded before,
    /// else a new upload (recorded once it is complete). Errors never carry the upload URL.
    pub async fn file_url(
        &self,
        path: &Path,
        file_name: &str,
        content_type: &str,
        job: &JobCtx,
    ) -> Result<String, ProviderError> {
        if let Some(done) = job.load(UPLOADED).await.map_err(ProviderError::Invalid)?
            && done.state == JobState::Completed
            && let Some(url) = done.data.get("fileUrl").and_then(Value::as_str)
        {
            return Ok(url.to_string());
        }
        let (upload_url, file_url) = self.initiate(file_name, content_type, job).await?;
        self.put(&upload_url, path, content_type).await?;
        let entry = ProviderJob {
            state: JobState::Completed,
            attempt: 0,
            remote_id: None,
            data: json!({ "fileUrl": file_url }),
            error: None,
        };
        job.save(UPLOADED, &entry)
            .await
            .map_err(ProviderError::Invalid)?;
        Ok(file_url)
    }

    /// Asks for an upload slot: `(upload_url, file_url)`.
    async fn initiate(
        &self,
        file_name: &str,
        content_type: &str,
        job: &JobCtx,
    ) -> Result<(String, String), ProviderError> {
        let http = client(Duration::from_secs(60))?;
        let url = format!(
            "{}/storage/upload/initiate?storage_type=fal-cdn-v3",
            self.base
        );
        let body = json!({ "file_name": file_name, "content_type": content_type });
        let resp = call_with_retries(
            &self.net,
            PROVIDER,
            4,
            // An initiate that reached Fal only reserves a slot nobody uses: asking again is harmless.
            Repeat::Safe,
            job,
            || {
                http.post(&url)
                    .header("Authorization", format!("Key {}", self.key.expose()))
                    .json(&body)
            },
            |status, _| http::class_of(status),
        )
        .await?;
        let answer = json_body(PROVIDER, resp).await?;
        let field = |k: &str| {
            answer
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ProviderError::BadOutput(format!("fal storage answered without {k}"))
                })
                .and_then(|u| clean_url(k, u))
        };
        Ok((field("upload_url")?, field("file_url")?))
    }

    /// Streams the file to the upload URL (no key goes with it: it is a presigned URL on another host).
    async fn put(
        &self,
        upload_url: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), ProviderError> {
        let file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        // Large LoRAs: allow a slow link about 1 MB/s, at least ten minutes.
        let http = client(Duration::from_secs(600.max(size / 1_000_000)))?;
        let resp = http
            .put(upload_url)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, size)
            .body(http::file_body(file))
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable {
                provider: PROVIDER,
                message: format!(
                    "uploading a file to fal storage failed: {}",
                    http::redact_signed_urls(&e.without_url().to_string())
                ),
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("fal storage refused the upload: HTTP {}", status.as_u16());
        Err(if status.is_server_error() || status.as_u16() == 429 {
            ProviderError::Unavailable {
                provider: PROVIDER,
                message,
            }
        } else {
            ProviderError::Rejected {
                provider: PROVIDER,
                message,
            }
        })
    }
}
