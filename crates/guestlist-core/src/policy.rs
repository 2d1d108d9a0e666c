//! Approval rules, block-page codes and the localised `userMessage` texts.
//!
//! The connector answers of seed `002_*` ("approval workflow") as Guestlist applies them:
//!
//! | connector | situation | answer |
//! |---|---|---|
//! | check approval status | no earlier request | `Continue` |
//! | check approval status | pending | `ShowBlockPage` `<PREFIX>-APPROVAL-PENDING` |
//! | check approval status | denied | `ShowBlockPage` `<PREFIX>-APPROVAL-DENIED` |
//! | check approval status | no earlier request, an auto-deny rule matches ([`Policy::early_block`]) | `ShowBlockPage` `<PREFIX>-APPROVAL-AUTO-DENIED` |
//! | request approval | auto-approved by a rule | `Continue` (the user flow creates the account) |
//! | request approval | auto-denied by a rule | `ShowBlockPage` `<PREFIX>-APPROVAL-AUTO-DENIED` |
//! | request approval | otherwise | store, `ShowBlockPage` `<PREFIX>-APPROVAL-REQUESTED` |
//!
//! Guestlist adds two codes the seed leaves open: `<PREFIX>-APPROVAL-APPROVED` (an approved user
//! signs up again instead of signing in or redeeming the invitation: a second account must not be
//! made) and `<PREFIX>-APPROVAL-EXPIRED` (nobody decided in time; configurable). And
//! `<PREFIX>-APPROVAL-EMAIL-REFUSED` at both steps: the e-mail has no canonical form
//! ([`crate::email`]: invisible or text-direction characters, an invalid domain), so nothing is
//! looked up or stored for it.
//!
//! `[[policy.grants]]` ([`GrantRule`], [`Policy::grants_for`]) say what approval grants besides
//! the account: group memberships, app roles and sponsors (issue 14 §1).
//!
//! Auto-approve needs a federated identity provider: its rules never match a user who arrives
//! without `identities` (Entra ID and Microsoft account users, whose `mail` attribute the admin
//! of any tenant can set) nor one whose issuer is an Entra ID authority; see
//! [`is_entra_provider`] and [`Policy::warnings`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::connector::{Claims, ConnectorResponse};
use crate::model::Grant;

mod routes;
pub use routes::RouteRule;

/// The default code prefix: codes read `GUESTLIST-APPROVAL-PENDING` etc.
pub const DEFAULT_CODE_PREFIX: &str = "GUESTLIST";

/// Which block page (or validation message) a connector answer shows. Each has a code suffix
/// and a localised default text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    /// The request was stored now and awaits approval (`-APPROVAL-REQUESTED`).
    Requested,
    /// An earlier request is still pending (`-APPROVAL-PENDING`).
    Pending,
    /// An approver denied the request (`-APPROVAL-DENIED`).
    Denied,
    /// A policy rule denied the request (`-APPROVAL-AUTO-DENIED`).
    AutoDenied,
    /// The request was approved already (`-APPROVAL-APPROVED`).
    Approved,
    /// Nobody decided in time (`-APPROVAL-EXPIRED`).
    Expired,
    /// The e-mail address has no canonical form: invisible or text-direction characters, or an
    /// invalid domain (`-APPROVAL-EMAIL-REFUSED`; [`crate::email`]).
    EmailRefused,
}

impl MessageKind {
    /// All kinds, in a fixed order.
    pub const ALL: [MessageKind; 7] = [
        MessageKind::Requested,
        MessageKind::Pending,
        MessageKind::Denied,
        MessageKind::AutoDenied,
        MessageKind::Approved,
        MessageKind::Expired,
        MessageKind::EmailRefused,
    ];

    /// The code suffix, e.g. `APPROVAL-PENDING`.
    pub fn code_suffix(self) -> &'static str {
        match self {
            MessageKind::Requested => "APPROVAL-REQUESTED",
            MessageKind::Pending => "APPROVAL-PENDING",
            MessageKind::Denied => "APPROVAL-DENIED",
            MessageKind::AutoDenied => "APPROVAL-AUTO-DENIED",
            MessageKind::Approved => "APPROVAL-APPROVED",
            MessageKind::Expired => "APPROVAL-EXPIRED",
            MessageKind::EmailRefused => "APPROVAL-EMAIL-REFUSED",
        }
    }

    /// The built-in text in `lang` (`en`, `fr`, `sv`); `None` for other languages.
    /// The English texts are the seed documents' own (`002_*`).
    pub fn builtin_text(self, lang: &str) -> Option<&'static str> {
        use MessageKind::*;
        Some(match (lang, self) {
            ("en", Requested) => {
                "Your account is now waiting for approval. You'll be notified when your request has been approved."
            }
            ("en", Pending) => {
                "Your access request is already processing. You'll be notified when your request has been approved."
            }
            ("en", Denied | AutoDenied) => {
                "Your sign up request has been denied. Please contact an administrator if you believe this is an error"
            }
            ("en", Approved) => {
                "Your access request has been approved. Sign in with the account you used, or accept the invitation that was sent to you."
            }
            ("en", Expired) => {
                "Your access request has expired because it was not reviewed in time. Please sign up again."
            }
            ("en", EmailRefused) => {
                "Your e-mail address cannot be accepted: it contains invisible or text-direction characters, or its domain is not valid. Please sign up with a plain e-mail address or contact an administrator."
            }
            ("fr", EmailRefused) => {
                "Votre adresse e-mail ne peut pas être acceptée : elle contient des caractères invisibles ou de direction du texte, ou son domaine n’est pas valide. Inscrivez-vous avec une adresse simple ou contactez un administrateur."
            }
            ("sv", EmailRefused) => {
                "Din e-postadress kan inte godtas: den innehåller osynliga tecken eller textriktningstecken, eller så är domänen ogiltig. Registrera dig med en vanlig e-postadress eller kontakta en administratör."
            }
            ("fr", Requested) => {
                "Votre compte est maintenant en attente d’approbation. Vous serez averti lorsque votre demande aura été approuvée."
            }
            ("fr", Pending) => {
                "Votre demande d’accès est déjà en cours de traitement. Vous serez averti lorsque votre demande aura été approuvée."
            }
            ("fr", Denied | AutoDenied) => {
                "Votre demande d’inscription a été refusée. Contactez un administrateur si vous pensez qu’il s’agit d’une erreur."
            }
            ("fr", Approved) => {
                "Votre demande d’accès a été approuvée. Connectez-vous avec le compte utilisé, ou acceptez l’invitation qui vous a été envoyée."
            }
            ("fr", Expired) => {
                "Votre demande d’accès a expiré faute d’avoir été examinée à temps. Veuillez vous inscrire à nouveau."
            }
            ("sv", Requested) => {
                "Ditt konto väntar nu på godkännande. Du meddelas när din begäran har godkänts."
            }
            ("sv", Pending) => {
                "Din begäran om åtkomst behandlas redan. Du meddelas när din begäran har godkänts."
            }
            ("sv", Denied | AutoDenied) => {
                "Din registreringsbegäran har avslagits. Kontakta en administratör om du tror att detta är ett fel."
            }
            ("sv", Approved) => {
                "Din begäran om åtkomst har godkänts. Logga in med kontot du använde, eller acceptera inbjudan som skickades till dig."
            }
            ("sv", Expired) => {
                "Din begäran om åtkomst har gått ut eftersom den inte granskades i tid. Registrera dig igen."
            }
            _ => return None,
        })
    }
}

