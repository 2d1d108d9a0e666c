//! The approval API client, approver side (bearer token with the `Approver` app role):
//! `GET /api/requests` (cursor pages; `since=` for what changed after a mark), `GET /api/requests/{id}` (+ `ETag`),
//! `POST /api/requests/{id}/decision` (`If-Match`, `Idempotency-Key`),
//! `GET /api/requests/{id}/history`, `GET /api/events` (the open stream). Errors map to [`ApiFailure`], which keeps the current
//! request of a 409/412 answer.

use std::time::Duration;

use guestlist_core::Code;
use guestlist_core::model::{ApprovalRequest, Decision, HistoryEntry, RequestPage};
use guestlist_core::retry::{self, Backoff};
use reqwest::{StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ReviewerError, codes};

/// How a call answered 429 (rate limited) or 503 (overloaded, e.g. the server's connection
/// limit) is retried: the server's `Retry-After` in either form (delta-seconds or HTTP-date),
/// else exponential backoff from 1 s, jittered, at most 3 attempts and 30 s per wait; a longer
/// `Retry-After` returns the answer at once ([`guestlist_core::retry`]). Safe for decisions too:
/// the server refused them before doing anything, and they carry an `Idempotency-Key`.
pub const THROTTLE_BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(30),
    max_attempts: 3,
};

/// Page size used by sync (the server allows up to 500).
pub const PAGE_LIMIT: usize = 500;

/// A failed approval API call. Which variant is chosen by the error body's [`Code`] (read with
/// serde, [`ApiClient::failure`]), the status only deciding 401 and answers without a readable
/// body.
#[derive(Debug, Clone)]
pub enum ApiFailure {
    /// The server could not be reached.
    Offline(String),
    /// 401: the token was refused (expired or wrong audience).
    Unauthorized(String),
    /// 403 `auth.forbidden`, `auth.scope_missing` or `auth.client_not_allowed`: signed in, but
    /// the token lacks the role, scope or client the call needs.
    Forbidden {
        /// The server's code.
        code: Code,
        /// Server message, with what to do.
        message: String,
        /// The answer's `x-request-id`.
        request_id: Option<String>,
    },
    /// 404 `request.not_found`.
    NotFound(String),
    /// 409 `request.already_decided`, with the winner's request.
    Conflict {
        /// Server message.
        message: String,
        /// The request as it is now.
        current: Option<Box<ApprovalRequest>>,
        /// The answer's `x-request-id`.
        request_id: Option<String>,
    },
    /// 412 `request.version_mismatch`, with the request as it is now.
    VersionMismatch {
        /// Server message.
        message: String,
        /// The request as it is now.
        current: Option<Box<ApprovalRequest>>,
        /// The answer's `x-request-id`.
        request_id: Option<String>,
    },
    /// Anything else (other 4xx/5xx, e.g. 403 `decision.self_approval` or 409
    /// `request.not_denied`; unreadable bodies).
    Other {
        /// HTTP status (0 for unreadable bodies).
        status: u16,
        /// The server's error code, or `api.error`.
        code: Code,
        /// Message.
        message: String,
        /// The answer's `x-request-id`, when there was an answer.
        request_id: Option<String>,
    },
}

impl ApiFailure {
    /// The facade error of this failure: the server's code and request id.
    pub fn to_error(&self) -> ReviewerError {
        match self {
            ApiFailure::Offline(m) => ReviewerError::offline(m.clone()),
            ApiFailure::Unauthorized(m) => ReviewerError::new(codes::NOT_SIGNED_IN, m.clone()),
            ApiFailure::Forbidden {
                code,
                message,
                request_id,
            } => ReviewerError::new(*code, message.clone()).with_request_id(request_id.clone()),
            ApiFailure::NotFound(m) => ReviewerError::new(codes::NOT_FOUND, m.clone()),
            ApiFailure::Conflict {
                message,
                request_id,
                ..
            } => ReviewerError::new(codes::CONFLICT, message.clone())
                .with_request_id(request_id.clone()),
            ApiFailure::VersionMismatch {
                message,
                request_id,
                ..
            } => ReviewerError::new(codes::VERSION_MISMATCH, message.clone())
                .with_request_id(request_id.clone()),
            ApiFailure::Other {
                code,
                message,
                request_id,
                ..
            } => ReviewerError::new(*code, message.clone()).with_request_id(request_id.clone()),
        }
    }
}

