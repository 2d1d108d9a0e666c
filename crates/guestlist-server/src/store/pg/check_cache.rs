//! The check-status cache of a replica (issue 13 §2 "A decision is seen at once", §5): what
//! check-status found for a stored request, kept in memory under a lease, so that Entra's
//! repeated calls for the same people are answered without a round trip to PostgreSQL, and
//! never with an answer that a decision acknowledged anywhere in the cluster has made stale.
//!
//! # What is cached
//!
//! A [`Found::Request`] (the request of an identity key: id, status, creation time, and whether
//! the person is denied) and a [`Found::DeniedEmail`]. Never [`Found::Nothing`]: a new sign-up
//! then needs no invalidation, so request-approval's hot path writes nothing more. At most
//! [`CAPACITY`] entries; a full cache is emptied and fills again with the people being asked
//! about (a flood of distinct people costs what it costs without a cache, and no more memory).
//!
//! # Invalidation through the database (migration `V8__check_cache.sql`)
//!
//! 1. A replica that caches holds a row in `check_caches`: its lease (`lease_until`, from the
//!    database's clock) and an inbox. It registers under the sequence lock
//!    ([`super::SEQ_LOCK`]) taken exclusively; every writer holds it shared until its commit.
//! 2. Triggers on `requests` and `tombstones` append, **in the writing transaction**, the
//!    SHA-256 of the person's canonical e-mail to every row's inbox (or set `flush`): any write
//!    that changes a check-status answer (a decision, reopen, expiry, re-request, erasure,
//!    retention) invalidates, whichever code path made it.
//! 3. Each replica's sync task ([`run`]) reads its inbox, drops those people from memory, and
//!    only then records `drained` and renews its lease, in one statement that succeeds only
//!    while the lease is live and renews only if nothing was appended since the inbox was read
//!    (else it reads again). It does so on a notification ([`CHANNEL`]) and at least every
//!    [`RENEW_EVERY`].
//! 4. A writer, after its commit and before it answers ([`barrier`]), waits until every row
//!    holding a live lease has drained past the entries it found there; it reads the rows
//!    `FOR SHARE`, so a renewal in flight is waited for, not missed.
//!
//! A replica serves from memory only until `send time of its last successful renewal +`
//! [`LEASE`] `−` [`MARGIN`], which is before the database's `lease_until` for that renewal (the
//! statement starts after it is sent). So a replica the writer found with a lapsed lease has
//! already stopped serving from memory; its next renewal fails (the lease is no longer live), and
//! it empties its cache before it takes a new lease, or, if that renewal was sent before the
//! lease lapsed and waited for a lock, it renews only after applying every entry appended before
//! it (step 3). Fills are guarded by a generation counter: an answer read before an invalidation
//! was applied is never stored after it.
//!
//! # Why a replica never answers from before an acknowledged write
//!
//! Take a write W of person P, committed at time `c` and acknowledged after the barrier, and a
//! replica R. If R registered after `c`, every answer it holds was read after `c`. Otherwise R's
//! row was there when W's trigger ran (R registered under the sequence lock exclusively, which
//! waits for W, holding it shared, to commit), so W appended to R's inbox in its own transaction
//! (the trigger locks every row, so W also waited for any renewal of R in flight). The barrier
//! then read R's row, latest version (`FOR SHARE` waits for a renewal in flight), and went on
//! only in one of two cases:
//!
//! - **R drained past W's entry.** R applies the entries it fetched before the statement that
//!   records `drained`, so P had left R's memory before the barrier saw it. A lookup of P that
//!   read the table before `c` and fills after that drop holds a ticket of an older generation
//!   (the drop bumped it), so it is not stored; one that fills before the drop is dropped with
//!   it. Any later fill read the table after `c`.
//! - **R's lease was not live** (`lease_until ≤ now()` on the database's clock). R stopped
//!   serving from memory before that instant (its local deadline ends [`MARGIN`] before what it
//!   asked the database for, counted from before it sent the statement). Its next renewal fails,
//!   since it requires a live lease, so it empties its cache (bumping the generation) before it
//!   takes a new lease, and every entry it then holds was read after `c`. A renewal that passed
//!   the liveness test before the lease lapsed but updates the row after (it waited for the
//!   barrier's `FOR SHARE`, a revocation or a held row) extends the lease only if nothing was
//!   appended since its fetch, i.e. only once R has applied W's entry: the first case.
//!
//! Nothing else lets R serve: no lease, no sync connection or a full cache all mean "read the
//! table". `tests/it/pg_store/cache.rs` runs decisions on one replica while the other answers
//! the same people from memory in a loop, a stuck replica, cut sync connections, a replica that
//! starts during a write, and a writer without the barrier.
//!
//! A writer waits at most 2 × [`LEASE`] for replicas that are alive but behind; then it revokes
//! their leases and waits one more [`LEASE`] (they stop serving from memory by then). A writer
//! that loses the database after its commit waits [`LEASE`] + [`RENEW_EVERY`]: by then every
//! replica has drained by itself or let its lease lapse. A replica killed with `kill -9` holds
//! writers up for at most the rest of its lease, once; its row is removed after [`FORGET_AFTER`].
//!
//! # Writers that do not wait at the barrier
//!
//! A replica of an earlier version (during a rolling upgrade) or an operator's SQL does not run
//! [`barrier`]. The trigger tells them apart by the session setting
//! `guestlist.check_cache_barrier`, which this version sets on every connection, and makes such
//! a writer wait before its commit, holding every row (so no replica renews), until every lease
//! has lapsed: each replica then stops serving from memory before the write commits and empties
//! its cache before it takes a new lease. Such a write takes up to [`LEASE`] longer; no setting
//! needs to change during an upgrade.
//!
//! Losing its sync connection empties a replica's cache at once (every check then reads the
//! database, and fails fast while it is down, as without a cache).
//!
//! Owns: the cache, its lease and the writers' barrier. Must not know HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use guestlist_core::model::IdentityKey;
use sha2::{Digest, Sha256};
use tokio_postgres::{AsyncMessage, Client};
use uuid::Uuid;

