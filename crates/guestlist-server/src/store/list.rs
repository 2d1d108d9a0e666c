//! The approvers' list of requests (`GET /api/requests`, `docs/CONTRACTS.md` §4) on SQLite:
//! pages in created order or, with `since`, in change order, filtered by status, search and the
//! caller's routes ([`Scope`], issue 14 §2) in SQL.

use guestlist_core::model::{RequestPage, Status};
use rusqlite::params;

use super::requests::{created_order_page, search_pattern};
use super::rows::{
    COLUMN_COUNT, COLUMNS, decode_cursor, decode_seq_cursor, encode_seq_cursor, row_to_request,
};
use super::{SqliteStore, StoreError, to_json};
use crate::duties::Scope;

/// The `WHERE` clause of a [`Scope`] in the SQLite list queries, on parameters `?6`–`?10`
/// ([`ScopeParams`]): everything; or unrouted requests (no route, or a route the policy no
/// longer has); or the caller's routes; or the requests marked escalated (`escalated_at` set) of
/// a route whose fallback role the caller holds (issue 14 §2).
const SCOPE_SQL: &str = "(?6 = 1
    OR (?7 = 1 AND (route IS NULL OR route NOT IN (SELECT value FROM json_each(?8))))
    OR route IN (SELECT value FROM json_each(?9))
    OR (escalated_at IS NOT NULL AND route IN (SELECT value FROM json_each(?10))))";

/// A [`Scope`] as the parameters of [`SCOPE_SQL`]: flags and JSON arrays.
struct ScopeParams {
    all: bool,
    unrouted: bool,
    known: String,
    routes: String,
    escalated: String,
}

impl ScopeParams {
    fn of(scope: &Scope) -> Result<ScopeParams, StoreError> {
        Ok(ScopeParams {
            all: scope.all,
            unrouted: scope.unrouted,
            known: to_json(&scope.known)?,
            routes: to_json(&scope.routes)?,
            escalated: to_json(&scope.escalated)?,
        })
    }
}

impl SqliteStore {
    /// A page of requests in stable order (`created_at`, then `id`), optionally filtered by
    /// status and a case-insensitive search over e-mail, names and company. `limit` is clamped to
    /// 1..=500. A cursor that cannot be decoded restarts at the beginning. The page's
    /// `change_seq` is the highest change sequence number stored when the page was read.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn list(
        &self,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        self.list_page(None, status, q, cursor, limit)
    }

    /// [`SqliteStore::list`], or with `since = Some(m)` the requests whose change sequence number is
    /// above `m` (created or changed after the page that returned mark `m`), of any status
    /// unless `status` filters, in change order.
    ///
    /// The page's `change_seq` is the high-water mark: without `since`, the highest number
    /// stored before the page was read (a change made while paging has a higher one, so it is
    /// listed again from this mark); with `since`, the number of the page's last item when more
    /// follow (`next_cursor` is set), else the highest number stored when the page was read, so
    /// passing it as the next `since` misses nothing. It is below `m` only when the database
    /// holds fewer changes than the client has seen (it was reset or replaced): the client must
    /// then list everything again. A `since` cursor from a page without `since` (or the reverse)
    /// restarts at the beginning.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn list_page(
        &self,
        since: Option<u64>,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        self.list_scoped(&Scope::everything(), since, status, q, cursor, limit)
    }

    /// [`SqliteStore::list_page`] of the requests in `scope` (issue 14 §2): the scope is one more
    /// `WHERE` clause ([`SCOPE_SQL`]), so paging, `since` and the high-water mark work as
    /// without it.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn list_scoped(
        &self,
        scope: &Scope,
        since: Option<u64>,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        let scope = ScopeParams::of(scope)?;
        let limit = limit.clamp(1, 500);
        let pattern = search_pattern(q);
        let fetch = i64::try_from(limit + 1).unwrap_or(501);
        let status = status.map(Status::as_str);
        self.read(|c| {
            // Read the mark first: every row the page can return is at or below it.
            let high: i64 = c
                .prepare_cached(super::privacy::HIGH_CHANGE_SEQ_SQL)?
                .query_row([], |r| r.get(0))?;
            let high_u = u64::try_from(high).unwrap_or_default();
            let mut items = Vec::with_capacity(limit + 1);
            let mut seqs = Vec::with_capacity(limit + 1);
            if let Some(since) = since {
                let after = cursor
                    .and_then(decode_seq_cursor)
                    .map_or(since, |c| c.max(since));
                let sql = format!(
                    "SELECT {COLUMNS}, change_seq FROM requests
                     WHERE change_seq > ?1 AND change_seq <= ?2
                       AND (?3 IS NULL OR status = ?3)
                       AND (?4 IS NULL OR search LIKE ?4)
                       AND {SCOPE_SQL}
                     ORDER BY change_seq LIMIT ?5"
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![
                        i64::try_from(after).unwrap_or(i64::MAX),
                        high,
                        status,
                        pattern,
                        fetch,
                        scope.all,
                        scope.unrouted,
                        scope.known,
                        scope.routes,
                        scope.escalated,
                    ],
                    |row| Ok((row_to_request(row)?, row.get::<_, i64>(COLUMN_COUNT)?)),
                )?;
                for row in rows {
                    let (r, seq) = row?;
                    items.push(r?);
                    seqs.push(u64::try_from(seq).unwrap_or_default());
                }
                if items.len() > limit {
                    items.truncate(limit);
                    let last = seqs.get(limit - 1).copied().unwrap_or(after);
                    return Ok(RequestPage {
                        items,
                        next_cursor: Some(encode_seq_cursor(last)),
                        change_seq: Some(last),
                        erased: SqliteStore::erased_between(c, after, last)?,
                    });
                }
                return Ok(RequestPage {
                    items,
                    next_cursor: None,
                    change_seq: Some(high_u),
                    erased: SqliteStore::erased_between(c, after, high_u)?,
                });
            }
            let (after_ts, after_id) = cursor.and_then(decode_cursor).unwrap_or_default();
            let sql = format!(
                "SELECT {COLUMNS} FROM requests
                 WHERE (?1 IS NULL OR status = ?1)
                   AND (?2 IS NULL OR search LIKE ?2)
                   AND (created_at > ?3 OR (created_at = ?3 AND id > ?4))
                   AND {SCOPE_SQL}
                 ORDER BY created_at, id LIMIT ?5"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    status,
                    pattern,
                    after_ts,
                    after_id,
                    fetch,
                    scope.all,
                    scope.unrouted,
                    scope.known,
                    scope.routes,
                    scope.escalated,
                ],
                row_to_request,
            )?;
            for row in rows {
                items.push(row??);
            }
            Ok(created_order_page(items, limit, high_u))
        })
    }
}
