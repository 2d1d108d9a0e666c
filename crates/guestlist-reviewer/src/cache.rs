//! The local SQLite database (`<data_dir>/reviewer.db`, WAL, file mode 0600): the cached queue
//! (every pending request in full, so the app opens on it at once and works offline), the
//! durable decision outbox, and a small key/value `meta` table (last sync, session info).
//!
//! Schema changes go through `rusqlite_migration` (append-only list of migrations).
//!
//! ## Encryption at rest
//!
//! The file is a SQLCipher 4 database (rusqlite's `bundled-sqlcipher`: AES-256-CBC pages with
//! an HMAC-SHA512 each; <https://www.zetetic.net/sqlcipher/sqlcipher-api/>). Its key is a random
//! 256-bit [`CacheKey`] per data directory, kept in the [`TokenStore`] (the OS keyring in the app)
//! under the account [`key_account`], and applied raw (`PRAGMA key = "x'<64 hex>'"`, no KDF) as
//! the first statement of every connection ([`open_connection`]). [`Cache::open_keyed`] decides
//! what to do with the file it finds:
//!
//! | file on disk | key in the store | what happens |
//! |---|---|---|
//! | none or empty | none | a new key is stored (and read back), then a new encrypted file |
//! | plaintext (`SQLite format 3\0`) | any | encrypted in place ([`encrypt_plaintext`]): outbox kept |
//! | encrypted | opens it | opened |
//! | encrypted | none, or one that does not open it | moved aside to `reviewer.db.unreadable-<unix time>` (never deleted), a new key and an empty cache; `storage.cache_key_lost` |
//! | any | the store cannot be used | nothing on disk is touched or written; an empty in-memory cache; `storage.cache_key_unavailable` |
//!
//! Temporary tables and indices stay in memory (`SQLITE_TEMP_STORE=2` in the bundled build), and
//! the WAL is encrypted like the database, so no cached personal data reaches the disk in clear.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use guestlist_core::connector::email_domain;
use guestlist_core::model::{ApprovalRequest, ProvisionedBy};
use rand::TryRng as _;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value as SqlValue};
use rusqlite_migration::{M, Migrations};
use serde_json::Value;
use time::OffsetDateTime;

use crate::auth::TokenStore;
use crate::error::{ReviewerError, codes};
use crate::types::{
    Count, DecisionKind, OutboxItem, OutboxState, QueueItem, QueueQuery, QueueSort, QueueView,
};

const MIGRATIONS: &[M<'static>] = &[
    M::up(
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
    ),
    // The undo window: nothing of a decision is sent before this time (Unix milliseconds).
    M::up("ALTER TABLE outbox ADD COLUMN not_before_ms INTEGER NOT NULL DEFAULT 0;"),
    // Requests of the same person (see `group_key`), whatever the identity provider.
    M::up(
        "ALTER TABLE requests ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
         UPDATE requests SET group_key = lower(trim(email));
         CREATE INDEX requests_group ON requests(group_key);",
    ),
];

/// The key requests of the same person are grouped by (sign-ups through several identity
/// providers, repeated attempts): the canonical e-mail of [`guestlist_core::email::canonical`]
/// (NFKC, case folding, UTS-46 domain), the server's own rule for "the same address". An
/// address it refuses (the server stores none) falls back to trimmed and lower-cased.
pub fn group_key(email: &str) -> String {
    guestlist_core::email::canonical(email).unwrap_or_else(|_| email.trim().to_lowercase())
}

/// The first 16 bytes of every plaintext SQLite 3 database file
/// (<https://www.sqlite.org/fileformat.html#the_database_header>).
const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The prefix of the cache key's [`TokenStore`] account (see [`key_account`]).
pub const KEY_ACCOUNT_PREFIX: &str = "cache-key";

/// The [`TokenStore`] account of the cache key of the data directory `data_dir`:
/// `cache-key|<data_dir>` (pass the canonical path). Like the refresh token's account
/// (`<client id>|<authority>`, [`crate::auth::account_key`]) it lives under the keyring service
/// [`crate::auth::KEYRING_SERVICE`]; one key per data directory.
pub fn key_account(data_dir: &Path) -> String {
    format!("{KEY_ACCOUNT_PREFIX}|{}", data_dir.display())
}

