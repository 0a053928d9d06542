//! Real media for the fakes: made with ffmpeg (once per distinct recipe), kept in memory, served at
//! `/__media/{name}` with optional download faults.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt as _;
use sha2::Digest as _;

use super::FakesError;
use super::faults::FaultAction;

const FFMPEG_TIMEOUT: Duration = Duration::from_secs(180);
/// Largest input the fakes fetch or decode to measure it.
const INPUT_CAP: usize = 256 * 1024 * 1024;

/// Speech audio encodings the ElevenLabs fake produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AudioFormat {
    /// MP3 at a sample rate and bitrate (kbit/s).
    Mp3 { sample_rate: u32, kbps: u32 },
    /// Raw signed 16-bit little-endian mono PCM.
    Pcm { sample_rate: u32 },
    /// 8 kHz µ-law.
    Ulaw,
}

impl AudioFormat {
    /// Parses an ElevenLabs `output_format` (`mp3_44100_128`, `pcm_16000`, `ulaw_8000`).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('_').collect();
        match parts.as_slice() {
            ["mp3", sr, kbps] => {
                let sample_rate: u32 = sr.parse().ok()?;
                let kbps: u32 = kbps.parse().ok()?;
                let ok = matches!(
                    (sample_rate, kbps),
                    (22050, 32)
                        | (44100, 32)
                        | (44100, 64)
                        | (44100, 96)
                        | (44100, 128)
                        | (44100, 192)
                );
                ok.then_some(AudioFormat::Mp3 { sample_rate, kbps })
            }
            ["pcm", sr] => {
                let sample_rate: u32 = sr.parse().ok()?;
                [8000, 16000, 22050, 24000, 44100, 48000]
                    .contains(&sample_rate)
                    .then_some(AudioFormat::Pcm { sample_rate })
            }
            ["ulaw", "8000"] => Some(AudioFormat::Ulaw),
            _ => None,
        }
    }

    /// The MIME type ElevenLabs labels it with.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Mp3 { .. } => "audio/mpeg",
            AudioFormat::Pcm { .. } | AudioFormat::Ulaw => "application/octet-stream",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            AudioFormat::Mp3 { .. } => "mp3",
            AudioFormat::Pcm { .. } => "pcm",
            AudioFormat::Ulaw => "ulaw",
        }
    }
}

/// The sound track of a generated video.
#[derive(Clone)]
pub(crate) enum VideoAudio {
    /// No audio stream (Kling image-to-video).
    Silent,
    /// A synthetic tone.
    Tone,
    /// This audio file, padded or cut to the video's length.
    Track(Bytes),
}

/// What a generated video's frames show.
#[derive(Clone)]
pub(crate) enum VideoSource {
    /// A test pattern (with the corner mark, when there is one).
    Pattern,
    /// A slow zoom on this still (image-to-video, talking avatar): the input's face stays in every frame.
    Still(Bytes),
    /// This clip's frames, looped or cut to the length (lip-sync).
    Clip(Bytes),
}

#[derive(Clone)]
enum Recipe {
    /// Bytes made elsewhere (a sandbox face still).
    Ready {
        bytes: Bytes,
        content_type: &'static str,
        w: u32,
        h: u32,
    },
    Image {
        w: u32,
        h: u32,
        jpeg: bool,
        /// A 24-bit colour drawn as a corner mark, so distinct requests get distinct pictures.
        mark: Option<u32>,
    },
    Speech {
        secs: f64,
        format: AudioFormat,
        /// Tone pitch in Hz (distinct texts sound distinct).
        pitch: u32,
    },
    /// A flat grey clip, every frame a keyframe, with a quiet tone when `sound` (the base of pre-made clips).
    Flat {
        secs: f64,
        w: u32,
        h: u32,
        sound: bool,
    },
    Video {
        secs: f64,
        w: u32,
        h: u32,
        audio: VideoAudio,
        /// A corner mark colour (distinct inputs give distinct clips).
        mark: Option<u32>,
        /// What the frames show.
        source: VideoSource,
    },
}

/// One servable file.
pub(crate) struct MediaItem {
    /// Its name (`/__media/{name}`).
    name: String,
    /// Its MIME type.
    pub content_type: &'static str,
    /// Playing time, for audio and video.
    pub duration: Option<f64>,
    /// Frame size, for images and video.
    pub dims: Option<(u32, u32)>,
    recipe: Recipe,
    cell: tokio::sync::OnceCell<Result<Bytes, String>>,
}

/// What the fakes learned about an input URL or upload.
#[derive(Debug, Clone)]
pub(crate) enum InputMedia {
    /// Readable media.
    Known {
        /// Its bytes, when we have them.
        bytes: Option<Bytes>,
        /// Playing time.
        duration: Option<f64>,
        /// Frame size.
        dims: Option<(u32, u32)>,
    },
    /// We got bytes, and they are not media.
    Unreadable(String),
    /// Not fetched (remote, or fetching is off).
    Unknown,
}

impl InputMedia {
    /// Its duration, if known.
    pub(crate) fn duration(&self) -> Option<f64> {
        match self {
            InputMedia::Known { duration, .. } => *duration,
            _ => None,
        }
    }

