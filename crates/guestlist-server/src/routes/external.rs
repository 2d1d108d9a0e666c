//! The external-tenant flow of the custom authentication extensions (issue 17;
//! `docs/CONTRACTS.md` §2): what `OnAttributeCollectionStart` and `OnAttributeCollectionSubmit`
//! answer once a person's request exists, and the flow check of an approver's decision.
//!
//! In an external tenant the account is a *customer* account that Entra creates itself when the
//! sign-up continues, so approval writes nothing to Graph: the approved person signs up again.
//!
//! | the person (canonical e-mail) has | Start answers | Submit answers |
//! |---|---|---|
//! | nothing, or a pending/denied/expired request | as check-approval-status | as request-approval (a new request is stored with flow `external`) |
//! | an approved external request, not completed | `setPrefillValues` with the attributes they submitted before (`continueWithDefaultBehavior` when none) | `continueWithDefaultBehavior`, and the request is completed (`request.completed`) |
//! | a completed request | `showBlockPage` `…-APPROVAL-APPROVED` (the account exists) | the same; but the same identity's Submit within `retry_window_seconds` of the completion is Entra's retry of the completing call (its answer was lost): `continueWithDefaultBehavior` again, nothing written |
//!
//! A denial anywhere for the person wins over an approval (the check-status rules answer).
//! Everything is answered from the store alone, never from Graph (1000 ms budget).

use axum::http::StatusCode;
use guestlist_core::Code;
use guestlist_core::connector::Claims;
use guestlist_core::email;
use guestlist_core::extension::{ExtensionAction, ExtensionEvent, block_title, prefill_inputs};
use guestlist_core::model::{
    ApprovalRequest, Decision, Flow, IdentityKey, ProvisionedBy, RequestState,
};
use guestlist_core::policy::MessageKind;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// What a person's stored requests say about their coming back (module docs).
#[derive(Debug, PartialEq)]
pub enum Comeback<'a> {
    /// No approved external request (or a denial): the connector rules answer.
    Undecided,
    /// Approved, external, not completed: let them finish.
    Approved(&'a ApprovalRequest),
    /// Their sign-up was completed: the account exists.
    Completed(&'a ApprovalRequest),
}

/// Reads [`Comeback`] from every request of one canonical e-mail.
pub fn comeback(requests: &[ApprovalRequest]) -> Comeback<'_> {
    if requests
        .iter()
        .any(|r| matches!(r.state, RequestState::Denied { .. }))
    {
        return Comeback::Undecided;
    }
    if let Some(done) = requests
        .iter()
        .filter(|r| r.completed_at.is_some())
        .max_by_key(|r| r.completed_at)
    {
        return Comeback::Completed(done);
    }
    requests
        .iter()
        .rev()
        .find(|r| r.flow == Flow::External && matches!(r.state, RequestState::Approved { .. }))
        .map_or(Comeback::Undecided, Comeback::Approved)
}

fn block(kind: MessageKind, state: &AppState, claims: &Claims) -> ExtensionAction {
    let locales = claims.ui_locales.as_deref();
    ExtensionAction::ShowBlockPage {
        title: Some(block_title(kind, locales).to_owned()),
        message: state.config.policy.message(kind, locales),
    }
}

fn answer(
    block_kind: Option<MessageKind>,
    state: &AppState,
    claims: &Claims,
) -> (ExtensionAction, Option<MessageKind>) {
    match block_kind {
        Some(kind) => (block(kind, state, claims), Some(kind)),
        None => (ExtensionAction::Continue, None),
    }
}

async fn requests_of(state: &AppState, claims: &Claims) -> Result<Vec<ApprovalRequest>, ApiError> {
    match email::canonical(&claims.email) {
        Ok(e) => Ok(state.store.requests_of_email(&e).await?),
        // Refused by the connector rules (EmailRefused) below.
        Err(_) => Ok(Vec::new()),
    }
}