/// A 256-bit SQLCipher key, used raw (no PBKDF2: it is random, not a passphrase). Stored as 64
/// lower-case hex characters. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey([redacted])")
    }
}

impl CacheKey {
    /// 32 bytes from the operating system's RNG (`rand::rngs::SysRng`, i.e. `getrandom`).
    ///
    /// Errors: `storage.error` when the OS RNG fails.
    pub fn generate() -> Result<CacheKey, ReviewerError> {
        let mut k = [0u8; 32];
        rand::rngs::SysRng
            .try_fill_bytes(&mut k)
            .map_err(|e| ReviewerError::storage(format!("no randomness for the cache key: {e}")))?;
        Ok(CacheKey(k))
    }

    /// The key as stored: 64 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`CacheKey::to_hex`]'s form (either case); `None` for anything else.
    pub fn from_hex(s: &str) -> Option<CacheKey> {
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(CacheKey(k))
    }

    /// SQLCipher's raw-key form `x'<64 hex>'` (a string value for `PRAGMA key` or `ATTACH … KEY`).
    fn raw(&self) -> String {
        format!("x'{}'", self.to_hex())
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> ReviewerError {
    ReviewerError::storage(format!("{}: {e}", path.display()))
}

/// `path` with `suffix` appended to its file name (`reviewer.db` → `reviewer.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates `path` if missing, with mode 0600, and sets 0600 on an existing one.
fn create_private(path: &Path) -> Result<(), ReviewerError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_err(path, e))?;
    }
    #[cfg(not(unix))]
    {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<(), ReviewerError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
}

/// fsyncs the directory holding `path`, so a rename in it is durable.
fn sync_parent(path: &Path) -> Result<(), ReviewerError> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(dir, e))?;
    }
    Ok(())
}

/// What is at a cache path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// No file, or an empty one: a new database.
    Absent,
    /// A plaintext SQLite database (the cache before encryption).
    Plaintext,
    /// Anything else: an encrypted database (or not a database at all).
    Opaque,
}

fn file_kind(path: &Path) -> Result<FileKind, ReviewerError> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileKind::Absent),
        Err(e) => return Err(io_err(path, e)),
    };
    let mut head = Vec::with_capacity(16);
    f.by_ref()
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| io_err(path, e))?;
    Ok(if head.is_empty() {
        FileKind::Absent
    } else if head == PLAINTEXT_HEADER {
        FileKind::Plaintext
    } else {
        FileKind::Opaque
    })
}

