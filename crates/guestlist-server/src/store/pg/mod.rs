//! The PostgreSQL store (issue 13): any number of guestlist-server replicas share one
//! PostgreSQL (14 or later) database, with the same transactions and answers as the SQLite
//! store ([`super::SqliteStore`]).
//!
//! # Driver, pool, migrations
//!
//! tokio-postgres with a deadpool pool ([`PgStore::connect`]). The URL is parsed by
//! [`tokio_postgres::Config`] (`postgres://user[:password]@host[:port]/db`, with `sslmode=`
//! `disable`, `prefer` (the default) or `require`; TLS by rustls verifying the server's
//! certificate and host name against the OS trust store, so `prefer`/`require` with a server
//! whose certificate is not trusted fail rather than continue unverified). A connection's socket
//! is made within [`CONNECT_TIMEOUT`] (and the whole set-up within [`CREATE_TIMEOUT`]), the
//! pool hands out a free slot within [`ACQUIRE_TIMEOUT`], and every
//! statement runs with `statement_timeout` = [`STATEMENT_TIMEOUT`]: while the database is down
//! or restarting a call fails with [`StoreError::Unavailable`] (HTTP 503) within about a
//! second, never hanging toward Entra's 20 s, and the pool reconnects by itself afterwards
//! (a broken connection is dropped when it is returned).
//!
//! The schema is `migrations/postgres/V*.sql`, embedded and applied by refinery under a
//! session advisory lock, so replicas starting together migrate once.
//!
//! sqlx was the first choice; it cannot be linked here: every sqlx release requires
//! `libsqlite3-sys < 0.38` (even with its SQLite driver off), which conflicts with rusqlite
//! 0.40's `links = "sqlite3"`.
//!
//! # Concurrency across replicas
//!
//! Transactions run at READ COMMITTED with explicit locks:
//!
//! - every write that reads then writes a person's requests first takes
//!   `pg_advisory_xact_lock` on the canonical e-mail ([`lock_email`]); so request-approval,
//!   decisions, reopen and erasure of one person are serialised cluster-wide as the SQLite
//!   writer thread serialises them (two replicas racing the same sign-up → one row, attempts
//!   counted once); rows read for a decision are `FOR UPDATE`. A unique-key violation or a
//!   serialization failure/deadlock retries the whole transaction ([`PgStore::write`]).
//! - Check-status answers from the replica's cache when it holds the person, or reads the
//!   table (one statement shared by the checks waiting at the time, [`PgStore::check_status`]).
//!   Every write that changes an answer drops the person from every replica's cache through
//!   the database before it is acknowledged ([`check_cache`]: triggers fill each replica's
//!   inbox in the writing transaction, replicas drain it under a lease, and [`write_tx!`] and
//!   request-approval wait at the barrier after their commit), so a decision acknowledged by
//!   replica A is what replica B answers next.
//!
//! # Sequence order across replicas
//!
//! Events (`/api/events`, `seq`) and request changes (`?since=`, `change_seq`) take numbers
//! from sequences, which commit out of order across transactions: T1 takes 5, T2 takes 6, T2
//! commits, a reader reads 6 and moves its mark past 5, then T1 commits 5 — a skipped event.
//! The store prevents that so:
//!
//! 1. every write transaction takes the shared advisory lock [`SEQ_LOCK`]
//!    (`pg_advisory_xact_lock_shared`) before any `nextval` and holds it to its commit;
//! 2. a reader reads rows above its mark; if they are gap-free (`after+1, after+2, …`) nothing
//!    can be missing below the last one, and it returns them ([`events_after`]);
//! 3. otherwise (a number in flight, rolled back, or deleted by erasure/compaction) it reads the
//!    sequence's `last_value` `h`, then takes and releases [`SEQ_LOCK`] exclusively: that waits
//!    for every transaction that holds a number ≤ `h` to commit or roll back; then it reads
//!    again and returns only rows ≤ `h`, all final.
//!
//! So readers see numbers in order without serialising writers (which commit concurrently and
//! share WAL flushes); only a reader that meets a gap waits, for the writes in flight.
//!
//! # Notifications after commit
//!
//! The live streams of every replica learn of new events by `LISTEN guestlist_events`
//! ([`PgStore::listen_events`] turns the notifications into
//! [`ClusterSignal`](super::backend::ClusterSignal)s), and then read [`events_after`] from their
//! last seen number: a notification is only a wake-up, its order and payload do not matter.
//!
//! No write transaction runs `pg_notify`. PostgreSQL serialises the commits of notifying
//! transactions (a database-wide lock taken at commit and held through its WAL flush): pgbench
//! measured 1,517 tps with `pg_notify` in the transaction against 8,667 without, where the
//! commits run concurrently and share WAL flushes (issue 13 §5, `bench/NOTES.md`). Instead
//! each committed [`write_tx!`] wakes the replica's notifier task
//! ([`PgStore::wake_listeners`], never waiting), which sends one `pg_notify` (payload: the
//! event sequence's last value) per group of commits — at most one notification in flight per replica, after the commits it covers —
//! in a transaction of its own with `synchronous_commit = off` (it stores nothing; every write
//! transaction still commits with `synchronous_commit = on`).
//!
//! A replica that dies between a commit and its notification sends none. The listeners do not
//! depend on it: [`PgStore::listen_events`] also reports a
//! [`ClusterSignal::Resync`](super::backend::ClusterSignal::Resync) after
//! [`CATCH_UP_INTERVAL`] without any notification, so an idle stream reads [`events_after`]
//! (one indexed query) at that pace and such an event reaches every replica within about
//! that interval.
//!
//! # Round trips
//!
//! Every statement of a write transaction is prepared once per pooled connection (deadpool's
//! statement cache: `prepare_cached`), so it costs one round trip (bind + execute) instead of
//! two (parse, then bind + execute) and the server neither parses nor plans it again. Where a
//! transaction's next statements do not depend on each other's results they are sent together
//! (tokio-postgres pipelines the requests of futures polled together; the server still runs
//! them one after the other, in the order sent): [`write_tx!`] sends the shared [`SEQ_LOCK`]
//! with the body's first statements, so a write transaction is `BEGIN`, then the body's round
//! trips, then `COMMIT`.
//!
//! Request-approval, the connector's hot write, goes further ([`signup`]): `BEGIN`, the two
//! locks and the lookup go out in one write, what to write is decided in memory, and the row,
//! history entry, event and `COMMIT` go out in a second write — **two round trips** for a new
//! sign-up (fourteen before issue 13 §5's changes, four with `BEGIN` and `COMMIT` alone:
//! `bench/NOTES.md`). A failed statement makes the pipelined `COMMIT` a rollback, and a call
//! dropped inside its transaction closes its connection instead of returning it to the pool.
//!
//! # Pools
//!
//! A deadpool pool per replica ([`PoolConfig`], `[postgres]`), the main pool (`pool_size`),
//! for write transactions, jobs and the approvers' reads; and a few shared connections
//! (`read_pool_size`) that only check-status uses. A sign-up holds its connection through its
//! commit's WAL flush; with one shared pool, a burst of sign-ups could leave Entra's
//! check-status calls waiting for a slot, and check-status is one short statement that needs
//! no more than a few connections.
//!
//! The check-status connections are not pooled but shared ([`reads`]): every check runs on one
//! of them at once, the concurrent checks' queries pipelined on the connection (one `send`,
//! one `recv` and one backend wake-up for many checks instead of one each, and no wait for a
//! slot). A connection that ends is replaced by the next call, which waits at most
//! [`ACQUIRE_TIMEOUT`] for it and fails with [`StoreError::Unavailable`] otherwise, as a pooled
//! call does.
//!
//! # Tombstone key
//!
//! Denial tombstones (HMAC-SHA256 of the canonical e-mail, [`crate::store::privacy`]) must
//! match on every replica, so the key is `retention.tombstone_key` (the same on each), or,
//! when unset, a random key the first replica stores in the `settings` table and the others
//! read ([`PgStore::ensure_tombstone_key`], with a WARN: a dump then holds the key too).
//! Check-status and request-approval compare digests in SQL: no tombstone set in memory.
//!
//! Owns: the PostgreSQL schema and transactions. Must not know HTTP.

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_postgres::Pool;
use deadpool_postgres::Transaction;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use super::StoreError;

