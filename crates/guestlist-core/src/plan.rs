//! The provisioning plan: the exact Microsoft Graph calls that create an approved request's
//! guest account (`docs/CONTRACTS.md` §3, seed `002_*`).
//!
//! - Federated users (Google, Facebook, e-mail one-time passcode: the claims carry
//!   `identities[0].issuer`) → look up by identity, then `POST /users` with
//!   `userPrincipalName`, `accountEnabled: true`, `mail`, `userType: "Guest"`, `identities`,
//!   and the other built-in and `extension_*` attributes under the names the connector sent.
//! - Users without `identities` (Entra ID, Microsoft account) → look up by `mail`, then
//!   `POST /invitations`, then `PATCH /users/{invitedUser.id}` with the collected attributes.
//!
//! - External-tenant requests (issue 17, [`Flow::External`]) → nothing: the plan is empty
//!   ([`plan_for`]), the approval is recorded on the server only, and Entra creates the
//!   customer account when the approved person signs up again.
//!
//! The plan is data, not I/O: the desktop app shows it verbatim ("Will be written") before it
//! runs it, and tests validate every body against Graph's own schema (`schemas/graph-subset.json`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::connector::Claims;
use crate::model::{Flow, Grant, ProvisionedBy};

/// How to build a federated guest's `userPrincipalName` from its e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum UpnForm {
    /// The seed's form: `john_outlook.com#EXT@contoso.onmicrosoft.com` (seed `002_*`).
    #[default]
    Seed,
    /// Entra's own guest form: `john_outlook.com#EXT#@contoso.onmicrosoft.com`.
    EntraGuest,
}

/// Settings of the provisioning plan. TOML/JSON keys in snake_case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ProvisioningSettings {
    /// The tenant's initial domain, e.g. `contoso.onmicrosoft.com` (the UPN suffix).
    pub tenant_domain: String,
    /// The UPN form for `POST /users`.
    #[serde(default)]
    pub upn_form: UpnForm,
    /// `inviteRedirectUrl` of invitations: where the invited user lands after redeeming.
    pub invite_redirect_url: String,
    /// `sendInvitationMessage` of invitations.
    #[serde(default = "default_true")]
    pub send_invitation_message: bool,
    /// The tenant's `b2c-extensions-app` / extensions app id (32 hex digits, no dashes). Used to
    /// complete `extension_<extensions-app-id>_Name` claims whose app id is not 32 hex digits
    /// (as in the docs' placeholder examples). `None`: such claims are skipped, with a reason.
    #[serde(default)]
    pub extensions_app_id: Option<String>,
}

fn default_true() -> bool {
    true
}

/// One Microsoft Graph call of a plan. `path` is relative to the version root
/// (`/users`, `/invitations`, `/users/{id}`), the form `$batch` items use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GraphCall {
    /// `GET`, `POST`, `PATCH`.
    pub method: String,
    /// Path and query relative to `https://graph.microsoft.com/v1.0`; `{id}` in a follow-up call
    /// stands for the id the previous call returned.
    pub path: String,
    /// The JSON body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub body: Option<Value>,
    /// The schema of graph-subset.json the body must satisfy (e.g. `strict.microsoft.graph.user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

impl GraphCall {
    fn get(path: String) -> Self {
        GraphCall {
            method: "GET".into(),
            path,
            body: None,
            schema: None,
        }
    }

    fn with_body(method: &str, path: &str, body: Map<String, Value>, schema: &str) -> Self {
        GraphCall {
            method: method.into(),
            path: path.into(),
            body: Some(Value::Object(body)),
            schema: Some(schema.into()),
        }
    }
}

/// A claim that the plan does not write to the directory, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SkippedClaim {
    /// The claim name as sent.
    pub claim: String,
    /// Why it is not written, in English ([`SkipReason::english`]).
    pub reason: String,
    /// Why it is not written, as a code: the approver's app words it in its own language
    /// (`skip.<code>` in `ui/src/locales/*.json`). Absent in plans stored before it existed.
    #[serde(default)]
    pub code: Option<SkipReason>,
}