/// Opens (creating with mode 0600) the encrypted SQLite file at `path` with `key`: `PRAGMA key`
/// first, then a read of `sqlite_master` to check the key, then WAL mode, `synchronous=NORMAL`,
/// foreign keys, a 5 s busy timeout and a page cache of up to 16 MiB (SQLCipher decrypts a page
/// on every cache miss; with SQLite's default 2 MiB an unchanged re-sync of 10,000 requests took
/// 2.4 times as long as in plaintext, with 16 MiB it is as fast as the plaintext cache was).
///
/// Errors: `storage.cache_key_mismatch` when the file does not open with `key` (another key, or
/// not a database: SQLCipher's "file is not a database"); `storage.error` otherwise, including a
/// build whose SQLite is not SQLCipher (it would ignore the key and write plaintext).
pub fn open_connection(path: &Path, key: &CacheKey) -> Result<Connection, ReviewerError> {
    create_private(path)?;
    let conn = Connection::open(path)?;
    // Must be the first statement on the connection (SQLCipher API, `PRAGMA key`).
    conn.pragma_update(None, "key", key.raw())?;
    // SQLCipher's own log (process-wide; stderr at WARN from the first key on) would print
    // "ERROR CORE sqlite3Codec: error decrypting page 1" for a wrong key, which this function
    // reports itself as `storage.cache_key_mismatch`. Set after the first `PRAGMA key`: that is
    // when SQLCipher installs its default level.
    let _ =
        conn.pragma_update_and_check(None, "cipher_log_level", "NONE", |r| r.get::<_, String>(0));
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .optional()?;
    if cipher.is_none() {
        return Err(ReviewerError::storage(
            "this build's SQLite is not SQLCipher: refusing to write the cache unencrypted",
        ));
    }
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            return Err(ReviewerError::new(
                codes::CACHE_KEY_MISMATCH,
                format!(
                    "the local cache {} cannot be decrypted with its key from the keyring",
                    path.display()
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -16384)?;
    Ok(conn)
}

/// Encrypts the plaintext cache at `path` with `key`, keeping every row (the outbox may hold
/// decisions not yet sent): checkpoints the WAL, exports into `<path>.encrypting` (mode 0600)
/// with `ATTACH … KEY` + `sqlcipher_export` (SQLCipher API, "Example 1: Encrypt a Plaintext
/// Database") and the schema version (`user_version`, which the export does not copy), closes
/// (SQLite removes the checkpointed `-wal`/`-shm`), fsyncs, and renames over `path`. A crash at
/// any point leaves either the complete plaintext file or the complete encrypted one.
///
/// Errors: `storage.error`.
pub fn encrypt_plaintext(path: &Path, key: &CacheKey) -> Result<(), ReviewerError> {
    let tmp = with_suffix(path, ".encrypting");
    let tmp_str = tmp
        .to_str()
        .ok_or_else(|| io_err(&tmp, "the path is not UTF-8"))?
        .to_owned();
    remove_if_exists(&tmp)?;
    remove_if_exists(&with_suffix(&tmp, "-journal"))?;
    create_private(&tmp)?;
    let plain = Connection::open(path)?;
    plain.busy_timeout(std::time::Duration::from_secs(5))?;
    plain.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let version: i64 = plain.pragma_query_value(None, "user_version", |r| r.get(0))?;
    plain.execute(
        "ATTACH DATABASE ?1 AS encrypted KEY ?2",
        params![tmp_str, key.raw()],
    )?;
    plain.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
    plain.pragma_update(Some("encrypted"), "user_version", version)?;
    plain.execute_batch("DETACH DATABASE encrypted")?;
    plain.close().map_err(|(_, e)| ReviewerError::from(e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    // Checkpointed and closed: whatever -wal/-shm remain hold nothing the main file lacks, and
    // must not be replayed onto the encrypted file.
    remove_if_exists(&with_suffix(path, "-wal"))?;
    remove_if_exists(&with_suffix(path, "-shm"))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_parent(path)?;
    tracing::info!(path = %path.display(), "plaintext cache encrypted");
    Ok(())
}

/// Where [`move_aside`] puts the unreadable file at `path`: `<path>.unreadable-<unix time>`
/// (`-<n>` appended if that exists).
fn aside_path(path: &Path, now: OffsetDateTime) -> PathBuf {
    let base = format!(".unreadable-{}", now.unix_timestamp());
    let mut candidate = with_suffix(path, &base);
    let mut n = 1u32;
    while candidate.exists() {
        candidate = with_suffix(path, &format!("{base}-{n}"));
        n += 1;
    }
    candidate
}

/// Renames the unreadable database at `path` (and its `-wal`/`-shm`, which may hold committed
/// transactions, under SQLite's names for `aside`) to `aside`. Nothing is deleted.
///
/// Errors: `storage.error`.
fn move_aside(path: &Path, aside: &Path) -> Result<(), ReviewerError> {
    for side in ["-wal", "-shm"] {
        let from = with_suffix(path, side);
        if from.exists() {
            std::fs::rename(&from, with_suffix(aside, side)).map_err(|e| io_err(&from, e))?;
        }
    }
    std::fs::rename(path, aside).map_err(|e| io_err(path, e))?;
    sync_parent(path)
}

/// A new key, stored under `account` and read back (a store that does not keep it must fail
/// here, before any data is encrypted with it).
///
/// Errors: the store's (`auth.keyring_unavailable`), `storage.error`.
fn new_stored_key(store: &dyn TokenStore, account: &str) -> Result<CacheKey, ReviewerError> {
    let key = CacheKey::generate()?;
    store.save(account, &key.to_hex())?;
    match store.load(account)?.as_deref().and_then(CacheKey::from_hex) {
        Some(k) if k == key => Ok(key),
        _ => Err(ReviewerError::new(
            codes::KEYRING_UNAVAILABLE,
            "the keyring did not keep the cache key",
        )),
    }
}

/// The key could not be read or stored: an in-memory database and the notice saying why.
fn locked(
    path: &Path,
    cause: &ReviewerError,
) -> Result<(Connection, ReviewerError), ReviewerError> {
    let notice = ReviewerError::new(
        codes::CACHE_KEY_UNAVAILABLE,
        format!(
            "the local cache stays locked because its key cannot be read from or saved to the \
             keyring ({}); nothing is stored on this computer until Guestlist is restarted with \
             the keyring available (the cache file {} is kept as it is)",
            cause.message,
            path.display()
        ),
    );
    tracing::error!(code = %notice.code, message = %notice.message, "cache locked");
    Ok((Connection::open_in_memory()?, notice))
}

/// The database (one connection behind a mutex; every call is short).
#[derive(Debug)]
pub struct Cache {
    conn: Mutex<Connection>,
    /// The file and where its key lives; `None` for an in-memory (locked) cache.
    keyed: Option<Keyed>,
}

#[derive(Debug)]
struct Keyed {
    path: PathBuf,
    store: Arc<dyn TokenStore>,
    account: String,
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
    /// Nothing is sent before this time (the undo window; Unix milliseconds, 0: no wait).
    pub not_before_ms: i64,
    /// When the row last changed (Unix seconds).
    pub updated_unix: i64,
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
            how: self.how,
            write_started: self.write_started,
            undo_until: self.undo_until(),
            updated_at: OffsetDateTime::from_unix_timestamp(self.updated_unix)
                .map(rfc3339)
                .unwrap_or_else(|_| self.queued_at.clone()),
            last_error: self.last_error.clone(),
        }
    }

    /// When the undo window of a decision nothing was sent for yet ends (RFC 3339 with
    /// milliseconds); `None` once it is running, finished, or had no window.
    pub fn undo_until(&self) -> Option<String> {
        if self.state != OutboxState::Queued || self.not_before_ms <= 0 {
            return None;
        }
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.not_before_ms) * 1_000_000)
                .ok()?;
        Some(rfc3339(t))
    }

    /// `true` while the undo window is open at `now`.
    pub fn waiting(&self, now: OffsetDateTime) -> bool {
        self.state == OutboxState::Queued && self.not_before_ms > unix_ms(now)
    }
}

