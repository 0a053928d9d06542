//! An S3-compatible server (s3s-fs over a temporary folder) on a loopback port, and the environment that
//! points a `devatar` process at it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// The bucket every test uses.
pub const BUCKET: &str = "devatar-media";
const ACCESS_KEY: &str = "test-access-key-id";
const SECRET_KEY: &str = "test-secret-value-never-printed";

/// A running server; its files live as long as it does.
pub struct S3 {
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl S3 {
    /// Starts a server with an empty bucket.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let s3 =
            axum::error_handling::HandleError::new(builder.build(), |_: s3s::HttpError| async {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            });
        let app = axum::Router::new().fallback_service(s3);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, dir }
    }

    /// Points `cmd` at the bucket (generic S3 variables, path style, plain HTTP).
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("DEVATAR_S3_BUCKET", BUCKET)
            .env("DEVATAR_S3_ENDPOINT", format!("http://{}", self.addr))
            .env("DEVATAR_S3_ACCESS_KEY_ID", ACCESS_KEY)
            .env("DEVATAR_S3_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("DEVATAR_S3_ALLOW_HTTP", "1")
            .env("DEVATAR_S3_PATH_STYLE", "1")
    }

    /// The same settings as configuration pairs (for `TestApp::builder().envs`).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DEVATAR_S3_BUCKET", BUCKET.into()),
            ("DEVATAR_S3_ENDPOINT", format!("http://{}", self.addr)),
            ("DEVATAR_S3_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("DEVATAR_S3_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("DEVATAR_S3_ALLOW_HTTP", "1".into()),
            ("DEVATAR_S3_PATH_STYLE", "1".into()),
        ]
    }

    /// Every object file in the bucket.
    pub fn objects(&self) -> Vec<PathBuf> {
        super::files_under(&self.dir.path().join(BUCKET))
    }
}
