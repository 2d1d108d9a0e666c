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
//!
//! ## Layout
//!
//! - [`key`]: the SQLCipher key lifecycle (generate, store, open, encrypt a plaintext file, move
//!   an unreadable one aside, sign-out's wipe and key destruction);
//! - [`queue`]: the cached pending requests and the queue query;
//! - [`outbox`]: the durable decision outbox;
//! - [`meta`]: the key/value `meta` table;
//! - [`erase`]: requests erased on the server (issue 12) leave the cache.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};
use time::OffsetDateTime;

use crate::auth::TokenStore;
use crate::error::ReviewerError;

pub mod erase;
pub mod key;
pub mod meta;
pub mod outbox;
pub mod queue;

pub use erase::ErasedReport;
pub use key::{CacheKey, KEY_ACCOUNT_PREFIX, encrypt_plaintext, key_account, open_connection};
pub use outbox::OutboxRow;
pub use queue::{company, display_name, group_key};

use key::{FileKind, connect_keyed, file_kind};

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
    // The grants of an approval already in place (JSON array of `Grant`s; issue 14 §1).
    M::up("ALTER TABLE outbox ADD COLUMN grants_done TEXT NOT NULL DEFAULT '[]';"),
];

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

/// `t` in Unix milliseconds.
pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn migrate(conn: &mut Connection, what: &str) -> Result<(), ReviewerError> {
    Migrations::from_slice(MIGRATIONS)
        .to_latest(conn)
        .map_err(|e| ReviewerError::storage(format!("migrating {what}: {e}")))
}

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
        key::create_private(path)?;
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
}
