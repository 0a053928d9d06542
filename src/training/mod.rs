//! From photos to a digital twin: an identity's usable photos trained into a Flux LoRA on Fal
//! (`fal-ai/flux-lora-fast-training`), one service for the CLI (`devatar identity train`), the API and the identity
//! page.
//!
//! [`Trainer::plan`] decides before anything is paid: consent on record ([`consent`]), at least [`MIN_PHOTOS`]
//! usable photos ([`usable_photos`]), the content key over their content and the settings, a reusable earlier
//! result with that key (then nothing is submitted at all), else the price estimate against the caller's limit.
//! [`Trainer::run`] records a training run (`training_runs`, logs under step `LORA_TRAINING`), zips the photos with
//! captions, submits through the Fal queue with the job ledger (recorded before submit, resumed by the stored
//! request id after a crash, never submitted twice), reports queue position and training logs as they come,
//! copies the LoRA into media storage (an asset of kind `lora`), inspects it, points the identity at it (URL and
//! base model; the trigger word is kept), renders a test still with it and scores it against the photos.

pub mod consent;
mod photos;
mod run;
mod twin;
pub mod zip;

use serde::{Deserialize, Serialize};

use crate::app::Storage;
use crate::config::Config;
use crate::identity_photos::Photos;
use crate::providers::cloud::fal::FalTrainer;
use crate::storage::db::{DbError, IdentityRecord, PhotoRecord};

pub use photos::{MIN_PHOTOS, content_key, left_out, usable_photos};
pub use run::{Outcome, verdict};

/// Training steps unless asked otherwise (Fal's default).
pub const DEFAULT_STEPS: u32 = 1000;
/// The most training steps accepted.
pub const MAX_STEPS: u32 = 10_000;
/// The step name of training runs in logs and run history.
pub const STEP: &str = "LORA_TRAINING";

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// Training steps.
    pub steps: u32,
    /// Refuse when the estimate is above this (USD).
    pub max_usd: Option<f64>,
    /// Train anew even when the same photos and settings were trained before.
    pub force: bool,
}

impl TrainOptions {
    /// Checks the settings: steps in 1..=[`MAX_STEPS`], a limit of at least 0.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.steps == 0 || self.steps > MAX_STEPS {
            return Err(TrainError::Invalid(format!(
                "steps must be between 1 and {MAX_STEPS}"
            )));
        }
        if self.max_usd.is_some_and(|m| !m.is_finite() || m < 0.0) {
            return Err(TrainError::Invalid(
                "max USD must be a number of at least 0".into(),
            ));
        }
        Ok(())
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS,
            max_usd: None,
            force: false,
        }
    }
}

/// Training refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The settings are not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No consent on record.
    #[error(
        "{name} has no consent on record, and training a person's likeness needs it: record it first with \
         `devatar identity consent {name} --by PERSON --note TEXT` (or --file PATH); nothing was submitted"
    )]
    NoConsent {
        /// The identity's name.
        name: String,
    },
    /// Fewer than [`MIN_PHOTOS`] usable photos.
    #[error(
        "training needs at least {MIN_PHOTOS} usable photos and {name} has {usable}{}; add photos with \
         `devatar identity photos {name} add PHOTO…`; nothing was submitted",
        if left_out.is_empty() { String::new() } else { format!(" (left out: {})", left_out.join(" | ")) }
    )]
    TooFewPhotos {
        /// The identity's name.
        name: String,
        /// Usable photos.
        usable: usize,
        /// Why the others are left out.
        left_out: Vec<String>,
    },
    /// The estimate is above the caller's limit.
    #[error(
        "training costs about ${estimate:.2}, more than the limit of ${max:.2}; nothing was submitted"
    )]
    OverBudget {
        /// Estimated USD.
        estimate: f64,
        /// The limit.
        max: f64,
    },
    /// No trainer is configured.
    #[error("training runs on Fal: set FAL_KEY (FAL_BASE_URL points it at the sandbox)")]
    NoTrainer,
    /// The training itself failed (the provider's reason).
    #[error("training failed: {0}")]
    Failed(String),
    /// Media storage or the work folder failed.
    #[error("{0}")]
    Storage(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl TrainError {
    /// Whether training was refused before anything was submitted (as opposed to failing or breaking).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::NoConsent { .. } | Self::TooFewPhotos { .. } | Self::OverBudget { .. }
        )
    }
}

