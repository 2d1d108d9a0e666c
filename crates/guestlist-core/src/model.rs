//! The approval request, its identity key and state machine, and the approver API's wire types.
//!
//! A request is created by the "request approval" connector call (CONTRACTS.md §1) and moves
//! through one state machine:
//!
//! ```text
//! Pending ──approve──▶ Approved { directory_object_id, how }
//!    │ ────deny─────▶ Denied { reason }
//!    └────expire────▶ Expired
//! ```
//!
//! Every change bumps [`ApprovalRequest::version`], which the approver API exposes as an `ETag`
//! and checks against `If-Match` (optimistic concurrency: two approvers cannot both win).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Code;
use crate::connector::{Claims, ENTRA_PROVIDER};

/// What identifies one person's sign-up: the canonical e-mail ([`crate::email::canonical`]:
/// NFKC, full case folding, IDNA domain) plus the first identity's issuer and issuerAssignedId
/// (both empty for Entra ID / Microsoft account users).
///
/// Entra retries a connector call once after 20 s, so the same sign-up can arrive twice; the
/// store keys requests on this triple so a retry never makes a second request (CONTRACTS.md §1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IdentityKey {
    /// The canonical e-mail ([`crate::email::canonical`]).
    pub email: String,
    /// The identity provider ([`crate::provider::identity_provider_key`] of the first
    /// identity): the issuer lower-cased (`facebook.com`, …), or `email` for an external
    /// tenant's local e-mail account (issue 17); empty without `identities`.
    pub issuer: String,
    /// The user's id at that provider, verbatim; empty without `identities`.
    pub issuer_assigned_id: String,
}

impl IdentityKey {
    /// The key of a connector call's claims, or why its e-mail has no canonical form.
    ///
    /// Errors: [`crate::email::EmailError`] (invisible characters, not `local@domain`, an
    /// invalid domain): the connector refuses such a sign-up.
    pub fn try_of(claims: &Claims) -> Result<Self, crate::email::EmailError> {
        let email = crate::email::canonical(&claims.email)?;
        Ok(Self::with_email(claims, email))
    }

    /// The key of a connector call's claims ([`IdentityKey::try_of`]); an e-mail with no
    /// canonical form (which the connector refuses before storing anything) is keyed on its
    /// trimmed, lower-cased text.
    pub fn of(claims: &Claims) -> Self {
        let email = crate::email::canonical(&claims.email)
            .unwrap_or_else(|_| claims.email.trim().to_lowercase());
        Self::with_email(claims, email)
    }

    fn with_email(claims: &Claims, email: String) -> Self {
        let (issuer, issuer_assigned_id) = claims
            .primary_identity()
            .map(|i| {
                (
                    crate::provider::identity_provider_key(i),
                    i.issuer_assigned_id.clone(),
                )
            })
            .unwrap_or_default();
        IdentityKey {
            email,
            issuer,
            issuer_assigned_id,
        }
    }
}

/// How an approved request's account came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ProvisionedBy {
    /// `POST /users` of a federated guest (Google, Facebook, e-mail OTP).
    UserCreated,
    /// `POST /invitations` then `PATCH /users/{id}` (Entra ID, Microsoft account).
    Invitation,
    /// An account for this identity already existed in the directory; it was reused.
    ExistingAccount,
    /// The user flow creates (or created) the account itself: auto-approved by policy
    /// (`Continue`), or an external-tenant request approved by an approver (issue 17: Entra
    /// creates the customer account when the person signs up again).
    UserFlow,
}

/// Which Entra user flow a request came through (issue 17). Serialised `workforce` /
/// `external`.
///
/// - `workforce`: a workforce tenant's self-service sign-up calling the API connectors
///   (`docs/CONTRACTS.md` §1). Approval creates the guest account in Graph (§3).
/// - `external`: an external tenant's (Entra External ID) sign-up calling the custom
///   authentication extensions under `/connectors/external-id/…` (§2). Approval writes nothing
///   to Graph: the approved person signs up again and Entra creates their customer account
///   when `OnAttributeCollectionSubmit` answers `continueWithDefaultBehavior`; the request is
///   then [`ApprovalRequest::completed_at`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Flow {
    /// Self-service sign-up API connectors (workforce tenant).
    #[default]
    Workforce,
    /// Custom authentication extensions (external tenant).
    External,
}

