//! What each step does: its content-key inputs (`prepare`) and its work (`execute_step`).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::keys::duration_bucket;
use super::mode::{ModeDecision, ModeInputs, select_mode};
use super::runner::{NodeKey, Pipeline, Prepared, RunCtx};
use super::{CROSSFADE_SECONDS, PlannedScene, SCENE_TAIL_SECONDS, StepOutput};
use crate::domain::{
    Animation, GenerationMode, LogLevel, LogStep, StepName, image_prompt, lora_scale_for,
    video_prompt,
};
use crate::lora::{InspectOptions, inspect_url};
use crate::media::captions::{WordTiming, cues, estimate_word_timings, shifted, to_srt, to_vtt};
use crate::media::edit::{Delivery, join_with_crossfades, normalize, thumbnail};
use crate::media::probe;
use crate::net::FetchGuard;
use crate::providers::local::FPS;
use crate::providers::{
    AvatarRequest, ImageRequest, InputUrls, JobCtx, JobState, LipSyncRequest, LoraRef, ProviderJob,
    SpeechRequest, TalkingAvatar, VideoRequest,
};

/// Provider id of our own ffmpeg edits (FINALIZE, ASSEMBLE).
const EDITOR: &str = "ffmpeg";
const AUDIO_RATE: u32 = 48_000;

fn dep(
    deps: &HashMap<NodeKey, StepOutput>,
    scene: Option<usize>,
    step: StepName,
) -> Result<&StepOutput, String> {
    deps.get(&(scene, step))
        .ok_or_else(|| format!("missing {} output", step.as_str()))
}

fn object<'a>(out: &'a StepOutput, role: &str) -> Result<&'a str, String> {
    out.object(role)
        .ok_or_else(|| format!("output has no {role} object"))
}

/// The job-ledger entry (per step) that holds when the step's input URLs were signed.
const SIGNED_INPUTS: &str = "signed-inputs";

/// When to sign a step's input URLs: the time recorded for the step while a URL signed then still has at least
/// three quarters of its lifetime `ttl` left, otherwise `now` (recorded, whole seconds). Signing again at the
/// recorded time gives the same URLs, so a provider request repeated after a restart has the same body (Sync
/// replays an uncertain submit by `Idempotency-Key` only for an identical body, PROVIDERS.md §6 row 22),
/// while a provider never gets a URL with less than three quarters of `ttl` to live.
async fn signing_time(job: &JobCtx, ttl: Duration, now: SystemTime) -> Result<SystemTime, String> {
    let recorded = job
        .load(SIGNED_INPUTS)
        .await?
        .and_then(|j| j.data.get("signedAt").and_then(serde_json::Value::as_u64))
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
    let fresh = |at: SystemTime| match now.duration_since(at) {
        Ok(age) => age < ttl / 4,
        // Recorded by a worker whose clock runs a little ahead.
        Err(ahead) => ahead.duration() < Duration::from_secs(300),
    };
    if let Some(at) = recorded.filter(|at| fresh(*at)) {
        return Ok(at);
    }
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_string())?
        .as_secs();
    let entry = ProviderJob {
        state: JobState::Completed,
        attempt: 0,
        remote_id: None,
        data: json!({ "signedAt": secs }),
        error: None,
    };
    job.save(SIGNED_INPUTS, &entry).await?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

fn words_hash(words: &[WordTiming]) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_string(words).unwrap_or_default().as_bytes(),
    ))
}

fn speech_request(s: &PlannedScene) -> SpeechRequest {
    let i = &s.identity;
    SpeechRequest {
        text: s.scene.dialogue.clone(),
        voice_id: i.voice_id.clone(),
        voice_model: i.voice_model.clone(),
        stability: i.voice_stability,
        similarity: i.voice_similarity,
        style: i.voice_style,
        speaker_boost: i.voice_speaker_boost,
    }
}

/// Provider id of the LIPSYNC step of a `fast` scene, whose VIDEO already speaks.
const PASSTHROUGH: &str = "passthrough";

fn avatar_request(
    s: &PlannedScene,
    image: &Path,
    audio: &Path,
    speech_seconds: f64,
) -> AvatarRequest {
    AvatarRequest {
        image: image.to_path_buf(),
        audio: audio.to_path_buf(),
        prompt: video_prompt(&s.scene),
        speech_seconds,
        tail_seconds: SCENE_TAIL_SECONDS,
        urls: InputUrls::default(),
    }
}

