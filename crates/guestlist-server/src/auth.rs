//! Caller authentication.
//!
//! - API connectors: HTTP Basic (RFC 7617), compared in constant time (CONTRACTS.md §1: Basic or
//!   client certificate are the only schemes Entra's connectors use).
//! - Approvers and custom authentication extensions: bearer JWTs (RFC 6750) signed RS256 by the
//!   tenant, checked against its JWKS (discovered from `<issuer>/.well-known/openid-configuration`,
//!   cached, refreshed when a token names an unknown `kid`), with `iss`, `aud`, `exp`/`nbf` and
//!   an app role (approvers) or `azp`/`appid` (extensions) (CONTRACTS.md §2, §4).
//!
//! Approvers' tokens may be v1.0 or v2.0 access tokens of the configured tenant (an API whose
//! app registration leaves the requested token version unset gets v1.0): both issuers
//! ([`approver_issuers`]), `azp`/`appid`, `preferred_username`/`upn` ([`TokenClaims`]), per
//! "Access token claims reference",
//! <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>.
//!
//! Anything else — `alg: none`, HS256 signed with the public key, a foreign issuer — is refused.

use guestlist_core::Code;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::config::{ApproverAuth, ConnectorAuth, ExtensionAuth};

/// Why a caller was refused. `Unauthorized` → 401, `Forbidden` → 403, `NotConfigured` → 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No or bad credentials (401). The text goes into `WWW-Authenticate`'s `error_description`.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid token without the required role or party (403).
    #[error("{0}")]
    Forbidden(String),
    /// The server has no authority configured for this kind of caller: fail closed (503).
    #[error("{0}")]
    NotConfigured(String),
    /// The issuer's discovery document or JWKS cannot be fetched and no keys are cached (503
    /// `auth.issuer_unavailable`). The message never names the upstream URL (it is logged).
    #[error("{0}")]
    IssuerUnavailable(String),
    /// A valid token refused with a specific code (403): `auth.scope_missing` (no required
    /// `scp`), `auth.client_not_allowed` (`azp`/`appid` not in the allow-list).
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: Code,
        /// Human-readable message.
        message: String,
    },
}

/// Checks an `Authorization` header value against the connector's Basic credentials in constant
/// time (both username and password are always compared).
pub fn check_basic(header: Option<&str>, expected: &ConnectorAuth) -> Result<(), AuthError> {
    let header =
        header.ok_or_else(|| AuthError::Unauthorized("HTTP Basic credentials required".into()))?;
    let (scheme, value) = header
        .split_once(' ')
        .ok_or_else(|| AuthError::Unauthorized("malformed Authorization header".into()))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Unauthorized(
            "HTTP Basic credentials required".into(),
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| AuthError::Unauthorized("malformed Basic credentials".into()))?;
    let (user, pass) = match decoded.iter().position(|&b| b == b':') {
        Some(i) => (&decoded[..i], &decoded[i + 1..]),
        None => (&decoded[..], &[][..]),
    };
    let user_ok = user.ct_eq(expected.username.as_bytes());
    let pass_ok = pass.ct_eq(expected.password.0.as_bytes());
    if bool::from(user_ok & pass_ok) {
        Ok(())
    } else {
        Err(AuthError::Unauthorized("invalid credentials".into()))
    }
}

/// The claims Guestlist reads from an access token, v1.0 or v2.0 (`ver`): v1.0 tokens carry
/// `appid` and `upn` where v2.0 tokens carry `azp` and `preferred_username`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenClaims {
    /// Issuer.
    #[serde(default)]
    pub iss: String,
    /// Object id of the user.
    #[serde(default)]
    pub oid: Option<String>,
    /// Subject.
    #[serde(default)]
    pub sub: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// UPN or e-mail (v2.0 tokens only).
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// The user principal name (v1.0 tokens, in place of `preferred_username`).
    #[serde(default)]
    pub upn: Option<String>,
    /// A display user name (v1.0 tokens only; for guests e.g. `live.com#ada@example.com`).
    #[serde(default)]
    pub unique_name: Option<String>,
    /// The user's e-mail (an optional claim, when the app registration asks for it).
    #[serde(default)]
    pub email: Option<String>,
    /// Token version: `"1.0"` or `"2.0"`.
    #[serde(default)]
    pub ver: Option<String>,
    /// App roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Delegated scopes, space separated.
    #[serde(default)]
    pub scp: Option<String>,
    /// Authorized party (v2).
    #[serde(default)]
    pub azp: Option<String>,
    /// Application id (v1).
    #[serde(default)]
    pub appid: Option<String>,
    /// Tenant id.
    #[serde(default)]
    pub tid: Option<String>,
    /// Expiry (seconds since the Unix epoch); checked by the signature verification.
    #[serde(default)]
    pub exp: Option<i64>,
    /// RFC 9068 scopes, space separated (read when `scp` is absent).
    #[serde(default)]
    pub scope: Option<String>,
    /// RFC 9068 client id (read when `azp` and `appid` are absent).
    #[serde(default)]
    pub client_id: Option<String>,
}

