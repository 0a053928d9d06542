//! FINALIZE's identity score: frames sampled from the final clip are scored against the identity's face print;
//! each frame counts its face closest to the print (another detection is a bystander or a false positive), the
//! step records the worst and the median distance and WARNs when a frame shows no face or does not look like the
//! identity (drift brought in by video generation or lip-sync). Scoring never fails the step.

use std::path::Path;

use serde_json::{Value, json};

use super::StepCx;
use super::identity_gate::print_hash;
use crate::domain::{IdentityGate, LogLevel, LogStep};
use crate::face::FacePrint;
use crate::pipeline::error::StepError;
use crate::pipeline::faces::{FaceScore, worst_and_median};

/// Where frames are sampled, as fractions of the clip's length.
const SAMPLES: [f64; 3] = [0.2, 0.5, 0.8];

/// The identity score of one scene's final clip.
pub(super) struct ClipScore<'a> {
    threshold: f64,
    print: &'a FacePrint,
    who: &'a str,
}

/// The clip score of this node's scene, when it applies: the identity has a face print and the project's
/// identity gate is not off.
pub(super) fn clip_score_for<'a>(cx: &StepCx<'a>) -> Result<Option<ClipScore<'a>>, StepError> {
    let s = cx.scene()?;
    let Some(print) = s.face_print.as_deref() else {
        return Ok(None);
    };
    if cx.run.plan.project.identity_gate == IdentityGate::Off {
        return Ok(None);
    }
    Ok(Some(ClipScore {
        threshold: cx.pipeline.settings.face.threshold,
        print,
        who: &s.identity.display_name,
    }))
}

impl ClipScore<'_> {
    /// What the score adds to FINALIZE's content key.
    pub(super) fn key_params(&self) -> Value {
        json!({ "print": print_hash(self.print), "threshold": self.threshold, "samples": SAMPLES })
    }

    /// The worst and median distance of frames sampled from `clip` (`duration` seconds long), logged; `None`
    /// when nothing could be scored (models missing, no frame with a face) — logged too.
    pub(super) async fn score(
        &self,
        cx: &StepCx<'_>,
        clip: &Path,
        duration: f64,
        work: &Path,
    ) -> Option<(f64, f64)> {
        let times: Vec<f64> = SAMPLES.iter().map(|f| f * duration).collect();
        let scores = match self.frame_scores(cx, clip, &times, work).await {
            Ok(scores) => scores,
            Err(why) => {
                let msg = format!("FINALIZE identity score skipped: {why}");
                cx.log(LogStep::IdentityAnchor, LogLevel::Warn, "devatar", msg)
                    .await;
                return None;
            }
        };
        let result = worst_and_median(&scores);
        let (level, msg) = self.summary(&times, &scores, result);
        cx.log(LogStep::IdentityAnchor, level, "devatar", msg).await;
        result
    }

    async fn frame_scores(
        &self,
        cx: &StepCx<'_>,
        clip: &Path,
        times: &[f64],
        work: &Path,
    ) -> Result<Vec<FaceScore>, String> {
        let faces = &cx.pipeline.faces;
        faces.ready().await.map_err(|e| e.to_string())?;
        let dir = work.join("frames");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("work folder {}: {e}", dir.display()))?;
        let frames = cx
            .media()
            .frames(clip, &dir, times)
            .await
            .map_err(|e| format!("cannot sample frames: {e}"))?;
        faces
            .score_frames(&frames, self.print)
            .await
            .map_err(|e| e.to_string())
    }

    /// The log line of a scored clip, WARN when a frame does not look like the identity.
    fn summary(
        &self,
        times: &[f64],
        scores: &[FaceScore],
        result: Option<(f64, f64)>,
    ) -> (LogLevel, String) {
        let frames: Vec<String> = times
            .iter()
            .zip(scores)
            .map(|(t, s)| format!("{t:.2} s {}", s.describe_frame()))
            .collect();
        let failing = scores
            .iter()
            .filter(|s| !s.frame_passes(self.threshold))
            .count();
        let verdict = match result {
            Some((worst, median)) => format!("worst {worst:.3}, median {median:.3}"),
            None => "no frame shows a face".into(),
        };
        let level = if failing > 0 {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        let looks = if failing > 0 {
            format!("{failing} of {} frames do not look like", scores.len())
        } else {
            "looks like".into()
        };
        let msg = format!(
            "FINALIZE identity score: {looks} {} · {verdict} (frames at {}; threshold {:.2})",
            self.who,
            frames.join(", "),
            self.threshold
        );
        (level, msg)
    }
}
