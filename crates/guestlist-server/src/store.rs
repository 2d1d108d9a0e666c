//! Durable storage of approval requests, their audit trail, events and idempotency keys.
//!
//! One interface, two implementations (issue 13): the server holds a [`Store`], a cheap-to-clone
//! `Arc<dyn` [`Backend`]`>` opened by [`Store::open`] from the `database` setting
//! ([`DatabaseUrl`]): a SQLite file → [`SqliteStore`] (this file and its submodules; one
//! process, the default), a `postgres://` URL → [`pg::PgStore`] (any number of replicas on one
//! database). The PostgreSQL store keeps no index of every request in memory: check-status
//! answers from a per-replica cache of the people it was asked about, which every write that
//! changes an answer empties of that person on every replica before it is acknowledged
//! (`pg/check_cache.rs`), or else reads the table; so a decision acknowledged by one replica is
//! answered by every other at once.
//!
//! The rest of this page is the SQLite store: rusqlite, WAL, `synchronous=FULL`, migrations by
//! rusqlite_migration.
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
//! One process owns a database: [`SqliteStore::open`] takes an exclusive lock on `<database>.lock`.
//!
//! Layout, by layer: `schema` (migrations), `writer` (the writer thread, group commit),
//! `check_index` (the in-memory check index and the check-status answer), `lock` (one
//! process per database), `rows` (row mapping, cursors, the inserts every write goes through),
//! `requests` (the state machine's transactions and the approver's reads), `events` (the
//! event log, reminders' bookkeeping, counts) and [`audit`] (operations that are not decisions).
//! This file keeps [`StoreError`], [`SqliteStore`] with its connections, and the shared helpers
//! (timestamps, JSON columns) the submodules reach as `super::name`.
//!
//! Owns: the schema and the transactional rules of the approval state machine. Must not know
//! HTTP.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use guestlist_core::Code;
use guestlist_core::model::{ApprovalRequest, Event};
use guestlist_core::policy::MessageKind;
use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

pub mod at_rest;
pub mod audit;
pub mod backend;
mod check_index;
pub mod database_url;
pub mod escalation;
mod events;
pub mod export;
mod external;
/// Durable per-job cursors over the event log (issue 14 §5).
mod job_cursor;
mod list;
mod lock;
/// The PostgreSQL store (issue 13): several replicas sharing one database.
pub mod pg;
pub mod privacy;
pub mod reopen;
mod requests;
pub mod retention;
mod rows;
mod schema;
mod sqlite_backend;
mod writer;

pub use backend::{
    AuditExportPage, Backend, BackendKind, ClusterSignal, ClusterSignals, ExportCursor, HeldLock,
    JobLock,
};
pub use database_url::DatabaseUrl;

use check_index::CheckIndex;
use lock::{LOCK_WAIT, lock_database};
use schema::migrations;
pub use writer::MAX_BATCH;
use writer::{READERS, Reply, WriteJob, writer_loop};
// The row helpers stay reachable as `super::name` from every submodule of the store (the
// issue-12 modules use them so), as when they lived in this file.
#[allow(unused_imports)]
use rows::{
    COLUMNS, add_event, add_history, denied_email, get_by_id, get_by_key, row_to_request,
    search_text, upsert,
};

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
    /// The approver who recorded the first of two approvals approved again (issue 14 §3):
    /// HTTP 403 `decision.second_approver_required`.
    #[error(
        "you recorded the first of the two approvals this request needs: a second, different approver must approve it"
    )]
    SecondApproverRequired,
    /// A background task panicked or was cancelled.
    #[error("storage task failed: {0}")]
    Task(String),
    /// Another process has the database open (its `<database>.lock` is held), or the lock file
    /// cannot be created.
    #[error("{0}")]
    Locked(String),
    /// The database cannot be reached (PostgreSQL down, restarting or cut off; the pool's
    /// acquire timeout passed). HTTP 503 `store.unavailable`; the call may be retried. The text
    /// names no host, user or password.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Any other failure of a database backend (a PostgreSQL error that is not one of the
    /// above). The text names no host, user or password.
    #[error("database error: {0}")]
    Backend(String),
}

