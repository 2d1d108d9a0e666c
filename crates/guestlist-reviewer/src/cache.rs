//! The local SQLite database (`<data_dir>/reviewer.db`, WAL, file mode 0600): the cached queue
//! (every pending request in full, so the app opens on it at once and works offline), the
//! durable decision outbox, and a small key/value `meta` table (last sync, session info).
//!
//! Schema changes go through `rusqlite_migration` (append-only list of migrations). The
//! connection is opened through [`open_connection`], the single place that would apply a
//! SQLCipher key (`PRAGMA key`) when the cache is encrypted.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use guestlist_core::connector::email_domain;
use guestlist_core::model::{ApprovalRequest, ProvisionedBy};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value as SqlValue};
use rusqlite_migration::{M, Migrations};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::ReviewerError;
use crate::types::{
    Count, DecisionKind, OutboxItem, OutboxState, QueueItem, QueueQuery, QueueSort, QueueView,
};

const MIGRATIONS: &[M<'static>] = &[M::up(
    "CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        created_unix INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        display_name TEXT NOT NULL,
        email TEXT NOT NULL,
        email_domain TEXT NOT NULL,
        company TEXT,
        provider TEXT NOT NULL,
        search TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        json TEXT NOT NULL
    );
    CREATE INDEX requests_created ON requests(created_unix, id);
    CREATE INDEX requests_provider ON requests(provider);
    CREATE INDEX requests_domain ON requests(email_domain);
    CREATE TABLE outbox (
        request_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        reason TEXT,
        state TEXT NOT NULL,
        label TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        expected_version INTEGER NOT NULL,
        request_json TEXT NOT NULL,
        directory_object_id TEXT,
        how TEXT,
        write_started INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        current_json TEXT,
        queued_at TEXT NOT NULL,
        updated_unix INTEGER NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
)];

/// Opens (creating with mode 0600) the SQLite file at `path`, in WAL mode with a busy timeout.
///
/// Errors: `storage.error`.
pub fn open_connection(path: &Path) -> Result<Connection, ReviewerError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| ReviewerError::storage(format!("{}: {e}", path.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| ReviewerError::storage(format!("{}: {e}", path.display())))?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// One outbox row (see [`OutboxState`] for the state machine).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The request id (one decision per request).
    pub request_id: String,
    /// Approve or deny.
    pub kind: DecisionKind,
    /// The deny reason.
    pub reason: Option<String>,
    /// The state.
    pub state: OutboxState,
    /// Display name or e-mail.
    pub label: String,
    /// The `Idempotency-Key` of the decision report (UUID v4, fixed at enqueue).
    pub idempotency_key: String,
    /// The request version the approver reviewed (the `If-Match`).
    pub expected_version: u64,
    /// The request as reviewed (its claims drive the plan).
    pub request: ApprovalRequest,
    /// The created, invited or reused account.
    pub directory_object_id: Option<String>,
    /// How the account came to exist.
    pub how: Option<ProvisionedBy>,
    /// A Graph write was started (so a found account after a crash is ours).
    pub write_started: bool,
    /// Drain attempts.
    pub attempts: u32,
    /// The last error.
    pub last_error: Option<ReviewerError>,
    /// The request as the server last answered it.
    pub current: Option<ApprovalRequest>,
    /// When queued (RFC 3339).
    pub queued_at: String,
}

impl OutboxRow {
    /// The status-bar view.
    pub fn item(&self) -> OutboxItem {
        OutboxItem {
            request_id: self.request_id.clone(),
            kind: self.kind,
            state: self.state,
            label: self.label.clone(),
            queued_at: self.queued_at.clone(),
            attempts: self.attempts,
            directory_object_id: self.directory_object_id.clone(),
            last_error: self.last_error.clone(),
        }
    }
}

