//! What a simulated job produces, worked out on first need (the media is made with ffmpeg then).

use std::sync::Arc;

use super::faces::PersonAsk;
use super::media::{InputMedia, VideoAudio, VideoSource};
use super::server::Shared;

/// Seconds assumed for an input whose length we cannot learn.
const DEFAULT_SECS: f64 = 5.0;

/// The recipe of a job's output, fixed at submit.
#[derive(Debug, Clone)]
pub(crate) enum OutputSpec {
    /// Stills of one size.
    Images {
        w: u32,
        h: u32,
        jpeg: bool,
        /// Distinguishes the picture (derived from the prompt and seed).
        mark: u32,
        /// The LoRA and seed that decide who the picture shows, when the sandbox knows faces.
        person: Option<PersonAsk>,
    },
    /// A silent clip following the image's aspect ratio (image-to-video).
    Video { secs: f64, image: InputRef },
    /// Lip-sync: the video's frames, the audio's sound, the length by `sync_mode`.
    LipSync {
        video: InputRef,
        audio: InputRef,
        mode: String,
    },
    /// Talking avatar: the image's aspect, the audio's sound and length.
    Avatar { image: InputRef, audio: InputRef },
    /// LoRA training: the zip of photos, the trigger word and the steps.
    Training {
        zip: InputRef,
        trigger: String,
        steps: u32,
    },
}

/// An input: a URL (or `data:` URI, or Kling raw base64) or uploaded bytes.
#[derive(Debug, Clone)]
pub(crate) enum InputRef {
    /// A URL or `data:` URI.
    Url(String),
    /// Bytes we already hold (uploads, Kling base64 images).
    Bytes(bytes::Bytes),
}

impl InputRef {
    /// A stable 32-bit digest of the reference (the URL, or the bytes).
    pub(crate) fn fingerprint(&self) -> u32 {
        match self {
            Self::Url(u) => super::media::fingerprint(u.as_bytes()),
            Self::Bytes(b) => super::media::fingerprint(b),
        }
    }
}

/// A finished job's output.
#[derive(Debug, Clone)]
pub(crate) struct Produced {
    /// The media file name (served at `/__media/{name}`).
    pub name: String,
    /// Playing time, for video.
    pub duration: Option<f64>,
    /// Frame size.
    pub w: u32,
    /// Frame size.
    pub h: u32,
    /// MIME type.
    pub content_type: &'static str,
    /// Bytes.
    pub size: u64,
}

/// Why a job could not produce output: the input field and the reason.
#[derive(Debug, Clone)]
pub(crate) struct InputFailure {
    /// The request field holding the bad input.
    pub field: &'static str,
    /// What was wrong.
    pub reason: String,
}

/// A lazily made output shared by every result call of one job.
pub(crate) type OutputCell = Arc<tokio::sync::OnceCell<Result<Produced, InputFailure>>>;

/// Learns about an input (remote URLs are fetched when `fetch_remote_inputs` is on: their length, frames or still
/// shape the output). Counts how inputs arrive: `inputs.inline` (data URIs, uploads, base64), `inputs.url` (remote URLs, e.g.
/// presigned), and of those fetched, `inputs.url_fetched` / `inputs.url_unreadable`.
async fn resolve(shared: &Shared, input: &InputRef) -> InputMedia {
    match input {
        InputRef::Url(u) => {
            let fetch = shared.cfg.fetch_remote_inputs;
            let media = shared.media.resolve(u, &shared.http, fetch).await;
            if u.starts_with("data:") {
                shared.count("inputs.inline");
            } else if !u.contains("/__media/") {
                shared.count("inputs.url");
                if fetch {
                    shared.count(if matches!(media, InputMedia::Known { .. }) {
                        "inputs.url_fetched"
                    } else {
                        "inputs.url_unreadable"
                    });
                }
            }
            media
        }
        InputRef::Bytes(b) => {
            shared.count("inputs.inline");
            shared.media.probe_bytes(b.clone()).await
        }
    }
}

/// The frames a clip made from this image shows: the image itself when we have its bytes.
fn still_of(img: &InputMedia) -> VideoSource {
    match img {
        InputMedia::Known { bytes: Some(b), .. } => VideoSource::Still(b.clone()),
        _ => VideoSource::Pattern,
    }
}

fn fail(field: &'static str, what: &str, why: String) -> InputFailure {
    InputFailure {
        field,
        reason: format!("could not read the {what}: {why}"),
    }
}

