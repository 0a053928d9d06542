//! The media edits the pipeline's steps ask for, behind one interface: [`MediaEditor`]. [`Ffmpeg`] (ffprobe and
//! ffmpeg subprocesses, the functions of `probe.rs` and `edit.rs`) is what every render uses; tests hand the
//! pipeline an instant fake instead (`pipeline::testkit::FakeMedia`), so pipeline behaviour is testable in
//! process without any tool.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::compose;
use super::edit::{self, Delivery, Normalized};
use super::parts::SpliceParts;
use super::probe::{self, MediaInfo};
use super::process::MediaError;
use super::splice::{self, JoinClip, Joined};

/// The media operations pipeline steps use (probing, AUDIO's recording conversion, IMAGE's background
/// composite, FINALIZE's normalising, thumbnail and sampled frames, ASSEMBLE's join).
/// Captions are plain text (`media::captions`) and need no editor; burning them in is part of
/// [`normalize`](MediaEditor::normalize).
#[async_trait]
pub trait MediaEditor: Send + Sync {
    /// Duration, streams and frame size of a media file; fails when it is not media.
    async fn probe(&self, path: &Path) -> Result<MediaInfo, MediaError>;

    /// Normalises `input` to the delivery format `d` into `output`, burning `burn_srt` subtitles in when
    /// given; returns the probe of the output (and its video packets when it was encoded).
    async fn normalize(
        &self,
        input: &Path,
        output: &Path,
        d: &Delivery,
        burn_srt: Option<&Path>,
    ) -> Result<Normalized, MediaError>;

    /// Writes a JPEG thumbnail of `input` taken at `at_seconds`.
    async fn thumbnail(
        &self,
        input: &Path,
        output: &Path,
        at_seconds: f64,
    ) -> Result<(), MediaError>;

    /// Writes one full-size PNG frame of `input` per time in `at_seconds` into `dir`; returns their paths in order.
    async fn frames(
        &self,
        input: &Path,
        dir: &Path,
        at_seconds: &[f64],
    ) -> Result<Vec<PathBuf>, MediaError>;

    /// Converts the recording `input` to the speech format of the local voices (mono 16-bit WAV) in `output`.
    async fn speech_wav(&self, input: &Path, output: &Path) -> Result<(), MediaError>;

    /// Writes the `size` frame of `background` (cover-scaled) with `still` over it, bottom-centre, to `output`.
    async fn composite_over(
        &self,
        still: &Path,
        background: &Path,
        output: &Path,
        size: (u32, u32),
    ) -> Result<(), MediaError>;

    /// Joins delivery-format clips with crossfades of `d.crossfade` into `output`, reusing the work kept in
    /// `parts` (and keeping its own there); returns the output's probe and each clip's start offset.
    async fn join_with_crossfades(
        &self,
        clips: &[JoinClip<'_>],
        output: &Path,
        d: &Delivery,
        parts: &SpliceParts,
    ) -> Result<Joined, MediaError>;

    /// Does ahead, into `parts`, the work of a later [`join_with_crossfades`](Self::join_with_crossfades) of
    /// `clips` (`None`: not known yet) that involves the clips at the `changed` indices. Nothing by default.
    async fn prepare_join(
        &self,
        _clips: &[Option<JoinClip<'_>>],
        _changed: &[usize],
        _d: &Delivery,
        _parts: &SpliceParts,
    ) -> Result<(), MediaError> {
        Ok(())
    }
}

/// The real editor: ffprobe and ffmpeg subprocesses (the default of every pipeline).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ffmpeg;

#[async_trait]
impl MediaEditor for Ffmpeg {
    async fn speech_wav(&self, input: &Path, output: &Path) -> Result<(), MediaError> {
        compose::speech_wav(input, output).await
    }

    async fn composite_over(
        &self,
        still: &Path,
        background: &Path,
        output: &Path,
        size: (u32, u32),
    ) -> Result<(), MediaError> {
        compose::composite_over(still, background, output, size).await
    }

    async fn probe(&self, path: &Path) -> Result<MediaInfo, MediaError> {
        probe::probe(path).await
    }

    async fn normalize(
        &self,
        input: &Path,
        output: &Path,
        d: &Delivery,
        burn_srt: Option<&Path>,
    ) -> Result<Normalized, MediaError> {
        edit::normalize(input, output, d, burn_srt).await
    }

    async fn thumbnail(
        &self,
        input: &Path,
        output: &Path,
        at_seconds: f64,
    ) -> Result<(), MediaError> {
        edit::thumbnail(input, output, at_seconds).await
    }

    async fn frames(
        &self,
        input: &Path,
        dir: &Path,
        at_seconds: &[f64],
    ) -> Result<Vec<PathBuf>, MediaError> {
        let mut frames = Vec::with_capacity(at_seconds.len());
        for (i, at) in at_seconds.iter().enumerate() {
            let frame = dir.join(format!("frame-{i}.png"));
            edit::frame(input, &frame, *at).await?;
            frames.push(frame);
        }
        Ok(frames)
    }

    async fn join_with_crossfades(
        &self,
        clips: &[JoinClip<'_>],
        output: &Path,
        d: &Delivery,
        parts: &SpliceParts,
    ) -> Result<Joined, MediaError> {
        edit::join_with_crossfades(clips, output, d, parts).await
    }

    async fn prepare_join(
        &self,
        clips: &[Option<JoinClip<'_>>],
        changed: &[usize],
        d: &Delivery,
        parts: &SpliceParts,
    ) -> Result<(), MediaError> {
        splice::prepare_splice(clips, changed, d, d.crossfade, parts).await
    }
}
