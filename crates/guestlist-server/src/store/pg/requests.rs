//! The approval state machine's transactions on PostgreSQL (`docs/CONTRACTS.md` §1 "The
//! approval behaviour" and §4): the same rules as the SQLite store's `requests.rs`, as
//! cluster-wide transactions (the module docs of [`super`] say how they are serialised).

use deadpool_postgres::Transaction;
use guestlist_core::connector::Claims;
use guestlist_core::model::{
    Actor, ApprovalRequest, Decision, Event, Flow, HistoryEntry, IdentityKey, RequestPage,
    RequestState, Status, TransitionError,
};
use guestlist_core::policy::{MessageKind, Policy};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::check_batch::Lookup;
use super::rows::{
    COLUMN_COUNT, COLUMNS, add_event, add_history, get_by_id, row_to_request, rows_to_requests,
    upsert,
};
use super::{PgStore, TxResult, db_err, json as to_jsonb, lock_email, micros, unjson};
use crate::duties::Scope;
use crate::store::check_index::{CheckAnswer, Found, check_answer, check_status_block};
use crate::store::requests::{
    Routed, created_order_page, decision_record, search_pattern, stored_decision,
};
use crate::store::rows::{decode_cursor, decode_seq_cursor, encode_seq_cursor, search_text};
use crate::store::{RequestApprovalOutcome, StoreError};

/// Denies every other pending request of `denied`'s canonical e-mail (SQLite:
/// `deny_same_person`), in the caller's transaction (which holds the e-mail's lock).
pub(super) async fn deny_same_person(
    tx: &Transaction<'_>,
    denied: &ApprovalRequest,
    actor: &Actor,
    now: OffsetDateTime,
) -> TxResult<Vec<Event>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE email = $1 AND status = 'pending' AND id <> $2 ORDER BY created_at, id FOR UPDATE"
    );
    let others = rows_to_requests(&tx.query(&sql, &[&denied.key.email, &denied.id]).await?)?;
    let mut events = Vec::with_capacity(others.len());
    for mut r in others {
        let deny = Decision::Deny {
            reason: format!("denied with request {} (same e-mail address)", denied.id),
        };
        if r.apply(&deny, actor.clone(), now).is_err() {
            continue;
        }
        let claims = r
            .typed_claims()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        upsert(tx, &r, &search_text(&claims)).await?;
        let mut detail = serde_json::to_value(&deny).unwrap_or_default();
        if let Value::Object(m) = &mut detail {
            m.insert("deniedWith".into(), json!(denied.id));
        }
        add_history(tx, &r, "denied", actor, detail).await?;
        events.push(add_event(tx, "request.decided", &r).await?);
    }
    Ok(events)
}

async fn expire_tx(tx: &Transaction<'_>, id: Uuid, now: OffsetDateTime) -> TxResult<Option<Event>> {
    let Some(found) = get_by_id(tx, id, false).await? else {
        return Ok(None);
    };
    lock_email(tx, &found.key.email).await?;
    let Some(mut r) = get_by_id(tx, id, true).await? else {
        return Ok(None);
    };
    if r.state != RequestState::Pending {
        return Ok(None);
    }
    r.state = RequestState::Expired;
    r.version += 1;
    r.updated_at = now;
    let claims = r
        .typed_claims()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    upsert(tx, &r, &search_text(&claims)).await?;
    add_history(tx, &r, "expired", &Actor::policy("expiry"), json!({})).await?;
    Ok(Some(add_event(tx, "request.decided", &r).await?))
}

