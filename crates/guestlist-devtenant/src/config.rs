//! devtenant configuration: the tenant, its users, app registrations, resources, throttling and
//! fault injection. Built in code by tests, or loaded from a TOML or JSON file
//! ([`DevTenantConfig::from_file`]). Unknown keys are rejected (`deny_unknown_fields`).
//!
//! [`DevTenantConfig::default`] is the demo tenant of [`crate::defaults`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::defaults as d;
use crate::error::DevTenantError;

/// The whole tenant. Every field has a default (the demo tenant), so a config file only lists
/// what it changes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DevTenantConfig {
    /// Directory (tenant) ID, a GUID (`tid` claim).
    pub tenant_id: String,
    /// Initial domain, e.g. `contoso.onmicrosoft.com`: valid `{tenant}` path segment and the
    /// only domain accepted in new `userPrincipalName` values.
    pub domain: String,
    /// Tenant display name shown on the sign-in page.
    pub tenant_name: String,
    /// Public base URL (scheme, host, port; no trailing slash) used in the issuer and every
    /// advertised endpoint. `None`: `http://{the bound address}`.
    pub public_base_url: Option<String>,
    /// Member users who can sign in (the approvers).
    pub users: Vec<UserConfig>,
    /// Public clients (mobile and desktop apps, no secret).
    pub public_clients: Vec<PublicClientConfig>,
    /// Confidential clients (`client_credentials` with a secret).
    pub confidential_clients: Vec<ConfidentialClientConfig>,
    /// Resources (web APIs) tokens can be issued for. Microsoft Graph is one of them.
    pub resources: Vec<ResourceConfig>,
    /// The `b2c-extensions-app` app ID, 32 hex digits: the only accepted
    /// `extension_{id}_{Name}` prefix on Graph.
    pub extensions_app_id: String,
    /// Access and ID token lifetime in seconds (Entra default: 3600 s, randomised 60–90 min
    /// in real tenants; devtenant uses exactly this value).
    pub access_token_lifetime_secs: u64,
    /// Authorization code lifetime in seconds (Entra: about 10 minutes).
    pub code_lifetime_secs: u64,
    /// Refresh token lifetime in seconds (Entra: 90 days sliding).
    pub refresh_token_lifetime_secs: u64,
    /// Whether redeeming a refresh token invalidates it (devtenant default `true`; real Entra
    /// keeps the old one valid until it expires).
    pub rotate_refresh_tokens: bool,
    /// Graph throttling (token bucket per app and tenant).
    pub throttle: ThrottleConfig,
    /// Graph fault injection at start; changeable at run time.
    pub faults: FaultConfig,
    /// Groups seeded into the directory (Graph `/groups`), with their initial members.
    pub groups: Vec<GroupConfig>,
    /// Service principals (enterprise applications) and the app roles they define: the
    /// `resourceId`/`appRoleId` targets of app role assignments.
    pub service_principals: Vec<ServicePrincipalConfig>,
    /// Workforce (the default) or external tenant ([`TenantKind`]).
    pub tenant_kind: TenantKind,
    /// The external tenant's settings (used when `tenant_kind = "external"`). TOML: `[external]`.
    pub external: ExternalConfig,
}

/// What kind of Entra tenant devtenant plays ("Workforce and external tenant configurations").
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TenantKind {
    /// A workforce tenant: self-service sign-up calls *API connectors*; sign-ups become guests.
    #[default]
    Workforce,
    /// An external tenant (Entra External ID for customers): sign-up user flows call *custom
    /// authentication extensions* and create *customer* accounts ([`crate::external`]); its
    /// customer authority is `https://{subdomain}.ciamlogin.com/{tid}/v2.0`.
    External,
}

/// An external tenant's settings. TOML: `[external]` with `subdomain = "contosocustomers"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalConfig {
    /// The tenant's subdomain: `{subdomain}.ciamlogin.com` hosts its customer authority and
    /// `{subdomain}.onmicrosoft.com` is its initial domain (customer UPNs, local-account
    /// `identities` issuer). One DNS label: lowercase ASCII letters, digits and `-`, 1–63 chars.
    pub subdomain: String,
}

impl Default for ExternalConfig {
    fn default() -> Self {
        Self {
            subdomain: d::EXTERNAL_SUBDOMAIN.into(),
        }
    }
}

