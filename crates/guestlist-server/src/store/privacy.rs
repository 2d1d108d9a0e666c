//! Erasure of a person's data, and the tombstones that keep a denial working after it (issue 12
//! "Retention", "Erasure on request").
//!
//! # What "erased" means
//!
//! Erasing a request (on request, [`SqliteStore::erase_email`], or by the retention job,
//! [`SqliteStore::retention_batch`](super::SqliteStore::retention_batch)) runs in one write transaction per
//! batch of requests, and for each request:
//!
//! 1. if it is denied (and the denial is to be kept), stores a **tombstone**: HMAC-SHA256 of the
//!    canonical e-mail under the server's tombstone key (`retention.tombstone_key`, or a random
//!    key the server keeps in `<database>.tombstone-key`, mode 0600). Without the key the digest
//!    says nothing about the address (no dictionary attack on a stolen database file alone);
//!    with it, check-status and request-approval still answer the denied block page for that
//!    person, and request-approval stores nothing. Tombstones are also held in memory (a set of
//!    32-byte digests), so check-status still reads no database page;
//! 2. deletes the `requests` row (claims, search text, key), its `events` rows (each holds the
//!    whole request), its `idempotency` rows (the stored answer holds the request) and its
//!    `reminded` row;
//! 3. keeps its `history` rows — who decided, when, the action and version, the directory object
//!    id of an approval — but rewrites their `detail_json` to the non-personal fields
//!    ([`SAFE_DETAIL_KEYS`]): the claims of an attempt and the typed reason of a denial go;
//! 4. records the id in `erasures` with the next change sequence number, so
//!    `GET /api/requests?since=` lists it in `RequestPage.erased`, and appends a
//!    `request.erased` event (`{"id","at"}` only: no personal data) for the live streams;
//! 5. removes the request from the in-memory check index once the transaction commits.
//!
//! Every connection runs with `PRAGMA secure_delete=ON`, so SQLite overwrites deleted cells and
//! freed pages with zeros; after an erasure [`SqliteStore::checkpoint_truncate`] copies the WAL into
//! the database and truncates it to zero bytes, so the old page images in the WAL are gone too.
//! The reader connections hold no read transaction while idle, so the checkpoint only waits for
//! reads in progress (the busy timeout, then a few retries).
//!
//! Changing the tombstone key makes every stored tombstone useless (they no longer match):
//! keep `<database>.tombstone-key` with the database and its backups.
//!
//! Owns: the erase primitive, the tombstones and the `erasures` table. Must not know HTTP.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use guestlist_core::model::{Actor, Event, IdentityKey, Status};
use hmac::{Hmac, Mac};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AuditAction};
use super::check_index::{CheckIndex, Found, INDEX_CHANGES, IndexChange, IndexEntry};
use super::{SqliteStore, StoreError, ts};

/// Migration 5: tombstones, erasures, and the indexes the erasure and retention need
/// (events by request id; requests by status and last change).
pub(super) const MIGRATION: &str = r#"
        CREATE TABLE tombstones (
            digest BLOB PRIMARY KEY,
            created_at TEXT NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE erasures (
            change_seq INTEGER PRIMARY KEY,
            request_id TEXT NOT NULL,
            at TEXT NOT NULL
        ) STRICT;
        CREATE INDEX events_request ON events(json_extract(request_json, '$.id'));
        CREATE INDEX requests_retention ON requests(status, updated_at);
        "#;

/// The highest change sequence number used, by a request row or an erasure (both share the
/// sequence of `GET /api/requests?since=`). Two probes of integer-keyed indexes.
pub(super) const HIGH_CHANGE_SEQ_SQL: &str = "SELECT MAX(COALESCE((SELECT MAX(change_seq) FROM requests), 0), COALESCE((SELECT MAX(change_seq) FROM erasures), 0))";

/// The shortest tombstone key accepted, in bytes.
pub const MIN_TOMBSTONE_KEY_BYTES: usize = 32;

/// The `history.detail_json` fields an erasure keeps: the outcome and its references, never the
/// claims or text someone typed (a denial's reason may name the person).
pub const SAFE_DETAIL_KEYS: &[&str] = &[
    "decision",
    "directoryObjectId",
    "how",
    "deniedWith",
    "reRequest",
    "answer",
];

/// What an erasure removed (the answer of `POST /api/privacy/erase`, the detail of its audit
/// row, and summed over a retention run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureCounts {
    /// Requests deleted (claims, search text, identity key).
    pub requests: u64,
    /// History entries whose personal fields were removed (the entries stay).
    pub history_entries: u64,
    /// Stored events deleted.
    pub events: u64,
    /// Idempotency records deleted.
    pub idempotency: u64,
    /// Whether a denial tombstone blocks this person after the erasure.
    pub denial_kept: bool,
}

