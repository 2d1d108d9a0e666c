//! Escalation (issue 14 §2): a routed request still pending `escalate_after_hours` after it was
//! created is marked escalated — `escalatedAt` on the request, a new change sequence number (so
//! `GET /api/requests?since=` returns it; the version is kept, see `store::escalation`), a
//! history entry `escalated` by `Actor::policy("escalation")` naming the route, its
//! `fallback_role` and the delay, and the event `request.escalated` (`docs/CONTRACTS.md` §6),
//! in one store transaction
//! ([`crate::store::Backend::escalate_due`]) — and one reminder per route names the route, its
//! `fallback_role` and the requests
//! ([`crate::webhook::Sender::escalation_message`]). Holders of the fallback role see the
//! request from then on ([`crate::duties::Scope`]); their event streams get the event.
//!
//! This module computes what is due and runs the store's write ([`run`]), and turns the
//! committed events into reminders ([`remind`]); the periodic task, under the cluster-wide job
//! lock `reminders`, is [`crate::reminders::start`]. A request is escalated once across
//! replicas and restarts: the mark and the event commit together, and a marked request is never
//! due again.
//!
//! **The reminder is at least once, with an idempotency key.** The event log is the outbox (as
//! for the guest e-mails, [`crate::guest_email`]): [`remind`] reads the `request.escalated`
//! events after its durable cursor [`REMINDER_CURSOR`], and moves the cursor only once their
//! reminders were delivered (or refused for good). Before sending, the end of the batch is
//! stored too ([`REMINDER_BATCH_END`]), so a retry after a crash or a failed delivery sends the
//! same batch again, each message with the same key, `escalation-<first seq>-<last seq>-<route
//! hash>`, in the JSON body (`idempotencyKey`) and the `Idempotency-Key` header. A process that
//! dies after the commit and before the send sends it at its next run (or another replica
//! does); one that dies after the receiver accepted and before the cursor moved sends it again
//! under the same key, which a receiver may use to drop the copy. An erased request is never
//! named: its events are deleted with it, and an erasure during a delivery restarts the batch.

use guestlist_core::model::{ApprovalRequest, EVENT_REQUEST_ERASED, Event};
use guestlist_core::policy::RouteRule;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::store::escalation::{EVENT_REQUEST_ESCALATED, EscalationCut};
use crate::store::{Store, StoreError};
use crate::webhook::{Delivery, Sender};

/// Most requests one store transaction escalates ([`crate::store::Backend::escalate_due`]).
pub const BATCH: usize = 500;

/// Most transactions of one [`run`]: what is left waits for the next run, so one run (and the
/// job lock it holds) stays bounded whatever the backlog.
pub const MAX_BATCHES: usize = 20;

/// A route that escalates: it names a `fallback_role` and a positive `escalate_after_hours`.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalating {
    /// The route's `name`.
    pub route: String,
    /// The role that also sees its requests once escalated.
    pub fallback_role: String,
    /// Its `escalate_after_hours`, as configured (may be fractional).
    pub hours: f64,
    /// The same delay as a duration.
    pub delay: time::Duration,
}

/// The routes of `routes` that escalate (`fallback_role` and `escalate_after_hours` both set,
/// the delay representable: a delay too large for [`time::Duration`] never escalates).
pub fn escalating(routes: &[RouteRule]) -> Vec<Escalating> {
    routes
        .iter()
        .filter_map(|r| {
            let fallback_role = r.fallback_role.clone()?;
            let hours = r
                .escalate_after_hours
                .filter(|h| h.is_finite() && *h > 0.0)?;
            let delay = time::Duration::checked_seconds_f64(hours * 3600.0)?;
            Some(Escalating {
                route: r.name.clone(),
                fallback_role,
                hours,
                delay,
            })
        })
        .collect()
}

/// What one run escalated on one route.
#[derive(Debug, Clone)]
pub struct Escalated {
    /// The route.
    pub route: Escalating,
    /// Its `request.escalated` events, oldest request first (each carries the request).
    pub events: Vec<Event>,
}

impl Escalated {
    /// The escalated requests, in event order.
    pub fn requests(&self) -> impl Iterator<Item = &ApprovalRequest> {
        self.events.iter().filter_map(|e| e.request.as_ref())
    }
}

