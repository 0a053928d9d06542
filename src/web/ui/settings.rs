//! `/settings`: which providers are configured (booleans, never a key), media tools, the health check, the
//! price table in use and the defaults. Settings live in the server's environment, not in the browser.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::dashboard::provider_status;
use super::{Layout, Page, UiError, ok, view};
use crate::domain::{AspectRatio, BaseModel, LoraScale};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    l: Layout,
    providers: Vec<(String, bool)>,
    tools: Vec<(String, bool)>,
    database: String,
    prices: Vec<(&'static str, String)>,
    defaults: Vec<(&'static str, String)>,
    checked: bool,
    health: Vec<(String, bool, String)>,
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
    let tools: Vec<(String, bool)> = status["tools"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_bool().unwrap_or(false)))
                .collect()
        })
        .unwrap_or_default();
    let p = &state.config.cloud.prices;
    let prices = vec![
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
    ];
    let db = &state.storage.db;
    let identities = db.list_identities().await?;
    let default_identity = identities
        .iter()
        .find(|i| i.is_default)
        .map(|i| format!("{} ({})", i.identity.display_name, i.identity.name))
        .unwrap_or_else(|| "none chosen (Identities → Set default)".into());
    let defaults = vec![
        (
            "Providers",
            if state.config.cloud_configured() {
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
    ];
    let checked = q.check.is_some();
    let mut health = Vec::new();
    if checked {
        let database = crate::web::api::system::healthz(State(state.clone())).await;
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
        for (tool, found) in &tools {
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
            state.runs.is_some(),
            if state.runs.is_some() {
                "running in this process".into()
            } else {
                "off (--no-worker): generation is unavailable".into()
            },
        ));
    }
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
