//! # guestlist-server — the Guestlist approval API
//!
//! Entra's self-service sign-up user flow calls this service through two API connectors
//! ("check approval status", "request approval"); it records the request in SQLite and answers
//! `Continue` / `ShowBlockPage` / `ValidationError` at once (`docs/CONTRACTS.md` §1–2).
//! Approvers' desktop apps read the queue, report decisions and follow events through the
//! approver API (bearer JWT, app role `Approver`, §4).
//!
//! Layout: [`config`] (layered settings), [`store`] (SQLite, the state machine's transactions),
//! [`auth`] (Basic for connectors, JWT for approvers and extensions), [`routes`] (HTTP),
//! [`error`] (one error → response mapping), [`edge`] (the accept loop and its limits, the
//! admin listener, HTTPS, client certificates, the Basic throttle), [`extract`] (the approver
//! API's extractors), [`metrics`] (`/metrics`), [`request_id`] (`x-request-id`), and the
//! optional webhook and reminders ([`webhook`], [`reminders`]). Owns no Graph calls:
//! provisioning happens in the approver's app with the approver's own token.

pub mod auth;
pub mod backup;
pub mod coalesce;
pub mod config;
pub mod duties;
pub mod edge;
pub mod error;
pub mod escalation;
pub mod extract;
pub mod guest_email;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod reminders;
pub mod request_id;
pub mod retention;
pub mod routes;
pub mod store;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use guestlist_core::connector::Claims;
use guestlist_core::model::Event;
use guestlist_core::policy::MessageKind;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use config::Config;
pub use metrics::{Endpoint, Metrics};
pub use request_id::MakeCounterRequestId;

use crate::auth::{ApproverVerifier, ExtensionVerifier};
use crate::error::ApiError;
use crate::openapi::SecuritySchemes;
use crate::store::{Store, StoreError};

/// Shared state of the handlers: one [`Arc`] around [`Shared`], so a clone (axum clones the
/// state for each extractor and middleware of every call) is one reference count, not one per
/// field. Its fields are read through [`std::ops::Deref`] (`state.config`, `state.store`, …).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The database (SQLite or PostgreSQL, [`store::Backend`]).
    pub store: Store,
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
    /// Connection counters, the Basic throttle and client-certificate checks ([`edge`]).
    pub edge: Arc<edge::EdgeState>,
    /// The `/api/events` streams: one store read per event, shared ([`live`]).
    pub hub: Arc<live::EventHub>,
    /// The retention job ([`retention`]); runs on its own every `retention.interval_seconds`.
    pub retention: Arc<retention::Retention>,
    /// Counters of the guest e-mail job ([`guest_email`], issue 14 §5).
    pub guest_email: Arc<guest_email::GuestEmailMetrics>,
    /// Identical request-approval calls in flight share one store call ([`coalesce`]).
    pub coalesce: Arc<coalesce::Coalescer>,
}

