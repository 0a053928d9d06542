//! `/api/identities`: the guide's identity routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::domain::{AssetId, IdentityId};
use crate::domain::{BaseModel, FieldErrors, Identity, LoraScale};
use crate::identity_check::IdentityTestReport;
use crate::storage::db::{Conflict, DbError, IdentityRecord};
use crate::web::error::{ApiError, ApiJson, ApiQuery};
use crate::web::{AppState, service};

/// The schema of `loraScale`: a number from 0 to 1, or the string `"auto"`.
fn lora_scale_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0.0))
                .maximum(Some(1.0)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["auto"])),
        )
        .description(Some("A number from 0 to 1, or \"auto\"."))
        .build();
    Schema::OneOf(one_of)
}

/// An identity as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    #[schema(value_type = String)]
    id: IdentityId,
    name: String,
    display_name: String,
    trigger_word: String,
    description: Option<String>,
    lora_url: Option<String>,
    /// A number in 0–1, or `"auto"`.
    #[schema(schema_with = lora_scale_schema)]
    lora_scale: Value,
    base_model: String,
    voice_id: Option<String>,
    voice_model: String,
    voice_stability: f64,
    voice_similarity: f64,
    voice_style: f64,
    voice_speaker_boost: bool,
    /// The offline voice (a Piper voice name), when the identity names one.
    local_voice: Option<String>,
    #[schema(value_type = Option<String>)]
    headshot_asset_id: Option<AssetId>,
    /// The uploaded LoRA (an asset of kind `lora`) used instead of `loraUrl`.
    #[schema(value_type = Option<String>)]
    lora_asset_id: Option<AssetId>,
    is_default: bool,
    is_active: bool,
    scene_count: i64,
    /// The last identity test, if any.
    last_test: Option<LastTest>,
    created_at: i64,
    updated_at: i64,
}

/// An identity's last test.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastTest {
    /// Every check passed.
    ok: bool,
    /// When it ran, epoch ms.
    at: i64,
    /// The report as it was stored (`null` if it could not be read back).
    #[schema(value_type = Option<IdentityTestReport>)]
    result: Value,
}

fn scale_json(s: LoraScale) -> Value {
    match s {
        LoraScale::Fixed(v) => json!(v),
        LoraScale::Auto => json!("auto"),
    }
}

