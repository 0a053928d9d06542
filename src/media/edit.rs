//! Our own ffmpeg edits: normalising a scene clip, thumbnails, and joining scenes with crossfades.

use std::path::Path;
use std::time::Duration;

use super::parts::SpliceParts;
use super::probe::{MediaInfo, VideoPackets, probe, probe_packets};
use super::process::{MediaError, run_tool};
use super::splice::{
    JoinClip, Joined, X264_ARGS, fade_frames, splice_keyframe_times, splice_with_crossfades,
};

/// The delivery format every scene and project video is normalised to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Audio sample rate.
    pub sample_rate: u32,
    /// Seconds of crossfade between scenes in the project video.
    pub crossfade: f64,
}

const LONG: Duration = Duration::from_secs(1800);

/// x264 preset of the project join: it re-encodes the whole video on the critical path, so it trades a
/// slightly larger file for speed (bench/render.sh measures it).
const ASSEMBLE_PRESET: &str = "superfast";

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// True when `info` already matches the delivery format, so a stream copy is enough.
pub fn is_delivery_format(info: &MediaInfo, d: &Delivery) -> bool {
    info.video_codec.as_deref() == Some("h264")
        && info.pix_fmt.as_deref() == Some("yuv420p")
        && info.width == d.width
        && info.height == d.height
        && (info.fps - d.fps as f64).abs() < 0.01
        && info.audio_codec.as_deref() == Some("aac")
        && info.sample_rate == d.sample_rate
        && info.channels == 2
}

/// True when the MP4 at `path` has its index (`moov`) before its media (`mdat`) at the top level — what
/// `-movflags +faststart` makes; false when it does not, or the file cannot be read as MP4 boxes.
async fn moov_first(path: &Path) -> bool {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return false;
    };
    let mut at = 0_u64;
    // A handful of top-level boxes come first (ftyp, free, moov or mdat); give up after a few.
    for _ in 0..16 {
        let mut head = [0_u8; 16];
        if file.seek(std::io::SeekFrom::Start(at)).await.is_err()
            || file.read_exact(&mut head[..8]).await.is_err()
        {
            return false;
        }
        let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        match &head[4..8] {
            b"moov" => return true,
            b"mdat" => return false,
            _ => {}
        }
        let size = match size {
            // A 64-bit size follows the type.
            1 => {
                if file.read_exact(&mut head[8..16]).await.is_err() {
                    return false;
                }
                u64::from_be_bytes([
                    head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
                ])
            }
            0 => return false,
            n => n,
        };
        if size < 8 {
            return false;
        }
        at += size;
    }
    false
}

/// A clip normalised to the delivery format.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// Probe of the output (of the input, when it was copied).
    pub info: MediaInfo,
    /// The output's video packets, when it was encoded here: what the splice join would probe it for (see
    /// [`super::splice::seed_probe`]).
    pub video: Option<VideoPackets>,
}

impl From<MediaInfo> for Normalized {
    fn from(info: MediaInfo) -> Self {
        Self { info, video: None }
    }
}

