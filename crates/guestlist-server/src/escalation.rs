//! Escalation (issue 14 §2): a routed request still pending `escalate_after_hours` after it was
//! created is marked escalated — `escalatedAt` on the request, a new version and change
//! sequence number (so `GET /api/requests?since=` returns it) and the event `request.escalated`
//! (`docs/CONTRACTS.md` §6), in one store transaction ([`crate::store::Backend::escalate_due`]) —
//! and one reminder per route and run names the route, its `fallback_role` and the requests
//! ([`crate::webhook::Sender::escalation_message`]). Holders of the fallback role see the
//! request from then on ([`crate::duties::Scope`]); their event streams get the event.
//!
//! This module computes what is due and runs the store's write; the periodic task, under the
//! cluster-wide job lock `reminders`, is [`crate::reminders::start`]. A request is escalated
//! once across replicas and restarts: the mark and the event commit together, and a marked
//! request is never due again. Must not send anything itself.

use guestlist_core::model::{ApprovalRequest, Event};
use guestlist_core::policy::RouteRule;
use time::OffsetDateTime;

use crate::store::escalation::EscalationCut;
use crate::store::{Store, StoreError};

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
