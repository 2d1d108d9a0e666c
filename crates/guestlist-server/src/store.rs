//! Durable storage of approval requests, their audit trail, events and idempotency keys, in
//! SQLite (rusqlite, WAL, `synchronous=FULL`, migrations by rusqlite_migration).
//!
//! Every write is one transaction that commits before the caller answers, so a request that was
//! answered survives a `kill -9` of the process. One writer connection serialises writes (which
//! is what makes a burst of identical connector calls create exactly one request); reads use a
//! small pool of reader connections so check-status never waits for a write.
//!
//! Owns: the schema and the transactional rules of the approval state machine. Must not know
//! HTTP.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use guestlist_core::connector::Claims;
use guestlist_core::model::{
    Actor, ApprovalRequest, Decision, Event, HistoryEntry, IdentityKey, ProvisionedBy, RequestPage,
    RequestState, Status, TransitionError,
};
use guestlist_core::policy::{ExpiredBehaviour, MessageKind, Policy, RuleOutcome};
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// Errors of the store. Each has a stable code (see [`StoreError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk full, corruption, I/O).
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// Stored JSON could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// No request with that id.
    #[error("no request with id {0}")]
    NotFound(Uuid),
    /// `If-Match` does not match the current version.
    #[error("the request changed (version {current}); reload it and decide again")]
    VersionMismatch {
        /// The current version.
        current: u64,
        /// The current request.
        request: Box<ApprovalRequest>,
    },
    /// Another decision won.
    #[error("the request is already {}", .request.state.status().as_str())]
    AlreadyDecided {
        /// The current request.
        request: Box<ApprovalRequest>,
    },
    /// An Idempotency-Key was reused with a different body.
    #[error("the Idempotency-Key was already used for a different decision")]
    IdempotencyKeyReused,
    /// A background task panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// A stable, greppable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Db(_) | StoreError::Migration(_) | StoreError::Task(_) => "store.failure",
            StoreError::Corrupt(_) => "store.corrupt",
            StoreError::NotFound(_) => "request.not_found",
            StoreError::VersionMismatch { .. } => "request.version_mismatch",
            StoreError::AlreadyDecided { .. } => "request.already_decided",
            StoreError::IdempotencyKeyReused => "request.idempotency_key_reused",
        }
    }
}

/// The schema, in order. Never edit a shipped migration: append a new one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
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
    )])
}

const READERS: usize = 4;

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct Store {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// What the request-approval connector call did, for the answer and the event stream.
#[derive(Debug, Clone)]
pub struct RequestApprovalOutcome {
    /// `None` → answer `Continue`; `Some(kind)` → `ShowBlockPage` of that kind.
    pub block: Option<MessageKind>,
    /// The event to publish (already stored), if the call changed a request.
    pub event: Option<Event>,
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a committed transaction is on disk before we answer (survives power loss too).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_ts(s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const COLUMNS: &str = "id, email, issuer, issuer_assigned_id, state_json, version, created_at, updated_at, decided_by_json, attempts, claims_json";

fn row_to_request(
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
        })
    })())
}

fn search_text(claims: &Claims) -> String {
    let company = claims
        .other
        .get("companyName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!(
        "{} {} {} {} {}",
        claims.email,
        claims.display_name.as_deref().unwrap_or_default(),
        claims.given_name.as_deref().unwrap_or_default(),
        claims.surname.as_deref().unwrap_or_default(),
        company
    )
    .to_lowercase()
}

/// Cursor of `GET /api/requests`: `created_at|id` of the last item, base64url.
fn encode_cursor(r: &ApprovalRequest) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}|{}",
        ts(r.created_at),
        r.id
    ))
}

fn decode_cursor(c: &str) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (a, b) = s.split_once('|')?;
    Some((a.to_owned(), b.to_owned()))
}

fn get_by_key(conn: &Connection, key: &IdentityKey) -> Result<Option<ApprovalRequest>, StoreError> {
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

fn get_by_id(conn: &Connection, id: Uuid) -> Result<Option<ApprovalRequest>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_row(params![id.to_string()], row_to_request)
        .optional()?
        .transpose()
}

fn denied_email(conn: &Connection, email: &str) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM requests WHERE email = ?1 AND status = 'denied' LIMIT 1")?;
    Ok(stmt.exists(params![email])?)
}

