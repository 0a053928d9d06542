//! Per-provider concurrency limits held through the database, so they bind across every worker process: a
//! paid step takes one of its provider's slots before it submits and frees it when its job has ended.

use std::collections::{BTreeMap, HashMap};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OnceCell, OwnedSemaphorePermit, Semaphore};

use super::error::StepError;
use crate::storage::db::Db;
use crate::storage::new_id;

/// The environment variable holding limits, e.g. `fal=4,kling=2`.
pub const LIMITS_VAR: &str = "DEVATAR_PROVIDER_LIMITS";

/// Default jobs in flight per provider account (the entry plans in PROVIDERS.md).
const DEFAULTS: &[(&str, u32)] = &[("elevenlabs", 3), ("fal", 4), ("kling", 2), ("sync", 2)];

/// How often a waiting step looks again when no wake-up arrives (another process freed a slot on SQLite).
const POLL: Duration = Duration::from_millis(500);

/// The caps per concurrency pool (`elevenlabs`, `fal`, `kling`, `sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps(BTreeMap<String, u32>);

impl Default for Caps {
    fn default() -> Self {
        Self(
            DEFAULTS
                .iter()
                .map(|(pool, cap)| ((*pool).to_string(), *cap))
                .collect(),
        )
    }
}

impl Caps {
    /// Parses `pool=N,…` over the defaults; unknown pools and caps outside 1..=1000 are errors.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut caps = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (pool, n) = part
                .split_once('=')
                .ok_or_else(|| format!("{LIMITS_VAR}: {part:?} is not POOL=N"))?;
            let pool = pool.trim();
            if !caps.0.contains_key(pool) {
                return Err(format!(
                    "{LIMITS_VAR}: unknown provider {pool:?} (known: elevenlabs, fal, kling, sync)"
                ));
            }
            let n: u32 = n
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| format!("{LIMITS_VAR}: {pool} needs a whole number 1-1000"))?;
            caps.0.insert(pool.to_string(), n);
        }
        Ok(caps)
    }

    /// The cap of a pool.
    pub fn get(&self, pool: &str) -> Option<u32> {
        self.0.get(pool).copied()
    }
}

/// Hands out provider slots; one per pipeline (process), all sharing the database's slot rows.
///
/// Inside the process, steps wait for a *turn* first (a FIFO semaphore of `cap` permits per pool), so at most
/// `cap` of them look for a slot in the database at once, whatever the number of steps waiting: with a thousand
/// scenes in flight, every waiting step used to try an UPDATE at every freed slot and every half second. The
/// slots this process holds are renewed together, one UPDATE per renewal period.
pub struct ProviderLimits {
    db: Db,
    caps: Caps,
    lease: Duration,
    /// Woken when a slot is freed here, or (through `LISTEN`) in another process.
    freed: Arc<Notify>,
    /// Pools whose slot rows this process has made sure exist, with the cap used.
    ensured: Mutex<HashMap<(String, u32), Ensured>>,
    /// Per pool, this process's turns to look for a slot (`cap` permits, handed out first come first served).
    turns: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The slots held here, renewed together.
    held: Arc<Held>,
    /// The renewal task, started with the first slot taken.
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The slots one [`ProviderLimits`] holds: their holder tokens share its prefix, so one UPDATE renews them all.
struct Held {
    /// `holder LIKE prefix%` matches exactly this process's holders (the prefix is a fresh id).
    prefix: String,
    next: AtomicU64,
    /// Holder token → (pool, slot).
    slots: Mutex<HashMap<String, (String, i64)>>,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, i64)>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a pool's slot rows (for one cap) were made: set once, by the first step to need them.
type Ensured = Arc<OnceCell<()>>;

/// A held slot: renewed while alive, freed when dropped (also when the step is aborted).
pub struct SlotGuard {
    db: Db,
    pool: String,
    slot: i64,
    holder: String,
    held: Arc<Held>,
    /// This process's turn, given back once the slot is free in the database.
    turn: Option<OwnedSemaphorePermit>,
    freed: Arc<Notify>,
    /// How long the step waited for it.
    pub waited: Duration,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.held.lock().remove(&self.holder);
        let (db, pool, slot, holder, freed, turn) = (
            self.db.clone(),
            std::mem::take(&mut self.pool),
            self.slot,
            std::mem::take(&mut self.holder),
            self.freed.clone(),
            self.turn.take(),
        );
        // Without a runtime (process exit) the slot simply expires after one lease.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = db.free_slot(&pool, slot, &holder).await {
                    tracing::warn!(pool, "could not free a provider slot (it expires): {e}");
                }
                // The next local waiter looks only once the slot is free.
                drop(turn);
                freed.notify_waiters();
            });
        }
    }
}

