//! Crossfade joins that re-encode only the frames around each crossfade and copy the rest.
//!
//! Scene clips made by FINALIZE carry no B-frames and a keyframe just after the opening crossfade and one where
//! the closing crossfade starts, so each clip splits by stream copy into head, body and tail. Every crossfade
//! piece (one clip's tail faded into the next clip's head) is encoded on its own; bodies and pieces are
//! concatenated as one Annex B H.264 stream (the same encoder settings throughout), and the audio is crossfaded
//! and encoded by one AAC encoder fed clip by clip (`mix`). Clips that do not qualify are joined by the full
//! re-encode in `edit`. Probes, bodies and pieces are kept in [`SpliceParts`] under their exact inputs, and the
//! audio of the first clips is fed there, so [`prepare_splice`] can do the work of the clips known so far before
//! the join, which then only does the rest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::edit::{Delivery, crossfade_offsets};
use super::mix::{AudioMix, pcm_args};
use super::parts::{AudioState, ClipProbe, SpliceParts};
use super::probe::{MediaInfo, VideoPackets, probe_packets};
use super::process::{MediaError, run_tool};

/// x264 settings shared by scene clips and crossfade pieces: without B-frames every packet is one frame in
/// presentation order, so pieces concatenate as a plain stream.
pub const X264_ARGS: &[&str] = &[
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "22", "-bf", "0",
];

const TOOL_TIMEOUT: Duration = Duration::from_secs(600);

/// Whole frames in a crossfade of `seconds` at `fps`: never longer than asked (scene clips end with a tail of
/// exactly the crossfade, so a longer fade would cover speech), at least one.
pub fn fade_frames(seconds: f64, fps: u32) -> u32 {
    ((seconds * fps as f64 + 1e-6).floor() as u32).max(1)
}

/// The `-force_key_frames` times that make a clip of about `frames` frames splittable around crossfades of
/// `fade` frames: half a frame before each cut, so rounding cannot push the keyframe one frame late.
pub fn splice_keyframe_times(frames: u32, fade: u32, fps: u32) -> Option<String> {
    let tail = frames.checked_sub(fade)?;
    (tail > fade).then(|| {
        let at = |frame: u32| (frame as f64 - 0.5) / fps as f64;
        format!("{:.4},{:.4}", at(fade), at(tail))
    })
}

/// One clip's frame count and keyframe indices.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipFrames {
    /// Video frames.
    pub frames: u32,
    /// Indices of keyframes, ascending.
    pub keyframes: Vec<u32>,
}

/// One clip of a join: its file, its length in seconds and the identity of its content (e.g. its object key),
/// under which its probe and the parts made from it are kept.
#[derive(Debug, Clone, Copy)]
pub struct JoinClip<'a> {
    /// The clip file.
    pub path: &'a Path,
    /// Its length, seconds.
    pub seconds: f64,
    /// What it holds: equal ids must mean equal files.
    pub id: &'a str,
}

/// The frames `[start, end)` of one clip that are copied when it is the `first` and/or `last` clip of a join;
/// `None` when it has no keyframe where a cut needs one, or would have no body left.
pub fn cut_of(c: &ClipFrames, first: bool, last: bool, fade: u32) -> Option<(u32, u32)> {
    let start = if first {
        0
    } else {
        *c.keyframes.iter().find(|&&k| k >= fade)?
    };
    let end = if last {
        c.frames
    } else {
        let limit = c.frames.checked_sub(fade)?;
        *c.keyframes.iter().rev().find(|&&k| k <= limit)?
    };
    (start < end && c.keyframes.contains(&0)).then_some((start, end))
}

/// The frames `[start, end)` of each clip that are copied; everything else is re-encoded in a crossfade piece.
/// `None` when some clip cannot be cut (see [`cut_of`]).
pub fn plan_cuts(clips: &[ClipFrames], fade: u32) -> Option<Vec<(u32, u32)>> {
    let last = clips.len().checked_sub(1)?;
    clips
        .iter()
        .enumerate()
        .map(|(i, c)| cut_of(c, i == 0, i == last, fade))
        .collect()
}