/// The database (one connection behind a mutex; every call is short).
#[derive(Debug)]
pub struct Cache {
    conn: Mutex<Connection>,
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
    /// Opens or creates the database at `path` and runs the migrations.
    ///
    /// Errors: `storage.error`.
    pub fn open(path: &Path) -> Result<Cache, ReviewerError> {
        let mut conn = open_connection(path)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|e| ReviewerError::storage(format!("migrating {}: {e}", path.display())))?;
        Ok(Cache {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, ReviewerError> {
        self.conn
            .lock()
            .map_err(|_| ReviewerError::storage("database lock poisoned"))
    }

    // ---- meta ----

    /// A `meta` value.
    ///
    /// Errors: `storage.error`.
    pub fn meta(&self, key: &str) -> Result<Option<String>, ReviewerError> {
        Ok(self
            .conn()?
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets (or with `None` deletes) a `meta` value.
    ///
    /// Errors: `storage.error`.
    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), ReviewerError> {
        let c = self.conn()?;
        match value {
            Some(v) => c.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => c.execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    // ---- requests ----

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
            let mut get = tx.prepare_cached("SELECT version FROM requests WHERE id = ?1")?;
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO requests
                 (id, version, created_unix, created_at, display_name, email, email_domain, company, provider, search, attempts, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for r in requests {
                let id = r.id.to_string();
                let old: Option<i64> = get.query_row([&id], |row| row.get(0)).optional()?;
                let version = i64::try_from(r.version).unwrap_or(i64::MAX);
                match old {
                    Some(v) if v == version => continue,
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
                    r.identity_provider(),
                    search,
                    r.attempts,
                    serde_json::to_string(r)?,
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
                    r.created_unix, r.attempts, r.version, o.state
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

    // ---- outbox ----

    /// Adds a decision to the outbox, durably, before anything else happens. A request with a
    /// non-final item keeps it (returned as is, nothing changes); a final conflict/failed item is
    /// replaced (the approver decided again); a reported one is kept.
    ///
    /// Errors: `storage.error`.
    pub fn enqueue(
        &self,
        request: &ApprovalRequest,
        kind: DecisionKind,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<OutboxRow, ReviewerError> {
        let id = request.id.to_string();
        if let Some(existing) = self.outbox(&id)?
            && (!existing.state.is_final() || existing.state == OutboxState::Reported)
        {
            return Ok(existing);
        }
        let kind_s = match kind {
            DecisionKind::Approve => "approve",
            DecisionKind::Deny => "deny",
        };
        self.conn()?.execute(
            "INSERT OR REPLACE INTO outbox
             (request_id, kind, reason, state, label, idempotency_key, expected_version, request_json,
              directory_object_id, how, write_started, attempts, last_error, current_json, queued_at, updated_unix)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, NULL, NULL, 0, 0, NULL, NULL, ?8, ?9)",
            params![
                id,
                kind_s,
                reason,
                format!("{} <{}>", display_name(request), request.key.email),
                uuid::Uuid::new_v4().to_string(),
                i64::try_from(request.version).unwrap_or(i64::MAX),
                serde_json::to_string(request)?,
                rfc3339(now),
                now.unix_timestamp(),
            ],
        )?;
        self.outbox(&id)?
            .ok_or_else(|| ReviewerError::storage("outbox row vanished after insert"))
    }

    fn read_outbox(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawOutbox> {
        Ok(RawOutbox {
            request_id: row.get(0)?,
            kind: row.get(1)?,
            reason: row.get(2)?,
            state: row.get(3)?,
            label: row.get(4)?,
            idempotency_key: row.get(5)?,
            expected_version: row.get(6)?,
            request_json: row.get(7)?,
            directory_object_id: row.get(8)?,
            how: row.get(9)?,
            write_started: row.get(10)?,
            attempts: row.get(11)?,
            last_error: row.get(12)?,
            current_json: row.get(13)?,
            queued_at: row.get(14)?,
        })
    }

    const OUTBOX_COLUMNS: &'static str =
        "request_id, kind, reason, state, label, idempotency_key, expected_version, request_json,
        directory_object_id, how, write_started, attempts, last_error, current_json, queued_at";

    /// One outbox row.
    ///
    /// Errors: `storage.error`.
    pub fn outbox(&self, id: &str) -> Result<Option<OutboxRow>, ReviewerError> {
        let raw = self
            .conn()?
            .query_row(
                &format!(
                    "SELECT {} FROM outbox WHERE request_id = ?1",
                    Self::OUTBOX_COLUMNS
                ),
                [id],
                Self::read_outbox,
            )
            .optional()?;
        raw.map(RawOutbox::parse).transpose()
    }

    /// Outbox rows: every non-final one, plus final ones changed in the last `recent_secs`,
    /// oldest first.
    ///
    /// Errors: `storage.error`.
    pub fn outbox_rows(
        &self,
        recent_secs: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<OutboxRow>, ReviewerError> {
        let c = self.conn()?;
        let mut s = c.prepare(&format!(
            "SELECT {} FROM outbox
             WHERE state NOT IN ('reported', 'conflict', 'failed') OR updated_unix >= ?1
             ORDER BY queued_at, request_id",
            Self::OUTBOX_COLUMNS
        ))?;
        let raws = s
            .query_map([now.unix_timestamp() - recent_secs], Self::read_outbox)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawOutbox::parse).collect()
    }

    /// Persists an outbox row's progress (state, ids, flags, error, server answer).
    ///
    /// Errors: `storage.error`.
    pub fn save_outbox(&self, row: &OutboxRow, now: OffsetDateTime) -> Result<(), ReviewerError> {
        let how = row
            .how
            .map(|h| serde_json::to_value(h).map(|v| v.as_str().unwrap_or_default().to_owned()))
            .transpose()?;
        let n = self.conn()?.execute(
            "UPDATE outbox SET state = ?2, directory_object_id = ?3, how = ?4, write_started = ?5,
                attempts = ?6, last_error = ?7, current_json = ?8, updated_unix = ?9
             WHERE request_id = ?1",
            params![
                row.request_id,
                row.state.as_str(),
                row.directory_object_id,
                how,
                row.write_started,
                row.attempts,
                row.last_error
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()?,
                row.current
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()?,
                now.unix_timestamp(),
            ],
        )?;
        if n != 1 {
            return Err(ReviewerError::storage(format!(
                "outbox row {} is gone",
                row.request_id
            )));
        }
        Ok(())
    }

    /// Deletes final outbox rows older than `days` days. Returns how many.
    ///
    /// Errors: `storage.error`.
    pub fn purge(&self, days: u32, now: OffsetDateTime) -> Result<u64, ReviewerError> {
        let cutoff = now.unix_timestamp() - i64::from(days) * 86_400;
        Ok(self.conn()?.execute(
            "DELETE FROM outbox WHERE state IN ('reported', 'conflict', 'failed') AND updated_unix < ?1",
            [cutoff],
        )? as u64)
    }

    /// Deletes every cached request and finished outbox row (sign-out with "wipe"); unfinished
    /// outbox rows are kept so no decision is lost.
    ///
    /// Errors: `storage.error`.
    pub fn wipe(&self) -> Result<(), ReviewerError> {
        self.conn()?.execute_batch(
            "DELETE FROM requests; DELETE FROM outbox WHERE state IN ('reported', 'conflict', 'failed');
             DELETE FROM meta WHERE key <> 'schema';",
        )?;
        Ok(())
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

struct RawOutbox {
    request_id: String,
    kind: String,
    reason: Option<String>,
    state: String,
    label: String,
    idempotency_key: String,
    expected_version: i64,
    request_json: String,
    directory_object_id: Option<String>,
    how: Option<String>,
    write_started: bool,
    attempts: u32,
    last_error: Option<String>,
    current_json: Option<String>,
    queued_at: String,
}

impl RawOutbox {
    fn parse(self) -> Result<OutboxRow, ReviewerError> {
        let bad = |what: &str| {
            ReviewerError::storage(format!("outbox row {}: bad {what}", self.request_id))
        };
        Ok(OutboxRow {
            kind: match self.kind.as_str() {
                "approve" => DecisionKind::Approve,
                "deny" => DecisionKind::Deny,
                _ => return Err(bad("kind")),
            },
            state: OutboxState::parse(&self.state).ok_or_else(|| bad("state"))?,
            request: serde_json::from_str(&self.request_json)?,
            how: self
                .how
                .as_deref()
                .map(|h| serde_json::from_value(Value::String(h.to_owned())))
                .transpose()?,
            last_error: self
                .last_error
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            current: self
                .current_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            expected_version: u64::try_from(self.expected_version).map_err(|_| bad("version"))?,
            request_id: self.request_id,
            reason: self.reason,
            label: self.label,
            idempotency_key: self.idempotency_key,
            directory_object_id: self.directory_object_id,
            write_started: self.write_started,
            attempts: self.attempts,
            queued_at: self.queued_at,
        })
    }
}