impl ErasureCounts {
    /// Adds `o`'s counts to these (`denial_kept` if either kept one).
    pub fn add(&mut self, o: ErasureCounts) {
        self.requests += o.requests;
        self.history_entries += o.history_entries;
        self.events += o.events;
        self.idempotency += o.idempotency;
        self.denial_kept |= o.denial_kept;
    }
}

/// An erasure done: the counts and the `request.erased` events to publish (already stored).
#[derive(Debug, Clone, Default)]
pub struct Erased {
    /// What was removed.
    pub counts: ErasureCounts,
    /// One `request.erased` event per erased request.
    pub events: Vec<Event>,
}

/// The denial tombstones: the HMAC key and, in memory, the set of stored digests (loaded at
/// open, kept in step by the writer thread).
pub(super) struct Tombstones {
    /// The keyed MAC (its key schedule done once; cloned per digest).
    key: RwLock<Option<Hmac<Sha256>>>,
    key_file: PathBuf,
    /// Serialises the creation of the key file.
    creating: Mutex<()>,
    set: RwLock<HashSet<[u8; 32]>>,
}

/// `<database>.tombstone-key`: where the server keeps its generated tombstone key.
pub fn default_key_file(database: &Path) -> PathBuf {
    let mut p = database.as_os_str().to_owned();
    p.push(".tombstone-key");
    PathBuf::from(p)
}

/// Reads a tombstone key file: its bytes without a trailing line break, at least
/// [`MIN_TOMBSTONE_KEY_BYTES`].
///
/// Errors: unreadable file or a key too short (the message names the file, never the key).
pub fn read_key_file(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path)
        .map_err(|e| format!("cannot read the tombstone key file {}: {e}", path.display()))?;
    let mut key = raw;
    while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        key.pop();
    }
    if key.len() < MIN_TOMBSTONE_KEY_BYTES {
        return Err(format!(
            "the tombstone key in {} is shorter than {MIN_TOMBSTONE_KEY_BYTES} bytes",
            path.display()
        ));
    }
    Ok(key)
}

/// Reads `path`, or creates it (mode 0600, whatever the umask) holding 32 random bytes as 64 hex
/// digits. Returns the key and whether it was created.
///
/// Errors: the file cannot be read or created, or holds a key too short.
pub fn load_or_create_key_file(path: &Path) -> Result<(Vec<u8>, bool), String> {
    if path.exists() {
        return read_key_file(path).map(|k| (k, false));
    }
    let mut bytes = [0u8; 32];
    rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut bytes)
        .map_err(|e| format!("no randomness for the tombstone key: {e}"))?;
    let key = hex::encode(bytes);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let created = opts.open(path).and_then(|mut f| {
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(key.as_bytes())?;
        f.sync_all()
    });
    match created {
        Ok(()) => Ok((key.into_bytes(), true)),
        // Another opener won the race: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key_file(path).map(|k| (k, false))
        }
        Err(e) => Err(format!(
            "cannot create the tombstone key file {}: {e}",
            path.display()
        )),
    }
}

