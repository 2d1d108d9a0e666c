//! `GET /api/events`: Server-Sent Events of `request.created` / `request.decided`
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html>). Each event's `id:` is its
//! sequence number. A stream opened without `Last-Event-ID` starts from now; with
//! `Last-Event-ID: <seq>` it first replays the stored events after it (events are persisted, so
//! this survives a server restart), a page at a time, then live ones, always in sequence order.
//! A client too far behind, or whose id is ahead of the store, gets one `resync` event and the
//! stream ends; streams are capped per approver and in total, and end when the token expires.
//! See [`crate::live`] for the details and limits. Comments keep the connection alive.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Approver;

/// `GET /api/events` (see the module docs).
#[utoipa::path(get, path = "/api/events", tag = "approver",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence number")),
    responses((status = 200, description = "Server-Sent Events: `id:` the sequence number, `event:` the type, `data:` one Event as JSON", content_type = "text/event-stream", body = guestlist_core::model::Event),
              (status = 401, description = "Missing or invalid bearer token", body = guestlist_core::model::ErrorBody),
              (status = 403, description = "Token without the Approver role", body = guestlist_core::model::ErrorBody),
              (status = 429, description = "Too many streams for this approver (`events.too_many_streams_for_principal`)", body = guestlist_core::model::ErrorBody),
              (status = 503, description = "Too many streams in total (`events.too_many_streams`), or token issuer unavailable (`auth.issuer_unavailable`)", body = guestlist_core::model::ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    Approver { claims, .. }: Approver,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = claims
        .oid
        .clone()
        .or_else(|| claims.sub.clone())
        .unwrap_or_default();
    // The token was checked against `exp` with the leeway: the stream ends at the same bound.
    let leeway = i64::try_from(state.config.approver_auth.leeway_seconds).unwrap_or(i64::MAX);
    let left = claims
        .exp
        .map(|exp| exp.saturating_add(leeway) - OffsetDateTime::now_utc().unix_timestamp())
        .unwrap_or(0)
        .max(0);
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(u64::try_from(left).unwrap_or_default());
    let last = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    // Only the events of requests routed to the caller (issue 14 §2).
    let scope = crate::duties::scope_of(&state, &claims);
    state
        .hub
        .open_scoped(&principal, last, deadline, scope)
        .await
}
