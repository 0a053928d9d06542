//! Consent and training for the API and the identity page (the work is in [`crate::training`]): read and set an
//! identity's consent, start a training (refused before any submit as a 409 without consent, a 422 with too few
//! usable photos or a price above `maxUsd`, a 409 without `FAL_KEY`) that then runs on a task of this process,
//! and list an identity's training runs.

use std::sync::Arc;

use crate::domain::{AssetId, IdentityId};
use crate::storage::db::{ConsentRecord, IdentityRecord, TrainingRow};
use crate::training::consent::{self, ConsentError, ConsentInput};
use crate::training::{TrainError, TrainOptions, Trainer};
use crate::web::AppState;
use crate::web::error::ApiError;

async fn identity(state: &AppState, id: &IdentityId) -> Result<IdentityRecord, ApiError> {
    state
        .storage
        .db
        .get_identity(id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))
}

/// The consent on record for identity `id`, `None` when there is none (404 when the identity is unknown).
pub async fn consent_of(
    state: &AppState,
    id: &IdentityId,
) -> Result<Option<ConsentRecord>, ApiError> {
    identity(state, id).await?;
    Ok(state.storage.db.consent(id).await?)
}

/// Records identity `id`'s consent.
pub async fn set_consent(
    state: &AppState,
    id: &IdentityId,
    input: &ConsentInput,
) -> Result<ConsentRecord, ApiError> {
    identity(state, id).await?;
    if let Some(asset) = &input.asset_id {
        match state
            .storage
            .db
            .get_asset(&AssetId::from(asset.as_str()))
            .await?
        {
            None => return Err(ApiError::invalid("assetId", "no such asset")),
            Some(a) if a.kind != "consent" => {
                return Err(ApiError::invalid(
                    "assetId",
                    "is not a consent record (upload it with kind consent)",
                ));
            }
            Some(_) => {}
        }
    }
    consent::record(&state.storage, id, input)
        .await
        .map_err(|e| match e {
            ConsentError::Invalid(m) => {
                let field = if m.starts_with("consented by") {
                    "consentedBy"
                } else {
                    "note"
                };
                ApiError::invalid(field, m)
            }
            ConsentError::Db(e) => ApiError::missing_reference("assetId", "asset")(e),
            other => ApiError::internal(other),
        })
}

/// A refusal or failure of a training as the API answers it.
fn train_error(e: TrainError) -> ApiError {
    match e {
        TrainError::NoConsent { .. } => ApiError::conflict("consent", e.to_string()),
        TrainError::TooFewPhotos { .. } => ApiError::invalid("photos", e.to_string()),
        TrainError::OverBudget { .. } => ApiError::invalid("maxUsd", e.to_string()),
        TrainError::Invalid(m) if m.starts_with("max") => ApiError::invalid("maxUsd", m),
        TrainError::Invalid(m) => ApiError::invalid("steps", m),
        TrainError::NoTrainer => ApiError::conflict("provider", e.to_string()),
        TrainError::Db(e) => e.into(),
        other => ApiError::internal(other),
    }
}

/// Starts training identity `id` with `opts`: refused before anything is submitted, or recorded and run on a
/// task (its progress goes to the run's logs); returns the training run as it starts.
pub async fn start(
    state: &AppState,
    id: &IdentityId,
    opts: TrainOptions,
) -> Result<TrainingRow, ApiError> {
    let record = identity(state, id).await?;
    opts.validate().map_err(train_error)?;
    let owner = crate::worker::owner_id();
    if state.storage.db.training_running_in(id, &owner).await? {
        return Err(ApiError::conflict(
            "identity",
            "a training of this identity is running; wait for it to end",
        ));
    }
    let trainer = Trainer::new(&state.storage, &state.config).map_err(train_error)?;
    let plan = trainer.plan(record, opts).await.map_err(train_error)?;
    let run_id = trainer.start(&plan).await.map_err(train_error)?;
    let (storage, config) = (state.storage.clone(), Arc::clone(&state.config));
    let task_id = run_id.clone();
    tokio::spawn(async move {
        let outcome = match Trainer::new(&storage, &config) {
            Ok(t) => t.execute(&plan, &task_id, Arc::new(|_: &str| {})).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::warn!(training = %task_id, error = %e, "training failed");
        }
    });
    state
        .storage
        .db
        .training(&run_id)
        .await?
        .ok_or_else(|| ApiError::internal("the training run vanished"))
}

/// Identity `id`'s training runs, newest first.
pub async fn trainings(state: &AppState, id: &IdentityId) -> Result<Vec<TrainingRow>, ApiError> {
    identity(state, id).await?;
    Ok(state.storage.db.trainings(id).await?)
}

/// Training `training_id` of identity `id` (404 when either is unknown, or the training is another identity's).
pub async fn training_of(
    state: &AppState,
    id: &IdentityId,
    training_id: &str,
) -> Result<TrainingRow, ApiError> {
    identity(state, id).await?;
    state
        .storage
        .db
        .training(training_id)
        .await?
        .filter(|t| t.identity_id == id.as_str())
        .ok_or_else(|| ApiError::not_found("training"))
}
