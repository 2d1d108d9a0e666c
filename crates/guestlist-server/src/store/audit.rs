//! The audit of operations that are not decisions (issue 12 "Erasure", "Reopen a denial",
//! "Audit export"): one row per erasure, access export, reopened denial and retention run, in
//! table `audit_log` (migration 4). Decisions are audited by `history` already.
//!
//! A row never holds personal data of the person concerned: an erasure is recorded with who
//! erased and the counts, not the e-mail; the approver's own identity (oid, upn, client) is
//! what an audit is for.

use guestlist_core::model::Actor;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, StoreError, from_json, parse_ts, to_json, ts};

/// Migration 4: the `audit_log` table. `at` is RFC 3339 UTC like the other tables' times;
/// `seq` orders rows written in the same second.
pub(super) const MIGRATION: &str = r#"
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            request_id TEXT,
            actor_json TEXT NOT NULL,
            detail_json TEXT NOT NULL
        ) STRICT;
        CREATE INDEX audit_log_at ON audit_log(at, seq);
        "#;

/// What an audit row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    /// `POST /api/privacy/erase` (GDPR Art. 17).
    #[serde(rename = "privacy.erase")]
    Erase,
    /// `GET /api/privacy/export` (GDPR Art. 15).
    #[serde(rename = "privacy.export")]
    Export,
    /// `POST /api/requests/{id}/reopen`: a denial made pending again.
    #[serde(rename = "request.reopen")]
    Reopen,
    /// One run of the retention job that erased something.
    #[serde(rename = "retention.run")]
    Retention,
}

impl AuditAction {
    /// The stored and exported name, e.g. `privacy.erase`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Erase => "privacy.erase",
            AuditAction::Export => "privacy.export",
            AuditAction::Reopen => "request.reopen",
            AuditAction::Retention => "retention.run",
        }
    }

    fn parse(s: &str) -> Option<AuditAction> {
        [
            AuditAction::Erase,
            AuditAction::Export,
            AuditAction::Reopen,
            AuditAction::Retention,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One row of `audit_log`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Order of writing (AUTOINCREMENT).
    pub seq: u64,
    /// When (UTC, whole seconds as stored).
    pub at: OffsetDateTime,
    /// What was done.
    pub action: AuditAction,
    /// The request concerned, when there is one (reopen); erasures span requests.
    pub request_id: Option<Uuid>,
    /// Who did it: the approver (oid, name, upn, client) or the policy (retention).
    pub actor: Actor,
    /// Counts, reasons; never the person's e-mail or claims.
    pub detail: Value,
}

/// Appends an audit row inside the caller's transaction (so the operation and its audit commit
/// together).
///
/// Errors: [`StoreError::Db`].
pub(crate) fn append(
    conn: &Connection,
    at: OffsetDateTime,
    action: AuditAction,
    request_id: Option<Uuid>,
    actor: &Actor,
    detail: &Value,
) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, action, request_id, actor_json, detail_json)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        ts(at),
        action.as_str(),
        request_id.map(|id| id.to_string()),
        to_json(actor)?,
        detail.to_string(),
    ])?;
    Ok(u64::try_from(conn.last_insert_rowid()).unwrap_or_default())
}

impl SqliteStore {
    /// Appends one audit row in its own committed transaction; returns its `seq`.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn audit(
        &self,
        at: OffsetDateTime,
        action: AuditAction,
        request_id: Option<Uuid>,
        actor: &Actor,
        detail: Value,
    ) -> Result<u64, StoreError> {
        let actor = actor.clone();
        self.write(move |c| append(c, at, action, request_id, &actor, &detail))
    }

    /// Audit rows with `after_seq < seq`, oldest first, at most `limit` (a page: callers that
    /// stream the whole audit call it again with the last `seq`, so memory stays bounded).
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    pub fn audit_page(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |c| page(c, after_seq, limit))
    }
}

/// [`SqliteStore::audit_page`] on a given connection (the audit export reads on its own).
///
/// Errors: [`StoreError`] on database failure or an unreadable row.
pub(crate) fn page(
    c: &Connection,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = c.prepare_cached(
        "SELECT seq, at, action, request_id, actor_json, detail_json FROM audit_log
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, at, action, request_id, actor, detail) = row?;
        let bad = |what: &str| StoreError::Corrupt(format!("audit_log row {seq}: {what}"));
        out.push(AuditRecord {
            seq: u64::try_from(seq).unwrap_or_default(),
            at: parse_ts(&at)?,
            action: AuditAction::parse(&action).ok_or_else(|| bad("unknown action"))?,
            request_id: request_id
                .map(|s| Uuid::parse_str(&s).map_err(|_| bad("bad request id")))
                .transpose()?,
            actor: from_json(&actor)?,
            detail: serde_json::from_str(&detail).map_err(|_| bad("bad detail"))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_rows_round_trip_in_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let actor = Actor::policy("retention");
        let id = Uuid::new_v4();
        for i in 0..3 {
            store
                .audit(
                    now,
                    AuditAction::Reopen,
                    Some(id),
                    &actor,
                    serde_json::json!({ "n": i }),
                )
                .unwrap();
        }
        let first = store.audit_page(0, 2).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].action, AuditAction::Reopen);
        assert_eq!(first[0].request_id, Some(id));
        assert_eq!(first[0].at, now);
        assert_eq!(first[1].detail, serde_json::json!({ "n": 1 }));
        let rest = store.audit_page(first[1].seq, 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].detail, serde_json::json!({ "n": 2 }));
    }
}