/// A group of the directory ("group resource type"): a security group unless
/// `mail_enabled`/`group_types` say otherwise. TOML: `[[groups]]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Object ID (GUID): Graph `id`.
    pub object_id: String,
    /// `displayName`.
    pub display_name: String,
    /// `description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `mailNickname` (defaults to the display name without spaces).
    #[serde(default)]
    pub mail_nickname: Option<String>,
    /// `groupTypes`: empty for a security group, `["Unified"]` for a Microsoft 365 group.
    #[serde(default)]
    pub group_types: Vec<String>,
    /// `mailEnabled` (security groups: `false`).
    #[serde(default)]
    pub mail_enabled: bool,
    /// Initial members: object IDs of configured users, groups or service principals.
    #[serde(default)]
    pub members: Vec<String>,
}

/// A service principal with the app roles its application defines ("servicePrincipal resource
/// type", `appRoles`). TOML: `[[service_principals]]` with `[[service_principals.app_roles]]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServicePrincipalConfig {
    /// Object ID of the service principal (GUID): the `resourceId` of assignments.
    pub object_id: String,
    /// The application (client) ID (`appId`).
    pub app_id: String,
    /// `displayName` (the assignment's `resourceDisplayName`).
    pub display_name: String,
    /// App roles (`appRoles`).
    #[serde(default)]
    pub app_roles: Vec<AppRoleConfig>,
}

/// One app role of a service principal ("appRole resource type").
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppRoleConfig {
    /// The role's `id` (GUID): the `appRoleId` of assignments.
    pub id: String,
    /// `value` (what the `roles` claim carries, e.g. `Partner.Read`).
    pub value: String,
    /// `displayName`.
    pub display_name: String,
    /// `allowedMemberTypes`: `User` (users and groups) and/or `Application`.
    #[serde(default = "default_member_types")]
    pub allowed_member_types: Vec<String>,
}

fn default_member_types() -> Vec<String> {
    vec!["User".into()]
}

/// A member user of the tenant who can sign in at the authorize endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// `userPrincipalName` (sign-in name, `preferred_username` claim).
    pub upn: String,
    /// Object ID (GUID): `oid` claim and Graph `id`.
    pub object_id: String,
    /// Display name (`name` claim).
    pub display_name: String,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default)]
    pub surname: Option<String>,
    /// App roles the user holds on resources, by role value (e.g. `Approver`). A role appears in
    /// the `roles` claim of tokens for every resource that defines it.
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Directory role template IDs (`wids` claim), e.g.
    /// [`crate::defaults::ROLE_USER_ADMINISTRATOR`]; Graph checks them for user writes.
    #[serde(default)]
    pub directory_roles: Vec<String>,
}

/// A public client (mobile and desktop applications platform).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublicClientConfig {
    /// Application (client) ID.
    pub client_id: String,
    /// Display name shown on the sign-in page.
    pub name: String,
    /// Registered redirect URIs. Loopback (`127.0.0.1`, `[::1]`, `localhost`) URIs match on any
    /// port (RFC 8252 §7.3); a path ending in `*` matches any path with that prefix.
    pub redirect_uris: Vec<String>,
}

/// A confidential client that authenticates with a client secret.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfidentialClientConfig {
    /// Application (client) ID.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// The client secret (sent as `client_secret` in the body or with HTTP Basic).
    pub client_secret: String,
    /// Application permissions (app roles) granted on resources, keyed by a resource identifier
    /// (app ID URI or client ID); they become the `roles` claim of app-only tokens.
    #[serde(default)]
    pub app_permissions: std::collections::BTreeMap<String, Vec<String>>,
}

/// A resource (web API) that tokens can target.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Identifiers a client may use as the scope prefix: the app ID URI and/or client ID
    /// (e.g. `api://guestlist-approvals`, `https://graph.microsoft.com`).
    pub identifiers: Vec<String>,
    /// The `aud` claim of access tokens for it (Entra v2: the API's client ID; Graph:
    /// `https://graph.microsoft.com`).
    pub audience: String,
    /// Delegated permissions (scope values, `scp` claim).
    pub scopes: Vec<String>,
    /// App roles defined by the resource (user roles listed in [`UserConfig::app_roles`] show up
    /// in `roles` only if defined here).
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Whether scopes for this resource are reported in short form in the token response's
    /// `scope` (`User.Read` instead of `https://graph.microsoft.com/User.Read`), as Entra
    /// does for Microsoft Graph.
    #[serde(default)]
    pub short_scope_names: bool,
    /// The access token version the API's app registration asks for
    /// (`api.requestedAccessTokenVersion` on Graph, `accessTokenAcceptedVersion` in the
    /// manifest): `2` → v2.0 tokens; unset (or `1`) → v1.0 tokens, as Entra issues when the
    /// registration leaves it null: `iss` `https://sts.windows.net/{tid}/`, `aud` the first
    /// identifier (the app ID URI), `appid`/`appidacr` instead of `azp`/`azpacr`, `upn` and
    /// `unique_name` instead of `preferred_username`, `ver: "1.0"` ([`crate::tokens`]).
    #[serde(default)]
    pub requested_access_token_version: Option<u8>,
}

