//! The offline end-to-end render through the real binary: output format, duration, captions, caching.

use crate::common;

use std::collections::HashMap;

use common::*;

#[test]
fn demo_renders_offline_then_caches_and_reruns_only_what_a_dialogue_edit_touches() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = tmp.path().join("demo.mp4");
    let (data_s, out_s) = (data.to_str().unwrap(), out.to_str().unwrap());

    // First render: everything executes.
    let first = render_json(
        &repo(),
        &["demo", "--data", data_s, "--out", out_s, "--json"],
    );
    assert_eq!(first["providerCalls"], 16, "3 scenes × 5 steps + ASSEMBLE");
    assert_eq!(executed(&first).len(), 16);
    let (v, a, w, h, duration) = probe(&out);
    assert_eq!((v.as_str(), a.as_str(), w, h), ("h264", "aac", 1280, 720));
    let scenes = first["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), 3);
    let mut speech_total = 0.0;
    for s in scenes {
        let speech = s["speechSeconds"].as_f64().unwrap();
        let scene_len = s["durationSeconds"].as_f64().unwrap();
        assert!(speech > 1.0, "speech measured: {s}");
        assert!(
            scene_len + 0.05 >= speech,
            "scene video must not cut the speech: {s}"
        );
        assert_eq!(s["mode"], "standard");
        for step in s["steps"].as_array().unwrap() {
            let distance = &step["identityDistance"];
            assert!(distance.is_null() || distance.is_f64(), "{step}");
            if step["step"] == "FINALIZE" {
                assert!(step.get("identityMedian").is_some(), "{step}");
            }
        }
        speech_total += speech;
    }
    let crossfades = (scenes.len() - 1) as f64;
    assert!(
        (duration - speech_total).abs() <= 0.5 * crossfades,
        "video {duration:.2} s vs speech {speech_total:.2} s"
    );
    assert!((first["durationSeconds"].as_f64().unwrap() - duration).abs() < 0.1);
    // Captions beside the video, same stem.
    let vtt = std::fs::read_to_string(tmp.path().join("demo.vtt")).unwrap();
    let srt = std::fs::read_to_string(tmp.path().join("demo.srt")).unwrap();
    assert!(
        vtt.starts_with("WEBVTT") && vtt.contains("Welcome to devatar"),
        "{vtt}"
    );
    assert!(
        srt.starts_with("1\n00:00:00,") && srt.contains("Thanks for watching"),
        "{srt}"
    );
    assert_eq!(
        first["captions"],
        tmp.path().join("demo.vtt").to_str().unwrap()
    );

    // Same render again: nothing executes.
    let again = render_json(
        &repo(),
        &["demo", "--data", data_s, "--out", out_s, "--json"],
    );
    assert_eq!(again["providerCalls"], 0);
    assert!(steps(&again).iter().all(|(_, _, cached)| *cached));
    assert_eq!(steps(&again).len(), 16);

    // A copy of examples/ elsewhere renders fully cached against the same data folder.
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    let demo = std::fs::read_to_string(repo().join("examples/demo.toml")).unwrap();
    std::fs::write(copy.join("demo.toml"), &demo).unwrap();
    let copied = render_json(
        tmp.path(),
        &[
            "render",
            "copy/demo.toml",
            "--data",
            data_s,
            "--out",
            "other.mp4",
            "--json",
        ],
    );
    assert_eq!(
        copied["providerCalls"], 0,
        "paths and --out must not be part of any cache key"
    );

    // A preview renders with the local providers (here the same as the render's, so all cached), says so, and
    // writes beside the data folder's paid video instead of over it.
    let paid = std::fs::read(&out).unwrap();
    let preview = render_json(
        tmp.path(),
        &[
            "render",
            "copy/demo.toml",
            "--data",
            data_s,
            "--preview",
            "--json",
        ],
    );
    assert_eq!(preview["preview"], true, "{preview}");
    assert_eq!(preview["providerCalls"], 0);
    assert_eq!(
        preview["output"],
        data.join("devatar-demo-preview.mp4").to_str().unwrap()
    );
    assert!(data.join("devatar-demo-preview.mp4").is_file());
    assert_eq!(std::fs::read(&out).unwrap(), paid);
    assert_eq!(copied["preview"], false);
    let refused = run(
        tmp.path(),
        &[
            "render",
            "copy/demo.toml",
            "--data",
            data_s,
            "--preview",
            "--providers",
            "cloud",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--preview"));

    // Dialogue-only edit of one scene, same duration bucket.
    // (The sign-off lasts about 4 s with either offline voice: the edit stays inside its 5 s bucket.)
    let edited = demo.replace("see you in the next scene.", "see you in the next one.");
    assert_ne!(edited, demo);
    std::fs::write(copy.join("demo.toml"), edited).unwrap();
    let after_edit = render_json(
        tmp.path(),
        &[
            "render",
            "copy/demo.toml",
            "--data",
            data_s,
            "--out",
            "other.mp4",
            "--json",
        ],
    );
    let expected: Vec<(String, String)> = [
        ("project", "ASSEMBLE"),
        ("sign-off", "AUDIO"),
        ("sign-off", "FINALIZE"),
        ("sign-off", "LIPSYNC"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(executed(&after_edit), expected);
}

/// One scene: its AUDIO and IMAGE are the only ready steps and need no slot the other holds (local steps share
/// one slot per core), so they run at the same time; a long line keeps AUDIO busy well past IMAGE's start.
/// (With more scenes than cores, the AUDIOs may take every slot first, so per-scene overlap is not promised.)
#[test]
fn audio_overlaps_image_in_the_recorded_step_times() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("one.toml");
    let line = "This line is long on purpose, so that speaking it keeps the speech step busy while the still \
                is made beside it, which is what a parallel pipeline promises for every scene it renders.";
    let project = SMALL_PROJECT
        .split("[[scenes]]")
        .take(2)
        .collect::<Vec<_>>()
        .join("[[scenes]]")
        .replace("Hello there.", line);
    std::fs::write(&file, project).unwrap();
    let data = tmp.path().join("data");
    render_json(
        tmp.path(),
        &[
            "render",
            "one.toml",
            "--data",
            data.to_str().unwrap(),
            "--json",
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rows: Vec<(String, String, i64, i64)> = rt.block_on(async {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&database_url_for(&data))
            .await
            .unwrap();
        let rows = sqlx::query("SELECT scene_id, step, started_at, finished_at FROM steps")
            .fetch_all(&pool)
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (
                    r.get("scene_id"),
                    r.get("step"),
                    r.get("started_at"),
                    r.get("finished_at"),
                )
            })
            .collect()
    });
    let mut by_scene: HashMap<String, HashMap<String, (i64, i64)>> = HashMap::new();
    for (scene, step, start, end) in rows {
        by_scene
            .entry(scene)
            .or_default()
            .insert(step, (start, end));
    }
    let scenes: Vec<_> = by_scene.iter().filter(|(s, _)| !s.is_empty()).collect();
    assert_eq!(scenes.len(), 1);
    for (scene, steps) in scenes {
        let (a, i, v) = (steps["AUDIO"], steps["IMAGE"], steps["VIDEO"]);
        assert!(
            a.0 < i.1 && i.0 < a.1,
            "scene {scene}: AUDIO {a:?} must overlap IMAGE {i:?}"
        );
        assert!(
            v.0 >= a.1 && v.0 >= i.1,
            "scene {scene}: VIDEO starts after AUDIO and IMAGE"
        );
    }
}

#[test]
fn burn_captions_changes_only_finalize_and_assemble() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("small.toml"), SMALL_PROJECT).unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    render_json(tmp.path(), &["render", "small.toml", "--data", d, "--json"]);
    let burned = render_json(
        tmp.path(),
        &[
            "render",
            "small.toml",
            "--data",
            d,
            "--json",
            "--burn-captions",
        ],
    );
    let names: Vec<String> = executed(&burned)
        .into_iter()
        .map(|(s, n)| format!("{s}/{n}"))
        .collect();
    assert_eq!(names, ["one/FINALIZE", "project/ASSEMBLE", "two/FINALIZE"]);
    let (_, _, w, h, _) = probe(&data.join("small.mp4"));
    assert_eq!((w, h), (720, 720), "1:1 projects render square");
}
