//! The durable decision outbox (table `outbox`, one row per request): a decision is written
//! here before anything is sent, and its progress (Graph write, report, conflict) is saved
//! step by step, so a crash or an offline period resumes without creating or inviting twice.

use guestlist_core::model::{ApprovalRequest, Grant, ProvisionedBy};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use time::OffsetDateTime;

use super::queue::display_name;
use super::{Cache, rfc3339, unix_ms};
use crate::error::ReviewerError;
use crate::types::{DecisionKind, OutboxItem, OutboxState};

/// One outbox row (see [`OutboxState`] for the state machine).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The request id (one decision per request).
    pub request_id: String,
    /// Approve or deny.
    pub kind: DecisionKind,
    /// The deny reason.
    pub reason: Option<String>,
    /// The state.
    pub state: OutboxState,
    /// Display name or e-mail.
    pub label: String,
    /// The `Idempotency-Key` of the decision report (UUID v4, fixed at enqueue).
    pub idempotency_key: String,
    /// The request version the approver reviewed (the `If-Match`).
    pub expected_version: u64,
    /// The request as reviewed (its claims drive the plan).
    pub request: ApprovalRequest,
    /// The created, invited or reused account.
    pub directory_object_id: Option<String>,
    /// How the account came to exist.
    pub how: Option<ProvisionedBy>,
    /// A Graph write was started (so a found account after a crash is ours).
    pub write_started: bool,
    /// The grants of [`OutboxRow::request`] already in place (issue 14 §1): a resumed or
    /// retried approval runs only the others.
    pub grants_done: Vec<Grant>,
    /// Drain attempts.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<ReviewerError>,
    /// The request as the server last answered it.
    pub current: Option<ApprovalRequest>,
    /// When queued (RFC 3339).
    pub queued_at: String,
    /// Nothing is sent before this time (the undo window; Unix milliseconds, 0: no wait).
    pub not_before_ms: i64,
    /// When the row last changed (Unix seconds).
    pub updated_unix: i64,
}

impl OutboxRow {
    /// Whether this row reported the first of two approvals (issue 14 §3): an approval whose
    /// server answer (`current`) is still pending.
    pub fn awaits_second_approval(&self) -> bool {
        self.kind == DecisionKind::Approve
            && self
                .current
                .as_ref()
                .is_some_and(|c| c.state == guestlist_core::model::RequestState::Pending)
    }

    /// The status-bar view.
    pub fn item(&self) -> OutboxItem {
        OutboxItem {
            request_id: self.request_id.clone(),
            kind: self.kind,
            state: self.state,
            label: self.label.clone(),
            queued_at: self.queued_at.clone(),
            attempts: self.attempts,
            directory_object_id: self.directory_object_id.clone(),
            how: self.how,
            write_started: self.write_started,
            grants_total: u32::try_from(self.request.grants.len()).unwrap_or(u32::MAX),
            grants_done: u32::try_from(
                self.request
                    .grants
                    .iter()
                    .filter(|g| self.grants_done.contains(g))
                    .count(),
            )
            .unwrap_or(u32::MAX),
            undo_until: self.undo_until(),
            updated_at: OffsetDateTime::from_unix_timestamp(self.updated_unix)
                .map(rfc3339)
                .unwrap_or_else(|_| self.queued_at.clone()),
            last_error: self.last_error.clone(),
        }
    }

    /// When the undo window of a decision nothing was sent for yet ends (RFC 3339 with
    /// milliseconds); `None` once it is running, finished, or had no window.
    pub fn undo_until(&self) -> Option<String> {
        if self.state != OutboxState::Queued || self.not_before_ms <= 0 {
            return None;
        }
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.not_before_ms) * 1_000_000)
                .ok()?;
        Some(rfc3339(t))
    }

    /// `true` while the undo window is open at `now`.
    pub fn waiting(&self, now: OffsetDateTime) -> bool {
        self.state == OutboxState::Queued && self.not_before_ms > unix_ms(now)
    }
}

