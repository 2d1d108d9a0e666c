//! Live updates of the cached queue: [`Reviewer::follow_events`] follows the approval API's
//! `GET /api/events` (Server-Sent Events,
//! <https://html.spec.whatwg.org/multipage/server-sent-events.html>), applies each event to the
//! cache as it arrives (`request.created` → cached, decided or expired → removed, `request.erased`
//! → dropped with its unsent decision failed, [`crate::cache::erase`]), and persists
//! the last event id so that a reconnection, even after an app or server restart, resumes with
//! `Last-Event-ID`. When the stream cannot be opened or breaks, it reconnects with exponential
//! backoff ([`MIN_BACKOFF`] … [`MAX_BACKOFF`]) and polls with [`Reviewer::sync`] at every
//! attempt meanwhile, so the queue stays current when SSE is unavailable. A stream opened
//! without `Last-Event-ID` starts from now: the app syncs right after it is open, so nothing
//! falls between the two. A `resync` event (the client fell too far behind, or its last
//! event id is ahead of a restored server database) forgets the stored event id; the stream
//! ends, the changed-since sync ([`Reviewer::sync`], `GET /api/requests?since=`) catches up,
//! and the next stream starts from now. The server also ends a stream when its token expires:
//! the reconnection takes a fresh one. Must not depend on tauri: the shell passes a callback.

use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use guestlist_core::model::{EVENT_REQUEST_ERASED, Event, RequestState};
use serde::Serialize;

use crate::error::ReviewerError;
use crate::{Inner, Reviewer};

/// The first reconnection delay; doubled after each failed attempt.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// The longest reconnection (and polling) delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Events that arrive within this window of each other are reported as one update (a burst
/// becomes one summary notification).
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);

const LAST_EVENT_KEY: &str = "last_event_id";

/// Where a [`LiveUpdate`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveSource {
    /// The event stream.
    Sse,
    /// A poll ([`Reviewer::sync`]) while the stream was unavailable.
    Poll,
}

/// What changed in the cache (the shell emits `queue-changed` and notifies `added` requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveUpdate {
    /// Stream or poll.
    pub source: LiveSource,
    /// Requests new to the cache and still pending.
    pub added: u64,
    /// Cached requests changed or removed (decided or expired elsewhere).
    pub changed: u64,
    /// The last event id applied (stream only).
    pub last_event_id: Option<u64>,
}

/// One event of a `text/event-stream`, as [`sse_events`] yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The last event id (`id:`; the server's sequence number), `None` before any.
    pub id: Option<String>,
    /// `event:` (`message` when absent).
    pub event: String,
    /// `data:` lines joined by `\n`.
    pub data: String,
    /// `retry:`, the reconnection time the server asks for (milliseconds on the wire).
    pub retry: Option<Duration>,
}

impl From<eventsource_stream::Event> for SseEvent {
    fn from(e: eventsource_stream::Event) -> Self {
        SseEvent {
            id: Some(e.id).filter(|id| !id.is_empty()),
            event: e.event,
            data: e.data,
            retry: e.retry,
        }
    }
}

/// The events of a `text/event-stream` body given as a stream of byte chunks (a chunk may end
/// anywhere, even inside a UTF-8 character). Parsing is the `eventsource-stream` crate's,
/// which follows the WHATWG rules: LF, CRLF and CR-only line ends, a leading BOM, comments,
/// multi-line `data:`, `retry:` (see [`SseEvent::retry`]); a block without `data:` dispatches
/// nothing.
///
/// Errors (the stream ends after one): `network.offline` for a transport failure, and for a
/// body that is not UTF-8 or not an event stream (the message never quotes the body: it may
/// hold personal data).
pub fn sse_events<S, B, E>(body: S) -> impl Stream<Item = Result<SseEvent, ReviewerError>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    strip_bom(body).eventsource().map(|r| match r {
        Ok(e) => Ok(SseEvent::from(e)),
        Err(EventStreamError::Transport(e)) => {
            Err(ReviewerError::offline(format!("event stream: {e}")))
        }
        Err(EventStreamError::Utf8(_)) => {
            Err(ReviewerError::offline("the event stream is not UTF-8 text"))
        }
        Err(EventStreamError::Parser(_)) => Err(ReviewerError::offline(
            "the event stream is not a text/event-stream",
        )),
    })
}

