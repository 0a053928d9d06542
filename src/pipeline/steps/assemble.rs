//! ASSEMBLE: every scene's FINALIZE clip joined with crossfades into the project video, with the project's
//! captions shifted by the crossfade offsets. The join reuses the parts the run's pre-joiner made while the
//! scenes rendered (`pipeline/prejoin.rs`), keyed by the same FINALIZE object keys this step's key holds.

use std::path::Path;

use async_trait::async_trait;
use serde_json::json;

use super::{EDITOR, Prepared, Step, StepCx, object, words_hash};
use crate::domain::StepName;
use crate::media::JoinClip;
use crate::media::captions::{WordTiming, cues, shifted, to_srt, to_vtt};
use crate::pipeline::error::StepError;
use crate::pipeline::{CROSSFADE_SECONDS, StepOutput};
use crate::providers::JobCtx;

/// The ASSEMBLE step (one per project, no scene).
pub(super) struct Assemble;

impl StepCx<'_> {
    /// The node is the project's, not a scene's.
    fn project_node(&self) -> Result<(), StepError> {
        match self.node.0 {
            None => Ok(()),
            Some(_) => Err(StepError::Internal(format!(
                "no such step {:?} for this node",
                self.node.1
            ))),
        }
    }
}

#[async_trait]
impl Step for Assemble {
    async fn prepare(&self, cx: &StepCx<'_>) -> Result<Prepared, StepError> {
        cx.project_node()?;
        let d = cx.delivery();
        let mut inputs = Vec::new();
        for i in 0..cx.run.plan.scenes.len() {
            let f = cx.dep_in(Some(i), StepName::Finalize)?;
            inputs.push(object(f, "video")?.to_string());
            inputs.push(words_hash(&f.words));
        }
        Ok(Prepared {
            provider: EDITOR.into(),
            params: json!({ "crossfade": CROSSFADE_SECONDS, "delivery": [d.width, d.height, d.fps, d.sample_rate] }),
            inputs,
        })
    }

    async fn execute(
        &self,
        cx: &StepCx<'_>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError> {
        cx.project_node()?;
        let mut clips = Vec::new();
        let mut words_per_scene = Vec::new();
        for i in 0..cx.run.plan.scenes.len() {
            let f = cx.dep_in(Some(i), StepName::Finalize)?;
            let key = object(f, "video")?;
            let path = cx.path_of(key).await?;
            clips.push((path, f.duration_seconds.unwrap_or(0.0), key));
            words_per_scene.push(f.words.clone());
        }
        let inputs: Vec<JoinClip> = clips
            .iter()
            .map(|(path, seconds, id)| JoinClip {
                path,
                seconds: *seconds,
                id,
            })
            .collect();
        let project_path = work.join("project.mp4");
        let parts = cx.run.prejoin.parts();
        let ready = parts.made();
        let joined = cx
            .media()
            .join_with_crossfades(&inputs, &project_path, &cx.delivery(), parts)
            .await?;
        if joined.spliced && ready > 0 {
            job.note(format!(
                "{ready} probes and parts of the join were made while the scenes rendered, and the audio of {} \
                 scenes encoded; {} parts now",
                parts.audio_fed_ahead(),
                parts.made().saturating_sub(ready)
            ));
        }
        let all_words: Vec<WordTiming> = words_per_scene
            .iter()
            .zip(&joined.offsets)
            .flat_map(|(w, off)| shifted(w, *off))
            .collect();
        let c = cues(&all_words);
        crate::failpoint::hit(crate::failpoint::MID_ASSEMBLE);
        let mut out = StepOutput::default();
        out.objects
            .insert("video".into(), cx.store(&project_path, "mp4").await?);
        out.objects
            .insert("srt".into(), cx.store_text(to_srt(&c), "srt").await?);
        out.objects
            .insert("vtt".into(), cx.store_text(to_vtt(&c), "vtt").await?);
        out.duration_seconds = Some(joined.info.duration);
        out.words = all_words;
        Ok(out)
    }
}
