//! The event hub behind `GET /api/events` (CONTRACTS.md §4, issue 10 §2): one store read per
//! new event, shared by every open stream, and bounded memory per stream whatever the client
//! does.
//!
//! - **One pump.** [`AppState::publish`](crate::AppState::publish) only wakes the pump task.
//!   It reads the events committed after the last one it sent (in pages of
//!   `events.page_size`, in sequence order), renders each one SSE frame once
//!   (`id: <seq>`, `event: <kind>`, `data: <json>`), and broadcasts the frame as shared
//!   [`Bytes`]. Streams never read the store for live events.
//! - **Bounded streams.** A stream holds at most one page of replayed frames
//!   ([`StreamStats::buffered_frames`]); live frames sit once in the broadcast ring of
//!   `events.broadcast_capacity` frames, shared by all streams. A client that does not read
//!   makes hyper stop polling its body, so nothing more is produced for it.
//! - **Resync.** A stream opened without `Last-Event-ID` starts from now (no backlog). With
//!   `Last-Event-ID: <seq>` it first replays the stored events after `seq`, a page at a time.
//!   When the client is too far behind (more than `events.max_backlog` events to replay, or
//!   more than `events.broadcast_capacity` live events unread), when `seq` is ahead of the
//!   store's latest event (a restored database) or not a number, the stream sends one
//!   `resync` event and ends: the client re-reads what changed with
//!   `GET /api/requests?since=<changeSeq>` and reconnects without `Last-Event-ID`. Its data is
//!   `{"reason": "too_far_behind" | "lagged" | "ahead_of_store" | "bad_last_event_id",
//!   "latestSeq": <seq>}`.
//! - **Caps.** At most `events.max_streams_per_principal` streams per approver (token `oid`,
//!   else `sub`; 429 `events.too_many_streams_for_principal`) and `events.max_streams` in total
//!   (503 `events.too_many_streams`).
//! - **Expiry.** A stream ends at its token's `exp` plus `approver_auth.leeway_seconds`; the
//!   client reconnects with a fresh token (and so a fresh role check).
//! - **Several replicas** (PostgreSQL, issue 13). The pump is also woken by the store's
//!   [`listen_events`](crate::store::Backend::listen_events) signals (`NOTIFY guestlist_events`
//!   at each commit, by any replica, and a resync after the listener reconnects), subscribed
//!   before the pump reads its starting point. Each wake reads `events_after` the last number
//!   sent, so a stream on replica B gets replica A's events in sequence order, exactly once
//!   (an event written here and notified too is read once: the pump never goes back), and
//!   `Last-Event-ID` resumes on any replica (the events are in the shared database). Only the
//!   local [`AppState::publish`](crate::AppState::publish) reaches the webhook and the
//!   reminders, so a webhook message is sent by the replica that wrote the event, once
//!   cluster-wide. On SQLite there are no signals: one process owns the database.
//! - **Transient read failures** (a pool acquire timeout, a connection lost or a busy database
//!   for a moment under load). A stream's replay read is tried [`REPLAY_ATTEMPTS`] times, with a
//!   backoff from [`REPLAY_BACKOFF`] doubling after each failure (50 + 100 + 200 + 400 + 800 ms at
//!   most, never past the stream's deadline): the stream keeps its position (the last id sent),
//!   so the retried read neither skips nor repeats an event. Only a permanent error
//!   ([`transient`] false, e.g. a corrupt row) or the attempts running out ends the stream; the
//!   client then resumes with `Last-Event-ID` (the id of the last frame it got, still exact).
//!   The pump never gives up: a failed read is retried with a backoff capped at
//!   [`PUMP_BACKOFF_MAX`], from the last number it sent.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use guestlist_core::Code;
use guestlist_core::model::Event;
use guestlist_core::policy::Policy;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::duties::Scope;
use crate::error::ApiError;
use crate::store::{ClusterSignals, Store, StoreError, WeakStore};

mod retry;
use retry::Faults;
pub use retry::{PUMP_BACKOFF_MAX, REPLAY_ATTEMPTS, REPLAY_BACKOFF, ReadSite, transient};

