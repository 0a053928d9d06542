//! The scene cards of the project page: each scene's latest step chips, status, identity, estimate and facts.

use std::collections::HashMap;

use super::UiError;
use super::scenes::{CardFacts, card_facts};
use super::view;
use crate::costs::Estimate;
use crate::domain::{SceneId, SceneStatus, StepName, StepStatus};
use crate::storage::db::{IdentityRecord, ProjectRecord, RunSummary, SceneRecord, SceneStep};
use crate::web::AppState;

/// One step of a scene's latest run, as a chip on its card.
#[derive(Debug, Clone)]
pub(crate) struct StepChip {
    /// `AUDIO`, …
    pub step: &'static str,
    /// `pending`, `running`, `succeeded`, `failed`, `skipped`, `canceled`.
    pub state: String,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// A scene card on the project page.
#[derive(Debug, Clone)]
pub(crate) struct SceneCard {
    pub(crate) id: String,
    pub(crate) number: usize,
    pub(crate) name: String,
    pub(crate) dialogue: String,
    pub(crate) status: &'static str,
    pub(crate) thumbnail: String,
    pub(crate) identity: String,
    pub(crate) mode: &'static str,
    pub(crate) camera: String,
    pub(crate) steps: Vec<StepChip>,
    pub(crate) done: usize,
    pub(crate) estimate: String,
    pub(crate) duration: String,
    pub(crate) first: bool,
    pub(crate) last: bool,
    /// Live run, speech length, mode it ran in (`scenes::facts`).
    pub(crate) facts: CardFacts,
}

/// The steps shown on cards, in order.
pub(super) const SCENE_STEPS: [StepName; 5] = StepName::SCENE_STEPS;

/// The display name of the identity `iid`, when it names one.
pub(super) fn identity_name(identities: &[IdentityRecord], iid: Option<&str>) -> Option<String> {
    iid.and_then(|iid| identities.iter().find(|i| i.id == iid))
        .map(|i| i.identity.display_name.clone())
}

/// The project page's cards with their facts (live run, speech length, mode it ran in, freshness), and whether
/// the project video is out of date.
#[allow(clippy::too_many_arguments)] // the page's loaded rows, passed on as they are
pub(super) async fn cards_with_facts(
    state: &AppState,
    root: &str,
    p: &ProjectRecord,
    scenes: &[SceneRecord],
    steps: &HashMap<SceneId, Vec<SceneStep>>,
    runs: &[RunSummary],
    identities: &[IdentityRecord],
    est: &Estimate,
) -> Result<(Vec<SceneCard>, bool), UiError> {
    let mut cards = scene_cards(root, scenes, steps, runs, identities, Some(est));
    let fresh = state.runs.freshness(p, scenes).await?;
    for (c, s) in cards.iter_mut().zip(scenes) {
        c.facts = card_facts(&state.storage.db, s, &fresh, runs).await?;
        if c.facts.out_of_date && c.status == "completed" {
            c.status = "out of date";
        }
    }
    Ok((cards, fresh.project_out_of_date(p, scenes)))
}

/// One card per scene, in order: its latest steps, whether a run covers it, its identity and estimate.
fn scene_cards(
    root: &str,
    scenes: &[SceneRecord],
    steps: &HashMap<SceneId, Vec<SceneStep>>,
    runs: &[RunSummary],
    identities: &[IdentityRecord],
    est: Option<&Estimate>,
) -> Vec<SceneCard> {
    let n = scenes.len();
    scenes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            card(
                root,
                s,
                i,
                n,
                steps.get(&s.id).map(Vec::as_slice).unwrap_or(&[]),
                runs.iter()
                    .any(|r| r.is_active() && r.scene_id.as_ref().is_none_or(|id| *id == s.id)),
                identity_name(identities, s.identity_id.as_deref())
                    .unwrap_or_else(|| "project default".into()),
                est.and_then(|e| e.scenes.get(i))
                    .map(|e| view::usd(e.usd))
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[allow(clippy::too_many_arguments)] // one flat call per card reads best at the call site
fn card(
    root: &str,
    s: &SceneRecord,
    index: usize,
    count: usize,
    steps: &[SceneStep],
    active: bool,
    identity: String,
    estimate: String,
) -> SceneCard {
    let chips: Vec<StepChip> = SCENE_STEPS
        .iter()
        .map(|step| {
            let found = steps.iter().find(|x| x.step == *step);
            StepChip {
                step: step.as_str(),
                state: found
                    .map_or(StepStatus::Pending, |x| x.status)
                    .as_str()
                    .into(),
                cached: found.is_some_and(|x| x.cached),
            }
        })
        .collect();
    let done = chips.iter().filter(|c| c.state == "succeeded").count();
    let status = if active && s.status != SceneStatus::Generating {
        "queued"
    } else {
        view::status_word(s.status.as_str())
    };
    SceneCard {
        id: s.id.to_string(),
        number: index + 1,
        name: s.scene.name.clone(),
        dialogue: view::excerpt(&s.scene.dialogue, 160),
        status,
        thumbnail: s
            .thumbnail_object
            .as_deref()
            .map(|k| view::media(root, k))
            .unwrap_or_default(),
        identity,
        mode: s.scene.generation_mode.as_str(),
        camera: s.scene.camera.clone().unwrap_or_default(),
        steps: chips,
        done,
        estimate,
        duration: s.duration_seconds.map(view::seconds).unwrap_or_default(),
        first: index == 0,
        last: index + 1 == count,
        facts: CardFacts::default(),
    }
}
