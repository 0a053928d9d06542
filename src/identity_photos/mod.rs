//! An identity's reference photos: one collection per identity (its headshot among them), used by the CLI
//! (`devatar identity photos`), the API, the identity page and the project-file importer.
//!
//! A photo is checked (PNG or JPEG by its content, at most [`MAX_BYTES`] and [`MAX_PIXELS`]), stored under its
//! content hash, added once per identity (the same content again is the same photo) and analysed by the face
//! engine off the async runtime: face count, the largest face's box, sharpness and pose, and the embedding when
//! it shows exactly one face. Without the face models a photo is stored and listed as pending (the note says how
//! to install them) and analysed the next time the collection is listed with the models present. The identity's
//! face print is derived from the stored embeddings whenever it is needed ([`face_print`]), so it follows every
//! change of the collection. Embeddings are never logged and never leave through the views.

mod review;
mod vet;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::Storage;
use crate::domain::{AssetId, IdentityId};
use crate::face::{self, FaceEngine, FaceError, FacePrint, FaceSettings, INSTALL_COMMAND};
use crate::storage::db::{Db, DbError, FaceAnalysis, FaceFacts, NewPhoto, PhotoRecord};
use crate::storage::objects::ObjectError;

pub use review::{
    AddedPhoto, Agreement, Collection, CollectionView, PhotoView, PhotosAdded, Reviewed,
    SHARPNESS_FLOOR,
};
pub use vet::{
    LightingSummary, MIN_USABLE, PoseSummary, Variety, Verdict, VetReport, VetSummary, VettedPhoto,
};

/// The largest reference photo file accepted (the limit of headshot uploads).
pub const MAX_BYTES: u64 = 20 << 20;

/// The most pixels a reference photo may have (the limit of image uploads).
pub const MAX_PIXELS: u64 = 40_000_000;