impl TokenClaims {
    /// The calling client: `azp` (v2), else `appid` (v1), else `client_id` (RFC 9068).
    pub fn party(&self) -> Option<&str> {
        self.azp
            .as_deref()
            .or(self.appid.as_deref())
            .or(self.client_id.as_deref())
    }

    /// The approver's user name for history and audit: `preferred_username` (v2.0), else `upn`
    /// (v1.0), else `unique_name` (v1.0 guests). See "Access token claims reference",
    /// <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>.
    pub fn username(&self) -> Option<&str> {
        [&self.preferred_username, &self.upn, &self.unique_name]
            .into_iter()
            .filter_map(|c| c.as_deref())
            .find(|s| !s.trim().is_empty())
    }

    /// Every e-mail-like name the token gives its user: `preferred_username`, `email` and `upn`
    /// (unchecked, as sent; callers canonicalise), for the separation-of-duties check
    /// ([`crate::duties`]).
    pub fn own_addresses(&self) -> impl Iterator<Item = &str> {
        [&self.preferred_username, &self.email, &self.upn]
            .into_iter()
            .filter_map(|c| c.as_deref())
    }

    /// The delegated scopes: `scp` (Entra), else `scope` (RFC 9068).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scp
            .as_deref()
            .or(self.scope.as_deref())
            .unwrap_or_default()
            .split_whitespace()
    }
}

#[derive(Debug, Deserialize)]
struct Discovery {
    jwks_uri: String,
}

/// The default of [`JwksCache`]'s refetch bound for an unknown `kid` (5 minutes).
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);

/// The first delay after a failed fetch; doubled after each further failure, up to the
/// refetch bound.
const FIRST_FAILURE_BACKOFF: Duration = Duration::from_secs(1);

/// What the cache knows, behind a short synchronous lock (never held across an await).
#[derive(Default)]
struct KeyState {
    keys: Option<JwkSet>,
    /// The JWKS URL found by discovery.
    discovered: Option<String>,
    /// When the last fetch (success or failure) finished.
    fetched_at: Option<Instant>,
    /// The backoff in force after a failure (`None` after a success).
    failure: Option<Duration>,
    /// Bumped after every fetch, so waiters of the single flight see that one happened.
    generation: u64,
}

/// A JWKS fetched from a URL (or discovered from an issuer) and cached (issue 10 §3):
///
/// - **Single flight.** At most one fetch runs at a time; callers that wait for it use its
///   result instead of fetching again.
/// - **Bounded refetch.** A token naming a `kid` the cached set lacks refetches it at most once
///   per `min_refresh` (default [`DEFAULT_JWKS_REFRESH`]); until then such tokens are refused
///   (401) at once.
/// - **Failures back off.** A failed fetch is remembered: for 1 s, then 2 s, 4 s, … (capped at
///   `min_refresh`) every caller gets the failure without a fetch. With no keys at all that is
///   [`AuthError::IssuerUnavailable`] (503); the discovery and JWKS URLs and the upstream error
///   go to the log (WARN), never to the caller.
pub struct JwksCache {
    http: reqwest::Client,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    state: std::sync::Mutex<KeyState>,
    flight: tokio::sync::Mutex<()>,
    min_refresh: Duration,
    fetches: std::sync::atomic::AtomicU64,
}

enum Cached {
    Key(Result<DecodingKey, AuthError>),
    Fetch,
}

