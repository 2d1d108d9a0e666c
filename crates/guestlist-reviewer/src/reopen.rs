//! Reopening a denial (issue 12 item 6, desktop side): an approver whose approval API token
//! holds the Admin app role makes a denied request pending again, with a reason.
//!
//! Wire (the approval API, `POST /api/requests/{id}/reopen`):
//!
//! - request: `If-Match: "<version>"` (the request's ETag as the approver saw it), bearer token
//!   with the Admin app role, body `{"reason": "…"}` (required, audited with the reopen);
//! - `200`: the request, pending again (with a new `ETag`);
//! - `409`: the request is not denied (pending, approved, expired) → [`codes::NOT_DENIED`];
//! - `412`: it changed since it was read → [`codes::VERSION_MISMATCH`];
//! - `428`: no `If-Match` (never sent by this client);
//! - `403`: the token lacks the Admin role → [`codes::NOT_ADMIN`].
//!
//! Reopen needs the network: there is no offline outbox for it (a reopen queued for later could
//! undo a denial an administrator no longer means to undo). Offline it fails with
//! `network.offline`. On success the cache holds the request as pending again and forgets the
//! finished denial of this app's outbox, so the queue lists it at once and it can be decided
//! afresh.

use guestlist_core::Code;
use guestlist_core::model::{ApprovalRequest, RequestState};
use reqwest::header;
use serde::Serialize;

use crate::Reviewer;
use crate::api::{ApiClient, ApiFailure, offline};
use crate::error::{ReviewerError, codes};

/// The body of `POST /api/requests/{id}/reopen`.
#[derive(Debug, Serialize)]
struct ReopenBody<'a> {
    /// Why the denial is reopened (audited).
    reason: &'a str,
}

/// `POST /api/requests/{id}/reopen` with `If-Match: "<version>"` and `{"reason": …}`, bearer
/// `token`: the request as the server answers it (pending again).
///
/// Errors: [`ApiFailure`] — `Conflict` (409: not denied), `VersionMismatch` (412), `Forbidden`
/// (403: no Admin role), `Offline`, `Other` (428 and the rest).
pub async fn reopen_call(
    api: &ApiClient,
    token: &str,
    id: &str,
    version: u64,
    reason: &str,
) -> Result<ApprovalRequest, ApiFailure> {
    let resp = api
        .http
        .post(format!("{}/api/requests/{id}/reopen", api.base))
        .bearer_auth(token)
        .header(header::IF_MATCH, format!("\"{version}\""))
        .json(&ReopenBody { reason })
        .send()
        .await
        .map_err(offline)?;
    ApiClient::json(resp).await
}

/// The facade error of a failed reopen: the generic mapping ([`ApiFailure::to_error`]) except
/// where a reopen means something else (409 `request.not_denied`, or a 409 without a readable
/// body: not denied; 403 `auth.forbidden`: the Admin role is missing). The answer's request id
/// is kept.
pub fn reopen_error(f: ApiFailure) -> ReviewerError {
    match f {
        ApiFailure::Conflict { request_id, .. }
        | ApiFailure::Other {
            code: Code::RequestNotDenied,
            request_id,
            ..
        } => ReviewerError::new(
            codes::NOT_DENIED,
            "this request is not denied any more, so there is nothing to reopen",
        )
        .with_request_id(request_id),
        ApiFailure::Forbidden {
            code: Code::AuthForbidden,
            request_id,
            ..
        } => ReviewerError::new(
            codes::NOT_ADMIN,
            "reopening a denial needs the Admin app role of the approval API",
        )
        .with_request_id(request_id),
        other => other.to_error(),
    }
}