/// `t` in Unix milliseconds.
pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
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

/// The connection to the cache file at `path` as [`Cache::open_keyed`] decides (see the module
/// docs), the notice for the approver, and whether the connection is to the file (`false`: an
/// in-memory database).
fn connect_keyed(
    path: &Path,
    store: &dyn TokenStore,
    account: &str,
    now: OffsetDateTime,
) -> Result<(Connection, Option<ReviewerError>, bool), ReviewerError> {
    let kind = file_kind(path)?;
    let stored = match store.load(account) {
        Ok(s) => s,
        Err(e) => {
            let (c, notice) = locked(path, &e)?;
            return Ok((c, Some(notice), false));
        }
    };
    let why = match stored.as_deref().map(CacheKey::from_hex) {
        Some(Some(key)) => {
            if kind == FileKind::Plaintext {
                encrypt_plaintext(path, &key)?;
            }
            match open_connection(path, &key) {
                Ok(c) => return Ok((c, None, true)),
                Err(e) if e.code == codes::CACHE_KEY_MISMATCH => {
                    "it cannot be decrypted with the key in the keyring"
                }
                Err(e) => return Err(e),
            }
        }
        Some(None) if kind == FileKind::Opaque => "the keyring holds no valid key for it",
        None if kind == FileKind::Opaque => "its key is not in the keyring",
        // No file yet, or a plaintext one: nothing can be lost, start with a new key.
        Some(None) | None => {
            let key = match new_stored_key(store, account) {
                Ok(k) => k,
                Err(e) => {
                    let (c, notice) = locked(path, &e)?;
                    return Ok((c, Some(notice), false));
                }
            };
            if kind == FileKind::Plaintext {
                encrypt_plaintext(path, &key)?;
            }
            return Ok((open_connection(path, &key)?, None, true));
        }
    };
    // An encrypted (or unreadable) file whose key is missing or wrong: keep it, start over.
    let aside = aside_path(path, now);
    let aside_name = aside
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kept = stored.map(|old| {
        // The key that did not open it stays in the store, in case it is the file that is bad.
        (format!("{account}|{aside_name}"), old)
    });
    let key = match kept
        .as_ref()
        .map_or(Ok(()), |(acc, old)| store.save(acc, old))
        .and_then(|()| new_stored_key(store, account))
    {
        Ok(k) => k,
        Err(e) => {
            let (c, notice) = locked(path, &e)?;
            return Ok((c, Some(notice), false));
        }
    };
    move_aside(path, &aside)?;
    let conn = open_connection(path, &key)?;
    let notice = ReviewerError::new(
        codes::CACHE_KEY_LOST,
        format!(
            "the local cache could not be opened: {why}. It was kept, not deleted, as {}{}; \
             Guestlist started a new empty cache with a new key. Decisions still unsent in the \
             old file were not sent; sync to fetch the queue again.",
            aside.display(),
            kept.map(|(acc, _)| format!(
                " (the key that did not open it is kept in the keyring under \"{acc}\")"
            ))
            .unwrap_or_default()
        ),
    );
    tracing::error!(code = %notice.code, message = %notice.message, "cache key lost");
    Ok((conn, Some(notice), true))
}

