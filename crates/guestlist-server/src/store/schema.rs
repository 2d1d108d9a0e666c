//! The SQLite schema: the migrations in order (rusqlite_migration; never edit a shipped one,
//! append), including migration 3's rewrite of stored keys to the canonical e-mail
//! (`docs/CONTRACTS.md` §1, "The approval behaviour"; issue 10 §6).

use std::collections::HashMap;

use guestlist_core::connector::Claims;
use guestlist_core::email;
use guestlist_core::model::{Actor, Decision, IdentityKey};
use rusqlite::params;
use rusqlite_migration::{M, Migrations};
use serde_json::Value;
use time::OffsetDateTime;

use super::audit;
use super::rows::{COLUMNS_V1, add_history, row_to_request, search_text};
use super::{StoreError, to_json, ts};

/// The schema, in order. Never edit a shipped migration: append a new one.
pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
        CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            issuer TEXT NOT NULL,
            issuer_assigned_id TEXT NOT NULL,
            status TEXT NOT NULL,
            state_json TEXT NOT NULL,
            version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            decided_by_json TEXT,
            attempts INTEGER NOT NULL,
            claims_json TEXT NOT NULL,
            search TEXT NOT NULL
        ) STRICT;
        CREATE UNIQUE INDEX requests_key ON requests(email, issuer, issuer_assigned_id);
        CREATE INDEX requests_status_order ON requests(status, created_at, id);
        CREATE INDEX requests_order ON requests(created_at, id);
        CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            actor_json TEXT NOT NULL,
            version INTEGER NOT NULL,
            detail_json TEXT NOT NULL
        ) STRICT;
        CREATE INDEX history_request ON history(request_id, id);
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            request_json TEXT NOT NULL
        ) STRICT;
        CREATE TABLE idempotency (
            key TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            response_json TEXT NOT NULL,
            created_at TEXT NOT NULL
        ) STRICT;
        "#,
        ),
        // Change sequence (incremental sync, `GET /api/requests?since=`): every insert or update
        // of a request row takes the next number; existing rows are numbered in insertion
        // order. And the persistent "already reminded" record of [`crate::reminders`].
        M::up(
            r#"
        ALTER TABLE requests ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
        UPDATE requests SET change_seq = rowid;
        CREATE INDEX requests_change ON requests(change_seq);
        CREATE TABLE reminded (
            request_id TEXT PRIMARY KEY,
            at_unix INTEGER NOT NULL
        ) STRICT;
        "#,
        ),
        // One canonical e-mail (issue 10 §6): keys and search text recomputed in Rust.
        M::up_with_hook(
            "DROP INDEX requests_key;",
            |tx: &rusqlite::Transaction| -> rusqlite_migration::HookResult {
                canonicalise_stored_keys(tx, OffsetDateTime::now_utc())
                    .map_err(|e| rusqlite_migration::HookError::Hook(e.to_string()))
            },
        ),
        // The audit of operations that are not decisions (issue 12): erasures, access exports,
        // reopened denials, retention runs. Decisions stay in `history`. See [`audit`].
        M::up(audit::MIGRATION),
        // Erasure and retention (issue 12): denial tombstones, erased ids for `since=`, and the
        // indexes they read. See [`super::privacy`].
        M::up(super::privacy::MIGRATION),
        // Durable per-job cursors over the event log (issue 14 §5): [`super::job_cursor`].
        M::up(super::job_cursor::MIGRATION),
        // The request's user flow and the completion of external sign-ups (issue 17):
        // [`super::external`].
        M::up(super::external::MIGRATION),
        // Issue 14 §2-3: the route a request was routed by when created (NULL: unrouted), the
        // approvals it needs, and the approvals recorded while it waits for more (JSON array).
        M::up(
            r#"
        ALTER TABLE requests ADD COLUMN route TEXT;
        ALTER TABLE requests ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE requests ADD COLUMN approvals_json TEXT;
        CREATE INDEX requests_route_order ON requests(route, created_at, id);
        "#,
        ),
        // Issue 14 §2: when a routed request was escalated to its route's fallback role
        // (NULL: not escalated), and the escalation job's search: [`super::escalation`].
        M::up(super::escalation::MIGRATION),
        // Every stored time in the fixed-width form of [`super::ts`], so text order is time
        // order (the SQLite counterpart of PostgreSQL's `timestamptz`).
        M::up(FIXED_WIDTH_TIMES.as_str()),
    ])
}

