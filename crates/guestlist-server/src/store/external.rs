//! The external-tenant flow's storage (issue 17; `docs/CONTRACTS.md` §2), SQLite side: the
//! `flow` and `completed_at` columns of `requests` (migration [`MIGRATION`]), the requests of
//! one person, and the completion of an approved external request when its person's sign-up
//! continues. The PostgreSQL counterpart is `pg/external.rs` (`V5__flow.sql`).

use guestlist_core::connector::Claims;
use guestlist_core::model::{Actor, ApprovalRequest, Event, Flow, IdentityKey, RequestState};
use guestlist_core::policy::Policy;
use rusqlite::{Connection, params};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{COLUMNS, add_event, add_history, get_by_id, row_to_request, search_text};
use super::{RequestApprovalOutcome, SqliteStore, StoreError};

/// Adds the request's user flow (rows stored before flows existed read as `workforce`) and
/// when an approved external request was completed (RFC 3339, `NULL` otherwise).
pub(super) const MIGRATION: &str = r#"
    ALTER TABLE requests ADD COLUMN flow TEXT NOT NULL DEFAULT 'workforce';
    ALTER TABLE requests ADD COLUMN completed_at TEXT;
"#;

/// The event kind of a completion (`docs/CONTRACTS.md` §6).
pub const EVENT_REQUEST_COMPLETED: &str = "request.completed";

/// Whether `r` may be completed now: approved, external, not completed yet.
pub(crate) fn completable(r: &ApprovalRequest) -> bool {
    r.flow == Flow::External
        && r.completed_at.is_none()
        && matches!(r.state, RequestState::Approved { .. })
}

/// `r` completed at `now`: the change both stores write (version bumped, `updated_at`).
pub(crate) fn completed(mut r: ApprovalRequest, now: OffsetDateTime) -> ApprovalRequest {
    r.completed_at = Some(now);
    r.version += 1;
    r.updated_at = now;
    r
}

/// The history detail of a completion: the answer and the claims of the completing call.
pub(crate) fn completion_detail(
    submitted: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    json!({"answer": "continueWithDefaultBehavior", "claims": submitted})
}

/// The write of [`Backend::complete_external`](super::Backend::complete_external).
pub(super) fn complete_external_job(
    id: Uuid,
    submitted: serde_json::Map<String, serde_json::Value>,
    now: OffsetDateTime,
) -> impl FnOnce(&Connection) -> Result<Option<Event>, StoreError> + Send + 'static {
    move |tx: &Connection| {
        let Some(r) = get_by_id(tx, id)? else {
            return Ok(None);
        };
        if !completable(&r) {
            return Ok(None);
        }
        let r = completed(r, now);
        let claims = r
            .typed_claims()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        super::rows::upsert(tx, &r, &search_text(&claims))?;
        add_history(
            tx,
            &r,
            "completed",
            &Actor::user_flow(),
            completion_detail(&submitted),
        )?;
        Ok(Some(add_event(tx, EVENT_REQUEST_COMPLETED, &r)?))
    }
}

impl SqliteStore {
    /// [`SqliteStore::request_approval_async`] for a call that came through the user flow
    /// `flow` (issue 17): a new request is stored with it.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn request_approval_flow_async(
        &self,
        claims: &Claims,
        flow: Flow,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        if IdentityKey::try_of(claims).is_err() {
            return Ok(RequestApprovalOutcome::email_refused());
        }
        self.write_async(super::requests::request_approval_job(
            claims,
            flow,
            policy,
            now,
            retry_window,
            self.tombstones.clone(),
        ))
        .await
    }

    /// Every request of the canonical e-mail `email`, oldest first (the `requests_key` index's
    /// prefix).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn requests_of_email(&self, email: &str) -> Result<Vec<ApprovalRequest>, StoreError> {
        self.read(|c| {
            let sql =
                format!("SELECT {COLUMNS} FROM requests WHERE email = ?1 ORDER BY created_at, id");
            let rows = c
                .prepare_cached(&sql)?
                .query_map(params![email], row_to_request)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().collect()
        })
    }
}
