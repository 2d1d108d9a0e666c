//! Check-status lookups batched into one statement per round trip (issue 13 §5, the module
//! docs of [`super`], "Pools").
//!
//! Every check-status call needs the same three index probes (its request by identity key,
//! a denied request of its e-mail, a denial tombstone of its e-mail digest). Sent one
//! statement per call, PostgreSQL pays a statement's fixed cost (bind, executor start-up,
//! snapshot, the row description and completion messages) for each, and under load that
//! fixed cost, not the probes, is what the backends spend their time on. So the calls of a
//! replica queue here, and one worker per shared connection ([`super::reads`]) takes every
//! call waiting when it is free (up to [`MAX_BATCH`]) and sends them as one
//! [`BATCH_SQL`] statement over arrays, then hands each caller its own row.
//!
//! - **No added wait.** A worker never waits for a batch to fill: a call that finds a worker
//!   idle is sent at once, alone; calls only join a batch while every worker is busy with the
//!   previous one, which is when they would otherwise queue on the connections anyway.
//! - **Never stale.** A call joins only a batch whose statement is sent after the call was
//!   queued, and each statement reads a snapshot taken when it starts (READ COMMITTED). So a
//!   decision acknowledged before a check-status call began is seen by it, on any replica, as
//!   with one statement per call (issue 13 §2 "A decision is seen at once").
//! - **Bounded.** The queue holds at most [`QUEUE_DEPTH`] calls (a caller beyond it waits for
//!   room, within its own deadline); a batch holds at most [`MAX_BATCH`]. A caller waits at
//!   most [`super::ACQUIRE_TIMEOUT`] for a connection and [`super::STATEMENT_TIMEOUT`] plus
//!   [`super::ACQUIRE_TIMEOUT`] in all, then gets [`StoreError::Unavailable`] (503), so a check
//!   never hangs toward Entra's 20 s.
//! - **Failures are the batch's.** A batch whose statement fails gives every caller in it the
//!   same error ([`StoreError::Unavailable`] for a lost connection); the next batch uses a new
//!   connection ([`super::reads::SharedReads::get`]).
//! - **Callers that left are skipped.** A call whose HTTP request was dropped (the client went
//!   away) is not looked up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::reads::{Failure, SharedReads};
use super::{ACQUIRE_TIMEOUT, STATEMENT_TIMEOUT, db_err};
use crate::store::StoreError;

/// The most calls one statement carries.
pub const MAX_BATCH: usize = 128;
/// The most calls waiting for a worker.
pub const QUEUE_DEPTH: usize = 4096;

/// The batched check-status statement: for each element `i` of the arrays `$1` (canonical
/// e-mails), `$2` (issuers), `$3` (issuer-assigned ids) and `$4` (HMAC digests of the
/// e-mails, empty when no tombstone key is set), one row `(i, id, status, created_at,
/// denied)`: the request of that identity key, if any (the key is unique, so one row per
/// element), and whether the e-mail has a denied request or a denial tombstone. The same
/// probes as [`super::reads::CHECK_SQL`], one statement for many calls.
pub(super) const BATCH_SQL: &str = "SELECT q.i, r.id, r.status, r.created_at,
       EXISTS (SELECT 1 FROM requests d WHERE d.email = q.email AND d.status = 'denied')
       OR EXISTS (SELECT 1 FROM tombstones t WHERE t.digest = q.digest)
     FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
          WITH ORDINALITY AS q(email, issuer, issuer_assigned_id, digest, i)
     LEFT JOIN requests r ON r.email = q.email AND r.issuer = q.issuer
                         AND r.issuer_assigned_id = q.issuer_assigned_id";

/// What one check-status call looks up: its identity key and its e-mail's digest.
#[derive(Debug, Clone)]
pub(super) struct Lookup {
    /// The canonical e-mail.
    pub(super) email: String,
    /// The identity provider key.
    pub(super) issuer: String,
    /// The id at that provider.
    pub(super) issuer_assigned_id: String,
    /// HMAC-SHA256 of the e-mail under the tombstone key; empty when none is set.
    pub(super) digest: Vec<u8>,
}

/// The answer to one [`Lookup`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Found {
    /// The request of the identity key, if any: id, status (the stored text) and creation.
    pub(super) request: Option<(Uuid, String, OffsetDateTime)>,
    /// Whether the e-mail has a denied request (under any key) or a denial tombstone.
    pub(super) email_denied: bool,
}

/// A queued call: what to look up and where its answer goes.
struct Queued {
    lookup: Lookup,
    reply: oneshot::Sender<Result<Found, Failure>>,
}

/// The queue of a replica's check-status calls and its workers (module docs). Dropping it
/// ends the workers once they finish the batch in hand.
pub(super) struct CheckBatcher {
    queue: mpsc::Sender<Queued>,
    counters: Arc<Counters>,
}

/// What the workers have sent, for `/metrics` ([`CheckBatcher::render_metrics`]).
#[derive(Default)]
struct Counters {
    /// Check-status statements sent.
    statements: AtomicU64,
    /// Lookups they carried.
    lookups: AtomicU64,
}

impl CheckBatcher {
    /// Starts one worker per shared connection of `reads`. Must be called within a tokio
    /// runtime.
    pub(super) fn start(reads: Arc<SharedReads>) -> CheckBatcher {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        for slot in 0..reads.len() {
            tokio::spawn(worker(reads.clone(), slot, rx.clone(), counters.clone()));
        }
        CheckBatcher { queue, counters }
    }

