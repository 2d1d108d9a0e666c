//! Erasure, tombstones, retention, event compaction, reopen and the audit log's writes on
//! PostgreSQL — the counterparts of the SQLite store's `privacy.rs`, `retention.rs`,
//! `reopen.rs` and `audit.rs` (the reads and exports are in `export.rs`), with the same
//! meaning of "erased" (see [`crate::store::privacy`]): after an erasure no row of any table holds the person's e-mail,
//! claims or request (history entries stay, with only [`SAFE_DETAIL_KEYS`] in their detail).
//!
//! PostgreSQL keeps deleted row versions until `VACUUM` reclaims their space, and in its WAL
//! until recycled: [`PgStore::checkpoint_truncate`] vacuums the touched tables after an
//! erasure, which removes the dead versions from the tables and indexes (the freed space is
//! reused, not zeroed; the WAL segments are recycled at later checkpoints).

use deadpool_postgres::Transaction;
use guestlist_core::model::{Actor, ApprovalRequest, Event, IdentityKey, RequestState, Status};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{
    COLUMNS, add_event, add_history, get_by_id, insert_event, rows_to_requests, upsert,
};
use super::{PgStore, TxResult, db_err, json as to_jsonb, lock_email, micros};
use crate::store::StoreError;
use crate::store::audit::AuditAction;
use crate::store::privacy::{Erased, SAFE_DETAIL_KEYS};
use crate::store::reopen::{EVENT_REQUEST_REOPENED, HISTORY_REOPENED, ReopenOutcome};
use crate::store::retention::RetentionCutoffs;
use crate::store::rows::search_text;

/// One request to erase.
struct Victim {
    id: Uuid,
    key: IdentityKey,
    status: Status,
}

async fn victims(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> TxResult<Vec<Victim>> {
    let rows = tx.query(sql, params).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get(0)?;
        let status: String = row.try_get(4)?;
        out.push(Victim {
            id,
            key: IdentityKey {
                email: row.try_get(1)?,
                issuer: row.try_get(2)?,
                issuer_assigned_id: row.try_get(3)?,
            },
            status: Status::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("request {id}: unknown status")))?,
        });
    }
    Ok(out)
}

/// Keeps only [`SAFE_DETAIL_KEYS`] of a history entry's detail.
fn scrub_detail(detail: Value) -> Value {
    match detail {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| SAFE_DETAIL_KEYS.contains(&k.as_str()))
                .collect(),
        ),
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// The erase primitive (module docs), in the caller's write transaction. `digest` is the
/// tombstone of each victim's e-mail (`None`: no key; then a denial cannot be kept).
async fn erase_victims(
    store: &PgStore,
    tx: &Transaction<'_>,
    victims: &[Victim],
    keep_denial: bool,
    now: OffsetDateTime,
) -> TxResult<Erased> {
    let mut out = Erased::default();
    for v in victims {
        // The tombstone first: at no point is the person neither denied nor tombstoned.
        if keep_denial && v.status == Status::Denied {
            let mac = store.tombstone_mac()?;
            let digest = {
                use hmac::Mac;
                let mut mac = mac;
                mac.update(v.key.email.as_bytes());
                mac.finalize().into_bytes().to_vec()
            };
            tx.execute(
                "INSERT INTO tombstones (digest, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&digest, &now],
            )
            .await?;
            out.counts.denial_kept = true;
        }
        let deleted = tx
            .execute("DELETE FROM events WHERE request_id = $1", &[&v.id])
            .await?;
        out.counts.events += deleted;
        let rows = tx
            .query(
                "SELECT id, detail FROM history WHERE request_id = $1 FOR UPDATE",
                &[&v.id],
            )
            .await?;
        for row in rows {
            let hid: i64 = row.try_get(0)?;
            let detail: Value = row.try_get(1)?;
            tx.execute(
                "UPDATE history SET detail = $1 WHERE id = $2",
                &[&scrub_detail(detail), &hid],
            )
            .await?;
            out.counts.history_entries += 1;
        }
        out.counts.idempotency += tx
            .execute("DELETE FROM idempotency WHERE request_id = $1", &[&v.id])
            .await?;
        tx.execute("DELETE FROM reminded WHERE request_id = $1", &[&v.id])
            .await?;
        let deleted = tx
            .execute("DELETE FROM requests WHERE id = $1", &[&v.id])
            .await?;
        if deleted == 0 {
            continue;
        }
        out.counts.requests += 1;
        tx.execute(
            "INSERT INTO erasures (change_seq, request_id, at) VALUES (nextval('change_seq'), $1, $2)",
            &[&v.id, &now],
        )
        .await?;
        let body = json!({"id": v.id, "at": crate::store::ts(now)});
        let seq = insert_event(
            tx,
            guestlist_core::model::EVENT_REQUEST_ERASED,
            v.id,
            now,
            body,
        )
        .await?;
        out.events.push(Event::erased(seq, v.id));
    }
    Ok(out)
}

