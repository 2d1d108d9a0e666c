//! Row mapping of the PostgreSQL tables, and the inserts every write goes through
//! ([`upsert`], [`add_history`], [`add_event`]) — the counterparts of the SQLite store's
//! `rows.rs`.

use guestlist_core::model::{Actor, ApprovalRequest, Event, IdentityKey};
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::{GenericClient, Row, Transaction};
use uuid::Uuid;

use super::{TxResult, json, unjson};
use crate::store::StoreError;

/// The columns [`row_to_request`] reads, in order.
pub(super) const COLUMNS: &str = "id, email, issuer, issuer_assigned_id, state, version, created_at, updated_at, decided_by, attempts, claims, route, approvals_required, approvals";

/// How many columns [`COLUMNS`] lists: the index of a column selected after them.
pub(super) const N_COLUMNS: usize = 14;

/// [`COLUMNS`] qualified by the alias `r`.
pub(super) const R_COLUMNS: &str = "r.id, r.email, r.issuer, r.issuer_assigned_id, r.state, r.version, r.created_at, r.updated_at, r.decided_by, r.attempts, r.claims, r.route, r.approvals_required, r.approvals";

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// Decodes a row of [`COLUMNS`].
///
/// Errors: [`StoreError::Corrupt`] for a value that does not decode.
pub(super) fn row_to_request(row: &Row) -> Result<ApprovalRequest, StoreError> {
    let decided_by: Option<Value> = get(row, 8)?;
    Ok(ApprovalRequest {
        id: get(row, 0)?,
        key: IdentityKey {
            email: get(row, 1)?,
            issuer: get(row, 2)?,
            issuer_assigned_id: get(row, 3)?,
        },
        state: unjson(get(row, 4)?)?,
        version: u64::try_from(get::<i64>(row, 5)?).unwrap_or_default(),
        created_at: get(row, 6)?,
        updated_at: get(row, 7)?,
        decided_by: decided_by.map(unjson).transpose()?,
        attempts: u32::try_from(get::<i64>(row, 9)?).unwrap_or_default(),
        claims: unjson(get(row, 10)?)?,
        // Served from the policy, never stored (routes::requests::served).
        grants: Vec::new(),
        route: get(row, 11)?,
        approvals_required: u8::try_from(get::<i16>(row, 12)?).unwrap_or(1),
        approvals: get::<Option<Value>>(row, 13)?
            .map(unjson)
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Decodes every row.
pub(super) fn rows_to_requests(rows: &[Row]) -> Result<Vec<ApprovalRequest>, StoreError> {
    rows.iter().map(row_to_request).collect()
}

/// The request `id`, locked (`FOR UPDATE`) when `lock`.
pub(super) async fn get_by_id(
    c: &impl GenericClient,
    id: Uuid,
    lock: bool,
) -> TxResult<Option<ApprovalRequest>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = c.query_opt(&sql, &[&id]).await?;
    Ok(row.as_ref().map(row_to_request).transpose()?)
}

/// In one statement: the request stored under `key`, locked `FOR UPDATE` (or `None`), and
/// whether the person is denied — a request of the same canonical e-mail is denied, or
/// `digest` (the e-mail's tombstone, `None` without a key) is stored.
pub(super) async fn request_and_denial(
    c: &impl GenericClient,
    key: &IdentityKey,
    digest: Option<&[u8]>,
) -> TxResult<(Option<ApprovalRequest>, bool)> {
    let sql = format!(
        "WITH r AS (SELECT {COLUMNS} FROM requests
                    WHERE email = $1 AND issuer = $2 AND issuer_assigned_id = $3 FOR UPDATE)
         SELECT r.*,
           EXISTS (SELECT 1 FROM requests d WHERE d.email = $1 AND d.status = 'denied')
           OR EXISTS (SELECT 1 FROM tombstones t WHERE t.digest = $4)
         FROM (SELECT 1) AS one LEFT JOIN r ON true"
    );
    let digest = digest.unwrap_or_default();
    let row = c
        .query_one(
            &sql,
            &[&key.email, &key.issuer, &key.issuer_assigned_id, &digest],
        )
        .await?;
    let denied: bool = row.try_get(N_COLUMNS)?;
    let id: Option<Uuid> = row.try_get(0)?;
    let request = match id {
        Some(_) => Some(row_to_request(&row)?),
        None => None,
    };
    Ok((request, denied))
}

/// Inserts or rewrites a request row; either way it takes the next change sequence number
/// (in the caller's write transaction, which holds the shared sequence lock).
pub(super) async fn upsert(
    tx: &Transaction<'_>,
    r: &ApprovalRequest,
    search: &str,
) -> TxResult<()> {
    let version = i64::try_from(r.version).unwrap_or(i64::MAX);
    let attempts = i64::from(r.attempts);
    let decided_by = r.decided_by.as_ref().map(json).transpose()?;
    let approvals = (!r.approvals.is_empty())
        .then(|| json(&r.approvals))
        .transpose()?;
    tx.execute(
        "INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state, version, created_at, updated_at, decided_by, attempts, claims, search, route, approvals_required, approvals, change_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, nextval('change_seq'))
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, state = excluded.state,
           version = excluded.version, updated_at = excluded.updated_at, created_at = excluded.created_at,
           decided_by = excluded.decided_by, attempts = excluded.attempts,
           claims = excluded.claims, search = excluded.search, route = excluded.route,
           approvals_required = excluded.approvals_required, approvals = excluded.approvals,
           change_seq = excluded.change_seq",
        &[
            &r.id,
            &r.key.email,
            &r.key.issuer,
            &r.key.issuer_assigned_id,
            &r.state.status().as_str(),
            &json(&r.state)?,
            &version,
            &r.created_at,
            &r.updated_at,
            &decided_by,
            &attempts,
            &json(&r.claims)?,
            &search,
            &r.route,
            &i16::from(r.approvals_required),
            &approvals,
        ],
    )
    .await?;
    Ok(())
}

/// Appends a history entry of `r` (at its `updated_at` and version).
pub(super) async fn add_history(
    tx: &Transaction<'_>,
    r: &ApprovalRequest,
    action: &str,
    actor: &Actor,
    detail: Value,
) -> TxResult<()> {
    let version = i64::try_from(r.version).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO history (request_id, at, action, actor, version, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&r.id, &r.updated_at, &action, &json(actor)?, &version, &detail],
    )
    .await?;
    Ok(())
}

/// Stores an event of `kind` carrying `r` (the listeners are notified after the commit:
/// module docs of [`super`], "Notifications after commit").
pub(super) async fn add_event(
    tx: &Transaction<'_>,
    kind: &str,
    r: &ApprovalRequest,
) -> TxResult<Event> {
    let seq = insert_event(tx, kind, r.id, r.updated_at, json(r)?).await?;
    Ok(Event::with_request(seq, kind, r.clone()))
}

/// Stores an event row; returns its `seq`. No `pg_notify` here: a notifying transaction
/// serialises its commit with every other one (module docs of [`super`], "Notifications after
/// commit").
pub(super) async fn insert_event(
    tx: &Transaction<'_>,
    kind: &str,
    request_id: Uuid,
    at: OffsetDateTime,
    body: Value,
) -> TxResult<u64> {
    let row = tx
        .query_one(
            "INSERT INTO events (seq, kind, request_id, at, body)
             VALUES (nextval('event_seq'), $1, $2, $3, $4) RETURNING seq",
            &[&kind, &request_id, &at, &body],
        )
        .await?;
    let seq: i64 = row.try_get(0)?;
    Ok(u64::try_from(seq).unwrap_or_default())
}
