//! `POST /api/requests/{id}/reopen` (issue 12 "Reopen a denial"): an Admin makes a denied
//! request pending again. The store's side is [`crate::store::reopen`].

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use guestlist_core::code::Code;
use guestlist_core::model::ApprovalRequest;
use guestlist_core::model::ErrorBody;
use guestlist_core::openapi::DecisionConflict;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Admin;
use crate::routes::connectors::read_json_body;
use crate::routes::requests::{actor_of, if_match_version, served, with_etag};
use crate::store::reopen::ReopenOutcome;

/// Longest reason of a reopen, in characters.
pub const MAX_REASON_CHARS: usize = 1_000;

/// The body of `POST /api/requests/{id}/reopen`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    /// Why the denial is undone (required, 1–1,000 characters; stored in the history and the
    /// audit).
    pub reason: String,
}

/// `POST /api/requests/{id}/reopen` with `{"reason":"…"}`, `If-Match` and an Admin token: the
/// denied request is pending again (see [`crate::store::reopen`] for what is written, and how
/// the requests its denial denied with it are reopened too). Answers the request with its new
/// `ETag`; check-approval-status then answers the `…-APPROVAL-PENDING` block page.
///
/// Errors: 400 `request.bad_id` / `request.bad_if_match` / `reopen.malformed` /
/// `reopen.reason_required` / `reopen.reason_too_long`; 401/403 (no Admin role); 404; 409
/// `request.not_denied` with `current`; 412 `request.version_mismatch` with `current`; 413;
/// 415; 428 `request.precondition_required`.
#[utoipa::path(post, path = "/api/requests/{id}/reopen", tag = "privacy",
    params(("id" = Uuid, Path, description = "The request's id"),
           ("If-Match" = String, Header, description = "The request's ETag (its version, quoted)")),
    request_body(content = ReopenBody, example = json!({"reason": "Denied by mistake: a partner's new domain"})),
    responses((status = 200, description = "The request, pending again", body = ApprovalRequest,
               headers(("ETag" = String, description = "The request's new version, quoted"))),
              (status = 400, description = "Malformed id, If-Match or body; empty or long reason", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without the Admin role", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "The request is not denied", body = DecisionConflict),
              (status = 412, description = "Stale If-Match", body = DecisionConflict),
              (status = 428, description = "If-Match missing", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reopen(
    Admin { claims, .. }: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| {
        ApiError::bad_request(Code::RequestBadId, format!("{id:?} is not a request id"))
    })?;
    let version = if_match_version(&headers)?;
    let bytes = read_json_body(
        &headers,
        body,
        state.config.body_limit_bytes,
        state.config.limits.body_read_timeout(),
    )
    .await?;
    let body: ReopenBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(Code::ReopenMalformed, e.to_string()))?;
    let reason = body.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            Code::ReopenReasonRequired,
            "reopening a denial needs a reason",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(
            Code::ReopenReasonTooLong,
            format!("the reason is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    let actor = actor_of(&claims, &headers);
    let outcome = state
        .store
        .reopen(id, &reason, &actor, version, OffsetDateTime::now_utc())
        .await?;
    match outcome {
        ReopenOutcome::Reopened { request, events } => {
            for e in events {
                state.publish(e);
            }
            Ok(with_etag(served(&state.config.policy, *request)))
        }
        ReopenOutcome::NotDenied { request } => Ok((
            StatusCode::CONFLICT,
            Json(json!({"error": {"code": Code::RequestNotDenied,
                "message": format!("only a denied request can be reopened; this one is {}",
                    request.state.status().as_str())},
                "current": request})),
        )
            .into_response()),
    }
}