    /// Its frame size, if known.
    pub(crate) fn dims(&self) -> Option<(u32, u32)> {
        match self {
            InputMedia::Known { dims, .. } => *dims,
            _ => None,
        }
    }
}

/// What is known of a file made here: its length and frame size.
type Measured = (Option<f64>, Option<(u32, u32)>);

/// Generated media, by name.
pub(crate) struct MediaStore {
    dir: tempfile::TempDir,
    ffmpeg: PathBuf,
    mp3_encoder: &'static str,
    h264: bool,
    items: Mutex<HashMap<String, Arc<MediaItem>>>,
    seq: AtomicU64,
    /// Pre-made media (`--premade-media`): see [`MediaStore::with_premade`].
    premade: bool,
    /// With pre-made media: the length and frame size of every file made here, by SHA-256, so an input that
    /// comes back (a clip or speech uploaded to lip-sync) is known without ffprobe.
    known: Mutex<HashMap<[u8; 32], Measured>>,
}

/// An owned copy of one ffmpeg argument.
fn s(x: &str) -> String {
    x.to_string()
}

/// Owned copies of ffmpeg arguments.
fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|x| x.to_string()).collect()
}

fn fmt_secs(secs: f64) -> String {
    format!("{secs:.3}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MediaStore {
    /// Finds ffmpeg, picks encoders and makes the sample files (`sample.png`, `sample.mp3`, `sample.mp4`).
    pub(crate) async fn new() -> Result<Self, FakesError> {
        let ffmpeg = crate::media::find_tool("ffmpeg").ok_or_else(|| {
            FakesError::Media("ffmpeg is not installed (sudo apt-get install -y ffmpeg)".into())
        })?;
        let program = ffmpeg.display().to_string();
        let encoders = crate::media::run_tool(
            &program,
            &["-hide_banner".into(), "-encoders".into()],
            None,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| FakesError::Media(e.to_string()))?;
        let encoders = String::from_utf8_lossy(&encoders);
        let has = |name: &str| encoders.split_whitespace().any(|w| w == name);
        // libmp3lame is the usual MP3 encoder; libshine is the fallback (44.1 kHz only). Without either, no MP3.
        let mp3_encoder = if has("libmp3lame") {
            "libmp3lame"
        } else if has("libshine") {
            "libshine"
        } else {
            return Err(FakesError::Media(
                "ffmpeg has no MP3 encoder (libmp3lame or libshine)".into(),
            ));
        };
        let dir = tempfile::Builder::new()
            .prefix("devatar-fakes-")
            .tempdir()
            .map_err(|e| FakesError::Media(format!("temp dir: {e}")))?;
        let store = Self {
            dir,
            ffmpeg,
            mp3_encoder,
            h264: has("libx264"),
            items: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            premade: false,
            known: Mutex::default(),
        };
        let samples = [
            store.register(
                "sample.png",
                Recipe::Image {
                    w: 512,
                    h: 512,
                    jpeg: false,
                    mark: None,
                },
            ),
            store.register(
                "sample.mp3",
                Recipe::Speech {
                    secs: 3.0,
                    format: AudioFormat::Mp3 {
                        sample_rate: 44100,
                        kbps: 128,
                    },
                    pitch: BASE_PITCH,
                },
            ),
            store.register(
                "sample.mp4",
                Recipe::Video {
                    secs: 3.0,
                    w: 640,
                    h: 360,
                    audio: VideoAudio::Tone,
                    mark: None,
                    source: VideoSource::Pattern,
                },
            ),
        ];
        for item in samples {
            store.bytes(&item).await.map_err(FakesError::Media)?;
        }
        Ok(store)
    }

    /// The same store serving pre-made media: each kind of speech or clip (one length and size) is made once
    /// with ffmpeg and every job gets a copy made distinct by a few bytes of metadata (an MP3 ID3v1 tag, an MP4
    /// `free` box, a raw audio file's last sample); stills are flat grey with a corner square of the job's
    /// colour, drawn in process. So outputs still differ per job while the sandbox does next to no media work.
    /// Clips are a flat grey, every frame a keyframe, at twice the usual size (1280×720 for 16:9): for benchmarks
    /// of devatar itself (`bench/scenes.sh`), not for tests of what the media show.
    pub(crate) fn with_premade(mut self, premade: bool) -> Self {
        self.premade = premade;
        self
    }

    /// The frame size of a clip made from an input of this aspect ([`video_dims_for`]; doubled with pre-made
    /// media).
    pub(crate) fn video_dims(&self, aspect: Option<(u32, u32)>) -> (u32, u32) {
        let (w, h) = video_dims_for(aspect);
        if self.premade { (w * 2, h * 2) } else { (w, h) }
    }

    fn register(&self, name: &str, recipe: Recipe) -> Arc<MediaItem> {
        let mut items = lock(&self.items);
        if let Some(existing) = items.get(name) {
            return existing.clone();
        }
        let (content_type, duration, dims) = match &recipe {
            Recipe::Ready {
                content_type, w, h, ..
            } => (*content_type, None, Some((*w, *h))),
            Recipe::Image { w, h, jpeg, .. } => (
                if *jpeg { "image/jpeg" } else { "image/png" },
                None,
                Some((*w, *h)),
            ),
            Recipe::Speech { secs, format, .. } => (format.content_type(), Some(*secs), None),
            Recipe::Video { secs, w, h, .. } | Recipe::Flat { secs, w, h, .. } => {
                ("video/mp4", Some(*secs), Some((*w, *h)))
            }
        };
        let item = Arc::new(MediaItem {
            name: name.to_string(),
            content_type,
            duration,
            dims,
            recipe,
            cell: tokio::sync::OnceCell::new(),
        });
        items.insert(name.to_string(), item.clone());
        item
    }

    /// The item called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<MediaItem>> {
        lock(&self.items).get(name).cloned()
    }

    /// Registers a still image carrying `mark` (a 24-bit colour: one per prompt and seed, like a real
    /// generator's distinct pictures); returns its name.
    pub(crate) fn image(&self, w: u32, h: u32, jpeg: bool, mark: u32) -> String {
        let mark = mark & 0xFF_FFFF;
        let name = format!(
            "image-{w}x{h}-{mark:06x}.{}",
            if jpeg { "jpg" } else { "png" }
        );
        let mark = Some(mark);
        self.register(&name, Recipe::Image { w, h, jpeg, mark });
        name
    }

    /// Registers ready-made image bytes under `name` (a sandbox face still); returns the name.
    pub(crate) fn ready_image(
        &self,
        name: &str,
        bytes: Bytes,
        jpeg: bool,
        w: u32,
        h: u32,
    ) -> String {
        let content_type = if jpeg { "image/jpeg" } else { "image/png" };
        let recipe = Recipe::Ready {
            bytes,
            content_type,
            w,
            h,
        };
        self.register(name, recipe);
        name.to_string()
    }

    /// Registers a video; returns its name. Videos with a given audio track, or showing an input, get a name of
    /// their own. `mark` (a 24-bit colour from the input) makes clips of distinct inputs distinct, as a real
    /// model's are.
    pub(crate) fn video(
        &self,
        secs: f64,
        w: u32,
        h: u32,
        audio: VideoAudio,
        mark: Option<u32>,
        source: VideoSource,
    ) -> String {
        let ms = (secs * 1000.0).round() as u64;
        let mark = mark.map(|m| m & 0xFF_FFFF);
        let shows_input = !matches!(source, VideoSource::Pattern);
        let name = match (&audio, mark) {
            _ if shows_input => format!(
                "clip-{}-{ms}ms-{w}x{h}.mp4",
                self.seq.fetch_add(1, Ordering::Relaxed)
            ),
            (VideoAudio::Silent, Some(m)) => format!("video-{ms}ms-{w}x{h}-{m:06x}-silent.mp4"),
            (VideoAudio::Silent, None) => format!("video-{ms}ms-{w}x{h}-silent.mp4"),
            (VideoAudio::Tone, _) => format!("video-{ms}ms-{w}x{h}-tone.mp4"),
            (VideoAudio::Track(_), _) => {
                format!(
                    "clip-{}-{ms}ms.mp4",
                    self.seq.fetch_add(1, Ordering::Relaxed)
                )
            }
        };
        self.register(
            &name,
            Recipe::Video {
                secs,
                w,
                h,
                audio,
                mark,
                source,
            },
        );
        name
    }

    /// Speech-like audio of `secs` seconds in `format`, pitched by `text` so distinct texts give distinct audio.
    pub(crate) async fn speech(
        &self,
        secs: f64,
        format: AudioFormat,
        text: &str,
    ) -> Result<Bytes, String> {
        let ms = (secs * 1000.0).round() as u64;
        let print = fingerprint(text.as_bytes());
        let pitch = BASE_PITCH + print % 120;
        // Pre-made speech differs by text, not only by pitch (120 pitches for a thousand lines would repeat).
        let voice = if self.premade {
            format!("{print:08x}")
        } else {
            format!("{pitch}hz")
        };
        let name = format!("speech-{ms}ms-{voice}-{format:?}.{}", format.ext())
            .replace([' ', '{', '}', ':', ','], "");
        let item = self.register(
            &name,
            Recipe::Speech {
                secs,
                format,
                pitch,
            },
        );
        self.bytes(&item).await
    }

    /// The bytes of an item, making them on first use.
    pub(crate) async fn bytes(&self, item: &MediaItem) -> Result<Bytes, String> {
        if !self.premade {
            return item
                .cell
                .get_or_init(|| self.make(item.recipe.clone()))
                .await
                .clone();
        }
        item.cell
            .get_or_init(|| async {
                let made = self.premade(item).await?;
                let digest: [u8; 32] = sha2::Sha256::digest(&made).into();
                lock(&self.known).insert(digest, (item.duration, item.dims));
                Ok(made)
            })
            .await
            .clone()
    }

    /// A pre-made file for `item`: the made-once base of its kind, marked with the item's name.
    async fn premade(&self, item: &MediaItem) -> Result<Bytes, String> {
        let ms = |secs: f64| (secs * 1000.0).round() as u64;
        let (base, recipe) = match &item.recipe {
            Recipe::Ready { bytes, .. } => return Ok(bytes.clone()),
            // A still must differ in its pixels (a still re-encoded downstream loses any metadata): drawn here.
            &Recipe::Image { w, h, jpeg, mark } => {
                let mark = mark.unwrap_or_else(|| fingerprint(item.name.as_bytes()));
                return tokio::task::spawn_blocking(move || flat_still(w, h, jpeg, mark))
                    .await
                    .map_err(|e| format!("drawing a still stopped: {e}"))?;
            }
            Recipe::Speech { secs, format, .. } => (
                format!("base-speech-{}ms-{format:?}", ms(*secs)),
                Recipe::Speech {
                    secs: *secs,
                    format: *format,
                    pitch: BASE_PITCH,
                },
            ),
            Recipe::Video {
                secs, w, h, audio, ..
            } => {
                let sound = !matches!(audio, VideoAudio::Silent);
                (
                    format!("base-clip-{}ms-{w}x{h}-{sound}", ms(*secs)),
                    Recipe::Flat {
                        secs: *secs,
                        w: *w,
                        h: *h,
                        sound,
                    },
                )
            }
            Recipe::Flat { .. } => return self.make(item.recipe.clone()).await,
        };
        let base = {
            let mut items = lock(&self.items);
            items
                .entry(base.clone())
                .or_insert_with(|| {
                    Arc::new(MediaItem {
                        name: base,
                        content_type: item.content_type,
                        duration: item.duration,
                        dims: item.dims,
                        recipe,
                        cell: tokio::sync::OnceCell::new(),
                    })
                })
                .clone()
        };
        let bytes = base
            .cell
            .get_or_init(|| self.make(base.recipe.clone()))
            .await
            .clone()?;
        Ok(marked(&bytes, &item.recipe, item.name.as_bytes()))
    }

    fn tmp(&self, ext: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("tmp-{n}.{ext}"))
    }

    async fn ffmpeg(&self, args: Vec<String>, out: &PathBuf) -> Result<Bytes, String> {
        let mut full: Vec<String> = vec![
            "-y".into(),
            "-hide_banner".into(),
            "-v".into(),
            "error".into(),
        ];
        full.extend(args);
        full.push(out.display().to_string());
        let program = self.ffmpeg.display().to_string();
        let result = crate::media::run_tool(&program, &full, None, FFMPEG_TIMEOUT).await;
        let bytes = match result {
            Ok(_) => tokio::fs::read(out)
                .await
                .map(Bytes::from)
                .map_err(|e| format!("reading ffmpeg output: {e}")),
            Err(e) => Err(e.to_string()),
        };
        let _ = tokio::fs::remove_file(out).await;
        bytes
    }

    fn tone(secs: f64, sample_rate: u32, pitch: u32) -> String {
        // A tone with a 3 Hz syllable-like envelope.
        format!(
            "aevalsrc=0.3*sin(2*PI*{pitch}*t)*(0.6+0.4*sin(2*PI*3*t)):s={sample_rate}:d={}",
            fmt_secs(secs)
        )
    }

    /// Renders a recipe with ffmpeg.
    async fn make(&self, recipe: Recipe) -> Result<Bytes, String> {
        match recipe {
            Recipe::Ready { bytes, .. } => Ok(bytes),
            Recipe::Image { w, h, jpeg, mark } => self.make_image(w, h, jpeg, mark).await,
            Recipe::Speech {
                secs,
                format,
                pitch,
            } => self.make_speech(secs, format, pitch).await,
            Recipe::Flat { secs, w, h, sound } => self.make_flat(secs, (w, h), sound).await,
            Recipe::Video {
                secs,
                w,
                h,
                audio,
                mark,
                source,
            } => {
                let shown = self.make_video(secs, (w, h), audio.clone(), mark, source.clone());
                match shown.await {
                    // An input ffmpeg cannot read still gets a clip: the test pattern.
                    Err(e) if !matches!(source, VideoSource::Pattern) => {
                        tracing::warn!(
                            "fakes: the clip cannot show its input ({e}); a test pattern instead"
                        );
                        self.make_video(secs, (w, h), audio, mark, VideoSource::Pattern)
                            .await
                    }
                    made => made,
                }
            }
        }
    }

    /// Renders one test-pattern still (PNG, or JPEG at quality 4), with an optional corner mark.
    async fn make_image(
        &self,
        w: u32,
        h: u32,
        jpeg: bool,
        mark: Option<u32>,
    ) -> Result<Bytes, String> {
        let out = self.tmp(if jpeg { "jpg" } else { "png" });
        let mut args = strings(&["-f", "lavfi", "-i"]);
        args.push(format!("testsrc2=s={w}x{h}:r=1"));
        args.extend(strings(&["-frames:v", "1"]));
        if let Some(mark) = mark {
            args.extend([s("-vf"), corner_mark(w, h, mark)]);
        }
        if jpeg {
            args.extend(strings(&["-q:v", "4"]));
        }
        self.ffmpeg(args, &out).await
    }

    /// The sample rate, encoder arguments and file extension for speech in `format` (libshine only does 44.1 kHz).
    fn speech_encoding(&self, format: AudioFormat) -> (u32, Vec<String>, &'static str) {
        match format {
            AudioFormat::Mp3 { sample_rate, kbps } => {
                let rate = if self.mp3_encoder == "libshine" {
                    44100
                } else {
                    sample_rate
                };
                let mut tail = strings(&["-c:a", self.mp3_encoder, "-b:a"]);
                tail.push(format!("{kbps}k"));
                tail.extend(strings(&["-f", "mp3"]));
                (rate, tail, "mp3")
            }
            AudioFormat::Pcm { sample_rate } => (
                sample_rate,
                strings(&["-f", "s16le", "-c:a", "pcm_s16le"]),
                "pcm",
            ),
            AudioFormat::Ulaw => (8000, strings(&["-f", "mulaw"]), "ulaw"),
        }
    }

    /// Renders `secs` seconds of mono speech-like tone at `pitch` Hz in `format`.
    async fn make_speech(
        &self,
        secs: f64,
        format: AudioFormat,
        pitch: u32,
    ) -> Result<Bytes, String> {
        let (rate, tail, ext) = self.speech_encoding(format);
        let out = self.tmp(ext);
        let mut args = strings(&["-f", "lavfi", "-i"]);
        args.push(Self::tone(secs, rate, pitch));
        args.extend([s("-ac"), s("1"), s("-ar"), rate.to_string()]);
        args.extend(tail);
        self.ffmpeg(args, &out).await
    }

    /// The video encoder arguments: H.264 when ffmpeg has libx264, MPEG-4 Part 2 otherwise.
    fn video_codec_args(&self) -> Vec<String> {
        if self.h264 {
            strings(&[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ])
        } else {
            strings(&["-c:v", "mpeg4", "-q:v", "5"])
        }
    }

    /// The video input arguments for `source`, the filter its frames need (put after every input) and the
    /// temporary file holding a still or clip (the caller removes it).
    async fn video_input(
        &self,
        secs: f64,
        (w, h): (u32, u32),
        mark: Option<u32>,
        source: &VideoSource,
    ) -> Result<(Vec<String>, Option<String>, Option<PathBuf>), String> {
        let fill =
            format!("scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1");
        let (bytes, looped) = match source {
            VideoSource::Pattern => {
                let source = format!("testsrc2=s={w}x{h}:r=25:d={}", fmt_secs(secs));
                let source = match mark {
                    Some(m) => format!("{source},{}", corner_mark(w, h, m)),
                    None => source,
                };
                return Ok((vec![s("-f"), s("lavfi"), s("-i"), source], None, None));
            }
            VideoSource::Still(b) => (b, false),
            VideoSource::Clip(b) => (b, true),
        };
        let f = self.tmp("input");
        tokio::fs::write(&f, bytes)
            .await
            .map_err(|e| format!("writing the video input: {e}"))?;
        let frames = ((secs * 25.0).ceil() as u64).max(1);
        let filter = if looped {
            format!("{fill},fps=25")
        } else {
            // A slow push-in on the still, centred: its face stays whole in every frame.
            format!(
                "{fill},zoompan=z='min(zoom+0.0008,1.08)':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={frames}:s={w}x{h}:fps=25"
            )
        };
        let mut args = Vec::new();
        if looped {
            args.extend(strings(&["-stream_loop", "-1"]));
        }
        args.extend([s("-i"), f.display().to_string()]);
        Ok((args, Some(filter), Some(f)))
    }

    /// Renders a clip of `secs` seconds showing `source`, with the given sound track.
    async fn make_video(
        &self,
        secs: f64,
        (w, h): (u32, u32),
        audio: VideoAudio,
        mark: Option<u32>,
        source: VideoSource,
    ) -> Result<Bytes, String> {
        let out = self.tmp("mp4");
        let (mut args, filter, input_file) = self.video_input(secs, (w, h), mark, &source).await?;
        let mut track_file = None;
        match &audio {
            VideoAudio::Silent => {}
            VideoAudio::Tone => {
                args.extend(strings(&["-f", "lavfi", "-i"]));
                args.push(Self::tone(secs, 44100, BASE_PITCH));
            }
            VideoAudio::Track(bytes) => {
                let f = self.tmp("audio");
                tokio::fs::write(&f, bytes)
                    .await
                    .map_err(|e| format!("writing audio track: {e}"))?;
                args.extend([s("-i"), f.display().to_string()]);
                track_file = Some(f);
            }
        }
        args.extend(strings(&["-map", "0:v:0"]));
        if let Some(filter) = filter {
            args.extend([s("-vf"), filter]);
        }
        args.extend(self.video_codec_args());
        if !matches!(audio, VideoAudio::Silent) {
            args.extend(strings(&[
                "-map", "1:a:0", "-c:a", "aac", "-b:a", "96k", "-ar", "44100", "-af", "apad",
            ]));
        }
        args.extend([s("-t"), fmt_secs(secs), s("-movflags"), s("+faststart")]);
        let r = self.ffmpeg(args, &out).await;
        for f in [input_file, track_file].into_iter().flatten() {
            let _ = tokio::fs::remove_file(f).await;
        }
        r
    }

    /// Renders a flat grey clip of `secs` seconds, every frame a keyframe (so it can be cut anywhere), with a
    /// quiet tone when `sound`.
    async fn make_flat(&self, secs: f64, (w, h): (u32, u32), sound: bool) -> Result<Bytes, String> {
        let out = self.tmp("mp4");
        let mut args = strings(&["-f", "lavfi", "-i"]);
        args.push(format!(
            "color=c=0x505050:s={w}x{h}:r=25:d={}",
            fmt_secs(secs)
        ));
        if sound {
            args.extend(strings(&["-f", "lavfi", "-i"]));
            args.push(Self::tone(secs, 44100, BASE_PITCH));
        }
        args.extend(self.video_codec_args());
        args.extend(strings(&["-g", "1", "-bf", "0"]));
        if sound {
            args.extend(strings(&["-c:a", "aac", "-b:a", "64k"]));
        }
        args.extend([s("-t"), fmt_secs(secs), s("-movflags"), s("+faststart")]);
        self.ffmpeg(args, &out).await
    }

    /// Measures bytes with ffprobe.
    pub(crate) async fn probe_bytes(&self, bytes: Bytes) -> InputMedia {
        if bytes.is_empty() {
            return InputMedia::Unreadable("the file is empty".into());
        }
        if self.premade {
            // Our own files come back as they were made; stills tell their size in their header.
            let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
            let known = lock(&self.known).get(&digest).copied();
            if let Some((duration, dims)) =
                known.or_else(|| Some((None, Some(image_dims(&bytes)?))))
            {
                return InputMedia::Known {
                    bytes: Some(bytes),
                    duration,
                    dims,
                };
            }
        }
        let f = self.tmp("input");
        if let Err(e) = tokio::fs::write(&f, &bytes).await {
            return InputMedia::Unreadable(format!("could not store the input: {e}"));
        }
        let probed = crate::media::probe(&f).await;
        let _ = tokio::fs::remove_file(&f).await;
        match probed {
            Ok(info) => InputMedia::Known {
                bytes: Some(bytes),
                duration: (info.duration > 0.0).then_some(info.duration),
                dims: (info.width > 0 && info.height > 0).then_some((info.width, info.height)),
            },
            Err(_) => InputMedia::Unreadable("the file is not readable media".into()),
        }
    }

    /// Learns what it can about an input URL: our own `/__media` files, `data:` URIs, and (when `fetch` is
    /// on) other http(s) URLs.
    pub(crate) async fn resolve(
        &self,
        url: &str,
        http: &reqwest::Client,
        fetch: bool,
    ) -> InputMedia {
        if let Some(rest) = url.strip_prefix("data:") {
            return match decode_data_uri(rest) {
                Ok(bytes) => self.probe_bytes(bytes).await,
                Err(e) => InputMedia::Unreadable(e),
            };
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return InputMedia::Unknown;
        };
        if let Some(name) = parsed.path().strip_prefix("/__media/")
            && let Some(item) = self.get(name)
        {
            return match self.bytes(&item).await {
                Ok(bytes) => InputMedia::Known {
                    bytes: Some(bytes),
                    duration: item.duration,
                    dims: item.dims,
                },
                Err(e) => InputMedia::Unreadable(e),
            };
        }
        if !fetch || !matches!(parsed.scheme(), "http" | "https") {
            return InputMedia::Unknown;
        }
        match fetch_capped(http, url).await {
            Some(bytes) => self.probe_bytes(bytes).await,
            None => InputMedia::Unknown,
        }
    }
}