impl Flow {
    /// The lower-case name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Workforce => "workforce",
            Flow::External => "external",
        }
    }

    /// Parses the stored name; anything but `external` is `workforce` (rows written before
    /// flows existed).
    pub fn parse(s: &str) -> Self {
        if s == "external" {
            Flow::External
        } else {
            Flow::Workforce
        }
    }
}

/// The state of an approval request. Serialised with a `status` tag:
/// `{"status":"approved","directoryObjectId":"…","how":"userCreated"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(
    tag = "status",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RequestState {
    /// Waiting for an approver.
    Pending,
    /// Approved; the guest account exists (or the user flow creates it).
    Approved {
        /// The Graph `id` of the created or reused user; `None` when the user flow creates it.
        // Explicit for utoipa, which does not read `rename_all_fields`.
        #[serde(rename = "directoryObjectId")]
        directory_object_id: Option<String>,
        /// How the account was provisioned.
        how: ProvisionedBy,
    },
    /// Denied by an approver or by policy.
    Denied {
        /// Why, as the approver wrote it (stored and audited; never shown to the user).
        reason: String,
    },
    /// Nobody decided within the configured number of days.
    Expired,
}

impl RequestState {
    /// The status without its details.
    pub fn status(&self) -> Status {
        match self {
            RequestState::Pending => Status::Pending,
            RequestState::Approved { .. } => Status::Approved,
            RequestState::Denied { .. } => Status::Denied,
            RequestState::Expired => Status::Expired,
        }
    }
}

/// A request's status, for filters and storage (`pending`, `approved`, `denied`, `expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Waiting for an approver.
    Pending,
    /// Approved.
    Approved,
    /// Denied.
    Denied,
    /// Expired.
    Expired,
}

impl Status {
    /// The lower-case name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
        }
    }

    /// Parses the lower-case name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Status::Pending),
            "approved" => Some(Status::Approved),
            "denied" => Some(Status::Denied),
            "expired" => Some(Status::Expired),
            _ => None,
        }
    }
}

/// Who acted on a request: an approver (from their access token), the policy, or the user flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `user`, `policy` or `userFlow`.
    pub kind: String,
    /// The approver's object id (`oid` claim), or the policy rule name.
    pub id: String,
    /// Display name (`name` claim) or a description.
    pub name: String,
    /// The approver's `preferred_username`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The client the approver used (`azp` claim plus `User-Agent`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl Actor {
    /// The self-service sign-up user flow (the person signing up).
    pub fn user_flow() -> Self {
        Actor {
            kind: "userFlow".into(),
            id: "user-flow".into(),
            name: "Self-service sign-up user flow".into(),
            username: None,
            client: None,
        }
    }

    /// A policy rule.
    pub fn policy(rule: &str) -> Self {
        Actor {
            kind: "policy".into(),
            id: rule.into(),
            name: format!("Policy rule {rule}"),
            username: None,
            client: None,
        }
    }
}

