//! The tenant's in-memory state (signing keys, the Graph directory, authorization codes,
//! refresh tokens, throttling buckets, fault settings) and its optional JSON snapshot file.
//!
//! The snapshot (`--state FILE`) holds `{"keys":[PEM…],"active_kid","users":[Graph user JSON…],
//! "refresh_tokens":{…},"redemptions":{…},"groups":[{"object","members"}…],
//! "app_role_assignments":[…],"sponsors":{user id:[object id…]}}`; it is written atomically (temp
//! file + rename) after every change to keys, users, groups, assignments, sponsors or refresh
//! tokens. Codes, buckets and faults are not persisted.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use rand::SeedableRng as _;
use rand::rngs::ChaCha12Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{DevTenantConfig, FaultConfig};
use crate::error::DevTenantError;
use crate::keys::SigningKey;

/// A Graph user object as stored (the full property bag, Graph JSON names).
pub type GraphUser = Map<String, Value>;

/// A directory group: its Graph properties and its direct members (object IDs, in the order
/// they were added).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DirGroup {
    /// The Graph group object (`id`, `displayName`, `groupTypes`, …).
    pub object: Map<String, Value>,
    /// Object IDs of the direct members (users, groups, service principals).
    pub members: Vec<String>,
}

/// An issued, not yet redeemed (or redeemed) authorization code.
#[derive(Clone, Debug)]
pub struct AuthCode {
    /// Client the code was issued to.
    pub client_id: String,
    /// The exact `redirect_uri` of the authorize request.
    pub redirect_uri: String,
    /// The raw `scope` of the authorize request.
    pub scope: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// OIDC nonce, copied into the ID token.
    pub nonce: Option<String>,
    /// Signed-in user's object ID.
    pub oid: String,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// Set when redeemed: a second redemption is rejected (AADSTS54005).
    pub redeemed: bool,
}

/// A live refresh token grant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// Client it was issued to.
    pub client_id: String,
    /// User object ID.
    pub oid: String,
    /// The raw scope of the request that produced it (used when a refresh omits `scope`).
    pub scope: String,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

/// Token bucket of one (tenant, app, read/write) key.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Tokens available now.
    pub tokens: f64,
    /// Last refill.
    pub at: Instant,
}

/// Mutable state behind one mutex (no `.await` while it is held).
#[derive(Debug)]
pub struct Inner {
    /// Signing keys; `keys[active]` signs, all are published.
    pub keys: Vec<SigningKey>,
    /// Index of the signing key.
    pub active: usize,
    /// The directory (Graph users), in creation order.
    pub users: Vec<GraphUser>,
    /// Invitation redemption tokens → user id.
    pub redemptions: BTreeMap<String, String>,
    /// Authorization codes by code value.
    pub codes: HashMap<String, AuthCode>,
    /// Refresh tokens by token value.
    pub refresh_tokens: BTreeMap<String, RefreshGrant>,
    /// Throttling buckets by `(tid, azp, is_write)`.
    pub buckets: HashMap<(String, String, bool), Bucket>,
    /// Current fault settings.
    pub faults: FaultConfig,
    /// RNG for fault injection, seeded from `faults.seed`: ChaCha12, named rather than `StdRng`
    /// (whose algorithm rand may change), so a seed replays the same faults.
    pub rng: ChaCha12Rng,
    /// The last [`RECORDED_CALLS_MAX`] Graph calls, oldest first (`GET /_devtenant/graph-calls`).
    pub calls: std::collections::VecDeque<RecordedCall>,
    /// Groups with their members, in creation order.
    pub groups: Vec<DirGroup>,
    /// App role assignments (full Graph `appRoleAssignment` objects), in creation order.
    pub app_role_assignments: Vec<Map<String, Value>>,
    /// Sponsors by user object ID (object IDs of users or groups, in the order added).
    pub sponsors: BTreeMap<String, Vec<String>>,
}

/// How many Graph calls devtenant keeps for `GET /_devtenant/graph-calls`.
pub const RECORDED_CALLS_MAX: usize = 2000;

/// One Graph HTTP call as devtenant received it (tests compare it with the plan the app showed).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordedCall {
    /// `GET`, `POST`, `PATCH`, ….
    pub method: String,
    /// Path and query relative to `/v1.0`, percent-decoded (`/users?$filter=mail eq 'a@b.c'`).
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<serde_json::Value>,
    /// The HTTP status devtenant answered.
    pub status: u16,
}

#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    keys: Vec<String>,
    active_kid: String,
    users: Vec<GraphUser>,
    #[serde(default)]
    refresh_tokens: BTreeMap<String, RefreshGrant>,
    #[serde(default)]
    redemptions: BTreeMap<String, String>,
    /// `None` in snapshots written before groups existed: seeded from the config then.
    #[serde(default)]
    groups: Option<Vec<DirGroup>>,
    #[serde(default)]
    app_role_assignments: Vec<Map<String, Value>>,
    #[serde(default)]
    sponsors: BTreeMap<String, Vec<String>>,
}

