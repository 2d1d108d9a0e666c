//! Row mapping of the PostgreSQL tables, and the inserts every write goes through
//! ([`upsert`], [`add_history`], [`add_event`]) — the counterparts of the SQLite store's
//! `rows.rs`.

use deadpool_postgres::{GenericClient, Transaction};
use guestlist_core::model::{Actor, ApprovalRequest, Event, Flow, IdentityKey};
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{TxResult, json, unjson};
use crate::store::StoreError;

/// The columns [`row_to_request`] reads, in order.
pub(super) const COLUMNS: &str = "id, email, issuer, issuer_assigned_id, state, version, created_at, updated_at, decided_by, attempts, claims, flow, completed_at, route, approvals_required, approvals, escalated_at";

/// [`COLUMNS`] qualified by the alias `r`.
pub(super) const R_COLUMNS: &str = "r.id, r.email, r.issuer, r.issuer_assigned_id, r.state, r.version, r.created_at, r.updated_at, r.decided_by, r.attempts, r.claims, r.flow, r.completed_at, r.route, r.approvals_required, r.approvals, r.escalated_at";

/// How many columns [`COLUMNS`] names: the index of a column selected after them.
pub(super) const COLUMN_COUNT: usize = 17;

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
        flow: Flow::parse(get(row, 11)?),
        completed_at: get(row, 12)?,
        escalated_at: get(row, 16)?,
        // Served from the policy, never stored (routes::requests::served).
        grants: Vec::new(),
        route: get(row, 13)?,
        approvals_required: u8::try_from(get::<i16>(row, 14)?).unwrap_or(1),
        approvals: get::<Option<Value>>(row, 15)?
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
    let statement = c.prepare_cached(&sql).await?;
    let row = c.query_opt(&statement, &[&id]).await?;
    Ok(row.as_ref().map(row_to_request).transpose()?)
}

/// The lookup of request-approval (`store/pg/signup.rs`), run under the person's lock: the
/// request stored under the identity key `($1, $2, $3)`, locked `FOR UPDATE` (all columns
/// `NULL` when none), then whether the person is denied — a request of the same canonical
/// e-mail `$1` is denied, or the tombstone digest `$4` is stored.
pub(super) static REQUEST_AND_DENIAL_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "WITH r AS (SELECT {COLUMNS} FROM requests
                    WHERE email = $1 AND issuer = $2 AND issuer_assigned_id = $3 FOR UPDATE)
         SELECT r.*,
           EXISTS (SELECT 1 FROM requests d WHERE d.email = $1 AND d.status = 'denied')
           OR EXISTS (SELECT 1 FROM tombstones t WHERE t.digest = $4)
         FROM (SELECT 1) AS one LEFT JOIN r ON true"
        )
    });

/// Decodes the row of [`REQUEST_AND_DENIAL_SQL`].
pub(super) fn decode_request_and_denial(row: &Row) -> TxResult<(Option<ApprovalRequest>, bool)> {
    let denied: bool = row.try_get(COLUMN_COUNT)?;
    let id: Option<Uuid> = row.try_get(0)?;
    let request = match id {
        Some(_) => Some(row_to_request(row)?),
        None => None,
    };
    Ok((request, denied))
}

/// The statement of [`upsert`].
pub(super) const UPSERT_SQL: &str = "INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state, version, created_at, updated_at, decided_by, attempts, claims, search, flow, completed_at, route, approvals_required, approvals, escalated_at, change_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, nextval('change_seq'))
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, state = excluded.state,
           version = excluded.version, updated_at = excluded.updated_at, created_at = excluded.created_at,
           decided_by = excluded.decided_by, attempts = excluded.attempts,
           claims = excluded.claims, search = excluded.search, flow = excluded.flow,
           completed_at = excluded.completed_at, route = excluded.route,
           approvals_required = excluded.approvals_required, approvals = excluded.approvals,
           escalated_at = COALESCE(requests.escalated_at, excluded.escalated_at),
           change_seq = excluded.change_seq";

