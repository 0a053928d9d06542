//! The project join against real ffmpeg: clips made by `normalize` are spliced (only the crossfades encoded) and
//! the result matches the full re-encode frame for frame, with audio as long as the video; a join prepared
//! scene by scene (as the pipeline does while scenes render) is the full join, packet for packet, and never
//! uses a part of a clip that changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Instant;

use devatar::media::edit::{Delivery, join_with_crossfades, normalize, reencode_with_crossfades};
use devatar::media::splice::Joined;
use devatar::media::splice::{prepare_splice, seed_probe};
use devatar::media::{JoinClip, SpliceParts, probe, probe_packets};

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

/// The clips of a join, each identified by its file name.
fn join_clips(clips: &[(PathBuf, f64)]) -> Vec<JoinClip<'_>> {
    clips
        .iter()
        .map(|(path, seconds)| JoinClip {
            path,
            seconds: *seconds,
            id: path.to_str().unwrap(),
        })
        .collect()
}

/// Scene clips as FINALIZE makes them: a source per (seconds, lavfi pattern), normalised.
async fn normalized(dir: &Path, name: &str, specs: &[(f64, &str)]) -> Vec<(PathBuf, f64)> {
    let mut clips = Vec::new();
    for (i, (seconds, pattern)) in specs.iter().enumerate() {
        let src = source(dir, &format!("{name}-src{i}.mp4"), *seconds, pattern);
        let clip = dir.join(format!("{name}{i}.mp4"));
        let info = normalize(&src, &clip, &DELIVERY, None).await.unwrap().info;
        clips.push((clip, info.duration));
    }
    clips
}

/// MD5 of one stream's packets (`v` or `a`), copied as they are.
fn stream_md5(path: &Path, stream: &str) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            &format!("0:{stream}"),
            "-c",
            "copy",
            "-f",
            "md5",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
    let specs = [(2.0, "testsrc2"), (1.6, "testsrc"), (2.4, "rgbtestsrc")];
    let clips = normalized(dir.path(), "clip", &specs).await;
    let inputs: Vec<(&Path, f64)> = clips.iter().map(|(p, d)| (p.as_path(), *d)).collect();
    let clip_frames: Vec<u32> = clips.iter().map(|(p, _)| frames(p)).collect();
    assert_eq!(clip_frames, [50, 40, 60]);

    let spliced_path = dir.path().join("spliced.mp4");
    let parts = SpliceParts::new(dir.path().join("parts"));
    let spliced = join_with_crossfades(&join_clips(&clips), &spliced_path, &DELIVERY, &parts)
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

/// The probe a clip's own encode made (`Normalized`, FINALIZE hands it to the pre-joiner) spares the join its
/// ffprobe: the join makes only the bodies and the crossfade.
#[tokio::test]
async fn a_clip_probed_by_its_encode_is_not_probed_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parts = SpliceParts::new(d.join("parts"));
    let mut clips = Vec::new();
    for (i, (seconds, pattern)) in [(2.0, "testsrc2"), (1.6, "testsrc")].iter().enumerate() {
        let src = source(d, &format!("src{i}.mp4"), *seconds, pattern);
        let clip = d.join(format!("clip{i}.mp4"));
        let made = normalize(&src, &clip, &DELIVERY, None).await.unwrap();
        let video = made.video.expect("an encoded clip comes with its packets");
        assert_eq!(video, probe_packets(&clip).await.unwrap().1);
        seed_probe(
            &parts,
            clip.to_str().unwrap(),
            &DELIVERY,
            &made.info,
            &video,
        );
        clips.push((clip, made.info.duration));
    }
    let out = d.join("joined.mp4");
    let joined = join_with_crossfades(&join_clips(&clips), &out, &DELIVERY, &parts)
        .await
        .unwrap();
    assert!(joined.spliced);
    assert_eq!(parts.made(), 3, "two bodies and one crossfade, no probe");
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
    let out = dir.path().join("joined.mp4");
    let parts = SpliceParts::new(dir.path().join("parts"));
    let joined = join_with_crossfades(&join_clips(&clips), &out, &DELIVERY, &parts)
        .await
        .unwrap();
    assert!(!joined.spliced);
    assert!(
        (joined.info.duration - 3.7).abs() < 0.1,
        "{}",
        joined.info.duration
    );
}

/// What must not differ between two joins: every video and audio packet, the keyframes, the offsets (the
/// captions are shifted by them) and the duration.
async fn assert_same_join(a: (&Path, &Joined), b: (&Path, &Joined)) {
    assert_eq!(stream_md5(a.0, "v"), stream_md5(b.0, "v"), "video packets");
    assert_eq!(stream_md5(a.0, "a"), stream_md5(b.0, "a"), "audio packets");
    let (pa, pb) = (
        probe_packets(a.0).await.unwrap(),
        probe_packets(b.0).await.unwrap(),
    );
    assert_eq!(pa.1, pb.1, "frames and keyframes");
    assert_eq!(pa.0.duration, pb.0.duration);
    assert_eq!(a.1.offsets, b.1.offsets);
    assert!(a.1.spliced && b.1.spliced);
}

