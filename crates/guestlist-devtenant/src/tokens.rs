//! Scope resolution and token contents, following "Access token claims reference" (v1.0 and
//! v2.0 claims, <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>),
//! "ID tokens", and "Scopes and permissions" (one resource per token, `.default`).
//!
//! Access tokens take the version of their resource, as Entra's do: v2.0 when the resource's
//! `requested_access_token_version` is 2, v1.0 when unset (the app manifest's
//! `accessTokenAcceptedVersion` null; "Microsoft identity platform application manifest",
//! <https://learn.microsoft.com/entra/identity-platform/reference-app-manifest>). ID tokens are
//! always v2.0 (the v2.0 endpoints issue them).

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::config::{ResourceConfig, UserConfig};
use crate::defaults as d;
use crate::state::Shared;

/// The OpenID Connect scopes that do not name a resource.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A `scope` parameter resolved against the configured resources.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedScopes {
    /// Index into `cfg.resources` of the one resource the token targets.
    pub resource: usize,
    /// Resource scope values (without the resource prefix), as configured.
    pub scopes: Vec<String>,
    /// Whether `{resource}/.default` was requested.
    pub default: bool,
    /// The OIDC scopes present (`openid`, `profile`, `email`, `offline_access`).
    pub oidc: BTreeSet<String>,
}

/// Why a `scope` parameter was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum ScopeError {
    /// Scopes of more than one resource (AADSTS28000).
    MultipleResources,
    /// A resource identifier that no resource has (AADSTS500011), with the identifier.
    UnknownResource(String),
    /// A scope value the resource does not define, or `.default` mixed with others (AADSTS70011).
    InvalidScope(String),
    /// No scope at all (AADSTS900144).
    Empty,
}

fn find_resource(resources: &[ResourceConfig], id: &str) -> Option<usize> {
    let id = id.trim_end_matches('/');
    resources.iter().position(|r| {
        r.identifiers
            .iter()
            .any(|i| i.trim_end_matches('/').eq_ignore_ascii_case(id))
    })
}

/// Resolves a space-separated `scope` parameter. Unqualified scope values (`User.Read`) mean
/// Microsoft Graph, as in Entra; a request with only OIDC scopes gets a Graph token for
/// `User.Read`.
///
/// # Errors
/// [`ScopeError`] as documented on its variants.
pub fn resolve_scopes(
    resources: &[ResourceConfig],
    graph_identifier: &str,
    scope: &str,
) -> Result<ResolvedScopes, ScopeError> {
    let mut oidc = BTreeSet::new();
    let mut resource: Option<usize> = None;
    let mut scopes: Vec<String> = Vec::new();
    let mut default = false;
    let mut any = false;
    for raw in scope.split_whitespace() {
        any = true;
        if let Some(s) = OIDC_SCOPES.iter().find(|s| s.eq_ignore_ascii_case(raw)) {
            oidc.insert((*s).to_string());
            continue;
        }
        let (idx, name) = match raw.rfind('/') {
            Some(pos) if pos > 0 => {
                let (prefix, name) = (&raw[..pos], &raw[pos + 1..]);
                let idx = find_resource(resources, prefix)
                    .ok_or_else(|| ScopeError::UnknownResource(prefix.to_string()))?;
                (idx, name)
            }
            _ => {
                let idx = find_resource(resources, graph_identifier)
                    .ok_or_else(|| ScopeError::InvalidScope(raw.to_string()))?;
                (idx, raw)
            }
        };
        if resource.is_some_and(|r| r != idx) {
            return Err(ScopeError::MultipleResources);
        }
        resource = Some(idx);
        if name == ".default" {
            default = true;
        } else {
            let res = &resources[idx];
            let canonical = res
                .scopes
                .iter()
                .find(|s| s.eq_ignore_ascii_case(name))
                .ok_or_else(|| ScopeError::InvalidScope(raw.to_string()))?;
            if !scopes.contains(canonical) {
                scopes.push(canonical.clone());
            }
        }
    }
    if !any {
        return Err(ScopeError::Empty);
    }
    if default && !scopes.is_empty() {
        return Err(ScopeError::InvalidScope(scope.to_string()));
    }
    let resource = match resource {
        Some(r) => r,
        None => {
            let idx = find_resource(resources, graph_identifier)
                .ok_or_else(|| ScopeError::InvalidScope(scope.to_string()))?;
            if resources[idx].scopes.iter().any(|s| s == "User.Read") {
                scopes.push("User.Read".into());
            }
            idx
        }
    };
    if default {
        scopes = resources[resource].scopes.clone();
    }
    Ok(ResolvedScopes {
        resource,
        scopes,
        default,
        oidc,
    })
}

