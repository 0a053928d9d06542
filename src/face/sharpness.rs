//! How sharp a face is: the variance of the Laplacian of the grey face region.
//!
//! The region is resampled to [`SIDE`]×[`SIDE`] pixels first, so faces of different sizes are measured on one grid
//! (the raw measure depends strongly on the resolution; after resampling it still does somewhat, since resampling
//! itself softens edges: compare faces of similar size when a precise threshold matters). Typical values: a crisp portrait a few hundred or more, a
//! soft or blurred face tens, a flat patch 0.

use image::{GrayImage, RgbImage, imageops};

use super::FaceBox;

/// The side of the square the face region is resampled to before measuring.
pub const SIDE: u32 = 128;

/// The sharpness of the face inside `bbox` (clipped to the image); 0 for an empty region.
pub fn face_sharpness(image: &RgbImage, bbox: &FaceBox) -> f64 {
    if bbox.w == 0 || bbox.h == 0 {
        return 0.0;
    }
    let crop = imageops::crop_imm(image, bbox.x, bbox.y, bbox.w, bbox.h).to_image();
    let grey = imageops::grayscale(&crop);
    let grey = imageops::resize(&grey, SIDE, SIDE, imageops::FilterType::Triangle);
    laplacian_variance(&grey)
}

/// The variance of the 4-neighbour Laplacian over the interior pixels of `grey`; 0 when it is under 3×3.
pub fn laplacian_variance(grey: &GrayImage) -> f64 {
    let (w, h) = grey.dimensions();
    if w < 3 || h < 3 {
        return 0.0;
    }
    let at = |x: u32, y: u32| f64::from(grey.get_pixel(x, y)[0]);
    let (mut sum, mut sum_sq, mut n) = (0.0, 0.0, 0.0);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let lap = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y);
            sum += lap;
            sum_sq += lap * lap;
            n += 1.0;
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb};

    fn checkerboard(side: u32, cell: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            if (x / cell + y / cell).is_multiple_of(2) {
                Rgb([230, 230, 230])
            } else {
                Rgb([20, 20, 20])
            }
        })
    }

    #[test]
    fn a_flat_patch_has_no_sharpness() {
        let flat = GrayImage::from_pixel(40, 40, Luma([128]));
        assert_eq!(laplacian_variance(&flat), 0.0);
    }

    #[test]
    fn blurring_a_face_region_lowers_its_sharpness() {
        let sharp = checkerboard(256, 16);
        let blurred = imageops::blur(&sharp, 4.0);
        let whole = FaceBox {
            x: 0,
            y: 0,
            w: 256,
            h: 256,
        };
        let (s, b) = (
            face_sharpness(&sharp, &whole),
            face_sharpness(&blurred, &whole),
        );
        assert!(s > 1000.0, "sharp {s}");
        assert!(b < s / 10.0, "blurred {b} vs sharp {s}");
    }

    #[test]
    fn an_empty_region_scores_zero() {
        let img = checkerboard(8, 2);
        let empty = FaceBox {
            x: 0,
            y: 0,
            w: 0,
            h: 5,
        };
        assert_eq!(face_sharpness(&img, &empty), 0.0);
    }
}