/// The `error` member of the approval API's error body ([`guestlist_core::model::ErrorDetail`],
/// `docs/CONTRACTS.md` §4), its code read with [`crate::error::lenient_code`] so that a code
/// from a newer server is `api.error` rather than an unreadable body.
#[derive(Debug, Deserialize)]
struct WireErrorDetail {
    #[serde(deserialize_with = "crate::error::lenient_code")]
    code: Code,
    #[serde(default)]
    message: String,
}

/// The code an answer without a readable error body is taken to mean, from its status alone.
fn code_of_status(status: StatusCode) -> Code {
    match status {
        StatusCode::UNAUTHORIZED => Code::AuthUnauthorized,
        StatusCode::FORBIDDEN => Code::AuthForbidden,
        StatusCode::NOT_FOUND => Code::RequestNotFound,
        StatusCode::CONFLICT => Code::RequestAlreadyDecided,
        StatusCode::PRECONDITION_FAILED => Code::RequestVersionMismatch,
        _ => Code::ApiError,
    }
}

impl From<ApiFailure> for ReviewerError {
    fn from(f: ApiFailure) -> Self {
        f.to_error()
    }
}

/// The client (cheap to clone).
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub(crate) http: reqwest::Client,
    /// For `GET /api/events`: no total timeout (the stream stays open), but a read timeout
    /// three times the server's 15 s keep-alive, so a dead connection is noticed.
    stream: reqwest::Client,
    pub(crate) base: String,
}

pub(crate) fn offline(e: reqwest::Error) -> ApiFailure {
    ApiFailure::Offline(format!("cannot reach the approval API: {e}"))
}

