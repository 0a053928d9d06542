//! One frame's image work on planar yuv420p pixels: the head shifted slightly, the mouth opened (a dark
//! interior with a hint of teeth) and rounded, the eyelids lowered — by backward warping, only inside the box
//! around the head.

use crate::face::{FaceGeometry, Pt};

/// One frame's face motion.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameDrive {
    /// Mouth opening, 0 (closed) to 1 (wide).
    pub open: f32,
    /// Lip rounding, 0 to 1.
    pub round: f32,
    /// Eyelid closure, 0 (open) to 1 (closed).
    pub blink: f32,
    /// Head offset in inter-ocular distances (across, down).
    pub head: (f32, f32),
}

/// A colour in Y, U, V.
type Yuv = [f32; 3];

/// The lips' colour assumed until the frame is sampled; the mouth's interior is coloured after them
/// ([`Warp::interior`]).
const LIPS: Yuv = [144.0, 120.0, 150.0];
/// The widest mouth opening, in inter-ocular distances.
const MAX_OPEN: f32 = 0.24;

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn dot(a: Pt, b: Pt) -> f32 {
    a.0 * b.0 + a.1 * b.1
}

/// Where one output pixel comes from.
struct Mapped {
    /// The source point.
    at: Pt,
    /// A colour painted over the sampled one, with its coverage.
    paint: Option<(Yuv, f32)>,
}

/// One frame's warp: the face where the frame shows it, and what it does in this frame.
pub struct Warp {
    g: FaceGeometry,
    ax: Pt,
    dn: Pt,
    iod: f32,
    drive: FrameDrive,
    head_centre: Pt,
    head_radii: Pt,
    head_shift: Pt,
    lid: [Yuv; 2],
    lips: Yuv,
}

impl Warp {
    /// The warp of face `g` (frame pixels) moved by `drive`.
    pub fn new(g: FaceGeometry, drive: FrameDrive) -> Self {
        let (ax, dn, iod) = (g.across(), g.down(), g.interocular());
        let mid = (
            (g.eye_left.0 + g.eye_right.0) / 2.0,
            (g.eye_left.1 + g.eye_right.1) / 2.0,
        );
        let along = |p: Pt, a: f32, d: f32| (p.0 + a * ax.0 + d * dn.0, p.1 + a * ax.1 + d * dn.1);
        Self {
            head_centre: along(mid, 0.0, 0.4 * iod),
            head_radii: (1.4 * iod, 1.9 * iod),
            head_shift: along((0.0, 0.0), drive.head.0 * iod, drive.head.1 * iod),
            lid: [[0.0; 3]; 2],
            lips: LIPS,
            g,
            ax,
            dn,
            iod,
            drive,
        }
    }

    /// The frame box (x0, y0, x1, y1) outside which nothing changes, clipped to a `w`×`h` frame.
    fn bounds(&self, w: usize, h: usize) -> (usize, usize, usize, usize) {
        let (c, (rx, ry)) = (self.head_centre, self.head_radii);
        let ex = ((rx * self.ax.0).powi(2) + (ry * self.dn.0).powi(2)).sqrt();
        let ey = ((rx * self.ax.1).powi(2) + (ry * self.dn.1).powi(2)).sqrt();
        let m = self.g.mouth;
        let jaw = 1.6 * self.iod;
        let x0 = (c.0 - ex).min(m.0 - jaw).floor().max(0.0) as usize;
        let y0 = (c.1 - ey).floor().max(0.0) as usize;
        let x1 = ((c.0 + ex).max(m.0 + jaw).ceil().max(0.0) as usize).min(w);
        let y1 = ((c.1 + ey).max(m.1 + jaw).ceil().max(0.0) as usize).min(h);
        (x0, y0, x1.max(x0), y1.max(y0))
    }

    /// The whole backward map of output point `p`.
    fn map(&self, p: Pt) -> Mapped {
        let rel = (p.0 - self.head_centre.0, p.1 - self.head_centre.1);
        let u = dot(rel, self.ax) / self.head_radii.0;
        let v = dot(rel, self.dn) / self.head_radii.1;
        // Whole shift inside 0.55 of the head's radii, none outside them (no square root for most pixels).
        let r2 = u * u + v * v;
        let f = if r2 <= 0.55 * 0.55 {
            1.0
        } else if r2 >= 1.0 {
            0.0
        } else {
            1.0 - smoothstep(0.55, 1.0, r2.sqrt())
        };
        let q = (p.0 - self.head_shift.0 * f, p.1 - self.head_shift.1 * f);
        let (q, mouth) = self.mouth(q);
        let (at, lid) = self.eyes(q);
        Mapped {
            at,
            paint: mouth.or(lid),
        }
    }

