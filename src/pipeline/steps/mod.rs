//! One module per step behind [`Step`]: each step owns its content-key inputs ([`Step::prepare`]), its work
//! ([`Step::execute`]) and the outputs it hands downstream. Adding a step means adding a module and its arm in
//! [`step`].

mod assemble;
mod audio;
mod finalize;
mod identity_gate;
mod identity_score;
mod image;
mod lipsync;
mod signing;
mod video;

pub(super) use image::lora_check_key;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::StepError;
use super::report::NodeKey;
use super::runner::{Pipeline, RunCtx};
use super::{CROSSFADE_SECONDS, PlannedScene, RenderPlan, StepOutput};
use crate::domain::{Animation, LogLevel, LogStep, StepName};
use crate::media::MediaEditor;
use crate::media::captions::WordTiming;
use crate::media::edit::Delivery;
use crate::providers::local::FPS;
use crate::providers::{JobCtx, Providers, TalkingAvatar};

/// Provider id of our own ffmpeg edits (FINALIZE, ASSEMBLE).
const EDITOR: &str = "ffmpeg";
/// Audio sample rate of scene and project videos.
const AUDIO_RATE: u32 = 48_000;

/// What a step will do, known before it runs: enough to compute its content key.
/// How the IMAGE and VIDEO log rows that carry the prompt sent to the provider begin.
pub const PROMPT_PREFIX: &str = "Prompt: ";

pub(super) struct Prepared {
    /// Provider id (part of the key, shown in logs).
    pub(super) provider: String,
    /// The parameters that change the output.
    pub(super) params: Value,
    /// Content addresses of the inputs.
    pub(super) inputs: Vec<String>,
}

/// One kind of pipeline step.
#[async_trait]
pub(super) trait Step: Sync {
    /// The provider, parameters and input objects of the step (its content key), without doing the work.
    async fn prepare(&self, cx: &StepCx<'_>) -> Result<Prepared, StepError>;
    /// Does the step's work in `work`, stores its outputs and returns the manifest.
    async fn execute(
        &self,
        cx: &StepCx<'_>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError>;
}

/// The implementation of a step.
pub(super) fn step(name: StepName) -> &'static dyn Step {
    match name {
        StepName::Audio => &audio::Audio,
        StepName::Image => &image::Image,
        StepName::Video => &video::Video,
        StepName::Lipsync => &lipsync::Lipsync,
        StepName::Finalize => &finalize::Finalize,
        StepName::Assemble => &assemble::Assemble,
    }
}

/// What a step sees of its node in one run: the pipeline, the run, and its dependencies' outputs.
pub(super) struct StepCx<'a> {
    /// The pipeline (providers, storage, logs).
    pub(super) pipeline: &'a Pipeline,
    /// The run.
    pub(super) run: &'a RunCtx,
    /// This node.
    pub(super) node: NodeKey,
    /// Outputs of the node's dependencies.
    pub(super) deps: &'a HashMap<NodeKey, StepOutput>,
}

impl<'a> StepCx<'a> {
    fn providers(&self) -> &'a Providers {
        &self.pipeline.providers
    }

    /// The pipeline's media editor (ffmpeg, or a test's fake).
    fn media(&self) -> &'a dyn MediaEditor {
        self.pipeline.media.as_ref()
    }

    /// The node's scene; scene steps have one.
    fn scene(&self) -> Result<&'a PlannedScene, StepError> {
        self.node
            .0
            .map(|i| &self.run.plan.scenes[i])
            .ok_or_else(|| {
                StepError::Internal(format!("no such step {:?} for this node", self.node.1))
            })
    }

    /// The output of `step` in this node's scene.
    fn dep(&self, step: StepName) -> Result<&'a StepOutput, StepError> {
        self.dep_in(self.node.0, step)
    }

    /// The output of `step` in `scene`.
    fn dep_in(&self, scene: Option<usize>, step: StepName) -> Result<&'a StepOutput, StepError> {
        self.deps
            .get(&(scene, step))
            .ok_or_else(|| StepError::Internal(format!("missing {} output", step.as_str())))
    }

    /// The talking-avatar provider when this scene is animated in one step (`fast`, and one is configured).
    fn one_step_avatar(&self, s: &PlannedScene) -> Option<&'a Arc<dyn TalkingAvatar>> {
        match s.scene.animation {
            Animation::Fast => self.providers().avatar.as_ref(),
            Animation::Standard => None,
        }
    }

    /// The project's frame size.
    fn frame_size(&self) -> (u32, u32) {
        self.run.plan.project.aspect_ratio.frame_size()
    }

    /// The delivery format of scene and project videos.
    fn delivery(&self) -> Delivery {
        delivery_of(&self.run.plan)
    }

    /// Writes a log row for this node; logging never fails a step.
    async fn log(&self, step: LogStep, level: LogLevel, provider: &str, message: String) {
        self.pipeline
            .logger(self.run, self.node)
            .row(step, level, provider, message, None)
            .await;
    }

    /// A local path of a stored object.
    async fn path_of(&self, key: &str) -> Result<PathBuf, StepError> {
        Ok(self.pipeline.objects.local_path(key).await?)
    }

    /// Stores a work file; returns its object key.
    async fn store(&self, path: &Path, ext: &str) -> Result<String, StepError> {
        Ok(self.pipeline.objects.put_file(path, ext).await?.key)
    }

    /// Stores a text; returns its object key.
    async fn store_text(&self, text: String, ext: &str) -> Result<String, StepError> {
        Ok(self
            .pipeline
            .objects
            .put_bytes(text.into_bytes(), ext)
            .await?
            .key)
    }
}

/// The delivery format of `plan`'s scene and project videos.
pub(super) fn delivery_of(plan: &RenderPlan) -> Delivery {
    let (width, height) = plan.project.aspect_ratio.frame_size();
    Delivery {
        width,
        height,
        fps: FPS,
        sample_rate: AUDIO_RATE,
        crossfade: CROSSFADE_SECONDS,
    }
}

/// The object of `role` in a step's output.
fn object<'o>(out: &'o StepOutput, role: &str) -> Result<&'o str, StepError> {
    out.object(role)
        .ok_or_else(|| StepError::Internal(format!("output has no {role} object")))
}

/// The content address of word timings (FINALIZE and ASSEMBLE inputs).
fn words_hash(words: &[WordTiming]) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_string(words).unwrap_or_default().as_bytes(),
    ))
}

/// Fails when `what`'s clip (`clip_seconds` long) is shorter than the speech.
fn ensure_covers_speech(
    what: &str,
    clip_seconds: f64,
    speech_seconds: f64,
) -> Result<(), StepError> {
    if clip_seconds + 0.05 < speech_seconds {
        return Err(StepError::BadOutput(format!(
            "{what} output ({clip_seconds:.2} s) is shorter than the speech ({speech_seconds:.2} s)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