impl Reviewer {
    /// Reopens the denied request `id` that the approver saw at `version` (its ETag), with a
    /// `reason` (required; trimmed): see the module docs for the wire and the errors' meaning.
    /// Returns the request as the server answers it (pending again); the cache then lists it
    /// and has forgotten this app's finished decision of it.
    ///
    /// Errors: `input.invalid` (empty reason), `network.offline` (no outbox: retry when online),
    /// `request.not_denied`, `request.version_mismatch`, `request.not_found`, `auth.not_admin`,
    /// `auth.not_signed_in`, `storage.error`.
    pub async fn reopen(
        &self,
        id: String,
        version: u64,
        reason: String,
    ) -> Result<ApprovalRequest, ReviewerError> {
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(ReviewerError::new(
                codes::INVALID_INPUT,
                "a reason is required to reopen a denial",
            ));
        }
        let request = self
            .inner
            .with_api(|api, token| {
                let (id, reason) = (id.clone(), reason.clone());
                async move { reopen_call(&api, &token, &id, version, &reason).await }
            })
            .await
            .map_err(reopen_error)?;
        self.reopened(&request)?;
        Ok(request)
    }

    /// Files a reopened request into the cache: pending again (listed), its finished decision
    /// forgotten; tells change subscribers.
    fn reopened(&self, request: &ApprovalRequest) -> Result<(), ReviewerError> {
        let cache = &self.inner.cache;
        let id = request.id.to_string();
        if request.state == RequestState::Pending {
            cache.store_pending(std::slice::from_ref(request), false)?;
            cache.forget_finished(&id)?;
        }
        self.inner.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use guestlist_core::model::IdentityKey;
    use serde_json::{Value, json};
    use time::OffsetDateTime;

    use super::*;
    use crate::{DecisionKind, MemoryStore, OpenOptions, OutboxState, Settings};

    /// What the stub saw: (path id, If-Match, Authorization, body).
    type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>, Value)>>>;

    fn request(id: uuid::Uuid, state: RequestState, version: u64) -> ApprovalRequest {
        let now = OffsetDateTime::now_utc();
        ApprovalRequest {
            id,
            key: IdentityKey {
                email: "linnea@fabrikam.se".into(),
                issuer: "google.com".into(),
                issuer_assigned_id: "g-1".into(),
            },
            state,
            version,
            created_at: now,
            updated_at: now,
            decided_by: None,
            attempts: 1,
            flow: Default::default(),
            completed_at: None,
            escalated_at: None,
            claims: json!({"email": "linnea@fabrikam.se", "displayName": "Linnea Berg"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            grants: Vec::new(),
            route: None,
            approvals_required: 1,
            approvals: Vec::new(),
        }
    }

    /// The stub of the reopen route: the answer depends on the If-Match and the token, like the
    /// real one (`"3"` is current; token `admin` holds Admin).
    async fn stub(
        State(seen): State<Seen>,
        Path(id): Path<uuid::Uuid>,
        headers: HeaderMap,
        body: Json<Value>,
    ) -> Response {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (if_match, auth) = (h("if-match"), h("authorization"));
        seen.lock().unwrap().push((
            id.to_string(),
            if_match.clone(),
            auth.clone(),
            body.0.clone(),
        ));
        let err = |s: StatusCode, code: &str| {
            (s, Json(json!({"error": {"code": code, "message": code}}))).into_response()
        };
        if auth.as_deref() != Some("Bearer admin") {
            return err(StatusCode::FORBIDDEN, "auth.forbidden");
        }
        if id == uuid::Uuid::from_u128(9) {
            return err(StatusCode::CONFLICT, "request.not_denied");
        }
        match if_match.as_deref() {
            None => err(
                StatusCode::PRECONDITION_REQUIRED,
                "request.precondition_required",
            ),
            Some("\"3\"") => {
                let r = request(id, RequestState::Pending, 4);
                ([(header::ETAG, "\"4\"")], Json(r)).into_response()
            }
            Some(_) => err(StatusCode::PRECONDITION_FAILED, "request.version_mismatch"),
        }
    }

    async fn serve() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let app = axum::Router::new()
            .route("/api/requests/{id}/reopen", post(stub))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn reopen_sends_if_match_and_the_reason_and_maps_every_refusal() {
        let (base, seen) = serve().await;
        let api = ApiClient::new(&base).unwrap();
        let id = uuid::Uuid::from_u128(7);

        let r = reopen_call(&api, "admin", &id.to_string(), 3, "denied by mistake")
            .await
            .unwrap();
        assert_eq!((r.id, r.version, &r.state), (id, 4, &RequestState::Pending));
        {
            let seen = seen.lock().unwrap();
            let (path_id, if_match, auth, body) = &seen[0];
            assert_eq!(path_id, &id.to_string());
            assert_eq!(
                if_match.as_deref(),
                Some("\"3\""),
                "the ETag goes in If-Match"
            );
            assert_eq!(auth.as_deref(), Some("Bearer admin"));
            assert_eq!(body, &json!({"reason": "denied by mistake"}));
        }

        let stale = reopen_call(&api, "admin", &id.to_string(), 2, "x").await;
        assert_eq!(
            reopen_error(stale.unwrap_err()).code,
            codes::VERSION_MISMATCH
        );
        let not_admin = reopen_call(&api, "approver", &id.to_string(), 3, "x").await;
        let e = reopen_error(not_admin.unwrap_err());
        assert_eq!(e.code, codes::NOT_ADMIN);
        assert!(e.message.contains("Admin"), "{e:?}");
        let pending = uuid::Uuid::from_u128(9).to_string();
        let not_denied = reopen_call(&api, "admin", &pending, 3, "x").await;
        assert_eq!(
            reopen_error(not_denied.unwrap_err()).code,
            codes::NOT_DENIED
        );

        // Nothing listens: offline, and the message does not name the URL's path.
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}", gone.local_addr().unwrap());
        drop(gone);
        let off = reopen_call(&ApiClient::new(&dead).unwrap(), "admin", "x", 3, "x").await;
        assert_eq!(reopen_error(off.unwrap_err()).code, codes::OFFLINE);
    }

    #[tokio::test]
    async fn a_reopened_request_is_listed_again_and_its_finished_denial_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reviewer::open_with(
            dir.path(),
            Some(Settings {
                undo_seconds: 0,
                ..Settings::default()
            }),
            OpenOptions {
                token_store: Some(Arc::new(MemoryStore::new())),
                outbox_worker: false,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
        let id = uuid::Uuid::from_u128(7);
        let cache = &r.inner.cache;
        let now = OffsetDateTime::now_utc();
        // A denial this app reported: the request left the queue, its outbox row is final.
        let denied = request(id, RequestState::Pending, 3);
        let mut row = cache
            .enqueue_after(&denied, DecisionKind::Deny, Some("spam"), now, now)
            .unwrap();
        row.state = OutboxState::Reported;
        cache.save_outbox(&row, now).unwrap();
        assert_eq!(cache.pending_count().unwrap(), 0);

        // An empty reason never reaches the server.
        let e = r.reopen(id.to_string(), 3, "  ".into()).await.unwrap_err();
        assert_eq!(e.code, codes::INVALID_INPUT);

        let changes = r.subscribe_changes();
        r.reopened(&request(id, RequestState::Pending, 4)).unwrap();
        assert!(changes.has_changed().unwrap(), "the shell is told");
        assert_eq!(cache.pending_count().unwrap(), 1);
        assert!(cache.outbox(&id.to_string()).unwrap().is_none());
        let view = r.queue(crate::QueueQuery::default()).await.unwrap();
        assert_eq!(view.items[0].outbox_state, None, "listed as undecided");
    }

    /// Another admin reopened it: the sync or the event stream brings the request back, pending
    /// at a later version, and this app's reported denial of it is dropped so it can be decided
    /// again. A failed approval of a request attempted again is kept (its retry resumes).
    #[tokio::test]
    async fn a_denial_reopened_elsewhere_does_not_block_a_new_decision() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reviewer::open_with(
            dir.path(),
            None,
            OpenOptions {
                token_store: Some(Arc::new(MemoryStore::new())),
                outbox_worker: false,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
        let cache = &r.inner.cache;
        let now = OffsetDateTime::now_utc();
        let (denied, failed) = (uuid::Uuid::from_u128(7), uuid::Uuid::from_u128(8));
        for (id, kind, state) in [
            (denied, DecisionKind::Deny, OutboxState::Reported),
            (failed, DecisionKind::Approve, OutboxState::Failed),
        ] {
            let mut row = cache
                .enqueue_after(
                    &request(id, RequestState::Pending, 3),
                    kind,
                    Some("x"),
                    now,
                    now,
                )
                .unwrap();
            row.state = state;
            cache.save_outbox(&row, now).unwrap();
        }
        // The same version again (a sync of the decision's own snapshot) changes nothing.
        cache
            .store_pending(&[request(denied, RequestState::Pending, 3)], false)
            .unwrap();
        assert!(cache.outbox(&denied.to_string()).unwrap().is_some());

        cache
            .store_pending(
                &[
                    request(denied, RequestState::Pending, 4),
                    request(failed, RequestState::Pending, 4),
                ],
                false,
            )
            .unwrap();
        assert!(cache.outbox(&denied.to_string()).unwrap().is_none());
        assert!(cache.outbox(&failed.to_string()).unwrap().is_some());
        let again = cache
            .enqueue_after(
                &request(denied, RequestState::Pending, 4),
                DecisionKind::Approve,
                None,
                now,
                now,
            )
            .unwrap();
        assert_eq!(
            (again.kind, again.state),
            (DecisionKind::Approve, OutboxState::Queued)
        );
    }
}