use super::db_err;
use crate::store::StoreError;
use crate::store::check_index::{CheckIndex, Found};

/// How long a renewal keeps a replica's lease (the database's clock).
pub const LEASE: Duration = Duration::from_secs(2);
/// How often a replica renews its lease (and drains its inbox) without being told to.
pub const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How much earlier than its lease a replica stops serving from memory (clock rate drift
/// between the replica and the database, scheduling delays).
pub const MARGIN: Duration = Duration::from_millis(250);
/// The most entries a replica's cache holds (about 100 bytes each).
pub const CAPACITY: usize = 200_000;
/// The channel a writer notifies when replicas have entries to drain.
pub const CHANNEL: &str = "guestlist_check_cache";
/// How long after its lease lapsed a replica's row is deleted (by any replica).
pub const FORGET_AFTER: Duration = Duration::from_secs(60);

/// One replica's cache (module docs).
pub(super) struct CheckCache {
    /// This replica's row in `check_caches`.
    replica: Uuid,
    /// Whether this replica caches at all (`[postgres] check_cache`).
    enabled: bool,
    /// The origin of [`CheckCache::valid_until`].
    base: Instant,
    /// Nanoseconds after `base` until which entries may be served; 0: none may.
    valid_until: AtomicU64,
    inner: RwLock<Inner>,
    /// Wakes the sync task (a notification, or this replica's own writer waiting).
    wake: tokio::sync::Notify,
    /// Test hook: the sync task does nothing until this (nanoseconds after `base`).
    stalled_until: AtomicU64,
    /// The sync connection is up (set by its driver task).
    connected: AtomicBool,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidated: AtomicU64,
    flushes: AtomicU64,
    barrier_waits: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every invalidation and flush (module docs, fills).
    generation: u64,
    /// The first 128 bits of SHA-256(canonical e-mail) → (identity key digest, what was found).
    by_email: HashMap<u128, Vec<(u128, Found)>>,
    entries: usize,
}

/// What a miss needs to fill the cache afterwards ([`CheckCache::fill`]).
pub(super) struct Ticket {
    /// The generation when the lookup started; `None`: the cache was not valid, do not fill.
    generation: Option<u64>,
    email: u128,
    key: u128,
}

/// The first 128 bits of SHA-256 of a canonical e-mail, as the triggers compute it
/// (`sha256(convert_to(email, 'UTF8'))`).
fn email_digest(email: &[u8]) -> u128 {
    let d = Sha256::digest(email);
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    u128::from_be_bytes(first)
}

impl CheckCache {
    /// A cache that serves nothing until its first lease; `enabled: false` never serves.
    pub(super) fn new(enabled: bool) -> CheckCache {
        CheckCache {
            replica: Uuid::new_v4(),
            enabled,
            base: Instant::now(),
            valid_until: AtomicU64::new(0),
            inner: RwLock::new(Inner::default()),
            wake: tokio::sync::Notify::new(),
            stalled_until: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether entries may be served now (a live lease, the sync connection up).
    fn valid(&self) -> bool {
        self.nanos(Instant::now()) < self.valid_until.load(Ordering::Acquire)
            && self.connected.load(Ordering::Acquire)
    }

    /// The cached answer for `key`, or the ticket to fill the cache with what the database
    /// answers.
    pub(super) fn lookup(&self, key: &IdentityKey) -> Result<Found, Ticket> {
        let email = email_digest(key.email.as_bytes());
        let k = CheckIndex::hash_key(key);
        if !self.enabled || !self.valid() {
            return Err(Ticket {
                generation: None,
                email,
                key: k,
            });
        }
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = inner
            .by_email
            .get(&email)
            .and_then(|v| v.iter().find(|(kk, _)| *kk == k))
        {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found.1.clone());
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        Err(Ticket {
            generation: Some(inner.generation),
            email,
            key: k,
        })
    }

    /// Stores what the database answered for a miss, unless the cache was invalidated or
    /// flushed since the ticket was taken, or is not valid now (module docs).
    pub(super) fn fill(&self, ticket: Ticket, found: &Found) {
        let Some(generation) = ticket.generation else {
            return;
        };
        if matches!(found, Found::Nothing) {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.generation != generation || !self.valid() {
            return;
        }
        if inner.entries >= CAPACITY {
            inner.by_email.clear();
            inner.entries = 0;
            inner.generation += 1;
        }
        let slot = inner.by_email.entry(ticket.email).or_default();
        if slot.iter().any(|(k, _)| *k == ticket.key) {
            return;
        }
        slot.push((ticket.key, found.clone()));
        inner.entries += 1;
    }

    /// Drops the people of `digests` (full SHA-256 values), or everything with `all`.
    fn apply(&self, digests: &[Vec<u8>], all: bool) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        if all {
            inner.by_email.clear();
            inner.entries = 0;
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
            return;
        }
        for d in digests {
            let Some(first) = d.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()) else {
                continue;
            };
            if let Some(v) = inner.by_email.remove(&u128::from_be_bytes(first)) {
                inner.entries -= v.len();
            }
            self.counters.invalidated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stops serving and empties the cache (a lost lease or connection).
    fn flush(&self) {
        self.valid_until.store(0, Ordering::Release);
        self.apply(&[], true);
    }

    /// Hits, misses (while valid) and entries.
    pub(super) fn stats(&self) -> (u64, u64, usize) {
        (
            self.counters.hits.load(Ordering::Relaxed),
            self.counters.misses.load(Ordering::Relaxed),
            self.len(),
        )
    }

    /// Entries in memory.
    pub(super) fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
    }

    /// Test hook: the sync task neither drains nor renews for `d` (a replica that is stuck but
    /// keeps its connection), while the cache goes on serving until its lease lapses.
    pub(super) fn stall_for(&self, d: Duration) {
        self.stalled_until
            .store(self.nanos(Instant::now() + d), Ordering::Release);
    }

    /// The `/metrics` lines of the cache.
    pub(super) fn render_metrics(&self) -> String {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP guestlist_check_cache_hits_total Check-status calls answered from this replica's cache.\n\
             # TYPE guestlist_check_cache_hits_total counter\n\
             guestlist_check_cache_hits_total {}\n\
             # HELP guestlist_check_cache_misses_total Check-status calls read from PostgreSQL while the cache was valid.\n\
             # TYPE guestlist_check_cache_misses_total counter\n\
             guestlist_check_cache_misses_total {}\n\
             # HELP guestlist_check_cache_invalidations_total Invalidations applied: people whose answers a write on any replica may have changed.\n\
             # TYPE guestlist_check_cache_invalidations_total counter\n\
             guestlist_check_cache_invalidations_total {}\n\
             # HELP guestlist_check_cache_flushes_total Times the whole cache was emptied (lease or connection lost, tombstones, capacity).\n\
             # TYPE guestlist_check_cache_flushes_total counter\n\
             guestlist_check_cache_flushes_total {}\n\
             # HELP guestlist_check_cache_barrier_waits_total Writes that waited for replicas to drop a changed answer before acknowledging.\n\
             # TYPE guestlist_check_cache_barrier_waits_total counter\n\
             guestlist_check_cache_barrier_waits_total {}\n\
             # HELP guestlist_check_cache_entries Entries in this replica's check-status cache.\n\
             # TYPE guestlist_check_cache_entries gauge\n\
             guestlist_check_cache_entries {}\n",
            l(&c.hits),
            l(&c.misses),
            l(&c.invalidated),
            l(&c.flushes),
            l(&c.barrier_waits),
            self.len(),
        )
    }
}

/// Registers (again) after the cache was emptied: a live lease, and everything appended so far
/// counted as drained (the cache holds nothing it could apply to). Under the sequence lock taken
/// exclusively (`$3`, `$4`: [`super::LOCK_NS`], [`super::SEQ_LOCK`]): it waits for every write
/// transaction in flight, so one that appended to the other replicas' inboxes but not to this new
/// row has committed before this replica reads anything, and every later append sees the row.
/// The lease counts from after the wait (`clock_timestamp()`; the subquery runs first).
const REGISTER_SQL: &str = "INSERT INTO check_caches (replica, lease_until)
     SELECT $1, clock_timestamp() + $2::bigint * interval '1 millisecond'
       FROM (SELECT pg_advisory_xact_lock($3, $4) OFFSET 0) AS sequence_lock
     ON CONFLICT (replica) DO UPDATE
        SET lease_until = EXCLUDED.lease_until, drained = check_caches.appended,
            inbox = '{}', flush = false";

/// The replica's inbox, and whether its lease is still live.
const FETCH_SQL: &str = "SELECT appended, inbox, flush, lease_until > now()
     FROM check_caches WHERE replica = $1";

/// Records what was applied and, only if nothing was appended since the fetch (`$2`), renews the
/// lease; only while it is live. Returns `appended`: equal to `$2` when the lease was renewed.
/// So a lease is only ever extended by a renewal that applied every entry appended before it,
/// even one whose `now()` predates a lock wait (a writer's `FOR SHARE` poll, a revocation, a
/// writer without the barrier holding the row until the lease lapsed): a writer that saw the
/// lease lapse is never made stale by it.
const RENEW_SQL: &str = "UPDATE check_caches
        SET drained = $2, inbox = inbox[($3::int + 1):], flush = flush AND appended <> $2,
            lease_until = CASE WHEN appended = $2
                               THEN now() + $4::bigint * interval '1 millisecond'
                               ELSE lease_until END
      WHERE replica = $1 AND lease_until > now()
  RETURNING appended";

/// Rows of replicas long gone.
const FORGET_SQL: &str =
    "DELETE FROM check_caches WHERE lease_until < now() - $1::bigint * interval '1 millisecond'";

/// The sync task of a replica's cache (module docs, step 3): connects, `LISTEN`s, registers,
/// then drains and renews on every notification and every [`RENEW_EVERY`]. A lost connection
/// empties the cache; the task reconnects (every 100 ms to 2 s). Ends when `stop` resolves (the
/// store was dropped).
pub(super) async fn run(
    cache: Arc<CheckCache>,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    if !cache.enabled {
        return;
    }
    let mut wait = Duration::from_millis(100);
    loop {
        let mut was_up = false;
        let session = session(&cache, &config, &tls, &mut was_up);
        let ended = tokio::select! {
            e = session => e,
            _ = &mut stop => return,
        };
        cache.connected.store(false, Ordering::Release);
        cache.flush();
        tracing::debug!(error = %ended, "check-status cache: sync connection lost; serving from the database");
        if was_up {
            // It had worked: try again soon.
            wait = Duration::from_millis(100);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return,
        }
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// One connection's life, until it fails (with why); sets `was_up` once it holds a lease.
async fn session(
    cache: &Arc<CheckCache>,
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    was_up: &mut bool,
) -> StoreError {
    match session_inner(cache, config, tls, was_up).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn session_inner(
    cache: &Arc<CheckCache>,
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    was_up: &mut bool,
) -> Result<std::convert::Infallible, StoreError> {
    let (client, mut connection) = bounded(config.connect(tls.clone())).await?;
    let (lost_tx, mut lost) = tokio::sync::oneshot::channel::<()>();
    let driver_cache = cache.clone();
    tokio::spawn(async move {
        loop {
            match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => driver_cache.wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        // Stop serving before anything else notices: checks go to the database from now on.
        driver_cache.connected.store(false, Ordering::Release);
        driver_cache.valid_until.store(0, Ordering::Release);
        driver_cache.wake.notify_one();
        let _ = lost_tx.send(());
    });
    bounded(client.batch_execute(&format!("LISTEN {CHANNEL}"))).await?;
    let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let forget_ms = i64::try_from(FORGET_AFTER.as_millis()).unwrap_or(i64::MAX);
    let register = bounded(client.prepare(REGISTER_SQL)).await?;
    let fetch = bounded(client.prepare(FETCH_SQL)).await?;
    let renew = bounded(client.prepare(RENEW_SQL)).await?;
    cache.connected.store(true, Ordering::Release);
    let mut registered = false;
    let mut last_forget = Instant::now();
    loop {
        let stalled = cache.stalled_until.load(Ordering::Acquire);
        if cache.nanos(Instant::now()) < stalled {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        if lost.try_recv().is_ok() {
            return Err(StoreError::Unavailable("sync connection closed".into()));
        }
        if !registered {
            cache.flush();
            let sent = Instant::now();
            bounded(client.execute(
                &register,
                &[&cache.replica, &lease_ms, &super::LOCK_NS, &super::SEQ_LOCK],
            ))
            .await?;
            cache
                .valid_until
                .store(cache.nanos(sent + LEASE - MARGIN), Ordering::Release);
            registered = true;
            *was_up = true;
        }
        // Drain and renew until nothing new arrived meanwhile.
        loop {
            let Some(row) = bounded(client.query_opt(&fetch, &[&cache.replica])).await? else {
                registered = false;
                break;
            };
            let appended: i64 = row.get(0);
            let inbox: Vec<Vec<u8>> = row.get(1);
            let flush: bool = row.get(2);
            let live: bool = row.get(3);
            if !live {
                registered = false;
                break;
            }
            if flush {
                cache.apply(&[], true);
            } else if !inbox.is_empty() {
                cache.apply(&inbox, false);
            }
            let taken = i32::try_from(inbox.len()).unwrap_or(i32::MAX);
            let sent = Instant::now();
            let Some(row) =
                bounded(client.query_opt(&renew, &[&cache.replica, &appended, &taken, &lease_ms]))
                    .await?
            else {
                registered = false;
                break;
            };
            let now_appended: i64 = row.get(0);
            if now_appended != appended {
                // Entries arrived since the fetch: the lease was not renewed (`RENEW_SQL`);
                // apply them first.
                continue;
            }
            let until = sent + LEASE - MARGIN;
            if Instant::now() >= until {
                // The renewal took longer than the lease: start over with an empty cache.
                registered = false;
                break;
            }
            cache
                .valid_until
                .store(cache.nanos(until), Ordering::Release);
            break;
        }
        if !registered {
            cache.flush();
            continue;
        }
        if last_forget.elapsed() >= FORGET_AFTER / 2 {
            last_forget = Instant::now();
            let _ = bounded(client.execute(FORGET_SQL, &[&forget_ms])).await;
        }
        tokio::select! {
            _ = cache.wake.notified() => {}
            _ = tokio::time::sleep(RENEW_EVERY) => {}
            _ = &mut lost => return Err(StoreError::Unavailable("sync connection closed".into())),
        }
    }
}

/// Runs one statement of the sync connection within [`LEASE`]: a connection that stops
/// answering (a network cut that sends nothing) ends the session, so the task reconnects
/// instead of waiting for TCP keepalive.
async fn bounded<T>(
    statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(LEASE, statement).await {
        Ok(r) => r.map_err(db_err),
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer from the database within {} ms",
            LEASE.as_millis()
        ))),
    }
}

/// Whether any replica has entries it has not drained (no row locks: a row whose `drained`
/// reached `appended` in the latest committed version has applied everything committed before).
const PENDING_SQL: &str = "SELECT EXISTS (SELECT 1 FROM check_caches WHERE drained < appended)";

/// Every row, its target and whether its lease is live, latest versions (waits for renewals in
/// flight: module docs, step 4).
const TARGETS_SQL: &str = "SELECT replica, appended, drained >= appended, lease_until > now()
     FROM check_caches ORDER BY replica FOR SHARE";

/// Which of the replicas `$1` (with targets `$2`) are done: drained past the target, or their
/// lease is no longer live (latest versions, as [`TARGETS_SQL`]).
const POLL_SQL: &str = "SELECT c.replica, c.drained >= t.target OR c.lease_until <= now()
     FROM check_caches c JOIN unnest($1::uuid[], $2::bigint[]) AS t(replica, target)
       ON c.replica = t.replica
     ORDER BY c.replica FOR SHARE OF c";

/// Ends the leases of replicas that did not drain in time.
const REVOKE_SQL: &str = "UPDATE check_caches SET lease_until = least(lease_until, now())
     WHERE replica = ANY($1::uuid[])";

/// The writers' barrier (module docs, step 4): returns once every replica holding a live lease
/// has dropped from memory what the writes committed so far on this connection changed. Call
/// it after the commit and before answering. Usually one statement; waits while some replica
/// has entries to drain (about one round trip per replica after a notification), at most
/// 3 × [`LEASE`] in all; never fails (a database error, or no answer within 4 × [`LEASE`],
/// means waiting until every lease that could still hide the write has lapsed).
pub(super) async fn barrier(cache: &CheckCache, client: &Client) {
    let waited = tokio::time::timeout(4 * LEASE, barrier_inner(cache, client)).await;
    if let Err(e) = waited.unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "the database stopped answering".into(),
        ))
    }) {
        tracing::warn!(error = %e, "check-status cache barrier: the database is unreachable after a commit; waiting for every replica's lease to lapse");
        tokio::time::sleep(LEASE + RENEW_EVERY).await;
    }
}

