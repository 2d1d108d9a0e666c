//! # guestlist-graph
//!
//! A thin Microsoft Graph v1.0 client: exactly the calls Guestlist makes when an approver approves
//! a request (`docs/CONTRACTS.md` §3): user look-ups (`GET /users?$filter=…`),
//! `POST /users`, `POST /invitations`, `PATCH /users/{id}`, `GET /users/{id}` and
//! `POST /$batch` (JSON batching, at most 20 requests per batch); then the grants of issue 14
//! §1 (group members, app role assignments, sponsors: `grants`), and display names of groups
//! and service principals for the plan on screen.
//!
//! - The base URL comes from configuration ([`GraphConfig::base_url`]):
//!   `https://graph.microsoft.com/v1.0` or devtenant's Graph root.
//! - The caller passes the approver's delegated bearer token on every call; this crate keeps no
//!   token.
//! - Throttling (HTTP 429, and 503) is retried after the `Retry-After` header (delta-seconds or
//!   HTTP-date; exponential backoff without one), jittered and capped
//!   ([`GraphConfig::backoff`], [`guestlist_core::retry`]), at most
//!   [`GraphConfig::max_attempts`] attempts; each `$batch` item is retried on its own.
//! - Graph's error body (`{"error":{"code","message","innerError":{"request-id","date"}}}`) becomes
//!   a [`GraphError`] whose code and request-id are shown to the approver; transport failures are
//!   [`Error::Network`] so the caller can switch to offline mode.
//!
//! [`oauth_http::OAuthHttp`] lends the same reqwest client to the oauth2/openidconnect crates.
//!
//! This crate depends on `guestlist-core` only for [`GraphCall`]; it must not depend on the
//! approval API, SQLite or tauri.

mod batch;
mod encode;
mod grants;
pub mod oauth_http;

use std::time::Duration;

use guestlist_core::plan::GraphCall;
use reqwest::{Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use batch::{BatchItem, BatchResult, MAX_BATCH};
pub use encode::encode_path;
pub use grants::is_already_granted;

/// The production Graph v1.0 root.
pub const GRAPH_V1: &str = "https://graph.microsoft.com/v1.0";

/// Client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// The version root, without a trailing slash: [`GRAPH_V1`] or devtenant's
    /// `http://127.0.0.1:<port>/v1.0`.
    pub base_url: String,
    /// Total attempts of one request (or one `$batch` item) when Graph throttles it (429/503).
    /// Default 4.
    pub max_attempts: u32,
    /// The longest `Retry-After` this client sleeps; a longer one ends the retries with the
    /// throttling error. Default 120 s.
    pub max_retry_after: Duration,
    /// Per-request timeout (connect + response). Default 30 s.
    pub timeout: Duration,
}

impl GraphConfig {
    /// The retry schedule of throttled calls: [`GraphConfig::max_attempts`] attempts, the
    /// server's `Retry-After` (either form) when given, else exponential backoff from 1 s; both
    /// jittered and capped at [`GraphConfig::max_retry_after`] ([`guestlist_core::retry`]).
    pub fn backoff(&self) -> guestlist_core::retry::Backoff {
        guestlist_core::retry::Backoff {
            base: Duration::from_secs(1),
            cap: self.max_retry_after,
            max_attempts: self.max_attempts,
        }
    }

    /// A configuration with the defaults above for `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        GraphConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            max_attempts: 4,
            max_retry_after: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A Graph error response, as the approver sees it: HTTP status, Graph's `code` (e.g.
/// `Request_BadRequest`, `Authorization_RequestDenied`), `message`, and the `request-id` and
/// `date` Microsoft support asks for (from `innerError`, else the `request-id`/`Date` headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("Graph {status} {code}: {message} (request-id {}, date {})",
    .request_id.as_deref().unwrap_or("none"), .date.as_deref().unwrap_or("none"))]
