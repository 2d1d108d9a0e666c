//! The outbox's two calls to the approval API (`docs/CONTRACTS.md` §5): the claim
//! (`GET /api/requests/{id}`: still pending at the version the approver reviewed) and the
//! report (`POST /api/requests/{id}/decision` with `If-Match` and the stored
//! `Idempotency-Key`), with the conflict and version-mismatch outcomes of both.

use guestlist_core::model::{Decision, ProvisionedBy, RequestState};

use super::Stop;
use crate::Inner;
use crate::api::ApiFailure;
use crate::cache::OutboxRow;
use crate::error::{ReviewerError, codes};
use crate::types::{DecisionKind, OutboxState};

impl Inner {
    /// queued → claimed: the request must still be pending at the version the approver saw.
    pub(super) async fn claim(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
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
            // A refusal that will not change on retry, e.g. 403 `decision.not_routed` (the
            // request is routed to other approvers): failed, nothing provisioned.
            Err(f @ ApiFailure::Other { status, .. }) if (400..500).contains(&status) => {
                return self.finish(row, OutboxState::Failed, Some(f.to_error()));
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
        // Two approvals needed (issue 14 §3) and the first is this approver's own: the server
        // would refuse a second one (`decision.second_approver_required`); nothing is
        // provisioned.
        let me = self.rt(|r| r.session.as_ref().map(|s| s.object_id.clone()));
        if row.kind == DecisionKind::Approve
            && let Some(me) = me.filter(|m| !m.is_empty())
            && current.approvals.iter().any(|a| a.by.id == me)
        {
            row.current = Some(current);
            return self.finish(
                row,
                OutboxState::Conflict,
                Some(ReviewerError::new(
                    guestlist_core::Code::DecisionSecondApproverRequired,
                    "you recorded the first of the two approvals this request needs: a second, different approver must approve it. Nothing was provisioned.",
                )),
            );
        }
        row.current = Some(current);
        row.state = OutboxState::Claimed;
        row.last_error = None;
        self.save(row)?;
        Ok(Stop::Final)
    }

    /// claimed (deny) / provisioned or granted (approve) → reported.
    pub(super) async fn report(&self, row: &mut OutboxRow) -> Result<Stop, Stop> {
        let decision = match row.kind {
            DecisionKind::Deny => Decision::Deny {
                reason: row.reason.clone().unwrap_or_default(),
            },
            // The first of two approvals (issue 14 §3): recorded by the server, nothing was
            // provisioned, so no id; `how` is the plan's.
            DecisionKind::Approve if super::first_of_two(row) => Decision::Approve {
                directory_object_id: String::new(),
                how: self
                    .plan_of(row)
                    .map(|p| p.kind)
                    .unwrap_or(ProvisionedBy::UserCreated),
            },
            DecisionKind::Approve => match (&row.directory_object_id, row.how) {
                (Some(id), Some(how)) => Decision::Approve {
                    directory_object_id: id.clone(),
                    how,
                },
                // An external tenant's approval (issue 17): no account yet.
                (None, Some(ProvisionedBy::UserFlow)) => Decision::Approve {
                    directory_object_id: String::new(),
                    how: ProvisionedBy::UserFlow,
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
                            ) => directory_object_id.as_deref().unwrap_or_default() == mine,
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
}