/// Why a claim is not written to the directory (see [`SkippedClaim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum SkipReason {
    /// Not a writable property of a Graph `user` (`WRITABLE_USER_PROPERTIES`).
    NotWritable,
    /// An `extension_…` claim whose app id is not 32 hex digits, and no `extensions_app_id` is
    /// configured to replace it.
    NoExtensionsAppId,
    /// A claim named `extension_…` that is not `extension_<extensions-app-id>_<Name>`.
    ExtensionForm,
    /// An extension attribute name with characters other than letters, digits and `_`.
    ExtensionName,
}

impl SkipReason {
    /// The reason in English, as [`SkippedClaim::reason`] carries it.
    pub fn english(self) -> &'static str {
        match self {
            SkipReason::NotWritable => "not a writable property of a Graph user",
            SkipReason::NoExtensionsAppId => {
                "its extensions app id is not 32 hex digits and no extensions_app_id is configured"
            }
            SkipReason::ExtensionForm => "not of the form extension_<extensions-app-id>_<Name>",
            SkipReason::ExtensionName => "the attribute name must be letters, digits and '_'",
        }
    }

    fn skip(self, claim: &str) -> SkippedClaim {
        SkippedClaim {
            claim: claim.to_owned(),
            reason: self.english().to_owned(),
            code: Some(self),
        }
    }
}

/// The Graph calls that provision one approved request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningPlan {
    /// `userCreated` (POST /users) or `invitation` (POST /invitations + PATCH).
    pub kind: ProvisionedBy,
    /// Look-ups to run first; any user found means "reuse it, create nothing"
    /// (`GET /users?$filter=…`).
    pub lookups: Vec<GraphCall>,
    /// The writes, in order: `[POST /users]` or `[POST /invitations, PATCH /users/{id}]`.
    pub writes: Vec<GraphCall>,
    /// Claims that are not written, with the reason (shown to the approver).
    pub skipped: Vec<SkippedClaim>,
    /// After the look-ups ([`resolve`]): the id of the existing account approval links to
    /// (then `kind` is `existingAccount` and `writes` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_account: Option<String>,
    /// The grant steps, run once the account exists (also an existing one): one call per
    /// [`Grant`] of the request ([`grant_call`]), `{id}` standing for the account's id and
    /// `{approver}` for the approving approver's object id. Empty without grants.
    #[serde(default)]
    pub grants: Vec<GraphCall>,
}

/// The Graph root that `@odata.id` references name objects under (Graph's "Add members" and
/// "Add sponsor" pages: `https://graph.microsoft.com/v1.0/directoryObjects/{id}`). Graph
/// reads the id from it, whatever host the client talks to.
pub const ODATA_ID_ROOT: &str = "https://graph.microsoft.com/v1.0/directoryObjects/";

/// The schema of graph-subset.json a `$ref` body (`{"@odata.id": "…"}`) satisfies.
pub const REF_SCHEMA: &str = "strict.ReferenceCreate";

/// The schema of graph-subset.json an app role assignment body satisfies.
pub const APP_ROLE_ASSIGNMENT_SCHEMA: &str = "strict.microsoft.graph.appRoleAssignment";

