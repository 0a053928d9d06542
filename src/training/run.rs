//! One training run: recorded, logged under `LORA_TRAINING`, trained on Fal (or reused), the LoRA kept and
//! inspected, the identity pointed at it, the twin tested.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::twin::{self, TwinInputs};
use super::{Plan, STEP, TrainError, Trained, Trainer, photos, zip};
use crate::lora::{self, InspectOptions, LoraReport};
use crate::pipeline::ledger::DbLedger;
use crate::providers::cloud::fal::{FalFlux, TrainRequest};
use crate::providers::job::Progress;
use crate::providers::{JobCtx, ProviderError};
use crate::storage::db::{AssetInput, LogInput, TrainingEnd};

/// How a training ended well.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The training run's id.
    pub training_id: String,
    /// The result (new or reused).
    pub trained: Trained,
    /// Reused from an earlier training: no provider request was made.
    pub reused: bool,
    /// The LoRA's inspection.
    pub lora: LoraReport,
    /// The same-person threshold the score is judged by.
    pub threshold: f64,
}

impl Outcome {
    /// The closing line, e.g. `Digital twin ready: looks like you (0.34)`.
    pub fn verdict(&self) -> String {
        verdict(
            self.trained.score,
            self.threshold,
            self.trained.score_note.as_deref(),
        )
    }
}

/// What a training's test image says, judged by the same-person `threshold`: `Digital twin ready: looks like
/// you (0.34)`, a warning above the threshold, or why it was not scored (`note`).
pub fn verdict(score: Option<f64>, threshold: f64, note: Option<&str>) -> String {
    match score {
        Some(d) if d <= threshold => format!("Digital twin ready: looks like you ({d:.2})"),
        Some(d) => format!(
            "Digital twin trained, but its test image does not look like you ({d:.2}, above {threshold:.2})"
        ),
        None => format!(
            "Digital twin ready (not scored: {})",
            note.unwrap_or("no face print")
        ),
    }
}