impl StoreError {
    /// A stable, greppable code.
    pub fn code(&self) -> Code {
        match self {
            StoreError::Db(_)
            | StoreError::Migration(_)
            | StoreError::Task(_)
            | StoreError::Backend(_) => Code::StoreFailure,
            StoreError::Unavailable(_) => Code::StoreUnavailable,
            StoreError::Locked(_) => Code::StoreLocked,
            StoreError::Corrupt(_) => Code::StoreCorrupt,
            StoreError::NotFound(_) => Code::RequestNotFound,
            StoreError::VersionMismatch { .. } => Code::RequestVersionMismatch,
            StoreError::AlreadyDecided { .. } => Code::RequestAlreadyDecided,
            StoreError::IdempotencyKeyReused => Code::RequestIdempotencyKeyReused,
            StoreError::SecondApproverRequired => Code::DecisionSecondApproverRequired,
        }
    }
}
/// The store the server uses: a cheap-to-clone handle on one [`Backend`] (SQLite or
/// PostgreSQL), chosen by [`Store::open`] from the `database` setting. Derefs to the trait, so
/// callers write `store.get(id).await`.
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &(dyn Backend + 'static) {
        &*self.0
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Store").field(&self.0.kind()).finish()
    }
}

impl Store {
    /// Opens the database `database` names (module `database_url`): a SQLite file (created and
    /// migrated, locked for this process) or a PostgreSQL database (migrated, pooled).
    ///
    /// Errors: [`StoreError`] when it cannot be opened, locked, reached or migrated.
    pub async fn open(database: &DatabaseUrl) -> Result<Store, StoreError> {
        Store::open_with(database, &pg::PoolConfig::default()).await
    }

    /// [`Store::open`] with the PostgreSQL pool sizes `pools` (`[postgres]`; unused on SQLite).
    ///
    /// Errors: as [`Store::open`]; a pool size out of range.
    pub async fn open_with(
        database: &DatabaseUrl,
        pools: &pg::PoolConfig,
    ) -> Result<Store, StoreError> {
        match database {
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
                let s = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))??;
                Ok(Store::from(s))
            }
            DatabaseUrl::Postgres(url) => Ok(Store::new(Arc::new(
                pg::PgStore::connect_with(url.as_str(), pools).await?,
            ))),
        }
    }

    /// A handle on an already open backend.
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        Store(backend)
    }

    /// A handle that does not keep the store open (for tasks that must end with the server).
    pub fn downgrade(&self) -> WeakStore {
        WeakStore(Arc::downgrade(&self.0))
    }
}

/// A [`Store`] that does not keep the database open ([`Store::downgrade`]).
#[derive(Clone)]
pub struct WeakStore(std::sync::Weak<dyn Backend>);

impl WeakStore {
    /// The store, while some [`Store`] still holds it.
    pub fn upgrade(&self) -> Option<Store> {
        self.0.upgrade().map(Store)
    }
}

impl From<SqliteStore> for Store {
    fn from(s: SqliteStore) -> Store {
        Store(Arc::new(s))
    }
}

/// The SQLite store: one database file owned by one process. Cheap to clone (every clone
/// shares the writer thread, the connections and the check index); it implements [`Backend`]
/// (`sqlite_backend`), and its sync methods are for tests, tools and the backend itself.
#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<WriteJob>,
    index: Arc<CheckIndex>,
    /// Held for the store's life: the exclusive lock on `<database>.lock`.
    _lock: Arc<std::fs::File>,
    readers: Arc<[Mutex<Connection>]>,
    next_reader: Arc<AtomicUsize>,
    /// Denial tombstones of erased people ([`privacy`]).
    tombstones: Arc<privacy::Tombstones>,
    /// The database file.
    path: Arc<std::path::PathBuf>,
    /// Idle read-only connections of the audit export (`export`), each with a small page cache.
    export_conns: Arc<Mutex<Vec<Connection>>>,
    /// WAL checkpoints run so far ([`SqliteStore::wal_checkpoints`]).
    checkpoints: Arc<writer::Checkpoints>,
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

