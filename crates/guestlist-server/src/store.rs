//! Durable storage of approval requests, their audit trail, events and idempotency keys, in
//! SQLite (rusqlite, WAL, `synchronous=FULL`, migrations by rusqlite_migration).
//!
//! Every write commits before the caller answers, so a request that was answered survives a
//! `kill -9` of the process. One writer thread owns the only writer connection and serialises
//! writes (which is what makes a burst of identical connector calls create exactly one request);
//! reads use a small pool of reader connections, and check-status reads no connection at all
//! (the check index below), so neither waits for a write.
//!
//! Group commit: the writer thread takes every write that is waiting when it becomes free (up to
//! [`MAX_BATCH`]) and runs them, one after the other, in one SQLite transaction — each inside
//! its own savepoint, so a failing write is rolled back alone (a batch of one write needs no
//! savepoint: a failure rolls back the transaction) — then commits once (one fsync for
//! the batch under `synchronous=FULL`). Each caller gets its result only after that commit, so no
//! answered write can be lost; with one caller at a time a batch is one write, as before.
//!
//! Check index: check-status answers from [`CheckIndex`], an in-memory map from each stored
//! request's identity key to its id, status and creation time (plus a count of denied requests
//! per e-mail), loaded from the table when the store opens and updated by the writer thread
//! right after each commit, before the writes' callers are answered. Every write of a request row
//! goes through [`upsert`] on the writer thread, which records the change for the index; a write
//! rolled back (its savepoint or its batch) records nothing. So a check-status answer is what a
//! read of the committed table would give, without a hand-off to a reader thread or a page read.
//! One process owns a database: [`Store::open`] takes an exclusive lock on `<database>.lock`.
//!
//! Owns: the schema and the transactional rules of the approval state machine. Must not know
//! HTTP.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use guestlist_core::connector::Claims;
use guestlist_core::email;
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

pub mod at_rest;
pub mod audit;
pub mod export;
pub mod privacy;
pub mod reopen;
pub mod retention;

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
    /// Another process has the database open (its `<database>.lock` is held), or the lock file
    /// cannot be created.
    #[error("{0}")]
    Locked(String),
}

impl StoreError {
    /// A stable, greppable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Db(_) | StoreError::Migration(_) | StoreError::Task(_) => "store.failure",
            StoreError::Locked(_) => "store.locked",
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
        // indexes they read. See [`privacy`].
        M::up(privacy::MIGRATION),
    ])
}

/// Migration 3: rewrites every stored key's e-mail in canonical form
/// ([`guestlist_core::email::canonical`] of the claims' `email`; a row whose e-mail has none
/// keeps its key, which no new call can reach since such calls are refused) and its search
/// text, then restores the unique key index. Rows whose keys become equal (the same person
/// stored twice under variants of one address and the same identity provider) are merged: the
/// one that decides check-status keeps the key — denied first, then approved, pending, expired,
/// oldest first — and the others keep their rows and history with
/// `#merged-<their id>` appended to their `issuer_assigned_id`. Finally every pending request
/// of a canonical e-mail with a denied request is denied, as a denial now does
/// ([`deny_same_person`]), by the actor `policy`/`canonical-email-migration`, with history and
/// a new change sequence number (approvers' clients see them through `since=`; no live event).
fn canonicalise_stored_keys(
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
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE status = 'pending' AND email IN (SELECT email FROM requests WHERE status = 'denied') ORDER BY created_at, id"
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

const READERS: usize = 4;

/// Most writes committed together by one transaction of the writer thread.
pub const MAX_BATCH: usize = 256;

/// Hands a write's result to its caller once the batch's commit is known (`Err`: the commit
/// failed, so nothing of the batch is stored).
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// One write, run by the writer thread inside its batch's transaction. Returns whether it
/// succeeded (its savepoint is kept) and how to answer its caller.
type WriteJob = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// The writer thread: batches waiting writes into one transaction (see the module docs). Ends
/// when the [`Store`] (the only sender) is dropped.
fn writer_loop(mut conn: Connection, jobs: mpsc::Receiver<WriteJob>, index: Arc<CheckIndex>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        let committed = (|| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // A write alone needs no savepoint: when it fails, the transaction is rolled back.
            if batch.len() == 1
                && let Some(job) = batch.pop()
            {
                let (ok, reply) = job(&tx);
                replies.push(reply);
                return if ok {
                    tx.commit()
                } else {
                    truncate_index_changes(0);
                    tx.rollback()
                };
            }
            // Cached statements: `execute_batch` would parse these three again for every write.
            for job in batch.drain(..) {
                tx.prepare_cached("SAVEPOINT write_job")?.execute([])?;
                let mark = index_changes_len();
                let (ok, reply) = job(&tx);
                replies.push(reply);
                if !ok {
                    truncate_index_changes(mark);
                    tx.prepare_cached("ROLLBACK TO write_job")?.execute([])?;
                }
                tx.prepare_cached("RELEASE write_job")?.execute([])?;
            }
            tx.commit()
        })()
        .map_err(|e| e.to_string());
        // The index follows what was committed, before any caller hears of it.
        let changes = INDEX_CHANGES.with(|c| std::mem::take(&mut *c.borrow_mut()));
        if committed.is_ok() {
            index.apply(changes);
        }
        // Jobs of the batch that never ran drop their reply channel: their callers get an error.
        drop(batch);
        for reply in replies {
            reply(committed.clone());
        }
    }
}

