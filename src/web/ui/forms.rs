//! Form handling shared by the pages: the CSRF-checked form extractor, field values and errors, and the
//! description of one labelled form control that `templates/field.html` draws.

use std::collections::BTreeMap;

use axum::Form;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use super::{Session, UiError};
use crate::domain::FieldErrors;
use crate::web::AppState;

/// Constant-time comparison of two tokens.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The fields of a submitted form, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `key`, `""` when absent.
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The trimmed value of `key`, `None` when absent or blank.
    pub fn opt(&self, key: &str) -> Option<String> {
        let v = self.get(key).trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    /// Whether a checkbox named `key` was ticked.
    pub fn checked(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A `application/x-www-form-urlencoded` POST whose CSRF token (field `csrf` or header `X-CSRF-Token`)
/// matches the session's.
#[derive(Debug)]
pub(crate) struct PostForm(pub FormData);

impl FromRequest<AppState> for PostForm {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = req.extensions().get::<Session>().cloned();
        let header = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let pairs = if is_form {
            Form::<Vec<(String, String)>>::from_request(req, state)
                .await
                .map_err(|e| {
                    UiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("The form could not be read: {}", e.body_text()),
                    )
                })?
                .0
        } else {
            // A button without fields (htmx may send no body at all).
            let body = Bytes::from_request(req, state).await.map_err(|e| {
                UiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("The request could not be read: {}", e.body_text()),
                )
            })?;
            if !body.is_empty() {
                return Err(UiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Forms must be sent as application/x-www-form-urlencoded.",
                ));
            }
            Vec::new()
        };
        let data = FormData(pairs);
        let sent = match data.get("csrf") {
            "" => header.as_str(),
            v => v,
        };
        match session {
            Some(s) if same_token(sent, &s.csrf) => Ok(PostForm(data)),
            _ => Err(UiError::forbidden()),
        }
    }
}

/// Error messages by form field name (the API's camelCase names).
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldErrs(pub BTreeMap<String, String>);

impl FieldErrs {
    /// Adds a message for a field (several messages are joined).
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        self.0
            .entry(field.to_string())
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&message);
            })
            .or_insert(message);
    }

    /// True when no field has an error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message for one field.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// Takes over the domain's validation errors.
    pub fn extend(&mut self, e: FieldErrors) {
        for f in e.0 {
            self.add(&f.field, f.message);
        }
    }

    /// The validated value, or `None` with its errors recorded.
    pub fn take<T>(&mut self, validated: Result<T, FieldErrors>) -> Option<T> {
        validated.map_err(|e| self.extend(e)).ok()
    }

    /// A database failure while checking a form: 500 with the reason on the form.
    pub fn internal(e: crate::storage::db::DbError) -> (StatusCode, Self) {
        let mut f = Self::default();
        f.add("name", UiError::from(e).message_text());
        (StatusCode::INTERNAL_SERVER_ERROR, f)
    }
}

impl From<FieldErrors> for FieldErrs {
    fn from(e: FieldErrors) -> Self {
        let mut out = Self::default();
        out.extend(e);
        out
    }
}

/// What kind of control a [`FormField`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    /// One line of text.
    Text,
    /// Several lines.
    TextArea,
    /// A number (`step`).
    Number(&'static str),
    /// A URL.
    Url,
    /// A checkbox.
    Checkbox,
    /// A drop-down of (value, label).
    Select(Vec<(String, String)>),
}

/// One labelled form control with its value, hint and error (drawn by `templates/field.html`).
#[derive(Debug, Clone)]
pub(crate) struct FormField {
    /// `name` and (prefixed) `id`.
    pub name: &'static str,
    /// Visible label.
    pub label: &'static str,
    /// The control.
    pub control: Control,
    /// Current value (`"on"` for a ticked checkbox).
    pub value: String,
    /// Help text under the control.
    pub hint: &'static str,
    /// The validation error, if any.
    pub error: Option<String>,
    /// Required by the server.
    pub required: bool,
}

impl FormField {
    /// A text field.
    pub fn text(name: &'static str, label: &'static str, value: impl Into<String>) -> Self {
        Self {
            name,
            label,
            control: Control::Text,
            value: value.into(),
            hint: "",
            error: None,
            required: false,
        }
    }

    /// Changes the control.
    pub fn control(mut self, c: Control) -> Self {
        self.control = c;
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    /// Marks the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Whether this is a text area.
    pub fn is_textarea(&self) -> bool {
        self.control == Control::TextArea
    }

    /// Whether this is a checkbox.
    pub fn is_checkbox(&self) -> bool {
        self.control == Control::Checkbox
    }

    /// The options of a drop-down (empty for other controls).
    pub fn options(&self) -> &[(String, String)] {
        match &self.control {
            Control::Select(o) => o,
            _ => &[],
        }
    }

    /// Whether this is a drop-down.
    pub fn is_select(&self) -> bool {
        matches!(self.control, Control::Select(_))
    }

    /// The `type` attribute of an `<input>`.
    pub fn input_type(&self) -> &'static str {
        match self.control {
            Control::Number(_) => "number",
            Control::Url => "url",
            Control::Checkbox => "checkbox",
            _ => "text",
        }
    }

    /// The `step` of a number input (empty otherwise).
    pub fn step(&self) -> &'static str {
        match self.control {
            Control::Number(s) => s,
            _ => "",
        }
    }
}

/// Attaches the errors to their fields.
pub(crate) fn with_errors(mut fields: Vec<FormField>, errors: &FieldErrs) -> Vec<FormField> {
    for f in &mut fields {
        f.error = errors.get(f.name).map(str::to_string);
    }
    fields
}

/// Parses an optional number field; a value that is not a number is reported on `errors`.
pub(crate) fn number(form: &FormData, field: &str, errors: &mut FieldErrs) -> Option<f64> {
    let v = form.opt(field)?;
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() => Some(n),
        _ => {
            errors.add(field, format!("must be a number (got {v:?})"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(same_token("abc123", "abc123"));
        assert!(!same_token("abc123", "abc124"));
        assert!(!same_token("abc", "abc123"));
        assert!(!same_token("", ""), "an empty token never matches");
    }

    #[test]
    fn form_values_and_errors() {
        let f = FormData(vec![
            ("a".into(), "  x ".into()),
            ("b".into(), " ".into()),
            ("n".into(), "1.5".into()),
            ("bad".into(), "abc".into()),
        ]);
        assert_eq!(f.opt("a").as_deref(), Some("x"));
        assert_eq!(f.opt("b"), None);
        assert!(f.checked("b") && !f.checked("c"));
        let mut e = FieldErrs::default();
        assert_eq!(number(&f, "n", &mut e), Some(1.5));
        assert_eq!(number(&f, "bad", &mut e), None);
        assert!(e.get("bad").is_some_and(|m| m.contains("number")));
        e.add("bad", "second");
        assert!(e.get("bad").is_some_and(|m| m.ends_with("; second")));
    }
}
