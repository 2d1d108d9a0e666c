//! The grants of issue 14 §1 (`docs/CONTRACTS.md` §3, "Grants"): provisioned → granted.
//! Group memberships, app-role assignments and sponsors, sent through `$batch`; each grant
//! Graph confirms is saved as done, so a restart or Retry runs only the missing ones.

use guestlist_core::model::Grant;
use guestlist_core::plan::grant_call;
use guestlist_graph::GraphError;

use super::Stop;
use crate::Inner;
use crate::cache::OutboxRow;
use crate::error::{ReviewerError, codes};
use crate::types::OutboxState;

impl Inner {
    /// provisioned → granted: the request's grants not yet in place, in `$batch` requests
    /// (`GraphClient::grant_all`), the approver's object id standing for the `approver`
    /// sponsor. Each grant Graph confirms (or says already exists) is saved as done; a
    /// throttled or unreachable Graph leaves the row here to resume; a refused grant makes it
    /// `failed` with the account recorded (the partial state; see the module docs).
    pub(super) async fn grant(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
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
}
