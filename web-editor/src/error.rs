//! [`ApiError`]: every error answer is `{code, message}` JSON with a status;
//! validation failures add `errors`, one entry per problem.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flowd_engine::ValidationErrors;
use serde_json::json;

/// An error answer of the admin API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    errors: Option<ValidationErrors>,
}

impl ApiError {
    /// An error with a status, a machine code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            errors: None,
        }
    }

    /// 400 for a body that is not what the endpoint takes.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400 with every validation error of a refused deploy.
    pub fn invalid_flows(errors: ValidationErrors) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_flows",
            message: format!(
                "the flows have {} error(s); nothing was deployed",
                errors.len()
            ),
            errors: Some(errors),
        }
    }

    /// 500 for a failure inside flowd (details are logged, not sent).
    pub fn internal(what: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{what}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            what.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(errors) = self.errors {
            body["errors"] = serde_json::to_value(&errors.0).unwrap_or_default();
        }
        (self.status, axum::Json(body)).into_response()
    }
}