/// One approval request as the approver API returns it (`GET /api/requests/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// Server-assigned id (UUID v7: time-ordered).
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub id: Uuid,
    /// The identity key the request is stored under.
    pub key: IdentityKey,
    /// The current state.
    pub state: RequestState,
    /// Bumped on every change; sent as `ETag: "<version>"`, checked against `If-Match`.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub version: u64,
    /// When the request was first made (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub created_at: OffsetDateTime,
    /// When it last changed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub updated_at: OffsetDateTime,
    /// Who decided, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Actor>,
    /// How many times the user flow sent this sign-up (retries and repeat attempts).
    pub attempts: u32,
    /// The user flow the request came through (issue 17): `workforce` or `external`
    /// (absent from servers before flows: `workforce`).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<Flow>", optional))]
    pub flow: Flow,
    /// External flow only: when the approved person came back and their sign-up continued
    /// (`OnAttributeCollectionSubmit` answered `continueWithDefaultBehavior`, so Entra created
    /// the customer account), RFC 3339. A completed request blocks further sign-ups of the same
    /// canonical e-mail. Absent otherwise.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", ts(type = "string | null", optional))]
    pub completed_at: Option<OffsetDateTime>,
    /// Routed requests only: when the escalation job found the request still pending
    /// `escalate_after_hours` after it was created, made it visible to its route's
    /// `fallback_role` and sent the escalation reminder (issue 14 §2; event
    /// `request.escalated`, `docs/CONTRACTS.md` §6), RFC 3339. Set once, never cleared. Absent
    /// otherwise.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", ts(type = "string | null", optional))]
    pub escalated_at: Option<OffsetDateTime>,
    /// The claims exactly as the last "request approval" call sent them.
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown>"))]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub claims: Map<String, Value>,
    /// What approval grants besides the account (issue 14 §1): group memberships, app role
    /// assignments and sponsors of every `[[policy.grants]]` rule matching the claims, in the
    /// union, deduplicated ([`crate::policy::Policy::grants_for`]). Computed by the server each
    /// time it serves the request (never stored); empty from servers without grants.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The `[[policy.routes]]` rule the request was routed by when it was created (its `name`),
    /// or `None`: unrouted, seen by the plain approver role (issue 14 §2). Stored with the
    /// request, so lists page in SQL; a name no longer in the policy counts as unrouted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// How many distinct approvers must approve: 1, or 2 for a route with
    /// `approvals_required = 2` (issue 14 §3); fixed when the request is created.
    #[serde(default = "one_approval")]
    pub approvals_required: u8,
    /// The approvals recorded while the request waits for more ("1 of 2": who and when). Empty
    /// for a one-approver request; the final approval is the state's `Approved` and
    /// `decided_by`, not an entry here.
    #[serde(default)]
    pub approvals: Vec<ApprovalMark>,
}

fn one_approval() -> u8 {
    1
}

/// One recorded approval of a request that needs more than one (issue 14 §3): the approver
/// and when. The first of two approvals releases nothing to provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApprovalMark {
    /// Who approved.
    pub by: Actor,
    /// When (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: OffsetDateTime,
}

/// One access grant approval makes after the guest account exists (issue 14 §1; Graph v1.0
/// "Add members" `POST /groups/{id}/members/$ref`, "Grant an appRoleAssignment to a user"
/// `POST /users/{id}/appRoleAssignments`, "Add sponsor" `POST /users/{id}/sponsors/$ref`).
/// Ids are directory object ids (GUIDs). Serialised with a `kind` tag:
/// `{"kind":"group","groupId":"…"}`, `{"kind":"appRole","resourceId":"…","appRoleId":"…"}`,
/// `{"kind":"sponsor","sponsorId":"…"}`, `{"kind":"approverSponsor"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Grant {
    /// Membership of the group with this object id.
    Group {
        /// The group's object id.
        #[serde(rename = "groupId")]
        group_id: String,
    },
    /// An app role of an application: `resourceId` is the object id of the application's
    /// service principal, `appRoleId` the id of the role (the nil GUID: the default access).
    AppRole {
        /// The resource service principal's object id.
        #[serde(rename = "resourceId")]
        resource_id: String,
        /// The app role's id.
        #[serde(rename = "appRoleId")]
        app_role_id: String,
    },
    /// A fixed sponsor: the user (or group) with this object id.
    Sponsor {
        /// The sponsor's object id.
        #[serde(rename = "sponsorId")]
        sponsor_id: String,
    },
    /// The approver who approves becomes the guest's sponsor (their `oid`).
    ApproverSponsor,
}

