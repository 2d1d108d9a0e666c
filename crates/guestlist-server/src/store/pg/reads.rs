//! The shared check-status connections of a replica (issue 13 §5; module docs of [`super`],
//! "Pools"): a few tokio-postgres [`Client`]s, each used by one worker of
//! [`super::check_batch`], which sends the checks waiting at the time as one statement
//! ([`BATCH_SQL`], prepared once per connection when it is made), instead of a pool that
//! hands each connection to one caller at a time. A [`Client`] is `Send + Sync` and pipelines
//! concurrent queries on its one connection (tokio-postgres docs, "Pipelining"), so a worker
//! that falls back on another worker's connection while its own is being replaced shares it.
//!
//! Failure and recovery keep the pool's behaviour ([`super::ACQUIRE_TIMEOUT`],
//! [`StoreError::Unavailable`]):
//!
//! - a connection that ended (the server restarted, `pg_terminate_backend`, a network error)
//!   is replaced at once by its connection task, and one that is found closed by a call
//!   ([`Client::is_closed`]) before that is replaced by the call;
//!   queries in flight on it fail with [`StoreError::Unavailable`] (503);
//! - a new connection is made by one background task per slot (concurrent callers wait for
//!   the same attempt), bounded by [`super::CREATE_TIMEOUT`]; a caller waits for it at most
//!   [`super::ACQUIRE_TIMEOUT`] and then answers [`StoreError::Unavailable`], so a check never
//!   hangs toward Entra's 20 s while the database is down; the attempt goes on in the
//!   background, so a slow but working server still gets connected;
//! - after a failed attempt, calls within [`RETRY_PAUSE`] fail at once instead of starting
//!   another (no connection storm against a restarting server).

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio_postgres::{Client, Statement};

use super::check_batch::BATCH_SQL;
use super::{ACQUIRE_TIMEOUT, CREATE_TIMEOUT, db_err};
use crate::store::StoreError;

/// How long after a failed connection attempt a slot refuses calls at once rather than trying
/// again.
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One live shared connection and its prepared check statement.
pub(super) struct Live {
    /// The client; callers run queries on it concurrently (pipelined).
    pub(super) client: Client,
    /// [`BATCH_SQL`], prepared on this connection.
    pub(super) check_batch: Statement,
}

/// An attempt to connect a slot, awaited by every caller that needs it.
type Attempt = Shared<BoxFuture<'static, Result<Arc<Live>, Failure>>>;

/// Why an attempt failed, kept for the callers within [`RETRY_PAUSE`] ([`StoreError`] is not
/// `Clone`): the driver's message, never the URL, user or password.
#[derive(Clone, Debug)]
pub(super) enum Failure {
    /// [`StoreError::Unavailable`]: not reachable now (503).
    Unavailable(String),
    /// [`StoreError::Backend`]: refused for another reason (authentication, a missing table).
    Backend(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::Unavailable(m) => Failure::Unavailable(m),
            StoreError::Backend(m) => Failure::Backend(m),
            other => Failure::Backend(other.to_string()),
        }
    }
}

impl From<Failure> for StoreError {
    fn from(e: Failure) -> StoreError {
        match e {
            Failure::Unavailable(m) => StoreError::Unavailable(m),
            Failure::Backend(m) => StoreError::Backend(m),
        }
    }
}

/// One shared connection: the live one, or the attempt in progress.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    live: Option<Arc<Live>>,
    connecting: Option<Attempt>,
    /// When the last attempt failed, and why.
    failed: Option<(Instant, Failure)>,
}

/// The shared check-status connections of a replica (module docs).
pub(super) struct SharedReads {
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    slots: Box<[Arc<Slot>]>,
}

impl SharedReads {
    /// `size` shared connections (`[postgres] read_pool_size`), none made yet
    /// ([`SharedReads::prewarm`] makes them).
    pub(super) fn new(
        config: tokio_postgres::Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        size: usize,
    ) -> SharedReads {
        SharedReads {
            config,
            tls,
            slots: (0..size.max(1)).map(|_| Arc::default()).collect(),
        }
    }

    /// Makes every connection now (best effort: one that fails is made again on demand).
    pub(super) async fn prewarm(&self) {
        let attempts: Vec<_> = self.slots.iter().map(|slot| self.attempt(slot)).collect();
        futures::future::join_all(attempts).await;
    }