/// The body of `url`, when it answers 200 within [`INPUT_CAP`] bytes.
pub(crate) async fn fetch_capped(http: &reqwest::Client, url: &str) -> Option<Bytes> {
    let mut resp = http.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > INPUT_CAP {
            return None;
        }
    }
    Some(Bytes::from(buf))
}

/// The pitch of the sample speech, Hz.
const BASE_PITCH: u32 = 180;

/// 32 bits of SHA-256: stable marks for distinct inputs.
pub(crate) fn fingerprint(bytes: &[u8]) -> u32 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(bytes);
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A flat grey still of `w`×`h` with a square of colour `mark` (24 bits) in its top-left corner, as PNG or JPEG.
fn flat_still(w: u32, h: u32, jpeg: bool, mark: u32) -> Result<Bytes, String> {
    let [_, r, g, b] = mark.to_be_bytes();
    let side = (w.min(h) / 8).max(8);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        if x < side && y < side {
            image::Rgb([r, g, b])
        } else {
            image::Rgb([80, 80, 80])
        }
    });
    let format = if jpeg {
        image::ImageOutputFormat::Jpeg(85)
    } else {
        image::ImageOutputFormat::Png
    };
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .map_err(|e| format!("encoding a still: {e}"))?;
    Ok(Bytes::from(out.into_inner()))
}

