//! Reading a photo into RGB pixels (PNG or JPEG), with size limits so a hostile file cannot exhaust memory.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::error::FaceError;

/// The largest width or height accepted.
pub const MAX_SIDE: u32 = 12_000;

/// A decoded photo.
#[derive(Debug, Clone)]
pub struct Photo {
    /// Where it was read from (as given).
    pub path: PathBuf,
    /// Its pixels.
    pub rgb: RgbImage,
}

impl Photo {
    /// Reads and decodes `path`: [`FaceError::Unreadable`] when it cannot be opened, [`FaceError::Undecodable`]
    /// when it is not a PNG or JPEG within [`MAX_SIDE`].
    pub fn open(path: &Path) -> Result<Self, FaceError> {
        let unreadable = |e: std::io::Error| FaceError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let undecodable = |reason: String| FaceError::Undecodable {
            path: path.to_path_buf(),
            reason,
        };
        if std::fs::metadata(path).map_err(unreadable)?.is_dir() {
            return Err(undecodable("it is a folder".into()));
        }
        let mut reader = image::io::Reader::open(path)
            .map_err(unreadable)?
            .with_guessed_format()
            .map_err(unreadable)?;
        let mut limits = image::io::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        reader.limits(limits);
        let decoded = reader.decode().map_err(|e| undecodable(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            rgb: decoded.to_rgb8(),
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.rgb.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.rgb.height()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_unreadable_and_garbage_is_undecodable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Photo::open(&dir.path().join("nope.png")).unwrap_err();
        assert!(matches!(missing, FaceError::Unreadable { .. }), "{missing}");
        let junk = dir.path().join("junk.jpg");
        std::fs::write(&junk, b"not an image at all").unwrap();
        let err = Photo::open(&junk).unwrap_err();
        assert!(matches!(err, FaceError::Undecodable { .. }), "{err}");
        assert!(!err.is_installation());
    }

    #[test]
    fn a_png_decodes_to_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        RgbImage::new(7, 5).save(&path).unwrap();
        let photo = Photo::open(&path).unwrap();
        assert_eq!((photo.width(), photo.height()), (7, 5));
    }
}