impl Cache {
    /// Adds a decision to the outbox, durably, before anything else happens. A request with a
    /// non-final item keeps it (returned as is, nothing changes); a final conflict/failed item is
    /// replaced (the approver decided again); a reported one is kept.
    ///
    /// Errors: `storage.error`.
    pub fn enqueue(
        &self,
        request: &ApprovalRequest,
        kind: DecisionKind,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<OutboxRow, ReviewerError> {
        self.enqueue_after(request, kind, reason, now, now)
    }

    /// [`Cache::enqueue`] with an undo window: nothing of the decision is sent before
    /// `not_before` (persisted, so the window survives a restart). A failed item decided again
    /// keeps what its earlier attempt recorded (the account it created or invited, and that a
    /// write started), so a retry resumes and never creates or invites twice.
    ///
    /// Errors: `storage.error`.
    pub fn enqueue_after(
        &self,
        request: &ApprovalRequest,
        kind: DecisionKind,
        reason: Option<&str>,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
    ) -> Result<OutboxRow, ReviewerError> {
        let id = request.id.to_string();
        // A reported first of two approvals (issue 14 §3: the server's answer is still
        // pending) does not settle the request: a new decision on it is queued (a denial, or an
        // approval the claim refuses as `decision.second_approver_required`).
        if let Some(existing) = self.outbox(&id)?
            && (!existing.state.is_final()
                || (existing.state == OutboxState::Reported && !existing.awaits_second_approval()))
        {
            return Ok(existing);
        }
        let kind_s = match kind {
            DecisionKind::Approve => "approve",
            DecisionKind::Deny => "deny",
        };
        // A retried failed approval keeps the account its earlier attempt created or invited,
        // and the grants it put in place (Retry runs only the missing ones).
        let (object_id, write_started, grants_done) = match self.outbox(&id)? {
            Some(old)
                if old.state == OutboxState::Failed
                    && old.kind == DecisionKind::Approve
                    && kind == DecisionKind::Approve =>
            {
                (old.directory_object_id, old.write_started, old.grants_done)
            }
            _ => (None, false, Vec::new()),
        };
        self.conn()?.execute(
            "INSERT OR REPLACE INTO outbox
             (request_id, kind, reason, state, label, idempotency_key, expected_version, request_json,
              directory_object_id, how, write_started, attempts, last_error, current_json, queued_at, updated_unix,
              not_before_ms, grants_done)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?10, NULL, ?11, 0, NULL, NULL, ?8, ?9, ?12, ?13)",
            params![
                id,
                kind_s,
                reason,
                format!("{} <{}>", display_name(request), request.key.email),
                uuid::Uuid::new_v4().to_string(),
                i64::try_from(request.version).unwrap_or(i64::MAX),
                serde_json::to_string(request)?,
                rfc3339(now),
                now.unix_timestamp(),
                object_id,
                write_started,
                unix_ms(not_before),
                serde_json::to_string(&grants_done)?,
            ],
        )?;
        self.outbox(&id)?
            .ok_or_else(|| ReviewerError::storage("outbox row vanished after insert"))
    }

    /// Undo: deletes the decision of request `id` if nothing of it was sent yet (still
    /// `queued`). `Ok(true)` when it was deleted; `Ok(false)` when there is no such decision or
    /// it is already running or finished.
    ///
    /// Errors: `storage.error`.
    pub fn cancel_queued(&self, id: &str) -> Result<bool, ReviewerError> {
        let n = self.conn()?.execute(
            "DELETE FROM outbox WHERE request_id = ?1 AND state = 'queued'",
            [id],
        )?;
        Ok(n == 1)
    }