fn upsert(conn: &Connection, r: &ApprovalRequest, search: &str) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state_json, version, created_at, updated_at, decided_by_json, attempts, claims_json, search)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, state_json = excluded.state_json,
           version = excluded.version, updated_at = excluded.updated_at, created_at = excluded.created_at,
           decided_by_json = excluded.decided_by_json, attempts = excluded.attempts,
           claims_json = excluded.claims_json, search = excluded.search",
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
    ])?;
    Ok(())
}

fn add_history(
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

fn add_event(conn: &Connection, kind: &str, r: &ApprovalRequest) -> Result<Event, StoreError> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO events (kind, request_json) VALUES (?1, ?2)")?;
    stmt.execute(params![kind, to_json(r)?])?;
    Ok(Event {
        seq: u64::try_from(conn.last_insert_rowid()).unwrap_or_default(),
        kind: kind.to_owned(),
        request: r.clone(),
    })
}

fn is_expired(r: &ApprovalRequest, policy: &Policy, now: OffsetDateTime) -> bool {
    r.state == RequestState::Pending
        && policy
            .expire_after_days
            .is_some_and(|d| now - r.created_at > time::Duration::days(i64::from(d)))
}

/// What check-status answers for a stored request (`None`: Continue).
fn check_status_block(state: &RequestState, policy: &Policy) -> Option<MessageKind> {
    match state {
        RequestState::Pending => Some(MessageKind::Pending),
        RequestState::Denied { .. } => Some(MessageKind::Denied),
        RequestState::Approved { .. } => Some(MessageKind::Approved),
        RequestState::Expired => match policy.expired {
            ExpiredBehaviour::Block => Some(MessageKind::Expired),
            ExpiredBehaviour::AllowReRequest => None,
        },
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to the latest schema.
    ///
    /// Errors: [`StoreError::Db`] / [`StoreError::Migration`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Db(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            })?;
        }
        let mut writer = open_conn(path)?;
        migrations().to_latest(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_conn(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Store {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len().max(1);
        let conn = self.readers[i]
            .lock()
            .map_err(|_| StoreError::Task("reader lock poisoned".into()))?;
        f(&conn)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .writer
            .lock()
            .map_err(|_| StoreError::Task("writer lock poisoned".into()))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Whether the database answers (`SELECT 1`), for `/readyz`.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    /// The "check approval status" decision (seed `002_*`): the block kind for this sign-up, or
    /// `None` for Continue. A pending request past its expiry is marked expired first (a write).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn check_status(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(Option<MessageKind>, Option<Event>), StoreError> {
        let key = IdentityKey::of(claims);
        let found = self.read(|c| {
            let r = get_by_key(c, &key)?;
            let denied = if r.is_none() {
                denied_email(c, &key.email)?
            } else {
                false
            };
            Ok((r, denied))
        })?;
        match found {
            (Some(r), _) if is_expired(&r, policy, now) => {
                let event = self.expire(r.id, now)?;
                Ok((check_status_block(&RequestState::Expired, policy), event))
            }
            (Some(r), _) => Ok((check_status_block(&r.state, policy), None)),
            (None, true) => Ok((Some(MessageKind::Denied), None)),
            (None, false) => Ok((None, None)),
        }
    }

    /// Marks a pending request expired. Returns the event, or `None` if it was no longer pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn expire(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Event>, StoreError> {
        self.write(|tx| {
            let Some(mut r) = get_by_id(tx, id)? else {
                return Ok(None);
            };
            if r.state != RequestState::Pending {
                return Ok(None);
            }
            r.state = RequestState::Expired;
            r.version += 1;
            r.updated_at = now;
            let claims = r
                .typed_claims()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            upsert(tx, &r, &search_text(&claims))?;
            add_history(tx, &r, "expired", &Actor::policy("expiry"), json!({}))?;
            Ok(Some(add_event(tx, "request.decided", &r)?))
        })
    }

    /// The "request approval" decision (seed `002_*`), in one transaction: store a new pending
    /// request, or apply the policy, or answer for the request already stored under the same
    /// identity key. An identical call within `retry_window` of the stored one is Entra's retry
    /// and gets the first call's answer (`REQUESTED`), so retries and bursts create one request.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn request_approval(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        let key = IdentityKey::of(claims);
        let claims_json = claims.to_json();
        let search = search_text(claims);
        self.write(|tx| {
            if let Some(mut r) = get_by_key(tx, &key)? {
                if is_expired(&r, policy, now) {
                    r.state = RequestState::Expired;
                    r.version += 1;
                    r.updated_at = now;
                    upsert(tx, &r, &search)?;
                    add_history(tx, &r, "expired", &Actor::policy("expiry"), json!({}))?;
                }
                return match r.state.clone() {
                    RequestState::Pending => {
                        let replay = r.claims == claims_json && now - r.updated_at <= retry_window;
                        if replay {
                            return Ok(RequestApprovalOutcome {
                                block: Some(MessageKind::Requested),
                                event: None,
                            });
                        }
                        r.attempts += 1;
                        r.updated_at = now;
                        r.version += 1;
                        upsert(tx, &r, &search)?;
                        add_history(
                            tx,
                            &r,
                            "attempted",
                            &Actor::user_flow(),
                            json!({"answer": policy.code(MessageKind::Pending), "claims": claims_json}),
                        )?;
                        Ok(RequestApprovalOutcome {
                            block: Some(MessageKind::Pending),
                            event: None,
                        })
                    }
                    RequestState::Expired if policy.expired == ExpiredBehaviour::AllowReRequest => {
                        r.state = RequestState::Pending;
                        r.claims = claims_json.clone();
                        r.attempts += 1;
                        r.created_at = now;
                        r.updated_at = now;
                        r.version += 1;
                        r.decided_by = None;
                        upsert(tx, &r, &search)?;
                        add_history(tx, &r, "requested", &Actor::user_flow(), json!({"reRequest": true}))?;
                        let event = add_event(tx, "request.created", &r)?;
                        Ok(RequestApprovalOutcome {
                            block: Some(MessageKind::Requested),
                            event: Some(event),
                        })
                    }
                    state => Ok(RequestApprovalOutcome {
                        block: check_status_block(&state, policy),
                        event: None,
                    }),
                };
            }
            if denied_email(tx, &key.email)? {
                return Ok(RequestApprovalOutcome {
                    block: Some(MessageKind::Denied),
                    event: None,
                });
            }
            let (state, action, actor, block) = match policy.evaluate(claims) {
                RuleOutcome::AutoApprove(rule) => (
                    RequestState::Approved {
                        directory_object_id: None,
                        how: ProvisionedBy::UserFlow,
                    },
                    "autoApproved",
                    Actor::policy(&rule),
                    None,
                ),
                RuleOutcome::AutoDeny(rule) => (
                    RequestState::Denied {
                        reason: format!("auto-denied by policy rule {rule}"),
                    },
                    "autoDenied",
                    Actor::policy(&rule),
                    Some(MessageKind::AutoDenied),
                ),
                RuleOutcome::Manual => (
                    RequestState::Pending,
                    "requested",
                    Actor::user_flow(),
                    Some(MessageKind::Requested),
                ),
            };
            let decided = state != RequestState::Pending;
            let r = ApprovalRequest {
                id: Uuid::now_v7(),
                key: key.clone(),
                state,
                version: 1,
                created_at: now,
                updated_at: now,
                decided_by: decided.then(|| actor.clone()),
                attempts: 1,
                claims: claims_json.clone(),
            };
            upsert(tx, &r, &search)?;
            add_history(tx, &r, action, &actor, json!({}))?;
            let kind = if decided { "request.decided" } else { "request.created" };
            let event = add_event(tx, kind, &r)?;
            Ok(RequestApprovalOutcome {
                block,
                event: Some(event),
            })
        })
    }

    /// One request by id.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub fn get(&self, id: Uuid) -> Result<ApprovalRequest, StoreError> {
        self.read(|c| get_by_id(c, id))?
            .ok_or(StoreError::NotFound(id))
    }

    /// A page of requests in stable order (`created_at`, then `id`), optionally filtered by
    /// status and a case-insensitive search over e-mail, names and company. `limit` is clamped to
    /// 1..=500. A cursor that cannot be decoded restarts at the beginning.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn list(
        &self,
        status: Option<Status>,
        q: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        let limit = limit.clamp(1, 500);
        let (after_ts, after_id) = cursor.and_then(decode_cursor).unwrap_or_default();
        let pattern = q
            .filter(|q| !q.trim().is_empty())
            .map(|q| format!("%{}%", q.trim().to_lowercase().replace(['%', '_'], "")));
        self.read(|c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM requests
                 WHERE (?1 IS NULL OR status = ?1)
                   AND (?2 IS NULL OR search LIKE ?2)
                   AND (created_at > ?3 OR (created_at = ?3 AND id > ?4))
                 ORDER BY created_at, id LIMIT ?5"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    status.map(Status::as_str),
                    pattern,
                    after_ts,
                    after_id,
                    i64::try_from(limit + 1).unwrap_or(501)
                ],
                row_to_request,
            )?;
            let mut items = Vec::with_capacity(limit + 1);
            for row in rows {
                items.push(row??);
            }
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(encode_cursor)
            } else {
                None
            };
            Ok(RequestPage { items, next_cursor })
        })
    }

    /// Applies an approver's decision with optimistic concurrency and idempotency.
    ///
    /// - `idempotency_key` seen before with the same body → the stored answer, nothing changes;
    ///   with a different body → [`StoreError::IdempotencyKeyReused`].
    /// - `if_match` ≠ current version → [`StoreError::VersionMismatch`].
    /// - not pending → [`StoreError::AlreadyDecided`].
    ///
    /// Returns the request after the decision and, when it changed, the event to publish.
    pub fn decide(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Option<Event>), StoreError> {
        let fingerprint = format!("{id}:{}", to_json(decision)?);
        self.write(|tx| {
            if let Some(key) = idempotency_key {
                let mut stmt = tx.prepare_cached(
                    "SELECT fingerprint, response_json FROM idempotency WHERE key = ?1",
                )?;
                let seen: Option<(String, String)> = stmt
                    .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((fp, response)) = seen {
                    if fp != fingerprint {
                        return Err(StoreError::IdempotencyKeyReused);
                    }
                    return Ok((from_json(&response)?, None));
                }
            }
            let mut r = get_by_id(tx, id)?.ok_or(StoreError::NotFound(id))?;
            if let Some(v) = if_match
                && v != r.version
            {
                // A decision that already won with this exact body is reported as a conflict
                // too: the caller must not assume it was theirs without an idempotency key.
                if r.state == RequestState::Pending {
                    return Err(StoreError::VersionMismatch {
                        current: r.version,
                        request: Box::new(r),
                    });
                }
                return Err(StoreError::AlreadyDecided { request: Box::new(r) });
            }
            match r.apply(decision, actor.clone(), now) {
                Ok(()) => {}
                Err(TransitionError::NotPending(_)) => {
                    return Err(StoreError::AlreadyDecided { request: Box::new(r) });
                }
            }
            let claims = r.typed_claims().map_err(|e| StoreError::Corrupt(e.to_string()))?;
            upsert(tx, &r, &search_text(&claims))?;
            let action = match decision {
                Decision::Approve { .. } => "approved",
                Decision::Deny { .. } => "denied",
            };
            add_history(tx, &r, action, actor, serde_json::to_value(decision).unwrap_or_default())?;
            let event = add_event(tx, "request.decided", &r)?;
            if let Some(key) = idempotency_key {
                tx.prepare_cached(
                    "INSERT INTO idempotency (key, request_id, fingerprint, response_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![key, id.to_string(), fingerprint, to_json(&r)?, ts(now)])?;
            }
            Ok((r, Some(event)))
        })
    }

    /// The audit trail of a request, oldest first.
    ///
    /// Errors: [`StoreError::NotFound`] when the request does not exist.
    pub fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(|c| {
            if get_by_id(c, id)?.is_none() {
                return Err(StoreError::NotFound(id));
            }
            let mut stmt = c.prepare_cached(
                "SELECT at, action, actor_json, version, detail_json FROM history WHERE request_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![id.to_string()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (at, action, actor, version, detail) = row?;
                out.push(HistoryEntry {
                    at: parse_ts(&at)?,
                    action,
                    actor: from_json(&actor)?,
                    version: u64::try_from(version).unwrap_or_default(),
                    detail: from_json(&detail)?,
                });
            }
            Ok(out)
        })
    }

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
                out.push(Event {
                    seq: u64::try_from(seq).unwrap_or_default(),
                    kind,
                    request: from_json(&request)?,
                });
            }
            Ok(out)
        })
    }

    /// Counts of requests per status, for `/metrics`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(email: &str) -> Claims {
        Claims::from_json(json!({"email": email, "displayName": "Zoë Müller",
            "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId":email}]}))
        .unwrap()
    }

    #[test]
    fn request_then_check_then_decide() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        let policy = Policy::default();
        let now = OffsetDateTime::now_utc();
        let w = time::Duration::seconds(120);
        let c = claims("zoe@fabrikam.com");
        assert_eq!(store.check_status(&c, &policy, now).unwrap().0, None);
        let out = store.request_approval(&c, &policy, now, w).unwrap();
        assert_eq!(out.block, Some(MessageKind::Requested));
        let created = out.event.unwrap().request;
        // Entra's retry: same answer, nothing new.
        let again = store.request_approval(&c, &policy, now, w).unwrap();
        assert_eq!(again.block, Some(MessageKind::Requested));
        assert!(again.event.is_none());
        // A later attempt is "already processing".
        let later = store
            .request_approval(&c, &policy, now + time::Duration::hours(1), w)
            .unwrap();
        assert_eq!(later.block, Some(MessageKind::Pending));
        assert_eq!(
            store.check_status(&c, &policy, now).unwrap().0,
            Some(MessageKind::Pending)
        );
        let r = store.get(created.id).unwrap();
        assert_eq!(r.attempts, 2);
        let deny = Decision::Deny {
            reason: "unknown".into(),
        };
        let actor = Actor::policy("test");
        let err = store
            .decide(r.id, &deny, &actor, Some(r.version - 1), Some("k1"), now)
            .unwrap_err();
        assert_eq!(err.code(), "request.version_mismatch");
        let (d, ev) = store
            .decide(r.id, &deny, &actor, Some(r.version), Some("k1"), now)
            .unwrap();
        assert!(ev.is_some());
        let (d2, ev2) = store
            .decide(r.id, &deny, &actor, Some(r.version), Some("k1"), now)
            .unwrap();
        assert_eq!(d, d2);
        assert!(ev2.is_none());
        assert_eq!(
            store
                .decide(r.id, &deny, &actor, Some(d.version), Some("k2"), now)
                .unwrap_err()
                .code(),
            "request.already_decided"
        );
        assert_eq!(
            store.check_status(&c, &policy, now).unwrap().0,
            Some(MessageKind::Denied)
        );
        // Denial sticks to the e-mail across identity providers.
        let other_idp = Claims::from_json(json!({"email": "Zoe@Fabrikam.com"})).unwrap();
        assert_eq!(
            store.check_status(&other_idp, &policy, now).unwrap().0,
            Some(MessageKind::Denied)
        );
        let actions: Vec<String> = store
            .history(r.id)
            .unwrap()
            .into_iter()
            .map(|h| h.action)
            .collect();
        assert_eq!(actions, ["requested", "attempted", "denied"]);
        assert_eq!(store.events_after(0, 10).unwrap().len(), 2);
    }

    #[test]
    fn paging_is_stable_and_searchable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        let policy = Policy::default();
        let t0 = OffsetDateTime::now_utc();
        for i in 0..7 {
            store
                .request_approval(
                    &claims(&format!("u{i}@x.example")),
                    &policy,
                    t0,
                    time::Duration::ZERO,
                )
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list(Some(Status::Pending), None, cursor.as_deref(), 3)
                .unwrap();
            seen.extend(page.items.iter().map(|r| r.key.email.clone()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7);
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 7);
        assert_eq!(
            store.list(None, Some("ZOË"), None, 50).unwrap().items.len(),
            7
        );
        assert_eq!(
            store.list(None, Some("u3@"), None, 50).unwrap().items.len(),
            1
        );
    }

    #[test]
    fn expiry_blocks_or_allows_re_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        let mut policy = Policy {
            expire_after_days: Some(7),
            expired: ExpiredBehaviour::Block,
            ..Policy::default()
        };
        let t0 = OffsetDateTime::now_utc();
        let c = claims("late@x.example");
        store
            .request_approval(&c, &policy, t0, time::Duration::ZERO)
            .unwrap();
        let t8 = t0 + time::Duration::days(8);
        assert_eq!(
            store.check_status(&c, &policy, t8).unwrap().0,
            Some(MessageKind::Expired)
        );
        policy.expired = ExpiredBehaviour::AllowReRequest;
        assert_eq!(store.check_status(&c, &policy, t8).unwrap().0, None);
        let out = store
            .request_approval(&c, &policy, t8, time::Duration::ZERO)
            .unwrap();
        assert_eq!(out.block, Some(MessageKind::Requested));
        assert_eq!(out.event.unwrap().request.state, RequestState::Pending);
    }
}