impl ApprovalRequest {
    /// The typed view of [`ApprovalRequest::claims`].
    ///
    /// Errors: [`crate::ClaimsError`] if the stored claims are not a valid claims object (cannot
    /// happen for requests the server stored, which were validated on the way in).
    pub fn typed_claims(&self) -> Result<Claims, crate::ClaimsError> {
        Claims::from_json(Value::Object(self.claims.clone()))
    }

    /// The identity provider short name: the issuer, or `entra` without identities.
    pub fn identity_provider(&self) -> &str {
        if self.key.issuer.is_empty() {
            ENTRA_PROVIDER
        } else {
            &self.key.issuer
        }
    }

    /// Whether an approval by `actor` now would be the first of two: the request needs two
    /// approvals and none is recorded yet (issue 14 §3).
    pub fn awaits_first_of_two(&self) -> bool {
        self.approvals_required >= 2 && self.approvals.is_empty()
    }

    /// Whether `actor` (by [`Actor::id`]) recorded one of the approvals so far.
    pub fn approved_by(&self, actor: &Actor) -> bool {
        self.approvals
            .iter()
            .any(|a| a.by.kind == actor.kind && a.by.id == actor.id)
    }

    /// Applies an approver's decision (the state machine's only approver-driven transitions).
    /// On a request that needs two approvals ([`ApprovalRequest::approvals_required`]) the
    /// first approval is recorded in [`ApprovalRequest::approvals`] and the request stays
    /// pending (its version still changes); the approval of a second, distinct approver
    /// approves it. A denial ends it at any point.
    ///
    /// Errors: [`TransitionError::NotPending`] when the request was already decided or expired;
    /// [`TransitionError::SameApprover`] when `actor` recorded the first approval and approves
    /// again.
    pub fn apply(
        &mut self,
        decision: &Decision,
        actor: Actor,
        now: OffsetDateTime,
    ) -> Result<(), TransitionError> {
        if self.state != RequestState::Pending {
            return Err(TransitionError::NotPending(self.state.status()));
        }
        if matches!(decision, Decision::Approve { .. }) {
            if self.approved_by(&actor) {
                return Err(TransitionError::SameApprover);
            }
            if self.awaits_first_of_two() {
                self.approvals.push(ApprovalMark { by: actor, at: now });
                self.version += 1;
                self.updated_at = now;
                return Ok(());
            }
        }
        self.state = match decision {
            Decision::Approve {
                directory_object_id,
                how,
            } => RequestState::Approved {
                // An external-tenant approval (`userFlow`) has no account yet.
                directory_object_id: Some(directory_object_id.clone())
                    .filter(|id| !(id.is_empty() && *how == ProvisionedBy::UserFlow)),
                how: *how,
            },
            Decision::Deny { reason } => RequestState::Denied {
                reason: reason.clone(),
            },
        };
        self.decided_by = Some(actor);
        self.version += 1;
        self.updated_at = now;
        Ok(())
    }
}

/// A state transition that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Only pending requests can be decided.
    #[error("the request is already {}", .0.as_str())]
    NotPending(Status),
    /// The approver who recorded the first of two approvals approved again: a second,
    /// distinct approver must approve.
    #[error("you recorded the first approval: a second, distinct approver must approve")]
    SameApprover,
}

