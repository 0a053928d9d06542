//! The work of splice joins, kept between joins: each clip's probe and each body and crossfade piece, under a
//! name made from exactly what it is made of (the clips' content ids, the cut frames, the delivery format).
//! A join reuses what an earlier call prepared (the pipeline prepares the parts of each finished scene while
//! the others still render) and never a part made from other inputs. Concurrent callers of one part wait for
//! the one making it; a part that failed is made again by the next caller.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::edit::Delivery;
use super::mix::AudioMix;
use super::process::MediaError;
use super::splice::ClipFrames;

/// What a clip's probe tells a splice: its frames and keyframes, or `None` when it cannot be spliced.
pub(super) type ClipProbe = Option<ClipFrames>;

/// Probes and part files of splice joins, in one folder (see the module documentation).
#[derive(Debug)]
pub struct SpliceParts {
    dir: PathBuf,
    probes: Mutex<HashMap<String, Arc<OnceCell<ClipProbe>>>>,
    files: Mutex<HashMap<String, Arc<OnceCell<PathBuf>>>>,
    made: AtomicUsize,
    reused: AtomicUsize,
    /// The project audio, fed ahead of the join with the clips known in order.
    audio: tokio::sync::Mutex<AudioState>,
    /// Audio mixes started, for unique file names.
    mixes: AtomicUsize,
    /// Clips whose audio was fed ahead of a join.
    fed_ahead: AtomicUsize,
}

impl SpliceParts {
    /// Parts kept in `dir` (made when the first part is).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            probes: Mutex::default(),
            files: Mutex::default(),
            made: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
            audio: tokio::sync::Mutex::default(),
            mixes: AtomicUsize::new(0),
            fed_ahead: AtomicUsize::new(0),
        }
    }

    /// The folder of the part files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Probes and parts made so far.
    pub fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    /// Probes and parts asked for that were already made (or being made) by an earlier call.
    pub fn reused(&self) -> usize {
        self.reused.load(Ordering::SeqCst)
    }

    /// Counts a call that found its probe or part made by another.
    fn count_reuse(&self, ran: &AtomicBool) {
        if !ran.load(Ordering::SeqCst) {
            self.reused.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The probe of clip `id` (content identity of `path`), made by `make` unless already known.
    pub(super) async fn probe<F, Fut>(&self, id: &str, make: F) -> Result<ClipProbe, MediaError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ClipProbe, MediaError>>,
    {
        let (cell, ran) = (cell(&self.probes, id), AtomicBool::new(false));
        let probed = cell
            .get_or_try_init(|| async {
                ran.store(true, Ordering::SeqCst);
                let probed = make().await?;
                self.made.fetch_add(1, Ordering::SeqCst);
                Ok(probed)
            })
            .await
            .cloned()?;
        self.count_reuse(&ran);
        Ok(probed)
    }

    /// The file of the part named by `key` (every input of the part, see [`part_name`]), made by `make` (which
    /// gets the base path to write and returns the file it wrote) unless already made.
    pub(super) async fn file<F, Fut>(&self, key: &str, make: F) -> Result<PathBuf, MediaError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = Result<PathBuf, MediaError>>,
    {
        let (cell, ran) = (cell(&self.files, key), AtomicBool::new(false));
        let file = cell
            .get_or_try_init(|| async {
                ran.store(true, Ordering::SeqCst);
                tokio::fs::create_dir_all(&self.dir)
                    .await
                    .map_err(|e| MediaError::BadOutput {
                        program: "splice".into(),
                        reason: format!("could not create {}: {e}", self.dir.display()),
                    })?;
                let written = make(self.dir.join(part_name(key))).await?;
                self.made.fetch_add(1, Ordering::SeqCst);
                Ok(written)
            })
            .await
            .cloned()?;
        self.count_reuse(&ran);
        Ok(file)
    }
}

impl SpliceParts {
    /// The project audio of the join, fed ahead by [`prepare_splice`](super::splice::prepare_splice) (held while
    /// it is fed or finished).
    pub(super) async fn audio(&self) -> tokio::sync::MutexGuard<'_, AudioState> {
        self.audio.lock().await
    }

    /// Clips whose audio was fed to the project audio ahead of a join.
    pub fn audio_fed_ahead(&self) -> usize {
        self.fed_ahead.load(Ordering::SeqCst)
    }

    /// Counts a clip fed ahead.
    pub(super) fn count_fed_ahead(&self) {
        self.fed_ahead.fetch_add(1, Ordering::SeqCst);
    }

    /// Starts a new mix of the project audio in the parts folder.
    pub(super) async fn start_mix(
        &self,
        d: &Delivery,
        fade_seconds: f64,
    ) -> Result<AudioMix, MediaError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|source| MediaError::Io {
                what: format!("creating {}", self.dir.display()),
                source,
            })?;
        let n = self.mixes.fetch_add(1, Ordering::SeqCst);
        AudioMix::start(d, fade_seconds, self.dir.join(format!("audio-{n}.m4a")))
    }

    /// Keeps `probe` as the probe named `id` unless one is known or being made: a probe made elsewhere.
    pub(super) fn seed_probe(&self, id: &str, probe: ClipProbe) {
        let _ = cell(&self.probes, id).set(probe);
    }

    /// The file of the part named by `key` when it is made (never waiting for one being made).
    pub(super) fn made_file(&self, key: &str) -> Option<PathBuf> {
        cell(&self.files, key).get().cloned()
    }

    /// Where the part named by `key` is written (its base path: a part may add extensions).
    pub(super) fn part_path(&self, key: &str) -> PathBuf {
        self.dir.join(part_name(key))
    }
}

/// Where the project audio of the join stands.
#[derive(Debug, Default)]
pub(super) enum AudioState {
    /// Not started.
    #[default]
    Idle,
    /// Being fed ahead of the join.
    Feeding(Box<AudioMix>),
    /// Taken by a join (later preparations feed nothing; a later join starts again).
    Taken,
}

/// The cell of `key` in `map` (a poisoned lock gives a fresh cell: the part is then made again).
fn cell<T>(map: &Mutex<HashMap<String, Arc<OnceCell<T>>>>, key: &str) -> Arc<OnceCell<T>> {
    match map.lock() {
        Ok(mut m) => m.entry(key.to_string()).or_default().clone(),
        Err(_) => Arc::default(),
    }
}

/// A file name for the part described by `key`: its SHA-256, short.
fn part_name(key: &str) -> String {
    format!(
        "part-{}",
        &hex::encode(Sha256::digest(key.as_bytes()))[..24]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_part_is_made_once_and_a_failed_one_again() {
        let dir = tempfile::tempdir().unwrap();
        let parts = SpliceParts::new(dir.path().join("parts"));
        let make = |base: PathBuf| async move {
            tokio::fs::write(&base, b"x").await.unwrap();
            Ok(base)
        };
        let a = parts.file("body a 0 10", make).await.unwrap();
        let again = parts.file("body a 0 10", make).await.unwrap();
        assert_eq!(a, again);
        let other = parts.file("body b 0 10", make).await.unwrap();
        assert_ne!(a, other, "other inputs, another part");
        assert_eq!((parts.made(), parts.reused()), (2, 1));

        let failing = |_base: PathBuf| async move {
            Err(MediaError::BadOutput {
                program: "test".into(),
                reason: "no".into(),
            })
        };
        assert!(parts.file("fade a b", failing).await.is_err());
        parts.file("fade a b", make).await.unwrap();
        assert_eq!(
            (parts.made(), parts.reused()),
            (3, 1),
            "a failed part is made by the next caller"
        );
    }
}