/// State shared by all handlers.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the tenant started with.
    pub cfg: DevTenantConfig,
    /// Public base URL, no trailing slash (e.g. `http://127.0.0.1:8900`).
    pub base_url: String,
    state_file: Option<PathBuf>,
    inner: Mutex<Inner>,
}

/// Current time as unix seconds.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Current time as Graph renders `DateTimeOffset` values: `2024-05-01T12:34:56Z`.
pub fn now_graph() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl Shared {
    /// Builds the state: loads the snapshot when `state_file` exists, otherwise generates a key
    /// and seeds the directory with the configured member users.
    ///
    /// # Errors
    /// [`DevTenantError::State`] for an unreadable snapshot, [`DevTenantError::Key`] for key
    /// generation/loading failures.
    pub fn new(
        cfg: DevTenantConfig,
        base_url: String,
        state_file: Option<PathBuf>,
    ) -> Result<Self, DevTenantError> {
        let mut snapshot = None;
        if let Some(path) = &state_file
            && path.exists()
        {
            let text = std::fs::read_to_string(path)
                .map_err(|e| DevTenantError::State(format!("{}: {e}", path.display())))?;
            let snap: Snapshot = serde_json::from_str(&text)
                .map_err(|e| DevTenantError::State(format!("{}: {e}", path.display())))?;
            snapshot = Some(snap);
        }
        let (groups, app_role_assignments, sponsors) = match &mut snapshot {
            Some(snap) if !snap.keys.is_empty() => (
                snap.groups.take().unwrap_or_else(|| seed_groups(&cfg)),
                std::mem::take(&mut snap.app_role_assignments),
                std::mem::take(&mut snap.sponsors),
            ),
            _ => (seed_groups(&cfg), Vec::new(), BTreeMap::new()),
        };
        let (keys, active, users, refresh_tokens, redemptions) = match snapshot {
            Some(s) if !s.keys.is_empty() => {
                let keys = s
                    .keys
                    .iter()
                    .map(|p| SigningKey::from_pkcs8_pem(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let active = keys
                    .iter()
                    .position(|k| k.kid == s.active_kid)
                    .unwrap_or(keys.len() - 1);
                (keys, active, s.users, s.refresh_tokens, s.redemptions)
            }
            _ => (
                vec![SigningKey::generate()?],
                0,
                seed_users(&cfg),
                BTreeMap::new(),
                BTreeMap::new(),
            ),
        };
        let faults = cfg.faults.clone();
        let rng = ChaCha12Rng::seed_from_u64(faults.seed);
        let shared = Self {
            cfg,
            base_url,
            state_file,
            inner: Mutex::new(Inner {
                keys,
                active,
                users,
                redemptions,
                codes: HashMap::new(),
                refresh_tokens,
                buckets: HashMap::new(),
                faults,
                rng,
                calls: std::collections::VecDeque::new(),
                groups,
                app_role_assignments,
                sponsors,
            }),
        };
        shared.persist()?;
        Ok(shared)
    }

    /// Locks the mutable state (a poisoned lock is recovered: the data stays usable).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The issuer: `{base}/{tenant-id}/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base_url, self.cfg.tenant_id)
    }

    /// Graph's root: `{base}/v1.0`.
    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }

    /// Whether `tenant` (a path segment) names this tenant: its ID or domain, case-insensitive
    /// (an external tenant also answers to `{subdomain}.onmicrosoft.com`).
    pub fn is_tenant(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.cfg.tenant_id)
            || tenant.eq_ignore_ascii_case(&self.cfg.domain)
            || self
                .customer_domain()
                .is_some_and(|d| tenant.eq_ignore_ascii_case(&d))
    }

    /// An external tenant's customer issuer, `https://{subdomain}.ciamlogin.com/{tid}/v2.0`
    /// ("Custom authentication extensions overview", *Protect your REST API*: the `iss` of the
    /// tokens its custom authentication extensions carry); `None` for a workforce tenant.
    pub fn customer_issuer(&self) -> Option<String> {
        (self.cfg.tenant_kind == crate::config::TenantKind::External).then(|| {
            format!(
                "https://{}/{}/v2.0",
                self.customer_host(),
                self.cfg.tenant_id
            )
        })
    }

    /// `{subdomain}.ciamlogin.com`: the host of an external tenant's customer authority.
    pub fn customer_host(&self) -> String {
        format!("{}.ciamlogin.com", self.cfg.external.subdomain)
    }

    /// An external tenant's initial domain, `{subdomain}.onmicrosoft.com` (customer UPNs and the
    /// issuer of local-account identities); `None` for a workforce tenant.
    pub fn customer_domain(&self) -> Option<String> {
        (self.cfg.tenant_kind == crate::config::TenantKind::External)
            .then(|| format!("{}.onmicrosoft.com", self.cfg.external.subdomain))
    }

    /// Writes the snapshot file, if one is configured.
    ///
    /// # Errors
    /// [`DevTenantError::State`] when the file cannot be written.
    pub fn persist(&self) -> Result<(), DevTenantError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let text = {
            let inner = self.lock();
            let snap = Snapshot {
                keys: inner
                    .keys
                    .iter()
                    .map(|k| k.pkcs8_pem().to_string())
                    .collect(),
                active_kid: inner
                    .keys
                    .get(inner.active)
                    .map(|k| k.kid.clone())
                    .unwrap_or_default(),
                users: inner.users.clone(),
                refresh_tokens: inner.refresh_tokens.clone(),
                redemptions: inner.redemptions.clone(),
                groups: Some(inner.groups.clone()),
                app_role_assignments: inner.app_role_assignments.clone(),
                sponsors: inner.sponsors.clone(),
            };
            serde_json::to_string_pretty(&snap).map_err(|e| DevTenantError::State(e.to_string()))?
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .map_err(|e| DevTenantError::State(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| DevTenantError::State(format!("{}: {e}", path.display())))?;
        Ok(())
    }

    /// Persists and logs (instead of failing the request) when the snapshot cannot be written.
    pub fn persist_logged(&self) {
        if let Err(e) = self.persist() {
            tracing::error!(error = %e, "could not write the state snapshot");
        }
    }

    /// Replaces the fault settings and re-seeds the RNG.
    ///
    /// # Errors
    /// [`DevTenantError::Config`] when a rate is out of range.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), DevTenantError> {
        faults.validate()?;
        let mut inner = self.lock();
        inner.rng = ChaCha12Rng::seed_from_u64(faults.seed);
        inner.faults = faults;
        Ok(())
    }

    /// Signs claims with the active key.
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if signing fails.
    pub fn sign(&self, claims: &Value) -> Result<String, DevTenantError> {
        let key = {
            let inner = self.lock();
            inner
                .keys
                .get(inner.active)
                .cloned()
                .ok_or_else(|| DevTenantError::Key("no signing key".into()))?
        };
        key.sign(claims)
    }

    /// Adds a freshly generated key, makes it the signing key and keeps the old ones in the JWKS
    /// (Entra's signing key rollover). Returns the new `kid`.
    ///
    /// # Errors
    /// [`DevTenantError::Key`] if generation fails.
    pub fn rotate_key(&self) -> Result<String, DevTenantError> {
        let key = SigningKey::generate()?;
        let kid = key.kid.clone();
        {
            let mut inner = self.lock();
            inner.keys.push(key);
            inner.active = inner.keys.len() - 1;
        }
        self.persist()?;
        Ok(kid)
    }
}