pub struct GraphError {
    /// The HTTP status (e.g. 400, 403, 404, 429).
    pub status: u16,
    /// Graph's error code; `UnknownError` when the body is not an ODataError.
    pub code: String,
    /// Graph's message (or the start of a non-JSON body).
    pub message: String,
    /// `innerError.request-id` or the `request-id` header.
    pub request_id: Option<String>,
    /// `innerError.date` or the `Date` header.
    pub date: Option<String>,
}

impl GraphError {
    /// Builds the error from a status, headers and body (ODataError or anything else).
    pub fn from_parts(status: u16, headers: &header::HeaderMap, body: &[u8]) -> Self {
        let header_str = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self::from_body(
            status,
            body,
            header_str("request-id").or_else(|| header_str("client-request-id")),
            header_str("date"),
        )
    }

    /// Builds the error from a status and an ODataError body (a `$batch` item's `body` or a
    /// response body), with fall-backs for the request id and date.
    pub fn from_body(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        date: Option<String>,
    ) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        Self::from_value(status, parsed.as_ref(), request_id, date, body)
    }

    fn from_value(
        status: u16,
        value: Option<&Value>,
        request_id: Option<String>,
        date: Option<String>,
        raw: &[u8],
    ) -> Self {
        let err = value.and_then(|v| v.get("error"));
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        match err {
            Some(e) => {
                let inner = e.get("innerError").or_else(|| e.get("innererror"));
                GraphError {
                    status,
                    code: s(e.get("code")).unwrap_or_else(|| "UnknownError".into()),
                    message: s(e.get("message")).unwrap_or_default(),
                    request_id: s(inner.and_then(|i| i.get("request-id"))).or(request_id),
                    date: s(inner.and_then(|i| i.get("date"))).or(date),
                }
            }
            None => GraphError {
                status,
                code: "UnknownError".into(),
                message: String::from_utf8_lossy(&raw[..raw.len().min(300)]).into_owned(),
                request_id,
                date,
            },
        }
    }
}

/// Everything that can go wrong talking to Graph.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Graph answered with an error status and (usually) an ODataError body. Throttling that
    /// outlasted the retries also ends here, with status 429 or 503.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Graph could not be reached (DNS, connect, TLS, timeout, connection reset): the caller
    /// should treat itself as offline and retry later. Nothing is known to have been written.
    #[error("cannot reach Microsoft Graph: {0}")]
    Network(String),
    /// Graph answered 2xx with a body this client cannot read.
    #[error("unexpected Graph response: {0}")]
    Decode(String),
    /// The caller asked for something this client refuses to send (a `$batch` dependency group
    /// of more than 20 requests, an unknown method, an id with a `/`).
    #[error("invalid Graph request: {0}")]
    Invalid(String),
}

impl Error {
    /// `true` for [`Error::Network`].
    pub fn is_network(&self) -> bool {
        matches!(self, Error::Network(_))
    }

    /// The Graph error, if Graph answered one.
    pub fn graph(&self) -> Option<&GraphError> {
        match self {
            Error::Graph(g) => Some(g),
            _ => None,
        }
    }
}

fn network(e: reqwest::Error) -> Error {
    Error::Network(e.to_string())
}

/// The client. Cheap to clone (one shared connection pool).
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    config: GraphConfig,
}

/// The `Retry-After` of a response, in either form (delta-seconds or HTTP-date,
/// [`guestlist_core::retry::parse_retry_after`]); `None` when absent or unreadable.
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(guestlist_core::retry::retry_after)
}

fn is_throttle(status: u16) -> bool {
    status == 429 || status == 503
}

