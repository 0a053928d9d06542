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
            speech_recording: None,
            background: None,
            identity_headshot: None,
            identity_lora: None,
            face_print: None,
        }],
        recorded: Default::default(),
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
        ..StepOutput::default()
    }
}

/// The content key of every node of a one-scene plan, with fixed dependency outputs.
async fn keys(
    avatar: Option<Arc<dyn TalkingAvatar>>,
    animation: Animation,
    talk: bool,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&Db::sqlite_url(dir.path())).await.unwrap();
    let objects = ObjectStorage::local(&dir.path().join("media")).unwrap();
    let mut providers = Providers::local();
    providers.speech = Arc::new(EspeakSpeech {
        voice: "en-us".into(),
        rate: 165,
    });
    providers.avatar = avatar;
    if !talk {
        // The keys pinned below are local-mux's (the default local lip-sync before local-talk).
        providers.lipsync = Arc::new(crate::providers::local::LocalMux);
    }
    let pipeline = Pipeline::new(
        db,
        objects,
        providers,
        dir.path().into(),
        Arc::new(Quiet),
        crate::pipeline::PipelineSettings::default(),
    );
    let (run_id, plan) = (crate::domain::RunId::from("r"), plan(animation));
    let prejoin = crate::pipeline::prejoin::PreJoin::new(
        pipeline.media.clone(),
        pipeline.objects.clone(),
        dir.path(),
        &run_id,
        &plan,
        false,
    );
    let run = RunCtx {
        run_id,
        plan,
        options: RenderOptions::default(),
        reports: Default::default(),
        budget: None,
        fingerprints: vec![String::new()],
        prejoin,
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
    let standard = keys(None, Animation::Standard, false).await;
    let fast = keys(Some(Arc::new(FakeAvatar)), Animation::Fast, false).await;
    // A `fast` scene without a talking-avatar provider is animated, and keyed, the standard way.
    assert_eq!(keys(None, Animation::Fast, false).await, standard);
    // local-talk renders from the still, so VIDEO makes only a stand-in clip, keyed apart from the full move; its
    // LIPSYNC (and so FINALIZE's and ASSEMBLE's inputs, once rendered) is keyed apart from local-mux's.
    let talk = keys(None, Animation::Standard, true).await;
    assert_eq!(talk[..2], standard[..2]);
    assert_ne!(talk[2], standard[2]);
    assert_ne!(talk[3], standard[3]);
    // The values a release build computed before the steps were split into modules (commit 1b0816a), so data
    // folders rendered by earlier versions keep their cache. (Test builds of 1b0816a computed other values:
    // a dev-dependency switches on serde_json's preserve_order, which reordered the key document; the key is
    // now canonical as a whole.)
    assert_eq!(
        standard,
        [
            "6f28ac80cd225ab092b42933e2b334d7c15e410e493970a81be95c1f1dc65000",
            "af7369026bfe492838a954d4ca9381e35e1c76d5fcc8c8f1ca6b9227b640d1f1",
            "f709a1892e3056a7fda743f170250c53acbf7cb4f341f4f64ad07ce15df57821",
            "3f351a75741e722737269b9b03e7a91fa89a24e28339f6ff496edd665ed30293",
            "9666bfb25e843b775e97be32044ed478f7c9137edecb8148fac1c5fc5a0a9b6f",
            "0b873c225ef70b14a3d61c83ce72fb2deea1d68b7dca26cd2e088bf3e632efa4",
        ]
    );
    assert_eq!(
        fast,
        [
            "6f28ac80cd225ab092b42933e2b334d7c15e410e493970a81be95c1f1dc65000",
            "af7369026bfe492838a954d4ca9381e35e1c76d5fcc8c8f1ca6b9227b640d1f1",
            "016c925bd77ecec6332ee522b519acc8fa6e1e05c511ad2b8e8783bf8cd2aeec",
            "3062c0343ee331f933ba7c4179c595b93dbed45a6f3401061dcfc1b80369a615",
            "9666bfb25e843b775e97be32044ed478f7c9137edecb8148fac1c5fc5a0a9b6f",
            "0b873c225ef70b14a3d61c83ce72fb2deea1d68b7dca26cd2e088bf3e632efa4",
        ]
    );
}