/// Runs `$body` (an expression that may `.await` and use `?` on [`TxResult`], with the
/// transaction bound to `$tx`) in a write transaction that first takes the shared
/// [`SEQ_LOCK`] (module docs), commits it, then wakes the notifier
/// ([`PgStore::wake_listeners`], module docs "Notifications after commit") and waits at the
/// check-status caches' barrier ([`check_cache::barrier`]); runs it again (up to [`MAX_ATTEMPTS`] times in
/// all) after a serialization failure, a deadlock or a unique violation. Evaluates to
/// `Result<T, StoreError>`.
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        async {
            let mut pooled = $store.conn().await?;
            let client: &mut deadpool_postgres::ClientWrapper = &mut pooled;
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let $tx = client
                    .transaction()
                    .await
                    .map_err($crate::store::pg::db_err)?;
                // The shared sequence lock and the body's first statements go out in one
                // write (pipelined, module docs "Round trips"): the server runs them in the
                // order sent, so the body's statements still run after the lock is held.
                let run: $crate::store::pg::TxResult<_> =
                    match $crate::store::pg::seq_lock_shared(&$tx).await {
                        Ok(lock) => {
                            let (locked, run) = futures::join!(lock, async { $body });
                            match locked {
                                Ok(_) => run,
                                Err(e) => Err($crate::store::pg::TxError::Db(e)),
                            }
                        }
                        Err(e) => Err(e),
                    };
                if let Some(v) = $crate::store::pg::finish($tx, run, attempt).await? {
                    // Committed: wake the other replicas' listeners, after the commit, and
                    // acknowledge only once no replica's check-status cache can answer from
                    // before it (`check_cache.rs`).
                    $store.wake_listeners();
                    $crate::store::pg::check_cache::barrier(&$store.cache, client).await;
                    break Ok::<_, $crate::store::StoreError>(v);
                }
            }
        }
        .await
    }};
}

