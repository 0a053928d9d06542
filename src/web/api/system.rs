//! Health, login/logout and provider status.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::web::AppState;
use crate::web::auth::{
    SESSION_COOKIE, SESSION_TTL, cookie, random_secret, secret_hash, verify_password,
};
use crate::web::error::{ApiError, ApiJson};

/// `GET /healthz`: the server answers and its database is reachable.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` (failures answer 500 with the error shape).
    pub status: String,
}

/// `POST /api/login`: the session's CSRF token (the session itself is the HttpOnly cookie).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginAnswer {
    /// Send it as `X-CSRF-Token` with every write made with the session cookie.
    pub csrf_token: String,
}

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

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state
        .storage
        .db
        .list_tokens()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

/// Login body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    password: String,
}

/// Exchange the admin password for a session cookie; returns the CSRF token for JSON writes.
#[utoipa::path(post, path = "/api/login", tag = "system", request_body = LoginInput,
    responses((status = 200, body = LoginAnswer), (status = 401), (status = 429)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<LoginInput>,
) -> Result<Response, ApiError> {
    if !state.login_limiter.allow(peer.ip()) {
        return Err(ApiError::too_many("too many login attempts; wait a minute"));
    }
    let Some(hash) = state.storage.db.admin_password_hash().await? else {
        return Err(ApiError::unauthorized());
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&input.password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(ApiError::unauthorized());
    }
    let session = random_secret().map_err(ApiError::internal)?;
    let csrf = random_secret().map_err(ApiError::internal)?;
    state
        .storage
        .db
        .create_session(
            &secret_hash(&session),
            &csrf,
            SESSION_TTL.as_millis() as i64,
        )
        .await?;
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        == Some("https");
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(LoginAnswer { csrf_token: csrf }).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// End the session.
#[utoipa::path(post, path = "/api/logout", tag = "system", responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(session) = cookie(&headers, SESSION_COOKIE) {
        state
            .storage
            .db
            .delete_session(&secret_hash(session))
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("devatar_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

/// Which providers are configured (booleans only, never key values) and which tools are installed.
#[utoipa::path(get, path = "/api/settings/status", tag = "system", responses((status = 200, body = SettingsStatus)))]
pub async fn settings_status(State(state): State<AppState>) -> Json<SettingsStatus> {
    Json(status_of(&state.config))
}

/// The settings status of `cfg` (booleans only, never key values) and the installed tools.
pub fn status_of(cfg: &crate::config::Config) -> SettingsStatus {
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