/// Picks the language for a `ui_locales` claim: the first of its space-separated BCP 47 tags
/// whose primary language has a text (override or built-in), else `en`.
///
/// `"fr-CA sv-SE"` → `fr`; `"de-DE sv-SE"` → `sv`; `"de-DE"` → `en`; `None` → `en`.
pub fn language_for(ui_locales: Option<&str>, available: &dyn Fn(&str) -> bool) -> String {
    ui_locales
        .unwrap_or_default()
        .split([' ', ','])
        .filter(|t| !t.is_empty())
        .map(|tag| {
            tag.split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .find(|lang| available(lang))
        .unwrap_or_else(|| "en".to_owned())
}

/// One auto-approve or auto-deny rule. A rule matches when every list it sets matches (an
/// empty list matches anything); a rule with both lists empty matches nothing.
///
/// TOML: `{ name = "partners", email_domains = ["fabrikam.com", "*.fabrikam.com"],
/// identity_providers = ["google.com"] }`. Providers are issuers (`google.com`, `facebook.com`,
/// `mail`), `email` for an external tenant's local e-mail accounts
/// ([`crate::provider::EMAIL_ACCOUNT`]), or `entra` for users without `identities`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for the audit trail.
    #[serde(default)]
    pub name: String,
    /// E-mail domains, compared in canonical form (NFKC, then IDNA UTS #46 to ASCII:
    /// [`crate::email::canonical_domain`]), so `Bücher.example` and `xn--bcher-kva.example` are
    /// one, and a fullwidth domain in a sign-up matches its plain form; `*.example.com` matches
    /// subdomains only.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Identity providers (issuer, `email` or `entra`), case-insensitive.
    #[serde(default)]
    pub identity_providers: Vec<String>,
}

impl Rule {
    /// Whether the rule matches these claims.
    pub fn matches(&self, claims: &Claims) -> bool {
        if self.email_domains.is_empty() && self.identity_providers.is_empty() {
            return false;
        }
        fields_match(&self.email_domains, &self.identity_providers, claims)
    }
}

/// The domain and provider halves of [`Rule::matches`] (each empty list matches anything).
fn fields_match(email_domains: &[String], identity_providers: &[String], claims: &Claims) -> bool {
    {
        let domain = claims.email_domain();
        let domain_ok =
            email_domains.is_empty() || email_domains.iter().any(|d| domain_matches(d, &domain));
        let provider = claims.identity_provider();
        let provider_ok = identity_providers.is_empty()
            || identity_providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&provider));
        domain_ok && provider_ok
    }
}

/// Whether a rule's domain pattern matches a sign-up's canonical domain. Both sides are in
/// canonical ASCII form; a pattern with no canonical form matches nothing.
fn domain_matches(pattern: &str, domain: &str) -> bool {
    let pattern = pattern.trim();
    let (wildcard, name) = match pattern.strip_prefix("*.") {
        Some(suffix) => (true, suffix),
        None => (false, pattern),
    };
    let Ok(name) = crate::email::canonical_domain(name) else {
        return false;
    };
    if wildcard {
        domain.len() > name.len()
            && domain.ends_with(&name)
            && domain[..domain.len() - name.len()].ends_with('.')
    } else {
        name == domain
    }
}

/// Whether an identity provider (as [`Claims::identity_provider`] names it) is Entra ID: `entra`
/// (no `identities` claim: Entra ID and Microsoft account users) or an issuer on an Entra ID /
/// Microsoft account authority (`login.microsoftonline.com`, `sts.windows.net`,
/// `login.microsoft.com`, `login.live.com` and the national clouds' `login.microsoftonline.us`,
/// `login.partner.microsoftonline.cn`). Such a user's `mail` is set by the admin of whatever
/// tenant they come from, so it proves nothing: auto-approve never matches them.
pub fn is_entra_provider(provider: &str) -> bool {
    let p = provider.trim().to_ascii_lowercase();
    if p == crate::connector::ENTRA_PROVIDER {
        return true;
    }
    let host = p
        .strip_prefix("https://")
        .or_else(|| p.strip_prefix("http://"))
        .unwrap_or(&p);
    let host = host.split(['/', ':']).next().unwrap_or_default();
    [
        "login.microsoftonline.com",
        "sts.windows.net",
        "login.microsoft.com",
        "login.live.com",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
    ]
    .iter()
    .any(|a| host == *a || host.ends_with(&format!(".{a}")))
}

