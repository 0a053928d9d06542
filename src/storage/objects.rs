//! Media objects behind `object_store`, under server-generated, content-addressed keys.
//!
//! The backend is the local media folder (default) or an S3 bucket (Cloudflare R2 or any S3-compatible
//! service, see [`crate::storage::s3`]); [`MediaConfig::from_env`] picks it and the rest of the app only
//! sees [`ObjectStorage`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions,
    WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::storage::s3::{self, ConfigError, MAX_PRESIGN_TTL, Presigner, S3Config};

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
    /// The media storage settings are incomplete or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A downloaded object does not match its size or its content hash.
    #[error("object {key} is damaged: {reason}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What did not match.
        reason: String,
    },
    /// A file changed while it was being stored.
    #[error("file {0} changed while it was being uploaded")]
    Changed(PathBuf),
    /// A presigned URL lifetime outside what SigV4 allows.
    #[error("presigned URL lifetime of {0:?} is outside 1 s to 7 days")]
    BadExpiry(Duration),
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

/// Where media live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaBackend {
    /// `<data>/objects` on this machine.
    Local,
    /// An S3 bucket (Cloudflare R2 or generic S3).
    S3(S3Config),
}

/// Media storage settings, normally from the environment ([`MediaConfig::from_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Local folder or S3 bucket.
    pub backend: MediaBackend,
    /// Lifetime of presigned URLs handed to providers (`DEVATAR_PRESIGN_TTL_SECS`, default 6 h).
    pub presign_ttl: Duration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            backend: MediaBackend::Local,
            presign_ttl: s3::DEFAULT_PRESIGN_TTL,
        }
    }
}

impl MediaConfig {
    /// Reads the variables through `lookup` (a name → its value; see [`crate::config`]): `R2_*` selects
    /// Cloudflare R2, `DEVATAR_S3_*` a generic S3 bucket, neither the local folder. An incomplete set is an
    /// error naming the missing variables.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let presign_ttl = s3::presign_ttl(lookup)?;
        let backend = match S3Config::from_lookup(lookup)? {
            Some(config) => MediaBackend::S3(config),
            None => MediaBackend::Local,
        };
        Ok(Self {
            backend,
            presign_ttl,
        })
    }
}

/// Media storage: a local folder (default) or any `object_store` backend.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// Set for S3: signs presigned URLs.
    signer: Option<Arc<Presigner>>,
    /// Public base URL of the bucket, when it has one.
    public_base: Option<String>,
    /// Set for the local folder backend: objects are read in place.
    local_root: Option<PathBuf>,
    /// Where remote objects are downloaded for ffmpeg.
    cache_dir: PathBuf,
    /// Default lifetime of presigned URLs.
    presign_ttl: Duration,
    /// Content types are sent with uploads (object stores that support them).
    send_content_type: bool,
    /// For logs: "local folder", "S3 bucket …".
    description: String,
}

const CHUNK: usize = 1 << 20;

/// Multipart part size for uploads; files up to this size go up in one `PUT`.
pub const PART_SIZE: usize = 8 << 20;

/// Parts uploaded concurrently by one multipart upload.
const PARTS_IN_FLIGHT: usize = 3;

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
    // 16 leaves room for `safetensors` (11), the longest extension devatar stores.
    !ext.is_empty() && ext.len() <= 16 && ext.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Checks a key has the shape we generate (`media/…`, no `..`, plain characters).
fn check_key(key: &str) -> Result<(), ObjectError> {
    let ok = key.starts_with("media/")
        && !key.contains("..")
        && !key.contains("//")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(ObjectError::BadKey(key.into()))
    }
}

