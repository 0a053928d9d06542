//! `/settings`: which providers are configured (booleans, never a key), media tools, the health check, the
//! price table in use and the defaults. Settings live in the server's environment, not in the browser.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::dashboard::provider_status;
use super::{Layout, Page, UiError, ok, view};
use crate::costs::PriceTable;
use crate::domain::{AspectRatio, BaseModel, LoraScale};
use crate::storage::db::IdentityRecord;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    l: Layout,
    providers: Vec<ProviderRow>,
    tools: Vec<(String, bool)>,
    database: String,
    prices: Vec<(&'static str, String)>,
    defaults: Vec<(&'static str, String)>,
    checked: bool,
    health: Vec<(String, bool, String)>,
}

/// One provider on the settings page: configured or not, the variables it needs and what it does.
#[derive(Debug, Clone)]
struct ProviderRow {
    name: String,
    configured: bool,
    variables: &'static [&'static str],
    does: &'static str,
}

impl ProviderRow {
    fn new(name: String, configured: bool) -> Self {
        let (variables, does) = provider_needs(&name);
        Self {
            name,
            configured,
            variables,
            does,
        }
    }
}

/// The environment variables a provider needs (all of them), as README's Configuration table names them, and
/// what it is used for.
fn provider_needs(name: &str) -> (&'static [&'static str], &'static str) {
    match name {
        "elevenlabs" => (
            &["ELEVENLABS_API_KEY"],
            "speech (optional ELEVENLABS_VOICE_ID: the default voice)",
        ),
        "fal" => (
            &["FAL_KEY"],
            "stills with the identity's LoRA (digital twin), and Kling, Sync and the talking avatar through Fal",
        ),
        "kling" => (
            &["KLING_ACCESS_KEY", "KLING_SECRET_KEY"],
            "image-to-video directly at Kling",
        ),
        "synclabs" => (&["SYNCLABS_API_KEY"], "lip-sync directly at Sync Labs"),
        "local" => (
            &[],
            "offline speech, stills and motion: needs the media tools below (scripts/install-deps.sh)",
        ),
        _ => (&[], ""),
    }
}

/// Query of the settings page (`check=1` runs the health check).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsQuery {
    check: Option<String>,
}

/// The settings page, with the health check results when asked.
pub(crate) async fn page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<SettingsQuery>,
) -> Result<Response, UiError> {
    let (providers, status) = provider_status(&state.config);
    let providers = providers
        .into_iter()
        .map(|(name, configured)| ProviderRow::new(name, configured))
        .collect();
    let tools = tool_list(&status);
    let prices = price_rows(&state.config.cloud.prices);
    let identities = state.storage.db.list_identities().await?;
    let defaults = default_rows(&identities, state.config.cloud_configured());
    let checked = q.check.is_some();
    let health = if checked {
        health_checks(&state, &tools).await
    } else {
        Vec::new()
    };
    ok(&SettingsPage {
        l: page.layout("Settings", "settings"),
        providers,
        tools,
        database: status["database"].as_str().unwrap_or("sqlite").to_string(),
        prices,
        defaults,
        checked,
        health,
    })
}

/// The media tools from the provider status: (name, installed).
fn tool_list(status: &Value) -> Vec<(String, bool)> {
    status["tools"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_bool().unwrap_or(false)))
                .collect()
        })
        .unwrap_or_default()
}

/// The price table in use as (label, price) rows.
fn price_rows(p: &PriceTable) -> Vec<(&'static str, String)> {
    vec![
        (
            "Speech, per 1,000 characters",
            view::price(p.speech_per_1k_chars),
        ),
        ("Image, per megapixel", view::price(p.image_per_megapixel)),
        ("Video, first 5 seconds", view::price(p.video_first_5s)),
        (
            "Video, each further second",
            view::price(p.video_per_extra_second),
        ),
        ("Lip-sync, per minute", view::price(p.lipsync_per_minute)),
        ("Avatar, per second", view::price(p.avatar_per_second)),
        (
            "LoRA training, per 1,000 steps",
            view::price(p.lora_training_per_1k_steps),
        ),
    ]
}

/// The defaults new projects and scenes get: providers, default identity, aspect ratio, LoRA, models.
fn default_rows(identities: &[IdentityRecord], cloud: bool) -> Vec<(&'static str, String)> {
    let default_identity = identities
        .iter()
        .find(|i| i.is_default)
        .map(|i| format!("{} ({})", i.identity.display_name, i.identity.name))
        .unwrap_or_else(|| "none chosen (Identities → Set default)".into());
    vec![
        (
            "Providers",
            if cloud {
                "auto: paid providers whose keys are set, local for the rest".to_string()
            } else {
                "auto: no keys are set, so every step uses the local providers".to_string()
            },
        ),
        ("Default identity", default_identity),
        (
            "Aspect ratio of new projects",
            AspectRatio::default().as_str().into(),
        ),
        ("LoRA scale", LoraScale::default().to_text()),
        ("Base model", BaseModel::default().as_str().into()),
        (
            "Voice model",
            crate::domain::Identity::new("", "", "").voice_model,
        ),
    ]
}

/// The health check: database, data folder, each media tool and the worker, as (check, passed, detail).
async fn health_checks(state: &AppState, tools: &[(String, bool)]) -> Vec<(String, bool, String)> {
    let mut health = Vec::new();
    let database = crate::web::service::system::check_database(state).await;
    health.push(match database {
        Ok(_) => ("Database".to_string(), true, "reachable".to_string()),
        Err(e) => ("Database".to_string(), false, e.message),
    });
    let work = state.storage.work_dir();
    let writable = tokio::fs::create_dir_all(&work).await.is_ok();
    health.push((
        "Data folder".into(),
        writable,
        if writable {
            "writable".into()
        } else {
            format!("{} cannot be created", work.display())
        },
    ));
    for (tool, found) in tools {
        health.push((
            tool.clone(),
            *found,
            if *found {
                "installed".into()
            } else {
                "missing: run scripts/install-deps.sh".into()
            },
        ));
    }
    health.push((
        "Worker".into(),
        state.worker_in_process,
        if state.worker_in_process {
            "running in this process".into()
        } else {
            "off (--no-worker): generation is unavailable".into()
        },
    ));
    health
}
