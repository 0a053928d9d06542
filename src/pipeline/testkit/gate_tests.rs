//! The identity gate in process: IMAGE scores generated stills against the identity's face print, retries with new
//! seeds and a stronger LoRA, keeps the best, fails strict scenes before VIDEO; FINALIZE scores the final clip.
//! The fakes script who each still and frame shows (`testkit::faces`).

use std::time::Duration;

use super::*;
use crate::domain::{IdentityGate, LoraScale, StepName};
use crate::storage::db::LogFilter;

/// A kit with one digital-twin scene of an identity with a face print (LoRA scale `auto`: 0.925 for the scene's
/// medium shot) under `gate`; returns the kit, the plan and a run.
async fn twin(gate: IdentityGate) -> (TestPipeline, RenderPlan, crate::domain::RunId) {
    let t = TestPipeline::new().await.unwrap();
    let mut plan = t
        .plan(vec![scene("alpha", "Hello from alpha today.")])
        .await
        .unwrap();
    plan.project.identity_gate = gate;
    let s = &mut plan.scenes[0];
    s.identity.lora_url = Some("https://example.com/ana.safetensors".into());
    s.identity.lora_scale = LoraScale::Auto;
    s.face_print = Some(Arc::new(fake_print()));
    t.trust_lora(&s.identity).await;
    t.calls.set_face("cousin", 0.7);
    t.calls.set_face("stranger", 0.9);
    let run = t.start_run(&plan).await.unwrap();
    (t, plan, run)
}

/// The IDENTITY_ANCHOR log rows of a project at `level`, oldest first.
async fn anchor_logs(t: &TestPipeline, plan: &RenderPlan, level: &str) -> Vec<String> {
    let filter = LogFilter {
        project: Some(plan.project_id.clone()),
        step: Some("IDENTITY_ANCHOR".into()),
        level: Some(level.into()),
        limit: 100,
        ..LogFilter::default()
    };
    let mut rows = t.db.query_logs(&filter).await.unwrap();
    rows.reverse();
    rows.into_iter().map(|r| r.message).collect()
}

/// The text of the object of `role` in `node`'s output.
async fn object_text(t: &TestPipeline, report: &RunReport, node: NodeKey, role: &str) -> String {
    let key = report.outputs[&node].object(role).unwrap();
    std::fs::read_to_string(t.objects.local_path(key).await.unwrap()).unwrap()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-4)
}

#[tokio::test]
async fn a_drifting_still_is_retried_and_the_best_still_goes_to_video() {
    let (t, plan, run) = twin(IdentityGate::Retry).await;
    t.calls.show_next(&["stranger", "cousin", "ana+cousin"]);
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(t.calls.count(Op::Image), 3, "1 + identity_retries images");
    let requests = t.calls.image_requests();
    let scales: Vec<Option<f64>> = requests.iter().map(|r| r.1).collect();
    assert_eq!(scales, [Some(0.925), Some(0.925), Some(0.975)]);
    assert!(requests[0].0.is_none() && requests[1].0.is_some() && requests[2].0.is_some());
    assert_ne!(requests[1].0, requests[2].0, "each retry has its own seed");
    let image = &report.outputs[&(Some(0), StepName::Image)];
    assert!(close(image.identity_distance, 0.7), "{image:?}");
    let cost = report
        .steps
        .iter()
        .find(|s| s.step == StepName::Image)
        .unwrap()
        .cost_usd;
    assert!(
        (cost - 3.0 * fakes::IMAGE_USD).abs() < 1e-9,
        "each attempt is paid: {cost}"
    );
    let clip = object_text(&t, &report, (Some(0), StepName::Video), "video").await;
    assert!(
        clip.contains("shows=cousin\n"),
        "VIDEO got the best still: {clip}"
    );
    let info = anchor_logs(&t, &plan, "INFO").await.join("\n");
    for score in ["0.900", "0.700", "2 faces"] {
        assert!(info.contains(score), "{score} missing in {info}");
    }
    let warn = anchor_logs(&t, &plan, "WARN").await.join("\n");
    assert!(warn.contains("going on with attempt 2"), "{warn}");
}

#[tokio::test]
async fn retries_stay_within_the_project_budget_and_keep_the_best_still() {
    let (t, mut plan, run) = twin(IdentityGate::Retry).await;
    plan.project.budget_usd = Some(2.4 * fakes::IMAGE_USD);
    t.calls.show_next(&["stranger", "cousin", "ana"]);
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        t.calls.count(Op::Image),
        2,
        "the third image would pass the budget"
    );
    let image = &report.outputs[&(Some(0), StepName::Image)];
    assert!(close(image.identity_distance, 0.7), "{image:?}");
    let warn = anchor_logs(&t, &plan, "WARN").await.join("\n");
    assert!(
        warn.contains("retry 2 failed") && warn.contains("budget"),
        "{warn}"
    );
}

#[tokio::test]
async fn the_gate_stops_at_the_first_still_that_looks_like_the_identity() {
    let (t, plan, run) = twin(IdentityGate::Retry).await;
    t.calls.show_next(&["stranger"]);
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(t.calls.count(Op::Image), 2);
    let image = &report.outputs[&(Some(0), StepName::Image)];
    assert!(close(image.identity_distance, 0.2), "{image:?}");
    assert!(anchor_logs(&t, &plan, "WARN").await.is_empty());
}