/// The body of `POST /api/requests/{id}/decision`.
///
/// `{"decision":"approve","directoryObjectId":"…","how":"userCreated"}` or
/// `{"decision":"deny","reason":"…"}`. The approver's app provisions the account in Graph first,
/// then reports the approval with the created object's id. The first of two approvals (a route
/// with `approvals_required = 2`, issue 14 §3) provisions nothing and carries no id:
/// `{"decision":"approve","how":"userCreated"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(
    tag = "decision",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Decision {
    /// The account exists (workforce), or the person may now finish their sign-up
    /// (external tenant, `how: "userFlow"`, no `directoryObjectId`): record the approval.
    Approve {
        /// The Graph `id` of the created (or reused) user; empty (absent on the wire) for an
        /// external-tenant approval, whose account Entra creates later, and for the first of
        /// two approvals, which provisions nothing.
        // Explicit for utoipa, which does not read `rename_all_fields`.
        #[serde(rename = "directoryObjectId", default)]
        directory_object_id: String,
        /// How it was provisioned.
        how: ProvisionedBy,
    },
    /// Deny, with a reason (required, non-empty).
    Deny {
        /// Why (stored and audited).
        reason: String,
    },
}

/// One entry of a request's audit trail (`GET /api/requests/{id}/history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: OffsetDateTime,
    /// What happened: `requested`, `attempted`, `approved`, `denied`, `autoApproved`,
    /// `autoDenied`, `expired`, `reopened`, `escalated`.
    pub action: String,
    /// Who did it.
    pub actor: Actor,
    /// The request's version after this entry.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub version: u64,
    /// Details (the decision body, the connector answer's code, …).
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub detail: Value,
}

/// A page of `GET /api/requests`: items in a stable order (oldest first, then id) and an opaque
/// cursor for the next page (absent on the last page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequestPage {
    /// The requests of this page.
    pub items: Vec<ApprovalRequest>,
    /// Pass as `cursor=` to get the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The high-water mark of the server's change sequence (every insert or update of a request
    /// takes the next number): pass it as `since=` later to get only what changed after this
    /// page. Absent from servers without the `since` filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub change_seq: Option<u64>,
    /// Only with `since=`: ids of requests whose personal data was erased (retention or an
    /// erasure on request) after `since`. A client drops them from its cache (issue 12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<Uuid>,
}

/// A Server-Sent Event of `GET /api/events`; the SSE `id:` is [`Event::seq`] and the SSE
/// `event:` is [`Event::kind`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Monotonic sequence number; resume with `Last-Event-ID: <seq>`.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: u64,
    /// `request.created`, `request.decided`, `request.reopened` or `request.erased`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request's id (also for `request.erased`, which carries no request).
    pub request_id: Uuid,
    /// The request after the change; absent for `request.erased`: its personal data is gone
    /// and every cache must drop the request with [`Event::request_id`] (issue 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<ApprovalRequest>,
}

impl Event {
    /// An event that carries the request after the change.
    pub fn with_request(seq: u64, kind: impl Into<String>, request: ApprovalRequest) -> Event {
        Event {
            seq,
            kind: kind.into(),
            request_id: request.id,
            request: Some(request),
        }
    }

    /// A `request.erased` event: the request's personal data was erased (retention or an
    /// erasure on request); caches drop the request.
    pub fn erased(seq: u64, request_id: Uuid) -> Event {
        Event {
            seq,
            kind: EVENT_REQUEST_ERASED.into(),
            request_id,
            request: None,
        }
    }
}

/// The [`Event::kind`] of an erasure: the request's personal data is gone.
pub const EVENT_REQUEST_ERASED: &str = "request.erased";

