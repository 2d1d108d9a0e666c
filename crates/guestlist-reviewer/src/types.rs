//! The facade's data types: what the Tauri shell passes to and gets from [`crate::Reviewer`].
//! All serialise with camelCase keys and derive ts-rs `TS` (bindings in `ui/src/bindings/`,
//! written by this crate's `export_bindings` test). Counts, versions and durations are `u64` here
//! and `number` in TypeScript (`#[ts(type = "number")]`; ts-rs would say `bigint`, which JSON
//! never carries): they stay far below 2^53.

use guestlist_core::model::{ApprovalRequest, Flow, ProvisionedBy};
use guestlist_core::plan::{ProvisioningPlan, SkippedClaim};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::error::ReviewerError;

/// The signed-in approver (from the ID token of the sign-in; CONTRACTS.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// `preferred_username` (the UPN), e.g. `ada@contoso.onmicrosoft.com`.
    pub username: String,
    /// `name`, or the username when absent.
    pub name: String,
    /// The subject: `oid` when present, else `sub`.
    pub object_id: String,
    /// `tid`, when present.
    pub tenant_id: Option<String>,
    /// App roles of the approval API token (`roles`), e.g. `["Approver"]`.
    pub roles: Vec<String>,
    /// When the approval API access token expires (RFC 3339).
    pub api_token_expires_at: String,
}

/// What an outbox item is doing. Persisted; the drain resumes from it after a crash.
///
/// `queued → claimed → (invited →) provisioned → (granted →) reported`, or `conflict` /
/// `failed`.
/// Deny skips provisioning: `queued → claimed → reported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum OutboxState {
    /// Waiting to run (offline, or not yet drained).
    Queued,
    /// Checked against the server (still pending, version recorded); provisioning may start.
    Claimed,
    /// The invitation exists (directory object id recorded); the PATCH is next.
    Invited,
    /// The account exists (directory object id recorded); its grants (issue 14 §1), if any,
    /// are next, else the decision report.
    Provisioned,
    /// The account exists and every grant of the request is in place; the decision report is
    /// next. (Only approvals with grants pass through it.)
    Granted,
    /// The server recorded the decision. Final.
    Reported,
    /// Another decision won, or the request changed (409/412). Final; see the item's error.
    Conflict,
    /// A permanent error (Graph refused, plan impossible). Final until retried by the approver.
    Failed,
}

impl OutboxState {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Claimed => "claimed",
            OutboxState::Invited => "invited",
            OutboxState::Provisioned => "provisioned",
            OutboxState::Granted => "granted",
            OutboxState::Reported => "reported",
            OutboxState::Conflict => "conflict",
            OutboxState::Failed => "failed",
        }
    }

    /// Parses the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => OutboxState::Queued,
            "claimed" => OutboxState::Claimed,
            "invited" => OutboxState::Invited,
            "provisioned" => OutboxState::Provisioned,
            "granted" => OutboxState::Granted,
            "reported" => OutboxState::Reported,
            "conflict" => OutboxState::Conflict,
            "failed" => OutboxState::Failed,
            _ => return None,
        })
    }

    /// `true` for states the drain will not touch again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OutboxState::Reported | OutboxState::Conflict | OutboxState::Failed
        )
    }
}

/// `approve` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum DecisionKind {
    /// Provision the account, then report the approval.
    Approve,
    /// Report a denial (no Graph call).
    Deny,
}

/// One outbox item as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    /// The request id.
    pub request_id: String,
    /// Approve or deny.
    pub kind: DecisionKind,
    /// Where it is.
    pub state: OutboxState,
    /// The display name or e-mail of the request.
    pub label: String,
    /// When it was queued (RFC 3339).
    pub queued_at: String,
    /// Drain attempts so far.
    pub attempts: u32,
    /// The created or reused account, once provisioned.
    pub directory_object_id: Option<String>,
    /// How the account came to exist (created, invited, or an existing account linked).
    pub how: Option<ProvisionedBy>,
    /// A Graph write of this decision was started (an account it created may exist).
    pub write_started: bool,
    /// How many grants (group memberships, app roles, sponsors) the approval makes after the
    /// account exists (issue 14 §1).
    pub grants_total: u32,
    /// How many of them are in place. A `failed` item with an account and
    /// `grants_done < grants_total` is the partial state "Account created · 1 of 3 grants
    /// failed"; approving again (Retry) runs only the missing ones.
    pub grants_done: u32,
    /// While nothing was sent yet: when the undo window ends (RFC 3339). `Reviewer::undo`
    /// cancels the decision until it starts running.
    pub undo_until: Option<String>,
    /// When it last changed (RFC 3339): when it finished, for a final item.
    pub updated_at: String,
    /// The last error (offline, Graph, conflict).
    pub last_error: Option<ReviewerError>,
}

