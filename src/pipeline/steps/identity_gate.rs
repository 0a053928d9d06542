//! IMAGE's identity gate: a generated still of an identity with a face print is scored against the print; when
//! it does not look like the identity, new seeds are tried (and, from the second retry, a LoRA 0.05 stronger),
//! each attempt a paid job of its own (its own `JobCtx` key, ledger row and cost), and the best still is kept.
//! The project's [`IdentityGate`] says what happens when none passes. Every attempt and decision is logged under
//! `IDENTITY_ANCHOR` with its score.

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::StepCx;
use crate::domain::{IdentityGate, LogLevel, LogStep};
use crate::face::FacePrint;
use crate::pipeline::error::StepError;
use crate::pipeline::faces::FaceScore;
use crate::pipeline::mode::ModeDecision;
use crate::pipeline::{PlannedScene, StepOutput};
use crate::providers::{ImageRequest, JobCtx, JobState, ProviderJob};

/// The ledger "provider" under which finished attempts are recorded (their stored still), so a resumed step
/// never generates a finished attempt again.
const LEDGER: &str = "identity-gate";
/// How much stronger the LoRA is from the second retry on.
const SCALE_STEP: f64 = 0.05;

/// The gate as it applies to one scene's still.
pub(super) struct Gate<'a> {
    mode: IdentityGate,
    retries: u32,
    threshold: f64,
    print: &'a FacePrint,
    /// The identity's display name (messages).
    who: &'a str,
}

/// The gate of `s`'s still, when it applies: the identity has a face print, the project's gate is not off and
/// the still is generated (digital twin, or a portrait generated without a headshot).
pub(super) fn gate_for<'a>(
    cx: &StepCx<'_>,
    s: &'a PlannedScene,
    decision: &ModeDecision,
) -> Option<Gate<'a>> {
    let project = &cx.run.plan.project;
    let generated = decision.mode == "digital-twin"
        || (decision.headshot.is_none() && cx.providers().image.generates());
    let print = s.face_print.as_deref()?;
    (generated && project.identity_gate != IdentityGate::Off).then(|| Gate {
        mode: project.identity_gate,
        retries: project.identity_gate.retries(project.identity_retries),
        threshold: cx.pipeline.settings.face.threshold,
        print,
        who: &s.identity.display_name,
    })
}

/// The content address of a print: the hash of its centre (what scores are measured against).
pub(super) fn print_hash(print: &FacePrint) -> String {
    let centre = serde_json::to_string(&print.centre).unwrap_or_default();
    hex::encode(&Sha256::digest(centre.as_bytes())[..16])
}

