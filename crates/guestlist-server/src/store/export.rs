//! Reads for issue 12's exports: everything held for one person (GDPR Art. 15, "Access") and
//! the audit of decisions and privacy operations, page by page ("Audit export").
//!
//! Both only read (a reader connection), and the audit is read in keyset pages
//! ([`AUDIT_PAGE`] rows at most per call) so its caller can stream any number of rows in
//! constant memory.

use guestlist_core::email;
use guestlist_core::model::{Actor, ApprovalRequest, HistoryEntry};
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::AuditRecord;
use super::backend::{AuditExportPage, ExportCursor};
use super::{COLUMNS, SqliteStore, StoreError, from_json, parse_ts, row_to_request, ts};

/// Rows read per page of [`history_page`] and [`log_page`].
pub const AUDIT_PAGE: usize = 1_000;

/// Page cache of the audit export's read-only connections ([`SqliteStore::audit_export_page`]), in KiB.
pub const EXPORT_CACHE_KIB: i64 = 2 * 1024;

/// The history actions exported as decisions: approver decisions, policy decisions, expiry,
/// reopened denials and escalations (not `requested` / `attempted`, which are the person's own
/// sign-up calls).
pub const DECISION_ACTIONS: [&str; 7] = [
    "approved",
    "denied",
    "autoApproved",
    "autoDenied",
    "expired",
    super::reopen::HISTORY_REOPENED,
    super::escalation::HISTORY_ESCALATED,
];

/// One request held for a person, with its trail ([`AccessExport`]).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldRequest {
    /// The request as the approver API shows it, with every claim the user flow sent.
    pub request: ApprovalRequest,
    /// Its history, oldest first (who decided, when, the decision body).
    pub history: Vec<HistoryEntry>,
    /// How many stored events (`/api/events` backlog) carry a copy of the request.
    pub events: u64,
    /// How many stored idempotency records (a decision's replayed answer) hold a copy of it.
    pub idempotency_records: u64,
}

/// The answer of `GET /api/privacy/export` (GDPR Art. 15): everything stored for one
/// canonical e-mail ([`guestlist_core::email::canonical`]).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessExport {
    /// The canonical e-mail the export is for.
    pub email: String,
    /// When the export was made (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    /// Every request stored under that e-mail (any identity provider), oldest first.
    pub requests: Vec<HeldRequest>,
    /// Whether a denial tombstone (the keyed hash that keeps a denial after its data is erased,
    /// [`super::privacy`]) exists for the e-mail: the person stays blocked although no request
    /// is listed.
    pub denial_tombstone: bool,
}

/// The history rows of request `id`, oldest first (for [`SqliteStore::history`] and the access
/// export).
///
/// Errors: [`StoreError`] on database failure or an unreadable row.
pub(super) fn history_of(conn: &Connection, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, action, actor_json, version, detail_json FROM history
         WHERE request_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![id.to_string()], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, action, actor, version, detail) = row?;
        out.push(HistoryEntry {
            at: parse_ts(&at)?,
            action,
            actor: from_json(&actor)?,
            version: u64::try_from(version).unwrap_or_default(),
            detail: from_json(&detail)?,
        });
    }
    Ok(out)
}

/// Which source a [`AuditExportRecord`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuditSource {
    /// A decision in `history`.
    Decision,
    /// A privacy operation or reopen in `audit_log`.
    Operation,
}

/// One record of the audit export (`GET /api/audit`): a decision or an operation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditExportRecord {
    /// When (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `decision` (from `history`) or `operation` (from `audit_log`).
    pub source: AuditSource,
    /// The row's key in its source (`history.id` or `audit_log.seq`).
    pub seq: u64,
    /// The request concerned; absent for operations spanning requests (erasure, retention).
    pub request_id: Option<Uuid>,
    /// The outcome or operation: `approved`, `denied`, `autoApproved`, `autoDenied`, `expired`,
    /// `reopened`, `escalated`, `privacy.erase`, `privacy.export`, `request.reopen`,
    /// `retention.run`.
    pub action: String,
    /// `user` (an approver), `policy` or `userFlow`.
    pub actor_kind: String,
    /// The approver's object id (`oid`), or the policy rule's name.
    pub actor_oid: String,
    /// The approver's `preferred_username` (UPN), when known.
    pub actor_upn: Option<String>,
    /// The client the approver used (`azp` and `User-Agent`), when known.
    pub actor_client: Option<String>,
    /// The directory object id of the created guest (approvals by an approver).
    pub directory_object_id: Option<String>,
}

