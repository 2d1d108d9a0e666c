//! Reopening a denial (issue 12 "Reopen a denial"): an Admin makes a denied request pending
//! again, with a reason, in one write transaction.
//!
//! What one reopen writes, for the request and for each request that its denial denied with it
//! (see below): the row (state `pending`, no `decidedBy`, version + 1, `createdAt` and
//! `updatedAt` = now, so the expiry clock of `policy.expire_after_days` starts again and the
//! request joins the queue's end; the original sign-up time stays in the history's `requested`
//! entry), the next change sequence number, a `reopened` history entry (detail: the reason and
//! the denial undone), a `request.reopened` event carrying the request, the check index (through
//! the parent's `upsert`), and one `request.reopen` row of `audit_log` with the reason.
//!
//! `deny_same_person`: a denial also denies the person's other pending requests (same canonical
//! e-mail through another identity provider) with the reason `denied with request <id> (same
//! e-mail address)`. Reopening that denial reopens those requests too, since the person would
//! otherwise stay blocked (check-status answers denied while any request of the e-mail is
//! denied). A request of the same person that an approver denied on its own is not touched:
//! it is a decision of its own, to be reopened by itself.

use guestlist_core::model::{Actor, ApprovalRequest, Event, RequestState};
use rusqlite::{Connection, params};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AuditAction};
use super::{COLUMNS, SqliteStore, StoreError, add_event, add_history, get_by_id, row_to_request};
use super::{search_text, upsert};

/// The [`Event::kind`] of a reopened denial.
pub const EVENT_REQUEST_REOPENED: &str = "request.reopened";

/// The history action of a reopened denial.
pub const HISTORY_REOPENED: &str = "reopened";

/// What [`SqliteStore::reopen`] did.
#[derive(Debug, Clone)]
pub enum ReopenOutcome {
    /// The request is pending again; its events (its own first, then one per request that was
    /// denied with it and reopened too) are stored and to be published.
    Reopened {
        /// The request after the reopen (new version).
        request: Box<ApprovalRequest>,
        /// The `request.reopened` events, already stored.
        events: Vec<Event>,
    },
    /// The request is not denied (pending, approved or expired): nothing was written.
    NotDenied {
        /// The request as it is.
        request: Box<ApprovalRequest>,
    },
}

/// Makes `r` pending again (see the module docs) and writes its row, history and event.
fn reopen_one(
    tx: &Connection,
    mut r: ApprovalRequest,
    reason: &str,
    actor: &Actor,
    now: OffsetDateTime,
    with: Option<Uuid>,
) -> Result<(ApprovalRequest, Event), StoreError> {
    let undone = match &r.state {
        RequestState::Denied { reason } => reason.clone(),
        _ => String::new(),
    };
    r.state = RequestState::Pending;
    r.decided_by = None;
    // A reopened request starts its approvals again (issue 14 §3).
    r.approvals.clear();
    r.version += 1;
    r.created_at = now;
    r.updated_at = now;
    let claims = r
        .typed_claims()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    upsert(tx, &r, &search_text(&claims))?;
    let mut detail = json!({ "reason": reason, "deniedReason": undone });
    if let (Some(with), Some(m)) = (with, detail.as_object_mut()) {
        m.insert("reopenedWith".into(), json!(with));
    }
    add_history(tx, &r, HISTORY_REOPENED, actor, detail)?;
    let event = add_event(tx, EVENT_REQUEST_REOPENED, &r)?;
    Ok((r, event))
}

impl SqliteStore {
    /// Reopens the denied request `id` (see the module docs): it and the requests its denial
    /// denied with it become pending again, audited as `request.reopen` with `reason` (already
    /// validated by the caller: non-empty, bounded).
    ///
    /// Errors: [`StoreError::NotFound`]; [`StoreError::VersionMismatch`] when `if_match` is not
    /// the current version (checked before the status, as a decision does);
    /// [`StoreError`] on database failure. A request that is not denied is
    /// [`ReopenOutcome::NotDenied`], not an error.
    pub fn reopen(
        &self,
        id: Uuid,
        reason: &str,
        actor: &Actor,
        if_match: u64,
        now: OffsetDateTime,
    ) -> Result<ReopenOutcome, StoreError> {
        // As both stores keep text: no NUL (`requests::nul_free`).
        let reason = super::requests::nul_free(reason);
        let actor = super::requests::stored_actor(actor);
        self.write(move |tx| {
            let r = get_by_id(tx, id)?.ok_or(StoreError::NotFound(id))?;
            if r.version != if_match {
                return Err(StoreError::VersionMismatch {
                    current: r.version,
                    request: Box::new(r),
                });
            }
            if !matches!(r.state, RequestState::Denied { .. }) {
                return Ok(ReopenOutcome::NotDenied {
                    request: Box::new(r),
                });
            }
            // Denied together with this one by `deny_same_person`, by its exact reason.
            let with_reason = format!("denied with request {id} (same e-mail address)");
            let sql = format!(
                "SELECT {COLUMNS} FROM requests WHERE email = ?1 AND status = 'denied' AND id != ?2 ORDER BY created_at, id"
            );
            let mut companions = Vec::new();
            for other in tx
                .prepare_cached(&sql)?
                .query_map(params![r.key.email, id.to_string()], row_to_request)?
            {
                let other = other??;
                if matches!(&other.state, RequestState::Denied { reason } if *reason == with_reason)
                {
                    companions.push(other);
                }
            }
            let (request, first) = reopen_one(tx, r, &reason, &actor, now, None)?;
            let mut events = vec![first];
            let mut reopened_with = Vec::new();
            for other in companions {
                reopened_with.push(other.id);
                events.push(reopen_one(tx, other, &reason, &actor, now, Some(id))?.1);
            }
            audit::append(
                tx,
                now,
                AuditAction::Reopen,
                Some(id),
                &actor,
                &json!({ "reason": reason, "version": request.version,
                         "reopenedWith": reopened_with }),
            )?;
            Ok(ReopenOutcome::Reopened {
                request: Box::new(request),
                events,
            })
        })
    }
}
