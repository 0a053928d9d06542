//! What a scene's card, page and form say about how it will render and how it ran: the speech length beside
//! the target duration (estimated from the words, the real AUDIO length once rendered), the mode IMAGE actually
//! used, and why digital twin cannot work for it.

use crate::costs::predicted_speech_seconds;
use crate::pipeline::StepOutput;
use crate::storage::db::{Db, DbError, ProjectRecord, RunSummary, SceneRecord};
use crate::web::AppState;
use crate::worker::Freshness;

/// How far speech and target may differ before it is flagged (the same rule as AUDIO's log warning).
const TOLERANCE_SECONDS: f64 = 2.0;

/// A scene's speech length and the mode it ran in, in words.
#[derive(Debug, Clone, Default)]
pub(crate) struct SceneFacts {
    /// `speech ≈ 4.2 s (estimated) · target 5 s`, or with the real length once rendered; empty without dialogue.
    pub speech: String,
    /// The speech is more than two seconds off the target.
    pub speech_off: bool,
    /// The mode IMAGE used in the scene's recorded render (`standard`, `digital-twin`); empty before one.
    pub ran_mode: String,
}

/// What a scene card on the project page adds from the database and the fingerprints.
#[derive(Debug, Clone, Default)]
pub(crate) struct CardFacts {
    /// Its recorded video no longer matches the scene.
    pub out_of_date: bool,
    /// The live run covering it (its Generate buttons wait for it), else empty.
    pub busy: String,
    /// Speech length beside the target, and whether it is far off.
    pub speech: String,
    /// The speech is more than two seconds off the target.
    pub speech_off: bool,
    /// The mode IMAGE used in its recorded render when it differs from the one asked for, else empty.
    pub ran_mode: String,
}

/// The card facts of scene `s` among the project's `runs`.
pub(crate) async fn card_facts(
    db: &Db,
    s: &SceneRecord,
    fresh: &Freshness,
    runs: &[RunSummary],
) -> Result<CardFacts, DbError> {
    let out_of_date = fresh.scene_out_of_date(s);
    let busy = runs
        .iter()
        .find(|r| r.is_active() && r.scene_id.as_ref().is_none_or(|id| *id == s.id))
        .map(|r| r.id.to_string())
        .unwrap_or_default();
    let facts = scene_facts(db, s, !out_of_date).await?;
    let asked = s.scene.generation_mode.as_str();
    Ok(CardFacts {
        out_of_date,
        busy,
        speech: facts.speech,
        speech_off: facts.speech_off,
        ran_mode: Some(facts.ran_mode)
            .filter(|m| m != asked)
            .unwrap_or_default(),
    })
}

/// The speech line of `dialogue` against `target` seconds: `real` is the rendered AUDIO length (else it is
/// estimated from the words).
pub(crate) fn speech_line(
    dialogue: &str,
    target: Option<f64>,
    real: Option<f64>,
) -> (String, bool) {
    if dialogue.trim().is_empty() {
        return (String::new(), false);
    }
    let (seconds, said) = match real {
        Some(s) => (s, format!("speech {s:.1} s")),
        None => {
            let s = predicted_speech_seconds(dialogue);
            (s, format!("speech ≈ {s:.1} s (estimated)"))
        }
    };
    match target {
        Some(t) => {
            let off = (seconds - t).abs() > TOLERANCE_SECONDS;
            let word = match (off, seconds > t) {
                (false, _) => "",
                (true, true) => ": longer than the target",
                (true, false) => ": shorter than the target",
            };
            (format!("{said} · target {t} s{word}"), off)
        }
        None => (said, false),
    }
}

/// The facts of a stored scene; `current` says whether its recorded render still matches it (the real speech
/// length of an out-of-date render is not this dialogue's).
pub(crate) async fn scene_facts(
    db: &Db,
    s: &SceneRecord,
    current: bool,
) -> Result<SceneFacts, DbError> {
    let output =
        |json: Option<String>| json.and_then(|j| serde_json::from_str::<StepOutput>(&j).ok());
    let rendered = s.output_object.is_some();
    let audio = match rendered && current {
        true => output(db.latest_output(&s.id, "AUDIO", false).await?),
        false => None,
    };
    let image = match rendered {
        true => output(db.latest_output(&s.id, "IMAGE", false).await?),
        false => None,
    };
    let real = audio.and_then(|a| a.duration_seconds);
    let (speech, speech_off) = speech_line(&s.scene.dialogue, s.scene.target_duration, real);
    Ok(SceneFacts {
        speech,
        speech_off,
        ran_mode: image.and_then(|i| i.mode).unwrap_or_default(),
    })
}

/// Why digital twin cannot work for a scene of `project` spoken by its identity (`None` when it can): no
/// `FAL_KEY`, or the identity has no LoRA (and no `DEVEN_LORA_URL` stands in).
pub(crate) async fn twin_unavailable(
    state: &AppState,
    project: &ProjectRecord,
    s: Option<&SceneRecord>,
) -> Result<Option<String>, DbError> {
    if state.config.cloud.fal_key.is_none() {
        return Ok(Some(
            "Digital twin is not available: FAL_KEY is not set (Settings), so this scene will be made in \
             standard mode from the headshot."
                .into(),
        ));
    }
    if state.config.default_lora_url.is_some() {
        return Ok(None);
    }
    let db = &state.storage.db;
    let chosen = s.and_then(|s| s.identity_id.clone());
    let identity = match chosen.or_else(|| project.default_identity_id.clone()) {
        Some(id) => db.get_identity(&id).await?,
        None => db
            .list_identities()
            .await?
            .into_iter()
            .find(|i| i.is_default),
    };
    Ok(match identity {
        Some(i) if i.identity.lora_url.is_none() && i.lora_asset_id.is_none() => Some(format!(
            "Digital twin is not available: identity {} has no LoRA, so this scene will be made in standard \
             mode from the headshot. Add a LoRA URL on the Identities page.",
            i.identity.display_name
        )),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_is_estimated_from_words_then_measured_and_flagged_when_far_off_the_target() {
        let words = "one two three four five six seven eight nine ten";
        let (line, off) = speech_line(words, Some(2.0), None);
        assert_eq!(
            line,
            "speech ≈ 4.2 s (estimated) · target 2 s: longer than the target"
        );
        assert!(off);
        let (line, off) = speech_line(words, Some(2.0), Some(3.1));
        assert_eq!(line, "speech 3.1 s · target 2 s");
        assert!(!off);
    }
}