/// Frames and keyframes of a clip in the delivery format `d` and plain H.264 whose video starts at 0 (the
/// crossfade pieces find frames by time); `None` for any other clip. One ffprobe start-up.
async fn clip_frames(path: &Path, d: &Delivery) -> Result<ClipProbe, MediaError> {
    let (info, video) = probe_packets(path).await?;
    Ok(splice_probe(&info, &video, d))
}

/// What a clip's probe tells a splice in the delivery format `d` (see [`clip_frames`]).
fn splice_probe(info: &MediaInfo, video: &VideoPackets, d: &Delivery) -> ClipProbe {
    let usable = super::edit::is_delivery_format(info, d)
        && video.plain_h264
        && video.starts_at_zero
        && video.frames > 0;
    usable.then(|| ClipFrames {
        frames: video.frames,
        keyframes: video.keyframes.clone(),
    })
}

/// The name of clip `id`'s probe in [`SpliceParts`].
fn probe_key(id: &str, d: &Delivery) -> String {
    format!("probe {id} {d:?}")
}

/// Keeps the probe of clip `id` (its content identity, as in [`JoinClip::id`]) made where the clip was encoded
/// (`edit::Normalized`), so neither the pre-joiner nor the join starts ffprobe for it again.
pub fn seed_probe(
    parts: &SpliceParts,
    id: &str,
    d: &Delivery,
    info: &MediaInfo,
    video: &VideoPackets,
) {
    parts.seed_probe(&probe_key(id, d), splice_probe(info, video, d));
}

/// [`clip_frames`] of `clip`, kept in `parts` under its id and the delivery format.
async fn clip_probe(
    parts: &SpliceParts,
    clip: &JoinClip<'_>,
    d: &Delivery,
) -> Result<ClipProbe, MediaError> {
    parts
        .probe(&probe_key(clip.id, d), || clip_frames(clip.path, d))
        .await
}

/// A joined video and where each input starts in it, seconds.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Probe of the output.
    pub info: MediaInfo,
    /// Start of each input in the output.
    pub offsets: Vec<f64>,
    /// True when only the crossfades were encoded.
    pub spliced: bool,
}