impl AppState {
    /// Opens the database and builds the verifiers.
    ///
    /// Errors: [`StoreError`] when the database cannot be opened or migrated.
    pub async fn new(config: Config) -> Result<AppState, StoreError> {
        // E.g. auto-approve rules that could match Entra ID users (never auto-approved).
        for warning in config.policy.warnings() {
            tracing::warn!("{warning}");
        }
        let store = Store::open_with(&config.database, &config.postgres).await?;
        // The denial tombstone key (issue 12): configured, or `<database>.tombstone-key`.
        match config
            .retention
            .tombstone_key()
            .map_err(StoreError::Locked)?
        {
            Some(key) => store.set_tombstone_key(key).await?,
            None => store.ensure_tombstone_key().await?,
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let (events, _) = broadcast::channel(1024);
        let retention = Arc::new(retention::Retention::new(
            store.clone(),
            config.retention.clone(),
            config.policy.expire_after_days,
            Some(events.clone()),
        ));
        let hub = live::EventHub::new(
            config.events.clone(),
            store.clone(),
            events.clone(),
            Arc::new(config.policy.clone()),
        );
        Ok(AppState(Arc::new(Shared {
            hub,
            approver_auth: ApproverVerifier::with_queue_roles(
                http.clone(),
                config.approver_auth.clone(),
                crate::duties::queue_roles(&config),
            ),
            extension_auth: ExtensionVerifier::new(http, config.extension_auth.clone()),
            config: Arc::new(config),
            store,
            events,
            metrics: Arc::new(Metrics::default()),
            answers: Arc::default(),
            edge: Arc::default(),
            retention,
            guest_email: Arc::default(),
            coalesce: Arc::default(),
        })))
    }

    /// The same state with the edge's counters, throttle and client-certificate checks
    /// replaced ([`edge::EdgeState::load`]); [`AppState::new`] starts with the defaults.
    pub fn with_edge(self, edge: Arc<edge::EdgeState>) -> AppState {
        let mut shared = Arc::try_unwrap(self.0).unwrap_or_else(|arc| (*arc).clone());
        shared.edge = edge;
        AppState(Arc::new(shared))
    }

    /// Publishes a stored event to live subscribers (no subscriber is fine): the webhook, the
    /// reminders, and the event pump of [`live`], which reads it back once for every stream.
    pub fn publish(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Runs the check-status rules (marking an overdue request expired, whose event it
    /// publishes), then, when they would answer `Continue`, the auto-deny rules
    /// ([`Policy::early_block`]: `AutoDenied`). `None` means answer `Continue`.
    ///
    /// Errors: [`ApiError::Store`] on database failure.
    pub async fn check_status(&self, claims: &Claims) -> Result<Option<MessageKind>, ApiError> {
        // From the store's in-memory check index (no database read); see the store.
        let (block, event) = self
            .store
            .check_status(claims, &self.config.policy, OffsetDateTime::now_utc())
            .await?;
        if let Some(e) = event {
            self.publish(e);
        }
        // Early block (issue 14 §4): who would go on to the attribute page but is auto-denied.
        Ok(block.or_else(|| early_block(&self.config.policy, claims)))
    }

    /// Runs the request-approval rules (store + policy) on the store's writer thread and
    /// publishes the resulting event. `None` means answer `Continue`.
    ///
    /// Errors: [`ApiError::Store`] on database failure.
    pub async fn request_approval(&self, claims: &Claims) -> Result<Option<MessageKind>, ApiError> {
        let window =
            time::Duration::seconds(i64::try_from(self.config.retry_window_seconds).unwrap_or(120));
        // Identical claims in flight at once share one store call ([`coalesce`]).
        let key = serde_json::Value::Object(claims.to_json()).to_string();
        self.coalesce
            .run(key, || async {
                let out = self
                    .store
                    .request_approval(
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
            })
            .await
    }
}

impl AppState {
    /// [`AppState::request_approval`] of a call that came through the user flow `flow`
    /// (issue 17: the external-tenant extensions store requests with flow `external`).
    ///
    /// Errors: [`ApiError::Store`] on database failure.
    pub async fn request_approval_flow(
        &self,
        claims: &Claims,
        flow: guestlist_core::model::Flow,
    ) -> Result<Option<MessageKind>, ApiError> {
        if flow == guestlist_core::model::Flow::Workforce {
            return self.request_approval(claims).await;
        }
        let window =
            time::Duration::seconds(i64::try_from(self.config.retry_window_seconds).unwrap_or(120));
        let key = format!("external {}", serde_json::Value::Object(claims.to_json()));
        self.coalesce
            .run(key, || async {
                let out = self
                    .store
                    .request_approval_flow(
                        claims,
                        flow,
                        &self.config.policy,
                        OffsetDateTime::now_utc(),
                        window,
                    )
                    .await?;
                if let Some(e) = out.event {
                    self.publish(e);
                }
                Ok(out.block)
            })
            .await
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
        routes::privacy::erase,
        routes::reopen::reopen,
        routes::privacy_export::export,
        routes::audit::audit,
        routes::events::events,
        routes::health::healthz,
        routes::health::readyz,
    ),
    modifiers(&SecuritySchemes)
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
        // Issue 12: reopen a denial, access export, audit export.
        .route("/api/requests/{id}/reopen", post(routes::reopen::reopen))
        .route("/api/privacy/export", get(routes::privacy_export::export))
        .route("/api/audit", get(routes::audit::audit))
        .route("/api/events", get(routes::events::events))
        .route("/api/privacy/erase", post(routes::privacy::erase))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
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
/// default `info` filter leaves unbuilt), and what failed when the handler's [`ApiError`] says
/// ([`error::ServerErrorDetail`]): one line per 5xx. Costs two reference-count increments per request otherwise.
async fn log_server_errors(
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = req.headers().get("x-request-id").cloned();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let res = next.run(req).await;
    if res.status().is_server_error() {
        let detail = res.extensions().get::<error::ServerErrorDetail>();
        tracing::error!(
            request_id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            %method,
            path = uri.path(),
            status = res.status().as_u16(),
            error = detail.map_or("-", |d| &*d.0),
            "request failed"
        );
    }
    res
}

/// The admin listener's router (`admin_listen`, issue 10 §7): `/metrics`, `/openapi.json`,
/// and `/healthz`, `/readyz` for probes that only reach loopback. Not served on the public
/// listener.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(routes::health::metrics))
        .route("/openapi.json", get(routes::health::openapi))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .fallback(|| async { ApiError::NoRoute })
        .with_state(state)
        .layer(axum::middleware::from_fn(log_server_errors))
}

/// A server started by [`spawn`].
pub struct RunningServer {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    tls: bool,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    admin_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The state, for tests that inspect the store.
    pub state: AppState,
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` (`https://` when TLS is served) with no trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The admin listener's address (`/metrics`, `/openapi.json`), `None` when off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// `http://<admin addr>`, `None` when the admin listener is off.
    pub fn admin_url(&self) -> Option<String> {
        self.admin_addr.map(|a| format!("http://{a}"))
    }

    /// Stops accepting, gives in-flight requests up to 5 s to finish (open event streams never
    /// finish on their own), then drops what is left. Committed writes are already on disk.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        if tokio::time::timeout_at(deadline, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        if let Some(mut admin) = self.admin_task.take()
            && tokio::time::timeout_at(deadline, &mut admin).await.is_err()
        {
            admin.abort();
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
    let state = AppState::new(config).await?;
    let edge = Arc::new(edge::EdgeState::load(&state.config).map_err(anyhow::Error::msg)?);
    let state = state.with_edge(edge);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (listener, admin, conf) = edge_listeners(&state, listen, &rx).await?;
    let addr = listener.local_addr()?;
    let admin_addr = admin.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
    let tls = conf.tls.is_some();
    let app = router(state.clone());
    let admin_task = admin.map(|(admin_listener, admin_conf)| {
        tokio::spawn(edge::serve(
            admin_listener,
            admin_router(state.clone()),
            admin_conf,
            rx.clone(),
        ))
    });
    webhook::start(&state.config.notifications, state.events.subscribe());
    reminders::start(
        &state.config.notifications,
        &state.config.policy.routes,
        state.store.clone(),
        &state.events,
        rx.clone(),
    );
    retention::start(state.retention.clone(), rx.clone());
    guest_email::start(
        &state.config.guest_email,
        state.store.clone(),
        state.guest_email.clone(),
        state.events.subscribe(),
        rx.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let task = tokio::spawn(edge::serve(listener, app, conf, rx));
    Ok(RunningServer {
        addr,
        admin_addr,
        tls,
        admin_task,
        shutdown: tx,
        task,
        state,
    })
}

/// The public listener (bound to `listen`, with the limits, TLS and connection caps of
/// `state.config`) and the admin listener (issue 10 §1, §5, §7). Raises `RLIMIT_NOFILE` first.
///
/// Errors: a bind failure of `listen` or of an `admin_listen` that was set, or unreadable TLS
/// files.
async fn edge_listeners(
    state: &AppState,
    listen: SocketAddr,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(
    tokio::net::TcpListener,
    Option<(tokio::net::TcpListener, Arc<edge::ListenerConf>)>,
    Arc<edge::ListenerConf>,
)> {
    let config = &state.config;
    let nofile = edge::raise_nofile_limit();
    let max_connections = edge::effective_max_connections(config.limits.max_connections, nofile);
    if max_connections < config.limits.max_connections {
        tracing::warn!(
            configured = config.limits.max_connections,
            in_force = max_connections,
            "limits.max_connections lowered to fit the file-descriptor limit (RLIMIT_NOFILE {})",
            nofile.unwrap_or_default()
        );
    }
    let tls = match config.tls.files().map_err(anyhow::Error::msg)? {
        Some((cert, key)) => {
            let reloader = Arc::new(
                edge::tls::TlsReloader::load(
                    cert,
                    key,
                    edge::tls::client_verifier(&config.connector),
                )
                .map_err(anyhow::Error::msg)?,
            );
            reloader.clone().watch(
                std::time::Duration::from_secs(config.tls.reload_interval_seconds),
                stop.clone(),
            );
            Some(reloader)
        }
        None => None,
    };
    // A listen backlog as large as the connection cap, not tokio's 128 (issue 10 §1).
    let listener = edge::bind_listener(listen, u32::try_from(max_connections).unwrap_or(u32::MAX))?;
    let conf = Arc::new(edge::ListenerConf {
        limits: config.limits.clone(),
        max_connections,
        trusted_proxies: state.edge.trusted_proxies.clone(),
        tls,
        metrics: state.edge.metrics.clone(),
    });
    let admin_addr = match config.admin_listen {
        Some(edge::AdminListen::Off) => None,
        Some(edge::AdminListen::At(a)) => Some((a, true)),
        None => Some((edge::AdminListen::DEFAULT, false)),
    };
    let admin = match admin_addr {
        None => None,
        Some((a, required)) => match tokio::net::TcpListener::bind(a).await {
            Ok(l) => Some(l),
            Err(e) if !required => {
                tracing::warn!(
                    "admin listener not started: cannot bind the default admin_listen {a} ({e}); \
                     /metrics and /openapi.json are unavailable (set admin_listen)"
                );
                None
            }
            Err(e) => return Err(anyhow::anyhow!("admin_listen {a}: {e}")),
        },
    };
    let admin = admin.map(|l| {
        let admin_conf = Arc::new(edge::ListenerConf {
            limits: edge::Limits {
                max_connections: 64,
                max_connections_per_ip: 64,
                ..config.limits.clone()
            },
            max_connections: 64,
            trusted_proxies: Arc::default(),
            tls: None,
            metrics: Arc::default(),
        });
        (l, admin_conf)
    });
    Ok((listener, admin, conf))
}

/// [`Policy::early_block`] as a check-status answer, logged with the rule's name (nothing is
/// stored at that step).
fn early_block(policy: &guestlist_core::policy::Policy, claims: &Claims) -> Option<MessageKind> {
    let rule = policy.early_block(claims)?;
    tracing::info!(rule, "auto-denied at check-approval-status");
    Some(MessageKind::AutoDenied)
}
