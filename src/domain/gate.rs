//! A project's identity gate: what IMAGE does when a generated still does not look like the identity.

use serde::{Deserialize, Serialize};

/// Extra paid stills IMAGE may generate per scene when none is used (`identity_retries`).
pub const DEFAULT_IDENTITY_RETRIES: u32 = 2;
/// The most extra stills a project may allow per scene.
pub const MAX_IDENTITY_RETRIES: u32 = 5;

/// What IMAGE does with a generated still's identity score (`identity_gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentityGate {
    /// No scoring.
    Off,
    /// Score once; a WARN when the still does not look like the identity, no retries.
    Warn,
    /// Retry with new seeds (and a stronger LoRA), then go on with the best still and a WARN.
    #[default]
    Retry,
    /// Retry like `retry`, then fail the scene before VIDEO when no still looks like the identity.
    Strict,
}

impl IdentityGate {
    /// Every value, in the order forms list them.
    pub const ALL: [Self; 4] = [Self::Off, Self::Warn, Self::Retry, Self::Strict];

    /// Parses `off`, `warn`, `retry` or `strict`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s.trim())
    }

    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Warn => "warn",
            Self::Retry => "retry",
            Self::Strict => "strict",
        }
    }

    /// Extra stills this gate may pay for, given the project's `identity_retries`.
    pub fn retries(self, identity_retries: u32) -> u32 {
        match self {
            Self::Off | Self::Warn => 0,
            Self::Retry | Self::Strict => identity_retries.min(MAX_IDENTITY_RETRIES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_parse_and_only_retrying_gates_retry() {
        for g in IdentityGate::ALL {
            assert_eq!(IdentityGate::parse(g.as_str()), Some(g));
        }
        assert_eq!(IdentityGate::parse("sometimes"), None);
        assert_eq!(IdentityGate::default(), IdentityGate::Retry);
        assert_eq!(IdentityGate::Warn.retries(3), 0);
        assert_eq!(IdentityGate::Strict.retries(9), MAX_IDENTITY_RETRIES);
    }
}
