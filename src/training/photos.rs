//! The training set: which of an identity's photos are usable, the content key over them and the settings, and
//! the zip Fal trains on (each photo with a caption naming the trigger word).

use std::collections::HashSet;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::identity_photos::Collection;
use crate::storage::db::PhotoRecord;

/// The fewest usable photos a training accepts (the vetting's rule).
pub const MIN_PHOTOS: usize = crate::identity_photos::MIN_USABLE;

/// The photos of `collection` a training uses: those the vetting (`identity vet`, one rule set for CLI, API and
/// pages) calls usable — one face, large and sharp enough, the same person as the rest, at least 512×512.
pub fn usable_photos(collection: &Collection) -> Vec<&PhotoRecord> {
    let usable: HashSet<String> = collection.vet().usable().map(|p| p.id.clone()).collect();
    collection
        .photos
        .iter()
        .map(|p| &p.record)
        .filter(|r| usable.contains(&r.id))
        .collect()
}

/// Why each photo the vetting blocks is left out, one line each.
pub fn left_out(collection: &Collection) -> Vec<String> {
    collection
        .vet()
        .photos
        .into_iter()
        .filter(|p| !p.usable)
        .map(|p| {
            let why = if p.reasons.is_empty() {
                "not usable".to_string()
            } else {
                p.reasons.join("; ")
            };
            format!("{}: {why}", p.file_name)
        })
        .collect()
}

/// What a training's result depends on: the photos' content (in a stable order), the trigger word, the steps and
/// the trainer. The same key means the same training, whose result is reused.
pub fn content_key(photos: &[&PhotoRecord], trigger_word: &str, steps: u32, model: &str) -> String {
    let mut hashes: Vec<&str> = photos.iter().map(|p| p.sha256.as_str()).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let doc = json!({
        "step": "LORA_TRAINING",
        "provider": model,
        "photos": hashes,
        "triggerWord": trigger_word,
        "steps": steps,
        "captions": "a photo of {trigger}",
        "baseModel": "flux-dev",
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// The caption of every training photo.
pub fn caption(trigger_word: &str) -> String {
    format!("a photo of {trigger_word}")
}

/// The zip entries: `photo-01.jpg` with `photo-01.txt` (its caption), for each `(ext, bytes)` in order.
pub fn zip_entries(photos: Vec<(String, Vec<u8>)>, trigger_word: &str) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::with_capacity(photos.len() * 2);
    for (i, (ext, bytes)) in photos.into_iter().enumerate() {
        let stem = format!("photo-{:02}", i + 1);
        entries.push((format!("{stem}.{ext}"), bytes));
        entries.push((format!("{stem}.txt"), caption(trigger_word).into_bytes()));
    }
    entries
}
