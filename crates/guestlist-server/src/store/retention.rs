//! The store's side of the retention job ([`crate::retention`], issue 12 "Retention"): one
//! bounded batch per call, each its own write (so a run never holds the writer for long, and its
//! memory is bounded by the batch size whatever the size of the database).
//!
//! Owns: the selection of what is due. Must not know HTTP or the clock.

use rusqlite::params;
use time::OffsetDateTime;

use super::privacy::{Erased, VICTIM_COLUMNS, erase_selected};
use super::{SqliteStore, StoreError, parse_ts, ts};

/// What one retention batch is to erase: requests whose data has been kept long enough.
#[derive(Debug, Clone, Copy)]
pub struct RetentionCutoffs {
    /// Approved, denied and expired requests last changed (decided, expired) before this.
    pub decided_before: OffsetDateTime,
    /// Pending requests created before this (`None`: pending requests are kept).
    pub pending_before: Option<OffsetDateTime>,
}

impl SqliteStore {
    /// Erases (privacy module docs) at most `limit` requests past `cut`, oldest change first, in
    /// one write; denied ones leave a tombstone. Returns what was erased (fewer than `limit`
    /// requests: nothing more is due).
    ///
    /// Times are compared as stored (RFC 3339 UTC text), which orders them to the second.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn retention_batch(
        &self,
        cut: RetentionCutoffs,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        let tombstones = self.tombstones.clone();
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let decided = ts(cut.decided_before);
        let pending = cut.pending_before.map(ts);
        self.write(move |tx| {
            let mut erased = erase_selected(
                tx,
                &tombstones,
                &format!(
                    "SELECT {VICTIM_COLUMNS} FROM requests
                     WHERE status IN ('approved', 'denied', 'expired') AND updated_at < ?1
                     ORDER BY updated_at LIMIT ?2"
                ),
                params![decided, limit],
                now,
            )?;
            let left = limit - i64::try_from(erased.counts.requests).unwrap_or(limit);
            if let Some(pending) = pending
                && left > 0
            {
                let more = erase_selected(
                    tx,
                    &tombstones,
                    &format!(
                        "SELECT {VICTIM_COLUMNS} FROM requests
                         WHERE status = 'pending' AND created_at < ?1
                         ORDER BY created_at LIMIT ?2"
                    ),
                    params![pending, left],
                    now,
                )?;
                erased.counts.add(more.counts);
                erased.events.extend(more.events);
            }
            Ok(erased)
        })
    }

    /// Deletes at most `limit` of the oldest stored events that happened before `before` (the
    /// request's `updatedAt` in the event, or the `at` of a `request.erased` event), in one
    /// write; returns how many. Events are read oldest first and the scan stops at the first
    /// newer one, so a call reads at most `limit` rows.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn compact_events(&self, before: OffsetDateTime, limit: usize) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.write(move |tx| {
            // The time as stored (RFC 3339), compared in full here: `unixepoch` would cut it to
            // the second, so an event up to a second before `before` was kept (PostgreSQL
            // compares the `timestamptz`).
            let mut stmt = tx.prepare_cached(
                "SELECT seq, COALESCE(json_extract(request_json, '$.updatedAt'),
                                      json_extract(request_json, '$.at'))
                 FROM events ORDER BY seq LIMIT ?1",
            )?;
            let rows = stmt
                .query_map(params![limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut upto = None;
            for (seq, at) in rows {
                if at
                    .as_deref()
                    .map(parse_ts)
                    .transpose()?
                    .is_some_and(|a| a >= before)
                {
                    break;
                }
                upto = Some(seq);
            }
            let Some(upto) = upto else { return Ok(0) };
            let n = tx
                .prepare_cached("DELETE FROM events WHERE seq <= ?1")?
                .execute(params![upto])?;
            Ok(n as u64)
        })
    }

    /// Deletes at most `limit` idempotency records stored before `before`, in one write; returns
    /// how many.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn drop_idempotency(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let before = ts(before);
        self.write(move |tx| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM idempotency WHERE key IN
                       (SELECT key FROM idempotency WHERE created_at < ?1 LIMIT ?2)",
                )?
                .execute(params![before, limit])?;
            Ok(n as u64)
        })
    }
}
