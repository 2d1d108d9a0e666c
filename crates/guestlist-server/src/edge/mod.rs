//! The edge of the approval API (issue 10): the accept loop and its limits, the admin listener,
//! HTTPS ([`tls`]), connector client certificates ([`client_cert`]) and the throttle of failed
//! Basic attempts ([`throttle`]).
//!
//! The accept loop is hyper's HTTP/1.1 connection driver (`hyper::server::conn::http1`) under
//! hyper-util's graceful shutdown, serving the axum router through `TowerToHyperService`:
//!
//! - **header read**: a client has `limits.header_read_timeout_ms` to send a complete request
//!   head (hyper's `header_read_timeout`, counted from the start of the head, not reset by each
//!   byte). On a kept-alive connection the same clock starts when the previous answer is sent,
//!   so it is also the **idle keep-alive timeout**; with TLS it also bounds the handshake;
//! - **body read**: a request body must arrive whole within `limits.body_read_timeout_ms`
//!   (408 otherwise; [`crate::routes::connectors`]' body reader);
//! - **connections**: at most `limits.max_connections` at once, and
//!   `limits.max_connections_per_ip` per source address (proxies of `trusted_proxies` are
//!   exempt). A connection past a cap is accepted and closed at once (a plain-HTTP listener
//!   first writes `503` with `Retry-After: 1`), so `accept` keeps draining the backlog and never
//!   reaches `EMFILE`: the global cap is lowered below the soft `RLIMIT_NOFILE` (raised to the
//!   hard limit at start, [`raise_nofile_limit`]) minus [`RESERVED_FDS`].
//! - **listen backlog**: as large as the connection cap ([`bind_listener`]), not tokio's 128, so a
//!   burst of connections while the accept loop is busy is queued rather than its SYNs dropped.

pub mod client_cert;
pub mod throttle;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

pub use client_cert::PeerCertificates;

/// File descriptors kept out of the connection cap: the database, the admin listener, outbound
/// HTTP (JWKS, webhook), logs.
pub const RESERVED_FDS: u64 = 128;

/// The `[limits]` section: timeouts and connection caps of the public listener (issue 10 §1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Milliseconds a client has to send a whole request head (and to finish the TLS
    /// handshake); also how long an idle keep-alive connection is kept. Default 10,000.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a request body has to arrive whole (408 after). Default 10,000.
    pub body_read_timeout_ms: u64,
    /// Connections open at once on the public listener (lowered to the file-descriptor limit
    /// minus [`RESERVED_FDS`] when that is smaller). Default 4,096.
    pub max_connections: usize,
    /// Connections open at once from one source address (IPv6: one /64). Addresses in
    /// `trusted_proxies` are exempt. Default 256.
    pub max_connections_per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            max_connections: 4096,
            max_connections_per_ip: 256,
        }
    }
}

impl Limits {
    /// Checks that no limit is zero.
    ///
    /// Errors: the text names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
        ] {
            if v == 0 {
                return Err(format!("limits.{key} must be greater than 0"));
            }
        }
        Ok(())
    }

    /// [`Limits::header_read_timeout_ms`] as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// [`Limits::body_read_timeout_ms`] as a duration.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }
}

/// Where `/metrics` and `/openapi.json` are served (`admin_listen`): `"off"` (or `"none"`) for
/// nowhere, else a socket address such as `127.0.0.1:9464`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AdminListen {
    /// No admin listener.
    Off,
    /// Listen here.
    At(SocketAddr),
}

impl AdminListen {
    /// The default admin address, loopback only.
    pub const DEFAULT: SocketAddr =
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);
}

impl TryFrom<String> for AdminListen {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("none") {
            return Ok(AdminListen::Off);
        }
        t.parse()
            .map(AdminListen::At)
            .map_err(|_| format!("admin_listen: {t:?} is neither \"off\" nor an IP:port address"))
    }
}

impl From<AdminListen> for String {
    fn from(a: AdminListen) -> String {
        match a {
            AdminListen::Off => "off".into(),
            AdminListen::At(s) => s.to_string(),
        }
    }
}

/// Counters of the edge, rendered at `/metrics` by [`EdgeMetrics::render`].
#[derive(Debug, Default)]
pub struct EdgeMetrics {
    /// Connections open now on the public listener.
    pub open_connections: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub refused_global: AtomicU64,
    /// Connections closed at once because `max_connections_per_ip` were open from that address.
    pub refused_per_ip: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
    /// Connector calls refused for wrong or missing Basic credentials.
    pub basic_failures: AtomicU64,
    /// Connector calls answered 429 because their address failed Basic too often.
    pub basic_throttled: AtomicU64,
    /// Connector calls refused for a missing, untrusted or expired client certificate.
    pub certificate_failures: AtomicU64,
}

