//! Draining the outbox: every decision runs as a persisted state machine (see
//! [`OutboxState`]):
//!
//! ```text
//! queued ─GET /api/requests/{id}: still pending at the reviewed version─▶ claimed
//! claimed ─(deny)──────────────────────────────────────────────────────▶ report
//! claimed ─look-ups (identity, mail): found ─▶ provisioned (reuse, nothing created)
//!         └ none: write_started=1, POST /users ─▶ provisioned
//!                                   POST /invitations ─▶ invited ─PATCH /users/{id}─▶ provisioned
//! provisioned ─(grants, issue 14 §1) $batch of members/$ref, appRoleAssignments, sponsors/$ref─▶ granted
//! claimed ─(external tenant, issue 17: no Graph call)─▶ provisioned
//! provisioned (no grants) / granted ─POST /api/requests/{id}/decision (If-Match, Idempotency-Key)─▶ reported
//! claimed ─(approve, the first of two: issue 14 §3) report without a directory object id──▶ reported
//! ```
//!
//! A request whose route needs two approvers (`approvalsRequired: 2` in the claim's answer, no
//! `approvals` yet) is approved in two steps: the first approver's app reports an approval
//! without running the Graph plan (the server records "1 of 2" and the request stays pending),
//! and the second, distinct approver's app provisions and reports as above. An approver whose
//! own approval is the recorded first one gets `decision.second_approver_required` at the
//! claim, with nothing provisioned.
//!
//! Grants run after the account exists and before the approval is reported, each recorded
//! (`grants_done`) as Graph confirms it; Graph's "already exists" answers count as done, so a
//! crash between the account and its grants finishes the grants on restart (the look-ups are
//! not rerun: the row is past them) and never creates a second account. A grant Graph refuses
//! leaves the item `failed` with its account recorded: the partial state "Account created ·
//! 1 of 3 grants failed"; approving again (Retry) finds that account and runs only the grants
//! still missing.
//!
//! Each transition is saved before the next network call, so a crash resumes where it stopped:
//! a crash after a Graph write but before it was recorded is caught by the look-ups (the account
//! is found and reused, never created twice); the report replays the stored `Idempotency-Key`.
//! 409/412 before provisioning → `conflict`, nothing provisioned. Network failures leave the item
//! where it is (`network.offline`); Graph 4xx → `failed` with Graph's code and request-id.
//! Several federated approvals at once share `$batch` requests: one `mail in (…)` look-up per
//! 15 people, then `POST /users`, relying on the directory's own uniqueness of identities and
//! `userPrincipalName` instead of one identity look-up each (see `provision_batch`).
//!
//! One file per layer: this module holds the entry point ([`Inner::drain`]), the state
//! machine's loop and the row bookkeeping; `server` the two calls to the approval API
//! (claim and report, `docs/CONTRACTS.md` §5); `provision` one approval's account on Graph
//! (§3); `grant` the grants of issue 14 §1 (§3, "Grants"); `batch` several federated
//! approvals provisioned together through `$batch` (§3).

mod batch;
mod grant;
mod provision;
mod server;

use guestlist_core::model::Flow;
use time::OffsetDateTime;

use crate::Inner;
use crate::cache::OutboxRow;
use crate::error::{ReviewerError, codes};
use crate::types::{DecisionKind, DecisionOutcome, OutboxState, Outcome};

/// Why a row stopped moving.
enum Stop {
    /// Final state reached.
    Final,
    /// Cannot continue now (offline, throttled, not signed in): stays where it is.
    Blocked(ReviewerError),
    /// Simulated crash (fault injection): stop everything.
    Crash,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The outcome of a row, for the facade.
pub(crate) fn outcome(row: &OutboxRow) -> DecisionOutcome {
    DecisionOutcome {
        id: row.request_id.clone(),
        outcome: match row.state {
            OutboxState::Reported => Outcome::Done,
            OutboxState::Conflict => Outcome::Conflict,
            OutboxState::Failed => Outcome::Failed,
            _ => Outcome::Queued,
        },
        state: row.state,
        directory_object_id: row.directory_object_id.clone(),
        how: row.how,
        error: row.last_error.clone(),
        current: row.current.clone(),
        label: row.label.clone(),
        undo_until: row.undo_until(),
        grants_failed: match row.state {
            OutboxState::Failed if row.directory_object_id.is_some() => {
                let item = row.item();
                item.grants_total.saturating_sub(item.grants_done)
            }
            _ => 0,
        },
    }
}

impl Inner {
    /// Persists `row`. When that fails (storage trouble, or the row is gone: undone while it
    /// was still queued) the row is dropped from this drain, so nothing is sent for it: every
    /// network call that writes (Graph, the decision report) comes after a successful save.
    fn save(&self, row: &mut OutboxRow) -> Result<(), Stop> {
        if let Err(e) = self.cache.save_outbox(row, now()) {
            row.state = OutboxState::Failed;
            row.last_error = Some(e.clone());
            return Err(Stop::Blocked(e));
        }
        if self.crash_after_write(row.state) {
            return Err(Stop::Crash);
        }
        Ok(())
    }