/// The value of `sponsors` that names the approving approver (their `oid`).
pub const APPROVER_SPONSOR: &str = "approver";

/// One app role of a `[[policy.grants]]` rule: `{ resource_id = "<service principal object
/// id>", app_role_id = "<app role id>" }` (Graph `appRoleAssignment.resourceId` / `appRoleId`;
/// the nil GUID `00000000-0000-0000-0000-000000000000` is the application's default access).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleRef {
    /// The object id of the resource application's service principal.
    pub resource_id: String,
    /// The id of the app role (from the application's `appRoles`).
    pub app_role_id: String,
}

/// A `[[policy.grants]]` rule (issue 14 §1): what approval grants, besides the account, to the
/// sign-ups it matches. Match fields as [`Rule`]'s (`email_domains`, `identity_providers`) plus
/// `applications`: the connector call's `client_id` claim (the user flow's application),
/// compared case-insensitively. A rule matches when every list it sets matches; a rule that
/// sets none of the three matches nothing (validation refuses it). Then:
///
/// - `groups`: group object ids (`POST /groups/{id}/members/$ref`);
/// - `app_roles`: [`AppRoleRef`]s (`POST /users/{id}/appRoleAssignments`);
/// - `sponsors`: `"approver"` (the approving approver) or user object ids
///   (`POST /users/{id}/sponsors/$ref`).
///
/// Every matching rule applies ([`Policy::grants_for`]: the union, deduplicated).
///
/// TOML: `[[policy.grants]] name = "partners"; email_domains = ["fabrikam.com"];
/// groups = ["…"]; app_roles = [{ resource_id = "…", app_role_id = "…" }];
/// sponsors = ["approver"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRule {
    /// A name for operators and error messages.
    #[serde(default)]
    pub name: String,
    /// E-mail domains, as [`Rule::email_domains`].
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Identity providers, as [`Rule::identity_providers`].
    #[serde(default)]
    pub identity_providers: Vec<String>,
    /// Application (client) ids: the `client_id` claim of the connector call.
    #[serde(default)]
    pub applications: Vec<String>,
    /// Group object ids the guest becomes a member of.
    #[serde(default)]
    pub groups: Vec<String>,
    /// App roles assigned to the guest.
    #[serde(default)]
    pub app_roles: Vec<AppRoleRef>,
    /// Sponsors: `"approver"` or user object ids.
    #[serde(default)]
    pub sponsors: Vec<String>,
}

/// `true` for a GUID in its 8-4-4-4-12 hex form (the form Graph object ids take).
pub fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

impl GrantRule {
    /// Whether the rule matches these claims (see the type's docs).
    pub fn matches(&self, claims: &Claims) -> bool {
        if self.email_domains.is_empty()
            && self.identity_providers.is_empty()
            && self.applications.is_empty()
        {
            return false;
        }
        let app_ok = self.applications.is_empty()
            || claims.client_id.as_deref().is_some_and(|c| {
                self.applications
                    .iter()
                    .any(|a| a.trim().eq_ignore_ascii_case(c.trim()))
            });
        app_ok && fields_match(&self.email_domains, &self.identity_providers, claims)
    }

    /// The grants of this rule, in order: groups, app roles, sponsors.
    pub fn grants(&self) -> impl Iterator<Item = Grant> + '_ {
        let groups = self.groups.iter().map(|g| Grant::Group {
            group_id: g.trim().to_ascii_lowercase(),
        });
        let roles = self.app_roles.iter().map(|r| Grant::AppRole {
            resource_id: r.resource_id.trim().to_ascii_lowercase(),
            app_role_id: r.app_role_id.trim().to_ascii_lowercase(),
        });
        let sponsors = self.sponsors.iter().map(|s| {
            if s.trim().eq_ignore_ascii_case(APPROVER_SPONSOR) {
                Grant::ApproverSponsor
            } else {
                Grant::Sponsor {
                    sponsor_id: s.trim().to_ascii_lowercase(),
                }
            }
        });
        groups.chain(roles).chain(sponsors)
    }

    /// Checks the rule: a match field set, something granted, every id a GUID.
    ///
    /// Errors: a sentence naming the bad field and value.
    pub fn validate(&self) -> Result<(), String> {
        if self.email_domains.is_empty()
            && self.identity_providers.is_empty()
            && self.applications.is_empty()
        {
            return Err(
                "sets none of email_domains, identity_providers, applications, so it can never match"
                    .into(),
            );
        }
        if self.groups.is_empty() && self.app_roles.is_empty() && self.sponsors.is_empty() {
            return Err("sets none of groups, app_roles, sponsors, so it grants nothing".into());
        }
        let guid = |field: &str, v: &str| {
            if is_guid(v.trim()) {
                Ok(())
            } else {
                Err(format!(
                    "{field} must be a directory object id (a GUID such as 8e6a53b5-9f2c-4a4b-9d3e-2f1c7d8e9a0b), got {v:?}"
                ))
            }
        };
        for a in &self.applications {
            guid("applications", a)?;
        }
        for g in &self.groups {
            guid("groups", g)?;
        }
        for r in &self.app_roles {
            guid("app_roles.resource_id", &r.resource_id)?;
            guid("app_roles.app_role_id", &r.app_role_id)?;
        }
        for s in &self.sponsors {
            if !s.trim().eq_ignore_ascii_case(APPROVER_SPONSOR) {
                guid("sponsors (\"approver\" or an object id)", s)?;
            }
        }
        Ok(())
    }
}