impl ResolvedScopes {
    /// The `scope` member of the token response: resource scopes (short form for resources with
    /// [`ResourceConfig::short_scope_names`], else `{identifier}/{scope}`) followed by the OIDC
    /// scopes granted.
    pub fn response_scope(&self, resources: &[ResourceConfig]) -> String {
        let res = &resources[self.resource];
        let prefix = res
            .identifiers
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        let mut out: Vec<String> = self
            .scopes
            .iter()
            .map(|s| {
                if res.short_scope_names {
                    s.clone()
                } else {
                    format!("{prefix}/{s}")
                }
            })
            .collect();
        out.extend(self.oidc.iter().cloned());
        out.join(" ")
    }
}

/// Pairwise subject: unique per user and application, as Entra's `sub` (43 base64url chars).
pub fn pairwise_sub(oid: &str, client_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{oid}|{client_id}").as_bytes()))
}

fn uti() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

fn insert_roles(m: &mut Map<String, Value>, user: &UserConfig, res: &ResourceConfig) {
    let roles: Vec<&String> = user
        .app_roles
        .iter()
        .filter(|r| res.app_roles.contains(r))
        .collect();
    if !roles.is_empty() {
        m.insert("roles".into(), json!(roles));
    }
}

/// The `iss` of v1.0 access tokens of tenant `tid`: `https://sts.windows.net/{tid}/` (also
/// what Entra puts there for emulated tenants: clients and APIs match it literally).
pub fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}

/// Turns v2.0 access token claims into their v1.0 form for `res`: `iss` → [`v1_issuer`],
/// `aud` → the resource's first identifier (its app ID URI), `azp`/`azpacr` →
/// `appid`/`appidacr`, `preferred_username` → `upn` and `unique_name` (user tokens), `amr`
/// (user tokens), `ver: "1.0"`.
fn into_v1(mut m: Map<String, Value>, shared: &Shared, res: &ResourceConfig) -> Map<String, Value> {
    m.insert("iss".into(), json!(v1_issuer(&shared.cfg.tenant_id)));
    if let Some(uri) = res.identifiers.first() {
        m.insert("aud".into(), json!(uri));
    }
    if let Some(azp) = m.remove("azp") {
        m.insert("appid".into(), azp);
    }
    if let Some(acr) = m.remove("azpacr") {
        m.insert("appidacr".into(), acr);
    }
    if let Some(upn) = m.remove("preferred_username") {
        m.insert("unique_name".into(), upn.clone());
        m.insert("upn".into(), upn);
        m.insert("amr".into(), json!(["pwd"]));
    }
    m.insert("ver".into(), json!("1.0"));
    m
}

