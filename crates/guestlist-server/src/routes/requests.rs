//! The approver API (bearer JWT with the `Approver` app role, CONTRACTS.md §4):
//!
//! - `GET /api/requests?status=&q=&cursor=&limit=` → [`RequestPage`] (oldest first, cursor paging);
//!   with `since=<changeSeq>`: only the requests created or changed after that mark, any status,
//!   in change order (incremental sync)
//! - `GET /api/requests/{id}` → [`ApprovalRequest`] with `ETag: "<version>"`
//! - `POST /api/requests/{id}/decision` → the decided request; `If-Match` required,
//!   `Idempotency-Key` replays; 409 / 412 when another approver won
//! - `GET /api/requests/{id}/history` → `[HistoryEntry]`
//!
//! Every call sees only the requests routed to the caller (issue 14 §2, [`crate::duties::Scope`]):
//! lists are filtered in SQL, one request outside the scope is 403 `decision.not_routed`. A
//! request of a two-approver route stays pending after its first approval (`approvals`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use guestlist_core::Code;
use guestlist_core::model::ErrorBody;
use guestlist_core::model::{Actor, ApprovalRequest, Decision, HistoryEntry, RequestPage, Status};
use guestlist_core::openapi::DecisionConflict;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::AppState;
use crate::auth::{Need, TokenClaims};
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery, Approver, RequestId};

/// Query of `GET /api/requests`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// `pending`, `approved`, `denied` or `expired`; all when absent.
    pub status: Option<String>,
    /// Case-insensitive search over e-mail, names and company.
    pub q: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=500 (default 100).
    pub limit: Option<usize>,
    /// A `changeSeq` of an earlier page: list only the requests created or changed after it (of
    /// any status unless `status` filters: decided and expired ones too, so a client can drop
    /// them), in change order, each once. Every page carries `changeSeq`, the mark to pass next
    /// time (see `Store::list_page`); a `changeSeq` below `since` means the server's database
    /// holds fewer changes than the client saw (reset or replaced): list everything again.
    pub since: Option<u64>,
}

/// The caller's verified claims if its token holds the app role `need` asks for (401/403/503
/// otherwise, see [`crate::auth::AuthError`]).
pub async fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    need: Need,
) -> Result<TokenClaims, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Ok(state.approver_auth.verify_for(auth, need).await?)
}

/// The version an `If-Match` header names (`"3"`, `W/"3"` or `3`): decisions and reopen.
///
/// Errors: 428 without the header, 400 `request.bad_if_match` when it is not a version.
pub(crate) fn if_match_version(headers: &HeaderMap) -> Result<u64, ApiError> {
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::PreconditionRequired)?;
    if_match
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| {
            ApiError::bad_request(
                Code::RequestBadIfMatch,
                format!("If-Match must be the request's ETag, got {if_match:?}"),
            )
        })
}

/// The acting approver of a call, as decisions, reopens and privacy operations record it: the
/// token's `oid` (else `sub`), `name`, username (`preferred_username`, else the v1 `upn` or
/// `unique_name`: [`TokenClaims::username`]), and the client (`azp`/`appid` plus the
/// `User-Agent`).
pub(crate) fn actor_of(claims: &TokenClaims, headers: &HeaderMap) -> Actor {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let app = claims
        .azp
        .as_deref()
        .or(claims.appid.as_deref())
        .unwrap_or_default();
    Actor {
        kind: "user".into(),
        id: claims
            .oid
            .clone()
            .or(claims.sub.clone())
            .unwrap_or_default(),
        name: claims.name.clone().unwrap_or_default(),
        username: claims.username().map(str::to_owned),
        client: Some(format!("{app} {user_agent}").trim().to_owned()),
    }
}

/// The request as the approver API serves it: with the grants approval makes
/// ([`ApprovalRequest::grants`], issue 14 §1), computed now from `[[policy.grants]]` and the
/// stored claims (grants are never stored, so a changed policy shows at once).
pub(crate) fn served(
    policy: &guestlist_core::policy::Policy,
    mut r: ApprovalRequest,
) -> ApprovalRequest {
    r.grants = r
        .typed_claims()
        .map(|c| policy.grants_for(&c))
        .unwrap_or_default();
    r
}

/// The request as JSON with `ETag: "<version>"`.
pub(crate) fn with_etag(r: ApprovalRequest) -> Response {
    let etag = format!("\"{}\"", r.version);
    let mut resp = Json(r).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// `GET /api/requests`: a [`RequestPage`] of requests, oldest first (or, with `since`, in change
/// order), filtered by `status` and `q`, paged by `cursor`; every page carries `changeSeq`, the
/// high-water mark for a later `since=` (incremental sync). Errors: 400 `request.bad_status`, a
/// non-numeric `since` or `limit` (400), 401/403 from the bearer check.
#[utoipa::path(get, path = "/api/requests", tag = "approver", params(ListQuery),
    responses((status = 200, description = "A page of requests", body = RequestPage),
              (status = 400, description = "Bad `status`, `since` or `limit`", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without the Approver role", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    Approver { claims, .. }: Approver,
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<RequestPage>, ApiError> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty() && *s != "all") {
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                Code::RequestBadStatus,
                format!("status must be pending, approved, denied or expired, got {s:?}"),
            )
        })?),
        None => None,
    };
    let scope = crate::duties::scope_of(&state, &claims);
    let page = state
        .store
        .list_scoped(
            &scope,
            q.since,
            status,
            q.q.as_deref(),
            q.cursor.as_deref(),
            q.limit.unwrap_or(100),
        )
        .await?;
    let mut page = page;
    page.items = page
        .items
        .into_iter()
        .map(|r| served(&state.config.policy, r))
        .collect();
    Ok(Json(page))
}

