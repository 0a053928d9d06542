//! The offline providers against the real tools: espeak-ng, resvg, ffmpeg.

use std::path::Path;

use devatar::face::FaceSettings;
use devatar::media::probe;
use devatar::providers::local::{
    EspeakSpeech, FfmpegAnimation, LocalMux, PortraitStill, render_placeholder,
};
use devatar::providers::{
    ImageGen, ImageRequest, ImageToVideo, JobCtx, LipSync, LipSyncRequest, SpeechRequest,
    SpeechSynth, VideoRequest,
};

fn speech(text: &str) -> SpeechRequest {
    SpeechRequest {
        text: text.into(),
        voice_id: None,
        voice_model: "eleven_multilingual_v2".into(),
        stability: 0.5,
        similarity: 0.8,
        style: 0.2,
        speaker_boost: true,
        local_voice: None,
    }
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[1..4], b"PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn image(headshot: Option<&Path>, w: u32, h: u32) -> ImageRequest {
    ImageRequest {
        prompt: "TOK_TESS, a person".into(),
        display_name: "Tess <Tester> & Co".into(),
        mood: Some("warm golden".into()),
        headshot: headshot.map(Path::to_path_buf),
        lora: None,
        width: w,
        height: h,
        seed: None,
    }
}

#[tokio::test]
async fn espeak_speech_is_real_audio_whose_length_follows_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let tts = EspeakSpeech::default();
    let short = tts
        .synthesize(&speech("Hello."), dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let short_len = probe(&short.audio).await.unwrap().duration;
    let long_dir = tempfile::tempdir().unwrap();
    let long = tts
        .synthesize(&speech("Hello. This sentence is quite a lot longer than the first one, so it takes more time to say."), long_dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let info = probe(&long.audio).await.unwrap();
    assert_eq!(info.audio_codec.as_deref(), Some("pcm_s16le"));
    assert!(
        short_len > 0.3 && info.duration > short_len * 3.0,
        "{short_len} vs {}",
        info.duration
    );
    assert!(
        long.words.is_none(),
        "espeak gives no word timings; the pipeline estimates them"
    );
}

#[tokio::test]
async fn placeholder_portrait_has_the_frame_size_and_differs_by_mood() {
    let warm = render_placeholder("Deven Spear", Some("warm golden hour"), 1280, 720).unwrap();
    assert_eq!(png_size(&warm), (1280, 720));
    let cool = render_placeholder("Deven Spear", Some("cool blue night"), 1280, 720).unwrap();
    assert_ne!(warm, cool, "mood tints the portrait");
    let portrait = render_placeholder("Deven Spear", None, 720, 1280).unwrap();
    assert_eq!(png_size(&portrait), (720, 1280));

    // Through the provider trait, with a name that needs XML escaping.
    let dir = tempfile::tempdir().unwrap();
    let still = PortraitStill::default()
        .generate(&image(None, 720, 720), dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    assert_eq!(png_size(&std::fs::read(still).unwrap()), (720, 720));
}

#[tokio::test]
async fn headshot_is_cropped_to_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let face = dir.path().join("face.jpg");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x480",
            "-frames:v",
            "1",
        ])
        .arg(&face)
        .status()
        .unwrap();
    assert!(ok.success());
    let still = PortraitStill::default()
        .generate(
            &image(Some(&face), 720, 1280),
            dir.path(),
            &JobCtx::detached("t"),
        )
        .await
        .unwrap();
    assert_eq!(png_size(&std::fs::read(still).unwrap()), (720, 1280));
}

/// The faces the engine finds in a still.
async fn faces_in(still: &Path) -> Vec<devatar::face::Face> {
    let engine = devatar::face::load_engine(&FaceSettings::default())
        .await
        .expect("face models: run `bash scripts/install-deps.sh`");
    let photo = devatar::face::open_photo(still.to_path_buf())
        .await
        .unwrap();
    devatar::face::analyse(engine, photo).await.unwrap().faces
}

/// A 1400×600 canvas (wider than 16:9) with a real photo pasted so the face sits near its left edge, or a faceless
/// gradient of the same size.
fn wide_canvas(dir: &Path, with_face: bool) -> std::path::PathBuf {
    let mut canvas = image::RgbImage::from_fn(1400, 600, |x, y| {
        image::Rgb([(x * 255 / 1400) as u8, (y * 255 / 600) as u8, 120])
    });
    if with_face {
        let photo = image::open("/usr/local/share/devatar/test-photos/grace_hopper.jpg")
            .expect("test photos: run `bash scripts/install-deps.sh --test`")
            .to_rgb8();
        image::imageops::overlay(&mut canvas, &photo, -140, 0);
    }
    let path = dir.join(if with_face { "face.png" } else { "none.png" });
    canvas.save(&path).unwrap();
    path
}

/// Generates a still into a fresh folder under `dir`.
async fn still_of(
    p: &PortraitStill,
    req: &ImageRequest,
    dir: &Path,
    job: &JobCtx,
) -> std::path::PathBuf {
    let work = tempfile::tempdir_in(dir).unwrap().keep();
    p.generate(req, &work, job).await.unwrap()
}

