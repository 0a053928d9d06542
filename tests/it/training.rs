//! From photos to a digital twin on the sandbox: consent, the price limit, training on the fake
//! `fal-ai/flux-lora-fast-training`, the LoRA inspected and scored, a digital-twin scene rendered with it scoring
//! as the person, reuse without any Fal request, a training failure, and (one subprocess test) `devatar identity
//! train` killed mid-training and run again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use devatar::app::Storage;
use devatar::config::Config;
use devatar::domain::{Identity, IdentityId};
use devatar::fakes::{FakeServer, LatencyProfile};
use devatar::identity_photos::{Photos, check_file};
use devatar::storage::db::LogFilter;
use devatar::training::consent::{self, ConsentInput};
use devatar::training::{TrainError, TrainOptions, Trainer};
use image::imageops;

use crate::common;
use crate::common::cloud::{FAL_KEY, cloud_env, fakes};
use crate::face::{astronaut, grace_hopper, same_person_variant};

const MODEL: &str = "fal-ai/flux-lora-fast-training";

pub(crate) fn settings(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("FAL_KEY", FAL_KEY.into()),
        ("FAL_BASE_URL", base.into()),
        ("FAL_STORAGE_BASE_URL", base.into()),
        ("DEVATAR_ALLOW_PRIVATE_URLS", "1".into()),
        ("DEVATAR_PROVIDER_TIME_SCALE", "0.01".into()),
    ]
}

async fn open(data: &Path, base: &str) -> (Arc<Config>, Storage) {
    let mut pairs = settings(base);
    if let Some(url) = common::postgres_url_for(data) {
        pairs.push(("DATABASE_URL", url));
    }
    pairs.push(("DEVATAR_PIPER_DIR", common::NO_PIPER.into()));
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = Arc::new(Config::from_pairs(&refs).expect("a valid test configuration"));
    let storage = Storage::open(&config, data).await.expect("storage opens");
    (config, storage)
}

/// Photos of one person (the astronaut, varied: flips and brightness keep dlib from seeing a second face in
/// the suit, which crops and rescales of this photo do) and one of somebody else.
pub(crate) fn photo_set(dir: &Path) -> Vec<PathBuf> {
    let original = image::open(astronaut()).unwrap().to_rgb8();
    let flipped = imageops::flip_horizontal(&original);
    let mut variants = vec![astronaut(), same_person_variant(dir)];
    for (i, (base, light)) in [(&flipped, 0), (&flipped, 20), (&original, 25)]
        .into_iter()
        .enumerate()
    {
        let mut img = base.clone();
        imageops::colorops::brighten_in_place(&mut img, light);
        let path = dir.join(format!("astronaut-{i}.png"));
        img.save(&path).unwrap();
        variants.push(path);
    }
    variants.push(grace_hopper());
    variants
}

/// An identity `name` with the photo set in its collection; returns its id.
pub(crate) async fn identity_with_photos(
    config: &Config,
    storage: &Storage,
    dir: &Path,
    name: &str,
) -> IdentityId {
    let trigger = format!("TOK_{}", name.to_uppercase());
    let id = storage
        .db
        .insert_identity(&Identity::new(name, name, &trigger), None)
        .await
        .unwrap();
    let photos = Photos::new(storage, &config.face);
    for p in photo_set(dir) {
        photos
            .add_file(&id, &check_file(&p, None).unwrap())
            .await
            .unwrap();
    }
    id
}

fn fal_requests(fakes: &FakeServer) -> u64 {
    fakes
        .stats()
        .iter()
        .filter(|(k, _)| k.starts_with("fal."))
        .map(|(_, v)| v)
        .sum()
}

pub(crate) fn trainings_submitted(fakes: &FakeServer) -> u64 {
    fakes
        .stats()
        .get(&format!("fal.submit.{MODEL}"))
        .copied()
        .unwrap_or(0)
}

