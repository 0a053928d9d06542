//! Paid-work bookkeeping shared by every provider call: the step's content key, the durable job ledger
//! (so a submitted job is resumed by its stored id, never resubmitted blindly) and the cost it incurred.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a provider job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// We are about to submit (or submitted and never heard back): the outcome is uncertain.
    Submitting,
    /// The provider accepted it and gave us its id.
    Submitted,
    /// The provider finished it; the result was downloaded.
    Completed,
    /// It ended without a usable result; the next attempt may submit again.
    Failed,
}

/// One paid job as stored between attempts and across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderJob {
    /// State.
    pub state: JobState,
    /// Submission attempt number (1-based); part of idempotency keys and external ids.
    pub attempt: u32,
    /// The provider's id (Fal `request_id`, Kling `task_id`, Sync `id`).
    pub remote_id: Option<String>,
    /// Provider-specific facts needed to resume (e.g. Fal status/response URLs, our external id).
    pub data: Value,
    /// Last failure reason, if any.
    pub error: Option<String>,
}

/// Durable storage of provider jobs, keyed by (content key, provider).
#[async_trait]
pub trait JobLedger: Send + Sync {
    /// The stored job for this work, if any.
    async fn load(&self, key: &str, provider: &str) -> Result<Option<ProviderJob>, String>;
    /// Stores (inserts or replaces) the job.
    async fn save(&self, key: &str, provider: &str, job: &ProviderJob) -> Result<(), String>;
}

/// A ledger that keeps nothing (offline providers and unit tests).
#[derive(Debug, Default)]
pub struct NoLedger;

#[async_trait]
impl JobLedger for NoLedger {
    async fn load(&self, _key: &str, _provider: &str) -> Result<Option<ProviderJob>, String> {
        Ok(None)
    }
    async fn save(&self, _key: &str, _provider: &str, _job: &ProviderJob) -> Result<(), String> {
        Ok(())
    }
}

/// A project's spending limit for one run: paid submits reserve their estimate first.
#[derive(Debug)]
pub struct Budget {
    limit: f64,
    committed: Mutex<f64>,
}

impl Budget {
    /// A budget of `limit` USD of which `spent` is already used by earlier runs.
    pub fn new(limit: f64, spent: f64) -> Self {
        Self {
            limit,
            committed: Mutex::new(spent.max(0.0)),
        }
    }

    /// Reserves `usd`; refuses when it would go over the limit.
    pub fn reserve(&self, usd: f64) -> Result<(), String> {
        let mut c = self
            .committed
            .lock()
            .map_err(|_| "budget lock poisoned".to_string())?;
        if *c + usd > self.limit + 1e-9 {
            return Err(format!(
                "the project budget of ${:.2} would be exceeded: ${:.2} is used or reserved and this step needs about ${usd:.2}",
                self.limit, *c
            ));
        }
        *c += usd;
        Ok(())
    }
}

/// The context of one step execution, handed to the provider.
#[derive(Clone)]
pub struct JobCtx {
    /// The step's content key: the same inputs give the same key, so it names the paid work.
    pub key: String,
    ledger: Arc<dyn JobLedger>,
    cost: Arc<Mutex<f64>>,
    notes: Arc<Mutex<Vec<String>>>,
    budget: Option<Arc<Budget>>,
    progress: Option<Progress>,
    /// What the step holds for as long as the provider works on its job (a provider slot), or for as long as
    /// its heavy local work runs (a share of the machine's cores).
    held: Arc<Mutex<Option<Held>>>,
}

/// A resource a step holds while its provider works (a provider concurrency slot) or while its heavy local work
/// runs (a share of the cores); released when dropped.
type Held = Box<dyn std::any::Any + Send>;