    /// The mouth: lips parted along an arc, the jaw lowered below, the upper lip raised a little, the corners
    /// drawn in when rounded; the gap between the lips is painted.
    fn mouth(&self, q: Pt) -> (Pt, Option<(Yuv, f32)>) {
        let (iod, hw, d) = (self.iod, self.g.mouth_half_width, self.drive);
        let rel = (q.0 - self.g.mouth.0, q.1 - self.g.mouth.1);
        let (xm, ym) = (dot(rel, self.ax), dot(rel, self.dn));
        if xm.abs() > 2.4 * hw || !(-0.45 * iod..=1.6 * iod).contains(&ym) {
            return (q, None);
        }
        let k = 1.0 - 0.2 * d.round;
        let band = (1.0 - smoothstep(0.15 * iod, 0.4 * iod, ym.abs()))
            * (1.0 - smoothstep(1.2 * hw, 2.0 * hw, xm.abs()));
        let xs = xm / (1.0 - (1.0 - k) * band);
        let xn = xm / (hw * k);
        let s = (1.0 - xn * xn).max(0.0);
        let open = d.open * MAX_OPEN * iod;
        let (au, al) = (0.3 * open * s, 0.7 * open * s);
        let ys = if ym <= -au {
            ym + au * (1.0 - smoothstep(0.04 * iod, 0.28 * iod, -au - ym))
        } else if ym >= al {
            let jaw = 1.0 - smoothstep(1.1 * hw, 2.3 * hw, xm.abs());
            let t = smoothstep(0.0, 0.4 * iod, ym - al);
            let fade = 1.0 - smoothstep(0.8 * iod, 1.5 * iod, ym);
            ym - 0.7 * open * (s + (jaw - s) * t) * fade
        } else {
            0.0
        };
        let at = (
            self.g.mouth.0 + xs * self.ax.0 + ys * self.dn.0,
            self.g.mouth.1 + xs * self.ax.1 + ys * self.dn.1,
        );
        // Feathered: the gap's edge fades over a width that grows with the face, and a narrow gap (the corners,
        // a barely open mouth) fades in instead of appearing at full strength.
        let edge = 0.75 + 0.025 * iod;
        let gap = au + al;
        let cover = ((ym + au + edge).min(al - ym + edge) / (2.0 * edge)).clamp(0.0, 1.0)
            * smoothstep(0.2, 1.0 + 0.02 * iod, gap);
        if s <= 0.0 || cover <= 0.0 {
            return (at, None);
        }
        (at, Some((self.interior(xn, ym + au, gap), cover)))
    }

    /// The colour inside the open mouth at `depth` pixels below the upper lip, of a gap `gap` high, in the
    /// light of the lips (colour `self.lips`): dark and only a little red (a dark colour keeps little of the
    /// lips' saturation — lipstick would otherwise turn it pure red), darkest in the middle of the gap, a tongue
    /// low in a wide gap, and the upper teeth just below the upper lip: ivory (slightly warm, whatever the lips'
    /// colour), shaded under the lip.
    fn interior(&self, xn: f32, depth: f32, gap: f32) -> Yuv {
        let l = self.lips;
        let t = (depth / gap.max(1.0)).clamp(0.0, 1.0);
        let middle = (std::f32::consts::PI * t).sin();
        // A chroma `k` of the way from neutral to the lips' (plus a fixed tint).
        let tint = |v: f32, k: f32, plus: f32| 128.0 + plus + (v - 128.0) * k;
        let mut c = [
            l[0] * (0.2 + 0.12 * xn.abs() + 0.12 * (1.0 - middle)),
            tint(l[1], 0.35, 0.0),
            tint(l[2], 0.35, 0.0),
        ];
        let tongue = smoothstep(0.55, 1.0, t)
            * smoothstep(0.04 * self.iod, 0.16 * self.iod, gap)
            * (1.0 - smoothstep(0.3, 0.8, xn.abs()));
        let tongue_colour = [0.5 * l[0], tint(l[1], 0.6, 0.0), tint(l[2], 0.6, 0.0)];
        let teeth_h = (0.35 * gap).min(0.08 * self.iod);
        let teeth = (1.0 - smoothstep(0.2 * teeth_h, 1.2 * teeth_h, depth))
            * (1.0 - smoothstep(0.35, 0.75, xn.abs()));
        let shade = 0.8 + 0.2 * smoothstep(0.0, 0.5 * teeth_h, depth);
        let teeth_colour = [
            (1.05 * l[0] + 30.0).min(215.0) * shade,
            tint(l[1], 0.1, -7.0),
            tint(l[2], 0.1, 4.0),
        ];
        for ((ci, tc), th) in c.iter_mut().zip(tongue_colour).zip(teeth_colour) {
            *ci += (tc - *ci) * 0.5 * tongue;
            *ci += (th - *ci) * teeth;
        }
        c
    }

