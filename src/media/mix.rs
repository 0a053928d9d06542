//! The project audio of a splice join: every clip's audio, cut or padded to its video's length and crossfaded
//! into the next (linear gains, as ffmpeg's `acrossfade` with its default curves), streamed in scene order into
//! one AAC encoder.
//!
//! The mix is made here rather than by one ffmpeg filter graph so that it can be fed a scene at a time: the
//! ffmpeg that copies a clip's body for the splice also writes its audio as 16-bit PCM ([`pcm_args`]), and the
//! pipeline's pre-joiner feeds each finished scene whose predecessors are fed (`splice::prepare_splice`), so
//! the encoder has done most of the project while scenes still render and the join only feeds the rest — with
//! no ffmpeg start-up per clip; only the crossfades are computed, the rest is passed to the encoder as it is.
//! Only the crossfade's length of the last clip fed is held in memory, so a long project's audio costs no more
//! memory than a short one's (one filter graph crossfading a thousand clips did quadratic work).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;

use super::edit::Delivery;
use super::process::{MediaError, RunningTool, run_tool};

/// Deadline of a clip's PCM extraction, and of the encoder's finish after its input ends.
const TOOL_TIMEOUT: Duration = Duration::from_secs(600);
/// Channels of the project audio (interleaved).
const CHANNELS: usize = 2;

/// A project audio being encoded (see the module documentation); the encoder is killed when this is dropped
/// unfinished.
pub(super) struct AudioMix {
    encoder: RunningTool,
    input: ChildStdin,
    crossfade: Crossfader,
    sample_rate: u32,
    /// Ids of the clips fed, in order.
    fed: Vec<String>,
    output: PathBuf,
}

impl AudioMix {
    /// Starts the encoder of a mix in the delivery format `d`, with crossfades of `fade_seconds`, into `output`
    /// (an MP4 holding AAC — `fast` coder on 16-bit samples, about 1 s of CPU per minute of audio).
    pub(super) fn start(
        d: &Delivery,
        fade_seconds: f64,
        output: PathBuf,
    ) -> Result<Self, MediaError> {
        let rate = d.sample_rate.to_string();
        let mut args: Vec<String> = ["-y", "-v", "error", "-f", "s16le", "-ar", &rate, "-ac", "2"]
            .map(String::from)
            .to_vec();
        args.extend(
            [
                "-i",
                "pipe:0",
                "-c:a",
                "aac",
                "-aac_coder",
                "fast",
                "-b:a",
                "128k",
                "-f",
                "mp4",
            ]
            .map(String::from),
        );
        args.push(output.display().to_string());
        let mut encoder = RunningTool::start("ffmpeg", &args, true)?;
        let input = encoder.take_stdin().ok_or_else(|| MediaError::BadOutput {
            program: "ffmpeg".into(),
            reason: "the audio encoder has no input pipe".into(),
        })?;
        Ok(Self {
            encoder,
            input,
            crossfade: Crossfader {
                held: Vec::new(),
                fade: (fade_seconds * f64::from(d.sample_rate)).round() as usize,
            },
            sample_rate: d.sample_rate,
            fed: Vec::new(),
            output,
        })
    }

    /// Ids of the clips fed so far, in order.
    pub(super) fn fed(&self) -> &[String] {
        &self.fed
    }

    /// Feeds the audio of the next clip, `clip`, kept as `id`: the PCM file `pcm` (16-bit interleaved stereo at
    /// the mix's rate, as [`pcm_args`] writes it; written from `clip` when missing), cut or padded to `seconds`.
    /// The PCM file is removed once fed: a thousand scenes' PCM would fill gigabytes until the run ends.
    pub(super) async fn push(
        &mut self,
        pcm: &Path,
        clip: &Path,
        seconds: f64,
        id: &str,
    ) -> Result<(), MediaError> {
        if !tokio::fs::try_exists(pcm).await.unwrap_or(false) {
            let mut args: Vec<String> = ["-y", "-v", "error", "-i"].map(String::from).to_vec();
            args.push(clip.display().to_string());
            args.extend(pcm_args(self.sample_rate, pcm));
            run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await?;
        }
        let samples = read_pcm(pcm, seconds, self.sample_rate).await?;
        let _ = tokio::fs::remove_file(pcm).await;
        self.push_samples(samples, id).await
    }

    /// Feeds one clip's samples (16-bit little-endian interleaved stereo): the crossfade into it, then its body
    /// as it is (no conversion: only the crossfades are computed).
    async fn push_samples(&mut self, clip: Vec<u8>, id: &str) -> Result<(), MediaError> {
        let (faded, body) = self.crossfade.next(&clip);
        self.write(&faded).await?;
        self.write(&clip[body]).await?;
        self.fed.push(id.to_string());
        Ok(())
    }

    /// Writes samples to the encoder.
    async fn write(&mut self, samples: &[u8]) -> Result<(), MediaError> {
        self.input
            .write_all(samples)
            .await
            .map_err(|source| MediaError::Io {
                what: "feeding the project audio encoder".into(),
                source,
            })
    }