/// Claims of a delegated (user) access token. v2.0: `aud`, `iss`, `iat`, `nbf`, `exp`, `aio`,
/// `azp`, `azpacr` (`"0"` public client), `name`, `oid`, `preferred_username`, `rh`, `roles`
/// (when held), `scp`, `sid`, `sub`, `tid`, `uti`, `ver: "2.0"`, `wids` (directory roles).
/// v1.0 (the resource asks for no version, [`ResourceConfig::issues_v1_tokens`]): the same, with
/// the v1.0 names and values of `into_v1` (`iss` `https://sts.windows.net/{tid}/`, `appid`,
/// `upn`, …).
pub fn user_access_claims(
    shared: &Shared,
    user: &UserConfig,
    client_id: &str,
    rs: &ResolvedScopes,
    now: i64,
) -> Value {
    let res = &shared.cfg.resources[rs.resource];
    let mut m = Map::new();
    m.insert("aud".into(), json!(res.audience));
    m.insert("iss".into(), json!(shared.issuer()));
    m.insert("iat".into(), json!(now));
    m.insert("nbf".into(), json!(now));
    m.insert(
        "exp".into(),
        json!(now + shared.cfg.access_token_lifetime_secs as i64),
    );
    m.insert("aio".into(), json!(uti()));
    m.insert("azp".into(), json!(client_id));
    m.insert("azpacr".into(), json!("0"));
    m.insert("name".into(), json!(user.display_name));
    m.insert("oid".into(), json!(user.object_id));
    m.insert("preferred_username".into(), json!(user.upn));
    m.insert("rh".into(), json!(format!("0.{}.", uti())));
    insert_roles(&mut m, user, res);
    m.insert("scp".into(), json!(rs.scopes.join(" ")));
    m.insert("sid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert(
        "sub".into(),
        json!(pairwise_sub(&user.object_id, client_id)),
    );
    m.insert("tid".into(), json!(shared.cfg.tenant_id));
    m.insert("uti".into(), json!(uti()));
    m.insert("ver".into(), json!("2.0"));
    m.insert("wids".into(), wids(user));
    if res.issues_v1_tokens() {
        m = into_v1(m, shared, res);
    }
    Value::Object(m)
}

/// The `wids` claim as Entra emits it when the app registration's `groupMembershipClaims`
/// includes `DirectoryRole` (or `All`): the template IDs of the user's directory roles, plus
/// the default *User* role every member holds ([`d::ROLE_DEFAULT_USER`]).
pub fn wids(user: &UserConfig) -> Value {
    let mut w: Vec<&str> = user.directory_roles.iter().map(String::as_str).collect();
    if !w.contains(&d::ROLE_DEFAULT_USER) {
        w.push(d::ROLE_DEFAULT_USER);
    }
    json!(w)
}

/// Claims of an app-only (client credentials) access token: no `scp`, `roles` = the
/// client's application permissions on the resource, `oid`/`sub` = the client's service
/// principal (devtenant uses the client ID), `azpacr: "1"` (secret), `idtyp: "app"`; v1.0 names
/// (`appid`, `appidacr`, v1.0 `iss`) for a resource that asks for no version.
pub fn app_access_claims(
    shared: &Shared,
    client_id: &str,
    roles: &[String],
    res: &ResourceConfig,
    now: i64,
) -> Value {
    let mut m = Map::new();
    m.insert("aud".into(), json!(res.audience));
    m.insert("iss".into(), json!(shared.issuer()));
    m.insert("iat".into(), json!(now));
    m.insert("nbf".into(), json!(now));
    m.insert(
        "exp".into(),
        json!(now + shared.cfg.access_token_lifetime_secs as i64),
    );
    m.insert("aio".into(), json!(uti()));
    m.insert("azp".into(), json!(client_id));
    m.insert("azpacr".into(), json!("1"));
    m.insert("idtyp".into(), json!("app"));
    m.insert("oid".into(), json!(client_id));
    m.insert("rh".into(), json!(format!("0.{}.", uti())));
    if !roles.is_empty() {
        m.insert("roles".into(), json!(roles));
    }
    m.insert("sub".into(), json!(client_id));
    m.insert("tid".into(), json!(shared.cfg.tenant_id));
    m.insert("uti".into(), json!(uti()));
    m.insert("ver".into(), json!("2.0"));
    if res.issues_v1_tokens() {
        m = into_v1(m, shared, res);
    }
    Value::Object(m)
}