fn migrate(conn: &mut Connection, what: &str) -> Result<(), ReviewerError> {
    Migrations::from_slice(MIGRATIONS)
        .to_latest(conn)
        .map_err(|e| ReviewerError::storage(format!("migrating {what}: {e}")))
}

/// Deletes what sign-out with "wipe" deletes (see [`Cache::wipe`]).
const WIPE_SQL: &str = "DELETE FROM requests;
    DELETE FROM outbox WHERE state IN ('reported', 'conflict', 'failed');
    DELETE FROM meta WHERE key <> 'schema';";

impl Cache {
    /// Opens the encrypted database at `path` with `key` (encrypting a plaintext file first,
    /// [`encrypt_plaintext`]) and runs the migrations. The key is not looked up or stored: the
    /// app uses [`Cache::open_keyed`].
    ///
    /// Errors: `storage.cache_key_mismatch` (the file does not open with `key`),
    /// `storage.error`.
    pub fn open(path: &Path, key: &CacheKey) -> Result<Cache, ReviewerError> {
        if file_kind(path)? == FileKind::Plaintext {
            encrypt_plaintext(path, key)?;
        }
        let mut conn = open_connection(path, key)?;
        migrate(&mut conn, &path.display().to_string())?;
        Ok(Cache {
            conn: Mutex::new(conn),
            keyed: None,
        })
    }

    /// Opens the cache at `path` with its key from `store` under `account` ([`key_account`]),
    /// creating, migrating or replacing the file as the table in the module docs says, and runs
    /// the migrations. Blocking (the keyring talks D-Bus). Returns the cache and, when the
    /// approver must be told, a notice for [`crate::AppStatus::last_error`]:
    /// `storage.cache_key_lost` (the old file was moved aside; the message says where) or
    /// `storage.cache_key_unavailable` (the store failed: the cache is in memory only and the
    /// file is untouched).
    ///
    /// Errors: `storage.error` (the file cannot be read, written, renamed or migrated).
    pub fn open_keyed(
        path: &Path,
        store: Arc<dyn TokenStore>,
        account: &str,
    ) -> Result<(Cache, Option<ReviewerError>), ReviewerError> {
        let (mut conn, notice, on_disk) =
            connect_keyed(path, store.as_ref(), account, OffsetDateTime::now_utc())?;
        migrate(&mut conn, &path.display().to_string())?;
        let keyed = on_disk.then(|| Keyed {
            path: path.to_owned(),
            store,
            account: account.to_owned(),
        });
        Ok((
            Cache {
                conn: Mutex::new(conn),
                keyed,
            },
            notice,
        ))
    }

    /// The cache as it was before encryption: a plaintext file, opened the way the app did
    /// then. Only the migration tests create one.
    #[cfg(test)]
    pub(crate) fn open_plaintext(path: &Path) -> Result<Cache, ReviewerError> {
        create_private(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn, &path.display().to_string())?;
        Ok(Cache {
            conn: Mutex::new(conn),
            keyed: None,
        })
    }

