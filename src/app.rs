//! Composition root: opens the data folder, database and media storage from configuration.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::storage::db::{Db, DbError};
use crate::storage::objects::{ObjectError, ObjectStorage};

/// Opened storage for one data folder.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The data folder.
    pub data_dir: PathBuf,
    /// The database (`DATABASE_URL`, or SQLite in the data folder).
    pub db: Db,
    /// Media objects: the local folder, or the S3 / R2 bucket the environment names.
    pub objects: ObjectStorage,
}

/// Opening storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data folder could not be created.
    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Database error.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Media storage error.
    #[error(transparent)]
    Objects(#[from] ObjectError),
}

/// The database URL: `DATABASE_URL` when configured, else SQLite inside the data folder.
pub fn database_url(config: &Config, data_dir: &Path) -> String {
    match &config.database_url {
        Some(url) => url.clone(),
        None => Db::sqlite_url(data_dir),
    }
}

impl Storage {
    /// Creates the data folder if needed and opens the database and the media storage the configuration
    /// chooses (`DATABASE_URL`; `R2_*` or `DEVATAR_S3_*`, else `<data>/objects`).
    pub async fn open(config: &Config, data_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StorageError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let objects = ObjectStorage::open(&config.media, data_dir)?;
        tracing::debug!(media = objects.describe(), "media storage");
        let db = Db::connect(&database_url(config, data_dir)).await?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            db,
            objects,
        })
    }

    /// Where steps write temporary files.
    pub fn work_dir(&self) -> PathBuf {
        self.data_dir.join("work")
    }
}
