//! One approval's account on Microsoft Graph (`docs/CONTRACTS.md` §3): the plan's look-ups
//! (identity, then mail), then `POST /users`, or `POST /invitations` followed by
//! `PATCH /users/{id}`, with `write_started` saved before the write: claimed → (invited →)
//! provisioned; an external tenant's request (issue 17, plan kind `userFlow`) goes from claimed
//! to provisioned without any Graph call. Also the Graph helpers the other layers share (token, failure mapping).

use guestlist_core::model::ProvisionedBy;
use guestlist_core::plan::{ProvisioningPlan, plan_for, resolve};
use serde_json::Value;

use super::Stop;
use crate::Inner;
use crate::cache::OutboxRow;
use crate::error::{ReviewerError, codes};
use crate::types::OutboxState;

fn graph_is_transient(e: &guestlist_graph::Error) -> bool {
    match e {
        guestlist_graph::Error::Network(_) => true,
        guestlist_graph::Error::Graph(g) => g.status == 429 || g.status >= 500 || g.status == 401,
        _ => false,
    }
}

impl Inner {
    pub(super) fn plan_of(&self, row: &OutboxRow) -> Result<ProvisioningPlan, ReviewerError> {
        let claims = row
            .request
            .typed_claims()
            .map_err(|e| ReviewerError::new(codes::PLAN, format!("invalid claims: {e}")))?;
        plan_for(row.request.flow, &claims, &self.settings().provisioning)
            .map_err(|e| ReviewerError::new(codes::PLAN, e.to_string()))
    }

    pub(super) async fn graph_token(&self, row: &mut OutboxRow) -> Result<String, Stop> {
        let settings = self.settings();
        match self.auth.graph_token(&settings).await {
            Ok(t) => Ok(t),
            Err(e) => Err(self.block(row, e)),
        }
    }

    pub(super) fn graph_failure(
        &self,
        row: &mut OutboxRow,
        e: guestlist_graph::Error,
    ) -> Result<Stop, Stop> {
        let transient = graph_is_transient(&e);
        let err: ReviewerError = e.into();
        if transient {
            Err(self.block(row, err))
        } else {
            self.finish(row, OutboxState::Failed, Some(err))
        }
    }

    /// Records an account found by a look-up; `planned` is how the plan would have created it.
    pub(super) fn found(
        &self,
        row: &mut OutboxRow,
        planned: ProvisionedBy,
        id: String,
    ) -> Result<Stop, Stop> {
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
    pub(super) async fn provision(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        let p = match self.plan_of(row) {
            Ok(p) => p,
            Err(e) => return self.finish(row, OutboxState::Failed, Some(e)),
        };
        if p.kind == ProvisionedBy::UserFlow {
            // An external tenant's request (issue 17): nothing to write in Graph; Entra
            // creates the customer account when the person signs up again.
            row.directory_object_id = None;
            row.how = Some(ProvisionedBy::UserFlow);
            row.state = OutboxState::Provisioned;
            row.last_error = None;
            self.save(row)?;
            return Ok(Stop::Final);
        }
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
    pub(super) async fn patch_invited(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
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
}
