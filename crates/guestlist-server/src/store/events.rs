//! Stored events (`GET /api/events`, `docs/CONTRACTS.md` §4: `seq`, oldest first),
//! the reminders' bookkeeping ([`crate::reminders`]) and the per-status counts of the table.

use std::collections::HashMap;

use guestlist_core::model::{ApprovalRequest, Event};
use rusqlite::params;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{COLUMNS, row_to_request};
use super::{SqliteStore, StoreError, from_json};

/// The highest event sequence number ever given out: the larger of the highest stored `seq` and
/// `sqlite_sequence`'s record for `events` (which survives the deletion of every event; it is
/// absent until the first insert).
const LATEST_EVENT_SEQ_SQL: &str = "SELECT MAX(COALESCE((SELECT MAX(seq) FROM events), 0),
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))";

impl SqliteStore {
    /// Stored events with `seq > after`, oldest first, at most `limit`.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, kind, request_json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![
                    i64::try_from(after).unwrap_or(i64::MAX),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, kind, request) = row?;
                let seq = u64::try_from(seq).unwrap_or_default();
                if kind == guestlist_core::model::EVENT_REQUEST_ERASED {
                    let id: super::privacy::ErasedEventBody = from_json(&request)?;
                    out.push(Event::erased(seq, id.id));
                    continue;
                }
                out.push(Event::with_request(seq, kind, from_json(&request)?));
            }
            Ok(out)
        })
    }

    /// When each request was last reminded about ([`crate::reminders`]), from the `reminded`
    /// table: request id → time (whole seconds, UTC).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn reminded(&self) -> Result<HashMap<Uuid, OffsetDateTime>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT request_id, at_unix FROM reminded")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = HashMap::new();
            for row in rows {
                let (id, at) = row?;
                let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let at = OffsetDateTime::from_unix_timestamp(at)
                    .map_err(|e| StoreError::Corrupt(format!("reminded at {at}: {e}")))?;
                out.insert(id, at);
            }
            Ok(out)
        })
    }

    /// Records that `ids` were reminded about at `now` (kept across restarts), and forgets the
    /// records of requests that are no longer pending. One committed transaction.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn record_reminded(&self, ids: &[Uuid], now: OffsetDateTime) -> Result<(), StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let at = now.unix_timestamp();
        self.write(move |tx| {
            let mut put = tx.prepare_cached(
                "INSERT INTO reminded (request_id, at_unix) VALUES (?1, ?2)
                 ON CONFLICT(request_id) DO UPDATE SET at_unix = excluded.at_unix",
            )?;
            for id in &ids {
                put.execute(params![id, at])?;
            }
            tx.prepare_cached(
                "DELETE FROM reminded WHERE NOT EXISTS (SELECT 1 FROM requests r
                   WHERE r.id = reminded.request_id AND r.status = 'pending')",
            )?
            .execute([])?;
            Ok(())
        })
    }

    /// The sequence number of the latest event ever stored (0 when there was none): where a new
    /// event stream starts, and the bound a `Last-Event-ID` is checked against
    /// ([`crate::live`]). Events deleted since (compaction, erasure) still count: the number
    /// is `AUTOINCREMENT`'s high-water mark in `sqlite_sequence`, as PostgreSQL's is the
    /// `event_seq` sequence's, so a client that saw an event later compacted away is never
    /// told it is ahead of the store.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn latest_event_seq(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let seq: i64 = c
                .prepare_cached(LATEST_EVENT_SEQ_SQL)?
                .query_row([], |r| r.get(0))?;
            Ok(u64::try_from(seq).unwrap_or_default())
        })
    }

    /// Reminders ([`crate::reminders`]): how many pending requests were created at or before
    /// `created_by` (Unix seconds; `created_at` compared with its fraction of a second, as
    /// PostgreSQL compares its `timestamptz`) and were not reminded about after `reminded_by`
    /// (Unix seconds), and the `limit` oldest of them. One `COUNT` and one `LIMIT` query: memory is bounded by
    /// `limit` whatever the number of pending requests.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn pending_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        limit: usize,
    ) -> Result<(u64, Vec<ApprovalRequest>), StoreError> {
        const DUE: &str = "FROM requests r WHERE r.status = 'pending' AND unixepoch(r.created_at, 'subsec') <= ?1
               AND NOT EXISTS (SELECT 1 FROM reminded m WHERE m.request_id = r.id AND m.at_unix > ?2)";
        self.read(|c| {
            let count: i64 = c
                .prepare_cached(&format!("SELECT COUNT(*) {DUE}"))?
                .query_row(params![created_by, reminded_by], |r| r.get(0))?;
            let cols = COLUMNS
                .split(", ")
                .map(|col| format!("r.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {cols} {DUE} ORDER BY r.created_at, r.id LIMIT ?3"
            ))?;
            let rows = stmt.query_map(
                params![
                    created_by,
                    reminded_by,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                row_to_request,
            )?;
            let mut oldest = Vec::new();
            for row in rows {
                oldest.push(row??);
            }
            Ok((u64::try_from(count).unwrap_or_default(), oldest))
        })
    }

    /// Records every request [`SqliteStore::pending_due`] counts for the same bounds as reminded at
    /// `now` (Unix seconds), and forgets the records of requests no longer pending. One
    /// set-based statement each, in one committed transaction.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn record_reminded_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO reminded (request_id, at_unix)
                 SELECT r.id, ?3 FROM requests r WHERE r.status = 'pending' AND unixepoch(r.created_at, 'subsec') <= ?1
                   AND NOT EXISTS (SELECT 1 FROM reminded m WHERE m.request_id = r.id AND m.at_unix > ?2)
                 ON CONFLICT(request_id) DO UPDATE SET at_unix = excluded.at_unix",
            )?
            .execute(params![created_by, reminded_by, now])?;
            tx.prepare_cached(
                "DELETE FROM reminded WHERE NOT EXISTS (SELECT 1 FROM requests r
                   WHERE r.id = reminded.request_id AND r.status = 'pending')",
            )?
            .execute([])?;
            Ok(())
        })
    }

    /// Counts of requests per status, read from the table (one `GROUP BY` scan); tests compare
    /// it with [`SqliteStore::status_counts`].
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT status, COUNT(*) FROM requests GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (s, n) = row?;
                out.push((s, u64::try_from(n).unwrap_or_default()));
            }
            Ok(out)
        })
    }
}
