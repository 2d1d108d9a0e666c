//! The RFC 8252 loopback redirect of the sign-in: a listener of our own on
//! `127.0.0.1:<free port>` that serves connections concurrently until the redirect of this
//! sign-in arrives ([`await_redirect`]), and the redirect's checks ([`check_redirect`]: `state`,
//! RFC 9207 `iss`, the authority's error).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::REDIRECT_PATH;
use crate::error::{ReviewerError, codes};

/// The redirect's query parameters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `code`.
    pub code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `iss` (RFC 9207).
    pub iss: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

const DONE_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Guestlist</title>\
<style>body{font-family:system-ui,sans-serif;margin:4em auto;max-width:32em;text-align:center;color:#222}</style>\
</head><body><h1>You are signed in to Guestlist</h1><p>You can close this tab and return to the app.</p></body></html>";

const ERROR_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Guestlist</title></head>\
<body style=\"font-family:system-ui,sans-serif;margin:4em auto;max-width:32em;text-align:center\">\
<h1>Sign-in did not complete</h1><p>Return to the Guestlist app for details. You can close this tab.</p></body></html>";

const WRONG_STATE_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Guestlist</title></head>\
<body style=\"font-family:system-ui,sans-serif;margin:4em auto;max-width:32em;text-align:center\">\
<h1>This is not the sign-in in progress</h1><p>This response does not belong to the Guestlist sign-in \
that is waiting. Finish signing in in the tab Guestlist opened, or start again from the app.</p></body></html>";

/// Most connections the loopback listener serves at once; further ones wait in the backlog.
pub const MAX_LOOPBACK_CONNECTIONS: usize = 32;

/// How long one loopback connection may take to send its request head.
const LOOPBACK_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP requests on `listener`, many connections at once (up to
/// [`MAX_LOOPBACK_CONNECTIONS`]; a slow or idle one holds nobody up), until the redirect of this
/// sign-in arrives: a `GET` [`REDIRECT_PATH`] whose `state` equals `state`. It is answered with a
/// friendly page and its query is returned (`check_redirect` then checks `iss` and reads the
/// code or the authority's error).
///
/// Anything else is answered and ignored, and the wait goes on (RFC 8252 §8.1: any local process
/// can reach the port): other paths get 404; a callback with a missing or different `state` gets
/// 400 and a "not the sign-in in progress" page. The caller bounds the whole wait
/// ([`SIGN_IN_TIMEOUT`] in [`Auth::sign_in`]).
///
/// Errors: `auth.sign_in_failed` when the listener itself fails.
pub async fn await_redirect(
    listener: &TcpListener,
    state: &str,
) -> Result<Redirect, ReviewerError> {
    let state: Arc<str> = Arc::from(state);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < MAX_LOOPBACK_CONNECTIONS => {
                let (sock, _) = accepted.map_err(|e| {
                    ReviewerError::new(codes::SIGN_IN_FAILED, format!("loopback listener: {e}"))
                })?;
                connections.spawn(serve_loopback(sock, state.clone()));
            }
            Some(done) = connections.join_next() => {
                if let Ok(Some(redirect)) = done {
                    return Ok(redirect);
                }
            }
        }
    }
}

/// Answers one loopback connection; `Some` when it carried this sign-in's redirect.
async fn serve_loopback(mut sock: tokio::net::TcpStream, state: Arc<str>) -> Option<Redirect> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(LOOPBACK_READ_TIMEOUT, sock.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
                if buf.len() > 16 * 1024 {
                    return None;
                }
            }
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let target = head
        .lines()
        .next()
        .and_then(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some("GET"))
                .then(|| parts.next())
                .flatten()
        })
        .unwrap_or("")
        .to_owned();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    if path != REDIRECT_PATH {
        let _ = sock
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return None;
    }
    let mut r = Redirect::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut r.code,
            "state" => &mut r.state,
            "iss" => &mut r.iss,
            "error" => &mut r.error,
            "error_description" => &mut r.error_description,
            _ => continue,
        };
        *slot = Some(v.into_owned());
    }
    let ours = r.state.as_deref() == Some(&*state);
    let (status, page) = if !ours {
        ("400 Bad Request", WRONG_STATE_PAGE)
    } else if r.code.is_some() && r.error.is_none() {
        ("200 OK", DONE_PAGE)
    } else {
        ("200 OK", ERROR_PAGE)
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
    ours.then_some(r)
}

/// Checks a redirect against the expected `state` and issuer (RFC 9207: `iss`, when present,
/// must equal the discovered issuer) and returns the code.
///
/// Errors: `auth.sign_in_failed` naming what did not match, or the authority's
/// `error`/`error_description`.
pub fn check_redirect(r: &Redirect, state: &str, issuer: &str) -> Result<String, ReviewerError> {
    let fail = |m: String| Err(ReviewerError::new(codes::SIGN_IN_FAILED, m));
    if let Some(e) = &r.error {
        return fail(format!(
            "the authority answered {e}: {}",
            r.error_description.as_deref().unwrap_or("")
        ));
    }
    if r.state.as_deref() != Some(state) {
        return fail("the redirect's state does not match this sign-in (possible CSRF)".into());
    }
    if let Some(iss) = &r.iss
        && iss.trim_end_matches('/') != issuer.trim_end_matches('/')
    {
        return fail(format!(
            "the redirect's iss {iss:?} is not the authority {issuer:?} (RFC 9207 mix-up defence)"
        ));
    }
    match &r.code {
        Some(c) if !c.is_empty() => Ok(c.clone()),
        _ => fail("the redirect carries no code".into()),
    }
}