#[tokio::test]
async fn a_join_prepared_scene_by_scene_is_the_full_join_and_skips_a_changed_clip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let specs = [
        (2.0, "testsrc2"),
        (1.6, "testsrc"),
        (2.4, "rgbtestsrc"),
        (1.8, "smptebars"),
    ];
    let clips = normalized(d, "clip", &specs).await;
    let all = join_clips(&clips);
    let full_path = d.join("full.mp4");
    let fresh = |name: &str| SpliceParts::new(d.join(name));
    let full = join_with_crossfades(&all, &full_path, &DELIVERY, &fresh("full-parts"))
        .await
        .unwrap();

    // Scenes finish out of order; each is prepared as it does.
    let parts = fresh("parts");
    let mut known: Vec<Option<JoinClip>> = vec![None; all.len()];
    for i in [2, 0, 3] {
        known[i] = Some(all[i]);
        prepare_splice(&known, &[i], &DELIVERY, DELIVERY.crossfade, &parts)
            .await
            .unwrap();
    }
    assert_eq!(
        parts.made(),
        7,
        "probes and bodies of scenes 0, 2 and 3, and the crossfade 2→3"
    );
    assert_eq!(
        parts.audio_fed_ahead(),
        1,
        "scene 0's audio: scene 1 is not known"
    );
    let (made, reused) = (parts.made(), parts.reused());
    let incremental_path = d.join("incremental.mp4");
    let incremental = join_with_crossfades(&all, &incremental_path, &DELIVERY, &parts)
        .await
        .unwrap();
    assert_eq!(
        (parts.made() - made, parts.reused() - reused),
        (4, 7),
        "the join made scene 1's probe, body and two crossfades and reused the rest"
    );
    assert_same_join((&full_path, &full), (&incremental_path, &incremental)).await;

    // Scene 2's FINALIZE changed: its probe, body and both crossfades are made again, nothing of the old clip
    // is used, and the result is the full join of the new clips.
    let mut edited = clips.clone();
    edited[2] = normalized(d, "edited", &[(2.4, "yuvtestsrc")])
        .await
        .remove(0);
    // The audio fed ahead holds the old scene 2 again: the join must not use it.
    let old: Vec<Option<JoinClip>> = all.iter().copied().map(Some).collect();
    prepare_splice(&old, &[2], &DELIVERY, DELIVERY.crossfade, &parts)
        .await
        .unwrap();
    let (made, reused) = (parts.made(), parts.reused());
    let stale_path = d.join("after-edit.mp4");
    let after_edit = join_with_crossfades(&join_clips(&edited), &stale_path, &DELIVERY, &parts)
        .await
        .unwrap();
    assert_eq!((parts.made() - made, parts.reused() - reused), (4, 7));
    let edited_path = d.join("edited-full.mp4");
    let edited_full = join_with_crossfades(
        &join_clips(&edited),
        &edited_path,
        &DELIVERY,
        &fresh("edited-parts"),
    )
    .await
    .unwrap();
    assert_same_join((&edited_path, &edited_full), (&stale_path, &after_edit)).await;
    assert_ne!(
        stream_md5(&stale_path, "v"),
        stream_md5(&incremental_path, "v"),
        "the edit shows"
    );
}

/// Benchmark (not run by default): the join of twelve 1280×720 five-second scene clips, whole and after the
/// first eleven were prepared as the pipeline prepares them while the last scene renders.
/// `cargo test --test it -- --ignored media_join::twelve_clip_join_timed --nocapture`
#[tokio::test]
#[ignore]
async fn twelve_clip_join_timed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let delivery = Delivery {
        width: 1280,
        height: 720,
        fps: 25,
        sample_rate: 48000,
        crossfade: 0.3,
    };
    let mut clips = Vec::new();
    for i in 0..12 {
        let src = d.join(format!("src{i}.mp4"));
        ffmpeg(&[
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=1280x720:rate=25,hue=h={}", i * 30),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "5.2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            src.to_str().unwrap(),
        ]);
        let clip = d.join(format!("clip{i}.mp4"));
        let t = Instant::now();
        let info = normalize(&src, &clip, &delivery, None).await.unwrap().info;
        if i == 11 {
            println!(
                "normalize (FINALIZE's encode) of one clip: {} ms",
                t.elapsed().as_millis()
            );
        }
        clips.push((clip, info.duration));
    }
    let all = join_clips(&clips);
    let t = Instant::now();
    let full = join_with_crossfades(
        &all,
        &d.join("full.mp4"),
        &delivery,
        &SpliceParts::new(d.join("p1")),
    )
    .await
    .unwrap();
    let full_ms = t.elapsed().as_millis();
    assert!(full.spliced);

    let parts = SpliceParts::new(d.join("p2"));
    let mut known: Vec<Option<JoinClip>> = vec![None; all.len()];
    let t = Instant::now();
    for i in 0..11 {
        known[i] = Some(all[i]);
        prepare_splice(&known, &[i], &delivery, delivery.crossfade, &parts)
            .await
            .unwrap();
    }
    let prepare_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let last = join_with_crossfades(&all, &d.join("last.mp4"), &delivery, &parts)
        .await
        .unwrap();
    let last_ms = t.elapsed().as_millis();
    assert!(last.spliced);
    println!(
        "12 clips: full join {full_ms} ms; eleven prepared one by one {prepare_ms} ms; then the join {last_ms} ms"
    );
}
