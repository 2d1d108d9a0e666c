//! Separation of duties and routing (issue 14 §2, §3): an approver never decides a request for
//! themselves; each approver sees and decides only the requests routed to them ([`Scope`]); a
//! route may need two distinct approvers ([`check_decision`]).
//!
//! **Routing.** A request is routed when it is created, by the first `[[policy.routes]]` rule
//! that matches ([`guestlist_core::policy::RouteRule`]); the route's name is stored with it. A
//! caller's [`Scope`] follows from the app roles of their token: the admin role
//! (`approver_auth.admin_role`) sees every request; the plain approver role
//! (`approver_auth.required_role`) sees unrouted requests (and those of routes no longer in the
//! policy); a route's `role` sees its requests; a route's `fallback_role` sees them once the
//! escalation job marked them escalated ([`crate::escalation`]: pending `escalate_after_hours`,
//! then `escalated_at` is stored with the event `request.escalated`). Visibility follows the
//! stored `escalated_at` (in SQL for lists), never the creation time: a changed delay neither
//! hides a request already escalated and announced, nor shows one before its event. Lists, the event stream, detail, history and decisions all
//! go through the scope; a request outside it is 403 `decision.not_routed`.
//!
//! The request's person is its canonical e-mail ([`guestlist_core::email::canonical`]); the
//! approver is every e-mail-like name their token gives them — `preferred_username` (v2.0),
//! `email` (optional claim) and `upn` (v1.0) — in the same canonical form, so case, fullwidth or
//! Unicode-compatible spellings of one address are one person. A match refuses both approving
//! and denying with 403 `decision.self_approval`.

use guestlist_core::email::canonical;
use guestlist_core::model::{Actor, ApprovalRequest, Decision};
use guestlist_core::policy::Policy;
use uuid::Uuid;

use guestlist_core::code::Code;

use crate::AppState;
use crate::auth::TokenClaims;
use crate::config::{ApproverAuth, Config};
use crate::error::ApiError;

/// The app roles, besides `approver_auth.required_role`, that may call the approver queue: the
/// admin role and every route's `role` and `fallback_role` (see
/// [`crate::auth::ApproverVerifier::with_queue_roles`]).
pub fn queue_roles(config: &Config) -> Vec<String> {
    let mut out = vec![config.approver_auth.admin_role.clone()];
    for r in &config.policy.routes {
        for role in std::iter::once(&r.role).chain(r.fallback_role.as_ref()) {
            if !out.contains(role) {
                out.push(role.clone());
            }
        }
    }
    out
}

/// Which requests one caller may see and decide, from the app roles of their token (module
/// docs). Both stores turn it into SQL for `GET /api/requests` ([`crate::store::Backend`]'s
/// `list_scoped`); [`Scope::allows`] decides for one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Everything (the admin role).
    pub all: bool,
    /// Unrouted requests, and those of a route no longer in the policy (the approver role).
    pub unrouted: bool,
    /// Routes whose `role` the caller holds.
    pub routes: Vec<String>,
    /// Routes whose `fallback_role` the caller holds (and that escalate): their requests marked
    /// escalated (`escalated_at` set) are visible.
    pub escalated: Vec<String>,
    /// Every route name of the policy (a stored name outside it counts as unrouted).
    pub known: Vec<String>,
}

impl Scope {
    /// The scope that sees everything (admin; internal callers).
    pub fn everything() -> Scope {
        Scope {
            all: true,
            ..Scope::default()
        }
    }

    /// The scope of a caller holding `roles`.
    pub fn of(policy: &Policy, auth: &ApproverAuth, roles: &[String]) -> Scope {
        let holds = |role: &str| roles.iter().any(|r| r == role);
        if holds(&auth.admin_role) {
            return Scope::everything();
        }
        let mut scope = Scope {
            all: false,
            unrouted: holds(&auth.required_role),
            known: policy.routes.iter().map(|r| r.name.clone()).collect(),
            ..Scope::default()
        };
        for r in &policy.routes {
            if holds(&r.role) {
                scope.routes.push(r.name.clone());
            } else if let (Some(fallback), Some(_)) = (&r.fallback_role, r.escalation_delay())
                && holds(fallback)
            {
                scope.escalated.push(r.name.clone());
            }
        }
        scope
    }

    /// Whether a request of `route`, marked escalated or not (`escalated`: its `escalated_at` is
    /// set), is in the scope. A fallback role sees a marked request of its route whenever the
    /// mark was made, so a stream opened before the request escalated still gets the
    /// `request.escalated` event (issue 14 §2).
    pub fn allows(&self, route: Option<&str>, escalated: bool) -> bool {
        if self.all {
            return true;
        }
        let Some(route) = route.filter(|r| self.known.iter().any(|k| k == r)) else {
            return self.unrouted;
        };
        self.routes.iter().any(|r| r == route)
            || (escalated && self.escalated.iter().any(|r| r == route))
    }

    /// [`Scope::allows`] for a request.
    pub fn allows_request(&self, r: &ApprovalRequest) -> bool {
        self.allows(r.route.as_deref(), r.escalated_at.is_some())
    }
}

/// The caller's [`Scope`] now, from the state's policy and approver configuration.
pub fn scope_of(state: &AppState, claims: &TokenClaims) -> Scope {
    Scope::of(
        &state.config.policy,
        &state.config.approver_auth,
        &claims.roles,
    )
}