#[tokio::test]
async fn strict_fails_the_scene_before_video_with_the_remedies() {
    let (t, plan, run) = twin(IdentityGate::Strict).await;
    t.calls
        .show_next(&["stranger", "cousin", "stranger", "cousin"]);
    let report = t.execute(&run, &plan).await;
    let failed: Vec<NodeKey> = report.failures.iter().map(|(n, _)| *n).collect();
    assert_eq!(failed, [(Some(0), StepName::Image)]);
    let message = report.failures[0].1.to_string();
    for part in ["0.700", "0.95–1.0", "trigger word", "retrain"] {
        assert!(message.contains(part), "{part} missing in {message}");
    }
    assert_eq!(t.calls.count(Op::Image), 3);
    assert_eq!(
        (t.calls.count(Op::Video), t.calls.count(Op::LipSync)),
        (0, 0)
    );
}

#[tokio::test]
async fn warn_scores_once_and_off_scores_nothing() {
    let (t, plan, run) = twin(IdentityGate::Warn).await;
    t.calls.show_next(&["stranger", "stranger"]);
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(t.calls.count(Op::Image), 1);
    let image = &report.outputs[&(Some(0), StepName::Image)];
    assert!(close(image.identity_distance, 0.9), "{image:?}");
    let warn = anchor_logs(&t, &plan, "WARN").await.join("\n");
    assert!(
        warn.contains("Identity gate (warn)") && warn.contains("0.900"),
        "{warn}"
    );

    let (t, plan, run) = twin(IdentityGate::Off).await;
    t.calls.show_next(&["stranger"]);
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((t.calls.count(Op::Image), t.calls.count(Op::Score)), (1, 0));
    let finalize = &report.outputs[&(Some(0), StepName::Finalize)];
    assert_eq!(finalize.identity_distance, None);
}

#[tokio::test]
async fn missing_face_models_skip_scoring_with_the_install_command() {
    let (t, plan, run) = twin(IdentityGate::Strict).await;
    t.calls.show_next(&["stranger"]);
    t.calls.remove_face_models();
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!((t.calls.count(Op::Image), t.calls.count(Op::Score)), (1, 0));
    let warn = anchor_logs(&t, &plan, "WARN").await;
    assert_eq!(
        warn.len(),
        2,
        "IMAGE and FINALIZE each say it once: {warn:?}"
    );
    assert!(
        warn.iter()
            .all(|w| w.contains(crate::face::INSTALL_COMMAND)),
        "{warn:?}"
    );
}

#[tokio::test]
async fn a_resumed_gate_never_generates_a_finished_attempt_again() {
    let (mut t, plan, run) = twin(IdentityGate::Retry).await;
    t.calls.show_next(&["stranger", "cousin", "ana"]);
    t.calls.stall_images_from(3);
    let stopped = tokio::select! {
        _ = t.execute(&run, &plan) => false,
        () = async {
            while t.calls.count(Op::Image) < 3 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        } => true,
    };
    assert!(stopped, "the run was stopped during the third attempt");
    t.restart().await.unwrap();
    t.trust_lora(&plan.scenes[0].identity).await;
    t.calls.stall_images_from(0);
    t.calls.reset();
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(t.calls.count(Op::Image), 1, "only the unfinished attempt");
    assert_eq!(t.calls.image_requests()[0].1, Some(0.975));
    let image = &report.outputs[&(Some(0), StepName::Image)];
    assert!(close(image.identity_distance, 0.2), "{image:?}");
}

#[tokio::test]
async fn an_unchanged_rerender_executes_nothing_and_a_changed_print_reruns_image() {
    let (t, mut plan, run) = twin(IdentityGate::Retry).await;
    t.calls.show_next(&["stranger"]);
    assert!(t.execute(&run, &plan).await.failures.is_empty());
    t.calls.reset();
    let again = t.start_run(&plan).await.unwrap();
    let report = t.execute(&again, &plan).await;
    assert!(executed(&report).is_empty(), "{:?}", executed(&report));
    assert_eq!((t.calls.provider_calls(), t.calls.count(Op::Score)), (0, 0));
    let image = &report.outputs[&(Some(0), StepName::Image)];
    assert!(
        close(image.identity_distance, 0.2),
        "the score is cached with the step"
    );

    plan.scenes[0].face_print = Some(Arc::new(crate::face::FacePrint {
        references: vec![fake_face(0.1)],
        centre: fake_face(0.1),
    }));
    let third = t.start_run(&plan).await.unwrap();
    let ran = executed(&t.execute(&third, &plan).await);
    assert!(ran.contains(&(Some(0), StepName::Image)), "{ran:?}");
    assert!(ran.contains(&(Some(0), StepName::Finalize)), "{ran:?}");
}

#[tokio::test]
async fn finalize_records_the_worst_and_the_median_frame() {
    let (t, plan, run) = twin(IdentityGate::Retry).await;
    t.calls.show_in_frames(&["ana", "cousin", "ana"]);
    let report = t.execute(&run, &plan).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(t.calls.count(Op::Frames), 1);
    let finalize = &report.outputs[&(Some(0), StepName::Finalize)];
    assert!(close(finalize.identity_distance, 0.7), "{finalize:?}");
    assert!(close(finalize.identity_median, 0.2), "{finalize:?}");
    let warn = anchor_logs(&t, &plan, "WARN").await.join("\n");
    assert!(warn.contains("1 of 3 frames"), "{warn}");

    let (t, plan, run) = twin(IdentityGate::Retry).await;
    t.calls.show_in_frames(&["ana", ""]);
    let report = t.execute(&run, &plan).await;
    let finalize = &report.outputs[&(Some(0), StepName::Finalize)];
    assert!(close(finalize.identity_distance, 0.2), "{finalize:?}");
    let warn = anchor_logs(&t, &plan, "WARN").await.join("\n");
    assert!(
        warn.contains("1 of 3 frames") && warn.contains("no face"),
        "{warn}"
    );
}