impl JwksCache {
    /// A cache for `jwks_uri`, or for the JWKS discovered from `issuer` when `jwks_uri` is
    /// `None`, refetched for an unknown `kid` at most once per `min_refresh`.
    pub fn new(
        http: reqwest::Client,
        issuer: Option<String>,
        jwks_uri: Option<String>,
        min_refresh: Duration,
    ) -> Self {
        JwksCache {
            http,
            issuer,
            jwks_uri,
            state: std::sync::Mutex::new(KeyState::default()),
            flight: tokio::sync::Mutex::new(()),
            min_refresh,
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Fetches started so far (discovery included), for tests and operators.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, KeyState>, AuthError> {
        self.state
            .lock()
            .map_err(|_| AuthError::IssuerUnavailable("the key cache is unusable".into()))
    }

    /// What the cache can answer for `kid` without a fetch, or `Fetch`. `since_gen`: a fetch
    /// finished after this generation was seen counts as "just fetched".
    fn cached(&self, kid: &str, since_gen: Option<u64>) -> Result<(Cached, u64), AuthError> {
        let st = self.lock()?;
        if let Some(jwk) = st.keys.as_ref().and_then(|s| s.find(kid)) {
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| AuthError::Unauthorized(format!("unusable key {kid}: {e}")));
            return Ok((Cached::Key(key), st.generation));
        }
        let refused = || {
            if st.keys.is_some() {
                AuthError::Unauthorized(format!("unknown signing key {kid:?}"))
            } else {
                unavailable()
            }
        };
        if since_gen.is_some_and(|g| g != st.generation) {
            return Ok((Cached::Key(Err(refused())), st.generation));
        }
        if let Some(at) = st.fetched_at {
            let wait = match st.failure {
                Some(backoff) => backoff,
                None => self.min_refresh,
            };
            if at.elapsed() < wait {
                return Ok((Cached::Key(Err(refused())), st.generation));
            }
        }
        Ok((Cached::Fetch, st.generation))
    }

    async fn get(&self, url: &str, what: &str) -> Result<reqwest::Response, ()> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| tracing::warn!(url, error = %e, "cannot fetch the issuer's {what}"))
    }

    async fn fetch(&self) -> Result<(JwkSet, Option<String>), ()> {
        let known = match &self.jwks_uri {
            Some(u) => Some(u.clone()),
            None => self.lock().ok().and_then(|s| s.discovered.clone()),
        };
        let (uri, discovered) = match known {
            Some(u) => (u, None),
            None => {
                let Some(issuer) = self.issuer.as_deref() else {
                    tracing::warn!("no issuer configured to discover the signing keys from");
                    return Err(());
                };
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let d: Discovery = self
                    .get(&url, "discovery document")
                    .await?
                    .json()
                    .await
                    .map_err(|e| tracing::warn!(url, error = %e, "bad discovery document"))?;
                (d.jwks_uri.clone(), Some(d.jwks_uri))
            }
        };
        let set = self
            .get(&uri, "signing keys (JWKS)")
            .await?
            .json::<JwkSet>()
            .await
            .map_err(|e| tracing::warn!(url = uri, error = %e, "bad JWKS"))?;
        Ok((set, discovered))
    }

    /// The decoding key for `kid`, fetching or refreshing the JWKS when needed (see the type's
    /// docs).
    ///
    /// Errors: [`AuthError::Unauthorized`] when the key is unknown (after a refresh, or while a
    /// refresh is not due); [`AuthError::IssuerUnavailable`] when no keys could be fetched.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let (c, seen) = self.cached(kid, None)?;
        if let Cached::Key(k) = c {
            return k;
        }
        let _flight = self.flight.lock().await;
        // Someone else's fetch may have finished while we waited: use it.
        if let (Cached::Key(k), _) = self.cached(kid, Some(seen))? {
            return k;
        }
        let fetched = self.fetch().await;
        {
            let mut st = self.lock()?;
            st.generation += 1;
            st.fetched_at = Some(Instant::now());
            match fetched {
                Ok((set, discovered)) => {
                    st.keys = Some(set);
                    if discovered.is_some() {
                        st.discovered = discovered;
                    }
                    st.failure = None;
                }
                Err(()) => {
                    let next = st
                        .failure
                        .map_or(FIRST_FAILURE_BACKOFF, |b| b * 2)
                        .min(self.min_refresh.max(FIRST_FAILURE_BACKOFF));
                    st.failure = Some(next);
                    // A discovered URL may be what broke: discover again next time.
                    st.discovered = None;
                }
            }
        }
        match self.cached(kid, Some(u64::MAX))? {
            (Cached::Key(k), _) => k,
            (Cached::Fetch, _) => Err(unavailable()),
        }
    }
}

