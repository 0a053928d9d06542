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

    /// 429.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
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
            _ => StatusCode::BAD_REQUEST,
        };
        let code = if status == StatusCode::UNPROCESSABLE_ENTITY {
            "invalid"
        } else {
            "bad_request"
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

/// JSON body extractor whose rejections use [`ApiError`].
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