/// The configured member users as Graph user objects.
fn seed_users(cfg: &DevTenantConfig) -> Vec<GraphUser> {
    cfg.users
        .iter()
        .map(|u| {
            let v = json!({
                "id": u.object_id,
                "userPrincipalName": u.upn,
                "displayName": u.display_name,
                "givenName": u.given_name,
                "surname": u.surname,
                "mail": u.upn,
                "accountEnabled": true,
                "userType": "Member",
                "creationType": null,
                "createdDateTime": now_graph(),
                "externalUserState": null,
                "businessPhones": [],
                "identities": [{"signInType": "userPrincipalName", "issuer": cfg.domain, "issuerAssignedId": u.upn}],
            });
            match v {
                Value::Object(m) => m,
                _ => Map::new(),
            }
        })
        .collect()
}

/// The configured groups as Graph group objects ("group resource type"; a security group unless
/// configured otherwise).
fn seed_groups(cfg: &DevTenantConfig) -> Vec<DirGroup> {
    cfg.groups
        .iter()
        .map(|g| {
            let nickname = g
                .mail_nickname
                .clone()
                .unwrap_or_else(|| g.display_name.replace(' ', ""));
            let v = json!({
                "id": g.object_id,
                "deletedDateTime": null,
                "createdDateTime": now_graph(),
                "displayName": g.display_name,
                "description": g.description,
                "groupTypes": g.group_types,
                "mail": null,
                "mailEnabled": g.mail_enabled,
                "mailNickname": nickname,
                "securityEnabled": !g.group_types.iter().any(|t| t == "Unified") || !g.mail_enabled,
                "visibility": null,
                "proxyAddresses": [],
                "resourceBehaviorOptions": [],
                "resourceProvisioningOptions": [],
                "onPremisesSyncEnabled": null,
            });
            DirGroup {
                object: match v {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                members: g.members.clone(),
            }
        })
        .collect()
}
