//! `devatar serve`, `devatar token …`, `devatar admin set-password`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::CliError;
use crate::app::Storage;
use crate::config::Config;
use crate::web::auth::{hash_password, random_secret, secret_hash, verify_password};
use crate::web::{AppState, serve as serve_http};

/// Runs the API server, with the pipeline worker in the same process unless `no_worker`.
pub async fn serve(
    cfg: &Arc<Config>,
    bind: SocketAddr,
    data: &Path,
    no_worker: bool,
) -> Result<(), CliError> {
    let storage = Storage::open(cfg, data).await.map_err(CliError::failed)?;
    let db = &storage.db;
    if let Some(password) = cfg.admin_password.as_ref().map(|p| p.expose()) {
        let current = db.admin_password_hash().await.map_err(CliError::failed)?;
        let same = current
            .as_deref()
            .is_some_and(|h| verify_password(password, h));
        if !same {
            let hash = hash_password(password).map_err(CliError::failed)?;
            db.set_admin_password_hash(&hash)
                .await
                .map_err(CliError::failed)?;
        }
    }
    let has_password = db
        .admin_password_hash()
        .await
        .map_err(CliError::failed)?
        .is_some();
    if !bind.ip().is_loopback() && !has_password {
        return Err(CliError::input(format!(
            "refusing to listen on {bind} (not loopback) without an admin password: set DEVATAR_ADMIN_PASSWORD \
             or run `devatar admin set-password`"
        )));
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| CliError::failed(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener.local_addr().map_err(CliError::failed)?;
    eprintln!("devatar listening on http://{addr}");
    // Runs are always queued here; without --no-worker this process also claims and executes them.
    let runs = crate::worker::RunService::new(storage.clone(), cfg.clone());
    if !no_worker {
        tokio::spawn(webhook_dispatcher(cfg, &storage).run());
        tokio::spawn(runs.clone().work(
            2,
            std::time::Duration::from_secs(5),
            Arc::new(tokio::sync::Notify::new()),
        ));
    }
    let state = AppState {
        config: cfg.clone(),
        storage,
        login_limiter: Arc::default(),
        runs,
        worker_in_process: !no_worker,
    };
    serve_http(listener, state).await.map_err(CliError::failed)
}

fn webhook_dispatcher(cfg: &Config, storage: &Storage) -> crate::webhooks::Dispatcher {
    crate::webhooks::Dispatcher::new(
        storage.db.clone(),
        cfg.fetch_guard(),
        std::time::Duration::from_secs(1),
    )
}

/// `devatar worker`: claims queued runs until SIGTERM/SIGINT, then finishes or releases what it holds.
pub async fn worker(
    cfg: &Arc<Config>,
    data: &Path,
    slots: usize,
    grace: u64,
) -> Result<(), CliError> {
    crate::media::require_tools(&crate::media::REQUIRED_TOOLS).map_err(CliError::missing_tool)?;
    let storage = Storage::open(cfg, data).await.map_err(CliError::failed)?;
    let runs = crate::worker::RunService::new(storage.clone(), cfg.clone());
    tokio::spawn(webhook_dispatcher(cfg, &storage).run());
    let stop = Arc::new(tokio::sync::Notify::new());
    let signal = stop.clone();
    tokio::spawn(async move {
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            }
        };
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
        eprintln!("devatar worker: stopping (no new claims)");
        signal.notify_one();
    });
    eprintln!(
        "devatar worker {} ready ({slots} slots)",
        std::process::id()
    );
    runs.work(slots, std::time::Duration::from_secs(grace), stop)
        .await;
    eprintln!("devatar worker: stopped");
    Ok(())
}

/// `devatar migrate`: opens the database (applying migrations) and reports it.
pub async fn migrate(cfg: &Config, data: &Path) -> Result<(), CliError> {
    Storage::open(cfg, data).await.map_err(CliError::failed)?;
    // Name the engine only, never the URL (it may hold a password).
    let kind = if crate::app::database_url(cfg, data).starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!("migrations applied ({kind})");
    Ok(())
}

/// Creates an API token and prints it alone on the last line of stdout.
pub async fn token_create(cfg: &Config, data: &Path, name: &str) -> Result<(), CliError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(CliError::input("--name must be 1-100 characters"));
    }
    let storage = Storage::open(cfg, data).await.map_err(CliError::failed)?;
    let token = format!("dvt_{}", random_secret().map_err(CliError::failed)?);
    let id = storage
        .db
        .create_token(name, &secret_hash(&token))
        .await
        .map_err(CliError::failed)?;
    eprintln!("Created token {name} ({id}). It is shown once; store it now.");
    println!("{token}");
    Ok(())
}

/// Lists tokens (never their secrets).
pub async fn token_list(cfg: &Config, data: &Path) -> Result<(), CliError> {
    let storage = Storage::open(cfg, data).await.map_err(CliError::failed)?;
    for t in storage.db.list_tokens().await.map_err(CliError::failed)? {
        let state = if t.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!("{}\t{}\t{state}", t.id, t.name);
    }
    Ok(())
}

/// Revokes a token by id or name.
pub async fn token_revoke(cfg: &Config, data: &Path, which: &str) -> Result<(), CliError> {
    let storage = Storage::open(cfg, data).await.map_err(CliError::failed)?;
    if storage
        .db
        .revoke_token(which)
        .await
        .map_err(CliError::failed)?
    {
        eprintln!("Revoked {which}");
        Ok(())
    } else {
        Err(CliError::input(format!("no active token {which:?}")))
    }
}

/// Reads the new admin password from the first line of stdin and stores its argon2 hash.
pub async fn admin_set_password(cfg: &Config, data: &Path) -> Result<(), CliError> {
    eprintln!("New admin password (one line on stdin):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::failed)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        return Err(CliError::input(
            "the password must be at least 8 characters",
        ));
    }
    let hash = hash_password(password).map_err(CliError::failed)?;
    let storage = Storage::open(cfg, data).await.map_err(CliError::failed)?;
    storage
        .db
        .set_admin_password_hash(&hash)
        .await
        .map_err(CliError::failed)?;
    eprintln!("Admin password set; existing sessions were ended.");
    Ok(())
}