/// `[events]`: limits of `GET /api/events` (see the module docs and [`crate::config`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Open streams in total; one more is refused with 503.
    pub max_streams: usize,
    /// Open streams per approver (`oid`, else `sub`); one more is refused with 429.
    pub max_streams_per_principal: usize,
    /// Most events replayed after a `Last-Event-ID`; further behind gets a `resync` event.
    pub max_backlog: u64,
    /// Events read from the store at a time (replay and pump); a stream holds at most this
    /// many frames of its own.
    pub page_size: usize,
    /// Live frames kept in the shared broadcast ring: a stream that falls further behind gets
    /// a `resync` event.
    pub broadcast_capacity: usize,
    /// Seconds between keep-alive comments on an idle stream.
    pub keepalive_seconds: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            max_streams: 1024,
            max_streams_per_principal: 8,
            max_backlog: 1000,
            page_size: 100,
            broadcast_capacity: 1024,
            keepalive_seconds: 15,
        }
    }
}

/// One event rendered once as an SSE frame, shared by every stream.
#[derive(Debug)]
pub struct Frame {
    /// The event's sequence number.
    pub seq: u64,
    /// `id: …\nevent: …\ndata: …\n\n`.
    pub bytes: Bytes,
    /// Whom it may reach: the request's route and whether it was escalated (issue 14 §2,
    /// [`Scope::allows`]); `None` for an event without a request (an
    /// erasure: its id only), which every stream gets.
    pub routed: Option<(Option<String>, bool)>,
}

impl Frame {
    /// Whether a stream of `scope` gets this frame.
    pub fn visible_to(&self, scope: &Scope) -> bool {
        self.routed
            .as_ref()
            .is_none_or(|(route, escalated)| scope.allows(route.as_deref(), *escalated))
    }
}

/// The route and escalation of an event's request (see [`Frame::routed`]).
fn routed_of(e: &Event) -> Option<(Option<String>, bool)> {
    e.request
        .as_ref()
        .map(|r| (r.route.clone(), r.escalated_at.is_some()))
}

/// Renders `e` as one SSE frame. The JSON is compact (no newline); the kind is ours, stripped
/// of line breaks anyway. `None` when the event cannot be serialised.
pub fn render(e: &Event) -> Option<Bytes> {
    render_with(e, &Policy::default())
}

/// [`render`] with the request's grants from `policy` filled in
/// ([`crate::routes::requests::served`]).
pub fn render_with(e: &Event, policy: &Policy) -> Option<Bytes> {
    let mut e = e.clone();
    e.request = e
        .request
        .map(|r| crate::routes::requests::served(policy, r));
    let e = &e;
    let data = serde_json::to_string(e).ok()?;
    let kind: String = e
        .kind
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .collect();
    Some(Bytes::from(format!(
        "id: {}\nevent: {kind}\ndata: {data}\n\n",
        e.seq
    )))
}

fn resync_frame(reason: &str, latest: u64) -> Bytes {
    Bytes::from(format!(
        "event: resync\ndata: {{\"reason\":\"{reason}\",\"latestSeq\":{latest}}}\n\n"
    ))
}

/// Counters of the hub, for tests and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    /// Streams open now.
    pub open_streams: usize,
    /// Replayed frames held by all streams together (each holds at most one page).
    pub buffered_frames: usize,
    /// The bound of `buffered_frames`: `open_streams × events.page_size`.
    pub max_buffered_frames: usize,
    /// Live frames in the shared broadcast ring (at most `events.broadcast_capacity`).
    pub queued_live_frames: usize,
    /// The sequence number of the last frame broadcast.
    pub published_seq: u64,
    /// `resync` events sent since start.
    pub resyncs: u64,
    /// Streams opened since start.
    pub opened: u64,
    /// Replay reads tried again after a transient failure, since start.
    pub replay_retries: u64,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per: HashMap<String, usize>,
}

/// The hub: the pump's broadcast of rendered frames, the stream caps and the counters. Made by
/// [`crate::AppState::new`]; the pump starts with the first stream.
pub struct EventHub {
    config: EventsConfig,
    store: Store,
    notify: broadcast::Sender<Event>,
    frames: broadcast::Sender<Arc<Frame>>,
    /// The policy whose `[[policy.grants]]` every served request carries.
    policy: Arc<Policy>,
    started: OnceLock<()>,
    published: Arc<AtomicU64>,
    counts: Mutex<Counts>,
    buffered: AtomicUsize,
    resyncs: AtomicU64,
    opened: AtomicU64,
    replay_retries: AtomicU64,
    replay_faults: Faults,
    pump_faults: Arc<Faults>,
}