fn unavailable() -> AuthError {
    AuthError::IssuerUnavailable(
        "the token issuer's signing keys cannot be fetched now; retry later".into(),
    )
}

/// What a bearer token must satisfy.
struct Rules {
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: u64,
}

async fn verify(token: &str, jwks: &JwksCache, rules: &Rules) -> Result<TokenClaims, AuthError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| AuthError::Unauthorized(format!("malformed token: {e}")))?;
    if header.alg != Algorithm::RS256 {
        return Err(AuthError::Unauthorized(format!(
            "token algorithm {:?} is not accepted (RS256 only)",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| AuthError::Unauthorized("token has no kid".into()))?;
    let key = jwks.key(&kid).await?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&rules.issuers);
    v.set_audience(&rules.audiences);
    v.leeway = rules.leeway;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    jsonwebtoken::decode::<TokenClaims>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| AuthError::Unauthorized(format!("invalid token: {e}")))
}

fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let h = header.ok_or_else(|| AuthError::Unauthorized("bearer token required".into()))?;
    match h.split_once(' ') {
        Some((s, t)) if s.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => Ok(t.trim()),
        _ => Err(AuthError::Unauthorized("bearer token required".into())),
    }
}

/// The v1.0 issuer of the tenant whose v2.0 issuer is `v2_issuer`: for
/// `https://login.microsoftonline.com/{tid}/v2.0` (any host whose path ends `/{tid}/v2.0`),
/// `https://sts.windows.net/{tid}/`, which Entra puts in `iss` of v1.0 access tokens (the
/// version an API gets when its app registration leaves `accessTokenAcceptedVersion` /
/// `api.requestedAccessTokenVersion` unset). `None` when the issuer has no `/{tid}/v2.0` path.
///
/// Source: "Access token claims reference" (`iss`, `ver`),
/// <https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference>.
pub fn v1_issuer_of(v2_issuer: &str) -> Option<String> {
    let rest = v2_issuer.trim_end_matches('/').strip_suffix("/v2.0")?;
    let (_, tid) = rest.rsplit_once('/')?;
    let tid_ok = !tid.is_empty()
        && tid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    tid_ok.then(|| format!("https://sts.windows.net/{tid}/"))
}

/// The `iss` values an approver's token may carry: `approver_auth.issuer` (v2.0), the tenant's
/// v1.0 issuer derived from it ([`v1_issuer_of`]), and `approver_auth.additional_issuers`. Every
/// one is checked against the same JWKS (Entra signs v1.0 and v2.0 tokens with the same keys), so
/// another tenant's tokens fail on `iss` and on the signature. Empty without an issuer.
pub fn approver_issuers(config: &ApproverAuth) -> Vec<String> {
    let mut out: Vec<String> = config.issuer.iter().cloned().collect();
    out.extend(config.issuer.as_deref().and_then(v1_issuer_of));
    for extra in &config.additional_issuers {
        if !out.contains(extra) {
            out.push(extra.clone());
        }
    }
    out
}

/// Checks approvers' tokens (CONTRACTS.md §4).
pub struct ApproverVerifier {
    config: ApproverAuth,
    jwks: Option<JwksCache>,
    /// App roles besides `required_role` that may call the queue ([`Need::Approver`]): the
    /// admin role and the `[[policy.routes]]` roles (issue 14 §2, [`crate::duties`]).
    queue_roles: Vec<String>,
}

impl ApproverVerifier {
    /// A verifier for `config`; with no issuer every call fails closed.
    ///
    /// Warns (once, at construction: server start-up) when any client may call
    /// (`approver_auth.allowed_client_ids` empty) or no scope is required.
    pub fn new(http: reqwest::Client, config: ApproverAuth) -> Arc<Self> {
        Self::with_queue_roles(http, config, Vec::new())
    }

