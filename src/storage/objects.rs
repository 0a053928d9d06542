//! Media objects behind `object_store`, under server-generated, content-addressed keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Object storage failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The store reported an error.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file could not be read or written.
    #[error("file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A key that we did not generate.
    #[error("invalid object key {0:?}")]
    BadKey(String),
}

/// A stored object: its key, content hash and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// `media/ab/<sha256>.<ext>`.
    pub key: String,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Media storage: a local folder (default) or any `object_store` backend.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// Set for the local folder backend: objects are read in place.
    local_root: Option<PathBuf>,
    /// Where remote objects are downloaded for ffmpeg.
    cache_dir: PathBuf,
}

const CHUNK: usize = 1 << 20;

/// Streams a file through SHA-256; returns (hex digest, size).
pub async fn hash_file(path: &Path) -> Result<(String, u64), ObjectError> {
    let io = |source| ObjectError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

fn valid_ext(ext: &str) -> bool {
    !ext.is_empty() && ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric())
}

impl ObjectStorage {
    /// Media in a local folder (created if missing).
    pub fn local(root: &Path) -> Result<Self, ObjectError> {
        std::fs::create_dir_all(root).map_err(|source| ObjectError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let root = root.canonicalize().map_err(|source| ObjectError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self {
            store: Arc::new(store),
            cache_dir: root.join(".cache"),
            local_root: Some(root),
        })
    }

    /// Media in any object store; remote objects are cached under `cache_dir` when a tool needs a file.
    pub fn remote(store: Arc<dyn ObjectStore>, cache_dir: PathBuf) -> Self {
        Self {
            store,
            local_root: None,
            cache_dir,
        }
    }

    /// Stores a file under its content hash (no-op when already present) and returns the object.
    pub async fn put_file(&self, path: &Path, ext: &str) -> Result<StoredObject, ObjectError> {
        if !valid_ext(ext) {
            return Err(ObjectError::BadKey(ext.into()));
        }
        let (sha256, size) = hash_file(path).await?;
        let key = format!("media/{}/{}.{ext}", &sha256[..2], sha256);
        let location = ObjectPath::from(key.as_str());
        if self.store.head(&location).await.is_err() {
            let io = |source| ObjectError::Io {
                path: path.to_path_buf(),
                source,
            };
            let mut f = tokio::fs::File::open(path).await.map_err(io)?;
            let mut upload = WriteMultipart::new(self.store.put_multipart(&location).await?);
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = f.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                upload.wait_for_capacity(4).await?;
                upload.write(&buf[..n]);
            }
            upload.finish().await?;
        }
        Ok(StoredObject { key, sha256, size })
    }

    /// Stores bytes (small metadata files such as captions) under their content hash.
    pub async fn put_bytes(&self, bytes: Vec<u8>, ext: &str) -> Result<StoredObject, ObjectError> {
        if !valid_ext(ext) {
            return Err(ObjectError::BadKey(ext.into()));
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = format!("media/{}/{}.{ext}", &sha256[..2], sha256);
        let location = ObjectPath::from(key.as_str());
        let size = bytes.len() as u64;
        if self.store.head(&location).await.is_err() {
            self.store.put(&location, bytes.into()).await?;
        }
        Ok(StoredObject { key, sha256, size })
    }

    /// True when the object exists.
    pub async fn exists(&self, key: &str) -> bool {
        self.store.head(&ObjectPath::from(key)).await.is_ok()
    }

    /// A local file holding the object (the object itself for the local backend, a cached download otherwise).
    pub async fn local_path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        if !key.starts_with("media/") || key.contains("..") {
            return Err(ObjectError::BadKey(key.into()));
        }
        if let Some(root) = &self.local_root {
            return Ok(root.join(key));
        }
        let dest = self.cache_dir.join(key);
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            return Ok(dest);
        }
        self.download(key, &dest).await?;
        Ok(dest)
    }

    /// Reads a (small) object whole.
    pub async fn read_bytes(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        Ok(self
            .store
            .get(&ObjectPath::from(key))
            .await?
            .bytes()
            .await?
            .to_vec())
    }

    /// Copies the object to `dest`, streaming, replacing `dest` atomically.
    pub async fn download(&self, key: &str, dest: &Path) -> Result<(), ObjectError> {
        use futures::StreamExt;
        let io = |source| ObjectError::Io {
            path: dest.to_path_buf(),
            source,
        };
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let tmp = dest.with_extension(format!("part-{}", std::process::id()));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut stream = self.store.get(&ObjectPath::from(key)).await?.into_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&tmp, dest).await.map_err(io)
    }
}
