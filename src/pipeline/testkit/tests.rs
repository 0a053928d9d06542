//! Pipeline behaviour in process (milliseconds, no tools): caching, resume at every step boundary, DAG skips,
//! dialogue-edit reruns. The real-render versions live in `tests/it/cli_render.rs` and `tests/it/cli_resume.rs`.

use std::collections::BTreeSet;

use super::*;
use crate::domain::{RunId, SceneId, StepName, StepStatus};
use crate::pipeline::{CROSSFADE_SECONDS, ErrorClass, SCENE_TAIL_SECONDS};

const NAMES: [&str; 3] = ["alpha", "bravo", "charlie"];

fn scenes(n: usize) -> Vec<Scene> {
    NAMES[..n]
        .iter()
        .map(|name| scene(name, &format!("Hello from {name} today.")))
        .collect()
}

/// Every node of a plan of `n` scenes.
fn all_nodes(n: usize) -> BTreeSet<NodeKey> {
    (0..n)
        .flat_map(|i| StepName::SCENE_STEPS.map(|s| (Some(i), s)))
        .chain([(None, StepName::Assemble)])
        .collect()
}

/// The nodes of a run's `steps` rows in `status`.
async fn rows_in(
    t: &TestPipeline,
    run: &RunId,
    plan: &RenderPlan,
    status: StepStatus,
) -> BTreeSet<NodeKey> {
    let index = |id: &Option<SceneId>| {
        id.as_ref()
            .map(|id| plan.scenes.iter().position(|s| &s.id == id).unwrap())
    };
    t.steps(run)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.status == status)
        .map(|r| (index(&r.scene_id), r.step))
        .collect()
}

/// A fresh kit with a stored plan of `n` scenes and a run of it.
async fn kit(n: usize) -> (TestPipeline, RenderPlan, RunId) {
    let t = TestPipeline::new().await.unwrap();
    let plan = t.plan(scenes(n)).await.unwrap();
    let run = t.start_run(&plan).await.unwrap();
    (t, plan, run)
}

/// FINALIZE holds a share of the cores only for its encode: with one share, a scene whose thumbnail waits for
/// the other scene's encode still finishes (it waits out 10 s and fails when the share is held to the end).
#[tokio::test]
async fn a_finalize_frees_its_share_of_the_cores_after_its_encode() {
    let (t, plan, run) = kit(2).await;
    let heavy = &t.pipeline().heavy;
    heavy.forget_permits(heavy.available_permits() - 1);
    t.calls.thumbnails_after_normalizing(2);
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(t.calls.count(Op::Thumbnail), 2);
}

#[tokio::test]
async fn a_multi_scene_render_runs_in_process_with_fakes() {
    let (t, plan, run) = kit(3).await;
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(executed(&report), all_nodes(3));
    assert_eq!(
        rows_in(&t, &run, &plan, StepStatus::Succeeded).await,
        all_nodes(3)
    );
    assert_eq!(t.calls.provider_calls(), 12);
    assert_eq!(t.calls.count(Op::Normalize), 3);
    assert_eq!(t.calls.count(Op::Join), 1);
    // The project lasts every scene's speech + tail, less a crossfade per join.
    let speech: f64 = plan
        .scenes
        .iter()
        .map(|s| fakes::speech_seconds(&s.scene.dialogue) + SCENE_TAIL_SECONDS)
        .sum();
    let expected = speech - 2.0 * CROSSFADE_SECONDS;
    let seconds = report.assembled().unwrap().duration_seconds.unwrap();
    assert!((seconds - expected).abs() < 1e-6, "{seconds} vs {expected}");
}

