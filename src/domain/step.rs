//! Pipeline step names, statuses and log vocabulary.

use serde::{Deserialize, Serialize};

/// A node of the scene DAG (or the project's ASSEMBLE step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StepName {
    /// Dialogue → speech + word timings.
    Audio,
    /// Identity + scene → still.
    Image,
    /// Still + prompt → clip of the speech's duration bucket.
    Video,
    /// Clip + speech → clip fitted to the exact speech.
    Lipsync,
    /// Normalise, captions, thumbnail.
    Finalize,
    /// Join the scenes into the project video.
    Assemble,
}

impl StepName {
    /// Every step of one scene, in topological order.
    pub const SCENE_STEPS: [StepName; 5] = [
        Self::Audio,
        Self::Image,
        Self::Video,
        Self::Lipsync,
        Self::Finalize,
    ];

    /// The name used in `--json` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "AUDIO",
            Self::Image => "IMAGE",
            Self::Video => "VIDEO",
            Self::Lipsync => "LIPSYNC",
            Self::Finalize => "FINALIZE",
            Self::Assemble => "ASSEMBLE",
        }
    }

    /// Parses the `--json` name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Audio,
            Self::Image,
            Self::Video,
            Self::Lipsync,
            Self::Finalize,
            Self::Assemble,
        ]
        .into_iter()
        .find(|n| n.as_str() == s)
    }

    /// The log step (user-guide name) this step's rows are filed under.
    pub fn log_step(self) -> LogStep {
        match self {
            Self::Audio => LogStep::AudioGeneration,
            Self::Image => LogStep::ImageGeneration,
            Self::Video => LogStep::VideoGeneration,
            Self::Lipsync => LogStep::LipsyncApplication,
            Self::Finalize => LogStep::VideoFinalize,
            Self::Assemble => LogStep::VideoAssembly,
        }
    }

    /// The steps this one needs within a scene.
    pub fn dependencies(self) -> &'static [StepName] {
        match self {
            Self::Audio | Self::Image => &[],
            Self::Video => &[Self::Image, Self::Audio],
            Self::Lipsync => &[Self::Video, Self::Audio],
            Self::Finalize => &[Self::Lipsync, Self::Audio],
            Self::Assemble => &[Self::Finalize],
        }
    }
}

/// Log row step names, as in the user guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogStep {
    /// Speech synthesis.
    AudioGeneration,
    /// Still generation.
    ImageGeneration,
    /// Mode selection and identity lock decisions.
    IdentityAnchor,
    /// Image-to-video.
    VideoGeneration,
    /// Lip-sync.
    LipsyncApplication,
    /// FINALIZE: normalise a scene's clip, captions, thumbnail.
    VideoFinalize,
    /// ASSEMBLE: join the scenes into the project video.
    VideoAssembly,
    /// Training an identity's LoRA (`devatar identity train`).
    LoraTraining,
}

impl LogStep {
    /// Every log step, for filters.
    pub const ALL: [LogStep; 8] = [
        Self::AudioGeneration,
        Self::ImageGeneration,
        Self::IdentityAnchor,
        Self::VideoGeneration,
        Self::LipsyncApplication,
        Self::VideoFinalize,
        Self::VideoAssembly,
        Self::LoraTraining,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AudioGeneration => "AUDIO_GENERATION",
            Self::ImageGeneration => "IMAGE_GENERATION",
            Self::IdentityAnchor => "IDENTITY_ANCHOR",
            Self::VideoGeneration => "VIDEO_GENERATION",
            Self::LipsyncApplication => "LIPSYNC_APPLICATION",
            Self::VideoFinalize => "VIDEO_FINALIZE",
            Self::VideoAssembly => "VIDEO_ASSEMBLY",
            Self::LoraTraining => "LORA_TRAINING",
        }
    }
}

/// Log severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something degraded (e.g. a fallback).
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }
}

/// Lifecycle of a persisted step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Executing now (or its process died; see the run's owner).
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Not run because a dependency failed.
    Skipped,
    /// Stopped (or never started) because its run was canceled.
    Canceled,
}

impl StepStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Canceled => "canceled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Skipped,
            Self::Canceled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The clip length VIDEO renders for a speech: 5 s or 10 s, or the next multiple of 5 s beyond.
pub fn duration_bucket(speech_seconds: f64) -> u32 {
    let buckets = (speech_seconds.max(0.0) / 5.0).ceil() as u32;
    buckets.max(1) * 5
}

/// Lifecycle of a run (one project or one scene render).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// Claimed and executing.
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed (its dependents were skipped).
    Failed,
    /// Stopped by a user.
    Canceled,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Canceled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// True once the run can change no more.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

/// What a scene's recorded video is: none yet, being made, made, or not made (failed or canceled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SceneStatus {
    /// Never generated.
    Draft,
    /// A run is generating it.
    Generating,
    /// Its video is recorded.
    Completed,
    /// Its last generation failed.
    Failed,
    /// Its last generation was canceled.
    Canceled,
}

impl SceneStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Generating => "generating",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Draft,
            Self::Generating,
            Self::Completed,
            Self::Failed,
            Self::Canceled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What a project's recorded video is: not assembled yet, or assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// No project video yet.
    Draft,
    /// Its assembled video is recorded.
    Completed,
}

impl ProjectStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Completed => "completed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Completed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_status_names_round_trip_and_unknown_names_are_refused() {
        use StepStatus::*;
        for s in [Pending, Running, Succeeded, Failed, Skipped, Canceled] {
            assert_eq!(StepStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(StepStatus::parse("abandoned"), None);
        for r in ["queued", "running", "succeeded", "failed", "canceled"] {
            assert_eq!(RunStatus::parse(r).map(RunStatus::as_str), Some(r));
        }
        assert_eq!(RunStatus::parse(""), None);
        for r in ["draft", "generating", "completed", "failed", "canceled"] {
            assert_eq!(SceneStatus::parse(r).map(SceneStatus::as_str), Some(r));
        }
        assert_eq!(SceneStatus::parse("done"), None);
        for r in ["draft", "completed"] {
            assert_eq!(ProjectStatus::parse(r).map(ProjectStatus::as_str), Some(r));
        }
        assert_eq!(ProjectStatus::parse("generating"), None);
    }
}
