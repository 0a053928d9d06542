//! How bright a face is: the mean luma (Rec. 601) of the face region, 0 (black) to 255 (white). Compared across a
//! photo set, its spread says how varied the lighting is.

use image::RgbImage;

use super::FaceBox;

/// The mean luma of the pixels inside `bbox` (clipped to the image), 0–255; 0 for an empty region.
pub fn face_brightness(image: &RgbImage, bbox: &FaceBox) -> f64 {
    let x_end = bbox.x.saturating_add(bbox.w).min(image.width());
    let y_end = bbox.y.saturating_add(bbox.h).min(image.height());
    let (mut sum, mut n) = (0.0, 0u64);
    for y in bbox.y..y_end {
        for x in bbox.x..x_end {
            let [r, g, b] = image.get_pixel(x, y).0;
            sum += 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn brightness_is_the_mean_luma_of_the_box_only() {
        let mut img = RgbImage::from_pixel(20, 20, Rgb([0, 0, 0]));
        for y in 0..10 {
            for x in 0..10 {
                img.put_pixel(x, y, Rgb([200, 200, 200]));
            }
        }
        let bright = FaceBox {
            x: 0,
            y: 0,
            w: 10,
            h: 10,
        };
        assert!((face_brightness(&img, &bright) - 200.0).abs() < 1e-6);
        let half = FaceBox {
            x: 5,
            y: 0,
            w: 10,
            h: 10,
        };
        assert!((face_brightness(&img, &half) - 100.0).abs() < 1e-6);
        let outside = FaceBox {
            x: 30,
            y: 30,
            w: 5,
            h: 5,
        };
        assert_eq!(face_brightness(&img, &outside), 0.0);
    }
}