    /// The eyelids: as a lid closes it is painted in the skin's colour from the top of the eye down, with a
    /// lash line at its edge, and what is left of the eye below is squeezed under it.
    fn eyes(&self, q: Pt) -> (Pt, Option<(Yuv, f32)>) {
        let b = self.drive.blink;
        if b <= 0.0 {
            return (q, None);
        }
        let (ew, eh) = (self.g.eye_half_width, self.g.eye_half_height.max(1.0));
        for (c, skin) in [self.g.eye_left, self.g.eye_right]
            .into_iter()
            .zip(self.lid)
        {
            let rel = (q.0 - c.0, q.1 - c.1);
            let (x, y) = (dot(rel, self.ax) / ew, dot(rel, self.dn) / eh);
            if x.abs() >= 1.25 || !(-1.4..1.3).contains(&y) {
                continue;
            }
            let p = (1.0 - (x / 1.15).powi(2)).max(0.0);
            let lid = -1.0 + b * 1.9 * p;
            if y < lid {
                let alpha = smoothstep(-1.4, -0.9, y) * (3.0 * p).min(1.0);
                let lash = 0.7 * b * (1.0 - ((lid - y) / 0.3).min(1.0));
                // A rounded lid: lit along its middle, shaded toward the corners and into the crease above.
                let round = 0.88 + 0.1 * p.sqrt() - 0.06 * smoothstep(-0.9, -1.4, y);
                let mut colour = skin;
                colour[0] *= round - 0.45 * lash;
                return (q, Some((colour, alpha)));
            }
            let ys = 1.3 - (1.3 - y) * 2.3 / (1.3 - lid);
            let dy = (ys - y) * eh;
            return ((q.0 + dy * self.dn.0, q.1 + dy * self.dn.1), None);
        }
        (q, None)
    }

    /// The skin colour around each eye in `original` (the median of points below and beside it, where
    /// glasses' rims and brows are fewest).
    fn lid_colours(&self, original: &[u8], w: usize, h: usize) -> [Yuv; 2] {
        const AROUND: [(f32, f32); 10] = [
            (-1.7, 0.0),
            (1.7, 0.0),
            (-1.5, 1.6),
            (1.5, 1.6),
            (-0.8, 2.8),
            (0.8, 2.8),
            (0.0, 3.0),
            (-1.2, 3.4),
            (1.2, 3.4),
            (0.0, 3.6),
        ];
        let scale = (self.g.eye_half_width, self.g.eye_half_height);
        [self.g.eye_left, self.g.eye_right].map(|c| self.median(original, w, h, c, scale, &AROUND))
    }

    /// The lips' colour in `original` (the median of points along both lips).
    fn lip_colour(&self, original: &[u8], w: usize, h: usize) -> Yuv {
        const ALONG: [(f32, f32); 7] = [
            (-0.5, -0.08),
            (0.0, -0.08),
            (0.5, -0.08),
            (-0.6, 0.1),
            (-0.2, 0.12),
            (0.2, 0.12),
            (0.6, 0.1),
        ];
        let scale = (self.g.mouth_half_width, self.iod);
        self.median(original, w, h, self.g.mouth, scale, &ALONG)
    }

