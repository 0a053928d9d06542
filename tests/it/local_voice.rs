//! The offline voices: Piper (installed by `scripts/install-deps.sh`) speaks with word timings and is chosen when
//! present; espeak-ng speaks when it is not.

use std::path::Path;

use devatar::config::Config;

use crate::common::{command, repo};
use devatar::media::probe;
use devatar::providers::local::{DEFAULT_PIPER_DIR, DEFAULT_PIPER_VOICE, PiperSpeech};
use devatar::providers::{JobCtx, SpeechRequest, SpeechSynth};

fn request(text: &str, voice: Option<&str>) -> SpeechRequest {
    SpeechRequest {
        text: text.into(),
        voice_id: None,
        voice_model: "eleven_multilingual_v2".into(),
        stability: 0.5,
        similarity: 0.8,
        style: 0.2,
        speaker_boost: true,
        local_voice: voice.map(str::to_string),
    }
}

#[tokio::test]
async fn piper_speaks_with_word_timings() {
    let piper = PiperSpeech::find(Path::new(DEFAULT_PIPER_DIR), None)
        .expect("scripts/install-deps.sh installs Piper and its voice");
    assert_eq!(piper.voice(), DEFAULT_PIPER_VOICE);
    let dir = tempfile::tempdir().unwrap();
    let text = "Hello, this is Joe,\nspeaking offline.";
    let out = piper
        .synthesize(
            &request(text, Some("joe")),
            dir.path(),
            &JobCtx::detached("t"),
        )
        .await
        .unwrap();
    let info = probe(&out.audio).await.unwrap();
    assert_eq!(info.sample_rate, 22_050, "Piper's voice, not espeak-ng's");
    assert!(
        info.duration > 1.0 && info.duration < 8.0,
        "{}",
        info.duration
    );
    let words = out.words.expect("word timings for the captions");
    let said: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
    assert_eq!(
        said,
        ["Hello,", "this", "is", "Joe,", "speaking", "offline."]
    );
    assert!(words.windows(2).all(|w| w[0].end <= w[1].start));
    assert!((words.last().unwrap().end - info.duration).abs() < 0.5);
    let told = out.seconds.expect("Piper tells the speech's length");
    assert!(
        (told - info.duration).abs() < 0.05,
        "{told} vs {}",
        info.duration
    );
    // One process serves every later request, also concurrent ones (scenes render in parallel): while it
    // speaks the first, the two waiting are served longest first (the longest line starts the longest scene).
    for sub in ["a", "b", "c"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let lines = [
        "A second scene.",
        "Short.",
        "And a third one, with a much longer line that takes its time to say.",
    ];
    let timed = |line: &'static str, sub: &'static str| {
        let piper = &piper;
        let dir = dir.path().join(sub);
        async move {
            let out = piper
                .synthesize(&request(line, None), &dir, &JobCtx::detached(sub))
                .await;
            (out, std::time::Instant::now())
        }
    };
    let ((a, _), (b, short_done), (c, long_done)) = tokio::join!(
        timed(lines[0], "a"),
        timed(lines[1], "b"),
        timed(lines[2], "c")
    );
    assert!(
        long_done < short_done,
        "the longer of the two waiting lines is spoken first"
    );
    for out in [a.unwrap(), b.unwrap(), c.unwrap()] {
        let seconds = probe(&out.audio).await.unwrap().duration;
        assert!((out.seconds.unwrap() - seconds).abs() < 0.05 && seconds > 0.3);
    }
    assert_eq!(
        piper.processes_started(),
        1,
        "Python and the voice load once"
    );
    // The engine and the voice are in the content key.
    let key = piper.key_params(&request(text, Some("joe")));
    assert_eq!(key["voice"], DEFAULT_PIPER_VOICE);
    assert_eq!(piper.name(), "piper");
}

#[test]
fn piper_is_chosen_when_installed_and_espeak_ng_is_the_fallback() {
    let installed = Config::from_pairs(&[]).unwrap();
    assert_eq!(installed.piper_dir, Path::new(DEFAULT_PIPER_DIR));
    assert_eq!(installed.local_providers().speech.name(), "piper");
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let absent = Config::from_pairs(&[("DEVATAR_PIPER_DIR", dir)]).unwrap();
    assert_eq!(absent.local_providers().speech.name(), "espeak-ng");
    assert!(PiperSpeech::find(empty.path(), None).is_none());
}

#[test]
fn the_demo_scene_speaks_with_piper_when_it_is_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(repo().join("examples/demo.toml")).unwrap();
    // The project, its identity and its first scene only.
    let first = demo
        .split("\n[[scenes]]")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n[[scenes]]");
    std::fs::write(tmp.path().join("one.toml"), first).unwrap();
    let out = command(tmp.path(), &["render", "one.toml", "--json"])
        .env("DEVATAR_PIPER_DIR", DEFAULT_PIPER_DIR)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = doc["scenes"][0]["steps"].as_array().unwrap();
    let provider = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .map(|s| s["provider"].clone())
    };
    assert_eq!(provider("AUDIO"), Some("piper".into()));
    assert_eq!(provider("LIPSYNC"), Some("local-talk".into()));
}