#[tokio::test]
async fn an_unchanged_rerun_executes_nothing() {
    let (t, plan, run) = kit(3).await;
    let first = t.execute(&run, &plan).await;
    assert!(first.failures.is_empty());
    t.calls.reset();
    let again = t.start_run(&plan).await.unwrap();
    let report = t.execute(&again, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(executed(&report).is_empty(), "{:?}", executed(&report));
    assert_eq!(cached(&report), all_nodes(3));
    assert_eq!(t.calls.provider_calls(), 0, "no provider call");
    assert_eq!(
        t.calls.media_edits() + t.calls.count(Op::Probe),
        0,
        "no media work"
    );
    assert_eq!(
        t.calls.count(Op::PrepareJoin),
        0,
        "no join prepared from cached scenes"
    );
    assert_eq!(report.assembled(), first.assembled());
}

/// One boundary: stop the run after `n` executed steps, restart, resume the same run.
async fn abort_then_resume(n: usize, options: RenderOptions) {
    let (mut t, plan, run) = kit(2).await;
    let total = all_nodes(2).len();
    assert!(
        t.execute_until(&run, &plan, options, n).await.is_none(),
        "boundary {n}: stopped"
    );
    t.restart().await.unwrap();
    let finished_before = rows_in(&t, &run, &plan, StepStatus::Succeeded).await;
    let stored_before = t.cached_outputs().await.unwrap();
    assert!(
        finished_before.len() >= n,
        "boundary {n}: {finished_before:?}"
    );
    // A step stopped after storing its output but before marking its row is finished too: the cache has it.
    assert!(stored_before >= finished_before.len());
    t.calls.reset();
    let resumed = t.execute(&run, &plan).await;
    assert!(
        resumed.failures.is_empty(),
        "boundary {n}: {:?}",
        resumed.failures
    );
    assert_eq!(resumed.steps.len(), total);
    let ran = executed(&resumed);
    assert!(
        ran.is_disjoint(&finished_before),
        "boundary {n}: ran again: {ran:?}"
    );
    assert_eq!(
        ran.len(),
        total - stored_before,
        "boundary {n}: exactly the unfinished steps run"
    );
    let provider_steps = ran
        .iter()
        .filter(|(_, s)| !matches!(s, StepName::Finalize | StepName::Assemble));
    assert_eq!(
        t.calls.provider_calls(),
        provider_steps.count(),
        "boundary {n}"
    );
    assert_eq!(
        rows_in(&t, &run, &plan, StepStatus::Succeeded).await,
        all_nodes(2)
    );
    assert!(resumed.assembled().is_some());
}

#[tokio::test]
async fn resume_after_an_abort_at_every_step_boundary_runs_only_the_unfinished_steps() {
    let one_at_a_time = RenderOptions {
        max_parallel_steps: Some(1),
        ..RenderOptions::default()
    };
    // Every boundary of a two-scene render, with every ready step running and one step at a time; each case
    // has its own data folder, so they run concurrently.
    let cases = (1..all_nodes(2).len())
        .flat_map(|n| [(n, RenderOptions::default()), (n, one_at_a_time)])
        .map(|(n, options)| abort_then_resume(n, options));
    futures::future::join_all(cases).await;
}

#[tokio::test]
async fn a_failed_step_skips_only_its_dependents_and_a_rerun_finishes_them() {
    let (t, plan, run) = kit(3).await;
    t.calls.fail(Op::Image, "the set of bravo");
    let report = t.execute(&run, &plan).await;
    let failed: Vec<NodeKey> = report.failures.iter().map(|(n, _)| *n).collect();
    assert_eq!(failed, [(Some(1), StepName::Image)]);
    assert_eq!(report.failures[0].1.class(), ErrorClass::Rejected);
    let skipped: BTreeSet<NodeKey> = [
        (Some(1), StepName::Video),
        (Some(1), StepName::Lipsync),
        (Some(1), StepName::Finalize),
        (None, StepName::Assemble),
    ]
    .into();
    assert_eq!(rows_in(&t, &run, &plan, StepStatus::Skipped).await, skipped);
    let mut rest = all_nodes(3);
    rest.retain(|n| !skipped.contains(n) && *n != (Some(1), StepName::Image));
    assert_eq!(executed(&report), rest, "the other branches still run");
    assert_eq!(rows_in(&t, &run, &plan, StepStatus::Succeeded).await, rest);

    t.calls.heal();
    let again = t.start_run(&plan).await.unwrap();
    let report = t.execute(&again, &plan).await;
    assert!(report.failures.is_empty());
    let mut rerun = skipped.clone();
    rerun.insert((Some(1), StepName::Image));
    assert_eq!(
        executed(&report),
        rerun,
        "only the failed and skipped steps run"
    );
}

#[tokio::test]
async fn a_failed_lipsync_skips_only_its_finalize_and_assemble() {
    let (t, plan, run) = kit(3).await;
    t.calls.fail(Op::LipSync, "charlie nods");
    let report = t.execute(&run, &plan).await;
    let failed: Vec<NodeKey> = report.failures.iter().map(|(n, _)| *n).collect();
    assert_eq!(failed, [(Some(2), StepName::Lipsync)]);
    let skipped: BTreeSet<NodeKey> =
        [(Some(2), StepName::Finalize), (None, StepName::Assemble)].into();
    assert_eq!(rows_in(&t, &run, &plan, StepStatus::Skipped).await, skipped);
    assert_eq!(executed(&report).len(), all_nodes(3).len() - 3);
}

/// Runs `plan`, edits scene 1's dialogue to `dialogue`, runs again; returns what the second run executed.
async fn edit_dialogue(dialogue: &str) -> (BTreeSet<NodeKey>, Arc<Calls>) {
    let (t, mut plan, run) = kit(3).await;
    assert!(t.execute(&run, &plan).await.failures.is_empty());
    plan.scenes[1].scene.dialogue = dialogue.into();
    t.calls.reset();
    let again = t.start_run(&plan).await.unwrap();
    let report = t.execute(&again, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.steps.len(), all_nodes(3).len());
    (executed(&report), t.calls.clone())
}

#[tokio::test]
async fn a_dialogue_edit_in_the_same_duration_bucket_reruns_audio_lipsync_finalize_assemble() {
    let (ran, calls) = edit_dialogue("Hello again from bravo.").await;
    let expected: BTreeSet<NodeKey> = [
        (Some(1), StepName::Audio),
        (Some(1), StepName::Lipsync),
        (Some(1), StepName::Finalize),
        (None, StepName::Assemble),
    ]
    .into();
    assert_eq!(ran, expected);
    assert_eq!((calls.count(Op::Speech), calls.count(Op::LipSync)), (1, 1));
    assert_eq!((calls.count(Op::Image), calls.count(Op::Video)), (0, 0));
    assert_eq!((calls.count(Op::Normalize), calls.count(Op::Join)), (1, 1));
}

#[tokio::test]
async fn a_dialogue_edit_into_another_duration_bucket_also_reruns_video() {
    let long =
        "This edited line of dialogue is long enough to need a ten second clip for the scene";
    assert!(fakes::speech_seconds(long) > 5.0);
    let (ran, calls) = edit_dialogue(long).await;
    let expected: BTreeSet<NodeKey> = [
        (Some(1), StepName::Audio),
        (Some(1), StepName::Video),
        (Some(1), StepName::Lipsync),
        (Some(1), StepName::Finalize),
        (None, StepName::Assemble),
    ]
    .into();
    assert_eq!(ran, expected);
    assert_eq!(calls.count(Op::Image), 0);
}

#[tokio::test]
async fn a_fast_scene_speaks_through_the_avatar_and_its_dialogue_edit_reruns_video() {
    let t = TestPipeline::with_avatar().await.unwrap();
    let mut list = scenes(2);
    list[1].animation = Animation::Fast;
    let mut plan = t.plan(list).await.unwrap();
    let run = t.start_run(&plan).await.unwrap();
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        (t.calls.count(Op::Avatar), t.calls.count(Op::Video)),
        (1, 1)
    );
    assert_eq!(
        t.calls.count(Op::LipSync),
        1,
        "the fast scene's LIPSYNC passes through"
    );
    plan.scenes[1].scene.dialogue = "Hello again.".into();
    t.calls.reset();
    let again = t.start_run(&plan).await.unwrap();
    let ran = executed(&t.execute(&again, &plan).await);
    let expected: BTreeSet<NodeKey> = [
        (Some(1), StepName::Audio),
        (Some(1), StepName::Video),
        (Some(1), StepName::Lipsync),
        (Some(1), StepName::Finalize),
        (None, StepName::Assemble),
    ]
    .into();
    assert_eq!(ran, expected);
    assert_eq!(t.calls.provider_calls(), 2, "speech and avatar");
}

