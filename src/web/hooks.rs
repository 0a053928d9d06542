//! `POST /hooks/jobs/{token}`: the provider job-completion webhook, a wake-up only (see
//! [`crate::providers::hooks`]). No authentication beyond the unguessable token; the body is never read; a known
//! token answers 204 whatever the body, an unknown one 404. Kept out of the OpenAPI document: providers call it,
//! not API clients.
//!
//! [`attach`] gives a process its registry at start-up: `serve` with `DEVATAR_PUBLIC_URL` serves the route on its
//! own listener; any command with `DEVATAR_CALLBACK_LISTEN` starts a small listener serving only this route.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;

use crate::config::Config;
use crate::providers::hooks::{JobHooks, PATH_PREFIX};

/// The route for `hooks` (none when `hooks` is `None`).
pub fn router<S: Clone + Send + Sync + 'static>(hooks: Option<JobHooks>) -> Router<S> {
    let Some(hooks) = hooks else {
        return Router::new();
    };
    Router::new()
        .route(&format!("{PATH_PREFIX}{{token}}"), post(wake))
        .with_state(hooks)
}

async fn wake(State(hooks): State<JobHooks>, Path(token): Path<String>) -> StatusCode {
    if hooks.wake(&token) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// Starts a listener on `addr` serving only the webhook route; its callback base is `public_url` when set,
/// else the bound address (loopback for an unspecified address).
pub async fn listen(addr: SocketAddr, public_url: Option<&str>) -> std::io::Result<JobHooks> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let mut bound = listener.local_addr()?;
    if bound.ip().is_unspecified() {
        bound.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let base = public_url.map_or_else(|| format!("http://{bound}"), str::to_string);
    let hooks = JobHooks::new(&base).map_err(std::io::Error::other)?;
    let app: Router = router(Some(hooks.clone()));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the job webhook listener stopped: {e}");
        }
    });
    Ok(hooks)
}

/// `cfg` with its webhook registry attached: a listener when `DEVATAR_CALLBACK_LISTEN` is set, else, for a
/// process that serves HTTP itself (`serves_http`), `DEVATAR_PUBLIC_URL` pointing at it; otherwise unchanged
/// (providers are only polled).
pub async fn attach(cfg: Arc<Config>, serves_http: bool) -> std::io::Result<Arc<Config>> {
    let public = cfg.cloud.public_url.clone();
    let hooks = match (cfg.cloud.callback_listen, public) {
        (Some(addr), public) => listen(addr, public.as_deref()).await?,
        (None, Some(public)) if serves_http => {
            JobHooks::new(&public).map_err(std::io::Error::other)?
        }
        _ => return Ok(cfg),
    };
    tracing::info!("provider job webhooks go to {}", hooks.base());
    let mut with = (*cfg).clone();
    with.cloud.hooks = Some(hooks);
    Ok(Arc::new(with))
}
