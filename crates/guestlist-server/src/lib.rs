//! # guestlist-server — the Guestlist approval API
//!
//! Entra's self-service sign-up user flow calls this service through two API connectors
//! ("check approval status", "request approval"); it records the request in SQLite and answers
//! `Continue` / `ShowBlockPage` / `ValidationError` at once (`shared/spec/CONTRACTS.md` §1–2).
//! Approvers' desktop apps read the queue, report decisions and follow events through the
//! approver API (bearer JWT, app role `Approver`, §4).
//!
//! Layout: [`config`] (layered settings), [`store`] (SQLite, the state machine's transactions),
//! [`auth`] (Basic for connectors, JWT for approvers and extensions), [`routes`] (HTTP),
//! [`error`] (one error → response mapping), and the optional webhook and reminders
//! ([`webhook`], [`reminders`]). Owns no Graph calls: provisioning happens in the
//! approver's app with the approver's own token.

pub mod auth;
pub mod config;
pub mod error;
pub mod reminders;
pub mod routes;
pub mod store;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::routing::{get, post};
use guestlist_core::connector::Claims;
use guestlist_core::model::{Event, Status};
use guestlist_core::policy::{MessageKind, Policy};
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use config::Config;

use crate::auth::{ApproverVerifier, ExtensionVerifier};
use crate::error::ApiError;
use crate::store::{Store, StoreError};

/// A connector endpoint, for the counters of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /connectors/check-approval-status`.
    CheckApprovalStatus,
    /// `POST /connectors/request-approval`.
    RequestApproval,
    /// `POST /connectors/external-id/attribute-collection-start`.
    AttributeCollectionStart,
    /// `POST /connectors/external-id/attribute-collection-submit`.
    AttributeCollectionSubmit,
}

impl Endpoint {
    /// Every endpoint, in the order of [`Endpoint::index`].
    pub const ALL: [Endpoint; 4] = [
        Endpoint::CheckApprovalStatus,
        Endpoint::RequestApproval,
        Endpoint::AttributeCollectionStart,
        Endpoint::AttributeCollectionSubmit,
    ];

