//! Head pose (yaw and pitch, degrees) estimated from the 5 landmarks alone.
//!
//! How: the two eye centres (each the mean of its two corner points) and the base of the nose are put in a frame
//! where the eye line is horizontal (roll removed), with the inter-ocular distance as the unit. A face is modelled as
//! the eyes at (±½, 0, 0) and the base of the nose at (0, [`NOSE_DROP`], [`NOSE_DEPTH`]) in front of them
//! (anthropometric averages in inter-ocular units). Turning the head by yaw θ moves the nose sideways by
//! depth·sin θ while the eyes' projected distance shrinks by cos θ, so θ = atan(offset / depth). Tilting it by
//! pitch φ moves the nose's projected drop to drop·cos φ − depth·sin φ (and its depth to drop·sin φ + depth·cos φ);
//! the two equations are solved together by a few fixed-point rounds.
//!
//! Signs, in image terms: yaw > 0 when the nose is right of the eyes' midpoint (the face turned toward the image's
//! right), pitch > 0 when the head is tilted up (chin raised). It is an estimate (a few degrees for a frontal face;
//! coarser beyond about ±45° yaw, and a downward tilt past about 25° saturates).

/// The base of the nose below the eye line, in inter-ocular distances (frontal, level head).
pub const NOSE_DROP: f64 = 0.75;

/// How far the base of the nose stands in front of the eyes, in inter-ocular distances.
pub const NOSE_DEPTH: f64 = 0.35;

/// Yaw and pitch in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadPose {
    /// Left/right turn: positive toward the image's right.
    pub yaw: f64,
    /// Up/down tilt: positive with the chin raised.
    pub pitch: f64,
}

/// The pose from dlib's 5 landmarks (points 0–1 and 2–3: the corners of each eye; 4: the base of the nose);
/// `None` when there are not 5 points or the eyes coincide.
pub fn pose_from_landmarks(points: &[(f64, f64)]) -> Option<HeadPose> {
    let [a0, a1, b0, b1, nose] = points else {
        return None;
    };
    let eye_a = midpoint(*a0, *a1);
    let eye_b = midpoint(*b0, *b1);
    // Image-left eye first, whatever order the model lists them in.
    let (left, right) = if eye_a.0 <= eye_b.0 {
        (eye_a, eye_b)
    } else {
        (eye_b, eye_a)
    };
    let (dx, dy) = (right.0 - left.0, right.1 - left.1);
    let iod = dx.hypot(dy);
    if !iod.is_finite() || iod < 1e-6 {
        return None;
    }
    // Roll removed: coordinates along the eye line (u) and across it (v, downward), in inter-ocular units.
    let (cos_r, sin_r) = (dx / iod, dy / iod);
    let mid = midpoint(left, right);
    let (nx, ny) = (nose.0 - mid.0, nose.1 - mid.1);
    let u = (nx * cos_r + ny * sin_r) / iod;
    let v = (-nx * sin_r + ny * cos_r) / iod;
    // Yaw and pitch depend on each other (a tilted head brings the nose forward or back, and a turned head shrinks
    // the unit): a few fixed-point rounds from a level head settle both.
    let radius = NOSE_DROP.hypot(NOSE_DEPTH);
    let alpha = NOSE_DEPTH.atan2(NOSE_DROP);
    let (mut yaw, mut pitch) = (0.0_f64, 0.0_f64);
    for _ in 0..12 {
        let depth = NOSE_DROP * pitch.sin() + NOSE_DEPTH * pitch.cos();
        yaw = (u / depth.max(1e-3)).atan();
        let drop = v * yaw.cos();
        pitch = (drop / radius).clamp(-1.0, 1.0).acos() - alpha;
    }
    Some(HeadPose {
        yaw: yaw.to_degrees(),
        pitch: pitch.to_degrees(),
    })
}

fn midpoint(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Projects the model face (eye corners ±0.3/±0.7, nose) turned by `yaw` and tilted by `pitch` (degrees),
    /// rolled by `roll`, scaled by 100 px and moved to (300, 200), listing the eyes in dlib's order.
    fn project(yaw: f64, pitch: f64, roll: f64) -> Vec<(f64, f64)> {
        let (y, p, r) = (yaw.to_radians(), pitch.to_radians(), roll.to_radians());
        let model = [
            (0.7, 0.0, 0.0),
            (0.3, 0.0, 0.0),
            (-0.7, 0.0, 0.0),
            (-0.3, 0.0, 0.0),
            (0.0, NOSE_DROP, NOSE_DEPTH),
        ];
        model
            .iter()
            .map(|&(x, v, z)| {
                // Pitch about the horizontal axis (up = nose rises), then yaw about the vertical axis.
                let (v1, z1) = (v * p.cos() - z * p.sin(), v * p.sin() + z * p.cos());
                let x1 = x * y.cos() + z1 * y.sin();
                let (xr, yr) = (x1 * r.cos() - v1 * r.sin(), x1 * r.sin() + v1 * r.cos());
                (300.0 + 100.0 * xr, 200.0 + 100.0 * yr)
            })
            .collect()
    }

    #[test]
    fn a_frontal_level_face_has_no_yaw_or_pitch() {
        let pose = pose_from_landmarks(&project(0.0, 0.0, 0.0)).unwrap();
        assert!(pose.yaw.abs() < 0.01 && pose.pitch.abs() < 0.01, "{pose:?}");
    }

    #[test]
    fn turns_and_tilts_are_recovered_whatever_the_roll() {
        for (yaw, pitch, roll) in [
            (20.0, 0.0, 0.0),
            (-30.0, 0.0, 10.0),
            (0.0, 15.0, -12.0),
            (0.0, -15.0, 5.0),
            (25.0, 10.0, 20.0),
        ] {
            let pose = pose_from_landmarks(&project(yaw, pitch, roll)).unwrap();
            assert!(
                (pose.yaw - yaw).abs() < 1.0 && (pose.pitch - pitch).abs() < 1.0,
                "yaw {yaw} pitch {pitch} roll {roll}: {pose:?}"
            );
        }
    }

    #[test]
    fn the_sign_of_yaw_follows_the_nose() {
        let mut points = project(0.0, 0.0, 0.0);
        points[4].0 += 20.0;
        assert!(pose_from_landmarks(&points).unwrap().yaw > 10.0);
        points[4].0 -= 40.0;
        assert!(pose_from_landmarks(&points).unwrap().yaw < -10.0);
    }

    #[test]
    fn degenerate_landmarks_give_no_pose() {
        assert!(pose_from_landmarks(&[(0.0, 0.0); 4]).is_none());
        assert!(pose_from_landmarks(&[(5.0, 5.0); 5]).is_none());
    }
}
