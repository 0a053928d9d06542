//! Authentication: admin password (argon2) → session cookie with CSRF token; bearer API tokens.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "devatar_session";
/// Session lifetime.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A random secret, hex-encoded (32 bytes from the OS).
pub fn random_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// SHA-256 of a high-entropy secret (tokens, session ids), hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// True when `password` matches the PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

pub use super::login_limit::LoginLimiter;

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A bearer API token.
    Token,
    /// A browser session.
    Session,
}

/// Constant-time comparison of two secrets.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token of an `Authorization: Bearer <token>` header; the scheme name is case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// Checks credentials before anything else; unsafe methods with a session need the CSRF header.
pub async fn require_auth(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = req.headers();
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    {
        if state
            .storage
            .db
            .use_token(&secret_hash(token.trim()))
            .await?
        {
            req.extensions_mut().insert(Caller::Token);
            return Ok(next.run(req).await);
        }
        return Err(ApiError::unauthorized());
    }
    let Some(session) = cookie(headers, SESSION_COOKIE) else {
        return Err(ApiError::unauthorized());
    };
    let Some(csrf) = state.storage.db.session_csrf(&secret_hash(session)).await? else {
        return Err(ApiError::unauthorized());
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Every write with a session cookie needs the header, whatever its content type: a cross-site form
        // (urlencoded or multipart) cannot set it.
        if !same_secret(sent, &csrf) {
            return Err(ApiError::forbidden("missing or wrong X-CSRF-Token header"));
        }
    }
    req.extensions_mut().insert(Caller::Session);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_name_is_case_insensitive() {
        for header in ["Bearer tok", "bearer tok", "BEARER tok"] {
            assert_eq!(bearer_token(header), Some("tok"), "{header}");
        }
        assert_eq!(bearer_token("Basic tok"), None);
        assert_eq!(bearer_token("Bearertok"), None);
    }

    #[test]
    fn password_hashes_verify_and_differ() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong", &a));
        assert!(!verify_password("x", "not a hash"));
    }
}
