//! Crossfade joins that re-encode only the frames around each crossfade and copy the rest.
//!
//! Scene clips made by FINALIZE carry no B-frames and a keyframe just after the opening crossfade and one where
//! the closing crossfade starts, so each clip splits by stream copy into head, body and tail. Every crossfade
//! piece (one clip's tail faded into the next clip's head) is encoded on its own; bodies and pieces are
//! concatenated as one Annex B H.264 stream (the same encoder settings throughout), and the audio is crossfaded
//! and encoded whole, which is cheap. Clips that do not qualify are joined by the full re-encode in `edit`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::edit::{Delivery, crossfade_offsets};
use super::probe::{MediaInfo, probe};
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

/// The frames `[start, end)` of each clip that are copied; everything else is re-encoded in a crossfade piece.
/// `None` when some clip has no keyframe where a cut needs one, or would have no body left.
pub fn plan_cuts(clips: &[ClipFrames], fade: u32) -> Option<Vec<(u32, u32)>> {
    let last = clips.len().checked_sub(1)?;
    clips
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let start = if i == 0 {
                0
            } else {
                *c.keyframes.iter().find(|&&k| k >= fade)?
            };
            let end = if i == last {
                c.frames
            } else {
                let limit = c.frames.checked_sub(fade)?;
                *c.keyframes.iter().rev().find(|&&k| k <= limit)?
            };
            (start < end && c.keyframes.contains(&0)).then_some((start, end))
        })
        .collect()
}

#[derive(Deserialize)]
struct PacketProbe {
    #[serde(default)]
    streams: Vec<StreamProbe>,
    #[serde(default)]
    packets: Vec<PacketFlags>,
}

#[derive(Deserialize)]
struct StreamProbe {
    codec_name: Option<String>,
    has_b_frames: Option<u32>,
}

#[derive(Deserialize)]
struct PacketFlags {
    flags: Option<String>,
}