impl IdentityView {
    fn from_record(r: IdentityRecord, scene_count: i64) -> Self {
        let i = r.identity;
        Self {
            id: r.id,
            name: i.name,
            display_name: i.display_name,
            trigger_word: i.trigger_word,
            description: i.description,
            lora_url: i.lora_url,
            lora_scale: scale_json(i.lora_scale),
            base_model: i.base_model.as_str().into(),
            voice_id: i.voice_id,
            voice_model: i.voice_model,
            voice_stability: i.voice_stability,
            voice_similarity: i.voice_similarity,
            voice_style: i.voice_style,
            voice_speaker_boost: i.voice_speaker_boost,
            local_voice: i.local_voice,
            headshot_asset_id: r.headshot_asset_id,
            lora_asset_id: r.lora_asset_id,
            is_default: r.is_default,
            is_active: r.is_active,
            scene_count,
            last_test: r.last_test.map(|(ok, at, result)| LastTest {
                ok,
                at,
                result: serde_json::from_str::<Value>(&result)
                    .map(crate::identity_check::with_labels)
                    .unwrap_or(Value::Null),
            }),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Fields a client may set on an identity (create: the three names are required; update: all optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityInput {
    name: Option<String>,
    display_name: Option<String>,
    trigger_word: Option<String>,
    description: Option<String>,
    lora_url: Option<String>,
    /// A number in 0–1, or `"auto"` (optional).
    #[schema(schema_with = lora_scale_schema, required = false)]
    lora_scale: Option<Value>,
    base_model: Option<String>,
    voice_id: Option<String>,
    voice_model: Option<String>,
    voice_stability: Option<f64>,
    voice_similarity: Option<f64>,
    voice_style: Option<f64>,
    voice_speaker_boost: Option<bool>,
    /// The offline voice, e.g. `en_US-joe-medium` (an empty text clears it).
    local_voice: Option<String>,
    #[schema(value_type = Option<String>)]
    headshot_asset_id: Option<AssetId>,
    /// An uploaded LoRA (asset of kind `lora`) instead of `loraUrl`; `""` clears it. At most one of the two.
    #[schema(value_type = Option<String>)]
    lora_asset_id: Option<AssetId>,
    is_active: Option<bool>,
}

impl IdentityInput {
    /// Applies the given fields onto `base` and validates the result.
    fn apply(self, mut base: Identity) -> Result<Identity, ApiError> {
        let mut e = FieldErrors::default();
        if let Some(v) = self.name {
            base.name = v;
        }
        if let Some(v) = self.display_name {
            base.display_name = v;
        }
        if let Some(v) = self.trigger_word {
            base.trigger_word = v;
        }
        if self.description.is_some() {
            base.description = self.description;
        }
        if self.lora_url.is_some() {
            base.lora_url = self.lora_url;
        }
        match self.lora_scale {
            None => {}
            Some(Value::Number(n)) => {
                base.lora_scale = LoraScale::Fixed(n.as_f64().unwrap_or(f64::NAN))
            }
            Some(Value::String(s)) if s == "auto" => base.lora_scale = LoraScale::Auto,
            Some(_) => e.push("loraScale", "must be a number from 0.0 to 1.0 or \"auto\""),
        }
        if let Some(b) = self.base_model {
            match BaseModel::parse(&b) {
                Some(b) => base.base_model = b,
                None => e.push("baseModel", "must be flux-dev or flux-schnell"),
            }
        }
        if self.voice_id.is_some() {
            base.voice_id = self.voice_id;
        }
        if let Some(v) = self.voice_model {
            base.voice_model = v;
        }
        base.voice_stability = self.voice_stability.unwrap_or(base.voice_stability);
        base.voice_similarity = self.voice_similarity.unwrap_or(base.voice_similarity);
        base.voice_style = self.voice_style.unwrap_or(base.voice_style);
        base.voice_speaker_boost = self.voice_speaker_boost.unwrap_or(base.voice_speaker_boost);
        if self.local_voice.is_some() {
            base.local_voice = self.local_voice;
        }
        match base.validated() {
            Ok(v) if e.is_empty() => Ok(v),
            Ok(_) => Err(e.into()),
            Err(v) => {
                e.0.extend(v.0);
                Err(e.into())
            }
        }
    }
}

fn conflict(c: Conflict) -> ApiError {
    match c {
        Conflict::Name => ApiError::conflict("name", "an identity with this name exists"),
        Conflict::TriggerWord => {
            ApiError::conflict("triggerWord", "an identity with this trigger word exists")
        }
    }
}

/// A unique-constraint collision as the 409 naming the field; any other error unchanged.
/// 422 naming `headshotAssetId` when `headshot` names no asset.
async fn check_headshot(state: &AppState, headshot: Option<&AssetId>) -> Result<(), ApiError> {
    match headshot {
        Some(h) if state.storage.db.asset_object_key(h).await?.is_none() => {
            Err(ApiError::invalid("headshotAssetId", "no such asset"))
        }
        _ => Ok(()),
    }
}

/// The identity's LoRA asset after an input: unchanged when not given, cleared by `""`. 422 naming
/// `loraAssetId` when it names no asset, an asset of another kind, or comes with a `loraUrl`.
async fn lora_asset(
    state: &AppState,
    given: Option<AssetId>,
    current: Option<AssetId>,
    identity: &Identity,
) -> Result<Option<AssetId>, ApiError> {
    let chosen = match given {
        None => current,
        Some(id) if id.is_empty() => None,
        Some(id) => {
            match state.storage.db.get_asset(&id).await? {
                Some(a) if a.kind == "lora" => {}
                Some(_) => return Err(ApiError::invalid("loraAssetId", "is not a LoRA asset")),
                None => return Err(ApiError::invalid("loraAssetId", "no such asset")),
            }
            Some(id)
        }
    };
    if chosen.is_some() && identity.lora_url.is_some() {
        return Err(ApiError::invalid(
            "loraAssetId",
            "give either loraUrl or loraAssetId, not both",
        ));
    }
    Ok(chosen)
}

/// Stores the identity's LoRA asset; an asset deleted meanwhile is a 422 naming `loraAssetId`.
async fn store_lora_asset(
    state: &AppState,
    id: &IdentityId,
    asset: Option<&AssetId>,
) -> Result<(), ApiError> {
    state
        .storage
        .db
        .set_identity_lora_asset(id, asset)
        .await
        .map_err(|e| {
            if e.is_foreign_key() {
                ApiError::invalid("loraAssetId", "no such asset")
            } else {
                e.into()
            }
        })
}

/// A taken name or trigger word as 409, a headshot deleted meanwhile as 422, each naming its field.
fn unique_conflict(e: DbError) -> ApiError {
    if e.is_foreign_key() {
        ApiError::invalid("headshotAssetId", "no such asset")
    } else if e.is_unique_on("trigger_word") {
        conflict(Conflict::TriggerWord)
    } else if e.is_unique_on("name") {
        conflict(Conflict::Name)
    } else {
        e.into()
    }
}

async fn view(state: &AppState, r: IdentityRecord) -> Result<IdentityView, ApiError> {
    let counts = state.storage.db.scene_counts_by_identity().await?;
    let n = counts
        .iter()
        .find(|(id, _)| *id == r.id)
        .map(|(_, n)| *n)
        .unwrap_or(0);
    Ok(IdentityView::from_record(r, n))
}

/// List all identities.
#[utoipa::path(get, path = "/api/identities", tag = "identities", responses((status = 200, body = [IdentityView])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<IdentityView>>, ApiError> {
    let counts = state.storage.db.scene_counts_by_identity().await?;
    let records = state.storage.db.list_identities().await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| {
                let n = counts
                    .iter()
                    .find(|(id, _)| *id == r.id)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                IdentityView::from_record(r, n)
            })
            .collect(),
    ))
}