/// The time columns [`FIXED_WIDTH_TIMES`] rewrites, as `(table, column)`.
const TIME_COLUMNS: [(&str, &str); 9] = [
    ("requests", "created_at"),
    ("requests", "updated_at"),
    ("requests", "completed_at"),
    ("requests", "escalated_at"),
    ("history", "at"),
    ("audit_log", "at"),
    ("idempotency", "created_at"),
    ("erasures", "at"),
    ("tombstones", "created_at"),
];

/// The migration that rewrites every stored UTC time (`…Z`) written in the shortest RFC 3339
/// form (`2027-01-15T08:00:00Z`, `…:00.1Z`) to the fixed-width form of [`super::ts`]
/// (`…:00.000000000Z`, `…:00.100000000Z`): the same instant, and text order is time order.
/// Anything else (`NULL`, another offset) is left as it is.
pub(super) static FIXED_WIDTH_TIMES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    const SECOND: &str =
        "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]";
    TIME_COLUMNS
        .iter()
        .map(|(table, c)| {
            format!(
                "UPDATE {table} SET {c} = CASE
                       WHEN {c} GLOB '{SECOND}Z' THEN substr({c}, 1, 19) || '.000000000Z'
                       WHEN {c} GLOB '{SECOND}.[0-9]*Z' AND length({c}) BETWEEN 22 AND 30
                         THEN substr({c}, 1, 20)
                              || substr(substr({c}, 21, length({c}) - 21) || '000000000', 1, 9)
                              || 'Z'
                       ELSE {c} END
                     WHERE {c} IS NOT NULL;\n"
            )
        })
        .collect()
});

