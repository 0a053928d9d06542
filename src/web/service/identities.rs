//! Identity facts shared by the API and the pages: the digital-twin status and the identity test.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::IdentityId;
use crate::identity_check::{
    IdentityTestReport, VoiceDirectory, check_lora_file, reference_photo_checks, test_identity,
    test_render,
};
use crate::identity_photos::Photos;
use crate::web::AppState;
use crate::web::error::ApiError;

/// `GET /api/identities/status`: whether digital twin mode is possible, and what to do when it is not.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwinStatus {
    /// `FAL_KEY` is set.
    pub fal_key_configured: bool,
    /// `DEVEN_LORA_URL` is set (the LoRA of identities without one).
    pub default_lora_configured: bool,
    /// How many identities exist and are active.
    pub identities: IdentityCounts,
    /// The default identity (`null` when there is none).
    pub default_identity: Option<DefaultIdentity>,
    /// `database`, `env` (only `DEVEN_LORA_URL`) or `none`.
    pub default_identity_source: String,
    /// `FAL_KEY` and at least one LoRA.
    pub digital_twin_available: bool,
    /// What to set up next, in the guide's words.
    pub recommendations: Vec<String>,
}

/// Identity counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityCounts {
    /// All identities.
    pub count: usize,
    /// Active ones.
    pub active: usize,
}

/// The default identity, in short.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultIdentity {
    /// Its id (absent for the environment's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its name (`env` for the environment's default).
    pub name: String,
    /// It has a LoRA.
    pub has_lora: bool,
}

/// Whether digital twin mode is possible (keys as booleans only), the identities, the default and what to set
/// up next.
pub async fn twin_status(state: &AppState) -> Result<TwinStatus, ApiError> {
    let identities = state.storage.db.list_identities().await?;
    let fal = state.config.cloud.fal_key.is_some();
    let env_lora = state.config.default_lora_url.is_some();
    let default = identities.iter().find(|r| r.is_default);
    let (default_identity, source) = match default {
        Some(d) => (
            Some(DefaultIdentity {
                id: Some(d.id.to_string()),
                name: d.identity.name.clone(),
                has_lora: d.identity.lora_url.is_some() || d.lora_asset_id.is_some(),
            }),
            "database",
        ),
        None if env_lora => (
            Some(DefaultIdentity {
                id: None,
                name: "env".into(),
                has_lora: true,
            }),
            "env",
        ),
        None => (None, "none"),
    };
    let any_lora = identities
        .iter()
        .any(|r| r.identity.lora_url.is_some() || r.lora_asset_id.is_some())
        || env_lora;
    let mut recommendations = Vec::new();
    if !fal {
        recommendations.push("Set FAL_KEY to enable digital twin image generation.");
    }
    if !any_lora {
        recommendations.push("Add a LoRA URL to an identity (or set DEVEN_LORA_URL).");
    }
    if default.is_none() {
        recommendations.push("Choose a default identity: press Set default on its card.");
    }
    Ok(TwinStatus {
        fal_key_configured: fal,
        default_lora_configured: env_lora,
        identities: IdentityCounts {
            count: identities.len(),
            active: identities.iter().filter(|r| r.is_active).count(),
        },
        default_identity,
        default_identity_source: source.into(),
        digital_twin_available: fal && any_lora,
        recommendations: recommendations.into_iter().map(String::from).collect(),
    })
}

/// Tests identity `id` (404 when unknown) — and with `render`, one still through the configured image provider —
/// and stores the result on the identity.
pub async fn test(
    state: &AppState,
    id: &IdentityId,
    render: bool,
) -> Result<IdentityTestReport, ApiError> {
    let db = &state.storage.db;
    let record = db
        .get_identity(id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))?;
    let mut report = test_identity(
        &record.identity,
        &state.config.fetch_guard(),
        VoiceDirectory::configured(&state.config.cloud).as_ref(),
    )
    .await;
    if record.identity.lora_url.is_none()
        && let Some(asset) = &record.lora_asset_id
        && let Some(key) = state.storage.db.asset_object_key(asset).await?
    {
        let path = state
            .storage
            .objects
            .local_path(&key)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        check_lora_file(&mut report, &record.identity, &path).await;
    }
    let photos = Photos::new(&state.storage, &state.config.face);
    report.extend(reference_photo_checks(&photos, &record.identity.name, id).await);
    if render {
        let providers = state.config.configured_providers();
        let work = state
            .storage
            .work_dir()
            .join(format!("identity-test-{}", uuid::Uuid::new_v4()));
        test_render(
            &mut report,
            &record.identity,
            providers.image.as_ref(),
            &state.storage.objects,
            &work,
        )
        .await;
        let _ = tokio::fs::remove_dir_all(&work).await;
    }
    let stored = serde_json::to_string(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    db.record_identity_test(id, report.ok, &stored).await?;
    Ok(report)
}