impl GraphClient {
    /// A client for `config`.
    ///
    /// Errors: [`Error::Invalid`] if the HTTP client cannot be built (TLS back-end failure).
    pub fn new(config: GraphConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("guestlist/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(GraphClient { http, config })
    }

    /// The configuration.
    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// Runs one call (`method`, `path` relative to the version root, optional JSON body) with
    /// throttling retries. Returns the response JSON, or `Value::Null` for an empty (204) body.
    ///
    /// Errors: [`Error::Graph`] for error statuses, [`Error::Network`] when Graph is
    /// unreachable, [`Error::Decode`] for a 2xx body that is not JSON.
    pub async fn send(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::Invalid(format!("method {method:?}")))?;
        let url = format!("{}{}", self.config.base_url, encode_path(path));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token)
                .header(header::ACCEPT, "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(network)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(network)?;
            if status.is_success() {
                if bytes.is_empty() || status == StatusCode::NO_CONTENT {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&bytes).map_err(|e| Error::Decode(e.to_string()));
            }
            if is_throttle(status.as_u16())
                && let Some(wait) = self.config.backoff().delay(attempt, retry_after(&headers))
            {
                tracing::info!(%url, status = status.as_u16(), ?wait, attempt, "Graph throttled; waiting Retry-After");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(GraphError::from_parts(status.as_u16(), &headers, &bytes).into());
        }
    }

    /// Runs a [`GraphCall`] of a provisioning plan.
    ///
    /// Errors: as [`GraphClient::send`].
    pub async fn call(&self, token: &str, call: &GraphCall) -> Result<Value, Error> {
        self.send(token, &call.method, &call.path, call.body.as_ref())
            .await
    }

