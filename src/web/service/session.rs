//! Admin sessions shared by the API and the pages: password login (rate-limited per address) and logout.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};

use crate::web::AppState;
use crate::web::auth::{
    SESSION_COOKIE, SESSION_TTL, cookie, random_secret, secret_hash, verify_password,
};
use crate::web::error::ApiError;

/// A new session: its CSRF token and the `Set-Cookie` value that carries it.
#[derive(Debug)]
pub struct NewSession {
    /// Sent as `X-CSRF-Token` with writes made under the session cookie.
    pub csrf: String,
    /// The session cookie (HttpOnly; `Secure` behind an HTTPS proxy).
    pub cookie: HeaderValue,
}

/// Checks the admin password (429 after too many attempts from `peer`, 401 when wrong or unset) and opens a
/// session. `secure` marks the cookie `Secure` (the request came through HTTPS).
pub async fn login(
    state: &AppState,
    peer: IpAddr,
    secure: bool,
    password: String,
) -> Result<NewSession, ApiError> {
    if !state.login_limiter.allow(peer) {
        return Err(ApiError::too_many("too many login attempts; wait a minute"));
    }
    let Some(hash) = state.storage.db.admin_password_hash().await? else {
        return Err(ApiError::unauthorized());
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
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
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    Ok(NewSession {
        csrf,
        cookie: HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    })
}

/// Ends the session named by the request's cookie (if any); returns the `Set-Cookie` value that clears it.
pub async fn logout(state: &AppState, headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    if let Some(session) = cookie(headers, SESSION_COOKIE) {
        state
            .storage
            .db
            .delete_session(&secret_hash(session))
            .await?;
    }
    Ok(HeaderValue::from_static(
        "devatar_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
    ))
}