/// The whole loop in process: refused without consent and above `maxUsd` (nothing reaches Fal), a training
/// failure with Fal's reason, then a training whose LoRA passes inspection and whose test still scores as the
/// person of the photos (the other person's photo left out), with progress in the run's logs, and a digital-twin
/// scene rendered with it that scores as the person too; the same photos again reuse it without a single Fal
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_train_into_a_digital_twin_that_looks_like_the_person() {
    let fakes = fakes(LatencyProfile::Fast, 0.05).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, storage) = open(&dir.path().join("data"), &fakes.base_url()).await;
    let id = identity_with_photos(&config, &storage, dir.path(), "eileen").await;
    let trainer = Trainer::new(&storage, &config).unwrap();
    let record = || async { storage.db.get_identity(&id).await.unwrap().unwrap() };

    let refused = trainer.plan(record().await, TrainOptions::default()).await;
    match refused {
        Err(e @ TrainError::NoConsent { .. }) => assert!(
            e.to_string().contains("devatar identity consent eileen"),
            "{e}"
        ),
        other => panic!("expected a consent refusal, got {other:?}"),
    }
    let input = ConsentInput {
        by: "Eileen Collins".into(),
        note: Some("agreed on camera, 2026-12-06".into()),
        asset_id: None,
    };
    consent::record(&storage, &id, &input).await.unwrap();
    let cheap = TrainOptions {
        max_usd: Some(0.5),
        ..TrainOptions::default()
    };
    let over = trainer.plan(record().await, cheap).await.unwrap_err();
    assert!(matches!(over, TrainError::OverBudget { .. }), "{over}");
    assert_eq!(fal_requests(&fakes), 0, "{:?}", fakes.stats());

    let plan = trainer
        .plan(record().await, TrainOptions::default())
        .await
        .unwrap();
    assert!(plan.photos.len() >= 4, "{:?}", plan.left_out);
    assert!(
        plan.left_out
            .iter()
            .any(|l| l.starts_with("grace_hopper.jpg: looks like someone else")),
        "{:?}",
        plan.left_out
    );
    fakes.add_fault("fal.result=training_failedx1").unwrap();
    let failed = trainer
        .run(&plan, Arc::new(|_: &str| {}))
        .await
        .unwrap_err();
    assert!(
        matches!(&failed, TrainError::Failed(m) if m.contains("Training failed: the loss diverged")),
        "{failed}"
    );
    assert!(record().await.identity.lora_url.is_none());

    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&lines);
    let progress = Arc::new(move |l: &str| seen.lock().unwrap().push(l.to_string()));
    let outcome = trainer.run(&plan, progress).await.unwrap();
    assert_eq!(
        trainings_submitted(&fakes),
        2,
        "the failed one, then this one"
    );
    assert!(!outcome.reused);
    assert!(outcome.lora.ok(), "{:?}", outcome.lora);
    assert_eq!(outcome.lora.trigger_word_found, Some(true));
    assert_eq!(outcome.lora.convention, "diffusers");
    let score = outcome.trained.score.expect("the test still is scored");
    assert!(score < config.face.threshold, "{score}");
    assert!(
        outcome
            .verdict()
            .starts_with("Digital twin ready: looks like you (0."),
        "{}",
        outcome.verdict()
    );
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("Training step")),
        "{:?}",
        lines.lock().unwrap()
    );
    let identity = record().await.identity;
    let url = identity
        .lora_url
        .clone()
        .expect("the identity has its LoRA");
    assert_eq!(url, outcome.trained.lora_url);
    assert_eq!(identity.trigger_word, "TOK_EILEEN");
    assert!(storage.objects.exists(&outcome.trained.lora_object).await);
    // The URL passes `lora inspect` as Flux would fetch it.
    let inspected = devatar::lora::inspect_url(
        &devatar::net::FetchGuard::new(true),
        &url,
        &devatar::lora::InspectOptions {
            trigger_word: Some("TOK_EILEEN".into()),
            base_model: Some("flux-dev".into()),
        },
    )
    .await
    .unwrap();
    assert!(inspected.ok(), "{inspected:?}");
    let logs = storage
        .db
        .query_logs(&LogFilter {
            step: Some("LORA_TRAINING".into()),
            limit: 100,
            ..LogFilter::default()
        })
        .await
        .unwrap();
    let logs: Vec<_> = logs
        .into_iter()
        .filter(|l| l.run_id.as_deref() == Some(outcome.training_id.as_str()))
        .collect();
    assert!(
        logs.iter().any(|l| l.message.starts_with("Training step")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.message.starts_with("Digital twin ready")),
        "{logs:?}"
    );
    assert_twin_scene_is_the_person(&config, &storage, dir.path()).await;

    let before = fal_requests(&fakes);
    let again = trainer
        .plan(record().await, TrainOptions::default())
        .await
        .unwrap();
    assert!(again.reuse.is_some());
    let reused = trainer.run(&again, Arc::new(|_: &str| {})).await.unwrap();
    assert!(reused.reused);
    assert_eq!(reused.trained.lora_url, url);
    assert_eq!(fal_requests(&fakes), before, "reuse makes no Fal request");
    fakes.shutdown().await;
}

