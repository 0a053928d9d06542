//! Instant fake providers and a fake media editor: they write tiny text files that say what they stand for and
//! how long they last, report those lengths, count their calls and fail on request. No tool runs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::faces::shows_in;
use crate::face::Embedding;
use crate::media::edit::{Delivery, Normalized, crossfade_offsets};
use crate::media::splice::Joined;
use crate::media::{JoinClip, MediaEditor, MediaError, MediaInfo, SpliceParts, VideoPackets};
use crate::providers::{
    AvatarRequest, ImageGen, ImageRequest, ImageToVideo, JobCtx, LipSync, LipSyncRequest,
    ProviderError, Providers, SpeechOutput, SpeechRequest, SpeechSynth, TalkingAvatar,
    VideoRequest,
};

/// First line of every fake media file.
const MAGIC: &str = "devatar-fake-media";
/// Seconds of fake speech per word, plus [`SPEECH_PAD`].
pub const SECONDS_PER_WORD: f64 = 0.4;
/// Seconds of fake speech besides the words.
pub const SPEECH_PAD: f64 = 0.2;

/// An operation of a fake (provider call or media edit), as counted by [`Calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `SpeechSynth::synthesize`.
    Speech,
    /// `ImageGen::generate`.
    Image,
    /// `ImageToVideo::animate`.
    Video,
    /// `LipSync::apply`.
    LipSync,
    /// `TalkingAvatar::speak`.
    Avatar,
    /// `MediaEditor::probe`.
    Probe,
    /// `MediaEditor::normalize`.
    Normalize,
    /// `MediaEditor::thumbnail`.
    Thumbnail,
    /// `MediaEditor::join_with_crossfades`.
    Join,
    /// `MediaEditor::prepare_join` (the clips a later join will take, prepared while others render).
    PrepareJoin,
    /// `MediaEditor::frames`.
    Frames,
    /// `FaceScorer::embeddings` (one image scored).
    Score,
}

impl Op {
    /// The provider calls (the others are media edits).
    pub const PROVIDERS: [Op; 5] = [Op::Speech, Op::Image, Op::Video, Op::LipSync, Op::Avatar];
    /// The media edits that make outputs (probing only reads).
    pub const EDITS: [Op; 3] = [Op::Normalize, Op::Thumbnail, Op::Join];
}

/// Calls made to the fakes, and the failures they were told to produce.
#[derive(Debug, Default)]
pub struct Calls {
    counts: Mutex<BTreeMap<Op, usize>>,
    /// (operation, text that makes it fail when its subject contains it).
    failures: Mutex<Vec<(Op, String)>>,
    /// Who the next stills show, in call order (see `testkit::faces`).
    pub(super) stills: Mutex<VecDeque<String>>,
    /// Who sampled frames show, cycled (empty: whoever their clip shows).
    pub(super) frames: Mutex<Vec<String>>,
    /// Each fake person's face embedding.
    pub(super) people: Mutex<HashMap<String, Embedding>>,
    /// Each image request's (seed, LoRA scale), in call order.
    pub(super) image_requests: Mutex<Vec<(Option<u64>, Option<f64>)>>,
    /// Image calls from this one on (1-based) never finish (0: all finish), like a provider that hangs.
    pub(super) stall_images_from: std::sync::atomic::AtomicUsize,
    /// The fake face scorer acts as if the face models were not installed.
    pub(super) no_face_models: std::sync::atomic::AtomicBool,
    /// The ids of the clips `prepare_join` was asked to prepare, in call order.
    prepared: Mutex<Vec<String>>,
    /// Thumbnails wait for this many normalisations first (0: they do not wait).
    thumbnails_after: std::sync::atomic::AtomicUsize,
}

impl Calls {
    /// How often `op` was called.
    pub fn count(&self, op: Op) -> usize {
        self.counts
            .lock()
            .map_or(0, |c| c.get(&op).copied().unwrap_or(0))
    }

    /// Provider calls of every kind.
    pub fn provider_calls(&self) -> usize {
        Op::PROVIDERS.iter().map(|op| self.count(*op)).sum()
    }

    /// The ids of the clips `MediaEditor::prepare_join` was asked to prepare, in call order.
    pub fn prepared_clips(&self) -> Vec<String> {
        self.prepared.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Media edits that make outputs (normalise, thumbnail, join).
    pub fn media_edits(&self) -> usize {
        Op::EDITS.iter().map(|op| self.count(*op)).sum()
    }

    /// Forgets the counts and recorded image requests (failures and face scripts stay).
    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
        if let Ok(mut r) = self.image_requests.lock() {
            r.clear();
        }
    }

