//! Request-approval (the connector's sign-up, the hot write path) on PostgreSQL in two round
//! trips (issue 13 §5; module docs of [`super`], "Round trips"). The rules are those of
//! [`super::requests`] and of the SQLite store (`docs/CONTRACTS.md` §1 "The approval
//! behaviour"); only the way the transaction is sent differs from [`write_tx!`]:
//!
//! 1. `BEGIN`, the shared sequence lock ([`super::SEQ_LOCK`]), the person's lock
//!    ([`super::lock_email`]'s statement) and the lookup of the person's request and denials,
//!    sent in one write;
//! 2. what to write is decided in memory from what the lookup found ([`plan`], no I/O);
//! 3. the row(s), history entries and event, and `COMMIT`, sent in one write.
//!
//! PostgreSQL runs pipelined statements one after the other in the order sent (the lookup's
//! READ COMMITTED snapshot is taken after both locks are held, as when they were separate
//! round trips). An error in one statement aborts the transaction: the statements after it
//! fail, and the `COMMIT` sent with them ends the transaction as a `ROLLBACK` (PostgreSQL's
//! answer to `COMMIT` in a failed transaction); so nothing is committed unless every statement
//! succeeded, and the caller reads that from their results (the first error is reported as
//! itself; a serialization failure, deadlock or unique violation runs the whole transaction
//! again, up to [`super::MAX_ATTEMPTS`] times, as [`write_tx!`] does). Every statement is
//! prepared (deadpool's per-connection cache) and every value encoded before the first message
//! is sent, so nothing can fail on the client between the writes and the `COMMIT`: a part of a
//! call's writes is never committed alone.
//!
//! A call dropped while its transaction is open (its HTTP connection closed under it) takes its
//! connection out of the pool instead of returning it ([`Conn`]): PostgreSQL rolls the
//! transaction back (and releases the person's lock) when that session ends, and the pool makes
//! a new connection; a connection inside a transaction is never handed to another call.

use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Object;
use guestlist_core::model::{Actor, ApprovalRequest, Event, Flow, IdentityKey, RequestState};
use guestlist_core::policy::{ExpiredBehaviour, MessageKind, Policy, RuleOutcome};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::rows::{
    EVENT_SQL, HISTORY_SQL, INSERT_SQL, REQUEST_AND_DENIAL_SQL, RowValues, UPSERT_SQL,
    decode_request_and_denial,
};
use super::{
    EMAIL_NS, LOCK_EMAIL_SQL, LOCK_NS, MAX_ATTEMPTS, PgStore, SEQ_LOCK, SEQ_LOCK_SHARED_SQL,
    TxError, TxResult, db_err, json as to_jsonb, retryable,
};
use crate::store::check_index::check_status_block;
use crate::store::requests::{FirstRequest, Routed, first_request, is_expired};
use crate::store::{RequestApprovalOutcome, StoreError};

/// What a request-approval call needs, computed once before its transaction (and its retries).
pub(super) struct Call<'a> {
    /// The person's identity key (canonical e-mail, issuer, issuer-assigned id).
    pub key: IdentityKey,
    /// The user flow the call came through (issue 17).
    pub flow: Flow,
    /// The call's claims as stored in `requests.claims`.
    pub claims_json: serde_json::Map<String, Value>,
    /// The row's search text.
    pub search: String,
    /// The policy's rules applied to the claims (auto-approve/deny).
    pub evaluated: RuleOutcome,
    /// The route a new request is stored with.
    pub routed: Routed,
    /// The policy in force.
    pub policy: &'a Policy,
    /// The call's time, cut to microseconds.
    pub now: OffsetDateTime,
    /// How long an identical call counts as Entra's retry of the first.
    pub retry_window: time::Duration,
    /// The e-mail's tombstone digest (`None` without a tombstone key).
    pub tombstone: Option<Vec<u8>>,
}

/// One change of a request: its new row, the history entry recording it and, with `event`,
/// the event of that kind carrying the row. `new`: the row is inserted, not upserted (a new
/// request, with a fresh id).
struct Change {
    new: bool,
    request: ApprovalRequest,
    action: &'static str,
    actor: Actor,
    detail: Value,
    event: Option<&'static str>,
}

