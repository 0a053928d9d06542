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

#[derive(Deserialize)]
struct ProbeOut {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
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

/// Probes `path` with ffprobe; fails when it is not media (a still image may have no duration).
pub async fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    let args = [
        "-v", "error", "-show_entries",
        "format=duration:stream=codec_type,codec_name,width,height,pix_fmt,avg_frame_rate,sample_rate,channels",
        "-of", "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(path.display().to_string()))
    .collect::<Vec<_>>();
    let out = run_tool("ffprobe", &args, None, Duration::from_secs(30)).await?;
    let parsed: ProbeOut = serde_json::from_slice(&out).map_err(|e| MediaError::BadOutput {
        program: "ffprobe".into(),
        reason: e.to_string(),
    })?;
    let mut info = MediaInfo {
        duration: parsed
            .format
            .and_then(|f| f.duration)
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        ..Default::default()
    };
    for s in parsed.streams {
        match s.codec_type.as_deref() {
            Some("video") if info.video_codec.is_none() => {
                info.video_codec = s.codec_name;
                info.width = s.width.unwrap_or(0);
                info.height = s.height.unwrap_or(0);
                info.pix_fmt = s.pix_fmt;
                info.fps = s.avg_frame_rate.as_deref().map(parse_rate).unwrap_or(0.0);
            }
            Some("audio") if info.audio_codec.is_none() => {
                info.audio_codec = s.codec_name;
                info.sample_rate = s.sample_rate.and_then(|r| r.parse().ok()).unwrap_or(0);
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