    /// Ends the input (the last clip's held end included) and waits for the encoder; returns the encoded file.
    pub(super) async fn finish(mut self) -> Result<PathBuf, MediaError> {
        let held = std::mem::take(&mut self.crossfade.held);
        // A failed write shows as the encoder's own failure below.
        let written = self.write(&held).await;
        drop(self.input);
        self.encoder.wait(TOOL_TIMEOUT).await?;
        written?;
        Ok(self.output)
    }
}

impl std::fmt::Debug for AudioMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioMix")
            .field("fed", &self.fed.len())
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// Bytes of one frame: a 16-bit sample per channel.
const FRAME: usize = CHANNELS * 2;

/// Crossfades a sequence of clips' samples (16-bit little-endian interleaved stereo).
struct Crossfader {
    /// The end of the last clip, one crossfade long at most, kept back to be faded into the next clip.
    held: Vec<u8>,
    /// Frames of a crossfade.
    fade: usize,
}

impl Crossfader {
    /// Takes the next clip; returns the samples that are now final: the held end faded into the clip's start,
    /// and the range of the clip that follows as it is (its own end is held).
    fn next(&mut self, clip: &[u8]) -> (Vec<u8>, std::ops::Range<usize>) {
        let overlap = self.held.len().min(clip.len()) / FRAME * FRAME;
        let frames = (overlap / FRAME) as f32;
        let mut faded = std::mem::take(&mut self.held);
        faded.truncate(overlap);
        let pairs = faded.chunks_exact_mut(2).zip(clip.chunks_exact(2));
        for (i, (out, incoming)) in pairs.enumerate() {
            // acrossfade's default (triangular) curves: the outgoing clip from (n-1)/n down, the incoming from 0 up.
            let at = (i / CHANNELS) as f32;
            let (a, b) = (sample(out), sample(incoming));
            let mixed = a * (frames - 1.0 - at) / frames + b * at / frames;
            out.copy_from_slice(&(mixed.round().clamp(-32768.0, 32767.0) as i16).to_le_bytes());
        }
        let keep = (self.fade * FRAME).min(clip.len() - overlap);
        let end = clip.len() - keep;
        self.held = clip[end..].to_vec();
        (faded, overlap..end)
    }
}

/// One 16-bit little-endian sample.
fn sample(bytes: &[u8]) -> f32 {
    f32::from(i16::from_le_bytes([bytes[0], bytes[1]]))
}

/// The PCM file `path` (16-bit interleaved stereo at `rate`), cut or padded with silence to `seconds`.
async fn read_pcm(path: &Path, seconds: f64, rate: u32) -> Result<Vec<u8>, MediaError> {
    let mut samples = tokio::fs::read(path)
        .await
        .map_err(|source| MediaError::Io {
            what: format!("reading the clip audio {}", path.display()),
            source,
        })?;
    samples.resize((seconds * f64::from(rate)).round() as usize * FRAME, 0);
    Ok(samples)
}