/// What a call writes (in order; at most two changes: an expiry, then a re-request) and the
/// block page it answers.
struct Plan {
    changes: Vec<Change>,
    block: Option<MessageKind>,
}

impl Plan {
    fn answer(block: MessageKind) -> Plan {
        Plan {
            changes: Vec::new(),
            block: Some(block),
        }
    }
}

/// The "request approval" decision (seed `002_*`) from what the lookup found under the
/// person's lock: the stored request under the call's identity key, if any, and whether the
/// person is denied (a denied request of the same canonical e-mail, or a tombstone). Pure: the
/// same rules as the SQLite store's `request_approval`, in the same order.
fn plan(found: Option<ApprovalRequest>, person_denied: bool, c: &Call<'_>) -> Plan {
    let (policy, now) = (c.policy, c.now);
    let Some(mut r) = found else {
        if person_denied {
            return Plan::answer(MessageKind::Denied);
        }
        let FirstRequest {
            request,
            action,
            actor,
            block,
            event_kind,
        } = first_request(
            &c.key,
            &c.evaluated,
            c.claims_json.clone(),
            c.flow,
            &c.routed,
            now,
        );
        return Plan {
            changes: vec![Change {
                new: true,
                request,
                action,
                actor,
                detail: json!({}),
                event: Some(event_kind),
            }],
            block,
        };
    };
    if matches!(r.state, RequestState::Pending | RequestState::Expired) && person_denied {
        return Plan::answer(MessageKind::Denied);
    }
    let mut changes = Vec::new();
    if is_expired(&r, policy, now) {
        r.state = RequestState::Expired;
        r.version += 1;
        r.updated_at = now;
        changes.push(Change {
            new: false,
            request: r.clone(),
            action: "expired",
            actor: Actor::policy("expiry"),
            detail: json!({}),
            event: None,
        });
    }
    match r.state.clone() {
        RequestState::Pending => {
            if r.claims == c.claims_json && now - r.updated_at <= c.retry_window {
                // Entra's retry: the first call's answer, nothing written.
                return Plan {
                    changes,
                    block: Some(MessageKind::Requested),
                };
            }
            r.attempts += 1;
            r.updated_at = now;
            r.version += 1;
            let detail =
                json!({"answer": policy.code(MessageKind::Pending), "claims": c.claims_json});
            changes.push(Change {
                new: false,
                request: r,
                action: "attempted",
                actor: Actor::user_flow(),
                detail,
                event: None,
            });
            Plan {
                changes,
                block: Some(MessageKind::Pending),
            }
        }
        RequestState::Expired if policy.expired == ExpiredBehaviour::AllowReRequest => {
            r.state = RequestState::Pending;
            r.claims = c.claims_json.clone();
            r.attempts += 1;
            r.created_at = now;
            r.updated_at = now;
            r.version += 1;
            r.decided_by = None;
            c.routed.apply_to(&mut r);
            changes.push(Change {
                new: false,
                request: r,
                action: "requested",
                actor: Actor::user_flow(),
                detail: json!({"reRequest": true}),
                event: Some("request.created"),
            });
            Plan {
                changes,
                block: Some(MessageKind::Requested),
            }
        }
        state => Plan {
            changes,
            block: check_status_block(&state, policy),
        },
    }
}

/// A [`Change`] with every parameter encoded, so that sending it cannot fail on the client.
struct Encoded<'a> {
    change: &'a Change,
    values: RowValues,
    actor: Value,
    body: Option<Value>,
}