#[tokio::test]
async fn headshot_framing_follows_the_face_where_a_centre_crop_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let req = image(Some(&wide_canvas(dir.path(), true)), 1280, 720);
    let framing = PortraitStill::following_faces(FaceSettings::default());
    let job = JobCtx::detached("t");
    let framed = still_of(&framing, &req, dir.path(), &job).await;
    assert_eq!(png_size(&std::fs::read(&framed).unwrap()), (1280, 720));
    let faces = faces_in(&framed).await;
    assert_eq!(faces.len(), 1, "{faces:?}");
    let b = faces[0].bbox;
    assert!(
        b.x > 0 && b.x + b.w < 1280 && b.y + b.h < 720,
        "the whole face: {b:?}"
    );
    assert!(
        f64::from(b.y) > 0.3 * f64::from(b.h),
        "room above the face: {b:?}"
    );
    let size = f64::from(b.h) / 720.0;
    assert!((0.25..=0.6).contains(&size), "a talking-head size: {size}");
    assert!(job.take_notes().iter().any(|n| n.starts_with("framed")));

    let blind = PortraitStill::default();
    let centred = still_of(&blind, &req, dir.path(), &JobCtx::detached("t")).await;
    assert!(
        faces_in(&centred).await.is_empty(),
        "a centre crop cuts this face"
    );

    let key = framing.key_params(&req);
    assert_eq!(key, framing.key_params(&req), "stable for unchanged inputs");
    assert_eq!(key["framing"], devatar::providers::local::FACE_FRAMING);
    assert_ne!(
        key,
        blind.key_params(&req),
        "the framing rule is part of the key"
    );
}

/// With a Fal key, standard mode still frames the headshot locally (nothing is paid) and around the face too.
#[tokio::test]
async fn with_a_fal_key_a_standard_mode_headshot_is_framed_around_the_face_too() {
    let dir = tempfile::tempdir().unwrap();
    let req = image(Some(&wide_canvas(dir.path(), true)), 1280, 720);
    let cfg = devatar::config::Config::from_pairs(&[("FAL_KEY", "k")]).unwrap();
    let flux = cfg.configured_providers().image;
    assert_eq!(flux.name(), "fal-ai/flux-lora");
    assert_eq!(
        flux.key_params(&req)["framing"],
        devatar::providers::local::FACE_FRAMING
    );
    let work = tempfile::tempdir_in(dir.path()).unwrap();
    let still = flux
        .generate(&req, work.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let faces = faces_in(&still).await;
    assert_eq!(
        faces.len(),
        1,
        "the whole face, where a centre crop shows none: {faces:?}"
    );
}

#[tokio::test]
async fn without_a_face_the_headshot_is_centre_cropped_and_the_log_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let req = image(Some(&wide_canvas(dir.path(), false)), 1280, 720);
    let job = JobCtx::detached("t");
    let framing = PortraitStill::following_faces(FaceSettings::default());
    let framed = still_of(&framing, &req, dir.path(), &job).await;
    let blind = still_of(
        &PortraitStill::default(),
        &req,
        dir.path(),
        &JobCtx::detached("t"),
    )
    .await;
    assert_eq!(
        std::fs::read(framed).unwrap(),
        std::fs::read(blind).unwrap()
    );
    let notes = job.take_notes();
    assert!(
        notes.iter().any(|n| n.contains("no face found")),
        "{notes:?}"
    );

    let missing = FaceSettings {
        models: dir.path().join("no-models"),
        ..FaceSettings::default()
    };
    let job = JobCtx::detached("t");
    let no_models = PortraitStill::following_faces(missing);
    still_of(&no_models, &req, dir.path(), &job).await;
    let notes = job.take_notes();
    assert!(
        notes.iter().any(|n| n.contains("install-deps.sh")),
        "{notes:?}"
    );
    assert!(no_models.key_params(&req).get("framing").is_none());
}

#[tokio::test]
async fn animation_renders_the_bucket_length_and_mux_never_cuts_speech() {
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still.png");
    std::fs::write(&still, render_placeholder("Tess", None, 640, 360).unwrap()).unwrap();
    let req = VideoRequest {
        image: still,
        prompt: "slow push-in".into(),
        framing: devatar::providers::Framing::CloseUp,
        movement: None,
        duration_seconds: 5,
        width: 640,
        height: 360,
        urls: Default::default(),
        proxy: false,
    };
    let clip = FfmpegAnimation
        .animate(&req, dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap();
    let info = probe(&clip).await.unwrap();
    assert_eq!(
        (info.width, info.height, info.video_codec.as_deref()),
        (640, 360, Some("h264"))
    );
    assert!((info.duration - 5.0).abs() < 0.1, "{}", info.duration);
    assert!(info.audio_codec.is_none());

    // Speech longer than the clip: the clip loops, the speech is whole.
    let speech_dir = tempfile::tempdir().unwrap();
    let tts = EspeakSpeech::default();
    let text = "This speech is deliberately longer than five seconds, so the five second clip has to loop \
                underneath it rather than cutting any of the words off at the end.";
    let audio = tts
        .synthesize(&speech(text), speech_dir.path(), &JobCtx::detached("t"))
        .await
        .unwrap()
        .audio;
    let speech_len = probe(&audio).await.unwrap().duration;
    assert!(speech_len > 5.5, "{speech_len}");
    let mux_dir = tempfile::tempdir().unwrap();
    let out = LocalMux
        .apply(
            &LipSyncRequest {
                video: clip,
                audio,
                speech_seconds: speech_len,
                tail_seconds: 0.3,
                urls: Default::default(),
                camera: None,
                still: None,
                words: Vec::new(),
            },
            mux_dir.path(),
            &JobCtx::detached("t"),
        )
        .await
        .unwrap();
    let muxed = probe(&out).await.unwrap();
    assert_eq!(muxed.audio_codec.as_deref(), Some("aac"));
    assert!(
        muxed.duration >= speech_len,
        "{} < {speech_len}",
        muxed.duration
    );
    assert!(
        muxed.duration <= speech_len + 0.5,
        "{} vs {speech_len}",
        muxed.duration
    );
}
