//! Row mapping of the `requests`, `history` and `events` tables: the column list, decoding a
//! row into an [`ApprovalRequest`], the search text, the two cursor codecs of
//! `GET /api/requests` (`docs/CONTRACTS.md` §4), and the inserts every write goes
//! through ([`upsert`], [`add_history`], [`add_event`]).

use guestlist_core::connector::Claims;
use guestlist_core::email;
use guestlist_core::model::{Actor, ApprovalRequest, Event, Flow, IdentityKey};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use uuid::Uuid;

use super::check_index::record_index_change;
use super::{StoreError, from_json, parse_ts, to_json, ts};

pub(super) const COLUMNS: &str = "id, email, issuer, issuer_assigned_id, state_json, version, created_at, updated_at, decided_by_json, attempts, claims_json, flow, completed_at, route, approvals_required, approvals_json, escalated_at";

/// The first eleven of [`COLUMNS`] followed by the defaults of the later ones: what
/// migrations that read requests before the later columns exist (migration 3) select, so
/// [`row_to_request`] decodes them as a workforce, uncompleted, unrouted request needing one
/// approval with none recorded.
pub(super) const COLUMNS_V1: &str = "id, email, issuer, issuer_assigned_id, state_json, version, created_at, updated_at, decided_by_json, attempts, claims_json, 'workforce', NULL, NULL, 1, NULL, NULL";

/// How many columns [`COLUMNS`] names: the index of a column selected after them.
pub(super) const COLUMN_COUNT: usize = 17;

pub(super) fn row_to_request(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<ApprovalRequest, StoreError>> {
    let id: String = row.get(0)?;
    let email: String = row.get(1)?;
    let issuer: String = row.get(2)?;
    let iaid: String = row.get(3)?;
    let state: String = row.get(4)?;
    let version: i64 = row.get(5)?;
    let created: String = row.get(6)?;
    let updated: String = row.get(7)?;
    let decided_by: Option<String> = row.get(8)?;
    let attempts: i64 = row.get(9)?;
    let claims: String = row.get(10)?;
    let flow: String = row.get(11)?;
    let completed: Option<String> = row.get(12)?;
    let route: Option<String> = row.get(13)?;
    let approvals_required: i64 = row.get(14)?;
    let approvals: Option<String> = row.get(15)?;
    let escalated: Option<String> = row.get(16)?;
    Ok((|| {
        Ok(ApprovalRequest {
            id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            key: IdentityKey {
                email,
                issuer,
                issuer_assigned_id: iaid,
            },
            state: from_json(&state)?,
            version: u64::try_from(version).unwrap_or_default(),
            created_at: parse_ts(&created)?,
            updated_at: parse_ts(&updated)?,
            decided_by: decided_by.as_deref().map(from_json).transpose()?,
            attempts: u32::try_from(attempts).unwrap_or_default(),
            claims: from_json(&claims)?,
            flow: Flow::parse(&flow),
            completed_at: completed.as_deref().map(parse_ts).transpose()?,
            escalated_at: escalated.as_deref().map(parse_ts).transpose()?,
            grants: Vec::new(),
            route,
            approvals_required: u8::try_from(approvals_required).unwrap_or(1),
            approvals: approvals
                .as_deref()
                .map(from_json)
                .transpose()?
                .unwrap_or_default(),
        })
    })())
}

/// The searchable text of a request: the e-mail as sent and in canonical form, the names and
/// the company, folded by [`guestlist_core::email::fold_text`] (NFKC, full case folding), as the
/// search term is, so `ＡＤＡ`, `Ada` and `ada` find each other.
pub(super) fn search_text(claims: &Claims) -> String {
    let company = claims
        .other
        .get("companyName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let canonical = email::canonical(&claims.email).unwrap_or_default();
    email::fold_text(&format!(
        "{} {} {} {} {} {}",
        claims.email,
        canonical,
        claims.display_name.as_deref().unwrap_or_default(),
        claims.given_name.as_deref().unwrap_or_default(),
        claims.surname.as_deref().unwrap_or_default(),
        company
    ))
}

/// Cursor of `GET /api/requests`: `created_at|id` of the last item, base64url.
pub(super) fn encode_cursor(r: &ApprovalRequest) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        ts(r.created_at),
        r.id
    ))
}

pub(super) fn decode_cursor(c: &str) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (a, b) = s.split_once('|')?;
    Some((a.to_owned(), b.to_owned()))
}