#[allow(clippy::too_many_arguments)]
async fn decide_tx(
    tx: &Transaction<'_>,
    id: Uuid,
    decision: &Decision,
    actor: &Actor,
    if_match: Option<u64>,
    idempotency_key: Option<&str>,
    fingerprint: &str,
    now: OffsetDateTime,
) -> TxResult<(ApprovalRequest, Vec<Event>)> {
    if let Some(key) = idempotency_key {
        // Two replicas deciding with one key: the second waits on the first's row.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&super::IDEMPOTENCY_NS, &key],
        )
        .await?;
        let seen = tx
            .query_opt(
                "SELECT fingerprint, response FROM idempotency WHERE key = $1",
                &[&key],
            )
            .await?;
        if let Some(row) = seen {
            let fp: String = row.try_get(0)?;
            if fp != fingerprint {
                return Err(StoreError::IdempotencyKeyReused.into());
            }
            return Ok((unjson(row.try_get(1)?)?, Vec::new()));
        }
    }
    let Some(found) = get_by_id(tx, id, false).await? else {
        return Err(StoreError::NotFound(id).into());
    };
    lock_email(tx, &found.key.email).await?;
    let mut r = get_by_id(tx, id, true)
        .await?
        .ok_or(StoreError::NotFound(id))?;
    if let Some(v) = if_match
        && v != r.version
    {
        if r.state == RequestState::Pending {
            return Err(StoreError::VersionMismatch {
                current: r.version,
                request: Box::new(r),
            }
            .into());
        }
        return Err(StoreError::AlreadyDecided {
            request: Box::new(r),
        }
        .into());
    }
    match r.apply(decision, actor.clone(), now) {
        Ok(()) => {}
        Err(TransitionError::NotPending(_)) => {
            return Err(StoreError::AlreadyDecided {
                request: Box::new(r),
            }
            .into());
        }
        Err(TransitionError::SameApprover) => {
            return Err(StoreError::SecondApproverRequired.into());
        }
    }
    let claims = r
        .typed_claims()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    upsert(tx, &r, &search_text(&claims)).await?;
    let (action, kind) = decision_record(decision, &r);
    add_history(
        tx,
        &r,
        action,
        actor,
        serde_json::to_value(decision).unwrap_or_default(),
    )
    .await?;
    let mut events = vec![add_event(tx, kind, &r).await?];
    if matches!(decision, Decision::Deny { .. }) {
        events.extend(deny_same_person(tx, &r, actor, now).await?);
    }
    if let Some(key) = idempotency_key {
        tx.execute(
            "INSERT INTO idempotency (key, request_id, fingerprint, response, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&key, &id, &fingerprint, &to_jsonb(&r)?, &now],
        )
        .await?;
    }
    Ok((r, events))
}

/// The `WHERE` clause of a [`Scope`] in the list queries, on parameters `$6`–`$10` (SQLite:
/// `store/requests.rs` `SCOPE_SQL`): everything; or unrouted requests (no route, or a route the
/// policy no longer has); or the caller's routes; or the requests marked escalated
/// (`escalated_at` set) of a route whose fallback role the caller holds (`$10`; issue 14 §2).
const SCOPE_SQL: &str = "($6::bool
    OR ($7::bool AND (route IS NULL OR NOT (route = ANY($8::text[]))))
    OR route = ANY($9::text[])
    OR (escalated_at IS NOT NULL AND route = ANY($10::text[])))";