mod backend_impl;
mod check_batch;
mod check_cache;
mod error;
mod escalation;
mod events;
mod export;
mod external;
mod job_cursor;
mod jobs;
mod pool;
mod privacy;
mod reads;
mod requests;
mod rows;
mod signup;

pub use check_cache::{CAPACITY as CHECK_CACHE_CAPACITY, LEASE as CHECK_CACHE_LEASE};
pub(super) use error::{TxError, TxResult, db_err, pool_err, retryable};
pub use jobs::JobLockGuard;
pub use pool::PoolConfig;

/// How long the socket-level connection to the server may take (an unreachable host fails
/// after this).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a new pooled connection may take in all (socket, TLS, SCRAM authentication, start-up),
/// once the server answered: a burst of new connections at start-up shares two cores.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a pooled connection (or a new one) before
/// [`StoreError::Unavailable`].
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// `statement_timeout` of every pooled connection.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per replica of the main pool by default ([`PoolConfig::pool_size`]).
pub const POOL_SIZE: usize = PoolConfig::DEFAULT_POOL_SIZE;
/// Connections of the main pool opened when the store connects ([`PgStore::prewarm`]; the
/// read pool is opened whole).
pub const PREWARM: usize = 16;

/// Advisory lock keys are `(namespace, key)` int pairs; this is guestlist's namespace.
pub(super) const LOCK_NS: i32 = 0x676c_7374; // "glst"
/// Key of the sequence-order lock (module docs).
pub(super) const SEQ_LOCK: i32 = 1;
/// Key of the migration lock.
const MIGRATE_LOCK: i32 = 2;
/// Namespace of the per-e-mail locks (the key is `hashtext(email)`).
pub(super) const EMAIL_NS: i32 = 0x676c_656d; // "glem"
/// Namespace of the job locks (the key is `hashtext(name)`).
pub(super) const JOB_NS: i32 = 0x676c_6a62; // "gljb"