    /// As [`ApproverVerifier::new`], where the queue ([`Need::Approver`]) also admits tokens
    /// holding any of `queue_roles` (besides `required_role`): the admin role and the routes'
    /// roles ([`crate::duties::queue_roles`]). Which requests such a caller then sees is
    /// [`crate::duties::Scope`]'s business.
    pub fn with_queue_roles(
        http: reqwest::Client,
        config: ApproverAuth,
        queue_roles: Vec<String>,
    ) -> Arc<Self> {
        let refresh = Duration::from_secs(config.jwks_refresh_seconds.max(1));
        let jwks = config
            .issuer
            .as_ref()
            .map(|i| JwksCache::new(http, Some(i.clone()), config.jwks_uri.clone(), refresh));
        if jwks.is_some() && config.allowed_client_ids.is_empty() {
            tracing::warn!(
                "approver_auth.allowed_client_ids is empty: tokens from any client of the tenant are accepted; list the desktop app's client id"
            );
        }
        if jwks.is_some() && config.required_scope.trim().is_empty() {
            tracing::warn!(
                "approver_auth.required_scope is empty: the delegated scope of tokens is not checked"
            );
        }
        Arc::new(ApproverVerifier {
            config,
            jwks,
            queue_roles,
        })
    }

    /// The JWKS cache (`None` when no issuer is configured), for its fetch counter.
    pub fn jwks(&self) -> Option<&JwksCache> {
        self.jwks.as_ref()
    }

    /// Verifies an `Authorization: Bearer` header: signature, `iss` (v2.0 or v1.0 issuer of the
    /// tenant, [`approver_issuers`]), `aud`, `exp`/`nbf`, the
    /// required delegated scope in `scp`, the calling client (`azp`/`appid`) in the allow-list,
    /// and the approver app role (`approver_auth.required_role`) in `roles`.
    ///
    /// Errors: 401 / 403 / 503 as [`AuthError`].
    pub async fn verify(&self, header: Option<&str>) -> Result<TokenClaims, AuthError> {
        self.verify_for(header, Need::Approver).await
    }

    /// As [`ApproverVerifier::verify`], with the app role `need` asks for instead of the
    /// approver role (issue 12 "Roles").
    ///
    /// Errors: 401 / 403 / 503 as [`AuthError`]; 403 names the missing role.
    pub async fn verify_for(
        &self,
        header: Option<&str>,
        need: Need,
    ) -> Result<TokenClaims, AuthError> {
        let (Some(jwks), Some(_)) = (&self.jwks, &self.config.issuer) else {
            return Err(AuthError::NotConfigured(
                "approver authentication is not configured (approver_auth.issuer)".into(),
            ));
        };
        let token = bearer(header)?;
        let rules = Rules {
            issuers: approver_issuers(&self.config),
            audiences: self.config.audiences.clone(),
            leeway: self.config.leeway_seconds,
        };
        let claims = verify(token, jwks, &rules).await?;
        let scope = self.config.required_scope.trim();
        if !scope.is_empty() && !claims.scopes().any(|s| s == scope) {
            return Err(AuthError::Refused {
                code: Code::AuthScopeMissing,
                message: format!("the token lacks the delegated scope {scope:?} (scp)"),
            });
        }
        if !self.config.allowed_client_ids.is_empty() {
            let party = claims.party().unwrap_or_default();
            if !self.config.allowed_client_ids.iter().any(|c| c == party) {
                return Err(AuthError::Refused {
                    code: Code::AuthClientNotAllowed,
                    message: format!(
                        "the token was issued to client {party:?}, which is not in approver_auth.allowed_client_ids"
                    ),
                });
            }
        }
        let queue: Vec<&str> = std::iter::once(self.config.required_role.as_str())
            .chain(self.queue_roles.iter().map(String::as_str))
            .collect();
        let accepted: &[&str] = match need {
            Need::Approver => &queue,
            Need::Admin => &[&self.config.admin_role],
            Need::AuditReader => &[&self.config.admin_role, &self.config.auditor_role],
        };
        if !claims.roles.iter().any(|r| accepted.contains(&r.as_str())) {
            return Err(AuthError::Forbidden(match accepted {
                [one] => format!("the token lacks the app role {one:?}"),
                many => format!("the token holds none of the app roles {many:?}"),
            }));
        }
        Ok(claims)
    }
}

