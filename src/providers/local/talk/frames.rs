//! The frame pipe: each raw yuv420p frame is made in Rust and one ffmpeg encode (x264) writes them with the
//! speech. Blocking; run it off the async runtime.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::media::MediaError;

/// What to encode.
#[derive(Debug, Clone)]
pub struct FramePipe {
    /// The speech.
    pub audio: PathBuf,
    /// The output MP4.
    pub out: PathBuf,
    /// Frame size.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Frames to write.
    pub frames: usize,
    /// Output length, seconds (the speech is padded with silence to it).
    pub seconds: f64,
    /// Audio sample rate of the output.
    pub audio_rate: u32,
    /// `-force_key_frames` times, when the project join should find keyframes at its cuts.
    pub keyframes: Option<String>,
    /// Where the tools' stderr goes.
    pub work_dir: PathBuf,
}

/// Kills and reaps its child when dropped (an error, a cancellation, a panic).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[String], stdin: Stdio, stdout: Stdio, log: &Path) -> Result<Reaped, MediaError> {
    let failed = |source| MediaError::Spawn {
        program: "ffmpeg".into(),
        source,
    };
    let mut cmd = Command::new("ffmpeg");
    cmd.args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(File::create(log).map_err(failed)?);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Ok(Reaped(cmd.spawn().map_err(failed)?))
}

/// Asks for a 1 MiB pipe buffer, so ffmpeg encodes one frame while the next is made.
fn widen_pipe(fd: i32) {
    // SAFETY: F_SETPIPE_SZ on a pipe we own; failure only leaves the default size.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl FramePipe {
    fn encoder_args(&self) -> Vec<String> {
        let size = format!("{}x{}", self.width, self.height);
        let mut a = strings(&["-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p"]);
        a.extend(strings(&[
            "-s",
            &size,
            "-r",
            &self.fps.to_string(),
            "-i",
            "pipe:0",
            "-i",
        ]));
        a.push(self.audio.display().to_string());
        let af = format!(
            "[1:a]aresample={},aformat=channel_layouts=stereo,apad[a]",
            self.audio_rate
        );
        a.extend(strings(&[
            "-filter_complex",
            &af,
            "-map",
            "0:v:0",
            "-map",
            "[a]",
        ]));
        a.extend(strings(&["-t", &format!("{:.3}", self.seconds)]));
        a.extend(strings(&[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "20",
        ]));
        a.extend(strings(&["-bf", "0", "-g", &(self.fps * 2).to_string()]));
        if let Some(times) = &self.keyframes {
            a.extend(["-force_key_frames".to_string(), times.clone()]);
        }
        a.extend(strings(&[
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
        ]));
        a.extend(strings(&["-movflags", "+faststart"]));
        a.push(self.out.display().to_string());
        a
    }

    fn failure(&self, log: &str, status: String) -> MediaError {
        let text = std::fs::read_to_string(self.work_dir.join(log)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(6).collect();
        MediaError::Failed {
            program: "ffmpeg".into(),
            status,
            stderr_tail: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        }
    }

    /// Makes each frame with `make(index, frame)` and encodes it; stops (killing the encoder) when `make` fails,
    /// `cancel` is set or `deadline` passes.
    pub fn run(
        &self,
        cancel: &Arc<AtomicBool>,
        deadline: Duration,
        mut make: impl FnMut(usize, &mut [u8]) -> Result<(), String>,
    ) -> Result<(), MediaError> {
        let started = Instant::now();
        let (w, h) = (self.width as usize, self.height as usize);
        let enc_log = self.work_dir.join("encode.log");
        let mut enc = spawn(
            &self.encoder_args(),
            Stdio::piped(),
            Stdio::null(),
            &enc_log,
        )?;
        let mut output = enc
            .0
            .stdin
            .take()
            .ok_or_else(|| self.failure("encode.log", "no stdin".into()))?;
        widen_pipe(output.as_raw_fd());
        let mut frame = vec![0_u8; still_frames::frame_bytes(w, h)];
        for i in 0..self.frames {
            if cancel.load(Ordering::Relaxed) || started.elapsed() > deadline {
                return Err(MediaError::Timeout {
                    program: "ffmpeg".into(),
                    seconds: deadline.as_secs(),
                });
            }
            make(i, &mut frame).map_err(|reason| MediaError::BadOutput {
                program: "devatar".into(),
                reason: format!("frame {i}: {reason}"),
            })?;
            if output.write_all(&frame).is_err() {
                let status = enc.0.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(self.failure("encode.log", status));
            }
        }
        drop(output);
        let status = enc.0.wait().map_err(|source| MediaError::Spawn {
            program: "ffmpeg".into(),
            source,
        })?;
        if !status.success() {
            return Err(self.failure("encode.log", status.to_string()));
        }
        Ok(())
    }
}