/// Namespace of the Idempotency-Key locks (the key is `hashtext(key)`).
pub(super) const IDEMPOTENCY_NS: i32 = 0x676c_6964; // "glid"

/// The channel of event notifications (payload: the event sequence's last value when sent, a
/// hint only; module docs "Notifications after commit").
pub const EVENTS_CHANNEL: &str = "guestlist_events";

/// How long [`PgStore::listen_events`] waits without a notification before it reports a
/// [`ClusterSignal::Resync`](super::backend::ClusterSignal::Resync) anyway (a catch-up read of
/// events committed without a notification: module docs "Notifications after commit").
pub const CATCH_UP_INTERVAL: Duration = Duration::from_secs(1);

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// The PostgreSQL store: a connection pool and the tombstone key. Cheap to share behind an
/// `Arc`.
pub struct PgStore {
    pool: Pool,
    /// The shared, pipelined connections of check-status only
    /// ([`PoolConfig::read_pool_size`], module docs "Pools").
    reads: Arc<reads::SharedReads>,
    /// The queue of check-status calls, batched onto [`PgStore::reads`] ([`check_batch`]).
    checks: check_batch::CheckBatcher,
    /// This replica's check-status cache ([`check_cache`]).
    cache: Arc<check_cache::CheckCache>,
    /// Dropped with the store: ends the cache's sync task.
    _cache_stop: tokio::sync::oneshot::Sender<()>,
    /// The parsed URL, for the dedicated connections of [`PgStore::listen_events`].
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// The tombstone key: `retention.tombstone_key`, or the one kept in the database
    /// ([`PgStore::ensure_tombstone_key`]); replicas must share it, so never a file beside one
    /// replica.
    tombstone_key: RwLock<Option<Hmac<Sha256>>>,
    /// A background `VACUUM` after an erasure is running ([`PgStore::checkpoint_truncate`]).
    vacuuming: Arc<std::sync::atomic::AtomicBool>,
    /// Another erasure happened: vacuum again.
    vacuum_again: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes the notifier task ([`PgStore::wake_listeners`]); capacity 1, so wakes that arrive
    /// while one is pending coalesce. The task ends when the store is dropped.
    notifier: tokio::sync::mpsc::Sender<()>,
}

/// How many times [`write_tx!`] runs a transaction at most.
pub(super) const MAX_ATTEMPTS: u32 = 10;

/// Takes the shared [`SEQ_LOCK`] for the transaction (module docs): prepares the statement
/// (once per connection, deadpool's statement cache) and returns the future that runs it, to be
/// polled first so that its message is sent before the body's (module docs "Round trips").
///
/// Errors: the statement could not be prepared.
pub(super) async fn seq_lock_shared<'a>(
    tx: &'a Transaction<'_>,
) -> TxResult<impl std::future::Future<Output = Result<u64, tokio_postgres::Error>> + 'a> {
    let statement = tx.prepare_cached(SEQ_LOCK_SHARED_SQL).await?;
    Ok(async move { tx.execute(&statement, &[&LOCK_NS, &SEQ_LOCK]).await })
}

/// The statement of [`seq_lock_shared`] (parameters [`LOCK_NS`], [`SEQ_LOCK`]).
pub(super) const SEQ_LOCK_SHARED_SQL: &str = "SELECT pg_advisory_xact_lock_shared($1, $2)";