impl Pipeline {
    /// The talking-avatar provider when this scene is animated in one step (`fast`, and one is configured).
    fn one_step_avatar(&self, s: &PlannedScene) -> Option<&std::sync::Arc<dyn TalkingAvatar>> {
        match s.scene.animation {
            Animation::Fast => self.providers.avatar.as_ref(),
            Animation::Standard => None,
        }
    }

    fn delivery(ctx: &RunCtx) -> Delivery {
        let (width, height) = ctx.plan.project.aspect_ratio.frame_size();
        Delivery {
            width,
            height,
            fps: FPS,
            sample_rate: AUDIO_RATE,
            crossfade: CROSSFADE_SECONDS,
        }
    }

    /// The LoRA header check for digital twin mode, once per URL per pipeline (only when it matters).
    async fn lora_check(&self, s: &PlannedScene) -> Result<(), String> {
        let Some(url) = &s.identity.lora_url else {
            return Ok(());
        };
        if !self.providers.image.supports_lora()
            || s.scene.generation_mode == GenerationMode::Standard
        {
            return Ok(());
        }
        let cache_key = format!(
            "{url}\n{}\n{}",
            s.identity.base_model.as_str(),
            s.identity.trigger_word
        );
        let mut checks = self.lora_checks.lock().await;
        if let Some(done) = checks.get(&cache_key) {
            return done.clone();
        }
        let opts = InspectOptions {
            trigger_word: Some(s.identity.trigger_word.clone()),
            base_model: Some(s.identity.base_model.as_str().into()),
        };
        let result = match inspect_url(
            &FetchGuard::new(self.settings.allow_private_urls),
            url,
            &opts,
        )
        .await
        {
            Ok(report) if report.ok() => Ok(()),
            Ok(report) => Err(report.errors.join("; ")),
            Err(e) => Err(e.to_string()),
        };
        checks.insert(cache_key, result.clone());
        result
    }

    async fn mode(&self, s: &PlannedScene) -> ModeDecision {
        let lora_check = self.lora_check(s).await;
        select_mode(&ModeInputs {
            requested: s.scene.generation_mode,
            identity: &s.identity.name,
            has_lora: s.identity.lora_url.is_some(),
            lora_provider: self.providers.image.supports_lora(),
            lora_check,
            scene_headshot: s.scene_headshot.as_deref(),
            identity_headshot: s.identity_headshot.as_deref(),
            generator: self.providers.image.generates(),
        })
    }