#[tokio::test]
async fn a_scene_run_reassembles_the_project_from_the_other_scenes_recorded_outputs() {
    use crate::pipeline::fingerprint::{plan_fingerprints, project_fingerprint};
    let (t, plan, run) = kit(3).await;
    let first = t.execute(&run, &plan).await;
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    let mut edited = plan.clone();
    edited.scenes[1].scene.dialogue = "Bravo says something new.".into();
    edited.recorded = [0, 2]
        .into_iter()
        .map(|i| (i, first.outputs[&(Some(i), StepName::Finalize)].clone()))
        .collect();
    let again = t.start_run(&edited).await.unwrap();
    let report = t.execute(&again, &edited).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let changed: BTreeSet<NodeKey> = [
        (Some(1), StepName::Audio),
        (Some(1), StepName::Lipsync),
        (Some(1), StepName::Finalize),
        (None, StepName::Assemble),
    ]
    .into();
    assert_eq!(executed(&report), changed);
    assert!(
        report.steps.iter().all(|s| s.scene.is_none_or(|i| i == 1)),
        "the recorded scenes are not rendered again"
    );
    // The project video is the one a whole render of the edited project makes (which now has nothing to do).
    let mut whole = edited.clone();
    whole.recorded.clear();
    let check = t.start_run(&whole).await.unwrap();
    let all = t.execute(&check, &whole).await;
    assert!(executed(&all).is_empty(), "{:?}", executed(&all));
    assert_eq!(all.assembled(), report.assembled());
    // The scene and the project record the fingerprints of what they were rendered from.
    let prints = plan_fingerprints(&whole);
    let project = t.db.get_project(&plan.project_id).await.unwrap().unwrap();
    let expected = project_fingerprint(prints.iter().map(String::as_str));
    assert_eq!(project.rendered_inputs.as_deref(), Some(expected.as_str()));
    let scene = t.db.get_scene(&plan.scenes[1].id).await.unwrap().unwrap();
    assert_eq!(scene.rendered_inputs.as_deref(), Some(prints[1].as_str()));
    assert_ne!(plan_fingerprints(&plan)[1], prints[1]);
}
