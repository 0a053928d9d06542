//! Consent on record: who agreed to their likeness being trained, when and how (a statement or recording stored
//! as an asset of kind `consent`, and/or a note). One service for the CLI, the API and the identity page. The
//! record stays in devatar: nothing here is ever sent to a provider.

use std::path::Path;

use crate::app::Storage;
use crate::storage::db::{AssetInput, ConsentRecord, DbError};
use crate::storage::now_ms;
use crate::storage::objects::{ObjectError, content_type};

/// The longest `consented by` accepted.
pub const MAX_BY_CHARS: usize = 200;
/// The longest note accepted.
pub const MAX_NOTE_CHARS: usize = 2000;
/// The largest consent file accepted (a recorded statement).
pub const MAX_FILE_BYTES: u64 = 200 << 20;

/// Consent could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The input is not acceptable (names the field).
    #[error("{0}")]
    Invalid(String),
    /// Media storage failed.
    #[error("cannot store the consent file: {0}")]
    Objects(#[from] ObjectError),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a consent is made of, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct ConsentInput {
    /// Who consented.
    pub by: String,
    /// A note on how.
    pub note: Option<String>,
    /// An asset already stored (the API's upload) to link.
    pub asset_id: Option<String>,
}

fn clean(field: &str, text: &str, max: usize) -> Result<String, ConsentError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ConsentError::Invalid(format!("{field} must not be empty")));
    }
    if t.chars().count() > max {
        return Err(ConsentError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if t.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ConsentError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(t.to_string())
}

/// Checks `input`: a person, and a file or a note (at least one).
pub fn validate(input: &ConsentInput, has_file: bool) -> Result<ConsentInput, ConsentError> {
    let by = clean("consented by", &input.by, MAX_BY_CHARS)?;
    let note = match &input.note {
        Some(n) => Some(clean("note", n, MAX_NOTE_CHARS)?),
        None => None,
    };
    if note.is_none() && input.asset_id.is_none() && !has_file {
        return Err(ConsentError::Invalid(
            "consent needs a file (statement or recording) or a note saying how it was given"
                .into(),
        ));
    }
    Ok(ConsentInput {
        by,
        note,
        asset_id: input.asset_id.clone(),
    })
}

/// The file's extension when it is a plain one (letters and digits, at most 8), else `bin`.
fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".into())
}

/// Stores `file` as an asset of kind `consent`; returns its id.
pub async fn store_file(storage: &Storage, file: &Path) -> Result<String, ConsentError> {
    let meta = std::fs::metadata(file)
        .map_err(|e| ConsentError::Invalid(format!("cannot read {}: {e}", file.display())))?;
    if !meta.is_file() {
        return Err(ConsentError::Invalid(format!(
            "{} is not a file",
            file.display()
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ConsentError::Invalid(format!(
            "{} is larger than {} MB",
            file.display(),
            MAX_FILE_BYTES >> 20
        )));
    }
    let ext = extension(file);
    let stored = storage.objects.put_file(file, &ext).await?;
    let name = file.file_name().map(|n| {
        n.to_string_lossy()
            .chars()
            .filter(|c| !c.is_control())
            .collect()
    });
    let asset = AssetInput {
        kind: "consent".into(),
        object_key: stored.key,
        sha256: stored.sha256,
        size_bytes: stored.size as i64,
        mime: content_type(&ext).into(),
        width: None,
        height: None,
        original_name: name,
    };
    Ok(storage.db.upsert_asset(&asset).await?.into_string())
}

/// Records `input` (validated) as identity `identity_id`'s consent, replacing any earlier record.
pub async fn record(
    storage: &Storage,
    identity_id: &str,
    input: &ConsentInput,
) -> Result<ConsentRecord, ConsentError> {
    let input = validate(input, false)?;
    let record = ConsentRecord {
        identity_id: identity_id.into(),
        consented_by: input.by,
        asset_id: input.asset_id,
        note: input.note,
        consented_at: now_ms(),
    };
    storage.db.set_consent(&record).await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_needs_a_person_and_a_file_or_a_note() {
        let only_by = ConsentInput {
            by: "Eileen".into(),
            ..Default::default()
        };
        assert!(validate(&only_by, false).is_err());
        assert!(validate(&only_by, true).is_ok());
        let with_note = ConsentInput {
            note: Some("said yes on camera".into()),
            ..only_by.clone()
        };
        assert!(validate(&with_note, false).is_ok());
        let nobody = ConsentInput {
            by: "  ".into(),
            ..with_note
        };
        assert!(validate(&nobody, false).is_err());
        assert_eq!(extension(Path::new("a/b.MP4")), "mp4");
        assert_eq!(extension(Path::new("a/b")), "bin");
        assert_eq!(extension(Path::new("a/b.t x")), "bin");
    }
}