impl ResourceConfig {
    /// Whether access tokens for this resource are v1.0 (see
    /// [`ResourceConfig::requested_access_token_version`]).
    pub fn issues_v1_tokens(&self) -> bool {
        self.requested_access_token_version != Some(2)
    }
}

/// Graph throttling ("Microsoft Graph service-specific throttling limits", identity and access
/// service: 3,000 write requests per 2 min 30 s per app and tenant). A token bucket per
/// (`tid`, `azp`) refilled continuously.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Write requests (POST, PATCH, PUT, DELETE) allowed per window.
    pub write_limit: u32,
    /// Read requests (GET) allowed per window; `None` means reads are not throttled.
    pub read_limit: Option<u32>,
    /// The window in seconds.
    pub window_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            write_limit: d::GRAPH_WRITE_LIMIT,
            read_limit: None,
            window_secs: d::GRAPH_WINDOW_SECS,
        }
    }
}

/// Fault injection for Graph requests. Rates are probabilities in `0.0..=1.0` drawn from a
/// seeded RNG (reproducible for a given `seed` and request order). JSON shape (also the body of
/// `POST /_devtenant/faults`): `{"throttle_rate":0.1,"unavailable_rate":0.0,"latency_ms":0,
/// "drop_rate":0.0,"seed":42,"retry_after_secs":1}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Probability of answering 429 `TooManyRequests` (each `$batch` item draws on its own).
    pub throttle_rate: f64,
    /// Probability of answering 503 `serviceNotAvailable` (each `$batch` item draws on its own).
    pub unavailable_rate: f64,
    /// Extra latency added to every Graph HTTP request, in milliseconds.
    pub latency_ms: u64,
    /// Probability of closing the connection without any answer (per HTTP request).
    pub drop_rate: f64,
    /// RNG seed; setting faults re-seeds the RNG.
    pub seed: u64,
    /// `Retry-After` (seconds) sent with injected 429 and 503 answers.
    pub retry_after_secs: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            throttle_rate: 0.0,
            unavailable_rate: 0.0,
            latency_ms: 0,
            drop_rate: 0.0,
            seed: 0,
            retry_after_secs: 1,
        }
    }
}

impl FaultConfig {
    /// Checks that every rate is within `0.0..=1.0`.
    ///
    /// # Errors
    /// [`DevTenantError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), DevTenantError> {
        for (name, v) in [
            ("throttle_rate", self.throttle_rate),
            ("unavailable_rate", self.unavailable_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(DevTenantError::Config(format!(
                    "faults.{name} must be between 0.0 and 1.0, got {v}"
                )));
            }
        }
        Ok(())
    }
}

