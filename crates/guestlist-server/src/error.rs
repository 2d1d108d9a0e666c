//! The one error type of the HTTP layer and its single mapping to HTTP responses.
//!
//! Bodies are `{"error":{"code":"…","message":"…"}}` ([`guestlist_core::model::ApiError`]);
//! 5xx details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guestlist_core::model::{ApiError as ApiErrorBody, ApiErrorBody as Inner};
use serde_json::json;

use crate::auth::AuthError;
use crate::store::StoreError;

/// An error answered by the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a stable code.
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `claims.missing_email`.
        code: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// 401/403/503 from authentication.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Storage errors (404, 409, 412, 422, 500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 428: a decision without `If-Match`.
    #[error("If-Match with the request's version (its ETag) is required")]
    PreconditionRequired,
    /// 404 for unknown routes.
    #[error("no such route")]
    NoRoute,
    /// Any other client error with its status (413, 415, …).
    #[error("{message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// Human-readable message.
        message: String,
    },
}

impl ApiError {
    /// A 400 error.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }
}

fn body(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ApiErrorBody {
            error: Inner {
                code: code.into(),
                message,
            },
        }),
    )
        .into_response()
}

fn www_authenticate(mut resp: Response, error: &str, description: &str) -> Response {
    let v = format!(
        "Bearer error=\"{error}\", error_description=\"{}\"",
        description.replace(['"', '\\'], "'")
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest { code, message } => body(StatusCode::BAD_REQUEST, code, message),
            ApiError::Auth(AuthError::Unauthorized(m)) => www_authenticate(
                body(StatusCode::UNAUTHORIZED, "auth.unauthorized", m.clone()),
                "invalid_token",
                &m,
            ),
            ApiError::Auth(AuthError::Forbidden(m)) => www_authenticate(
                body(StatusCode::FORBIDDEN, "auth.forbidden", m.clone()),
                "insufficient_scope",
                &m,
            ),
            ApiError::Auth(AuthError::NotConfigured(m)) => {
                body(StatusCode::SERVICE_UNAVAILABLE, "auth.not_configured", m)
            }
            ApiError::Auth(AuthError::IssuerUnavailable(m)) => body(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth.issuer_unavailable",
                m,
            ),
            ApiError::Auth(AuthError::Refused { code, message }) => www_authenticate(
                body(StatusCode::FORBIDDEN, code, message.clone()),
                "insufficient_scope",
                &message,
            ),
            ApiError::PreconditionRequired => body(
                StatusCode::PRECONDITION_REQUIRED,
                "request.precondition_required",
                self.to_string(),
            ),
            ApiError::NoRoute => body(StatusCode::NOT_FOUND, "route.not_found", self.to_string()),
            ApiError::Status {
                status,
                code,
                message,
            } => body(status, code, message),
            ApiError::Store(e) => {
                let code = e.code();
                let message = e.to_string();
                match e {
                    StoreError::NotFound(_) => body(StatusCode::NOT_FOUND, code, message),
                    StoreError::IdempotencyKeyReused => {
                        body(StatusCode::UNPROCESSABLE_ENTITY, code, message)
                    }
                    StoreError::VersionMismatch { request, .. } => (
                        StatusCode::PRECONDITION_FAILED,
                        Json(json!({"error": {"code": code, "message": message}, "current": request})),
                    )
                        .into_response(),
                    StoreError::AlreadyDecided { request } => (
                        StatusCode::CONFLICT,
                        Json(json!({"error": {"code": code, "message": message}, "current": request})),
                    )
                        .into_response(),
                    other => {
                        tracing::error!(error = %other, "storage failure");
                        body(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            code,
                            "internal error; see the server log".into(),
                        )
                    }
                }
            }
        }
    }
}