/// The SHA-256 a content-addressed key (`media/ab/<sha256>.<ext>`) promises, if it is one.
fn key_sha256(key: &str) -> Option<&str> {
    let mut parts = key.split('/');
    let (Some("media"), Some(prefix), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let sha = name.split_once('.').map_or(name, |(stem, _)| stem);
    (sha.len() == 64 && sha.starts_with(prefix) && sha.chars().all(|c| c.is_ascii_hexdigit()))
        .then_some(sha)
}

fn content_key(sha256: &str, ext: &str) -> String {
    format!("media/{}/{}.{ext}", &sha256[..2], sha256)
}

/// The `Content-Type` stored with an object of this extension.
pub fn content_type(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "vtt" => "text/vtt",
        "srt" => "application/x-subrip",
        "json" => "application/json",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

impl ObjectStorage {
    /// Opens the configured backend for a data folder: `<data>/objects` for the local folder, the bucket
    /// otherwise (with downloads cached in `<data>/media-cache`).
    pub fn open(config: &MediaConfig, data_dir: &Path) -> Result<Self, ObjectError> {
        let storage = match &config.backend {
            MediaBackend::Local => Self::local(&data_dir.join("objects"))?,
            MediaBackend::S3(s3) => Self::s3(s3, data_dir.join("media-cache"))?,
        };
        Ok(storage.with_presign_ttl(config.presign_ttl))
    }

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
            signer: None,
            public_base: None,
            cache_dir: root.join(".cache"),
            description: format!("local folder {}", root.display()),
            local_root: Some(root),
            presign_ttl: s3::DEFAULT_PRESIGN_TTL,
            send_content_type: false,
        })
    }

    /// Media in an S3 bucket (R2 or generic); objects are downloaded to `cache_dir` when a tool needs a file.
    pub fn s3(config: &S3Config, cache_dir: PathBuf) -> Result<Self, ObjectError> {
        Ok(Self {
            store: Arc::new(config.build()?),
            signer: Some(Arc::new(config.presigner()?)),
            public_base: config.public_url.clone(),
            local_root: None,
            cache_dir,
            presign_ttl: s3::DEFAULT_PRESIGN_TTL,
            send_content_type: true,
            description: config.describe(),
        })
    }

    /// Media in any object store; remote objects are cached under `cache_dir` when a tool needs a file.
    /// Such a store has no presigned URLs.
    pub fn remote(store: Arc<dyn ObjectStore>, cache_dir: PathBuf) -> Self {
        Self {
            description: format!("object store {store}"),
            store,
            signer: None,
            public_base: None,
            local_root: None,
            cache_dir,
            presign_ttl: s3::DEFAULT_PRESIGN_TTL,
            send_content_type: false,
        }
    }

    /// Sets the lifetime [`ObjectStorage::presign_ttl`] reports.
    pub fn with_presign_ttl(mut self, ttl: Duration) -> Self {
        self.presign_ttl = ttl;
        self
    }

    /// The configured lifetime for presigned URLs given to providers (`DEVATAR_PRESIGN_TTL_SECS`).
    pub fn presign_ttl(&self) -> Duration {
        self.presign_ttl
    }

    /// Which backend this is, for logs and diagnostics (never contains credentials).
    pub fn describe(&self) -> &str {
        &self.description
    }

    fn attributes(&self, ext: &str) -> Attributes {
        let mut attributes = Attributes::new();
        if self.send_content_type {
            attributes.insert(Attribute::ContentType, content_type(ext).into());
        }
        attributes
    }

    /// True when the object exists; `Err` when the store could not answer.
    pub async fn try_exists(&self, key: &str) -> Result<bool, ObjectError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// True when the object exists (a `HEAD` on S3). A store error counts as absent and is logged; use
    /// [`ObjectStorage::try_exists`] to tell them apart.
    pub async fn exists(&self, key: &str) -> bool {
        match self.try_exists(key).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "cannot check a media object");
                false
            }
        }
    }

    /// Stores a file under its content hash (no-op when already present) and returns the object. Files up to
    /// [`PART_SIZE`] go up in one request, larger ones as a streamed multipart upload of [`PART_SIZE`] parts.
    pub async fn put_file(&self, path: &Path, ext: &str) -> Result<StoredObject, ObjectError> {
        if !valid_ext(ext) {
            return Err(ObjectError::BadKey(ext.into()));
        }
        let io = |source| ObjectError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = tokio::fs::metadata(path).await.map_err(io)?.len();
        if len <= PART_SIZE as u64 {
            let bytes = tokio::fs::read(path).await.map_err(io)?;
            crate::failpoint::hit(crate::failpoint::MID_UPLOAD);
            return self.put_bytes(bytes, ext).await;
        }
        let (sha256, size) = hash_file(path).await?;
        let key = content_key(&sha256, ext);
        let location = ObjectPath::from(key.as_str());
        if !self.try_exists(&key).await? {
            let opts = PutMultipartOptions {
                attributes: self.attributes(ext),
                ..Default::default()
            };
            let upload = self.store.put_multipart_opts(&location, opts).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut hasher = Sha256::new();
            let streamed = async {
                let mut f = tokio::fs::File::open(path).await.map_err(io)?;
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = f.read(&mut buf).await.map_err(io)?;
                    if n == 0 {
                        return Ok::<_, ObjectError>(());
                    }
                    hasher.update(&buf[..n]);
                    writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    writer.write(&buf[..n]);
                    crate::failpoint::hit(crate::failpoint::MID_UPLOAD);
                }
            }
            .await;
            // Nothing is visible before `finish`: abort on any error, including a file that changed since
            // it was hashed (its content would not match the key).
            let failure = match streamed {
                Err(e) => Some(e),
                Ok(()) if hex::encode(hasher.finalize()) != sha256 => {
                    Some(ObjectError::Changed(path.to_path_buf()))
                }
                Ok(()) => None,
            };
            if let Some(e) = failure {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key = %key, error = %abort, "cannot abort a multipart upload");
                }
                return Err(e);
            }
            writer.finish().await?;
        }
        Ok(StoredObject { key, sha256, size })
    }

    /// Stores bytes (small files, captions, metadata) under their content hash in one request.
    pub async fn put_bytes(&self, bytes: Vec<u8>, ext: &str) -> Result<StoredObject, ObjectError> {
        if !valid_ext(ext) {
            return Err(ObjectError::BadKey(ext.into()));
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let key = content_key(&sha256, ext);
        let size = bytes.len() as u64;
        if !self.try_exists(&key).await? {
            let opts = PutOptions {
                attributes: self.attributes(ext),
                ..Default::default()
            };
            self.store
                .put_opts(&ObjectPath::from(key.as_str()), bytes.into(), opts)
                .await?;
        }
        Ok(StoredObject { key, sha256, size })
    }

    /// A local file holding the object: the object itself for the local folder; for a bucket, a verified
    /// download in the cache folder, reused while it is there (objects never change under their key).
    pub async fn local_path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        check_key(key)?;
        if let Some(root) = &self.local_root {
            return Ok(root.join(key));
        }
        let dest = self.cache_dir.join(key);
        // Only complete downloads are ever renamed into place, so a file here is whole.
        if tokio::fs::metadata(&dest).await.is_ok_and(|m| m.is_file()) {
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

    /// Copies the object to `dest`, streaming, replacing `dest` atomically. The size, and for content-addressed
    /// keys the SHA-256, are checked before `dest` appears.
    pub async fn download(&self, key: &str, dest: &Path) -> Result<(), ObjectError> {
        let io = |source| ObjectError::Io {
            path: dest.to_path_buf(),
            source,
        };
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
        let result = self.download_to(key, &tmp).await;
        let result = match result {
            Ok(()) => tokio::fs::rename(&tmp, dest).await.map_err(io),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn download_to(&self, key: &str, tmp: &Path) -> Result<(), ObjectError> {
        use futures::StreamExt;
        let io = |source| ObjectError::Io {
            path: tmp.to_path_buf(),
            source,
        };
        let got = self.store.get(&ObjectPath::from(key)).await?;
        let expected = got.meta.size;
        let file = tokio::fs::File::create(tmp).await.map_err(io)?;
        // Gathered before each write: a write of a `tokio::fs::File` is a trip to the blocking pool.
        let mut file = tokio::io::BufWriter::with_capacity(CHUNK, file);
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        if written != expected {
            return Err(ObjectError::Corrupt {
                key: key.into(),
                reason: format!("expected {expected} bytes, received {written}"),
            });
        }
        if let Some(sha) = key_sha256(key)
            && hex::encode(hasher.finalize()) != sha.to_ascii_lowercase()
        {
            return Err(ObjectError::Corrupt {
                key: key.into(),
                reason: "content does not match the SHA-256 in its key".into(),
            });
        }
        Ok(())
    }

    /// Whether this store hands out presigned URLs (S3), i.e. [`ObjectStorage::presigned_get`] returns some.
    pub fn presigns(&self) -> bool {
        self.signer.is_some()
    }

    /// A time-limited `GET` URL for the object that anyone holding it can fetch (providers fetching their
    /// inputs): `None` for the local folder, which has no such URLs. Signed locally (no request to the
    /// store); `expires` must be 1 s to 7 days, normally [`ObjectStorage::presign_ttl`].
    ///
    /// The URL is a bearer credential: never log it, never store it (store the key and sign again).
    pub fn presigned_get(
        &self,
        key: &str,
        expires: Duration,
    ) -> Result<Option<String>, ObjectError> {
        self.presigned_get_at(key, expires, SystemTime::now())
    }

    /// Like [`ObjectStorage::presigned_get`], signed as at `signed_at` (valid from then for `expires`): the
    /// same arguments give the same URL, so a request repeated after a restart can carry identical URLs.
    pub fn presigned_get_at(
        &self,
        key: &str,
        expires: Duration,
        signed_at: SystemTime,
    ) -> Result<Option<String>, ObjectError> {
        check_key(key)?;
        if expires < Duration::from_secs(1) || expires > MAX_PRESIGN_TTL {
            return Err(ObjectError::BadExpiry(expires));
        }
        Ok(self
            .signer
            .as_ref()
            .map(|signer| signer.get_url(key, expires, signed_at)))
    }

    /// The object's permanent public URL (`R2_PUBLIC_URL/<key>`) when the bucket has a public base URL.
    pub fn public_url(&self, key: &str) -> Result<Option<String>, ObjectError> {
        check_key(key)?;
        Ok(self
            .public_base
            .as_ref()
            .map(|base| format!("{base}/{key}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_addressed_keys_are_recognised() {
        let sha = "ab".repeat(32);
        assert_eq!(
            key_sha256(&format!("media/ab/{sha}.mp4")),
            Some(sha.as_str())
        );
        assert_eq!(key_sha256(&format!("media/cd/{sha}.mp4")), None);
        assert_eq!(key_sha256("media/ab/short.mp4"), None);
        assert_eq!(key_sha256(&format!("media/ab/x/{sha}.mp4")), None);
        assert!(check_key(&format!("media/ab/{sha}.mp4")).is_ok());
        for bad in ["other/x.mp4", "media/../x", "media//x", "media/a b.mp4"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn local_folder_has_no_presigned_or_public_urls() {
        let dir = tempfile::tempdir().unwrap();
        let storage = ObjectStorage::open(&MediaConfig::default(), dir.path()).unwrap();
        let stored = storage.put_bytes(b"hello".to_vec(), "txt").await.unwrap();
        assert!(dir.path().join("objects").join(&stored.key).is_file());
        let ttl = storage.presign_ttl();
        assert_eq!(storage.presigned_get(&stored.key, ttl).unwrap(), None);
        assert_eq!(storage.public_url(&stored.key).unwrap(), None);
        assert!(matches!(
            storage.presigned_get(&stored.key, Duration::ZERO),
            Err(ObjectError::BadExpiry(_))
        ));
    }
}
