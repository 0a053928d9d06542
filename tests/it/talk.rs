//! `local-talk`, the offline lip-sync, against the real tools: the camera path matches ffmpeg's animation and
//! local-talk's own rendering of the still, and the mouth of a real photo and of the placeholder opens with the
//! speech's loudness and stays shut in silence.

use std::path::{Path, PathBuf};
use std::process::Command;

use devatar::face::{FaceSettings, largest_face_landmarks, load_engine, open_photo};
use devatar::media::captions::estimate_word_timings;
use devatar::media::probe;
use devatar::providers::local::talk::{FaceGeometry, placeholder_face};
use devatar::providers::local::{FfmpegAnimation, LocalTalk, render_placeholder};
use devatar::providers::{
    CameraPath, Framing, ImageToVideo, JobCtx, LipSync, LipSyncRequest, VideoRequest,
};

const W: u32 = 640;
const H: u32 = 360;
const PHOTO: &str = "/usr/local/share/devatar/test-photos/grace_hopper.jpg";

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The grey frames of a video.
fn grey_frames(video: &Path, w: u32, h: u32) -> Vec<Vec<u8>> {
    let raw = ffmpeg(&[
        "-i",
        &video.display().to_string(),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "-",
    ]);
    raw.chunks_exact((w * h) as usize)
        .map(<[u8]>::to_vec)
        .collect()
}

fn video_request(still: PathBuf, framing: Framing, seconds: u32, w: u32, h: u32) -> VideoRequest {
    VideoRequest {
        image: still,
        prompt: String::new(),
        framing,
        movement: None,
        duration_seconds: seconds,
        width: w,
        height: h,
        urls: Default::default(),
        proxy: false,
    }
}

/// The centre of the bright pixels of a `w`-wide grey frame.
fn bright_centre(frame: &[u8], w: usize) -> (f32, f32) {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for (k, &v) in frame.iter().enumerate() {
        if v > 128 {
            sx += (k % w) as f32;
            sy += (k / w) as f32;
            n += 1.0;
        }
    }
    (sx / n, sy / n)
}

#[tokio::test]
async fn the_camera_path_follows_what_ffmpeg_animates() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("dot.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=black:s=320x180,drawbox=x=200:y=60:w=6:h=6:color=white:t=fill",
        "-frames:v",
        "1",
        &still.display().to_string(),
    ]);
    for framing in [Framing::Wide, Framing::Medium, Framing::CloseUp] {
        let req = video_request(still.clone(), framing, 2, 320, 180);
        let clip = FfmpegAnimation
            .animate(&req, dir.path(), &JobCtx::detached("t"))
            .await
            .unwrap();
        let path = FfmpegAnimation.camera_path(&req).unwrap();
        let frames = grey_frames(&clip, 320, 180);
        assert_eq!(path.frames.len(), frames.len());
        for i in [0, 24, 49] {
            let (ex, ey) = path.frames[i].apply((202.5, 62.5));
            let (gx, gy) = bright_centre(&frames[i], 320);
            assert!(
                (gx - ex).abs() < 1.6 && (gy - ey).abs() < 1.6,
                "{framing:?} frame {i}: dot at ({gx:.1}, {gy:.1}), path says ({ex:.1}, {ey:.1})"
            );
        }
    }
}