/// Normalises `input` to the delivery format (copying streams when they already match), burning
/// `burn_srt` subtitles in when given.
pub async fn normalize(
    input: &Path,
    output: &Path,
    d: &Delivery,
    burn_srt: Option<&Path>,
) -> Result<Normalized, MediaError> {
    let info = probe(input).await?;
    let (inp, out) = (input.display().to_string(), output.display().to_string());
    if burn_srt.is_none() && is_delivery_format(&info, d) {
        // Already playable while it downloads (the index before the media): the file itself is the result.
        if moov_first(input).await {
            tokio::fs::copy(input, output)
                .await
                .map_err(|source| MediaError::Io {
                    what: format!("copying {} to {}", input.display(), output.display()),
                    source,
                })?;
            return Ok(info.into());
        }
        run_tool(
            "ffmpeg",
            &args(&[
                "-y",
                "-v",
                "error",
                "-i",
                &inp,
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                &out,
            ]),
            None,
            LONG,
        )
        .await?;
        // A stream copy keeps what the input's probe saw; no second ffprobe start-up.
        return Ok(info.into());
    }
    let (w, h, fps) = (d.width, d.height, d.fps);
    let mut vf = format!(
        "scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps}"
    );
    if let Some(srt) = burn_srt {
        vf.push_str(&format!(
            ",subtitles=filename='{}':force_style='FontName=DejaVu Sans,FontSize=20,Outline=2'",
            escape_filter_path(srt)
        ));
    }
    vf.push_str(",format=yuv420p");
    let af = format!("aresample={},aformat=channel_layouts=stereo", d.sample_rate);
    let mut cmd = args(&["-y", "-v", "error", "-i", &inp, "-vf", &vf, "-af", &af]);
    cmd.extend(args(X264_ARGS));
    // Keyframes where the project join cuts, so it can copy this clip between its crossfades.
    let frames = (info.duration * fps as f64).round() as u32;
    if let Some(times) = splice_keyframe_times(frames, fade_frames(d.crossfade, fps), fps) {
        cmd.extend(["-force_key_frames".to_string(), times]);
    }
    cmd.extend(args(&[
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-movflags",
        "+faststart",
        &out,
    ]));
    run_tool("ffmpeg", &cmd, None, LONG).await?;
    // Streams and packets in one ffprobe start-up: the splice join need not probe this clip again.
    let (info, video) = probe_packets(output).await?;
    Ok(Normalized {
        info,
        video: Some(video),
    })
}

/// Escapes a path for use inside an ffmpeg filter argument.
fn escape_filter_path(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace('\'', "\\'")
}

/// Writes a JPEG thumbnail from around a second into the clip.
pub async fn thumbnail(input: &Path, output: &Path, at_seconds: f64) -> Result<(), MediaError> {
    grab_frame(
        input,
        output,
        at_seconds,
        &["-vf", "scale=320:-2", "-q:v", "4"],
    )
    .await
}

/// Writes the full-size frame of `input` at `at_seconds` as a PNG (FINALIZE's identity score samples them).
pub async fn frame(input: &Path, output: &Path, at_seconds: f64) -> Result<(), MediaError> {
    grab_frame(input, output, at_seconds, &[]).await
}

/// Writes one frame of `input` at `at_seconds` to `output`, with `encode` options (scaling, quality) before it.
async fn grab_frame(
    input: &Path,
    output: &Path,
    at_seconds: f64,
    encode: &[&str],
) -> Result<(), MediaError> {
    let (at, input, output) = (
        format!("{at_seconds:.2}"),
        input.display().to_string(),
        output.display().to_string(),
    );
    let mut all = vec![
        "-y",
        "-v",
        "error",
        "-ss",
        &at,
        "-i",
        &input,
        "-frames:v",
        "1",
    ];
    all.extend_from_slice(encode);
    all.push(&output);
    run_tool("ffmpeg", &args(&all), None, Duration::from_secs(60))
        .await
        .map(|_| ())
}

/// Start offsets (seconds) of each clip in a crossfaded sequence.
pub fn crossfade_offsets(durations: &[f64], crossfade: f64) -> Vec<f64> {
    let mut offsets = Vec::with_capacity(durations.len());
    let mut t = 0.0;
    for d in durations {
        offsets.push(t);
        t += d - crossfade;
    }
    offsets
}