    /// Makes `op` fail (as a rejected provider job, or a failed media tool) whenever its subject contains
    /// `needle`. Subjects: speech → the text; image → the prompt; video and avatar → the video prompt;
    /// lip-sync, normalise, thumbnail → the input clip's file text (which carries its video prompt); join →
    /// every input's file text.
    pub fn fail(&self, op: Op, needle: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.push((op, needle.to_string()));
        }
    }

    /// Makes every thumbnail wait until `n` clips were normalised — failing after 10 s without them.
    pub fn thumbnails_after_normalizing(&self, n: usize) {
        self.thumbnails_after
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Forgets every failure rule.
    pub fn heal(&self) {
        if let Ok(mut f) = self.failures.lock() {
            f.clear();
        }
    }

    /// Counts a call of `op`; `Err(reason)` when a failure rule matches `subject`.
    pub(super) fn call(&self, op: Op, subject: &str) -> Result<(), String> {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(op).or_default() += 1;
        }
        let failures = self.failures.lock().map_err(|e| e.to_string())?;
        match failures
            .iter()
            .find(|(o, needle)| *o == op && subject.contains(needle.as_str()))
        {
            Some((_, needle)) => Err(format!("fake {op:?} told to fail on {needle:?}")),
            None => Ok(()),
        }
    }

    /// [`call`](Self::call) as a provider sees it.
    fn provider_call(&self, op: Op, subject: &str) -> Result<(), ProviderError> {
        self.call(op, subject)
            .map_err(|message| ProviderError::Rejected {
                provider: "fake",
                message,
            })
    }

    /// [`call`](Self::call) as a media tool sees it.
    pub(super) fn media_call(&self, op: Op, subject: &str) -> Result<(), MediaError> {
        self.call(op, subject)
            .map_err(|reason| MediaError::BadOutput {
                program: "fake-media".into(),
                reason,
            })
    }
}

/// Writes a fake media file lasting `seconds` whose text is `what` (what it stands for; it makes the content,
/// and so the object key, differ whenever an input differs).
pub fn write_fake(path: &Path, seconds: f64, what: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{MAGIC}\nseconds={seconds:.3}\n{what}\n"))
}

