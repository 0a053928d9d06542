//! Where the face is on the bundled placeholder portrait (its drawing's coordinates), and whether a frame
//! shows it. A photo's face comes from the face engine's landmarks ([`FaceGeometry::from_landmarks`]).

use image::RgbImage;
pub use still_frames::{FaceGeometry, Pt};

use crate::providers::FrameTransform;

/// The face of the bundled placeholder portrait rendered at `width`×`height` (its SVG's coordinates: a
/// 1600-unit square fitted in the middle of the frame).
pub fn placeholder_face(width: u32, height: u32) -> FaceGeometry {
    let at = placeholder_mapping(width, height);
    let s = placeholder_scale(width, height);
    FaceGeometry {
        eye_left: at((725.0, 760.0)),
        eye_right: at((875.0, 760.0)),
        eye_half_width: 26.0 * s,
        eye_half_height: 15.0 * s,
        mouth: at((800.0, 940.0)),
        mouth_half_width: 64.0 * s,
    }
}

fn placeholder_scale(width: u32, height: u32) -> f32 {
    width.min(height) as f32 / 1600.0
}

/// SVG units of the placeholder → still pixels (`preserveAspectRatio="xMidYMid meet"`).
fn placeholder_mapping(width: u32, height: u32) -> impl Fn(Pt) -> Pt {
    let s = placeholder_scale(width, height);
    let (ox, oy) = (
        (width as f32 - 1600.0 * s) / 2.0,
        (height as f32 - 1600.0 * s) / 2.0,
    );
    move |(x, y)| (ox + x * s, oy + y * s)
}

/// True when `frame` (the still seen through `t`) shows the bundled placeholder portrait: dark eyes, skin
/// around them and the reddish mouth line where the drawing has them.
pub fn shows_placeholder(frame: &RgbImage, still: (u32, u32), t: &FrameTransform) -> bool {
    let at = placeholder_mapping(still.0, still.1);
    let pixel = |svg: Pt| -> Option<[i32; 3]> {
        let (x, y) = t.apply(at(svg));
        let (x, y) = (x.round(), y.round());
        if x < 0.0 || y < 0.0 || x >= frame.width() as f32 || y >= frame.height() as f32 {
            return None;
        }
        let p = frame.get_pixel(x as u32, y as u32).0;
        Some([p[0] as i32, p[1] as i32, p[2] as i32])
    };
    let dark = |c: [i32; 3]| c.iter().sum::<i32>() < 200;
    let skin =
        |c: [i32; 3]| (150..=240).contains(&c[0]) && c[0] > c[1] + 15 && c[1] > c[2] && c[2] >= 80;
    let lips = |c: [i32; 3]| (100..=175).contains(&c[0]) && c[0] > c[1] + 35;
    type Test<'a> = &'a dyn Fn([i32; 3]) -> bool;
    let checks: [(Pt, Test); 7] = [
        ((725.0, 760.0), &dark),
        ((875.0, 760.0), &dark),
        ((800.0, 640.0), &skin),
        ((680.0, 850.0), &skin),
        ((920.0, 850.0), &skin),
        ((800.0, 1000.0), &skin),
        ((800.0, 942.0), &lips),
    ];
    checks
        .iter()
        .all(|(svg, test)| pixel(*svg).is_some_and(test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_is_recognised_by_its_drawing() {
        let png =
            crate::providers::local::render_placeholder("Deven", Some("warm"), 320, 180).unwrap();
        let still = image::load_from_memory(&png).unwrap().to_rgb8();
        let id = FrameTransform {
            scale_x: 1.0,
            scale_y: 1.0,
            offset_x: 0.0,
            offset_y: 0.0,
        };
        assert!(shows_placeholder(&still, (320, 180), &id));
        let grey = RgbImage::from_pixel(320, 180, image::Rgb([128, 128, 128]));
        assert!(!shows_placeholder(&grey, (320, 180), &id));
    }
}
