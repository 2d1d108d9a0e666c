//! The audit log's reads and the exports on PostgreSQL — the counterparts of the SQLite
//! store's `audit.rs` reads and `export.rs`: keyset pages of `audit_log` and `history`, merged in
//! time order by the shared [`merge_page`], and the access export (GDPR Art. 15).

use guestlist_core::email;
use guestlist_core::model::Actor;
use serde_json::Value;
use time::OffsetDateTime;

use super::requests::history_of;
use super::rows::{COLUMNS, rows_to_requests};
use super::{PgStore, db_err, unjson};
use crate::store::StoreError;
use crate::store::audit::AuditRecord;
use crate::store::backend::{AuditExportPage, ExportCursor};
use crate::store::export::{
    AUDIT_PAGE, AccessExport, AuditExportRecord, AuditSource, DECISION_ACTIONS, HeldRequest,
    merge_page,
};

impl PgStore {
    /// Audit rows with `after_seq < seq`, oldest first, at most `limit`.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    pub async fn audit_page(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let client = self.conn().await?;
        audit_rows(&client, after_seq, limit).await
    }

    /// One page of the audit export: decisions (`history`) and operations (`audit_log`) with
    /// `since <= at < until`, each read in keyset pages of [`AUDIT_PAGE`] rows, merged in time
    /// order by [`merge_page`] (as on SQLite).
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable row.
    pub async fn audit_export_page(
        &self,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
        after: ExportCursor,
        limit: usize,
    ) -> Result<AuditExportPage, StoreError> {
        let limit = limit.max(1);
        let client = self.conn().await?;
        let mut pages = 0;
        let mut decisions = std::collections::VecDeque::new();
        let mut history_at = i64::try_from(after.history_after).unwrap_or(i64::MAX);
        let mut history_done = after.history_done;
        while decisions.len() < limit && !history_done {
            let (rows, last, done) = history_page(&client, history_at, since, until).await?;
            pages += 1;
            (history_at, history_done) = (last, done);
            decisions.extend(rows);
        }
        let mut operations = std::collections::VecDeque::new();
        let mut audit_at = after.audit_after;
        let mut audit_done = after.audit_done;
        while operations.len() < limit && !audit_done {
            let rows = audit_rows(&client, audit_at, AUDIT_PAGE).await?;
            pages += 1;
            audit_done = rows.len() < AUDIT_PAGE;
            audit_at = rows.last().map_or(audit_at, |r| r.seq);
            operations.extend(
                rows.into_iter()
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
                    }),
            );
        }
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

    /// Everything stored for the canonical form of `email_address` (GDPR Art. 15).
    ///
    /// Errors: [`StoreError::Corrupt`] for an e-mail with no canonical form.
    pub async fn access_export(
        &self,
        email_address: &str,
        now: OffsetDateTime,
    ) -> Result<AccessExport, StoreError> {
        let canonical = email::canonical(email_address)
            .map_err(|_| StoreError::Corrupt("not an e-mail address".into()))?;
        let denial_tombstone = self.is_tombstoned(&canonical).await?;
        let client = self.conn().await?;
        let sql =
            format!("SELECT {COLUMNS} FROM requests WHERE email = $1 ORDER BY created_at, id");
        let found = rows_to_requests(&client.query(&sql, &[&canonical]).await.map_err(db_err)?)?;
        let mut requests = Vec::with_capacity(found.len());
        for request in found {
            let counts = client
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM events WHERE request_id = $1),
                            (SELECT COUNT(*) FROM idempotency WHERE request_id = $1)",
                    &[&request.id],
                )
                .await
                .map_err(db_err)?;
            let events: i64 = counts.try_get(0).map_err(db_err)?;
            let idempotency: i64 = counts.try_get(1).map_err(db_err)?;
            requests.push(HeldRequest {
                history: history_of(&client, request.id).await?,
                request,
                events: u64::try_from(events).unwrap_or_default(),
                idempotency_records: u64::try_from(idempotency).unwrap_or_default(),
            });
        }
        Ok(AccessExport {
            denial_tombstone,
            email: canonical,
            exported_at: now,
            requests,
        })
    }
}

fn in_range(
    t: OffsetDateTime,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> bool {
    since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)
}

/// Audit rows after `after_seq`, at most `limit`.
async fn audit_rows(
    c: &tokio_postgres::Client,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query(
            "SELECT seq, at, action, request_id, actor, detail FROM audit_log
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get(0).map_err(db_err)?;
        let action: String = row.try_get(2).map_err(db_err)?;
        out.push(AuditRecord {
            seq: u64::try_from(seq).unwrap_or_default(),
            at: row.try_get(1).map_err(db_err)?,
            action: serde_json::from_value(Value::String(action))
                .map_err(|_| StoreError::Corrupt(format!("audit_log row {seq}: unknown action")))?,
            request_id: row.try_get(3).map_err(db_err)?,
            actor: unjson(row.try_get(4).map_err(db_err)?)?,
            detail: row.try_get(5).map_err(db_err)?,
        });
    }
    Ok(out)
}

/// One keyset page of decisions (`history` rows after `after`, [`AUDIT_PAGE`] at most read),
/// kept when a decision action within the range; the last id read and whether exhausted.
async fn history_page(
    c: &tokio_postgres::Client,
    after: i64,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> Result<(Vec<AuditExportRecord>, i64, bool), StoreError> {
    let limit = i64::try_from(AUDIT_PAGE).unwrap_or(i64::MAX);
    let rows = c
        .query(
            "SELECT id, request_id, at, action, actor, detail FROM history
             WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &limit],
        )
        .await
        .map_err(db_err)?;
    let done = rows.len() < AUDIT_PAGE;
    let mut last = after;
    let mut out = Vec::new();
    for row in rows {
        let id: i64 = row.try_get(0).map_err(db_err)?;
        last = id;
        let action: String = row.try_get(3).map_err(db_err)?;
        let at: OffsetDateTime = row.try_get(2).map_err(db_err)?;
        if !DECISION_ACTIONS.contains(&action.as_str()) || !in_range(at, since, until) {
            continue;
        }
        let actor: Actor = unjson(row.try_get(4).map_err(db_err)?)?;
        let detail: Value = row.try_get(5).map_err(db_err)?;
        out.push(AuditExportRecord {
            at,
            source: AuditSource::Decision,
            seq: u64::try_from(id).unwrap_or_default(),
            request_id: row.try_get(1).map_err(db_err)?,
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
