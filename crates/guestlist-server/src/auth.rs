//! Caller authentication.
//!
//! - API connectors: HTTP Basic (RFC 7617), compared in constant time (CONTRACTS.md §1: Basic or
//!   client certificate are the only schemes Entra's connectors use).
//! - Approvers and custom authentication extensions: bearer JWTs (RFC 6750) signed RS256 by the
//!   tenant, checked against its JWKS (discovered from `<issuer>/.well-known/openid-configuration`,
//!   cached, refreshed when a token names an unknown `kid`), with `iss`, `aud`, `exp`/`nbf` and
//!   an app role (approvers) or `azp`/`appid` (extensions) (CONTRACTS.md §2, §4).
//!
//! Anything else — `alg: none`, HS256 signed with the public key, a foreign issuer — is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

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

/// The claims Guestlist reads from an access token (Entra v2 shape).
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
    /// UPN or e-mail.
    #[serde(default)]
    pub preferred_username: Option<String>,
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
}

#[derive(Debug, Deserialize)]
struct Discovery {
    jwks_uri: String,
}

/// A JWKS fetched from a URL (or discovered from an issuer), cached, and refreshed at most once
/// per `min_refresh` when a token names a `kid` the cache lacks.
pub struct JwksCache {
    http: reqwest::Client,
    issuer: Option<String>,
    jwks_uri: RwLock<Option<String>>,
    keys: RwLock<Option<(JwkSet, Instant)>>,
    min_refresh: Duration,
}

impl JwksCache {
    /// A cache for `jwks_uri`, or for the JWKS discovered from `issuer` when `jwks_uri` is `None`.
    pub fn new(http: reqwest::Client, issuer: Option<String>, jwks_uri: Option<String>) -> Self {
        JwksCache {
            http,
            issuer,
            jwks_uri: RwLock::new(jwks_uri),
            keys: RwLock::new(None),
            min_refresh: Duration::from_secs(1),
        }
    }

    async fn uri(&self) -> Result<String, AuthError> {
        if let Some(u) = self.jwks_uri.read().await.clone() {
            return Ok(u);
        }
        let issuer = self
            .issuer
            .as_deref()
            .ok_or_else(|| AuthError::NotConfigured("no issuer configured".into()))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let d: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                AuthError::Unauthorized(format!(
                    "cannot reach the issuer's discovery document: {e}"
                ))
            })?
            .json()
            .await
            .map_err(|e| AuthError::Unauthorized(format!("bad discovery document: {e}")))?;
        *self.jwks_uri.write().await = Some(d.jwks_uri.clone());
        Ok(d.jwks_uri)
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let uri = self.uri().await?;
        self.http
            .get(&uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Unauthorized(format!("cannot fetch the signing keys: {e}")))?
            .json::<JwkSet>()
            .await
            .map_err(|e| AuthError::Unauthorized(format!("bad JWKS: {e}")))
    }

    /// The decoding key for `kid`, fetching or refreshing the JWKS when needed.
    ///
    /// Errors: [`AuthError::Unauthorized`] when the key is unknown after a refresh or the JWKS
    /// cannot be fetched.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let keys = self.keys.read().await;
            if let Some((set, fetched)) = keys.as_ref() {
                if let Some(jwk) = set.find(kid) {
                    return DecodingKey::from_jwk(jwk)
                        .map_err(|e| AuthError::Unauthorized(format!("unusable key {kid}: {e}")));
                }
                if fetched.elapsed() < self.min_refresh {
                    return Err(AuthError::Unauthorized(format!(
                        "unknown signing key {kid:?}"
                    )));
                }
            }
        }
        let set = self.fetch().await?;
        let found = set.find(kid).map(DecodingKey::from_jwk);
        *self.keys.write().await = Some((set, Instant::now()));
        match found {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(AuthError::Unauthorized(format!("unusable key {kid}: {e}"))),
            None => Err(AuthError::Unauthorized(format!(
                "unknown signing key {kid:?}"
            ))),
        }
    }
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

/// Checks approvers' tokens (CONTRACTS.md §4).
pub struct ApproverVerifier {
    config: ApproverAuth,
    jwks: Option<JwksCache>,
}

impl ApproverVerifier {
    /// A verifier for `config`; with no issuer every call fails closed.
    pub fn new(http: reqwest::Client, config: ApproverAuth) -> Arc<Self> {
        let jwks = config
            .issuer
            .as_ref()
            .map(|i| JwksCache::new(http, Some(i.clone()), config.jwks_uri.clone()));
        Arc::new(ApproverVerifier { config, jwks })
    }

    /// Verifies an `Authorization: Bearer` header: signature, `iss`, `aud`, `exp`/`nbf`, and the
    /// required app role in `roles`.
    ///
    /// Errors: 401 / 403 / 503 as [`AuthError`].
    pub async fn verify(&self, header: Option<&str>) -> Result<TokenClaims, AuthError> {
        let (Some(jwks), Some(issuer)) = (&self.jwks, &self.config.issuer) else {
            return Err(AuthError::NotConfigured(
                "approver authentication is not configured (approver_auth.issuer)".into(),
            ));
        };
        let token = bearer(header)?;
        let rules = Rules {
            issuers: vec![issuer.clone()],
            audiences: self.config.audiences.clone(),
            leeway: self.config.leeway_seconds,
        };
        let claims = verify(token, jwks, &rules).await?;
        if !claims.roles.iter().any(|r| r == &self.config.required_role) {
            return Err(AuthError::Forbidden(format!(
                "the token lacks the app role {:?}",
                self.config.required_role
            )));
        }
        Ok(claims)
    }
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
}
