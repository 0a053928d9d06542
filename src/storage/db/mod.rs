//! The database: one `sqlx::AnyPool` over SQLite (default) or PostgreSQL, migrations, and every query — one
//! module per table (assets, auth, consents, identities, identity_photos, jobs, logs, projects, runs + queue, scenes,
//! slots, steps + cache, training, webhooks) plus LISTEN/NOTIFY (notify.rs).
//!
//! Queries are portable SQL with `$n` placeholders, checked at run time, so one code path serves both engines.

mod assets;
mod auth;
mod consents;
mod identities;
mod identity_photos;
mod jobs;
mod log_batch;
mod logs;
mod notify;
mod projects;
mod queue;
mod runs;
mod scenes;
mod slots;
mod steps;
mod training;
mod webhooks;

use std::path::Path;
use std::str::FromStr;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use assets::{AssetInput, AssetRecord};
pub use auth::TokenInfo;
pub use consents::ConsentRecord;
pub use identities::{Conflict, IdentityRecord};
pub use identity_photos::{FaceAnalysis, FaceFacts, NewPhoto, PhotoRecord};
pub use log_batch::LogBatcher;
pub use logs::{LogFilter, LogInput, LogRow};
pub use notify::RUNS_CHANNEL;
pub use projects::{ProjectRecord, UiCounts};
pub use queue::ClaimedRun;
pub use runs::{RunRow, RunSummary};
pub use scenes::{SceneInput, SceneOutput, SceneRecord, SceneSummary};
pub use slots::SLOTS_CHANNEL;
pub use steps::{SceneStep, StepRow};
pub use training::{TrainingEnd, TrainingRow};
pub use webhooks::{DeliveryStatus, PendingDelivery, Webhook};

/// An optional float as a bind value that keeps one parameter type whether it is null or not.
///
/// sqlx 0.9's `Any` driver sends a null `f64` as a 4-byte float; a statement first prepared with that null then
/// rejects a real 8-byte value on PostgreSQL ("incorrect binary data format"). Text has no such mismatch, and
/// every query casts it back (`CAST($n AS DOUBLE PRECISION)`); Rust prints floats so they parse back exactly.
/// A typed id read from a text column.
pub(crate) fn id_col<T: From<String>>(r: &sqlx::any::AnyRow, column: &str) -> Result<T, DbError> {
    use sqlx::Row;
    Ok(T::from(r.try_get::<String, _>(column)?))
}

/// An optional typed id read from a nullable text column.
pub(crate) fn opt_id_col<T: From<String>>(
    r: &sqlx::any::AnyRow,
    column: &str,
) -> Result<Option<T>, DbError> {
    use sqlx::Row;
    Ok(r.try_get::<Option<String>, _>(column)?.map(T::from))
}

/// A stored scene reference as its column value: `""` (the column is NOT NULL) stands for "the whole project".
pub(crate) fn scene_column(scene: Option<&crate::domain::SceneId>) -> &str {
    scene.map_or("", |s| s.as_str())
}

pub(crate) fn nullable_f64(v: Option<f64>) -> Option<String> {
    v.map(|x| x.to_string())
}

/// A database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The driver reported an error.
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    /// A write collided with a unique constraint (the database's own check, so concurrent writers agree).
    #[error("unique constraint violated: {constraint}")]
    Unique {
        /// The constraint's name (PostgreSQL, e.g. `identities_name_key`) or its columns (SQLite, e.g.
        /// `identities.name`).
        constraint: String,
    },
    /// A write named a row of another table that does not exist (e.g. a headshot asset deleted meanwhile).
    #[error("foreign key constraint violated: {detail}")]
    ForeignKey {
        /// The constraint's name (PostgreSQL) or the driver's message (SQLite names no column).
        detail: String,
    },
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {0}")]
    Corrupt(String),
}

/// The connection pool plus which engine is behind it.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    /// Where the render's frequent small writes go (step and cache rows, logs, the job ledger, provider slots):
    /// on SQLite one connection of its own, so they queue in process instead of meeting each other at the
    /// database's single write lock (a writer that finds it taken sleeps in SQLite's busy handler, 1 ms growing
    /// to 100 ms, holding its pooled connection; with a thousand scenes in flight the 4-connection pool was
    /// mostly asleep). On PostgreSQL the same pool.
    writes: AnyPool,
    is_sqlite: bool,
    /// PostgreSQL only: where the notification listener connects.
    listen_url: Option<notify::ListenUrl>,
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Self::Unique {
                constraint: d
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| d.message().to_string()),
            },
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => Self::ForeignKey {
                detail: d
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| d.message().to_string()),
            },
            _ => Self::Sqlx(e),
        }
    }
}

impl Db {
    /// Begins a transaction that will write. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// a writer that must wait waits on the busy timeout instead of failing with "database is locked" when its
    /// read lock cannot be upgraded; on PostgreSQL it is a plain `BEGIN`.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        if self.is_sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            self.pool.begin().await
        }
    }
}

impl DbError {
    /// True when this is a unique-constraint collision on `column` (e.g. `trigger_word`).
    pub fn is_unique_on(&self, column: &str) -> bool {
        matches!(self, Self::Unique { constraint } if constraint.contains(column))
    }

    /// True when a write referenced a row that does not exist.
    pub fn is_foreign_key(&self) -> bool {
        matches!(self, Self::ForeignKey { .. })
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Options of a SQLite pool of `max` connections, each set up for WAL.
fn sqlite_pool(max: u32) -> AnyPoolOptions {
    // `synchronous=NORMAL` (WAL): a commit is an append to the WAL, synced at checkpoints instead of at every
    // commit. Still atomic and durable across a killed process (the crash tests' kill -9); only an OS crash or
    // power cut may lose the last commits. With FULL, each of the ~10 writes of a step waited for an fsync, and a
    // 1,000-scene render queued behind them (slow pool acquires).
    AnyPoolOptions::new()
        .max_connections(max)
        // A connection to a local file does not go stale as a network one can: no ping (a round trip to the
        // connection's thread) before every use.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;")
                    .await?;
                Ok(())
            })
        })
}

impl Db {
    /// The SQLite URL of the embedded database in a data folder.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("devatar.db").display()
        )
    }

    /// Connects (creating a SQLite file if needed) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        let pool = if is_sqlite {
            // Validate the URL with the SQLite driver's own parser before handing it to Any.
            sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
            sqlite_pool(4).connect(url).await?
        } else {
            AnyPoolOptions::new()
                .max_connections(8)
                .connect(url)
                .await?
        };
        MIGRATOR.run(&pool).await?;
        let writes = if is_sqlite {
            sqlite_pool(1).connect(url).await?
        } else {
            pool.clone()
        };
        let listen_url = (!is_sqlite).then(|| notify::ListenUrl(url.into()));
        Ok(Self {
            pool,
            writes,
            is_sqlite,
            listen_url,
        })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// True for the embedded SQLite engine.
    pub fn is_sqlite(&self) -> bool {
        self.is_sqlite
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.writes.close().await;
        self.pool.close().await;
    }
}

/// Converts a 0/1 integer column to bool.
fn flag(v: i64) -> bool {
    v != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write naming a row that does not exist is `DbError::ForeignKey` (which the API answers with a 422).
    #[tokio::test]
    async fn a_missing_referenced_row_is_a_foreign_key_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&Db::sqlite_url(dir.path())).await.unwrap();
        let identity = crate::domain::Identity::new("fk", "FK", "TOK_FK");
        let err = db
            .insert_identity(&identity, Some(&"no-such-asset".into()))
            .await
            .unwrap_err();
        assert!(err.is_foreign_key(), "{err}");
    }
}