impl Trainer<'_> {
    async fn log(
        &self,
        run_id: &str,
        level: &str,
        message: &str,
        payload: Option<serde_json::Value>,
    ) {
        let row = LogInput {
            run_id: Some(run_id.into()),
            step: STEP.into(),
            level: level.into(),
            provider: Some(self.fal.model().into()),
            message: message.into(),
            payload: payload.map(|p| p.to_string()),
            ..LogInput::default()
        };
        if let Err(e) = self.storage.db.insert_log(&row).await {
            tracing::warn!(error = %e, "cannot write a training log row");
        }
    }

    /// Records the training run of `plan` (status `running`); returns its id for [`Trainer::execute`].
    /// Earlier trainings of the identity still marked running are ended as interrupted first (their process is
    /// gone; this one resumes their Fal request).
    pub async fn start(&self, plan: &Plan) -> Result<String, TrainError> {
        self.storage
            .db
            .interrupt_trainings(&plan.identity.id)
            .await?;
        Ok(self
            .storage
            .db
            .start_training(
                &plan.identity.id,
                &plan.key,
                i64::from(plan.steps),
                plan.photos.len() as i64,
                &crate::worker::owner_id(),
            )
            .await?)
    }

    /// Runs `plan` (see [`Trainer::plan`]), reporting progress lines to `progress` and the run's logs.
    pub async fn run(&self, plan: &Plan, progress: Progress) -> Result<Outcome, TrainError> {
        let run_id = self.start(plan).await?;
        self.execute(plan, &run_id, progress).await
    }

    /// Runs `plan` as the started training run `run_id`.
    pub async fn execute(
        &self,
        plan: &Plan,
        run_id: &str,
        progress: Progress,
    ) -> Result<Outcome, TrainError> {
        let started = Instant::now();
        let intro = match &plan.reuse {
            Some(_) => format!(
                "the same {} photos were trained with these settings before: reusing that LoRA ($0)",
                plan.photos.len()
            ),
            None => format!(
                "training on {} photos, {} steps, estimated ${:.2}",
                plan.photos.len(),
                plan.steps,
                plan.estimate_usd
            ),
        };
        self.log(run_id, "INFO", &intro, None).await;
        progress(&intro);
        let result = match &plan.reuse {
            Some(t) => Ok(t.clone()),
            None => self.train_new(plan, run_id, progress.clone()).await,
        };
        self.finish(plan, run_id, result, started).await
    }

    async fn finish(
        &self,
        plan: &Plan,
        run_id: &str,
        result: Result<Trained, TrainError>,
        started: Instant,
    ) -> Result<Outcome, TrainError> {
        let db = &self.storage.db;
        let reused = plan.reuse.is_some();
        let elapsed = started.elapsed().as_millis() as i64;
        // An uninspectable LoRA fails the training too, so the row never stays `running`.
        let checked = match result {
            Ok(t) => self.inspect(&t, plan).await.map(|lora| (t, lora)),
            Err(e) => Err(e),
        };
        let (trained, lora) = match checked {
            Ok(done) => done,
            Err(e) => {
                // Logged before the row ends, so whoever sees the row final has every log line.
                let payload = json!({"durationMs": elapsed});
                self.log(run_id, "ERROR", &e.to_string(), Some(payload))
                    .await;
                let end = TrainingEnd {
                    status: "failed",
                    error: Some(e.to_string()),
                    ..TrainingEnd::default()
                };
                db.finish_training(run_id, &end).await?;
                return Err(e);
            }
        };
        db.set_trained_lora(&plan.identity.id, &trained.lora_url, "flux-dev")
            .await?;
        let cost = if reused { 0.0 } else { trained.cost_usd };
        let end = TrainingEnd {
            status: "succeeded",
            cached: reused,
            cost_usd: cost,
            lora_url: Some(trained.lora_url.clone()),
            lora_object: Some(trained.lora_object.clone()),
            score: trained.score,
            error: None,
        };
        let outcome = Outcome {
            training_id: run_id.into(),
            trained,
            reused,
            lora,
            threshold: self.cfg.face.threshold,
        };
        let payload = json!({"costUsd": cost, "cached": reused, "durationMs": elapsed,
            "score": outcome.trained.score});
        self.log(run_id, "INFO", &outcome.verdict(), Some(payload))
            .await;
        db.finish_training(run_id, &end).await?;
        Ok(outcome)
    }

    /// Inspects the stored LoRA as `lora inspect` does (trigger word, flux-dev).
    async fn inspect(&self, trained: &Trained, plan: &Plan) -> Result<LoraReport, TrainError> {
        let path = self
            .storage
            .objects
            .local_path(&trained.lora_object)
            .await
            .map_err(|e| TrainError::Storage(e.to_string()))?;
        let opts = InspectOptions {
            trigger_word: Some(plan.identity.identity.trigger_word.clone()),
            base_model: Some("flux-dev".into()),
        };
        tokio::task::spawn_blocking(move || lora::inspect_file(&path, &opts))
            .await
            .map_err(|e| TrainError::Storage(e.to_string()))?
            .map_err(|e| TrainError::Storage(e.to_string()))
    }

    /// Zips, trains on Fal, keeps the LoRA, tests the twin, and keeps the result under the plan's key.
    async fn train_new(
        &self,
        plan: &Plan,
        run_id: &str,
        progress: Progress,
    ) -> Result<Trained, TrainError> {
        let storage_err = |e: &dyn std::fmt::Display| TrainError::Storage(e.to_string());
        let work = self.storage.work_dir().join(format!("train-{run_id}"));
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| storage_err(&e))?;
        let (zip_path, zip_url) = self.zip(plan, &work).await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let drain = {
            let (this_db, run_id, progress) =
                (self.storage.db.clone(), run_id.to_string(), progress);
            let provider = self.fal.model().to_string();
            tokio::spawn(async move {
                while let Some(line) = rx.recv().await {
                    progress(&line);
                    let row = LogInput {
                        run_id: Some(crate::domain::RunId::from(run_id.as_str())),
                        step: STEP.into(),
                        level: "INFO".into(),
                        provider: Some(provider.clone()),
                        message: line,
                        ..LogInput::default()
                    };
                    let _ = this_db.insert_log(&row).await;
                }
            })
        };
        let ledger = Arc::new(DbLedger(self.storage.db.clone()));
        let job = JobCtx::new(plan.key.clone(), ledger).with_progress(Arc::new(move |l: &str| {
            let _ = tx.send(l.to_string());
        }));
        let request = TrainRequest {
            zip: zip_path,
            zip_url,
            trigger_word: plan.identity.identity.trigger_word.clone(),
            steps: plan.steps,
        };
        let trained = self.fal.train(&request, &work, &job).await;
        let trained = match trained {
            Ok(t) => t,
            Err(e) => {
                drop(job);
                let _ = drain.await;
                return Err(failure(e));
            }
        };
        job.progress("training finished: keeping the LoRA and testing the digital twin");
        let kept = self
            .keep(plan, &trained.file, &trained.url, &work, &job)
            .await;
        let cost = job.cost();
        drop(job);
        let _ = drain.await;
        let mut kept = kept?;
        kept.cost_usd = cost;
        let text = serde_json::to_string(&kept).map_err(|e| storage_err(&e))?;
        self.storage
            .db
            .cache_output(&plan.key, STEP, self.fal.model(), &text)
            .await?;
        let _ = tokio::fs::remove_dir_all(&work).await;
        Ok(kept)
    }

    /// The zip of the plan's photos in `work`, and a presigned URL of it when media live in a bucket.
    async fn zip(
        &self,
        plan: &Plan,
        work: &Path,
    ) -> Result<(std::path::PathBuf, Option<String>), TrainError> {
        let objects = &self.storage.objects;
        let mut files = Vec::with_capacity(plan.photos.len());
        for p in &plan.photos {
            let bytes = objects
                .read_bytes(&p.object_key)
                .await
                .map_err(|e| TrainError::Storage(e.to_string()))?;
            let ext = if p.mime == "image/png" { "png" } else { "jpg" };
            files.push((ext.to_string(), bytes));
        }
        let entries = photos::zip_entries(files, &plan.identity.identity.trigger_word);
        let bytes = zip::write_stored(&entries).map_err(TrainError::Storage)?;
        let path = work.join("photos.zip");
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|e| TrainError::Storage(e.to_string()))?;
        if !objects.presigns() {
            return Ok((path, None));
        }
        let stored = objects
            .put_file(&path, "zip")
            .await
            .map_err(|e| TrainError::Storage(e.to_string()))?;
        let url = objects
            .presigned_get(&stored.key, objects.presign_ttl())
            .map_err(|e| TrainError::Storage(e.to_string()))?;
        Ok((path, url))
    }

    /// Copies the LoRA into media storage (an asset of kind `lora`) and tests the twin with it.
    async fn keep(
        &self,
        plan: &Plan,
        file: &Path,
        url: &str,
        work: &Path,
        job: &JobCtx,
    ) -> Result<Trained, TrainError> {
        let stored = self
            .storage
            .objects
            .put_file(file, "safetensors")
            .await
            .map_err(|e| TrainError::Storage(e.to_string()))?;
        let asset = AssetInput {
            kind: "lora".into(),
            object_key: stored.key.clone(),
            sha256: stored.sha256,
            size_bytes: stored.size as i64,
            mime: "application/octet-stream".into(),
            width: None,
            height: None,
            original_name: Some(format!("{}-lora.safetensors", plan.identity.identity.name)),
        };
        let asset_id = self.storage.db.upsert_asset(&asset).await?;
        let flux = FalFlux::new(self.fal.queue().clone(), self.cfg.cloud.prices.clone());
        let inputs = TwinInputs {
            storage: self.storage,
            face: &self.cfg.face,
            image: &flux,
            identity_id: &plan.identity.id,
            identity: &plan.identity.identity,
            lora_url: url,
            work_dir: work,
        };
        let check = twin::check(&inputs, &job.derived("twin-test")).await;
        Ok(Trained {
            lora_url: url.into(),
            lora_object: stored.key,
            lora_asset_id: asset_id.into_string(),
            test_image: check.image,
            score: check.score,
            score_note: check.note,
            cost_usd: 0.0,
        })
    }
}

/// A provider error as a training failure (Fal's reason kept).
fn failure(e: ProviderError) -> TrainError {
    TrainError::Failed(e.to_string())
}
