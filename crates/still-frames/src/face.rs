//! Where a face's parts are in a picture (from 5 landmarks), and where they are seen through a placement.

use crate::Placement;

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
    pub fn mapped(&self, t: &Placement) -> Self {
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
    pub fn unmapped(&self, t: &Placement) -> Self {
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
}