/// Joins delivery-format clips with crossfades of about `crossfade` seconds (whole frames, never longer), copying
/// everything but the crossfades; probes and parts already in `parts` are reused, new ones are kept there. The
/// spliced stream is written beside `output`. `Ok(None)` when the clips cannot be spliced (the caller
/// re-encodes instead).
pub async fn splice_with_crossfades(
    clips: &[JoinClip<'_>],
    output: &Path,
    d: &Delivery,
    crossfade: f64,
    parts: &SpliceParts,
) -> Result<Option<Joined>, MediaError> {
    if clips.len() < 2 {
        return Ok(None);
    }
    let parallel = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    // Futures made before they are streamed: a closure in the stream trips the `Send` check (rust#102211).
    let probes: Vec<_> = clips.iter().map(|c| clip_probe(parts, c, d)).collect();
    let probed: Vec<ClipProbe> = futures::stream::iter(probes)
        .buffered(parallel * 2)
        .try_collect()
        .await?;
    let Some(frames) = probed.into_iter().collect::<Option<Vec<ClipFrames>>>() else {
        return Ok(None);
    };
    let fade = fade_frames(crossfade, d.fps);
    let Some(cuts) = plan_cuts(&frames, fade) else {
        return Ok(None);
    };
    let known: Vec<Option<Known>> = clips
        .iter()
        .zip(frames.iter().zip(&cuts))
        .map(|(clip, (f, cut))| Some((*clip, f.frames, *cut)))
        .collect();
    let durations: Vec<f64> = frames
        .iter()
        .map(|c| c.frames as f64 / d.fps as f64)
        .collect();
    let fade_seconds = fade as f64 / d.fps as f64;
    let stream = output.with_extension("h264");
    let (files, audio) = make_parts_and_audio(parts, &known, fade, d, parallel).await?;
    concatenate(&files, &stream).await?;
    let mux = mux_args(&stream, &audio, d.fps, output);
    run_tool("ffmpeg", &mux, None, TOOL_TIMEOUT).await?;
    let _ = tokio::fs::remove_file(&stream).await;
    let _ = tokio::fs::remove_file(&audio).await;
    Ok(Some(Joined {
        info: check_spliced(output, &frames, fade).await?,
        offsets: crossfade_offsets(&durations, fade_seconds),
        spliced: true,
    }))
}

/// Makes every part of the join of `known` (every clip known), `parallel` at a time, in stream order, and
/// finishes the project audio meanwhile: the mix fed ahead gets the clips after it, each as soon as its body
/// (which holds its audio as PCM) is made. Returns the part files and the encoded audio.
async fn make_parts_and_audio(
    parts: &SpliceParts,
    known: &[Option<Known<'_>>],
    fade: u32,
    d: &Delivery,
    parallel: usize,
) -> Result<(Vec<PathBuf>, PathBuf), MediaError> {
    let all: Vec<usize> = (0..known.len()).collect();
    // Futures made before they are streamed: a closure in the stream trips the `Send` check (rust#102211).
    let jobs: Vec<_> = part_list(known, &all)
        .into_iter()
        .map(|part| make_part(parts, part, fade, d))
        .collect();
    let (mut mix, fed) = mix_for_join(parts, known, fade, d).await?;
    let (bodies, mut made_bodies) = tokio::sync::mpsc::unbounded_channel::<()>();
    let pcms: Vec<(PathBuf, &JoinClip, f64)> = known
        .iter()
        .flatten()
        .map(|k| (pcm_path(parts, k, d), &k.0, k.1 as f64 / d.fps as f64))
        .collect();
    let make_all = async move {
        let mut files = Vec::new();
        let mut made = futures::stream::iter(jobs).buffered(parallel);
        while let Some((file, body)) = made.try_next().await? {
            if body {
                let _ = bodies.send(());
            }
            files.push(file);
        }
        Ok::<_, MediaError>(files)
    };
    let finish_audio = async {
        for (i, (pcm, clip, seconds)) in pcms.iter().enumerate() {
            // Bodies are made in stream order: this is clip i's (the fed clips' bodies are passed over).
            made_bodies.recv().await;
            if i >= fed {
                mix.push(pcm, clip.path, *seconds, clip.id).await?;
            }
        }
        mix.finish().await
    };
    tokio::try_join!(make_all, finish_audio)
}

/// Makes, one at a time, the probes and parts of a later [`splice_with_crossfades`] of `clips` (`None`: not
/// known yet) that involve the clips at the indices in `changed`: each one's probe and body, and the crossfade
/// pieces into and out of it whose other clip is known (clips that cannot be spliced are left alone); then feeds
/// the project audio with the known clips that follow those fed.
pub async fn prepare_splice(
    clips: &[Option<JoinClip<'_>>],
    changed: &[usize],
    d: &Delivery,
    crossfade: f64,
    parts: &SpliceParts,
) -> Result<(), MediaError> {
    if clips.len() < 2 {
        return Ok(());
    }
    let fade = fade_frames(crossfade, d.fps);
    let last = clips.len() - 1;
    let mut known: Vec<Option<Known>> = vec![None; clips.len()];
    for &i in changed {
        for j in i.saturating_sub(1)..=(i + 1).min(last) {
            let Some(clip) = clips[j].filter(|_| known[j].is_none()) else {
                continue;
            };
            if let Some(f) = clip_probe(parts, &clip, d).await? {
                known[j] = cut_of(&f, j == 0, j == last, fade).map(|cut| (clip, f.frames, cut));
            }
        }
    }
    for part in part_list(&known, changed) {
        make_part(parts, part, fade, d).await?;
    }
    feed_ahead(parts, clips, fade, d).await
}

/// Feeds the project audio in `parts` with the clips after those fed whose bodies are made, in order (starting
/// the mix, or again when it holds other clips; nothing once a join took it).
async fn feed_ahead(
    parts: &SpliceParts,
    clips: &[Option<JoinClip<'_>>],
    fade: u32,
    d: &Delivery,
) -> Result<(), MediaError> {
    let mut state = parts.audio().await;
    let fed = match &*state {
        AudioState::Taken => return Ok(()),
        AudioState::Feeding(mix) if holds_first(mix, clips.iter().map(|c| c.map(|c| c.id))) => {
            Some(mix.fed().len())
        }
        _ => None,
    };
    let mut ready = Vec::new();
    let last = clips.len() - 1;
    for (j, clip) in clips.iter().enumerate().skip(fed.unwrap_or(0)) {
        let Some(clip) = clip else { break };
        let Some(f) = clip_probe(parts, clip, d).await? else {
            break;
        };
        let Some(cut) = cut_of(&f, j == 0, j == last, fade) else {
            break;
        };
        let known = (*clip, f.frames, cut);
        if parts
            .made_file(&part_key(&Part::Body(known), fade, d))
            .is_none()
        {
            break;
        }
        ready.push((
            pcm_path(parts, &known, d),
            *clip,
            f.frames as f64 / d.fps as f64,
        ));
    }
    if ready.is_empty() {
        return Ok(());
    }
    if fed.is_none() {
        *state = AudioState::Feeding(Box::new(
            parts.start_mix(d, fade as f64 / d.fps as f64).await?,
        ));
    }
    let AudioState::Feeding(mix) = &mut *state else {
        return Ok(());
    };
    for (pcm, clip, seconds) in ready {
        if let Err(e) = mix.push(&pcm, clip.path, seconds, clip.id).await {
            *state = AudioState::Idle;
            return Err(e);
        }
        parts.count_fed_ahead();
    }
    Ok(())
}

/// The mix a join of `known` (every clip known) finishes, taken from `parts`: the one fed ahead when it holds
/// the first clips, else a new one; and how many clips it holds.
async fn mix_for_join(
    parts: &SpliceParts,
    known: &[Option<Known<'_>>],
    fade: u32,
    d: &Delivery,
) -> Result<(AudioMix, usize), MediaError> {
    let taken = std::mem::replace(&mut *parts.audio().await, AudioState::Taken);
    match taken {
        AudioState::Feeding(mix) if holds_first(&mix, known.iter().map(|k| k.map(|k| k.0.id))) => {
            let fed = mix.fed().len();
            Ok((*mix, fed))
        }
        _ => Ok((parts.start_mix(d, fade as f64 / d.fps as f64).await?, 0)),
    }
}

/// True when the clips `mix` was fed are the first of `ids` (`None`: not known).
fn holds_first<'a>(mix: &AudioMix, mut ids: impl Iterator<Item = Option<&'a str>>) -> bool {
    mix.fed()
        .iter()
        .all(|fed| ids.next().flatten() == Some(fed.as_str()))
}

/// The PCM audio file written beside the body of `clip`.
fn pcm_path(parts: &SpliceParts, clip: &Known<'_>, d: &Delivery) -> PathBuf {
    let base = parts.part_path(&part_key(&Part::Body(*clip), 0, d));
    PathBuf::from(format!("{}.pcm", base.display()))
}

/// A clip whose cut is known: the clip, its frames and the frames `[start, end)` copied.
type Known<'a> = (JoinClip<'a>, u32, (u32, u32));

/// One part of a spliced stream.
enum Part<'a> {
    /// A clip's copied frames.
    Body(Known<'a>),
    /// The crossfade piece from one clip's tail into the next clip's head.
    Fade(Known<'a>, Known<'a>),
}

/// The parts involving the clips at `at` (their bodies, the pieces into and out of them) that the known clips
/// allow, each once, in stream order.
fn part_list<'a>(known: &[Option<Known<'a>>], at: &[usize]) -> Vec<Part<'a>> {
    let mut wanted = std::collections::BTreeSet::new();
    for &i in at {
        wanted.insert((i, false));
        wanted.insert((i, true));
        if i > 0 {
            wanted.insert((i - 1, true));
        }
    }
    wanted
        .into_iter()
        .filter_map(|(i, fade)| {
            let here = (*known.get(i)?)?;
            if !fade {
                return Some(Part::Body(here));
            }
            Some(Part::Fade(here, (*known.get(i + 1)?)?))
        })
        .collect()
}