    /// The median (by brightness) of `original`'s colours at `points` around `c`, in units of `scale` across
    /// and down the face.
    fn median(
        &self,
        original: &[u8],
        w: usize,
        h: usize,
        c: Pt,
        scale: Pt,
        points: &[(f32, f32)],
    ) -> Yuv {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (y_plane, rest) = original.split_at(w * h);
        let (u_plane, v_plane) = rest.split_at(cw * ch);
        let mut samples: Vec<Yuv> = points
            .iter()
            .map(|&(x, y)| {
                let (x, y) = (x * scale.0, y * scale.1);
                let at = (
                    c.0 + x * self.ax.0 + y * self.dn.0,
                    c.1 + x * self.ax.1 + y * self.dn.1,
                );
                let half = ((at.0 - 0.5) / 2.0, (at.1 - 0.5) / 2.0);
                [
                    sample(y_plane, w, h, at),
                    sample(u_plane, cw, ch, half),
                    sample(v_plane, cw, ch, half),
                ]
            })
            .collect();
        samples.sort_by(|a, b| a[0].total_cmp(&b[0]));
        samples[samples.len() / 2]
    }

    /// Warps `frame` (planar yuv420p, `w`×`h`) in place, sampling from `original` (the same frame unchanged).
    pub fn apply(&mut self, frame: &mut [u8], original: &[u8], w: usize, h: usize) {
        if self.drive.blink > 0.0 {
            self.lid = self.lid_colours(original, w, h);
        }
        if self.drive.open > 0.0 {
            self.lips = self.lip_colour(original, w, h);
        }
        let (x0, y0, x1, y1) = self.bounds(w, h);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (luma, chroma) = frame.split_at_mut(w * h);
        let (u_out, v_out) = chroma.split_at_mut(cw * ch);
        let (y_in, rest) = original.split_at(w * h);
        let (u_in, v_in) = rest.split_at(cw * ch);
        for y in y0..y1 {
            for x in x0..x1 {
                let p = (x as f32, y as f32);
                let m = self.map(p);
                if m.at == p && m.paint.is_none() {
                    continue;
                }
                let mut val = sample(y_in, w, h, m.at);
                if let Some((c, a)) = m.paint {
                    val += (c[0] - val) * a;
                }
                // A saturating cast: below 0 is 0, above 255 is 255.
                luma[y * w + x] = (val + 0.5) as u8;
            }
        }
        for j in y0 / 2..y1.div_ceil(2).min(ch) {
            for i in x0 / 2..x1.div_ceil(2).min(cw) {
                let p = (2.0 * i as f32 + 0.5, 2.0 * j as f32 + 0.5);
                let m = self.map(p);
                if m.at == p && m.paint.is_none() {
                    continue;
                }
                let at = ((m.at.0 - 0.5) / 2.0, (m.at.1 - 0.5) / 2.0);
                for (plane_in, plane_out, k) in [(u_in, &mut *u_out, 1), (v_in, &mut *v_out, 2)] {
                    let mut val = sample(plane_in, cw, ch, at);
                    if let Some((c, a)) = m.paint {
                        val += (c[k] - val) * a;
                    }
                    plane_out[j * cw + i] = (val + 0.5) as u8;
                }
            }
        }
    }
}

