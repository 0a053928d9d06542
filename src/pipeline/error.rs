//! Typed step failures: the message logged and stored is the one users have always read; the class says how
//! the failure should be treated (the provider's own error class when a provider failed).

use std::sync::Arc;

use crate::media::MediaError;
use crate::providers::ProviderError;
use crate::storage::db::DbError;
use crate::storage::objects::ObjectError;

/// How a step failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The provider refused or failed the job (auth, validation, policy, quota): repeating it will not help.
    Rejected,
    /// The provider stayed unreachable or kept failing through its retries, or its deadline passed: a later
    /// render may succeed.
    Unavailable,
    /// A paid submit's outcome is unknown: a person must decide before it is repeated.
    NeedsAttention,
    /// The request cannot be served by the provider (its configuration or the scene's input).
    Invalid,
    /// The provider or the step produced unusable output.
    BadOutput,
    /// A media tool (ffmpeg, ffprobe) or a work file failed.
    Media,
    /// The database, the media storage or the provider-job ledger failed.
    Storage,
    /// The pipeline itself failed (a missing dependency output, a work folder, a malformed graph).
    Internal,
}

impl ErrorClass {
    /// The class as stored with the failure's log row (`rejected`, `unavailable`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::NeedsAttention => "needs-attention",
            Self::Invalid => "invalid",
            Self::BadOutput => "bad-output",
            Self::Media => "media",
            Self::Storage => "storage",
            Self::Internal => "internal",
        }
    }

    /// The class of a provider failure.
    pub fn of_provider(e: &ProviderError) -> Self {
        match e {
            ProviderError::Media(_) | ProviderError::Io(_) => Self::Media,
            ProviderError::Invalid(_) => Self::Invalid,
            ProviderError::BadOutput(_) => Self::BadOutput,
            ProviderError::Rejected { .. } => Self::Rejected,
            ProviderError::Unavailable { .. } => Self::Unavailable,
            ProviderError::NeedsAttention(_) => Self::NeedsAttention,
        }
    }
}

/// Why a step failed. Displays exactly the message that is logged and stored with the step.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// The step's provider failed.
    #[error("{source}")]
    Provider {
        /// The provider's error class.
        class: ErrorClass,
        /// What the provider said.
        source: Arc<ProviderError>,
    },
    /// A media tool failed (probe, normalise, thumbnail, crossfade join).
    #[error(transparent)]
    Media(Arc<MediaError>),
    /// The database, the media storage or the provider-job ledger failed.
    #[error("{0}")]
    Storage(String),
    /// The step's output is unusable (e.g. shorter than the speech).
    #[error("{0}")]
    BadOutput(String),
    /// The pipeline itself failed: a missing dependency output, a work file, a closed semaphore, a malformed
    /// graph.
    #[error("{0}")]
    Internal(String),
}

impl StepError {
    /// How the failure should be treated.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Provider { class, .. } => *class,
            Self::Media(_) => ErrorClass::Media,
            Self::Storage(_) => ErrorClass::Storage,
            Self::BadOutput(_) => ErrorClass::BadOutput,
            Self::Internal(_) => ErrorClass::Internal,
        }
    }
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        Self::Provider {
            class: ErrorClass::of_provider(&e),
            source: Arc::new(e),
        }
    }
}

impl From<MediaError> for StepError {
    fn from(e: MediaError) -> Self {
        Self::Media(Arc::new(e))
    }
}

impl From<DbError> for StepError {
    fn from(e: DbError) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<ObjectError> for StepError {
    fn from(e: ObjectError) -> Self {
        Self::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_keep_their_message_and_carry_their_class() {
        let e = StepError::from(ProviderError::Unavailable {
            provider: "fal",
            message: "timed out (after 3 attempts)".into(),
        });
        assert_eq!(e.to_string(), "fal: timed out (after 3 attempts)");
        assert_eq!(e.class(), ErrorClass::Unavailable);
        let e = StepError::from(ProviderError::NeedsAttention("submit uncertain".into()));
        assert_eq!(e.to_string(), "needs attention: submit uncertain");
        assert_eq!(e.class().as_str(), "needs-attention");
        let e = StepError::from(ProviderError::Invalid("no voice".into()));
        assert_eq!(e.to_string(), "invalid request: no voice");
        assert_eq!(e.class(), ErrorClass::Invalid);
    }
}
