//! Out-of-date outputs: the current input fingerprints of a project's scenes (`pipeline::fingerprint`) compared
//! with the ones their recorded videos were rendered from, and the plan of a scene run that re-assembles the
//! project video around its scene.

use std::collections::{BTreeMap, HashMap};

use super::{RunService, StartError};
use crate::domain::{ProjectId, ProjectStatus, SceneId, SceneStatus};
use crate::pipeline::fingerprint::{project_fingerprint, scene_fingerprint};
use crate::pipeline::{RenderPlan, StepOutput};
use crate::storage::db::{ProjectRecord, SceneRecord};

/// The current input fingerprints of one project's scenes.
#[derive(Debug, Clone, Default)]
pub struct Freshness {
    /// Scene id → the fingerprint of its inputs now (scenes that cannot be planned, e.g. without an identity,
    /// are missing).
    scenes: HashMap<SceneId, String>,
    /// The project video's fingerprint now; `None` when a scene cannot be planned.
    project: Option<String>,
}

impl Freshness {
    /// The scene's recorded video was rendered from other inputs than the scene has now.
    pub fn scene_out_of_date(&self, scene: &SceneRecord) -> bool {
        scene.status == SceneStatus::Completed
            && matches!(
                (&scene.rendered_inputs, self.scenes.get(&scene.id)),
                (Some(rendered), Some(now)) if rendered != now
            )
    }

    /// The project video no longer matches its scenes: a scene was edited, added, removed or moved since it was
    /// assembled, or a scene's last generation failed, was canceled or is out of date.
    pub fn project_out_of_date(&self, project: &ProjectRecord, scenes: &[SceneRecord]) -> bool {
        if project.status != ProjectStatus::Completed {
            return false;
        }
        let moved = matches!(
            (&project.rendered_inputs, &self.project),
            (Some(rendered), Some(now)) if rendered != now
        );
        moved
            || scenes.iter().any(|s| {
                matches!(
                    s.status,
                    SceneStatus::Failed | SceneStatus::Canceled | SceneStatus::Draft
                ) || self.scene_out_of_date(s)
            })
    }
}

impl RunService {
    /// The current input fingerprints of `project`'s `scenes` (see [`Freshness`]).
    pub async fn freshness(
        &self,
        project: &ProjectRecord,
        scenes: &[SceneRecord],
    ) -> Result<Freshness, StartError> {
        let plan = RenderPlan {
            project_id: project.id.clone(),
            project: project.project.clone(),
            scenes: Vec::new(),
            recorded: BTreeMap::new(),
        };
        let mut fresh = Freshness::default();
        let mut all = Vec::with_capacity(scenes.len());
        // Planning a scene costs queries (identity, assets, face print): only what a verdict can use is computed —
        // every scene when the project has an assembled video (its fingerprint needs them all), else only scenes
        // with a recorded video to compare. The verdicts are the same either way.
        let whole_project = project.status == ProjectStatus::Completed;
        for record in scenes {
            let comparable =
                record.status == SceneStatus::Completed && record.rendered_inputs.is_some();
            if !whole_project && !comparable {
                all.push(None);
                continue;
            }
            let default = project.default_identity_id.as_ref();
            match self.planned_scene(record.clone(), default).await {
                Ok(planned) => {
                    let fp = scene_fingerprint(&plan, &planned);
                    all.push(Some(fp.clone()));
                    fresh.scenes.insert(record.id.clone(), fp);
                }
                Err(StartError::Db(e)) => return Err(StartError::Db(e)),
                Err(_) => all.push(None),
            }
        }
        let all: Option<Vec<String>> = all.into_iter().collect();
        fresh.project = all.map(|fps| project_fingerprint(fps.iter().map(String::as_str)));
        Ok(fresh)
    }

    /// The plan of a run of one scene: when the project has an assembled video and every other scene's recorded
    /// video is up to date, the whole project with those scenes' recorded FINALIZE outputs (so the run
    /// re-assembles the project video; `true`), else the scene alone (`false`).
    pub(super) async fn scene_run_plan(
        &self,
        project_id: &ProjectId,
        scene_id: &SceneId,
    ) -> Result<(RenderPlan, bool), StartError> {
        let single = self.load_plan(project_id, Some(scene_id)).await?;
        let db = &self.storage.db;
        let assembled = db
            .get_project(project_id)
            .await?
            .is_some_and(|p| p.final_object.is_some());
        let full = match assembled {
            true => self.load_plan(project_id, None).await.ok(),
            false => None,
        };
        let Some(mut full) = full else {
            return Ok((single, false));
        };
        let records = db.list_scenes(project_id, -1, 10_000).await?;
        let mut recorded = BTreeMap::new();
        for (i, planned) in full.scenes.iter().enumerate() {
            if planned.id == *scene_id {
                continue;
            }
            let current = records.iter().any(|r| {
                r.id == planned.id
                    && r.status == SceneStatus::Completed
                    && r.rendered_inputs.as_deref() == Some(&*scene_fingerprint(&full, planned))
            });
            let output = match current {
                true => db.latest_output(&planned.id, "FINALIZE", false).await?,
                false => None,
            };
            match output.and_then(|json| serde_json::from_str::<StepOutput>(&json).ok()) {
                Some(out) => recorded.insert(i, out),
                None => return Ok((single, false)),
            };
        }
        full.recorded = recorded;
        Ok((full, true))
    }
}