/// A time as the SQLite store writes it: RFC 3339 in UTC with exactly nine fractional digits
/// (`2027-01-15T08:00:00.000000000Z`), so that the text of two times orders as the times do:
/// the store sorts and compares the text (list order and cursors, retention and idempotency
/// cutoffs), as PostgreSQL does its `timestamptz`. (The shortest RFC 3339 form, `…:00Z` beside
/// `…:00.1Z`, ordered a whole second after its fractions: `Z` sorts after `.` and the digits.)
/// Rows written before are rewritten by the migration `schema::FIXED_WIDTH_TIMES`. A time
/// outside the years 0000–9999, which RFC 3339 cannot write, gives an empty text.
fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return String::new();
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
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

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it to the latest schema.
    ///
    /// Errors: [`StoreError::Db`] / [`StoreError::Migration`].
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
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
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, StoreError>>()?
            .into();
        let (jobs, rx) = mpsc::channel::<WriteJob>();
        // The WAL checkpoints run on their own thread and connection (writer module docs).
        let (checkpoints, wake) = mpsc::sync_channel::<()>(1);
        let checkpointer = open_conn(path)?;
        let done = Arc::new(writer::Checkpoints::default());
        std::thread::Builder::new()
            .name("guestlist-store-checkpoint".into())
            .spawn({
                let done = done.clone();
                move || writer::checkpointer_loop(checkpointer, wake, done)
            })
            .map_err(|e| StoreError::Task(format!("cannot start the checkpoint thread: {e}")))?;
        std::thread::Builder::new()
            .name("guestlist-store-writer".into())
            .spawn({
                let (index, done) = (index.clone(), done.clone());
                move || writer_loop(writer, rx, index, checkpoints, done)
            })
            .map_err(|e| StoreError::Task(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            writer: jobs,
            index,
            _lock: Arc::new(lock),
            readers,
            next_reader: Arc::new(AtomicUsize::new(0)),
            tombstones,
            path: Arc::new(path.to_path_buf()),
            export_conns: Arc::default(),
            checkpoints: done,
        })
    }

    /// WAL checkpoints completed since the store opened, as `(background, writer)`: those of
    /// the checkpoint thread, and those the writer thread ran itself because the WAL passed
    /// 16,000 pages (`store/writer.rs` module docs). Under an ordinary load the second stays 0:
    /// no commit waits for a checkpoint.
    pub fn wal_checkpoints(&self) -> (u64, u64) {
        (
            self.checkpoints.background.load(Ordering::Relaxed),
            self.checkpoints.writer.load(Ordering::Relaxed),
        )
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
    /// [`SqliteStore::submit`]).
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

    /// [`SqliteStore::write`] without blocking: awaits the commit.
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

    /// Whether the database answers (`SELECT 1`), for `/readyz`.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }
}

#[cfg(test)]
mod tests {
    use guestlist_core::connector::Claims;
    use guestlist_core::model::{
        Actor, Decision, IdentityKey, ProvisionedBy, RequestState, Status,
    };
    use guestlist_core::policy::{ExpiredBehaviour, Policy};
    use serde_json::json;

    use super::*;

    fn claims(email: &str) -> Claims {
        Claims::from_json(json!({"email": email, "displayName": "Zoë Müller",
            "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId":email}]}))
        .unwrap()
    }

    #[test]
    fn request_then_check_then_decide() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
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
        assert_eq!(err.code(), Code::RequestVersionMismatch);
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
            Code::RequestAlreadyDecided
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
        let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("g.db")).unwrap());
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
                        assert_eq!(err.code(), Code::RequestNotFound);
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
        let again = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        assert_eq!(again.list(None, None, None, 500).unwrap().items.len(), 17);
    }

    #[test]
    fn paging_is_stable_and_searchable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
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
        let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
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
        let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
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
        let reopened = SqliteStore::open(&path).unwrap();
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
        let first = SqliteStore::open(&path).unwrap();
        let err = lock_database(&path, std::time::Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.code(), Code::StoreLocked);
        assert!(
            err.to_string()
                .contains("in use by another guestlist-server"),
            "{err}"
        );
        drop(first);
        assert!(lock_database(&path, std::time::Duration::ZERO).is_ok());
    }
}