    /// The `endpoint` label, e.g. `check-approval-status`.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::CheckApprovalStatus => "check-approval-status",
            Endpoint::RequestApproval => "request-approval",
            Endpoint::AttributeCollectionStart => "attribute-collection-start",
            Endpoint::AttributeCollectionSubmit => "attribute-collection-submit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Answers counted per endpoint: `Continue`, then one per [`MessageKind::ALL`].
const ANSWERS: usize = 1 + MessageKind::ALL.len();

/// Decision statuses counted by [`Metrics::decision`], in this order.
const DECIDED: [Status; 4] = [
    Status::Pending,
    Status::Approved,
    Status::Denied,
    Status::Expired,
];

/// Counters exported at `/metrics`: fixed arrays of atomics, so counting an answer is one
/// relaxed `fetch_add` (no lock, no allocation); labels are made only when rendering.
#[derive(Default)]
pub struct Metrics {
    connector: [[AtomicU64; ANSWERS]; 4],
    decisions: [AtomicU64; 4],
}

fn answer_index(block: Option<MessageKind>) -> usize {
    match block {
        None => 0,
        Some(kind) => {
            1 + MessageKind::ALL
                .iter()
                .position(|k| *k == kind)
                .unwrap_or_default()
        }
    }
}

impl Metrics {
    /// Counts one connector answer: `block` is the block page's kind, `None` for `Continue`.
    pub fn connector_answer(&self, endpoint: Endpoint, block: Option<MessageKind>) {
        if let Some(c) = self.connector[endpoint.index()].get(answer_index(block)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one approver decision by resulting status.
    pub fn decision(&self, status: Status) {
        if let Some(i) = DECIDED.iter().position(|s| *s == status) {
            self.decisions[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition (format 0.0.4). Answer labels are the codes `policy` gives
    /// each block page (`GUESTLIST-APPROVAL-PENDING`, …) or `Continue`; counters still at zero
    /// are left out.
    pub fn render(&self, policy: &Policy, requests_by_status: &[(String, u64)]) -> String {
        use std::fmt::Write as _;
        let mut out = String::from(
            "# HELP guestlist_connector_answers_total Connector answers by endpoint and answer code.\n# TYPE guestlist_connector_answers_total counter\n",
        );
        for e in Endpoint::ALL {
            for (i, c) in self.connector[e.index()].iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let answer = match i.checked_sub(1).and_then(|k| MessageKind::ALL.get(k)) {
                    Some(kind) => policy.code(*kind),
                    None => "Continue".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "guestlist_connector_answers_total{{endpoint=\"{}\",answer=\"{answer}\"}} {n}",
                    e.label()
                );
            }
        }
        out.push_str("# HELP guestlist_decisions_total Approver decisions by resulting status.\n# TYPE guestlist_decisions_total counter\n");
        for (s, c) in DECIDED.iter().zip(&self.decisions) {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "guestlist_decisions_total{{status=\"{}\"}} {n}",
                    s.as_str()
                );
            }
        }
        out.push_str("# HELP guestlist_requests Stored approval requests by status.\n# TYPE guestlist_requests gauge\n");
        for (s, n) in requests_by_status {
            let _ = writeln!(out, "guestlist_requests{{status=\"{s}\"}} {n}");
        }
        out
    }
}

/// Request ids of the `x-request-id` header (when the caller sent none): a random 64-bit
/// prefix drawn once per process, then a counter, both as 16 hex digits
/// (`5f0c3b2a17d49a1e-000000000000002a`). Unique per process
/// and unlikely to repeat across processes, without a call to the OS random source per request
/// (tower-http's `MakeRequestUuid` made one `getrandom` call per request).
#[derive(Clone)]
pub struct MakeCounterRequestId {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl Default for MakeCounterRequestId {
    fn default() -> Self {
        MakeCounterRequestId {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for MakeCounterRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // `<prefix: 16 hex digits>-<counter: 16 hex digits>`, written by hand: `format!` cost
        // more than the rest of this layer.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [b'-'; 33];
        for (i, b) in buf.iter_mut().take(16).enumerate() {
            *b = HEX[((self.prefix >> (60 - 4 * i)) & 0xf) as usize];
        }
        for (i, b) in buf.iter_mut().skip(17).enumerate() {
            *b = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&buf).ok().map(RequestId::new)
    }
}

/// Shared state of the handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The database.
    pub store: Arc<Store>,
    /// Live events for `/api/events`.
    pub events: broadcast::Sender<Event>,
    /// Approver token checks.
    pub approver_auth: Arc<ApproverVerifier>,
    /// Custom-extension token checks.
    pub extension_auth: Arc<ExtensionVerifier>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Rendered connector answers.
    pub answers: Arc<routes::connectors::AnswerCache>,
}

impl AppState {
    /// Opens the database and builds the verifiers.
    ///
    /// Errors: [`StoreError`] when the database cannot be opened or migrated.
    pub fn new(config: Config) -> Result<AppState, StoreError> {
        // E.g. auto-approve rules that could match Entra ID users (never auto-approved).
        for warning in config.policy.warnings() {
            tracing::warn!("{warning}");
        }
        let store = Store::open(&config.database)?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let (events, _) = broadcast::channel(1024);
        Ok(AppState {
            approver_auth: ApproverVerifier::new(http.clone(), config.approver_auth.clone()),
            extension_auth: ExtensionVerifier::new(http, config.extension_auth.clone()),
            config: Arc::new(config),
            store: Arc::new(store),
            events,
            metrics: Arc::new(Metrics::default()),
            answers: Arc::default(),
        })
    }

    /// Publishes a stored event to live subscribers (no subscriber is fine).
    pub fn publish(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Runs the check-status rules (marking an overdue request expired, whose event it
    /// publishes). `None` means answer `Continue`.
    ///
    /// Errors: [`ApiError::Store`] on database failure.
    pub async fn check_status(&self, claims: &Claims) -> Result<Option<MessageKind>, ApiError> {
        // From the store's in-memory check index (no database read); see the store.
        let (block, event) = self
            .store
            .check_status_async(claims, &self.config.policy, OffsetDateTime::now_utc())
            .await?;
        if let Some(e) = event {
            self.publish(e);
        }
        Ok(block)
    }

    /// Runs the request-approval rules (store + policy) on the store's writer thread and
    /// publishes the resulting event. `None` means answer `Continue`.
    ///
    /// Errors: [`ApiError::Store`] on database failure.
    pub async fn request_approval(&self, claims: &Claims) -> Result<Option<MessageKind>, ApiError> {
        let window =
            time::Duration::seconds(i64::try_from(self.config.retry_window_seconds).unwrap_or(120));
        // Queued to the store's writer thread and awaited: no blocking thread per call.
        let out = self
            .store
            .request_approval_async(
                claims,
                &self.config.policy,
                OffsetDateTime::now_utc(),
                window,
            )
            .await?;
        if let Some(e) = out.event {
            self.publish(e);
        }
        Ok(out.block)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Guestlist approval API",
        description = "Answers Entra's self-service sign-up API connectors and serves approvers."
    ),
    paths(
        routes::connectors::check_approval_status,
        routes::connectors::request_approval,
        routes::connectors::attribute_collection_start,
        routes::connectors::attribute_collection_submit,
        routes::requests::list,
        routes::requests::get_one,
        routes::requests::decide,
        routes::requests::history,
        routes::events::events,
        routes::health::healthz,
        routes::health::readyz,
        routes::health::metrics,
    )
)]
struct ApiDoc;

/// The OpenAPI document served at `/openapi.json`.
pub fn api_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The full router with its layers (request ids, tracing, JSON 404s).
///
/// Every answer carries `x-request-id` (the caller's, or a new [`MakeCounterRequestId`]). The
/// per-request tracing span `http` (method, path, request id) is at DEBUG level, so with the
/// default filter (`info`) it is never built and costs one cached level check per request; set
/// `GUESTLIST_LOG=info,guestlist_server=debug,tower_http=debug` to trace requests. 5xx answers
/// are logged at ERROR with their request id in any case ([`log_server_errors`]).
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/connectors/check-approval-status", post(routes::connectors::check_approval_status))
        .route("/connectors/request-approval", post(routes::connectors::request_approval))
        .route("/connectors/external-id/attribute-collection-start", post(routes::connectors::attribute_collection_start))
        .route("/connectors/external-id/attribute-collection-submit", post(routes::connectors::attribute_collection_submit))
        .route("/api/requests", get(routes::requests::list))
        .route("/api/requests/{id}", get(routes::requests::get_one))
        .route("/api/requests/{id}/decision", post(routes::requests::decide))
        .route("/api/requests/{id}/history", get(routes::requests::history))
        .route("/api/events", get(routes::events::events))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(routes::health::openapi))
        .fallback(|| async { ApiError::NoRoute })
        .with_state(state)
        .layer(axum::middleware::from_fn(log_server_errors))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::debug_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(
            request_id,
            MakeCounterRequestId::default(),
        ))
}

/// Logs every 5xx answer at ERROR with its `x-request-id`, method, path and status, so an
/// operator can match a caller's report to the log without the DEBUG `http` span (which the
/// default `info` filter leaves unbuilt). The handler's own error line says what failed; this
/// one says which request. Costs two reference-count increments per request otherwise.
async fn log_server_errors(
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = req.headers().get("x-request-id").cloned();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let res = next.run(req).await;
    if res.status().is_server_error() {
        tracing::error!(
            request_id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            %method,
            path = uri.path(),
            status = res.status().as_u16(),
            "request failed"
        );
    }
    res
}

/// A server started by [`spawn`].
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The state, for tests that inspect the store.
    pub state: AppState,
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` with no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, gives in-flight requests up to 5 s to finish (open event streams never
    /// finish on their own), then drops what is left. Committed writes are already on disk.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(());
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Validates `config`, opens the database, binds `config.listen` (port 0 picks a free port) and
/// serves in the background until [`RunningServer::shutdown`].
///
/// Errors: invalid configuration, database, or bind failures.
pub async fn spawn(config: Config) -> anyhow::Result<RunningServer> {
    config.validate()?;
    let listen = config.listen;
    let state = AppState::new(config)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state.clone());
    webhook::start(&state.config.notifications, state.events.subscribe());
    reminders::start(
        &state.config.notifications,
        state.store.clone(),
        state.events.subscribe(),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningServer {
        addr,
        shutdown: tx,
        task,
        state,
    })
}