/// The app's state for the status bar (`Reviewer::status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// The signed-in approver, if any (restored from the keyring at start: tokens are refreshed
    /// on first use).
    pub session: Option<SessionInfo>,
    /// `false` after a network failure, until a call succeeds again.
    pub online: bool,
    /// A sync is running.
    pub syncing: bool,
    /// When the last successful sync finished (RFC 3339).
    pub last_sync_at: Option<String>,
    /// Pending requests in the cache.
    #[ts(type = "number")]
    pub pending_count: u64,
    /// Outbox items not yet reported, plus final ones of the last 24 h.
    pub outbox: Vec<OutboxItem>,
    /// The last error of a background operation.
    pub last_error: Option<ReviewerError>,
}

/// Sort order of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum QueueSort {
    /// Oldest request first (the default: first come, first served).
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
    /// By display name (then e-mail).
    Name,
    /// By e-mail domain, then e-mail.
    Domain,
}

/// A query over the cached queue. Every field is optional; the empty query lists everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct QueueQuery {
    /// Free text: matches display name, given name, surname, e-mail and company, case-insensitive
    /// substring.
    pub q: Option<String>,
    /// Identity provider short name: `facebook.com`, `google.com`, `mail`, `entra`.
    pub identity_provider: Option<String>,
    /// E-mail domain, exact (case-insensitive).
    pub email_domain: Option<String>,
    /// Only requests at least this many hours old.
    pub min_age_hours: Option<u32>,
    /// Only requests at most this many hours old.
    pub max_age_hours: Option<u32>,
    /// Sort order.
    pub sort: QueueSort,
    /// Skip this many matches (paging).
    pub offset: Option<u32>,
    /// At most this many items (default 200, max 1000).
    pub limit: Option<u32>,
    /// Only requests escalated to their route's fallback approvers (issue 14 §2:
    /// `escalatedAt` set).
    pub escalated_only: bool,
}

/// One line of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    /// Request id.
    pub id: String,
    /// `displayName`, or given name + surname, or the e-mail.
    pub display_name: String,
    /// E-mail.
    pub email: String,
    /// E-mail domain.
    pub email_domain: String,
    /// `companyName` claim (or an `extension_*_Company*` claim), if any.
    pub company: Option<String>,
    /// Identity provider short name.
    pub identity_provider: String,
    /// The user flow the request came through (issue 17): an external tenant's request is
    /// approved without any Graph write.
    #[ts(as = "Option<Flow>", optional)]
    pub flow: Flow,
    /// When requested (RFC 3339).
    pub created_at: String,
    /// Age in whole hours.
    #[ts(type = "number")]
    pub age_hours: u64,
    /// Sign-up attempts the user made.
    pub attempts: u32,
    /// The request's version (ETag).
    #[ts(type = "number")]
    pub version: u64,
    /// The outbox state when a decision is queued or running for it.
    pub outbox_state: Option<OutboxState>,
    /// The e-mail domain is a free-mail provider.
    pub free_mail: bool,
    /// Pending requests of the same person ([`crate::cache::group_key`] of the e-mail), this
    /// one included: sign-ups through several identity providers.
    pub same_person: u32,
    /// Sign-up attempts of that person over all those requests.
    pub person_attempts: u32,
    /// Identity providers among them.
    pub person_providers: u32,
    /// When the request escalated to its route's fallback approvers (issue 14 §2,
    /// `escalatedAt`), RFC 3339; absent: not escalated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub escalated_at: Option<String>,
}