/// Cursor of `GET /api/requests?since=`: `seq:<change_seq>` of the last item, base64url (no
/// `|`, so [`decode_cursor`] does not take it, nor this one a created-at cursor).
pub(super) fn encode_seq_cursor(seq: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

pub(super) fn decode_seq_cursor(c: &str) -> Option<u64> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("seq:")?
        .parse()
        .ok()
}

pub(super) fn get_by_key(
    conn: &Connection,
    key: &IdentityKey,
) -> Result<Option<ApprovalRequest>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE email = ?1 AND issuer = ?2 AND issuer_assigned_id = ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_row(
        params![key.email, key.issuer, key.issuer_assigned_id],
        row_to_request,
    )
    .optional()?
    .transpose()
}

pub(super) fn get_by_id(
    conn: &Connection,
    id: Uuid,
) -> Result<Option<ApprovalRequest>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_row(params![id.to_string()], row_to_request)
        .optional()?
        .transpose()
}

pub(super) fn denied_email(conn: &Connection, email: &str) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM requests WHERE email = ?1 AND status = 'denied' LIMIT 1")?;
    Ok(stmt.exists(params![email])?)
}

/// Inserts or rewrites a request row (on the writer thread only: it records the change for the
/// [`CheckIndex`](super::check_index::CheckIndex) in that thread's batch); either way the row takes the next change sequence
/// number (`MAX(change_seq) + 1`, one probe of the `requests_change` index). Writes are
/// serialised on the writer thread and a batch commits as a whole, so readers see the numbers
/// appear in order: a reader that saw mark `m` never misses a later change numbered below `m`.
pub(super) fn upsert(
    conn: &Connection,
    r: &ApprovalRequest,
    search: &str,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state_json, version, created_at, updated_at, decided_by_json, attempts, claims_json, search, flow, completed_at, route, approvals_required, approvals_json, escalated_at, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
           (SELECT MAX(COALESCE((SELECT MAX(change_seq) FROM requests), 0), COALESCE((SELECT MAX(change_seq) FROM erasures), 0)) + 1))
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, state_json = excluded.state_json,
           version = excluded.version, updated_at = excluded.updated_at, created_at = excluded.created_at,
           decided_by_json = excluded.decided_by_json, attempts = excluded.attempts,
           claims_json = excluded.claims_json, search = excluded.search,
           flow = excluded.flow, completed_at = excluded.completed_at,
           route = excluded.route, approvals_required = excluded.approvals_required,
           approvals_json = excluded.approvals_json,
           escalated_at = COALESCE(requests.escalated_at, excluded.escalated_at),
           change_seq = excluded.change_seq",
    )?;
    stmt.execute(params![
        r.id.to_string(),
        r.key.email,
        r.key.issuer,
        r.key.issuer_assigned_id,
        r.state.status().as_str(),
        to_json(&r.state)?,
        i64::try_from(r.version).unwrap_or(i64::MAX),
        ts(r.created_at),
        ts(r.updated_at),
        r.decided_by.as_ref().map(to_json).transpose()?,
        i64::from(r.attempts),
        to_json(&r.claims)?,
        search,
        r.flow.as_str(),
        r.completed_at.map(ts),
        r.route,
        i64::from(r.approvals_required),
        (!r.approvals.is_empty())
            .then(|| to_json(&r.approvals))
            .transpose()?,
        r.escalated_at.map(ts),
    ])?;
    // Only a row actually written is recorded; the writer thread applies it after the commit.
    record_index_change(r);
    Ok(())
}

pub(super) fn add_history(
    conn: &Connection,
    r: &ApprovalRequest,
    action: &str,
    actor: &Actor,
    detail: Value,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO history (request_id, at, action, actor_json, version, detail_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    stmt.execute(params![
        r.id.to_string(),
        ts(r.updated_at),
        action,
        to_json(actor)?,
        i64::try_from(r.version).unwrap_or(i64::MAX),
        detail.to_string(),
    ])?;
    Ok(())
}

pub(super) fn add_event(
    conn: &Connection,
    kind: &str,
    r: &ApprovalRequest,
) -> Result<Event, StoreError> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO events (kind, request_json) VALUES (?1, ?2)")?;
    stmt.execute(params![kind, to_json(r)?])?;
    Ok(Event::with_request(
        u64::try_from(conn.last_insert_rowid()).unwrap_or_default(),
        kind,
        r.clone(),
    ))
}
