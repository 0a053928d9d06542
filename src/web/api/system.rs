//! Health, login/logout and provider status.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::web::error::{ApiError, ApiJson};
use crate::web::{AppState, service};

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

pub use crate::web::service::system::{ProviderState, SettingsStatus};

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    service::system::check_database(&state).await?;
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
    responses((status = 200, body = LoginAnswer), (status = 401)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<LoginInput>,
) -> Result<Response, ApiError> {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        == Some("https");
    let session =
        service::session::login(&state, peer.ip(), &headers, secure, input.password).await?;
    let mut response = Json(LoginAnswer {
        csrf_token: session.csrf,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session.cookie);
    Ok(response)
}

/// End the session.
#[utoipa::path(post, path = "/api/logout", tag = "system", responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let clear = service::session::logout(&state, &headers).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(response)
}

/// Which providers are configured (booleans only, never key values) and which tools are installed.
#[utoipa::path(get, path = "/api/settings/status", tag = "system", responses((status = 200, body = SettingsStatus)))]
pub async fn settings_status(State(state): State<AppState>) -> Json<SettingsStatus> {
    Json(service::system::settings_status(&state.config))
}
