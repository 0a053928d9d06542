//! The offline providers against the real tools: espeak-ng, resvg, ffmpeg.

use std::path::Path;

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
    let still = PortraitStill
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
    let still = PortraitStill
        .generate(
            &image(Some(&face), 720, 1280),
            dir.path(),
            &JobCtx::detached("t"),
        )
        .await
        .unwrap();
    assert_eq!(png_size(&std::fs::read(still).unwrap()), (720, 1280));
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