impl Policy {
    /// The grants approval makes for a request with these claims: those of every
    /// [`GrantRule`] that matches, in rule order, each once (the union).
    pub fn grants_for(&self, claims: &Claims) -> Vec<Grant> {
        let mut out: Vec<Grant> = Vec::new();
        for g in self.grants.iter().filter(|g| g.matches(claims)) {
            for grant in g.grants() {
                if !out.contains(&grant) {
                    out.push(grant);
                }
            }
        }
        out
    }
}

/// What to do when a user whose request expired signs up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpiredBehaviour {
    /// Block with `-APPROVAL-EXPIRED` ("sign up again" means: contact us / try later).
    Block,
    /// Let them through check-status and store a fresh request at request-approval.
    #[default]
    AllowReRequest,
}

/// The approval policy: rules, code prefix, message overrides and expiry.
///
/// Config (TOML, `[policy]`): `code_prefix`, `auto_approve = [Rule…]`, `auto_deny = [Rule…]`,
/// `expire_after_days`, `expired`, `[policy.messages.<lang>] pending = "…"` overrides keyed
/// by [`MessageKind`] in kebab-case, `[[policy.grants]]` ([`GrantRule`], issue 14 §1) and
/// `[[policy.routes]]` ([`RouteRule`], issue 14 §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Code prefix, default `GUESTLIST`.
    pub code_prefix: String,
    /// Rules whose match lets the user through at once. Auto-deny wins when both match.
    pub auto_approve: Vec<Rule>,
    /// Rules whose match denies at once.
    pub auto_deny: Vec<Rule>,
    /// Pending requests expire after this many days (none: never).
    pub expire_after_days: Option<u32>,
    /// What an expired user meets when signing up again.
    pub expired: ExpiredBehaviour,
    /// Admin overrides: language → kind → text.
    pub messages: BTreeMap<String, BTreeMap<MessageKind, String>>,
    /// `[[policy.grants]]`: what approval grants besides the account ([`GrantRule`]).
    pub grants: Vec<GrantRule>,
    /// `[[policy.routes]]`: who sees and decides which requests ([`RouteRule`], issue 14 §2).
    pub routes: Vec<RouteRule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            code_prefix: DEFAULT_CODE_PREFIX.to_owned(),
            auto_approve: Vec::new(),
            auto_deny: Vec::new(),
            expire_after_days: None,
            expired: ExpiredBehaviour::default(),
            messages: BTreeMap::new(),
            grants: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// What the rules say about a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOutcome {
    /// Let through; the named rule matched.
    AutoApprove(String),
    /// Deny; the named rule matched.
    AutoDeny(String),
    /// Store and wait for an approver.
    Manual,
}

impl Policy {
    /// Evaluates the rules for these claims (auto-deny first).
    pub fn evaluate(&self, claims: &Claims) -> RuleOutcome {
        if let Some((i, r)) = self
            .auto_deny
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(claims))
        {
            return RuleOutcome::AutoDeny(rule_name(r, "auto_deny", i));
        }
        // Auto-approve needs a federated identity provider (module docs).
        if is_entra_provider(&claims.identity_provider()) {
            return RuleOutcome::Manual;
        }
        if let Some((i, r)) = self
            .auto_approve
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(claims))
        {
            return RuleOutcome::AutoApprove(rule_name(r, "auto_approve", i));
        }
        RuleOutcome::Manual
    }

    /// The early block (issue 14 §4): the name of the first auto-deny rule matching a sign-up
    /// at "check approval status", right after the identity provider sign-in, so a blocked
    /// person is refused (`<PREFIX>-APPROVAL-AUTO-DENIED`) before the attribute page. Rules
    /// match on what that step receives — the canonical e-mail domain and the identity provider
    /// ([`Rule::matches`]) — and on nothing the person types on the attribute page; should a
    /// rule field about collected attributes ever be added, this must leave it out. Nothing is
    /// stored at this step: the same rule refuses again at every attempt, and "request
    /// approval" still stores an auto-denied request if that step is reached.
    pub fn early_block(&self, claims: &Claims) -> Option<String> {
        self.auto_deny
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(claims))
            .map(|(i, r)| rule_name(r, "auto_deny", i))
    }

    /// The full code of a kind, e.g. `GUESTLIST-APPROVAL-PENDING`.
    pub fn code(&self, kind: MessageKind) -> String {
        format!("{}-{}", self.code_prefix, kind.code_suffix())
    }

    /// The `userMessage` for a kind in the language of `ui_locales` (override first, then the
    /// built-in text; English when neither exists).
    pub fn message(&self, kind: MessageKind, ui_locales: Option<&str>) -> String {
        let lang = language_for(ui_locales, &|l| {
            self.messages.get(l).is_some_and(|m| m.contains_key(&kind))
                || kind.builtin_text(l).is_some()
        });
        self.messages
            .get(&lang)
            .and_then(|m| m.get(&kind))
            .cloned()
            .or_else(|| kind.builtin_text(&lang).map(str::to_owned))
            .unwrap_or_default()
    }

    /// The `ShowBlockPage` answer of a kind, localised for `ui_locales`.
    pub fn block(&self, kind: MessageKind, ui_locales: Option<&str>) -> ConnectorResponse {
        ConnectorResponse::ShowBlockPage {
            user_message: self.message(kind, ui_locales),
            code: Some(self.code(kind)),
        }
    }

    /// Checks the configuration: a non-empty prefix of `A-Z 0-9 -`, rules that can match.
    ///
    /// Errors: a sentence naming the bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.code_prefix.is_empty()
            || !self
                .code_prefix
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(format!(
                "policy.code_prefix must be upper-case letters, digits, '-' or '_', got {:?}",
                self.code_prefix
            ));
        }
        for (list, rules) in [
            ("auto_approve", &self.auto_approve),
            ("auto_deny", &self.auto_deny),
        ] {
            for (i, r) in rules.iter().enumerate() {
                if r.email_domains.is_empty() && r.identity_providers.is_empty() {
                    return Err(format!(
                        "policy.{list}[{i}] sets neither email_domains nor identity_providers, so it can never match"
                    ));
                }
            }
        }
        for (i, g) in self.grants.iter().enumerate() {
            g.validate()
                .map_err(|e| format!("policy.grants[{i}] ({}): {e}", g.name))?;
        }
        for (i, r) in self.routes.iter().enumerate() {
            r.validate()
                .map_err(|e| format!("policy.routes[{i}] ({}): {e}", r.name))?;
            if self.routes[..i].iter().any(|o| o.name == r.name) {
                return Err(format!(
                    "policy.routes[{i}]: the name {:?} is used twice",
                    r.name
                ));
            }
        }
        Ok(())
    }
}