async fn barrier_inner(cache: &CheckCache, client: &Client) -> Result<(), StoreError> {
    let pending: bool = client
        .query_one(PENDING_SQL, &[])
        .await
        .map_err(db_err)?
        .get(0);
    if !pending {
        return Ok(());
    }
    let rows = client.query(TARGETS_SQL, &[]).await.map_err(db_err)?;
    let mut ids = Vec::new();
    let mut targets = Vec::new();
    for row in rows {
        let (replica, appended, drained, live): (Uuid, i64, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if live && !drained {
            ids.push(replica);
            targets.push(appended);
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    cache.counters.barrier_waits.fetch_add(1, Ordering::Relaxed);
    if ids.contains(&cache.replica) {
        cache.wake.notify_one();
    }
    client
        .execute(&format!("SELECT pg_notify('{CHANNEL}', '')"), &[])
        .await
        .map_err(db_err)?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
        let rows = client
            .query(POLL_SQL, &[&ids, &targets])
            .await
            .map_err(db_err)?;
        let behind: Vec<(Uuid, i64)> = rows
            .iter()
            .filter(|r| !r.get::<_, bool>(1))
            .map(|r| {
                let id: Uuid = r.get(0);
                let i = ids.iter().position(|x| *x == id).unwrap_or(0);
                (id, targets[i])
            })
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= 2 * LEASE {
            let late: Vec<Uuid> = behind.iter().map(|(id, _)| *id).collect();
            tracing::warn!(replicas = ?late, "check-status cache: replicas did not drain within {} s; revoking their leases", (2 * LEASE).as_secs());
            client.execute(REVOKE_SQL, &[&late]).await.map_err(db_err)?;
            tokio::time::sleep(LEASE).await;
            return Ok(());
        }
        (ids, targets) = behind.into_iter().unzip();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(email: &str, idp: &str) -> IdentityKey {
        IdentityKey {
            email: email.into(),
            issuer: idp.into(),
            issuer_assigned_id: email.into(),
        }
    }

    fn pending() -> Found {
        Found::Request {
            id: Uuid::new_v4(),
            status: guestlist_core::model::Status::Pending,
            created_at: time::OffsetDateTime::now_utc(),
            email_denied: false,
        }
    }

    /// A cache with a lease for the next minute and its sync connection up.
    fn leased() -> CheckCache {
        let c = CheckCache::new(true);
        c.connected.store(true, Ordering::Release);
        c.valid_until.store(
            c.nanos(Instant::now() + Duration::from_secs(60)),
            Ordering::Release,
        );
        c
    }

    #[test]
    fn the_triggers_take_the_sequence_lock_of_the_writers() {
        let migration = include_str!("../../../migrations/postgres/V8__check_cache.sql");
        let call = format!(
            "pg_advisory_xact_lock_shared({}, {})",
            super::super::LOCK_NS,
            super::super::SEQ_LOCK
        );
        assert!(migration.contains(&call), "V8 must take {call}");
    }

    #[test]
    fn the_email_digest_is_the_triggers_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 …
        assert_eq!(email_digest(b"abc"), 0xba7816bf_8f01cfea_414140de_5dae2223);
    }

    #[test]
    fn a_fill_read_before_an_invalidation_is_not_stored_after_it() {
        let c = leased();
        let ann = key("ann@fabrikam.example", "google.com");
        let ticket = c.lookup(&ann).unwrap_err();
        // Someone's write is applied while the lookup is at the database.
        c.apply(&[Sha256::digest(b"bob@fabrikam.example").to_vec()], false);
        c.fill(ticket, &pending());
        assert!(
            c.lookup(&ann).is_err(),
            "a fill across an invalidation is dropped"
        );
        let ticket = c.lookup(&ann).unwrap_err();
        c.fill(ticket, &pending());
        assert!(c.lookup(&ann).is_ok());
        // The person's own invalidation drops every identity of theirs.
        let ann_ms = key("ann@fabrikam.example", "live.com");
        let ticket = c.lookup(&ann_ms).unwrap_err();
        c.fill(ticket, &pending());
        assert_eq!(c.len(), 2);
        c.apply(&[Sha256::digest(b"ann@fabrikam.example").to_vec()], false);
        assert_eq!(c.len(), 0);
        assert!(c.lookup(&ann).is_err() && c.lookup(&ann_ms).is_err());
    }

    #[test]
    fn nothing_is_served_or_stored_without_a_lease_or_a_connection() {
        let c = leased();
        let ann = key("ann@fabrikam.example", "google.com");
        let ticket = c.lookup(&ann).unwrap_err();
        c.fill(ticket, &pending());
        c.connected.store(false, Ordering::Release);
        assert!(c.lookup(&ann).is_err(), "connection lost: not served");
        c.connected.store(true, Ordering::Release);
        assert!(c.lookup(&ann).is_ok());
        c.valid_until
            .store(c.nanos(Instant::now()), Ordering::Release);
        assert!(c.lookup(&ann).is_err(), "lease lapsed: not served");
        let ticket = c.lookup(&ann).unwrap_err();
        assert!(ticket.generation.is_none(), "no fill without a lease");
        // "Nothing" is never cached; a disabled cache never serves.
        let c = leased();
        let ticket = c.lookup(&ann).unwrap_err();
        c.fill(ticket, &Found::Nothing);
        assert_eq!(c.len(), 0);
        let off = CheckCache::new(false);
        off.connected.store(true, Ordering::Release);
        off.valid_until.store(u64::MAX, Ordering::Release);
        let ticket = off.lookup(&ann).unwrap_err();
        off.fill(ticket, &pending());
        assert!(off.lookup(&ann).is_err());
    }

    #[test]
    fn a_full_cache_is_emptied_and_fills_again() {
        let c = leased();
        for i in 0..CAPACITY {
            let ticket = c
                .lookup(&key(&format!("p{i}@x.example"), "google.com"))
                .unwrap_err();
            c.fill(ticket, &Found::DeniedEmail);
        }
        assert_eq!(c.len(), CAPACITY);
        let last = key("last@x.example", "google.com");
        let ticket = c.lookup(&last).unwrap_err();
        c.fill(ticket, &Found::DeniedEmail);
        assert_eq!(c.len(), 1);
        assert_eq!(c.lookup(&last).ok(), Some(Found::DeniedEmail));
    }
}