/// The Graph call of one grant for the user `user_id`, `approver_id` standing in for
/// [`Grant::ApproverSponsor`]:
///
/// - [`Grant::Group`] → `POST /groups/{group}/members/$ref` `{"@odata.id": "…/directoryObjects/{user}"}`
///   (Graph v1.0 "Add members");
/// - [`Grant::AppRole`] → `POST /users/{user}/appRoleAssignments`
///   `{"principalId","resourceId","appRoleId"}` ("Grant an appRoleAssignment to a user");
/// - [`Grant::Sponsor`] / [`Grant::ApproverSponsor`] → `POST /users/{user}/sponsors/$ref`
///   `{"@odata.id": "…/directoryObjects/{sponsor}"}` ("Add sponsor").
pub fn grant_call(grant: &Grant, user_id: &str, approver_id: &str) -> GraphCall {
    let reference = |id: &str| {
        let mut m = Map::new();
        m.insert(
            "@odata.id".into(),
            Value::String(format!("{ODATA_ID_ROOT}{id}")),
        );
        m
    };
    match grant {
        Grant::Group { group_id } => GraphCall::with_body(
            "POST",
            &format!("/groups/{group_id}/members/$ref"),
            reference(user_id),
            REF_SCHEMA,
        ),
        Grant::AppRole {
            resource_id,
            app_role_id,
        } => {
            let mut m = Map::new();
            m.insert("principalId".into(), Value::String(user_id.to_owned()));
            m.insert("resourceId".into(), Value::String(resource_id.clone()));
            m.insert("appRoleId".into(), Value::String(app_role_id.clone()));
            GraphCall::with_body(
                "POST",
                &format!("/users/{user_id}/appRoleAssignments"),
                m,
                APP_ROLE_ASSIGNMENT_SCHEMA,
            )
        }
        Grant::Sponsor { sponsor_id } => GraphCall::with_body(
            "POST",
            &format!("/users/{user_id}/sponsors/$ref"),
            reference(sponsor_id),
            REF_SCHEMA,
        ),
        Grant::ApproverSponsor => GraphCall::with_body(
            "POST",
            &format!("/users/{user_id}/sponsors/$ref"),
            reference(approver_id),
            REF_SCHEMA,
        ),
    }
}

/// The grant steps of a plan as shown before approval: [`grant_call`] with `{id}` for the
/// account and `{approver}` for the approver.
pub fn grant_steps(grants: &[Grant]) -> Vec<GraphCall> {
    grants
        .iter()
        .map(|g| grant_call(g, "{id}", "{approver}"))
        .collect()
}

/// The plan as approval runs it once its look-ups answered: `found[k]` is the id of the first
/// user look-up `k` returned (`None`: nothing found; look-ups not run yet are absent). Approval
/// runs the look-ups in order and stops at the first that finds someone; that account is
/// linked and nothing is written. So the result keeps the look-ups up to that one, has no
/// writes, `kind` [`ProvisionedBy::ExistingAccount`] and `existing_account` set. With nothing
/// found the plan is unchanged.
///
/// The desktop app shows this result after its directory check, and the outbox drain decides
/// with the same function whether to write: what is shown is what runs.
pub fn resolve(mut plan: ProvisioningPlan, found: &[Option<String>]) -> ProvisioningPlan {
    if let Some(k) = found.iter().position(Option::is_some) {
        plan.lookups.truncate(k + 1);
        plan.writes.clear();
        plan.kind = ProvisionedBy::ExistingAccount;
        plan.existing_account = found[k].clone();
    }
    plan
}

/// Why no plan can be made for a request: a setting is unusable. The variants let the
/// approver's app word it in its language; the `Display` text is English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `tenant_domain` is empty.
    #[error("provisioning settings: tenant_domain is empty")]
    TenantDomainEmpty,
    /// `extensions_app_id` is not 32 hex digits (the value given).
    #[error(
        "provisioning settings: extensions_app_id must be 32 hex digits without dashes, got {0:?}"
    )]
    ExtensionsAppId(String),
    /// `invite_redirect_url` is empty (needed to invite a guest).
    #[error("provisioning settings: invite_redirect_url is empty")]
    InviteRedirectUrlEmpty,
}

/// User properties (Graph `user`, writable) that a connector claim may fill under the same name.
/// Source: graph-subset.json `microsoft.graph.user`; read-only ones (`creationType`, `id`,
/// `createdDateTime`, `externalUserState`, …) are deliberately absent.
const WRITABLE_USER_PROPERTIES: &[&str] = &[
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "streetAddress",
    "city",
    "postalCode",
    "state",
    "country",
    "companyName",
    "department",
    "officeLocation",
    "mobilePhone",
    "preferredLanguage",
    "usageLocation",
    "employeeId",
    "faxNumber",
];

/// Builds a federated guest's `userPrincipalName`: `@` → `_`, then `#EXT@<domain>` (seed) or
/// `#EXT#@<domain>` (Entra's form). Characters Graph does not allow in a UPN's local part are
/// replaced by `_`.
pub fn guest_upn(email: &str, form: UpnForm, tenant_domain: &str) -> String {
    let local: String = email
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            '@' => '_',
            c if c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c) => c,
            _ => '_',
        })
        .collect();
    let marker = match form {
        UpnForm::Seed => "#EXT",
        UpnForm::EntraGuest => "#EXT#",
    };
    format!("{local}{marker}@{tenant_domain}")
}