/// The error body of every non-connector error of the approval API (`docs/CONTRACTS.md`
/// §4): `{"error":{"code":"…","message":"…"}}`, with a stable [`Code`] such as
/// `request.not_found`. The server's `ApiError` is the error; this is its body on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The `error` member of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, greppable code.
    pub code: Code,
    /// Human-readable message (never secrets or internal URLs).
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> ApprovalRequest {
        let claims = Claims::from_json(json!({"email":"John@Fabrikam.com","identities":[{"signInType":"federated","issuer":"Facebook.com","issuerAssignedId":"42"}]})).unwrap();
        ApprovalRequest {
            id: Uuid::nil(),
            key: IdentityKey::of(&claims),
            state: RequestState::Pending,
            version: 1,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            decided_by: None,
            attempts: 1,
            flow: Flow::Workforce,
            completed_at: None,
            escalated_at: None,
            claims: claims.to_json(),
            grants: Vec::new(),
            route: None,
            approvals_required: 1,
            approvals: Vec::new(),
        }
    }

    #[test]
    fn key_lowercases_email_and_issuer_but_not_the_id() {
        let r = request();
        assert_eq!(r.key.email, "john@fabrikam.com");
        assert_eq!(r.key.issuer, "facebook.com");
        assert_eq!(r.key.issuer_assigned_id, "42");
    }

    #[test]
    fn state_machine_allows_one_decision() {
        let mut r = request();
        let approve = Decision::Approve {
            directory_object_id: "abc".into(),
            how: ProvisionedBy::UserCreated,
        };
        r.apply(&approve, Actor::policy("t"), OffsetDateTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(r.version, 2);
        assert_eq!(r.state.status(), Status::Approved);
        let deny = Decision::Deny { reason: "x".into() };
        assert_eq!(
            r.apply(&deny, Actor::policy("t"), OffsetDateTime::UNIX_EPOCH),
            Err(TransitionError::NotPending(Status::Approved))
        );
    }

    #[test]
    fn two_approvals_need_two_distinct_approvers() {
        let user = |id: &str| Actor {
            kind: "user".into(),
            id: id.into(),
            name: id.into(),
            username: None,
            client: None,
        };
        let first: Decision =
            serde_json::from_value(json!({"decision":"approve","how":"userCreated"})).unwrap();
        let second = Decision::Approve {
            directory_object_id: "abc".into(),
            how: ProvisionedBy::UserCreated,
        };
        let at = OffsetDateTime::UNIX_EPOCH;
        let mut r = request();
        r.approvals_required = 2;
        assert!(r.awaits_first_of_two());
        r.apply(&first, user("ada"), at).unwrap();
        // Recorded, still pending, a new version.
        assert_eq!(r.state, RequestState::Pending);
        assert_eq!(r.version, 2);
        assert_eq!(r.approvals.len(), 1);
        assert!(r.approved_by(&user("ada")) && !r.awaits_first_of_two());
        assert_eq!(r.decided_by, None);
        // The same approver again: refused, nothing changes.
        assert_eq!(
            r.apply(&second, user("ada"), at),
            Err(TransitionError::SameApprover)
        );
        assert_eq!(r.version, 2);
        // A second, distinct approver approves it.
        r.apply(&second, user("grace"), at).unwrap();
        assert_eq!(r.state.status(), Status::Approved);
        assert_eq!(r.decided_by, Some(user("grace")));
        // A denial after the first approval ends it.
        let mut r = request();
        r.approvals_required = 2;
        r.apply(&first, user("ada"), at).unwrap();
        r.apply(
            &Decision::Deny {
                reason: "no".into(),
            },
            user("ada"),
            at,
        )
        .unwrap();
        assert_eq!(r.state.status(), Status::Denied);
        // The wire form carries the approvals; old rows without the fields read as one approval.
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["approvalsRequired"], 2);
        assert_eq!(v["approvals"][0]["by"]["id"], "ada");
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("approvalsRequired");
        old.as_object_mut().unwrap().remove("approvals");
        let old: ApprovalRequest = serde_json::from_value(old).unwrap();
        assert_eq!((old.approvals_required, old.approvals.len()), (1, 0));
    }

    #[test]
    fn wire_forms() {
        let s = serde_json::to_value(RequestState::Approved {
            directory_object_id: Some("id1".into()),
            how: ProvisionedBy::Invitation,
        })
        .unwrap();
        assert_eq!(
            s,
            json!({"status":"approved","directoryObjectId":"id1","how":"invitation"})
        );
        let d: Decision =
            serde_json::from_value(json!({"decision":"deny","reason":"unknown company"})).unwrap();
        assert_eq!(
            d,
            Decision::Deny {
                reason: "unknown company".into()
            }
        );
    }
}