/// The app role a call of the approver API needs (issue 12 "Roles"; config
/// `approver_auth.required_role`, `admin_role`, `auditor_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The queue and decisions: `approver_auth.required_role` (default `Approver`).
    Approver,
    /// Privacy operations and reopening a denial: `approver_auth.admin_role` (default `Admin`).
    Admin,
    /// Reading the audit: `admin_role` or `auditor_role` (default `Auditor`).
    AuditReader,
}

/// Checks tokens of Entra's custom authentication extension calls (CONTRACTS.md §2).
pub struct ExtensionVerifier {
    config: ExtensionAuth,
    jwks: Option<JwksCache>,
}

impl ExtensionVerifier {
    /// A verifier for `config`; with no issuers every call fails closed.
    pub fn new(http: reqwest::Client, config: ExtensionAuth) -> Arc<Self> {
        let jwks = (!config.issuers.is_empty()).then(|| {
            JwksCache::new(
                http,
                config.issuers.first().cloned(),
                config.jwks_uri.clone(),
                DEFAULT_JWKS_REFRESH,
            )
        });
        Arc::new(ExtensionVerifier { config, jwks })
    }

    /// Verifies signature, `iss`, `aud`, `exp`, and `azp`/`appid` = the authentication events
    /// app.
    ///
    /// Errors: 401 / 403 / 503 as [`AuthError`].
    pub async fn verify(&self, header: Option<&str>) -> Result<TokenClaims, AuthError> {
        let Some(jwks) = &self.jwks else {
            return Err(AuthError::NotConfigured(
                "custom authentication extensions are not configured (extension_auth.issuers)"
                    .into(),
            ));
        };
        let token = bearer(header)?;
        let rules = Rules {
            issuers: self.config.issuers.clone(),
            audiences: self.config.audiences.clone(),
            leeway: self.config.leeway_seconds,
        };
        let claims = verify(token, jwks, &rules).await?;
        let party = claims
            .azp
            .as_deref()
            .or(claims.appid.as_deref())
            .unwrap_or_default();
        if party != self.config.authorized_party {
            return Err(AuthError::Forbidden(format!(
                "the token's azp/appid {party:?} is not Entra's authentication events app"
            )));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn basic_auth_checks_both_parts() {
        let cfg = ConnectorAuth {
            username: "entra".into(),
            password: Secret("s3cret:with:colons".into()),
            ..ConnectorAuth::default()
        };
        let enc = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(check_basic(Some(&enc("entra:s3cret:with:colons")), &cfg).is_ok());
        assert!(check_basic(Some(&enc("entra:wrong")), &cfg).is_err());
        assert!(check_basic(Some(&enc("other:s3cret:with:colons")), &cfg).is_err());
        assert!(check_basic(Some(&enc("entra")), &cfg).is_err());
        assert!(check_basic(Some("Bearer x"), &cfg).is_err());
        assert!(check_basic(Some("Basic !!!"), &cfg).is_err());
        assert!(check_basic(None, &cfg).is_err());
    }

    #[test]
    fn the_v1_issuer_is_derived_from_the_tenant_of_the_v2_issuer() {
        let tid = "4a1e2d3c-5b6f-4789-9abc-def012345678";
        for v2 in [
            format!("https://login.microsoftonline.com/{tid}/v2.0"),
            format!("https://login.microsoftonline.com/{tid}/v2.0/"),
            format!("http://127.0.0.1:8900/{tid}/v2.0"),
        ] {
            assert_eq!(
                v1_issuer_of(&v2).as_deref(),
                Some(format!("https://sts.windows.net/{tid}/").as_str()),
                "{v2}"
            );
        }
        assert_eq!(v1_issuer_of("https://accounts.example.com"), None);
        assert_eq!(v1_issuer_of("https://login.example.com//v2.0"), None);
        let cfg = ApproverAuth {
            issuer: Some(format!("https://login.microsoftonline.com/{tid}/v2.0")),
            additional_issuers: vec![format!("https://{tid}.ciamlogin.com/{tid}/")],
            ..ApproverAuth::default()
        };
        assert_eq!(
            approver_issuers(&cfg),
            vec![
                format!("https://login.microsoftonline.com/{tid}/v2.0"),
                format!("https://sts.windows.net/{tid}/"),
                format!("https://{tid}.ciamlogin.com/{tid}/"),
            ]
        );
        assert!(approver_issuers(&ApproverAuth::default()).is_empty());
    }
}