/// Ends a [`write_tx!`] transaction: commits after `Ok` (`Some(value)`), rolls back after an
/// error; `None` means "run it again" (a retryable failure, attempts left).
pub(super) async fn finish<T>(
    tx: Transaction<'_>,
    run: TxResult<T>,
    attempt: u32,
) -> Result<Option<T>, StoreError> {
    match run {
        Ok(v) => match tx.commit().await {
            Ok(()) => Ok(Some(v)),
            Err(e) if retryable(&e) && attempt < MAX_ATTEMPTS => Ok(None),
            Err(e) => Err(db_err(e)),
        },
        Err(TxError::Db(e)) => {
            let _ = tx.rollback().await;
            if retryable(&e) && attempt < MAX_ATTEMPTS {
                Ok(None)
            } else {
                Err(db_err(e))
            }
        }
        Err(TxError::Store(e)) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// Truncates to microseconds, PostgreSQL's `timestamptz` precision, so what a call returns
/// equals what a later read returns.
pub(super) fn micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// Serialises a value for a `jsonb` column.
pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Reads a value back from a `jsonb` column.
pub(super) fn unjson<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Takes the cluster-wide lock of `email`'s requests until the transaction ends (module docs).
pub(super) async fn lock_email(tx: &Transaction<'_>, email: &str) -> TxResult<()> {
    let statement = tx.prepare_cached(LOCK_EMAIL_SQL).await?;
    tx.execute(&statement, &[&EMAIL_NS, &email]).await?;
    Ok(())
}

/// The statement of [`lock_email`].
pub(super) const LOCK_EMAIL_SQL: &str = "SELECT pg_advisory_xact_lock($1, hashtext($2))";

/// Rewrites the libpq-style URL for tokio-postgres: `sslmode=verify-full` and `verify-ca`
/// become `require` (which verifies the chain and the host name here: rustls never connects
/// unverified), `allow` becomes `prefer`; `sslrootcert=<file>` is taken out and returned (its
/// PEM certificates are trusted besides the OS store).
///
/// Errors: [`StoreError::Backend`] for a URL that cannot be parsed (not repeated: it may hold a
/// password) or an unknown `sslmode`.
fn prepare_url(url: &str) -> Result<(String, Option<std::path::PathBuf>), StoreError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| StoreError::Backend(format!("the PostgreSQL database URL is invalid: {e}")))?;
    let mut root_cert = None;
    let mut pairs = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("sslrootcert", file) => root_cert = Some(std::path::PathBuf::from(file)),
            ("sslmode", "verify-full" | "verify-ca") => {
                pairs.push((k.into_owned(), "require".to_owned()))
            }
            ("sslmode", "allow") => pairs.push((k.into_owned(), "prefer".to_owned())),
            ("sslmode", "disable" | "prefer" | "require") => {
                pairs.push((k.into_owned(), v.into_owned()))
            }
            ("sslmode", other) => {
                return Err(StoreError::Backend(format!(
                    "the PostgreSQL database URL has an unknown sslmode {other:?} (disable, prefer, require, verify-ca, verify-full)"
                )));
            }
            _ => pairs.push((k.into_owned(), v.into_owned())),
        }
    }
    if pairs.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok((parsed.into(), root_cert))
}

