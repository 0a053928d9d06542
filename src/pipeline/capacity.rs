//! How much runs at once: the run's `--max-parallel-steps` gate, provider slots for paid work, a share of this
//! machine's cores for local media work, and one execution per content key in this process.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::RenderOptions;
use super::error::StepError;
use super::limits::SlotGuard;
use super::runner::Pipeline;
use super::steps::Prepared;
use crate::domain::StepName;

impl Prepared {
    /// The provider concurrency pool this step's work counts against; framing a headshot (an image
    /// provider's `headshot` parameter) submits nothing, so it takes no slot.
    fn pool(&self) -> Option<&'static str> {
        if self.params.get("headshot") == Some(&Value::Bool(true)) {
            return None;
        }
        crate::providers::cloud::concurrency_pool(&self.provider)
    }

    /// A local VIDEO's stand-in clip (`"proxy"` in its key: a few frames of the unmoved still, for a lip-sync
    /// that renders from the still) is too little work to wait for a share of the cores: waiting behind other
    /// scenes' lip-syncs put seconds on its scene's path.
    fn light(&self) -> bool {
        self.params.get("proxy").is_some()
    }
}

/// What a step holds while it works: a slot of its provider's pool, or a share of this machine's cores
/// (AUDIO and IMAGE without a slot, and light work, hold neither). Released when dropped.
pub(super) struct Capacity {
    slot: Option<SlotGuard>,
    cores: Option<OwnedSemaphorePermit>,
}

impl Capacity {
    /// The provider slot, for the step's job context to hold until the provider has done the work (the
    /// result's download and storing then no longer keep the next job waiting).
    pub(super) fn take_slot(&mut self) -> Option<SlotGuard> {
        self.slot.take()
    }

    /// The share of the cores, for the step's job context to hold until the step's heavy local work is done
    /// (storing its result then no longer keeps the next encode waiting).
    pub(super) fn take_cores(&mut self) -> Option<OwnedSemaphorePermit> {
        self.cores.take()
    }

    /// The note for the step's log when it waited noticeably (≥ 100 ms) for a provider slot.
    pub(super) fn wait_note(&self, pipeline: &Pipeline) -> Option<String> {
        let slot = self.slot.as_ref().filter(|s| s.waited.as_millis() >= 100)?;
        Some(format!(
            "waited {} ms for a free {} slot (limit {})",
            slot.waited.as_millis(),
            slot.pool(),
            pipeline.limits.caps().get(slot.pool()).unwrap_or(0)
        ))
    }
}

/// The run-wide gate of `--max-parallel-steps`, when set.
pub(super) fn run_gate(options: &RenderOptions) -> Option<Arc<Semaphore>> {
    options
        .max_parallel_steps
        .map(|n| Arc::new(Semaphore::new(n.max(1))))
}

/// Waits for a turn at the run's gate (none without one).
pub(super) async fn take_turn(
    gate: &Option<Arc<Semaphore>>,
) -> Result<Option<tokio::sync::SemaphorePermit<'_>>, StepError> {
    match gate {
        Some(g) => Ok(Some(
            g.acquire()
                .await
                .map_err(|e| StepError::Internal(e.to_string()))?,
        )),
        None => Ok(None),
    }
}

impl Pipeline {
    /// Paid work waits for a slot of its provider (across all workers); local media work for a share of this
    /// machine's cores.
    pub(super) async fn capacity(
        &self,
        step: StepName,
        prepared: &Prepared,
    ) -> Result<Capacity, StepError> {
        let slot = match prepared.pool() {
            Some(pool) => self.limits.acquire(pool).await?,
            None => None,
        };
        let cores = match (step, &slot) {
            (StepName::Audio | StepName::Image, _) | (_, Some(_)) => None,
            _ if prepared.light() => None,
            _ => Some(
                self.heavy
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| StepError::Internal(e.to_string()))?,
            ),
        };
        Ok(Capacity { slot, cores })
    }

    /// The lock serialising executions of one content key (entries are dropped when nobody holds them):
    /// identical work in two scenes or two runs waits for the first and then reuses its output instead of
    /// paying again.
    pub(super) fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.key_locks.lock() else {
            return Arc::default();
        };
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }
}
