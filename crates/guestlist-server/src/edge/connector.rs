//! Who may call the API connector endpoints (CONTRACTS.md §1, issue 10 §5): HTTP Basic, a
//! client certificate, or either, as `connector.auth` says.

use guestlist_core::Code;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio_rustls::rustls::pki_types::UnixTime;

use super::PeerCertificates;
use crate::AppState;
use crate::auth::check_basic;
use crate::routes::connectors::json_error;

/// Decides a connector call. `peer` is the TCP peer (the `ConnectInfo` of the accept loop);
/// `certs` the chain our TLS listener received. A forwarded certificate header is read only
/// when `peer` is in `trusted_proxies`, and ignored otherwise.
///
/// Errors: the response to send (boxed: it is large and the success path is hot): 401 (with `WWW-Authenticate: Basic` when Basic is accepted)
/// or 429 with `Retry-After` while the caller's address is throttled.
pub fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    certs: Option<&PeerCertificates>,
) -> Result<(), Box<Response>> {
    let edge = &state.edge;
    let mode = state.config.connector.auth;
    let peer_ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    let trusted_peer = edge.trusted_proxies.contains(peer_ip);
    let client = edge.trusted_proxies.client_addr(peer_ip, headers);
    let mut cert_error = None;
    if mode.accepts_certificate() {
        let chain = match certs {
            Some(c) => Ok(Some(c.0.as_ref().clone())),
            None if trusted_peer => super::client_cert::forwarded_chain(
                headers,
                state.config.connector.forwarded_cert_header,
            ),
            None => Ok(None),
        };
        match chain {
            Ok(Some(chain)) => match edge.client_certs.verify(&chain, UnixTime::now()) {
                Ok(()) => return Ok(()),
                Err(e) => cert_error = Some(e),
            },
            Ok(None) => {}
            Err(e) => cert_error = Some(e),
        }
        if let Some(e) = &cert_error {
            edge.metrics
                .certificate_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = %client, "connector client certificate refused: {e}");
        }
    }
    if !mode.accepts_basic() {
        if cert_error.is_none() {
            edge.metrics
                .certificate_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = %client, "connector call without a client certificate");
        }
        return Err(Box::new(json_error(
            StatusCode::UNAUTHORIZED,
            Code::AuthUnauthorized,
            cert_error.unwrap_or_else(|| "a client certificate is required".into()),
        )));
    }
    if let Err(wait) = edge.throttle.check(client) {
        edge.metrics.basic_throttled.fetch_add(1, Ordering::Relaxed);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut r = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            Code::AuthThrottled,
            format!("too many failed attempts from this address; retry in {secs} s"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return Err(Box::new(r));
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match check_basic(auth, &state.config.connector) {
        Ok(()) => {
            edge.throttle.success(client);
            Ok(())
        }
        Err(e) => {
            edge.metrics.basic_failures.fetch_add(1, Ordering::Relaxed);
            let blocked = edge.throttle.failure(client);
            // The reason and the address; never the credentials.
            tracing::warn!(
                source = %client,
                reason = %e,
                blocked_seconds = blocked.map(|b| b.as_secs()),
                "connector Basic authentication failed"
            );
            let mut r = json_error(
                StatusCode::UNAUTHORIZED,
                Code::AuthUnauthorized,
                e.to_string(),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"guestlist-connectors\", charset=\"UTF-8\""),
            );
            Err(Box::new(r))
        }
    }
}