fn tls_connector(
    root_cert: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if let Some(file) = root_cert {
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| StoreError::Backend(format!("sslrootcert {}: {e}", file.display())))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| StoreError::Backend(format!("sslrootcert {}: {e}", file.display())))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl PgStore {
    /// Connects to the PostgreSQL database `url` names (module docs), applies the migrations
    /// and returns the store.
    ///
    /// Errors: [`StoreError::Backend`] for a URL that cannot be parsed (the message does not
    /// repeat it: it may hold a password) or a failed migration; [`StoreError::Unavailable`]
    /// when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::connect_with(url, &PoolConfig::default()).await
    }

    /// [`PgStore::connect`] with the pool sizes of `pools` (`[postgres]`).
    ///
    /// Errors: as [`PgStore::connect`]; [`StoreError::Backend`] for a pool size out of range
    /// ([`PoolConfig::validate`]).
    pub async fn connect_with(url: &str, pools: &PoolConfig) -> Result<PgStore, StoreError> {
        pools.validate()?;
        let (url, root_cert) = prepare_url(url)?;
        let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
            StoreError::Backend(format!("the PostgreSQL database URL is invalid: {e}"))
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("guestlist-server");
        }
        // `guestlist.check_cache_barrier`: this replica's writers wait at the check-status
        // caches' barrier after their commits, so the caches' triggers need not make them wait
        // for every lease to lapse before it (`check_cache.rs`, migration V8).
        let options = format!(
            "{} -c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout=30000 \
             -c guestlist.check_cache_barrier=on",
            config.get_options().unwrap_or_default(),
            STATEMENT_TIMEOUT.as_millis(),
            STATEMENT_TIMEOUT.as_millis()
        );
        config.options(options.trim());
        let tls = tls_connector(root_cert.as_deref())?;
        let pool = pool::build(&config, &tls, pools.pool_size)?;
        let reads = Arc::new(reads::SharedReads::new(
            config.clone(),
            tls.clone(),
            pools.read_pool_size,
        ));
        let checks = check_batch::CheckBatcher::start(reads.clone());
        let (notifier, wakes) = tokio::sync::mpsc::channel(1);
        tokio::spawn(events::notifier(pool.clone(), wakes));
        let cache = Arc::new(check_cache::CheckCache::new(pools.check_cache));
        let (cache_stop, stopped) = tokio::sync::oneshot::channel();
        // Named apart in pg_stat_activity, for operators (and the tests).
        let mut cache_config = config.clone();
        cache_config.application_name(format!(
            "{} (check cache)",
            config.get_application_name().unwrap_or("guestlist-server")
        ));
        tokio::spawn(check_cache::run(
            cache.clone(),
            cache_config,
            tls.clone(),
            stopped,
        ));
        let store = PgStore {
            pool,
            reads,
            checks,
            cache,
            _cache_stop: cache_stop,
            config,
            tls,
            tombstone_key: RwLock::new(None),
            vacuuming: Arc::default(),
            vacuum_again: Arc::default(),
            notifier,
        };
        store.migrate().await?;
        store.prewarm().await;
        Ok(store)
    }

    /// Applies the embedded migrations under the migration lock (module docs).
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        client
            .execute(
                "SELECT pg_advisory_lock($1, $2)",
                &[&LOCK_NS, &MIGRATE_LOCK],
            )
            .await
            .map_err(db_err)?;
        let done = embedded::migrations::runner()
            .run_async(&mut **client)
            .await
            .map_err(|e| StoreError::Backend(format!("PostgreSQL migration failed: {e}")));
        client
            .execute(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&LOCK_NS, &MIGRATE_LOCK],
            )
            .await
            .map_err(db_err)?;
        done.map(|_| ())
    }

    /// Opens [`PREWARM`] connections at once and returns them to the pool, and makes the shared
    /// check-status connections, so the first burst of calls does not wait for connection
    /// set-up (SCRAM authentication, TLS) on every slot. Best effort: a connection that fails
    /// is made later, on demand.
    async fn prewarm(&self) {
        let writes = PREWARM.min(self.pool.status().max_size);
        let (conns, ()) = futures::join!(
            futures::future::join_all((0..writes).map(|_| self.pool.get())),
            self.reads.prewarm()
        );
        drop(conns);
    }

    /// How many check-status statements this replica sent and how many calls they carried
    /// (`/metrics`: `guestlist_check_status_statements_total`,
    /// `guestlist_check_status_lookups_total`; [`check_batch`]).
    pub fn check_status_sent(&self) -> (u64, u64) {
        self.checks.sent()
    }

    /// This replica's check-status cache: calls answered from it, calls read from the
    /// database while it was valid, and entries held ([`check_cache`]).
    pub fn check_cache_stats(&self) -> (u64, u64, usize) {
        self.cache.stats()
    }

    /// Fault injection for tests: this replica's cache neither drains its inbox nor renews its
    /// lease for `d`, as if stuck, while it keeps serving until its lease lapses
    /// ([`check_cache`]).
    #[doc(hidden)]
    pub fn stall_check_cache_sync(&self, d: Duration) {
        self.cache.stall_for(d);
    }

    /// A pooled connection (within [`ACQUIRE_TIMEOUT`]).
    ///
    /// Errors: [`StoreError::Unavailable`].
    pub(super) async fn conn(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Whether the database answers (`SELECT 1`), for `/readyz`.
    ///
    /// Errors: [`StoreError::Unavailable`] within about a second when it cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.conn().await?;
        client.query_one("SELECT 1", &[]).await.map_err(db_err)?;
        Ok(())
    }

    /// The tombstone key in force.
    ///
    /// Errors: none is set ([`StoreError::Backend`], naming the setting): the server always
    /// sets one at start ([`PgStore::ensure_tombstone_key`]).
    fn tombstone_mac(&self) -> Result<Hmac<Sha256>, StoreError> {
        self.tombstone_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreError::Backend(
                    "a PostgreSQL database needs retention.tombstone_key (or tombstone_key_file), \
                     the same on every replica"
                        .into(),
                )
            })
    }

    /// The tombstone digest of a canonical e-mail, or `None` when no key is set (then no
    /// tombstone can have been stored by this deployment's erasures).
    fn tombstone_digest(&self, canonical_email: &str) -> Option<Vec<u8>> {
        let mut mac = self
            .tombstone_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        mac.update(canonical_email.as_bytes());
        Some(mac.finalize().into_bytes().to_vec())
    }

    /// Sets the denial tombstone key (`retention.tombstone_key`; every replica must use the
    /// same).
    ///
    /// Errors: [`StoreError::Corrupt`] if HMAC refuses the key.
    pub async fn set_tombstone_key(&self, key: Vec<u8>) -> Result<(), StoreError> {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map_err(|e| StoreError::Corrupt(format!("tombstone key: {e}")))?;
        *self
            .tombstone_key
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mac);
        Ok(())
    }

    /// Makes sure a tombstone key is in force. Without `retention.tombstone_key` the key is
    /// the one kept in the database's `settings` table (32 random bytes as 64 hex digits, made
    /// by the first replica that needs it; the others read the same), logged at WARN: a dump of
    /// the database then holds both the tombstones and their key, so configure the key (the
    /// same on every replica) in production.
    ///
    /// Errors: [`StoreError`] on database failure or when no randomness is available.
    pub async fn ensure_tombstone_key(&self) -> Result<(), StoreError> {
        if self
            .tombstone_key
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
        {
            return Ok(());
        }
        let mut bytes = [0u8; 32];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut bytes).map_err(|e| {
            StoreError::Backend(format!("no randomness for the tombstone key: {e}"))
        })?;
        let fresh = hex::encode(bytes).into_bytes();
        let client = self.conn().await?;
        client
            .execute(
                "INSERT INTO settings (name, value) VALUES ('tombstone_key', $1) ON CONFLICT (name) DO NOTHING",
                &[&fresh],
            )
            .await
            .map_err(db_err)?;
        let key: Vec<u8> = client
            .query_one(
                "SELECT value FROM settings WHERE name = 'tombstone_key'",
                &[],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db_err)?;
        drop(client);
        tracing::warn!(
            "retention.tombstone_key is unset: using the denial tombstone key kept in the database \
             (a dump holds both the tombstones and their key); configure it on every replica"
        );
        self.set_tombstone_key(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_cut_to_microseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789).unwrap();
        assert_eq!(micros(t).unix_timestamp_nanos(), 1_800_000_000_123_456_000);
    }
}
