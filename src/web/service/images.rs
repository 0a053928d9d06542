//! The decode check for uploaded headshots and backgrounds: the pixel size is read from the header and refused
//! above [`MAX_PIXELS`] before anything is allocated, then the whole image is decoded (PNG in process, one row
//! at a time; JPEG and WebP by ffmpeg, the tool that reads them later in the IMAGE step). Small dimensions are
//! never refused: face and photo-quality rules are reported elsewhere.

use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

/// The most pixels an uploaded image may have (40 megapixels).
pub const MAX_PIXELS: u64 = 40_000_000;

/// Why an uploaded image was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageProblem {
    /// Not a decodable image of the sniffed type; the text says what failed.
    Undecodable(String),
    /// The header declares more than [`MAX_PIXELS`] pixels.
    TooManyPixels {
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
    },
}

impl std::fmt::Display for ImageProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Undecodable(why) => write!(f, "the image could not be decoded: {why}"),
            Self::TooManyPixels { width, height } => write!(
                f,
                "the image is {width}×{height} pixels; at most {} megapixels are accepted",
                MAX_PIXELS / 1_000_000
            ),
        }
    }
}

/// Checks the image at `path` (sniffed as `ext`: png, jpg or webp) and returns its width and height.
pub async fn check(path: &Path, ext: &str) -> Result<(u32, u32), ImageProblem> {
    let owned = path.to_path_buf();
    let (width, height) = tokio::task::spawn_blocking(move || header_size(&owned))
        .await
        .map_err(|e| ImageProblem::Undecodable(format!("header check stopped: {e}")))??;
    if ext == "png" {
        let owned = path.to_path_buf();
        tokio::task::spawn_blocking(move || decode_png(&owned))
            .await
            .map_err(|e| ImageProblem::Undecodable(format!("decoding stopped: {e}")))??;
    } else {
        decode_with_ffmpeg(path).await?;
    }
    Ok((width, height))
}

/// The pixel size declared by the header, refused when it is zero, over [`MAX_PIXELS`] or beyond `u32`.
fn header_size(path: &Path) -> Result<(u32, u32), ImageProblem> {
    let size = imagesize::size(path)
        .map_err(|e| ImageProblem::Undecodable(format!("unreadable header ({e})")))?;
    let (width, height) = (size.width as u64, size.height as u64);
    if width == 0 || height == 0 {
        return Err(ImageProblem::Undecodable(format!(
            "the header declares {width}×{height} pixels"
        )));
    }
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(ImageProblem::TooManyPixels { width, height });
    }
    let fit = |v: u64| u32::try_from(v).map_err(|_| ImageProblem::TooManyPixels { width, height });
    Ok((fit(width)?, fit(height)?))
}

/// Decodes every row of a PNG (one row in memory at a time; the decoder's own allocations capped at 64 MiB).
fn decode_png(path: &Path) -> Result<(), ImageProblem> {
    let bad = |e: png::DecodingError| ImageProblem::Undecodable(e.to_string());
    let file = std::fs::File::open(path)
        .map_err(|e| ImageProblem::Undecodable(format!("cannot open the upload: {e}")))?;
    let limits = png::Limits { bytes: 64 << 20 };
    let mut reader = png::Decoder::new_with_limits(BufReader::new(file), limits)
        .read_info()
        .map_err(bad)?;
    while reader.next_row().map_err(bad)?.is_some() {}
    Ok(())
}

/// Decodes the whole image with ffmpeg (30 s deadline); any decoding error refuses it.
async fn decode_with_ffmpeg(path: &Path) -> Result<(), ImageProblem> {
    let args: Vec<String> = ["-v", "error", "-xerror", "-i"]
        .iter()
        .map(|s| s.to_string())
        .chain([path.display().to_string()])
        .chain(["-f", "null", "-"].iter().map(|s| s.to_string()))
        .collect();
    crate::media::run_tool("ffmpeg", &args, None, Duration::from_secs(30))
        .await
        .map(drop)
        .map_err(|e| match e {
            crate::media::MediaError::Failed { stderr_tail, .. } => {
                // ffmpeg's messages name the decoder and the failure, never a path of ours beyond the upload.
                let tail = stderr_tail.replace(&path.display().to_string(), "upload");
                ImageProblem::Undecodable(tail.chars().take(300).collect())
            }
            other => ImageProblem::Undecodable(other.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG header declaring `width`×`height` grayscale pixels, with no image data.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(&ihdr);
        out.extend_from_slice(&[0; 4]);
        out
    }

    #[test]
    fn the_pixel_count_is_refused_from_the_header_and_small_images_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        std::fs::write(&path, png_header(60000, 60000)).unwrap();
        assert_eq!(
            header_size(&path),
            Err(ImageProblem::TooManyPixels {
                width: 60000,
                height: 60000
            })
        );
        std::fs::write(&path, png_header(1, 1)).unwrap();
        assert_eq!(header_size(&path), Ok((1, 1)));
        std::fs::write(&path, png_header(0, 10)).unwrap();
        assert!(matches!(
            header_size(&path),
            Err(ImageProblem::Undecodable(_))
        ));
    }
}