/// Joins delivery-format clips with video and audio crossfades of `d.crossfade` seconds. Clips made by
/// [`normalize`] are spliced (only the crossfades are encoded; probes and parts kept in `parts` are reused);
/// any others are re-encoded whole.
pub async fn join_with_crossfades(
    clips: &[JoinClip<'_>],
    output: &Path,
    d: &Delivery,
    parts: &SpliceParts,
) -> Result<Joined, MediaError> {
    match splice_with_crossfades(clips, output, d, d.crossfade, parts).await {
        Ok(Some(joined)) => return Ok(joined),
        Ok(None) => tracing::debug!("scene clips cannot be spliced; re-encoding the join"),
        Err(e) => tracing::warn!("splicing the scene clips failed, re-encoding the join: {e}"),
    }
    let inputs: Vec<(&Path, f64)> = clips.iter().map(|c| (c.path, c.seconds)).collect();
    reencode_with_crossfades(&inputs, output, d).await
}

/// Joins clips with crossfades by decoding and encoding the whole video (any delivery-format clips).
pub async fn reencode_with_crossfades(
    inputs: &[(&Path, f64)],
    output: &Path,
    d: &Delivery,
) -> Result<Joined, MediaError> {
    let crossfade = d.crossfade;
    let out = output.display().to_string();
    let mut cmd = args(&["-y", "-v", "error"]);
    for (p, _) in inputs {
        cmd.push("-i".into());
        cmd.push(p.display().to_string());
    }
    if inputs.len() == 1 {
        cmd.extend(args(&["-c", "copy", "-movflags", "+faststart", &out]));
    } else {
        let durations: Vec<f64> = inputs.iter().map(|(_, dur)| *dur).collect();
        let offsets = crossfade_offsets(&durations, crossfade);
        let mut graph = String::new();
        for (i, duration) in durations.iter().enumerate() {
            graph.push_str(&format!(
                "[{i}:v]settb=AVTB,fps={},format=yuv420p[v{i}];",
                d.fps
            ));
            graph.push_str(&format!(
                "[{i}:a]aresample={},aformat=channel_layouts=stereo,atrim=0:{duration:.3}[a{i}];",
                d.sample_rate
            ));
        }
        let (mut vprev, mut aprev) = ("v0".to_string(), "a0".to_string());
        for (i, offset) in offsets.iter().enumerate().skip(1) {
            let (vo, ao) = (format!("vx{i}"), format!("ax{i}"));
            graph.push_str(&format!(
                "[{vprev}][v{i}]xfade=transition=fade:duration={crossfade:.3}:offset={offset:.3}[{vo}];"
            ));
            graph.push_str(&format!(
                "[{aprev}][a{i}]acrossfade=d={crossfade:.3}[{ao}];"
            ));
            (vprev, aprev) = (vo, ao);
        }
        graph.pop();
        cmd.extend(args(&[
            "-filter_complex",
            &graph,
            "-map",
            &format!("[{vprev}]"),
            "-map",
            &format!("[{aprev}]"),
            "-c:v",
            "libx264",
            // xfade negotiates 4:4:4, which browsers do not play.
            "-pix_fmt",
            "yuv420p",
            "-preset",
            ASSEMBLE_PRESET,
            "-crf",
            "22",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
            &out,
        ]));
    }
    run_tool("ffmpeg", &cmd, None, LONG).await?;
    let durations: Vec<f64> = inputs.iter().map(|(_, duration)| *duration).collect();
    Ok(Joined {
        info: probe(output).await?,
        offsets: crossfade_offsets(&durations, crossfade),
        spliced: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A top-level MP4 box of `kind` with `body` zero bytes.
    fn mp4_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
        b.extend(kind);
        b.extend(vec![0; body]);
        b
    }

    #[tokio::test]
    async fn the_index_is_found_before_or_after_the_media() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, boxes: &[&[u8]]| {
            let path = dir.path().join(name);
            std::fs::write(&path, boxes.concat()).unwrap();
            path
        };
        let ftyp = mp4_box(b"ftyp", 8);
        let (moov, mdat) = (mp4_box(b"moov", 20), mp4_box(b"mdat", 100));
        assert!(moov_first(&file("fast.mp4", &[&ftyp, &moov, &mdat])).await);
        assert!(!moov_first(&file("slow.mp4", &[&ftyp, &mdat, &moov])).await);
        // A 64-bit size before the index.
        let mut large = b"\0\0\0\x01free".to_vec();
        large.extend(24_u64.to_be_bytes());
        large.extend([0; 8]);
        assert!(moov_first(&file("large.mp4", &[&ftyp, &large, &moov])).await);
        assert!(!moov_first(&file("text.mp4", &[b"not an mp4 file at all"])).await);
        assert!(!moov_first(&file("cut.mp4", &[&ftyp[..6]])).await);
        assert!(!moov_first(&dir.path().join("missing.mp4")).await);
    }

    #[test]
    fn offsets_overlap_by_the_crossfade() {
        assert_eq!(
            crossfade_offsets(&[5.0, 4.0, 3.0], 0.5),
            vec![0.0, 4.5, 8.0]
        );
    }
}