/// `base` made distinct by `tag` without changing what it plays or shows: an ID3v1 tag after MP3 frames, a `free`
/// box after an MP4's boxes, or the last sample of raw audio.
fn marked(base: &[u8], recipe: &Recipe, tag: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(base.len() + tag.len() + 160);
    match recipe {
        Recipe::Speech {
            format: AudioFormat::Mp3 { .. },
            ..
        } => {
            let mut id3 = [0u8; 128];
            id3[..3].copy_from_slice(b"TAG");
            let title = format!("{:08x}", fingerprint(tag));
            id3[3..3 + title.len()].copy_from_slice(title.as_bytes());
            out.extend_from_slice(base);
            out.extend_from_slice(&id3);
        }
        Recipe::Speech { .. } => {
            out.extend_from_slice(base);
            let n = out.len();
            let print = fingerprint(tag).to_le_bytes();
            let last = n.saturating_sub(2);
            out[last..].copy_from_slice(&print[..n - last]);
        }
        Recipe::Video { .. } | Recipe::Flat { .. } => {
            out.extend_from_slice(base);
            out.extend_from_slice(&((tag.len() + 8) as u32).to_be_bytes());
            out.extend_from_slice(b"free");
            out.extend_from_slice(tag);
        }
        _ => out.extend_from_slice(base),
    }
    Bytes::from(out)
}