/// [`UPSERT_SQL`] without its `ON CONFLICT` clause: the insert of a new request (a fresh id),
/// which skips the speculative insertion (and its extra WAL record) of an upsert.
pub(super) static INSERT_SQL: std::sync::LazyLock<&'static str> = std::sync::LazyLock::new(|| {
    UPSERT_SQL
        .split_once("ON CONFLICT")
        .map_or(UPSERT_SQL, |(insert, _)| insert.trim_end())
});

/// The statement of [`add_history`].
pub(super) const HISTORY_SQL: &str = "INSERT INTO history (request_id, at, action, actor, version, detail) VALUES ($1, $2, $3, $4, $5, $6)";

/// The statement of [`insert_event`].
pub(super) const EVENT_SQL: &str = "INSERT INTO events (seq, kind, request_id, at, body)
             VALUES (nextval('event_seq'), $1, $2, $3, $4) RETURNING seq";

/// The column values of a request row as [`UPSERT_SQL`] binds them (besides the fields of the
/// request read by reference).
pub(super) struct RowValues {
    status: &'static str,
    state: Value,
    /// The row's version, also the history entry's.
    pub(super) version: i64,
    decided_by: Option<Value>,
    attempts: i64,
    claims: Value,
    flow: &'static str,
    approvals_required: i16,
    approvals: Option<Value>,
}

impl RowValues {
    /// Encodes the columns of `r`.
    ///
    /// Errors: [`StoreError::Corrupt`] when a value cannot be serialised.
    pub(super) fn of(r: &ApprovalRequest) -> Result<RowValues, StoreError> {
        Ok(RowValues {
            status: r.state.status().as_str(),
            state: json(&r.state)?,
            version: i64::try_from(r.version).unwrap_or(i64::MAX),
            decided_by: r.decided_by.as_ref().map(json).transpose()?,
            attempts: i64::from(r.attempts),
            claims: json(&r.claims)?,
            flow: r.flow.as_str(),
            approvals_required: i16::from(r.approvals_required),
            approvals: (!r.approvals.is_empty())
                .then(|| json(&r.approvals))
                .transpose()?,
        })
    }

    /// The 19 parameters of [`UPSERT_SQL`].
    pub(super) fn params<'a>(
        &'a self,
        r: &'a ApprovalRequest,
        search: &'a &'a str,
    ) -> [&'a (dyn ToSql + Sync); 19] {
        [
            &r.id,
            &r.key.email,
            &r.key.issuer,
            &r.key.issuer_assigned_id,
            &self.status,
            &self.state,
            &self.version,
            &r.created_at,
            &r.updated_at,
            &self.decided_by,
            &self.attempts,
            &self.claims,
            search,
            &self.flow,
            &r.completed_at,
            &r.route,
            &self.approvals_required,
            &self.approvals,
            &r.escalated_at,
        ]
    }
}

/// Inserts or rewrites a request row; either way it takes the next change sequence number
/// (in the caller's write transaction, which holds the shared sequence lock).
pub(super) async fn upsert(
    tx: &Transaction<'_>,
    r: &ApprovalRequest,
    search: &str,
) -> TxResult<()> {
    let statement = tx.prepare_cached(UPSERT_SQL).await?;
    let values = RowValues::of(r)?;
    tx.execute(&statement, &values.params(r, &search)).await?;
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
    let statement = tx.prepare_cached(HISTORY_SQL).await?;
    tx.execute(
        &statement,
        &[
            &r.id,
            &r.updated_at,
            &action,
            &json(actor)?,
            &version,
            &detail,
        ],
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
    let statement = tx.prepare_cached(EVENT_SQL).await?;
    let row = tx
        .query_one(&statement, &[&kind, &request_id, &at, &body])
        .await?;
    let seq: i64 = row.try_get(0)?;
    Ok(u64::try_from(seq).unwrap_or_default())
}