/// Where live progress lines of a long job go (queue position, provider logs).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for JobCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCtx")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl JobCtx {
    /// A context for the work named `key`.
    pub fn new(key: impl Into<String>, ledger: Arc<dyn JobLedger>) -> Self {
        Self {
            key: key.into(),
            ledger,
            cost: Arc::default(),
            notes: Arc::default(),
            budget: None,
            progress: None,
            held: Arc::default(),
        }
    }

    /// The same context, holding `resource` (the step's provider slot, or its share of the cores) until the
    /// provider reports the paid work done ([`Self::provider_done`]), the heavy local work is done
    /// ([`Self::local_work_done`]), or the context is dropped.
    pub fn holding(self, resource: impl Send + 'static) -> Self {
        if let Ok(mut held) = self.held.lock() {
            *held = Some(Box::new(resource));
        }
        self
    }

    /// The provider has finished the step's paid work (its result is ready to download): releases what the step
    /// held for it, so the next job can be submitted while this result is downloaded and stored. Call it only
    /// when the step submits nothing more.
    pub fn provider_done(&self) {
        self.release();
    }

    /// The step's heavy local work (an encode) is done: releases its share of the machine's cores, so the next
    /// encode starts while this result is stored. Call it only when no heavy work follows.
    pub fn local_work_done(&self) {
        self.release();
    }

    /// Drops what the step held.
    fn release(&self) {
        let released = self.held.lock().ok().and_then(|mut held| held.take());
        drop(released);
    }

    /// The same context, reporting live progress lines (queue position, provider logs) to `progress`.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Reports a live progress line, when someone listens; never include secrets.
    pub fn progress(&self, line: &str) {
        if let Some(p) = &self.progress {
            p(line);
        }
    }

    /// The same context, spending against `budget`.
    pub fn with_budget(mut self, budget: Option<Arc<Budget>>) -> Self {
        self.budget = budget;
        self
    }

    /// Reserves the estimated cost of a paid submit against the project budget (if any); call it before
    /// submitting, never when resuming a job that was already submitted.
    pub fn reserve(
        &self,
        provider: &'static str,
        usd: f64,
    ) -> Result<(), crate::providers::ProviderError> {
        match &self.budget {
            Some(b) => b
                .reserve(usd)
                .map_err(|message| crate::providers::ProviderError::Rejected { provider, message }),
            None => Ok(()),
        }
    }

    /// The context of another paid job of the same step (an identity-gate retry): named `tag-key`, so it has its
    /// own ledger rows, idempotency keys (the tag leads, so [`stable_id`](Self::stable_id) differs too) and
    /// default seed, while cost, notes and budget stay the step's.
    pub fn derived(&self, tag: &str) -> Self {
        Self {
            key: format!("{tag}-{}", self.key),
            ..self.clone()
        }
    }

    /// The context of work that belongs to an object rather than to this step (uploading a stored file to a
    /// provider): named by the object's key, so every step and run that needs the object finds the one ledger
    /// entry; cost, notes and budget stay the step's.
    pub fn for_object(&self, object_key: &str) -> Self {
        Self {
            key: format!("object-{object_key}"),
            ..self.clone()
        }
    }

    /// A context that stores nothing (tests, offline use).
    pub fn detached(key: impl Into<String>) -> Self {
        Self::new(key, Arc::new(NoLedger))
    }

    /// The stored job of `provider` for this work.
    pub async fn load(&self, provider: &str) -> Result<Option<ProviderJob>, String> {
        self.ledger.load(&self.key, provider).await
    }

    /// Stores the job of `provider` for this work.
    pub async fn save(&self, provider: &str, job: &ProviderJob) -> Result<(), String> {
        self.ledger.save(&self.key, provider, job).await
    }

    /// Adds an estimated cost (USD) incurred by this step.
    pub fn add_cost(&self, usd: f64) {
        if let Ok(mut c) = self.cost.lock() {
            *c += usd;
        }
    }

    /// The cost recorded so far.
    pub fn cost(&self) -> f64 {
        self.cost.lock().map(|c| *c).unwrap_or(0.0)
    }

    /// Records a line for the step's log (retries, warnings); never include secrets.
    pub fn note(&self, line: impl Into<String>) {
        if let Ok(mut n) = self.notes.lock() {
            n.push(line.into());
        }
    }

    /// Takes the recorded notes.
    pub fn take_notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    /// A short stable id derived from the key and attempt, usable as an idempotency key or external id
    /// (`[A-Za-z0-9-]`, at most 40 characters).
    pub fn stable_id(&self, attempt: u32) -> String {
        let short: String = self
            .key
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(32)
            .collect();
        format!("dv-{short}-{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_what_would_go_over() {
        let b = Budget::new(1.0, 0.5);
        assert!(b.reserve(0.3).is_ok());
        let err = b.reserve(0.3).unwrap_err();
        assert!(err.contains("$1.00") && err.contains("$0.80"), "{err}");
        assert!(b.reserve(0.2).is_ok());
    }

    #[test]
    fn a_derived_context_has_its_own_key_and_ids_and_shares_the_cost() {
        let key = "3f".repeat(32);
        let job = JobCtx::detached(key.clone());
        let retry = job.derived("identity-1");
        assert_eq!(retry.key, format!("identity-1-{key}"));
        assert_ne!(retry.stable_id(1), job.stable_id(1));
        assert_ne!(retry.stable_id(1), job.derived("identity-2").stable_id(1));
        retry.add_cost(0.5);
        job.add_cost(0.25);
        assert_eq!(job.cost(), 0.75);
    }

    #[test]
    fn what_a_context_holds_is_released_when_the_provider_is_done() {
        let slot = Arc::new(());
        let job = JobCtx::detached("k").holding(slot.clone());
        let clone = job.clone();
        assert_eq!(Arc::strong_count(&slot), 2, "held while the job runs");
        clone.provider_done();
        assert_eq!(Arc::strong_count(&slot), 1, "released by any clone");
        job.provider_done();
        let job = JobCtx::detached("k").holding(slot.clone());
        drop(job);
        assert_eq!(Arc::strong_count(&slot), 1, "released with the context");
    }
}