    /// How many check-status statements the workers sent and how many lookups they carried
    /// (their ratio is the mean batch size).
    pub(super) fn sent(&self) -> (u64, u64) {
        (
            self.counters.statements.load(Ordering::Relaxed),
            self.counters.lookups.load(Ordering::Relaxed),
        )
    }

    /// The counters of [`CheckBatcher::sent`] in the Prometheus text format (0.0.4).
    pub(super) fn render_metrics(&self) -> String {
        let (statements, lookups) = self.sent();
        format!(
            "# HELP guestlist_check_status_statements_total Check-status statements sent to PostgreSQL (each carries one or more calls).\n\
             # TYPE guestlist_check_status_statements_total counter\n\
             guestlist_check_status_statements_total {statements}\n\
             # HELP guestlist_check_status_lookups_total Check-status calls looked up in those statements.\n\
             # TYPE guestlist_check_status_lookups_total counter\n\
             guestlist_check_status_lookups_total {lookups}\n"
        )
    }

    /// Looks `lookup` up, in a batch with whatever other calls are waiting.
    ///
    /// Errors: [`StoreError::Unavailable`] when no connection could be had within
    /// [`ACQUIRE_TIMEOUT`], the connection was lost, or no answer came within
    /// [`STATEMENT_TIMEOUT`] plus [`ACQUIRE_TIMEOUT`]; [`StoreError::Backend`] when the
    /// database refused the statement.
    pub(super) async fn lookup(&self, lookup: Lookup) -> Result<Found, StoreError> {
        let deadline = STATEMENT_TIMEOUT + ACQUIRE_TIMEOUT;
        let answer = tokio::time::timeout(deadline, async {
            let (reply, answer) = oneshot::channel();
            self.queue
                .send(Queued { lookup, reply })
                .await
                .map_err(|_| unavailable("the check-status workers have stopped"))?;
            answer
                .await
                .map_err(|_| unavailable("a check-status worker stopped mid-batch"))
        })
        .await
        .map_err(|_| {
            unavailable(&format!(
                "no check-status answer from the database within {} ms",
                deadline.as_millis()
            ))
        })??;
        answer.map_err(StoreError::from)
    }
}

fn unavailable(why: &str) -> StoreError {
    StoreError::Unavailable(why.to_owned())
}

/// One worker: takes every waiting call (at least one, at most [`MAX_BATCH`]), looks them up
/// in one statement on connection `slot` (or another live one), answers each, and again,
/// until the queue's sender is dropped.
async fn worker(
    reads: Arc<SharedReads>,
    slot: usize,
    rx: Arc<Mutex<mpsc::Receiver<Queued>>>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        batch.retain(|q| !q.reply.is_closed());
        if !batch.is_empty() {
            let lookups: Vec<&Lookup> = batch.iter().map(|q| &q.lookup).collect();
            counters.statements.fetch_add(1, Ordering::Relaxed);
            counters
                .lookups
                .fetch_add(lookups.len() as u64, Ordering::Relaxed);
            match run(&reads, slot, &lookups).await {
                Ok(found) => {
                    for (q, f) in batch.drain(..).zip(found) {
                        let _ = q.reply.send(Ok(f));
                    }
                }
                Err(e) => {
                    let e = Failure::from(e);
                    for q in batch.drain(..) {
                        let _ = q.reply.send(Err(e.clone()));
                    }
                }
            }
        }
        batch.clear();
    }
}

/// Runs [`BATCH_SQL`] for `lookups`, answers in their order.
///
/// Errors: as [`CheckBatcher::lookup`]; [`StoreError::Corrupt`] when the database answered a
/// row for no element or none for one.
async fn run(
    reads: &SharedReads,
    slot: usize,
    lookups: &[&Lookup],
) -> Result<Vec<Found>, StoreError> {
    let live = reads.get_from(slot).await?;
    let emails: Vec<&str> = lookups.iter().map(|l| l.email.as_str()).collect();
    let issuers: Vec<&str> = lookups.iter().map(|l| l.issuer.as_str()).collect();
    let ids: Vec<&str> = lookups
        .iter()
        .map(|l| l.issuer_assigned_id.as_str())
        .collect();
    let digests: Vec<&[u8]> = lookups.iter().map(|l| l.digest.as_slice()).collect();
    let rows = tokio::time::timeout(
        STATEMENT_TIMEOUT,
        live.client
            .query(&live.check_batch, &[&emails, &issuers, &ids, &digests]),
    )
    .await
    .map_err(|_| {
        unavailable(&format!(
            "the database did not answer check-status within {} ms",
            STATEMENT_TIMEOUT.as_millis()
        ))
    })?
    .map_err(db_err)?;
    drop(live);
    let mut found: Vec<Option<Found>> = vec![None; lookups.len()];
    for row in rows {
        let i: i64 = row.try_get(0).map_err(db_err)?;
        let slot = usize::try_from(i - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| StoreError::Corrupt(format!("check-status: no element {i}")))?;
        let id: Option<Uuid> = row.try_get(1).map_err(db_err)?;
        let request = match id {
            Some(id) => Some((
                id,
                row.try_get::<_, String>(2).map_err(db_err)?,
                row.try_get::<_, OffsetDateTime>(3).map_err(db_err)?,
            )),
            None => None,
        };
        *slot = Some(Found {
            request,
            email_denied: row.try_get(4).map_err(db_err)?,
        });
    }
    found
        .into_iter()
        .map(|f| f.ok_or_else(|| StoreError::Corrupt("check-status: an element had no row".into())))
        .collect()
}
