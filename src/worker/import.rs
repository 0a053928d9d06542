//! A project file into the database: headshots stored as assets, identities (with their reference photos merged
//! into their photo collections), the project and its scenes. The CLI render, `demo` and the dashboard's demo
//! button all store projects this way; plans are then built from the stored rows by
//! [`RunService::load_plan`](super::RunService::load_plan).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::app::Storage;
use crate::domain::{AssetId, IdentityId, ProjectId};
use crate::face::FaceSettings;
use crate::identity_photos::{PhotoError, Photos, check_file};
use crate::project_file::{FileIdentity, ProjectFile, image_kind};
use crate::storage::db::{AssetInput, DbError, SceneInput};

/// What to do with an identity the database already has under the file's name or trigger word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityPolicy {
    /// The file is the source of truth: the stored identity (matched by name) is overwritten.
    Overwrite,
    /// Keep what the user edited: reuse the stored identity with the same name or trigger word.
    KeepExisting,
}

/// A project file could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A headshot named by the file could not be read or is not an image.
    #[error("headshot {path}: {reason}")]
    Headshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A reference photo named by the file could not be added.
    #[error("reference photo {path}: {source}")]
    Photo {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: PhotoError,
    },
    /// A scene names an identity the file does not define.
    #[error("scene {0:?} names an identity the file does not define")]
    UnknownIdentity(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The stored project could not be planned.
    #[error(transparent)]
    Plan(super::StartError),
}

/// Stores `file` (identities per `policy` with their photos merged, the project, its scenes in file order);
/// returns the project id. New photos are analysed with the face models of `face`.
pub async fn import_project(
    storage: &Storage,
    face: &FaceSettings,
    file: &ProjectFile,
    policy: IdentityPolicy,
) -> Result<ProjectId, ImportError> {
    let db = &storage.db;
    let existing = match policy {
        IdentityPolicy::Overwrite => Vec::new(),
        IdentityPolicy::KeepExisting => db.list_identities().await?,
    };
    let mut identity_ids = HashMap::new();
    for fi in &file.identities {
        let i = &fi.identity;
        let kept = existing
            .iter()
            .find(|r| r.identity.name == i.name || r.identity.trigger_word == i.trigger_word);
        let (id, headshot) = match kept {
            Some(r) => (r.id.clone(), None),
            None => {
                let headshot = match &fi.headshot {
                    Some(path) => Some(import_headshot(storage, path).await?),
                    None => None,
                };
                (db.upsert_identity(i, headshot.as_ref()).await?, headshot)
            }
        };
        merge_photos(&Photos::new(storage, face), &id, headshot.as_ref(), fi).await?;
        identity_ids.insert(i.name.clone(), id);
    }
    let default_id = identity_ids.get(&file.default_identity);
    let project_id = db.upsert_project(&file.project, default_id).await?;
    let mut scenes = Vec::new();
    for fs in &file.scenes {
        let headshot_asset_id = match &fs.headshot {
            Some(path) => Some(import_headshot(storage, path).await?),
            None => None,
        };
        let identity_id = identity_ids
            .get(&fs.scene.identity)
            .cloned()
            .ok_or_else(|| ImportError::UnknownIdentity(fs.scene.name.clone()))?;
        scenes.push(SceneInput {
            scene: fs.scene.clone(),
            identity_id,
            headshot_asset_id,
        });
    }
    db.sync_scenes(&project_id, &scenes).await?;
    Ok(project_id)
}

/// Adds the identity's headshot asset (when the file set one) and its reference photos to its collection: a
/// photo already there is left as it is, and nothing is removed. A headshot that cannot join (it is still the
/// headshot) is logged; a reference photo that cannot is an error.
async fn merge_photos(
    photos: &Photos<'_>,
    identity_id: &IdentityId,
    headshot: Option<&AssetId>,
    fi: &FileIdentity,
) -> Result<(), ImportError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Photo { path, source }
    };
    if let Some(asset) = headshot
        && let Err(e) = photos.add_headshot(identity_id, asset).await
    {
        tracing::warn!(identity = %identity_id, error = %e, "the headshot did not join the reference photos");
    }
    for path in &fi.reference_photos {
        let file = check_file(path, None).map_err(failed(path))?;
        photos
            .add_file(identity_id, &file)
            .await
            .map_err(failed(path))?;
    }
    Ok(())
}

/// Stores a headshot image (content-addressed) and registers it as an asset; returns the asset id.
async fn import_headshot(storage: &Storage, path: &Path) -> Result<AssetId, ImportError> {
    let bad = |reason: String| ImportError::Headshot {
        path: path.to_path_buf(),
        reason,
    };
    let head = tokio::fs::read(path)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let (ext, mime) = image_kind(&head).ok_or_else(|| bad("not a PNG or JPEG".into()))?;
    let stored = storage
        .objects
        .put_file(path, ext)
        .await
        .map_err(|e| bad(format!("cannot store it: {e}")))?;
    Ok(storage
        .db
        .upsert_asset(&AssetInput {
            kind: "headshot".into(),
            object_key: stored.key,
            sha256: stored.sha256,
            size_bytes: stored.size as i64,
            mime: mime.into(),
            width: None,
            height: None,
            original_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        })
        .await?)
}