/// A UTF-8 byte order mark, which may open a `text/event-stream`.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// `body` without a leading [`BOM`] (also one split across chunks). eventsource-stream 0.2.3
/// strips a BOM itself by slicing one byte off a three-byte character, which panics (fix
/// pending upstream: <https://github.com/jpopesculian/eventsource-stream/pull/10>); so it never
/// sees one. Drop this filter once a release with that fix is used.
fn strip_bom<S, B, E>(body: S) -> impl Stream<Item = Result<Vec<u8>, E>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    // `Some(bytes so far)` while they could still be the start of a BOM.
    let mut head: Option<Vec<u8>> = Some(Vec::new());
    body.map(move |r| {
        r.map(|chunk| {
            let chunk = chunk.as_ref();
            let Some(mut h) = head.take() else {
                return chunk.to_vec();
            };
            h.extend_from_slice(chunk);
            if h.len() < BOM.len() && BOM.starts_with(&h) {
                head = Some(h);
                Vec::new()
            } else if h.starts_with(BOM) {
                h.split_off(BOM.len())
            } else {
                h
            }
        })
    })
}

/// [`sse_events`] over a body already in memory, cut into `chunks`: the events up to the
/// first error, and that error. Blocking (no I/O); for tests and the fuzz target.
pub fn parse_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<SseEvent>, Option<ReviewerError>) {
    let body = futures::stream::iter(
        chunks
            .into_iter()
            .map(Ok::<_, std::convert::Infallible>)
            .collect::<Vec<_>>(),
    );
    futures::executor::block_on(async {
        let mut events = std::pin::pin!(sse_events(body));
        let mut out = Vec::new();
        while let Some(r) = events.next().await {
            match r {
                Ok(e) => out.push(e),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    })
}

/// The reconnection delay of [`Reviewer::follow_events`]: the server's `retry:` when it sent
/// one (kept across connections, as the SSE spec's "reconnection time"), else [`MIN_BACKOFF`];
/// doubled after each attempt that did not connect, at most [`MAX_BACKOFF`]. A `retry:` is
/// clamped into `[MIN_BACKOFF, MAX_BACKOFF]`, so a server cannot make the app hammer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    base: Duration,
    next: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            base: MIN_BACKOFF,
            next: MIN_BACKOFF,
        }
    }
}

impl Reconnect {
    /// The server asked for `retry` (an event's `retry:` field).
    pub fn server_retry(&mut self, retry: Duration) {
        self.base = retry.clamp(MIN_BACKOFF, MAX_BACKOFF);
        self.next = self.base;
    }

    /// A stream was open: the next wait starts again from the reconnection time.
    pub fn connected(&mut self) {
        self.next = self.base;
    }

    /// The wait before the next attempt; the one after it doubles (up to [`MAX_BACKOFF`]).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }
}

/// Events applied but not yet reported.
#[derive(Default)]
pub(crate) struct Batch {
    added: Vec<String>,
    changed: u64,
    last: Option<u64>,
}

impl Inner {
    fn last_event_id(&self) -> Option<u64> {
        self.cache
            .meta(LAST_EVENT_KEY)
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok())
    }

    /// Applies one stream event to the cache. `Err` for a `resync` event: the stored event id
    /// is forgotten, so the caller's sync catches up and the next stream starts from now.
    pub(crate) fn apply(&self, ev: &SseEvent, batch: &mut Batch) -> Result<(), ReviewerError> {
        if ev.event == "resync" {
            self.cache.set_meta(LAST_EVENT_KEY, None)?;
            tracing::info!(data = %ev.data, "the event stream asks for a resync");
            return Err(ReviewerError::offline(
                "the event stream asked for a resync; syncing, then reconnecting",
            ));
        }
        let Ok(e) = serde_json::from_str::<Event>(&ev.data) else {
            tracing::warn!(event = %ev.event, "unreadable event ignored");
            return Ok(());
        };
        let id = e.request_id.to_string();
        let pending = e
            .request
            .as_ref()
            .filter(|r| r.state == RequestState::Pending);
        if e.kind == EVENT_REQUEST_ERASED {
            let r = self
                .cache
                .erase_requests(&[id], time::OffsetDateTime::now_utc())?;
            batch.changed += r.requests + r.decisions_failed + r.decisions_deleted;
        } else if let Some(request) = pending {
            let (a, u, _) = self
                .cache
                .store_pending(std::slice::from_ref(request), false)?;
            if a > 0 {
                batch.added.push(id);
            }
            batch.changed += u;
        } else if self.cache.remove_request(&id)? {
            batch.changed += 1;
        }
        self.cache
            .set_meta(LAST_EVENT_KEY, Some(&e.seq.to_string()))?;
        batch.last = Some(e.seq);
        Ok(())
    }

    fn flush(&self, batch: &mut Batch, on_update: &(impl Fn(LiveUpdate) + Send + Sync)) {
        let b = std::mem::take(batch);
        // Created and then decided within the batch: nothing to announce.
        let added = b
            .added
            .iter()
            .filter(|id| matches!(self.cache.request(id), Ok(Some(_))))
            .count() as u64;
        if added > 0 || b.changed > 0 {
            on_update(LiveUpdate {
                source: LiveSource::Sse,
                added,
                changed: b.changed,
                last_event_id: b.last,
            });
        }
    }
}