impl PgStore {
    /// Marks a pending request expired (SQLite: `Store::expire`).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn expire(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Event>, StoreError> {
        let now = micros(now);
        write_tx!(self, |tx| expire_tx(&tx, id, now).await)
    }

    /// The "request approval" decision (seed `002_*`) in one transaction under the person's
    /// cluster-wide lock: an identical call within `retry_window` on any replica is Entra's
    /// retry and gets the first call's answer; bursts create one request.
    ///
    /// Errors: [`StoreError`] on database failure; [`StoreError::Unavailable`] when the
    /// database cannot be reached.
    pub async fn request_approval(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        self.request_approval_flow(claims, Flow::Workforce, policy, now, retry_window)
            .await
    }

    /// [`PgStore::request_approval`] of a call that came through the user flow `flow`
    /// (issue 17): a new request is stored with it.
    ///
    /// Errors: as [`PgStore::request_approval`].
    pub async fn request_approval_flow(
        &self,
        claims: &Claims,
        flow: Flow,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        let Ok(key) = IdentityKey::try_of(claims) else {
            return Ok(RequestApprovalOutcome {
                block: Some(MessageKind::EmailRefused),
                event: None,
            });
        };
        let call = super::signup::Call {
            tombstone: self.tombstone_digest(&key.email),
            key,
            flow,
            claims_json: claims.to_json(),
            search: search_text(claims),
            evaluated: policy.evaluate(claims),
            routed: Routed::of(policy, claims),
            policy,
            now: micros(now),
            retry_window,
        };
        super::signup::request_approval(self, &call).await
    }

    /// The "check approval status" decision (seed `002_*`): from this replica's cache when it
    /// holds the person ([`super::check_cache`]: invalidated through the database before any
    /// write that changes the answer is acknowledged, so a decision by another replica is seen
    /// at once), otherwise read from the tables in one statement shared with the other checks
    /// waiting at the time ([`super::check_batch`]). A pending request past its expiry is
    /// marked expired first (a write).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn check_status(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(Option<MessageKind>, Option<Event>), StoreError> {
        let Ok(key) = IdentityKey::try_of(claims) else {
            return Ok((Some(MessageKind::EmailRefused), None));
        };
        let ticket = match self.cache.lookup(&key) {
            Ok(found) => return answer_found(self, found, policy, now).await,
            Err(ticket) => ticket,
        };
        let digest = self.tombstone_digest(&key.email).unwrap_or_default();
        // Batched with the other checks waiting at the time, on a shared check-status
        // connection, one round trip (module docs of [`super::check_batch`]).
        let looked_up = self
            .checks
            .lookup(Lookup {
                email: key.email,
                issuer: key.issuer,
                issuer_assigned_id: key.issuer_assigned_id,
                digest,
            })
            .await?;
        let email_denied = looked_up.email_denied;
        let found = match looked_up.request {
            Some((id, status, created_at)) => Found::Request {
                id,
                status: Status::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("request {id}: unknown status")))?,
                created_at,
                email_denied,
            },
            None if email_denied => Found::DeniedEmail,
            None => Found::Nothing,
        };
        self.cache.fill(ticket, &found);
        answer_found(self, found, policy, now).await
    }

    /// One request by id.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub async fn get(&self, id: Uuid) -> Result<ApprovalRequest, StoreError> {
        let client = self.conn().await?;
        match get_by_id(&client, id, false).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(StoreError::NotFound(id)),
            Err(super::TxError::Db(e)) => Err(db_err(e)),
            Err(super::TxError::Store(e)) => Err(e),
        }
    }

    /// A page of requests, or with `since` the changes after a mark (SQLite:
    /// `Store::list_page`, same rules). The high-water mark is the change sequence's safe mark
    /// (module docs of [`super`]): every change numbered at or below it has committed.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn list_page(
        &self,
        since: Option<u64>,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        self.list_scoped(&Scope::everything(), since, status, q, cursor, limit)
            .await
    }

    /// [`PgStore::list_page`] of the requests in `scope` (issue 14 §2; SQLite:
    /// `Store::list_scoped`, same rules), as one more `WHERE` clause ([`SCOPE_SQL`]).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn list_scoped(
        &self,
        scope: &Scope,
        since: Option<u64>,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        let limit = limit.clamp(1, 500);
        let pattern = search_pattern(q);
        let fetch = i64::try_from(limit + 1).unwrap_or(501);
        let status = status.map(Status::as_str);
        let high_u = self.safe_mark("change_seq").await?;
        let high = i64::try_from(high_u).unwrap_or(i64::MAX);
        let client = self.conn().await?;
        if let Some(since) = since {
            let after = cursor
                .and_then(decode_seq_cursor)
                .map_or(since, |c| c.max(since));
            let after_i = i64::try_from(after).unwrap_or(i64::MAX);
            let sql = format!(
                "SELECT {COLUMNS}, change_seq FROM requests
                 WHERE change_seq > $1 AND change_seq <= $2
                   AND ($3::text IS NULL OR status = $3)
                   AND ($4::text IS NULL OR search LIKE $4 ESCAPE '')
                   AND {SCOPE_SQL}
                 ORDER BY change_seq LIMIT $5"
            );
            let rows = client
                .query(
                    &sql,
                    &[
                        &after_i,
                        &high,
                        &status,
                        &pattern,
                        &fetch,
                        &scope.all,
                        &scope.unrouted,
                        &scope.known,
                        &scope.routes,
                        &scope.escalated,
                    ],
                )
                .await
                .map_err(db_err)?;
            let mut items = Vec::with_capacity(rows.len());
            let mut seqs = Vec::with_capacity(rows.len());
            for row in &rows {
                items.push(row_to_request(row)?);
                let seq: i64 = row.try_get(COLUMN_COUNT).map_err(db_err)?;
                seqs.push(u64::try_from(seq).unwrap_or_default());
            }
            if items.len() > limit {
                items.truncate(limit);
                let last = seqs.get(limit - 1).copied().unwrap_or(after);
                return Ok(RequestPage {
                    items,
                    next_cursor: Some(encode_seq_cursor(last)),
                    change_seq: Some(last),
                    erased: super::privacy::erased_between(&client, after, last).await?,
                });
            }
            return Ok(RequestPage {
                items,
                next_cursor: None,
                change_seq: Some(high_u),
                erased: super::privacy::erased_between(&client, after, high_u).await?,
            });
        }
        let (after_ts, after_id) = match cursor.and_then(decode_cursor) {
            Some((t, i)) => (
                OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok(),
                Uuid::parse_str(&i).ok(),
            ),
            None => (None, None),
        };
        let after_id = after_id.unwrap_or(Uuid::nil());
        let sql = format!(
            "SELECT {COLUMNS} FROM requests
             WHERE ($1::text IS NULL OR status = $1)
               AND ($2::text IS NULL OR search LIKE $2 ESCAPE '')
               AND ($3::timestamptz IS NULL OR created_at > $3 OR (created_at = $3 AND id > $4))
               AND {SCOPE_SQL}
             ORDER BY created_at, id LIMIT $5"
        );
        let rows = client
            .query(
                &sql,
                &[
                    &status,
                    &pattern,
                    &after_ts,
                    &after_id,
                    &fetch,
                    &scope.all,
                    &scope.unrouted,
                    &scope.known,
                    &scope.routes,
                    &scope.escalated,
                ],
            )
            .await
            .map_err(db_err)?;
        Ok(created_order_page(rows_to_requests(&rows)?, limit, high_u))
    }

    /// Applies an approver's decision with optimistic concurrency and idempotency (SQLite:
    /// `Store::decide_all`, same answers), under the person's cluster-wide lock.
    ///
    /// Errors: [`StoreError::IdempotencyKeyReused`], [`StoreError::VersionMismatch`],
    /// [`StoreError::AlreadyDecided`], [`StoreError::NotFound`].
    pub async fn decide_all(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Vec<Event>), StoreError> {
        let (decision, actor) = &stored_decision(decision, actor);
        let fingerprint = format!(
            "{id}:{}",
            serde_json::to_string(decision).map_err(|e| StoreError::Corrupt(e.to_string()))?
        );
        let now = micros(now);
        write_tx!(self, |tx| decide_tx(
            &tx,
            id,
            decision,
            actor,
            if_match,
            idempotency_key,
            &fingerprint,
            now
        )
        .await)
    }

    /// The audit trail of a request, oldest first.
    ///
    /// Errors: [`StoreError::NotFound`] when the request does not exist.
    pub async fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        let client = self.conn().await?;
        let exists = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM requests WHERE id = $1)",
                &[&id],
            )
            .await
            .map_err(db_err)?;
        if !exists.try_get::<_, bool>(0).map_err(db_err)? {
            return Err(StoreError::NotFound(id));
        }
        history_of(&client, id).await
    }
}

