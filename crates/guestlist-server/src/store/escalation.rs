//! Escalation's storage (issue 14 §2; `docs/CONTRACTS.md` §6 `request.escalated`), SQLite side:
//! the `escalated_at` column of `requests` (migration [`MIGRATION`]) and the write that marks
//! the routed requests pending past their route's `escalate_after_hours` as escalated. The
//! PostgreSQL counterpart is `pg/escalation.rs` (`V6__escalation.sql`). What to escalate and
//! the reminder are [`crate::reminders`]'s; this module only writes.
//!
//! Each escalation also writes a history entry ([`HISTORY_ESCALATED`], by the policy actor
//! [`ESCALATION_RULE`], detail [`history_detail`]), in the same transaction, at the request's
//! unchanged version: `GET /api/requests/{id}/history` and the audit export show it.

use guestlist_core::model::{Actor, ApprovalRequest, Event};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::StoreError;
use super::rows::{COLUMNS, add_event, add_history, row_to_request, search_text, upsert};

/// Adds when a routed request was escalated (RFC 3339, `NULL`: not escalated).
pub(super) const MIGRATION: &str = r#"
    ALTER TABLE requests ADD COLUMN escalated_at TEXT;
"#;

/// The event kind of an escalation (`docs/CONTRACTS.md` §6): the request, now visible to its
/// route's `fallback_role` too.
pub const EVENT_REQUEST_ESCALATED: &str = "request.escalated";

/// The history action of an escalation (`HistoryEntry.action`; an audit export decision
/// record too).
pub const HISTORY_ESCALATED: &str = "escalated";

/// The policy rule named as the actor of an escalation's history entry
/// (`Actor::policy("escalation")`: kind `policy`, id `escalation`), as expiry is
/// `Actor::policy("expiry")`.
pub const ESCALATION_RULE: &str = "escalation";

/// One route whose requests escalate: its `name`, the role its requests escalate to, its delay
/// and the cutoff (`now` minus the delay); pending requests of that route created before the
/// cutoff and not yet escalated are due.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationCut {
    /// The route's `name` (`[[policy.routes]]`).
    pub route: String,
    /// The route's `fallback_role`: who also sees (and may decide) its escalated requests.
    pub fallback_role: String,
    /// The route's `escalate_after_hours`, as configured (may be fractional).
    pub hours: f64,
    /// Requests created before this instant are due.
    pub cutoff: OffsetDateTime,
}

/// The detail of an escalation's history entry: `{"route": <name>, "fallbackRole": <role>,
/// "escalateAfterHours": <hours>}`.
pub fn history_detail(cut: &EscalationCut) -> Value {
    json!({
        "route": cut.route,
        "fallbackRole": cut.fallback_role,
        "escalateAfterHours": cut.hours,
    })
}

/// `r` escalated at `now`: the change both stores write (`escalated_at`, `updated_at`; the row
/// takes the next change sequence number, so `?since=` returns it).
///
/// The **version is kept**: escalation changes who may decide (the fallback role too), not what
/// is decided — the claims, route, approvals and plan are unchanged — so an approver who loaded
/// the request before it escalated still decides it with that `If-Match` (no 412). Who may
/// decide is checked on every decision anyway ([`crate::duties::check_decision`]). Clients
/// refresh their copy from the new change sequence number or the `request.escalated` event.
pub(crate) fn escalated(mut r: ApprovalRequest, now: OffsetDateTime) -> ApprovalRequest {
    r.escalated_at = Some(now);
    r.updated_at = now;
    r
}

/// The write of [`Backend::escalate_due`](super::Backend::escalate_due): in one transaction (the
/// writer thread's), every pending request of each cut's route created before whole second
/// `floor(cutoff)` (so never early; `created_at` is RFC 3339 text, compared as `unixepoch`) and
/// not escalated, oldest first, at most `limit` in all, is marked and gets its history entry
/// and its event.
pub(super) fn escalate_due_job(
    cuts: Vec<EscalationCut>,
    now: OffsetDateTime,
    limit: usize,
) -> impl FnOnce(&Connection) -> Result<Vec<Event>, StoreError> + Send + 'static {
    move |tx: &Connection| {
        let sql = format!(
            "SELECT {COLUMNS} FROM requests WHERE route = ?1 AND status = 'pending'
               AND escalated_at IS NULL AND unixepoch(created_at) < ?2
             ORDER BY created_at, id LIMIT ?3"
        );
        let mut events = Vec::new();
        for cut in cuts {
            let left = limit.saturating_sub(events.len());
            if left == 0 {
                break;
            }
            let due = tx
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        cut.route,
                        cut.cutoff.unix_timestamp(),
                        i64::try_from(left).unwrap_or(i64::MAX)
                    ],
                    row_to_request,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            for r in due {
                let r = escalated(r?, now);
                let claims = r
                    .typed_claims()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                upsert(tx, &r, &search_text(&claims))?;
                add_history(
                    tx,
                    &r,
                    HISTORY_ESCALATED,
                    &Actor::policy(ESCALATION_RULE),
                    history_detail(&cut),
                )?;
                events.push(add_event(tx, EVENT_REQUEST_ESCALATED, &r)?);
            }
        }
        Ok(events)
    }
}