/// A stream's place under the caps, given back on drop.
struct Permit {
    hub: Arc<EventHub>,
    principal: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut c) = self.hub.counts.lock() {
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.per.get_mut(&self.principal) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per.remove(&self.principal);
                }
            }
        }
    }
}

enum Phase {
    Replay,
    Live,
    Resync(&'static str),
}

struct StreamState {
    hub: Arc<EventHub>,
    rx: broadcast::Receiver<Arc<Frame>>,
    phase: Phase,
    page: VecDeque<Bytes>,
    last_sent: u64,
    replayed: u64,
    deadline: Instant,
    done: bool,
    /// The requests this stream's caller may see (issue 14 §2).
    scope: Scope,
    _permit: Permit,
}

impl Drop for StreamState {
    fn drop(&mut self) {
        self.hub
            .buffered
            .fetch_sub(self.page.len(), Ordering::Relaxed);
    }
}

/// The next signal of the other replicas, or never (no signals: SQLite, or the listener ended).
async fn next_signal(signals: &mut Option<ClusterSignals>) {
    use futures::StreamExt;
    let Some(stream) = signals.as_mut() else {
        return std::future::pending().await;
    };
    match stream.next().await {
        Some(Ok(_)) => {}
        Some(Err(e)) => tracing::warn!(error = %e, "event pump: the cluster listener failed"),
        None => {
            tracing::warn!("event pump: the cluster listener ended; only local events wake it");
            *signals = None;
        }
    }
}

/// The pump: broadcasts the frames of the events committed after `latest`, in order, then
/// again on every notification: a local publish, or a signal of another replica (`signals`).
/// Ends when the server's event sender or its store is dropped (it holds the store weakly, so
/// a stopped server's database closes at once).
#[allow(clippy::too_many_arguments)] // one private task's inputs, each named at its one call
async fn pump(
    mut rx: broadcast::Receiver<Event>,
    mut signals: Option<ClusterSignals>,
    store: WeakStore,
    frames: broadcast::Sender<Arc<Frame>>,
    published: Arc<AtomicU64>,
    page_size: usize,
    mut latest: u64,
    policy: Arc<Policy>,
    faults: Arc<Faults>,
) {
    loop {
        let mut wait = REPLAY_BACKOFF;
        loop {
            let Some(st) = store.upgrade() else { return };
            let after = latest;
            let events = match faults.events_after(&st, after, page_size).await {
                Ok(v) => v,
                Err(e) => {
                    // Tried again from the same number: nothing is skipped or sent twice.
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "event pump: store read failed");
                    drop(st);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(PUMP_BACKOFF_MAX);
                    continue;
                }
            };
            wait = REPLAY_BACKOFF;
            let n = events.len();
            for e in events {
                latest = latest.max(e.seq);
                if let Some(bytes) = render_with(&e, &policy) {
                    let _ = frames.send(Arc::new(Frame {
                        seq: e.seq,
                        bytes,
                        routed: routed_of(&e),
                    }));
                }
            }
            published.store(latest, Ordering::Relaxed);
            if n < page_size.max(1) {
                break;
            }
        }
        tokio::select! {
            r = rx.recv() => match r {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = next_signal(&mut signals) => {}
        }
        // Coalesce the notifications already queued: one read covers them.
        while rx.try_recv().is_ok() {}
        if let Some(stream) = signals.as_mut() {
            use futures::StreamExt;
            while let Some(Some(_)) = futures::FutureExt::now_or_never(stream.next()) {}
        }
    }
}

impl EventHub {
    /// A hub over `store`, woken by `notify` (the server's event sender).
    pub fn new(
        config: EventsConfig,
        store: Store,
        notify: broadcast::Sender<Event>,
        policy: Arc<Policy>,
    ) -> Arc<EventHub> {
        let (frames, _) = broadcast::channel(config.broadcast_capacity.max(1));
        Arc::new(EventHub {
            config,
            store,
            notify,
            frames,
            policy,
            started: OnceLock::new(),
            published: Arc::new(AtomicU64::new(0)),
            counts: Mutex::new(Counts::default()),
            buffered: AtomicUsize::new(0),
            resyncs: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            replay_retries: AtomicU64::new(0),
            replay_faults: Faults::default(),
            pump_faults: Arc::new(Faults::default()),
        })
    }

