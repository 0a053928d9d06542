//! Makes the OpenAPI document say exactly what the handlers accept (schemathesis checks it: `tests/it/api/schema.rs`).
//!
//! utoipa derives types from the input structs; what the handlers and `domain` validation add on top — lengths,
//! patterns, enums, ranges, which fields a create requires — is written here as one table of [`Rule`]s per
//! schema property and query parameter, applied to the generated document. A new input field or route adds its
//! rows here. Text is never trimmed by the API: a string that starts or ends with whitespace or a control
//! character is refused (422, [`edge_error`]), so every pattern below can be exact.

use serde_json::{Value, json};

use crate::domain::{LogStep, MAX_DIALOGUE_CHARS};

/// What may not start or end any string in a JSON body: Rust's `char::is_whitespace` and `char::is_control`.
const EDGE: &str = r"\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// A character of free text: not a control character, except tab, line feed and carriage return.
const TEXT_CHAR: &str = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]";
/// Any character but NUL (refused everywhere: PostgreSQL text cannot hold it).
const ANY_CHAR: &str = r"[^\x00]";

/// What one string, number or array property accepts.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Free text (`domain::validate::required_text`/`optional_text`): no control character but tab, LF and CR,
    /// at most `max` characters; `""` (meaning "none") only when `optional`.
    Text {
        /// Longest accepted, in characters.
        max: u64,
        /// `""` is accepted.
        optional: bool,
    },
    /// Free text that must contain a letter or digit (a scene's dialogue); approximated by ASCII letters and
    /// digits plus every character above U+00A0 that is not whitespace.
    Speech(u64),
    /// A whole-string pattern over ASCII (names, trigger words, voice ids) and its longest length.
    Pattern(&'static str, u64),
    /// One of these words.
    Enum(Vec<String>),
    /// The id of another record: any non-empty string (a 404 or a 422 naming the field when nothing has it);
    /// `""` too when `optional` (it clears the reference).
    Id {
        /// `""` is accepted.
        optional: bool,
    },
    /// An `http(s)://` URL without whitespace or control characters, at most `max` characters, or `""`.
    Url(u64),
    /// Any string without NUL (a password, taken as typed).
    NoNul,
    /// A number in `[min, max]`.
    Range(f64, f64),
    /// An integer in `[min, max]`.
    IntRange(i64, i64),
}

/// The message for a string that starts or ends with whitespace or a control character, if `s` does.
pub fn edge_error(s: &str) -> Option<&'static str> {
    let bad = |c: char| c.is_whitespace() || c.is_control();
    (s.starts_with(bad) || s.ends_with(bad))
        .then_some("must not start or end with whitespace or a control character")
}

/// `^…$` over strings whose first and last characters are not in [`EDGE`] and whose others match `inner` (a
/// character class); `""` too when `optional`.
fn text_pattern(optional: bool, inner: &str) -> String {
    let core = format!("[^{EDGE}](?:{inner}*[^{EDGE}])?");
    if optional {
        format!("^(?:{core})?$")
    } else {
        format!("^{core}$")
    }
}

impl Rule {
    /// The JSON Schema keywords of this rule (for a string rule: of the string branch).
    fn keywords(&self) -> Value {
        match self {
            Self::Text { max, optional } => json!({
                "pattern": text_pattern(*optional, TEXT_CHAR), "maxLength": max,
            }),
            Self::Speech(max) => {
                let word = r"(?=[\s\S]*[0-9A-Za-z\u00aa-\uffff])";
                let text = text_pattern(false, TEXT_CHAR);
                json!({"pattern": format!("{word}{text}"), "maxLength": max})
            }
            Self::Pattern(p, max) => json!({"pattern": p, "maxLength": max}),
            Self::Enum(words) => json!({ "enum": words }),
            Self::Id { optional } => json!({"pattern": text_pattern(*optional, ANY_CHAR)}),
            Self::Url(max) => {
                json!({"pattern": format!("^(?:[Hh][Tt][Tt][Pp][Ss]?://[^{EDGE}]*)?$"), "maxLength": max})
            }
            Self::NoNul => json!({"pattern": r"^[^\x00]*$"}),
            Self::Range(min, max) => json!({"minimum": min, "maximum": max}),
            Self::IntRange(min, max) => json!({"minimum": min, "maximum": max}),
        }
    }
}

fn text(max: u64, optional: bool) -> Rule {
    Rule::Text { max, optional }
}

fn words(w: &[&str]) -> Rule {
    Rule::Enum(w.iter().map(|s| s.to_string()).collect())
}

fn id(optional: bool) -> Rule {
    Rule::Id { optional }
}

