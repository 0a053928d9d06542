//! `devatar identity photos NAME add|list|remove`: an identity's reference photos (see `crate::identity_photos`).
//!
//! Exit codes: 0 done, 1 `add` found no face or several in a photo it was given, 2 bad input (a file that is
//! missing or not a PNG/JPEG image, an unknown identity or photo). Without the face models photos are still
//! stored and listed, with a note saying how to install them (exit 0).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::CliError;
use crate::app::Storage;
use crate::config::Config;
use crate::identity_photos::{
    AddedPhoto, Collection, PhotoError, Photos, PhotosAdded, RemoveError, check_file,
};
use crate::storage::db::IdentityRecord;

/// `devatar identity photos NAME …`.
#[derive(Args)]
pub(super) struct PhotosArgs {
    /// The identity's name (e.g. deven-primary).
    name: String,
    #[command(subcommand)]
    action: PhotosAction,
}

#[derive(Subcommand)]
enum PhotosAction {
    /// Add photos (PNG or JPEG): each is stored once and analysed; prints what was found in each.
    Add {
        /// The photos.
        #[arg(required = true)]
        photos: Vec<PathBuf>,
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
        /// Print one JSON document (what each photo became, then the collection).
        #[arg(long)]
        json: bool,
    },
    /// List the photos: faces, sharpness, pose, distance to the others, and whether they agree.
    List {
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Remove a photo, by its file name or its id.
    Remove {
        /// The photo's file name (as listed) or id.
        photo: String,
        /// Data folder.
        #[arg(long, default_value = "devatar-data")]
        data: PathBuf,
    },
}

/// Runs `identity photos`.
pub(super) async fn run(cfg: &Config, args: PhotosArgs) -> Result<(), CliError> {
    match args.action {
        PhotosAction::Add { photos, data, json } => {
            add(cfg, &args.name, &photos, &data, json).await
        }
        PhotosAction::List { data, json } => list(cfg, &args.name, &data, json).await,
        PhotosAction::Remove { photo, data } => remove(cfg, &args.name, &photo, &data).await,
    }
}

/// Opens the data folder's storage; a folder that does not exist (with no `DATABASE_URL`) holds no identity, so
/// it is bad input and is not created.
pub(super) async fn open(cfg: &Config, data: &Path) -> Result<Storage, CliError> {
    if cfg.database_url.is_none() && !data.exists() {
        return Err(CliError::input(format!(
            "no data folder at {} (render a project file or create the identity there first)",
            data.display()
        )));
    }
    Storage::open(cfg, data).await.map_err(CliError::failed)
}

/// The stored identity named `name` (exit 2 when there is none).
pub(super) async fn identity_named(
    storage: &Storage,
    name: &str,
    data: &Path,
) -> Result<IdentityRecord, CliError> {
    storage
        .db
        .list_identities()
        .await
        .map_err(CliError::failed)?
        .into_iter()
        .find(|r| r.identity.name == name.trim())
        .ok_or_else(|| {
            CliError::input(format!(
                "no identity named {:?} in {}",
                name.trim(),
                data.display()
            ))
        })
}

fn photo_error(e: PhotoError) -> CliError {
    if e.is_bad_input() {
        CliError::input(e)
    } else {
        CliError::failed(e)
    }
}

async fn add(
    cfg: &Config,
    name: &str,
    paths: &[PathBuf],
    data: &Path,
    json: bool,
) -> Result<(), CliError> {
    // Every file is checked before the data folder is touched.
    let files = paths
        .iter()
        .map(|p| check_file(p, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(photo_error)?;
    let storage = open(cfg, data).await?;
    let identity = identity_named(&storage, name, data).await?;
    let photos = Photos::new(&storage, &cfg.face);
    let mut added = Vec::with_capacity(files.len());
    for file in &files {
        added.push(
            photos
                .add_file(&identity.id, file)
                .await
                .map_err(photo_error)?,
        );
    }
    let collection = photos.list(&identity.id).await.map_err(CliError::failed)?;
    if json {
        let doc = PhotosAdded::new(added.iter().map(AddedPhoto::from).collect(), &collection);
        println!("{}", json!(doc));
    } else {
        for a in &added {
            let line = collection
                .photos
                .iter()
                .find(|p| p.record.id == a.photo.id)
                .map(|p| p.describe())
                .unwrap_or_else(|| a.photo.file_name.clone());
            let verb = if a.new { "added" } else { "already there" };
            println!("{verb}: {line}");
        }
        print_footer(&collection);
    }
    let faceless: Vec<&str> = added
        .iter()
        .filter_map(|a| {
            let count = a.photo.analysis.as_ref()?.face_count;
            (count != 1).then_some(a.photo.file_name.as_str())
        })
        .collect();
    if faceless.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "a reference photo must show exactly one face: {}",
            faceless.join(", ")
        )))
    }
}

/// The agreement line and, when photos are pending, the note.
fn print_footer(collection: &Collection) {
    println!("reference agreement: {}", collection.agreement.summary());
    if let Some(note) = &collection.note {
        println!("note: photos are stored but not analysed: {note}");
    }
}

async fn list(cfg: &Config, name: &str, data: &Path, json: bool) -> Result<(), CliError> {
    let storage = open(cfg, data).await?;
    let identity = identity_named(&storage, name, data).await?;
    let collection = Photos::new(&storage, &cfg.face)
        .list(&identity.id)
        .await
        .map_err(CliError::failed)?;
    if json {
        println!("{}", json!(collection.view()));
        return Ok(());
    }
    if collection.photos.is_empty() {
        println!(
            "{} has no reference photos (add some with `devatar identity photos {} add PHOTO…`)",
            identity.identity.name, identity.identity.name
        );
        return Ok(());
    }
    for p in &collection.photos {
        println!("{}  {}", p.record.id, p.describe());
    }
    print_footer(&collection);
    Ok(())
}

async fn remove(cfg: &Config, name: &str, which: &str, data: &Path) -> Result<(), CliError> {
    let storage = open(cfg, data).await?;
    let identity = identity_named(&storage, name, data).await?;
    match Photos::new(&storage, &cfg.face)
        .remove(&identity.id, which)
        .await
    {
        Ok(Some(photo)) => {
            println!("removed {} ({})", photo.file_name, photo.id);
            Ok(())
        }
        Ok(None) => Err(CliError::input(format!(
            "{} has no photo named {which:?} (see `devatar identity photos {} list`)",
            identity.identity.name, identity.identity.name
        ))),
        Err(e @ RemoveError::Ambiguous(_)) => Err(CliError::input(e)),
        Err(RemoveError::Db(e)) => Err(CliError::failed(e)),
    }
}