impl Gate<'_> {
    /// What the gate adds to IMAGE's content key.
    pub(super) fn key_params(&self) -> Value {
        json!({
            "gate": self.mode.as_str(), "retries": self.retries, "threshold": self.threshold,
            "print": print_hash(self.print),
        })
    }

    /// Generates and scores stills until one passes or the retries are spent; returns IMAGE's output.
    pub(super) async fn generate(
        &self,
        cx: &StepCx<'_>,
        req: &ImageRequest,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, StepError> {
        let unscored = match cx.pipeline.faces.ready().await {
            Err(e) if e.is_installation() => Some(e.to_string()),
            _ => None,
        };
        let (mut best, mut tried): (Option<(u32, String, FaceScore)>, u32) = (None, 0);
        for n in 0..=self.retries {
            let attempt = attempt_request(req, job, n);
            let object = match run_attempt(cx, &attempt, n, work, job).await {
                Ok(object) => object,
                // A retry that cannot be paid for or fails: strict fails the scene; the others keep the best.
                Err(e) if n > 0 && self.mode != IdentityGate::Strict => {
                    let msg = format!("Identity gate: retry {n} failed ({e}); no more retries");
                    cx.log(LogStep::IdentityAnchor, LogLevel::Warn, "devatar", msg)
                        .await;
                    break;
                }
                Err(e) => return Err(e),
            };
            if let Some(why) = &unscored {
                let msg = format!("Identity gate skipped: the still cannot be scored ({why})");
                cx.log(LogStep::IdentityAnchor, LogLevel::Warn, "devatar", msg)
                    .await;
                return Ok(output(object, None));
            }
            let score = self.score(cx, &object).await?;
            tried += 1;
            self.log_attempt(cx, &attempt, n, &score).await;
            if best
                .as_ref()
                .is_none_or(|(_, _, b)| score.rank() < b.rank())
            {
                best = Some((n, object, score));
            }
            if score.passes(self.threshold) {
                break;
            }
        }
        let (n, object, score) =
            best.ok_or_else(|| StepError::Internal("the identity gate made no attempt".into()))?;
        self.decide(cx, n, tried, &score).await?;
        Ok(output(object, score.distance))
    }

    /// The score of a stored still; a still that cannot be read counts as showing no face (logged).
    async fn score(&self, cx: &StepCx<'_>, object: &str) -> Result<FaceScore, StepError> {
        let path = cx.path_of(object).await?;
        match cx.pipeline.faces.score(&path, self.print).await {
            Ok(score) => Ok(score),
            Err(e) => {
                let msg = format!(
                    "Identity gate: the still could not be scored ({e}); counted as failing"
                );
                cx.log(LogStep::IdentityAnchor, LogLevel::Warn, "devatar", msg)
                    .await;
                Ok(FaceScore::faceless())
            }
        }
    }

    async fn log_attempt(&self, cx: &StepCx<'_>, req: &ImageRequest, n: u32, score: &FaceScore) {
        let verdict = if score.passes(self.threshold) {
            format!("looks like {}", self.who)
        } else {
            format!("does not look like {}", self.who)
        };
        let scale = req
            .lora
            .as_ref()
            .map(|l| format!(", LoRA scale {:.3}", l.scale))
            .unwrap_or_default();
        let seed = req.seed.map(|s| format!(", seed {s}")).unwrap_or_default();
        let msg = format!(
            "Identity gate attempt {} of {}{seed}{scale}: {} · {} (threshold {:.2})",
            n + 1,
            self.retries + 1,
            verdict,
            score.describe(),
            self.threshold
        );
        cx.log(LogStep::IdentityAnchor, LogLevel::Info, "devatar", msg)
            .await;
    }

    /// The decision on the best still: keep it (a WARN when it fails), or fail the scene (`strict`).
    async fn decide(
        &self,
        cx: &StepCx<'_>,
        n: u32,
        tried: u32,
        score: &FaceScore,
    ) -> Result<(), StepError> {
        let shown = format!("{} (threshold {:.2})", score.describe(), self.threshold);
        if score.passes(self.threshold) {
            let msg = format!("Identity gate: keeping attempt {} · {shown}", n + 1);
            cx.log(LogStep::IdentityAnchor, LogLevel::Info, "devatar", msg)
                .await;
            return Ok(());
        }
        if self.mode == IdentityGate::Strict {
            let msg = format!(
                "Identity gate (strict): no still looked like {} after {tried} attempt(s); the best scored {shown}. \
                 The guide's remedies: raise the identity's LoRA scale to 0.95–1.0, check the trigger word, and \
                 retrain the LoRA with more varied photos",
                self.who
            );
            cx.log(
                LogStep::IdentityAnchor,
                LogLevel::Error,
                "devatar",
                msg.clone(),
            )
            .await;
            return Err(StepError::BadOutput(msg));
        }
        let msg = format!(
            "Identity gate ({}): no still looked like {} after {tried} attempt(s); going on with attempt {} · {shown}",
            self.mode.as_str(),
            self.who,
            n + 1
        );
        cx.log(LogStep::IdentityAnchor, LogLevel::Warn, "devatar", msg)
            .await;
        Ok(())
    }
}