/// Makes (or reuses) the output media for a spec.
pub(crate) async fn produce(
    shared: &Shared,
    spec: &OutputSpec,
    fields: [&'static str; 2],
) -> Result<Produced, InputFailure> {
    let (name, duration, dims) = match spec {
        OutputSpec::Training {
            zip,
            trigger,
            steps,
        } => return super::fal_training::produce(shared, zip, trigger, *steps).await,
        OutputSpec::Images {
            w,
            h,
            jpeg,
            mark,
            person,
        } => {
            let face = match person {
                Some(ask) => super::faces::still(shared, ask, (*w, *h), *jpeg).await,
                None => None,
            };
            let name = match face {
                Some(Ok(name)) => name,
                Some(Err(e)) => {
                    return Err(InputFailure {
                        field: "loras",
                        reason: e,
                    });
                }
                None => shared.media.image(*w, *h, *jpeg, *mark),
            };
            (name, None, (*w, *h))
        }
        OutputSpec::Video { secs, image } => {
            let img = resolve(shared, image).await;
            if let InputMedia::Unreadable(why) = &img {
                return Err(fail(fields[0], "image", why.clone()));
            }
            let (w, h) = shared.media.video_dims(img.dims());
            let mark = Some(image.fingerprint());
            let source = still_of(&img);
            (
                shared
                    .media
                    .video(*secs, w, h, VideoAudio::Silent, mark, source),
                Some(*secs),
                (w, h),
            )
        }
        OutputSpec::LipSync { video, audio, mode } => {
            let v = resolve(shared, video).await;
            if let InputMedia::Unreadable(why) = &v {
                return Err(fail(fields[0], "video", why.clone()));
            }
            let a = resolve(shared, audio).await;
            if let InputMedia::Unreadable(why) = &a {
                return Err(fail(fields[1], "audio", why.clone()));
            }
            let vs = v.duration().unwrap_or(DEFAULT_SECS);
            let as_ = a.duration().unwrap_or(DEFAULT_SECS);
            let secs = match mode.as_str() {
                "cut_off" => vs.min(as_),
                "silence" => vs,
                _ => as_,
            };
            let (w, h) = v
                .dims()
                .map(|d| shared.media.video_dims(Some(d)))
                .unwrap_or_else(|| shared.media.video_dims(None));
            let track = match a {
                InputMedia::Known { bytes: Some(b), .. } => VideoAudio::Track(b),
                _ => VideoAudio::Tone,
            };
            let source = match v {
                InputMedia::Known { bytes: Some(b), .. } => VideoSource::Clip(b),
                _ => VideoSource::Pattern,
            };
            (
                shared.media.video(secs, w, h, track, None, source),
                Some(secs),
                (w, h),
            )
        }
        OutputSpec::Avatar { image, audio } => {
            let img = resolve(shared, image).await;
            if let InputMedia::Unreadable(why) = &img {
                return Err(fail(fields[0], "image", why.clone()));
            }
            let a = resolve(shared, audio).await;
            if let InputMedia::Unreadable(why) = &a {
                return Err(fail(fields[1], "audio", why.clone()));
            }
            let secs = a.duration().unwrap_or(DEFAULT_SECS);
            let (w, h) = shared.media.video_dims(img.dims());
            let track = match a {
                InputMedia::Known { bytes: Some(b), .. } => VideoAudio::Track(b),
                _ => VideoAudio::Tone,
            };
            let source = still_of(&img);
            (
                shared.media.video(secs, w, h, track, None, source),
                Some(secs),
                (w, h),
            )
        }
    };
    let item = shared.media.get(&name).ok_or_else(|| InputFailure {
        field: fields[0],
        reason: "output vanished".into(),
    })?;
    let bytes = shared.media.bytes(&item).await.map_err(|e| InputFailure {
        field: fields[0],
        reason: format!("generation failed: {e}"),
    })?;
    Ok(Produced {
        name,
        duration: duration.map(|d| (d * 1000.0).round() / 1000.0),
        w: dims.0,
        h: dims.1,
        content_type: item.content_type,
        size: bytes.len() as u64,
    })
}

/// A new job's output cell, its making started at once when the job will finish (not stalled): a real
/// provider's result is ready when its job is done, so the first status or result call after the job's clock
/// runs out finds it made rather than waiting while the sandbox makes it.
pub(crate) fn made_ahead(
    shared: &Arc<Shared>,
    spec: &OutputSpec,
    fields: [&'static str; 2],
    stalled: bool,
) -> OutputCell {
    let cell = OutputCell::default();
    if !stalled {
        let (shared, spec, ahead) = (shared.clone(), spec.clone(), cell.clone());
        tokio::spawn(async move {
            let _ = output(&shared, &ahead, &spec, fields).await;
        });
    }
    cell
}

/// The output of a job, made once (counted in `outputs.made`).
pub(crate) async fn output(
    shared: &Shared,
    cell: &OutputCell,
    spec: &OutputSpec,
    fields: [&'static str; 2],
) -> Result<Produced, InputFailure> {
    cell.get_or_init(|| async {
        let made = produce(shared, spec, fields).await;
        shared.count("outputs.made");
        made
    })
    .await
    .clone()
}