    /// Fault injection for tests (`tests/it/hostile_streams.rs`); the server never calls it:
    /// from now on, the next `pass` store reads at `site` succeed, then the `fail` after them
    /// fail with [`StoreError::Unavailable`] (as a pool acquire timeout would), then reads
    /// succeed again. Replaces what an earlier call left.
    pub fn fail_reads(&self, site: ReadSite, pass: u32, fail: u32) {
        let faults = match site {
            ReadSite::Replay => &self.replay_faults,
            ReadSite::Pump => &*self.pump_faults,
        };
        faults.set(pass, fail);
    }

    /// The counters now.
    pub fn stats(&self) -> StreamStats {
        let open = self.counts.lock().map(|c| c.total).unwrap_or_default();
        StreamStats {
            open_streams: open,
            buffered_frames: self.buffered.load(Ordering::Relaxed),
            max_buffered_frames: open * self.config.page_size.max(1),
            queued_live_frames: self.frames.len(),
            published_seq: self.published.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            opened: self.opened.load(Ordering::Relaxed),
            replay_retries: self.replay_retries.load(Ordering::Relaxed),
        }
    }

    /// Starts the pump (once) from the store's latest event, read now.
    async fn ensure_started(&self) -> Result<(), StoreError> {
        if self.started.get().is_some() {
            return Ok(());
        }
        // Other replicas' events (PostgreSQL): listening before the starting point is read, so
        // an event committed in between wakes the pump.
        let signals = self.store.listen_events().await?;
        let latest = self.store.latest_event_seq().await?;
        self.started.get_or_init(|| {
            self.published.store(latest, Ordering::Relaxed);
            tokio::spawn(pump(
                self.notify.subscribe(),
                signals,
                self.store.downgrade(),
                self.frames.clone(),
                self.published.clone(),
                self.config.page_size.max(1),
                latest,
                self.policy.clone(),
                self.pump_faults.clone(),
            ));
        });
        Ok(())
    }

    fn acquire(self: &Arc<Self>, principal: &str) -> Result<Permit, ApiError> {
        let mut c = self
            .counts
            .lock()
            .map_err(|_| ApiError::Store(StoreError::Task("stream counts poisoned".into())))?;
        if c.total >= self.config.max_streams {
            return Err(ApiError::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: Code::EventsTooManyStreams,
                message: format!(
                    "the server has {} event streams open, its limit (events.max_streams); retry later or poll GET /api/requests",
                    self.config.max_streams
                ),
            });
        }
        let mine = c.per.get(principal).copied().unwrap_or_default();
        if mine >= self.config.max_streams_per_principal {
            return Err(ApiError::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: Code::EventsTooManyStreamsForPrincipal,
                message: format!(
                    "this approver already has {mine} event streams open, the limit (events.max_streams_per_principal); close one first"
                ),
            });
        }
        c.total += 1;
        *c.per.entry(principal.to_owned()).or_default() += 1;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Permit {
            hub: self.clone(),
            principal: principal.to_owned(),
        })
    }

    /// Opens a stream for `principal` resuming after `last_event_id` (the raw header, if any),
    /// ending at `deadline`. The response is `text/event-stream` (see the module docs).
    ///
    /// Errors: 429 / 503 past the caps; [`ApiError::Store`] when the store cannot be read.
    pub async fn open(
        self: &Arc<Self>,
        principal: &str,
        last_event_id: Option<&str>,
        deadline: Instant,
    ) -> Result<Response, ApiError> {
        self.open_scoped(principal, last_event_id, deadline, Scope::everything())
            .await
    }

    /// [`EventHub::open`] for a caller who sees only the requests of `scope` (issue 14 §2):
    /// events of other requests are skipped, live and replayed alike (their ids still count as
    /// sent, so `Last-Event-ID` resumes past them).
    ///
    /// Errors: as [`EventHub::open`].
    pub async fn open_scoped(
        self: &Arc<Self>,
        principal: &str,
        last_event_id: Option<&str>,
        deadline: Instant,
        scope: Scope,
    ) -> Result<Response, ApiError> {
        self.ensure_started().await?;
        // Subscribe before reading the store, so nothing falls between the replay and live;
        // and before the stream is counted, so a counted stream gets every later event.
        let rx = self.frames.subscribe();
        let permit = self.acquire(principal)?;
        let (phase, last_sent) = match last_event_id.map(|s| s.trim().parse::<u64>()) {
            None => (Phase::Live, 0),
            Some(Err(_)) => (Phase::Resync("bad_last_event_id"), 0),
            Some(Ok(after)) => {
                let latest = self.store.latest_event_seq().await?;
                if after > latest {
                    (Phase::Resync("ahead_of_store"), 0)
                } else if latest - after > self.config.max_backlog {
                    (Phase::Resync("too_far_behind"), 0)
                } else {
                    (Phase::Replay, after)
                }
            }
        };
        let state = StreamState {
            hub: self.clone(),
            rx,
            phase,
            page: VecDeque::new(),
            last_sent,
            replayed: 0,
            deadline,
            done: false,
            scope,
            _permit: permit,
        };
        let body = Body::from_stream(futures::stream::unfold(state, next));
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-accel-buffering", "no")
            .body(body)
            .map_err(|e| ApiError::Store(StoreError::Task(e.to_string())))
    }
}