impl SlotGuard {
    /// The pool the slot belongs to.
    pub fn pool(&self) -> &str {
        &self.pool
    }
}

impl ProviderLimits {
    /// Limits with these caps; a slot not renewed for `lease` is free again.
    pub fn new(db: Db, caps: Caps, lease: Duration) -> Self {
        Self {
            db,
            caps,
            lease,
            freed: Arc::new(Notify::new()),
            ensured: Mutex::default(),
            turns: Mutex::default(),
            held: Arc::new(Held {
                prefix: format!("{}/", new_id()),
                next: AtomicU64::new(0),
                slots: Mutex::default(),
            }),
            renewer: Mutex::default(),
        }
    }

    /// The notifier to wake waiting steps when another process frees a slot.
    pub fn freed(&self) -> Arc<Notify> {
        self.freed.clone()
    }

    /// The caps in force.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// Waits for a slot of `pool`; `None` when the pool has no cap.
    pub async fn acquire(&self, pool: &str) -> Result<Option<SlotGuard>, StepError> {
        let Some(cap) = self.caps.get(pool) else {
            return Ok(None);
        };
        // The pool's slot rows are made once per process: the steps that arrive meanwhile wait for that.
        let ensured = self
            .ensured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((pool.to_string(), cap))
            .or_default()
            .clone();
        ensured
            .get_or_try_init(|| self.db.ensure_slots(pool, cap))
            .await
            .map_err(|e| StepError::Storage(format!("preparing {pool} slots: {e}")))?;
        let started = Instant::now();
        let turn = self
            .turns(pool, cap)
            .acquire_owned()
            .await
            .map_err(|e| StepError::Internal(format!("{pool} turns: {e}")))?;
        let holder = format!(
            "{}{}",
            self.held.prefix,
            self.held.next.fetch_add(1, Ordering::Relaxed)
        );
        let lease_ms = self.lease.as_millis() as i64;
        loop {
            // Register for the wake-up before looking, so a slot freed in between is not missed.
            let mut freed = pin!(self.freed.notified());
            freed.as_mut().enable();
            let taken = self
                .db
                .try_take_slot(pool, cap, &holder, lease_ms)
                .await
                .map_err(|e| StepError::Storage(format!("taking a {pool} slot: {e}")))?;
            if let Some(slot) = taken {
                return Ok(Some(self.guard(
                    pool,
                    slot,
                    holder,
                    turn,
                    started.elapsed(),
                )));
            }
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// This process's turns for `pool` (made on first use).
    fn turns(&self, pool: &str, cap: u32) -> Arc<Semaphore> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns
            .entry(pool.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(cap as usize)))
            .clone()
    }

    fn guard(
        &self,
        pool: &str,
        slot: i64,
        holder: String,
        turn: OwnedSemaphorePermit,
        waited: Duration,
    ) -> SlotGuard {
        self.held
            .lock()
            .insert(holder.clone(), (pool.to_string(), slot));
        self.start_renewer();
        SlotGuard {
            db: self.db.clone(),
            pool: pool.to_string(),
            slot,
            holder,
            held: self.held.clone(),
            turn: Some(turn),
            freed: self.freed.clone(),
            waited,
        }
    }

    /// Starts the task renewing every slot held here, every third of a lease, in one UPDATE (once per process).
    fn start_renewer(&self) {
        let mut renewer = self.renewer.lock().unwrap_or_else(|e| e.into_inner());
        if renewer.is_some() {
            return;
        }
        let (db, held, lease) = (self.db.clone(), Arc::downgrade(&self.held), self.lease);
        *renewer = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let Some(held) = held.upgrade() else { return };
                renew_held(&db, &held, lease).await;
            }
        }));
    }
}

impl Drop for ProviderLimits {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.get_mut().ok().and_then(Option::take) {
            renewer.abort();
        }
    }
}

