//! Edits that bring uploaded assets into a scene: a recording converted to the speech format, and a still
//! composited over a background image.

use std::path::Path;
use std::time::Duration;

use super::process::{MediaError, run_tool};

/// Share of the frame height the still takes when composited over a background (a talking-head size).
pub const FOREGROUND_SHARE: f64 = 0.75;

fn args(all: &[&str]) -> Vec<String> {
    all.iter().map(|s| s.to_string()).collect()
}

/// Converts the first audio stream of `input` (any format ffmpeg reads) to the speech format the local voices
/// produce: mono 16-bit PCM WAV at 22.05 kHz.
pub async fn speech_wav(input: &Path, output: &Path) -> Result<(), MediaError> {
    let (i, o) = (input.display().to_string(), output.display().to_string());
    let all = [
        "-y",
        "-v",
        "error",
        "-i",
        &i,
        "-vn",
        "-map",
        "0:a:0",
        "-ac",
        "1",
        "-ar",
        "22050",
        "-c:a",
        "pcm_s16le",
        &o,
    ];
    run_tool("ffmpeg", &args(&all), None, Duration::from_secs(300))
        .await
        .map(|_| ())
}

/// Writes a `width`×`height` PNG: `background` scaled to cover the frame, with `still` scaled to
/// [`FOREGROUND_SHARE`] of the frame height over it, centred at the bottom.
pub async fn composite_over(
    still: &Path,
    background: &Path,
    output: &Path,
    (width, height): (u32, u32),
) -> Result<(), MediaError> {
    let fg_height = ((f64::from(height) * FOREGROUND_SHARE) as u32) & !1;
    let filter = format!(
        "[0:v]scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1[bg];\
         [1:v]scale=-2:{fg_height},setsar=1[fg];[bg][fg]overlay=(W-w)/2:H-h:format=auto,format=rgb24[out]"
    );
    let (b, s, o) = (
        background.display().to_string(),
        still.display().to_string(),
        output.display().to_string(),
    );
    let all = [
        "-y",
        "-v",
        "error",
        "-i",
        &b,
        "-i",
        &s,
        "-filter_complex",
        &filter,
        "-map",
        "[out]",
        "-frames:v",
        "1",
        &o,
    ];
    run_tool("ffmpeg", &args(&all), None, Duration::from_secs(60))
        .await
        .map(|_| ())
}
