//! The length of a PCM WAV file from its header, so a local voice's speech needs no ffprobe start-up.

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
}