/// A count per value (identity provider or e-mail domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    /// The value.
    pub value: String,
    /// Pending requests with it.
    #[ts(type = "number")]
    pub count: u64,
}

/// The answer of `Reviewer::queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    /// The page of matching requests.
    pub items: Vec<QueueItem>,
    /// How many requests match the query (all pages).
    #[ts(type = "number")]
    pub total_matching: u64,
    /// All pending requests in the cache.
    #[ts(type = "number")]
    pub total_pending: u64,
    /// Pending requests per identity provider (for the filter chips).
    pub by_provider: Vec<Count>,
    /// Pending requests per e-mail domain, largest first (top 50).
    pub by_domain: Vec<Count>,
    /// When the cache was last synced (RFC 3339), if ever.
    pub last_sync_at: Option<String>,
}

/// The answer of `Reviewer::sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Pending requests the server listed.
    #[ts(type = "number")]
    pub fetched: u64,
    /// New in the cache.
    #[ts(type = "number")]
    pub added: u64,
    /// Changed (new version) in the cache.
    #[ts(type = "number")]
    pub updated: u64,
    /// Removed from the cache (decided or expired elsewhere).
    #[ts(type = "number")]
    pub removed: u64,
    /// Pages fetched.
    pub pages: u32,
    /// Wall time in milliseconds.
    #[ts(type = "number")]
    pub duration_ms: u64,
    /// Pending requests in the cache afterwards.
    #[ts(type = "number")]
    pub pending: u64,
}

/// One attribute row of the side-by-side view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AttributeRow {
    /// The label: the Graph property name, or an extension's short name (`CustomAttribute`).
    pub attribute: String,
    /// The claim name as Entra sent it (`lastName`, `extension_<app id>_CustomAttribute`).
    pub claim: Option<String>,
    /// The property name the plan writes (`surname`, `extension_<32 hex>_CustomAttribute`).
    pub property: Option<String>,
    /// Submitted: the claim's value as received.
    #[ts(type = "unknown")]
    pub submitted: Option<Value>,
    /// Will be written: the value in the plan's body.
    #[ts(type = "unknown")]
    pub will_be_written: Option<Value>,
    /// Already in the directory: the existing account's value (when one was found).
    #[ts(type = "unknown")]
    pub in_directory: Option<Value>,
}

/// How the requester signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IdentityBlock {
    /// Short name: `facebook.com`, `google.com`, `mail`, `entra` or `microsoftaccount`
    /// ([`guestlist_core::provider::provider_key`]).
    pub provider: String,
    /// Its label ([`guestlist_core::provider::provider_label`]): `Google`, `Microsoft account`, ….
    pub label: String,
    /// `identities[0].issuer` (absent for Entra ID / Microsoft account users).
    pub issuer: Option<String>,
    /// `identities[0].issuerAssignedId`.
    pub issuer_assigned_id: Option<String>,
    /// `identities[0].signInType` (`federated`, …).
    pub sign_in_type: Option<String>,
}

/// A directory user found by a look-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMatch {
    /// How it was found: `identity` or `mail`.
    pub found_by: String,
    /// The user as Graph returned it.
    #[ts(type = "Record<string, unknown>")]
    pub user: Value,
}

/// The "Already in the directory" column's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryCheck {
    /// `true` when the look-ups ran (signed in and online).
    pub checked: bool,
    /// Users found (by identity and by mail; de-duplicated by id).
    pub matches: Vec<DirectoryMatch>,
    /// Why the look-ups did not run or failed.
    pub error: Option<ReviewerError>,
}

/// Kinds of risk flagged on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum RiskKind {
    /// An account with this identity or e-mail already exists (approval reuses it).
    ExistingAccount,
    /// The e-mail domain does not look like the company's.
    DomainMismatch,
    /// A free-mail domain (gmail.com, outlook.com, …).
    FreeMail,
    /// No plan can be made (settings) — approval would fail.
    NoPlan,
}

/// A risk shown on the detail view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Risk {
    /// The kind.
    pub kind: RiskKind,
    /// The sentence in English (logs, clients without catalogues). The approver's app words
    /// [`Risk::params`] in its language instead (`risk.message.<kind>` in `ui/src/locales`).
    pub message: String,
    /// What the sentence says, as data (issue 15: every word an approver sees in their
    /// language).
    pub params: RiskParams,
}

