//! The HTTP server: JSON API (+ OpenAPI document), authentication and the in-process worker.

pub mod api;
pub mod auth;
pub mod error;
pub mod login_limit;
pub mod openapi;
pub mod service;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::app::Storage;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The process configuration.
    pub config: Arc<crate::config::Config>,
    /// Database and media.
    pub storage: Storage,
    /// Login attempt limiter.
    pub login_limiter: Arc<auth::LoginLimiter>,
    /// The run service: queues runs (and, unless `--no-worker`, executes them in this process).
    pub runs: Arc<crate::worker::RunService>,
    /// Whether this process also claims and executes queued runs (`serve` without `--no-worker`).
    pub worker_in_process: bool,
}

#[derive(OpenApi)]
#[openapi(info(
    title = "devatar API",
    description = "Talking-avatar videos of your digital twin."
))]
struct ApiDoc;

/// The routes that need credentials, with their OpenAPI description.
fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::identities::list, api::identities::create))
        .routes(routes!(api::identities::status))
        .routes(routes!(
            api::identities::get,
            api::identities::update,
            api::identities::delete
        ))
        .routes(routes!(api::identities::set_default))
        .routes(routes!(api::identities::test))
        .routes(
            routes!(api::identity_photos::list, api::identity_photos::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(api::identity_photos::remove))
        .routes(routes!(api::identity_photos::vet))
        .routes(routes!(
            api::training::get_consent,
            api::training::put_consent
        ))
        .routes(routes!(api::training::train))
        .routes(routes!(api::training::trainings))
        .routes(routes!(api::training::events))
        .routes(routes!(api::projects::list, api::projects::create))
        .routes(routes!(
            api::projects::get,
            api::projects::update,
            api::projects::delete
        ))
        .routes(routes!(api::projects::render))
        .routes(routes!(api::projects::preview))
        .routes(routes!(api::projects::reorder))
        .routes(routes!(api::estimate::estimate_route))
        .routes(routes!(
            api::webhooks::get,
            api::webhooks::put,
            api::webhooks::delete
        ))
        .routes(routes!(api::scenes::list, api::scenes::create))
        .routes(routes!(
            api::scenes::get,
            api::scenes::update,
            api::scenes::delete
        ))
        .routes(routes!(api::scenes::generate))
        .routes(routes!(api::scenes::preview))
        .routes(routes!(api::scenes::cancel))
        .routes(routes!(api::scenes::status))
        .routes(routes!(api::runs::get))
        .routes(routes!(api::runs::events))
        .routes(routes!(api::runs::logs))
        .routes(
            routes!(api::assets::list, api::assets::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(api::assets::delete))
        .routes(routes!(api::system::logout))
        .routes(routes!(api::system::settings_status))
}

/// The routes open to everyone.
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::system::healthz))
        .routes(routes!(api::system::login))
}

/// Adds the answers an operation with a request body can give before its handler runs, where it does not
/// list them already: 400 (malformed body), 413 (over the size limit), 415 (wrong content type) and 422
/// (valid JSON that is not the expected object).
fn document_protocol_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, Response};
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let has_query = op.parameters.iter().flatten().any(|p| {
                matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
            });
            if has_query {
                op.responses
                    .responses
                    .entry("400".to_string())
                    .or_insert_with(|| RefOr::T(Response::new("malformed query string")));
            }
            let Some(RefOr::T(body)) = &op.request_body else {
                continue;
            };
            let what = if body.content.contains_key("application/json") {
                "JSON body (at most 2 MB)"
            } else {
                "multipart form"
            };
            for (code, text) in [
                ("400", format!("malformed {what}")),
                ("413", format!("{what} over the size limit")),
                ("415", format!("content type other than the {what}")),
                ("422", "a field is invalid (the error names it)".to_string()),
            ] {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| RefOr::T(Response::new(text)));
            }
        }
    }
}

/// The document with [`openapi::apply`]'s rules (the generated one if it could not be round-tripped).
fn exact(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return doc;
    };
    openapi::apply(&mut value);
    match serde_json::from_value(value) {
        Ok(exact) => exact,
        Err(e) => {
            tracing::error!("the OpenAPI rules could not be applied: {e}");
            doc
        }
    }
}

/// Builds the whole application router.
pub fn router(state: AppState) -> Router {
    let (protected, protected_doc) = protected().split_for_parts();
    let (public, public_doc) = public().split_for_parts();
    let mut doc = ApiDoc::openapi();
    doc.merge(protected_doc);
    doc.merge(public_doc);
    document_protocol_errors(&mut doc);
    let doc = exact(doc);
    let protected = protected
        .route("/media/{*key}", get(api::assets::media))
        .layer(from_fn_with_state(state.clone(), auth::require_auth));
    Router::new()
        .merge(protected)
        .merge(public)
        .merge(utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/openapi.json", doc))
        .merge(ui::router(state.clone()))
        // JSON bodies keep axum's default 2 MB limit; uploads lift it and enforce per-kind limits.
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}

/// Serves until ctrl-c / SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
