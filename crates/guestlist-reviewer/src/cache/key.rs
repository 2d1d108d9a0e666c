//! The cache's SQLCipher key lifecycle (see the table in the [parent module](super)): a random
//! [`CacheKey`] per data directory kept in the [`TokenStore`], connections opened with it, a
//! plaintext file encrypted in place, an unreadable file moved aside, and sign-out's wipe that
//! destroys the key.

use std::path::{Path, PathBuf};

use rand::TryRng as _;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::{Cache, Keyed, migrate};
use crate::auth::TokenStore;
use crate::error::{ReviewerError, codes};

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
pub(super) fn create_private(path: &Path) -> Result<(), ReviewerError> {
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
pub(super) enum FileKind {
    /// No file, or an empty one: a new database.
    Absent,
    /// A plaintext SQLite database (the cache before encryption).
    Plaintext,
    /// Anything else: an encrypted database (or not a database at all).
    Opaque,
}

pub(super) fn file_kind(path: &Path) -> Result<FileKind, ReviewerError> {
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
/// foreign keys, `secure_delete`, a 5 s busy timeout and a page cache of up to 16 MiB (SQLCipher decrypts a page
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
    // Deleted rows (erased, decided, wiped requests) are overwritten with zeros, not left in
    // free pages (<https://www.sqlite.org/pragma.html#pragma_secure_delete>).
    conn.pragma_update(None, "secure_delete", "ON")?;
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

/// The connection to the cache file at `path` as [`Cache::open_keyed`] decides (see the module
/// docs), the notice for the approver, and whether the connection is to the file (`false`: an
/// in-memory database).
pub(super) fn connect_keyed(
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

/// Deletes what sign-out with "wipe" deletes (see [`Cache::wipe`]).
const WIPE_SQL: &str = "DELETE FROM requests;
    DELETE FROM outbox WHERE state IN ('reported', 'conflict', 'failed');
    DELETE FROM meta WHERE key <> 'schema';";

impl Cache {
    /// Deletes every cached request and finished outbox row (sign-out with "wipe"); unfinished
    /// outbox rows are kept so no decision is lost.
    ///
    /// Errors: `storage.error`.
    pub fn wipe(&self) -> Result<(), ReviewerError> {
        self.conn()?.execute_batch(WIPE_SQL)?;
        Ok(())
    }

    /// [`Cache::wipe`], then forgets the key, so that nothing in the file as it was (a copy, a
    /// backup, disk blocks not yet reused) can ever be decrypted again. Blocking. Returns
    /// `true` when the key was replaced (`false` only for the in-memory cache of a locked key).
    ///
    /// - No unsent decision: closes the database, deletes its file and `-wal`/`-shm`, deletes the
    ///   key from the store, and goes on with a new empty file under a new key.
    /// - Unsent decisions (they must still be sent, so their rows stay): copies what is left
    ///   (those rows only) into `<path>.rekeying` under a new key (`sqlcipher_export`, which
    ///   copies live rows, never free pages), keeps the new key in the store under
    ///   `<account>|rekeying` first, closes the old file, replaces it (and drops its `-wal`/`-shm`)
    ///   with the copy, then deletes the old key, stores the new one under the account, and
    ///   removes the `|rekeying` entry. A crash before the replacement leaves the old file and
    ///   key; after it and before the new key is stored under the account, the new file is moved
    ///   aside at the next start (its key is still in the keyring under `<account>|rekeying`).
    ///
    /// Errors: `storage.error`; the store's error (`auth.keyring_unavailable`) when the old key
    /// cannot be deleted or a new one stored: the cache then lives in memory until restart (a
    /// crash between the steps leaves either the old key with no file, or no key and no file:
    /// both open as a new cache).
    pub fn wipe_and_forget_key(&self) -> Result<bool, ReviewerError> {
        let mut conn = self.conn()?;
        conn.execute_batch(WIPE_SQL)?;
        let unsent: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        let Some(k) = self.keyed.as_ref() else {
            return Ok(false);
        };
        if unsent > 0 {
            let fresh = rekey_keeping_rows(&mut conn, k)?;
            *conn = fresh;
            tracing::info!(path = %k.path.display(), unsent, "cache wiped and re-encrypted under a new key");
            return Ok(true);
        }
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
}

/// The `<account>|rekeying` store entry of [`Cache::wipe_and_forget_key`].
fn rekeying_account(account: &str) -> String {
    format!("{account}|rekeying")
}

/// The unsent-decisions path of [`Cache::wipe_and_forget_key`]: `conn` (the open file) is
/// copied under a new key, closed and replaced; returns the connection to the new file (the
/// placeholder left in `conn` is in memory).
fn rekey_keeping_rows(conn: &mut Connection, k: &Keyed) -> Result<Connection, ReviewerError> {
    let staging = rekeying_account(&k.account);
    let key = new_stored_key(k.store.as_ref(), &staging)?;
    let tmp = with_suffix(&k.path, ".rekeying");
    let tmp_str = tmp
        .to_str()
        .ok_or_else(|| io_err(&tmp, "the path is not UTF-8"))?
        .to_owned();
    remove_if_exists(&tmp)?;
    remove_if_exists(&with_suffix(&tmp, "-journal"))?;
    create_private(&tmp)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS rekeyed KEY ?2",
        params![tmp_str, key.raw()],
    )?;
    conn.query_row("SELECT sqlcipher_export('rekeyed')", [], |_| Ok(()))?;
    conn.pragma_update(Some("rekeyed"), "user_version", version)?;
    conn.execute_batch("DETACH DATABASE rekeyed")?;
    let mut placeholder = Connection::open_in_memory()?;
    migrate(&mut placeholder, "the in-memory cache")?;
    let old = std::mem::replace(conn, placeholder);
    if let Err((old, e)) = old.close() {
        *conn = old;
        return Err(e.into());
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    // The old file's -wal/-shm belong to the old key: they must not be replayed onto the copy.
    remove_if_exists(&with_suffix(&k.path, "-wal"))?;
    remove_if_exists(&with_suffix(&k.path, "-shm"))?;
    std::fs::rename(&tmp, &k.path).map_err(|e| io_err(&k.path, e))?;
    sync_parent(&k.path)?;
    k.store.delete(&k.account)?;
    k.store.save(&k.account, &key.to_hex())?;
    k.store.delete(&staging)?;
    let mut fresh = open_connection(&k.path, &key)?;
    migrate(&mut fresh, &k.path.display().to_string())?;
    Ok(fresh)
}