    async fn image_request(
        &self,
        ctx: &RunCtx,
        s: &PlannedScene,
        decision: &ModeDecision,
    ) -> Result<ImageRequest, String> {
        let (width, height) = ctx.plan.project.aspect_ratio.frame_size();
        let headshot = match &decision.headshot {
            Some(key) => Some(
                self.objects
                    .local_path(key)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let lora = match (decision.mode, &s.identity.lora_url) {
            ("digital-twin", Some(url)) => Some(LoraRef {
                url: url.clone(),
                scale: lora_scale_for(s.identity.lora_scale, s.scene.camera.as_deref()),
                base_model: s.identity.base_model.as_str().into(),
            }),
            _ => None,
        };
        Ok(ImageRequest {
            prompt: image_prompt(&s.identity, &s.scene),
            display_name: s.identity.display_name.clone(),
            mood: s.scene.mood_lighting.clone(),
            headshot,
            lora,
            width,
            height,
        })
    }

    fn video_request(
        ctx: &RunCtx,
        s: &PlannedScene,
        image: &Path,
        speech_seconds: f64,
    ) -> VideoRequest {
        let (width, height) = ctx.plan.project.aspect_ratio.frame_size();
        VideoRequest {
            image: image.to_path_buf(),
            prompt: video_prompt(&s.scene),
            camera: s.scene.camera.clone(),
            movement: s.scene.movement.clone(),
            duration_seconds: duration_bucket(speech_seconds),
            width,
            height,
            urls: InputUrls::default(),
        }
    }

    /// Presigned URLs of input objects when media live in a bucket (empty for the local folder), valid for the
    /// storage's provider TTL so a queued job can still fetch them. They are signed at the step's recorded
    /// signing time ([`signing_time`]), so a step resumed after a crash sends byte-identical URLs. Errors never
    /// carry a URL.
    async fn input_urls(
        &self,
        job: &JobCtx,
        image: Option<&str>,
        video: Option<&str>,
        audio: Option<&str>,
    ) -> Result<InputUrls, String> {
        if !self.objects.presigns() {
            return Ok(InputUrls::default());
        }
        let ttl = self.objects.presign_ttl();
        let signed_at = signing_time(job, ttl, SystemTime::now()).await?;
        let mut urls = [None, None, None];
        for (url, key) in urls.iter_mut().zip([image, video, audio]) {
            if let Some(key) = key {
                *url = self
                    .objects
                    .presigned_get_at(key, ttl, signed_at)
                    .map_err(|e| format!("presigning an input for the provider: {e}"))?;
            }
        }
        let [image, video, audio] = urls;
        Ok(InputUrls {
            image,
            video,
            audio,
        })
    }

    /// The provider, parameters and input objects of a step (its content key), without doing the work.
    pub(super) async fn prepare(
        &self,
        ctx: &RunCtx,
        node: NodeKey,
        deps: &HashMap<NodeKey, StepOutput>,
    ) -> Result<Prepared, String> {
        let p = &self.providers;
        let d = Self::delivery(ctx);
        let (i, step) = node;
        let scene = i.map(|i| &ctx.plan.scenes[i]);
        match (scene, step) {
            (Some(s), StepName::Audio) => Ok(Prepared {
                provider: p.speech.name().into(),
                params: p.speech.key_params(&speech_request(s)),
                inputs: vec![],
            }),
            (Some(s), StepName::Image) => {
                let decision = self.mode(s).await;
                for (degraded, reason) in &decision.reasons {
                    let level = if *degraded {
                        LogLevel::Warn
                    } else {
                        LogLevel::Info
                    };
                    self.log(
                        ctx,
                        node,
                        LogStep::IdentityAnchor,
                        level,
                        "devatar",
                        reason.clone(),
                        None,
                    )
                    .await;
                }
                let req = self.image_request(ctx, s, &decision).await?;
                let mut params = p.image.key_params(&req);
                params["mode"] = json!(decision.mode);
                Ok(Prepared {
                    provider: p.image.name().into(),
                    params,
                    inputs: decision.headshot.into_iter().collect(),
                })
            }
            (Some(s), StepName::Video) => {
                let image = object(dep(deps, i, StepName::Image)?, "image")?;
                let audio = dep(deps, i, StepName::Audio)?;
                let speech = audio.duration_seconds.unwrap_or(0.0);
                if let Some(avatar) = self.one_step_avatar(s) {
                    let req = avatar_request(s, Path::new(image), Path::new(""), speech);
                    let mut params = avatar.key_params(&req);
                    params["animation"] = json!("fast");
                    return Ok(Prepared {
                        provider: avatar.name().into(),
                        params,
                        inputs: vec![image.into(), object(audio, "audio")?.into()],
                    });
                }
                if s.scene.animation == Animation::Fast {
                    self.log(
                        ctx,
                        node,
                        LogStep::VideoGeneration,
                        LogLevel::Info,
                        "devatar",
                        "fast animation needs a talking-avatar provider (FAL_KEY): animating with image-to-video \
                         and lip-sync instead"
                            .into(),
                        None,
                    )
                    .await;
                }
                let req = Self::video_request(ctx, s, Path::new(image), speech);
                Ok(Prepared {
                    provider: p.video.name().into(),
                    params: p.video.key_params(&req),
                    inputs: vec![image.into()],
                })
            }
            (Some(s), StepName::Lipsync) if self.one_step_avatar(s).is_some() => {
                let video = object(dep(deps, i, StepName::Video)?, "video")?;
                Ok(Prepared {
                    provider: PASSTHROUGH.into(),
                    params: json!({}),
                    inputs: vec![video.into()],
                })
            }
            (Some(_), StepName::Lipsync) => {
                let video = object(dep(deps, i, StepName::Video)?, "video")?;
                let audio = dep(deps, i, StepName::Audio)?;
                let req = LipSyncRequest {
                    video: video.into(),
                    audio: object(audio, "audio")?.into(),
                    speech_seconds: audio.duration_seconds.unwrap_or(0.0),
                    tail_seconds: SCENE_TAIL_SECONDS,
                    urls: InputUrls::default(),
                };
                Ok(Prepared {
                    provider: p.lipsync.name().into(),
                    params: p.lipsync.key_params(&req),
                    inputs: vec![video.into(), object(audio, "audio")?.into()],
                })
            }
            (Some(_), StepName::Finalize) => {
                let video = object(dep(deps, i, StepName::Lipsync)?, "video")?;
                let words = &dep(deps, i, StepName::Audio)?.words;
                Ok(Prepared {
                    provider: EDITOR.into(),
                    params: json!({ "burnCaptions": ctx.options.burn_captions, "delivery": [d.width, d.height, d.fps, d.sample_rate] }),
                    inputs: vec![video.into(), words_hash(words)],
                })
            }
            (None, StepName::Assemble) => {
                let mut inputs = Vec::new();
                for i in 0..ctx.plan.scenes.len() {
                    let f = dep(deps, Some(i), StepName::Finalize)?;
                    inputs.push(object(f, "video")?.to_string());
                    inputs.push(words_hash(&f.words));
                }
                Ok(Prepared {
                    provider: EDITOR.into(),
                    params: json!({ "crossfade": CROSSFADE_SECONDS, "delivery": [d.width, d.height, d.fps, d.sample_rate] }),
                    inputs,
                })
            }
            _ => Err(format!("no such step {step:?} for this node")),
        }
    }

    async fn path_of(&self, key: &str) -> Result<std::path::PathBuf, String> {
        self.objects
            .local_path(key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn store(&self, path: &Path, ext: &str) -> Result<String, String> {
        self.objects
            .put_file(path, ext)
            .await
            .map(|o| o.key)
            .map_err(|e| e.to_string())
    }

    async fn store_text(&self, text: String, ext: &str) -> Result<String, String> {
        self.objects
            .put_bytes(text.into_bytes(), ext)
            .await
            .map(|o| o.key)
            .map_err(|e| e.to_string())
    }

    /// Does the step's work in `work`, stores its outputs and returns the manifest.
    pub(super) async fn execute_step(
        &self,
        ctx: &RunCtx,
        node: NodeKey,
        deps: &HashMap<NodeKey, StepOutput>,
        work: &Path,
        job: &JobCtx,
    ) -> Result<StepOutput, String> {
        let p = &self.providers;
        let d = Self::delivery(ctx);
        let (i, step) = node;
        let scene = i.map(|i| &ctx.plan.scenes[i]);
        let mut out = StepOutput::default();
        match (scene, step) {
            (Some(s), StepName::Audio) => {
                let speech = p
                    .speech
                    .synthesize(&speech_request(s), work, job)
                    .await
                    .map_err(|e| e.to_string())?;
                let info = probe(&speech.audio).await.map_err(|e| e.to_string())?;
                let ext = speech
                    .audio
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("wav")
                    .to_string();
                out.objects
                    .insert("audio".into(), self.store(&speech.audio, &ext).await?);
                out.words = speech
                    .words
                    .unwrap_or_else(|| estimate_word_timings(&s.scene.dialogue, info.duration));
                out.duration_seconds = Some(info.duration);
                if let Some(target) = s.scene.target_duration
                    && (info.duration - target).abs() > 2.0
                {
                    let msg = format!(
                        "speech lasts {:.1} s but the target duration is {target:.1} s; the video follows the speech",
                        info.duration
                    );
                    self.log(
                        ctx,
                        node,
                        LogStep::AudioGeneration,
                        LogLevel::Warn,
                        p.speech.name(),
                        msg,
                        None,
                    )
                    .await;
                }
            }
            (Some(s), StepName::Image) => {
                let decision = self.mode(s).await;
                let req = self.image_request(ctx, s, &decision).await?;
                let still = p
                    .image
                    .generate(&req, work, job)
                    .await
                    .map_err(|e| e.to_string())?;
                out.objects
                    .insert("image".into(), self.store(&still, "png").await?);
                out.mode = Some(decision.mode.into());
            }
            (Some(s), StepName::Video) if self.one_step_avatar(s).is_some() => {
                let avatar = self
                    .one_step_avatar(s)
                    .ok_or("the talking-avatar provider went away")?;
                let image_key = object(dep(deps, i, StepName::Image)?, "image")?;
                let image = self.path_of(image_key).await?;
                let audio = dep(deps, i, StepName::Audio)?;
                let audio_key = object(audio, "audio")?;
                let audio_path = self.path_of(audio_key).await?;
                let mut req = avatar_request(
                    s,
                    &image,
                    &audio_path,
                    audio.duration_seconds.unwrap_or(0.0),
                );
                req.urls = self
                    .input_urls(job, Some(image_key), None, Some(audio_key))
                    .await?;
                let clip = avatar
                    .speak(&req, work, job)
                    .await
                    .map_err(|e| e.to_string())?;
                let info = probe(&clip).await.map_err(|e| e.to_string())?;
                if info.duration + 0.05 < req.speech_seconds {
                    return Err(format!(
                        "talking-avatar output ({:.2} s) is shorter than the speech ({:.2} s)",
                        info.duration, req.speech_seconds
                    ));
                }
                out.objects
                    .insert("video".into(), self.store(&clip, "mp4").await?);
                out.duration_seconds = Some(info.duration);
            }
            (Some(s), StepName::Video) => {
                let image_key = object(dep(deps, i, StepName::Image)?, "image")?;
                let image = self.path_of(image_key).await?;
                let speech = dep(deps, i, StepName::Audio)?
                    .duration_seconds
                    .unwrap_or(0.0);
                let mut req = Self::video_request(ctx, s, &image, speech);
                req.urls = self.input_urls(job, Some(image_key), None, None).await?;
                let clip = p
                    .video
                    .animate(&req, work, job)
                    .await
                    .map_err(|e| e.to_string())?;
                out.objects
                    .insert("video".into(), self.store(&clip, "mp4").await?);
                out.duration_seconds = Some(f64::from(req.duration_seconds));
            }
            (Some(s), StepName::Lipsync) if self.one_step_avatar(s).is_some() => {
                // The avatar clip already speaks and is fitted to the speech: hand it on unchanged.
                let spoken = dep(deps, i, StepName::Video)?;
                out.objects
                    .insert("video".into(), object(spoken, "video")?.to_string());
                out.duration_seconds = spoken.duration_seconds;
            }
            (Some(_), StepName::Lipsync) => {
                let audio = dep(deps, i, StepName::Audio)?;
                let video_key = object(dep(deps, i, StepName::Video)?, "video")?;
                let audio_key = object(audio, "audio")?;
                let req = LipSyncRequest {
                    video: self.path_of(video_key).await?,
                    audio: self.path_of(audio_key).await?,
                    speech_seconds: audio.duration_seconds.unwrap_or(0.0),
                    tail_seconds: SCENE_TAIL_SECONDS,
                    urls: self
                        .input_urls(job, None, Some(video_key), Some(audio_key))
                        .await?,
                };
                let clip = p
                    .lipsync
                    .apply(&req, work, job)
                    .await
                    .map_err(|e| e.to_string())?;
                let info = probe(&clip).await.map_err(|e| e.to_string())?;
                if info.duration + 0.05 < req.speech_seconds {
                    return Err(format!(
                        "lip-sync output ({:.2} s) is shorter than the speech ({:.2} s)",
                        info.duration, req.speech_seconds
                    ));
                }
                out.objects
                    .insert("video".into(), self.store(&clip, "mp4").await?);
                out.duration_seconds = Some(info.duration);
            }
            (Some(_), StepName::Finalize) => {
                let input = self
                    .path_of(object(dep(deps, i, StepName::Lipsync)?, "video")?)
                    .await?;
                let words = dep(deps, i, StepName::Audio)?.words.clone();
                let c = cues(&words);
                let srt = to_srt(&c);
                let srt_path = work.join("captions.srt");
                tokio::fs::write(&srt_path, &srt)
                    .await
                    .map_err(|e| e.to_string())?;
                let final_path = work.join("scene.mp4");
                let burn = ctx.options.burn_captions.then_some(srt_path.as_path());
                let info = normalize(&input, &final_path, &d, burn)
                    .await
                    .map_err(|e| e.to_string())?;
                let thumb = work.join("thumb.jpg");
                thumbnail(&final_path, &thumb, (info.duration / 2.0).min(1.0))
                    .await
                    .map_err(|e| e.to_string())?;
                out.objects
                    .insert("video".into(), self.store(&final_path, "mp4").await?);
                out.objects
                    .insert("thumbnail".into(), self.store(&thumb, "jpg").await?);
                out.objects
                    .insert("srt".into(), self.store_text(srt, "srt").await?);
                out.objects
                    .insert("vtt".into(), self.store_text(to_vtt(&c), "vtt").await?);
                out.duration_seconds = Some(info.duration);
                out.words = words;
            }
            (None, StepName::Assemble) => {
                let mut clips = Vec::new();
                let mut words_per_scene = Vec::new();
                for i in 0..ctx.plan.scenes.len() {
                    let f = dep(deps, Some(i), StepName::Finalize)?;
                    let path = self.path_of(object(f, "video")?).await?;
                    clips.push((path, f.duration_seconds.unwrap_or(0.0)));
                    words_per_scene.push(f.words.clone());
                }
                let inputs: Vec<(&Path, f64)> =
                    clips.iter().map(|(p, d)| (p.as_path(), *d)).collect();
                let project_path = work.join("project.mp4");
                let joined = join_with_crossfades(&inputs, &project_path, &d, &work.join("splice"))
                    .await
                    .map_err(|e| e.to_string())?;
                let info = joined.info;
                let all_words: Vec<WordTiming> = words_per_scene
                    .iter()
                    .zip(&joined.offsets)
                    .flat_map(|(w, off)| shifted(w, *off))
                    .collect();
                let c = cues(&all_words);
                out.objects
                    .insert("video".into(), self.store(&project_path, "mp4").await?);
                out.objects
                    .insert("srt".into(), self.store_text(to_srt(&c), "srt").await?);
                out.objects
                    .insert("vtt".into(), self.store_text(to_vtt(&c), "vtt").await?);
                out.duration_seconds = Some(info.duration);
                out.words = all_words;
            }
            _ => return Err(format!("no such step {step:?} for this node")),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::providers::JobLedger;

    #[derive(Default)]
    struct MemLedger(Mutex<HashMap<(String, String), ProviderJob>>);

    #[async_trait]
    impl JobLedger for MemLedger {
        async fn load(&self, key: &str, provider: &str) -> Result<Option<ProviderJob>, String> {
            let map = self.0.lock().map_err(|e| e.to_string())?;
            Ok(map.get(&(key.into(), provider.into())).cloned())
        }
        async fn save(&self, key: &str, provider: &str, job: &ProviderJob) -> Result<(), String> {
            let mut map = self.0.lock().map_err(|e| e.to_string())?;
            map.insert((key.into(), provider.into()), job.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn input_urls_keep_their_signing_time_until_a_quarter_of_their_life_is_gone() {
        let ledger: Arc<dyn JobLedger> = Arc::new(MemLedger::default());
        let job = JobCtx::new("step-a", ledger.clone());
        let ttl = Duration::from_secs(4000);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = signing_time(&job, ttl, t0 + Duration::from_millis(700))
            .await
            .unwrap();
        assert_eq!(first, t0, "whole seconds");
        // A restart within a quarter of the lifetime signs as at the same time, in any process.
        let again = JobCtx::new("step-a", ledger.clone());
        for later in [1, 999] {
            let at = signing_time(&again, ttl, t0 + Duration::from_secs(later))
                .await
                .unwrap();
            assert_eq!(at, t0);
        }
        // After that, or for another step, a new time.
        let renewed = t0 + Duration::from_secs(1000);
        assert_eq!(signing_time(&again, ttl, renewed).await.unwrap(), renewed);
        assert_eq!(
            signing_time(&again, ttl, renewed + Duration::from_secs(5))
                .await
                .unwrap(),
            renewed
        );
        let other = JobCtx::new("step-b", ledger);
        let t1 = renewed + Duration::from_secs(7);
        assert_eq!(signing_time(&other, ttl, t1).await.unwrap(), t1);
    }
}
