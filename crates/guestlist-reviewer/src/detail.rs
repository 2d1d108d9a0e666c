//! The side-by-side view of one request: Submitted (claims as received) / Will be written (the
//! plan's bodies, per property) / Already in the directory (Graph look-ups by identity and by
//! mail), the identity provider block, the full plan, skipped claims, and risks (existing
//! account, e-mail domain unlike the company, free-mail domain). CONTRACTS.md §1 and §3.

use guestlist_core::connector::{Claims, email_domain};
use guestlist_core::model::ApprovalRequest;
use guestlist_core::model::Flow;
use guestlist_core::model::Grant;
use guestlist_core::model::ProvisionedBy;
use guestlist_core::plan::{
    PlanError, ProvisioningPlan, ProvisioningSettings, grant_steps, plan_for, resolve,
};
use serde_json::{Map, Value};

use crate::types::{
    AttributeRow, DirectoryCheck, GrantFact, GrantFactKind, IdentityBlock, IfApprovedFacts,
    InvitationBlock, LookupKind, OutboxItem, PlanProblem, RequestDetail, Risk, RiskKind,
    RiskParams,
};

/// Free-mail domains (exact) flagged as a risk.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "web.de",
    "laposte.net",
    "orange.fr",
    "free.fr",
    "wanadoo.fr",
    "sfr.fr",
    "protonmail.com",
    "proton.me",
    "mail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "t-online.de",
    "freenet.de",
    "libero.it",
    "seznam.cz",
];

/// `true` for a free-mail domain: the list above, any `gmx.*`, and any `yahoo.*`/`hotmail.*`.
pub fn is_free_mail(domain: &str) -> bool {
    let d = domain.trim().to_ascii_lowercase();
    FREE_MAIL.contains(&d.as_str())
        || d.starts_with("gmx.")
        || d.starts_with("yahoo.")
        || d.starts_with("hotmail.")
}

