//! `fal-ai/flux-lora-fast-training` (PROVIDERS.md §2.8): a zip of photos in, a Flux LoRA (diffusers naming) out,
//! through the Fal queue with its guarantees (recorded before submit, resumed by the stored request id). The zip
//! reaches Fal by URL: a presigned bucket URL when the caller has one, else Fal's storage upload (§2.9), recorded
//! in the job ledger so it goes up once.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::super::Cadence;
use super::super::LoraTrainer;
use super::super::http::{self, MediaKind, clean_url};
use super::{FalQueue, FalStorage, PROVIDER, result_url};
use crate::providers::{JobCtx, PriceTable, ProviderError};

/// The largest LoRA file accepted from Fal (a rank-128 Flux LoRA is about 700 MB).
const MAX_LORA_BYTES: u64 = 2 << 30;

/// One training: the zip of photos and the settings.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The zip of training photos (optional captions named like their image).
    pub zip: PathBuf,
    /// A URL Fal can fetch the zip from (a presigned bucket URL); `None` uploads it to Fal's storage.
    pub zip_url: Option<String>,
    /// The identity's trigger word.
    pub trigger_word: String,
    /// Training steps.
    pub steps: u32,
}

/// What a training produced.
#[derive(Debug, Clone)]
pub struct TrainedLora {
    /// Fal's URL of the LoRA file (Flux can fetch it).
    pub url: String,
    /// The LoRA downloaded into the work folder.
    pub file: PathBuf,
    /// Fal's URL of the training config, when it sent one.
    pub config_url: Option<String>,
}

/// The trainer on Fal.
#[derive(Debug, Clone)]
pub struct FalTrainer {
    queue: FalQueue,
    storage: FalStorage,
    prices: PriceTable,
    trainer: LoraTrainer,
}

impl FalTrainer {
    /// A trainer over `queue`, uploading through `storage`.
    pub fn new(
        queue: FalQueue,
        storage: FalStorage,
        prices: PriceTable,
        trainer: LoraTrainer,
    ) -> Self {
        Self {
            queue,
            storage,
            prices,
            trainer,
        }
    }

    /// The trainer of `cfg`, when `FAL_KEY` is set.
    pub fn configured(cfg: &super::super::CloudConfig) -> Option<Self> {
        let key = cfg.fal_key.clone()?;
        let net = http::Net::of(cfg);
        let queue = FalQueue::new(&cfg.fal_base, key.clone(), cfg.fal_resubmit, net.clone());
        let storage = FalStorage::new(&cfg.fal_storage_base, key, net);
        Some(Self::new(
            queue,
            storage,
            cfg.prices.clone(),
            cfg.lora_trainer,
        ))
    }

    /// The queue it submits to (the twin test's Flux uses the same).
    pub fn queue(&self) -> &FalQueue {
        &self.queue
    }

    /// The model id.
    pub fn model(&self) -> &'static str {
        self.trainer.model()
    }

    /// The estimated price of a training of `steps` steps (USD).
    pub fn estimate(&self, steps: u32) -> f64 {
        self.prices.lora_training(steps)
    }

    /// Trains (or resumes the stored training of `job`) and downloads the LoRA into `work_dir`.
    pub async fn train(
        &self,
        req: &TrainRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<TrainedLora, ProviderError> {
        let zip_url = match &req.zip_url {
            Some(u) => u.clone(),
            None => {
                self.storage
                    .file_url(
                        &req.zip,
                        "photos.zip",
                        "application/zip",
                        &job.derived("zip"),
                    )
                    .await?
            }
        };
        let images = clean_url("images_data_url", &zip_url)?;
        let input = match self.trainer {
            LoraTrainer::Fast => json!({
                "images_data_url": images,
                "trigger_word": req.trigger_word,
                "steps": req.steps,
                "create_masks": true,
                "is_style": false,
            }),
            LoraTrainer::Portrait => json!({
                "images_data_url": images,
                "trigger_phrase": req.trigger_word,
                "steps": req.steps,
            }),
        };
        let estimate = self.estimate(req.steps);
        let cadence = Cadence::training(&self.queue.net);
        let result = self
            .queue
            .run(self.model(), &input, estimate, cadence, job)
            .await?;
        let url = result_url(&result, &["/diffusers_lora_file/url"])?;
        let file = work_dir.join("lora.safetensors");
        http::download(
            &self.queue.net,
            PROVIDER,
            &url,
            &file,
            MediaKind::Safetensors,
            MAX_LORA_BYTES,
        )
        .await?;
        job.add_cost(estimate);
        let config_url = result
            .pointer("/config_file/url")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(TrainedLora {
            url,
            file,
            config_url,
        })
    }
}
