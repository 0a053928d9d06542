//! `TestApp`: the real router served in-process on `127.0.0.1:0` with an injected [`Config`], its own data
//! folder (and, under `DEVATAR_TEST_BACKEND=postgres`, its own PostgreSQL database), an optional in-process
//! worker and webhook dispatcher, an admin password, bearer tokens made through the library, an HTTP client,
//! database inspection and waits on conditions instead of fixed sleeps. Everything stops when it is dropped.
//!
//! The real `devatar serve` process stays covered by a few tests that start it (its listening line, its
//! refusal to listen on a public address without a password).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use devatar::app::Storage;
use devatar::config::Config;
use devatar::web::AppState;
use devatar::worker::RunService;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::postgres_url_for;

/// The admin password every `TestApp` is started with (unless the builder says otherwise).
pub const PASSWORD: &str = "correct-horse-battery";

/// How a [`TestApp`] is started.
pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    worker: bool,
    password: Option<String>,
}

impl TestAppBuilder {
    /// One setting, by README's environment variable name (e.g. `DEVATAR_ALLOW_PRIVATE_URLS`, `1`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Several settings at once.
    pub fn envs(mut self, pairs: &[(&str, &str)]) -> Self {
        for (k, v) in pairs {
            self.env.push(((*k).into(), (*v).into()));
        }
        self
    }

    /// Without the in-process worker (as `devatar serve --no-worker`): runs stay queued.
    pub fn no_worker(mut self) -> Self {
        self.worker = false;
        self
    }

    /// Another admin password (`None`: no password is set).
    pub fn password(mut self, password: Option<&str>) -> Self {
        self.password = password.map(str::to_string);
        self
    }

    /// Opens storage, stores the admin password's hash and serves the router (plus the worker and the webhook
    /// dispatcher unless `no_worker`), as `devatar serve` does.
    pub async fn start(self) -> TestApp {
        let data = tempfile::tempdir().unwrap();
        let db_url = postgres_url_for(data.path());
        let mut pairs: Vec<(String, String)> =
            vec![("DEVATAR_PIPER_DIR".into(), super::NO_PIPER.into())];
        if let Some(p) = &self.password {
            pairs.push(("DEVATAR_ADMIN_PASSWORD".into(), p.clone()));
        }
        if let Some(url) = &db_url {
            pairs.push(("DATABASE_URL".into(), url.clone()));
        }
        pairs.extend(self.env);
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let config = Arc::new(Config::from_pairs(&borrowed).expect("a valid test configuration"));
        let storage = Storage::open(&config, data.path())
            .await
            .expect("storage opens");
        if let Some(p) = &self.password {
            let hash = devatar::web::auth::hash_password(p).unwrap();
            storage.db.set_admin_password_hash(&hash).await.unwrap();
        }
        let runs = RunService::new(storage.clone(), config.clone());
        let stop = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        if self.worker {
            let dispatcher = devatar::webhooks::Dispatcher::new(
                storage.db.clone(),
                config.fetch_guard(),
                Duration::from_secs(1),
            );
            tasks.push(tokio::spawn(dispatcher.run()));
            tasks.push(tokio::spawn(runs.clone().work(
                2,
                Duration::from_secs(5),
                stop.clone(),
            )));
        }
        let state = AppState {
            config: config.clone(),
            storage: storage.clone(),
            login_limiter: Arc::default(),
            runs: runs.clone(),
            worker_in_process: self.worker,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = devatar::web::router(state).into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        let database_url =
            db_url.unwrap_or_else(|| devatar::app::database_url(&config, data.path()));
        TestApp {
            base: format!("http://{addr}"),
            data,
            config,
            storage,
            runs,
            http: devatar::net::client_builder().build().unwrap(),
            database_url,
            stop,
            tasks,
        }
    }
}

/// A running in-process server; stopped (server, worker, dispatcher) when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data folder (deleted on drop).
    pub data: tempfile::TempDir,
    /// The injected configuration.
    pub config: Arc<Config>,
    /// Database and media of the server.
    pub storage: Storage,
    /// The run service the server queues runs on.
    pub runs: Arc<RunService>,
    /// An HTTP client (from `devatar::net::client_builder`, which installs the TLS crypto provider).
    pub http: reqwest::Client,
    /// The database URL the server uses (for [`TestApp::pool`]).
    pub database_url: String,
    stop: Arc<tokio::sync::Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.notify_one();
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl TestApp {
    /// Settings for a server: add environment pairs, drop the worker, change the password, then `start()`.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: Vec::new(),
            worker: true,
            password: Some(PASSWORD.into()),
        }
    }

    /// A server with the in-process worker, the admin password [`PASSWORD`] and nothing else configured.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new API token named `name`, created through the library (as `devatar token create`).
    pub async fn token_named(&self, name: &str) -> String {
        use devatar::web::auth::{random_secret, secret_hash};
        let token = format!("dvt_{}", random_secret().unwrap());
        self.storage
            .db
            .create_token(name, &secret_hash(&token))
            .await
            .unwrap();
        token
    }

    /// A new API token named `tests`.
    pub async fn token(&self) -> String {
        self.token_named("tests").await
    }

    /// Revokes a token by id or name (as `devatar token revoke`); true when one was revoked.
    pub async fn revoke(&self, which: &str) -> bool {
        self.storage.db.revoke_token(which).await.unwrap()
    }

    /// A connection pool on the server's database, for inspecting rows.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url).await.unwrap()
    }

    /// The statuses of every run stored.
    pub async fn run_statuses(&self) -> Vec<String> {
        use sqlx::Row;
        let pool = self.pool().await;
        let rows = sqlx::query("SELECT status FROM runs")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows.iter().map(|r| r.get::<String, _>("status")).collect()
    }

    /// `GET path` with a bearer token, as JSON.
    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET path` with a bearer token as a Server-Sent Events stream read to its end (at most two minutes):
    /// each event's name and JSON data, in order.
    pub async fn events(&self, token: &str, path: &str) -> Vec<(String, Value)> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/event-stream"), "{path}: {kind}");
        let body = tokio::time::timeout(Duration::from_secs(120), response.text())
            .await
            .expect("the stream ends")
            .unwrap();
        body.split("\n\n")
            .filter_map(|block| {
                let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
                let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
                let data = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
                Some((name.to_string(), data))
            })
            .collect()
    }

    /// Waits until run `run_id` is neither queued nor running (at most two minutes) and returns it.
    pub async fn wait_for_run(&self, token: &str, run_id: &str) -> Value {
        let path = format!("/api/runs/{run_id}");
        wait_until(
            &format!("run {run_id} to finish"),
            Duration::from_secs(120),
            || async {
                let run = self.get_json(token, &path).await;
                (run["status"] != "running" && run["status"] != "queued").then_some(run)
            },
        )
        .await
    }
}

/// Polls `check` every 50 ms until it returns `Some`, failing the test after `timeout` (naming `what`).
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
