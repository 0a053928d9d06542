//! An identity's reference photos through the library, in process: the collection service on real photos of two
//! people (the face engine's test photos), the project file's `reference_photos` merged on import, the face
//! print a plan carries, a machine without the face models, and the vetting of a photo set with one photo of another
//! person, one blurred, one tiny and one without a face. One test drives `devatar identity photos` and
//! `devatar identity vet`.

use std::path::Path;
use std::sync::Arc;

use devatar::app::Storage;
use devatar::config::Config;
use devatar::domain::{Identity, IdentityId};
use devatar::identity_photos::{Agreement, Photos, Verdict, check_file, face_print};
use serde_json::Value;

use crate::common;
use crate::face::{astronaut, grace_hopper, gradient, same_person_variant};

/// Storage in `data` (its own PostgreSQL database under `DEVATAR_TEST_BACKEND=postgres`) with `settings`.
async fn open(data: &Path, settings: &[(&str, &str)]) -> (Arc<Config>, Storage) {
    let url = common::postgres_url_for(data);
    let mut pairs = settings.to_vec();
    if let Some(url) = &url {
        pairs.push(("DATABASE_URL", url));
    }
    let config = Arc::new(Config::from_pairs(&pairs).expect("a valid test configuration"));
    let storage = Storage::open(&config, data).await.expect("storage opens");
    (config, storage)
}

async fn new_identity(storage: &Storage, name: &str) -> IdentityId {
    let trigger = format!("TOK_{}", name.to_uppercase());
    storage
        .db
        .insert_identity(&Identity::new(name, name, &trigger), None)
        .await
        .unwrap()
}

async fn add(
    photos: &Photos<'_>,
    identity: &IdentityId,
    path: &Path,
) -> devatar::identity_photos::Added {
    photos
        .add_file(identity, &check_file(path, None).unwrap())
        .await
        .unwrap()
}

/// `ffmpeg -i SRC -vf FILTER DIR/NAME`: a variant of a test photo.
fn ffmpeg_variant(src: &Path, filter: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(src)
        .args(["-vf", filter])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {filter}");
    out
}

/// Three more photos of the astronaut, each at least 512×512: mirrored and brightened, darkened and scaled to
/// 700, an upscaled copy at 1024 (a near-duplicate of the original).
pub(crate) fn usable_variants(dir: &Path) -> Vec<std::path::PathBuf> {
    let a = astronaut();
    vec![
        ffmpeg_variant(&a, "hflip,eq=brightness=0.15", dir, "mirrored.jpg"),
        ffmpeg_variant(&a, "eq=brightness=-0.15,scale=700:700", dir, "darker.jpg"),
        ffmpeg_variant(&a, "scale=1024:1024", dir, "large.png"),
    ]
}