    /// `true` when the cache is a file on disk (`false`: the in-memory cache of a locked key).
    pub fn is_persistent(&self) -> bool {
        self.keyed.is_some()
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
                 (id, version, created_unix, created_at, display_name, email, email_domain, company, provider, search, attempts, json, group_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
                    (SELECT count(DISTINCT g.provider) FROM requests g WHERE g.group_key = r.group_key)
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
        self.enqueue_after(request, kind, reason, now, now)
    }

    /// [`Cache::enqueue`] with an undo window: nothing of the decision is sent before
    /// `not_before` (persisted, so the window survives a restart). A failed item decided again
    /// keeps what its earlier attempt recorded (the account it created or invited, and that a
    /// write started), so a retry resumes and never creates or invites twice.
    ///
    /// Errors: `storage.error`.
    pub fn enqueue_after(
        &self,
        request: &ApprovalRequest,
        kind: DecisionKind,
        reason: Option<&str>,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
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
        // A retried failed approval keeps the account its earlier attempt created or invited.
        let (object_id, write_started) = match self.outbox(&id)? {
            Some(old)
                if old.state == OutboxState::Failed
                    && old.kind == DecisionKind::Approve
                    && kind == DecisionKind::Approve =>
            {
                (old.directory_object_id, old.write_started)
            }
            _ => (None, false),
        };
        self.conn()?.execute(
            "INSERT OR REPLACE INTO outbox
             (request_id, kind, reason, state, label, idempotency_key, expected_version, request_json,
              directory_object_id, how, write_started, attempts, last_error, current_json, queued_at, updated_unix,
              not_before_ms)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?10, NULL, ?11, 0, NULL, NULL, ?8, ?9, ?12)",
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
                object_id,
                write_started,
                unix_ms(not_before),
            ],
        )?;
        self.outbox(&id)?
            .ok_or_else(|| ReviewerError::storage("outbox row vanished after insert"))
    }

    /// Undo: deletes the decision of request `id` if nothing of it was sent yet (still
    /// `queued`). `Ok(true)` when it was deleted; `Ok(false)` when there is no such decision or
    /// it is already running or finished.
    ///
    /// Errors: `storage.error`.
    pub fn cancel_queued(&self, id: &str) -> Result<bool, ReviewerError> {
        let n = self.conn()?.execute(
            "DELETE FROM outbox WHERE request_id = ?1 AND state = 'queued'",
            [id],
        )?;
        Ok(n == 1)
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
            not_before_ms: row.get(15)?,
            updated_unix: row.get(16)?,
        })
    }

    const OUTBOX_COLUMNS: &'static str =
        "request_id, kind, reason, state, label, idempotency_key, expected_version, request_json,
        directory_object_id, how, write_started, attempts, last_error, current_json, queued_at,
        not_before_ms, updated_unix";

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
        self.conn()?.execute_batch(WIPE_SQL)?;
        Ok(())
    }

    /// [`Cache::wipe`], then, when no unsent decision remains, forgets the key: closes the
    /// database, deletes its file (and `-wal`/`-shm`), deletes the key from the store, and goes
    /// on with a new empty file under a new key, so no copy of the old file (a backup, disk
    /// blocks not yet reused) can be decrypted any more. With unsent decisions the key is kept
    /// (they still have to be sent). Returns `true` when the key was replaced. Blocking.
    ///
    /// Errors: `storage.error`; the store's error (`auth.keyring_unavailable`) when the old key
    /// cannot be deleted or a new one stored: the cache then lives in memory until restart (the
    /// old file is already gone; a crash between the steps leaves either the old key with no
    /// file, or no key and no file: both open as a new cache).
    pub fn wipe_and_forget_key(&self) -> Result<bool, ReviewerError> {
        let mut conn = self.conn()?;
        conn.execute_batch(WIPE_SQL)?;
        let unsent: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        let Some(k) = self.keyed.as_ref().filter(|_| unsent == 0) else {
            return Ok(false);
        };
        let mut placeholder = Connection::open_in_memory()?;
        migrate(&mut placeholder, "the in-memory cache")?;
        let old = std::mem::replace(&mut *conn, placeholder);
        if let Err((old, e)) = old.close() {
            *conn = old;
            return Err(e.into());
        }
        for suffix in ["", "-wal", "-shm"] {
            remove_if_exists(&with_suffix(&k.path, suffix))?;
        }
        sync_parent(&k.path)?;
        k.store.delete(&k.account)?;
        let key = new_stored_key(k.store.as_ref(), &k.account)?;
        let mut fresh = open_connection(&k.path, &key)?;
        migrate(&mut fresh, &k.path.display().to_string())?;
        *conn = fresh;
        tracing::info!(path = %k.path.display(), "cache wiped and its key replaced");
        Ok(true)
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
    not_before_ms: i64,
    updated_unix: i64,
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
            not_before_ms: self.not_before_ms,
            updated_unix: self.updated_unix,
        })
    }
}