/// Why a photo could not be added.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The file cannot be read (missing, a folder, permissions).
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The content is not a PNG or JPEG image.
    #[error("{} is not a PNG or JPEG image", path.display())]
    NotAnImage {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_BYTES`].
    #[error("{} is larger than {} MB", path.display(), MAX_BYTES >> 20)]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The image declares more than [`MAX_PIXELS`] pixels (or none).
    #[error("{} is {width}×{height} pixels; at most {} megapixels are accepted", path.display(), MAX_PIXELS / 1_000_000)]
    TooManyPixels {
        /// The file.
        path: PathBuf,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
    },
    /// The image cannot be decoded.
    #[error("cannot decode {}: {reason}", path.display())]
    Undecodable {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },
    /// Media storage failed.
    #[error("cannot store the photo: {0}")]
    Objects(#[from] ObjectError),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl PhotoError {
    /// Whether the photo itself is at fault (bad input), not the machine.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Objects(_) | Self::Db(_))
    }
}

/// A checked photo file: where it is, the name the user gave it and its sniffed type.
#[derive(Debug, Clone)]
pub struct PhotoFile {
    /// The file.
    pub path: PathBuf,
    /// Its base name (what the collection shows).
    pub file_name: String,
    /// `png` or `jpg`.
    pub ext: &'static str,
    /// `image/png` or `image/jpeg`.
    pub mime: &'static str,
}

/// Checks `path` without decoding it: a readable file of at most [`MAX_BYTES`], a PNG or JPEG by its content,
/// whose header declares at most [`MAX_PIXELS`]. `file_name` defaults to the path's base name.
pub fn check_file(path: &Path, file_name: Option<&str>) -> Result<PhotoFile, PhotoError> {
    let unreadable = |reason: String| PhotoError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("it is not a file".into()));
    }
    if meta.len() > MAX_BYTES {
        return Err(PhotoError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| unreadable(e.to_string()))?;
    let (ext, mime) =
        crate::project_file::image_kind(&head[..n]).ok_or_else(|| PhotoError::NotAnImage {
            path: path.to_path_buf(),
        })?;
    let size = imagesize::size(path).map_err(|e| PhotoError::Undecodable {
        path: path.to_path_buf(),
        reason: format!("unreadable header ({e})"),
    })?;
    let (width, height) = (size.width as u64, size.height as u64);
    if width == 0 || height == 0 || width.saturating_mul(height) > MAX_PIXELS {
        return Err(PhotoError::TooManyPixels {
            path: path.to_path_buf(),
            width,
            height,
        });
    }
    let file_name = file_name
        .map(str::to_string)
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "photo".into());
    Ok(PhotoFile {
        path: path.to_path_buf(),
        file_name: base_name(&file_name),
        ext,
        mime,
    })
}

/// The last component of a client-given file name (either slash), at most 200 characters, never empty.
fn base_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let base: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if base.is_empty() {
        "photo".into()
    } else {
        base
    }
}

/// The face engine, or why there is none (the note shown beside pending photos).
enum Engine {
    Ready(Arc<FaceEngine>),
    Missing(String),
}

/// The note for photos that cannot be analysed on this installation.
fn missing_note(e: &FaceError) -> String {
    match e {
        FaceError::ModelsMissing { .. } => {
            format!("face models not installed — run `{INSTALL_COMMAND}`")
        }
        other => other.to_string(),
    }
}

/// A photo added to a collection.
#[derive(Debug, Clone)]
pub struct Added {
    /// The stored photo (with its analysis when the models are installed).
    pub photo: PhotoRecord,
    /// False when the identity already had this content (nothing was added).
    pub new: bool,
}

/// The photo collections of one installation: storage and the face engine's settings.
#[derive(Clone, Copy)]
pub struct Photos<'a> {
    storage: &'a Storage,
    face: &'a FaceSettings,
}

impl<'a> Photos<'a> {
    /// The collections stored in `storage`, analysed with the models of `face`.
    pub fn new(storage: &'a Storage, face: &'a FaceSettings) -> Self {
        Self { storage, face }
    }

    async fn engine(&self) -> Engine {
        match face::load_engine(self.face).await {
            Ok(engine) => Engine::Ready(engine),
            Err(e) => Engine::Missing(missing_note(&e)),
        }
    }

    /// Adds a checked file to identity `identity_id`'s collection (see [`check_file`]).
    pub async fn add_file(
        &self,
        identity_id: &IdentityId,
        file: &PhotoFile,
    ) -> Result<Added, PhotoError> {
        let stored = self.storage.objects.put_file(&file.path, file.ext).await?;
        let photo = NewPhoto {
            identity_id: identity_id.clone(),
            object_key: stored.key,
            sha256: stored.sha256,
            mime: file.mime.into(),
            file_name: file.file_name.clone(),
            // Set from the decoded photo.
            width: 0,
            height: 0,
        };
        self.add_stored(photo, &file.path).await
    }

    /// Adds the headshot asset `asset_id` to identity `identity_id`'s collection (a headshot is one of the
    /// identity's reference photos); `None` when it is not a PNG or JPEG the face engine can read.
    pub async fn add_headshot(
        &self,
        identity_id: &IdentityId,
        asset_id: &AssetId,
    ) -> Result<Option<Added>, PhotoError> {
        let Some(asset) = self.storage.db.get_asset(asset_id).await? else {
            return Ok(None);
        };
        if !matches!(asset.mime.as_str(), "image/png" | "image/jpeg") {
            return Ok(None);
        }
        let ext = if asset.mime == "image/png" {
            "png"
        } else {
            "jpg"
        };
        let path = self.storage.objects.local_path(&asset.object_key).await?;
        let photo = NewPhoto {
            identity_id: identity_id.clone(),
            object_key: asset.object_key,
            sha256: asset.sha256,
            mime: asset.mime,
            file_name: base_name(
                &asset
                    .original_name
                    .unwrap_or_else(|| format!("headshot.{ext}")),
            ),
            // Set from the decoded photo.
            width: 0,
            height: 0,
        };
        self.add_stored(photo, &path).await.map(Some)
    }

    /// Adds a stored object (whose content is at `path`): the existing photo when the identity already has this
    /// content, else the new one, decoded and analysed.
    async fn add_stored(&self, mut photo: NewPhoto, path: &Path) -> Result<Added, PhotoError> {
        let db = &self.storage.db;
        if let Some(existing) = db
            .identity_photo_by_content(&photo.identity_id, &photo.sha256)
            .await?
        {
            return Ok(Added {
                photo: existing,
                new: false,
            });
        }
        let engine = self.engine().await;
        let (width, height, analysis) = decode_and_analyse(&engine, path).await?;
        (photo.width, photo.height) = (width, height);
        let inserted = db.insert_identity_photo(&photo, analysis.as_ref()).await?;
        let stored = db
            .identity_photo_by_content(&photo.identity_id, &photo.sha256)
            .await?
            .ok_or_else(|| DbError::Corrupt("identity_photos (row vanished)".into()))?;
        Ok(Added {
            photo: stored,
            new: inserted.is_some(),
        })
    }

    /// The collection of identity `identity_id`, reviewed (distances, outliers, problems). Photos still pending
    /// are analysed first when the face models are now installed.
    pub async fn list(&self, identity_id: &IdentityId) -> Result<Collection, PhotoError> {
        let mut photos = self.storage.db.list_identity_photos(identity_id).await?;
        let mut note = None;
        if photos.iter().any(needs_analysis) {
            match self.engine().await {
                Engine::Ready(engine) => self.analyse_pending(&engine, &mut photos).await,
                Engine::Missing(why) if photos.iter().any(|p| p.analysis.is_none()) => {
                    note = Some(why)
                }
                Engine::Missing(_) => {}
            }
        }
        Ok(Collection::review(photos, self.face.threshold, note))
    }

    /// The vetting of identity `identity_id`'s collection (see [`VetReport`]): which photos training may use and
    /// why the others may not. Photos still pending are analysed first, as by [`Photos::list`].
    pub async fn vet(&self, identity_id: &IdentityId) -> Result<VetReport, PhotoError> {
        Ok(self.list(identity_id).await?.vet())
    }

    /// Analyses the photos that are still pending (or were analysed before the face's brightness was measured)
    /// and stores what was found; a photo that cannot be read is left as it was (and logged).
    async fn analyse_pending(&self, engine: &Arc<FaceEngine>, photos: &mut [PhotoRecord]) {
        let ready = Engine::Ready(Arc::clone(engine));
        for p in photos.iter_mut().filter(|p| needs_analysis(p)) {
            let analysed = async {
                let path = self.storage.objects.local_path(&p.object_key).await?;
                let (_, _, analysis) = decode_and_analyse(&ready, &path).await?;
                if let Some(a) = &analysis {
                    self.storage.db.set_photo_analysis(&p.id, a).await?;
                }
                Ok::<_, PhotoError>(analysis)
            }
            .await;
            match analysed {
                Ok(Some(analysis)) => p.analysis = Some(analysis),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(photo = %p.id, error = %e, "cannot analyse a reference photo")
                }
            }
        }
    }

    /// Removes the photo named `which` (its id, or its file name when that names one photo) from identity
    /// `identity_id`'s collection; returns it, or `None` when there is no such photo.
    pub async fn remove(
        &self,
        identity_id: &IdentityId,
        which: &str,
    ) -> Result<Option<PhotoRecord>, RemoveError> {
        let db = &self.storage.db;
        let photos = db.list_identity_photos(identity_id).await?;
        let by_id = photos.iter().find(|p| p.id == which);
        let by_name: Vec<&PhotoRecord> = photos.iter().filter(|p| p.file_name == which).collect();
        let target = match (by_id, by_name.as_slice()) {
            (Some(p), _) | (None, &[p]) => p.clone(),
            (None, []) => return Ok(None),
            (None, several) => {
                return Err(RemoveError::Ambiguous(
                    several.iter().map(|p| p.id.clone()).collect(),
                ));
            }
        };
        Ok(db
            .delete_identity_photo(identity_id, &target.id)
            .await?
            .then_some(target))
    }
}

/// Whether a photo is still to be analysed: pending, or analysed before its face's brightness was measured.
fn needs_analysis(p: &PhotoRecord) -> bool {
    match &p.analysis {
        None => true,
        Some(a) => a.largest.as_ref().is_some_and(|f| f.brightness.is_none()),
    }
}

/// Why a photo could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// Several photos carry the file name given: the ids to choose from.
    #[error("several photos have this file name; remove one by its id: {}", .0.join(", "))]
    Ambiguous(Vec<String>),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Decodes the photo at `path` (off the async runtime) and, with an engine, analyses it: its size and what the
/// face engine found (`None` without the models).
async fn decode_and_analyse(
    engine: &Engine,
    path: &Path,
) -> Result<(u32, u32, Option<FaceAnalysis>), PhotoError> {
    let photo = face::open_photo(path.to_path_buf())
        .await
        .map_err(|e| match e {
            FaceError::Unreadable { path, reason } => PhotoError::Unreadable { path, reason },
            other => PhotoError::Undecodable {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
    let (width, height) = (photo.width(), photo.height());
    let Engine::Ready(engine) = engine else {
        return Ok((width, height, None));
    };
    match face::analyse(Arc::clone(engine), photo).await {
        Ok(found) => Ok((width, height, Some(analysis_of(&found)))),
        Err(e) => {
            tracing::warn!(error = %e, "face analysis failed");
            Ok((width, height, None))
        }
    }
}

/// The stored analysis of what the engine found: the count, the largest face, the embedding of a lone face.
fn analysis_of(found: &face::PhotoFaces) -> FaceAnalysis {
    let largest = found.faces.first().map(|f| FaceFacts {
        bbox: f.bbox,
        sharpness: f.sharpness,
        yaw: f.pose.map(|p| p.yaw),
        pitch: f.pose.map(|p| p.pitch),
        brightness: Some(f.brightness),
    });
    let embedding = match found.faces.as_slice() {
        [one] => Some(one.embedding.clone()),
        _ => None,
    };
    FaceAnalysis {
        face_count: u32::try_from(found.faces.len()).unwrap_or(u32::MAX),
        largest,
        embedding,
    }
}

/// The face print of identity `identity_id`: the embeddings of its photos that show exactly one face and their
/// median; `None` when it has none.
pub async fn face_print(db: &Db, identity_id: &IdentityId) -> Result<Option<FacePrint>, DbError> {
    Ok(FacePrint::from_embeddings(
        db.identity_embeddings(identity_id).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_their_base_name() {
        assert_eq!(base_name("../../etc/passwd.png"), "passwd.png");
        assert_eq!(base_name("C:\\photos\\me.jpg"), "me.jpg");
        assert_eq!(base_name("  "), "photo");
        assert_eq!(base_name("a\u{0}b.jpg"), "ab.jpg");
    }

    #[test]
    fn files_are_checked_by_content_and_header() {
        let dir = tempfile::tempdir().unwrap();
        let missing = check_file(&dir.path().join("nope.jpg"), None).unwrap_err();
        assert!(
            matches!(missing, PhotoError::Unreadable { .. }),
            "{missing}"
        );
        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"hello, not an image").unwrap();
        let err = check_file(&text, None).unwrap_err();
        assert!(matches!(err, PhotoError::NotAnImage { .. }), "{err}");
        assert!(err.is_bad_input());
        let png = dir.path().join("p.png");
        image::RgbImage::new(4, 3).save(&png).unwrap();
        let ok = check_file(&png, Some("dir/me.png")).unwrap();
        assert_eq!(
            (ok.ext, ok.mime, ok.file_name.as_str()),
            ("png", "image/png", "me.png")
        );
    }
}