/// The acceptance set of photo vetting: four usable photos of one person, then another person, a blurred photo,
/// a tiny one and one without a face — each of the last four blocked with its reason, the rest kept for training.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vetting_blocks_another_person_a_blurred_a_tiny_and_a_faceless_photo_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (config, storage) = open(&dir.path().join("data"), &[]).await;
    let id = new_identity(&storage, "eileen").await;
    let photos = Photos::new(&storage, &config.face);
    let a = astronaut();
    let mut files = vec![a.clone()];
    files.extend(usable_variants(dir.path()));
    files.push(grace_hopper());
    files.push(ffmpeg_variant(
        &a,
        "gblur=sigma=2",
        dir.path(),
        "blurred.png",
    ));
    files.push(ffmpeg_variant(&a, "scale=300:300", dir.path(), "tiny.png"));
    let faceless = dir.path().join("wall.png");
    image::imageops::resize(
        &image::open(gradient(dir.path())).unwrap().to_rgb8(),
        640,
        640,
        image::imageops::FilterType::Triangle,
    )
    .save(&faceless)
    .unwrap();
    files.push(faceless);
    for f in &files {
        add(&photos, &id, f).await;
    }
    let report = photos.vet(&id).await.unwrap();
    let line = |name: &str| {
        let p = report.photos.iter().find(|p| p.file_name == name).unwrap();
        (p.verdict, p.reasons.join("; "))
    };
    let all: Vec<_> = report
        .photos
        .iter()
        .map(|p| (&p.file_name, p.verdict, &p.reasons))
        .collect();
    let blocked = |name: &str, reason: &str| {
        let (verdict, reasons) = line(name);
        assert!(
            verdict == Verdict::Blocked && reasons.contains(reason),
            "{name}: {all:#?}"
        );
    };
    blocked("grace_hopper.jpg", "looks like someone else: 0.");
    blocked("blurred.png", "face too blurred: sharpness ");
    blocked("tiny.png", "too small: 300×300 pixels (at least 512×512)");
    blocked("wall.png", "no face found");
    for usable in ["astronaut.png", "mirrored.jpg", "darker.jpg", "large.png"] {
        assert_eq!(line(usable).0, Verdict::Warn, "{usable}: {all:#?}");
    }
    assert!(
        line("astronaut.png")
            .1
            .contains("512×512 pixels: 1024×1024 or more is recommended")
    );
    assert!(
        line("large.png").1.contains("near-duplicate of "),
        "{all:#?}"
    );
    let usable: Vec<&str> = report.usable().map(|p| p.file_name.as_str()).collect();
    assert_eq!(
        usable,
        ["astronaut.png", "mirrored.jpg", "darker.jpg", "large.png"]
    );
    assert!(
        report
            .usable()
            .all(|p| p.object_key.starts_with("media/") && p.sha256.len() == 64)
    );
    assert!(report.may_train());
    assert_eq!((report.verdict, report.usable_photos), (Verdict::Warn, 4));
    assert_eq!(report.summary.count, 8);
    assert!(
        report
            .summary
            .reasons
            .contains(&"8 photos: 15–30 are recommended".to_string())
    );
    let light = report
        .summary
        .lighting
        .brightness
        .expect("brightness measured");
    assert!(
        light[1] - light[0] > 20.0,
        "brightened and darkened variants: {light:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_photos_of_one_person_agree_and_another_persons_photo_is_named_the_outlier() {
    let dir = tempfile::tempdir().unwrap();
    let (config, storage) = open(&dir.path().join("data"), &[]).await;
    let id = new_identity(&storage, "eileen").await;
    let photos = Photos::new(&storage, &config.face);

    let first = add(&photos, &id, &astronaut()).await;
    assert!(first.new);
    let analysis = first.photo.analysis.as_ref().expect("analysed");
    assert_eq!(analysis.face_count, 1);
    assert!(analysis.embedding.is_some());
    assert!(
        !format!("{:?}", first.photo).contains("0."),
        "no embedding in Debug output"
    );
    add(&photos, &id, &same_person_variant(dir.path())).await;
    let agreeing = photos.list(&id).await.unwrap();
    assert!(
        matches!(agreeing.agreement, Agreement::Agree { count: 2, worst } if worst < 0.45),
        "{:?}",
        agreeing.agreement
    );
    assert!(
        agreeing
            .agreement
            .summary()
            .starts_with("2 photos agree (worst 0.")
    );
    assert!(
        agreeing
            .photos
            .iter()
            .all(|p| !p.outlier && p.problems.is_empty()),
        "{:?}",
        agreeing
            .photos
            .iter()
            .map(|p| p.describe())
            .collect::<Vec<_>>()
    );

    // The same content again is the same photo.
    let again = add(&photos, &id, &astronaut()).await;
    assert!(!again.new);
    assert_eq!(again.photo.id, first.photo.id);

    add(&photos, &id, &grace_hopper()).await;
    let mixed = photos.list(&id).await.unwrap();
    let lines: Vec<String> = mixed.photos.iter().map(|p| p.describe()).collect();
    let Agreement::Outliers(outliers) = &mixed.agreement else {
        panic!("{:?}: {lines:?}", mixed.agreement)
    };
    assert_eq!(outliers.len(), 1, "{lines:?}");
    assert_eq!(outliers[0].0, "grace_hopper.jpg");
    assert!(
        mixed
            .agreement
            .summary()
            .starts_with("photo grace_hopper.jpg ("),
        "{}",
        mixed.agreement.summary()
    );
    let flags: Vec<bool> = mixed.photos.iter().map(|p| p.outlier).collect();
    assert_eq!(flags, [false, false, true], "{lines:?}");
    let print = face_print(&storage.db, &id)
        .await
        .unwrap()
        .expect("a print");
    assert_eq!(print.references.len(), 3);

    // Two photos of each person: nobody stands out, yet the line names the two people.
    let grace = image::open(grace_hopper()).unwrap().to_rgb8();
    let mirrored = dir.path().join("grace-mirrored.jpg");
    image::imageops::flip_horizontal(&grace)
        .save(&mirrored)
        .unwrap();
    add(&photos, &id, &mirrored).await;
    let split = photos.list(&id).await.unwrap();
    let Agreement::People { groups, closest } = &split.agreement else {
        panic!("{:?}", split.agreement)
    };
    assert_eq!(
        groups,
        &[
            vec!["astronaut.png", "astronaut-variant.jpg"],
            vec!["grace_hopper.jpg", "grace-mirrored.jpg"]
        ]
    );
    assert!(*closest > 0.6, "{closest}");
    assert!(
        photos
            .remove(&id, "grace-mirrored.jpg")
            .await
            .unwrap()
            .is_some()
    );

    let removed = photos.remove(&id, "grace_hopper.jpg").await.unwrap();
    assert_eq!(
        removed.map(|p| p.file_name).as_deref(),
        Some("grace_hopper.jpg")
    );
    assert!(photos.list(&id).await.unwrap().agreement.ok());
    assert_eq!(
        face_print(&storage.db, &id)
            .await
            .unwrap()
            .unwrap()
            .references
            .len(),
        2,
        "the print follows the collection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_face_models_photos_are_stored_and_listed_and_analysed_once_they_are_installed()
{
    let dir = tempfile::tempdir().unwrap();
    let no_models = dir.path().join("no-models");
    std::fs::create_dir(&no_models).unwrap();
    let (config, storage) = open(
        &dir.path().join("data"),
        &[("DEVATAR_FACE_MODELS", no_models.to_str().unwrap())],
    )
    .await;
    let id = new_identity(&storage, "eileen").await;
    let photos = Photos::new(&storage, &config.face);
    let added = add(&photos, &id, &astronaut()).await;
    assert!(added.new && added.photo.analysis.is_none());
    assert_eq!((added.photo.width, added.photo.height), (512, 512));
    let listed = photos.list(&id).await.unwrap();
    let note = listed.note.clone().expect("a note");
    assert!(
        note.contains("face models not installed") && note.contains("bash scripts/install-deps.sh"),
        "{note}"
    );
    let view = serde_json::to_value(listed.view()).unwrap();
    assert_eq!(view["photos"][0]["note"], Value::String(note));
    assert_eq!(view["photos"][0]["faceCount"], Value::Null);
    assert!(face_print(&storage.db, &id).await.unwrap().is_none());
    let vetted = photos.vet(&id).await.unwrap();
    assert_eq!(
        (vetted.verdict, vetted.may_train()),
        (Verdict::Blocked, false)
    );
    assert!(
        vetted.photos[0].reasons[0].starts_with(
            "not analysed: face models not installed — run `bash scripts/install-deps.sh`"
        ),
        "{:?}",
        vetted.photos[0].reasons
    );

    // Installed later (the machine-wide models): the next listing analyses the pending photo.
    let installed = devatar::face::FaceSettings::default();
    let listed = Photos::new(&storage, &installed).list(&id).await.unwrap();
    assert!(listed.note.is_none());
    assert_eq!(
        listed.photos[0]
            .record
            .analysis
            .as_ref()
            .map(|a| a.face_count),
        Some(1)
    );
    assert!(face_print(&storage.db, &id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_files_reference_photos_join_the_collection_once_and_the_plan_carries_the_print()
{
    use devatar::project_file::ProjectFile;
    use devatar::worker::{IdentityPolicy, RunService};
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(astronaut(), dir.path().join("eileen.png")).unwrap();
    same_person_variant(dir.path());
    let toml = dir.path().join("project.toml");
    std::fs::write(
        &toml,
        r#"
[project]
name = "Photos"

[[identities]]
name = "eileen"
display_name = "Eileen Collins"
trigger_word = "TOK_EILEEN"
headshot = "eileen.png"
reference_photos = ["astronaut-variant.jpg", "eileen.png"]

[[scenes]]
name = "intro"
dialogue = "Hello."
"#,
    )
    .unwrap();
    let file = ProjectFile::load(&toml).unwrap();
    let (config, storage) = open(&dir.path().join("data"), &[]).await;
    let runs = RunService::new(storage.clone(), config.clone());
    let plan = runs.import(&file, IdentityPolicy::Overwrite).await.unwrap();
    let print = plan.scenes[0]
        .face_print
        .as_ref()
        .expect("the plan carries the identity's print");
    assert_eq!(print.references.len(), 2, "the headshot and the variant");
    let identity = storage.db.list_identities().await.unwrap().remove(0).id;
    let stored = storage.db.list_identity_photos(&identity).await.unwrap();
    let names: Vec<&str> = stored.iter().map(|p| p.file_name.as_str()).collect();
    assert_eq!(names, ["eileen.png", "astronaut-variant.jpg"]);

    // Importing the same file again adds nothing.
    let again = runs.import(&file, IdentityPolicy::Overwrite).await.unwrap();
    assert_eq!(again.scenes[0].face_print, plan.scenes[0].face_print);
    let ids = |photos: &[devatar::storage::db::PhotoRecord]| -> Vec<String> {
        photos.iter().map(|p| p.id.clone()).collect()
    };
    assert_eq!(
        ids(&storage.db.list_identity_photos(&identity).await.unwrap()),
        ids(&stored)
    );
}

/// The one subprocess test: `devatar identity photos NAME add|list|remove` and its exit codes.
#[test]
fn the_command_line_adds_lists_and_removes_photos_with_its_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (_, storage) = open(&data, &[]).await;
        new_identity(&storage, "eileen").await;
        storage.db.close().await;
    });
    let photos = |args: &[&str]| {
        let mut all = vec!["identity", "photos", "eileen"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data", "data"]);
        common::run(dir.path(), &all)
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let missing = photos(&["add", "missing.jpg"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("missing.jpg"));

    let faceless = gradient(dir.path());
    let out = photos(&[
        "add",
        astronaut().to_str().unwrap(),
        faceless.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("added: astronaut.png: one face (17 % of the shorter side)")
            && stdout.contains("added: gradient.png: no face")
            && stdout.contains("reference agreement: "),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("added: gradient.png: no face\n  verdict: blocked (left out of training)\n")
            && stdout
                .contains("  - too small: 320×240 pixels (at least 512×512)\n  - no face found"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("left out of training") && stderr.contains(": gradient.png"),
        "{stderr}"
    );

    // Vetting: one usable photo may not train (exit 1, the document still printed).
    let vet = |name: &str| {
        common::run(
            dir.path(),
            &["identity", "vet", name, "--data", "data", "--json"],
        )
    };
    let refused = vet("eileen");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let doc: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(
        (doc["verdict"].as_str(), doc["usablePhotos"].as_u64()),
        (Some("blocked"), Some(1))
    );
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&doc), ["verdict", "usablePhotos", "photos", "summary"]);
    assert_eq!(
        keys(&doc["photos"][0]),
        ["fileName", "verdict", "usable", "reasons"]
    );
    assert_eq!(doc["photos"][1]["fileName"], "gradient.png");
    assert_eq!(doc["photos"][1]["usable"], false);
    assert!(
        doc["summary"]["reasons"]
            .to_string()
            .contains("1 usable photos: training needs at least 4"),
        "{doc}"
    );
    let unknown = vet("nobody");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no identity named \"nobody\""));

    let listed = photos(&["list", "--json"]);
    assert!(listed.status.success());
    let doc: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = doc["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["fileName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["astronaut.png", "gradient.png"]);

    let removed = photos(&["remove", "gradient.png"]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert_eq!(photos(&["remove", "gradient.png"]).status.code(), Some(2));
    let listed = text(&photos(&["list"]).stdout);
    assert!(
        listed.contains("astronaut.png: one face") && !listed.contains("gradient.png"),
        "{listed}"
    );

    // Three more usable photos: nothing blocked (exit 0), and the set may train.
    let more = crate::identity_photos::usable_variants(dir.path());
    let mut args = vec!["add"];
    args.extend(more.iter().map(|p| p.to_str().unwrap()));
    let added = photos(&args);
    assert!(added.status.success(), "{}", text(&added.stdout));
    assert!(text(&added.stdout).contains("verdict: warn"));
    let ready = vet("eileen");
    assert!(ready.status.success(), "{}", text(&ready.stderr));
    let doc: Value = serde_json::from_slice(&ready.stdout).unwrap();
    assert_eq!(
        (doc["verdict"].as_str(), doc["usablePhotos"].as_u64()),
        (Some("warn"), Some(4)),
        "{doc}"
    );
}
