//! `[[policy.routes]]` (issue 14 §2-3): which approvers see and decide which requests, and how
//! many approvals a request needs ([`RouteRule`], [`Policy::route_for`]).

use serde::{Deserialize, Serialize};

use super::{GrantRule, Policy, is_guid};
use crate::connector::Claims;

/// A `[[policy.routes]]` rule (issue 14 §2): which approvers see and decide the requests it
/// matches. Match fields as [`GrantRule`]'s (`email_domains`, `identity_providers`,
/// `applications`; every list it sets must match, one that sets none matches nothing). The first
/// matching rule routes the request, when it is created; a request no rule matches is
/// "unrouted" and goes to the plain approver role (`approver_auth.required_role`). The admin role
/// sees every request.
///
/// - `role`: the app role (Entra app roles assigned to groups) an approver must hold to see and
///   decide the route's requests, e.g. `Approver.Partners`.
/// - `fallback_role` and `escalate_after_hours`: a request still pending that many hours after
///   it was created is also seen (and decided) by holders of `fallback_role`. Hours may be
///   fractional.
/// - `approvals_required`: 1 (default) or 2 distinct approvers (issue 14 §3).
///
/// TOML: `[[policy.routes]] name = "partners"; email_domains = ["fabrikam.com"];
/// role = "Approver.Partners"; fallback_role = "Approver"; escalate_after_hours = 48;
/// approvals_required = 2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// The route's name: stored with each request it routes (`route` in the approver API).
    pub name: String,
    /// E-mail domains, as [`super::Rule::email_domains`].
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Identity providers, as [`super::Rule::identity_providers`].
    #[serde(default)]
    pub identity_providers: Vec<String>,
    /// Application (client) ids, as [`GrantRule::applications`].
    #[serde(default)]
    pub applications: Vec<String>,
    /// The app role that sees and decides the route's requests.
    pub role: String,
    /// The app role that also sees them once escalated.
    #[serde(default)]
    pub fallback_role: Option<String>,
    /// Hours a request may stay pending before it escalates to `fallback_role`.
    #[serde(default)]
    pub escalate_after_hours: Option<f64>,
    /// Distinct approvals needed: 1 or 2.
    #[serde(default = "one_approval")]
    pub approvals_required: u8,
}

fn one_approval() -> u8 {
    1
}

impl RouteRule {
    /// Whether the rule matches these claims (as [`GrantRule::matches`]).
    pub fn matches(&self, claims: &Claims) -> bool {
        GrantRule {
            email_domains: self.email_domains.clone(),
            identity_providers: self.identity_providers.clone(),
            applications: self.applications.clone(),
            ..GrantRule::default()
        }
        .matches(claims)
    }

    /// The longest `escalate_after_hours` accepted: ten years (87,600 hours). A longer delay never
    /// escalates in practice, and "now minus the delay" must stay a representable time.
    pub const MAX_ESCALATE_AFTER_HOURS: f64 = 87_600.0;

    /// How long a request of this route waits before it escalates to `fallback_role`; `None`
    /// when it never escalates (no fallback role or no delay).
    pub fn escalation_delay(&self) -> Option<time::Duration> {
        self.fallback_role.as_ref()?;
        let hours = self.escalate_after_hours?;
        (hours.is_finite() && hours > 0.0 && hours <= Self::MAX_ESCALATE_AFTER_HOURS)
            .then(|| time::Duration::seconds_f64(hours * 3600.0))
    }

    /// Checks the rule: a name, a role, a match field, `approvals_required` 1 or 2, a positive
    /// `escalate_after_hours` that comes with a `fallback_role`.
    ///
    /// Errors: a sentence naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("needs a name (stored with each request it routes)".into());
        }
        if self.role.trim().is_empty() {
            return Err("needs a role (the app role whose holders see the route)".into());
        }
        if self.email_domains.is_empty()
            && self.identity_providers.is_empty()
            && self.applications.is_empty()
        {
            return Err(
                "sets none of email_domains, identity_providers, applications, so it can never match"
                    .into(),
            );
        }
        for a in &self.applications {
            if !is_guid(a.trim()) {
                return Err(format!(
                    "applications must be application (client) ids (GUIDs), got {a:?}"
                ));
            }
        }
        if !matches!(self.approvals_required, 1 | 2) {
            return Err(format!(
                "approvals_required must be 1 or 2, got {}",
                self.approvals_required
            ));
        }
        match (self.escalate_after_hours, &self.fallback_role) {
            (Some(h), _) if !(h.is_finite() && h > 0.0 && h <= Self::MAX_ESCALATE_AFTER_HOURS) => {
                Err(format!(
                    "escalate_after_hours must be a positive number of hours up to {} (ten years), got {h}",
                    Self::MAX_ESCALATE_AFTER_HOURS
                ))
            }
            (Some(_), None) => Err("escalate_after_hours needs a fallback_role".into()),
            (None, Some(_)) => Err("fallback_role needs escalate_after_hours".into()),
            (_, Some(f)) if f.trim().is_empty() => Err("fallback_role is empty".into()),
            _ => Ok(()),
        }
    }
}

impl Policy {
    /// The route of a new request with these claims: the first [`RouteRule`] that matches, or
    /// `None` (unrouted).
    pub fn route_for(&self, claims: &Claims) -> Option<&RouteRule> {
        self.routes.iter().find(|r| r.matches(claims))
    }

    /// The route named `name`, if the policy still has it.
    pub fn route(&self, name: &str) -> Option<&RouteRule> {
        self.routes.iter().find(|r| r.name == name)
    }
}
