//! Domain types: identities, projects, scenes, runs and steps, with their validation rules.
//!
//! This module knows nothing about databases, HTTP or files; every constructor validates its input
//! and reports the offending field by name.

mod gate;
mod identity;
mod ids;
mod project;
mod prompt;
mod step;
mod validate;

pub use gate::{DEFAULT_IDENTITY_RETRIES, IdentityGate, MAX_IDENTITY_RETRIES};
pub use identity::{BaseModel, Identity, LoraScale, is_voice_id};
pub use ids::{AssetId, IdentityId, ProjectId, RunId, SceneId};
pub use project::{Animation, AspectRatio, GenerationMode, MAX_DIALOGUE_CHARS, Project, Scene};
pub use prompt::{ShotType, image_prompt, lora_scale_for, shot_type, video_prompt};
pub use step::{
    LogLevel, LogStep, ProjectStatus, RunStatus, SceneStatus, StepName, StepStatus, duration_bucket,
};
pub use validate::{FieldError, FieldErrors};