/// One change of a request row for the [`CheckIndex`], recorded by [`upsert`].
struct IndexChange {
    key: u128,
    email: u128,
    entry: IndexEntry,
    /// The row was deleted (an erasure, [`privacy`]): `entry` is ignored.
    removed: bool,
}

thread_local! {
    /// The changes of the writer thread's current batch, applied to the [`CheckIndex`] once the
    /// batch has committed (cleared, unapplied, when it did not).
    static INDEX_CHANGES: std::cell::RefCell<Vec<IndexChange>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn record_index_change(r: &ApprovalRequest) {
    let change = IndexChange {
        key: CheckIndex::hash_key(&r.key),
        email: CheckIndex::hash_email(&r.key.email),
        entry: IndexEntry {
            id: r.id,
            status: r.state.status(),
            created_unix_ns: unix_ns(r.created_at),
        },
        removed: false,
    };
    INDEX_CHANGES.with(|c| c.borrow_mut().push(change));
}

fn index_changes_len() -> usize {
    INDEX_CHANGES.with(|c| c.borrow().len())
}

fn truncate_index_changes(len: usize) {
    INDEX_CHANGES.with(|c| c.borrow_mut().truncate(len));
}

/// What check-status needs of one stored request: 32 bytes (an `OffsetDateTime` would make the
/// map's slots 64 bytes instead of 48).
#[derive(Debug, Clone, Copy, PartialEq)]
struct IndexEntry {
    id: Uuid,
    status: Status,
    /// `created_at` in nanoseconds since the Unix epoch (i64 covers 1677–2262).
    created_unix_ns: i64,
}

/// `t` in nanoseconds since the Unix epoch, saturated to the i64 range.
fn unix_ns(t: OffsetDateTime) -> i64 {
    let ns = t.unix_timestamp_nanos();
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

/// The check index (see the module docs): identity key → the request stored under it, and
/// e-mail → how many of its requests are denied. Keys are 128-bit SipHash-1-3 digests with
/// random per-process keys (std's `RandomState`, twice), so memory does not grow with the length
/// of the e-mail: measured in release, a server on 1,000,000 requests has 115 MB RSS against
/// 12.5 MB on 10, and opens in 1.1 s (the load scan) against 10–50 ms. A collision between two
/// of n keys has odds of about n²/2¹²⁹ (10⁻²⁷ for a million), and its keys are unknown to
/// callers, who cannot aim at one.
struct CheckIndex {
    inner: std::sync::RwLock<IndexMaps>,
}

#[derive(Default)]
struct IndexMaps {
    by_key: HashMap<u128, IndexEntry>,
    denied_by_email: HashMap<u128, u32>,
    /// Requests per status, in the order of [`STATUS_ORDER`]: the `/metrics` gauges, kept
    /// with the map so reading them costs the same whatever the number of rows.
    by_status: [u64; 4],
}

/// The statuses of [`IndexMaps::by_status`], in order.
const STATUS_ORDER: [Status; 4] = [
    Status::Pending,
    Status::Approved,
    Status::Denied,
    Status::Expired,
];

fn status_slot(s: Status) -> usize {
    STATUS_ORDER.iter().position(|x| *x == s).unwrap_or(0)
}

/// The two random SipHash keys of this process's [`CheckIndex`] digests.
static INDEX_HASHERS: std::sync::LazyLock<[std::hash::RandomState; 2]> =
    std::sync::LazyLock::new(|| [std::hash::RandomState::new(), std::hash::RandomState::new()]);

impl CheckIndex {
    fn digest(value: &impl std::hash::Hash) -> u128 {
        use std::hash::BuildHasher;
        let [a, b] = &*INDEX_HASHERS;
        (u128::from(a.hash_one(value)) << 64) | u128::from(b.hash_one(value))
    }

    fn hash_key(key: &IdentityKey) -> u128 {
        Self::digest(&(&key.email, &key.issuer, &key.issuer_assigned_id))
    }

    fn hash_email(email: &str) -> u128 {
        Self::digest(&email)
    }

    /// Loads every stored request (one scan of the table, at open).
    fn load(conn: &Connection) -> Result<CheckIndex, StoreError> {
        // Sized once from a count (a scan of the smallest index), so the load never rehashes.
        let rows: i64 = conn.query_row("SELECT count(*) FROM requests", [], |r| r.get(0))?;
        let mut maps = IndexMaps {
            by_key: HashMap::with_capacity(usize::try_from(rows).unwrap_or(0)),
            denied_by_email: HashMap::new(),
            by_status: [0; 4],
        };
        let mut stmt = conn.prepare(
            "SELECT id, email, issuer, issuer_assigned_id, status, created_at FROM requests",
        )?;
        let mut rows = stmt.query([])?;
        let mut changes = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let key = IdentityKey {
                email: row.get(1)?,
                issuer: row.get(2)?,
                issuer_assigned_id: row.get(3)?,
            };
            let status = row
                .get_ref(4)?
                .as_str()
                .ok()
                .and_then(Status::parse)
                .ok_or_else(|| StoreError::Corrupt(format!("request {id}: unknown status")))?;
            changes.push(IndexChange {
                key: Self::hash_key(&key),
                email: Self::hash_email(&key.email),
                entry: IndexEntry {
                    id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    status,
                    created_unix_ns: unix_ns(parse_ts(&row.get::<_, String>(5)?)?),
                },
                removed: false,
            });
            if changes.len() >= 4096 {
                maps.apply(std::mem::take(&mut changes));
            }
        }
        maps.apply(changes);
        Ok(CheckIndex {
            inner: std::sync::RwLock::new(maps),
        })
    }

    fn apply(&self, changes: Vec<IndexChange>) {
        if changes.is_empty() {
            return;
        }
        // A poisoned lock still holds consistent maps: `apply` cannot panic half-way.
        let mut maps = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        maps.apply(changes);
    }

    /// What a read of the committed table would find for `key` ([`check_lookup`]).
    fn lookup(&self, key: &IdentityKey) -> Found {
        let k = Self::hash_key(key);
        let maps = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let email_denied = || {
            maps.denied_by_email
                .get(&Self::hash_email(&key.email))
                .is_some_and(|n| *n > 0)
        };
        match maps.by_key.get(&k) {
            Some(e) => Found::Request {
                id: e.id,
                status: e.status,
                created_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(
                    e.created_unix_ns,
                ))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                email_denied: email_denied(),
            },
            None if email_denied() => Found::DeniedEmail,
            None => Found::Nothing,
        }
    }

    /// Requests per status, from memory.
    fn status_counts(&self) -> [(Status, u64); 4] {
        let maps = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::array::from_fn(|i| (STATUS_ORDER[i], maps.by_status[i]))
    }

    /// Requests in the index.
    fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_key
            .len()
    }
}

