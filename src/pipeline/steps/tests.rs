//! Pins the content key every step computes for a fixed input: caches of existing data folders must keep
//! hitting, so a change here is a change of every stored key.

use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::domain::{Identity, Project};
use crate::media::captions::WordTiming;
use crate::pipeline::keys::content_key;
use crate::pipeline::report::{Event, Progress};
use crate::pipeline::{RenderOptions, RenderPlan};
use crate::project_file::ProjectFile;
use crate::providers::local::EspeakSpeech;
use crate::providers::{AvatarRequest, ProviderError};
use crate::storage::db::Db;
use crate::storage::objects::ObjectStorage;

struct Quiet;

impl Progress for Quiet {
    fn on(&self, _event: &Event) {}
}

struct FakeAvatar;

#[async_trait]
impl TalkingAvatar for FakeAvatar {
    fn name(&self) -> &str {
        "fake-avatar"
    }
    fn key_params(&self, req: &AvatarRequest) -> Value {
        json!({ "prompt": req.prompt, "speech": req.speech_seconds, "tail": req.tail_seconds })
    }
    async fn speak(
        &self,
        _req: &AvatarRequest,
        _work_dir: &Path,
        _job: &JobCtx,
    ) -> Result<PathBuf, ProviderError> {
        Err(ProviderError::Invalid("not in this test".into()))
    }
}

fn plan(animation: Animation) -> RenderPlan {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo.toml");
    let file = ProjectFile::load(&demo).unwrap();
    let identity: Identity = file.identities[0].identity.clone();
    let mut scene = file.scenes[0].scene.clone();
    scene.animation = animation;
    let project: Project = file.project;
    RenderPlan {
        project_id: "p".into(),
        project,
        scenes: vec![PlannedScene {
            id: "s".into(),
            scene,
            identity,
            scene_headshot: None,
            identity_headshot: None,
        }],
    }
}

fn words() -> Vec<WordTiming> {
    vec![WordTiming {
        word: "Hi".into(),
        start: 0.1,
        end: 0.4,
    }]
}

fn output(role: &str, key: &str, seconds: f64, words: Vec<WordTiming>) -> StepOutput {
    StepOutput {
        objects: [(role.to_string(), key.to_string())].into(),
        duration_seconds: Some(seconds),
        words,
        mode: None,
    }
}

/// The content key of every node of a one-scene plan, with fixed dependency outputs.
async fn keys(avatar: Option<Arc<dyn TalkingAvatar>>, animation: Animation) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&Db::sqlite_url(dir.path())).await.unwrap();
    let objects = ObjectStorage::local(&dir.path().join("media")).unwrap();
    let mut providers = Providers::local();
    providers.speech = Arc::new(EspeakSpeech {
        voice: "en-us".into(),
        rate: 165,
    });
    providers.avatar = avatar;
    let pipeline = Pipeline::new(db, objects, providers, dir.path().into(), Arc::new(Quiet));
    let run = RunCtx {
        run_id: "r".into(),
        plan: plan(animation),
        options: RenderOptions::default(),
        reports: Default::default(),
        budget: None,
    };
    let deps: HashMap<NodeKey, StepOutput> = [
        (
            (Some(0), StepName::Audio),
            output("audio", "a.wav", 7.3, words()),
        ),
        (
            (Some(0), StepName::Image),
            output("image", "i.png", 0.0, vec![]),
        ),
        (
            (Some(0), StepName::Video),
            output("video", "v.mp4", 10.0, vec![]),
        ),
        (
            (Some(0), StepName::Lipsync),
            output("video", "l.mp4", 7.6, vec![]),
        ),
        (
            (Some(0), StepName::Finalize),
            output("video", "f.mp4", 7.6, words()),
        ),
    ]
    .into();
    let mut keys = Vec::new();
    for node in StepName::SCENE_STEPS
        .map(|s| (Some(0), s))
        .into_iter()
        .chain([(None, StepName::Assemble)])
    {
        let cx = StepCx {
            pipeline: &pipeline,
            run: &run,
            node,
            deps: &deps,
        };
        let p = step(node.1).prepare(&cx).await.unwrap();
        let inputs: Vec<&str> = p.inputs.iter().map(String::as_str).collect();
        keys.push(content_key(
            node.1.as_str(),
            &p.provider,
            &p.params,
            &inputs,
        ));
    }
    keys
}

#[tokio::test]
async fn content_keys_of_every_step_are_pinned() {
    let standard = keys(None, Animation::Standard).await;
    let fast = keys(Some(Arc::new(FakeAvatar)), Animation::Fast).await;
    // A `fast` scene without a talking-avatar provider is animated, and keyed, the standard way.
    assert_eq!(keys(None, Animation::Fast).await, standard);
    // The values the pipeline computed before its steps were split into modules (commit 1b0816a).
    assert_eq!(
        standard,
        [
            "fc10791deee39dab5d4d519a759ca58d7eef86869a6a270ced6846eebdbbede7",
            "edcee46f1c1eb1e1fe352962257be3f33a82636bf19c7b98d6a67decf181419f",
            "cdf13dc6f1520a8240900b1c1c1b047f6bc0d32912921f0ea74db8ff85555d6f",
            "93bfa934ca9c2424a3ce567cd7637ec821ebd493549d9ca8bfce5b9215a2aa72",
            "d329484c146f87479269303dbef78a2aa26caf7405e5c3b887b775554e94b588",
            "d1ef69f76f242d68c1a0babcc8c536df8dea2d1e6f98d2111922d04110d1d606",
        ]
    );
    assert_eq!(
        fast,
        [
            "fc10791deee39dab5d4d519a759ca58d7eef86869a6a270ced6846eebdbbede7",
            "edcee46f1c1eb1e1fe352962257be3f33a82636bf19c7b98d6a67decf181419f",
            "32954b9fd0ef4b0ea12c493809e49a42d408543ba0463e727a67e82078f46aa3",
            "ea2f059fddc756ce89afda0ed0434c12ec124671353a83df63dd5a1c73597540",
            "d329484c146f87479269303dbef78a2aa26caf7405e5c3b887b775554e94b588",
            "d1ef69f76f242d68c1a0babcc8c536df8dea2d1e6f98d2111922d04110d1d606",
        ]
    );
}
