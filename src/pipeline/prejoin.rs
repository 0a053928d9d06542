//! Pre-joining: while a run's scenes still render, the project join's work for each finished scene — its
//! probe, its copied body, the crossfade pieces to its finished neighbours — is done in the background into
//! the run's [`SpliceParts`], so ASSEMBLE (same step, same content key, same outputs) finds most of it made
//! and after the last scene's FINALIZE only that scene's parts, the concatenation and the audio mux remain.
//!
//! Parts are keyed by the FINALIZE object keys they are made of, so a changed scene never meets a stale part;
//! they live in the run's work folder and only in this process (the one running the run, under its lease; a
//! run taken over elsewhere starts with none). Pre-joining starts with the first FINALIZE the run executes (a
//! run whose scenes all come from the cache will most likely find ASSEMBLE cached too), works one tool at a
//! time, and stops when the run ends or is cancelled. Its failures only cost ASSEMBLE the work.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::steps::delivery_of;
use super::{RenderPlan, StepOutput};
use crate::domain::RunId;
use crate::media::edit::Delivery;
use crate::media::splice::seed_probe;
use crate::media::{JoinClip, MediaEditor, MediaInfo, SpliceParts, VideoPackets};
use crate::storage::objects::ObjectStorage;

/// One run's pre-joiner (see the module documentation).
pub(super) struct PreJoin {
    parts: Arc<SpliceParts>,
    shared: Arc<Shared>,
    /// False when the run assembles nothing that can be spliced (no ASSEMBLE, or one scene).
    enabled: bool,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// What the background worker shares with the run.
struct Shared {
    media: Arc<dyn MediaEditor>,
    objects: ObjectStorage,
    delivery: Delivery,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    /// Each scene's final clip, once known.
    clips: Vec<Option<Clip>>,
    /// Scenes whose clip became known since the worker last looked.
    changed: Vec<usize>,
}

/// A scene's FINALIZE clip.
#[derive(Clone)]
struct Clip {
    key: String,
    seconds: f64,
    /// Its local file, once looked up.
    path: Option<PathBuf>,
}

impl PreJoin {
    /// The pre-joiner of `run_id` (parts under `work_root`), knowing the clips of the plan's recorded scenes.
    pub(super) fn new(
        media: Arc<dyn MediaEditor>,
        objects: ObjectStorage,
        work_root: &std::path::Path,
        run_id: &RunId,
        plan: &RenderPlan,
        assemble: bool,
    ) -> Self {
        let mut state = State {
            clips: vec![None; plan.scenes.len()],
            changed: Vec::new(),
        };
        for (i, out) in &plan.recorded {
            if let (Some(clip), Some(slot)) = (clip_of(out), state.clips.get_mut(*i)) {
                *slot = Some(clip);
                state.changed.push(*i);
            }
        }
        Self {
            parts: Arc::new(SpliceParts::new(
                work_root.join(run_id.as_str()).join("prejoin"),
            )),
            shared: Arc::new(Shared {
                media,
                objects,
                delivery: delivery_of(plan),
                state: Mutex::new(state),
                wake: Notify::new(),
            }),
            enabled: assemble && plan.scenes.len() >= 2,
            worker: Mutex::default(),
        }
    }

    /// The run's splice parts (ASSEMBLE joins with them).
    pub(super) fn parts(&self) -> &SpliceParts {
        &self.parts
    }

    /// The stored scene clip `key`'s probe, made by FINALIZE's encode: the join need not start ffprobe for it.
    pub(super) fn probed(&self, key: &str, info: &MediaInfo, video: &VideoPackets) {
        if self.enabled {
            seed_probe(&self.parts, key, &self.shared.delivery, info, video);
        }
    }