impl EdgeMetrics {
    /// Appends the edge's series in Prometheus text format 0.0.4.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP guestlist_open_connections Connections open on the public listener.\n\
             # TYPE guestlist_open_connections gauge\n\
             guestlist_open_connections {}\n\
             # HELP guestlist_connections_refused_total Connections closed at once by a cap.\n\
             # TYPE guestlist_connections_refused_total counter\n\
             guestlist_connections_refused_total{{cap=\"global\"}} {}\n\
             guestlist_connections_refused_total{{cap=\"per_ip\"}} {}\n\
             # HELP guestlist_tls_handshake_failures_total TLS handshakes that failed or timed out.\n\
             # TYPE guestlist_tls_handshake_failures_total counter\n\
             guestlist_tls_handshake_failures_total {}\n\
             # HELP guestlist_connector_auth_failures_total Connector calls refused by authentication.\n\
             # TYPE guestlist_connector_auth_failures_total counter\n\
             guestlist_connector_auth_failures_total{{reason=\"basic\"}} {}\n\
             guestlist_connector_auth_failures_total{{reason=\"throttled\"}} {}\n\
             guestlist_connector_auth_failures_total{{reason=\"certificate\"}} {}\n",
            g(&self.open_connections),
            g(&self.refused_global),
            g(&self.refused_per_ip),
            g(&self.tls_handshake_failures),
            g(&self.basic_failures),
            g(&self.basic_throttled),
            g(&self.certificate_failures),
        );
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in force
/// (`None` when it cannot be read or the platform has none).
pub fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!("cannot raise RLIMIT_NOFILE: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The connection cap in force: `configured`, lowered so that the open connections plus
/// [`RESERVED_FDS`] fit under the soft file-descriptor limit `nofile`.
pub fn effective_max_connections(configured: usize, nofile: Option<u64>) -> usize {
    match nofile {
        Some(n) => {
            let room = usize::try_from(n.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
            configured.min(room.max(1))
        }
        None => configured,
    }
}

/// Where Linux caps every `listen(2)` backlog (`net.core.somaxconn`).
const SOMAXCONN_PATH: &str = "/proc/sys/net/core/somaxconn";

/// Binds a listening TCP socket to `addr` with a listen backlog of `backlog` connections
/// (`SO_REUSEADDR` set on Unix, as `tokio::net::TcpListener::bind` does).
///
/// The backlog is the queue of connections the kernel has completed but the accept loop has
/// not taken yet. `tokio::net::TcpListener::bind` asks for 128 (mio 1.2, as locked here; the
/// standard library too): a burst of more than 129 connections while the accept loop is busy
/// makes Linux drop the further SYNs, which the callers retry after 1, 3, 7 … s and give up on
/// after about 127 s (`net.ipv4.tcp_syn_retries` = 6). The public listener passes its connection
/// cap ([`effective_max_connections`]), so a burst up to the cap waits in the queue instead
/// (and connections past the cap are still accepted and refused at once by the accept loop).
/// Linux lowers the backlog to `net.core.somaxconn` (4096 by default since Linux 5.4); a
/// warning is logged when that is below `backlog`. See `listen(2)`.
///
/// Errors: the socket cannot be created, bound (e.g. the address is in use) or put in the
/// listening state.
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    if let Some(cap) = std::fs::read_to_string(SOMAXCONN_PATH)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|cap| *cap < backlog)
    {
        tracing::warn!(
            requested = backlog,
            in_force = cap,
            "the listen backlog of {addr} is capped by net.core.somaxconn; a burst of more than \
             {cap} connections may be dropped and retried by the callers (raise the sysctl)"
        );
    }
    socket.listen(backlog)
}

/// What one listener's accept loop needs.
pub(crate) struct ListenerConf {
    pub(crate) limits: Limits,
    /// The global cap in force ([`effective_max_connections`]).
    pub(crate) max_connections: usize,
    /// Source addresses exempt from the per-address cap.
    pub(crate) trusted_proxies: Arc<client_cert::TrustedProxies>,
    /// TLS, when served directly.
    pub(crate) tls: Option<Arc<tls::TlsReloader>>,
    /// Counters (the public listener's; the admin listener keeps its own).
    pub(crate) metrics: Arc<EdgeMetrics>,
}

/// Connections open per source address ([`addr_key`]), for `max_connections_per_ip`.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerAddress`], given back when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let key = addr_key(ip);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

/// The key an address is counted under: itself for IPv4 (and IPv4-mapped IPv6), its /64 for
/// IPv6 (one host usually holds a whole /64).
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// What a plain-HTTP listener writes to a connection past a cap before closing it.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-type: text/plain\r\ncontent-length: 26\r\n\r\ntoo many open connections\n";

/// Serves `app` on `listener` until `stop` turns true, then stops accepting and waits for the
/// open connections to finish (the caller bounds that wait). Handlers get
/// `ConnectInfo<SocketAddr>` (the TCP peer) and, over TLS with a client certificate,
/// [`PeerCertificates`] as request extensions.
///
/// Errors: none in practice; `accept` failures (e.g. `EMFILE`) are logged and retried after
/// 100 ms.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    conf: Arc<ListenerConf>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(conf.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(conf.limits.header_read_timeout())
        .keep_alive(true);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            stopped = stop.wait_for(|s| *s) => {
                drop(stopped);
                break;
            }
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Per-connection errors (reset before accept) need no pause; running out
                // of descriptors or memory does.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            conf.metrics.refused_global.fetch_add(1, Ordering::Relaxed);
            refuse(stream, conf.tls.is_none());
            continue;
        };
        let address_slot = if conf.trusted_proxies.contains(peer.ip()) {
            None
        } else {
            match per_address.take(peer.ip(), conf.limits.max_connections_per_ip) {
                Some(s) => Some(s),
                None => {
                    conf.metrics.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %peer.ip(), "per-address connection cap reached");
                    refuse(stream, conf.tls.is_none());
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let http = http.clone();
        let watcher = graceful.watcher();
        let conf = conf.clone();
        tokio::spawn(async move {
            let _held = (permit, address_slot);
            conf.metrics
                .open_connections
                .fetch_add(1, Ordering::Relaxed);
            match &conf.tls {
                None => serve_connection(stream, peer, None, app, &http, watcher).await,
                Some(tls) => {
                    let acceptor = tls.acceptor();
                    match tokio::time::timeout(
                        conf.limits.header_read_timeout(),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => {
                            let certs = s
                                .get_ref()
                                .1
                                .peer_certificates()
                                .filter(|c| !c.is_empty())
                                .map(|c| PeerCertificates(Arc::new(c.to_vec())));
                            serve_connection(s, peer, certs, app, &http, watcher).await;
                        }
                        Ok(Err(e)) => {
                            conf.metrics
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(peer = %peer, "TLS handshake failed: {e}");
                        }
                        Err(_) => {
                            conf.metrics
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(peer = %peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            conf.metrics
                .open_connections
                .fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Closes a connection past a cap: writes [`REFUSAL`] if the socket takes it without waiting
/// (plain HTTP only), then drops it.
fn refuse(stream: tokio::net::TcpStream, plain_http: bool) {
    if plain_http {
        let _ = stream.try_write(REFUSAL);
    }
    drop(stream);
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    certs: Option<PeerCertificates>,
    app: Router,
    http: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(c) = &certs {
            req.extensions_mut().insert(c.clone());
        }
        app.clone().oneshot(req)
    });
    let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(peer = %peer, "connection ended: {e}");
    }
}

pub mod connector;

/// The edge's share of the handlers' state ([`crate::AppState::edge`]).
#[derive(Debug, Default)]
pub struct EdgeState {
    /// Counters of the public listener and connector authentication.
    pub metrics: Arc<EdgeMetrics>,
    /// Failed Basic attempts per address.
    pub throttle: throttle::FailureThrottle,
    /// `trusted_proxies`.
    pub trusted_proxies: Arc<client_cert::TrustedProxies>,
    /// `connector.client_ca_file` / `connector.client_cert_sha256`.
    pub client_certs: client_cert::ClientCertPolicy,
}

impl EdgeState {
    /// Builds the edge state of `config` (reads the client CA file).
    ///
    /// Errors: as [`client_cert::TrustedProxies::parse`] and [`client_cert::ClientCertPolicy::load`].
    pub fn load(config: &crate::Config) -> Result<EdgeState, String> {
        Ok(EdgeState {
            metrics: Arc::default(),
            throttle: throttle::FailureThrottle::default(),
            trusted_proxies: Arc::new(client_cert::TrustedProxies::parse(&config.trusted_proxies)?),
            client_certs: client_cert::ClientCertPolicy::load(
                config.connector.client_ca_file.as_deref(),
                &config.connector.client_cert_sha256,
            )?,
        })
    }
}