impl<'a> Encoded<'a> {
    fn of(change: &'a Change) -> Result<Encoded<'a>, StoreError> {
        Ok(Encoded {
            change,
            values: RowValues::of(&change.request)?,
            actor: to_jsonb(&change.actor)?,
            body: change
                .event
                .map(|_| to_jsonb(&change.request))
                .transpose()?,
        })
    }
}

/// The statements of the transaction, prepared once per pooled connection (deadpool's
/// statement cache: after the first call on a connection, getting them sends nothing).
struct Statements {
    seq_lock: Statement,
    lock: Statement,
    read: Statement,
    insert: Statement,
    upsert: Statement,
    history: Statement,
    event: Statement,
}

impl Statements {
    async fn prepare(
        c: &deadpool_postgres::ClientWrapper,
    ) -> Result<Statements, tokio_postgres::Error> {
        let (seq_lock, lock, read, insert, upsert, history, event) = futures::try_join!(
            c.prepare_cached(SEQ_LOCK_SHARED_SQL),
            c.prepare_cached(LOCK_EMAIL_SQL),
            c.prepare_cached(&REQUEST_AND_DENIAL_SQL),
            c.prepare_cached(&INSERT_SQL),
            c.prepare_cached(UPSERT_SQL),
            c.prepare_cached(HISTORY_SQL),
            c.prepare_cached(EVENT_SQL),
        )?;
        Ok(Statements {
            seq_lock,
            lock,
            read,
            insert,
            upsert,
            history,
            event,
        })
    }
}

/// A pooled connection that may be inside a transaction: dropped while `open`, it is taken out
/// of the pool (and closed) instead of returned (module docs).
struct Conn {
    object: Option<Object>,
    open: AtomicBool,
}

impl Conn {
    fn wrapper(&self) -> Result<&deadpool_postgres::ClientWrapper, StoreError> {
        self.object
            .as_deref()
            .ok_or_else(|| StoreError::Backend("the database connection is gone".into()))
    }

    /// Ends the open transaction with `sql` (`COMMIT` or `ROLLBACK`), one round trip.
    async fn end(&self, client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
        let ended = client.batch_execute(sql).await;
        self.settle(&ended);
        ended
    }

