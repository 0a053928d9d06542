//! The local still: the headshot framed to the project's aspect ratio, or a placeholder portrait.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::media::run_tool;
use crate::providers::{ImageGen, ImageRequest, JobCtx, ProviderError};

/// The bundled placeholder portrait (drawn for this project; no real person).
const PLACEHOLDER_SVG: &str = include_str!("../../assets/placeholder-portrait.svg");

/// Frames the headshot, or renders the placeholder tinted by mood and labelled with the display name.
#[derive(Debug, Clone, Copy)]
pub struct PortraitStill;

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
        _job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        let out = work_dir.join("still.png");
        match &req.headshot {
            Some(headshot) => {
                let (w, h) = (req.width, req.height);
                let args: Vec<String> = vec![
                    "-y".into(),
                    "-v".into(),
                    "error".into(),
                    "-i".into(),
                    headshot.display().to_string(),
                    "-vf".into(),
                    format!(
                        "scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},setsar=1"
                    ),
                    "-frames:v".into(),
                    "1".into(),
                    out.display().to_string(),
                ];
                run_tool("ffmpeg", &args, None, Duration::from_secs(60)).await?;
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