/// Appends an audit row in the caller's transaction; returns its `seq`.
async fn append_audit(
    tx: &Transaction<'_>,
    at: OffsetDateTime,
    action: AuditAction,
    request_id: Option<Uuid>,
    actor: &Actor,
    detail: &Value,
) -> TxResult<u64> {
    let row = tx
        .query_one(
            "INSERT INTO audit_log (at, action, request_id, actor, detail) VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            &[&at, &action.as_str(), &request_id, &to_jsonb(actor)?, detail],
        )
        .await?;
    let seq: i64 = row.try_get(0)?;
    Ok(u64::try_from(seq).unwrap_or_default())
}

/// Makes `r` pending again (SQLite: `reopen_one`) and writes its row, history and event.
async fn reopen_one(
    tx: &Transaction<'_>,
    mut r: ApprovalRequest,
    reason: &str,
    actor: &Actor,
    now: OffsetDateTime,
    with: Option<Uuid>,
) -> TxResult<(ApprovalRequest, Event)> {
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
    upsert(tx, &r, &search_text(&claims)).await?;
    let mut detail = json!({ "reason": reason, "deniedReason": undone });
    if let (Some(with), Some(m)) = (with, detail.as_object_mut()) {
        m.insert("reopenedWith".into(), json!(with));
    }
    add_history(tx, &r, HISTORY_REOPENED, actor, detail).await?;
    let event = add_event(tx, EVENT_REQUEST_REOPENED, &r).await?;
    Ok((r, event))
}

async fn reopen_tx(
    tx: &Transaction<'_>,
    id: Uuid,
    reason: &str,
    actor: &Actor,
    if_match: u64,
    now: OffsetDateTime,
) -> TxResult<ReopenOutcome> {
    let found = get_by_id(tx, id, false)
        .await?
        .ok_or(StoreError::NotFound(id))?;
    lock_email(tx, &found.key.email).await?;
    let r = get_by_id(tx, id, true)
        .await?
        .ok_or(StoreError::NotFound(id))?;
    if r.version != if_match {
        return Err(StoreError::VersionMismatch {
            current: r.version,
            request: Box::new(r),
        }
        .into());
    }
    if !matches!(r.state, RequestState::Denied { .. }) {
        return Ok(ReopenOutcome::NotDenied {
            request: Box::new(r),
        });
    }
    let with_reason = format!("denied with request {id} (same e-mail address)");
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE email = $1 AND status = 'denied' AND id <> $2 ORDER BY created_at, id FOR UPDATE"
    );
    let companions: Vec<ApprovalRequest> =
        rows_to_requests(&tx.query(&sql, &[&r.key.email, &id]).await?)?
            .into_iter()
            .filter(
                |o| matches!(&o.state, RequestState::Denied { reason } if *reason == with_reason),
            )
            .collect();
    let (request, first) = reopen_one(tx, r, reason, actor, now, None).await?;
    let mut events = vec![first];
    let mut reopened_with = Vec::new();
    for other in companions {
        reopened_with.push(other.id);
        events.push(reopen_one(tx, other, reason, actor, now, Some(id)).await?.1);
    }
    append_audit(
        tx,
        now,
        AuditAction::Reopen,
        Some(id),
        actor,
        &json!({ "reason": reason, "version": request.version, "reopenedWith": reopened_with }),
    )
    .await?;
    Ok(ReopenOutcome::Reopened {
        request: Box::new(request),
        events,
    })
}