/// Renews every slot in `held`; a slot that was lost (expired and taken by another holder) is dropped from the
/// renewals with a warning.
async fn renew_held(db: &Db, held: &Held, lease: Duration) {
    let before: Vec<String> = held.lock().keys().cloned().collect();
    if before.is_empty() {
        return;
    }
    let renewed = match db.renew_slots(&held.prefix, lease.as_millis() as i64).await {
        Ok(renewed) => renewed,
        Err(e) => {
            tracing::warn!("provider slot renewal failed: {e}");
            return;
        }
    };
    let mut slots = held.lock();
    for holder in before.iter().filter(|h| !renewed.contains(*h)) {
        // Freed meanwhile (no longer listed) is fine; still listed means it was lost.
        if let Some((pool, slot)) = slots.remove(holder) {
            tracing::warn!(
                pool,
                slot,
                "provider slot lost (expired): the cap may be exceeded once"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_over_the_defaults_and_refuse_nonsense() {
        let caps = Caps::parse("kling=5, fal=1").unwrap();
        assert_eq!(caps.get("kling"), Some(5));
        assert_eq!(caps.get("fal"), Some(1));
        assert_eq!(caps.get("sync"), Some(2));
        assert_eq!(Caps::parse("").unwrap(), Caps::default());
        for bad in ["kling", "kling=0", "kling=x", "openai=2", "fal=1001"] {
            assert!(Caps::parse(bad).is_err(), "{bad}");
        }
    }

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&Db::sqlite_url(dir.path())).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn a_cap_of_two_admits_two_and_the_third_waits_for_a_free_slot() {
        let (_dir, db) = db().await;
        let limits = Arc::new(ProviderLimits::new(
            db.clone(),
            Caps::parse("kling=2").unwrap(),
            Duration::from_secs(30),
        ));
        let a = limits.acquire("kling").await.unwrap().unwrap();
        let _b = limits.acquire("kling").await.unwrap().unwrap();
        assert_eq!(db.held_slots("kling").await.unwrap(), 2);
        let third = tokio::spawn({
            let limits = limits.clone();
            async move { limits.acquire("kling").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !third.is_finished(),
            "a third job got a slot under a cap of 2"
        );
        drop(a);
        let got = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("the freed slot was not handed on")
            .unwrap()
            .unwrap();
        assert!(got.is_some());
        assert_eq!(db.held_slots("kling").await.unwrap(), 2);
        assert!(limits.acquire("local").await.unwrap().is_none());
    }

    /// Waiting steps queue in this process: only the first in line looks in the database, and slots are handed
    /// on in arrival order (every waiter used to race for each freed slot with an UPDATE).
    #[tokio::test]
    async fn waiters_are_served_in_arrival_order_and_held_slots_are_renewed_together() {
        let (_dir, db) = db().await;
        let limits = Arc::new(ProviderLimits::new(
            db.clone(),
            Caps::parse("sync=1").unwrap(),
            Duration::from_millis(300),
        ));
        let first = limits.acquire("sync").await.unwrap().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..8 {
            let (limits, order) = (limits.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let slot = limits.acquire("sync").await.unwrap().unwrap();
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(slot);
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Past two leases: the held slot was renewed (by the one renewal task), so nobody else can take it.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            db.try_take_slot("sync", 1, "other", 60_000).await.unwrap(),
            None
        );
        assert!(order.lock().unwrap().is_empty());
        drop(first);
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(10), w)
                .await
                .expect("a waiter never got its slot")
                .unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
        // The last slot is freed in the background.
        let freed_by = Instant::now() + Duration::from_secs(5);
        while db.held_slots("sync").await.unwrap() != 0 {
            assert!(Instant::now() < freed_by, "the last slot was not freed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn slot_rows_are_made_up_to_the_cap_and_a_raised_cap_adds_the_rest() {
        let (_dir, db) = db().await;
        db.ensure_slots("kling", 3).await.unwrap();
        db.ensure_slots("kling", 3).await.unwrap();
        let taken = |holder: &'static str| {
            let db = db.clone();
            async move { db.try_take_slot("kling", 5, holder, 60_000).await.unwrap() }
        };
        let first: Vec<_> = [
            taken("a").await,
            taken("b").await,
            taken("c").await,
            taken("d").await,
        ]
        .into();
        assert_eq!(
            first,
            [Some(0), Some(1), Some(2), None],
            "three rows below a cap of 5"
        );
        db.ensure_slots("kling", 5).await.unwrap();
        assert_eq!(
            (taken("e").await, taken("f").await, taken("g").await),
            (Some(3), Some(4), None)
        );
    }

    #[tokio::test]
    async fn an_expired_slot_is_taken_over() {
        let (_dir, db) = db().await;
        db.ensure_slots("sync", 1).await.unwrap();
        assert_eq!(
            db.try_take_slot("sync", 1, "dead", 1).await.unwrap(),
            Some(0)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            db.try_take_slot("sync", 1, "alive", 60_000).await.unwrap(),
            Some(0)
        );
        assert!(!db.renew_slot("sync", 0, "dead", 60_000).await.unwrap());
        assert_eq!(
            db.try_take_slot("sync", 1, "other", 60_000).await.unwrap(),
            None
        );
    }
}
