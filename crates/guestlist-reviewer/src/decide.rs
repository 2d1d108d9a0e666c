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
//! provisioned (no grants) / granted ─POST /api/requests/{id}/decision (If-Match, Idempotency-Key)─▶ reported
//! ```
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

use guestlist_core::model::{Decision, Grant, ProvisionedBy, RequestState};
use std::collections::HashMap;

use guestlist_core::plan::{
    FILTER_IN_MAX, ProvisioningPlan, grant_call, lookup_by_mails, plan, resolve,
};
use guestlist_graph::{BatchItem, GraphError};
use serde_json::Value;
use time::OffsetDateTime;

use crate::Inner;
use crate::api::ApiFailure;
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

fn graph_is_transient(e: &guestlist_graph::Error) -> bool {
    match e {
        guestlist_graph::Error::Network(_) => true,
        guestlist_graph::Error::Graph(g) => g.status == 429 || g.status >= 500 || g.status == 401,
        _ => false,
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
                    DecisionKind::Approve => self.provision(row).await,
                },
                OutboxState::Invited => self.patch_invited(row).await,
                OutboxState::Provisioned
                    if row.kind == DecisionKind::Approve && !row.request.grants.is_empty() =>
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

    /// queued → claimed: the request must still be pending at the version the approver saw.
    async fn claim(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        let id = row.request_id.clone();
        let current = match self
            .with_api(|api, t| {
                let id = id.clone();
                async move { api.get(&t, &id).await }
            })
            .await
        {
            Ok(c) => c,
            Err(ApiFailure::NotFound(m)) => {
                return self.finish(
                    row,
                    OutboxState::Failed,
                    Some(ReviewerError::new(codes::NOT_FOUND, m)),
                );
            }
            Err(
                f @ (ApiFailure::Offline(_)
                | ApiFailure::Unauthorized(_)
                | ApiFailure::Forbidden { .. }),
            ) => {
                return Err(self.block(row, f.to_error()));
            }
            Err(f) => return Err(self.block(row, f.to_error())),
        };
        if current.state != RequestState::Pending {
            let who = current
                .decided_by
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| "someone else".into());
            let msg = format!(
                "already {} by {who}; nothing was provisioned",
                current.state.status().as_str()
            );
            row.current = Some(current);
            return self.finish(
                row,
                OutboxState::Conflict,
                Some(ReviewerError::new(codes::CONFLICT, msg)),
            );
        }
        if current.version != row.expected_version {
            let msg = format!(
                "the request changed since you reviewed it (version {} → {}); review it again. Nothing was provisioned.",
                row.expected_version, current.version
            );
            let _ = self
                .cache
                .store_pending(std::slice::from_ref(&current), false);
            row.current = Some(current);
            return self.finish(
                row,
                OutboxState::Conflict,
                Some(ReviewerError::new(codes::VERSION_MISMATCH, msg)),
            );
        }
        row.current = Some(current);
        row.state = OutboxState::Claimed;
        row.last_error = None;
        self.save(row)?;
        Ok(Stop::Final)
    }

    fn plan_of(&self, row: &OutboxRow) -> Result<ProvisioningPlan, ReviewerError> {
        let claims = row
            .request
            .typed_claims()
            .map_err(|e| ReviewerError::new(codes::PLAN, format!("invalid claims: {e}")))?;
        plan(&claims, &self.settings().provisioning)
            .map_err(|e| ReviewerError::new(codes::PLAN, e.to_string()))
    }

    async fn graph_token(&self, row: &mut OutboxRow) -> Result<String, Stop> {
        let settings = self.settings();
        match self.auth.graph_token(&settings).await {
            Ok(t) => Ok(t),
            Err(e) => Err(self.block(row, e)),
        }
    }

    fn graph_failure(&self, row: &mut OutboxRow, e: guestlist_graph::Error) -> Result<Stop, Stop> {
        let transient = graph_is_transient(&e);
        let err: ReviewerError = e.into();
        if transient {
            Err(self.block(row, err))
        } else {
            self.finish(row, OutboxState::Failed, Some(err))
        }
    }

    /// Records an account found by a look-up; `planned` is how the plan would have created it.
    fn found(&self, row: &mut OutboxRow, planned: ProvisionedBy, id: String) -> Result<Stop, Stop> {
        row.directory_object_id = Some(id);
        if row.write_started && planned == ProvisionedBy::Invitation {
            // Our own invitation from before a crash: the PATCH may still be missing.
            row.how = Some(ProvisionedBy::Invitation);
            row.state = OutboxState::Invited;
        } else {
            row.how = Some(if row.write_started {
                planned
            } else {
                ProvisionedBy::ExistingAccount
            });
            row.state = OutboxState::Provisioned;
        }
        row.last_error = None;
        self.save(row)?;
        Ok(Stop::Final)
    }

    /// claimed → (invited →) provisioned.
    async fn provision(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        let p = match self.plan_of(row) {
            Ok(p) => p,
            Err(e) => return self.finish(row, OutboxState::Failed, Some(e)),
        };
        let token = self.graph_token(row).await?;
        let graph = self.graph_client();
        // The look-ups in order, up to the first that finds someone; `resolve` (the same
        // function the detail view shows the plan with) says what follows.
        let mut found_ids: Vec<Option<String>> = Vec::with_capacity(p.lookups.len());
        for lookup in &p.lookups {
            match graph.find_users(&token, lookup).await {
                Ok(users) => {
                    let id = users
                        .first()
                        .and_then(|u| u.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let hit = id.is_some();
                    found_ids.push(id);
                    if hit {
                        break;
                    }
                }
                Err(e) => return self.graph_failure(row, e),
            }
        }
        let planned = p.kind;
        let p = resolve(p, &found_ids);
        if let Some(id) = p.existing_account.clone() {
            return self.found(row, planned, id);
        }
        self.set_online(true);
        // Nothing found: record that a write starts BEFORE sending it.
        row.write_started = true;
        self.save(row)?;
        let Some(first) = p.writes.first() else {
            return self.finish(
                row,
                OutboxState::Failed,
                Some(ReviewerError::new(codes::PLAN, "empty plan")),
            );
        };
        let created = match graph.call(&token, first).await {
            Ok(v) => v,
            Err(e) => return self.graph_failure(row, e),
        };
        let id = match p.kind {
            ProvisionedBy::Invitation => created.pointer("/invitedUser/id"),
            _ => created.get("id"),
        }
        .and_then(Value::as_str)
        .map(str::to_owned);
        let Some(id) = id else {
            return self.finish(
                row,
                OutboxState::Failed,
                Some(ReviewerError::new(
                    codes::GRAPH_DECODE,
                    format!("{} answered without an id", first.path),
                )),
            );
        };
        if self.faults.crash_after_graph_write {
            self.simulated_crash(&format!("graph_write state={:?}", row.state));
            return Err(Stop::Crash);
        }
        row.directory_object_id = Some(id);
        row.how = Some(p.kind);
        row.state = if p.kind == ProvisionedBy::Invitation {
            OutboxState::Invited
        } else {
            OutboxState::Provisioned
        };
        self.save(row)?;
        Ok(Stop::Final)
    }

    /// invited → provisioned: `PATCH /users/{id}` with the collected attributes.
    async fn patch_invited(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        let p = match self.plan_of(row) {
            Ok(p) => p,
            Err(e) => return self.finish(row, OutboxState::Failed, Some(e)),
        };
        let Some(id) = row.directory_object_id.clone() else {
            return self.finish(
                row,
                OutboxState::Failed,
                Some(ReviewerError::storage("invited without an id")),
            );
        };
        let token = self.graph_token(row).await?;
        if let Some(patch) = p.writes.get(1).and_then(|w| w.body.clone())
            && let Err(e) = self.graph_client().patch_user(&token, &id, &patch).await
        {
            return self.graph_failure(row, e);
        }
        row.state = OutboxState::Provisioned;
        row.how = Some(ProvisionedBy::Invitation);
        row.last_error = None;
        self.save(row)?;
        Ok(Stop::Final)
    }

    /// provisioned → granted: the request's grants not yet in place, in `$batch` requests
    /// (`GraphClient::grant_all`), the approver's object id standing for the `approver`
    /// sponsor. Each grant Graph confirms (or says already exists) is saved as done; a
    /// throttled or unreachable Graph leaves the row here to resume; a refused grant makes it
    /// `failed` with the account recorded (the partial state; see the module docs).
    async fn grant(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        let todo: Vec<Grant> = row
            .request
            .grants
            .iter()
            .filter(|g| !row.grants_done.contains(g))
            .cloned()
            .collect();
        if todo.is_empty() {
            row.state = OutboxState::Granted;
            row.last_error = None;
            self.save(row)?;
            return Ok(Stop::Final);
        }
        let Some(user) = row.directory_object_id.clone() else {
            return self.finish(
                row,
                OutboxState::Failed,
                Some(ReviewerError::storage("provisioned without an id")),
            );
        };
        let approver = self
            .rt(|r| r.session.as_ref().map(|s| s.object_id.clone()))
            .unwrap_or_default();
        if approver.is_empty() && todo.contains(&Grant::ApproverSponsor) {
            return Err(self.block(
                row,
                ReviewerError::new(
                    codes::NOT_SIGNED_IN,
                    "sign in again: the approver becomes the guest's sponsor",
                ),
            ));
        }
        let token = self.graph_token(row).await?;
        let calls: Vec<_> = todo
            .iter()
            .map(|g| grant_call(g, &user, &approver))
            .collect();
        let results = match self.graph_client().grant_all(&token, &calls).await {
            Ok(r) => r,
            Err(e) => return self.graph_failure(row, e),
        };
        self.set_online(true);
        let mut refused: Option<GraphError> = None;
        let mut transient: Option<GraphError> = None;
        for (g, r) in todo.iter().zip(results) {
            match r {
                Ok(()) => row.grants_done.push(g.clone()),
                Err(e)
                    if e.status == 429 || e.status >= 500 || e.status == 401 || e.status == 0 =>
                {
                    transient.get_or_insert(e);
                }
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        let total = row.request.grants.len();
        let missing = total
            - row
                .request
                .grants
                .iter()
                .filter(|g| row.grants_done.contains(g))
                .count();
        if let Some(e) = refused {
            let mut err: ReviewerError = guestlist_graph::Error::Graph(e).into();
            err.message = format!(
                "Account created · {missing} of {total} grants failed: {}",
                err.message
            );
            return self.finish(row, OutboxState::Failed, Some(err));
        }
        if let Some(e) = transient {
            self.save(row)?;
            return Err(self.block(row, guestlist_graph::Error::Graph(e).into()));
        }
        row.state = OutboxState::Granted;
        row.last_error = None;
        self.save(row)?;
        Ok(Stop::Final)
    }

    /// claimed (deny) / provisioned or granted (approve) → reported.
    async fn report(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        let decision = match row.kind {
            DecisionKind::Deny => Decision::Deny {
                reason: row.reason.clone().unwrap_or_default(),
            },
            DecisionKind::Approve => match (&row.directory_object_id, row.how) {
                (Some(id), Some(how)) => Decision::Approve {
                    directory_object_id: id.clone(),
                    how,
                },
                _ => {
                    return self.finish(
                        row,
                        OutboxState::Failed,
                        Some(ReviewerError::storage("provisioned without an id")),
                    );
                }
            },
        };
        let mut version = row.expected_version;
        for _ in 0..2 {
            let (id, key, d) = (
                row.request_id.clone(),
                row.idempotency_key.clone(),
                decision.clone(),
            );
            let res = self
                .with_api(|api, t| {
                    let (id, key, d) = (id.clone(), key.clone(), d.clone());
                    async move { api.decide(&t, &id, version, &key, &d).await }
                })
                .await;
            match res {
                Ok(r) => {
                    row.current = Some(r);
                    return self.finish(row, OutboxState::Reported, None);
                }
                Err(ApiFailure::Conflict {
                    message,
                    current,
                    request_id,
                }) => {
                    let ours = current
                        .as_ref()
                        .is_some_and(|c| match (&c.state, &decision) {
                            (
                                RequestState::Approved {
                                    directory_object_id,
                                    ..
                                },
                                Decision::Approve {
                                    directory_object_id: mine,
                                    ..
                                },
                            ) => directory_object_id.as_deref() == Some(mine.as_str()),
                            (RequestState::Denied { reason }, Decision::Deny { reason: mine }) => {
                                reason == mine
                            }
                            _ => false,
                        });
                    row.current = current.map(|c| *c);
                    if ours {
                        return self.finish(row, OutboxState::Reported, None);
                    }
                    let msg = match (&row.kind, &row.directory_object_id) {
                        (DecisionKind::Approve, Some(id)) => format!(
                            "{message}. The account {id} exists in the directory (created or reused by this approval)."
                        ),
                        _ => message,
                    };
                    return self.finish(
                        row,
                        OutboxState::Conflict,
                        Some(ReviewerError::new(codes::CONFLICT, msg).with_request_id(request_id)),
                    );
                }
                Err(ApiFailure::VersionMismatch {
                    message,
                    current,
                    request_id,
                }) => {
                    // Still pending at a newer version (the user retried the sign-up): an
                    // approval whose account now exists is reported against it, once.
                    match current {
                        Some(c)
                            if c.state == RequestState::Pending
                                && row.kind == DecisionKind::Approve
                                && version != c.version =>
                        {
                            version = c.version;
                            continue;
                        }
                        c => {
                            row.current = c.map(|c| *c);
                            return self.finish(
                                row,
                                OutboxState::Conflict,
                                Some(
                                    ReviewerError::new(codes::VERSION_MISMATCH, message)
                                        .with_request_id(request_id),
                                ),
                            );
                        }
                    }
                }
                Err(ApiFailure::NotFound(m)) => {
                    return self.finish(
                        row,
                        OutboxState::Failed,
                        Some(ReviewerError::new(codes::NOT_FOUND, m)),
                    );
                }
                Err(f @ ApiFailure::Other { status, .. }) if (400..500).contains(&status) => {
                    return self.finish(row, OutboxState::Failed, Some(f.to_error()));
                }
                Err(f) => return Err(self.block(row, f.to_error())),
            }
        }
        Err(self.block(
            row,
            ReviewerError::new(
                codes::VERSION_MISMATCH,
                "the request keeps changing; will retry",
            ),
        ))
    }

    /// Phase 2 of [`Inner::drain`]: two or more claimed federated approvals with no write
    /// started are provisioned together, in as few Graph round trips as the directory allows:
    ///
    /// 1. one look-up per [`FILTER_IN_MAX`] people, `GET /users?$filter=mail in (…)`, all in
    ///    `$batch` requests (100 people: 7 look-ups, one round trip). A person whose e-mail
    ///    already has an account gets that account (reused, nothing created).
    /// 2. `POST /users` for the others in `$batch` requests (20 per round trip), with
    ///    `write_started` saved first. No separate identity look-up: the directory itself
    ///    refuses a second user with the same `identities` (issuer, issuerAssignedId) or
    ///    `userPrincipalName` ("The combination of issuer and issuerAssignedId must be unique
    ///    within the organization", Graph `objectIdentity`), atomically, which a look-up cannot
    ///    promise. Such a refusal (400 "… already exists") means nothing was written: the row goes
    ///    back to `write_started = false` and the one-by-one path looks the account up by
    ///    identity and mail and reuses it.
    ///
    /// 100 approvals: 1 + 5 round trips instead of 2 × 10 look-ups + 5. Rows this cannot settle
    /// (a failed look-up, a lost batch response, a throttled item) stay claimed for the
    /// one-by-one path, whose look-ups find anything a lost response created.
    async fn provision_batch(&self, rows: &mut [OutboxRow]) -> Result<(), Stop> {
        let mut todo: Vec<(usize, ProvisioningPlan, String)> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if r.state == OutboxState::Claimed
                && r.kind == DecisionKind::Approve
                && !r.write_started
                && let Ok(p) = self.plan_of(r)
                && p.kind == ProvisionedBy::UserCreated
                && let Some(mail) = p.writes[0]
                    .body
                    .as_ref()
                    .and_then(|b| b.get("mail"))
                    .and_then(Value::as_str)
            {
                let mail = mail.trim().to_lowercase();
                todo.push((i, p, mail));
            }
        }
        if todo.len() < 2 {
            return Ok(());
        }
        let settings = self.settings();
        let Ok(token) = self.auth.graph_token(&settings).await else {
            return Ok(());
        };
        let graph = self.graph_client();

        // 1. Look-ups by e-mail, FILTER_IN_MAX addresses each.
        let mut mails: Vec<&str> = todo.iter().map(|(_, _, m)| m.as_str()).collect();
        mails.sort_unstable();
        mails.dedup();
        let chunks: Vec<&[&str]> = mails.chunks(FILTER_IN_MAX).collect();
        let lookups = chunks
            .iter()
            .enumerate()
            .map(|(k, chunk)| {
                let l = lookup_by_mails(chunk);
                BatchItem {
                    id: k.to_string(),
                    method: l.method,
                    url: l.path,
                    body: None,
                    depends_on: vec![],
                }
            })
            .collect();
        let Ok(results) = graph.batch(&token, lookups).await else {
            return Ok(());
        };
        let mut looked_up: HashMap<String, Option<String>> = HashMap::new();
        for r in results.iter().filter(|r| r.is_success()) {
            let Some(chunk) = r.id.parse::<usize>().ok().and_then(|k| chunks.get(k)) else {
                continue;
            };
            for m in chunk.iter() {
                looked_up.entry((*m).to_owned()).or_insert(None);
            }
            for u in r.body["value"].as_array().into_iter().flatten() {
                if let (Some(m), Some(id)) = (
                    u.get("mail").and_then(Value::as_str),
                    u.get("id").and_then(Value::as_str),
                ) && let Some(slot) = looked_up.get_mut(&m.trim().to_lowercase())
                    && slot.is_none()
                {
                    *slot = Some(id.to_owned());
                }
            }
        }
        let mut create = Vec::new();
        for (i, p, mail) in &todo {
            match looked_up.get(mail) {
                None => {} // its look-up failed: settled one by one
                Some(Some(id)) => {
                    self.found(&mut rows[*i], p.kind, id.clone())?;
                }
                Some(None) => create.push((*i, p.clone())),
            }
        }
        if create.is_empty() {
            return Ok(());
        }

        // 2. Create the accounts nobody has.
        self.set_online(true);
        let mut items = Vec::new();
        for (n, (i, p)) in create.iter().enumerate() {
            rows[*i].write_started = true;
            self.save(&mut rows[*i])?;
            let w = &p.writes[0];
            items.push(BatchItem {
                id: n.to_string(),
                method: w.method.clone(),
                url: w.path.clone(),
                body: w.body.clone(),
                depends_on: vec![],
            });
        }
        let results = match graph.batch(&token, items).await {
            Ok(r) => r,
            Err(_) => return Ok(()), // look-ups on the one-by-one path find what was created
        };
        if self.faults.crash_after_graph_write {
            self.simulated_crash("graph_write state=Claimed");
            return Err(Stop::Crash);
        }
        for r in results {
            let Ok(n) = r.id.parse::<usize>() else {
                continue;
            };
            let Some((i, _)) = create.get(n) else {
                continue;
            };
            let row = &mut rows[*i];
            if r.is_success() {
                if let Some(id) = r.body.get("id").and_then(Value::as_str) {
                    row.directory_object_id = Some(id.to_owned());
                    row.how = Some(ProvisionedBy::UserCreated);
                    row.state = OutboxState::Provisioned;
                    row.last_error = None;
                    self.save(row)?;
                }
            } else if let Some(e) = r.error.clone()
                && is_uniqueness_conflict(&e)
            {
                // Nothing was written: an account with this identity or UPN exists. The
                // one-by-one path finds it by identity or mail and reuses it.
                row.write_started = false;
                self.save(row)?;
            } else if let Some(e) = r.error.clone()
                && !(e.status == 429 || e.status >= 500)
            {
                let _ = self.finish(
                    row,
                    OutboxState::Failed,
                    Some(guestlist_graph::Error::Graph(e).into()),
                );
            } else {
                let e = r.error.clone().unwrap_or_else(|| GraphError {
                    status: r.status,
                    code: "UnknownError".into(),
                    message: "batch item failed".into(),
                    request_id: None,
                    date: None,
                });
                row.last_error = Some(guestlist_graph::Error::Graph(e).into());
                self.save(row)?;
            }
        }
        Ok(())
    }
}

/// Graph's refusal of a second object with the same unique property: HTTP 400
/// `Request_BadRequest`, "Another object with the same value for property {name} already
/// exists." (`userPrincipalName`, `identities`, `proxyAddresses`, …). Nothing was written.
fn is_uniqueness_conflict(e: &GraphError) -> bool {
    e.status == 400 && e.message.contains("already exists")
}

pub(crate) fn crash() -> ReviewerError {
    ReviewerError::new(codes::SIMULATED_CRASH, "simulated crash (fault injection)")
}