impl SqliteStore {
    /// A read-only connection of the audit export: an idle one from the store's small pool, or
    /// a new one on the database file with a page cache of [`EXPORT_CACHE_KIB`] (the reader
    /// pool's connections keep up to 16 MiB each: reading a whole table through them would fill
    /// all of them).
    fn export_conn(&self) -> Result<Connection, StoreError> {
        let idle = self
            .export_conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        if let Some(c) = idle {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &*self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "cache_size", -EXPORT_CACHE_KIB)?;
        Ok(conn)
    }

    /// One page of the audit export ([`Backend::audit_export_page`](super::Backend::audit_export_page)):
    /// up to `limit` records with `since <= at < until` after `after`, in time order. Reads on
    /// an export connection ([`EXPORT_CACHE_KIB`]), whole [`AUDIT_PAGE`] keyset pages of each
    /// source until it holds `limit` records of each (or the source ends), merges them by time
    /// and keeps the first `limit`: the first `limit` of the complete merge, since each source
    /// is in commit order. Blocking.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    pub fn audit_export_page(
        &self,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        after: ExportCursor,
        limit: usize,
    ) -> Result<AuditExportPage, StoreError> {
        let limit = limit.max(1);
        let conn = self.export_conn()?;
        let mut pages = 0;
        let mut decisions = std::collections::VecDeque::new();
        let mut history_at = i64::try_from(after.history_after).unwrap_or(i64::MAX);
        let mut history_done = after.history_done;
        while decisions.len() < limit && !history_done {
            let (rows, last, done) = history_page(&conn, history_at, since, until)?;
            pages += 1;
            (history_at, history_done) = (last, done);
            decisions.extend(rows);
        }
        let mut operations = std::collections::VecDeque::new();
        let mut audit_at = after.audit_after;
        let mut audit_done = after.audit_done;
        while operations.len() < limit && !audit_done {
            let (rows, last, done) = log_page(&conn, audit_at, since, until)?;
            pages += 1;
            (audit_at, audit_done) = (last, done);
            operations.extend(rows);
        }
        self.export_conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
        let (records, next) = merge_page(
            decisions,
            operations,
            after,
            (u64::try_from(history_at).unwrap_or_default(), history_done),
            (audit_at, audit_done),
            limit,
        );
        Ok(AuditExportPage {
            records,
            next,
            pages_read: pages,
        })
    }
}