/// Claims of a v2.0 ID token: `aud` (the client), `iss`, `iat`, `nbf`, `exp`, `name` and
/// `preferred_username` (with `profile`), `email` (with `email`), `nonce` (when sent), `oid`,
/// `rh`, `sub` (pairwise), `tid`, `uti`, `ver: "2.0"`, `wids` ([`wids`]).
pub fn id_token_claims(
    shared: &Shared,
    user: &UserConfig,
    client_id: &str,
    rs: &ResolvedScopes,
    nonce: Option<&str>,
    now: i64,
) -> Value {
    let mut m = Map::new();
    m.insert("aud".into(), json!(client_id));
    m.insert("iss".into(), json!(shared.issuer()));
    m.insert("iat".into(), json!(now));
    m.insert("nbf".into(), json!(now));
    m.insert(
        "exp".into(),
        json!(now + shared.cfg.access_token_lifetime_secs as i64),
    );
    if rs.oidc.contains("profile") {
        m.insert("name".into(), json!(user.display_name));
        m.insert("preferred_username".into(), json!(user.upn));
    }
    if rs.oidc.contains("email") {
        m.insert("email".into(), json!(user.upn));
    }
    if let Some(n) = nonce {
        m.insert("nonce".into(), json!(n));
    }
    m.insert("oid".into(), json!(user.object_id));
    m.insert("rh".into(), json!(format!("0.{}.", uti())));
    m.insert(
        "sub".into(),
        json!(pairwise_sub(&user.object_id, client_id)),
    );
    m.insert("tid".into(), json!(shared.cfg.tenant_id));
    m.insert("uti".into(), json!(uti()));
    m.insert("ver".into(), json!("2.0"));
    m.insert("wids".into(), wids(user));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DevTenantConfig;
    use crate::defaults as d;

    #[test]
    fn scopes_resolve_to_one_resource() {
        let cfg = DevTenantConfig::default();
        let r = resolve_scopes(
            &cfg.resources,
            d::GRAPH_RESOURCE,
            "openid profile offline_access api://guestlist-approvals/Approvals.ReadWrite",
        )
        .unwrap();
        assert_eq!(cfg.resources[r.resource].audience, d::API_CLIENT_ID);
        assert_eq!(r.scopes, vec!["Approvals.ReadWrite".to_string()]);
        assert_eq!(
            r.response_scope(&cfg.resources),
            "api://guestlist-approvals/Approvals.ReadWrite offline_access openid profile"
        );
        let g = resolve_scopes(
            &cfg.resources,
            d::GRAPH_RESOURCE,
            "https://graph.microsoft.com/User.ReadWrite.All User.Invite.All",
        )
        .unwrap();
        assert_eq!(
            g.scopes,
            vec![
                "User.ReadWrite.All".to_string(),
                "User.Invite.All".to_string()
            ]
        );
        assert_eq!(
            g.response_scope(&cfg.resources),
            "User.ReadWrite.All User.Invite.All"
        );
        assert_eq!(
            resolve_scopes(
                &cfg.resources,
                d::GRAPH_RESOURCE,
                "api://guestlist-approvals/Approvals.ReadWrite User.Read"
            ),
            Err(ScopeError::MultipleResources)
        );
        assert_eq!(
            resolve_scopes(&cfg.resources, d::GRAPH_RESOURCE, "  "),
            Err(ScopeError::Empty)
        );
        assert!(matches!(
            resolve_scopes(&cfg.resources, d::GRAPH_RESOURCE, "api://nope/x"),
            Err(ScopeError::UnknownResource(_))
        ));
        assert!(matches!(
            resolve_scopes(
                &cfg.resources,
                d::GRAPH_RESOURCE,
                "api://guestlist-approvals/.default api://guestlist-approvals/Approvals.ReadWrite"
            ),
            Err(ScopeError::InvalidScope(_))
        ));
        let only_oidc = resolve_scopes(&cfg.resources, d::GRAPH_RESOURCE, "openid").unwrap();
        assert_eq!(only_oidc.scopes, vec!["User.Read".to_string()]);
    }

    #[test]
    fn pairwise_sub_differs_per_client() {
        assert_ne!(pairwise_sub(d::ADA_OID, "a"), pairwise_sub(d::ADA_OID, "b"));
        assert_eq!(pairwise_sub(d::ADA_OID, "a").len(), 43);
    }
}
