//! `GET /api/events`: Server-Sent Events of `request.created` / `request.decided`
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html>). Each event's `id:` is its
//! sequence number; a client that reconnects with `Last-Event-ID: <seq>` first receives every
//! stored event after it (events are persisted, so this survives a server restart), then live
//! ones, always in sequence order. Comments keep the connection alive every 15 s.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use guestlist_core::model::Event;
use tokio_stream::wrappers::BroadcastStream;

use crate::AppState;
use crate::error::ApiError;
use crate::routes::requests::approver;

fn to_sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.seq.to_string())
        .event(e.kind.clone())
        .json_data(e)
        .unwrap_or_else(|_| SseEvent::default().comment("unserialisable event"))
}

/// `GET /api/events` (see the module docs).
#[utoipa::path(get, path = "/api/events", tag = "approver",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence number")),
    responses((status = 200, description = "Server-Sent Events: `id:` the sequence number, `event:` the type, `data:` one Event as JSON", content_type = "text/event-stream", body = Event),
              (status = 401, description = "Missing or invalid bearer token", body = guestlist_core::model::ApiError),
              (status = 403, description = "Token without the Approver role", body = guestlist_core::model::ApiError),
              (status = 429, description = "Too many streams for this approver", body = guestlist_core::model::ApiError),
              (status = 503, description = "Too many streams in total, or token issuer unavailable", body = guestlist_core::model::ApiError)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    approver(&state, &headers).await?;
    let last: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    // Subscribe before replaying so nothing falls between the two.
    let live = BroadcastStream::new(state.events.subscribe());
    let store = state.store.clone();
    let backlog = tokio::task::spawn_blocking(move || store.events_after(last, 10_000))
        .await
        .map_err(|e| ApiError::Store(crate::store::StoreError::Task(e.to_string())))??;
    let replayed_up_to = backlog.last().map(|e| e.seq).unwrap_or(last);
    let replay = stream::iter(backlog.into_iter().map(|e| Ok(to_sse(&e))));
    // A live notification (or a lag error) only wakes the stream: what is sent is read back from
    // the store after the last id sent, so events go out in sequence order with no gap even when
    // writers of one group commit publish out of order, or this client fell behind.
    let store = state.store.clone();
    let last_sent = Arc::new(AtomicU64::new(replayed_up_to));
    let live = live
        .then(move |_| {
            let (store, last_sent) = (store.clone(), last_sent.clone());
            async move {
                let after = last_sent.load(Ordering::SeqCst);
                let events = tokio::task::spawn_blocking(move || store.events_after(after, 10_000))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                if let Some(e) = events.last() {
                    last_sent.store(e.seq, Ordering::SeqCst);
                }
                stream::iter(
                    events
                        .into_iter()
                        .map(|e| Ok(to_sse(&e)))
                        .collect::<Vec<_>>(),
                )
            }
        })
        .flatten();
    Ok(Sse::new(replay.chain(live)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