impl Policy {
    /// Start-up warnings about the rules (the server logs each at WARN): every auto-approve rule
    /// that could match an Entra ID user (no `identity_providers` list, or one naming `entra`
    /// or an Entra ID authority). Guestlist never auto-approves those users (their `mail` can be
    /// set by any tenant's admin); such a rule sends them to manual approval instead. Also every
    /// domain that has no canonical form (it can never match), and every `identity_providers`
    /// entry of any rule list that names a tenant's own domain ([`names_a_tenant_domain`]).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = tenant_domain_warnings(self);
        for (i, r) in self.auto_approve.iter().enumerate() {
            let name = rule_name(r, "auto_approve", i);
            if r.identity_providers.is_empty()
                || r.identity_providers.iter().any(|p| is_entra_provider(p))
            {
                out.push(format!(
                    "policy.auto_approve rule {name:?} could match Entra ID and Microsoft account users, whose e-mail any tenant admin can set: Guestlist never auto-approves them (they wait for an approver); list the other identity_providers (google.com, facebook.com, mail, email) to make this explicit"
                ));
            }
        }
        for (list, rules) in [
            ("auto_approve", &self.auto_approve),
            ("auto_deny", &self.auto_deny),
        ] {
            for (i, r) in rules.iter().enumerate() {
                for d in &r.email_domains {
                    let name = d.trim().strip_prefix("*.").unwrap_or(d.trim());
                    if crate::email::canonical_domain(name).is_err() {
                        out.push(format!(
                            "policy.{list} rule {:?}: the domain {d:?} is not a valid domain name and never matches",
                            rule_name(r, list, i)
                        ));
                    }
                }
            }
        }
        out
    }
}

/// `true` when an `identity_providers` entry is an Entra tenant's own domain
/// (`*.onmicrosoft.com`, `*.ciamlogin.com`): the issuer of an external tenant's local
/// accounts, which Guestlist files under `email` ([`crate::provider::EMAIL_ACCOUNT`]), so such an
/// entry never matches.
pub fn names_a_tenant_domain(provider: &str) -> bool {
    let p = provider.trim().to_ascii_lowercase();
    [".onmicrosoft.com", ".ciamlogin.com"]
        .iter()
        .any(|suffix| p.ends_with(suffix) && p.len() > suffix.len())
}

/// The warnings of [`names_a_tenant_domain`] entries, in every rule list that has
/// `identity_providers` (auto-approve, auto-deny, grants, routes).
fn tenant_domain_warnings(policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |list: &str, i: usize, name: &str, providers: &[String]| {
        for p in providers.iter().filter(|p| names_a_tenant_domain(p)) {
            out.push(format!(
                "policy.{list}[{i}] ({name}): identity provider {p:?} is a tenant's own domain and never matches; an external tenant's local e-mail accounts (e-mail + password or e-mail one-time passcode) are matched by \"email\""
            ));
        }
    };
    for (i, r) in policy.auto_approve.iter().enumerate() {
        check("auto_approve", i, &r.name, &r.identity_providers);
    }
    for (i, r) in policy.auto_deny.iter().enumerate() {
        check("auto_deny", i, &r.name, &r.identity_providers);
    }
    for (i, r) in policy.grants.iter().enumerate() {
        check("grants", i, &r.name, &r.identity_providers);
    }
    for (i, r) in policy.routes.iter().enumerate() {
        check("routes", i, &r.name, &r.identity_providers);
    }
    out
}

