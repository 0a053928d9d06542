//! System facts shared by the API and the pages: database reachability and the settings status.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::web::AppState;
use crate::web::error::ApiError;

/// One provider's state: configured or not (never a key's value).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderState {
    /// Its keys are set (for `local`: every tool is installed).
    pub configured: bool,
}

/// `GET /api/settings/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsStatus {
    /// `elevenlabs`, `fal`, `kling`, `synclabs`, `local`.
    pub providers: BTreeMap<String, ProviderState>,
    /// Each required system tool → installed.
    pub tools: BTreeMap<String, bool>,
    /// `sqlite` (in the data folder) or `external` (`DATABASE_URL`).
    pub database: String,
}

/// Fails (500) when the database does not answer a trivial query.
pub async fn check_database(state: &AppState) -> Result<(), ApiError> {
    state
        .storage
        .db
        .list_tokens()
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}

/// The settings status of `cfg` (booleans only, never key values) and the installed tools.
pub fn settings_status(cfg: &crate::config::Config) -> SettingsStatus {
    let c = &cfg.cloud;
    let tools: BTreeMap<String, bool> = crate::media::REQUIRED_TOOLS
        .iter()
        .map(|(t, _)| (t.to_string(), crate::media::find_tool(t).is_some()))
        .collect();
    let all_tools = tools.values().all(|v| *v);
    let providers = [
        ("elevenlabs", c.elevenlabs_key.is_some()),
        ("fal", c.fal_key.is_some()),
        (
            "kling",
            c.kling_access.is_some() && c.kling_secret.is_some(),
        ),
        ("synclabs", c.sync_key.is_some()),
        ("local", all_tools),
    ]
    .into_iter()
    .map(|(name, configured)| (name.to_string(), ProviderState { configured }))
    .collect();
    SettingsStatus {
        providers,
        tools,
        database: if cfg.database_url.is_some() {
            "external"
        } else {
            "sqlite"
        }
        .into(),
    }
}
