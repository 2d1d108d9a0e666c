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

/// One parsed event of a `text/event-stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `id:` (the server's sequence number).
    pub id: Option<String>,
    /// `event:` (`message` when absent).
    pub event: String,
    /// `data:` lines joined by `\n`.
    pub data: String,
}

/// An incremental `text/event-stream` parser: feed it chunks as they come (a chunk may end in
/// the middle of a line or of a UTF-8 character); comments (`:`) and empty blocks are skipped.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

fn blank_line(b: &[u8]) -> Option<(usize, usize)> {
    (0..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else if b[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else {
            None
        }
    })
}

impl SseParser {
    /// Adds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((end, sep)) = blank_line(&self.buf) {
            let block: Vec<u8> = self.buf.drain(..end + sep).collect();
            let text = String::from_utf8_lossy(&block[..end]);
            let mut ev = SseEvent {
                id: None,
                event: "message".into(),
                data: String::new(),
            };
            let mut has_data = false;
            for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
                if line.is_empty() || line.starts_with(':') {
                    continue;
                }
                let (field, value) = match line.split_once(':') {
                    Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                    None => (line, ""),
                };
                match field {
                    "id" => ev.id = Some(value.to_owned()),
                    "event" => ev.event = value.to_owned(),
                    "data" => {
                        if has_data {
                            ev.data.push('\n');
                        }
                        ev.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_data || ev.id.is_some() {
                out.push(ev);
            }
        }
        out
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
        let mut backoff = MIN_BACKOFF;
        loop {
            if self.inner.rt(|r| r.session.is_none()) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let (connected, err) = self.stream_once(&on_update).await;
            if connected {
                backoff = MIN_BACKOFF;
            }
            log_stream_end(err.as_ref());
            let _ = self.poll(&on_update).await;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
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
    ) -> (bool, Option<ReviewerError>) {
        let inner = &self.inner;
        let last = inner.last_event_id();
        let mut resp = match inner
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
        let mut parser = SseParser::default();
        let mut batch = Batch::default();
        loop {
            let waiting = !batch.added.is_empty() || batch.changed > 0;
            let next = if waiting {
                match tokio::time::timeout(BATCH_WINDOW, resp.chunk()).await {
                    Ok(n) => n,
                    Err(_) => {
                        inner.flush(&mut batch, on_update);
                        continue;
                    }
                }
            } else {
                resp.chunk().await
            };
            let chunk = match next {
                Ok(Some(c)) => c,
                Ok(None) => {
                    inner.flush(&mut batch, on_update);
                    return (true, None);
                }
                Err(e) => {
                    inner.flush(&mut batch, on_update);
                    return (
                        true,
                        Some(ReviewerError::offline(format!("event stream: {e}"))),
                    );
                }
            };
            for ev in parser.push(&chunk) {
                if let Err(e) = inner.apply(&ev, &mut batch) {
                    inner.flush(&mut batch, on_update);
                    return (true, Some(e));
                }
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
        assert!(info.contains(&err.code), "{info}");
        for pii in ["zoe@fabrikam.example", "Zoë", "Müller"] {
            assert!(!info.contains(pii), "{pii} in the INFO log: {info}");
        }
        let debug = logged(tracing::Level::DEBUG, || log_stream_end(Some(&err)));
        assert!(debug.contains("zoe@fabrikam.example"), "{debug}");
        let none = logged(tracing::Level::INFO, || log_stream_end(None));
        assert!(none.contains("event stream ended"), "{none}");
    }

    #[test]
    fn parser_handles_split_chunks_comments_and_multiline_data() {
        let mut p = SseParser::default();
        assert!(
            p.push(b": keep-alive\n\nid: 7\nevent: request.cre")
                .is_empty()
        );
        let evs = p.push(b"ated\ndata: {\"a\":\ndata: 1}\r\n\r\nid: 8\n");
        assert_eq!(
            evs,
            vec![SseEvent {
                id: Some("7".into()),
                event: "request.created".into(),
                data: "{\"a\":\n1}".into()
            }]
        );
        let evs = p.push(b"data:x\n\n");
        assert_eq!(evs[0].id.as_deref(), Some("8"));
        assert_eq!(evs[0].event, "message");
        assert_eq!(evs[0].data, "x");
    }
}