/// An ffmpeg filter drawing a filled square of colour `mark` in the top-left corner.
fn corner_mark(w: u32, h: u32, mark: u32) -> String {
    let side = (w.min(h) / 6).max(8);
    format!(
        "drawbox=x=0:y=0:w={side}:h={side}:color=0x{:06x}:t=fill",
        mark & 0xFF_FFFF
    )
}

/// Decodes the part of a `data:` URI after `data:`.
pub(crate) fn decode_data_uri(rest: &str) -> Result<Bytes, String> {
    let (meta, payload) = rest.split_once(',').ok_or("malformed data URI")?;
    if meta.ends_with(";base64") {
        decode_base64(payload).map(Bytes::from)
    } else {
        Ok(Bytes::from(
            url::form_urlencoded::parse(payload.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect::<String>()
                .into_bytes(),
        ))
    }
}

/// Standard base64, padding optional.
pub(crate) fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    if s.len() > INPUT_CAP * 4 / 3 {
        return Err("the payload is too large".into());
    }
    engine
        .decode(s.trim())
        .map_err(|e| format!("invalid base64: {e}"))
}

/// Width and height of a PNG or JPEG, read from its header.
pub(crate) fn image_dims(b: &[u8]) -> Option<(u32, u32)> {
    if b.len() >= 24 && b.starts_with(b"\x89PNG\r\n\x1a\n") {
        let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
        let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
        return Some((w, h));
    }
    if b.len() > 4 && b[0] == 0xFF && b[1] == 0xD8 {
        let mut i = 2;
        while i + 9 < b.len() {
            if b[i] != 0xFF {
                i += 1;
                continue;
            }
            let marker = b[i + 1];
            if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) || marker == 0xFF
            {
                i += if marker == 0xFF { 1 } else { 2 };
                continue;
            }
            let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
            let sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if sof {
                let h = u16::from_be_bytes([b[i + 5], b[i + 6]]) as u32;
                let w = u16::from_be_bytes([b[i + 7], b[i + 8]]) as u32;
                return Some((w, h));
            }
            i += 2 + len;
        }
    }
    None
}