/// The 403 `decision.not_routed` of a request outside the caller's [`Scope`].
pub fn not_routed() -> ApiError {
    ApiError::Status {
        status: axum::http::StatusCode::FORBIDDEN,
        code: Code::DecisionNotRouted,
        message: "this request is routed to other approvers: your app roles do not include its route's role".into(),
    }
}

/// Request `id` if the caller's [`Scope`] includes it (detail, history, decisions).
///
/// Errors: 403 `decision.not_routed`; 404 when there is no such request; 500 on storage
/// failure.
pub async fn routed_request(
    state: &AppState,
    id: Uuid,
    claims: &TokenClaims,
) -> Result<ApprovalRequest, ApiError> {
    let request = state.store.get(id).await?;
    if scope_of(state, claims).allows_request(&request) {
        Ok(request)
    } else {
        Err(not_routed())
    }
}

/// Every check of a decision before the store applies it, on one read of the request: routing
/// (403 `decision.not_routed`), self-approval (403 `decision.self_approval`), and the
/// two-approver rule (issue 14 §3): the approver who recorded the first approval may not approve
/// again (403 `decision.second_approver_required`); the first of two approvals carries no
/// directory object id, as nothing is provisioned yet (400 `decision.malformed`); every other
/// approval does (400 `decision.object_id_required`). The store re-checks the approver in its
/// transaction ([`guestlist_core::model::TransitionError::SameApprover`]), so two concurrent
/// calls cannot slip past this read.
///
/// Errors: as listed; 404 when there is no such request; 500 on storage failure.
pub async fn check_decision(
    state: &AppState,
    id: Uuid,
    claims: &TokenClaims,
    actor: &Actor,
    decision: &Decision,
) -> Result<(), ApiError> {
    let request = routed_request(state, id, claims).await?;
    refuse_own(&request, claims)?;
    if let Decision::Approve {
        directory_object_id,
        how,
    } = decision
    {
        let pending = request.state == guestlist_core::model::RequestState::Pending;
        if pending && request.approved_by(actor) {
            return Err(second_approver_required());
        }
        let first = pending && request.awaits_first_of_two();
        if first && !directory_object_id.trim().is_empty() {
            return Err(ApiError::bad_request(
                Code::DecisionMalformed,
                "this request needs two approvals and this is the first: it carries no directoryObjectId (nothing may be provisioned before the second approval)",
            ));
        }
        // An external-tenant approval (`how: "userFlow"`, issue 17) has no account yet.
        if !first
            && *how != guestlist_core::model::ProvisionedBy::UserFlow
            && directory_object_id.trim().is_empty()
        {
            return Err(ApiError::bad_request(
                Code::DecisionObjectIdRequired,
                "an approval needs the directory object id of the created account",
            ));
        }
    }
    Ok(())
}

/// The 403 `decision.second_approver_required`.
pub fn second_approver_required() -> ApiError {
    ApiError::Status {
        status: axum::http::StatusCode::FORBIDDEN,
        code: Code::DecisionSecondApproverRequired,
        message: "you recorded the first of the two approvals this request needs: a second, different approver must approve it".into(),
    }
}

fn refuse_own(request: &ApprovalRequest, claims: &TokenClaims) -> Result<(), ApiError> {
    if is_own_request(&request.key.email, claims.own_addresses()) {
        return Err(ApiError::Status {
            status: axum::http::StatusCode::FORBIDDEN,
            code: SELF_APPROVAL,
            message: "an approver cannot decide their own request: another approver must decide it"
                .into(),
        });
    }
    Ok(())
}

/// The error code of a refused self-decision (403).
pub const SELF_APPROVAL: Code = Code::DecisionSelfApproval;

/// Whether any of `approver_addresses` (as the token sends them) is, in canonical form, the
/// person `request_email` names. Addresses with no canonical form never match. `request_email`
/// is canonicalised too (rows stored before canonical keys keep their lower-cased text).
pub fn is_own_request<'a>(
    request_email: &str,
    approver_addresses: impl IntoIterator<Item = &'a str>,
) -> bool {
    let person = canonical(request_email).unwrap_or_else(|_| request_email.trim().to_lowercase());
    approver_addresses
        .into_iter()
        .filter_map(|a| canonical(a).ok())
        .any(|a| a == person)
}

/// Refuses a decision on request `id` by the approver of `claims` when the request is their
/// own ([`is_own_request`]).
///
/// Errors: 403 `decision.self_approval`; 404 when there is no such request; 500 on storage
/// failure.
pub async fn refuse_self_approval(
    state: &AppState,
    id: Uuid,
    claims: &TokenClaims,
) -> Result<(), ApiError> {
    let request = state.store.get(id).await?;
    refuse_own(&request, claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_match_in_canonical_form() {
        assert!(is_own_request("ada@contoso.com", ["ADA@Contoso.com"]));
        assert!(is_own_request(
            "ada@contoso.com",
            ["ａｄａ@ｃｏｎｔｏｓｏ.com"]
        ));
        assert!(is_own_request(
            "ada@contoso.com",
            [
                "ada_contoso.com#EXT#@fabrikam.onmicrosoft.com",
                "ada@contoso.com"
            ]
        ));
        assert!(!is_own_request("ada@contoso.com", ["grace@contoso.com"]));
        assert!(!is_own_request("ada@contoso.com", ["not an address"]));
        assert!(!is_own_request("ada@contoso.com", []));
    }
}
