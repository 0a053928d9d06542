//! Small helpers shared by the fakes: time formats, body validation, responses.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_secs() -> i64 {
    (unix_ms() / 1000) as i64
}

fn civil(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-05-01T12:00:00.000Z`.
pub(crate) fn iso8601(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for `Retry-After`.
pub(crate) fn http_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let (y, mo, d) = civil(days);
    let rem = secs.rem_euclid(86_400);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A JSON answer.
pub(crate) fn json(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

/// Adds a header, ignoring values that cannot be headers.
pub(crate) fn with_header(mut resp: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
    resp
}

/// A header as text, if present and printable.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the body is labelled JSON (or not labelled at all).
pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(ct) => ct.to_ascii_lowercase().contains("json"),
    }
}

/// A query string parsed into pairs.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of one query parameter.
pub(crate) fn query_get(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// One validation problem, FastAPI style.
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    /// Where: `["body", "loras", 0, "path"]`.
    pub loc: Vec<Value>,
    /// Human message.
    pub msg: String,
    /// Machine type.
    pub kind: &'static str,
}

impl Issue {
    /// FastAPI's `{loc, msg, type}`.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({"loc": self.loc, "msg": self.msg, "type": self.kind})
    }

    /// The dotted field path without the leading `body`.
    pub(crate) fn field(&self) -> String {
        self.loc
            .iter()
            .skip(1)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Collects validation problems for one body.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// Problems found.
    pub issues: Vec<Issue>,
}

/// A location builder: `loc(&["body", "x"])`.
pub(crate) fn loc(parts: &[&str]) -> Vec<Value> {
    parts.iter().map(|p| Value::String((*p).into())).collect()
}

/// `loc` extended with one more part.
pub(crate) fn loc_push(base: &[Value], part: impl Into<Value>) -> Vec<Value> {
    let mut l = base.to_vec();
    l.push(part.into());
    l
}

/// What makes a URL acceptable to a fake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UrlRules {
    /// `data:` URIs are accepted.
    pub data: bool,
    /// Hugging Face style `owner/repo[/file]` paths are accepted.
    pub hf_path: bool,
}

impl Checker {
    /// Records a problem.
    pub(crate) fn add(&mut self, loc: Vec<Value>, msg: impl Into<String>, kind: &'static str) {
        self.issues.push(Issue {
            loc,
            msg: msg.into(),
            kind,
        });
    }

    /// Whether nothing was found.
    pub(crate) fn ok(&self) -> bool {
        self.issues.is_empty()
    }

    /// Flags fields outside `allowed`.
    pub(crate) fn unknown_fields(
        &mut self,
        map: &Map<String, Value>,
        base: &[Value],
        allowed: &[&str],
    ) {
        for k in map.keys() {
            if !allowed.contains(&k.as_str()) {
                self.add(
                    loc_push(base, k.clone()),
                    format!("property {k} does not exist"),
                    "value_error.extra",
                );
            }
        }
    }

    /// A string field; `None` when absent (or recorded as a problem when required or mistyped).
    pub(crate) fn string<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        base: &[Value],
        key: &str,
        required: bool,
    ) -> Option<&'a str> {
        match map.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.add(loc_push(base, key), "field required", "value_error.missing");
                }
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.add(loc_push(base, key), "str type expected", "type_error.str");
                None
            }
        }
    }

    /// A non-blank string field.
    pub(crate) fn text<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        base: &[Value],
        key: &str,
        required: bool,
        max_chars: Option<usize>,
    ) -> Option<&'a str> {
        let s = self.string(map, base, key, required)?;
        if required && s.trim().is_empty() {
            self.add(
                loc_push(base, key),
                "must not be empty",
                "value_error.any_str.min_length",
            );
            return None;
        }
        if let Some(max) = max_chars
            && s.chars().count() > max
        {
            self.add(
                loc_push(base, key),
                format!("ensure this value has at most {max} characters"),
                "value_error.any_str.max_length",
            );
            return None;
        }
        Some(s)
    }

    /// A string that must be one of `allowed`.
    pub(crate) fn one_of<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        base: &[Value],
        key: &str,
        allowed: &[&str],
        required: bool,
    ) -> Option<&'a str> {
        let s = self.string(map, base, key, required)?;
        if allowed.contains(&s) {
            Some(s)
        } else {
            self.add(
                loc_push(base, key),
                format!(
                    "value is not a valid enumeration member; permitted: {}",
                    allowed.join(", ")
                ),
                "type_error.enum",
            );
            None
        }
    }

    /// A number in `[min, max]`.
    pub(crate) fn number(
        &mut self,
        map: &Map<String, Value>,
        base: &[Value],
        key: &str,
        min: f64,
        max: f64,
    ) -> Option<f64> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if v.is_finite() && v >= min && v <= max {
                    Some(v)
                } else {
                    self.add(
                        loc_push(base, key),
                        format!("ensure this value is between {min} and {max}"),
                        "value_error.number.not_in_range",
                    );
                    None
                }
            }
            Some(_) => {
                self.add(
                    loc_push(base, key),
                    "value is not a valid number",
                    "type_error.float",
                );
                None
            }
        }
    }

    /// An integer in `[min, max]`.
    pub(crate) fn integer(
        &mut self,
        map: &Map<String, Value>,
        base: &[Value],
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n
                .as_i64()
                .or_else(|| n.as_u64().map(|u| u.min(i64::MAX as u64) as i64))
            {
                Some(v) if v >= min && v <= max => Some(v),
                Some(_) => {
                    self.add(
                        loc_push(base, key),
                        format!("ensure this value is between {min} and {max}"),
                        "value_error.number.not_in_range",
                    );
                    None
                }
                None => {
                    self.add(
                        loc_push(base, key),
                        "value is not a valid integer",
                        "type_error.integer",
                    );
                    None
                }
            },
            Some(_) => {
                self.add(
                    loc_push(base, key),
                    "value is not a valid integer",
                    "type_error.integer",
                );
                None
            }
        }
    }

    /// A boolean.
    pub(crate) fn boolean(
        &mut self,
        map: &Map<String, Value>,
        base: &[Value],
        key: &str,
    ) -> Option<bool> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.add(
                    loc_push(base, key),
                    "value could not be parsed to a boolean",
                    "type_error.bool",
                );
                None
            }
        }
    }

    /// An object.
    pub(crate) fn object<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        base: &[Value],
        key: &str,
        required: bool,
    ) -> Option<&'a Map<String, Value>> {
        match map.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.add(loc_push(base, key), "field required", "value_error.missing");
                }
                None
            }
            Some(Value::Object(o)) => Some(o),
            Some(_) => {
                self.add(
                    loc_push(base, key),
                    "value is not a valid dict",
                    "type_error.dict",
                );
                None
            }
        }
    }

    /// An array.
    pub(crate) fn array<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        base: &[Value],
        key: &str,
        required: bool,
    ) -> Option<&'a Vec<Value>> {
        match map.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.add(loc_push(base, key), "field required", "value_error.missing");
                }
                None
            }
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                self.add(
                    loc_push(base, key),
                    "value is not a valid list",
                    "type_error.list",
                );
                None
            }
        }
    }

    /// A URL field: no surrounding or inner whitespace, no control characters, an accepted scheme.
    pub(crate) fn url<'a>(
        &mut self,
        map: &'a Map<String, Value>,
        base: &[Value],
        key: &str,
        required: bool,
        rules: UrlRules,
    ) -> Option<&'a str> {
        let s = self.string(map, base, key, required)?;
        self.check_url(loc_push(base, key), s, rules).then_some(s)
    }

    /// Checks one URL value; records a "Failed to download file" problem when it is unusable.
    pub(crate) fn check_url(&mut self, at: Vec<Value>, s: &str, rules: UrlRules) -> bool {
        let problem = url_problem(s, rules);
        if let Some(p) = problem {
            self.add(
                at,
                format!("Failed to download file: {p}"),
                "file_download_error",
            );
            false
        } else {
            true
        }
    }
}

/// Why a URL would not download, if it would not.
pub(crate) fn url_problem(s: &str, rules: UrlRules) -> Option<&'static str> {
    if s.trim().is_empty() {
        return Some("the URL is empty");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("the URL contains whitespace or control characters");
    }
    if rules.data && s.starts_with("data:") {
        return if s.contains(',') {
            None
        } else {
            Some("malformed data URI")
        };
    }
    if let Ok(u) = url::Url::parse(s)
        && matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some()
    {
        return None;
    }
    if rules.hf_path {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() >= 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
        {
            return None;
        }
    }
    Some("not an http(s) URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn urls_are_checked() {
        let r = UrlRules {
            data: true,
            hf_path: false,
        };
        assert!(url_problem("https://x.test/a.safetensors", r).is_none());
        assert!(url_problem("https://x.test/a.safetensors\n", r).is_some());
        assert!(url_problem("  ", r).is_some());
        assert!(url_problem("data:audio/mpeg;base64,AAAA", r).is_none());
        assert!(
            url_problem(
                "data:audio/mpeg;base64,AAAA",
                UrlRules {
                    data: false,
                    hf_path: false
                }
            )
            .is_some()
        );
        assert!(
            url_problem(
                "owner/repo",
                UrlRules {
                    data: false,
                    hf_path: true
                }
            )
            .is_none()
        );
        assert!(url_problem("ftp://x.test/a", r).is_some());
    }
}
