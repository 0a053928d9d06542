//! ffprobe: duration, streams and frame size of a media file.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::process::{MediaError, run_tool};

/// What ffprobe reports about a file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaInfo {
    /// Container duration in seconds.
    pub duration: f64,
    /// Video codec name, if there is a video stream.
    pub video_codec: Option<String>,
    /// Audio codec name, if there is an audio stream.
    pub audio_codec: Option<String>,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Pixel format.
    pub pix_fmt: Option<String>,
    /// Average frame rate.
    pub fps: f64,
    /// Audio sample rate.
    pub sample_rate: u32,
    /// Audio channels.
    pub channels: u32,
}

/// A clip's first video stream, packet by packet (one frame per packet without B-frames).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VideoPackets {
    /// H.264 without B-frames: every packet is one frame in presentation order.
    pub plain_h264: bool,
    /// Packets (frames) of the stream.
    pub frames: u32,
    /// Indices of the keyframe packets, ascending.
    pub keyframes: Vec<u32>,
    /// The stream starts at time 0, so frame `k` is shown at `k / fps`.
    pub starts_at_zero: bool,
}

#[derive(Deserialize)]
struct ProbeOut {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
    #[serde(default)]
    packets: Vec<ProbePacket>,
}

#[derive(Deserialize)]
struct ProbePacket {
    stream_index: Option<usize>,
    flags: Option<String>,
}

#[derive(Deserialize)]
struct ProbeStream {
    index: Option<usize>,
    start_time: Option<String>,
    has_b_frames: Option<u32>,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    pix_fmt: Option<String>,
    avg_frame_rate: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

const STREAM_ENTRIES: &str = "format=duration:stream=index,start_time,codec_type,codec_name,width,height,pix_fmt,avg_frame_rate,sample_rate,channels,has_b_frames";

/// Probes `path` with ffprobe; fails when it is not media (a still image may have no duration).
pub async fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    let parsed = run_probe(path, STREAM_ENTRIES).await?;
    info_of(path, &parsed)
}

/// [`probe`] plus the first video stream's packets, in one ffprobe start-up (it reads every packet).
pub async fn probe_packets(path: &Path) -> Result<(MediaInfo, VideoPackets), MediaError> {
    let parsed = run_probe(path, &format!("{STREAM_ENTRIES}:packet=stream_index,flags")).await?;
    let info = info_of(path, &parsed)?;
    let video = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"));
    let Some(stream) = video else {
        return Ok((info, VideoPackets::default()));
    };
    let packets: Vec<&ProbePacket> = parsed
        .packets
        .iter()
        .filter(|p| p.stream_index.is_some() && p.stream_index == stream.index)
        .collect();
    let keyframes = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.flags.as_deref().is_some_and(|f| f.starts_with('K')))
        .map(|(i, _)| i as u32)
        .collect();
    let video = VideoPackets {
        plain_h264: stream.codec_name.as_deref() == Some("h264") && stream.has_b_frames == Some(0),
        frames: packets.len() as u32,
        keyframes,
        starts_at_zero: stream
            .start_time
            .as_deref()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(|t| t.abs() < 1e-6),
    };
    Ok((info, video))
}

async fn run_probe(path: &Path, entries: &str) -> Result<ProbeOut, MediaError> {
    let args = ["-v", "error", "-show_entries", entries, "-of", "json"]
        .iter()
        .map(|s| s.to_string())
        .chain(std::iter::once(path.display().to_string()))
        .collect::<Vec<_>>();
    let out = run_tool("ffprobe", &args, None, Duration::from_secs(30)).await?;
    serde_json::from_slice(&out).map_err(|e| MediaError::BadOutput {
        program: "ffprobe".into(),
        reason: e.to_string(),
    })
}

/// The [`MediaInfo`] of a parsed probe of `path`.
fn info_of(path: &Path, parsed: &ProbeOut) -> Result<MediaInfo, MediaError> {
    let mut info = MediaInfo {
        duration: parsed
            .format
            .as_ref()
            .and_then(|f| f.duration.as_deref())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        ..Default::default()
    };
    for s in &parsed.streams {
        match s.codec_type.as_deref() {
            Some("video") if info.video_codec.is_none() => {
                info.video_codec = s.codec_name.clone();
                info.width = s.width.unwrap_or(0);
                info.height = s.height.unwrap_or(0);
                info.pix_fmt = s.pix_fmt.clone();
                info.fps = s.avg_frame_rate.as_deref().map(parse_rate).unwrap_or(0.0);
            }
            Some("audio") if info.audio_codec.is_none() => {
                info.audio_codec = s.codec_name.clone();
                info.sample_rate = s
                    .sample_rate
                    .as_deref()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0);
                info.channels = s.channels.unwrap_or(0);
            }
            _ => {}
        }
    }
    // Stills have no duration; anything else without one is unusable.
    let still = info.width > 0 && info.audio_codec.is_none();
    if info.duration <= 0.0 && !still {
        return Err(MediaError::BadOutput {
            program: "ffprobe".into(),
            reason: format!("{} has no measurable duration", path.display()),
        });
    }
    Ok(info)
}

fn parse_rate(r: &str) -> f64 {
    match r.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.parse().unwrap_or(0.0), d.parse().unwrap_or(0.0));
            if d > 0.0 { n / d } else { 0.0 }
        }
        None => r.parse().unwrap_or(0.0),
    }
}
