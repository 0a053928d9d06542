//! The crop/scale of a still, tested through the crate's public API.

use crate::{Camera, Placement, Yuv420, frame_bytes};

fn gradient(w: usize, h: usize) -> Yuv420 {
    let rgb: Vec<u8> = (0..w * h)
        .flat_map(|k| {
            let (x, y) = (k % w, k / w);
            [(x * 255 / (w - 1)) as u8, (y * 255 / (h - 1)) as u8, 60]
        })
        .collect();
    Yuv420::from_rgb(&rgb, w, h).unwrap()
}

#[test]
fn the_identity_placement_reproduces_the_still() {
    let still = gradient(64, 36);
    let mut out = vec![0; frame_bytes(64, 36)];
    let id = Placement {
        scale_x: 1.0,
        scale_y: 1.0,
        offset_x: 0.0,
        offset_y: 0.0,
    };
    Camera::new().render(&still, &id, &mut out, 64, 36).unwrap();
    let (y, u, v) = still.planes();
    assert_eq!(out, [y, u, v].concat());
}

#[test]
fn a_zoom_shows_the_still_pixel_the_placement_names() {
    let still = gradient(200, 100);
    let (w, h) = (160, 90);
    let at = Placement {
        scale_x: 2.0,
        scale_y: 2.0,
        offset_x: -100.0,
        offset_y: -50.0,
    };
    let mut out = vec![0; frame_bytes(w, h)];
    Camera::new().render(&still, &at, &mut out, w, h).unwrap();
    // Frame (80, 45) shows still (90, 47.5): its luma lies between the still's rows 47 and 48 there.
    let (y, _, _) = still.planes();
    let (a, b) = (y[47 * 200 + 90], y[48 * 200 + 90]);
    let got = out[45 * w + 80];
    assert!(
        (a.min(b)..=a.max(b)).contains(&got),
        "{got} not in {a}..{b}"
    );
    // Chroma follows the same placement: red rises to the right, and V with it.
    let v = &out[w * h + 80 * 45..];
    assert!(v[20 * 80 + 70] > v[20 * 80 + 5], "V grows with red");
}

#[test]
fn bad_sizes_and_placements_are_refused_or_clamped_never_a_panic() {
    assert!(Yuv420::from_rgb(&[0; 9], 1, 3).is_err());
    assert!(Yuv420::from_rgb(&[0; 47], 4, 4).is_err());
    let still = gradient(8, 8);
    let mut small = vec![0; 10];
    assert!(
        Camera::new()
            .render(&still, &placement(1.0, 0.0), &mut small, 8, 8)
            .is_err()
    );
    let mut out = vec![0; frame_bytes(9, 7)];
    for at in [
        placement(f32::NAN, 0.0),
        placement(0.0, 3.0),
        placement(-2.0, 1e9),
    ] {
        Camera::new().render(&still, &at, &mut out, 9, 7).unwrap();
    }
}

fn placement(scale: f32, offset: f32) -> Placement {
    Placement {
        scale_x: scale,
        scale_y: scale,
        offset_x: offset,
        offset_y: offset,
    }
}