    /// Runs a look-up (`GET /users?$filter=…`, e.g. [`guestlist_core::plan::lookup_by_identity`])
    /// and returns every user found (following `@odata.nextLink`, at most 10 pages).
    ///
    /// Errors: as [`GraphClient::send`]; [`Error::Decode`] when the answer has no `value` array.
    pub async fn find_users(&self, token: &str, filter: &GraphCall) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut page = self.send(token, "GET", &filter.path, None).await?;
        for _ in 0..10 {
            let Some(items) = page.get("value").and_then(Value::as_array) else {
                return Err(Error::Decode("a user collection without `value`".into()));
            };
            out.extend(items.iter().cloned());
            let Some(next) = page.get("@odata.nextLink").and_then(Value::as_str) else {
                break;
            };
            let rel = next
                .strip_prefix(&self.config.base_url)
                .ok_or_else(|| Error::Decode(format!("nextLink outside the base URL: {next}")))?
                .to_owned();
            page = self.send(token, "GET", &rel, None).await?;
        }
        Ok(out)
    }

    /// `POST /users`: creates a user; returns the created user (with its `id`).
    ///
    /// Errors: as [`GraphClient::send`].
    pub async fn create_user(&self, token: &str, body: &Value) -> Result<Value, Error> {
        self.send(token, "POST", "/users", Some(body)).await
    }

    /// `POST /invitations`: invites a guest; returns the invitation (`invitedUser.id` is the new
    /// user's id).
    ///
    /// Errors: as [`GraphClient::send`].
    pub async fn invite(&self, token: &str, body: &Value) -> Result<Value, Error> {
        self.send(token, "POST", "/invitations", Some(body)).await
    }

    /// `PATCH /users/{id}`: updates a user (Graph answers 204).
    ///
    /// Errors: as [`GraphClient::send`]; [`Error::Invalid`] for an empty id or one with `/`.
    pub async fn patch_user(&self, token: &str, id: &str, body: &Value) -> Result<(), Error> {
        check_id(id)?;
        self.send(token, "PATCH", &format!("/users/{id}"), Some(body))
            .await
            .map(|_| ())
    }

    /// `GET /users/{id}` (optionally with `$select`, comma-separated property names).
    ///
    /// Errors: as [`GraphClient::send`] (404 `Request_ResourceNotFound` for an unknown id).
    pub async fn get_user(
        &self,
        token: &str,
        id: &str,
        select: Option<&str>,
    ) -> Result<Value, Error> {
        check_id(id)?;
        let path = match select {
            Some(s) => format!("/users/{id}?$select={s}"),
            None => format!("/users/{id}"),
        };
        self.send(token, "GET", &path, None).await
    }

    /// `POST /$batch` for any number of items: see [`batch`](crate::batch) for the splitting
    /// and per-item retry rules. Returns one [`BatchResult`] per item, in input order.
    ///
    /// Errors: [`Error::Invalid`] for duplicate ids, unknown `dependsOn` ids or a dependency
    /// group above 20 items; [`Error::Network`]/[`Error::Graph`] when a whole batch request
    /// fails. Item failures are NOT errors: check each result's `status`.
    pub async fn batch(
        &self,
        token: &str,
        items: Vec<BatchItem>,
    ) -> Result<Vec<BatchResult>, Error> {
        batch::run(self, token, items).await
    }

    async fn post_batch(&self, token: &str, body: &Value) -> Result<Value, Error> {
        self.send(token, "POST", "/$batch", Some(body)).await
    }
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.contains(['/', '?', '#']) {
        return Err(Error::Invalid(format!("user id {id:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_error_with_inner_error() {
        let body = br#"{"error":{"code":"Request_BadRequest","message":"Invalid value","innerError":{"request-id":"r-1","date":"2024-01-01T00:00:00"}}}"#;
        let e = GraphError::from_body(400, body, Some("hdr".into()), None);
        assert_eq!(e.code, "Request_BadRequest");
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert_eq!(e.date.as_deref(), Some("2024-01-01T00:00:00"));
        assert!(e.to_string().contains("r-1"));
    }

    #[test]
    fn non_odata_body_keeps_header_request_id() {
        let e = GraphError::from_body(502, b"<html>bad gateway</html>", Some("h-9".into()), None);
        assert_eq!(e.code, "UnknownError");
        assert_eq!(e.request_id.as_deref(), Some("h-9"));
        assert!(e.message.contains("bad gateway"));
    }

    #[test]
    fn retry_after_reads_both_forms() {
        let mut h = header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(40));
        h.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_str(&soon).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(35) && d <= Duration::from_secs(40),
            "{d:?}"
        );
        h.insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    /// A Graph stand-in on 127.0.0.1 that answers `GET /v1.0/users/x` 429 with `retry_after`
    /// as long as `throttled` calls have not been made, then 200. Returns its base URL and the
    /// call counter.
    async fn throttling_graph(
        retry_after: String,
        throttled: usize,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/v1.0/users/x",
            axum::routing::get(move || {
                let counter = counter.clone();
                let retry_after = retry_after.clone();
                async move {
                    if counter.fetch_add(1, Ordering::SeqCst) < throttled {
                        (
                            axum::http::StatusCode::TOO_MANY_REQUESTS,
                            [("retry-after", retry_after)],
                            r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#,
                        )
                            .into_response()
                    } else {
                        axum::Json(serde_json::json!({"id": "x"})).into_response()
                    }
                }
            }),
        );
        use axum::response::IntoResponse;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/v1.0"), calls)
    }

    /// An HTTP-date `Retry-After` an hour ahead is over the 120 s cap: the throttling error is
    /// returned at once (it used to be read as "1 s" and retried three times).
    #[tokio::test]
    async fn an_http_date_retry_after_over_the_cap_ends_the_retries() {
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
        let (base, calls) = throttling_graph(later, usize::MAX).await;
        let client = GraphClient::new(GraphConfig::new(base)).unwrap();
        let err = tokio::time::timeout(
            Duration::from_secs(20),
            client.send("t", "GET", "/users/x", None),
        )
        .await
        .expect("no sleeping on an hour-long Retry-After")
        .unwrap_err();
        assert!(
            matches!(err, Error::Graph(ref g) if g.status == 429),
            "{err:?}"
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// An HTTP-date in the past means "now": the call is retried and succeeds.
    #[tokio::test]
    async fn an_http_date_retry_after_in_the_past_retries_now() {
        let past =
            httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(3600));
        let (base, calls) = throttling_graph(past, 1).await;
        let client = GraphClient::new(GraphConfig::new(base)).unwrap();
        let v = tokio::time::timeout(
            Duration::from_secs(20),
            client.send("t", "GET", "/users/x", None),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(v["id"], "x");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn ids_with_slashes_are_refused() {
        assert!(check_id("a/b").is_err());
        assert!(check_id("").is_err());
        assert!(check_id("0b1c").is_ok());
    }
}