/// Every schema property's rule: (schema, property, rule).
pub fn property_rules() -> Vec<(&'static str, &'static str, Rule)> {
    let mut rules = identity_rules();
    rules.extend(scene_and_project_rules());
    rules.extend([
        ("EstimateInput", "projectId", id(false)),
        ("EstimateInput", "sceneIds", id(false)),
        (
            "EstimateInput",
            "providers",
            words(&["local", "cloud", "auto"]),
        ),
        ("ReorderInput", "sceneIds", id(false)),
        ("WebhookInput", "url", Rule::Url(2048)),
        ("ConsentBody", "consentedBy", text(200, false)),
        ("ConsentBody", "note", text(2000, true)),
        ("ConsentBody", "assetId", id(true)),
        ("TrainBody", "steps", Rule::IntRange(1, 10_000)),
        ("TrainBody", "maxUsd", Rule::Range(0.0, 1_000_000.0)),
        (
            "UploadForm",
            "kind",
            words(&["headshot", "background", "audio", "lora", "consent"]),
        ),
    ]);
    rules
}

/// `IdentityInput` (`domain::Identity::validated` and the API's own checks).
fn identity_rules() -> Vec<(&'static str, &'static str, Rule)> {
    let unit = || Rule::Range(0.0, 1.0);
    vec![
        (
            "IdentityInput",
            "name",
            Rule::Pattern("^[a-z0-9][a-z0-9-]{0,63}$", 64),
        ),
        ("IdentityInput", "displayName", text(100, false)),
        (
            "IdentityInput",
            "triggerWord",
            Rule::Pattern("^[A-Za-z][A-Za-z0-9_]{2,39}$", 40),
        ),
        ("IdentityInput", "description", text(1000, true)),
        ("IdentityInput", "loraUrl", Rule::Url(2048)),
        (
            "IdentityInput",
            "baseModel",
            words(&["flux-dev", "flux-schnell"]),
        ),
        (
            "IdentityInput",
            "voiceId",
            Rule::Pattern("^(?:[A-Za-z0-9]{10,40})?$", 40),
        ),
        (
            "IdentityInput",
            "voiceModel",
            Rule::Pattern("^eleven_[A-Za-z0-9_]{0,57}$", 64),
        ),
        ("IdentityInput", "voiceStability", unit()),
        ("IdentityInput", "voiceSimilarity", unit()),
        ("IdentityInput", "voiceStyle", unit()),
        ("IdentityInput", "headshotAssetId", id(false)),
        ("IdentityInput", "loraAssetId", id(true)),
    ]
}

/// `ProjectInput` and `SceneInput` (`domain::Project::validated`, `domain::Scene::validated`).
fn scene_and_project_rules() -> Vec<(&'static str, &'static str, Rule)> {
    vec![
        ("ProjectInput", "name", text(120, false)),
        ("ProjectInput", "description", text(2000, true)),
        (
            "ProjectInput",
            "aspectRatio",
            words(&["16:9", "9:16", "1:1"]),
        ),
        ("ProjectInput", "defaultIdentityId", id(false)),
        ("ProjectInput", "budgetUsd", Rule::Range(0.0, 1_000_000.0)),
        (
            "ProjectInput",
            "identityGate",
            words(&["off", "warn", "retry", "strict"]),
        ),
        ("ProjectInput", "identityRetries", Rule::IntRange(0, 5)),
        ("SceneInput", "projectId", id(false)),
        ("SceneInput", "name", text(120, false)),
        (
            "SceneInput",
            "dialogue",
            Rule::Speech(MAX_DIALOGUE_CHARS as u64),
        ),
        ("SceneInput", "environment", text(500, true)),
        ("SceneInput", "wardrobe", text(500, true)),
        ("SceneInput", "moodLighting", text(200, true)),
        ("SceneInput", "camera", text(200, true)),
        ("SceneInput", "movement", text(200, true)),
        ("SceneInput", "targetDuration", Rule::Range(1.0, 300.0)),
        ("SceneInput", "identityId", id(false)),
        ("SceneInput", "headshotAssetId", id(false)),
        ("SceneInput", "speechAssetId", id(true)),
        ("SceneInput", "backgroundAssetId", id(true)),
        (
            "SceneInput",
            "generationMode",
            words(&["auto", "standard", "digital-twin"]),
        ),
        ("SceneInput", "animation", words(&["standard", "fast"])),
    ]
}

/// Every query parameter's rule: (path, parameter, rule).
pub fn query_rules() -> Vec<(&'static str, &'static str, Rule)> {
    let steps = LogStep::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let levels = ["DEBUG", "INFO", "WARN", "ERROR"]
        .map(String::from)
        .to_vec();
    vec![
        ("/api/logs", "step", Rule::Enum(steps)),
        ("/api/logs", "level", Rule::Enum(levels)),
    ]
}

/// Create operations whose body requires fields the update does not: (method, path, schema, required fields).
/// The operation gets its own schema `<schema>Create` with those fields required and not nullable.
pub const CREATE_REQUIRED: &[(&str, &str, &str, &[&str])] = &[
    (
        "post",
        "/api/identities",
        "IdentityInput",
        &["name", "displayName", "triggerWord"],
    ),
    ("post", "/api/projects", "ProjectInput", &["name"]),
    (
        "post",
        "/api/scenes",
        "SceneInput",
        &["projectId", "name", "dialogue"],
    ),
];