/// The facts of a [`Risk`]'s sentence, by kind (`kind` is the same as [`Risk::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RiskParams {
    /// "An account already exists (found by {foundBy}): {account} — approving links it and
    /// writes nothing."
    #[serde(rename_all = "camelCase")]
    ExistingAccount {
        /// Which look-up found it.
        found_by: LookupKind,
        /// Its `userPrincipalName` (else its id).
        account: String,
    },
    /// "The e-mail domain {domain} does not look like the company \"{company}\"."
    DomainMismatch {
        /// The e-mail domain.
        domain: String,
        /// The company claim.
        company: String,
    },
    /// "{domain} is a free e-mail provider: the address says nothing about the requester's
    /// organisation."
    FreeMail {
        /// The e-mail domain.
        domain: String,
    },
    /// "Approval would fail: {problem}".
    NoPlan {
        /// Why no plan can be made.
        problem: PlanProblem,
    },
}

/// Which directory look-up found an account (CONTRACTS.md §3: by identity, then by mail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum LookupKind {
    /// `identities/any(…)`: the same issuer and issuer-assigned id.
    Identity,
    /// `mail eq …`.
    Mail,
}

/// Why no provisioning plan can be made for a request ([`RiskKind::NoPlan`]); each is a
/// sentence in the catalogues (`risk.plan.<code>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum PlanProblem {
    /// The stored claims do not parse; `detail` is the parser's (English) message.
    InvalidClaims {
        /// The parser's message.
        detail: String,
    },
    /// Settings: `tenant_domain` is empty.
    TenantDomainEmpty,
    /// Settings: `extensions_app_id` is not 32 hex digits.
    ExtensionsAppId {
        /// The value configured.
        value: String,
    },
    /// Settings: `invite_redirect_url` is empty.
    InviteRedirectUrlEmpty,
}

/// The invitation's own parameters (Entra ID and Microsoft account users): not attributes of
/// the person, so shown apart from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InvitationBlock {
    /// `inviteRedirectUrl`: where the guest lands after redeeming.
    pub redirect_url: String,
    /// `sendInvitationMessage`: whether Microsoft sends the invitation e-mail.
    pub send_invitation_message: bool,
    /// `invitedUserType` (`Guest`).
    pub invited_user_type: String,
}

/// What approval of one request will do, as facts rather than words: the UI composes the
/// "If you approve" sentence from them in the approver's language (`ui/src/lib/plan.ts`);
/// `RequestDetail::if_approved` is the same sentence in English.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct IfApprovedFacts {
    /// How approval provisions; `None` when no plan can be made (approval would fail).
    pub kind: Option<ProvisionedBy>,
    /// The person's display name.
    pub name: String,
    /// The identity provider's label (`Google`, `Entra ID`).
    pub provider_label: String,
    /// The account an earlier, half-finished attempt created: approval resumes it.
    pub resumes_account: Option<String>,
    /// The existing account approval links (its UPN or mail), for `existingAccount`.
    pub existing_account: Option<String>,
    /// How many properties approval writes (for an invitation: after it).
    pub properties: u32,
    /// Whether Microsoft sends the invitation e-mail (invitations).
    pub sends_invitation: bool,
    /// The sponsor approval records, if the requester named one.
    pub sponsor: Option<String>,
    /// Whether the directory was looked up; if not, approval looks first and links an
    /// existing account if there is one.
    pub directory_checked: bool,
    /// What approval grants after the account exists (issue 14 §1), in the order it grants
    /// them, with display names where known.
    pub grants: Vec<GrantFact>,
}

/// What a [`GrantFact`] grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum GrantFactKind {
    /// Membership of a group.
    Group,
    /// An app role of an application.
    AppRole,
    /// A sponsor of the guest.
    Sponsor,
}