/// Frame count and keyframes of an H.264 clip without B-frames; `None` for any other clip.
async fn clip_frames(path: &Path) -> Result<Option<ClipFrames>, MediaError> {
    let args: Vec<String> = [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,has_b_frames:packet=flags",
        "-of",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(path.display().to_string()))
    .collect();
    let out = run_tool("ffprobe", &args, None, TOOL_TIMEOUT).await?;
    let parsed: PacketProbe = serde_json::from_slice(&out).map_err(|e| MediaError::BadOutput {
        program: "ffprobe".into(),
        reason: e.to_string(),
    })?;
    let plain_h264 = parsed
        .streams
        .first()
        .is_some_and(|s| s.codec_name.as_deref() == Some("h264") && s.has_b_frames == Some(0));
    if !plain_h264 || parsed.packets.is_empty() {
        return Ok(None);
    }
    let keyframes = parsed
        .packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.flags.as_deref().is_some_and(|f| f.starts_with('K')))
        .map(|(i, _)| i as u32)
        .collect();
    Ok(Some(ClipFrames {
        frames: parsed.packets.len() as u32,
        keyframes,
    }))
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
/// everything but the crossfades. `Ok(None)` when the clips cannot be spliced (the caller re-encodes instead).
pub async fn splice_with_crossfades(
    inputs: &[&Path],
    output: &Path,
    d: &Delivery,
    crossfade: f64,
    work: &Path,
) -> Result<Option<Joined>, MediaError> {
    if inputs.len() < 2 {
        return Ok(None);
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parallel = cores.clamp(2, 4);
    let Some(clips) = probe_clips(inputs, d, parallel).await? else {
        return Ok(None);
    };
    let fade = fade_frames(crossfade, d.fps);
    let Some(cuts) = plan_cuts(&clips, fade) else {
        return Ok(None);
    };
    tokio::fs::create_dir_all(work)
        .await
        .map_err(|e| io_error("create the splice folder", e))?;

    let jobs = part_jobs(inputs, &clips, &cuts, fade, d.fps, work);
    let parts = run_part_jobs(jobs, parallel).await?;

    let stream = work.join("video.h264");
    concatenate(&parts, &stream).await?;
    let durations: Vec<f64> = clips
        .iter()
        .map(|c| c.frames as f64 / d.fps as f64)
        .collect();
    let fade_seconds = fade as f64 / d.fps as f64;
    run_tool(
        "ffmpeg",
        &mux_args(&stream, inputs, &durations, fade_seconds, d, output),
        None,
        TOOL_TIMEOUT,
    )
    .await?;

    check_spliced_frames(output, &clips, fade).await?;
    Ok(Some(Joined {
        info: probe(output).await?,
        offsets: crossfade_offsets(&durations, fade_seconds),
        spliced: true,
    }))
}

/// Frames and keyframes of every input, probed a few at a time (ffprobe mostly starts up); `None` unless each
/// clip is in the delivery format and plain H.264.
async fn probe_clips(
    inputs: &[&Path],
    d: &Delivery,
    parallel: usize,
) -> Result<Option<Vec<ClipFrames>>, MediaError> {
    let delivery = *d;
    let probed: Vec<Option<ClipFrames>> =
        futures::stream::iter(inputs.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>())
            .map(move |path| async move {
                let info = probe(&path).await?;
                if !super::edit::is_delivery_format(&info, &delivery) {
                    return Ok(None);
                }
                clip_frames(&path).await
            })
            .buffered(parallel * 2)
            .try_collect()
            .await?;
    Ok(probed.into_iter().collect())
}

/// The ffmpeg jobs, in stream order: each clip's body (stream copy) followed by the crossfade piece (encoded)
/// into the next clip; each job is the file it writes and its arguments.
fn part_jobs(
    inputs: &[&Path],
    clips: &[ClipFrames],
    cuts: &[(u32, u32)],
    fade: u32,
    fps: u32,
    work: &Path,
) -> Vec<(PathBuf, Vec<String>)> {
    let mut jobs: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for (i, (path, &(start, end))) in inputs.iter().zip(cuts).enumerate() {
        let (args, body) = body_args(
            path,
            start,
            end,
            clips[i].frames,
            &work.join(format!("clip{i}")),
        );
        jobs.push((body, args));
        if let (Some(next), Some(&(next_start, _))) = (inputs.get(i + 1), cuts.get(i + 1)) {
            let piece = work.join(format!("fade{i}.h264"));
            let tail = clips[i].frames - end;
            let args = fade_args(path, next, end, tail, next_start, fade, fps, &piece);
            jobs.push((piece, args));
        }
    }
    jobs
}

/// Runs the part jobs, `parallel` ffmpeg processes at a time; returns the parts in job order.
async fn run_part_jobs(
    jobs: Vec<(PathBuf, Vec<String>)>,
    parallel: usize,
) -> Result<Vec<PathBuf>, MediaError> {
    futures::stream::iter(jobs)
        .map(|(part, args)| async move {
            run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await?;
            Ok::<_, MediaError>(part)
        })
        .buffered(parallel)
        .try_collect()
        .await
}

/// The spliced stream must hold exactly the frames the crossfades leave.
async fn check_spliced_frames(
    output: &Path,
    clips: &[ClipFrames],
    fade: u32,
) -> Result<(), MediaError> {
    let expected = clips.iter().map(|c| c.frames).sum::<u32>() - fade * (clips.len() as u32 - 1);
    let got = clip_frames(output).await?.map(|c| c.frames);
    if got != Some(expected) {
        return Err(MediaError::BadOutput {
            program: "ffmpeg".into(),
            reason: format!("spliced video has {got:?} frames, expected {expected}"),
        });
    }
    Ok(())
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

/// Encodes the crossfade between `a`'s last `tail` frames (from frame `from`) and `b`'s first `head` frames.
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
    let graph = format!(
        "[0:v]trim=start_frame={from},setpts=PTS-STARTPTS,settb=AVTB[a];\
         [1:v]trim=end_frame={head},setpts=PTS-STARTPTS,settb=AVTB[b];\
         [a][b]xfade=transition=fade:duration={duration:.4}:offset={offset:.4},format=yuv420p[v]"
    );
    let mut args = strings(&["-y", "-v", "error", "-i"]);
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

/// Muxes the spliced video with the inputs' audio, each cut or padded to its clip's video length and crossfaded.
fn mux_args(
    video: &Path,
    inputs: &[&Path],
    durations: &[f64],
    fade: f64,
    d: &Delivery,
    output: &Path,
) -> Vec<String> {
    let mut args = strings(&["-y", "-v", "error", "-f", "h264", "-framerate"]);
    args.push(d.fps.to_string());
    args.push("-i".into());
    args.push(video.display().to_string());
    for p in inputs {
        args.push("-i".into());
        args.push(p.display().to_string());
    }
    let mut graph = String::new();
    for (i, duration) in durations.iter().enumerate() {
        graph.push_str(&format!(
            "[{}:a]aresample={},aformat=channel_layouts=stereo,apad,atrim=0:{duration:.4}[a{i}];",
            i + 1,
            d.sample_rate
        ));
    }
    let mut prev = "a0".to_string();
    for i in 1..durations.len() {
        graph.push_str(&format!("[{prev}][a{i}]acrossfade=d={fade:.4}[x{i}];"));
        prev = format!("x{i}");
    }
    graph.pop();
    args.extend(strings(&[
        "-filter_complex",
        &graph,
        "-map",
        "0:v",
        "-map",
        &format!("[{prev}]"),
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
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
