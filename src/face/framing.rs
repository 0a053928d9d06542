//! Framing follows the face: the crop of a photo that shows its face whole, with headroom, at a talking-head size.
//!
//! The portrait rule: the eyes about a third down the frame ([`FramingRule::eye_line`]), the face (dlib's box, brows
//! to chin) about 40 % of the frame's height ([`FramingRule::face_fraction`]), never more zoom than
//! [`FramingRule::max_upscale`] unless the photo is smaller than the frame. Whole-face wins over the rule: the
//! crop keeps the forehead above the box ([`HEADROOM`]) and the chin below it inside whenever the photo allows.
//! [`frame`] and [`centre`] are plain geometry; [`render`] cuts and scales the pixels.

use image::RgbImage;
use image::imageops::{self, FilterType};

use super::{Face, FaceBox};

/// Room kept above dlib's box (which starts at the brows) for the forehead and hair, in face heights.
pub const HEADROOM: f64 = 0.35;

/// Room kept below the box (the chin), in face heights.
pub const CHIN_ROOM: f64 = 0.1;

/// A rectangle of the photo, in pixels, inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// Where the face goes in the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FramingRule {
    /// The face box's height over the frame's height (0.40: a talking head).
    pub face_fraction: f64,
    /// The eye line's distance from the top over the frame's height (a third).
    pub eye_line: f64,
    /// The face's centre from the left over the frame's width (a half: centred).
    pub centre_x: f64,
    /// The most the crop is enlarged to reach `face_fraction` when the photo holds more pixels than the frame.
    pub max_upscale: f64,
}

impl Default for FramingRule {
    fn default() -> Self {
        Self {
            face_fraction: 0.40,
            eye_line: 1.0 / 3.0,
            centre_x: 0.5,
            max_upscale: 1.5,
        }
    }
}

/// The eye line of a face: the mean height of its four eye corners, or 30 % down its box without landmarks.
pub fn eye_y(face: &Face) -> f64 {
    let eyes: Vec<f64> = face.landmarks.iter().take(4).map(|p| p.1 as f64).collect();
    if eyes.len() == 4 {
        eyes.iter().sum::<f64>() / 4.0
    } else {
        f64::from(face.bbox.y) + 0.3 * f64::from(face.bbox.h)
    }
}

/// The crop of a `photo` (width, height) that frames `face` (its box and eye line) for an `out` (width, height)
/// frame by `rule`; `None` when a size is zero.
pub fn frame(
    photo: (u32, u32),
    face: FaceBox,
    eye_y: f64,
    out: (u32, u32),
    rule: &FramingRule,
) -> Option<Crop> {
    let (pw, ph) = (f64::from(photo.0), f64::from(photo.1));
    let (ow, oh) = (f64::from(out.0), f64::from(out.1));
    if pw < 1.0 || ph < 1.0 || ow < 1.0 || oh < 1.0 || face.h == 0 {
        return None;
    }
    let aspect = ow / oh;
    let fh = f64::from(face.h);
    let top = f64::from(face.y) - HEADROOM * fh;
    let bottom = f64::from(face.y) + fh * (1.0 + CHIN_ROOM);
    // The crop's height: the rule's face size, no more zoom than allowed, the whole face, inside the photo.
    let largest = ph.min(pw / aspect);
    let smallest = (oh / rule.max_upscale.max(1.0)).min(largest);
    let h = (fh / rule.face_fraction.clamp(0.05, 1.0))
        .max(smallest)
        .max((bottom - top).min(largest))
        .min(largest);
    let w = (h * aspect).min(pw);
    let cx = f64::from(face.x) + f64::from(face.w) / 2.0;
    let x = (cx - rule.centre_x * w).min(pw - w).max(0.0);
    let mut y = eye_y - rule.eye_line * h;
    if y > top {
        y = top;
    }
    if y + h < bottom {
        y = bottom - h;
    }
    let y = y.min(ph - h).max(0.0);
    let (w, h) = (w.round().max(1.0), h.round().max(1.0));
    let x = x.round().min(pw - w).max(0.0);
    let y = y.round().min(ph - h).max(0.0);
    Some(Crop {
        x: x as u32,
        y: y as u32,
        w: w as u32,
        h: h as u32,
    })
}