/// One replay read of `st` (`events_after(after, limit)`), tried again after a transient
/// failure ([`transient`]) up to [`REPLAY_ATTEMPTS`] attempts in all, waiting
/// [`REPLAY_BACKOFF`] doubling between them, never past the stream's deadline.
///
/// Errors: the last failure, when permanent or when the attempts ran out.
async fn replay_read(st: &StreamState, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
    let mut wait = REPLAY_BACKOFF;
    let mut attempt = 1;
    loop {
        match st
            .hub
            .replay_faults
            .events_after(&st.hub.store, after, limit)
            .await
        {
            Ok(v) => return Ok(v),
            Err(e)
                if transient(&e)
                    && attempt < REPLAY_ATTEMPTS
                    && Instant::now() + wait < st.deadline =>
            {
                tracing::debug!(error = %e, attempt, after, "event stream: replay read failed; trying again");
                st.hub.replay_retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The next chunk of a stream (see the module docs); `None` ends it.
async fn next(mut st: StreamState) -> Option<(Result<Bytes, Infallible>, StreamState)> {
    let keepalive = Duration::from_secs(st.hub.config.keepalive_seconds.max(1));
    loop {
        if st.done || Instant::now() >= st.deadline {
            return None;
        }
        if let Some(f) = st.page.pop_front() {
            st.hub.buffered.fetch_sub(1, Ordering::Relaxed);
            return Some((Ok(f), st));
        }
        match st.phase {
            Phase::Resync(reason) => {
                st.done = true;
                st.hub.resyncs.fetch_add(1, Ordering::Relaxed);
                let latest = st
                    .hub
                    .store
                    .latest_event_seq()
                    .await
                    .unwrap_or_else(|_| st.hub.published.load(Ordering::Relaxed));
                return Some((Ok(resync_frame(reason, latest)), st));
            }
            Phase::Replay => {
                let page_size = st.hub.config.page_size.max(1);
                let after = st.last_sent;
                let events = match replay_read(&st, after, page_size).await {
                    Ok(v) => v,
                    Err(e) => {
                        // The client resumes after the last id it got (`last_sent` or below).
                        tracing::warn!(error = %e, after, "event stream: replay read failed; ending it");
                        return None;
                    }
                };
                // More arrived during the replay than the bound allows: resync instead.
                if st.replayed + events.len() as u64 > st.hub.config.max_backlog {
                    st.phase = Phase::Resync("too_far_behind");
                    continue;
                }
                if events.len() < page_size {
                    st.phase = Phase::Live;
                }
                for e in events {
                    st.last_sent = st.last_sent.max(e.seq);
                    st.replayed += 1;
                    let frame = Frame {
                        seq: e.seq,
                        bytes: Bytes::new(),
                        routed: routed_of(&e),
                    };
                    if !frame.visible_to(&st.scope) {
                        continue;
                    }
                    if let Some(b) = render_with(&e, &st.hub.policy) {
                        st.page.push_back(b);
                    }
                }
                st.hub.buffered.fetch_add(st.page.len(), Ordering::Relaxed);
            }
            Phase::Live => {
                tokio::select! {
                    biased;
                    _ = tokio::time::sleep_until(st.deadline) => return None,
                    r = st.rx.recv() => match r {
                        Ok(f) if f.seq > st.last_sent => {
                            st.last_sent = f.seq;
                            if !f.visible_to(&st.scope) {
                                continue;
                            }
                            let bytes = f.bytes.clone();
                            return Some((Ok(bytes), st));
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            st.phase = Phase::Resync("lagged");
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tokio::time::sleep(keepalive) => {
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st));
                    }
                }
            }
        }
    }
}