/// The history rows of request `id`, oldest first.
///
/// Errors: [`StoreError`] on database failure or an unreadable row.
pub(super) async fn history_of(
    c: &tokio_postgres::Client,
    id: Uuid,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let rows = c
        .query(
            "SELECT at, action, actor, version, detail FROM history WHERE request_id = $1 ORDER BY id",
            &[&id],
        )
        .await
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let version: i64 = row.try_get(3).map_err(db_err)?;
        out.push(HistoryEntry {
            at: row.try_get(0).map_err(db_err)?,
            action: row.try_get(1).map_err(db_err)?,
            actor: unjson(row.try_get(2).map_err(db_err)?)?,
            version: u64::try_from(version).unwrap_or_default(),
            detail: row.try_get(4).map_err(db_err)?,
        });
    }
    Ok(out)
}

/// The check-status answer for what was found (cached or read), marking a pending request past
/// its expiry expired first.
async fn answer_found(
    store: &PgStore,
    found: Found,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<(Option<MessageKind>, Option<Event>), StoreError> {
    match check_answer(found, policy, now)? {
        CheckAnswer::Answer(block) => Ok((block, None)),
        CheckAnswer::Expire(id) => {
            let event = store.expire(id, now).await?;
            Ok((check_status_block(&RequestState::Expired, policy), event))
        }
    }
}