/// The arguments that make ffmpeg write the first audio stream of its input as the PCM [`AudioMix::push`] takes
/// (16-bit, the encoder's input; the filter graph this replaced mixed to 16-bit too), into `output`.
pub(super) fn pcm_args(sample_rate: u32, output: &Path) -> Vec<String> {
    let rate = sample_rate.to_string();
    let mut args: Vec<String> = [
        "-map",
        "0:a:0",
        "-ar",
        &rate,
        "-ac",
        "2",
        "-c:a",
        "pcm_s16le",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["-f", "s16le"].map(String::from));
    args.push(output.display().to_string());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            width: 64,
            height: 64,
            fps: 25,
            sample_rate: 8_000,
            crossfade: 0.2,
        }
    }

    /// The 16-bit samples an encoded mix decodes to (first channel).
    async fn decoded(path: &Path) -> Vec<i32> {
        let mut args: Vec<String> = ["-v", "error", "-i"].map(String::from).to_vec();
        args.push(path.display().to_string());
        args.extend(["-f", "s16le", "-ac", "1", "-"].map(String::from));
        let pcm = run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await.unwrap();
        pcm.chunks_exact(2)
            .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
            .collect()
    }

    /// Held samples fade out as the next clip's fade in, linearly, and the clips overlap by the crossfade.
    #[test]
    fn clips_overlap_by_the_crossfade_with_linear_gains() {
        let stereo = |frames: &[i16]| -> Vec<u8> {
            frames
                .iter()
                .flat_map(|&f| [f, f])
                .flat_map(i16::to_le_bytes)
                .collect()
        };
        let mut fader = Crossfader {
            held: Vec::new(),
            fade: 4,
        };
        let first = stereo(&[20_000; 10]);
        let (faded, body) = fader.next(&first);
        assert!(faded.is_empty());
        assert_eq!(&first[body.clone()], stereo(&[20_000; 6]));
        assert_eq!(fader.held, stereo(&[20_000; 4]));
        // Outgoing gains 3/4, 2/4, 1/4, 0; incoming 0, 1/4, 2/4, 3/4 of 10,000.
        let second = stereo(&[10_000; 6]);
        let (faded, body2) = fader.next(&second);
        assert_eq!(faded, stereo(&[15_000, 12_500, 10_000, 7_500]));
        assert!(body2.is_empty(), "what is left of a short clip is held");
        assert_eq!(fader.held, stereo(&[10_000; 2]));
        // 10 + 6 - 4 frames in all.
        let all = body.len() + faded.len() + body2.len() + fader.held.len();
        assert_eq!(all, (10 + 6 - 4) * FRAME);
    }

    /// A mix fed clip by clip, in two calls as the pre-joiner does, matches ffmpeg's own `acrossfade` chain of
    /// the same clips (both encoded by the same AAC encoder), and has the clips' length less the overlaps.
    #[tokio::test]
    async fn a_mix_fed_clip_by_clip_matches_ffmpegs_crossfade_chain() {
        let dir = tempfile::tempdir().unwrap();
        let d = Delivery {
            sample_rate: 48_000,
            ..delivery()
        };
        let mut clips = Vec::new();
        for (i, secs) in [0.9, 1.2, 0.7, 1.0].iter().enumerate() {
            let path = dir.path().join(format!("c{i}.m4a"));
            // One clip shorter than its video (padded), one longer (cut).
            let audio = [0.8, 1.2, 0.7, 1.3][i];
            let tone = format!("sine=f={}:d={audio}", 220 + 110 * i);
            let mut args: Vec<String> =
                ["-y", "-v", "error", "-f", "lavfi", "-i", &tone, "-ac", "2"]
                    .map(String::from)
                    .to_vec();
            args.extend(["-c:a", "aac"].map(String::from));
            args.push(path.display().to_string());
            run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await.unwrap();
            clips.push((path, *secs));
        }
        let ours = dir.path().join("ours.m4a");
        let mut mix = AudioMix::start(&d, 0.2, ours.clone()).unwrap();
        for (i, (path, secs)) in clips.iter().enumerate() {
            let pcm = dir.path().join(format!("c{i}.pcm"));
            // The first two as the splice's body copy writes them; the others extracted by the mix.
            if i < 2 {
                let mut args: Vec<String> = ["-y", "-v", "error", "-i"].map(String::from).to_vec();
                args.push(path.display().to_string());
                args.extend(pcm_args(48_000, &pcm));
                run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await.unwrap();
            }
            mix.push(&pcm, path, *secs, &format!("c{i}")).await.unwrap();
            assert!(!pcm.exists(), "the PCM of a fed clip is removed");
        }
        assert_eq!(mix.fed(), ["c0", "c1", "c2", "c3"]);
        mix.finish().await.unwrap();

        let theirs = dir.path().join("theirs.m4a");
        let mut args: Vec<String> = ["-y", "-v", "error"].map(String::from).to_vec();
        let mut graph = String::new();
        for (i, (path, secs)) in clips.iter().enumerate() {
            args.extend(["-i".to_string(), path.display().to_string()]);
            graph.push_str(&format!(
                "[{i}:a]aresample=48000,aformat=channel_layouts=stereo,apad,atrim=0:{secs}[a{i}];"
            ));
        }
        graph.push_str("[a0][a1]acrossfade=d=0.2[x1];[x1][a2]acrossfade=d=0.2[x2];");
        graph.push_str("[x2][a3]acrossfade=d=0.2,aformat=sample_fmts=s16[mix]");
        args.extend(["-filter_complex", &graph, "-map", "[mix]"].map(String::from));
        args.extend(["-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k"].map(String::from));
        args.push(theirs.display().to_string());
        run_tool("ffmpeg", &args, None, TOOL_TIMEOUT).await.unwrap();

        let (a, b) = (decoded(&ours).await, decoded(&theirs).await);
        // 0.9 + 1.2 + 0.7 + 1.0 - 3 x 0.2 = 3.2 s.
        assert!(
            (a.len() as f64 / 48_000.0 - 3.2).abs() < 0.05,
            "{}",
            a.len()
        );
        assert_eq!(a.len(), b.len());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).max();
        assert!(
            worst.unwrap_or(0) <= 64,
            "the mixes differ by up to {worst:?}"
        );
    }

    /// An encoder that cannot write its output fails the finish with its own error.
    #[tokio::test]
    async fn a_failed_encoder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("missing/folder/out.m4a");
        let mut mix = AudioMix::start(&delivery(), 0.2, output).unwrap();
        // Feeding may or may not see the closed pipe first; the finish must fail either way.
        let _ = mix.push_samples(vec![1; 4_000], "a").await;
        let err = mix.finish().await.unwrap_err();
        assert!(err.to_string().contains("ffmpeg"), "{err}");
    }
}
