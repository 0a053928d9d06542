//! What the face does in each frame, from the speech: mouth opening from its loudness, lip rounding from its
//! words, natural blinks and slight head motion.

use crate::media::captions::WordTiming;
use still_frames::FrameDrive;

/// Sample rate speech that is not a 16-bit PCM WAV is decoded at for its loudness.
pub const PCM_RATE: u32 = 16_000;

/// Root-mean-square level (0–1 of full scale) of mono 16-bit PCM at `rate` over each of `frames` frames at
/// `fps`.
pub fn frame_loudness(pcm: &[i16], rate: u32, fps: u32, frames: usize) -> Vec<f32> {
    let per = (rate / fps.max(1)).max(1) as usize;
    (0..frames)
        .map(|i| {
            let chunk = pcm
                .get(i * per..((i + 1) * per).min(pcm.len()))
                .unwrap_or(&[]);
            if chunk.is_empty() {
                return 0.0;
            }
            let sum: f64 = chunk.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            ((sum / chunk.len() as f64).sqrt() / 32768.0) as f32
        })
        .collect()
}

/// Mouth opening per frame from loudness: decibels between a floor 24 dB under the speech's loud level and
/// that level, quiet frames closed, then smoothed (fast opening, slightly slower closing).
pub fn mouth_opening(loudness: &[f32]) -> Vec<f32> {
    let db: Vec<f32> = loudness
        .iter()
        .map(|&l| 20.0 * l.max(1e-6).log10())
        .collect();
    let mut voiced: Vec<f32> = db.iter().copied().filter(|&d| d > -55.0).collect();
    if voiced.is_empty() {
        return vec![0.0; loudness.len()];
    }
    voiced.sort_by(|a, b| a.total_cmp(b));
    let loud = voiced[(voiced.len() * 9 / 10).min(voiced.len() - 1)];
    let floor = (loud - 24.0).max(-55.0);
    let mut out = Vec::with_capacity(db.len());
    let mut level = 0.0_f32;
    for &d in &db {
        let target = ((d - floor) / (loud - 2.0 - floor)).clamp(0.0, 1.0);
        let rate = if target > level {
            0.7
        } else if target > 0.0 {
            0.5
        } else {
            0.65
        };
        level += (target - level) * rate;
        out.push(if level < 0.02 { 0.0 } else { level });
    }
    out
}

/// Lip rounding per frame from the words: each word's letters share its time, and rounded vowels and `w`
/// round the lips (smoothed).
pub fn rounding(words: &[WordTiming], fps: u32, frames: usize) -> Vec<f32> {
    let mut raw = vec![0.0_f32; frames];
    for w in words {
        let letters: Vec<char> = w
            .word
            .chars()
            .filter(|c| c.is_alphabetic())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if letters.is_empty() || w.end <= w.start {
            continue;
        }
        let first = (w.start * f64::from(fps)).floor().max(0.0) as usize;
        let last = ((w.end * f64::from(fps)).ceil() as usize).min(frames);
        for (i, r) in raw.iter_mut().enumerate().take(last).skip(first) {
            let t = (i as f64 + 0.5) / f64::from(fps);
            let k = ((t - w.start) / (w.end - w.start) * letters.len() as f64) as usize;
            if matches!(letters.get(k.min(letters.len() - 1)), Some('o' | 'u' | 'w')) {
                *r = 1.0;
            }
        }
    }
    let mut level = 0.0_f32;
    raw.iter()
        .map(|&r| {
            level += (r - level) * 0.5;
            level
        })
        .collect()
}

/// Eyelid closure per frame: a blink every 2.5–5 s (a fixed pseudo-random rhythm), six frames long.
pub fn blinks(fps: u32, frames: usize) -> Vec<f32> {
    const SHAPE: [f32; 6] = [0.4, 0.85, 1.0, 0.8, 0.45, 0.15];
    let mut out = vec![0.0_f32; frames];
    let mut seed: u32 = 0x9e37_79b9;
    let mut at = (1.2 * fps as f32) as usize;
    while at < frames {
        for (k, v) in SHAPE.iter().enumerate() {
            if let Some(o) = out.get_mut(at + k) {
                *o = *v;
            }
        }
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let gap = 2.5 + 2.5 * (seed >> 8) as f32 / (1u32 << 24) as f32;
        at += (gap * fps as f32) as usize;
    }
    out
}

/// The whole drive: per frame opening, rounding, blinks and head motion (slow sway plus a small nod with
/// the speech's emphasis).
pub fn drive(loudness: &[f32], words: &[WordTiming], fps: u32) -> Vec<FrameDrive> {
    let frames = loudness.len();
    let open = mouth_opening(loudness);
    let round = rounding(words, fps, frames);
    let blink = blinks(fps, frames);
    let mut emphasis = 0.0_f32;
    (0..frames)
        .map(|i| {
            let t = i as f32 / fps as f32;
            emphasis += (open[i] - emphasis) * 0.12;
            let tau = std::f32::consts::TAU;
            let across = 0.028 * (tau * t / 4.3).sin() + 0.01 * (tau * t / 1.9 + 0.7).sin();
            let down = 0.018 * (tau * t / 5.7 + 1.3).sin() + 0.03 * emphasis;
            FrameDrive {
                open: open[i],
                round: round[i] * (0.4 + 0.6 * open[i]),
                blink: blink[i],
                head: (across, down),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mouth_follows_loudness_and_closes_in_silence() {
        let mut loud = vec![0.3_f32; 20];
        loud.extend(vec![0.0; 15]);
        loud.extend(vec![0.05, 0.3, 0.3, 0.05]);
        let open = mouth_opening(&loud);
        assert!(open[10] > 0.8, "{open:?}");
        assert!(open[25..35].iter().all(|&o| o == 0.0), "{open:?}");
        assert!(open[36] > open[35]);
    }

    #[test]
    fn rounded_vowels_round_the_lips_and_blinks_recur() {
        let words = [WordTiming {
            word: "oo".into(),
            start: 0.0,
            end: 0.4,
        }];
        let r = rounding(&words, 25, 20);
        assert!(r[8] > 0.9 && r[19] < 0.1, "{r:?}");
        let b = blinks(25, 500);
        let starts = b.windows(2).filter(|w| w[0] == 0.0 && w[1] > 0.0).count();
        assert!((3..=8).contains(&starts), "{starts} blinks in 20 s");
    }
}