/// The crop a blind "cover" scale takes: the largest centred rectangle of the frame's aspect ratio.
pub fn centre(photo: (u32, u32), out: (u32, u32)) -> Crop {
    let (pw, ph) = (f64::from(photo.0), f64::from(photo.1));
    let aspect = f64::from(out.0.max(1)) / f64::from(out.1.max(1));
    let h = ph.min(pw / aspect);
    let w = (h * aspect).min(pw);
    let (w, h) = (w.round().max(1.0), h.round().max(1.0));
    Crop {
        x: ((pw - w) / 2.0).round().max(0.0) as u32,
        y: ((ph - h) / 2.0).round().max(0.0) as u32,
        w: w as u32,
        h: h as u32,
    }
}

/// The `crop` of `image` scaled to `out` (width, height). Blocking.
pub fn render(image: &RgbImage, crop: Crop, out: (u32, u32)) -> RgbImage {
    let part = imageops::crop_imm(image, crop.x, crop.y, crop.w, crop.h).to_image();
    imageops::resize(&part, out.0.max(1), out.1.max(1), FilterType::CatmullRom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: u32, y: u32, side: u32) -> FaceBox {
        FaceBox {
            x,
            y,
            w: side,
            h: side,
        }
    }

    fn inside(c: &Crop, photo: (u32, u32)) -> bool {
        c.x + c.w <= photo.0 && c.y + c.h <= photo.1
    }

    #[test]
    fn a_face_at_the_left_edge_of_a_panorama_is_framed_whole_with_eyes_a_third_down() {
        let photo = (3000, 1000);
        let f = face(100, 300, 200);
        let c = frame(photo, f, 360.0, (1280, 720), &FramingRule::default()).unwrap();
        assert!(inside(&c, photo), "{c:?}");
        assert_eq!(c.h, 500, "face 40 % of the frame");
        assert_eq!(c.w, 889);
        assert_eq!(c.x, 0, "pushed against the left edge, not centred");
        assert!(c.y as f64 <= 300.0 - HEADROOM * 200.0, "headroom: {c:?}");
        assert!(c.y + c.h >= 520, "the chin is inside: {c:?}");
        let eyes = (360.0 - c.y as f64) / c.h as f64;
        assert!((eyes - 1.0 / 3.0).abs() < 0.02, "eyes at {eyes}");
        let blind = centre(photo, (1280, 720));
        assert!(
            blind.x > f.x + f.w,
            "a centre crop misses the face: {blind:?}"
        );
    }

    #[test]
    fn a_small_photo_gives_the_largest_crop_and_still_keeps_the_face() {
        let photo = (512, 512);
        let f = face(180, 150, 180);
        let c = frame(photo, f, 210.0, (1280, 720), &FramingRule::default()).unwrap();
        assert!(inside(&c, photo), "{c:?}");
        assert_eq!((c.w, c.h), (512, 288), "as large as the photo allows");
        assert!(c.y as f64 <= 150.0 - HEADROOM * 180.0 + 1.0, "{c:?}");
        assert!(c.y + c.h >= 330, "{c:?}");
    }

    #[test]
    fn a_small_face_in_a_large_photo_is_not_enlarged_past_the_limit() {
        let photo = (4000, 3000);
        let f = face(2000, 1000, 100);
        let c = frame(photo, f, 1030.0, (1280, 720), &FramingRule::default()).unwrap();
        assert_eq!(c.h, 480, "at most 1.5x enlargement of 720 lines");
        assert!(c.x <= 2000 && c.x + c.w >= 2100);
    }

    #[test]
    fn zero_sizes_give_none() {
        let r = FramingRule::default();
        assert!(frame((0, 10), face(0, 0, 5), 1.0, (10, 10), &r).is_none());
        assert!(frame((10, 10), face(0, 0, 0), 1.0, (10, 10), &r).is_none());
    }
}
