//! The database-backed [`JobLedger`]: provider jobs survive crashes and restarts.

use async_trait::async_trait;

use crate::providers::{JobLedger, JobState, ProviderJob};
use crate::storage::db::Db;

/// Stores provider jobs in the `provider_jobs` table.
#[derive(Debug, Clone)]
pub struct DbLedger(pub Db);

fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Submitting => "submitting",
        JobState::Submitted => "submitted",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
    }
}

#[async_trait]
impl JobLedger for DbLedger {
    async fn load(&self, key: &str, provider: &str) -> Result<Option<ProviderJob>, String> {
        let Some(text) = self
            .0
            .provider_job(key, provider)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("stored provider job is unreadable: {e}"))
    }

    async fn save(&self, key: &str, provider: &str, job: &ProviderJob) -> Result<(), String> {
        let text = serde_json::to_string(job).map_err(|e| e.to_string())?;
        self.0
            .save_provider_job(
                key,
                provider,
                state_name(job.state),
                job.remote_id.as_deref(),
                &text,
            )
            .await
            .map_err(|e| e.to_string())
    }
}
