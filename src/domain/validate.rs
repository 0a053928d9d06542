//! Field-level validation errors shared by every domain constructor.

use std::fmt;

/// One invalid field: its path (e.g. `scenes[1].dialogue`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Path of the field, as the user wrote it.
    pub field: String,
    /// Human-readable reason.
    pub message: String,
}

/// All invalid fields found in one value; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// Records one invalid field.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Appends another set of errors, prefixing their field paths.
    pub fn extend_prefixed(&mut self, prefix: &str, other: FieldErrors) {
        for e in other.0 {
            self.push(format!("{prefix}.{}", e.field), e.message);
        }
    }

    /// True when no field is invalid.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when valid, the errors otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Checks a required free-text field: trimmed, non-empty, at most `max` characters.
pub(crate) fn required_text(
    errors: &mut FieldErrors,
    field: &str,
    value: &str,
    max: usize,
) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(field, "is required and must not be empty");
    } else {
        check_len(errors, field, v, max);
    }
    v.to_string()
}

/// Checks an optional free-text field: trimmed, empty becomes `None`, at most `max` characters.
pub(crate) fn optional_text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    check_len(errors, field, v, max);
    Some(v.to_string())
}

fn check_len(errors: &mut FieldErrors, field: &str, v: &str, max: usize) {
    if v.chars().count() > max {
        errors.push(field, format!("must be at most {max} characters"));
    } else if v
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        errors.push(field, "must not contain control characters");
    }
}

/// Checks that a number lies in `[min, max]`.
pub(crate) fn in_range(errors: &mut FieldErrors, field: &str, v: f64, min: f64, max: f64) {
    if !v.is_finite() || v < min || v > max {
        errors.push(field, format!("must be between {min} and {max} (got {v})"));
    }
}
