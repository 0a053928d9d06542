//! Where the face is in the still: from the face engine's 5 landmarks, or the bundled placeholder's drawing.

use image::RgbImage;

use crate::providers::FrameTransform;

/// A point in pixels.
pub type Pt = (f32, f32);

/// The parts of a face the talking animation moves, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceGeometry {
    /// Centre of the image-left eye.
    pub eye_left: Pt,
    /// Centre of the image-right eye.
    pub eye_right: Pt,
    /// Half an eye's width (corner to corner).
    pub eye_half_width: f32,
    /// Half the eye opening's height.
    pub eye_half_height: f32,
    /// Where the lips meet, at the middle.
    pub mouth: Pt,
    /// Half the mouth's width.
    pub mouth_half_width: f32,
}

/// The base of the nose to the lips' meeting line, in inter-ocular distances (anthropometric average).
const NOSE_TO_MOUTH: f32 = 0.36;
/// Half the mouth's width, in inter-ocular distances.
const MOUTH_HALF_WIDTH: f32 = 0.38;
/// The smallest inter-ocular distance animated, pixels (a smaller face gets the plain mux).
const MIN_INTEROCULAR: f32 = 12.0;

fn mid(a: Pt, b: Pt) -> Pt {
    ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
}

fn dist(a: Pt, b: Pt) -> f32 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

impl FaceGeometry {
    /// From dlib's 5 landmarks (corners of one eye, of the other, base of the nose); `None` when there are not
    /// five points or the face is too small to animate.
    pub fn from_landmarks(points: &[(i64, i64)]) -> Option<Self> {
        let p: Vec<Pt> = points.iter().map(|&(x, y)| (x as f32, y as f32)).collect();
        let [a0, a1, b0, b1, nose] = p[..] else {
            return None;
        };
        let (ea, eb) = (mid(a0, a1), mid(b0, b1));
        let (left, right) = if ea.0 <= eb.0 { (ea, eb) } else { (eb, ea) };
        let iod = dist(left, right);
        if !iod.is_finite() || iod < MIN_INTEROCULAR {
            return None;
        }
        let mut g = Self {
            eye_left: left,
            eye_right: right,
            eye_half_width: (dist(a0, a1) + dist(b0, b1)) / 4.0,
            eye_half_height: 0.0,
            mouth: (0.0, 0.0),
            mouth_half_width: MOUTH_HALF_WIDTH * iod,
        };
        g.eye_half_height = 0.38 * g.eye_half_width;
        let down = g.down();
        g.mouth = (
            nose.0 + NOSE_TO_MOUTH * iod * down.0,
            nose.1 + NOSE_TO_MOUTH * iod * down.1,
        );
        Some(g)
    }

    /// The bundled placeholder portrait rendered at `width`×`height` (its SVG's coordinates: a 1600-unit square
    /// fitted in the middle of the frame).
    pub fn placeholder(width: u32, height: u32) -> Self {
        let at = placeholder_mapping(width, height);
        let s = placeholder_scale(width, height);
        Self {
            eye_left: at((725.0, 760.0)),
            eye_right: at((875.0, 760.0)),
            eye_half_width: 26.0 * s,
            eye_half_height: 15.0 * s,
            mouth: at((800.0, 940.0)),
            mouth_half_width: 64.0 * s,
        }
    }

    /// The distance between the eye centres.
    pub fn interocular(&self) -> f32 {
        dist(self.eye_left, self.eye_right)
    }

    /// The unit vector along the eye line (image-left to image-right eye).
    pub fn across(&self) -> Pt {
        let d = self.interocular().max(1e-3);
        (
            (self.eye_right.0 - self.eye_left.0) / d,
            (self.eye_right.1 - self.eye_left.1) / d,
        )
    }

    /// The unit vector across the eye line, toward the mouth.
    pub fn down(&self) -> Pt {
        let (ax, ay) = self.across();
        (-ay, ax)
    }

    /// The same face as seen through `t` (still → frame).
    pub fn mapped(&self, t: &FrameTransform) -> Self {
        let s = (t.scale_x + t.scale_y) / 2.0;
        Self {
            eye_left: t.apply(self.eye_left),
            eye_right: t.apply(self.eye_right),
            eye_half_width: self.eye_half_width * s,
            eye_half_height: self.eye_half_height * s,
            mouth: t.apply(self.mouth),
            mouth_half_width: self.mouth_half_width * s,
        }
    }

    /// The same face in the still, from where `t` shows it in a frame.
    pub fn unmapped(&self, t: &FrameTransform) -> Self {
        let s = (t.scale_x + t.scale_y) / 2.0;
        Self {
            eye_left: t.invert(self.eye_left),
            eye_right: t.invert(self.eye_right),
            eye_half_width: self.eye_half_width / s,
            eye_half_height: self.eye_half_height / s,
            mouth: t.invert(self.mouth),
            mouth_half_width: self.mouth_half_width / s,
        }
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
    fn the_mouth_lies_below_the_nose_across_the_eye_line() {
        // Eyes level at y = 100, 60 px apart; nose base at (130, 145).
        let g = FaceGeometry::from_landmarks(&[
            (90, 100),
            (110, 100),
            (170, 100),
            (150, 100),
            (130, 145),
        ])
        .unwrap();
        assert_eq!((g.eye_left, g.eye_right), ((100.0, 100.0), (160.0, 100.0)));
        assert!((g.mouth.0 - 130.0).abs() < 0.01 && g.mouth.1 > 160.0 && g.mouth.1 < 175.0);
        assert!(
            FaceGeometry::from_landmarks(&[(0, 0), (2, 0), (6, 0), (8, 0), (4, 6)]).is_none(),
            "too small a face"
        );
        assert!(FaceGeometry::from_landmarks(&[(0, 0)]).is_none());
    }

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
