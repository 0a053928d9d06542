//! The browser UI: server-rendered pages (askama templates in `templates/`), vendored htmx and our own CSS/JS
//! (`assets/`, compiled into the binary), live progress over the run event stream (SSE).
//!
//! Every page needs a browser session; a stranger is sent to `/login` with a 303 (the JSON API keeps answering
//! 401). Core forms are plain `POST` forms that answer with a 303 redirect, so they work without JavaScript;
//! htmx only enhances them. Every form carries the session's CSRF token (a hidden `csrf` field, or the
//! `X-CSRF-Token` header that the page sets for htmx requests). All URLs in pages are relative, so the UI also
//! works behind a reverse proxy that mounts it under a sub-path.

mod dashboard;
mod forms;
mod identities;
mod identity_fields;
mod identity_help;
mod identity_photos;
mod identity_twin;
mod library;
mod login;
mod logs;
mod project_cards;
mod projects;
mod runs;
mod scenes;
mod settings;
mod static_files;
mod view;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::storage::db::DbError;
use crate::web::AppState;
use crate::web::auth::{SESSION_COOKIE, cookie, secret_hash};
use crate::web::error::ApiError;

/// The UI routes (pages, form actions, static files), to merge into the application router.
pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/", get(dashboard::page))
        .route("/demo", post(dashboard::render_demo))
        .route("/logout", post(login::logout))
        .route("/projects", get(projects::list_page).post(projects::create))
        .route(
            "/projects/{id}",
            get(projects::project_page).post(projects::update),
        )
        .route("/projects/{id}/delete", post(projects::delete))
        .route("/projects/{id}/generate", post(projects::generate_all))
        .route("/projects/{id}/reorder", post(projects::reorder))
        .route("/projects/{id}/scenes", post(scenes::create))
        .route("/projects/{id}/scenes/new", get(scenes::new_page))
        .route("/runs/{id}", get(runs::run_page))
        .route("/scenes", get(scenes::list_page))
        .route("/scenes/{id}", get(scenes::scene_page).post(scenes::update))
        .route("/scenes/{id}/edit", get(scenes::edit_page))
        .route("/scenes/{id}/delete", post(scenes::delete))
        .route("/scenes/{id}/generate", post(scenes::generate))
        .route("/scenes/{id}/cancel", post(scenes::cancel))
        .route(
            "/identities",
            get(identities::list_page).post(identities::create),
        )
        .route("/identities/new", get(identities::new_page))
        .route("/identities/validate", post(identities::validate))
        .route("/identities/{id}", post(identities::update))
        .route("/identities/{id}/edit", get(identities::edit_page))
        .route("/identities/{id}/test", post(identities::test))
        .route("/identities/{id}/default", post(identities::set_default))
        .route("/identities/{id}/delete", post(identities::delete))
        .route(
            "/identities/{id}/photos",
            post(identity_photos::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/identities/{id}/photos/{photo}/delete",
            post(identity_photos::remove),
        )
        .route("/identities/{id}/consent", post(identity_twin::consent))
        .route("/identities/{id}/train", post(identity_twin::train))
        .route(
            "/assets",
            get(library::page)
                .post(library::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/assets/delete", post(library::delete))
        .route(
            "/assets/inline",
            post(library::upload_inline).layer(DefaultBodyLimit::disable()),
        )
        .route("/logs", get(logs::page))
        .route("/logs/tail", get(logs::tail))
        .route("/settings", get(settings::page))
        .route_layer(from_fn_with_state(state, require_session));
    let public = Router::new()
        .route("/login", get(login::page).post(login::submit))
        .route("/assets/{file}", get(static_files::serve));
    Router::new()
        .merge(protected)
        .merge(public)
        .fallback(not_found)
        .layer(from_fn(security_headers))
}

/// Unknown addresses: the app's own "not found" page (never the browser's bare 404); under `/api/` the JSON
/// error shape.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::not_found("route").into_response();
    }
    error_page(
        &root_for(uri.path()),
        None,
        StatusCode::NOT_FOUND,
        "There is no page at this address. Start again from the dashboard.",
    )
}

/// A signed-in browser session (set by [`require_session`]).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The session's CSRF token, embedded in every form.
    pub csrf: String,
}

/// The relative path from the current URL to the application root (`./`, `../`, `../../`, …).
pub(crate) fn root_for(path: &str) -> String {
    let depth = path.matches('/').count().saturating_sub(1);
    if depth == 0 {
        "./".into()
    } else {
        "../".repeat(depth)
    }
}

/// A 303 redirect to `location` (relative URLs are resolved by the browser against the request URL).
pub(crate) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Percent-encodes one query-string value.
pub(crate) fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// Lets a stranger through only to be redirected to the login page; renders [`UiError`]s as pages.
async fn require_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let root = root_for(&path);
    let csrf = match cookie(req.headers(), SESSION_COOKIE) {
        Some(s) => state.storage.db.session_csrf(&secret_hash(s)).await,
        None => Ok(None),
    };
    let htmx = req.headers().contains_key("hx-request");
    let csrf = match csrf {
        Ok(Some(csrf)) => csrf,
        Ok(None) if htmx => {
            // htmx follows redirects silently; tell it to load the login page instead.
            let mut r = StatusCode::UNAUTHORIZED.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{root}login")) {
                r.headers_mut().insert("hx-redirect", v);
            }
            return r;
        }
        Ok(None) => {
            let mut next_url = path.trim_start_matches('/').to_string();
            if let Some(q) = req.uri().query() {
                next_url = format!("{next_url}?{q}");
            }
            let target = if next_url.is_empty() {
                format!("{root}login")
            } else {
                format!("{root}login?next={}", enc(&next_url))
            };
            return see_other(&target);
        }
        Err(e) => {
            return error_page(
                &root,
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                &db_message(&e),
            );
        }
    };
    req.extensions_mut().insert(Session { csrf: csrf.clone() });
    let mut response = next.run(req).await;
    if let Some(body) = response.extensions_mut().remove::<UiErrorBody>() {
        if htmx {
            // A fragment for the element that asked (see `data-error-target` in app.js).
            let html = ErrorFragment { message: body.0 }
                .render()
                .unwrap_or_default();
            return (response.status(), Html(html)).into_response();
        }
        return error_page(&root, Some(&csrf), response.status(), &body.0);
    }
    response
}

