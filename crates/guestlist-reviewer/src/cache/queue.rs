//! The cached queue: every pending request in full (table `requests`), written by sync and
//! live updates, read by the queue query (filters, sort, facet counts, same-person groups).

use guestlist_core::connector::email_domain;
use guestlist_core::model::{ApprovalRequest, Flow};
use rusqlite::{OptionalExtension, params, params_from_iter, types::Value as SqlValue};
use serde_json::Value;
use time::OffsetDateTime;

use super::{Cache, rfc3339};
use crate::error::ReviewerError;
use crate::types::{Count, OutboxState, QueueItem, QueueQuery, QueueSort, QueueView};

/// The key requests of the same person are grouped by (sign-ups through several identity
/// providers, repeated attempts): the canonical e-mail of [`guestlist_core::email::canonical`]
/// (NFKC, case folding, UTS-46 domain), the server's own rule for "the same address". An
/// address it refuses (the server stores none) falls back to trimmed and lower-cased.
pub fn group_key(email: &str) -> String {
    guestlist_core::email::canonical(email).unwrap_or_else(|_| email.trim().to_lowercase())
}

/// Display name of a request: `displayName`, else given name + surname, else the e-mail.
pub fn display_name(r: &ApprovalRequest) -> String {
    let s = |k: &str| r.claims.get(k).and_then(Value::as_str).map(str::trim);
    if let Some(n) = s("displayName").filter(|n| !n.is_empty()) {
        return n.to_owned();
    }
    let joined = [s("givenName"), s("surname").or(s("lastName"))]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if joined.trim().is_empty() {
        r.key.email.clone()
    } else {
        joined
    }
}