/// IMAGE's output for a kept still.
fn output(object: String, distance: Option<f64>) -> StepOutput {
    let mut out = StepOutput::default();
    out.objects.insert("image".into(), object);
    out.identity_distance = distance;
    out
}

/// The context of attempt `n`: the step's own for the first, a derived key (`identity-n-` + content key) after.
fn attempt_job(job: &JobCtx, n: u32) -> JobCtx {
    if n == 0 {
        job.clone()
    } else {
        job.derived(&format!("identity-{n}"))
    }
}

/// Attempt `n`'s request: the first as planned; retries with a seed of their own, and from the second retry a
/// LoRA scale raised by 0.05 (never above 1.0).
pub(super) fn attempt_request(req: &ImageRequest, job: &JobCtx, n: u32) -> ImageRequest {
    let mut attempt = req.clone();
    if n >= 1 {
        attempt.seed = Some(seed_for(&job.key, n));
    }
    if n >= 2
        && let Some(lora) = &mut attempt.lora
    {
        lora.scale = ((lora.scale + SCALE_STEP).min(1.0) * 1000.0).round() / 1000.0;
    }
    attempt
}

/// A seed for attempt `n` of the step named `key` (Fal takes 0..4294967295).
fn seed_for(key: &str, n: u32) -> u64 {
    let digest = Sha256::digest(format!("{key}#identity-{n}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes) % 4_294_967_295
}

/// The still of attempt `n`: the one a finished attempt stored (no provider call), else a new one, stored and
/// recorded as finished.
async fn run_attempt(
    cx: &StepCx<'_>,
    req: &ImageRequest,
    n: u32,
    work: &Path,
    job: &JobCtx,
) -> Result<String, StepError> {
    let ajob = attempt_job(job, n);
    if let Some(done) = ajob.load(LEDGER).await.map_err(StepError::Storage)?
        && done.state == JobState::Completed
        && let Some(object) = done.data.get("object").and_then(Value::as_str)
        && cx
            .pipeline
            .objects
            .try_exists(object)
            .await
            .unwrap_or(false)
    {
        return Ok(object.to_string());
    }
    let dir = work.join(format!("attempt-{n}"));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| StepError::Internal(format!("work folder {}: {e}", dir.display())))?;
    let still = cx.providers().image.generate(req, &dir, &ajob).await?;
    let object = cx.store(&still, "png").await?;
    let record = ProviderJob {
        state: JobState::Completed,
        attempt: n + 1,
        remote_id: None,
        data: json!({ "object": object }),
        error: None,
    };
    ajob.save(LEDGER, &record)
        .await
        .map_err(StepError::Storage)?;
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::LoraRef;

    fn request(scale: f64) -> ImageRequest {
        ImageRequest {
            prompt: "TOK a person".into(),
            display_name: "T".into(),
            mood: None,
            headshot: None,
            lora: Some(LoraRef {
                url: "https://example.com/t.safetensors".into(),
                scale,
                base_model: "flux-dev".into(),
            }),
            width: 1280,
            height: 720,
            seed: None,
        }
    }

    #[test]
    fn retries_get_new_seeds_and_the_second_retry_a_stronger_lora() {
        let job = JobCtx::detached("content-key");
        let first = attempt_request(&request(0.925), &job, 0);
        assert_eq!((first.seed, first.lora.unwrap().scale), (None, 0.925));
        let one = attempt_request(&request(0.925), &job, 1);
        let two = attempt_request(&request(0.925), &job, 2);
        assert_eq!(one.lora.unwrap().scale, 0.925);
        assert_eq!(two.lora.unwrap().scale, 0.975);
        assert!(one.seed.is_some() && two.seed.is_some() && one.seed != two.seed);
        assert_eq!(
            attempt_request(&request(0.98), &job, 3).lora.unwrap().scale,
            1.0
        );
        assert_eq!(attempt_job(&job, 0).key, "content-key");
        assert_eq!(attempt_job(&job, 2).key, "identity-2-content-key");
    }
}