impl Tombstones {
    pub(super) fn load(conn: &Connection, database: &Path) -> Result<Tombstones, StoreError> {
        let mut set = HashSet::new();
        let mut stmt = conn.prepare("SELECT digest FROM tombstones")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if let Ok(d) = <[u8; 32]>::try_from(row.get::<_, Vec<u8>>(0)?.as_slice()) {
                set.insert(d);
            }
        }
        Ok(Tombstones {
            key: RwLock::new(None),
            key_file: default_key_file(database),
            creating: Mutex::new(()),
            set: RwLock::new(set),
        })
    }

    /// The key in force: the one set by [`SqliteStore::set_tombstone_key`], else the key file beside
    /// the database (created on first need, logged at INFO).
    fn key(&self) -> Result<Hmac<Sha256>, StoreError> {
        if let Some(k) = self
            .key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(k.clone());
        }
        let _guard = self
            .creating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = self
            .key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(k.clone());
        }
        let (key, created) = load_or_create_key_file(&self.key_file).map_err(StoreError::Locked)?;
        if created {
            tracing::info!(
                file = %self.key_file.display(),
                "generated a random denial tombstone key (retention.tombstone_key unset); keep this file with the database"
            );
        }
        let mac = keyed(&key)?;
        *self
            .key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mac.clone());
        Ok(mac)
    }

    fn digest(&self, canonical_email: &str) -> Result<[u8; 32], StoreError> {
        let mut mac = self.key()?;
        mac.update(canonical_email.as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }

    fn is_empty(&self) -> bool {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// Whether `canonical_email` is tombstoned (no HMAC is computed while there are none).
    pub(super) fn contains(&self, canonical_email: &str) -> Result<bool, StoreError> {
        if self.is_empty() {
            return Ok(false);
        }
        let d = self.digest(canonical_email)?;
        Ok(self
            .set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&d))
    }

    /// A check-index answer, with the tombstones applied: a tombstoned person is denied as a
    /// denied e-mail is ([`Found::DeniedEmail`], or `email_denied` on a stored request).
    pub(super) fn apply(&self, found: Found, key: &IdentityKey) -> Result<Found, StoreError> {
        Ok(match found {
            Found::Nothing if self.contains(&key.email)? => Found::DeniedEmail,
            Found::Request {
                id,
                status,
                created_at,
                email_denied: false,
            } if self.contains(&key.email)? => Found::Request {
                id,
                status,
                created_at,
                email_denied: true,
            },
            other => other,
        })
    }

    fn insert(&self, d: [u8; 32]) {
        self.set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(d);
    }

    fn remove(&self, d: &[u8; 32]) {
        self.set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(d);
    }
}

fn keyed(key: &[u8]) -> Result<Hmac<Sha256>, StoreError> {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| StoreError::Corrupt(format!("tombstone key: {e}")))
}

/// One request to erase, as read from its row.
struct Victim {
    id: Uuid,
    key: IdentityKey,
    status: Status,
}

fn victims(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Victim>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, email, issuer, iaid, status) = row?;
        out.push(Victim {
            id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            key: IdentityKey {
                email,
                issuer,
                issuer_assigned_id: iaid,
            },
            status: Status::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("request {id}: unknown status")))?,
        });
    }
    Ok(out)
}

/// The columns [`victims`] reads, in order.
pub(super) const VICTIM_COLUMNS: &str = "id, email, issuer, issuer_assigned_id, status";

/// Keeps only [`SAFE_DETAIL_KEYS`] of a history entry's detail.
fn scrub_detail(detail: &str) -> String {
    let kept = match serde_json::from_str::<Value>(detail) {
        Ok(Value::Object(m)) => m
            .into_iter()
            .filter(|(k, _)| SAFE_DETAIL_KEYS.contains(&k.as_str()))
            .collect(),
        _ => serde_json::Map::new(),
    };
    Value::Object(kept).to_string()
}

/// Records a request row's deletion for the check index (applied after the commit).
fn record_index_removal(v: &Victim) {
    let change = IndexChange {
        key: CheckIndex::hash_key(&v.key),
        email: CheckIndex::hash_email(&v.key.email),
        entry: IndexEntry {
            id: v.id,
            status: v.status,
            created_unix_ns: 0,
        },
        removed: true,
    };
    INDEX_CHANGES.with(|c| c.borrow_mut().push(change));
}

