//! The one API error type: `{"error": {"code", "message", "field"?}}` with the right status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::FieldErrors;
use crate::storage::db::DbError;

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message (never a secret or an internal detail).
    pub message: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 401: no valid credentials.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required",
        )
    }

    /// 403: CSRF check failed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409 naming the field.
    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::CONFLICT, "conflict", message)
        }
    }

    /// 422 naming the field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 500 with an opaque message; the cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        let field = e.0.first().map(|f| f.field.clone());
        Self {
            field,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
        }
    }
}

impl From<DbError> for ApiError {
    /// A reference to a missing record is the client's 422 (routes name the field with
    /// [`ApiError::missing_reference`]); anything else is a 500.
    fn from(e: DbError) -> Self {
        if e.is_foreign_key() {
            Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "a referenced record does not exist",
            )
        } else {
            Self::internal(e)
        }
    }
}

impl ApiError {
    /// Maps a write's error: a reference to a missing record becomes a 422 naming `field` ("no such `what`"),
    /// anything else converts as usual.
    pub fn missing_reference(field: &str, what: &str) -> impl FnOnce(DbError) -> ApiError {
        move |e| {
            if e.is_foreign_key() {
                Self::invalid(field, format!("no such {what}"))
            } else {
                e.into()
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // A body over the limit is axum's 413; other buffering failures keep axum's status too.
            JsonRejection::BytesRejection(_) => r.status(),
            _ => StatusCode::BAD_REQUEST,
        };
        let code = match status {
            StatusCode::UNPROCESSABLE_ENTITY => "invalid",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            _ => "bad_request",
        };
        Self::new(status, code, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(f) = self.field {
            error["field"] = json!(f);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

/// JSON body extractor whose rejections use [`ApiError`]. The body must be a JSON object: serde would
/// otherwise accept an array in place of a struct (`[[]]` as a reorder request).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(Self::not_an_object());
        }
        if let Some(e) = refused_string(&value, None) {
            return Err(e);
        }
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = if path == "." {
                    format!("invalid body: {}", e.inner())
                } else {
                    format!("{path}: {}", e.inner())
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            })
    }
}

/// Whether a path or query carries an encoded NUL.
fn nul_in_uri(uri: &axum::http::Uri) -> bool {
    let has = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    has(uri.path()) || uri.query().is_some_and(has)
}

/// 422 naming the top-level field of the first string in `v` that contains NUL (nothing stored can) or starts
/// or ends with whitespace or a control character: the API takes text as it will be stored, never trimming it
/// (so the OpenAPI patterns are exact). A `password` is taken as typed (but without NUL).
fn refused_string(v: &serde_json::Value, field: Option<&str>) -> Option<ApiError> {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => {
            let field = field.unwrap_or("body");
            Some(ApiError::invalid(
                field,
                format!("{field}: must not contain NUL"),
            ))
        }
        Value::String(s) if field != Some("password") => {
            let message = crate::web::openapi::edge_error(s)?;
            let field = field.unwrap_or("body");
            Some(ApiError::invalid(field, format!("{field}: {message}")))
        }
        Value::Array(items) => items.iter().find_map(|i| refused_string(i, field)),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, i)| refused_string(i, Some(field.unwrap_or(k)))),
        _ => None,
    }
}

impl<T> ApiJson<T> {
    fn not_an_object() -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "the body must be a JSON object",
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

/// Query-string extractor whose rejections use [`ApiError`].
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<crate::worker::StartError> for ApiError {
    /// 404 for a missing project or scene, 409 while a run is active, 422 (naming `identityId`) when the scenes
    /// cannot be planned.
    fn from(e: crate::worker::StartError) -> Self {
        use crate::worker::StartError;
        match e {
            StartError::NotFound(what) => ApiError::not_found(what),
            StartError::Busy(run) => {
                ApiError::conflict("id", format!("a run is already in progress ({run})"))
            }
            StartError::Invalid(msg) => {
                let mut f = crate::domain::FieldErrors::default();
                f.push("identityId", msg);
                f.into()
            }
            StartError::Db(e) => ApiError::internal(e),
        }
    }
}

/// The code of an error answer that axum (not a handler) produced.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Middleware for `/api/…`: an error answer that is not JSON yet (axum's own 405, a plain-text extractor
/// rejection such as a multipart body without a boundary) is rewritten into the JSON error shape, keeping its
/// status and headers (e.g. `Allow`). A 5xx keeps no text of its own.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
    let api = req.uri().path().starts_with("/api/");
    if nul_in_uri(req.uri()) {
        // No stored text holds NUL (PostgreSQL cannot), so no lookup by it could succeed.
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "a NUL character (%00) is not allowed in a path or query",
        )
        .into_response();
    }
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let body = json!({ "error": { "code": code_for(status), "message": message } });
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}
