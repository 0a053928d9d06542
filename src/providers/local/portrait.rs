//! The local still: the headshot framed to the project's aspect ratio, or a placeholder portrait.
//!
//! With face framing on ([`PortraitStill::following_faces`]) a headshot is cropped around its largest face by
//! [`crate::face::framing`] (whole, with headroom, at a talking-head size); without the models, or without a face,
//! it falls back to the centre ("cover") crop and the step's log says why.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::face::framing::{self, Crop, FramingRule};
use crate::face::{self, FaceSettings};
use crate::media::run_tool;
use crate::providers::{ImageGen, ImageRequest, JobCtx, ProviderError};

/// The bundled placeholder portrait (drawn for this project; no real person).
const PLACEHOLDER_SVG: &str = include_str!("../../assets/placeholder-portrait.svg");

/// The framing rule's marker in a headshot still's content key: bump it when the rule changes, so stills framed
/// by an older rule are made again.
pub const FACE_FRAMING: &str = "face-v1";

/// Frames the headshot, or renders the placeholder tinted by mood and labelled with the display name.
/// `PortraitStill::default()` frames with a centre crop (a generated image already at the frame's aspect).
#[derive(Debug, Clone, Default)]
pub struct PortraitStill {
    /// The face engine's settings when headshots are framed around their face.
    face: Option<FaceSettings>,
}

impl PortraitStill {
    /// Frames headshots around their largest face, with the models and threshold of `face`.
    pub fn following_faces(face: FaceSettings) -> Self {
        Self { face: Some(face) }
    }

    /// The face settings, when faces can be framed (framing on and the models installed).
    fn framing_models(&self) -> Option<&FaceSettings> {
        self.face
            .as_ref()
            .filter(|f| face::models::missing_in(&f.models).is_empty())
    }

    /// Frames the headshot's largest face into a `out`-sized PNG at `dest`; `Err` says why it cannot (no models,
    /// an unreadable photo, no face), and nothing is written then.
    async fn frame_face(
        &self,
        headshot: &Path,
        out: (u32, u32),
        dest: &Path,
    ) -> Result<String, String> {
        let settings = self.face.as_ref().ok_or("face framing is off")?;
        let engine = face::load_engine(settings)
            .await
            .map_err(|e| e.to_string())?;
        let photo = face::open_photo(headshot.to_path_buf())
            .await
            .map_err(|e| e.to_string())?;
        let pixels = photo.rgb.clone();
        let found = face::analyse(engine, photo)
            .await
            .map_err(|e| e.to_string())?;
        let largest = found.faces.first().ok_or("no face found in the headshot")?;
        let crop = framing::frame(
            (found.width, found.height),
            largest.bbox,
            framing::eye_y(largest),
            out,
            &FramingRule::default(),
        )
        .ok_or("the headshot or the frame has no pixels")?;
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            framing::render(&pixels, crop, out)
                .save_with_format(&dest, image::ImageFormat::Png)
                .map_err(|e| format!("writing the framed still: {e}"))
        })
        .await
        .map_err(|e| format!("framing stopped: {e}"))??;
        Ok(describe(&crop, &largest.bbox, found.faces.len()))
    }

    /// Writes the headshot framed to `w`×`h` at `out`: around its face when it can, else the centre crop.
    async fn frame_headshot(
        &self,
        headshot: &Path,
        (w, h): (u32, u32),
        out: &Path,
        job: &JobCtx,
    ) -> Result<(), ProviderError> {
        if self.face.is_some() {
            match self.frame_face(headshot, (w, h), out).await {
                Ok(how) => {
                    job.note(how);
                    return Ok(());
                }
                Err(why) => {
                    tracing::info!("headshot framed by a centre crop: {why}");
                    job.note(format!("centre crop (face framing unavailable: {why})"));
                }
            }
        }
        let args: Vec<String> = vec![
            "-y".into(),
            "-v".into(),
            "error".into(),
            "-i".into(),
            headshot.display().to_string(),
            "-vf".into(),
            format!("scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1"),
            "-frames:v".into(),
            "1".into(),
            out.display().to_string(),
        ];
        run_tool("ffmpeg", &args, None, Duration::from_secs(60)).await?;
        Ok(())
    }
}