/// A 640-wide-ish frame size following an aspect ratio (even sides, height 360 for landscape).
pub(crate) fn video_dims_for(aspect: Option<(u32, u32)>) -> (u32, u32) {
    let Some((w, h)) = aspect.filter(|(w, h)| *w > 0 && *h > 0) else {
        return (640, 360);
    };
    let even = |x: f64| ((x / 2.0).round() as u32).clamp(64, 640) * 2;
    if w >= h {
        (even(360.0 * w as f64 / h as f64), 360)
    } else {
        (360, even(360.0 * h as f64 / w as f64))
    }
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn parse_range(headers: &HeaderMap, len: usize) -> Option<Result<(usize, usize), ()>> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (s, "") => (s.parse().ok()?, len.saturating_sub(1)),
        (s, e) => {
            let (s, e): (usize, usize) = (s.parse().ok()?, e.parse().ok()?);
            (s, e.min(len.saturating_sub(1)))
        }
    };
    if r.0 >= len || r.0 > r.1 {
        return Some(Err(()));
    }
    Some(Ok(r))
}

/// A 416 `InvalidRange` S3 error for a file of `len` bytes, with its `Content-Range: bytes */len`.
fn range_not_satisfiable(len: usize) -> Response {
    let mut r = s3_error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "InvalidRange",
        "The requested range is not satisfiable",
    );
    if let Ok(v) = format!("bytes */{len}").parse() {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// A 200 response streaming `body`, labelled `content_type`, with no other headers.
fn streamed<S>(body: S, content_type: &'static str) -> Response
where
    S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

/// The answer a download fault replaces the file with, or `None` when `fault` is not one that does.
fn media_fault_response(
    fault: &FaultAction,
    bytes: &Bytes,
    item: &MediaItem,
    uri: &axum::http::Uri,
) -> Option<Response> {
    Some(match fault {
        FaultAction::Error(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = match e.status {
                403 => "AccessDenied",
                404 => "NoSuchKey",
                503 => "SlowDown",
                _ => "InternalError",
            };
            s3_error(status, code, "injected fault")
        }
        FaultAction::Expired => {
            s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
        }
        FaultAction::Html => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>",
        )
            .into_response(),
        FaultAction::MediaJson => super::util::json(
            200,
            serde_json::json!({"error": "file not found", "code": 404}),
        ),
        FaultAction::RangeNotSatisfiable => range_not_satisfiable(bytes.len()),
        FaultAction::Redirect => {
            let target = match uri.query() {
                Some(q) => format!("{}?{q}&hop=1", uri.path()),
                None => format!("{}?hop=1", uri.path()),
            };
            (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
        }
        FaultAction::Truncate => truncated(bytes, item.content_type),
        FaultAction::NoLength => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
                .chunks(16 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            streamed(futures::stream::iter(chunks), item.content_type)
        }
        FaultAction::Oversize => {
            let filler = Bytes::from(vec![0u8; 64 * 1024]);
            let stream =
                futures::stream::iter(std::iter::once(bytes.clone()).chain(std::iter::repeat(filler)))
                    .map(Ok::<Bytes, std::io::Error>);
            streamed(stream, item.content_type)
        }
        _ => return None,
    })
}

/// The `Truncate` fault: the first half of the file goes out (headers, including the full
/// `Content-Length`, first) before the body fails and the connection closes.
fn truncated(bytes: &Bytes, content_type: &'static str) -> Response {
    let half = bytes.slice(0..bytes.len() / 2);
    let full = bytes.len();
    let stream = futures::stream::iter(vec![Ok::<Bytes, std::io::Error>(half)]).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "truncated by fault",
            ))
        }),
    );
    let mut r = streamed(stream, content_type);
    if let Ok(v) = full.to_string().parse() {
        r.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    r
}

