//! ffmpeg animation of a still: a camera move that follows the scene's camera and movement text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::FPS;
use crate::media::run_tool;
use crate::providers::{
    CameraPath, FrameTransform, Framing, ImageToVideo, JobCtx, ProviderError, VideoRequest,
};

/// The camera move the local animation performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraMove {
    /// Slow push-in (close-ups).
    PushIn,
    /// Slow pull-out ("zoom out", "pull back").
    PullOut,
    /// Gentle drift (medium shots; the default).
    Drift,
    /// Slow pan left → right (wide shots).
    PanRight,
    /// Slow pan right → left ("pan left").
    PanLeft,
    /// Nearly still, slight breathing ("static", "locked off").
    Hold,
}

/// Chooses the camera move from the scene's framing and movement text.
pub fn camera_move(framing: Framing, movement: Option<&str>) -> CameraMove {
    let mv = movement.unwrap_or("").to_ascii_lowercase();
    if mv.contains("static") || mv.contains("locked") || mv.contains("tripod") {
        return CameraMove::Hold;
    }
    if mv.contains("zoom out")
        || mv.contains("pull back")
        || mv.contains("pull-back")
        || mv.contains("dolly out")
    {
        return CameraMove::PullOut;
    }
    if mv.contains("pan left") {
        return CameraMove::PanLeft;
    }
    if mv.contains("pan") || mv.contains("truck") {
        return CameraMove::PanRight;
    }
    if mv.contains("push") || mv.contains("zoom in") || mv.contains("dolly in") {
        return CameraMove::PushIn;
    }
    match framing {
        Framing::CloseUp => CameraMove::PushIn,
        Framing::Medium => CameraMove::Drift,
        Framing::Wide => CameraMove::PanRight,
    }
}

impl CameraMove {
    /// Stable name for logs and cache keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PushIn => "push-in",
            Self::PullOut => "pull-out",
            Self::Drift => "drift",
            Self::PanRight => "pan-right",
            Self::PanLeft => "pan-left",
            Self::Hold => "hold",
        }
    }

    /// zoompan expressions (zoom, x, y) over `n` frames.
    fn zoompan(self, n: u32) -> (String, String, String) {
        let cx = "(iw-iw/zoom)/2".to_string();
        let cy = "(ih-ih/zoom)/2".to_string();
        match self {
            Self::PushIn => (format!("1+0.14*on/{n}"), cx, cy),
            Self::PullOut => (format!("1.14-0.14*on/{n}"), cx, cy),
            Self::Drift => (
                "1.08".into(),
                "(iw-iw/zoom)/2*(1+0.6*sin(on/40))".into(),
                "(ih-ih/zoom)/2*(1+0.4*cos(on/55))".into(),
            ),
            Self::PanRight => ("1.16".into(), format!("(iw-iw/zoom)*on/{n}"), cy),
            Self::PanLeft => ("1.16".into(), format!("(iw-iw/zoom)*(1-on/{n})"), cy),
            Self::Hold => ("1.02+0.01*sin(on/30)".into(), cx, cy),
        }
    }
}

impl CameraMove {
    /// What zoompan computes at output frame `on` of `n` over an `iw`×`ih` input: the zoom and the crop's
    /// top-left corner (the same formulas as [`CameraMove::zoompan`]'s expressions).
    fn zoompan_at(self, on: f64, n: f64, iw: f64, ih: f64) -> (f64, f64, f64) {
        let zoom: f64 = match self {
            Self::PushIn => 1.0 + 0.14 * on / n,
            Self::PullOut => 1.14 - 0.14 * on / n,
            Self::Drift => 1.08,
            Self::PanRight | Self::PanLeft => 1.16,
            Self::Hold => 1.02 + 0.01 * (on / 30.0).sin(),
        }
        .clamp(1.0, 10.0);
        let (cx, cy) = ((iw - iw / zoom) / 2.0, (ih - ih / zoom) / 2.0);
        let (x, y) = match self {
            Self::Drift => (
                cx * (1.0 + 0.6 * (on / 40.0).sin()),
                cy * (1.0 + 0.4 * (on / 55.0).cos()),
            ),
            Self::PanRight => ((iw - iw / zoom) * on / n, cy),
            Self::PanLeft => ((iw - iw / zoom) * (1.0 - on / n), cy),
            _ => (cx, cy),
        };
        (zoom, x, y)
    }
}