impl ApiClient {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:8080`).
    ///
    /// Errors: `storage.error` when the HTTP client cannot be built.
    pub fn new(base: &str) -> Result<Self, ReviewerError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("guestlist-desktop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ReviewerError::storage)?;
        let stream = reqwest::Client::builder()
            .read_timeout(Duration::from_secs(45))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("guestlist-desktop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ReviewerError::storage)?;
        Ok(ApiClient {
            http,
            stream,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends `req`, again after a throttling answer (429/503) as [`THROTTLE_BACKOFF`] says.
    /// Returns the first other response, or the last throttling one.
    ///
    /// Errors: [`ApiFailure::Offline`] when the server cannot be reached.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Every request here has a buffered (or no) body, so it can be cloned; one that
            // could not is sent once.
            let Some(this) = req.try_clone() else {
                return req.send().await.map_err(offline);
            };
            let resp = this.send().await.map_err(offline)?;
            let status = resp.status();
            if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE
            {
                return Ok(resp);
            }
            let asked = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry::retry_after);
            let Some(wait) = THROTTLE_BACKOFF.delay(attempt, asked) else {
                return Ok(resp);
            };
            tracing::info!(
                status = status.as_u16(),
                ?wait,
                attempt,
                "approval API throttled; waiting"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The [`ApiFailure`] of an error answer: the body's `error.code` decides the variant
    /// (`request.already_decided` → [`ApiFailure::Conflict`], `request.version_mismatch` →
    /// [`ApiFailure::VersionMismatch`], `request.not_found` → [`ApiFailure::NotFound`], a 403
    /// `auth.*` → [`ApiFailure::Forbidden`], anything else [`ApiFailure::Other`] with its code);
    /// 401 is always [`ApiFailure::Unauthorized`]. Without a readable body the status's usual
    /// code stands in. The `x-request-id` header is kept for support.
    pub(crate) async fn failure(resp: reqwest::Response) -> ApiFailure {
        let status = resp.status();
        let header_str = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let www = header_str(header::WWW_AUTHENTICATE.as_str());
        let request_id = header_str("x-request-id");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let (code, message) = match WireErrorDetail::deserialize(&body["error"]) {
            Ok(d) if !d.message.is_empty() => (d.code, d.message),
            Ok(d) => (d.code, format!("the approval API answered {status}")),
            Err(_) => (
                code_of_status(status),
                format!("the approval API answered {status}"),
            ),
        };
        let current = || {
            serde_json::from_value::<ApprovalRequest>(body["current"].clone())
                .ok()
                .map(Box::new)
        };
        match (status, code) {
            (StatusCode::UNAUTHORIZED, _) => ApiFailure::Unauthorized(match www {
                Some(w) => format!("{message} ({w})"),
                None => message,
            }),
            (
                StatusCode::FORBIDDEN,
                Code::AuthForbidden | Code::AuthScopeMissing | Code::AuthClientNotAllowed,
            ) => ApiFailure::Forbidden {
                code,
                message: if code == Code::AuthForbidden {
                    format!("{message}: your account needs the Approver role of the approval API")
                } else {
                    message
                },
                request_id,
            },
            (_, Code::RequestNotFound) => ApiFailure::NotFound(message),
            (_, Code::RequestAlreadyDecided) => ApiFailure::Conflict {
                message,
                current: current(),
                request_id,
            },
            (_, Code::RequestVersionMismatch) => ApiFailure::VersionMismatch {
                message,
                current: current(),
                request_id,
            },
            (s, code) => ApiFailure::Other {
                status: s.as_u16(),
                code,
                message,
                request_id,
            },
        }
    }

    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        resp: reqwest::Response,
    ) -> Result<T, ApiFailure> {
        if !resp.status().is_success() {
            return Err(Self::failure(resp).await);
        }
        let bytes = resp.bytes().await.map_err(offline)?;
        serde_json::from_slice(&bytes).map_err(|e| ApiFailure::Other {
            status: 0,
            code: codes::API,
            message: format!("unreadable approval API answer: {e}"),
            request_id: None,
        })
    }

    /// One page of `GET /api/requests?status=pending`.
    ///
    /// Errors: [`ApiFailure`].
    pub async fn pending_page(
        &self,
        token: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, ApiFailure> {
        self.list_page(token, ("status", "pending".to_owned()), cursor, limit)
            .await
    }

    /// One page of `GET /api/requests?since=<mark>` (no status filter): every request whose
    /// change sequence is above `since` (created, attempted again, decided or expired since),
    /// in change order. The page's `changeSeq` is the mark to keep for the next call; a server
    /// without the filter answers without `changeSeq` (the caller then re-lists everything).
    ///
    /// Errors: [`ApiFailure`].
    pub async fn changes_page(
        &self,
        token: &str,
        since: u64,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, ApiFailure> {
        self.list_page(token, ("since", since.to_string()), cursor, limit)
            .await
    }

    /// One page of `GET /api/requests?<filter>&limit=<limit>[&cursor=<cursor>]`.
    async fn list_page(
        &self,
        token: &str,
        filter: (&str, String),
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, ApiFailure> {
        let mut q = vec![filter, ("limit", limit.to_string())];
        if let Some(c) = cursor {
            q.push(("cursor", c.to_owned()));
        }
        let resp = self
            .send(
                self.http
                    .get(format!("{}/api/requests", self.base))
                    .bearer_auth(token)
                    .query(&q),
            )
            .await?;
        Self::json(resp).await
    }

    /// `GET /api/requests/{id}`.
    ///
    /// Errors: [`ApiFailure`] (`NotFound` for unknown ids).
    pub async fn get(&self, token: &str, id: &str) -> Result<ApprovalRequest, ApiFailure> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}/api/requests/{id}", self.base))
                    .bearer_auth(token),
            )
            .await?;
        Self::json(resp).await
    }

    /// `POST /api/requests/{id}/decision` with `If-Match: "<version>"` and
    /// `Idempotency-Key: <key>`; replaying the same key returns the same answer.
    ///
    /// Errors: [`ApiFailure`] (`Conflict` 409, `VersionMismatch` 412).
    pub async fn decide(
        &self,
        token: &str,
        id: &str,
        version: u64,
        idempotency_key: &str,
        decision: &Decision,
    ) -> Result<ApprovalRequest, ApiFailure> {
        let resp = self
            .send(
                self.http
                    .post(format!("{}/api/requests/{id}/decision", self.base))
                    .bearer_auth(token)
                    .header(header::IF_MATCH, format!("\"{version}\""))
                    .header("Idempotency-Key", idempotency_key)
                    .json(decision),
            )
            .await?;
        Self::json(resp).await
    }

    /// `GET /api/events` (Server-Sent Events), resuming after `last_event_id`: the open
    /// response, whose body is the event stream (read it with [`reqwest::Response::chunk`]).
    ///
    /// Errors: [`ApiFailure`] (`NotFound` when the server has no event stream).
    pub async fn events(
        &self,
        token: &str,
        last_event_id: Option<u64>,
    ) -> Result<reqwest::Response, ApiFailure> {
        let mut req = self
            .stream
            .get(format!("{}/api/events", self.base))
            .bearer_auth(token)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(Self::failure(resp).await);
        }
        Ok(resp)
    }

    /// `GET /api/requests/{id}/history`.
    ///
    /// Errors: [`ApiFailure`].
    pub async fn history(&self, token: &str, id: &str) -> Result<Vec<HistoryEntry>, ApiFailure> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}/api/requests/{id}/history", self.base))
                    .bearer_auth(token),
            )
            .await?;
        Self::json(resp).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::response::IntoResponse;

    use super::*;

    /// An approval API stand-in on 127.0.0.1 whose `GET /api/requests/{id}/history` answers
    /// `status` with `Retry-After: retry_after` for the first `throttled` calls, then `[]`.
    async fn throttling_api(
        status: u16,
        retry_after: String,
        throttled: usize,
    ) -> (ApiClient, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/api/requests/{id}/history",
            axum::routing::get(move || {
                let counter = counter.clone();
                let retry_after = retry_after.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) < throttled {
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            [("retry-after", retry_after)],
                            axum::Json(serde_json::json!({"error": {
                                "code": "auth.throttled", "message": "slow down"}})),
                        )
                            .into_response()
                    } else {
                        axum::Json(serde_json::json!([])).into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (ApiClient::new(&format!("http://{addr}")).unwrap(), calls)
    }

    fn http_date(offset_secs: i64) -> String {
        let now = std::time::SystemTime::now();
        let d = Duration::from_secs(offset_secs.unsigned_abs());
        httpdate::fmt_http_date(if offset_secs >= 0 { now + d } else { now - d })
    }

    /// A 429 whose `Retry-After` is an HTTP-date already past, then a 503 with `0` seconds:
    /// both retried, and the call succeeds (the client used to give up on the first 429).
    #[tokio::test]
    async fn throttled_calls_are_retried_after_retry_after_in_either_form() {
        let (api, calls) = throttling_api(429, http_date(-60), 1).await;
        let h = tokio::time::timeout(Duration::from_secs(20), api.history("t", "r1"))
            .await
            .unwrap()
            .unwrap();
        assert!(h.is_empty());
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let (api, calls) = throttling_api(503, "0".into(), 2).await;
        tokio::time::timeout(Duration::from_secs(20), api.history("t", "r1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    /// A `Retry-After` an hour ahead (over the 30 s cap), or throttling past the last attempt:
    /// the server's answer comes back as the error, without sleeping for it.
    #[tokio::test]
    async fn a_retry_after_over_the_cap_or_too_many_throttles_fail_with_the_answer() {
        let (api, calls) = throttling_api(429, http_date(3600), usize::MAX).await;
        let f = tokio::time::timeout(Duration::from_secs(20), api.history("t", "r1"))
            .await
            .expect("no sleeping on an hour-long Retry-After")
            .unwrap_err();
        assert!(
            matches!(
                &f,
                ApiFailure::Other {
                    status: 429,
                    code: Code::AuthThrottled,
                    ..
                }
            ),
            "{f:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let (api, calls) = throttling_api(429, "0".into(), usize::MAX).await;
        let f = tokio::time::timeout(Duration::from_secs(20), api.history("t", "r1"))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(f, ApiFailure::Other { status: 429, .. }), "{f:?}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            THROTTLE_BACKOFF.max_attempts as usize
        );
    }

    /// An approval API stand-in on 127.0.0.1 whose `GET /api/requests/{id}/history` answers
    /// the error body the server writes ([`guestlist_core::model::ErrorBody`]) for `id` =
    /// `<status>-<code>` (`409-request.not_denied`), with `x-request-id: rid-<id>`; `raw-<status>`
    /// answers that status with a body that is not JSON.
    async fn erring_api() -> ApiClient {
        use guestlist_core::model::{ErrorBody, ErrorDetail};
        let app = axum::Router::new().route(
            "/api/requests/{id}/history",
            axum::routing::get(
                |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    let rid = [("x-request-id", format!("rid-{id}"))];
                    if let Some(status) = id.strip_prefix("raw-") {
                        let status =
                            axum::http::StatusCode::from_u16(status.parse().unwrap()).unwrap();
                        return (status, rid, "<html>proxy</html>").into_response();
                    }
                    let (status, code) = id.split_once('-').unwrap();
                    let status = axum::http::StatusCode::from_u16(status.parse().unwrap()).unwrap();
                    let body = match code.parse::<Code>() {
                        Ok(code) => serde_json::to_value(ErrorBody {
                            error: ErrorDetail {
                                code,
                                message: format!("server says {code}"),
                            },
                        })
                        .unwrap(),
                        // A code of a newer server.
                        Err(_) => serde_json::json!({"error": {"code": code, "message": "new"}}),
                    };
                    (status, rid, axum::Json(body)).into_response()
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ApiClient::new(&format!("http://{addr}")).unwrap()
    }

    /// The facade error keeps the server's [`Code`] from the body (and its `x-request-id`):
    /// a 409 `request.not_denied` is not an "already decided" conflict, and a 403
    /// `decision.self_approval` is not a missing role, as they were when the status alone
    /// chose the code.
    #[tokio::test]
    async fn the_error_body_s_code_and_request_id_reach_the_facade_error() {
        let api = erring_api().await;
        let fail = |id: &'static str| {
            let api = api.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(20), api.history("t", id))
                    .await
                    .unwrap()
                    .unwrap_err()
            }
        };
        for (id, code) in [
            ("409-request.already_decided", Code::RequestAlreadyDecided),
            ("409-request.not_denied", Code::RequestNotDenied),
            ("412-request.version_mismatch", Code::RequestVersionMismatch),
            ("403-auth.forbidden", Code::AuthForbidden),
            ("403-auth.scope_missing", Code::AuthScopeMissing),
            ("403-decision.self_approval", Code::DecisionSelfApproval),
            ("400-decision.reason_required", Code::DecisionReasonRequired),
            (
                "422-request.idempotency_key_reused",
                Code::RequestIdempotencyKeyReused,
            ),
            ("400-request.from_a_newer_server", Code::ApiError),
            ("raw-412", Code::RequestVersionMismatch),
            ("raw-502", Code::ApiError),
        ] {
            let e = fail(id).await.to_error();
            assert_eq!(e.code, code, "{id}: {e:?}");
            assert_eq!(
                e.request_id.as_deref(),
                Some(format!("rid-{id}").as_str()),
                "{id}"
            );
            assert!(!e.message.contains("rid-"), "{id}: {e:?}");
        }
        assert!(matches!(
            fail("409-request.already_decided").await,
            ApiFailure::Conflict { .. }
        ));
        assert!(matches!(
            fail("409-request.not_denied").await,
            ApiFailure::Other {
                status: 409,
                code: Code::RequestNotDenied,
                ..
            }
        ));
        assert!(matches!(
            fail("412-request.version_mismatch").await,
            ApiFailure::VersionMismatch { .. }
        ));
        let self_approval = fail("403-decision.self_approval").await;
        assert!(
            matches!(self_approval, ApiFailure::Other { status: 403, .. }),
            "{self_approval:?}"
        );
        assert!(!self_approval.to_error().message.contains("Approver role"));
        let role = fail("403-auth.forbidden").await.to_error();
        assert!(role.message.contains("Approver role"), "{role:?}");
        assert!(matches!(
            fail("404-request.not_found").await,
            ApiFailure::NotFound(_)
        ));
        // The wire shape the UI reads: `requestId` beside `code`.
        let v = serde_json::to_value(fail("403-decision.self_approval").await.to_error()).unwrap();
        assert_eq!(v["code"], "decision.self_approval");
        assert_eq!(v["requestId"], "rid-403-decision.self_approval");
    }
}