    /// Scene `scene`'s FINALIZE output is final; `cached` when it came from the cache. The first executed one
    /// starts the worker.
    pub(super) fn finalized(&self, scene: usize, out: &StepOutput, cached: bool) {
        let Some(clip) = clip_of(out).filter(|_| self.enabled) else {
            return;
        };
        if let Ok(mut state) = self.shared.state.lock() {
            let Some(slot) = state.clips.get_mut(scene) else {
                return;
            };
            *slot = Some(clip);
            state.changed.push(scene);
        }
        let Ok(mut worker) = self.worker.lock() else {
            return;
        };
        if worker.is_none() && !cached {
            let (shared, parts) = (self.shared.clone(), self.parts.clone());
            *worker = Some(tokio::spawn(work(shared, parts)));
        }
        self.shared.wake.notify_one();
    }
}

impl Drop for PreJoin {
    /// Stops the worker (its ffmpeg is killed with it) and removes the parts.
    fn drop(&mut self) {
        if let Some(worker) = self.worker.get_mut().ok().and_then(Option::take) {
            worker.abort();
        }
        let _ = std::fs::remove_dir_all(self.parts.dir());
    }
}

/// The clip of a FINALIZE output.
fn clip_of(out: &StepOutput) -> Option<Clip> {
    Some(Clip {
        key: out.object("video")?.to_string(),
        seconds: out.duration_seconds.unwrap_or(0.0),
        path: None,
    })
}

/// The worker: whenever clips became known, looks their files up and prepares their part of the join.
async fn work(shared: Arc<Shared>, parts: Arc<SpliceParts>) {
    loop {
        let changed = match shared.state.lock() {
            Ok(mut s) => std::mem::take(&mut s.changed),
            Err(_) => return,
        };
        if changed.is_empty() {
            shared.wake.notified().await;
            continue;
        }
        let clips = shared.known_clips(&changed).await;
        let joined: Vec<Option<JoinClip>> = clips
            .iter()
            .map(|c| {
                let c = c.as_ref()?;
                Some(JoinClip {
                    path: c.path.as_deref()?,
                    seconds: c.seconds,
                    id: &c.key,
                })
            })
            .collect();
        let prepared = shared
            .media
            .prepare_join(&joined, &changed, &shared.delivery, &parts)
            .await;
        if let Err(e) = prepared {
            tracing::debug!(error = %e, "pre-joining scenes failed; ASSEMBLE will do that work");
        }
    }
}

impl Shared {
    /// Every known clip, after looking up the local files of those at `changed`.
    async fn known_clips(&self, changed: &[usize]) -> Vec<Option<Clip>> {
        let lookups: Vec<(usize, String)> = match self.state.lock() {
            Ok(s) => changed
                .iter()
                .filter_map(|&i| Some((i, s.clips.get(i)?.as_ref()?.key.clone())))
                .collect(),
            Err(_) => return Vec::new(),
        };
        let mut found = Vec::with_capacity(lookups.len());
        for (i, key) in lookups {
            if let Ok(path) = self.objects.local_path(&key).await {
                found.push((i, key, path));
            }
        }
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        for (i, key, path) in found {
            let clip = s.clips.get_mut(i).and_then(Option::as_mut);
            if let Some(c) = clip.filter(|c| c.key == key) {
                c.path = Some(path);
            }
        }
        s.clips.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pipeline::testkit::{FakeMedia, Op, TestPipeline, scene};

    fn clip_output(key: &str) -> StepOutput {
        let mut out = StepOutput::default();
        out.objects.insert("video".into(), key.into());
        out.duration_seconds = Some(2.0);
        out
    }

    #[tokio::test]
    async fn the_first_executed_final_starts_prejoining_every_known_clip() {
        let t = TestPipeline::new().await.unwrap();
        let scenes = ["a", "b", "c"].map(|n| scene(n, "Hello there."));
        let mut plan = t.plan(scenes.to_vec()).await.unwrap();
        plan.recorded.insert(2, clip_output("media/cc.mp4"));
        let work = tempfile::tempdir().unwrap();
        let media: Arc<dyn MediaEditor> = Arc::new(FakeMedia(t.calls.clone()));
        let new = |assemble| {
            let (objects, run) = (t.objects.clone(), RunId::from("run"));
            PreJoin::new(media.clone(), objects, work.path(), &run, &plan, assemble)
        };
        let without_assemble = new(false);
        without_assemble.finalized(0, &clip_output("media/aa.mp4"), false);
        let prejoin = new(true);
        prejoin.finalized(0, &clip_output("media/aa.mp4"), true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            t.calls.count(Op::PrepareJoin),
            0,
            "nothing without ASSEMBLE, nor for cached finals alone"
        );

        prejoin.finalized(1, &clip_output("media/bb.mp4"), false);
        for _ in 0..500 {
            if t.calls.prepared_clips().len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut ids = t.calls.prepared_clips();
        ids.sort();
        assert_eq!(ids, ["media/aa.mp4", "media/bb.mp4", "media/cc.mp4"]);

        // Dropped with its run: the worker stops and the parts go.
        let dir = prejoin.parts().dir().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        drop(prejoin);
        assert!(!dir.exists());
    }
}