/// `GET /api/requests/{id}`.
#[utoipa::path(get, path = "/api/requests/{id}", tag = "approver",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses((status = 200, description = "The request, with `ETag: \"<version>\"`", body = ApprovalRequest,
               headers(("ETag" = String, description = "The request's version, quoted"))),
              (status = 400, description = "Not a request id", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without an approver role, or a request routed to other approvers (`decision.not_routed`)", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_one(
    Approver { claims, .. }: Approver,
    State(state): State<AppState>,
    RequestId(id): RequestId,
) -> Result<Response, ApiError> {
    let r = crate::duties::routed_request(&state, id, &claims).await?;
    Ok(with_etag(served(&state.config.policy, r)))
}

/// `POST /api/requests/{id}/decision` with a [`Decision`] body.
#[utoipa::path(post, path = "/api/requests/{id}/decision", tag = "approver",
    params(("id" = Uuid, Path, description = "The request's id"),
           ("If-Match" = String, Header, description = "The request's ETag (its version, quoted)"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key (at most 200 characters)")),
    request_body(content = Decision, description = r#"{"decision":"approve","directoryObjectId":"…","how":"userCreated"} or {"decision":"deny","reason":"…"}"#,
        example = json!({"decision": "deny", "reason": "Not a partner of ours"})),
    responses((status = 200, description = "The decided request", body = ApprovalRequest,
               headers(("ETag" = String, description = "The request's new version, quoted"))),
              (status = 400, description = "Malformed decision, id, If-Match or Idempotency-Key", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without an approver role, the approver's own request (`decision.self_approval`), a request routed to other approvers (`decision.not_routed`), or the first approver approving again (`decision.second_approver_required`)", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 409, description = "Another decision won", body = DecisionConflict),
              (status = 412, description = "Stale If-Match", body = DecisionConflict),
              (status = 413, description = "Body over the limit", body = ErrorBody),
              (status = 415, description = "Not JSON", body = ErrorBody),
              (status = 422, description = "Idempotency-Key reused for another decision", body = ErrorBody),
              (status = 428, description = "If-Match missing", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn decide(
    Approver { claims, .. }: Approver,
    State(state): State<AppState>,
    RequestId(id): RequestId,
    headers: HeaderMap,
    AppJson(decision): AppJson<Decision>,
) -> Result<Response, ApiError> {
    let version = if_match_version(&headers)?;
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if idem.as_ref().is_some_and(|k| k.len() > 200) {
        return Err(ApiError::bad_request(
            Code::RequestBadIdempotencyKey,
            "Idempotency-Key is longer than 200 characters",
        ));
    }
    if let Decision::Deny { reason } = &decision
        && reason.trim().is_empty()
    {
        return Err(ApiError::bad_request(
            Code::DecisionReasonRequired,
            "a denial needs a reason",
        ));
    }
    let actor = actor_of(&claims, &headers);
    // Routing, self-approval, and the object id (absent for the first of two approvals only).
    crate::duties::check_decision(&state, id, &claims, &actor, &decision).await?;
    crate::routes::external::refuse_wrong_flow(&state, id, &decision).await?;
    // A denial also denies the person's other pending requests: one event each.
    let (request, events) = state
        .store
        .decide_all(
            id,
            &decision,
            &actor,
            Some(version),
            idem.as_deref(),
            OffsetDateTime::now_utc(),
        )
        .await?;
    for e in events {
        // The first of two approvals decides nothing yet (issue 14 §3): not a decision metric.
        if let Some(r) = &e.request
            && r.state != guestlist_core::model::RequestState::Pending
        {
            state.metrics.decision(r.state.status());
        }
        state.publish(e);
    }
    Ok(with_etag(served(&state.config.policy, request)))
}

/// `GET /api/requests/{id}/history`.
#[utoipa::path(get, path = "/api/requests/{id}/history", tag = "approver",
    params(("id" = Uuid, Path, description = "The request's id")),
    responses((status = 200, description = "The audit trail, oldest first", body = Vec<HistoryEntry>),
              (status = 400, description = "Not a request id", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without an approver role, or a request routed to other approvers (`decision.not_routed`)", body = ErrorBody),
              (status = 404, description = "No such request", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(
    Approver { claims, .. }: Approver,
    State(state): State<AppState>,
    RequestId(id): RequestId,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    crate::duties::routed_request(&state, id, &claims).await?;
    Ok(Json(state.store.history(id).await?))
}