#[tokio::test]
async fn local_talk_renders_the_camera_path_from_the_still_and_video_makes_only_a_stand_in() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("dot.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=black:s=320x180,drawbox=x=200:y=60:w=6:h=6:color=white:t=fill",
        "-frames:v",
        "1",
        &still.display().to_string(),
    ]);
    let mut req = video_request(still.clone(), Framing::CloseUp, 2, 320, 180);
    req.proxy = true;
    let stand_in = FfmpegAnimation
        .animate(&req, dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let info = probe(&stand_in).await.unwrap();
    assert_eq!((info.width, info.height), (320, 180));
    assert!((info.duration - 2.0).abs() < 0.1, "{}", info.duration);
    assert!(
        grey_frames(&stand_in, 320, 180).len() <= 3,
        "a stand-in, not 50 frames"
    );
    let path = FfmpegAnimation.camera_path(&req).unwrap();
    let audio = speech_with_a_pause(dir.path());
    let speech_seconds = probe(&audio).await.unwrap().duration;
    let lip = LipSyncRequest {
        video: stand_in,
        audio,
        speech_seconds,
        tail_seconds: 0.3,
        urls: Default::default(),
        camera: Some(path.clone()),
        still: Some(still),
        words: Vec::new(),
    };
    let talk_dir = tempfile::tempdir().unwrap();
    // No face in a dot: the camera move without mouth motion, rendered from the still.
    let out = LocalTalk::new(FaceSettings::default())
        .apply(&lip, talk_dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let frames = grey_frames(&out, 320, 180);
    let expected = (speech_seconds + 0.3) * 25.0;
    assert!(
        (frames.len() as f64 - expected).abs() <= 1.0,
        "{} frames for {expected:.1}",
        frames.len()
    );
    for i in [0, 24, 49, 60] {
        let (ex, ey) = path.frames[i % 50].apply((202.5, 62.5));
        let (gx, gy) = bright_centre(&frames[i], 320);
        assert!(
            (gx - ex).abs() < 1.0 && (gy - ey).abs() < 1.0,
            "frame {i}: dot at ({gx:.1}, {gy:.1}), path says ({ex:.1}, {ey:.1})"
        );
    }
}

/// Speech with a 0.7 s pause in the middle (espeak-ng SSML).
fn speech_with_a_pause(dir: &Path) -> PathBuf {
    let wav = dir.join("speech.wav");
    let ok = Command::new("espeak-ng")
        .args(["-m", "-w"])
        .arg(&wav)
        .arg(r#"<speak>Hello there, my friend.<break time="700ms"/>How are you today?</speak>"#)
        .status()
        .unwrap();
    assert!(ok.success());
    wav
}

/// RMS of each 1/25 s of the speech, computed here from its samples.
fn loudness(audio: &Path, frames: usize) -> Vec<f64> {
    let raw = ffmpeg(&[
        "-i",
        &audio.display().to_string(),
        "-ac",
        "1",
        "-ar",
        "16000",
        "-f",
        "s16le",
        "-",
    ]);
    let pcm: Vec<f64> = raw
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f64)
        .collect();
    (0..frames)
        .map(|i| {
            let chunk = pcm
                .get(i * 640..((i + 1) * 640).min(pcm.len()))
                .unwrap_or(&[]);
            (chunk.iter().map(|s| s * s).sum::<f64>() / chunk.len().max(1) as f64).sqrt()
        })
        .collect()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Per frame, how many pixels of the mouth box turned dark (the open mouth) compared with the clip's frame
/// around them.
fn mouth_opening(
    out: &[Vec<u8>],
    clip: &[Vec<u8>],
    face: &FaceGeometry,
    path: &CameraPath,
) -> Vec<f64> {
    out.iter()
        .enumerate()
        .map(|(i, frame)| {
            let seen = face.mapped(&path.frames[i % path.frames.len()]);
            let (iod, hw) = (seen.interocular(), seen.mouth_half_width);
            let before = &clip[i % clip.len()];
            let mut dark = 0.0;
            for y in (seen.mouth.1 - 0.1 * iod) as usize..(seen.mouth.1 + 0.3 * iod) as usize {
                for x in (seen.mouth.0 - 0.7 * hw) as usize..(seen.mouth.0 + 0.7 * hw) as usize {
                    // Darker than anything within 4 px in the clip: not a lip line moved by the head.
                    let near = (y - 4..=y + 4)
                        .flat_map(|yy| (x - 4..=x + 4).map(move |xx| yy * W as usize + xx))
                        .map(|k| before[k])
                        .min()
                        .unwrap();
                    let v = frame[y * W as usize + x];
                    if v < 80 && (v as i32) < near as i32 - 30 {
                        dark += 1.0;
                    }
                }
            }
            dark
        })
        .collect()
}

/// Renders `still` talking and checks the measured lip motion against the speech's loudness.
async fn talks(still: PathBuf, face: FaceGeometry) {
    let dir = tempfile::tempdir().unwrap();
    let audio = speech_with_a_pause(dir.path());
    let speech_seconds = probe(&audio).await.unwrap().duration;
    let req = video_request(still.clone(), Framing::Medium, 3, W, H);
    let clip = FfmpegAnimation
        .animate(&req, dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let path = FfmpegAnimation.camera_path(&req).unwrap();
    let talk_dir = tempfile::tempdir().unwrap();
    let lip = LipSyncRequest {
        video: clip.clone(),
        audio: audio.clone(),
        speech_seconds,
        tail_seconds: 0.3,
        urls: Default::default(),
        camera: Some(path.clone()),
        still: Some(still),
        words: estimate_word_timings("Hello there, my friend. How are you today?", speech_seconds),
    };
    let out = LocalTalk::new(FaceSettings::default())
        .apply(&lip, talk_dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let info = probe(&out).await.unwrap();
    assert_eq!(
        (info.width, info.height, info.audio_codec.as_deref()),
        (W, H, Some("aac"))
    );
    assert!(
        info.duration >= speech_seconds,
        "{} < {speech_seconds}",
        info.duration
    );
    let frames = grey_frames(&out, W, H);
    let opening = mouth_opening(&frames, &grey_frames(&clip, W, H), &face, &path);
    let speech_frames = (speech_seconds * 25.0) as usize;
    let loud = loudness(&audio, speech_frames);
    let r = correlation(&opening[..speech_frames], &loud);
    assert!(
        r >= 0.5,
        "correlation {r:.2}\nopening {opening:?}\nloudness {loud:?}"
    );
    let peak = loud.iter().cloned().fold(0.0, f64::max);
    let quiet: Vec<bool> = loud.iter().map(|&l| l < 0.02 * peak).collect();
    let mut silences = 0;
    let mut i = 0;
    while i < speech_frames {
        let run = quiet[i..].iter().take_while(|&&q| q).count();
        if run >= 8 && i > 0 && i + run < speech_frames {
            silences += 1;
            // Closed within 0.2 s of the silence starting, and shut until the speech resumes.
            let shut = &opening[i + 5..i + run];
            assert!(
                shut.iter().all(|&o| o <= 2.0),
                "open in the silence at {i}: {:?} {:?}",
                &opening[i - 3..i + run],
                &loud[i - 3..i + run]
            );
        }
        i += run.max(1);
    }
    assert_eq!(silences, 1, "the pause in the speech is found: {loud:?}");
}

#[tokio::test]
async fn a_real_photo_moves_its_mouth_with_the_speech() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.png");
    ffmpeg(&[
        "-i",
        PHOTO,
        "-vf",
        &format!("scale={W}:{H}:force_original_aspect_ratio=increase,crop={W}:{H}"),
        "-frames:v",
        "1",
        &still.display().to_string(),
    ]);
    let engine = load_engine(&FaceSettings::default()).await.unwrap();
    let landmarks = largest_face_landmarks(engine, open_photo(still.clone()).await.unwrap())
        .await
        .unwrap()
        .expect("a face");
    let face = FaceGeometry::from_landmarks(&landmarks).unwrap();
    talks(still, face).await;
}

#[tokio::test]
async fn the_placeholder_portrait_talks_too() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.png");
    std::fs::write(
        &still,
        render_placeholder("Deven", Some("warm"), W, H).unwrap(),
    )
    .unwrap();
    talks(still, placeholder_face(W, H)).await;
}