const VICTIM_COLUMNS: &str = "id, email, issuer, issuer_assigned_id, status";

impl PgStore {
    /// Whether the canonical e-mail is blocked by a denial tombstone (false when no key is
    /// set: no tombstone can have been stored without one).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn is_tombstoned(&self, canonical_email: &str) -> Result<bool, StoreError> {
        let Some(digest) = self.tombstone_digest(canonical_email) else {
            return Ok(false);
        };
        let client = self.conn().await?;
        client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM tombstones WHERE digest = $1)",
                &[&digest],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db_err)
    }

    /// Erases every request of `canonical_email` (GDPR Art. 17, module docs) in one
    /// transaction under the person's lock, with its `privacy.erase` audit row.
    ///
    /// Errors: [`StoreError`] on database failure; [`StoreError::Backend`] when a denial is to
    /// be kept and no tombstone key is configured.
    pub async fn erase_email(
        &self,
        canonical_email: &str,
        keep_denial: bool,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        let now = micros(now);
        let digest = self.tombstone_digest(canonical_email);
        let sql = format!(
            "SELECT {VICTIM_COLUMNS} FROM requests WHERE email = $1 ORDER BY created_at, id FOR UPDATE"
        );
        write_tx!(self, |tx| {
            lock_email(&tx, canonical_email).await?;
            let found = victims(&tx, &sql, &[&canonical_email]).await?;
            let mut erased = erase_victims(self, &tx, &found, keep_denial, now).await?;
            if let Some(d) = &digest {
                if keep_denial {
                    let row = tx
                        .query_one(
                            "SELECT EXISTS (SELECT 1 FROM tombstones WHERE digest = $1)",
                            &[d],
                        )
                        .await?;
                    erased.counts.denial_kept |= row.try_get::<_, bool>(0)?;
                } else {
                    tx.execute("DELETE FROM tombstones WHERE digest = $1", &[d])
                        .await?;
                }
            }
            append_audit(
                &tx,
                now,
                AuditAction::Erase,
                None,
                actor,
                &serde_json::to_value(erased.counts).unwrap_or_default(),
            )
            .await?;
            Ok(erased)
        })
    }

    /// After an erasure: `VACUUM` of the tables that held the person's rows (module docs), in
    /// the background on a pooled connection without `statement_timeout` (a large table takes
    /// a while; the erasure's answer does not wait). One vacuum at a time: an erasure during a
    /// vacuum makes it run once more when done.
    ///
    /// Errors: [`StoreError::Unavailable`] when no connection can be had (it runs again after
    /// the next erasure).
    pub async fn checkpoint_truncate(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.vacuum_again.store(true, SeqCst);
        if self.vacuuming.swap(true, SeqCst) {
            return Ok(());
        }
        let client = match self.conn().await {
            Ok(c) => c,
            Err(e) => {
                self.vacuuming.store(false, SeqCst);
                return Err(e);
            }
        };
        let (running, again) = (self.vacuuming.clone(), self.vacuum_again.clone());
        tokio::spawn(async move {
            'runs: loop {
                while again.swap(false, SeqCst) {
                    let done = async {
                        client.batch_execute("SET statement_timeout = 0").await?;
                        let vacuum = client
                            .batch_execute(
                                "VACUUM requests, events, history, idempotency, reminded",
                            )
                            .await;
                        client.batch_execute("RESET statement_timeout").await?;
                        vacuum
                    }
                    .await;
                    if let Err(e) = done {
                        tracing::warn!(error = %db_err(e), "erasure: VACUUM not done");
                        running.store(false, SeqCst);
                        break 'runs;
                    }
                }
                running.store(false, SeqCst);
                // An erasure between the last check and the store above found us running.
                if !again.load(SeqCst) || running.swap(true, SeqCst) {
                    break;
                }
            }
        });
        Ok(())
    }

    /// Erases at most `limit` requests past `cut`, oldest change first, in one transaction;
    /// denied ones leave a tombstone (SQLite: `Store::retention_batch`).
    ///
    /// Errors: [`StoreError`] on database failure or a missing tombstone key.
    pub async fn retention_batch(
        &self,
        cut: RetentionCutoffs,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        let now = micros(now);
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let decided_sql = format!(
            "SELECT {VICTIM_COLUMNS} FROM requests
             WHERE status IN ('approved', 'denied', 'expired') AND updated_at < $1
             ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        );
        let pending_sql = format!(
            "SELECT {VICTIM_COLUMNS} FROM requests
             WHERE status = 'pending' AND created_at < $1
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        );
        write_tx!(self, |tx| {
            let found = victims(&tx, &decided_sql, &[&cut.decided_before, &limit]).await?;
            let mut erased = erase_victims(self, &tx, &found, true, now).await?;
            let left = limit - i64::try_from(erased.counts.requests).unwrap_or(limit);
            if let Some(pending) = cut.pending_before
                && left > 0
            {
                let found = victims(&tx, &pending_sql, &[&pending, &left]).await?;
                let more = erase_victims(self, &tx, &found, true, now).await?;
                erased.counts.add(more.counts);
                erased.events.extend(more.events);
            }
            Ok(erased)
        })
    }

    /// Deletes at most `limit` of the oldest stored events that happened before `before`;
    /// returns how many (the scan stops at the first newer one).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn compact_events(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        write_tx!(self, |tx| {
            let rows = tx
                .query(
                    "SELECT seq, at FROM events ORDER BY seq LIMIT $1",
                    &[&limit],
                )
                .await?;
            let mut upto: Option<i64> = None;
            for row in rows {
                let at: OffsetDateTime = row.try_get(1)?;
                if at >= before {
                    break;
                }
                upto = Some(row.try_get(0)?);
            }
            let Some(upto) = upto else { return Ok(0) };
            Ok(tx
                .execute("DELETE FROM events WHERE seq <= $1", &[&upto])
                .await?)
        })
    }

    /// Deletes at most `limit` idempotency records stored before `before`; returns how many.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn drop_idempotency(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        write_tx!(self, |tx| {
            Ok(tx
            .execute(
                "DELETE FROM idempotency WHERE key IN
                   (SELECT key FROM idempotency WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&before, &limit],
            )
            .await?)
        })
    }

    /// Reopens the denied request `id` and the requests its denial denied with it (SQLite:
    /// `Store::reopen`, same rules), audited as `request.reopen`.
    ///
    /// Errors: [`StoreError::NotFound`]; [`StoreError::VersionMismatch`].
    pub async fn reopen(
        &self,
        id: Uuid,
        reason: &str,
        actor: &Actor,
        if_match: u64,
        now: OffsetDateTime,
    ) -> Result<ReopenOutcome, StoreError> {
        let now = micros(now);
        // As both stores keep text: no NUL (`requests::nul_free`).
        let reason = &crate::store::requests::nul_free(reason);
        let actor = &crate::store::requests::stored_actor(actor);
        write_tx!(self, |tx| reopen_tx(&tx, id, reason, actor, if_match, now)
            .await)
    }

    /// Appends one audit row in its own committed transaction; returns its `seq`.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn audit(
        &self,
        at: OffsetDateTime,
        action: AuditAction,
        request_id: Option<Uuid>,
        actor: &Actor,
        detail: Value,
    ) -> Result<u64, StoreError> {
        let at = micros(at);
        write_tx!(self, |tx| append_audit(
            &tx, at, action, request_id, actor, &detail
        )
        .await)
    }
}

/// Ids erased with a change number in `(after, upto]`, in order.
pub(super) async fn erased_between(
    c: &tokio_postgres::Client,
    after: u64,
    upto: u64,
) -> Result<Vec<Uuid>, StoreError> {
    let rows = c
        .query(
            "SELECT request_id FROM erasures WHERE change_seq > $1 AND change_seq <= $2 ORDER BY change_seq",
            &[
                &i64::try_from(after).unwrap_or(i64::MAX),
                &i64::try_from(upto).unwrap_or(i64::MAX),
            ],
        )
        .await
        .map_err(db_err)?;
    rows.iter().map(|r| r.try_get(0).map_err(db_err)).collect()
}