/// The company of a request: `companyName`, else an `extension_*` claim whose short name
/// contains "company" (case-insensitive).
pub fn company(r: &ApprovalRequest) -> Option<String> {
    if let Some(c) = r.claims.get("companyName").and_then(Value::as_str) {
        return Some(c.to_owned());
    }
    r.claims
        .iter()
        .filter(|(k, _)| k.starts_with("extension_"))
        .find(|(k, _)| {
            crate::detail::extension_short_name(k)
                .to_ascii_lowercase()
                .contains("company")
        })
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Cache {
    /// Stores pending requests: inserts new ones, rewrites those whose version changed, and
    /// (when `complete`) deletes every cached request not in `requests`. Returns
    /// `(added, updated, removed)`. One transaction.
    ///
    /// Errors: `storage.error`.
    pub fn store_pending(
        &self,
        requests: &[ApprovalRequest],
        complete: bool,
    ) -> Result<(u64, u64, u64), ReviewerError> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let (mut added, mut updated, mut removed) = (0, 0, 0);
        {
            let mut get = tx.prepare_cached("SELECT version, json FROM requests WHERE id = ?1")?;
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO requests
                 (id, version, created_unix, created_at, display_name, email, email_domain, company, provider, search, attempts, json, group_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            // A denial this app reported, of a request pending again at a later version: it was
            // reopened (`crate::reopen`, here or by another admin). The old decision must
            // neither show in the queue nor block a new one (enqueueing keeps a reported row).
            let mut reopened = tx.prepare_cached(
                "DELETE FROM outbox WHERE request_id = ?1 AND kind = 'deny' AND state = 'reported'
                 AND expected_version < ?2",
            )?;
            for r in requests {
                let id = r.id.to_string();
                let old: Option<(i64, String)> = get
                    .query_row([&id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                let version = i64::try_from(r.version).unwrap_or(i64::MAX);
                reopened.execute(params![id, version])?;
                // The same version with other grants (the server computes them from its
                // policy when it serves the request, issue 14 §1) is rewritten too, and so is
                // the same version newly escalated (escalation keeps the version: it changes
                // who may decide, not what is decided).
                let unchanged = |json: &str| {
                    let old = serde_json::from_str::<Value>(json).unwrap_or(Value::Null);
                    let field = |k: &str| old.get(k).cloned().unwrap_or(Value::Null);
                    let grants = match field("grants") {
                        Value::Null => Value::Array(Vec::new()),
                        g => g,
                    };
                    grants == serde_json::to_value(&r.grants).unwrap_or(Value::Null)
                        && field("escalatedAt").is_null() == r.escalated_at.is_none()
                };
                match old {
                    Some((v, json)) if v == version && unchanged(&json) => continue,
                    Some(_) => updated += 1,
                    None => added += 1,
                }
                let name = display_name(r);
                let company = company(r);
                let email = r.key.email.clone();
                let given = r
                    .claims
                    .get("givenName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let surname = r
                    .claims
                    .get("surname")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let search = format!(
                    "{name}\u{1f}{given}\u{1f}{surname}\u{1f}{email}\u{1f}{}",
                    company.as_deref().unwrap_or("")
                )
                .to_lowercase();
                put.execute(params![
                    id,
                    version,
                    r.created_at.unix_timestamp(),
                    rfc3339(r.created_at),
                    name,
                    email,
                    email_domain(&email),
                    company,
                    guestlist_core::provider::provider_key(&r.key.issuer, &r.key.email),
                    search,
                    r.attempts,
                    serde_json::to_string(r)?,
                    group_key(&email),
                ])?;
            }
        }
        if complete {
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS seen(id TEXT PRIMARY KEY); DELETE FROM seen;",
            )?;
            {
                let mut ins = tx.prepare_cached("INSERT OR IGNORE INTO seen(id) VALUES (?1)")?;
                for r in requests {
                    ins.execute([r.id.to_string()])?;
                }
            }
            removed = tx.execute(
                "DELETE FROM requests WHERE id NOT IN (SELECT id FROM seen)",
                [],
            )? as u64;
            tx.execute("DELETE FROM seen", [])?;
        }
        tx.commit()?;
        Ok((added, updated, removed))
    }

    /// Removes one request from the queue (decided here or elsewhere).
    ///
    /// Errors: `storage.error`.
    pub fn remove_request(&self, id: &str) -> Result<bool, ReviewerError> {
        Ok(self
            .conn()?
            .execute("DELETE FROM requests WHERE id = ?1", [id])?
            > 0)
    }

    /// Removes the cached requests `ids` (decided or expired elsewhere) in one transaction;
    /// returns how many were cached. Unknown ids are skipped.
    ///
    /// Errors: `storage.error`.
    pub fn remove_requests(&self, ids: &[String]) -> Result<u64, ReviewerError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        let mut removed = 0;
        {
            let mut del = tx.prepare_cached("DELETE FROM requests WHERE id = ?1")?;
            for id in ids {
                removed += del.execute([id])? as u64;
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// One cached request.
    ///
    /// Errors: `storage.error` (also for an unreadable stored row).
    pub fn request(&self, id: &str) -> Result<Option<ApprovalRequest>, ReviewerError> {
        let json: Option<String> = self
            .conn()?
            .query_row("SELECT json FROM requests WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(ReviewerError::from))
            .transpose()
    }

    /// Pending requests in the cache.
    ///
    /// Errors: `storage.error`.
    pub fn pending_count(&self) -> Result<u64, ReviewerError> {
        let n: i64 = self
            .conn()?
            .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Runs a queue query at time `now` (see [`QueueQuery`]).
    ///
    /// Errors: `storage.error`.
    pub fn query(&self, q: &QueueQuery, now: OffsetDateTime) -> Result<QueueView, ReviewerError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            clauses.push("r.search LIKE ? ESCAPE '\\'");
            args.push(SqlValue::Text(format!(
                "%{}%",
                like_escape(&text.to_lowercase())
            )));
        }
        if let Some(p) = q.identity_provider.as_deref().filter(|p| !p.is_empty()) {
            clauses.push("r.provider = ?");
            args.push(SqlValue::Text(p.to_ascii_lowercase()));
        }
        if let Some(d) = q.email_domain.as_deref().filter(|d| !d.is_empty()) {
            clauses.push("r.email_domain = ?");
            args.push(SqlValue::Text(
                d.trim().trim_start_matches('@').to_ascii_lowercase(),
            ));
        }
        let now_unix = now.unix_timestamp();
        if let Some(h) = q.min_age_hours {
            clauses.push("r.created_unix <= ?");
            args.push(SqlValue::Integer(now_unix - i64::from(h) * 3600));
        }
        if let Some(h) = q.max_age_hours {
            clauses.push("r.created_unix >= ?");
            args.push(SqlValue::Integer(now_unix - i64::from(h) * 3600));
        }
        if q.escalated_only {
            clauses.push("json_extract(r.json, '$.escalatedAt') IS NOT NULL");
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let order = match q.sort {
            QueueSort::OldestFirst => "r.created_unix ASC, r.id ASC",
            QueueSort::NewestFirst => "r.created_unix DESC, r.id DESC",
            QueueSort::Name => "r.display_name COLLATE NOCASE ASC, r.email ASC",
            QueueSort::Domain => "r.email_domain ASC, r.email ASC",
        };
        let limit = q.limit.unwrap_or(200).clamp(1, 1000);
        let offset = q.offset.unwrap_or(0);
        let c = self.conn()?;
        let total_matching: i64 = c.query_row(
            &format!("SELECT count(*) FROM requests r {filter}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let sql = format!(
            "SELECT r.id, r.display_name, r.email, r.email_domain, r.company, r.provider, r.created_at,
                    r.created_unix, r.attempts, r.version, o.state,
                    (SELECT count(*) FROM requests g WHERE g.group_key = r.group_key),
                    (SELECT coalesce(sum(g.attempts), 0) FROM requests g WHERE g.group_key = r.group_key),
                    (SELECT count(DISTINCT g.provider) FROM requests g WHERE g.group_key = r.group_key),
                    json_extract(r.json, '$.flow'),
                    json_extract(r.json, '$.escalatedAt')
             FROM requests r LEFT JOIN outbox o ON o.request_id = r.id
             {filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        );
        let mut stmt = c.prepare(&sql)?;
        let items = stmt
            .query_map(params_from_iter(args.iter()), |row| {
                let created_unix: i64 = row.get(7)?;
                let domain: String = row.get(3)?;
                let state: Option<String> = row.get(10)?;
                let version: i64 = row.get(9)?;
                Ok(QueueItem {
                    id: row.get(0)?,
                    display_name: row.get(1)?,
                    email: row.get(2)?,
                    free_mail: crate::detail::is_free_mail(&domain),
                    email_domain: domain,
                    company: row.get(4)?,
                    identity_provider: row.get(5)?,
                    created_at: row.get(6)?,
                    age_hours: u64::try_from((now_unix - created_unix).max(0) / 3600).unwrap_or(0),
                    attempts: row.get(8)?,
                    version: version as u64,
                    outbox_state: state.as_deref().and_then(OutboxState::parse),
                    same_person: row.get(11)?,
                    person_attempts: row.get(12)?,
                    person_providers: row.get(13)?,
                    flow: Flow::parse(
                        row.get::<_, Option<String>>(14)?
                            .as_deref()
                            .unwrap_or_default(),
                    ),
                    escalated_at: row.get(15)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let counts = |sql: &str| -> Result<Vec<Count>, ReviewerError> {
            let mut s = c.prepare(sql)?;
            let v = s
                .query_map([], |r| {
                    Ok(Count {
                        value: r.get(0)?,
                        count: r.get::<_, i64>(1)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        };
        let by_provider = counts(
            "SELECT provider, count(*) FROM requests GROUP BY provider ORDER BY count(*) DESC, provider",
        )?;
        let by_domain = counts(
            "SELECT email_domain, count(*) FROM requests GROUP BY email_domain ORDER BY count(*) DESC, email_domain LIMIT 50",
        )?;
        let total_pending: i64 = c.query_row("SELECT count(*) FROM requests", [], |r| r.get(0))?;
        let last_sync_at: Option<String> = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'last_sync_at'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(QueueView {
            items,
            total_matching: total_matching as u64,
            total_pending: total_pending as u64,
            by_provider,
            by_domain,
            last_sync_at,
        })
    }

    /// Identifiers of cached requests, for tests and diagnostics.
    ///
    /// Errors: `storage.error`.
    pub fn request_ids(&self) -> Result<Vec<String>, ReviewerError> {
        let c = self.conn()?;
        let mut s = c.prepare("SELECT id FROM requests ORDER BY created_unix, id")?;
        let v = s
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(v)
    }
}