/// One grant of the "If you approve" sentence: "added to group Partners-Fabrikam", "app role
/// Reader in Contoso Portal", "sponsor Ada Lovelace". Names come from Graph (`GET
/// /groups/{id}?$select=displayName`, `GET /servicePrincipals/{id}`, `GET /users/{id}`) when
/// online, cached in the local database; `None` when never resolved: the UI shows the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GrantFact {
    /// Group, app role or sponsor.
    pub kind: GrantFactKind,
    /// The group id, the app role id, or the sponsor's object id (for the approver: their
    /// `oid`, empty when not signed in).
    pub id: String,
    /// The group's, application's (service principal's) or sponsor's display name.
    pub name: Option<String>,
    /// App roles: the resource service principal's object id.
    pub resource_id: Option<String>,
    /// App roles: the role's display name.
    pub role: Option<String>,
    /// Sponsors: the sponsor is the approving approver (you).
    pub approver: bool,
}

/// The side-by-side view of one request (`Reviewer::detail`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RequestDetail {
    /// "If you approve": one sentence saying what approval will do, from the same plan the
    /// outbox runs (after the directory look-ups, when they ran).
    pub if_approved: String,
    /// The facts `if_approved` is worded from, for the UI to word them in the approver's
    /// language (issue 15 §1).
    pub if_approved_facts: IfApprovedFacts,
    /// The sponsor the requester named (an `extension_*_SponsorEmail`/`Sponsor` claim).
    pub sponsor: Option<String>,
    /// The requester's reason (an `extension_*_Reason`/`Justification` claim).
    pub reason: Option<String>,
    /// The invitation's parameters, when approval sends one.
    pub invitation: Option<InvitationBlock>,
    /// The request in full (from the cache, refreshed from the server when online).
    pub request: ApprovalRequest,
    /// One row per attribute: Submitted / Will be written / Already in the directory.
    pub rows: Vec<AttributeRow>,
    /// The identity provider block.
    pub identity: IdentityBlock,
    /// The full plan (exact Graph calls and bodies, in order), when one can be made: after the
    /// directory look-ups ran, exactly the calls approval makes (`resolve`d: an existing
    /// account means the look-ups up to the one that found it and no writes).
    pub plan: Option<ProvisioningPlan>,
    /// Why no plan can be made.
    pub plan_error: Option<String>,
    /// Claims the plan does not write, with the reason.
    pub skipped: Vec<SkippedClaim>,
    /// The directory look-ups.
    pub directory: DirectoryCheck,
    /// Risks.
    pub risks: Vec<Risk>,
    /// A decision queued or running for this request.
    pub outbox: Option<OutboxItem>,
}

/// What happened to one id of `approve`/`deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The server recorded the decision.
    Done,
    /// Saved in the outbox; it runs when the network is back (or it is still running).
    Queued,
    /// Another decision won or the request changed; nothing was provisioned by us unless
    /// `directoryObjectId` says so.
    Conflict,
    /// A permanent error; see `error`.
    Failed,
}

/// The result per request of `Reviewer::approve` / `Reviewer::deny`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DecisionOutcome {
    /// The request id.
    pub id: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The outbox state.
    pub state: OutboxState,
    /// The created or reused account (approvals).
    pub directory_object_id: Option<String>,
    /// How the account came to exist (approvals).
    pub how: Option<ProvisionedBy>,
    /// The error of a conflict, failure or the reason it is queued.
    pub error: Option<ReviewerError>,
    /// The request as the server now has it (after the decision, or the winner's on conflict).
    pub current: Option<ApprovalRequest>,
    /// The display name and e-mail of the request (`Name <mail>`), for the toast.
    pub label: String,
    /// When the undo window ends (RFC 3339), while the decision waits in the outbox.
    pub undo_until: Option<String>,
    /// Grants (issue 14 §1) of a failed approval whose account exists that are not in place:
    /// "Account created · 1 of 3 grants failed" ([`OutboxItem::grants_done`]); 0 otherwise.
    pub grants_failed: u32,
}

/// What `Reviewer::undo` did for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct UndoOutcome {
    /// The request id.
    pub id: String,
    /// `true`: the decision was cancelled before anything was sent; the request is pending
    /// again. `false`: too late (already running or finished) or no decision; see `state`.
    pub undone: bool,
    /// The outbox state when it could not be undone.
    pub state: Option<OutboxState>,
}