/// The erase primitive (module docs), in the caller's write transaction on the writer thread.
fn erase_victims(
    tx: &Connection,
    tombstones: &Tombstones,
    victims: &[Victim],
    keep_denial: bool,
    now: OffsetDateTime,
) -> Result<Erased, StoreError> {
    let mut out = Erased::default();
    for v in victims {
        // The tombstone first: at no point is the person neither denied nor tombstoned.
        if keep_denial && v.status == Status::Denied {
            let d = tombstones.digest(&v.key.email)?;
            tx.prepare_cached(
                "INSERT INTO tombstones (digest, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![d.as_slice(), ts(now)])?;
            tombstones.insert(d);
            out.counts.denial_kept = true;
        }
        let id = v.id.to_string();
        // The erasure's change number, taken while the row (perhaps the highest) still exists:
        // numbers are never reused, so a client synced past the row still sees the erasure.
        let change_seq: i64 = tx
            .prepare_cached(HIGH_CHANGE_SEQ_SQL)?
            .query_row([], |r| r.get(0))?;
        out.counts.events += tx
            .prepare_cached("DELETE FROM events WHERE json_extract(request_json, '$.id') = ?1")?
            .execute(params![id])? as u64;
        {
            let mut select =
                tx.prepare_cached("SELECT id, detail_json FROM history WHERE request_id = ?1")?;
            let rows = select
                .query_map(params![id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut update =
                tx.prepare_cached("UPDATE history SET detail_json = ?1 WHERE id = ?2")?;
            for (hid, detail) in rows {
                update.execute(params![scrub_detail(&detail), hid])?;
                out.counts.history_entries += 1;
            }
        }
        out.counts.idempotency += tx
            .prepare_cached("DELETE FROM idempotency WHERE request_id = ?1")?
            .execute(params![id])? as u64;
        tx.prepare_cached("DELETE FROM reminded WHERE request_id = ?1")?
            .execute(params![id])?;
        let deleted = tx
            .prepare_cached("DELETE FROM requests WHERE id = ?1")?
            .execute(params![id])?;
        if deleted == 0 {
            continue;
        }
        out.counts.requests += 1;
        record_index_removal(v);
        tx.prepare_cached("INSERT INTO erasures (change_seq, request_id, at) VALUES (?1, ?2, ?3)")?
            .execute(params![change_seq + 1, id, ts(now)])?;
        tx.prepare_cached("INSERT INTO events (kind, request_json) VALUES (?1, ?2)")?
            .execute(params![
                guestlist_core::model::EVENT_REQUEST_ERASED,
                json!({"id": v.id, "at": ts(now)}).to_string()
            ])?;
        out.events.push(Event::erased(
            u64::try_from(tx.last_insert_rowid()).unwrap_or_default(),
            v.id,
        ));
    }
    Ok(out)
}

/// Erases the requests `select` (a `SELECT` of [`VICTIM_COLUMNS`]) finds, in the caller's
/// transaction; for the retention job ([`super::retention`]).
pub(super) fn erase_selected(
    tx: &Connection,
    tombstones: &Tombstones,
    select: &str,
    p: impl rusqlite::Params,
    now: OffsetDateTime,
) -> Result<Erased, StoreError> {
    let found = victims(tx, select, p)?;
    erase_victims(tx, tombstones, &found, true, now)
}

impl SqliteStore {
    /// Sets the denial tombstone key (`retention.tombstone_key` / `_file`, at least
    /// [`MIN_TOMBSTONE_KEY_BYTES`]); without it the store uses `<database>.tombstone-key`
    /// (created on first need).
    ///
    /// Errors: [`StoreError::Corrupt`] if HMAC refuses the key (it takes any length).
    pub fn set_tombstone_key(&self, key: Vec<u8>) -> Result<(), StoreError> {
        let mac = keyed(&key)?;
        *self
            .tombstones
            .key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mac);
        Ok(())
    }

    /// Makes sure a tombstone key is in force, creating `<database>.tombstone-key` when none
    /// was set (at start, so a denial keeps working across restarts).
    ///
    /// Errors: the key file cannot be read or created ([`StoreError::Locked`], naming the file).
    pub fn ensure_tombstone_key(&self) -> Result<(), StoreError> {
        self.tombstones.key().map(|_| ())
    }

    /// Whether the canonical e-mail is blocked by a denial tombstone (its data erased).
    ///
    /// Errors: the key cannot be loaded.
    pub fn is_tombstoned(&self, canonical_email: &str) -> Result<bool, StoreError> {
        self.tombstones.contains(canonical_email)
    }

    /// Erases every request of `canonical_email` (GDPR Art. 17, module docs) in one write
    /// transaction, with its `privacy.erase` audit row (who, the counts; not the e-mail). With
    /// `keep_denial`, a denied person keeps a tombstone (and an earlier one is kept); without,
    /// any tombstone of the address is removed too, so the person may sign up again. Call
    /// [`SqliteStore::checkpoint_truncate`] afterwards so the bytes leave the WAL.
    ///
    /// Errors: [`StoreError`] on database failure or an unreadable key file.
    pub fn erase_email(
        &self,
        canonical_email: &str,
        keep_denial: bool,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<Erased, StoreError> {
        let email = canonical_email.to_owned();
        let digest = self.tombstones.digest(&email)?;
        let tombstones = self.tombstones.clone();
        let actor = actor.clone();
        let erased = self.write(move |tx| {
            let found = victims(
                tx,
                &format!(
                    "SELECT {VICTIM_COLUMNS} FROM requests WHERE email = ?1 ORDER BY created_at, id"
                ),
                params![email],
            )?;
            let mut erased = erase_victims(tx, &tombstones, &found, keep_denial, now)?;
            if keep_denial {
                erased.counts.denial_kept |= tx
                    .prepare_cached("SELECT 1 FROM tombstones WHERE digest = ?1")?
                    .exists(params![digest.as_slice()])?;
            } else {
                tx.prepare_cached("DELETE FROM tombstones WHERE digest = ?1")?
                    .execute(params![digest.as_slice()])?;
            }
            audit::append(
                tx,
                now,
                AuditAction::Erase,
                None,
                &actor,
                &serde_json::to_value(erased.counts).unwrap_or_default(),
            )?;
            Ok(erased)
        })?;
        if !keep_denial {
            self.tombstones.remove(&digest);
        }
        Ok(erased)
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`: copies every committed page into the database file and
    /// truncates the WAL to zero bytes (module docs). Waits for reads in progress (the busy
    /// timeout, 5 s), three times at most while one keeps the WAL busy.
    ///
    /// Errors: [`StoreError::Db`]; [`StoreError::Task`] when the WAL stayed busy.
    pub fn checkpoint_truncate(&self) -> Result<(), StoreError> {
        for _ in 0..3 {
            let busy: i64 = self
                .read(|c| Ok(c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?))?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(StoreError::Task(
            "the WAL checkpoint stayed busy (a long read is in progress); it will run again".into(),
        ))
    }

    /// Ids erased with a change sequence number in `(after, upto]`, in order (the `erased`
    /// list of `GET /api/requests?since=`).
    pub(super) fn erased_between(
        conn: &Connection,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut stmt = conn.prepare_cached(
            "SELECT request_id FROM erasures WHERE change_seq > ?1 AND change_seq <= ?2 ORDER BY change_seq",
        )?;
        let rows = stmt.query_map(
            params![
                i64::try_from(after).unwrap_or(i64::MAX),
                i64::try_from(upto).unwrap_or(i64::MAX)
            ],
            |r| r.get::<_, String>(0),
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(Uuid::parse_str(&row?).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }
}

/// The stored body of a `request.erased` event: the id and when, nothing else.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ErasedEventBody {
    /// The erased request.
    pub id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlist_core::connector::Claims;
    use guestlist_core::policy::Policy;

    fn ask(store: &SqliteStore, email: &str, now: OffsetDateTime) {
        let c = Claims::from_json(json!({"email": email})).unwrap();
        store
            .request_approval(&c, &Policy::default(), now, time::Duration::ZERO)
            .unwrap();
    }

    /// An erasure takes the next change sequence number, and a later change takes one above it
    /// even when the erased request held the highest (a reused number would hide that change
    /// from a client that synced up to the erasure).
    #[test]
    fn erasures_and_later_changes_never_share_a_change_number() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        let now = OffsetDateTime::now_utc();
        ask(&store, "a@x.example", now);
        ask(&store, "b@x.example", now);
        let mark = store
            .list(None, None, None, 10)
            .unwrap()
            .change_seq
            .unwrap();
        let b = store.list(None, Some("b@"), None, 10).unwrap().items[0].id;
        let erased = store
            .erase_email("b@x.example", true, &Actor::policy("test"), now)
            .unwrap();
        assert_eq!(erased.counts.requests, 1);
        assert!(!erased.counts.denial_kept, "b was never denied");
        let page = store.list_page(Some(mark), None, None, None, 10).unwrap();
        assert_eq!(page.erased, vec![b]);
        assert!(page.items.is_empty());
        let after_erasure = page.change_seq.unwrap();
        assert!(after_erasure > mark);
        ask(&store, "c@x.example", now);
        let page = store
            .list_page(Some(after_erasure), None, None, None, 10)
            .unwrap();
        assert_eq!(
            page.items.len(),
            1,
            "the new request is listed after the erasure"
        );
        assert!(page.erased.is_empty());
        let (differing, indexed) = store.verify_check_index(&[]).unwrap();
        assert!(differing.is_empty(), "{differing:?}");
        assert_eq!(indexed, 2);
    }

    #[test]
    fn history_details_keep_only_the_outcome() {
        assert_eq!(
            scrub_detail(r#"{"decision":"deny","reason":"Kim is not a customer"}"#),
            r#"{"decision":"deny"}"#
        );
        assert_eq!(
            scrub_detail(r#"{"answer":"X-PENDING","claims":{"email":"kim@x.example"}}"#),
            r#"{"answer":"X-PENDING"}"#
        );
        assert_eq!(scrub_detail("not json"), "{}");
    }
}