    fn read_outbox(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawOutbox> {
        Ok(RawOutbox {
            request_id: row.get(0)?,
            kind: row.get(1)?,
            reason: row.get(2)?,
            state: row.get(3)?,
            label: row.get(4)?,
            idempotency_key: row.get(5)?,
            expected_version: row.get(6)?,
            request_json: row.get(7)?,
            directory_object_id: row.get(8)?,
            how: row.get(9)?,
            write_started: row.get(10)?,
            attempts: row.get(11)?,
            last_error: row.get(12)?,
            current_json: row.get(13)?,
            queued_at: row.get(14)?,
            not_before_ms: row.get(15)?,
            updated_unix: row.get(16)?,
            grants_done: row.get(17)?,
        })
    }

    const OUTBOX_COLUMNS: &'static str =
        "request_id, kind, reason, state, label, idempotency_key, expected_version, request_json,
        directory_object_id, how, write_started, attempts, last_error, current_json, queued_at,
        not_before_ms, updated_unix, grants_done";

    /// One outbox row.
    ///
    /// Errors: `storage.error`.
    pub fn outbox(&self, id: &str) -> Result<Option<OutboxRow>, ReviewerError> {
        let raw = self
            .conn()?
            .query_row(
                &format!(
                    "SELECT {} FROM outbox WHERE request_id = ?1",
                    Self::OUTBOX_COLUMNS
                ),
                [id],
                Self::read_outbox,
            )
            .optional()?;
        raw.map(RawOutbox::parse).transpose()
    }

    /// Outbox rows: every non-final one, plus final ones changed in the last `recent_secs`,
    /// oldest first.
    ///
    /// Errors: `storage.error`.
    pub fn outbox_rows(
        &self,
        recent_secs: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxRow>, ReviewerError> {
        let c = self.conn()?;
        let mut s = c.prepare(&format!(
            "SELECT {} FROM outbox
             WHERE state NOT IN ('reported', 'conflict', 'failed') OR updated_unix >= ?1
             ORDER BY queued_at, request_id",
            Self::OUTBOX_COLUMNS
        ))?;
        let raws = s
            .query_map([now.unix_timestamp() - recent_secs], Self::read_outbox)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawOutbox::parse).collect()
    }

    /// Persists an outbox row's progress (state, ids, flags, error, server answer).
    ///
    /// Errors: `storage.error`.
    pub fn save_outbox(&self, row: &OutboxRow, now: OffsetDateTime) -> Result<(), ReviewerError> {
        let how = row
            .how
            .map(|h| serde_json::to_value(h).map(|v| v.as_str().unwrap_or_default().to_owned()))
            .transpose()?;
        let n = self.conn()?.execute(
            "UPDATE outbox SET state = ?2, directory_object_id = ?3, how = ?4, write_started = ?5,
                attempts = ?6, last_error = ?7, current_json = ?8, updated_unix = ?9,
                grants_done = ?10
             WHERE request_id = ?1",
            params![
                row.request_id,
                row.state.as_str(),
                row.directory_object_id,
                how,
                row.write_started,
                row.attempts,
                row.last_error
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()?,
                row.current
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()?,
                now.unix_timestamp(),
                serde_json::to_string(&row.grants_done)?,
            ],
        )?;
        if n != 1 {
            return Err(ReviewerError::storage(format!(
                "outbox row {} is gone",
                row.request_id
            )));
        }
        Ok(())
    }

    /// Deletes the finished decision (a final outbox row: reported, conflict, failed) of request
    /// `id`, if any: a reopened denial (`crate::reopen`) is pending again and its old decision
    /// must neither show in the queue nor block a new one. Unfinished rows are kept.
    ///
    /// Errors: `storage.error`.
    pub fn forget_finished(&self, id: &str) -> Result<bool, ReviewerError> {
        Ok(self.conn()?.execute(
            "DELETE FROM outbox WHERE request_id = ?1 AND state IN ('reported', 'conflict', 'failed')",
            [id],
        )? > 0)
    }

    /// Deletes final outbox rows older than `days` days. Returns how many.
    ///
    /// Errors: `storage.error`.
    pub fn purge(&self, days: u32, now: OffsetDateTime) -> Result<u64, ReviewerError> {
        let cutoff = now.unix_timestamp() - i64::from(days) * 86_400;
        Ok(self.conn()?.execute(
            "DELETE FROM outbox WHERE state IN ('reported', 'conflict', 'failed') AND updated_unix < ?1",
            [cutoff],
        )? as u64)
    }
}

struct RawOutbox {
    request_id: String,
    kind: String,
    reason: Option<String>,
    state: String,
    label: String,
    idempotency_key: String,
    expected_version: i64,
    request_json: String,
    directory_object_id: Option<String>,
    how: Option<String>,
    write_started: bool,
    attempts: u32,
    last_error: Option<String>,
    current_json: Option<String>,
    queued_at: String,
    not_before_ms: i64,
    updated_unix: i64,
    grants_done: String,
}

impl RawOutbox {
    fn parse(self) -> Result<OutboxRow, ReviewerError> {
        let bad = |what: &str| {
            ReviewerError::storage(format!("outbox row {}: bad {what}", self.request_id))
        };
        Ok(OutboxRow {
            kind: match self.kind.as_str() {
                "approve" => DecisionKind::Approve,
                "deny" => DecisionKind::Deny,
                _ => return Err(bad("kind")),
            },
            state: OutboxState::parse(&self.state).ok_or_else(|| bad("state"))?,
            request: serde_json::from_str(&self.request_json)?,
            how: self
                .how
                .as_deref()
                .map(|h| serde_json::from_value(Value::String(h.to_owned())))
                .transpose()?,
            last_error: self
                .last_error
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            current: self
                .current_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            expected_version: u64::try_from(self.expected_version).map_err(|_| bad("version"))?,
            grants_done: serde_json::from_str(&self.grants_done)?,
            request_id: self.request_id,
            reason: self.reason,
            label: self.label,
            idempotency_key: self.idempotency_key,
            directory_object_id: self.directory_object_id,
            write_started: self.write_started,
            attempts: self.attempts,
            queued_at: self.queued_at,
            not_before_ms: self.not_before_ms,
            updated_unix: self.updated_unix,
        })
    }
}
