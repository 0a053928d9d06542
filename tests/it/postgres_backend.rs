//! The same binary and queries on PostgreSQL (`DATABASE_URL=postgres://…`).
//! Needs `DEVATAR_TEST_DATABASE_URL` (set by `.ci/run`); each test creates and drops its own database.

use crate::common;

use common::*;

/// Creates a fresh database next to the admin URL's and returns (its URL, admin URL, name).
async fn fresh_database(admin_url: &str) -> (String, String) {
    let name = format!("devatar_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(admin_url)
        .await
        .expect("connect to DEVATAR_TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    (format!("{base}/{name}"), name)
}

#[test]
fn render_and_cached_rerender_on_postgres() {
    let Ok(admin_url) = std::env::var("DEVATAR_TEST_DATABASE_URL") else {
        eprintln!(
            "DEVATAR_TEST_DATABASE_URL is not set: PostgreSQL backend not tested here (CI sets it)"
        );
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, name) = rt.block_on(fresh_database(&admin_url));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("small.toml"), SMALL_PROJECT).unwrap();
    let render = || {
        let out = command(
            tmp.path(),
            &["render", "small.toml", "--data", "data", "--json"],
        )
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = render();
    assert_eq!(first["providerCalls"], 11);
    let second = render();
    assert_eq!(second["providerCalls"], 0);
    assert!(
        !tmp.path().join("data/devatar.db").exists(),
        "the SQLite file must not be used when DATABASE_URL is set"
    );
    rt.block_on(async {
        use sqlx::Row;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let runs: i64 = sqlx::query("SELECT COUNT(*) AS n FROM runs WHERE status = 'succeeded'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
        assert_eq!(runs, 2);
        pool.close().await;
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&admin)
        .await
        .unwrap();
    });
}