/// Issue 15's acceptance: a digital-twin scene rendered on the sandbox with the trained identity (the project
/// file names no LoRA, so the trained one is kept) scores as the person of the photos — the still (IMAGE) and the
/// final clip (FINALIZE: its worst sampled frame) both under the face threshold.
async fn assert_twin_scene_is_the_person(config: &Arc<Config>, storage: &Storage, dir: &Path) {
    use devatar::domain::StepName;
    use devatar::pipeline::RenderOptions;
    use devatar::project_file::ProjectFile;
    use devatar::worker::{IdentityPolicy, RunService};
    let toml = dir.join("twin-scene.toml");
    let text = "[project]\nname = \"Twin scene\"\n\n[[identities]]\nname = \"eileen\"\n\
                display_name = \"Eileen Collins\"\ntrigger_word = \"TOK_EILEEN\"\n\n[[scenes]]\nname = \"hello\"\n\
                dialogue = \"Hello.\"\ncamera = \"close-up\"\nmode = \"digital-twin\"\n";
    std::fs::write(&toml, text).unwrap();
    let runs = RunService::new(storage.clone(), config.clone());
    let plan = runs
        .import(
            &ProjectFile::load(&toml).unwrap(),
            IdentityPolicy::Overwrite,
        )
        .await
        .unwrap();
    let (claim, _) = runs.claim_project(&plan.project_id, false).await.unwrap();
    let report = runs
        .clone()
        .execute_leased(&claim, plan, RenderOptions::default(), false)
        .await
        .expect("the render keeps its lease");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let step = |name: StepName| report.steps.iter().find(|s| s.step == name).unwrap();
    assert_eq!(step(StepName::Image).provider, "fal-ai/flux-lora");
    for name in [StepName::Image, StepName::Finalize] {
        let distance = step(name).identity_distance;
        assert!(
            distance.is_some_and(|d| d < config.face.threshold),
            "{name:?} scored {distance:?}"
        );
    }
}

/// `devatar identity train` killed while it polls, then run again: it resumes the stored request (one training
/// submitted in all) and ends with the LoRA (exit 0); a training failure exits 1 with Fal's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_training_resumes_without_a_second_submit() {
    let fakes = fakes(LatencyProfile::Fast, 0.2).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let (config, storage) = open(&data, &fakes.base_url()).await;
        let id = identity_with_photos(&config, &storage, dir.path(), "eileen").await;
        let input = ConsentInput {
            by: "Eileen Collins".into(),
            note: Some("signed statement".into()),
            asset_id: None,
        };
        consent::record(&storage, &id, &input).await.unwrap();
    }
    let train = |extra: &[(&str, &str)]| {
        let mut cmd = common::command(
            dir.path(),
            &["identity", "train", "eileen", "--yes", "--data", "data"],
        );
        cloud_env(&mut cmd, &fakes.base_url());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    fakes.add_fault("fal.result=training_failedx1").unwrap();
    let failed = train(&[]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Training failed: the loss diverged"),
        "{stderr}"
    );

    let killed = train(&[("DEVATAR_FAILPOINT", "mid-poll:2")]);
    assert_eq!(killed.status.code(), None, "killed by its failpoint");
    assert_eq!(trainings_submitted(&fakes), 2);

    let done = train(&[]);
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        stdout.contains("Digital twin ready: looks like you ("),
        "{stdout}"
    );
    assert_eq!(
        trainings_submitted(&fakes),
        2,
        "resumed, not submitted again"
    );
    let (_, storage) = open(&data, &fakes.base_url()).await;
    let id = storage.db.list_identities().await.unwrap().remove(0).id;
    let statuses: Vec<String> = storage
        .db
        .trainings(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.status)
        .collect();
    assert_eq!(statuses, ["succeeded", "interrupted", "failed"]);
    fakes.shutdown().await;
}