/// Escapes a string for an OData single-quoted literal (`'` → `''`).
pub fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `GET /users?$filter=identities/any(c:c/issuerAssignedId eq '…' and c/issuer eq '…')`.
pub fn lookup_by_identity(issuer: &str, issuer_assigned_id: &str) -> GraphCall {
    GraphCall::get(format!(
        "/users?$filter=identities/any(c:c/issuerAssignedId eq {} and c/issuer eq {})&$select=id,displayName,mail,userPrincipalName,userType,identities,externalUserState",
        odata_string(issuer_assigned_id),
        odata_string(issuer)
    ))
}

/// The most values Graph accepts in one `in (…)` list (and in `or` chains) of a directory
/// `$filter`; more fail with `Request_UnsupportedQuery` ("Too many child clauses …. Max allowed:
/// 15"). Source: Microsoft Graph known issues, "query parameter limitations".
pub const FILTER_IN_MAX: usize = 15;

/// `GET /users?$filter=mail in ('…', '…')`: one look-up for up to [`FILTER_IN_MAX`] e-mail
/// addresses (`mail` supports `in`: Graph user resource, property table). Callers split longer
/// lists; the response's `mail` of each user says which address it answers.
pub fn lookup_by_mails(emails: &[&str]) -> GraphCall {
    let list = emails
        .iter()
        .map(|e| odata_string(e.trim()))
        .collect::<Vec<_>>()
        .join(",");
    GraphCall::get(format!(
        "/users?$filter=mail in ({list})&$select=id,displayName,mail,userPrincipalName,userType,identities,externalUserState"
    ))
}