    fn finish(
        &self,
        row: &mut OutboxRow,
        state: OutboxState,
        err: Option<ReviewerError>,
    ) -> Result<Stop, Stop> {
        row.state = state;
        row.last_error = err;
        self.save(row)?;
        if matches!(state, OutboxState::Reported | OutboxState::Conflict) {
            // Decided (by us or someone else): out of the queue.
            let _ = self.cache.remove_request(&row.request_id);
        }
        Ok(Stop::Final)
    }

    fn block(&self, row: &mut OutboxRow, err: ReviewerError) -> Stop {
        if err.is_offline() {
            self.set_online(false);
        }
        row.last_error = Some(err.clone());
        if let Err(Stop::Blocked(e)) = self.save(row) {
            return Stop::Blocked(e);
        }
        Stop::Blocked(err)
    }

    /// Drains every unfinished outbox row (or only `ids`), returning the rows afterwards.
    ///
    /// Errors: `storage.error`; `test.simulated_crash` under fault injection.
    pub(crate) async fn drain(
        &self,
        ids: Option<&[String]>,
    ) -> Result<Vec<OutboxRow>, ReviewerError> {
        let _guard = self.drain_lock.lock().await;
        let started = now();
        let mut rows: Vec<OutboxRow> = self
            .cache
            .outbox_rows(0, started)?
            .into_iter()
            .filter(|r| !r.state.is_final() && !r.waiting(started))
            .filter(|r| ids.is_none_or(|ids| ids.contains(&r.request_id)))
            .collect();
        for r in rows.iter_mut() {
            r.attempts += 1;
        }
        // Phase 1: claim every queued row.
        for row in rows.iter_mut().filter(|r| r.state == OutboxState::Queued) {
            if let Err(Stop::Crash) = self.claim(row).await {
                return Err(crash());
            }
        }
        // Phase 2: batched provisioning of several federated approvals.
        if let Err(Stop::Crash) = self.provision_batch(&mut rows).await {
            return Err(crash());
        }
        // Phase 3: each row to the end.
        for row in rows.iter_mut() {
            if let Err(Stop::Crash) = self.run(row).await {
                return Err(crash());
            }
        }
        if !rows.is_empty() {
            self.changed();
        }
        Ok(rows)
    }

    async fn run(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        loop {
            let step = match row.state {
                OutboxState::Queued => self.claim(row).await,
                OutboxState::Claimed => match row.kind {
                    DecisionKind::Deny => self.report(row).await,
                    // The first of two approvals only records itself: no Graph write.
                    DecisionKind::Approve if first_of_two(row) => self.report(row).await,
                    DecisionKind::Approve => self.provision(row).await,
                },
                OutboxState::Invited => self.patch_invited(row).await,
                OutboxState::Provisioned
                    if row.kind == DecisionKind::Approve
                        && !row.request.grants.is_empty()
                        // No account to grant to in an external tenant yet (issue 17).
                        && row.request.flow != Flow::External =>
                {
                    self.grant(row).await
                }
                OutboxState::Provisioned | OutboxState::Granted => self.report(row).await,
                _ => return Ok(Stop::Final),
            };
            match step {
                Ok(Stop::Final) if !row.state.is_final() => continue,
                other => return other,
            }
        }
    }
}

/// Whether an approval of `row` is the first of the two its request needs (issue 14 §3), as
/// the server's answer to the claim says (`approvalsRequired`, `approvals`; the request as
/// reviewed when the claim's answer is not kept). Such an approval is reported without running
/// the Graph plan: the second approver's provisions.
pub(crate) fn first_of_two(row: &OutboxRow) -> bool {
    row.current
        .as_ref()
        .unwrap_or(&row.request)
        .awaits_first_of_two()
}

pub(crate) fn crash() -> ReviewerError {
    ReviewerError::new(codes::SIMULATED_CRASH, "simulated crash (fault injection)")
}
