//! The identity form's fields: which there are (also the API's names), how a stored identity (or a new one's
//! defaults) fills them, the asset choices (headshot, uploaded LoRA) and refilling them from a posted form.

use super::UiError;
use super::forms::{Control, FormData, FormField};
use crate::domain::Identity;
use crate::storage::db::IdentityRecord;
use crate::web::AppState;

/// The form's field names (also the API's), in order.
pub(super) const FIELDS: [&str; 17] = [
    "name",
    "displayName",
    "triggerWord",
    "description",
    "loraUrl",
    "loraAssetId",
    "loraScale",
    "baseModel",
    "voiceId",
    "voiceModel",
    "voiceStability",
    "voiceSimilarity",
    "voiceStyle",
    "voiceSpeakerBoost",
    "localVoice",
    "headshotAssetId",
    "isActive",
];

/// The identity form's fields, filled from a stored identity (or the defaults of a new one).
pub(super) async fn identity_fields(
    state: &AppState,
    r: Option<&IdentityRecord>,
) -> Result<Vec<FormField>, UiError> {
    let blank = Identity::new("", "", "");
    let i = r.map(|r| &r.identity).unwrap_or(&blank);
    let headshots = asset_options(state, "headshot").await?;
    let mut fields = profile_fields(i);
    let after_url = fields
        .iter()
        .position(|f| f.name == "loraUrl")
        .map_or(fields.len(), |p| p + 1);
    fields.insert(
        after_url,
        FormField::text(
            "loraAssetId",
            "Uploaded LoRA",
            r.and_then(|r| r.lora_asset_id.clone()).unwrap_or_default(),
        )
        .control(Control::Select(asset_options(state, "lora").await?))
        .hint("Instead of a LoRA URL: a .safetensors file uploaded on the Assets page (one or the other)."),
    );
    fields.extend(voice_fields(i));
    fields.push(
        FormField::text(
            "headshotAssetId",
            "Headshot",
            r.and_then(|r| r.headshot_asset_id.clone())
                .unwrap_or_default(),
        )
        .control(Control::Select(headshots))
        .hint("Used in standard mode; upload a new one just below."),
    );
    if let Some(r) = r {
        fields.push(
            FormField::text("isActive", "Active", if r.is_active { "on" } else { "" })
                .control(Control::Checkbox),
        );
    }
    Ok(fields)
}

/// The choices of an asset of `kind`: none, then every upload of that kind by its original name (or id).
async fn asset_options(state: &AppState, kind: &str) -> Result<Vec<(String, String)>, UiError> {
    let mut headshots = vec![(String::new(), "None".to_string())];
    headshots.extend(
        state
            .storage
            .db
            .list_assets(kind, "")
            .await?
            .into_iter()
            .map(|a| {
                let label = a.original_name.clone().unwrap_or_else(|| a.id.to_string());
                (a.id.into_string(), label)
            }),
    );
    Ok(headshots)
}

/// Who the identity is and its LoRA: name, display name, trigger word, description, LoRA URL, scale, base model.
fn profile_fields(i: &Identity) -> Vec<FormField> {
    vec![
        FormField::text("name", "Name", i.name.clone())
            .required()
            .hint("Unique identifier: lowercase letters, digits and '-', e.g. deven-primary."),
        FormField::text("displayName", "Display name", i.display_name.clone())
            .required()
            .hint("Friendly name shown in the UI, e.g. Deven Spear."),
        FormField::text("triggerWord", "Trigger word", i.trigger_word.clone())
            .required()
            .hint("Unique word that activates the LoRA in prompts, e.g. TOK_DEVEN."),
        FormField::text(
            "description",
            "Description",
            i.description.clone().unwrap_or_default(),
        )
        .control(Control::TextArea),
        FormField::text(
            "loraUrl",
            "LoRA URL",
            i.lora_url.clone().unwrap_or_default(),
        )
        .control(Control::Url)
        .hint("Full URL of the Flux LoRA .safetensors file; needed for digital twin mode."),
        FormField::text("loraScale", "LoRA scale", i.lora_scale.to_text()).hint(
            "Strength of the identity, 0.0–1.0 (0.95 recommended), or auto to pick by shot type.",
        ),
        FormField::text("baseModel", "Base model", i.base_model.as_str()).control(Control::Select(
            vec![
                ("flux-dev".into(), "flux-dev (quality)".into()),
                ("flux-schnell".into(), "flux-schnell (speed)".into()),
            ],
        )),
    ]
}

/// The voice: ElevenLabs voice id, model (the identity's own kept as a choice), stability, similarity, style, boost.
fn voice_fields(i: &Identity) -> Vec<FormField> {
    let mut models = vec![
        (
            "eleven_multilingual_v2".to_string(),
            "eleven_multilingual_v2 (quality)".to_string(),
        ),
        (
            "eleven_turbo_v2_5".to_string(),
            "eleven_turbo_v2_5 (faster)".to_string(),
        ),
    ];
    if !models.iter().any(|(m, _)| *m == i.voice_model) {
        models.push((i.voice_model.clone(), i.voice_model.clone()));
    }
    vec![
        FormField::text(
            "voiceId",
            "Voice ID",
            i.voice_id.clone().unwrap_or_default(),
        )
        .hint("Your ElevenLabs voice clone id (optional)."),
        FormField::text("voiceModel", "Voice model", i.voice_model.clone())
            .control(Control::Select(models)),
        FormField::text(
            "voiceStability",
            "Voice stability",
            i.voice_stability.to_string(),
        )
        .control(Control::Number("0.05"))
        .hint("0–1; 0.5 is balanced."),
        FormField::text(
            "voiceSimilarity",
            "Voice similarity",
            i.voice_similarity.to_string(),
        )
        .control(Control::Number("0.05"))
        .hint("0–1; 0.8 stays close to the original."),
        FormField::text("voiceStyle", "Voice style", i.voice_style.to_string())
            .control(Control::Number("0.05"))
            .hint("0–1; 0.2 is subtle."),
        FormField::text(
            "voiceSpeakerBoost",
            "Speaker boost",
            if i.voice_speaker_boost { "on" } else { "" },
        )
        .control(Control::Checkbox),
        FormField::text(
            "localVoice",
            "Offline voice",
            i.local_voice.clone().unwrap_or_default(),
        )
        .hint("The Piper voice for offline renders, e.g. en_US-joe-medium (optional; the default voice when empty)."),
    ]
}

pub(super) fn refill(mut fields: Vec<FormField>, form: &FormData) -> Vec<FormField> {
    for f in &mut fields {
        f.value = if f.is_checkbox() {
            if form.checked(f.name) { "on" } else { "" }.to_string()
        } else {
            form.get(f.name).to_string()
        };
    }
    fields
}
