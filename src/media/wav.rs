//! The length of a PCM WAV file from its header, so a local voice's speech needs no ffprobe start-up, and its
//! 16-bit samples, so its loudness needs no ffmpeg decode.

use std::path::Path;

use tokio::io::AsyncReadExt;

/// How much of the file's start is read looking for the `fmt ` and `data` chunks.
const HEAD: usize = 4096;

/// Seconds of audio in the PCM WAV file at `path`; `None` when it is not one (or its header cannot be read),
/// so the caller probes it instead. A `data` size past the end of the file (a header written before the
/// length was known) counts the bytes actually there.
pub async fn wav_seconds(path: &Path) -> Option<f64> {
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let len = file.metadata().await.ok()?.len();
    let mut head = vec![0_u8; HEAD];
    let mut got = 0;
    while got < HEAD {
        match file.read(&mut head[got..]).await.ok()? {
            0 => break,
            n => got += n,
        }
    }
    head.truncate(got);
    seconds_of(&head, len)
}

/// The sample rate and samples (channels averaged) of a 16-bit PCM WAV file's bytes; `None` for any other
/// file, which the caller then decodes with ffmpeg.
pub fn pcm16_mono(wav: &[u8]) -> Option<(u32, Vec<i16>)> {
    if wav.get(0..4)? != b"RIFF" || wav.get(8..12)? != b"WAVE" {
        return None;
    }
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(wav.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(wav.get(at..at + 4)?.try_into().ok()?))
    };
    let (mut at, mut format) = (12_usize, None);
    while at + 8 <= wav.len() {
        let size = u32_at(at + 4)? as usize;
        match wav.get(at..at + 4)? {
            b"fmt " => {
                let (tag, channels, rate, bits) = (
                    u16_at(at + 8)?,
                    u16_at(at + 10)?,
                    u32_at(at + 12)?,
                    u16_at(at + 22)?,
                );
                if tag != 1 || bits != 16 || channels == 0 || rate == 0 {
                    return None;
                }
                format = Some((usize::from(channels), rate));
            }
            b"data" => {
                let (channels, rate) = format?;
                let end = (at + 8).saturating_add(size).min(wav.len());
                let samples = wav
                    .get(at + 8..end)?
                    .chunks_exact(2 * channels)
                    .map(|frame| {
                        let sum: i32 = frame
                            .chunks_exact(2)
                            .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]])))
                            .sum();
                        (sum / channels as i32) as i16
                    });
                return Some((rate, samples.collect()));
            }
            _ => {}
        }
        at = at.checked_add(8 + size + (size & 1))?;
    }
    None
}

/// The length of the WAV whose first bytes are `head`, of a file of `len` bytes.
fn seconds_of(head: &[u8], len: u64) -> Option<f64> {
    if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
        return None;
    }
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?))
    };
    let (mut at, mut byte_rate) = (12_usize, None);
    while at + 8 <= head.len() {
        let size = u32_at(at + 4)?;
        match head.get(at..at + 4)? {
            b"fmt " => {
                // PCM only: other formats' byte rates do not measure their samples.
                if u16::from_le_bytes(head.get(at + 8..at + 10)?.try_into().ok()?) != 1 {
                    return None;
                }
                byte_rate = Some(u32_at(at + 16)?).filter(|r| *r > 0);
            }
            b"data" => {
                let start = (at + 8) as u64;
                let bytes = u64::from(size).min(len.saturating_sub(start));
                return Some(bytes as f64 / f64::from(byte_rate?));
            }
            _ => {}
        }
        at += 8 + size as usize + (size as usize & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, data_bytes: u32, declared: u32) -> Vec<u8> {
        let mut v = b"RIFF\0\0\0\0WAVE".to_vec();
        v.extend(b"fmt ");
        v.extend(16_u32.to_le_bytes());
        v.extend(1_u16.to_le_bytes()); // PCM
        v.extend(1_u16.to_le_bytes()); // mono
        v.extend(rate.to_le_bytes());
        v.extend((rate * 2).to_le_bytes());
        v.extend(2_u16.to_le_bytes());
        v.extend(16_u16.to_le_bytes());
        v.extend(b"LIST");
        v.extend(3_u32.to_le_bytes());
        v.extend(b"abc\0");
        v.extend(b"data");
        v.extend(declared.to_le_bytes());
        v.extend(vec![0_u8; data_bytes as usize]);
        v
    }

    #[test]
    fn the_data_chunk_over_the_byte_rate_and_a_streamed_header_counts_what_is_there() {
        let w = wav(22_050, 44_100, 44_100);
        assert_eq!(seconds_of(&w, w.len() as u64), Some(1.0));
        let streamed = wav(22_050, 22_050, u32::MAX);
        assert_eq!(seconds_of(&streamed, streamed.len() as u64), Some(0.5));
        assert_eq!(seconds_of(b"ID3\x03 not a wav file", 20), None);
    }

    #[test]
    fn pcm_samples_are_read_and_other_files_refused() {
        let mut w = wav(16_000, 4, 4);
        let n = w.len();
        w[n - 4..].copy_from_slice(&[0x10, 0x00, 0xf0, 0xff]);
        assert_eq!(pcm16_mono(&w), Some((16_000, vec![16, -16])));
        let mut float = w.clone();
        float[20] = 3; // IEEE float, not 16-bit PCM
        assert_eq!(pcm16_mono(&float), None);
        assert_eq!(pcm16_mono(b"RIFF\0\0\0\0WAVEdata"), None);
        assert_eq!(pcm16_mono(&w[..30]), None);
    }
}
