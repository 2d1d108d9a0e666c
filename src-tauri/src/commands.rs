//! The Tauri commands: one-liners into [`guestlist_reviewer::Reviewer`].
//!
//! Every command returns `Result<T, ReviewerError>`; the error crosses the IPC as
//! `{"code": "...", "message": "..."}` (plus `graph` with the `requestId` for Graph errors), which
//! the UI shows verbatim. No logic lives here: it belongs in `guestlist-reviewer`.

use guestlist_core::model::HistoryEntry;
use guestlist_reviewer::{
    AppStatus, DecisionOutcome, QueueQuery, QueueView, RequestDetail, ReviewerError, SessionInfo,
    Settings, SyncReport, UndoOutcome,
};
use tauri::State;

use crate::AppState;

/// The current settings.
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Result<Settings, ReviewerError> {
    Ok(state.reviewer()?.settings())
}

/// Validates and saves the settings (`settings.json` in the data directory).
#[tauri::command]
pub async fn save_settings(
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<(), ReviewerError> {
    state.reviewer()?.save_settings(settings).await
}

/// Signs the approver in: opens the system browser at the authorize URL (PKCE, loopback redirect).
#[tauri::command]
pub async fn sign_in(state: State<'_, AppState>) -> Result<SessionInfo, ReviewerError> {
    let session = state.reviewer()?.sign_in(state.opener()).await?;
    state.wake_sync();
    Ok(session)
}

/// Signs out; `wipe_cache` also deletes the local queue cache.
#[tauri::command]
pub async fn sign_out(state: State<'_, AppState>, wipe_cache: bool) -> Result<(), ReviewerError> {
    state.reviewer()?.sign_out(wipe_cache).await
}

/// Session, online/offline, syncing, last sync, pending count, outbox, last error.
#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Result<AppStatus, ReviewerError> {
    Ok(state.reviewer()?.status().await)
}

/// A page of the cached queue (search, filters, sort, counts).
#[tauri::command]
pub async fn queue(
    state: State<'_, AppState>,
    query: QueueQuery,
) -> Result<QueueView, ReviewerError> {
    state.reviewer()?.queue(query).await
}

/// Syncs the cache with the approval API now.
#[tauri::command]
pub async fn sync(state: State<'_, AppState>) -> Result<SyncReport, ReviewerError> {
    state.reviewer()?.sync().await
}

/// The side-by-side view of one request.
#[tauri::command]
pub async fn detail(
    state: State<'_, AppState>,
    id: String,
) -> Result<RequestDetail, ReviewerError> {
    state.reviewer()?.detail(id).await
}

/// Approves requests: provisions each guest in Graph, then reports the decision.
#[tauri::command]
pub async fn approve(
    state: State<'_, AppState>,
    ids: Vec<String>,
) -> Result<Vec<DecisionOutcome>, ReviewerError> {
    state.reviewer()?.approve(ids).await
}

/// Denies requests with a reason.
#[tauri::command]
pub async fn deny(
    state: State<'_, AppState>,
    ids: Vec<String>,
    reason: String,
) -> Result<Vec<DecisionOutcome>, ReviewerError> {
    state.reviewer()?.deny(ids, reason).await
}

/// Undo: cancels decisions nothing was sent for yet (in their undo window, or held offline).
#[tauri::command]
pub async fn undo(
    state: State<'_, AppState>,
    ids: Vec<String>,
) -> Result<Vec<UndoOutcome>, ReviewerError> {
    state.reviewer()?.undo(ids).await
}

/// The approver's directory roles and which approvals they can complete.
#[tauri::command]
pub async fn approver_rights(
    state: State<'_, AppState>,
) -> Result<guestlist_reviewer::rights::ApproverRights, ReviewerError> {
    state.reviewer()?.approver_rights().await
}

/// The audit trail of one request.
#[tauri::command]
pub async fn history(
    state: State<'_, AppState>,
    id: String,
) -> Result<Vec<HistoryEntry>, ReviewerError> {
    state.reviewer()?.history(id).await
}

/// Reopens a denied request (Admin app role; network only, no outbox): `version` is the
/// request's version as the approver saw it (sent as `If-Match`), `reason` is required and
/// audited. Answers the request, pending again. See `guestlist_reviewer::reopen`.
#[tauri::command]
pub async fn reopen(
    state: State<'_, AppState>,
    id: String,
    version: u64,
    reason: String,
) -> Result<guestlist_core::model::ApprovalRequest, ReviewerError> {
    state.reviewer()?.reopen(id, version, reason).await
}
