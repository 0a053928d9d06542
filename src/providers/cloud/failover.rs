//! Fail-over from a direct provider that keeps failing (Kling, Sync Labs) to its Fal-hosted model — only when
//! the direct provider never had a job accepted for this work, so nothing can run (and be billed) twice.
//!
//! The step keeps the direct provider's name and cache key: the output is the same work, done elsewhere; the
//! step log says which provider did it and why.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::providers::{
    ImageToVideo, JobCtx, JobState, LipSync, LipSyncRequest, ProviderError, VideoRequest,
};

/// A direct provider with its Fal-hosted fallback.
pub struct Failover<T: ?Sized> {
    primary: Arc<T>,
    /// The primary's job-ledger name: its stored job tells whether it ever had a job accepted.
    primary_tag: String,
    backup: Arc<T>,
}

impl<T: ?Sized> Failover<T> {
    /// `primary` (whose ledger entries are stored under `primary_tag`) falling back to `backup`.
    pub fn new(primary: Arc<T>, primary_tag: impl Into<String>, backup: Arc<T>) -> Self {
        Self {
            primary,
            primary_tag: primary_tag.into(),
            backup,
        }
    }

    /// Awaits `primary`; on a failure [`Self::may_fail_over`] allows, awaits `backup` instead (futures do
    /// nothing until awaited, so the backup is never started otherwise).
    async fn run<O>(
        &self,
        job: &JobCtx,
        names: (&str, &str),
        primary: impl Future<Output = Result<O, ProviderError>>,
        backup: impl Future<Output = Result<O, ProviderError>>,
    ) -> Result<O, ProviderError> {
        match primary.await {
            Err(e) if self.may_fail_over(&e, job).await => {
                job.note(format!(
                    "{} kept failing ({e}); failing over to {}",
                    names.0, names.1
                ));
                backup.await
            }
            done => done,
        }
    }

    /// Whether the primary's failure may be handed to the backup: it stayed unavailable, and its ledger shows
    /// no job that was accepted or might have been (an uncertain submit is reconciled, never duplicated).
    async fn may_fail_over(&self, err: &ProviderError, job: &JobCtx) -> bool {
        if !matches!(err, ProviderError::Unavailable { .. }) {
            return false;
        }
        match job.load(&self.primary_tag).await {
            Ok(None) => true,
            Ok(Some(j)) => j.remote_id.is_none() && j.state != JobState::Submitting,
            Err(_) => false,
        }
    }
}

#[async_trait]
impl ImageToVideo for Failover<dyn ImageToVideo> {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn key_params(&self, req: &VideoRequest) -> Value {
        self.primary.key_params(req)
    }

    async fn animate(
        &self,
        req: &VideoRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        self.run(
            job,
            (self.primary.name(), self.backup.name()),
            self.primary.animate(req, work_dir, job),
            self.backup.animate(req, work_dir, job),
        )
        .await
    }
}

#[async_trait]
impl LipSync for Failover<dyn LipSync> {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn key_params(&self, req: &LipSyncRequest) -> Value {
        self.primary.key_params(req)
    }

    async fn apply(
        &self,
        req: &LipSyncRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        self.run(
            job,
            (self.primary.name(), self.backup.name()),
            self.primary.apply(req, work_dir, job),
            self.backup.apply(req, work_dir, job),
        )
        .await
    }
}