/// Bilinear sample of a `w`×`h` plane at `p`, clamped to the edges.
fn sample(plane: &[u8], w: usize, h: usize, p: Pt) -> f32 {
    let x = p.0.clamp(0.0, (w - 1) as f32);
    let y = p.1.clamp(0.0, (h - 1) as f32);
    let (xi, yi) = (x as usize, y as usize);
    let (fx, fy) = (x - xi as f32, y - yi as f32);
    let (xj, yj) = ((xi + 1).min(w - 1), (yi + 1).min(h - 1));
    let at = |xx: usize, yy: usize| f32::from(plane[yy * w + xx]);
    let top = at(xi, yi) + (at(xj, yi) - at(xi, yi)) * fx;
    let bottom = at(xi, yj) + (at(xj, yj) - at(xi, yj)) * fx;
    top + (bottom - top) * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> FaceGeometry {
        FaceGeometry::from_landmarks(&[(40, 40), (52, 40), (88, 40), (76, 40), (64, 70)]).unwrap()
    }

    fn frame(w: usize, h: usize) -> Vec<u8> {
        let mut f = vec![128_u8; w * h * 3 / 2];
        for (i, px) in f[..w * h].iter_mut().enumerate() {
            *px = 150 + ((i % w) % 7) as u8;
        }
        f
    }

    #[test]
    fn a_closed_still_face_is_unchanged_and_an_open_mouth_is_dark_at_the_mouth_only() {
        let (w, h) = (128, 128);
        let original = frame(w, h);
        let mut still = original.clone();
        Warp::new(face(), FrameDrive::default()).apply(&mut still, &original, w, h);
        assert_eq!(
            still, original,
            "closed mouth, open eyes, no head motion: nothing moves"
        );
        let mut open = original.clone();
        let drive = FrameDrive {
            open: 1.0,
            ..FrameDrive::default()
        };
        Warp::new(face(), drive).apply(&mut open, &original, w, h);
        let m = face().mouth;
        let (mx, my) = (m.0.round() as usize, m.1.round() as usize);
        assert!(
            open[my * w + mx] < 80,
            "dark interior at the mouth: {}",
            open[my * w + mx]
        );
        assert_eq!(
            open[10 * w + 10],
            original[10 * w + 10],
            "far pixels untouched"
        );
    }

    #[test]
    fn the_open_mouth_is_feathered_into_the_face_and_a_narrow_gap_only_shades() {
        let (w, h) = (128, 128);
        let original = frame(w, h);
        let opened = |open: f32| {
            let mut f = original.clone();
            let drive = FrameDrive {
                open,
                ..FrameDrive::default()
            };
            Warp::new(face(), drive).apply(&mut f, &original, w, h);
            f
        };
        let (wide, narrow) = (opened(1.0), opened(0.05));
        let m = face().mouth;
        let (mx, my) = (m.0.round() as usize, m.1.round() as usize);
        // Down the mouth's middle column the dark gap fades into the lower lip over more than a pixel or two.
        let steepest = (my..my + 12)
            .map(|y| (i32::from(wide[y * w + mx]) - i32::from(wide[(y + 1) * w + mx])).abs())
            .max()
            .unwrap();
        assert!(wide[my * w + mx] < 80, "open: dark inside");
        assert!(
            steepest < 65,
            "a feathered edge, not a cut-out: {steepest} per pixel"
        );
        let shade = i32::from(original[my * w + mx]) - i32::from(narrow[my * w + mx]);
        assert!(
            (0..40).contains(&shade),
            "a barely parted mouth is shaded, not painted: {shade}"
        );
    }

    #[test]
    fn red_lips_give_a_dark_mouth_that_is_not_pure_red_and_ivory_teeth_not_pink_ones() {
        let drive = FrameDrive {
            open: 1.0,
            ..FrameDrive::default()
        };
        let mut w = Warp::new(face(), drive);
        // Lipstick: strongly red lips (Y, U, V).
        w.lips = [110.0, 105.0, 178.0];
        let gap = 0.2 * w.iod;
        let dark = w.interior(0.0, gap / 2.0, gap);
        assert!(dark[0] < 50.0, "dark: {dark:?}");
        assert!(
            (128.0..150.0).contains(&dark[2]) && (112.0..=128.0).contains(&dark[1]),
            "a little red, not saturated: {dark:?}"
        );
        let teeth = w.interior(0.0, 0.5, gap);
        assert!(teeth[0] > 100.0, "teeth are light: {teeth:?}");
        assert!(
            teeth[1] < 126.0 && (128.0..138.0).contains(&teeth[2]),
            "ivory (warm), not pink or lavender: {teeth:?}"
        );
    }

    #[test]
    fn a_blink_darkens_nothing_when_the_eyes_are_open_and_moves_pixels_when_closed() {
        let (w, h) = (128, 128);
        let mut original = frame(w, h);
        // A dark eye dot at each eye centre.
        for (x, y) in [(46, 40), (82, 40)] {
            original[y * w + x] = 10;
        }
        let mut closed = original.clone();
        let drive = FrameDrive {
            blink: 1.0,
            ..FrameDrive::default()
        };
        Warp::new(face(), drive).apply(&mut closed, &original, w, h);
        assert!(
            closed[40 * w + 46] > 60,
            "the lid covers the eye: {}",
            closed[40 * w + 46]
        );
    }
}
