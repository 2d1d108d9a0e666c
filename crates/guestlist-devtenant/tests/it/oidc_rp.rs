//! An independent OpenID Connect relying party built on the `openidconnect` crate (v4). The same
//! code runs against devtenant (`oidc_conformance.rs`) and against panva's certified
//! `oidc-provider` (`oidc_provider.rs`), so devtenant is held to the same client behaviour as a
//! certified OP. It trusts nothing from devtenant's own code.

use std::collections::HashMap;

use guestlist_graph::oauth_http::OAuthHttp;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};

/// What the RP needs to know about the OP and its registration.
#[derive(Clone, Debug)]
pub struct RpConfig {
    /// Issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// Public client ID.
    pub client_id: String,
    /// Loopback redirect URI (with the port the test picked).
    pub redirect_uri: String,
    /// Scopes of the first request.
    pub scopes: Vec<String>,
    /// Extra authorize parameters (e.g. `login_hint`, `prompt`).
    pub extra: Vec<(String, String)>,
    /// Scopes for the refresh request (`None`: omit `scope`).
    pub refresh_scopes: Option<Vec<String>>,
}

/// What the flow produced.
#[derive(Debug)]
pub struct RpResult {
    /// Verified ID token subject.
    pub subject: String,
    /// Verified ID token `preferred_username` if present.
    pub preferred_username: Option<String>,
    /// Whether the authorization response carried `iss` (RFC 9207).
    pub iss_in_redirect: Option<String>,
    /// First access token.
    pub access_token: String,
    /// Granted scope of the first response.
    pub scope: Option<String>,
    /// Refresh token of the first response.
    pub refresh_token: String,
    /// Access token obtained with the refresh token.
    pub refreshed_access_token: String,
    /// Refresh token returned by the refresh (rotation).
    pub refreshed_refresh_token: Option<String>,
    /// Granted scope of the refresh response.
    pub refreshed_scope: Option<String>,
    /// The code (already redeemed), the verifier used, for negative tests.
    pub used_code: String,
    /// The PKCE verifier of that code.
    pub used_verifier: String,
    /// Token endpoint URL from discovery.
    pub token_endpoint: String,
}

/// An HTTP client that never follows redirects (the RP reads `Location` itself).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The authorization response read from the redirect to `redirect_uri`.
#[derive(Debug)]
pub struct AuthResponse {
    /// Query parameters of the redirect.
    pub params: HashMap<String, String>,
}

/// Follows the authorization request through the OP (keeping cookies by hand) until it
/// redirects to `redirect_uri`; returns that redirect's query. At most 12 hops.
pub async fn follow_to_redirect(
    http: &reqwest::Client,
    start: &str,
    redirect_uri: &str,
) -> Result<AuthResponse, String> {
    let mut url = url::Url::parse(start).map_err(|e| e.to_string())?;
    let mut cookies: HashMap<String, String> = HashMap::new();
    let redirect_base = url::Url::parse(redirect_uri).map_err(|e| e.to_string())?;
    for _ in 0..12 {
        let cookie = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = http.get(url.clone());
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        for sc in resp.headers().get_all("set-cookie") {
            if let Some((kv, _)) = sc
                .to_str()
                .unwrap_or("")
                .split_once(';')
                .or(Some((sc.to_str().unwrap_or(""), "")))
                && let Some((k, v)) = kv.split_once('=')
            {
                cookies.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let status = resp.status();
        let Some(loc) = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
        else {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!(
                "no redirect: HTTP {status}: {}",
                body.chars().take(400).collect::<String>()
            ));
        };
        let next = url.join(&loc).map_err(|e| e.to_string())?;
        if next.scheme() == redirect_base.scheme()
            && next.host_str() == redirect_base.host_str()
            && next.port() == redirect_base.port()
            && next.path() == redirect_base.path()
        {
            return Ok(AuthResponse {
                params: next.query_pairs().into_owned().collect(),
            });
        }
        url = next;
    }
    Err("too many redirects".into())
}

/// Discovery → authorization code with PKCE (S256) → code exchange → ID token verification
/// (signature via JWKS, `iss`, `aud`, `exp`, nonce) → refresh.
pub async fn code_pkce_refresh(cfg: &RpConfig) -> Result<RpResult, String> {
    let http = http();
    let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(|e| e.to_string())?;
    let meta = CoreProviderMetadata::discover_async(issuer, &OAuthHttp::new(http.clone()))
        .await
        .map_err(|e| format!("discovery: {e:?}"))?;
    let token_endpoint = meta
        .token_endpoint()
        .map(|t| t.to_string())
        .ok_or("no token endpoint")?;
    let client =
        CoreClient::from_provider_metadata(meta, ClientId::new(cfg.client_id.clone()), None)
            .set_redirect_uri(
                RedirectUrl::new(cfg.redirect_uri.clone()).map_err(|e| e.to_string())?,
            );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for s in &cfg.scopes {
        req = req.add_scope(Scope::new(s.clone()));
    }
    for (k, v) in &cfg.extra {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let (auth_url, csrf, nonce) = req.set_pkce_challenge(challenge).url();
    let resp = follow_to_redirect(&http, auth_url.as_str(), &cfg.redirect_uri).await?;
    if let Some(err) = resp.params.get("error") {
        return Err(format!(
            "authorization error {err}: {:?}",
            resp.params.get("error_description")
        ));
    }
    if resp.params.get("state") != Some(csrf.secret()) {
        return Err(format!("state mismatch: {:?}", resp.params.get("state")));
    }
    let iss_in_redirect = resp.params.get("iss").cloned();
    if let Some(iss) = &iss_in_redirect
        && iss != &cfg.issuer
    {
        return Err(format!("RFC 9207 iss mismatch: {iss}"));
    }
    let code = resp
        .params
        .get("code")
        .cloned()
        .ok_or("no code in the redirect")?;
    let verifier_secret = verifier.secret().clone();
    let token = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(verifier)
        .request_async(&OAuthHttp::new(http.clone()))
        .await
        .map_err(|e| format!("code exchange: {e:?}"))?;
    let id_token = token.id_token().ok_or("no id_token")?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .map_err(|e| format!("id token: {e:?}"))?;
    let subject = claims.subject().to_string();
    let preferred_username = claims.preferred_username().map(|u| u.to_string());
    let rt = token.refresh_token().ok_or("no refresh_token")?.clone();
    let mut refresh = client
        .exchange_refresh_token(&rt)
        .map_err(|e| e.to_string())?;
    if let Some(scopes) = &cfg.refresh_scopes {
        for s in scopes {
            refresh = refresh.add_scope(Scope::new(s.clone()));
        }
    }
    let refreshed = refresh
        .request_async(&OAuthHttp::new(http.clone()))
        .await
        .map_err(|e| format!("refresh: {e:?}"))?;
    Ok(RpResult {
        subject,
        preferred_username,
        iss_in_redirect,
        access_token: token.access_token().secret().clone(),
        scope: token.scopes().map(|s| {
            s.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        refresh_token: rt.secret().clone(),
        refreshed_access_token: refreshed.access_token().secret().clone(),
        refreshed_refresh_token: refreshed
            .refresh_token()
            .map(|r: &RefreshToken| r.secret().clone()),
        refreshed_scope: refreshed.scopes().map(|s| {
            s.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        used_code: code,
        used_verifier: verifier_secret,
        token_endpoint,
    })
}

/// Decodes a JWT payload without verifying it (for claim assertions after verification by
/// other means).
pub fn jwt_payload(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).expect("JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}