/// Security headers on every UI response; HTML pages are never cached and load nothing from another host.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if is_html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; \
                 script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                 form-action 'self'; frame-ancestors 'none'",
            ),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// What every page's layout needs: where the root is, the CSRF token, the title and the active sidebar entry.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Relative path to the application root, e.g. `../`.
    pub root: String,
    /// CSRF token for forms (empty on the login page).
    pub csrf: String,
    /// Page title.
    pub title: String,
    /// Active sidebar entry (`dashboard`, `projects`, …).
    pub nav: &'static str,
    /// A one-line confirmation shown at the top (after a redirect).
    pub flash: Option<String>,
    /// Asset version for cache busting.
    pub version: &'static str,
    /// Whether to show the sidebar (false on the login page).
    pub signed_in: bool,
}

/// The current page's context: session, relative root and any confirmation message (`?ok=…`).
#[derive(Debug, Clone)]
pub(crate) struct Page {
    /// Relative path to the root.
    pub root: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Confirmation to show.
    pub flash: Option<String>,
    /// The request carried `HX-Request` (an htmx enhancement, which gets a fragment back).
    pub htmx: bool,
}

impl Page {
    /// The layout for a page titled `title` under sidebar entry `nav`.
    pub fn layout(&self, title: impl Into<String>, nav: &'static str) -> Layout {
        Layout {
            root: self.root.clone(),
            csrf: self.csrf.clone(),
            title: title.into(),
            nav,
            flash: self.flash.clone(),
            version: static_files::version(),
            signed_in: true,
        }
    }

    /// A 303 redirect to `target`, a path relative to the application root (`projects/…`).
    pub fn redirect(&self, target: &str) -> Response {
        see_other(&format!("{}{target}", self.root))
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| UiError::new(StatusCode::UNAUTHORIZED, "Please log in."))?;
        let flash = parts.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "ok")
                .and_then(|(_, v)| view::flash_message(&v))
        });
        Ok(Page {
            root: root_for(parts.uri.path()),
            csrf: session.csrf,
            flash: flash.map(str::to_string),
            htmx: parts.headers.contains_key("hx-request"),
        })
    }
}

/// Renders a template to an HTML response with `status`.
pub(crate) fn render(status: StatusCode, t: &impl Template) -> Result<Response, UiError> {
    let body = t.render().map_err(|e| {
        tracing::error!(error = %e, "template failed");
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The page could not be drawn; the server log has the details.",
        )
    })?;
    Ok((status, Html(body)).into_response())
}

/// Renders a template with 200 OK.
pub(crate) fn ok(t: &impl Template) -> Result<Response, UiError> {
    render(StatusCode::OK, t)
}

/// A failure shown to the user as a page (status plus a message in words).
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    message: String,
}

/// Marks a response whose body must become the error page (see [`require_session`]).
#[derive(Debug, Clone)]
struct UiErrorBody(String);

impl UiError {
    /// An error with a status and a message for the user.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 404: `what` does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("That {what} does not exist (it may have been deleted)."),
        )
    }

    /// The message alone (for showing next to a field).
    pub fn message_text(&self) -> String {
        self.message.clone()
    }

    /// 403: the form's CSRF token did not match.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        )
    }
}

fn db_message(e: &DbError) -> String {
    tracing::error!(error = %e, "database error in a page");
    "The database did not answer as expected; try again (the server log has the details).".into()
}

impl From<DbError> for UiError {
    fn from(e: DbError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, db_message(&e))
    }
}

impl From<crate::worker::StartError> for UiError {
    fn from(e: crate::worker::StartError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, view::sentence(&e.message))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.message.clone()).into_response();
        r.extensions_mut().insert(UiErrorBody(self.message));
        r
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    l: Layout,
    status: u16,
    message: String,
}

/// The error as a fragment, for htmx requests.
#[derive(Template)]
#[template(
    source = "<p class=\"error-box\" role=\"alert\">{{ message }}</p>",
    ext = "html"
)]
struct ErrorFragment {
    message: String,
}

/// The error page (with the sidebar when signed in).
fn error_page(root: &str, csrf: Option<&str>, status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        l: Layout {
            root: root.into(),
            csrf: csrf.unwrap_or_default().into(),
            title: "Something went wrong".into(),
            nav: "",
            flash: None,
            version: static_files::version(),
            signed_in: csrf.is_some(),
        },
        status: status.as_u16(),
        message: message.into(),
    };
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(_) => (status, message.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_relative_to_the_depth_of_the_path() {
        assert_eq!(root_for("/"), "./");
        assert_eq!(root_for("/projects"), "./");
        assert_eq!(root_for("/projects/abc"), "../");
        assert_eq!(root_for("/projects/abc/scenes/new"), "../../../");
        assert_eq!(root_for("/projects/"), "../");
    }
}
