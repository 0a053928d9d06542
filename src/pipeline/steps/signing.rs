//! Presigned input URLs for cloud providers, signed at a time each step records.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::StepCx;
use crate::pipeline::error::StepError;
use crate::providers::{InputUrls, JobCtx, JobState, ProviderJob};

/// The job-ledger entry (per step) that holds when the step's input URLs were signed.
const SIGNED_INPUTS: &str = "signed-inputs";

/// When to sign a step's input URLs: the time recorded for the step while a URL signed then still has at least
/// three quarters of its lifetime `ttl` left, otherwise `now` (recorded, whole seconds). Signing again at the
/// recorded time gives the same URLs, so a provider request repeated after a restart has the same body (Sync
/// replays an uncertain submit by `Idempotency-Key` only for an identical body, PROVIDERS.md §6 row 22),
/// while a provider never gets a URL with less than three quarters of `ttl` to live.
async fn signing_time(
    job: &JobCtx,
    ttl: Duration,
    now: SystemTime,
) -> Result<SystemTime, StepError> {
    let recorded = job
        .load(SIGNED_INPUTS)
        .await
        .map_err(StepError::Storage)?
        .and_then(|j| j.data.get("signedAt").and_then(serde_json::Value::as_u64))
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
    let fresh = |at: SystemTime| match now.duration_since(at) {
        Ok(age) => age < ttl / 4,
        // Recorded by a worker whose clock runs a little ahead.
        Err(ahead) => ahead.duration() < Duration::from_secs(300),
    };
    if let Some(at) = recorded.filter(|at| fresh(*at)) {
        return Ok(at);
    }
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| StepError::Internal("the system clock is before 1970".into()))?
        .as_secs();
    let entry = ProviderJob {
        state: JobState::Completed,
        attempt: 0,
        remote_id: None,
        data: json!({ "signedAt": secs }),
        error: None,
    };
    job.save(SIGNED_INPUTS, &entry)
        .await
        .map_err(StepError::Storage)?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

impl StepCx<'_> {
    /// The presigned URL of one object at the step's recorded signing time, when media live in a bucket (`None`
    /// for the local folder). Errors never carry a URL.
    pub(super) async fn presigned(
        &self,
        job: &JobCtx,
        key: &str,
    ) -> Result<Option<String>, StepError> {
        Ok(self.input_urls(job, Some(key), None, None).await?.image)
    }

    /// Presigned URLs of input objects when media live in a bucket (empty for the local folder), valid for the
    /// storage's provider TTL so a queued job can still fetch them. They are signed at the step's recorded
    /// signing time ([`signing_time`]), so a step resumed after a crash sends byte-identical URLs. Errors never
    /// carry a URL.
    pub(super) async fn input_urls(
        &self,
        job: &JobCtx,
        image: Option<&str>,
        video: Option<&str>,
        audio: Option<&str>,
    ) -> Result<InputUrls, StepError> {
        let objects = &self.pipeline.objects;
        if !objects.presigns() {
            return Ok(InputUrls::default());
        }
        let ttl = objects.presign_ttl();
        let signed_at = signing_time(job, ttl, SystemTime::now()).await?;
        let mut urls = [None, None, None];
        for (url, key) in urls.iter_mut().zip([image, video, audio]) {
            if let Some(key) = key {
                *url = objects.presigned_get_at(key, ttl, signed_at).map_err(|e| {
                    StepError::Storage(format!("presigning an input for the provider: {e}"))
                })?;
            }
        }
        let [image, video, audio] = urls;
        Ok(InputUrls {
            image,
            video,
            audio,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::providers::JobLedger;

    #[derive(Default)]
    struct MemLedger(Mutex<HashMap<(String, String), ProviderJob>>);

    #[async_trait]
    impl JobLedger for MemLedger {
        async fn load(&self, key: &str, provider: &str) -> Result<Option<ProviderJob>, String> {
            let map = self.0.lock().map_err(|e| e.to_string())?;
            Ok(map.get(&(key.into(), provider.into())).cloned())
        }
        async fn save(&self, key: &str, provider: &str, job: &ProviderJob) -> Result<(), String> {
            let mut map = self.0.lock().map_err(|e| e.to_string())?;
            map.insert((key.into(), provider.into()), job.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn input_urls_keep_their_signing_time_until_a_quarter_of_their_life_is_gone() {
        let ledger: Arc<dyn JobLedger> = Arc::new(MemLedger::default());
        let job = JobCtx::new("step-a", ledger.clone());
        let ttl = Duration::from_secs(4000);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = signing_time(&job, ttl, t0 + Duration::from_millis(700))
            .await
            .unwrap();
        assert_eq!(first, t0, "whole seconds");
        // A restart within a quarter of the lifetime signs as at the same time, in any process.
        let again = JobCtx::new("step-a", ledger.clone());
        for later in [1, 999] {
            let at = signing_time(&again, ttl, t0 + Duration::from_secs(later))
                .await
                .unwrap();
            assert_eq!(at, t0);
        }
        // After that, or for another step, a new time.
        let renewed = t0 + Duration::from_secs(1000);
        assert_eq!(signing_time(&again, ttl, renewed).await.unwrap(), renewed);
        assert_eq!(
            signing_time(&again, ttl, renewed + Duration::from_secs(5))
                .await
                .unwrap(),
            renewed
        );
        let other = JobCtx::new("step-b", ledger);
        let t1 = renewed + Duration::from_secs(7);
        assert_eq!(signing_time(&other, ttl, t1).await.unwrap(), t1);
    }
}