/// The name of `part` in [`SpliceParts`]: everything it is made of.
fn part_key(part: &Part<'_>, fade: u32, d: &Delivery) -> String {
    match part {
        Part::Body((clip, frames, (start, end))) => {
            format!("body {} {start} {end} {frames} {d:?}", clip.id)
        }
        Part::Fade((a, a_frames, (_, end)), (b, _, (head, _))) => {
            format!(
                "fade {} {a_frames} {end} {} {head} {fade} {d:?}",
                a.id, b.id
            )
        }
    }
}

/// The file of `part`, from `parts` or made by ffmpeg and kept there; true when it is a body (whose clip's audio
/// is written beside it, see [`pcm_path`]).
async fn make_part(
    parts: &SpliceParts,
    part: Part<'_>,
    fade: u32,
    d: &Delivery,
) -> Result<(PathBuf, bool), MediaError> {
    let key = part_key(&part, fade, d);
    let body = matches!(part, Part::Body(_));
    let file = parts
        .file(&key, |base| async move {
            let (args, out) = match part {
                Part::Body((clip, frames, (start, end))) => {
                    let (mut args, out) = body_args(clip.path, start, end, frames, &base);
                    let pcm = PathBuf::from(format!("{}.pcm", base.display()));
                    args.extend(pcm_args(d.sample_rate, &pcm));
                    (args, out)
                }
                Part::Fade((a, a_frames, (_, end)), (b, _, (head, _))) => {
                    let tail = a_frames - end;
                    let args = fade_args(a.path, b.path, end, tail, head, fade, d.fps, &base);
                    (args, base)
                }
            };
            run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await?;
            Ok(out)
        })
        .await?;
    Ok((file, body))
}