fn rule_name(rule: &Rule, list: &str, index: usize) -> String {
    if rule.name.is_empty() {
        format!("{list}[{index}]")
    } else {
        rule.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(email: &str, issuer: Option<&str>) -> Claims {
        let mut v = json!({ "email": email });
        if let Some(i) = issuer {
            v["identities"] = json!([{"signInType":"federated","issuer":i,"issuerAssignedId":"1"}]);
        }
        Claims::from_json(v).unwrap()
    }

    #[test]
    fn rules_match_domains_and_providers() {
        let p = Policy {
            auto_approve: vec![Rule {
                name: "partners".into(),
                email_domains: vec!["fabrikam.com".into(), "*.contoso.com".into()],
                identity_providers: vec![],
            }],
            auto_deny: vec![Rule {
                name: String::new(),
                email_domains: vec!["spam.example".into()],
                identity_providers: vec![],
            }],
            ..Policy::default()
        };
        assert_eq!(
            p.evaluate(&claims("a@Fabrikam.com", Some("google.com"))),
            RuleOutcome::AutoApprove("partners".into())
        );
        assert_eq!(
            p.evaluate(&claims("a@eu.contoso.com", Some("mail"))),
            RuleOutcome::AutoApprove("partners".into())
        );
        assert_eq!(
            p.evaluate(&claims("a@contoso.com", Some("mail"))),
            RuleOutcome::Manual
        );
        assert_eq!(
            p.evaluate(&claims("a@xcontoso.com", Some("mail"))),
            RuleOutcome::Manual
        );
        assert_eq!(
            p.evaluate(&claims("a@spam.example", None)),
            RuleOutcome::AutoDeny("auto_deny[0]".into())
        );
        let by_provider = Rule {
            name: "fb".into(),
            email_domains: vec![],
            identity_providers: vec!["facebook.com".into(), "entra".into()],
        };
        assert!(by_provider.matches(&claims("x@y.z", Some("Facebook.com"))));
        assert!(by_provider.matches(&claims("x@y.z", None)));
        assert!(!by_provider.matches(&claims("x@y.z", Some("google.com"))));
    }

    #[test]
    fn rules_match_the_canonical_domain() {
        let p = Policy {
            auto_approve: vec![Rule {
                name: "books".into(),
                email_domains: vec!["Bücher.example".into()],
                identity_providers: vec!["google.com".into()],
            }],
            auto_deny: vec![Rule {
                name: "spam".into(),
                email_domains: vec!["spam.example".into(), "*.Spam.Example".into()],
                identity_providers: vec![],
            }],
            ..Policy::default()
        };
        for email in [
            "x@ｓｐａｍ．ｅｘａｍｐｌｅ",
            "x@SPAM.example",
            "x@ｅｕ.spam.example",
            "x@spam\u{FF0E}example",
        ] {
            assert_eq!(
                p.evaluate(&claims(email, Some("google.com"))),
                RuleOutcome::AutoDeny("spam".into()),
                "{email:?}"
            );
        }
        assert_eq!(
            p.evaluate(&claims("x@xn--bcher-kva.example", Some("google.com"))),
            RuleOutcome::AutoApprove("books".into())
        );
        assert_eq!(
            p.evaluate(&claims("x@ＢÜＣＨＥＲ.example", Some("google.com"))),
            RuleOutcome::AutoApprove("books".into())
        );
    }

    #[test]
    fn auto_approve_never_matches_entra_id_users() {
        let p = Policy {
            auto_approve: vec![
                Rule {
                    name: "partners".into(),
                    email_domains: vec!["fabrikam.com".into()],
                    identity_providers: vec![],
                },
                Rule {
                    name: "entra".into(),
                    email_domains: vec![],
                    identity_providers: vec!["entra".into()],
                },
            ],
            ..Policy::default()
        };
        assert_eq!(
            p.evaluate(&claims("a@fabrikam.com", None)),
            RuleOutcome::Manual
        );
        assert_eq!(
            p.evaluate(&claims(
                "a@fabrikam.com",
                Some("https://login.microsoftonline.com/0000/v2.0")
            )),
            RuleOutcome::Manual
        );
        assert_eq!(
            p.evaluate(&claims("a@fabrikam.com", Some("mail"))),
            RuleOutcome::AutoApprove("partners".into())
        );
        let warnings = p.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("\"partners\"") && warnings[0].contains("Entra ID"));
        let federated = Policy {
            auto_approve: vec![Rule {
                name: "google".into(),
                email_domains: vec!["fabrikam.com".into()],
                identity_providers: vec!["google.com".into()],
            }],
            ..Policy::default()
        };
        assert!(federated.warnings().is_empty());
        assert!(is_entra_provider("https://sts.windows.net/abc/"));
        assert!(!is_entra_provider(crate::provider::EMAIL_ACCOUNT));
        assert!(!is_entra_provider("google.com"));
        assert!(!is_entra_provider(
            "https://evil.example/login.microsoftonline.com"
        ));
    }

    #[test]
    fn messages_are_localised_and_overridable() {
        let mut p = Policy::default();
        assert!(
            p.message(MessageKind::Pending, Some("fr-FR"))
                .starts_with("Votre demande")
        );
        assert!(
            p.message(MessageKind::Pending, Some("de-DE sv-SE"))
                .starts_with("Din begäran")
        );
        assert!(
            p.message(MessageKind::Pending, Some("de-DE"))
                .starts_with("Your access")
        );
        assert!(
            p.message(MessageKind::Pending, None)
                .starts_with("Your access")
        );
        p.messages.insert(
            "de".into(),
            BTreeMap::from([(MessageKind::Pending, "Ihre Anfrage wird bearbeitet.".into())]),
        );
        assert_eq!(
            p.message(MessageKind::Pending, Some("de-AT")),
            "Ihre Anfrage wird bearbeitet."
        );
        // German has no Denied text: falls back to English, not to an empty string.
        assert!(
            p.message(MessageKind::Denied, Some("de-AT"))
                .starts_with("Your sign up")
        );
        for kind in MessageKind::ALL {
            for lang in ["en", "fr", "sv"] {
                assert!(kind.builtin_text(lang).is_some(), "{kind:?} {lang}");
            }
        }
        assert_eq!(
            p.code(MessageKind::AutoDenied),
            "GUESTLIST-APPROVAL-AUTO-DENIED"
        );
    }

    #[test]
    fn early_block_uses_the_auto_deny_rules_only() {
        let p = Policy {
            auto_approve: vec![Rule {
                name: "partners".into(),
                email_domains: vec!["fabrikam.com".into()],
                identity_providers: vec!["google.com".into()],
            }],
            auto_deny: vec![
                Rule {
                    name: String::new(),
                    email_domains: vec!["*.spam.example".into()],
                    identity_providers: vec![],
                },
                Rule {
                    name: "no-facebook".into(),
                    email_domains: vec![],
                    identity_providers: vec!["facebook.com".into()],
                },
            ],
            ..Policy::default()
        };
        assert_eq!(
            p.early_block(&claims("x@EU.spam.example", Some("google.com"))),
            Some("auto_deny[0]".into())
        );
        assert_eq!(
            p.early_block(&claims("x@fabrikam.com", Some("facebook.com"))),
            Some("no-facebook".into())
        );
        assert_eq!(
            p.early_block(&claims("x@fabrikam.com", Some("google.com"))),
            None
        );
    }

    #[test]
    fn validation_rejects_bad_prefix_and_empty_rules() {
        let mut p = Policy {
            code_prefix: "bad prefix".into(),
            ..Policy::default()
        };
        assert!(p.validate().is_err());
        p.code_prefix = "CONTOSO".into();
        assert!(p.validate().is_ok());
        p.auto_deny.push(Rule::default());
        assert!(p.validate().unwrap_err().contains("auto_deny[0]"));
    }

    const G1: &str = "0b8f5c3e-1d2a-4e6f-9a7b-3c4d5e6f7a81";
    const G2: &str = "0b8f5c3e-1d2a-4e6f-9a7b-3c4d5e6f7a82";
    const SP: &str = "5a1e2d3c-4b5a-4968-8776-655443322110";
    const ROLE: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
    const APP: &str = "c0ffee00-1234-4abc-8def-0123456789ab";

    fn grants_policy() -> Policy {
        let toml_like = json!({
            "grants": [
                {"name": "partners", "email_domains": ["fabrikam.com"],
                 "groups": [G1], "app_roles": [{"resource_id": SP, "app_role_id": ROLE}],
                 "sponsors": ["approver"]},
                {"name": "portal users", "applications": [APP],
                 "groups": [G1.to_uppercase(), G2], "sponsors": ["Approver"]},
                {"name": "google partners", "email_domains": ["fabrikam.com"],
                 "identity_providers": ["google.com"], "applications": [APP], "groups": [G2]}
            ]
        });
        serde_json::from_value(toml_like).unwrap()
    }

    fn with_app(mut c: Claims, app: &str) -> Claims {
        c.client_id = Some(app.into());
        c
    }

    #[test]
    fn every_matching_grant_applies_once() {
        let p = grants_policy();
        assert!(p.validate().is_ok(), "{:?}", p.validate());
        // Domain only: the first rule.
        let g = p.grants_for(&claims("ada@Fabrikam.com", Some("facebook.com")));
        assert_eq!(
            g,
            vec![
                Grant::Group {
                    group_id: G1.into()
                },
                Grant::AppRole {
                    resource_id: SP.into(),
                    app_role_id: ROLE.into()
                },
                Grant::ApproverSponsor,
            ]
        );
        // Domain + app + provider: all three rules, the union without duplicates (G1 in two
        // rules, one in upper case; the approver sponsor in two).
        let g = p.grants_for(&with_app(
            claims("ada@fabrikam.com", Some("google.com")),
            &APP.to_uppercase(),
        ));
        assert_eq!(g.len(), 4, "{g:?}");
        assert_eq!(
            g[3],
            Grant::Group {
                group_id: G2.into()
            }
        );
        // The application alone.
        let g = p.grants_for(&with_app(claims("x@other.example", None), APP));
        assert_eq!(g.len(), 3, "{g:?}");
        // Nothing matches: another app, another domain.
        assert!(
            p.grants_for(&with_app(claims("x@other.example", None), G1))
                .is_empty()
        );
        // The application rule needs the claim: without `client_id` it does not match.
        assert!(p.grants_for(&claims("x@other.example", None)).is_empty());
        // The wire form.
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            json!([{"kind":"group","groupId":G1},{"kind":"group","groupId":G2},{"kind":"approverSponsor"}])
        );
    }

    #[test]
    fn grant_validation_names_the_bad_field() {
        let bad = |v: serde_json::Value| {
            let p: Policy = serde_json::from_value(json!({ "grants": [v] })).unwrap();
            p.validate().unwrap_err()
        };
        let e = bad(json!({"name":"g","email_domains":["a.example"],"groups":["Partners"]}));
        assert!(
            e.starts_with("policy.grants[0] (g): groups must be a directory object id")
                && e.contains("\"Partners\""),
            "{e}"
        );
        let e = bad(
            json!({"email_domains":["a.example"],"app_roles":[{"resource_id":SP,"app_role_id":"reader"}]}),
        );
        assert!(e.contains("app_roles.app_role_id"), "{e}");
        let e = bad(json!({"email_domains":["a.example"],"sponsors":["ada@contoso.com"]}));
        assert!(e.contains("sponsors (\"approver\" or an object id)"), "{e}");
        let e = bad(json!({"applications":["portal"],"groups":[G1]}));
        assert!(e.contains("applications must be"), "{e}");
        let e = bad(json!({"groups":[G1]}));
        assert!(e.contains("can never match"), "{e}");
        let e = bad(json!({"email_domains":["a.example"]}));
        assert!(e.contains("grants nothing"), "{e}");
        // Unknown keys are refused (a typo never silently grants nothing).
        assert!(
            serde_json::from_value::<Policy>(
                json!({"grants":[{"email_domains":["a.example"],"group":[G1]}]})
            )
            .is_err()
        );
        assert!(is_guid(G1) && !is_guid("{0b8f5c3e-1d2a-4e6f-9a7b-3c4d5e6f7a81}"));
    }

    #[test]
    fn the_first_matching_route_wins() {
        let p: Policy = serde_json::from_value(json!({
            "routes": [
                {"name": "partners", "email_domains": ["fabrikam.com"], "role": "Approver.Partners",
                 "fallback_role": "Approver", "escalate_after_hours": 0.5, "approvals_required": 2},
                {"name": "portal", "applications": [APP], "role": "Approver.Portal"},
                {"name": "google", "identity_providers": ["google.com"], "role": "Approver.Google"}
            ]
        }))
        .unwrap();
        assert!(p.validate().is_ok(), "{:?}", p.validate());
        let route = |c: &Claims| p.route_for(c).map(|r| r.name.as_str());
        // Domain and app both match: the first rule wins.
        let both = with_app(claims("a@Fabrikam.com", Some("google.com")), APP);
        assert_eq!(route(&both), Some("partners"));
        assert_eq!(p.route_for(&both).unwrap().approvals_required, 2);
        assert_eq!(
            route(&with_app(
                claims("a@other.example", Some("google.com")),
                APP
            )),
            Some("portal")
        );
        assert_eq!(
            route(&claims("a@other.example", Some("google.com"))),
            Some("google")
        );
        assert_eq!(route(&claims("a@other.example", Some("mail"))), None);
        let partners = p.route("partners").unwrap();
        assert_eq!(
            partners.escalation_delay(),
            Some(time::Duration::minutes(30))
        );
        assert_eq!(p.route("portal").unwrap().escalation_delay(), None);
        assert_eq!(p.route("portal").unwrap().approvals_required, 1);
    }

    #[test]
    fn route_validation_names_the_bad_field() {
        let bad = |v: serde_json::Value| {
            let p: Policy = serde_json::from_value(json!({ "routes": v })).unwrap();
            p.validate().unwrap_err()
        };
        let ok = json!({"name": "r", "email_domains": ["a.example"], "role": "Approver.R"});
        let with = |k: &str, v: serde_json::Value| {
            let mut r = ok.clone();
            r[k] = v;
            json!([r])
        };
        assert!(
            bad(with("approvals_required", json!(3))).contains("approvals_required must be 1 or 2")
        );
        assert!(bad(with("role", json!(" "))).contains("needs a role"));
        assert!(bad(with("name", json!(""))).contains("needs a name"));
        assert!(bad(with("escalate_after_hours", json!(4))).contains("needs a fallback_role"));
        assert!(
            bad(with("fallback_role", json!("Approver"))).contains("needs escalate_after_hours")
        );
        let mut neg = ok.clone();
        neg["fallback_role"] = json!("Approver");
        neg["escalate_after_hours"] = json!(-1.0);
        assert!(bad(json!([neg.clone()])).contains("positive number of hours"));
        // An enormous delay would overflow "now minus the delay" (a panic in every list).
        neg["escalate_after_hours"] = json!(1e300);
        assert!(bad(json!([neg])).contains("up to 87600 (ten years)"));
        assert!(bad(json!([{"name": "r", "role": "A"}])).contains("can never match"));
        assert!(bad(json!([ok, ok])).contains("used twice"));
        assert!(bad(with("applications", json!(["portal"]))).contains("applications must be"));
        // Unknown keys are refused.
        assert!(
            serde_json::from_value::<Policy>(json!({"routes": [{"name": "r", "role": "A", "email_domains": ["a.example"], "roles": ["B"]}]}))
                .is_err()
        );
    }

    /// Issue 17: an external tenant's local e-mail account (the identity the custom
    /// authentication extensions send, issuer the tenant's domain) is the provider `email`:
    /// a rule naming `email` matches it, one naming the workforce OTP issuer `mail` or the
    /// tenant's domain does not (and the latter is warned about at start).
    #[test]
    fn local_email_accounts_match_the_email_provider() {
        let local = Claims::from_json(json!({"email": "ann@fabrikam.com", "identities": [
            {"signInType": "email", "issuer": "woodgrove.onmicrosoft.com", "issuerAssignedId": "ann@fabrikam.com"}]}))
        .unwrap();
        let rule = |p: &str| Rule {
            name: p.into(),
            email_domains: vec!["fabrikam.com".into()],
            identity_providers: vec![p.into()],
        };
        assert!(rule("email").matches(&local));
        assert!(rule("EMAIL").matches(&local));
        assert!(!rule("mail").matches(&local));
        assert!(!rule("woodgrove.onmicrosoft.com").matches(&local));
        assert!(!rule("email").matches(&claims("ann@fabrikam.com", Some("mail"))));
        let p = Policy {
            auto_approve: vec![rule("email")],
            auto_deny: vec![rule("woodgrove.onmicrosoft.com")],
            routes: vec![
                serde_json::from_value(json!({"name": "customers", "role": "Approver.Customers",
                    "identity_providers": ["woodgrove.ciamlogin.com"]}))
                .unwrap(),
            ],
            ..Policy::default()
        };
        // The auto-deny rule names the tenant's domain: it never matches, the `email` rule does.
        assert_eq!(p.evaluate(&local), RuleOutcome::AutoApprove("email".into()));
        let warnings = p.warnings();
        let tenant: Vec<&String> = warnings
            .iter()
            .filter(|w| w.contains("tenant's own domain"))
            .collect();
        assert_eq!(tenant.len(), 2, "{warnings:?}");
        assert!(tenant[0].starts_with("policy.auto_deny[0] (woodgrove.onmicrosoft.com)"));
        assert!(tenant[1].starts_with("policy.routes[0] (customers)"));
        assert!(tenant[1].contains("\"email\""));
        assert!(!names_a_tenant_domain("onmicrosoft.com"));
        assert!(!names_a_tenant_domain("google.com"));
        assert!(names_a_tenant_domain(" Woodgrove.CIAMLOGIN.com "));
    }
}