impl IndexMaps {
    fn apply(&mut self, changes: Vec<IndexChange>) {
        for c in changes {
            let old = if c.removed {
                self.by_key.remove(&c.key)
            } else {
                self.by_key.insert(c.key, c.entry)
            };
            if let Some(o) = old {
                let n = &mut self.by_status[status_slot(o.status)];
                *n = n.saturating_sub(1);
            }
            if c.removed {
                if old.is_some_and(|o| o.status == Status::Denied)
                    && let Some(n) = self.denied_by_email.get_mut(&c.email)
                {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.denied_by_email.remove(&c.email);
                    }
                }
                continue;
            }
            self.by_status[status_slot(c.entry.status)] += 1;
            if old.is_some_and(|o| o.status == Status::Denied)
                && let Some(n) = self.denied_by_email.get_mut(&c.email)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.denied_by_email.remove(&c.email);
                }
            }
            if c.entry.status == Status::Denied {
                *self.denied_by_email.entry(c.email).or_insert(0) += 1;
            }
        }
    }
}

/// How long [`Store::open`] waits for another process to release the database (a server being
/// restarted may still be exiting).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the exclusive lock on `<database>.lock` (created if missing, never deleted; an advisory
/// `flock`, released by the OS when the process ends, even by `kill -9`), waiting up to
/// `wait` ([`LOCK_WAIT`] from [`Store::open`]) for another process to let go.
///
/// Errors: [`StoreError::Locked`] when another process keeps it, or the file cannot be opened.
fn lock_database(path: &Path, wait: std::time::Duration) -> Result<std::fs::File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            StoreError::Locked(format!(
                "cannot open the lock file {}: {e}",
                lock_path.display()
            ))
        })?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked(format!(
                    "the database {} is in use by another guestlist-server process (its lock {} \
                     is held); stop that process or give this one another --database",
                    path.display(),
                    lock_path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Locked(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )));
            }
        }
    }
}

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct Store {
    writer: mpsc::Sender<WriteJob>,
    index: Arc<CheckIndex>,
    /// Held for the store's life: the exclusive lock on `<database>.lock`.
    _lock: std::fs::File,
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    /// Denial tombstones of erased people ([`privacy`]).
    tombstones: Arc<privacy::Tombstones>,
}

/// What the request-approval connector call did, for the answer and the event stream.
#[derive(Debug, Clone)]
pub struct RequestApprovalOutcome {
    /// `None` → answer `Continue`; `Some(kind)` → `ShowBlockPage` of that kind.
    pub block: Option<MessageKind>,
    /// The event to publish (already stored), if the call changed a request.
    pub event: Option<Event>,
}

impl RequestApprovalOutcome {
    /// The answer for an e-mail with no canonical form: refused, nothing stored.
    fn email_refused() -> Self {
        RequestApprovalOutcome {
            block: Some(MessageKind::EmailRefused),
            event: None,
        }
    }
}

/// Page cache of each reader connection, in KiB (`PRAGMA cache_size` takes a negative number
/// for KiB): with SQLite's default 2 MiB, lookups re-read index and row pages with `pread` once
/// the database is a few MiB. Not memory-mapped I/O: with a large database, first touches of
/// mapped pages (a page fault per page and per connection) made lookups 2× slower at 1,000,000
/// requests than at 10 in `make bench`, where `pread` keeps them flat.
const READER_CACHE_KIB: i64 = 16 * 1024;

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a committed transaction is on disk before we answer (survives power loss too).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten with zeros (erasure, issue 12; [`privacy`]).
    conn.pragma_update(None, "secure_delete", "ON")?;
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