/// The short name of an `extension_<app id>_<Name>` claim (`<Name>`); other names unchanged.
pub fn extension_short_name(claim: &str) -> &str {
    match claim.strip_prefix("extension_") {
        Some(rest) => {
            // The app id is 32 hex digits, a GUID with dashes, or `<placeholder>`; the name
            // follows the first `_` after it.
            if let Some(stripped) = rest.strip_prefix('<') {
                return stripped.split_once(">_").map(|(_, n)| n).unwrap_or(rest);
            }
            rest.split_once('_').map(|(_, n)| n).unwrap_or(rest)
        }
        None => claim,
    }
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// `true` when the e-mail domain plausibly belongs to `company`: a label of the domain (minus
/// the TLD) and the company name, both reduced to letters and digits, contain one another.
pub fn domain_matches_company(domain: &str, company: &str) -> bool {
    let c = normalise(company);
    if c.is_empty() {
        return true;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let significant = &labels[..labels.len().saturating_sub(1)];
    significant
        .iter()
        .map(|l| normalise(l))
        .filter(|l| l.len() >= 3)
        .any(|l| c.contains(&l) || l.contains(&c))
}

/// Builds the detail view. `directory` holds the look-up results (see [`DirectoryCheck`]).
pub fn build(
    request: ApprovalRequest,
    provisioning: &ProvisioningSettings,
    directory: DirectoryCheck,
    outbox: Option<OutboxItem>,
) -> RequestDetail {
    let claims = request.typed_claims();
    // Our own earlier attempt (a failed or interrupted approval that created or invited the
    // account): what the look-ups find is that account, not someone else's.
    let ours = outbox
        .as_ref()
        .filter(|o| o.write_started)
        .and_then(|o| o.directory_object_id.clone());
    let (plan_result, plan_problem): (Option<ProvisioningPlan>, Option<PlanProblem>) = match &claims
    {
        Ok(c) => match plan_for(request.flow, c, provisioning) {
            Ok(p) if directory.checked && ours.is_none() => {
                let found = found_by_lookup(&p, &directory);
                (Some(resolve(p, &found)), None)
            }
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(problem_of(e))),
        },
        Err(e) => (
            None,
            Some(PlanProblem::InvalidClaims {
                detail: e.to_string(),
            }),
        ),
    };
    let plan_error = plan_problem.as_ref().map(problem_english);
    // "Will be written": the user properties of the writes (the invitation's own parameters
    // are not the person's attributes; they are shown in their own block).
    let written: Map<String, Value> = plan_result
        .as_ref()
        .map(|p| {
            let mut m = Map::new();
            for w in &p.writes {
                if w.path == "/invitations" {
                    if let Some(mail) = w
                        .body
                        .as_ref()
                        .and_then(|b| b.get("invitedUserEmailAddress"))
                    {
                        // Graph sets the invited user's `mail` from the invitation.
                        m.insert("mail".into(), mail.clone());
                    }
                    continue;
                }
                if let Some(Value::Object(b)) = &w.body {
                    for (k, v) in b {
                        m.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            m
        })
        .unwrap_or_default();
    let invitation = plan_result.as_ref().and_then(|p| {
        let b = p
            .writes
            .iter()
            .find(|w| w.path == "/invitations")?
            .body
            .as_ref()?;
        Some(InvitationBlock {
            redirect_url: b.get("inviteRedirectUrl")?.as_str()?.to_owned(),
            send_invitation_message: b
                .get("sendInvitationMessage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            invited_user_type: b
                .get("invitedUserType")
                .and_then(Value::as_str)
                .unwrap_or("Guest")
                .to_owned(),
        })
    });
    let existing = directory.matches.first().map(|m| &m.user);
    let mut rows = Vec::new();
    let mut used_props = std::collections::BTreeSet::new();
    for (claim, value) in &request.claims {
        if claim == "identities" || claim == "ui_locales" || claim == "step" || claim == "client_id"
        {
            continue;
        }
        let property = if claim == "lastName" {
            Some("surname".to_owned())
        } else if claim.starts_with("extension_") {
            let short = extension_short_name(claim);
            written
                .keys()
                .find(|k| k.starts_with("extension_") && extension_short_name(k) == short)
                .cloned()
        } else if claim == "email" {
            Some("mail".to_owned())
        } else {
            written.contains_key(claim).then(|| claim.clone())
        };
        let will = property.as_ref().and_then(|p| written.get(p)).cloned();
        if let Some(p) = &property {
            used_props.insert(p.clone());
        }
        let in_dir = property
            .as_ref()
            .and_then(|p| existing.and_then(|u| u.get(p)))
            .filter(|v| !v.is_null())
            .cloned();
        rows.push(AttributeRow {
            attribute: if claim.starts_with("extension_") {
                extension_short_name(claim).to_owned()
            } else {
                property.clone().unwrap_or_else(|| claim.clone())
            },
            claim: Some(claim.clone()),
            property,
            submitted: Some(value.clone()),
            will_be_written: will,
            in_directory: in_dir,
        });
    }
    // Properties the plan writes that no claim carries (userPrincipalName, userType, …).
    for (prop, v) in &written {
        if used_props.contains(prop) || prop == "identities" {
            continue;
        }
        rows.push(AttributeRow {
            attribute: prop.clone(),
            claim: None,
            property: Some(prop.clone()),
            submitted: None,
            will_be_written: Some(v.clone()),
            in_directory: existing
                .and_then(|u| u.get(prop))
                .filter(|v| !v.is_null())
                .cloned(),
        });
    }
    let ident = claims
        .as_ref()
        .ok()
        .and_then(Claims::primary_identity)
        .cloned();
    let provider = guestlist_core::provider::provider_key(&request.key.issuer, &request.key.email);
    let identity = IdentityBlock {
        label: guestlist_core::provider::provider_label(&provider).into(),
        provider,
        issuer: ident.as_ref().map(|i| i.issuer.clone()),
        issuer_assigned_id: ident.as_ref().map(|i| i.issuer_assigned_id.clone()),
        sign_in_type: ident.as_ref().map(|i| i.sign_in_type.clone()),
    };
    let mut risks = Vec::new();
    for m in &directory.matches {
        let id = m.user.get("id").and_then(Value::as_str);
        if ours.is_some() && id == ours.as_deref() {
            // The account this request's own earlier attempt created or invited.
            continue;
        }
        let found_by = if m.found_by == "identity" {
            LookupKind::Identity
        } else {
            LookupKind::Mail
        };
        let account = m
            .user
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .unwrap_or_else(|| id.unwrap_or("?"))
            .to_owned();
        risks.push(risk(RiskParams::ExistingAccount { found_by, account }));
    }
    let domain = email_domain(&request.key.email);
    if is_free_mail(&domain) {
        risks.push(risk(RiskParams::FreeMail {
            domain: domain.clone(),
        }));
    }
    if let Some(company) = crate::cache::company(&request)
        && !is_free_mail(&domain)
        && !domain_matches_company(&domain, &company)
    {
        risks.push(risk(RiskParams::DomainMismatch {
            domain: domain.clone(),
            company,
        }));
    }
    if let Some(problem) = plan_problem {
        risks.push(risk(RiskParams::NoPlan { problem }));
    }
    let skipped = plan_result
        .as_ref()
        .map(|p| p.skipped.clone())
        .unwrap_or_default();
    let sponsor = claim_by_short_name(&request, &["sponsoremail", "sponsor"]);
    let reason = claim_by_short_name(&request, &["reason", "justification"]);
    let name = crate::cache::display_name(&request);
    let if_approved_facts = if_approved_facts(
        &name,
        &identity.label,
        plan_result.as_ref(),
        &directory,
        ours.as_deref(),
        sponsor.as_deref(),
    );
    RequestDetail {
        if_approved: if_approved_sentence(&if_approved_facts),
        if_approved_facts,
        sponsor,
        reason,
        invitation,
        request,
        rows,
        identity,
        plan: plan_result,
        plan_error,
        skipped,
        directory,
        risks,
        outbox,
    }
}

/// The plan error as data (the approver's app words it).
fn problem_of(e: PlanError) -> PlanProblem {
    match e {
        PlanError::TenantDomainEmpty => PlanProblem::TenantDomainEmpty,
        PlanError::ExtensionsAppId(value) => PlanProblem::ExtensionsAppId { value },
        PlanError::InviteRedirectUrlEmpty => PlanProblem::InviteRedirectUrlEmpty,
    }
}

/// Why no plan can be made, in English (the detail's `planError`, and the no-plan risk).
fn problem_english(p: &PlanProblem) -> String {
    match p {
        PlanProblem::InvalidClaims { detail } => format!("the stored claims are invalid: {detail}"),
        PlanProblem::TenantDomainEmpty => PlanError::TenantDomainEmpty.to_string(),
        PlanProblem::ExtensionsAppId { value } => {
            PlanError::ExtensionsAppId(value.clone()).to_string()
        }
        PlanProblem::InviteRedirectUrlEmpty => PlanError::InviteRedirectUrlEmpty.to_string(),
    }
}

/// A risk with its English sentence (identical to the one before the sentence moved to the UI
/// catalogues, `risk.message.<kind>`).
pub fn risk(params: RiskParams) -> Risk {
    let (kind, message) = match &params {
        RiskParams::ExistingAccount { found_by, account } => (
            RiskKind::ExistingAccount,
            format!(
                "An account already exists (found by {}): {account} — approving links it and writes nothing.",
                match found_by {
                    LookupKind::Identity => "identity",
                    LookupKind::Mail => "mail",
                }
            ),
        ),
        RiskParams::FreeMail { domain } => (
            RiskKind::FreeMail,
            format!(
                "{domain} is a free e-mail provider: the address says nothing about the requester's organisation."
            ),
        ),
        RiskParams::DomainMismatch { domain, company } => (
            RiskKind::DomainMismatch,
            format!("The e-mail domain {domain} does not look like the company \"{company}\"."),
        ),
        RiskParams::NoPlan { problem } => (
            RiskKind::NoPlan,
            format!("Approval would fail: {}", problem_english(problem)),
        ),
    };
    Risk {
        kind,
        message,
        params,
    }
}

/// For each look-up of `p`, the id of the first user the directory check found with it
/// (look-ups by identity and by mail, told apart by their `$filter`), as [`resolve`] wants.
fn found_by_lookup(p: &ProvisioningPlan, directory: &DirectoryCheck) -> Vec<Option<String>> {
    p.lookups
        .iter()
        .map(|l| {
            let by = if l.path.contains("identities/any") {
                "identity"
            } else {
                "mail"
            };
            directory
                .matches
                .iter()
                .find(|m| m.found_by == by)
                .and_then(|m| m.user.get("id").and_then(Value::as_str))
                .map(str::to_owned)
        })
        .collect()
}

/// The value of the first claim whose (extension short) name, lower-cased, is one of `names`.
fn claim_by_short_name(request: &ApprovalRequest, names: &[&str]) -> Option<String> {
    request
        .claims
        .iter()
        .find(|(k, _)| names.contains(&extension_short_name(k).to_ascii_lowercase().as_str()))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
        .filter(|v| !v.trim().is_empty())
}

/// What approval will do (the facts of the "If you approve" sentence), from the plan and the
/// directory check.
fn if_approved_facts(
    name: &str,
    provider_label: &str,
    plan: Option<&ProvisioningPlan>,
    directory: &DirectoryCheck,
    ours: Option<&str>,
    sponsor: Option<&str>,
) -> IfApprovedFacts {
    let mut facts = IfApprovedFacts {
        kind: plan.map(|p| p.kind),
        name: name.to_owned(),
        provider_label: provider_label.to_owned(),
        resumes_account: ours.map(str::to_owned),
        existing_account: None,
        properties: 0,
        sends_invitation: false,
        sponsor: sponsor.map(str::to_owned),
        directory_checked: directory.checked,
        grants: Vec::new(),
    };
    let Some(p) = plan else {
        return facts;
    };
    let attrs = p
        .writes
        .iter()
        .filter(|w| w.path != "/invitations")
        .filter_map(|w| w.body.as_ref().and_then(Value::as_object))
        .map(|b| b.len())
        .sum::<usize>();
    facts.properties = u32::try_from(attrs).unwrap_or(u32::MAX);
    if p.kind == ProvisionedBy::ExistingAccount {
        facts.existing_account = directory
            .matches
            .first()
            .and_then(|m| {
                m.user
                    .get("userPrincipalName")
                    .or_else(|| m.user.get("mail"))
                    .and_then(Value::as_str)
            })
            .or(p.existing_account.as_deref())
            .map(str::to_owned);
    }
    if p.kind == ProvisionedBy::Invitation {
        facts.sends_invitation = p
            .writes
            .first()
            .and_then(|w| w.body.as_ref())
            .and_then(|b| b.get("sendInvitationMessage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    }
    facts
}

/// Display names of the directory objects grants name (issue 14 §1), keyed by object id:
/// groups, service principals (with their app roles' names by role id) and users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantNames {
    /// Object id (lower case) → display name.
    pub names: std::collections::HashMap<String, String>,
    /// (service principal id, app role id), lower case → the role's display name.
    pub roles: std::collections::HashMap<(String, String), String>,
}

/// The grant facts of `grants`, with the names known in `names`; `approver` is the signed-in
/// approver's (object id, display name), who becomes the sponsor of [`Grant::ApproverSponsor`].
pub fn grant_facts(
    grants: &[Grant],
    names: &GrantNames,
    approver: Option<(&str, &str)>,
) -> Vec<GrantFact> {
    let name = |id: &str| names.names.get(&id.to_ascii_lowercase()).cloned();
    grants
        .iter()
        .map(|g| match g {
            Grant::Group { group_id } => GrantFact {
                kind: GrantFactKind::Group,
                id: group_id.clone(),
                name: name(group_id),
                resource_id: None,
                role: None,
                approver: false,
            },
            Grant::AppRole {
                resource_id,
                app_role_id,
            } => GrantFact {
                kind: GrantFactKind::AppRole,
                id: app_role_id.clone(),
                name: name(resource_id),
                resource_id: Some(resource_id.clone()),
                role: names
                    .roles
                    .get(&(
                        resource_id.to_ascii_lowercase(),
                        app_role_id.to_ascii_lowercase(),
                    ))
                    .cloned(),
                approver: false,
            },
            Grant::Sponsor { sponsor_id } => GrantFact {
                kind: GrantFactKind::Sponsor,
                id: sponsor_id.clone(),
                name: name(sponsor_id),
                resource_id: None,
                role: None,
                approver: false,
            },
            Grant::ApproverSponsor => GrantFact {
                kind: GrantFactKind::Sponsor,
                id: approver.map(|a| a.0.to_owned()).unwrap_or_default(),
                name: approver.map(|a| a.1.to_owned()),
                resource_id: None,
                role: None,
                approver: true,
            },
        })
        .collect()
}

/// Puts the grants into a built detail: the plan's grant steps, and the facts (with `names`)
/// and English sentence of "If you approve".
pub fn with_grants(
    mut d: RequestDetail,
    names: &GrantNames,
    approver: Option<(&str, &str)>,
) -> RequestDetail {
    // An external tenant's approval grants nothing: there is no account yet (issue 17).
    if d.request.flow == Flow::External {
        return d;
    }
    if let Some(p) = d.plan.as_mut() {
        p.grants = grant_steps(&d.request.grants);
    }
    if d.if_approved_facts.kind.is_some() {
        d.if_approved_facts.grants = grant_facts(&d.request.grants, names, approver);
        d.if_approved = if_approved_sentence(&d.if_approved_facts);
    }
    d
}

/// One grant in English: "added to group Partners-Fabrikam", "app role Reader in Contoso
/// Portal", "sponsor Ada Lovelace" (ids where no name is known).
fn grant_english(g: &GrantFact) -> String {
    let name = g.name.as_deref();
    match g.kind {
        GrantFactKind::Group => format!("added to group {}", name.unwrap_or(&g.id)),
        GrantFactKind::AppRole => format!(
            "app role {} in {}",
            g.role.as_deref().unwrap_or(&g.id),
            name.or(g.resource_id.as_deref()).unwrap_or("?")
        ),
        GrantFactKind::Sponsor if g.approver => {
            format!("sponsor {} (you)", name.unwrap_or("the approver"))
        }
        GrantFactKind::Sponsor => format!("sponsor {}", name.unwrap_or(&g.id)),
    }
}

/// The "If you approve" sentence in English: what approval will do, in the order it does it
/// (the UI words the same facts in the approver's language, `ui/src/lib/plan.ts`).
fn if_approved_sentence(f: &IfApprovedFacts) -> String {
    let Some(kind) = f.kind else {
        return "Approval would fail: no provisioning plan can be made (see below).".into();
    };
    let (name, provider_label) = (&f.name, &f.provider_label);
    if kind == ProvisionedBy::UserFlow {
        // An external tenant (issue 17): approval writes nothing to the directory.
        return format!(
            "Approve lets {name} finish their sign-up; Entra creates their account then"
        );
    }
    let attrs = match f.properties {
        1 => "1 property".to_owned(),
        n => format!("{n} properties"),
    };
    let ours = f.resumes_account.as_deref();
    let mut parts: Vec<String> = Vec::new();
    if let Some(id) = ours {
        parts.push(format!(
            "Resumes the earlier attempt: the account {id} it created exists"
        ));
    }
    match kind {
        ProvisionedBy::ExistingAccount => {
            let who = f.existing_account.as_deref().unwrap_or("?");
            parts.push(format!(
                "Links the existing account {who} · nothing is written in the directory"
            ));
        }
        ProvisionedBy::UserCreated if ours.is_none() => {
            parts.push(format!(
                "Creates guest {name} ({provider_label} sign-in) · writes {attrs}"
            ));
        }
        ProvisionedBy::Invitation if ours.is_none() => {
            parts.push(format!(
                "Invites {name} as a guest ({provider_label}) · {} · then sets {attrs}",
                if f.sends_invitation {
                    "sends the invitation e-mail"
                } else {
                    "no invitation e-mail"
                }
            ));
        }
        ProvisionedBy::Invitation => parts.push(format!("sets {attrs}")),
        ProvisionedBy::UserCreated | ProvisionedBy::UserFlow => {}
    }
    if let Some(s) = &f.sponsor {
        parts.push(format!("sponsor {s}"));
    }
    for g in &f.grants {
        parts.push(grant_english(g));
    }
    parts.push("then approved on the server".into());
    let sentence = parts.join(" · ");
    if f.directory_checked || kind == ProvisionedBy::ExistingAccount {
        sentence
    } else {
        format!(
            "Directory not checked yet: approval looks the person up first and links an existing account if there is one. Otherwise: {sentence}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlist_core::plan::GraphCall;

    /// A directory check that has not run (signed out or offline).
    fn unchecked() -> DirectoryCheck {
        DirectoryCheck {
            checked: false,
            matches: Vec::new(),
            error: None,
        }
    }

    /// The detail of `request` for the tenant `contoso.onmicrosoft.com` (sending the invitation
    /// e-mail when `send_invitation_message`), its directory not checked, no grant named.
    fn external_detail(request: ApprovalRequest, send_invitation_message: bool) -> RequestDetail {
        let settings = ProvisioningSettings {
            tenant_domain: "contoso.onmicrosoft.com".into(),
            upn_form: Default::default(),
            invite_redirect_url: "https://myapp.example".into(),
            send_invitation_message,
            extensions_app_id: None,
        };
        with_grants(
            build(request, &settings, unchecked(), None),
            &GrantNames::default(),
            None,
        )
    }

    #[test]
    fn free_mail_and_company_checks() {
        assert!(is_free_mail("gmail.com"));
        assert!(is_free_mail("GMX.de"));
        assert!(is_free_mail("gmx.net"));
        assert!(is_free_mail("laposte.net"));
        assert!(!is_free_mail("fabrikam.com"));
        assert!(domain_matches_company("fabrikam.com", "Fabrikam, Inc."));
        assert!(domain_matches_company("mail.contoso.co.uk", "Contoso"));
        assert!(!domain_matches_company("woodgrove.com", "Fabrikam"));
    }

    #[test]
    fn if_approved_facts_of_an_invitation_and_their_english_sentence() {
        let call = |path: &str, body: Value| GraphCall {
            method: "POST".into(),
            path: path.into(),
            body: Some(body),
            schema: None,
        };
        let plan = ProvisioningPlan {
            kind: ProvisionedBy::Invitation,
            lookups: Vec::new(),
            writes: vec![
                call(
                    "/invitations",
                    serde_json::json!({ "sendInvitationMessage": true, "invitedUserEmailAddress": "a@x.se" }),
                ),
                call(
                    "/users/{id}",
                    serde_json::json!({ "city": "Lund", "country": "SE" }),
                ),
            ],
            skipped: Vec::new(),
            existing_account: None,
            grants: Vec::new(),
        };
        let directory = unchecked();
        let f = if_approved_facts(
            "Ada",
            "Entra ID",
            Some(&plan),
            &directory,
            None,
            Some("s@x.se"),
        );
        assert_eq!(f.kind, Some(ProvisionedBy::Invitation));
        assert_eq!(f.properties, 2, "the invitation's own body is not counted");
        assert!(f.sends_invitation);
        assert!(!f.directory_checked);
        assert_eq!(
            if_approved_sentence(&f),
            "Directory not checked yet: approval looks the person up first and links an existing account if there is one. Otherwise: Invites Ada as a guest (Entra ID) · sends the invitation e-mail · then sets 2 properties · sponsor s@x.se · then approved on the server"
        );
        let none = if_approved_facts("Ada", "Google", None, &directory, None, None);
        assert_eq!(none.kind, None);
        assert!(if_approved_sentence(&none).starts_with("Approval would fail"));
    }

    /// Every risk carries its facts as data, and its English sentence is the one it had when
    /// it was only a sentence (issue 15: the UI words the facts; `ui/src/lib/risk.test.ts`
    /// checks the English catalogue against these same sentences).
    #[test]
    fn risks_are_data_with_the_same_english_sentence() {
        let cases = [
            (
                RiskParams::ExistingAccount {
                    found_by: LookupKind::Mail,
                    account: "ada@contoso.onmicrosoft.com".into(),
                },
                "An account already exists (found by mail): ada@contoso.onmicrosoft.com — approving links it and writes nothing.",
            ),
            (
                RiskParams::FreeMail {
                    domain: "gmail.com".into(),
                },
                "gmail.com is a free e-mail provider: the address says nothing about the requester's organisation.",
            ),
            (
                RiskParams::DomainMismatch {
                    domain: "woodgrove.com".into(),
                    company: "Fabrikam".into(),
                },
                "The e-mail domain woodgrove.com does not look like the company \"Fabrikam\".",
            ),
            (
                RiskParams::NoPlan {
                    problem: PlanProblem::TenantDomainEmpty,
                },
                "Approval would fail: provisioning settings: tenant_domain is empty",
            ),
            (
                RiskParams::NoPlan {
                    problem: PlanProblem::ExtensionsAppId {
                        value: "nothex".into(),
                    },
                },
                "Approval would fail: provisioning settings: extensions_app_id must be 32 hex digits without dashes, got \"nothex\"",
            ),
        ];
        for (params, english) in cases {
            let r = risk(params.clone());
            assert_eq!(r.message, english);
            assert_eq!(r.params, params);
            // On the wire: the kind twice (the risk's and its facts'), the facts in camelCase.
            let wire = serde_json::to_value(&r).unwrap();
            assert_eq!(wire["kind"], wire["params"]["kind"], "{wire}");
        }
        let wire = serde_json::to_value(risk(RiskParams::ExistingAccount {
            found_by: LookupKind::Identity,
            account: "x".into(),
        }))
        .unwrap();
        assert_eq!(
            wire["params"],
            serde_json::json!({"kind": "existingAccount", "foundBy": "identity", "account": "x"})
        );
    }

    #[test]
    fn extension_short_names() {
        assert_eq!(
            extension_short_name("extension_<extensions-app-id>_CustomAttribute"),
            "CustomAttribute"
        );
        assert_eq!(
            extension_short_name("extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_Sponsor_Name"),
            "Sponsor_Name"
        );
        assert_eq!(extension_short_name("city"), "city");
    }

    /// Issue 17: an external tenant's request plans no Graph call and no grant, and the
    /// "If you approve" sentence says that Entra creates the account when the person finishes.
    #[test]
    fn an_external_request_plans_nothing_and_says_so() {
        let request: ApprovalRequest = serde_json::from_value(serde_json::json!({
            "id": "0190c0de-0000-7000-8000-000000000017",
            "key": {"email": "linnea@example.se", "issuer": "google.com", "issuerAssignedId": "1"},
            "state": {"status": "pending"}, "version": 1, "attempts": 1, "flow": "external",
            "createdAt": "2026-11-30T20:00:00Z", "updatedAt": "2026-11-30T20:00:00Z",
            "claims": {"email": "linnea@example.se", "displayName": "Linnéa Öberg",
                "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1"}]},
            "grants": [{"kind": "group", "groupId": "g1"}]
        }))
        .unwrap();
        let d = external_detail(request, false);
        let plan = d.plan.as_ref().unwrap();
        assert_eq!(plan.kind, ProvisionedBy::UserFlow);
        assert!(plan.lookups.is_empty() && plan.writes.is_empty() && plan.grants.is_empty());
        assert_eq!(d.if_approved_facts.kind, Some(ProvisionedBy::UserFlow));
        assert!(d.if_approved_facts.grants.is_empty());
        assert_eq!(
            d.if_approved,
            "Approve lets Linnéa Öberg finish their sign-up; Entra creates their account then"
        );
    }

    /// Issue 17: a request stored from Microsoft's documented `OnAttributeCollectionSubmit`
    /// example (an external tenant's local e-mail account: signInType `email`, issuer the
    /// tenant's domain) shows the e-mail provider and how the person signs in, and no
    /// invitation: the plan is the user flow's. Before the fix it showed "Entra ID" with no
    /// identity (the desktop app then said "Approval sends an invitation").
    #[test]
    fn an_external_local_email_account_shows_its_provider_and_no_invitation() {
        let path = format!(
            "{}/../../tests/fixtures/external-id/submit.request.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let event: guestlist_core::extension::ExtensionRequest =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let claims = event.to_claims().unwrap();
        let key = guestlist_core::model::IdentityKey::of(&claims);
        let request: ApprovalRequest = serde_json::from_value(serde_json::json!({
            "id": "0190c0de-0000-7000-8000-000000000018",
            "key": key,
            "state": {"status": "pending"}, "version": 1, "attempts": 1, "flow": "external",
            "createdAt": "2026-11-30T20:00:00Z", "updatedAt": "2026-11-30T20:00:00Z",
            "claims": claims.to_json(),
        }))
        .unwrap();
        let d = external_detail(request, true);
        assert_eq!(d.identity.provider, "email");
        assert_eq!(d.identity.label, "Email (external tenant)");
        assert_eq!(
            d.identity.issuer.as_deref(),
            Some("contoso.onmicrosoft.com")
        );
        assert_eq!(d.identity.sign_in_type.as_deref(), Some("email"));
        assert_eq!(
            d.identity.issuer_assigned_id.as_deref(),
            Some("larissa.price@contoso.onmicrosoft.com")
        );
        assert_eq!(
            d.if_approved_facts.provider_label,
            "Email (external tenant)"
        );
        assert_eq!(d.if_approved_facts.kind, Some(ProvisionedBy::UserFlow));
        assert!(!d.if_approved_facts.sends_invitation);
        assert!(d.invitation.is_none(), "no invitation block");
        assert_eq!(
            d.if_approved,
            "Approve lets Larissa Price finish their sign-up; Entra creates their account then"
        );
        assert!(
            !d.if_approved.to_lowercase().contains("invit"),
            "{}",
            d.if_approved
        );
        let plan = d.plan.as_ref().unwrap();
        assert!(plan.writes.is_empty() && plan.lookups.is_empty());
        assert!(
            d.rows.iter().all(|r| r.will_be_written.is_none()),
            "nothing is written: {:?}",
            d.rows
        );
    }
}
