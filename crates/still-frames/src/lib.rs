//! The pixel work of a talking clip made from a still: each frame is a bilinear crop/scale of a planar yuv420p
//! still (fixed-point arithmetic over buffers reused from frame to frame), and the face in it is moved by a
//! backward warp ([`Warp`]: mouth, eyelids, head) placed by its [`FaceGeometry`].
//!
//! A crate of its own so that it is compiled optimised in debug builds too (the root `Cargo.toml` sets its
//! `opt-level`): devatar's tests render real clips, and at opt-level 0 one 720p frame took ~100 ms to crop and
//! tens of ms more to warp.

mod face;
#[cfg(test)]
mod tests;
mod warp;

pub use face::{FaceGeometry, Pt};
pub use warp::{FrameDrive, Warp};

/// Where the still lies in one frame: still pixel `p` is seen at `p × scale + offset` (pixel centres at
/// whole numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Horizontal scale.
    pub scale_x: f32,
    /// Vertical scale.
    pub scale_y: f32,
    /// Horizontal offset, frame pixels.
    pub offset_x: f32,
    /// Vertical offset, frame pixels.
    pub offset_y: f32,
}

impl Placement {
    /// The frame position of still pixel `(x, y)`.
    pub fn apply(&self, (x, y): (f32, f32)) -> (f32, f32) {
        (
            x * self.scale_x + self.offset_x,
            y * self.scale_y + self.offset_y,
        )
    }

    /// The still position of frame pixel `(x, y)`.
    pub fn invert(&self, (x, y): (f32, f32)) -> (f32, f32) {
        (
            (x - self.offset_x) / self.scale_x,
            (y - self.offset_y) / self.scale_y,
        )
    }
}

/// A picture or buffer size that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The still is smaller than 4×4 or its pixels do not match its size.
    #[error("a still of {width}x{height} with {bytes} bytes of RGB cannot be used")]
    BadStill {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
        /// Bytes given.
        bytes: usize,
    },
    /// The output buffer does not hold one frame.
    #[error("a {width}x{height} frame needs {needed} bytes, the buffer has {bytes}")]
    BadFrame {
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
        /// Bytes a frame needs.
        needed: usize,
        /// Bytes given.
        bytes: usize,
    },
}

/// The bytes of one planar yuv420p picture of `width`×`height`.
pub fn frame_bytes(width: usize, height: usize) -> usize {
    width * height + 2 * width.div_ceil(2) * height.div_ceil(2)
}

/// A planar yuv420p picture (Y, then U and V at half size, rounded up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuv420 {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Yuv420 {
    /// Converts packed 8-bit RGB with BT.601 limited-range coefficients (what ffmpeg's rgb24 → yuv420p does by
    /// default); each chroma sample is the mean of its 2×2 block.
    pub fn from_rgb(rgb: &[u8], width: usize, height: usize) -> Result<Self, FrameError> {
        if width < 4 || height < 4 || rgb.len() != width * height * 3 {
            return Err(FrameError::BadStill {
                width,
                height,
                bytes: rgb.len(),
            });
        }
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let mut data = vec![0_u8; frame_bytes(width, height)];
        let (luma, chroma) = data.split_at_mut(width * height);
        let (u, v) = chroma.split_at_mut(cw * ch);
        for (y, px) in luma.iter_mut().zip(rgb.chunks_exact(3)) {
            let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
            *y = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        }
        for j in 0..ch {
            for i in 0..cw {
                let mut sum = [0_i32; 3];
                let mut n = 0;
                for yy in 2 * j..(2 * j + 2).min(height) {
                    for xx in 2 * i..(2 * i + 2).min(width) {
                        let k = 3 * (yy * width + xx);
                        for (s, &c) in sum.iter_mut().zip(&rgb[k..k + 3]) {
                            *s += i32::from(c);
                        }
                        n += 1;
                    }
                }
                let [r, g, b] = sum.map(|s| (s + n / 2) / n);
                u[j * cw + i] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
                v[j * cw + i] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
            }
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The Y, U and V planes.
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let (y, rest) = self.data.split_at(self.width * self.height);
        let (u, v) = rest.split_at(cw * ch);
        (y, u, v)
    }
}

/// One output position's source: the first of two neighbouring samples and the second's weight (0–256).
type Tap = (u32, u32);

