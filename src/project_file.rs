//! The TOML project file used by the CLI: parsing, validation and path resolution.
//!
//! Nothing here writes anywhere: a bad file is reported before the data folder is touched.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{
    Animation, AspectRatio, BaseModel, DEFAULT_IDENTITY_RETRIES, FieldErrors, GenerationMode,
    Identity, IdentityGate, LoraScale, MAX_IDENTITY_RETRIES, Project, Scene,
};

/// A project file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectFileError {
    /// The file could not be read.
    #[error("{file}: cannot read the project file: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// TOML syntax or shape error (unknown field, wrong type, missing field).
    #[error("{file}: line {line}, column {column}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Fields with invalid values.
    #[error("{file}: invalid project file:\n{}", indent(.errors))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Each invalid field.
        errors: FieldErrors,
    },
}

fn indent(errors: &FieldErrors) -> String {
    errors
        .0
        .iter()
        .map(|e| format!("  {}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    project: ProjectSection,
    #[serde(default)]
    identities: Vec<IdentitySection>,
    #[serde(default)]
    scenes: Vec<SceneSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectSection {
    name: String,
    description: Option<String>,
    aspect_ratio: Option<String>,
    default_identity: Option<String>,
    budget_usd: Option<f64>,
    identity_gate: Option<String>,
    identity_retries: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScaleValue {
    Number(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentitySection {
    name: String,
    display_name: String,
    trigger_word: String,
    description: Option<String>,
    lora_url: Option<String>,
    lora_scale: Option<ScaleValue>,
    base_model: Option<String>,
    voice_id: Option<String>,
    voice_model: Option<String>,
    voice_stability: Option<f64>,
    voice_similarity: Option<f64>,
    voice_style: Option<f64>,
    voice_speaker_boost: Option<bool>,
    local_voice: Option<String>,
    headshot: Option<String>,
    reference_photos: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SceneSection {
    name: String,
    dialogue: String,
    identity: Option<String>,
    environment: Option<String>,
    wardrobe: Option<String>,
    mood_lighting: Option<String>,
    camera: Option<String>,
    movement: Option<String>,
    target_duration: Option<f64>,
    headshot: Option<String>,
    mode: Option<String>,
    animation: Option<String>,
}

/// An identity from the file, with its headshot file resolved.
#[derive(Debug, Clone)]
pub struct FileIdentity {
    /// The validated identity.
    pub identity: Identity,
    /// Absolute path of its headshot image.
    pub headshot: Option<PathBuf>,
    /// Absolute paths of its further reference photos (merged into its photo collection: added, never removed).
    pub reference_photos: Vec<PathBuf>,
}

/// A scene from the file, with its identity and headshot resolved.
#[derive(Debug, Clone)]
pub struct FileScene {
    /// The validated scene (its `identity` is the identity's name).
    pub scene: Scene,
    /// Absolute path of its headshot image.
    pub headshot: Option<PathBuf>,
}

/// A fully validated project file.
#[derive(Debug, Clone)]
pub struct ProjectFile {
    /// The project.
    pub project: Project,
    /// Its identities.
    pub identities: Vec<FileIdentity>,
    /// Its scenes, in order.
    pub scenes: Vec<FileScene>,
    /// Name of the default identity.
    pub default_identity: String,
}

/// Largest headshot accepted, bytes.
const MAX_HEADSHOT_BYTES: u64 = 20 * 1024 * 1024;

impl ProjectFile {
    /// Reads and validates a project file; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self, ProjectFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProjectFileError::Read {
            file: path.into(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, path, &base)
    }

    /// Parses and validates `text` (named `file` in messages); relative paths resolve against `base`.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Self, ProjectFileError> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| syntax_error(text, file, &e))?;
        let mut errors = FieldErrors::default();
        let project = project_section(&doc.project, &mut errors);
        let (identities, names) = identity_sections(&doc.identities, base, &mut errors);
        let default_identity = default_identity(
            doc.project.default_identity.as_deref(),
            &identities,
            &mut errors,
        );
        let known = SceneIdentities {
            names: &names,
            any_declared: !doc.identities.is_empty(),
            default: &default_identity,
            several: identities.len() > 1,
        };
        let scenes = scene_sections(&doc.scenes, &known, base, &mut errors);
        if !errors.is_empty() {
            return Err(ProjectFileError::Invalid {
                file: file.into(),
                errors,
            });
        }
        Ok(ProjectFile {
            project,
            identities,
            scenes,
            default_identity,
        })
    }
}

/// A TOML error as a `Syntax` error with the 1-based line and column of its span start.
fn syntax_error(text: &str, file: &Path, e: &toml::de::Error) -> ProjectFileError {
    let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    ProjectFileError::Syntax {
        file: file.into(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

/// The `[project]` section: aspect ratio, then the project's own validation (a fallback project on error).
fn project_section(p: &ProjectSection, errors: &mut FieldErrors) -> Project {
    let aspect_ratio = match p.aspect_ratio.as_deref() {
        None => AspectRatio::default(),
        Some(a) => AspectRatio::parse(a).unwrap_or_else(|| {
            errors.push(
                "project.aspect_ratio",
                format!("must be 16:9, 9:16 or 1:1 (got {a:?})"),
            );
            AspectRatio::default()
        }),
    };
    let identity_gate = match p.identity_gate.as_deref() {
        None => IdentityGate::default(),
        Some(g) => IdentityGate::parse(g).unwrap_or_else(|| {
            errors.push(
                "project.identity_gate",
                format!("must be off, warn, retry or strict (got {g:?})"),
            );
            IdentityGate::default()
        }),
    };
    let fallback = Project {
        aspect_ratio,
        identity_gate,
        ..Project::named(p.name.clone())
    };
    let identity_retries = match p.identity_retries {
        None => DEFAULT_IDENTITY_RETRIES,
        Some(n) => match u32::try_from(n) {
            Ok(n) if n <= MAX_IDENTITY_RETRIES => n,
            _ => {
                errors.push(
                    "project.identity_retries",
                    format!("must be between 0 and {MAX_IDENTITY_RETRIES} (got {n})"),
                );
                DEFAULT_IDENTITY_RETRIES
            }
        },
    };
    let project = Project {
        description: p.description.clone(),
        budget_usd: p.budget_usd,
        identity_retries,
        ..fallback.clone()
    };
    project.validated().unwrap_or_else(|e| {
        errors.extend_prefixed("project", e);
        fallback
    })
}

/// The `[[identities]]` entries that validate, and the set of their names; duplicates are reported.
fn identity_sections(
    sections: &[IdentitySection],
    base: &Path,
    errors: &mut FieldErrors,
) -> (Vec<FileIdentity>, HashSet<String>) {
    if sections.is_empty() {
        errors.push(
            "identities",
            "at least one [[identities]] entry is required",
        );
    }
    let mut identities = Vec::new();
    let (mut names, mut triggers) = (HashSet::new(), HashSet::new());
    for (n, s) in sections.iter().enumerate() {
        let field = format!("identities[{n}]");
        let id = identity_from(s, &field, errors);
        let headshot = s
            .headshot
            .as_deref()
            .and_then(|h| check_image(errors, &format!("{field}.headshot"), base, h));
        let reference_photos = s
            .reference_photos
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(k, p)| {
                check_image(errors, &format!("{field}.reference_photos[{k}]"), base, p)
            })
            .collect();
        match id.validated() {
            Ok(id) => {
                if !names.insert(id.name.clone()) {
                    errors.push(
                        format!("{field}.name"),
                        format!("duplicate identity name {:?}", id.name),
                    );
                }
                if !triggers.insert(id.trigger_word.clone()) {
                    errors.push(
                        format!("{field}.trigger_word"),
                        format!("duplicate trigger word {:?}", id.trigger_word),
                    );
                }
                identities.push(FileIdentity {
                    identity: id,
                    headshot,
                    reference_photos,
                });
            }
            Err(e) => errors.extend_prefixed(&field, snake_fields(e)),
        }
    }
    (identities, names)
}

/// One identity entry as an (unvalidated) `Identity`: LoRA scale and base model are checked here, voice
/// settings left at their defaults when absent.
fn identity_from(s: &IdentitySection, field: &str, errors: &mut FieldErrors) -> Identity {
    let mut id = Identity::new(&s.name, &s.display_name, &s.trigger_word);
    id.description = s.description.clone();
    id.lora_url = s.lora_url.clone();
    match &s.lora_scale {
        None => {}
        Some(ScaleValue::Number(v)) => id.lora_scale = LoraScale::Fixed(*v),
        Some(ScaleValue::Text(t)) => match LoraScale::parse(t) {
            Some(v) => id.lora_scale = v,
            None => errors.push(
                format!("{field}.lora_scale"),
                "must be a number from 0.0 to 1.0 or \"auto\"",
            ),
        },
    }
    if let Some(b) = &s.base_model {
        match BaseModel::parse(b) {
            Some(b) => id.base_model = b,
            None => errors.push(
                format!("{field}.base_model"),
                "must be flux-dev or flux-schnell",
            ),
        }
    }
    id.voice_id = s.voice_id.clone();
    if let Some(m) = &s.voice_model {
        id.voice_model = m.clone();
    }
    id.voice_stability = s.voice_stability.unwrap_or(id.voice_stability);
    id.voice_similarity = s.voice_similarity.unwrap_or(id.voice_similarity);
    id.voice_style = s.voice_style.unwrap_or(id.voice_style);
    id.voice_speaker_boost = s.voice_speaker_boost.unwrap_or(id.voice_speaker_boost);
    id.local_voice = s.local_voice.clone();
    id
}

/// The project's default identity: the one named (checked only when nothing else failed), else the only one,
/// else none (empty).
fn default_identity(
    named: Option<&str>,
    identities: &[FileIdentity],
    errors: &mut FieldErrors,
) -> String {
    match (named, identities.first()) {
        (Some(d), _) => {
            if !identities.iter().any(|i| i.identity.name == d) && errors.is_empty() {
                errors.push(
                    "project.default_identity",
                    format!("no identity named {d:?}"),
                );
            }
            d.to_string()
        }
        (None, Some(first)) if identities.len() == 1 => first.identity.name.clone(),
        _ => String::new(),
    }
}

/// What scenes need to know about the file's identities to resolve their own.
struct SceneIdentities<'a> {
    /// Names of the identities that validated.
    names: &'a HashSet<String>,
    /// The file has at least one `[[identities]]` entry.
    any_declared: bool,
    /// The default identity's name (empty when none).
    default: &'a str,
    /// More than one identity validated.
    several: bool,
}

/// The `[[scenes]]` entries that validate; duplicates are reported.
fn scene_sections(
    sections: &[SceneSection],
    known: &SceneIdentities,
    base: &Path,
    errors: &mut FieldErrors,
) -> Vec<FileScene> {
    if sections.is_empty() {
        errors.push("scenes", "at least one [[scenes]] entry is required");
    }
    let mut scenes = Vec::new();
    let mut scene_names = HashSet::new();
    for (n, s) in sections.iter().enumerate() {
        let field = format!("scenes[{n}]");
        let scene = scene_from(s, &field, known, errors);
        let headshot = s
            .headshot
            .as_deref()
            .and_then(|h| check_image(errors, &format!("{field}.headshot"), base, h));
        match scene.validated() {
            Ok(scene) => {
                if !scene_names.insert(scene.name.clone()) {
                    errors.push(
                        format!("{field}.name"),
                        format!("duplicate scene name {:?}", scene.name),
                    );
                }
                scenes.push(FileScene { scene, headshot });
            }
            Err(e) => errors.extend_prefixed(&field, snake_fields(e)),
        }
    }
    scenes
}

/// One scene entry as an (unvalidated) `Scene`: its identity, mode and animation are checked here, in that order.
fn scene_from(
    s: &SceneSection,
    field: &str,
    known: &SceneIdentities,
    errors: &mut FieldErrors,
) -> Scene {
    let identity = scene_identity(s.identity.as_deref(), field, known, errors);
    let mode = match s.mode.as_deref() {
        None => GenerationMode::Auto,
        Some(m) => GenerationMode::parse(m).unwrap_or_else(|| {
            errors.push(
                format!("{field}.mode"),
                format!("must be auto, standard or digital-twin (got {m:?})"),
            );
            GenerationMode::Auto
        }),
    };
    let animation = match s.animation.as_deref() {
        None => Animation::Standard,
        Some(a) => Animation::parse(a).unwrap_or_else(|| {
            errors.push(
                format!("{field}.animation"),
                format!("must be standard or fast (got {a:?})"),
            );
            Animation::Standard
        }),
    };
    Scene {
        name: s.name.clone(),
        dialogue: s.dialogue.clone(),
        environment: s.environment.clone(),
        wardrobe: s.wardrobe.clone(),
        mood_lighting: s.mood_lighting.clone(),
        camera: s.camera.clone(),
        movement: s.movement.clone(),
        target_duration: s.target_duration,
        identity,
        generation_mode: mode,
        animation,
    }
}

/// A scene's identity name: the one it names (which must exist), else the default, else none (an error when
/// several identities leave the choice open).
fn scene_identity(
    named: Option<&str>,
    field: &str,
    known: &SceneIdentities,
    errors: &mut FieldErrors,
) -> String {
    match named {
        Some(i) => {
            if !known.names.contains(i.trim()) && known.any_declared {
                errors.push(
                    format!("{field}.identity"),
                    format!("no identity named {i:?}"),
                );
            }
            i.trim().to_string()
        }
        None if !known.default.is_empty() => known.default.to_string(),
        None => {
            if known.several {
                errors.push(
                    format!("{field}.identity"),
                    "required: the project has several identities and no default_identity",
                );
            }
            String::new()
        }
    }
}

/// Domain errors name fields in camelCase (as the API does); the file uses snake_case.
fn snake_fields(e: FieldErrors) -> FieldErrors {
    let mut out = FieldErrors::default();
    for f in e.0 {
        let mut snake = String::new();
        for c in f.field.chars() {
            if c.is_ascii_uppercase() {
                snake.push('_');
                snake.push(c.to_ascii_lowercase());
            } else {
                snake.push(c);
            }
        }
        out.push(snake, f.message);
    }
    out
}

/// Resolves an image path and checks it is a readable PNG or JPEG of sane size.
fn check_image(errors: &mut FieldErrors, field: &str, base: &Path, rel: &str) -> Option<PathBuf> {
    let rel = rel.trim();
    if rel.is_empty() {
        errors.push(field, "must not be empty");
        return None;
    }
    let path = base.join(rel);
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            errors.push(field, format!("{} is not a file", path.display()));
            return None;
        }
        Err(e) => {
            errors.push(field, format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    if meta.len() > MAX_HEADSHOT_BYTES {
        errors.push(field, format!("{} is larger than 20 MB", path.display()));
        return None;
    }
    let mut head = [0u8; 8];
    let read = std::fs::File::open(&path).and_then(|mut f| std::io::Read::read(&mut f, &mut head));
    match read {
        Ok(n) if image_kind(&head[..n]).is_some() => Some(path),
        Ok(_) => {
            errors.push(
                field,
                format!("{} is not a PNG or JPEG image", path.display()),
            );
            None
        }
        Err(e) => {
            errors.push(field, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

/// Sniffs PNG/JPEG from the first bytes; returns (extension, MIME type).
pub fn image_kind(head: &[u8]) -> Option<(&'static str, &'static str)> {
    if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(("png", "image/png"))
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("jpg", "image/jpeg"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[project]
name = "Demo"

[[identities]]
name = "deven"
display_name = "Deven Spear"
trigger_word = "TOK_DEVEN"

[[scenes]]
name = "intro"
dialogue = "Hello there."
camera = "close-up"
"#;

    fn parse(text: &str) -> Result<ProjectFile, ProjectFileError> {
        ProjectFile::parse(text, Path::new("p.toml"), Path::new("."))
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.project.aspect_ratio, AspectRatio::Landscape);
        assert_eq!(f.scenes[0].scene.identity, "deven");
        assert_eq!(f.scenes[0].scene.generation_mode, GenerationMode::Auto);
        assert_eq!(f.scenes[0].scene.animation, Animation::Standard);
        assert_eq!(f.identities[0].identity.lora_scale, LoraScale::Fixed(0.95));
    }

    #[test]
    fn an_identity_may_name_its_offline_voice() {
        let named = GOOD.replace(
            "trigger_word = \"TOK_DEVEN\"",
            "trigger_word = \"TOK_DEVEN\"\nlocal_voice = \"en_US-joe-medium\"",
        );
        let f = parse(&named).unwrap();
        assert_eq!(
            f.identities[0].identity.local_voice.as_deref(),
            Some("en_US-joe-medium")
        );
        assert_eq!(
            parse(GOOD).unwrap().identities[0].identity.local_voice,
            None
        );
        let err = parse(&named.replace("en_US-joe-medium", "joe; rm -rf"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("local_voice") || err.contains("localVoice"),
            "{err}"
        );
    }

    #[test]
    fn animation_is_standard_or_fast() {
        let fast = parse(&GOOD.replace("camera = \"close-up\"", "animation = \"fast\"")).unwrap();
        assert_eq!(fast.scenes[0].scene.animation, Animation::Fast);
        let err = parse(&GOOD.replace("camera = \"close-up\"", "animation = \"quick\""))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("animation") && err.contains("standard or fast"),
            "{err}"
        );
    }

    #[test]
    fn syntax_and_unknown_fields_report_the_line() {
        let err = parse(&GOOD.replace("camera = \"close-up\"", "camera = \"close-up\nzoom = 3"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml: line "), "{err}");
        let err = parse(&GOOD.replace("camera =", "lens ="))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 13") && err.contains("unknown field `lens`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_name_the_field() {
        let bad = GOOD
            .replace("Hello there.", "   ")
            .replace("name = \"Demo\"", "name = \"Demo\"\naspect_ratio = \"4:3\"")
            .replace("TOK_DEVEN", "TOK DEVEN");
        let err = parse(&bad).unwrap_err().to_string();
        for field in [
            "project.aspect_ratio",
            "identities[0].trigger_word",
            "scenes[0].dialogue",
        ] {
            assert!(err.contains(field), "{field} missing in {err}");
        }
    }

    #[test]
    fn the_identity_gate_and_its_retries_are_read_and_checked() {
        let f = parse(GOOD).unwrap();
        assert_eq!(f.project.identity_gate, IdentityGate::Retry);
        assert_eq!(f.project.identity_retries, DEFAULT_IDENTITY_RETRIES);
        let set = "name = \"Demo\"\nidentity_gate = \"strict\"\nidentity_retries = 4";
        let f = parse(&GOOD.replace("name = \"Demo\"", set)).unwrap();
        assert_eq!(f.project.identity_gate, IdentityGate::Strict);
        assert_eq!(f.project.identity_retries, 4);
        let bad = "name = \"Demo\"\nidentity_gate = \"always\"\nidentity_retries = 9";
        let err = parse(&GOOD.replace("name = \"Demo\"", bad))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("project.identity_gate") && err.contains("project.identity_retries"),
            "{err}"
        );
    }

    #[test]
    fn reference_photos_resolve_against_the_file_and_bad_ones_name_their_entry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jpg"), [0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not an image").unwrap();
        let with = |list: &str| {
            GOOD.replace(
                "trigger_word = \"TOK_DEVEN\"",
                &format!("trigger_word = \"TOK_DEVEN\"\nreference_photos = {list}"),
            )
        };
        let f = ProjectFile::parse(&with("[\"a.jpg\"]"), Path::new("p.toml"), dir.path()).unwrap();
        assert_eq!(
            f.identities[0].reference_photos,
            vec![dir.path().join("a.jpg")]
        );
        let err = ProjectFile::parse(
            &with("[\"a.jpg\", \"nope.jpg\", \"notes.txt\"]"),
            Path::new("p.toml"),
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("identities[0].reference_photos[1]: cannot read")
                && err.contains("identities[0].reference_photos[2]:")
                && err.contains("notes.txt is not a PNG or JPEG image")
                && !err.contains("reference_photos[0]"),
            "{err}"
        );
    }

    #[test]
    fn missing_headshot_file_is_reported() {
        let err = parse(&GOOD.replace("camera =", "headshot = \"nope.png\"\ncamera ="))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scenes[0].headshot") && err.contains("nope.png"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{target, text_from};

    const PIECES: &[&str] = &[
        "[project]\n",
        "[[identities]]\n",
        "[[scenes]]\n",
        "name = ",
        "display_name = ",
        "trigger_word = ",
        "dialogue = ",
        "identity = ",
        "default_identity = ",
        "aspect_ratio = ",
        "budget_usd = ",
        "lora_scale = ",
        "lora_url = ",
        "base_model = ",
        "voice_stability = ",
        "target_duration = ",
        "headshot = ",
        "mode = ",
        "animation = ",
        "camera = ",
        "\"demo\"",
        "\"deven\"",
        "\"TOK_DEVEN\"",
        "\"Hello there.\"",
        "\"16:9\"",
        "\"9:16\"",
        "\"auto\"",
        "\"flux-dev\"",
        "\"digital-twin\"",
        "\"fast\"",
        "\"close-up\"",
        "\"x.png\"",
        "\"../../etc/passwd\"",
        "\"https://e.com/a.safetensors\"",
        "0.95",
        "-1",
        "1e309",
        "nan",
        "inf",
        "12",
        "true",
        "[1, 2]",
        "{}",
        "\"\"",
        "\"é\u{200b}\"",
        "\n",
        " ",
        "#",
        "\"\"\"",
        "'",
        "=",
        ".",
    ];

    /// Any text is either a project file whose values passed validation, or a syntax or field error that names the
    /// file (with a line and column inside the text for syntax errors); never a panic.
    #[test]
    fn fuzz_project_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("project.toml");
        target("project_file", |u| {
            let text = text_from(u, PIECES)?;
            match ProjectFile::parse(&text, &file, dir.path()) {
                Ok(p) => {
                    assert!(!p.project.name.trim().is_empty());
                    assert!(p.scenes.iter().all(|s| !s.scene.dialogue.trim().is_empty()));
                    if let Some(b) = p.project.budget_usd {
                        assert!(b.is_finite() && b >= 0.0, "{b}");
                    }
                }
                Err(e) => {
                    let shown = e.to_string();
                    assert!(shown.contains("project.toml"), "{shown}");
                    if let ProjectFileError::Syntax { line, column, .. } = e {
                        assert!(
                            line >= 1 && line <= text.lines().count().max(1) + 1,
                            "{line}"
                        );
                        assert!(column >= 1);
                    }
                }
            }
            Ok(())
        });
    }
}