/// The log line of a face framing.
fn describe(crop: &Crop, face: &face::FaceBox, faces: usize) -> String {
    format!(
        "framed the largest of {faces} face(s) (box {}x{} at {},{}): crop {}x{} at {},{}, face {:.0} % of the height",
        face.w,
        face.h,
        face.x,
        face.y,
        crop.w,
        crop.h,
        crop.x,
        crop.y,
        100.0 * f64::from(face.h) / f64::from(crop.h.max(1))
    )
}

/// Background colours (light, dark) for a mood-lighting text.
pub fn mood_tint(mood: Option<&str>) -> (&'static str, &'static str) {
    let m = mood.unwrap_or("").to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["warm", "golden", "sunset", "amber", "candle"]) {
        ("#f2b872", "#7a3d12")
    } else if has(&["neon", "cyber", "club"]) {
        ("#e05adf", "#2a0f4a")
    } else if has(&["dramatic", "noir", "moody", "dark"]) {
        ("#6b6b8a", "#0d0d18")
    } else if has(&["cool", "blue", "night", "moon"]) {
        ("#7fb2e8", "#12284a")
    } else if has(&["natural", "daylight", "bright", "soft", "window"]) {
        ("#e6ead8", "#6f7d64")
    } else {
        ("#9fb0c8", "#27303f")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn font_options() -> &'static resvg::usvg::Options<'static> {
    static OPTIONS: OnceLock<resvg::usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut opt = resvg::usvg::Options::default();
        opt.fontdb_mut().load_system_fonts();
        opt
    })
}

/// Rasterises the placeholder portrait to PNG bytes.
pub fn render_placeholder(
    display_name: &str,
    mood: Option<&str>,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ProviderError> {
    let (light, dark) = mood_tint(mood);
    let label: String = display_name.chars().take(40).collect();
    let svg = PLACEHOLDER_SVG
        .replace("{{W}}", &width.to_string())
        .replace("{{H}}", &height.to_string())
        .replace("{{TINT_LIGHT}}", light)
        .replace("{{TINT_DARK}}", dark)
        .replace("{{NAME}}", &xml_escape(&label));
    let tree = resvg::usvg::Tree::from_str(&svg, font_options())
        .map_err(|e| ProviderError::BadOutput(format!("placeholder SVG: {e}")))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| ProviderError::Invalid(format!("bad frame size {width}x{height}")))?;
    let size = tree.size();
    let transform = resvg::tiny_skia::Transform::from_scale(
        width as f32 / size.width(),
        height as f32 / size.height(),
    );
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    pixmap
        .encode_png()
        .map_err(|e| ProviderError::BadOutput(format!("PNG encoding: {e}")))
}

#[async_trait]
impl ImageGen for PortraitStill {
    fn name(&self) -> &str {
        "local-portrait"
    }

    fn key_params(&self, req: &ImageRequest) -> Value {
        match &req.headshot {
            Some(_) if self.framing_models().is_some() => json!({
                "source": "headshot", "width": req.width, "height": req.height, "framing": FACE_FRAMING,
            }),
            Some(_) => json!({ "source": "headshot", "width": req.width, "height": req.height }),
            None => json!({
                "source": "placeholder",
                "tint": mood_tint(req.mood.as_deref()),
                "label": req.display_name,
                "width": req.width,
                "height": req.height,
            }),
        }
    }

    async fn generate(
        &self,
        req: &ImageRequest,
        work_dir: &Path,
        job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let out = work_dir.join("still.png");
        match &req.headshot {
            Some(headshot) => {
                self.frame_headshot(headshot, (req.width, req.height), &out, job)
                    .await?;
            }
            None => {
                let (name, mood, w, h) = (
                    req.display_name.clone(),
                    req.mood.clone(),
                    req.width,
                    req.height,
                );
                let png = tokio::task::spawn_blocking(move || {
                    render_placeholder(&name, mood.as_deref(), w, h)
                })
                .await
                .map_err(|e| {
                    ProviderError::BadOutput(format!("placeholder renderer stopped: {e}"))
                })??;
                tokio::fs::write(&out, png).await?;
            }
        }
        Ok(out)
    }
}
