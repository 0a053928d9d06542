//! Crossfade joins that re-encode only the frames around each crossfade and copy the rest.
//!
//! Scene clips made by FINALIZE carry no B-frames and a keyframe just after the opening crossfade and one where
//! the closing crossfade starts, so each clip splits by stream copy into head, body and tail. Every crossfade
//! piece (one clip's tail faded into the next clip's head) is encoded on its own; bodies and pieces are
//! concatenated as one Annex B H.264 stream (the same encoder settings throughout), and the audio is crossfaded
//! and encoded whole, which is cheap. Clips that do not qualify are joined by the full re-encode in `edit`.
//! Probes, bodies and pieces are kept in [`SpliceParts`] under their exact inputs, so [`prepare_splice`] can
//! make the parts of the clips known so far before the join, which then only makes the rest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::edit::{Delivery, crossfade_offsets};
use super::parts::{ClipProbe, SpliceParts};
use super::probe::{MediaInfo, probe_packets};
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
    let usable = super::edit::is_delivery_format(&info, d)
        && video.plain_h264
        && video.starts_at_zero
        && video.frames > 0;
    Ok(usable.then_some(ClipFrames {
        frames: video.frames,
        keyframes: video.keyframes,
    }))
}

/// [`clip_frames`] of `clip`, kept in `parts` under its id and the delivery format.
async fn clip_probe(
    parts: &SpliceParts,
    clip: &JoinClip<'_>,
    d: &Delivery,
) -> Result<ClipProbe, MediaError> {
    let key = format!("probe {} {d:?}", clip.id);
    parts.probe(&key, || clip_frames(clip.path, d)).await
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
    let all: Vec<usize> = (0..clips.len()).collect();
    let jobs: Vec<_> = part_list(&known, &all)
        .into_iter()
        .map(|part| make_part(parts, part, fade, d))
        .collect();
    let durations: Vec<f64> = frames
        .iter()
        .map(|c| c.frames as f64 / d.fps as f64)
        .collect();
    let fade_seconds = fade as f64 / d.fps as f64;
    let paths: Vec<&Path> = clips.iter().map(|c| c.path).collect();
    let (stream, audio) = (output.with_extension("h264"), output.with_extension("m4a"));
    // The audio is encoded while the video parts are made.
    let (files, ()) = tokio::try_join!(
        futures::stream::iter(jobs)
            .buffered(parallel)
            .try_collect::<Vec<PathBuf>>(),
        mix_audio(&paths, &durations, fade_seconds, d, &audio),
    )?;
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

/// Makes, one at a time, the probes and parts of a later [`splice_with_crossfades`] of `clips` (`None`: not
/// known yet) that involve the clips at the indices in `changed`: each one's probe and body, and the crossfade
/// pieces into and out of it whose other clip is known. Clips that cannot be spliced are left alone.
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
    Ok(())
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

/// The file of `part`, from `parts` or made by ffmpeg and kept there.
async fn make_part(
    parts: &SpliceParts,
    part: Part<'_>,
    fade: u32,
    d: &Delivery,
) -> Result<PathBuf, MediaError> {
    let key = match &part {
        Part::Body((clip, frames, (start, end))) => {
            format!("body {} {start} {end} {frames} {d:?}", clip.id)
        }
        Part::Fade((a, a_frames, (_, end)), (b, _, (head, _))) => {
            format!(
                "fade {} {a_frames} {end} {} {head} {fade} {d:?}",
                a.id, b.id
            )
        }
    };
    parts
        .file(&key, |base| async move {
            let (args, out) = match part {
                Part::Body((clip, frames, (start, end))) => {
                    body_args(clip.path, start, end, frames, &base)
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
        .await
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

/// Appends the Annex B parts into one stream.
async fn concatenate(parts: &[PathBuf], out: &Path) -> Result<(), MediaError> {
    let mut file = tokio::fs::File::create(out)
        .await
        .map_err(|e| io_error("create the spliced stream", e))?;
    for part in parts {
        let mut input = tokio::fs::File::open(part)
            .await
            .map_err(|e| io_error("open a splice part", e))?;
        tokio::io::copy(&mut input, &mut file)
            .await
            .map_err(|e| io_error("append a splice part", e))?;
    }
    Ok(())
}

/// Clips mixed by one ffmpeg at most; longer projects are mixed in groups first (see [`mix_audio`]).
const AUDIO_GROUP: usize = 32;

/// Mixes the clips' audio into `output` (see [`audio_args`]). Up to [`AUDIO_GROUP`] clips in one ffmpeg; more are
/// first mixed in groups of that many into float WAVs, whose crossfaded mix is then encoded: a crossfade chain
/// passes every earlier sample through every later crossfade, so one chain over a thousand clips did quadratic
/// work (it ran past its 600 s deadline at 1,000 scenes, with 2 GB of memory). Crossfading the groups overlaps
/// each group's last clip with the next group's first, as the single chain does, and float WAVs lose nothing.
async fn mix_audio(
    inputs: &[&Path],
    durations: &[f64],
    fade: f64,
    d: &Delivery,
    output: &Path,
) -> Result<(), MediaError> {
    mix_audio_in_groups(inputs, durations, fade, d, output, AUDIO_GROUP).await
}

/// [`mix_audio`] with groups of `group` clips.
async fn mix_audio_in_groups(
    inputs: &[&Path],
    durations: &[f64],
    fade: f64,
    d: &Delivery,
    output: &Path,
    group: usize,
) -> Result<(), MediaError> {
    if inputs.len() <= group {
        let args = audio_args(inputs, durations, fade, d, true, output);
        return run_tool("ffmpeg", &args, None, TOOL_TIMEOUT)
            .await
            .map(|_| ());
    }
    let dir = output.with_extension("groups");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io_error("create the audio group folder", e))?;
    let groups: Vec<(PathBuf, Vec<String>, f64)> = inputs
        .chunks(group)
        .zip(durations.chunks(group))
        .enumerate()
        .map(|(g, (paths, lengths))| {
            let wav = dir.join(format!("group-{g:04}.wav"));
            let args = audio_args(paths, lengths, fade, d, false, &wav);
            let seconds = lengths.iter().sum::<f64>() - fade * (lengths.len() - 1) as f64;
            (wav, args, seconds)
        })
        .collect();
    let runs: Vec<_> = groups
        .iter()
        .map(|(_, args, _)| {
            let args = args.clone();
            async move { run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await }
        })
        .collect();
    let mixed = futures::stream::iter(runs)
        .buffered(2)
        .try_collect::<Vec<_>>()
        .await;
    let result = match mixed {
        Ok(_) => {
            let wavs: Vec<&Path> = groups.iter().map(|(wav, _, _)| wav.as_path()).collect();
            let lengths: Vec<f64> = groups.iter().map(|(_, _, seconds)| *seconds).collect();
            let args = audio_args(&wavs, &lengths, fade, d, true, output);
            run_tool("ffmpeg", &args, None, TOOL_TIMEOUT)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_dir_all(&dir).await;
    result
}

/// Arguments that mix the inputs' audio, each cut or padded to its clip's video length and crossfaded, into
/// `output`: when `encode`, an MP4 holding only AAC — AAC's `fast` coder on the mix made 16-bit: for a minute of
/// audio about 1.0 s of CPU against 1.4 s for the default coder on the float mix (and 2.7 s for the `fast` coder
/// on floats) —, else a float WAV (a group of [`mix_audio`]).
fn audio_args(
    inputs: &[&Path],
    durations: &[f64],
    fade: f64,
    d: &Delivery,
    encode: bool,
    output: &Path,
) -> Vec<String> {
    let mut args = strings(&["-y", "-v", "error"]);
    for p in inputs {
        args.push("-i".into());
        args.push(p.display().to_string());
    }
    let mut graph = String::new();
    for (i, duration) in durations.iter().enumerate() {
        graph.push_str(&format!(
            "[{i}:a]aresample={},aformat=channel_layouts=stereo,apad,atrim=0:{duration:.4}[a{i}];",
            d.sample_rate
        ));
    }
    let mut prev = "a0".to_string();
    for i in 1..durations.len() {
        graph.push_str(&format!("[{prev}][a{i}]acrossfade=d={fade:.4}[x{i}];"));
        prev = format!("x{i}");
    }
    if encode {
        graph.push_str(&format!("[{prev}]aformat=sample_fmts=s16[mix]"));
    } else {
        graph.push_str(&format!("[{prev}]anull[mix]"));
    }
    args.extend(strings(&["-filter_complex", &graph, "-map", "[mix]"]));
    if encode {
        args.extend(strings(&[
            "-c:a",
            "aac",
            "-aac_coder",
            "fast",
            "-b:a",
            "128k",
            "-f",
            "mp4",
        ]));
    } else {
        args.extend(strings(&["-c:a", "pcm_f32le", "-f", "wav"]));
    }
    args.push(output.display().to_string());
    args
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

    /// Mixing in groups gives the single chain's mix (the same samples, give or take rounding), so a long
    /// project's audio is the one a short project's code would make.
    #[tokio::test]
    async fn audio_mixed_in_groups_matches_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut clips = Vec::new();
        for (i, secs) in [0.9, 1.2, 0.7, 1.0, 0.8].iter().enumerate() {
            let path = dir.path().join(format!("c{i}.m4a"));
            let tone = format!("sine=f={}:d={secs}", 220 + 110 * i);
            let args = strings(&[
                "-y", "-v", "error", "-f", "lavfi", "-i", &tone, "-c:a", "aac",
            ]);
            let mut args = args;
            args.push(path.display().to_string());
            run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await.unwrap();
            clips.push((path, *secs));
        }
        let paths: Vec<&Path> = clips.iter().map(|(p, _)| p.as_path()).collect();
        let lengths: Vec<f64> = clips.iter().map(|(_, s)| *s).collect();
        let d = Delivery {
            width: 64,
            height: 64,
            fps: 25,
            sample_rate: 48_000,
            crossfade: 0.2,
        };
        let pcm = |mixed: &Path| {
            let mut args = strings(&["-v", "error", "-i"]);
            args.push(mixed.display().to_string());
            args.extend(strings(&["-f", "s16le", "-ac", "1", "-"]));
            async move { run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await }
        };
        let (one, grouped) = (dir.path().join("one.m4a"), dir.path().join("grouped.m4a"));
        mix_audio_in_groups(&paths, &lengths, 0.2, &d, &one, 8)
            .await
            .unwrap();
        mix_audio_in_groups(&paths, &lengths, 0.2, &d, &grouped, 2)
            .await
            .unwrap();
        assert!(
            !dir.path().join("grouped.groups").exists(),
            "group files left behind"
        );
        let (a, b) = (pcm(&one).await.unwrap(), pcm(&grouped).await.unwrap());
        let samples = |b: &[u8]| -> Vec<i32> {
            b.chunks_exact(2)
                .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                .collect()
        };
        let (a, b) = (samples(&a), samples(&b));
        // 0.9 + 1.2 + 0.7 + 1.0 + 0.8 - 4 x 0.2 = 3.8 s.
        assert!(
            (a.len() as f64 / 48_000.0 - 3.8).abs() < 0.05,
            "{}",
            a.len()
        );
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .max()
            .unwrap_or(0);
        assert!(worst <= 64, "the grouped mix differs by up to {worst}");
    }

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