/// Logs why the event stream ended: the error's code at INFO, its message (which can quote
/// requests' data: names, e-mails) only at DEBUG. The app's log holds no personal data at INFO
/// (issue 10 §8).
fn log_stream_end(err: Option<&ReviewerError>) {
    let code = err.map(|e| e.code.as_str());
    tracing::info!(code, "event stream ended; polling, then reconnecting");
    if let Some(e) = err {
        tracing::debug!(code = %e.code, message = %e.message, "event stream error");
    }
}

impl Reviewer {
    /// Follows the approval API's event stream until the returned future is dropped (run it
    /// in a task; see the module docs): applies events to the cache and calls `on_update` for
    /// each batch of changes. Waits while signed out. Without a stored event id (first
    /// connection, or after a `resync` event) it syncs once the stream is open (see the module
    /// docs).
    pub async fn follow_events(&self, on_update: impl Fn(LiveUpdate) + Send + Sync) {
        let mut reconnect = Reconnect::default();
        loop {
            if self.inner.rt(|r| r.session.is_none()) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let (connected, err) = self.stream_once(&on_update, &mut reconnect).await;
            if connected {
                reconnect.connected();
            }
            log_stream_end(err.as_ref());
            let _ = self.poll(&on_update).await;
            tokio::time::sleep(reconnect.next_wait()).await;
        }
    }

    /// One [`Reviewer::sync`], reported as a [`LiveSource::Poll`] update when it changed the
    /// cache.
    async fn poll(
        &self,
        on_update: &(impl Fn(LiveUpdate) + Send + Sync),
    ) -> Result<(), ReviewerError> {
        let rep = self.sync().await?;
        if rep.added > 0 || rep.updated > 0 || rep.removed > 0 {
            on_update(LiveUpdate {
                source: LiveSource::Poll,
                added: rep.added,
                changed: rep.updated + rep.removed,
                last_event_id: None,
            });
        }
        Ok(())
    }

