//! Admin sessions shared by the API and the pages: password login (paced per client address) and logout.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};

use crate::web::AppState;
use crate::web::auth::{
    SESSION_COOKIE, SESSION_TTL, cookie, random_secret, secret_hash, verify_password,
};
use crate::web::error::ApiError;
use crate::web::login_limit::client_addr;

/// A new session: its CSRF token and the `Set-Cookie` value that carries it.
#[derive(Debug)]
pub struct NewSession {
    /// Sent as `X-CSRF-Token` with writes made under the session cookie.
    pub csrf: String,
    /// The session cookie (HttpOnly; `Secure` behind an HTTPS proxy).
    pub cookie: HeaderValue,
}

/// Checks the admin password (401 when wrong or unset) and opens a session. Attempts from one client address
/// (the peer, or the configured trusted proxy header's) are paced: after repeated failures each waits its turn,
/// but none is refused, so a flood of wrong guesses cannot lock out the right password. `secure` marks the
/// cookie `Secure` (the request came through HTTPS).
pub async fn login(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    secure: bool,
    password: String,
) -> Result<NewSession, ApiError> {
    let client = client_addr(state.config.trusted_proxy_header.as_deref(), peer, headers);
    let limiter = &state.login_limiter;
    let wait = limiter.wait_for_turn(client);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let Some(hash) = state.storage.db.admin_password_hash().await? else {
        limiter.record(client, false);
        return Err(ApiError::unauthorized());
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    limiter.record(client, ok);
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
