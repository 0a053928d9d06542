//! `/login` (the form, and its POST that sets the same session cookie as `POST /api/login`) and `/logout`.
//!
//! The login form is protected against cross-site posting by a double-submit token: `GET /login` sets a
//! random `devatar_login` cookie and puts the same value in a hidden field; the POST must carry both.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::forms::{PostForm, same_token};
use super::{Layout, UiError, render, root_for, see_other, static_files};
use crate::web::AppState;
use crate::web::auth::{SESSION_COOKIE, cookie, random_secret, secret_hash};
use crate::web::service;

/// Name of the login form's double-submit cookie.
const LOGIN_COOKIE: &str = "devatar_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    token: String,
    next: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

/// Query of the login page.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    /// Set after logging out: the page says so.
    out: Option<String>,
}

/// Only same-site relative paths are followed after login (no scheme, no host, no `..`).
fn safe_next(next: &str) -> String {
    let ok = !next.starts_with('/')
        && !next.contains("//")
        && !next.contains('\\')
        && !next.contains("..")
        && next
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./?=&%".contains(c));
    if ok { next.to_string() } else { String::new() }
}

fn login_page(
    status: StatusCode,
    token: &str,
    next: &str,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Result<Response, UiError> {
    let page = LoginPage {
        l: Layout {
            root: root_for("/login"),
            csrf: String::new(),
            title: "Log in".into(),
            nav: "",
            flash: None,
            version: static_files::version(),
            signed_in: false,
        },
        token: token.into(),
        next: next.into(),
        error,
        notice,
    };
    let mut r = render(status, &page)?;
    let c = format!("{LOGIN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The login form; a signed-in visitor goes straight to the dashboard.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, UiError> {
    let next = safe_next(q.next.as_deref().unwrap_or(""));
    if let Some(s) = cookie(&headers, SESSION_COOKIE)
        && state
            .storage
            .db
            .session_csrf(&secret_hash(s))
            .await?
            .is_some()
    {
        return Ok(see_other(&format!("./{next}")));
    }
    let token = random_secret().map_err(|_| {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server could not make a random token.",
        )
    })?;
    let notice = q.out.is_some().then_some("You are logged out.");
    login_page(StatusCode::OK, &token, &next, None, notice)
}

/// Checks the password (the shared session login) and sets the session cookie; back to the form on failure.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let field = |k: &str| {
        form.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let next = safe_next(field("next"));
    let token = random_secret().unwrap_or_default();
    let sent = field("csrf");
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same_token(c, sent)) {
        return login_page(
            StatusCode::FORBIDDEN,
            &token,
            &next,
            Some("The login form expired. Enter the password again.".into()),
            None,
        );
    }
    let password = field("password");
    if password.is_empty() {
        return login_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            &next,
            Some("Enter the admin password.".into()),
            None,
        );
    }
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        == Some("https");
    match service::session::login(&state, peer.ip(), &headers, secure, password.to_string()).await {
        Ok(session) => {
            let mut r = see_other(&format!("./{next}"));
            r.headers_mut().append(header::SET_COOKIE, session.cookie);
            r.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "devatar_login=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            );
            Ok(r)
        }
        Err(e) => {
            let message = match e.status {
                StatusCode::UNAUTHORIZED => wrong_password_message(&state).await,
                _ => super::view::sentence(&e.message),
            };
            login_page(e.status, &token, &next, Some(message), None)
        }
    }
}

/// Why a login was refused: a wrong password, or — only when none is set — how to set the admin password.
async fn wrong_password_message(state: &AppState) -> String {
    match state.storage.db.admin_password_hash().await {
        Ok(None) => {
            "No admin password is set yet: set DEVATAR_ADMIN_PASSWORD or run `devatar admin \
                     set-password`, then log in."
                .to_string()
        }
        _ => "Wrong password.".to_string(),
    }
}

/// Ends the session and returns to the login page.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: PostForm,
) -> Result<Response, UiError> {
    let clear = service::session::logout(&state, &headers).await?;
    let mut r = see_other("./login?out=1");
    r.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_same_site_paths_are_followed() {
        assert_eq!(safe_next("projects/abc?x=1"), "projects/abc?x=1");
        assert_eq!(safe_next("//evil.example"), "");
        assert_eq!(safe_next("/projects"), "");
        assert_eq!(safe_next("https://evil.example"), "");
        assert_eq!(safe_next("../x"), "");
        assert_eq!(safe_next("a\\b"), "");
    }
}