/// A result kept under a training's content key: what a training with the same photos and settings reuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trained {
    /// The LoRA's URL (Fal's output).
    pub lora_url: String,
    /// Its copy in media storage.
    pub lora_object: String,
    /// Its asset (kind `lora`).
    pub lora_asset_id: String,
    /// The test still's object key.
    pub test_image: Option<String>,
    /// The test still's distance to the photos.
    pub score: Option<f64>,
    /// Why the test still could not be made or scored.
    pub score_note: Option<String>,
    /// What the training cost (USD).
    pub cost_usd: f64,
}

/// What a training will do, decided before anything is paid.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The identity.
    pub identity: IdentityRecord,
    /// The photos it trains on.
    pub photos: Vec<PhotoRecord>,
    /// Why the other photos are left out.
    pub left_out: Vec<String>,
    /// The content key.
    pub key: String,
    /// Training steps.
    pub steps: u32,
    /// Estimated price (USD); 0 is paid when `reuse` is set.
    pub estimate_usd: f64,
    /// The earlier result with the same key, reused without any provider request.
    pub reuse: Option<Trained>,
}

/// Trains identities' LoRAs.
pub struct Trainer<'a> {
    storage: &'a Storage,
    cfg: &'a Config,
    fal: FalTrainer,
}

impl<'a> Trainer<'a> {
    /// The trainer of `cfg` (Fal, which needs `FAL_KEY`).
    pub fn new(storage: &'a Storage, cfg: &'a Config) -> Result<Self, TrainError> {
        let fal = FalTrainer::configured(&cfg.cloud).ok_or(TrainError::NoTrainer)?;
        Ok(Self { storage, cfg, fal })
    }

    /// Decides what training `identity` with `opts` means; refuses (before any provider request) without
    /// consent, with too few usable photos, or when the estimate is above `opts.max_usd`.
    pub async fn plan(
        &self,
        identity: IdentityRecord,
        opts: TrainOptions,
    ) -> Result<Plan, TrainError> {
        opts.validate()?;
        let name = identity.identity.name.clone();
        if self.storage.db.consent(&identity.id).await?.is_none() {
            return Err(TrainError::NoConsent { name });
        }
        let collection = Photos::new(self.storage, &self.cfg.face)
            .list(&identity.id)
            .await
            .map_err(|e| TrainError::Storage(e.to_string()))?;
        let usable: Vec<PhotoRecord> = usable_photos(&collection).into_iter().cloned().collect();
        let left_out = left_out(&collection);
        if usable.len() < MIN_PHOTOS {
            return Err(TrainError::TooFewPhotos {
                name,
                usable: usable.len(),
                left_out,
            });
        }
        let refs: Vec<&PhotoRecord> = usable.iter().collect();
        let key = content_key(
            &refs,
            &identity.identity.trigger_word,
            opts.steps,
            self.fal.model(),
        );
        let reuse = match opts.force {
            true => None,
            false => self.reusable(&key).await?,
        };
        let estimate_usd = self.fal.estimate(opts.steps);
        if let (None, Some(max)) = (&reuse, opts.max_usd)
            && estimate_usd > max + 1e-9
        {
            return Err(TrainError::OverBudget {
                estimate: estimate_usd,
                max,
            });
        }
        Ok(Plan {
            identity,
            photos: usable,
            left_out,
            key,
            steps: opts.steps,
            estimate_usd,
            reuse,
        })
    }

    /// The kept result of an earlier training with `key`, when its LoRA is still stored.
    async fn reusable(&self, key: &str) -> Result<Option<Trained>, TrainError> {
        let Some(text) = self.storage.db.cached_output(key).await? else {
            return Ok(None);
        };
        let Ok(trained) = serde_json::from_str::<Trained>(&text) else {
            return Ok(None);
        };
        Ok(self
            .storage
            .objects
            .exists(&trained.lora_object)
            .await
            .then_some(trained))
    }
}

/// Trains `identity` (an identity the caller looked up) to completion with `opts`: plan, then run, reporting
/// progress lines to `progress`. The API and the page start it on a task; the CLI awaits it with a confirm between.
pub async fn train(
    storage: &Storage,
    cfg: &Config,
    identity: IdentityRecord,
    opts: TrainOptions,
    progress: crate::providers::job::Progress,
) -> Result<Outcome, TrainError> {
    let trainer = Trainer::new(storage, cfg)?;
    let plan = trainer.plan(identity, opts).await?;
    trainer.run(&plan, progress).await
}