/// `FAL_LORA_TRAINER=portrait` trains on `fal-ai/flux-lora-portrait-trainer` (its input names the trigger
/// `trigger_phrase`); the result is used the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portrait_trainer_is_a_configurable_alternative() {
    let fakes = fakes(LatencyProfile::Fast, 0.05).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut pairs = settings(&fakes.base_url());
    pairs.push(("FAL_LORA_TRAINER", "portrait".into()));
    if let Some(url) = common::postgres_url_for(&data) {
        pairs.push(("DATABASE_URL", url));
    }
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = Config::from_pairs(&refs).unwrap();
    let storage = Storage::open(&config, &data).await.unwrap();
    let id = identity_with_photos(&config, &storage, dir.path(), "pat").await;
    let input = ConsentInput {
        by: "Pat".into(),
        note: Some("agreed in writing".into()),
        asset_id: None,
    };
    consent::record(&storage, &id, &input).await.unwrap();
    let trainer = Trainer::new(&storage, &config).unwrap();
    let record = storage.db.get_identity(&id).await.unwrap().unwrap();
    let plan = trainer.plan(record, TrainOptions::default()).await.unwrap();
    let outcome = trainer.run(&plan, Arc::new(|_: &str| {})).await.unwrap();
    assert!(outcome.lora.ok(), "{:?}", outcome.lora);
    let stats = fakes.stats();
    assert_eq!(
        stats
            .get("fal.submit.fal-ai/flux-lora-portrait-trainer")
            .copied(),
        Some(1),
        "{stats:?}"
    );
    assert_eq!(
        trainings_submitted(&fakes),
        0,
        "the fast trainer was not used"
    );
    fakes.shutdown().await;
}

/// Rendering a project file sets the identity fields it names and keeps what it leaves out: the trained LoRA,
/// the headshot, the photos, the consent and so the face print; a file that names a LoRA URL sets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_file_never_undoes_training() {
    use devatar::identity_photos::face_print;
    use devatar::project_file::ProjectFile;
    use devatar::worker::{IdentityPolicy, RunService};
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(astronaut(), dir.path().join("eileen.png")).unwrap();
    let toml = dir.path().join("project.toml");
    let write = |display: &str, lora: &str| {
        let text = format!(
            "[project]\nname = \"Twin\"\n\n[[identities]]\nname = \"eileen\"\ndisplay_name = \"{display}\"\n\
             trigger_word = \"TOK_EILEEN\"\n{lora}\n[[scenes]]\nname = \"intro\"\ndialogue = \"Hello.\"\n"
        );
        std::fs::write(&toml, text).unwrap();
        ProjectFile::load(&toml).unwrap()
    };
    let (config, storage) = open(&dir.path().join("data"), "http://127.0.0.1:9").await;
    let runs = RunService::new(storage.clone(), config.clone());
    runs.import(
        &write("Eileen", "headshot = \"eileen.png\""),
        IdentityPolicy::Overwrite,
    )
    .await
    .unwrap();
    let id = storage.db.list_identities().await.unwrap().remove(0).id;
    let trained = "https://v3.fal.media/files/eileen/pytorch_lora_weights.safetensors";
    storage
        .db
        .set_trained_lora(&id, trained, "flux-dev")
        .await
        .unwrap();
    let input = ConsentInput {
        by: "Eileen Collins".into(),
        note: Some("agreed".into()),
        asset_id: None,
    };
    consent::record(&storage, &id, &input).await.unwrap();

    runs.import(&write("Eileen Collins", ""), IdentityPolicy::Overwrite)
        .await
        .unwrap();
    let r = storage.db.get_identity(&id).await.unwrap().unwrap();
    assert_eq!(
        r.identity.display_name, "Eileen Collins",
        "the named field is set"
    );
    assert_eq!(
        r.identity.lora_url.as_deref(),
        Some(trained),
        "the trained LoRA is kept"
    );
    assert!(r.headshot_asset_id.is_some(), "the headshot is kept");
    assert!(storage.db.consent(&id).await.unwrap().is_some());
    assert_eq!(storage.db.list_identity_photos(&id).await.unwrap().len(), 1);
    assert!(face_print(&storage.db, &id).await.unwrap().is_some());

    let named = "lora_url = \"https://example.test/other.safetensors\"";
    runs.import(&write("Eileen Collins", named), IdentityPolicy::Overwrite)
        .await
        .unwrap();
    let r = storage.db.get_identity(&id).await.unwrap().unwrap();
    assert_eq!(
        r.identity.lora_url.as_deref(),
        Some("https://example.test/other.safetensors")
    );
}