    /// One connection: `(connected, why it ended)`.
    async fn stream_once(
        &self,
        on_update: &(impl Fn(LiveUpdate) + Send + Sync),
        reconnect: &mut Reconnect,
    ) -> (bool, Option<ReviewerError>) {
        let inner = &self.inner;
        let last = inner.last_event_id();
        let resp = match inner
            .with_api(|api, t| async move { api.events(&t, last).await })
            .await
        {
            Ok(r) => r,
            Err(f) => return (false, Some(f.to_error())),
        };
        // A stream without `Last-Event-ID` starts from now: what happened before it opened
        // comes from a changed-since sync, made once it is open so nothing falls between.
        if last.is_none()
            && let Err(e) = self.poll(on_update).await
        {
            return (true, Some(e));
        }
        let mut events = std::pin::pin!(sse_events(resp.bytes_stream()));
        let mut batch = Batch::default();
        loop {
            let waiting = !batch.added.is_empty() || batch.changed > 0;
            let next = if waiting {
                // `next()` is cancel-safe: a timeout loses no event.
                match tokio::time::timeout(BATCH_WINDOW, events.next()).await {
                    Ok(n) => n,
                    Err(_) => {
                        inner.flush(&mut batch, on_update);
                        continue;
                    }
                }
            } else {
                events.next().await
            };
            let ev = match next {
                Some(Ok(ev)) => ev,
                None => {
                    inner.flush(&mut batch, on_update);
                    return (true, None);
                }
                Some(Err(e)) => {
                    inner.flush(&mut batch, on_update);
                    return (true, Some(e));
                }
            };
            if let Some(retry) = ev.retry {
                reconnect.server_retry(retry);
            }
            if let Err(e) = inner.apply(&ev, &mut batch) {
                inner.flush(&mut batch, on_update);
                return (true, Some(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything logged at `level` and above on this thread while `f` runs, as text.
    fn logged(level: tracing::Level, f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned()
    }

    /// A stream that ends on an error quoting a request (a cache write failing on an event's
    /// data) leaves its code in the INFO log and the personal data only at DEBUG.
    #[test]
    fn a_stream_error_is_logged_without_personal_data_at_info() {
        let err = ReviewerError::storage(
            "local data: invalid type: string \"Zoë Müller <zoe@fabrikam.example>\", expected u64",
        );
        let info = logged(tracing::Level::INFO, || log_stream_end(Some(&err)));
        assert!(info.contains("event stream ended"), "{info}");
        assert!(info.contains(err.code.as_str()), "{info}");
        for pii in ["zoe@fabrikam.example", "Zoë", "Müller"] {
            assert!(!info.contains(pii), "{pii} in the INFO log: {info}");
        }
        let debug = logged(tracing::Level::DEBUG, || log_stream_end(Some(&err)));
        assert!(debug.contains("zoe@fabrikam.example"), "{debug}");
        let none = logged(tracing::Level::INFO, || log_stream_end(None));
        assert!(none.contains("event stream ended"), "{none}");
    }

    fn ev(id: Option<&str>, event: &str, data: &str) -> SseEvent {
        SseEvent {
            id: id.map(str::to_owned),
            event: event.into(),
            data: data.into(),
            retry: None,
        }
    }

    #[test]
    fn parser_handles_split_chunks_comments_and_multiline_data() {
        let (evs, err) = parse_chunks([
            &b": keep-alive\n\nid: 7\nevent: request.cre"[..],
            b"ated\ndata: {\"a\":\ndata: 1}\r\n\r\nid: 8\n",
            b"data:x\n\n",
        ]);
        assert_eq!(err, None);
        assert_eq!(
            evs,
            vec![
                ev(Some("7"), "request.created", "{\"a\":\n1}"),
                ev(Some("8"), "message", "x")
            ]
        );
    }

    /// CR alone ends a line (WHATWG: CRLF, LF or CR); the hand-written parser only knew LF and
    /// CRLF and never saw an event here. A CR last in what has arrived could still be the
    /// start of a CRLF, so its event is dispatched with the next bytes (a keep-alive comment).
    #[test]
    fn cr_only_line_endings() {
        let (evs, err) = parse_chunks([
            &b"id: 1\revent: request.created\rdata: a\r"[..],
            b"\rdata: b\r\r",
            b": keep-alive\r\r",
        ]);
        assert_eq!(err, None);
        assert_eq!(
            evs,
            vec![
                ev(Some("1"), "request.created", "a"),
                ev(Some("1"), "message", "b")
            ]
        );
    }

    /// A UTF-8 byte order mark before the first field is skipped, also split across chunks
    /// (the hand-written parser read the first field name as "\u{feff}event"; eventsource-stream
    /// alone panics on it). A BOM later in the stream is not special.
    #[test]
    fn a_leading_bom_is_skipped() {
        for cut in 0..=4 {
            let body = b"\xef\xbb\xbfevent: resync\ndata: {}\n\n";
            let (evs, err) = parse_chunks([&body[..cut], &body[cut..]]);
            assert_eq!(err, None, "cut at {cut}");
            assert_eq!(evs, vec![ev(None, "resync", "{}")], "cut at {cut}");
        }
        let (evs, _) = parse_chunks([&b"\xef\xbb"[..]]);
        assert!(evs.is_empty());
        let (evs, _) = parse_chunks([&b"\xefdata: x\n\n"[..]]);
        assert!(evs.is_empty(), "not a BOM, not UTF-8: {evs:?}");
        let (evs, err) = parse_chunks([&b"data: a\n\n\xef\xbb\xbfdata: b\n\n"[..]]);
        assert_eq!(
            (evs.len(), err),
            (1, None),
            "a later BOM is a field name: ignored"
        );
    }

    /// `retry:` is read (milliseconds) and sets the reconnection delay, clamped; failed attempts
    /// double from it, and an open stream brings it back.
    #[test]
    fn retry_is_honoured_by_the_reconnection_delay() {
        let (evs, _) = parse_chunks([&b"retry: 5000\nid: 3\ndata: {}\n\n"[..]]);
        assert_eq!(evs[0].retry, Some(Duration::from_millis(5000)));
        let mut r = Reconnect::default();
        assert_eq!(r.next_wait(), MIN_BACKOFF);
        assert_eq!(r.next_wait(), MIN_BACKOFF * 2);
        r.server_retry(evs[0].retry.unwrap());
        assert_eq!(r.next_wait(), Duration::from_secs(5));
        assert_eq!(r.next_wait(), Duration::from_secs(10));
        r.connected();
        assert_eq!(r.next_wait(), Duration::from_secs(5));
        for _ in 0..10 {
            r.next_wait();
        }
        assert_eq!(r.next_wait(), MAX_BACKOFF);
        r.server_retry(Duration::from_millis(1));
        assert_eq!(r.next_wait(), MIN_BACKOFF, "a tiny retry: is clamped");
        r.server_retry(Duration::from_secs(3600));
        assert_eq!(r.next_wait(), MAX_BACKOFF, "a huge retry: is clamped");
    }

    /// A body that is not UTF-8 ends the stream with an error that does not quote it.
    #[test]
    fn a_body_that_is_not_utf8_ends_the_stream() {
        let (evs, err) = parse_chunks([&b"data: ok\n\n"[..], b"data: zo\xff\xfe\n\n"]);
        assert_eq!(evs, vec![ev(None, "message", "ok")]);
        let err = err.unwrap();
        assert!(err.is_offline() && !err.message.contains("zo"), "{err:?}");
    }
}