/// Migration 3: rewrites every stored key's e-mail in canonical form
/// ([`guestlist_core::email::canonical`] of the claims' `email`; a row whose e-mail has none
/// keeps its key, which no new call can reach since such calls are refused) and its search
/// text, then restores the unique key index. Rows whose keys become equal (the same person
/// stored twice under variants of one address and the same identity provider) are merged: the
/// one that decides check-status keeps the key — denied first, then approved, pending, expired,
/// oldest first — and the others keep their rows and history with
/// `#merged-<their id>` appended to their `issuer_assigned_id`. Finally every pending request
/// of a canonical e-mail with a denied request is denied, as a denial now does
/// ([`deny_same_person`](super::requests::deny_same_person)), by the actor `policy`/`canonical-email-migration`, with history and
/// a new change sequence number (approvers' clients see them through `since=`; no live event).
pub(super) fn canonicalise_stored_keys(
    tx: &rusqlite::Transaction,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    struct Row {
        id: String,
        key: IdentityKey,
        rank: u8,
        created_at: String,
        search: Option<String>,
    }
    let mut rows = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT id, email, issuer, issuer_assigned_id, status, created_at, claims_json FROM requests ORDER BY created_at, id",
        )?;
        let mut q = stmt.query([])?;
        while let Some(row) = q.next()? {
            let stored_email: String = row.get(1)?;
            let status: String = row.get(4)?;
            let claims_json: String = row.get(6)?;
            let claims = serde_json::from_str::<Value>(&claims_json)
                .ok()
                .and_then(|v| Claims::from_json(v).ok());
            let raw = claims
                .as_ref()
                .map_or(stored_email.as_str(), |c| c.email.as_str());
            let email = email::canonical(raw).unwrap_or(stored_email.clone());
            rows.push(Row {
                id: row.get(0)?,
                key: IdentityKey {
                    email,
                    issuer: row.get(2)?,
                    issuer_assigned_id: row.get(3)?,
                },
                rank: match status.as_str() {
                    "denied" => 0,
                    "approved" => 1,
                    "pending" => 2,
                    _ => 3,
                },
                created_at: row.get(5)?,
                search: claims.as_ref().map(search_text),
            });
        }
    }
    // The winner of each key: lowest rank, then oldest (rows are in created order).
    let mut winner: HashMap<&IdentityKey, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let w = winner.entry(&r.key).or_insert(i);
        if r.rank < rows[*w].rank || (r.rank == rows[*w].rank && r.created_at < rows[*w].created_at)
        {
            *w = i;
        }
    }
    let winners: std::collections::HashSet<usize> = winner.into_values().collect();
    {
        let mut update = tx.prepare(
            "UPDATE requests SET email = ?1, issuer_assigned_id = ?2, search = COALESCE(?3, search) WHERE id = ?4",
        )?;
        for (i, r) in rows.iter().enumerate() {
            let iaid = if winners.contains(&i) {
                r.key.issuer_assigned_id.clone()
            } else {
                format!("{}#merged-{}", r.key.issuer_assigned_id, r.id)
            };
            update.execute(params![r.key.email, iaid, r.search, r.id])?;
        }
    }
    tx.execute_batch(
        "CREATE UNIQUE INDEX requests_key ON requests(email, issuer, issuer_assigned_id);",
    )?;
    // Pending requests of a denied person are denied, as a denial now does.
    // The columns as they were at this migration, with the later ones' defaults (COLUMNS_V1).
    let sql = format!(
        "SELECT {COLUMNS_V1} FROM requests WHERE status = 'pending' AND email IN (SELECT email FROM requests WHERE status = 'denied') ORDER BY created_at, id"
    );
    let pending = tx
        .prepare(&sql)?
        .query_map([], row_to_request)?
        .collect::<Result<Vec<_>, _>>()?;
    let actor = Actor::policy("canonical-email-migration");
    for r in pending {
        let mut r = r?;
        let deny = Decision::Deny {
            reason: "denied: the same e-mail address was denied (canonical e-mail migration)"
                .into(),
        };
        if r.apply(&deny, actor.clone(), now).is_err() {
            continue;
        }
        let search = r
            .typed_claims()
            .map(|c| search_text(&c))
            .unwrap_or_default();
        tx.execute(
            "UPDATE requests SET status = 'denied', state_json = ?1, version = ?2, updated_at = ?3, decided_by_json = ?4, search = ?5,
               change_seq = (SELECT COALESCE(MAX(change_seq), 0) + 1 FROM requests) WHERE id = ?6",
            params![
                to_json(&r.state)?,
                i64::try_from(r.version).unwrap_or(i64::MAX),
                ts(r.updated_at),
                to_json(&actor)?,
                search,
                r.id.to_string()
            ],
        )?;
        add_history(
            tx,
            &r,
            "denied",
            &actor,
            serde_json::to_value(&deny).unwrap_or_default(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Times in the shortest RFC 3339 form become fixed-width, in time order; `NULL` and other
    /// offsets stay as they are; a second run changes nothing.
    #[test]
    fn stored_times_become_fixed_width_in_time_order() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        for (id, t) in [
            ("a", "2027-01-15T08:00:00.1Z"),
            ("b", "2027-01-15T08:00:00Z"),
            ("c", "2027-01-15T08:00:00.15Z"),
            ("d", "2027-01-15T08:00:00.123456789Z"),
        ] {
            conn.execute(
                "INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state_json,
                   version, created_at, updated_at, attempts, claims_json, search)
                 VALUES (?1, ?1, 'i', ?1, 'pending', '\"pending\"', 1, ?2, ?2, 1, '{}', '')",
                params![id, t],
            )
            .unwrap();
        }
        let read = |conn: &rusqlite::Connection| -> Vec<(String, String, Option<String>)> {
            conn.prepare("SELECT id, created_at, completed_at FROM requests ORDER BY created_at")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before: Vec<String> = read(&conn).into_iter().map(|r| r.0).collect();
        assert_eq!(
            before,
            ["d", "c", "a", "b"],
            "text order was not time order"
        );
        conn.execute(
            "INSERT INTO history (request_id, at, action, actor_json, version, detail_json)
             VALUES ('a', '2027-01-15T10:00:00+02:00', 'x', '{}', 1, '{}')",
            [],
        )
        .unwrap();
        for _ in 0..2 {
            conn.execute_batch(&FIXED_WIDTH_TIMES).unwrap();
        }
        let after = read(&conn);
        let expected = [
            ("b", "2027-01-15T08:00:00.000000000Z"),
            ("a", "2027-01-15T08:00:00.100000000Z"),
            ("d", "2027-01-15T08:00:00.123456789Z"),
            ("c", "2027-01-15T08:00:00.150000000Z"),
        ];
        assert_eq!(after.len(), expected.len());
        for ((id, at, completed), (want_id, want_at)) in after.iter().zip(expected) {
            assert_eq!((id.as_str(), at.as_str()), (want_id, want_at));
            assert_eq!(*completed, None);
            assert_eq!(
                super::super::parse_ts(at).unwrap(),
                super::super::parse_ts(&at.replace(".000000000", "")).unwrap()
            );
        }
        let other: String = conn
            .query_row("SELECT at FROM history", [], |r| r.get(0))
            .unwrap();
        assert_eq!(other, "2027-01-15T10:00:00+02:00");
        // What the store writes now is already in that form.
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_100_000_000).unwrap();
        assert_eq!(ts(t), "2027-01-15T08:00:00.100000000Z");
        assert_eq!(super::super::parse_ts(&ts(t)).unwrap(), t);
    }
}
