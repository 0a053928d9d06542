//! The project join against real ffmpeg: clips made by `normalize` are spliced (only the crossfades encoded) and
//! the result matches the full re-encode frame for frame, with audio as long as the video.

use std::path::{Path, PathBuf};
use std::process::Command;

use devatar::media::edit::{Delivery, join_with_crossfades, normalize, reencode_with_crossfades};
use devatar::media::probe;

const DELIVERY: Delivery = Delivery {
    width: 320,
    height: 180,
    fps: 25,
    sample_rate: 44100,
    crossfade: 0.3,
};

fn ffmpeg(args: &[&str]) -> String {
    let out = Command::new("ffmpeg")
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A moving test pattern with a tone, not in the delivery format (so `normalize` re-encodes it).
fn source(dir: &Path, name: &str, seconds: f64, pattern: &str) -> PathBuf {
    let path = dir.join(name);
    let t = format!("{seconds}");
    ffmpeg(&[
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        &format!("{pattern}=size=400x300:rate=30"),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &t,
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        path.to_str().unwrap(),
    ]);
    path
}

fn frames(path: &Path) -> u32 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a frame count")
}

fn stream_duration(path: &Path, stream: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            "stream=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

#[tokio::test]
async fn normalized_clips_are_spliced_and_match_the_full_reencode() {
    let dir = tempfile::tempdir().unwrap();
    let mut clips = Vec::new();
    for (i, (seconds, pattern)) in [(2.0, "testsrc2"), (1.6, "testsrc"), (2.4, "rgbtestsrc")]
        .into_iter()
        .enumerate()
    {
        let src = source(dir.path(), &format!("src{i}.mp4"), seconds, pattern);
        let clip = dir.path().join(format!("clip{i}.mp4"));
        let info = normalize(&src, &clip, &DELIVERY, None).await.unwrap();
        clips.push((clip, info.duration));
    }
    let inputs: Vec<(&Path, f64)> = clips.iter().map(|(p, d)| (p.as_path(), *d)).collect();
    let clip_frames: Vec<u32> = clips.iter().map(|(p, _)| frames(p)).collect();
    assert_eq!(clip_frames, [50, 40, 60]);

    let spliced_path = dir.path().join("spliced.mp4");
    let spliced = join_with_crossfades(&inputs, &spliced_path, &DELIVERY, &dir.path().join("work"))
        .await
        .unwrap();
    assert!(
        spliced.spliced,
        "normalized clips must be spliced, not re-encoded"
    );
    // 7-frame crossfades (0.3 s at 25 fps in whole frames, never longer): 150 - 2 * 7 frames.
    assert_eq!(frames(&spliced_path), 136);
    assert!(
        (spliced.info.duration - 136.0 / 25.0).abs() < 0.05,
        "{}",
        spliced.info.duration
    );
    let audio = stream_duration(&spliced_path, "a:0");
    assert!(
        (audio - 5.44).abs() < 0.05,
        "audio lasts {audio} s, video 5.44 s"
    );
    let offsets: Vec<String> = spliced.offsets.iter().map(|o| format!("{o:.2}")).collect();
    assert_eq!(offsets, ["0.00", "1.72", "3.04"]);
    // Decodes without a single error.
    ffmpeg(&[
        "-v",
        "error",
        "-xerror",
        "-i",
        spliced_path.to_str().unwrap(),
        "-f",
        "null",
        "-",
    ]);

    // The same frames as decoding and encoding everything (the crossfades differ by their rounding only).
    let full_path = dir.path().join("full.mp4");
    let full = reencode_with_crossfades(&inputs, &full_path, &DELIVERY)
        .await
        .unwrap();
    assert!(!full.spliced);
    // Both play in browsers (4:2:0).
    assert_eq!(full.info.pix_fmt.as_deref(), Some("yuv420p"));
    assert_eq!(spliced.info.pix_fmt.as_deref(), Some("yuv420p"));
    let log = ffmpeg(&[
        "-v",
        "info",
        "-i",
        spliced_path.to_str().unwrap(),
        "-i",
        full_path.to_str().unwrap(),
        "-filter_complex",
        "[0:v][1:v]psnr",
        "-f",
        "null",
        "-",
    ]);
    let average: f64 = log
        .split("average:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no PSNR in {log}"));
    assert!(
        average > 30.0,
        "spliced and re-encoded joins differ: PSNR {average} dB"
    );
}

#[tokio::test]
async fn clips_without_splice_keyframes_are_reencoded() {
    let dir = tempfile::tempdir().unwrap();
    // Already in the delivery format but with B-frames and one GOP: normalize copies them unchanged.
    let mut clips = Vec::new();
    for i in 0..2 {
        let path = dir.path().join(format!("clip{i}.mp4"));
        ffmpeg(&[
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=44100",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "2",
            path.to_str().unwrap(),
        ]);
        let info = probe(&path).await.unwrap();
        clips.push((path, info.duration));
    }
    let inputs: Vec<(&Path, f64)> = clips.iter().map(|(p, d)| (p.as_path(), *d)).collect();
    let out = dir.path().join("joined.mp4");
    let joined = join_with_crossfades(&inputs, &out, &DELIVERY, &dir.path().join("work"))
        .await
        .unwrap();
    assert!(!joined.spliced);
    assert!(
        (joined.info.duration - 3.7).abs() < 0.1,
        "{}",
        joined.info.duration
    );
}