/// Merges the records read from each source after `after` (in commit order; `read` is the last
/// key read from a source and whether it is exhausted) by time, decisions first at the same
/// instant, and keeps the first `limit`. Returns them and the cursor after them (`None` when
/// nothing is left). For every implementation of
/// [`Backend::audit_export_page`](super::Backend::audit_export_page).
pub fn merge_page(
    mut decisions: std::collections::VecDeque<AuditExportRecord>,
    mut operations: std::collections::VecDeque<AuditExportRecord>,
    after: ExportCursor,
    history_read: (u64, bool),
    audit_read: (u64, bool),
    limit: usize,
) -> (Vec<AuditExportRecord>, Option<ExportCursor>) {
    let mut out = Vec::with_capacity(limit.min(decisions.len() + operations.len()));
    let mut next = after;
    while out.len() < limit {
        let take_decision = match (decisions.front(), operations.front()) {
            (Some(d), Some(o)) => d.at <= o.at,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let taken = if take_decision {
            decisions.pop_front()
        } else {
            operations.pop_front()
        };
        if let Some(r) = taken {
            match r.source {
                AuditSource::Decision => next.history_after = r.seq,
                AuditSource::Operation => next.audit_after = r.seq,
            }
            out.push(r);
        }
    }
    // A source whose every kept record was taken resumes after the last row read (the rows in
    // between were filtered out), so it is not read again; an exhausted one is done.
    if decisions.is_empty() {
        next.history_after = next.history_after.max(history_read.0);
        next.history_done = history_read.1;
    }
    if operations.is_empty() {
        next.audit_after = next.audit_after.max(audit_read.0);
        next.audit_done = audit_read.1;
    }
    let finished = next.history_done && next.audit_done;
    (out, (!finished).then_some(next))
}

/// The whole seconds `YYYY-MM-DDTHH:MM:SS` of a stored time, for a coarse SQL range filter
/// (stored times may carry fractions, which do not compare as text); the exact filter is in
/// Rust.
fn second_prefix(t: OffsetDateTime) -> String {
    ts(t.to_offset(time::UtcOffset::UTC))
        .chars()
        .take(19)
        .collect()
}

impl SqliteStore {
    /// Everything stored for the canonical form of `email` (see [`AccessExport`]).
    ///
    /// Errors: [`StoreError::Corrupt`] for an e-mail with no canonical form (the caller
    /// answers 400 before); [`StoreError`] on database failure.
    pub fn access_export(
        &self,
        email_address: &str,
        now: OffsetDateTime,
    ) -> Result<AccessExport, StoreError> {
        let canonical = email::canonical(email_address)
            .map_err(|_| StoreError::Corrupt("not an e-mail address".into()))?;
        let denial_tombstone = self.is_tombstoned(&canonical)?;
        self.read(|c| {
            let sql =
                format!("SELECT {COLUMNS} FROM requests WHERE email = ?1 ORDER BY created_at, id");
            let found = c
                .prepare(&sql)?
                .query_map(params![canonical], row_to_request)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut requests = Vec::with_capacity(found.len());
            for r in found {
                let request = r?;
                let id = request.id.to_string();
                let events: i64 = c.query_row(
                    "SELECT COUNT(*) FROM events WHERE json_extract(request_json, '$.id') = ?1",
                    params![id],
                    |row| row.get(0),
                )?;
                let idempotency: i64 = c.query_row(
                    "SELECT COUNT(*) FROM idempotency WHERE request_id = ?1",
                    params![id],
                    |row| row.get(0),
                )?;
                requests.push(HeldRequest {
                    history: history_of(c, request.id)?,
                    request,
                    events: u64::try_from(events).unwrap_or_default(),
                    idempotency_records: u64::try_from(idempotency).unwrap_or_default(),
                });
            }
            Ok(AccessExport {
                denial_tombstone,
                email: canonical.clone(),
                exported_at: now,
                requests,
            })
        })
    }
}

/// One page of decisions for the audit export: the `history` rows after `after` (by id, at
/// most [`AUDIT_PAGE`] read), kept when their action is one of [`DECISION_ACTIONS`] and
/// `since <= at < until`. Returns the kept records, the last id read and whether the table
/// is exhausted.
///
/// Errors: [`StoreError`] on database failure or an unreadable row.
pub fn history_page(
    conn: &Connection,
    after: i64,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> Result<(Vec<AuditExportRecord>, i64, bool), StoreError> {
    let lo = since.map(second_prefix).unwrap_or_default();
    let hi = until
        .map(second_prefix)
        .unwrap_or_else(|| "9999".to_owned());
    let limit = i64::try_from(AUDIT_PAGE).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT id, request_id, at, action, actor_json, detail_json FROM history
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![after, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let done = rows.len() < AUDIT_PAGE;
    let mut last = after;
    let mut out = Vec::new();
    for (id, request_id, at, action, actor, detail) in rows {
        last = id;
        let prefix: String = at.chars().take(19).collect();
        if !DECISION_ACTIONS.contains(&action.as_str()) || prefix < lo || prefix > hi {
            continue;
        }
        let at = parse_ts(&at)?;
        if !in_range(at, since, until) {
            continue;
        }
        let actor: Actor = from_json(&actor)?;
        let detail: Value = from_json(&detail)?;
        out.push(AuditExportRecord {
            at,
            source: AuditSource::Decision,
            seq: u64::try_from(id).unwrap_or_default(),
            request_id: Uuid::parse_str(&request_id).ok(),
            action,
            actor_kind: actor.kind,
            actor_oid: actor.id,
            actor_upn: actor.username,
            actor_client: actor.client,
            directory_object_id: detail
                .get("directoryObjectId")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    Ok((out, last, done))
}

/// One page of operations for the audit export: the `audit_log` rows after `after` (at most
/// [`AUDIT_PAGE`] read) with `since <= at < until`. Returns them, the last `seq` read and
/// whether the table is exhausted.
///
/// Errors: [`StoreError`] on database failure or an unreadable row.
pub fn log_page(
    conn: &Connection,
    after: u64,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> Result<(Vec<AuditExportRecord>, u64, bool), StoreError> {
    let rows: Vec<AuditRecord> = super::audit::page(conn, after, AUDIT_PAGE)?;
    let done = rows.len() < AUDIT_PAGE;
    let last = rows.last().map_or(after, |r| r.seq);
    let out = rows
        .into_iter()
        .filter(|r| in_range(r.at, since, until))
        .map(|r| AuditExportRecord {
            at: r.at,
            source: AuditSource::Operation,
            seq: r.seq,
            request_id: r.request_id,
            action: r.action.as_str().to_owned(),
            actor_kind: r.actor.kind,
            actor_oid: r.actor.id,
            actor_upn: r.actor.username,
            actor_client: r.actor.client,
            directory_object_id: None,
        })
        .collect();
    Ok((out, last, done))
}

fn in_range(
    t: OffsetDateTime,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> bool {
    since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)
}

#[cfg(test)]
mod tests {
    use guestlist_core::connector::Claims;
    use guestlist_core::model::Decision;
    use guestlist_core::policy::Policy;

    use super::super::audit::AuditAction;
    use super::*;

    /// Small pages of interleaved decisions and operations give, concatenated, exactly the
    /// records of one large page: in time order, none twice, none missed.
    #[test]
    fn small_pages_merge_both_sources_like_one_large_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let actor = Actor::policy("test");
        for i in 0..7i64 {
            let at = t0 + time::Duration::minutes(10 * i);
            let c =
                Claims::from_json(serde_json::json!({"email": format!("p{i}@x.example")})).unwrap();
            let id = store
                .request_approval(&c, &Policy::default(), at, time::Duration::ZERO)
                .unwrap()
                .event
                .unwrap()
                .request_id;
            let deny = Decision::Deny {
                reason: "no".into(),
            };
            store.decide(id, &deny, &actor, None, None, at).unwrap();
            // Two operations between this decision and the next one.
            for j in 1..=2 {
                let op_at = at + time::Duration::minutes(3 * j);
                let detail = serde_json::json!({});
                store
                    .audit(op_at, AuditAction::Export, None, &actor, detail)
                    .unwrap();
            }
        }
        let whole = store
            .audit_export_page(None, None, ExportCursor::default(), 10_000)
            .unwrap();
        assert!(whole.next.is_none());
        assert_eq!(whole.records.len(), 21);
        let mut paged = Vec::new();
        let mut next = Some(ExportCursor::default());
        while let Some(after) = next {
            let page = store.audit_export_page(None, None, after, 2).unwrap();
            assert!(page.records.len() <= 2);
            paged.extend(page.records);
            next = page.next;
        }
        assert_eq!(paged, whole.records);
        assert!(paged.windows(2).all(|w| w[0].at <= w[1].at));
        // A time range: the records of [t0 + 25 min, t0 + 45 min).
        let (since, until) = (
            t0 + time::Duration::minutes(25),
            t0 + time::Duration::minutes(45),
        );
        let mut ranged = Vec::new();
        let mut next = Some(ExportCursor::default());
        while let Some(after) = next {
            let page = store
                .audit_export_page(Some(since), Some(until), after, 1)
                .unwrap();
            ranged.extend(page.records);
            next = page.next;
        }
        let expected: Vec<_> = whole
            .records
            .iter()
            .filter(|r| r.at >= since && r.at < until)
            .cloned()
            .collect();
        assert_eq!(ranged, expected);
        assert_eq!(ranged.len(), 6);
    }
}