/// `GET /users?$filter=mail eq '…'`.
pub fn lookup_by_mail(email: &str) -> GraphCall {
    GraphCall::get(format!(
        "/users?$filter=mail eq {}&$select=id,displayName,mail,userPrincipalName,userType,identities,externalUserState",
        odata_string(email.trim())
    ))
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Normalises an `extension_<appid>_<Name>` claim name to Graph's form with a 32-hex app id.
/// `Err(reason)` when it cannot be written.
fn extension_property(claim: &str, app_id: Option<&str>) -> Result<String, SkipReason> {
    let rest = claim.strip_prefix("extension_").unwrap_or(claim);
    let (id, name) = match rest.split_once('_') {
        Some((id, name)) if is_hex32(id) => (id.to_owned(), name.to_owned()),
        Some((placeholder, name)) if placeholder.starts_with('<') || !name.is_empty() => {
            // `<extensions-app-id>` placeholder, or an app id in another form (with dashes).
            let cleaned = placeholder.replace('-', "");
            if is_hex32(&cleaned) {
                (cleaned, name.to_owned())
            } else {
                match app_id {
                    Some(a) => (a.to_owned(), name.to_owned()),
                    None => return Err(SkipReason::NoExtensionsAppId),
                }
            }
        }
        _ => return Err(SkipReason::ExtensionForm),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(SkipReason::ExtensionName);
    }
    Ok(format!("extension_{}_{name}", id.to_ascii_lowercase()))
}

/// The attributes written for a request: built-ins under their Graph names, writable "other"
/// claims, and normalised extensions; plus what was skipped.
fn attributes(
    claims: &Claims,
    settings: &ProvisioningSettings,
) -> (Map<String, Value>, Vec<SkippedClaim>) {
    let mut out = Map::new();
    let mut skipped = Vec::new();
    for (name, value) in claims.builtin_attributes() {
        out.insert(name.into(), Value::String(value.to_owned()));
    }
    if !out.contains_key("displayName") {
        let name = [claims.given_name.as_deref(), claims.surname.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let name = if name.trim().is_empty() {
            claims.email.clone()
        } else {
            name
        };
        out.insert("displayName".into(), Value::String(name));
    }
    for (name, value) in &claims.other {
        if WRITABLE_USER_PROPERTIES.contains(&name.as_str()) && value.is_string() {
            out.insert(name.clone(), value.clone());
        } else {
            skipped.push(SkipReason::NotWritable.skip(name));
        }
    }
    for (name, value) in &claims.extensions {
        match extension_property(name, settings.extensions_app_id.as_deref()) {
            Ok(prop) => {
                out.insert(prop, value.clone());
            }
            Err(reason) => skipped.push(reason.skip(name)),
        }
    }
    (out, skipped)
}

/// The plan of a request that came through `flow`: [`plan`] for the workforce flow; for an
/// external tenant's request (issue 17) the empty plan of kind `userFlow` — no look-up, no
/// Graph write, no grant (there is no account to grant to yet): approval only records the
/// decision, and the approved person's next sign-up lets Entra create the customer account.
///
/// Errors: those of [`plan`] (workforce only).
pub fn plan_for(
    flow: Flow,
    claims: &Claims,
    settings: &ProvisioningSettings,
) -> Result<ProvisioningPlan, PlanError> {
    match flow {
        Flow::Workforce => plan(claims, settings),
        Flow::External => Ok(ProvisioningPlan {
            kind: ProvisionedBy::UserFlow,
            lookups: Vec::new(),
            writes: Vec::new(),
            skipped: Vec::new(),
            existing_account: None,
            grants: Vec::new(),
        }),
    }
}

/// Builds the provisioning plan of an approved request (see the module docs).
///
/// Errors: [`PlanError::TenantDomainEmpty`], [`PlanError::InviteRedirectUrlEmpty`] (an
/// invitation's plan), [`PlanError::ExtensionsAppId`] when it is not 32 hex digits.
pub fn plan(
    claims: &Claims,
    settings: &ProvisioningSettings,
) -> Result<ProvisioningPlan, PlanError> {
    if settings.tenant_domain.trim().is_empty() {
        return Err(PlanError::TenantDomainEmpty);
    }
    if let Some(a) = &settings.extensions_app_id
        && !is_hex32(a)
    {
        return Err(PlanError::ExtensionsAppId(a.clone()));
    }
    let (attrs, skipped) = attributes(claims, settings);
    if let Some(identity) = claims.primary_identity() {
        let mut body = Map::new();
        body.insert(
            "userPrincipalName".into(),
            Value::String(guest_upn(
                &claims.email,
                settings.upn_form,
                &settings.tenant_domain,
            )),
        );
        body.insert("accountEnabled".into(), Value::Bool(true));
        body.insert("mail".into(), Value::String(claims.email.clone()));
        body.insert("userType".into(), Value::String("Guest".into()));
        body.insert(
            "identities".into(),
            serde_json::to_value(&claims.identities).unwrap_or(Value::Null),
        );
        body.extend(attrs);
        Ok(ProvisioningPlan {
            kind: ProvisionedBy::UserCreated,
            lookups: vec![
                lookup_by_identity(&identity.issuer, &identity.issuer_assigned_id),
                lookup_by_mail(&claims.email),
            ],
            writes: vec![GraphCall::with_body(
                "POST",
                "/users",
                body,
                "strict.microsoft.graph.user",
            )],
            skipped,
            existing_account: None,
            grants: Vec::new(),
        })
    } else {
        if settings.invite_redirect_url.trim().is_empty() {
            return Err(PlanError::InviteRedirectUrlEmpty);
        }
        let mut invitation = Map::new();
        invitation.insert(
            "invitedUserEmailAddress".into(),
            Value::String(claims.email.clone()),
        );
        invitation.insert(
            "inviteRedirectUrl".into(),
            Value::String(settings.invite_redirect_url.clone()),
        );
        invitation.insert(
            "sendInvitationMessage".into(),
            Value::Bool(settings.send_invitation_message),
        );
        if let Some(name) = attrs.get("displayName") {
            invitation.insert("invitedUserDisplayName".into(), name.clone());
        }
        invitation.insert("invitedUserType".into(), json!("Guest"));
        Ok(ProvisioningPlan {
            kind: ProvisionedBy::Invitation,
            lookups: vec![lookup_by_mail(&claims.email)],
            writes: vec![
                GraphCall::with_body(
                    "POST",
                    "/invitations",
                    invitation,
                    "strict.microsoft.graph.invitation",
                ),
                GraphCall::with_body("PATCH", "/users/{id}", attrs, "strict.microsoft.graph.user"),
            ],
            skipped,
            existing_account: None,
            grants: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(dir: &str, name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/{dir}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn settings() -> ProvisioningSettings {
        ProvisioningSettings {
            tenant_domain: "contoso.onmicrosoft.com".into(),
            upn_form: UpnForm::Seed,
            invite_redirect_url: "https://myapp.com".into(),
            send_invitation_message: true,
            extensions_app_id: Some("b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c".into()),
        }
    }

    /// A validator for one schema of Graph's own metadata (graph-subset.json).
    fn validator(schema: &str) -> jsonschema::Validator {
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../../schemas/graph-subset.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let wrapper = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{schema}"),
            "components": doc["components"],
        });
        jsonschema::validator_for(&wrapper).unwrap()
    }

    fn assert_valid(call: &GraphCall) {
        let schema = call.schema.as_deref().unwrap();
        let v = validator(schema);
        let body = call.body.as_ref().unwrap();
        let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{} {} vs {schema}: {errors:?}\n{body:#}",
            call.method,
            call.path
        );
    }

    #[test]
    fn federated_plan_matches_the_seed_body() {
        let claims = Claims::from_json(fixture(
            "connector",
            "request-approval.request.facebook-minimal.json",
        ))
        .unwrap();
        let p = plan(&claims, &settings()).unwrap();
        assert_eq!(p.kind, ProvisionedBy::UserCreated);
        assert_eq!(p.writes.len(), 1);
        let mut expected = fixture("graph", "users.post.federated-guest.json");
        // The seed shows the placeholder; a real body carries the 32-hex extensions app id.
        let obj = expected.as_object_mut().unwrap();
        let v = obj
            .remove("extension_<extensions-app-id>_CustomAttribute")
            .unwrap();
        obj.insert(
            "extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_CustomAttribute".into(),
            v,
        );
        assert_eq!(p.writes[0].body.as_ref().unwrap(), &expected);
        assert_valid(&p.writes[0]);
        assert!(p.lookups[0].path.contains(
            "identities/any(c:c/issuerAssignedId eq '0123456789' and c/issuer eq 'facebook.com')"
        ));
    }

    #[test]
    fn invitation_plan_for_users_without_identities() {
        let claims = Claims::from_json(fixture(
            "connector",
            "request-approval.request.azuread.json",
        ))
        .unwrap();
        let p = plan(&claims, &settings()).unwrap();
        assert_eq!(p.kind, ProvisionedBy::Invitation);
        assert_eq!(p.writes[0].path, "/invitations");
        assert_eq!(p.writes[1].method, "PATCH");
        assert_eq!(p.writes[1].path, "/users/{id}");
        let inv = p.writes[0].body.as_ref().unwrap();
        let seed_inv = fixture("graph", "invitations.post.json");
        for (k, v) in seed_inv.as_object().unwrap() {
            assert_eq!(&inv[k], v, "{k}");
        }
        let patch = p.writes[1].body.as_ref().unwrap();
        assert_eq!(patch["displayName"], "John Smith");
        assert_eq!(patch["city"], "Redmond");
        assert_eq!(
            patch["extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_CustomAttribute"],
            "custom attribute value"
        );
        for w in &p.writes {
            assert_valid(w);
        }
    }

    #[test]
    fn every_fixture_gives_schema_valid_bodies() {
        for name in [
            "check-status.request.facebook.json",
            "request-approval.request.azuread.json",
            "request-approval.request.facebook-minimal.json",
            "request-approval.request.facebook.json",
        ] {
            let claims = Claims::from_json(fixture("connector", name)).unwrap();
            for form in [UpnForm::Seed, UpnForm::EntraGuest] {
                let p = plan(
                    &claims,
                    &ProvisioningSettings {
                        upn_form: form,
                        ..settings()
                    },
                )
                .unwrap();
                for w in &p.writes {
                    assert_valid(w);
                }
            }
        }
    }

    #[test]
    fn the_schema_catches_what_we_must_never_send() {
        let v = validator("strict.microsoft.graph.user");
        assert!(!v.is_valid(&json!({"displayName": "x", "displayNmae": "typo"})));
        assert!(!v.is_valid(&json!({"extension_<extensions-app-id>_X": "placeholder"})));
        assert!(v.is_valid(&json!({"extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_X": "ok"})));
    }

    #[test]
    fn upn_forms_and_odata_escaping() {
        assert_eq!(
            guest_upn(
                "JohnSmith@Outlook.com",
                UpnForm::Seed,
                "contoso.onmicrosoft.com"
            ),
            "johnsmith_outlook.com#EXT@contoso.onmicrosoft.com"
        );
        assert_eq!(
            guest_upn(
                "o'brien+x@fabrikam.com",
                UpnForm::EntraGuest,
                "contoso.onmicrosoft.com"
            ),
            "o'brien_x_fabrikam.com#EXT#@contoso.onmicrosoft.com"
        );
        assert_eq!(odata_string("o'brien"), "'o''brien'");
        let l = lookup_by_mails(&["a@x.com", " o'brien@y.org "]);
        assert_eq!(l.method, "GET");
        assert!(
            l.path
                .starts_with("/users?$filter=mail in ('a@x.com','o''brien@y.org')&$select=id,"),
            "{}",
            l.path
        );
    }

    #[test]
    fn a_found_account_means_no_writes_and_no_further_lookups() {
        let claims = Claims::from_json(fixture(
            "connector",
            "request-approval.request.facebook-minimal.json",
        ))
        .unwrap();
        let p = plan(&claims, &settings()).unwrap();
        assert_eq!(resolve(p.clone(), &[None, None]), p);
        let by_identity = resolve(p.clone(), &[Some("u1".into())]);
        assert_eq!(by_identity.kind, ProvisionedBy::ExistingAccount);
        assert!(by_identity.writes.is_empty());
        assert_eq!(by_identity.lookups, p.lookups[..1]);
        assert_eq!(by_identity.existing_account.as_deref(), Some("u1"));
        let by_mail = resolve(p.clone(), &[None, Some("u2".into())]);
        assert_eq!(by_mail.lookups, p.lookups);
        assert!(by_mail.writes.is_empty());
    }

    #[test]
    fn unwritable_claims_are_skipped_with_a_reason() {
        let claims = Claims::from_json(json!({
            "email": "a@b.example",
            "identities": [{"signInType":"federated","issuer":"google.com","issuerAssignedId":"g1"}],
            "companyName": "Fabrikam",
            "objectId": "abc",
            "extension_<extensions-app-id>_Sponsor": "x",
        }))
        .unwrap();
        let no_ext = ProvisioningSettings {
            extensions_app_id: None,
            ..settings()
        };
        let p = plan(&claims, &no_ext).unwrap();
        let body = p.writes[0].body.as_ref().unwrap();
        assert_eq!(body["companyName"], "Fabrikam");
        assert_eq!(body["displayName"], "a@b.example");
        let skipped: Vec<&str> = p.skipped.iter().map(|s| s.claim.as_str()).collect();
        assert_eq!(
            skipped,
            ["objectId", "extension_<extensions-app-id>_Sponsor"]
        );
        assert_valid(&p.writes[0]);
        let bad = ProvisioningSettings {
            extensions_app_id: Some("nothex".into()),
            ..settings()
        };
        assert_eq!(
            plan(&claims, &bad),
            Err(PlanError::ExtensionsAppId("nothex".into()))
        );
        // Each skip carries a code for the approver's language and the same English reason.
        let reasons: Vec<_> = p
            .skipped
            .iter()
            .map(|s| (s.code, s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    Some(SkipReason::NotWritable),
                    "not a writable property of a Graph user"
                ),
                (
                    Some(SkipReason::NoExtensionsAppId),
                    "its extensions app id is not 32 hex digits and no extensions_app_id is configured"
                ),
            ]
        );
    }

    /// The plan errors are typed; their English text is what it was as a string.
    #[test]
    fn plan_errors_are_typed_with_the_same_english_text() {
        assert_eq!(
            PlanError::ExtensionsAppId("nothex".into()).to_string(),
            "provisioning settings: extensions_app_id must be 32 hex digits without dashes, got \"nothex\""
        );
        let empty = ProvisioningSettings {
            tenant_domain: " ".into(),
            ..settings()
        };
        let claims = Claims::from_json(json!({"email": "a@b.example"})).unwrap();
        let e = plan(&claims, &empty).unwrap_err();
        assert_eq!(e, PlanError::TenantDomainEmpty);
        assert_eq!(
            e.to_string(),
            "provisioning settings: tenant_domain is empty"
        );
        let no_redirect = ProvisioningSettings {
            invite_redirect_url: String::new(),
            ..settings()
        };
        assert_eq!(
            plan(&claims, &no_redirect),
            Err(PlanError::InviteRedirectUrlEmpty)
        );
    }

    /// Every grant body satisfies Graph's own schema (graph-subset.json `strict.ReferenceCreate`
    /// and `strict.microsoft.graph.appRoleAssignment`), on the documented paths.
    #[test]
    fn grant_calls_are_graphs_documented_bodies() {
        let user = "11111111-2222-4333-8444-555555555555";
        let approver = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
        let grants = [
            Grant::Group {
                group_id: "0b8f5c3e-1d2a-4e6f-9a7b-3c4d5e6f7a81".into(),
            },
            Grant::AppRole {
                resource_id: "5a1e2d3c-4b5a-4968-8776-655443322110".into(),
                app_role_id: "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a".into(),
            },
            Grant::Sponsor {
                sponsor_id: "0b8f5c3e-1d2a-4e6f-9a7b-3c4d5e6f7a82".into(),
            },
            Grant::ApproverSponsor,
        ];
        let calls: Vec<GraphCall> = grants
            .iter()
            .map(|g| grant_call(g, user, approver))
            .collect();
        for c in &calls {
            assert_eq!(c.method, "POST");
            assert_valid(c);
        }
        assert_eq!(
            calls[0].path,
            "/groups/0b8f5c3e-1d2a-4e6f-9a7b-3c4d5e6f7a81/members/$ref"
        );
        assert_eq!(
            calls[0].body,
            Some(
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}")})
            )
        );
        assert_eq!(calls[1].path, format!("/users/{user}/appRoleAssignments"));
        assert_eq!(calls[1].body.as_ref().unwrap()["principalId"], user);
        assert_eq!(calls[2].path, format!("/users/{user}/sponsors/$ref"));
        assert_eq!(
            calls[3].body.as_ref().unwrap()["@odata.id"],
            format!("https://graph.microsoft.com/v1.0/directoryObjects/{approver}")
        );
        // The schema refuses what Graph would: another body, a non-id reference.
        let v = validator(REF_SCHEMA);
        assert!(!v.is_valid(&json!({"@odata.id": "https://evil.example/users/x"})));
        assert!(
            !v.is_valid(
                &json!({"@odata.id": calls[0].body.as_ref().unwrap()["@odata.id"], "x": 1})
            )
        );
        // Shown before approval with placeholders.
        let shown = grant_steps(&grants);
        assert_eq!(
            shown[0].body.as_ref().unwrap()["@odata.id"],
            "https://graph.microsoft.com/v1.0/directoryObjects/{id}"
        );
        assert_eq!(shown[3].path, "/users/{id}/sponsors/$ref");
    }

    #[test]
    fn an_external_request_plans_no_graph_call() {
        let claims = Claims::from_json(
            json!({"email": "linnea@example.se", "displayName": "Linnéa Öberg",
                "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1"}]}),
        )
        .unwrap();
        let p = plan_for(Flow::External, &claims, &settings()).unwrap();
        assert_eq!(p.kind, ProvisionedBy::UserFlow);
        assert!(p.lookups.is_empty() && p.writes.is_empty() && p.grants.is_empty());
        // The same claims through a workforce tenant create a guest.
        let w = plan_for(Flow::Workforce, &claims, &settings()).unwrap();
        assert_eq!(w.kind, ProvisionedBy::UserCreated);
        assert_eq!(w.writes[0].path, "/users");
    }
}