/// The transform of every frame of the clip [`FfmpegAnimation`] makes of a `width`×`height` still over
/// `frames` frames: the still is upscaled by 5/4, zoompan crops `iw/zoom` wide (whole pixels, even corner)
/// and scales the crop back to the frame.
pub fn camera_path(mv: CameraMove, frames: u32, width: u32, height: u32) -> CameraPath {
    let (iw, ih) = (
        f64::from((width * 5 / 4) & !1),
        f64::from((height * 5 / 4) & !1),
    );
    let (w, h) = (f64::from(width), f64::from(height));
    let n = f64::from(frames);
    let path = (0..frames)
        .map(|on| {
            let (zoom, x, y) = mv.zoompan_at(f64::from(on), n, iw, ih);
            let (cw, ch) = ((iw / zoom).trunc(), (ih / zoom).trunc());
            let even =
                |v: f64, max: f64| (v.clamp(0.0, (max).max(0.0)).trunc() / 2.0).trunc() * 2.0;
            let (x, y) = (even(x, iw - cw), even(y, ih - ch));
            FrameTransform {
                scale_x: (iw / cw) as f32,
                scale_y: (ih / ch) as f32,
                offset_x: (-x * w / cw) as f32,
                offset_y: (-y * h / ch) as f32,
            }
        })
        .collect();
    CameraPath {
        frames: path,
        width,
        height,
    }
}

/// Frames per second of the stand-in clip ([`VideoRequest::proxy`]).
const PROXY_FPS: u32 = 1;

/// ffmpeg's arguments for the stand-in clip: the still, unmoved, at [`PROXY_FPS`] for the whole length (a valid
/// MP4 of the frame size, a few frames to encode, the still decoded once; the lip-sync renders the camera move
/// itself).
fn proxy_args(req: &VideoRequest, out: &Path) -> Vec<String> {
    let (w, h) = (req.width, req.height);
    let frames = (req.duration_seconds * PROXY_FPS).max(1);
    let vf = format!(
        "scale={w}:{h},setsar=1,format=yuv420p,loop=loop={}:size=1:start=0,setpts=N/{PROXY_FPS}/TB",
        frames - 1
    );
    [
        "-y",
        "-v",
        "error",
        "-i",
        &req.image.display().to_string(),
        "-vf",
        &vf,
        "-r",
        &PROXY_FPS.to_string(),
        "-frames:v",
        &frames.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "28",
        "-an",
        "-movflags",
        "+faststart",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Animates the still with ffmpeg's zoompan; silent H.264 at 25 fps (or, for a lip-sync that renders from
/// the still, a stand-in clip: [`VideoRequest::proxy`]).
#[derive(Debug, Clone, Copy)]
pub struct FfmpegAnimation;

#[async_trait]
impl ImageToVideo for FfmpegAnimation {
    fn name(&self) -> &str {
        "ffmpeg-animate"
    }

    fn key_params(&self, req: &VideoRequest) -> Value {
        let mut params = json!({
            "move": camera_move(req.framing, req.movement.as_deref()).as_str(),
            "seconds": req.duration_seconds,
            "width": req.width,
            "height": req.height,
            "fps": FPS,
        });
        if req.proxy {
            params["proxy"] = json!(PROXY_FPS);
        }
        params
    }

    fn camera_path(&self, req: &VideoRequest) -> Option<CameraPath> {
        let mv = camera_move(req.framing, req.movement.as_deref());
        Some(camera_path(
            mv,
            req.duration_seconds * FPS,
            req.width,
            req.height,
        ))
    }

    async fn animate(
        &self,
        req: &VideoRequest,
        work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        if req.duration_seconds == 0 || req.duration_seconds > 600 {
            return Err(ProviderError::Invalid(format!(
                "clip length {} s",
                req.duration_seconds
            )));
        }
        let out = work_dir.join("clip.mp4");
        if req.proxy {
            run_tool(
                "ffmpeg",
                &proxy_args(req, &out),
                None,
                Duration::from_secs(600),
            )
            .await?;
            return Ok(out);
        }
        let frames = req.duration_seconds * FPS;
        let (w, h) = (req.width, req.height);
        let (z, x, y) = camera_move(req.framing, req.movement.as_deref()).zoompan(frames);
        // Upscale first so sub-pixel moves stay smooth, then let zoompan crop and scale back.
        let filter = format!(
            "scale={}:{},zoompan=z='{z}':x='{x}':y='{y}':d={frames}:s={w}x{h}:fps={FPS},setsar=1,format=yuv420p",
            (w * 5 / 4) & !1,
            (h * 5 / 4) & !1
        );
        let args: Vec<String> = [
            "-y",
            "-v",
            "error",
            "-i",
            &req.image.display().to_string(),
            "-vf",
            &filter,
            "-frames:v",
            &frames.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "20",
            "-g",
            &(FPS * 2).to_string(),
            "-an",
            "-movflags",
            "+faststart",
            &out.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run_tool("ffmpeg", &args, None, Duration::from_secs(600)).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_movement_pick_the_move() {
        assert_eq!(camera_move(Framing::CloseUp, None), CameraMove::PushIn);
        assert_eq!(camera_move(Framing::Medium, None), CameraMove::Drift);
        assert_eq!(camera_move(Framing::Wide, None), CameraMove::PanRight);
        assert_eq!(
            camera_move(Framing::Wide, Some("slow pan left")),
            CameraMove::PanLeft
        );
        assert_eq!(
            camera_move(Framing::CloseUp, Some("static, locked off")),
            CameraMove::Hold
        );
        assert_eq!(
            camera_move(Framing::Medium, Some("zoom out slowly")),
            CameraMove::PullOut
        );
    }
}