impl Default for DevTenantConfig {
    fn default() -> Self {
        let user = |upn: &str,
                    oid: &str,
                    name: &str,
                    given: &str,
                    sur: &str,
                    roles: &[&str],
                    wids: &[&str]| UserConfig {
            upn: upn.into(),
            object_id: oid.into(),
            display_name: name.into(),
            given_name: Some(given.into()),
            surname: Some(sur.into()),
            app_roles: roles.iter().map(|s| s.to_string()).collect(),
            directory_roles: wids.iter().map(|s| s.to_string()).collect(),
        };
        Self {
            tenant_id: d::TENANT_ID.into(),
            domain: d::TENANT_DOMAIN.into(),
            tenant_name: d::TENANT_NAME.into(),
            public_base_url: None,
            users: vec![
                user(
                    d::ADA_UPN,
                    d::ADA_OID,
                    "Ada Lovelace",
                    "Ada",
                    "Lovelace",
                    &[d::APPROVER_ROLE, d::ADMIN_ROLE],
                    &[d::ROLE_USER_ADMINISTRATOR],
                ),
                user(
                    d::GRACE_UPN,
                    d::GRACE_OID,
                    "Grace Hopper",
                    "Grace",
                    "Hopper",
                    &[d::APPROVER_ROLE],
                    &[],
                ),
                user(
                    d::BOB_UPN,
                    d::BOB_OID,
                    "Bob Observer",
                    "Bob",
                    "Observer",
                    &[],
                    &[],
                ),
                user(
                    d::KATHERINE_UPN,
                    d::KATHERINE_OID,
                    "Katherine Johnson",
                    "Katherine",
                    "Johnson",
                    &[d::AUDITOR_ROLE],
                    &[],
                ),
            ],
            public_clients: vec![PublicClientConfig {
                client_id: d::DESKTOP_CLIENT_ID.into(),
                name: "Guestlist desktop".into(),
                redirect_uris: d::DESKTOP_REDIRECT_URIS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            }],
            confidential_clients: vec![ConfidentialClientConfig {
                client_id: d::AUTH_EVENTS_CLIENT_ID.into(),
                name: "Azure AD Authentication Events".into(),
                client_secret: d::AUTH_EVENTS_CLIENT_SECRET.into(),
                app_permissions: [(d::API_APP_ID_URI.to_string(), vec![])]
                    .into_iter()
                    .collect(),
            }],
            resources: vec![
                ResourceConfig {
                    identifiers: vec![d::API_APP_ID_URI.into(), d::API_CLIENT_ID.into()],
                    audience: d::API_CLIENT_ID.into(),
                    scopes: vec![d::API_SCOPE.into()],
                    app_roles: d::API_APP_ROLES.iter().map(|s| s.to_string()).collect(),
                    short_scope_names: false,
                    // The demo API asks for v2.0 tokens; unset would mean v1.0, as in Entra.
                    requested_access_token_version: Some(2),
                },
                ResourceConfig {
                    identifiers: vec![
                        d::GRAPH_RESOURCE.into(),
                        "00000003-0000-0000-c000-000000000000".into(),
                    ],
                    audience: d::GRAPH_RESOURCE.into(),
                    scopes: d::GRAPH_SCOPES.iter().map(|s| s.to_string()).collect(),
                    app_roles: vec![
                        "User.Read.All".into(),
                        "User.ReadWrite.All".into(),
                        "User.Invite.All".into(),
                        "GroupMember.ReadWrite.All".into(),
                        "AppRoleAssignment.ReadWrite.All".into(),
                        "Application.Read.All".into(),
                    ],
                    short_scope_names: true,
                    requested_access_token_version: Some(2),
                },
            ],
            extensions_app_id: d::EXTENSIONS_APP_ID.into(),
            access_token_lifetime_secs: 3600,
            code_lifetime_secs: 600,
            refresh_token_lifetime_secs: 90 * 24 * 3600,
            rotate_refresh_tokens: true,
            throttle: ThrottleConfig::default(),
            faults: FaultConfig::default(),
            groups: vec![GroupConfig {
                object_id: d::PARTNERS_GROUP_ID.into(),
                display_name: d::PARTNERS_GROUP_NAME.into(),
                description: Some("Approved guests of the Fabrikam partnership".into()),
                mail_nickname: None,
                group_types: vec![],
                mail_enabled: false,
                members: vec![],
            }],
            service_principals: vec![ServicePrincipalConfig {
                object_id: d::PORTAL_SP_ID.into(),
                app_id: d::PORTAL_APP_ID.into(),
                display_name: d::PORTAL_SP_NAME.into(),
                app_roles: vec![AppRoleConfig {
                    id: d::PORTAL_ROLE_ID.into(),
                    value: d::PORTAL_ROLE_VALUE.into(),
                    display_name: "Partner portal reader".into(),
                    allowed_member_types: default_member_types(),
                }],
            }],
            tenant_kind: TenantKind::Workforce,
            external: ExternalConfig::default(),
        }
    }
}