/// Renders frames from one still, reusing its tables and row buffer (no allocation once they have grown).
#[derive(Debug, Default)]
pub struct Camera {
    xs: Vec<Tap>,
    ys: Vec<Tap>,
    row: Vec<u16>,
}

/// Fills `taps` with the source of each of `n` outputs at `start + i × step` in a line of `len ≥ 2` samples
/// (clamped to its ends).
fn axis(taps: &mut Vec<Tap>, n: usize, len: usize, start: f64, step: f64) {
    taps.clear();
    let max = (len - 1) as f64;
    taps.extend((0..n).map(|i| {
        // NaN (from a degenerate placement) becomes 0 in the casts: a defined, clamped picture.
        let s = (start + i as f64 * step).clamp(0.0, max);
        let first = (s as usize).min(len - 2);
        let weight = ((s - first as f64) * 256.0).round() as u32;
        (first as u32, weight.min(256))
    }));
}

/// One plane: `out` (rows of `xs.len()`) bilinearly sampled from `src` (rows of `sw`), vertical pass into
/// `row` first (contiguous, vectorised), then the horizontal taps.
fn plane(src: &[u8], sw: usize, xs: &[Tap], ys: &[Tap], out: &mut [u8], row: &mut Vec<u16>) {
    let ow = xs.len();
    let lo = xs.iter().map(|t| t.0 as usize).min().unwrap_or(0);
    let hi = xs
        .iter()
        .map(|t| t.0 as usize + 2)
        .max()
        .unwrap_or(0)
        .min(sw);
    for (dst, &(y0, fy)) in out.chunks_exact_mut(ow).zip(ys) {
        let top = &src[y0 as usize * sw..][lo..hi];
        let bottom = &src[(y0 as usize + 1) * sw..][lo..hi];
        let (a, b) = ((256 - fy) as u16, fy as u16);
        row.clear();
        row.extend(
            top.iter()
                .zip(bottom)
                .map(|(&p, &q)| u16::from(p) * a + u16::from(q) * b),
        );
        for (o, &(x0, fx)) in dst.iter_mut().zip(xs) {
            let k = x0 as usize - lo;
            let v = u32::from(row[k]) * (256 - fx) + u32::from(row[k + 1]) * fx;
            *o = ((v + 32_768) >> 16) as u8;
        }
    }
}

impl Camera {
    /// A camera with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes into `out` the planar yuv420p `width`×`height` frame that shows `still` placed by `at`.
    pub fn render(
        &mut self,
        still: &Yuv420,
        at: &Placement,
        out: &mut [u8],
        width: usize,
        height: usize,
    ) -> Result<(), FrameError> {
        let needed = frame_bytes(width, height);
        if out.len() != needed || width == 0 || height == 0 {
            return Err(FrameError::BadFrame {
                width,
                height,
                needed,
                bytes: out.len(),
            });
        }
        let (sx, sy) = (f64::from(at.scale_x), f64::from(at.scale_y));
        let (ox, oy) = (f64::from(at.offset_x), f64::from(at.offset_y));
        let (y_in, u_in, v_in) = still.planes();
        let (luma, chroma) = out.split_at_mut(width * height);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let (u_out, v_out) = chroma.split_at_mut(cw * ch);
        axis(&mut self.xs, width, still.width, -ox / sx, 1.0 / sx);
        axis(&mut self.ys, height, still.height, -oy / sy, 1.0 / sy);
        plane(y_in, still.width, &self.xs, &self.ys, luma, &mut self.row);
        // Chroma sample i sits at luma 2i + 0.5 of the frame and maps to chroma (s − 0.5) / 2 of the still.
        let (scw, sch) = (still.width.div_ceil(2), still.height.div_ceil(2));
        axis(
            &mut self.xs,
            cw,
            scw,
            (0.5 - ox) / (2.0 * sx) - 0.25,
            1.0 / sx,
        );
        axis(
            &mut self.ys,
            ch,
            sch,
            (0.5 - oy) / (2.0 * sy) - 0.25,
            1.0 / sy,
        );
        plane(u_in, scw, &self.xs, &self.ys, u_out, &mut self.row);
        plane(v_in, scw, &self.xs, &self.ys, v_out, &mut self.row);
        Ok(())
    }
}
