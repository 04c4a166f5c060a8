//! The API's one error shape:
//!
//! ```json
//! {"status": 422, "message": "switches.conf [10.0.0.1] radiusSecret: …",
//!  "errors": [{"field": "radiusSecret", "message": "…"}]}
//! ```
//!
//! `message` is a sentence a person can act on; `errors` names each offending field (422) and
//! is omitted otherwise. Statuses are used as meant: 400 malformed request, 401 no or expired
//! credentials, 403 the role may not, 404 no such object, 409 conflicts with the current state,
//! 422 well-formed but invalid, 503 the database is read-only or unreachable.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FieldError {
    /// The field, as named in the request body (or the configuration key).
    pub field: String,
    pub message: String,
}

/// An API error. Build one with the constructors; it renders as the JSON above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<FieldError>,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
}

/// The body of every error answer (also its OpenAPI schema).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    pub status: u16,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(default)]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, message);
        e.headers
            .push(("www-authenticate", "Bearer realm=\"ironfence\"".into()));
        e
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    /// 422 naming one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let field = field.into();
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
            headers: Vec::new(),
        }
    }
    /// 422 naming several fields.
    pub fn invalid_fields(message: impl Into<String>, errors: Vec<FieldError>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
            errors,
            headers: Vec::new(),
        }
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message);
        e.headers.push(("retry-after", "30".into()));
        e
    }
    /// A failure of this server (a bug, a disk error): logged in full, answered in general.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %error, "admin API: {context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context}: internal error (see the server log)"),
        )
    }

    /// A store failure: read-only or unreachable database → 503 (try again, or use another
    /// server); anything else → 500.
    pub fn store(context: &str, error: ironfence_store::StoreError) -> ApiError {
        if error.is_retryable() {
            ApiError::unavailable(format!(
                "{context}: the database cannot take this request right now ({error}); try again in a moment"
            ))
        } else {
            ApiError::internal(context, error)
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.status.as_u16(),
            message: self.message.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        for (name, value) in &self.headers {
            if let Ok(v) = axum::http::HeaderValue::from_str(value) {
                resp.headers_mut().insert(*name, v);
            }
        }
        resp
    }
}