impl DevTenantConfig {
    /// Loads a config file: TOML when the name ends in `.toml`, JSON otherwise. Missing fields
    /// take the demo defaults; unknown fields are errors.
    ///
    /// # Errors
    /// [`DevTenantError::Config`] when the file cannot be read or parsed, or fails
    /// [`DevTenantConfig::validate`].
    pub fn from_file(path: &Path) -> Result<Self, DevTenantError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DevTenantError::Config(format!("cannot read {}: {e}", path.display())))?;
        let cfg: Self = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            toml::from_str(&text)
                .map_err(|e| DevTenantError::Config(format!("{}: {e}", path.display())))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| DevTenantError::Config(format!("{}: {e}", path.display())))?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the invariants the server relies on: GUID-shaped tenant and object IDs, a
    /// 32-hex-digit extensions app ID, fault rates within range, a non-empty throttle window,
    /// and unique UPNs and client IDs.
    ///
    /// # Errors
    /// [`DevTenantError::Config`] describing the first problem found.
    pub fn validate(&self) -> Result<(), DevTenantError> {
        let bad = |m: String| Err(DevTenantError::Config(m));
        if uuid::Uuid::parse_str(&self.tenant_id).is_err() {
            return bad(format!("tenant_id {:?} is not a GUID", self.tenant_id));
        }
        if self.extensions_app_id.len() != 32
            || !self
                .extensions_app_id
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        {
            return bad(format!(
                "extensions_app_id {:?} must be 32 hex digits",
                self.extensions_app_id
            ));
        }
        if self.throttle.window_secs == 0 {
            return bad("throttle.window_secs must be > 0".into());
        }
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            if uuid::Uuid::parse_str(&u.object_id).is_err() {
                return bad(format!(
                    "user {} has object_id {:?} that is not a GUID",
                    u.upn, u.object_id
                ));
            }
            if !seen.insert(u.upn.to_ascii_lowercase()) {
                return bad(format!("duplicate user {}", u.upn));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for id in self
            .public_clients
            .iter()
            .map(|c| &c.client_id)
            .chain(self.confidential_clients.iter().map(|c| &c.client_id))
        {
            if !ids.insert(id.to_ascii_lowercase()) {
                return bad(format!("duplicate client_id {id}"));
            }
        }
        self.validate_directory()?;
        let sub = &self.external.subdomain;
        if sub.is_empty()
            || sub.len() > 63
            || sub.starts_with('-')
            || sub.ends_with('-')
            || !sub
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad(format!(
                "external.subdomain {sub:?} must be one DNS label: lowercase letters, digits and '-', 1-63 characters"
            ));
        }
        for r in &self.resources {
            if !matches!(r.requested_access_token_version, None | Some(1) | Some(2)) {
                return bad(format!(
                    "resource {:?}: requested_access_token_version must be 1, 2 or unset, got {:?}",
                    r.identifiers.first().cloned().unwrap_or_default(),
                    r.requested_access_token_version
                ));
            }
        }
        self.faults.validate()
    }

    /// Groups and service principals: GUID object IDs unique across users, groups and service
    /// principals, GUID app role IDs, and group members that name a configured object.
    fn validate_directory(&self) -> Result<(), DevTenantError> {
        let bad = |m: String| Err(DevTenantError::Config(m));
        let is_guid = |s: &str| uuid::Uuid::parse_str(s).is_ok();
        let mut ids: std::collections::HashSet<String> = self
            .users
            .iter()
            .map(|u| u.object_id.to_ascii_lowercase())
            .collect();
        for g in &self.groups {
            if !is_guid(&g.object_id) || !ids.insert(g.object_id.to_ascii_lowercase()) {
                return bad(format!(
                    "group {:?}: object_id {:?} must be a GUID used by no other object",
                    g.display_name, g.object_id
                ));
            }
        }
        for sp in &self.service_principals {
            if !is_guid(&sp.object_id)
                || !is_guid(&sp.app_id)
                || !ids.insert(sp.object_id.to_ascii_lowercase())
            {
                return bad(format!(
                    "service principal {:?}: object_id and app_id must be GUIDs, the object_id used by no other object",
                    sp.display_name
                ));
            }
            if let Some(r) = sp.app_roles.iter().find(|r| !is_guid(&r.id)) {
                return bad(format!(
                    "service principal {:?}: app role {:?} has an id that is not a GUID",
                    sp.display_name, r.value
                ));
            }
        }
        for g in &self.groups {
            if let Some(m) = g
                .members
                .iter()
                .find(|m| !ids.contains(&m.to_ascii_lowercase()))
            {
                return bad(format!(
                    "group {:?}: member {m:?} is not a configured user, group or service principal",
                    g.display_name
                ));
            }
        }
        Ok(())
    }
}