/// Adds `rule`'s keywords to `prop` (to its items when it is an array); a nullable enum keeps `null`.
fn constrain(prop: &mut Value, rule: &Rule) {
    if prop
        .get("type")
        .is_some_and(|t| t == "array" || t.as_array().is_some_and(|a| a.contains(&json!("array"))))
    {
        if let Some(items) = prop.get_mut("items") {
            constrain(items, rule);
        }
        return;
    }
    let nullable = prop["type"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("null")));
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    if let Value::Object(extra) = rule.keywords() {
        for (k, mut v) in extra {
            if k == "enum"
                && nullable
                && let Some(list) = v.as_array_mut()
            {
                list.push(Value::Null);
            }
            obj.insert(k, v);
        }
    }
}

/// The `<schema>Create` variant: `required` added and made non-nullable.
fn create_variant(base: &Value, required: &[&str]) -> Value {
    let mut schema = base.clone();
    for field in required {
        if let Some(prop) = schema["properties"].get_mut(*field) {
            if let Some(types) = prop["type"].as_array() {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                prop["type"] = if kept.len() == 1 {
                    kept[0].clone()
                } else {
                    Value::Array(kept)
                };
            }
            if let Some(list) = prop.get_mut("enum").and_then(Value::as_array_mut) {
                list.retain(|v| !v.is_null());
            }
        }
    }
    let mut all: Vec<Value> = schema["required"].as_array().cloned().unwrap_or_default();
    all.extend(required.iter().map(|f| json!(f)));
    schema["required"] = Value::Array(all);
    schema
}

/// Applies every rule to the document (as JSON).
pub fn apply(doc: &mut Value) {
    for (schema, field, rule) in property_rules() {
        if let Some(prop) =
            doc.pointer_mut(&format!("/components/schemas/{schema}/properties/{field}"))
        {
            constrain(prop, &rule);
        }
    }
    for (path, param, rule) in query_rules() {
        let Some(item) = doc.pointer_mut(&format!("/paths/{}", path.replace('/', "~1"))) else {
            continue;
        };
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            for p in op
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if p["name"] == param
                    && p["in"] == "query"
                    && let Some(s) = p.get_mut("schema")
                {
                    constrain(s, &rule);
                }
            }
        }
    }
    bound_integer_queries(doc);
    for (method, path, schema, required) in CREATE_REQUIRED {
        let Some(base) = doc
            .pointer(&format!("/components/schemas/{schema}"))
            .cloned()
        else {
            continue;
        };
        let name = format!("{}Create", schema.trim_end_matches("Input"));
        doc["components"]["schemas"][&name] = create_variant(&base, required);
        let body = format!(
            "/paths/{}/{method}/requestBody/content/application~1json/schema",
            path.replace('/', "~1")
        );
        if let Some(s) = doc.pointer_mut(&body) {
            *s = json!({ "$ref": format!("#/components/schemas/{name}") });
        }
    }
}

/// Integer query parameters read into an `i64`: the schema says so (a larger number is a 400). String path and
/// query parameters never hold NUL (a 400: `web::error::json_errors`).
fn bound_integer_queries(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|o| o.values_mut())
    {
        for p in op
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(s) = p.get_mut("schema") else {
                continue;
            };
            let is_int = s["type"] == "integer"
                || s["type"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("integer")));
            if is_int && s.get("minimum").is_none() {
                s["minimum"] = json!(i64::MIN);
                s["maximum"] = json!(i64::MAX);
            }
            let is_text = s["type"] == "string"
                || s["type"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("string")));
            if is_text && s.get("enum").is_none() && s.get("pattern").is_none() {
                s["pattern"] = json!(r"^[^\x00]*$");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_refused_and_the_text_pattern_says_so() {
        assert!(edge_error(" a").is_some());
        assert!(edge_error("a\n").is_some());
        assert!(edge_error("\u{85}a").is_some());
        assert!(edge_error("a b\nc").is_none());
        assert!(edge_error("").is_none());
        let p = text_pattern(true, TEXT_CHAR);
        assert!(p.starts_with("^(?:[^") && p.ends_with("])?)?$"), "{p}");
    }

    #[test]
    fn create_variants_require_non_null_fields() {
        let mut doc = json!({
            "paths": {"/api/projects": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProjectInput"}}}}}}},
            "components": {"schemas": {"ProjectInput": {"type": "object", "properties": {
                "name": {"type": ["string", "null"]}, "aspectRatio": {"type": ["string", "null"]}}}}}
        });
        apply(&mut doc);
        let create = &doc["components"]["schemas"]["ProjectCreate"];
        assert_eq!(create["required"], json!(["name"]));
        assert_eq!(create["properties"]["name"]["type"], "string");
        assert_eq!(create["properties"]["name"]["maxLength"], 120);
        let ratio = &doc["components"]["schemas"]["ProjectInput"]["properties"]["aspectRatio"];
        assert_eq!(ratio["enum"], json!(["16:9", "9:16", "1:1", null]));
        assert_eq!(
            doc["paths"]["/api/projects"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/ProjectCreate"
        );
    }
}