/// The text of a fake media file.
pub(super) fn read_fake(path: &Path) -> Result<String, MediaError> {
    let bad = |reason: String| MediaError::BadOutput {
        program: "fake-media".into(),
        reason: format!("{}: {reason}", path.display()),
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    if !text.starts_with(MAGIC) {
        return Err(bad("not a fake media file".into()));
    }
    Ok(text)
}

/// The length a fake media file says it has.
pub fn fake_seconds(path: &Path) -> Result<f64, MediaError> {
    let text = read_fake(path)?;
    text.lines()
        .find_map(|l| l.strip_prefix("seconds=")?.parse().ok())
        .ok_or_else(|| MediaError::BadOutput {
            program: "fake-media".into(),
            reason: format!("{} has no length", path.display()),
        })
}

/// Short content hash of a file (fake outputs name their inputs by it).
pub(super) fn hash_of(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

/// The fake length of `text` spoken.
pub fn speech_seconds(text: &str) -> f64 {
    text.split_whitespace().count() as f64 * SECONDS_PER_WORD + SPEECH_PAD
}

/// Fake speech: [`speech_seconds`] long, no word timings (the step estimates them).
pub struct FakeSpeech(pub Arc<Calls>);

#[async_trait]
impl SpeechSynth for FakeSpeech {
    fn name(&self) -> &str {
        "fake-speech"
    }
    fn key_params(&self, req: &SpeechRequest) -> Value {
        json!({ "text": req.text, "voice": req.voice_id })
    }
    async fn synthesize(
        &self,
        req: &SpeechRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<SpeechOutput, ProviderError> {
        self.0.provider_call(Op::Speech, &req.text)?;
        let audio = work_dir.join("speech.wav");
        write_fake(
            &audio,
            speech_seconds(&req.text),
            &format!("speech: {}", req.text),
        )?;
        Ok(SpeechOutput {
            audio,
            words: None,
            seconds: None,
        })
    }
}

/// What a fake still costs (reserved against the project budget, then recorded).
pub const IMAGE_USD: f64 = 0.025;

/// A fake still of the prompt, priced at [`IMAGE_USD`].
pub struct FakeImage(pub Arc<Calls>);

#[async_trait]
impl ImageGen for FakeImage {
    fn name(&self) -> &str {
        "fake-image"
    }
    fn key_params(&self, req: &ImageRequest) -> Value {
        let lora = req.lora.as_ref().map(|l| json!([l.url, l.scale]));
        json!({ "prompt": req.prompt, "size": [req.width, req.height], "lora": lora })
    }
    fn generates(&self) -> bool {
        true
    }
    fn supports_lora(&self) -> bool {
        true
    }
    async fn generate(
        &self,
        req: &ImageRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        job.reserve("fake", IMAGE_USD)?;
        self.0.provider_call(Op::Image, &req.prompt)?;
        self.0.image_request(req).await;
        job.add_cost(IMAGE_USD);
        let still = work_dir.join("still.png");
        let what = format!(
            "still {}x{}: {}\n{}",
            req.width,
            req.height,
            req.prompt,
            self.0.next_still()
        );
        write_fake(&still, 0.0, &what)?;
        Ok(still)
    }
}

/// A fake clip of the requested bucket length.
pub struct FakeVideo(pub Arc<Calls>);

#[async_trait]
impl ImageToVideo for FakeVideo {
    fn name(&self) -> &str {
        "fake-video"
    }
    fn key_params(&self, req: &VideoRequest) -> Value {
        json!({ "prompt": req.prompt, "seconds": req.duration_seconds })
    }
    async fn animate(
        &self,
        req: &VideoRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        self.0.provider_call(Op::Video, &req.prompt)?;
        let clip = work_dir.join("clip.mp4");
        let what = format!(
            "clip of {}: {}\n{}",
            hash_of(&req.image),
            req.prompt,
            shows_in(&req.image)
        );
        write_fake(&clip, f64::from(req.duration_seconds), &what)?;
        Ok(clip)
    }
}

/// A fake lip-synced clip: speech + tail long.
pub struct FakeLipSync(pub Arc<Calls>);

#[async_trait]
impl LipSync for FakeLipSync {
    fn name(&self) -> &str {
        "fake-lipsync"
    }
    fn key_params(&self, req: &LipSyncRequest) -> Value {
        json!({ "speech": req.speech_seconds, "tail": req.tail_seconds })
    }
    async fn apply(
        &self,
        req: &LipSyncRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let video = read_fake(&req.video)?;
        self.0.provider_call(Op::LipSync, &video)?;
        let clip = work_dir.join("synced.mp4");
        let what = format!("synced {}\n{video}", hash_of(&req.audio));
        write_fake(&clip, req.speech_seconds + req.tail_seconds, &what)?;
        Ok(clip)
    }
}

/// A fake talking avatar (the `fast` animation): speech + tail long.
pub struct FakeAvatar(pub Arc<Calls>);

#[async_trait]
impl TalkingAvatar for FakeAvatar {
    fn name(&self) -> &str {
        "fake-avatar"
    }
    fn key_params(&self, req: &AvatarRequest) -> Value {
        json!({ "prompt": req.prompt, "speech": req.speech_seconds, "tail": req.tail_seconds })
    }
    async fn speak(
        &self,
        req: &AvatarRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        self.0.provider_call(Op::Avatar, &req.prompt)?;
        let clip = work_dir.join("avatar.mp4");
        let what = format!(
            "avatar of {} speaking {}: {}\n{}",
            hash_of(&req.image),
            hash_of(&req.audio),
            req.prompt,
            shows_in(&req.image)
        );
        write_fake(&clip, req.speech_seconds + req.tail_seconds, &what)?;
        Ok(clip)
    }
}

/// The fake providers sharing `calls` (with a talking avatar when `avatar`).
pub fn fake_providers(calls: &Arc<Calls>, avatar: bool) -> Providers {
    Providers {
        speech: Arc::new(FakeSpeech(calls.clone())),
        image: Arc::new(FakeImage(calls.clone())),
        video: Arc::new(FakeVideo(calls.clone())),
        lipsync: Arc::new(FakeLipSync(calls.clone())),
        avatar: avatar.then(|| Arc::new(FakeAvatar(calls.clone())) as Arc<dyn TalkingAvatar>),
    }
}

/// A fake media editor: probes fake files, "normalises" by copying the length, joins by crossfade arithmetic.
pub struct FakeMedia(pub Arc<Calls>);

/// What ffprobe would say of a delivery-format clip of `seconds`.
fn delivered(seconds: f64, d: &Delivery) -> MediaInfo {
    MediaInfo {
        duration: seconds,
        video_codec: Some("h264".into()),
        audio_codec: Some("aac".into()),
        width: d.width,
        height: d.height,
        pix_fmt: Some("yuv420p".into()),
        fps: f64::from(d.fps),
        sample_rate: d.sample_rate,
        channels: 2,
    }
}

/// Writes a fake media file, as a media tool would fail to.
fn write_media(path: &Path, seconds: f64, what: &str) -> Result<(), MediaError> {
    write_fake(path, seconds, what).map_err(|e| MediaError::BadOutput {
        program: "fake-media".into(),
        reason: format!("{}: {e}", path.display()),
    })
}

/// The fake edits of uploaded media: the file as it is.
fn copy(from: &Path, to: &Path) -> Result<(), MediaError> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| MediaError::BadOutput {
            program: "fake-media".into(),
            reason: e.to_string(),
        })
}

#[async_trait]
impl MediaEditor for FakeMedia {
    async fn probe(&self, path: &Path) -> Result<MediaInfo, MediaError> {
        self.0.media_call(Op::Probe, "")?;
        let seconds = fake_seconds(path)?;
        Ok(MediaInfo {
            duration: seconds,
            ..delivered(
                seconds,
                &Delivery {
                    width: 1280,
                    height: 720,
                    fps: 25,
                    sample_rate: 48_000,
                    crossfade: 0.0,
                },
            )
        })
    }

    async fn normalize(
        &self,
        input: &Path,
        output: &Path,
        d: &Delivery,
        burn_srt: Option<&Path>,
    ) -> Result<Normalized, MediaError> {
        let text = read_fake(input)?;
        self.0.media_call(Op::Normalize, &text)?;
        let seconds = fake_seconds(input)?;
        let what = format!(
            "normalised {}x{} captions burned: {}\n{text}",
            d.width,
            d.height,
            burn_srt.is_some()
        );
        write_media(output, seconds, &what)?;
        // Encoded: one keyframe, every frame a packet.
        let video = VideoPackets {
            plain_h264: true,
            frames: (seconds * f64::from(d.fps)).round() as u32,
            keyframes: vec![0],
            starts_at_zero: true,
        };
        Ok(Normalized {
            info: delivered(seconds, d),
            video: Some(video),
        })
    }

    async fn thumbnail(
        &self,
        input: &Path,
        output: &Path,
        at_seconds: f64,
    ) -> Result<(), MediaError> {
        self.0.media_call(Op::Thumbnail, &read_fake(input)?)?;
        let wanted = self
            .0
            .thumbnails_after
            .load(std::sync::atomic::Ordering::SeqCst);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while self.0.count(Op::Normalize) < wanted {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        waited.await.map_err(|_| MediaError::Timeout {
            program: "fake-media".into(),
            seconds: 10,
        })?;
        let what = format!("thumbnail at {at_seconds:.2} s of {}", hash_of(input));
        write_media(output, 0.0, &what)
    }

    async fn speech_wav(&self, input: &Path, output: &Path) -> Result<(), MediaError> {
        copy(input, output)
    }

    async fn composite_over(
        &self,
        still: &Path,
        _background: &Path,
        output: &Path,
        _size: (u32, u32),
    ) -> Result<(), MediaError> {
        copy(still, output)
    }

    async fn frames(
        &self,
        input: &Path,
        dir: &Path,
        at_seconds: &[f64],
    ) -> Result<Vec<PathBuf>, MediaError> {
        let text = read_fake(input)?;
        self.0.media_call(Op::Frames, &text)?;
        let mut frames = Vec::with_capacity(at_seconds.len());
        for (i, at) in at_seconds.iter().enumerate() {
            let frame = dir.join(format!("frame-{i}.png"));
            let shows = self.0.frame_shows(i, &text);
            let what = format!("frame at {at:.2} s of {}\n{shows}", hash_of(input));
            write_media(&frame, 0.0, &what)?;
            frames.push(frame);
        }
        Ok(frames)
    }

    async fn prepare_join(
        &self,
        clips: &[Option<JoinClip<'_>>],
        changed: &[usize],
        _d: &Delivery,
        _parts: &SpliceParts,
    ) -> Result<(), MediaError> {
        let ids: Vec<String> = changed
            .iter()
            .filter_map(|&i| clips.get(i).copied().flatten())
            .map(|c| c.id.to_string())
            .collect();
        self.0.media_call(Op::PrepareJoin, &ids.join("\n"))?;
        if let Ok(mut p) = self.0.prepared.lock() {
            p.extend(ids);
        }
        Ok(())
    }

    async fn join_with_crossfades(
        &self,
        inputs: &[JoinClip<'_>],
        output: &Path,
        d: &Delivery,
        _parts: &SpliceParts,
    ) -> Result<Joined, MediaError> {
        let mut texts = Vec::with_capacity(inputs.len());
        for clip in inputs {
            texts.push(read_fake(clip.path)?);
        }
        self.0.media_call(Op::Join, &texts.join("\n"))?;
        let durations: Vec<f64> = inputs.iter().map(|c| c.seconds).collect();
        let offsets = crossfade_offsets(&durations, d.crossfade);
        let seconds = offsets
            .last()
            .zip(durations.last())
            .map_or(0.0, |(o, s)| o + s);
        let names: Vec<String> = inputs.iter().map(|c| hash_of(c.path)).collect();
        write_media(output, seconds, &format!("joined {}", names.join(" + ")))?;
        Ok(Joined {
            info: delivered(seconds, d),
            offsets,
            spliced: true,
        })
    }
}