/// Create an identity.
#[utoipa::path(post, path = "/api/identities", tag = "identities", request_body = IdentityInput,
    responses((status = 201, body = IdentityView), (status = 409), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<IdentityInput>,
) -> Result<(StatusCode, Json<IdentityView>), ApiError> {
    let mut missing = FieldErrors::default();
    for (field, v) in [
        ("name", &input.name),
        ("displayName", &input.display_name),
        ("triggerWord", &input.trigger_word),
    ] {
        if v.is_none() {
            missing.push(field, "is required");
        }
    }
    if !missing.is_empty() {
        return Err(missing.into());
    }
    let headshot = input.headshot_asset_id.clone();
    let lora_given = input.lora_asset_id.clone();
    let identity = input.apply(Identity::new("", "", ""))?;
    let db = &state.storage.db;
    check_headshot(&state, headshot.as_ref()).await?;
    let lora = lora_asset(&state, lora_given, None, &identity).await?;
    let id = db
        .insert_identity(&identity, headshot.as_ref())
        .await
        .map_err(unique_conflict)?;
    if lora.is_some() {
        store_lora_asset(&state, &id, lora.as_ref()).await?;
    }
    service::identity_photos::headshot_joins(&state, &id, headshot.as_ref()).await;
    let record = db
        .get_identity(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))?;
    Ok((StatusCode::CREATED, Json(view(&state, record).await?)))
}

/// Get one identity.
#[utoipa::path(get, path = "/api/identities/{id}", tag = "identities", params(("id" = String, Path)),
    responses((status = 200, body = IdentityView), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
) -> Result<Json<IdentityView>, ApiError> {
    let record = state
        .storage
        .db
        .get_identity(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))?;
    Ok(Json(view(&state, record).await?))
}

/// Update an identity (only the fields given).
#[utoipa::path(put, path = "/api/identities/{id}", tag = "identities", params(("id" = String, Path)),
    request_body = IdentityInput, responses((status = 200, body = IdentityView), (status = 404), (status = 409), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
    ApiJson(input): ApiJson<IdentityInput>,
) -> Result<Json<IdentityView>, ApiError> {
    let db = &state.storage.db;
    let current = db
        .get_identity(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))?;
    let headshot = input
        .headshot_asset_id
        .clone()
        .or(current.headshot_asset_id.clone());
    let active = input.is_active.unwrap_or(current.is_active);
    let new_headshot = input.headshot_asset_id.clone();
    let checked = check_headshot(&state, new_headshot.as_ref()).await;
    let lora_given = input.lora_asset_id.clone();
    let identity = input.apply(current.identity)?;
    checked?;
    let lora = lora_asset(&state, lora_given, current.lora_asset_id, &identity).await?;
    db.update_identity(&id, &identity, headshot.as_ref(), active)
        .await
        .map_err(unique_conflict)?;
    store_lora_asset(&state, &id, lora.as_ref()).await?;
    service::identity_photos::headshot_joins(&state, &id, new_headshot.as_ref()).await;
    let record = db
        .get_identity(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("identity"))?;
    Ok(Json(view(&state, record).await?))
}

/// Delete an identity.
#[utoipa::path(delete, path = "/api/identities/{id}", tag = "identities", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
) -> Result<StatusCode, ApiError> {
    if state.storage.db.delete_identity(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("identity"))
    }
}

/// Make this identity the default.
#[utoipa::path(post, path = "/api/identities/{id}/set-default", tag = "identities", params(("id" = String, Path)),
    responses((status = 200, body = IdentityView), (status = 404)))]
pub async fn set_default(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
) -> Result<Json<IdentityView>, ApiError> {
    if !state.storage.db.set_default_identity(&id).await? {
        return Err(ApiError::not_found("identity"));
    }
    get(State(state), Path(id)).await
}

pub use crate::web::service::identities::{DefaultIdentity, IdentityCounts, TwinStatus};

/// Digital twin status: keys (booleans only), identities, default and recommendations.
#[utoipa::path(get, path = "/api/identities/status", tag = "identities", responses((status = 200, body = TwinStatus)))]
pub async fn status(State(state): State<AppState>) -> Result<Json<TwinStatus>, ApiError> {
    Ok(Json(service::identities::twin_status(&state).await?))
}

/// Options of the identity test.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TestQuery {
    /// Also render one still through the configured image provider.
    #[serde(default)]
    render: bool,
}

/// Test an identity: trigger word, base model, voice id (and lookup with an ElevenLabs key), and the
/// LoRA judged from its safetensors header. The result is stored on the identity (the UI's green check).
#[utoipa::path(post, path = "/api/identities/{id}/test", tag = "identities",
    params(("id" = String, Path), TestQuery),
    responses((status = 200, body = IdentityTestReport), (status = 404)))]
pub async fn test(
    State(state): State<AppState>,
    Path(id): Path<IdentityId>,
    ApiQuery(query): ApiQuery<TestQuery>,
) -> Result<Json<IdentityTestReport>, ApiError> {
    Ok(Json(
        service::identities::test(&state, &id, query.render).await?,
    ))
}