    /// How many shared connections there are (`read_pool_size`).
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// A live connection: slot `first`'s (modulo [`SharedReads::len`]), so a check-status
    /// worker keeps to its own connection; when that one has ended, a new one is made in the
    /// background while the call uses any other live connection, or else waits for it.
    ///
    /// Errors: [`StoreError::Unavailable`] when none could be made within
    /// [`ACQUIRE_TIMEOUT`] (or an attempt failed less than [`RETRY_PAUSE`] ago).
    pub(super) async fn get_from(&self, first: usize) -> Result<Arc<Live>, StoreError> {
        let n = self.slots.len();
        let first = first % n;
        let slot = &self.slots[first];
        if let Some(live) = slot.live() {
            return Ok(live);
        }
        // Its connection ended: a new one is made in the background (the attempt's own task)
        // while this call uses any other live connection, or else waits for that attempt.
        let attempt = self.attempt(slot);
        for k in 1..n {
            if let Some(live) = self.slots[(first + k) % n].live() {
                return Ok(live);
            }
        }
        match tokio::time::timeout(ACQUIRE_TIMEOUT, attempt).await {
            Ok(Ok(live)) => Ok(live),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no database connection for check-status within {} ms",
                ACQUIRE_TIMEOUT.as_millis()
            ))),
        }
    }

    /// The slot's attempt in progress, or a new one (or an immediate failure within
    /// [`RETRY_PAUSE`] of the last), or its live connection if another caller just made it.
    fn attempt(&self, slot: &Arc<Slot>) -> Attempt {
        attempt(&self.config, &self.tls, slot)
    }
}

/// [`SharedReads::attempt`] for `slot`, connecting with `config` and `tls`.
fn attempt(
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    slot: &Arc<Slot>,
) -> Attempt {
    let mut state = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(live) = state.live.as_ref().filter(|l| !l.client.is_closed()) {
        let live = live.clone();
        return async move { Ok(live) }.boxed().shared();
    }
    if let Some(attempt) = &state.connecting {
        return attempt.clone();
    }
    if let Some((at, why)) = &state.failed
        && at.elapsed() < RETRY_PAUSE
    {
        let why = why.clone();
        return async move { Err(why) }.boxed().shared();
    }
    let (config, tls, slot_ref) = (config.clone(), tls.clone(), slot.clone());
    // A task of its own: it goes on (bounded by CREATE_TIMEOUT) when the caller that
    // started it gives up after ACQUIRE_TIMEOUT.
    let task = tokio::spawn(async move {
        let made = match tokio::time::timeout(
            CREATE_TIMEOUT,
            connect(&config, &tls, Arc::downgrade(&slot_ref)),
        )
        .await
        {
            Ok(made) => made,
            Err(_) => Err(Failure::Unavailable(format!(
                "no database connection for check-status within {} ms",
                CREATE_TIMEOUT.as_millis()
            ))),
        };
        let mut state = slot_ref
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.connecting = None;
        match &made {
            Ok(live) => {
                state.live = Some(live.clone());
                state.failed = None;
            }
            Err(e) => state.failed = Some((Instant::now(), e.clone())),
        }
        made
    });
    let attempt = async move {
        task.await.unwrap_or_else(|e| {
            Err(Failure::Backend(format!(
                "check-status connection task: {e}"
            )))
        })
    }
    .boxed()
    .shared();
    state.live = None;
    state.connecting = Some(attempt.clone());
    attempt
}

impl Slot {
    /// The slot's connection if it is still open.
    fn live(&self) -> Option<Arc<Live>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .live
            .as_ref()
            .filter(|l| !l.client.is_closed())
            .cloned()
    }
}

/// Makes one connection, spawns its connection task and prepares [`BATCH_SQL`] on it. When
/// the connection is lost (an error ends it: `pg_terminate_backend`, a server restart, a
/// network error) the task starts a new attempt for `slot` at once.
///
/// Errors: the driver's error as [`db_err`] maps it (never the URL, user or password).
async fn connect(
    config: &tokio_postgres::Config,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    slot: Weak<Slot>,
) -> Result<Arc<Live>, Failure> {
    let (client, connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| Failure::from(db_err(e)))?;
    let (config, tls) = (config.clone(), tls.clone());
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::info!("a check-status connection to the database ended: {e}");
            // Lost, not closed by us: replace it now, not when its worker next has a batch,
            // so every slot is live again even while one worker takes all the calls. One
            // attempt (RETRY_PAUSE and CREATE_TIMEOUT apply); a failed one is retried on
            // demand. `Weak`: a store that was dropped is not reconnected.
            if let Some(slot) = slot.upgrade() {
                drop(attempt(&config, &tls, &slot));
            }
        }
    });
    let check_batch = client
        .prepare(BATCH_SQL)
        .await
        .map_err(|e| Failure::from(db_err(e)))?;
    Ok(Arc::new(Live {
        client,
        check_batch,
    }))
}
