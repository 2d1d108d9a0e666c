//! The one error type of the HTTP layer and its single mapping to HTTP responses.
//!
//! Bodies are `{"error":{"code":"…","message":"…"}}` ([`guestlist_core::model::ErrorBody`]);
//! 5xx details are logged once (with the request id, by the router's 5xx logger, from
//! [`ServerErrorDetail`]), never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guestlist_core::Code;
use guestlist_core::model::{ErrorBody, ErrorDetail};
use serde_json::json;

use crate::auth::AuthError;
use crate::store::StoreError;

/// What a 5xx answer failed on: a response extension set by [`ApiError`]'s mapping and read by
/// the router's 5xx logger (`log_server_errors` in `lib.rs`), which writes the one ERROR line of
/// the answer (with its request id). Never sent to the caller.
#[derive(Debug, Clone)]
pub struct ServerErrorDetail(pub std::sync::Arc<str>);

/// An error answered by the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a stable code.
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `claims.missing_email`.
        code: Code,
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
        code: Code,
        /// Human-readable message.
        message: String,
    },
}

impl ApiError {
    /// A 400 error.
    pub fn bad_request(code: Code, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }
}

fn body(status: StatusCode, code: Code, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail { code, message },
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
                body(StatusCode::UNAUTHORIZED, Code::AuthUnauthorized, m.clone()),
                "invalid_token",
                &m,
            ),
            ApiError::Auth(AuthError::Forbidden(m)) => www_authenticate(
                body(StatusCode::FORBIDDEN, Code::AuthForbidden, m.clone()),
                "insufficient_scope",
                &m,
            ),
            ApiError::Auth(AuthError::NotConfigured(m)) => {
                body(StatusCode::SERVICE_UNAVAILABLE, Code::AuthNotConfigured, m)
            }
            ApiError::Auth(AuthError::IssuerUnavailable(m)) => body(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::AuthIssuerUnavailable,
                m,
            ),
            ApiError::Auth(AuthError::Refused { code, message }) => www_authenticate(
                body(StatusCode::FORBIDDEN, code, message.clone()),
                "insufficient_scope",
                &message,
            ),
            ApiError::PreconditionRequired => body(
                StatusCode::PRECONDITION_REQUIRED,
                Code::RequestPreconditionRequired,
                self.to_string(),
            ),
            ApiError::NoRoute => body(StatusCode::NOT_FOUND, Code::RouteNotFound, self.to_string()),
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
                    StoreError::SecondApproverRequired => body(StatusCode::FORBIDDEN, code, message),
                    StoreError::VersionMismatch { request, .. } => (
                        StatusCode::PRECONDITION_FAILED,
                        Json(json!({"error": {"code": code, "message": message}, "current": request})),
                    )
                        .into_response(),
                    StoreError::Unavailable(_) => {
                        // Logged once (with the cause) by `crate::log_server_errors`; the
                        // caller (Entra, an approver's app) may retry.
                        let mut r = body(
                            StatusCode::SERVICE_UNAVAILABLE,
                            code,
                            "the database is unavailable; retry shortly".into(),
                        );
                        r.extensions_mut()
                            .insert(ServerErrorDetail(format!("storage: {e}").into()));
                        r
                    }
                    StoreError::AlreadyDecided { request } => (
                        StatusCode::CONFLICT,
                        Json(json!({"error": {"code": code, "message": message}, "current": request})),
                    )
                        .into_response(),
                    other => {
                        // Logged once, with the request id, by `crate::log_server_errors`.
                        let mut r = body(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            code,
                            "internal error; see the server log".into(),
                        );
                        r.extensions_mut()
                            .insert(ServerErrorDetail(format!("storage failure: {other}").into()));
                        r
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_storage_failure_is_logged_once_with_its_request_id_and_cause() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route(
                "/fail",
                get(|| async { ApiError::Store(StoreError::Task("disk on fire".into())) }),
            )
            .layer(axum::middleware::from_fn(crate::log_server_errors));
        let res = app
            .oneshot(
                axum::http::Request::get("/fail")
                    .header("x-request-id", "req-42")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("disk on fire"), "the cause leaked: {body}");
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{log}");
        assert!(errors[0].contains("req-42"), "{log}");
        assert!(errors[0].contains("disk on fire"), "{log}");
    }
}