/// The searchable text of a request: the e-mail as sent and in canonical form, the names and
/// the company, folded by [`guestlist_core::email::fold_text`] (NFKC, full case folding), as the
/// search term is, so `ＡＤＡ`, `Ada` and `ada` find each other.
fn search_text(claims: &Claims) -> String {
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

/// Cursor of `GET /api/requests?since=`: `seq:<change_seq>` of the last item, base64url (no
/// `|`, so [`decode_cursor`] does not take it, nor this one a created-at cursor).
fn encode_seq_cursor(seq: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode_seq_cursor(c: &str) -> Option<u64> {
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

/// Inserts or rewrites a request row (on the writer thread only: it records the change for the
/// [`CheckIndex`] in that thread's batch); either way the row takes the next change sequence
/// number (`MAX(change_seq) + 1`, one probe of the `requests_change` index). Writes are
/// serialised on the writer thread and a batch commits as a whole, so readers see the numbers
/// appear in order: a reader that saw mark `m` never misses a later change numbered below `m`.
fn upsert(conn: &Connection, r: &ApprovalRequest, search: &str) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO requests (id, email, issuer, issuer_assigned_id, status, state_json, version, created_at, updated_at, decided_by_json, attempts, claims_json, search, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
           (SELECT MAX(COALESCE((SELECT MAX(change_seq) FROM requests), 0), COALESCE((SELECT MAX(change_seq) FROM erasures), 0)) + 1))
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, state_json = excluded.state_json,
           version = excluded.version, updated_at = excluded.updated_at, created_at = excluded.created_at,
           decided_by_json = excluded.decided_by_json, attempts = excluded.attempts,
           claims_json = excluded.claims_json, search = excluded.search,
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
    ])?;
    // Only a row actually written is recorded; the writer thread applies it after the commit.
    record_index_change(r);
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
    Ok(Event::with_request(
        u64::try_from(conn.last_insert_rowid()).unwrap_or_default(),
        kind,
        r.clone(),
    ))
}

fn is_expired(r: &ApprovalRequest, policy: &Policy, now: OffsetDateTime) -> bool {
    expired(&r.state, r.created_at, policy, now)
}

fn expired(
    state: &RequestState,
    created_at: OffsetDateTime,
    policy: &Policy,
    now: OffsetDateTime,
) -> bool {
    *state == RequestState::Pending
        && policy
            .expire_after_days
            .is_some_and(|d| now - created_at > time::Duration::days(i64::from(d)))
}

/// What check-status found for an identity key.
#[derive(Debug, PartialEq)]
enum Found {
    /// A stored request: its id, status and creation time (only what the answer needs: no
    /// state JSON, no claims, no history).
    Request {
        id: Uuid,
        status: Status,
        created_at: OffsetDateTime,
        /// Whether a request of the same canonical e-mail (this one or another identity
        /// provider's) is denied: a denial outlives expiry (issue 10 §6).
        email_denied: bool,
    },
    /// No request under this key, but the e-mail was denied (under another identity provider).
    DeniedEmail,
    /// Nothing.
    Nothing,
}

/// What to do with a [`Found`].
enum CheckAnswer {
    /// Answer with this block kind (`None`: Continue).
    Answer(Option<MessageKind>),
    /// The request is pending past its expiry: mark it expired, then answer as for expired.
    Expire(Uuid),
}