/// Escalates at `now` every due request of `routes` ([`escalating`]): pending, created more
/// than the route's delay before `now`, not escalated yet; [`BATCH`] per transaction, at most
/// [`MAX_BATCHES`] transactions. Returns the events per route (routes with none are left
/// out), to be published and announced by the caller. Run it under the job lock `reminders`.
///
/// Errors: [`StoreError`] on database failure (the batches committed before it stay
/// committed; their events are lost to this run's caller but not to `?since=` or to the event
/// log that streams replay from).
pub async fn run(
    store: &Store,
    routes: &[Escalating],
    now: OffsetDateTime,
) -> Result<Vec<Escalated>, StoreError> {
    let cuts: Vec<EscalationCut> = routes
        .iter()
        .filter_map(|r| {
            Some(EscalationCut {
                route: r.route.clone(),
                fallback_role: r.fallback_role.clone(),
                hours: r.hours,
                cutoff: now.checked_sub(r.delay)?,
            })
        })
        .collect();
    let mut out: Vec<Escalated> = Vec::new();
    if cuts.is_empty() {
        return Ok(out);
    }
    for _ in 0..MAX_BATCHES {
        let events = store.escalate_due(&cuts, now, BATCH).await?;
        let full = events.len() >= BATCH;
        for e in events {
            let Some(name) = e.request.as_ref().and_then(|r| r.route.clone()) else {
                continue;
            };
            match out.iter_mut().find(|x| x.route.route == name) {
                Some(x) => x.events.push(e),
                None => {
                    if let Some(route) = routes.iter().find(|r| r.route == name) {
                        out.push(Escalated {
                            route: route.clone(),
                            events: vec![e],
                        });
                    }
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

/// The job cursor of [`remind`] (`job_cursors`): the `seq` of the last event whose escalation
/// reminder was handled.
pub const REMINDER_CURSOR: &str = "escalation_reminder";

/// The end (`seq`) of the batch [`remind`] is sending, stored before the first message goes
/// out: while it is above [`REMINDER_CURSOR`], the batch is resent as it was.
pub const REMINDER_BATCH_END: &str = "escalation_reminder.batch_end";

/// Events read from the log per batch of [`remind`].
pub const REMINDER_EVENTS: usize = 500;

/// Fault injection for the crash tests (`tests/it/escalation.rs`): the environment variable
/// [`Fault::VAR`] of the `guestlist-server` process names the point where the reminder task
/// freezes — it prints `CRASH <point>` on stderr and never goes on — so that the test kills the
/// process (SIGKILL) exactly there. Never set in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `escalation.after_commit`: the escalation committed, no reminder sent yet.
    AfterCommit,
    /// `escalation.after_send`: the webhook accepted the reminder, the cursor did not move.
    AfterSend,
}

impl Fault {
    /// The environment variable naming the fault point.
    pub const VAR: &str = "GUESTLIST_TEST_FAULT";

    /// The fault point named by [`Fault::VAR`], if any.
    pub fn from_env() -> Option<Fault> {
        match std::env::var(Fault::VAR).ok()?.as_str() {
            "escalation.after_commit" => Some(Fault::AfterCommit),
            "escalation.after_send" => Some(Fault::AfterSend),
            _ => None,
        }
    }

    /// Freezes the calling thread for good when `fault` is `here` (see [`Fault`]).
    pub fn hit(fault: Option<Fault>, here: Fault) {
        if fault != Some(here) {
            return;
        }
        let name = match here {
            Fault::AfterCommit => "escalation.after_commit",
            Fault::AfterSend => "escalation.after_send",
        };
        tracing::warn!(at = name, "simulated crash");
        eprintln!("CRASH {name}");
        loop {
            std::thread::park();
        }
    }
}

/// Starts [`REMINDER_CURSOR`] at the latest event when it was never stored (the first run of a
/// server with escalation reminders): escalations announced before, by a server without the
/// outbox, are not announced again. Run it before the first [`run`].
///
/// Errors: [`StoreError`] on database failure.
pub async fn init_reminder_cursor(store: &Store) -> Result<(), StoreError> {
    if store.job_cursor(REMINDER_CURSOR).await?.is_none() {
        let latest = store.latest_event_seq().await?;
        store.set_job_cursor(REMINDER_CURSOR, latest).await?;
    }
    Ok(())
}

/// The idempotency key of the reminder of `route` for the events `from..=to`: the same for
/// every retry of that batch, different for any other batch or route (module docs). ASCII, so
/// it is a valid header value whatever the route's name.
pub fn reminder_key(from: u64, to: u64, route: &str) -> String {
    let hash = Sha256::digest(route.as_bytes());
    let short: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("escalation-{from}-{to}-{short}")
}

/// How sending one batch ended.
enum Sent {
    /// Every message was accepted or refused for good: the cursor may move.
    Done,
    /// A delivery gave up: the batch stays owed until the next run.
    Owed,
    /// A request named in a message was erased during its delivery: read the batch again.
    Erased,
}

/// One route's reminder in a batch: the route and its escalated requests, oldest first.
type Message<'a> = (&'a Escalating, Vec<&'a ApprovalRequest>);

/// Sends the escalation reminders owed (module docs: the event log as outbox): for each batch
/// of at most [`REMINDER_EVENTS`] events after [`REMINDER_CURSOR`], one message per route of
/// `routes` with `request.escalated` events in it ([`Sender::escalation_message`]), then the
/// cursor moves past the batch. Without a `sender` the cursor just moves. At most
/// [`MAX_BATCHES`] batches per call; a delivery that gives up leaves the rest for the next
/// call. `erasures` (the server's event broadcast) interrupts a delivery naming a request
/// erased meanwhile. Run it under the job lock `reminders`, after [`init_reminder_cursor`].
///
/// Errors: [`StoreError`] on database failure (nothing is lost: the cursor stays).
pub async fn remind(
    store: &Store,
    routes: &[Escalating],
    sender: Option<&Sender>,
    erasures: &mut broadcast::Receiver<Event>,
    fault: Option<Fault>,
) -> Result<(), StoreError> {
    for _ in 0..MAX_BATCHES {
        let cursor = store.job_cursor(REMINDER_CURSOR).await?.unwrap_or(0);
        let claimed = store.job_cursor(REMINDER_BATCH_END).await?.unwrap_or(0);
        let mut events = store.events_after(cursor, REMINDER_EVENTS).await?;
        let end = if claimed > cursor {
            // A batch owed since a crash or a failed delivery: exactly the same range.
            events.retain(|e| e.seq <= claimed);
            claimed
        } else {
            match events.last() {
                Some(e) => e.seq,
                None => return Ok(()),
            }
        };
        let messages = by_route(&events, routes);
        if let (Some(sender), false) = (sender, messages.is_empty()) {
            if claimed < end {
                store.set_job_cursor(REMINDER_BATCH_END, end).await?;
            }
            match send(sender, cursor + 1, end, &messages, erasures).await {
                Sent::Done => {}
                Sent::Owed => return Ok(()),
                Sent::Erased => continue,
            }
            Fault::hit(fault, Fault::AfterSend);
        }
        store.set_job_cursor(REMINDER_CURSOR, end).await?;
    }
    Ok(())
}

/// The `request.escalated` events of `events` grouped by their request's route, for the routes
/// of `routes` (a route no longer escalating in the policy is not announced), in the order of
/// their first event.
fn by_route<'a>(events: &'a [Event], routes: &'a [Escalating]) -> Vec<Message<'a>> {
    let mut out: Vec<Message<'a>> = Vec::new();
    for e in events.iter().filter(|e| e.kind == EVENT_REQUEST_ESCALATED) {
        let Some(r) = e.request.as_ref() else {
            continue;
        };
        let Some(name) = r.route.as_deref() else {
            continue;
        };
        match out.iter_mut().find(|(route, _)| route.route == name) {
            Some((_, requests)) => requests.push(r),
            None => {
                if let Some(route) = routes.iter().find(|x| x.route == name) {
                    out.push((route, vec![r]));
                }
            }
        }
    }
    out
}

/// Delivers one batch's messages (`from..=to` names the batch in the keys).
async fn send(
    sender: &Sender,
    from: u64,
    to: u64,
    messages: &[Message<'_>],
    erasures: &mut broadcast::Receiver<Event>,
) -> Sent {
    for (route, requests) in messages {
        let listed: Vec<ApprovalRequest> = requests
            .iter()
            .take(crate::reminders::LISTED)
            .map(|r| (*r).clone())
            .collect();
        let ids: Vec<uuid::Uuid> = listed.iter().map(|r| r.id).collect();
        let key = reminder_key(from, to, &route.route);
        let body = sender.escalation_message(
            &route.route,
            &route.fallback_role,
            route.hours,
            requests.len() as u64,
            &listed,
            &key,
        );
        let outcome = tokio::select! {
            d = sender.deliver_keyed(&body, Some(&key)) => d,
            () = erased_among(erasures, &ids) => return Sent::Erased,
        };
        match outcome {
            Delivery::Accepted => {}
            Delivery::Refused => {
                tracing::warn!(route = %route.route, "escalation reminder refused by the webhook; not sent again");
            }
            Delivery::GaveUp => return Sent::Owed,
        }
    }
    Sent::Done
}

/// Resolves when `erasures` carries the erasure of one of `ids`; never when the broadcast ends.
async fn erased_among(erasures: &mut broadcast::Receiver<Event>, ids: &[uuid::Uuid]) {
    loop {
        match erasures.recv().await {
            Ok(e) if e.kind == EVENT_REQUEST_ERASED && ids.contains(&e.request_id) => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