/// The answer to an extension event (module docs), and the block kind for `/metrics`
/// (`None`: the person goes on).
///
/// Errors: [`ApiError::Store`] on database failure.
pub async fn answer_event(
    state: &AppState,
    claims: &Claims,
    event: ExtensionEvent,
) -> Result<(ExtensionAction, Option<MessageKind>), ApiError> {
    let mine = requests_of(state, claims).await?;
    match (comeback(&mine), event) {
        (Comeback::Completed(r), ExtensionEvent::Submit)
            if is_retry_of_completion(state, r, claims, OffsetDateTime::now_utc()) =>
        {
            Ok((ExtensionAction::Continue, None))
        }
        (Comeback::Completed(_), _) => Ok(answer(Some(MessageKind::Approved), state, claims)),
        (Comeback::Approved(r), ExtensionEvent::Start) => {
            let inputs = prefill_inputs(&r.claims);
            Ok(if inputs.is_empty() {
                (ExtensionAction::Continue, None)
            } else {
                (ExtensionAction::SetAttributes(inputs), None)
            })
        }
        (Comeback::Approved(r), ExtensionEvent::Submit) => {
            let now = OffsetDateTime::now_utc();
            let submitted = claims.to_json();
            match state.store.complete_external(r.id, &submitted, now).await? {
                Some(event) => {
                    state.publish(event);
                    Ok((ExtensionAction::Continue, None))
                }
                // Completed meanwhile (a concurrent call): answer as the table says now.
                None => {
                    let now_stored = state.store.get(r.id).await?;
                    if is_retry_of_completion(state, &now_stored, claims, now) {
                        Ok((ExtensionAction::Continue, None))
                    } else {
                        Ok(answer(Some(MessageKind::Approved), state, claims))
                    }
                }
            }
        }
        (Comeback::Undecided, ExtensionEvent::Start) => {
            let b = state.check_status(claims).await?;
            Ok(answer(b, state, claims))
        }
        (Comeback::Undecided, ExtensionEvent::Submit) => {
            let b = state.request_approval_flow(claims, Flow::External).await?;
            Ok(answer(b, state, claims))
        }
    }
}

/// Whether a Submit is Entra's retry of the call that completed `r`: the same identity, within
/// `retry_window_seconds` of the completion.
fn is_retry_of_completion(
    state: &AppState,
    r: &ApprovalRequest,
    claims: &Claims,
    now: OffsetDateTime,
) -> bool {
    let window =
        time::Duration::seconds(i64::try_from(state.config.retry_window_seconds).unwrap_or(120));
    r.completed_at.is_some_and(|at| now - at <= window) && IdentityKey::of(claims) == r.key
}

/// Refuses an approval whose `how` does not fit request `id`'s flow: an external-tenant
/// request is approved with `how: "userFlow"` (Entra creates the account later; nothing was
/// written to Graph), a workforce request never is (its account exists before the report).
///
/// Errors: 400 `decision.wrong_flow`; 404 when there is no such request; 500 on storage
/// failure.
pub async fn refuse_wrong_flow(
    state: &AppState,
    id: Uuid,
    decision: &Decision,
) -> Result<(), ApiError> {
    let Decision::Approve { how, .. } = decision else {
        return Ok(());
    };
    let flow = state.store.get(id).await?.flow;
    let fits = (flow == Flow::External) == (*how == ProvisionedBy::UserFlow);
    if fits {
        return Ok(());
    }
    Err(ApiError::Status {
        status: StatusCode::BAD_REQUEST,
        code: Code::DecisionWrongFlow,
        message: match flow {
            Flow::External => "this request came from an external tenant: approve it with how \"userFlow\" and no account (Entra creates the account when the person signs up again)".into(),
            Flow::Workforce => "this request came from a workforce tenant's API connectors: approve it with the account created in Graph (how \"userCreated\", \"invitation\" or \"existingAccount\")".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(flow: Flow, state: RequestState, completed: bool) -> ApprovalRequest {
        let claims = Claims::from_json(json!({"email": "linnea@example.se"})).unwrap();
        ApprovalRequest {
            id: Uuid::now_v7(),
            key: IdentityKey::of(&claims),
            state,
            version: 2,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            decided_by: None,
            attempts: 1,
            flow,
            completed_at: completed.then_some(OffsetDateTime::UNIX_EPOCH),
            escalated_at: None,
            claims: claims.to_json(),
            grants: Vec::new(),
            route: None,
            approvals_required: 1,
            approvals: Vec::new(),
        }
    }

    fn approved() -> RequestState {
        RequestState::Approved {
            directory_object_id: None,
            how: ProvisionedBy::UserFlow,
        }
    }

    #[test]
    fn comeback_rules() {
        let ext = request(Flow::External, approved(), false);
        assert_eq!(
            comeback(std::slice::from_ref(&ext)),
            Comeback::Approved(&ext)
        );
        let done = request(Flow::External, approved(), true);
        assert_eq!(
            comeback(std::slice::from_ref(&done)),
            Comeback::Completed(&done)
        );
        // A workforce approval is not finished through the extensions.
        let wf = request(Flow::Workforce, approved(), false);
        assert_eq!(comeback(std::slice::from_ref(&wf)), Comeback::Undecided);
        // A denial of the person wins.
        let denied = request(
            Flow::External,
            RequestState::Denied { reason: "x".into() },
            false,
        );
        assert_eq!(comeback(&[ext.clone(), denied]), Comeback::Undecided);
        // Completed under one identity provider blocks the others.
        assert_eq!(comeback(&[done.clone(), ext]), Comeback::Completed(&done));
        assert_eq!(comeback(&[]), Comeback::Undecided);
    }
}