/// The check-status read from the table (what [`CheckIndex::lookup`] answers from memory; the
/// tests compare the two): one indexed lookup on the identity key reading three columns
/// (and, when absent, one on the e-mail), instead of decoding the whole request.
fn check_lookup(conn: &Connection, key: &IdentityKey) -> Result<Found, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, status, created_at FROM requests WHERE email = ?1 AND issuer = ?2 AND issuer_assigned_id = ?3",
    )?;
    let row = stmt
        .query_row(
            params![key.email, key.issuer, key.issuer_assigned_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get_ref(1)?.as_str().map(Status::parse)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    match row {
        Some((id, Some(status), created_at)) => Ok(Found::Request {
            id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            status,
            created_at: parse_ts(&created_at)?,
            email_denied: denied_email(conn, &key.email)?,
        }),
        Some((id, None, _)) => Err(StoreError::Corrupt(format!("request {id}: unknown status"))),
        None if denied_email(conn, &key.email)? => Ok(Found::DeniedEmail),
        None => Ok(Found::Nothing),
    }
}

/// The check-status answer for what [`check_lookup`] found (see [`check_status_block`]).
fn check_answer(
    found: Found,
    policy: &Policy,
    now: OffsetDateTime,
) -> Result<CheckAnswer, StoreError> {
    Ok(match found {
        // A denial sticks to the person (the canonical e-mail): their other requests, pending or
        // expired, answer denied too, and expiry never re-opens them.
        Found::Request {
            status: Status::Pending | Status::Expired,
            email_denied: true,
            ..
        } => CheckAnswer::Answer(Some(MessageKind::Denied)),
        Found::Request {
            id,
            status: Status::Pending,
            created_at,
            ..
        } if policy.expire_after_days.is_some() => {
            if expired(&RequestState::Pending, created_at, policy, now) {
                CheckAnswer::Expire(id)
            } else {
                CheckAnswer::Answer(Some(MessageKind::Pending))
            }
        }
        Found::Request { status, .. } => CheckAnswer::Answer(match status {
            Status::Pending => Some(MessageKind::Pending),
            Status::Denied => Some(MessageKind::Denied),
            Status::Approved => Some(MessageKind::Approved),
            Status::Expired => check_status_block(&RequestState::Expired, policy),
        }),
        Found::DeniedEmail => CheckAnswer::Answer(Some(MessageKind::Denied)),
        Found::Nothing => CheckAnswer::Answer(None),
    })
}

/// Denies every other pending request of `denied`'s canonical e-mail (the same person through
/// another identity provider), by `actor`, in the caller's transaction; returns their events.
fn deny_same_person(
    tx: &Connection,
    denied: &ApprovalRequest,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<Vec<Event>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests WHERE email = ?1 AND status = 'pending' AND id != ?2"
    );
    let others = tx
        .prepare_cached(&sql)?
        .query_map(
            params![denied.key.email, denied.id.to_string()],
            row_to_request,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = Vec::with_capacity(others.len());
    for other in others {
        let mut r = other?;
        let deny = Decision::Deny {
            reason: format!("denied with request {} (same e-mail address)", denied.id),
        };
        if r.apply(&deny, actor.clone(), now).is_err() {
            continue;
        }
        let claims = r
            .typed_claims()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        upsert(tx, &r, &search_text(&claims))?;
        let mut detail = serde_json::to_value(&deny).unwrap_or_default();
        if let Value::Object(m) = &mut detail {
            m.insert("deniedWith".into(), json!(denied.id));
        }
        add_history(tx, &r, "denied", actor, detail)?;
        events.push(add_event(tx, "request.decided", &r)?);
    }
    Ok(events)
}

/// The write of [`Store::expire`].
fn expire_job(
    id: Uuid,
    now: OffsetDateTime,
) -> impl FnOnce(&Connection) -> Result<Option<Event>, StoreError> + Send + 'static {
    move |tx: &Connection| {
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
    }
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

/// The write of [`Store::request_approval`]: everything that does not need the database is done
/// here, by the caller; the returned closure runs on the writer thread.
fn request_approval_job(
    claims: &Claims,
    policy: &Policy,
    now: OffsetDateTime,
    retry_window: time::Duration,
    tombstones: Arc<privacy::Tombstones>,
) -> impl FnOnce(&Connection) -> Result<RequestApprovalOutcome, StoreError> + Send + 'static {
    let key = IdentityKey::of(claims);
    let claims_json = claims.to_json();
    let search = search_text(claims);
    // The rules only read the claims: evaluate them before taking the writer.
    let evaluated = policy.evaluate(claims);
    let policy = policy.clone();
    move |tx: &Connection| {
        let policy = &policy;
        if let Some(mut r) = get_by_key(tx, &key)? {
            // The same person was denied under another identity provider (or by a denial that
            // this open request predates): it stays denied, through expiry too.
            if matches!(r.state, RequestState::Pending | RequestState::Expired)
                && (denied_email(tx, &key.email)? || tombstones.contains(&key.email)?)
            {
                return Ok(RequestApprovalOutcome {
                    block: Some(MessageKind::Denied),
                    event: None,
                });
            }
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
                    add_history(
                        tx,
                        &r,
                        "requested",
                        &Actor::user_flow(),
                        json!({"reRequest": true}),
                    )?;
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
        if denied_email(tx, &key.email)? || tombstones.contains(&key.email)? {
            return Ok(RequestApprovalOutcome {
                block: Some(MessageKind::Denied),
                event: None,
            });
        }
        let (state, action, actor, block) = match evaluated {
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
        let kind = if decided {
            "request.decided"
        } else {
            "request.created"
        };
        let event = add_event(tx, kind, &r)?;
        Ok(RequestApprovalOutcome {
            block,
            event: Some(event),
        })
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
        // Issue 12 "At rest": the database, its -wal/-shm and the lock file are 0600.
        at_rest::secure_files(path)?;
        let lock = lock_database(path, LOCK_WAIT)?;
        let mut writer = open_conn(path)?;
        migrations().to_latest(&mut writer)?;
        let index = Arc::new(CheckIndex::load(&writer)?);
        let tombstones = Arc::new(privacy::Tombstones::load(&writer, path)?);
        let readers = (0..READERS)
            .map(|_| {
                let c = open_conn(path)?;
                c.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
                Ok(Arc::new(Mutex::new(c)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (jobs, rx) = mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("guestlist-store-writer".into())
            .spawn({
                let index = index.clone();
                move || writer_loop(writer, rx, index)
            })
            .map_err(|e| StoreError::Task(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            writer: jobs,
            index,
            _lock: lock,
            readers,
            next_reader: AtomicUsize::new(0),
            tombstones,
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

    /// Queues `f` to the writer thread; `deliver` gets its result once the transaction that ran
    /// it (possibly shared with other waiting writes) has committed, or the commit's error. An
    /// `Err` from `f` rolls back `f`'s changes only.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        deliver: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        let job: WriteJob = Box::new(move |conn: &Connection| {
            let out = f(conn);
            let ok = out.is_ok();
            let reply: Reply = Box::new(move |committed: Result<(), String>| {
                deliver(match committed {
                    Ok(()) => out,
                    Err(_) if !ok => out,
                    Err(e) => Err(StoreError::Task(format!("commit failed: {e}"))),
                });
            });
            (ok, reply)
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError::Task("the writer thread has stopped".into()))
    }

    /// Runs `f` on the writer thread and blocks until its transaction committed (see
    /// [`Store::submit`]).
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = mpsc::sync_channel::<Result<T, StoreError>>(1);
        self.submit(f, move |r| {
            let _ = reply_tx.send(r);
        })?;
        reply_rx
            .recv()
            .map_err(|_| StoreError::Task("the write was not committed".into()))?
    }

    /// [`Store::write`] without blocking: awaits the commit.
    async fn write_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        self.submit(f, move |r| {
            let _ = reply_tx.send(r);
        })?;
        reply_rx
            .await
            .map_err(|_| StoreError::Task("the write was not committed".into()))?
    }

    /// Compares the check index with a read of the table for every stored identity key and for
    /// `extra` keys (e.g. never stored): returns each key whose answers differ, with both (empty:
    /// consistent), and the number of requests in the index. For tests and `make bench`'s
    /// sanity check; reads the whole table.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn verify_check_index(
        &self,
        extra: &[IdentityKey],
    ) -> Result<(Vec<String>, usize), StoreError> {
        let mut keys = self.read(|c| {
            let mut stmt = c.prepare("SELECT email, issuer, issuer_assigned_id FROM requests")?;
            let rows = stmt.query_map([], |r| {
                Ok(IdentityKey {
                    email: r.get(0)?,
                    issuer: r.get(1)?,
                    issuer_assigned_id: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        let stored = keys.len();
        keys.extend_from_slice(extra);
        let mut differing = Vec::new();
        for key in keys {
            let from_table = self.read(|c| check_lookup(c, &key))?;
            let from_index = self.index.lookup(&key);
            if from_table != from_index {
                differing.push(format!(
                    "{key:?}: table {from_table:?}, index {from_index:?}"
                ));
            }
        }
        let indexed = self.index.len();
        if indexed != stored {
            differing.push(format!(
                "{indexed} requests in the index, {stored} in the table"
            ));
        }
        Ok((differing, indexed))
    }

    /// Whether the database answers (`SELECT 1`), for `/readyz`.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    /// The "check approval status" decision (seed `002_*`): the block kind for this sign-up, or
    /// `None` for Continue, from the check index (module docs). A pending request past its expiry
    /// is marked expired first (a write).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn check_status(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(Option<MessageKind>, Option<Event>), StoreError> {
        let Ok(key) = IdentityKey::try_of(claims) else {
            return Ok((Some(MessageKind::EmailRefused), None));
        };
        let found = self.tombstones.apply(self.index.lookup(&key), &key)?;
        match check_answer(found, policy, now)? {
            CheckAnswer::Answer(block) => Ok((block, None)),
            CheckAnswer::Expire(id) => {
                let event = self.expire(id, now)?;
                Ok((check_status_block(&RequestState::Expired, policy), event))
            }
        }
    }

    /// [`Store::check_status`] for async callers: the answer comes from the in-memory check
    /// index (module docs) on the calling task, with no hand-off and no disk read; the rare
    /// expiry write is queued to the writer thread and awaited.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn check_status_async(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(Option<MessageKind>, Option<Event>), StoreError> {
        let Ok(key) = IdentityKey::try_of(claims) else {
            return Ok((Some(MessageKind::EmailRefused), None));
        };
        let found = self.tombstones.apply(self.index.lookup(&key), &key)?;
        match check_answer(found, policy, now)? {
            CheckAnswer::Answer(block) => Ok((block, None)),
            CheckAnswer::Expire(id) => {
                let event = self.write_async(expire_job(id, now)).await?;
                Ok((check_status_block(&RequestState::Expired, policy), event))
            }
        }
    }

    /// Marks a pending request expired. Returns the event, or `None` if it was no longer pending.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn expire(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Event>, StoreError> {
        self.write(expire_job(id, now))
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
        if IdentityKey::try_of(claims).is_err() {
            return Ok(RequestApprovalOutcome::email_refused());
        }
        self.write(request_approval_job(
            claims,
            policy,
            now,
            retry_window,
            self.tombstones.clone(),
        ))
    }

    /// [`Store::request_approval`] for async callers: the write is queued to the writer thread
    /// and awaited without holding a blocking thread, so a burst of connector calls costs no
    /// thread hand-off per call. Same transaction, same answers.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub async fn request_approval_async(
        &self,
        claims: &Claims,
        policy: &Policy,
        now: OffsetDateTime,
        retry_window: time::Duration,
    ) -> Result<RequestApprovalOutcome, StoreError> {
        if IdentityKey::try_of(claims).is_err() {
            return Ok(RequestApprovalOutcome::email_refused());
        }
        self.write_async(request_approval_job(
            claims,
            policy,
            now,
            retry_window,
            self.tombstones.clone(),
        ))
        .await
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

    /// [`Store::list`], or with `since = Some(m)` the requests whose change sequence number is
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
        let limit = limit.clamp(1, 500);
        let pattern = q
            .filter(|q| !q.trim().is_empty())
            .map(|q| format!("%{}%", email::fold_text(q.trim()).replace(['%', '_'], "")));
        let fetch = i64::try_from(limit + 1).unwrap_or(501);
        let status = status.map(Status::as_str);
        self.read(|c| {
            // Read the mark first: every row the page can return is at or below it.
            let high: i64 = c
                .prepare_cached(privacy::HIGH_CHANGE_SEQ_SQL)?
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
                     ORDER BY change_seq LIMIT ?5"
                );
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![
                        i64::try_from(after).unwrap_or(i64::MAX),
                        high,
                        status,
                        pattern,
                        fetch
                    ],
                    |row| Ok((row_to_request(row)?, row.get::<_, i64>(11)?)),
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
                        erased: Store::erased_between(c, after, last)?,
                    });
                }
                return Ok(RequestPage {
                    items,
                    next_cursor: None,
                    change_seq: Some(high_u),
                    erased: Store::erased_between(c, after, high_u)?,
                });
            }
            let (after_ts, after_id) = cursor.and_then(decode_cursor).unwrap_or_default();
            let sql = format!(
                "SELECT {COLUMNS} FROM requests
                 WHERE (?1 IS NULL OR status = ?1)
                   AND (?2 IS NULL OR search LIKE ?2)
                   AND (created_at > ?3 OR (created_at = ?3 AND id > ?4))
                 ORDER BY created_at, id LIMIT ?5"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![status, pattern, after_ts, after_id, fetch],
                row_to_request,
            )?;
            for row in rows {
                items.push(row??);
            }
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(encode_cursor)
            } else {
                None
            };
            Ok(RequestPage {
                items,
                next_cursor,
                change_seq: Some(high_u),
                erased: Vec::new(),
            })
        })
    }

    /// Applies an approver's decision with optimistic concurrency and idempotency.
    ///
    /// - `idempotency_key` seen before with the same body → the stored answer, nothing changes;
    ///   with a different body → [`StoreError::IdempotencyKeyReused`].
    /// - `if_match` ≠ current version → [`StoreError::VersionMismatch`].
    /// - not pending → [`StoreError::AlreadyDecided`].
    ///
    /// Returns the request after the decision and, when it changed, the event to publish. A
    /// denial also denies the person's other pending requests ([`Store::decide_all`]); their
    /// events are stored, but only [`Store::decide_all`] returns them.
    pub fn decide(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Option<Event>), StoreError> {
        let (r, events) = self.decide_all(id, decision, actor, if_match, idempotency_key, now)?;
        Ok((r, events.into_iter().next()))
    }

    /// [`Store::decide`], returning every event to publish: the decided request's first, then,
    /// for a denial, one per other pending request of the same canonical e-mail (the same
    /// person through another identity provider), which the same transaction denies too, by the
    /// same actor, with the reason "denied with request <id> (same e-mail address)" and a
    /// `denied` history entry whose detail names `deniedWith` (issue 10 §6).
    ///
    /// Errors: as [`Store::decide`].
    pub fn decide_all(
        &self,
        id: Uuid,
        decision: &Decision,
        actor: &Actor,
        if_match: Option<u64>,
        idempotency_key: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(ApprovalRequest, Vec<Event>), StoreError> {
        let fingerprint = format!("{id}:{}", to_json(decision)?);
        let decision = decision.clone();
        let actor = actor.clone();
        let idempotency_key = idempotency_key.map(str::to_owned);
        self.write(move |tx| {
            let (decision, actor) = (&decision, &actor);
            let idempotency_key = idempotency_key.as_deref();
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
                    return Ok((from_json(&response)?, Vec::new()));
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
            let mut events = vec![add_event(tx, "request.decided", &r)?];
            if matches!(decision, Decision::Deny { .. }) {
                events.extend(deny_same_person(tx, &r, actor, now)?);
            }
            if let Some(key) = idempotency_key {
                tx.prepare_cached(
                    "INSERT INTO idempotency (key, request_id, fingerprint, response_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![key, id.to_string(), fingerprint, to_json(&r)?, ts(now)])?;
            }
            Ok((r, events))
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
                let seq = u64::try_from(seq).unwrap_or_default();
                if kind == guestlist_core::model::EVENT_REQUEST_ERASED {
                    let id: privacy::ErasedEventBody = from_json(&request)?;
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

    /// Stored requests per status (pending, approved, denied, expired), for the `/metrics`
    /// gauges: read from the check index in memory (no database read), so the cost does not
    /// grow with the number of rows; it follows every committed write like check-status does.
    pub fn status_counts(&self) -> [(Status, u64); 4] {
        self.index.status_counts()
    }

    /// The sequence number of the latest stored event (0 when there is none): where a new
    /// event stream starts, and the bound a `Last-Event-ID` is checked against
    /// ([`crate::live`]).
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn latest_event_seq(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let seq: i64 = c
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events")?
                .query_row([], |r| r.get(0))?;
            Ok(u64::try_from(seq).unwrap_or_default())
        })
    }

    /// Reminders ([`crate::reminders`]): how many pending requests were created at or before
    /// `created_by` (Unix seconds) and were not reminded about after `reminded_by` (Unix seconds),
    /// and the `limit` oldest of them. One `COUNT` and one `LIMIT` query: memory is bounded by
    /// `limit` whatever the number of pending requests.
    ///
    /// Errors: [`StoreError`] on database failure.
    pub fn pending_due(
        &self,
        created_by: i64,
        reminded_by: i64,
        limit: usize,
    ) -> Result<(u64, Vec<ApprovalRequest>), StoreError> {
        const DUE: &str = "FROM requests r WHERE r.status = 'pending' AND unixepoch(r.created_at) <= ?1
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

    /// Records every request [`Store::pending_due`] counts for the same bounds as reminded at
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
                 SELECT r.id, ?3 FROM requests r WHERE r.status = 'pending' AND unixepoch(r.created_at) <= ?1
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
    /// it with [`Store::status_counts`].
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
        let created = out.event.unwrap().request.unwrap();
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
    fn group_commit_keeps_bursts_idempotent_and_failures_isolated() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(&dir.path().join("g.db")).unwrap());
        let policy = Policy::default();
        let now = OffsetDateTime::now_utc();
        let w = time::Duration::seconds(120);
        // 16 identical calls (Entra's retries) and 16 distinct ones race into shared batches,
        // with failing writes (decisions on unknown ids) in between.
        let threads: Vec<_> = (0..48)
            .map(|i| {
                let (store, policy) = (store.clone(), policy.clone());
                std::thread::spawn(move || match i % 3 {
                    0 => {
                        let out = store
                            .request_approval(&claims("same@x.example"), &policy, now, w)
                            .unwrap();
                        assert_eq!(out.block, Some(MessageKind::Requested));
                        u32::from(out.event.is_some())
                    }
                    1 => {
                        let c = claims(&format!("d{i}@x.example"));
                        let out = store.request_approval(&c, &policy, now, w).unwrap();
                        assert!(out.event.is_some());
                        0
                    }
                    _ => {
                        let deny = Decision::Deny { reason: "x".into() };
                        let err = store
                            .decide(Uuid::now_v7(), &deny, &Actor::policy("t"), None, None, now)
                            .unwrap_err();
                        assert_eq!(err.code(), "request.not_found");
                        0
                    }
                })
            })
            .collect();
        let created: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(created, 1, "a burst of identical calls creates one request");
        let all = store.list(None, None, None, 500).unwrap().items;
        assert_eq!(all.len(), 17);
        // Committed for real: a new store on the same file sees them.
        drop(store);
        let again = Store::open(&dir.path().join("g.db")).unwrap();
        assert_eq!(again.list(None, None, None, 500).unwrap().items.len(), 17);
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
        assert_eq!(
            out.event.unwrap().request.unwrap().state,
            RequestState::Pending
        );
    }

    /// The check index answers what a read of the table answers, after every kind of write:
    /// new requests, Entra's retries, re-attempts, approvals, denials (the denied e-mail under
    /// another identity provider too), expiry and re-request, and writes rolled back inside a
    /// shared batch; and again after the store is reopened (loaded from the table).
    #[test]
    fn check_index_follows_every_committed_write_and_no_rolled_back_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let store = std::sync::Arc::new(Store::open(&path).unwrap());
        let policy = Policy {
            expire_after_days: Some(7),
            expired: ExpiredBehaviour::AllowReRequest,
            ..Policy::default()
        };
        let now = OffsetDateTime::now_utc();
        let w = time::Duration::seconds(120);
        // Concurrent new requests and failing writes share batches.
        let threads: Vec<_> = (0..60)
            .map(|i| {
                let (store, policy) = (store.clone(), policy.clone());
                std::thread::spawn(move || {
                    if i % 4 == 3 {
                        let deny = Decision::Deny { reason: "x".into() };
                        assert!(
                            store
                                .decide(Uuid::now_v7(), &deny, &Actor::policy("t"), None, None, now)
                                .is_err()
                        );
                    } else {
                        let c = claims(&format!("u{}@x.example", i % 20));
                        store.request_approval(&c, &policy, now, w).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let actor = Actor::policy("test");
        let stored: Vec<(Uuid, String)> = store
            .list(None, None, None, 500)
            .unwrap()
            .items
            .into_iter()
            .map(|r| (r.id, r.key.email))
            .collect();
        assert_eq!(stored.len(), 15, "u3, u7, … are never requested");
        let denied_email = stored[0].1.clone();
        for (n, (id, _)) in stored.iter().enumerate() {
            let decision = match n % 4 {
                0 => Decision::Deny {
                    reason: "no".into(),
                },
                1 => Decision::Approve {
                    directory_object_id: format!("obj-{n}"),
                    how: ProvisionedBy::UserCreated,
                },
                _ => continue,
            };
            store
                .decide(*id, &decision, &actor, None, None, now)
                .unwrap();
        }
        // A pending request past its expiry is expired by check-status, then requested again.
        let late = claims("late@x.example");
        let t0 = now - time::Duration::days(8);
        store.request_approval(&late, &policy, t0, w).unwrap();
        assert_eq!(store.check_status(&late, &policy, now).unwrap().0, None);
        store.request_approval(&late, &policy, now, w).unwrap();
        let extra = [
            IdentityKey::of(&claims("never@x.example")),
            // A denied e-mail with no identity provider is blocked too.
            IdentityKey::of(
                &Claims::from_json(json!({"email": denied_email.to_uppercase()})).unwrap(),
            ),
        ];
        let (differing, indexed) = store.verify_check_index(&extra).unwrap();
        assert!(differing.is_empty(), "{differing:#?}");
        assert_eq!(indexed, 16);
        assert_eq!(
            store
                .check_status(
                    &Claims::from_json(json!({"email": denied_email})).unwrap(),
                    &policy,
                    now
                )
                .unwrap()
                .0,
            Some(MessageKind::Denied)
        );
        drop(store);
        let reopened = Store::open(&path).unwrap();
        let (differing, indexed) = reopened.verify_check_index(&extra).unwrap();
        assert!(differing.is_empty(), "{differing:#?}");
        assert_eq!(indexed, 16);
    }

    /// One process owns a database: a second opener is refused with a clear error, and gets it
    /// once the first has let go.
    #[test]
    fn a_database_has_one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let first = Store::open(&path).unwrap();
        let err = lock_database(&path, std::time::Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.code(), "store.locked");
        assert!(
            err.to_string()
                .contains("in use by another guestlist-server"),
            "{err}"
        );
        drop(first);
        assert!(lock_database(&path, std::time::Duration::ZERO).is_ok());
    }
}
