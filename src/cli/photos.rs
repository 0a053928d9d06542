//! `devatar identity photos NAME add|list|remove` and `devatar identity vet NAME`: an identity's reference photos
//! and their vetting (see `crate::identity_photos`).
//!
//! Exit codes: 0 done, 1 `add` was given a photo the vetting blocks (it is kept and listed with its reasons, and
//! left out of training) or `vet` finds the set may not train, 2 bad input (a file that is missing or not a
//! PNG/JPEG image, an unknown identity or photo). Without the face models photos are stored and listed as pending,
//! with a note saying how to install them; the vetting blocks them until they are analysed.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::CliError;
use crate::app::Storage;
use crate::config::Config;
use crate::identity_photos::{
    AddedPhoto, Collection, PhotoError, Photos, PhotosAdded, RemoveError, Verdict, VetReport,
    VettedPhoto, check_file,
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
    /// Add photos (PNG or JPEG): each is stored once and analysed; prints what was found in each and its verdict
    /// (exit 1 when one is blocked: it stays listed with its reasons and is left out of training).
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
    /// List the photos: faces, sharpness, pose, distance to the others, whether they agree, each one's verdict.
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

/// `devatar identity vet NAME`.
#[derive(Args)]
pub(super) struct VetArgs {
    /// The identity's name (e.g. deven-primary).
    name: String,
    /// Data folder.
    #[arg(long, default_value = "devatar-data")]
    data: PathBuf,
    /// Print one JSON document: verdict, usablePhotos, photos, summary.
    #[arg(long)]
    json: bool,
}

/// Runs `identity vet`: exit 0 when training may go ahead, 1 when it may not.
pub(super) async fn vet(cfg: &Config, args: VetArgs) -> Result<(), CliError> {
    let storage = open(cfg, &args.data).await?;
    let identity = identity_named(&storage, &args.name, &args.data).await?;
    let report = Photos::new(&storage, &cfg.face)
        .vet(&identity.id)
        .await
        .map_err(CliError::failed)?;
    if args.json {
        println!("{}", json!(report));
    } else {
        for p in &report.photos {
            println!("{}", p.file_name);
            print_vetted(p);
        }
        print_set(&report);
    }
    if report.may_train() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{} may not train yet: {}",
            identity.identity.name,
            report.summary.reasons.join("; ")
        )))
    }
}

/// A photo's verdict, then its reasons, one per line (under the line naming the photo).
fn print_vetted(p: &VettedPhoto) {
    let left_out = if p.usable {
        ""
    } else {
        " (left out of training)"
    };
    println!("  verdict: {}{left_out}", p.verdict.as_str());
    for reason in &p.reasons {
        println!("  - {reason}");
    }
}

/// The set's verdict, usable count, pose and lighting variety, and what is said of it.
fn print_set(report: &VetReport) {
    let s = &report.summary;
    println!(
        "set: {} — {} usable of {} photos; head-pose variety {}, lighting variety {}",
        report.verdict.as_str(),
        report.usable_photos,
        s.count,
        s.head_pose.variety.as_str(),
        s.lighting.variety.as_str()
    );
    for reason in &s.reasons {
        println!("  - {reason}");
    }
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
    let report = collection.vet();
    let vetted =
        |a: &crate::identity_photos::Added| report.photos.iter().find(|v| v.id == a.photo.id);
    if json {
        let doc = PhotosAdded::new(added.iter().map(AddedPhoto::from).collect(), &collection);
        println!("{}", json!(doc));
    } else {
        for a in &added {
            let line = collection
                .photos
                .iter()
                .find(|p| p.record.id == a.photo.id)
                .map(|p| format!("{}: {}", p.record.file_name, p.facts()))
                .unwrap_or_else(|| a.photo.file_name.clone());
            let verb = if a.new { "added" } else { "already there" };
            println!("{verb}: {line}");
            if let Some(v) = vetted(a) {
                print_vetted(v);
            }
        }
        print_footer(&collection);
        print_set(&report);
    }
    let blocked: Vec<&str> = added
        .iter()
        .filter_map(vetted)
        .filter(|v| v.verdict == Verdict::Blocked)
        .map(|v| v.file_name.as_str())
        .collect();
    if blocked.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "blocked, so left out of training (kept and listed with the reasons): {}",
            blocked.join(", ")
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
    let report = collection.vet();
    for (p, v) in collection.photos.iter().zip(&report.photos) {
        println!("{}  {}: {}", p.record.id, p.record.file_name, p.facts());
        print_vetted(v);
    }
    print_footer(&collection);
    print_set(&report);
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