/// Serves one media file, honouring `Range` and the media faults.
pub(crate) async fn serve(
    store: &MediaStore,
    item: &MediaItem,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    faults: &[FaultAction],
) -> Response {
    let bytes = match store.bytes(item).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("fakes: media generation failed: {e}");
            return s3_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "media generation failed",
            );
        }
    };
    if let Some(r) = faults
        .iter()
        .find_map(|f| media_fault_response(f, &bytes, item, uri))
    {
        return r;
    }
    let ignore_range = faults.iter().any(|f| matches!(f, FaultAction::IgnoreRange));
    let range = if ignore_range {
        None
    } else {
        parse_range(headers, bytes.len())
    };
    let (status, body, content_range) = match range {
        Some(Err(())) => return range_not_satisfiable(bytes.len()),
        Some(Ok((a, b))) => (
            StatusCode::PARTIAL_CONTENT,
            bytes.slice(a..=b),
            Some(format!("bytes {a}-{b}/{}", bytes.len())),
        ),
        None => (StatusCode::OK, bytes, None),
    };
    file_response(
        status,
        body,
        content_range,
        item.content_type,
        method == Method::HEAD,
    )
}

/// The file (or the requested part of it) with its type, `Accept-Ranges`, length and `Content-Range`
/// headers; a HEAD request gets the headers with an empty body.
fn file_response(
    status: StatusCode,
    body: Bytes,
    content_range: Option<String>,
    content_type: &'static str,
    head: bool,
) -> Response {
    let len = body.len();
    let mut r = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body))
    };
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    if let Ok(v) = len.to_string().parse() {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Some(cr) = content_range
        && let Ok(v) = cr.parse()
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_formats_parse() {
        assert_eq!(
            AudioFormat::parse("mp3_44100_128"),
            Some(AudioFormat::Mp3 {
                sample_rate: 44100,
                kbps: 128
            })
        );
        assert_eq!(
            AudioFormat::parse("pcm_16000"),
            Some(AudioFormat::Pcm { sample_rate: 16000 })
        );
        assert_eq!(AudioFormat::parse("mp3_44100_999"), None);
        assert_eq!(AudioFormat::parse("flac"), None);
    }

    #[test]
    fn png_dims_and_video_sizes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&1024u32.to_be_bytes());
        png.extend_from_slice(&576u32.to_be_bytes());
        assert_eq!(image_dims(&png), Some((1024, 576)));
        assert_eq!(video_dims_for(Some((1024, 576))), (640, 360));
        assert_eq!(video_dims_for(Some((576, 1024))), (360, 640));
        assert_eq!(video_dims_for(None), (640, 360));
    }

    #[test]
    fn data_uris_decode() {
        assert_eq!(
            decode_data_uri("audio/mpeg;base64,SUQz").ok(),
            Some(Bytes::from_static(b"ID3"))
        );
        assert!(decode_data_uri("audio/mpeg;base64,@@@").is_err());
        assert!(decode_data_uri("nocomma").is_err());
    }
}