    /// After `COMMIT`/`ROLLBACK` answered `result`: the transaction is over unless the
    /// connection itself failed (then the connection is discarded on drop).
    fn settle(&self, result: &Result<(), tokio_postgres::Error>) {
        if result
            .as_ref()
            .map_or_else(|e| e.code().is_some(), |()| true)
        {
            self.open.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.open.load(Ordering::Relaxed)
            && let Some(object) = self.object.take()
        {
            drop(Object::take(object));
        }
    }
}

/// Sends one change: the row, its history entry and its event, pipelined (each message is
/// queued on the first poll, before anything is awaited). Returns the event's `seq`.
async fn send_change(
    client: &Client,
    st: &Statements,
    e: &Encoded<'_>,
    search: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let r = &e.change.request;
    let search = &search;
    let upsert_params = e.values.params(r, search);
    let row = if e.change.new { &st.insert } else { &st.upsert };
    let history_params: [&(dyn ToSql + Sync); 6] = [
        &r.id,
        &r.updated_at,
        &e.change.action,
        &e.actor,
        &e.values.version,
        &e.change.detail,
    ];
    match (&e.change.event, &e.body) {
        (Some(kind), Some(body)) => {
            let event_params: [&(dyn ToSql + Sync); 4] = [kind, &r.id, &r.updated_at, body];
            let (upserted, added, stored) = futures::join!(
                client.execute(row, &upsert_params),
                client.execute(&st.history, &history_params),
                client.query_one(&st.event, &event_params)
            );
            upserted?;
            added?;
            Ok(Some(stored?.try_get(0)?))
        }
        _ => {
            let (upserted, added) = futures::join!(
                client.execute(row, &upsert_params),
                client.execute(&st.history, &history_params)
            );
            upserted?;
            added?;
            Ok(None)
        }
    }
}

/// One run of the transaction (module docs): round trip 1 reads under the locks, round trip 2
/// writes and commits. `Ok` only after a successful `COMMIT` (or, when nothing is written, a
/// read-only one).
async fn run_once(
    conn: &Conn,
    st: &Statements,
    c: &Call<'_>,
) -> TxResult<(RequestApprovalOutcome, bool, bool)> {
    let client: &Client = conn.wrapper()?;
    let digest = c.tombstone.as_deref().unwrap_or_default();
    let lock_params: [&(dyn ToSql + Sync); 2] = [&EMAIL_NS, &c.key.email];
    let read_params: [&(dyn ToSql + Sync); 4] = [
        &c.key.email,
        &c.key.issuer,
        &c.key.issuer_assigned_id,
        &digest,
    ];
    conn.open.store(true, Ordering::Relaxed);
    let (begun, seq_locked, locked, row) = futures::join!(
        client.batch_execute("BEGIN"),
        client.execute(&st.seq_lock, &[&LOCK_NS, &SEQ_LOCK]),
        client.execute(&st.lock, &lock_params),
        client.query_one(&st.read, &read_params)
    );
    // The first failure is reported as itself: the ones after it are "transaction aborted".
    let read = begun
        .and(seq_locked)
        .and(locked)
        .and(row)
        .map_err(TxError::from)
        .and_then(|row| decode_request_and_denial(&row));
    let (found, person_denied) = match read {
        Ok(read) => read,
        Err(e) => {
            let _ = conn.end(client, "ROLLBACK").await;
            return Err(e);
        }
    };
    let plan = plan(found, person_denied, c);
    // A change of an existing request's status or creation (an expiry, a re-request) or a new
    // denied request changes check-status answers: the caches' triggers fire, and the call
    // waits at their barrier after the commit (`check_cache.rs`). A new pending or approved
    // request, or another attempt, changes none.
    let invalidates = plan.changes.iter().any(|ch| {
        (!ch.new && ch.action != "attempted")
            || matches!(ch.request.state, RequestState::Denied { .. })
    });
    let encoded = match plan
        .changes
        .iter()
        .map(Encoded::of)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(encoded) => encoded,
        Err(e) => {
            let _ = conn.end(client, "ROLLBACK").await;
            return Err(e.into());
        }
    };
    let search = c.search.as_str();
    let (written, committed) = match encoded.as_slice() {
        [] => {
            conn.end(client, "COMMIT").await?;
            let outcome = RequestApprovalOutcome {
                block: plan.block,
                event: None,
            };
            return Ok((outcome, false, false));
        }
        [one] => {
            let (w, committed) = futures::join!(
                send_change(client, st, one, search),
                client.batch_execute("COMMIT")
            );
            (vec![w], committed)
        }
        [first, second] => {
            let (w1, w2, committed) = futures::join!(
                send_change(client, st, first, search),
                send_change(client, st, second, search),
                client.batch_execute("COMMIT")
            );
            (vec![w1, w2], committed)
        }
        more => {
            // `plan` writes at most two changes.
            let _ = conn.end(client, "ROLLBACK").await;
            return Err(StoreError::Corrupt(format!(
                "request-approval planned {} changes",
                more.len()
            ))
            .into());
        }
    };
    conn.settle(&committed);
    let mut event = None;
    for (result, e) in written.into_iter().zip(&encoded) {
        if let (Some(seq), Some(kind)) = (result?, e.change.event) {
            event = Some(Event::with_request(
                u64::try_from(seq).unwrap_or_default(),
                kind,
                e.change.request.clone(),
            ));
        }
    }
    committed?;
    let outcome = RequestApprovalOutcome {
        block: plan.block,
        event,
    };
    Ok((outcome, true, invalidates))
}

/// Runs request-approval for `c` on `store` (module docs): two round trips per attempt, run
/// again after a serialization failure, a deadlock or a unique violation; wakes the notifier
/// after a commit that wrote something, and waits at the check-status caches' barrier after
/// one that changed an answer (`check_cache.rs`).
///
/// Errors: [`StoreError::Unavailable`] when no connection is free or the database cannot be
/// reached; [`StoreError`] on other database failures.
pub(super) async fn request_approval(
    store: &PgStore,
    c: &Call<'_>,
) -> Result<RequestApprovalOutcome, StoreError> {
    let conn = Conn {
        object: Some(store.conn().await?),
        open: AtomicBool::new(false),
    };
    let st = Statements::prepare(conn.wrapper()?).await.map_err(db_err)?;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match run_once(&conn, &st, c).await {
            Ok((outcome, wrote, invalidates)) => {
                if wrote {
                    store.wake_listeners();
                }
                if invalidates {
                    super::check_cache::barrier(&store.cache, conn.wrapper()?).await;
                }
                return Ok(outcome);
            }
            Err(TxError::Db(e)) if retryable(&e) && attempt < MAX_ATTEMPTS => {}
            Err(TxError::Db(e)) => return Err(db_err(e)),
            Err(TxError::Store(e)) => return Err(e),
        }
    }
}
