//! Composition root: opens the data folder, database and media storage from configuration.

use std::path::{Path, PathBuf};

use crate::storage::db::{Db, DbError};
use crate::storage::objects::{ObjectError, ObjectStorage};

/// Opened storage for one data folder.
#[derive(Debug, Clone)]
pub struct Storage {
    /// The data folder.
    pub data_dir: PathBuf,
    /// The database (`DATABASE_URL`, or SQLite in the data folder).
    pub db: Db,
    /// Media objects.
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

/// The database URL: `DATABASE_URL` when set, else SQLite inside the data folder.
pub fn database_url(data_dir: &Path) -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => Db::sqlite_url(data_dir),
    }
}

impl Storage {
    /// Creates the data folder if needed and opens the database and the media folder.
    pub async fn open(data_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StorageError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let db = Db::connect(&database_url(data_dir)).await?;
        let objects = ObjectStorage::local(&data_dir.join("objects"))?;
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