/// The spliced output must hold exactly the frames the crossfades leave; returns its probe.
async fn check_spliced(
    output: &Path,
    clips: &[ClipFrames],
    fade: u32,
) -> Result<MediaInfo, MediaError> {
    let expected = clips.iter().map(|c| c.frames).sum::<u32>() - fade * (clips.len() as u32 - 1);
    let (info, video) = probe_packets(output).await?;
    if !video.plain_h264 || video.frames != expected {
        return Err(MediaError::BadOutput {
            program: "ffmpeg".into(),
            reason: format!(
                "spliced video has {} frames, expected {expected}",
                video.frames
            ),
        });
    }
    Ok(info)
}

fn io_error(what: &str, e: std::io::Error) -> MediaError {
    MediaError::BadOutput {
        program: "splice".into(),
        reason: format!("could not {what}: {e}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Copies frames `[start, end)` of `input`'s video as Annex B (both cuts are keyframes or the ends); returns
/// the arguments and the file that will hold the body.
fn body_args(
    input: &Path,
    start: u32,
    end: u32,
    frames: u32,
    name: &Path,
) -> (Vec<String>, PathBuf) {
    let mut args = strings(&["-y", "-v", "error", "-i"]);
    args.push(input.display().to_string());
    args.extend(strings(&[
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-bsf:v",
        "h264_mp4toannexb",
    ]));
    let cuts: Vec<String> = [start, end]
        .into_iter()
        .filter(|&f| f > 0 && f < frames)
        .map(|f| f.to_string())
        .collect();
    if cuts.is_empty() {
        args.extend(strings(&["-f", "h264"]));
        args.push(name.display().to_string());
        return (args, name.to_path_buf());
    }
    // The segment muxer splits exactly at the listed keyframes; the body follows the first cut when the clip
    // is cut at its start.
    args.extend(strings(&[
        "-f",
        "segment",
        "-segment_format",
        "h264",
        "-segment_frames",
    ]));
    args.push(cuts.join(","));
    args.push(format!("{}.%d", name.display()));
    let body = format!("{}.{}", name.display(), u8::from(start > 0));
    (args, PathBuf::from(body))
}

/// Encodes the crossfade between `a`'s last `tail` frames (from frame `from`, a keyframe) and `b`'s first
/// `head` frames. `a` is read from that keyframe on (an input seek, not a decode of the whole clip); the trim
/// by timestamp keeps the piece exact should the seek land earlier.
#[allow(clippy::too_many_arguments)]
fn fade_args(
    a: &Path,
    b: &Path,
    from: u32,
    tail: u32,
    head: u32,
    fade: u32,
    fps: u32,
    out: &Path,
) -> Vec<String> {
    let offset = (tail - fade) as f64 / fps as f64;
    let duration = fade as f64 / fps as f64;
    let at = |frames: f64| format!("{:.6}", frames / fps as f64);
    let (seek, keep_from) = (at(from as f64 + 0.25), at(from as f64 - 0.5));
    let graph = format!(
        "[0:v]trim=start={keep_from},setpts=PTS-STARTPTS,settb=AVTB[a];\
         [1:v]trim=end_frame={head},setpts=PTS-STARTPTS,settb=AVTB[b];\
         [a][b]xfade=transition=fade:duration={duration:.4}:offset={offset:.4},format=yuv420p[v]"
    );
    let mut args = strings(&["-y", "-v", "error", "-copyts", "-noaccurate_seek", "-ss"]);
    args.push(seek);
    args.push("-i".into());
    args.push(a.display().to_string());
    args.push("-i".into());
    args.push(b.display().to_string());
    args.extend(strings(&["-filter_complex", &graph, "-map", "[v]"]));
    args.extend(strings(X264_ARGS));
    args.push("-frames:v".into());
    args.push((tail + head - fade).to_string());
    args.extend(strings(&["-bsf:v", "h264_mp4toannexb", "-f", "h264"]));
    args.push(out.display().to_string());
    args
}

/// Appends the Annex B parts into one stream, on a blocking thread with the standard library's copy (a kernel
/// copy on Linux): tokio's file copy made two blocking-pool trips per 8 KiB, about 120 per clip.
async fn concatenate(parts: &[PathBuf], out: &Path) -> Result<(), MediaError> {
    let parts = parts.to_vec();
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file =
            std::fs::File::create(&out).map_err(|e| io_error("create the spliced stream", e))?;
        for part in &parts {
            let mut input =
                std::fs::File::open(part).map_err(|e| io_error("open a splice part", e))?;
            std::io::copy(&mut input, &mut file)
                .map_err(|e| io_error("append a splice part", e))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| io_error("append the splice parts", std::io::Error::other(e)))?
}

/// Muxes the spliced video stream and the encoded audio into `output`, copying both.
fn mux_args(video: &Path, audio: &Path, fps: u32, output: &Path) -> Vec<String> {
    let mut args = strings(&["-y", "-v", "error", "-f", "h264", "-framerate"]);
    args.push(fps.to_string());
    args.push("-i".into());
    args.push(video.display().to_string());
    args.push("-i".into());
    args.push(audio.display().to_string());
    args.extend(strings(&[
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
        "-movflags",
        "+faststart",
    ]));
    args.push(output.display().to_string());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(frames: u32, keyframes: &[u32]) -> ClipFrames {
        ClipFrames {
            frames,
            keyframes: keyframes.to_vec(),
        }
    }

    #[test]
    fn cuts_sit_on_keyframes_outside_the_crossfades() {
        let clips = [
            clip(60, &[0, 8, 33, 52]),
            clip(60, &[0, 8, 52]),
            clip(50, &[0, 9]),
        ];
        assert_eq!(plan_cuts(&clips, 8), Some(vec![(0, 52), (8, 52), (9, 50)]));
    }

    #[test]
    fn a_clip_without_usable_keyframes_is_not_spliced() {
        // One GOP: the middle clip has no keyframe after its opening crossfade.
        assert_eq!(plan_cuts(&[clip(60, &[0]), clip(60, &[0])], 8), None);
        // A clip too short to keep a body between its crossfades.
        assert_eq!(
            plan_cuts(
                &[clip(60, &[0, 52]), clip(10, &[0, 8]), clip(60, &[0, 8])],
                8
            ),
            None
        );
    }

    #[test]
    fn keyframe_times_fall_half_a_frame_before_each_cut() {
        assert_eq!(
            splice_keyframe_times(60, 8, 25).as_deref(),
            Some("0.3000,2.0600")
        );
        assert_eq!(splice_keyframe_times(16, 8, 25), None);
        assert_eq!(fade_frames(0.3, 25), 7);
        assert_eq!(fade_frames(0.3, 30), 9);
    }
}
