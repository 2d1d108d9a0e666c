//! Signing the approver in (`docs/CONTRACTS.md` §4): OAuth 2.0 authorization code flow
//! with PKCE (S256) for a public native client, RFC 8252 loopback redirect, RFC 9207 `iss` check.
//!
//! - Discovery: `<authority>/.well-known/openid-configuration` (`openidconnect`).
//! - The redirect: a listener of our own on `127.0.0.1:<free port>` serves connections
//!   concurrently until the redirect request of this sign-in (`GET /callback?code&state[&iss]`
//!   with its `state`) arrives, answers it a "you can close this tab" page, and answers and
//!   ignores anything else (favicon requests, probes, callbacks with another `state`).
//! - Tokens: Entra issues one resource per access token, so the code exchange gets the approval
//!   API token (scope `api_scope openid profile offline_access`), and the refresh token is then
//!   redeemed separately for the Graph scopes. Access tokens stay in memory and are refreshed
//!   two minutes before they expire; the (rotating) refresh token lives only in a
//!   [`TokenStore`]: the OS keyring ([`KeyringStore`]) in the app, [`MemoryStore`] in tests.
//!
//! Must not depend on tauri: the browser opener is injected.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope,
    TokenResponse,
};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::error::{ReviewerError, codes};
use crate::settings::Settings;
use crate::types::SessionInfo;

/// The path of the loopback redirect URI: `http://127.0.0.1:<port>/callback`.
pub const REDIRECT_PATH: &str = "/callback";
/// How long sign-in waits for the browser to come back.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);
/// Access tokens are refreshed this long before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// The keyring service name.
pub const KEYRING_SERVICE: &str = "guestlist";

/// The injected browser opener: gets the authorize URL, opens it (the app: the Tauri opener
/// plugin; tests: an HTTP client). `Err(message)` aborts the sign-in with `auth.browser`.
pub type UrlOpener = Box<dyn FnOnce(&str) -> Result<(), String> + Send>;

pub use loopback::{MAX_LOOPBACK_CONNECTIONS, Redirect, await_redirect, check_redirect};
pub use store::{KeyringStore, MemoryStore, TokenStore};

mod loopback;
mod store;

/// An access token string whose `Debug` prints `[redacted]`.
#[derive(Clone)]
struct AccessToken {
    secret: String,
    expires_at: OffsetDateTime,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessToken([redacted], expires {})", self.expires_at)
    }
}

impl AccessToken {
    fn fresh(&self) -> bool {
        self.expires_at - OffsetDateTime::now_utc() > REFRESH_MARGIN
    }
}

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, Clone)]
struct Provider {
    authority: String,
    client_id: String,
    metadata: CoreProviderMetadata,
    end_session_endpoint: Option<String>,
}

impl Provider {
    fn client(&self, redirect: Option<RedirectUrl>) -> OidcClient {
        let c = CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(self.client_id.clone()),
            None,
        );
        match redirect {
            Some(r) => c.set_redirect_uri(r),
            None => c,
        }
    }
}

#[derive(Debug, Default)]
struct Tokens {
    provider: Option<Provider>,
    api: Option<AccessToken>,
    graph: Option<AccessToken>,
    id_token: Option<String>,
}

/// The approver's session: provider metadata, in-memory access tokens, and the token store.
#[derive(Debug)]
pub struct Auth {
    store: Arc<dyn TokenStore>,
    http: guestlist_graph::oauth_http::OAuthHttp,
    tokens: tokio::sync::Mutex<Tokens>,
}

fn offline_or(code: guestlist_core::Code, what: &str, e: impl std::fmt::Display) -> ReviewerError {
    let msg = e.to_string();
    let lower = msg.to_lowercase();
    if lower.contains("connect")
        || lower.contains("timed out")
        || lower.contains("dns")
        || lower.contains("error sending request")
    {
        ReviewerError::offline(format!("{what}: {msg}"))
    } else {
        ReviewerError::new(code, format!("{what}: {msg}"))
    }
}

/// The token store account name of a settings' authority + client.
pub fn account_key(settings: &Settings) -> String {
    format!("{}|{}", settings.client_id, settings.authority)
}

/// The payload of a JWT, decoded but NOT verified (for display only: roles of our own token).
fn jwt_payload(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Auth {
    /// A session manager over `store`.
    ///
    /// Errors: `storage.error` if the HTTP client cannot be built.
    pub fn new(store: Arc<dyn TokenStore>) -> Result<Self, ReviewerError> {
        let http = reqwest::Client::builder()
            // Never follow redirects on the token endpoint (SSRF), per the oauth2 crate docs.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(ReviewerError::storage)?;
        Ok(Auth {
            store,
            http: guestlist_graph::oauth_http::OAuthHttp::new(http),
            tokens: tokio::sync::Mutex::new(Tokens::default()),
        })
    }

    async fn store_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TokenStore) -> Result<T, ReviewerError> + Send + 'static,
    ) -> Result<T, ReviewerError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ReviewerError::new(codes::KEYRING_UNAVAILABLE, e.to_string()))?
    }

    /// `true` when a refresh token is stored for these settings.
    ///
    /// Errors: `auth.keyring_unavailable`.
    pub async fn has_refresh_token(&self, settings: &Settings) -> Result<bool, ReviewerError> {
        let key = account_key(settings);
        Ok(self.store_call(move |s| s.load(&key)).await?.is_some())
    }

    async fn provider<'a>(
        &self,
        tokens: &'a mut Tokens,
        settings: &Settings,
    ) -> Result<&'a Provider, ReviewerError> {
        let stale = tokens
            .provider
            .as_ref()
            .is_none_or(|p| p.authority != settings.authority || p.client_id != settings.client_id);
        if stale {
            let issuer = IssuerUrl::new(settings.authority.clone()).map_err(|e| {
                ReviewerError::new(codes::SETTINGS, format!("settings.authority: {e}"))
            })?;
            let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
                .await
                .map_err(|e| {
                    offline_or(
                        codes::SIGN_IN_FAILED,
                        "OpenID Connect discovery",
                        error_chain(&e),
                    )
                })?;
            // `end_session_endpoint` is not part of the core metadata type: read it raw.
            let raw_url = format!(
                "{}/.well-known/openid-configuration",
                settings.authority.trim_end_matches('/')
            );
            let end_session_endpoint = async {
                let v: Value = self
                    .http
                    .client()
                    .get(&raw_url)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                v.get("end_session_endpoint")?.as_str().map(str::to_owned)
            }
            .await;
            tokens.provider = Some(Provider {
                authority: settings.authority.clone(),
                client_id: settings.client_id.clone(),
                metadata,
                end_session_endpoint,
            });
        }
        tokens
            .provider
            .as_ref()
            .ok_or_else(|| ReviewerError::new(codes::SIGN_IN_FAILED, "no provider"))
    }

    /// Runs the interactive sign-in: binds the loopback listener, calls `open_url` with the
    /// authorize URL, waits (at most [`SIGN_IN_TIMEOUT`]) for the redirect, checks `state` and
    /// `iss`, redeems the code with the PKCE verifier for the approval API token, verifies the
    /// ID token (signature, issuer, audience, nonce) and stores the refresh token.
    ///
    /// Errors: `auth.browser` (opener failed), `auth.sign_in_failed` (refused, mismatch,
    /// timeout, bad ID token), `network.offline`, `auth.keyring_unavailable`.
    pub async fn sign_in(
        &self,
        settings: &Settings,
        open_url: UrlOpener,
    ) -> Result<SessionInfo, ReviewerError> {
        let mut tokens = self.tokens.lock().await;
        let provider = self.provider(&mut tokens, settings).await?.clone();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
            ReviewerError::new(codes::SIGN_IN_FAILED, format!("loopback listener: {e}"))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| ReviewerError::new(codes::SIGN_IN_FAILED, e.to_string()))?
            .port();
        let redirect = RedirectUrl::new(format!("http://127.0.0.1:{port}{REDIRECT_PATH}"))
            .map_err(|e| ReviewerError::new(codes::SIGN_IN_FAILED, e.to_string()))?;
        let client = provider.client(Some(redirect));
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in ["profile", "offline_access", settings.api_scope.as_str()] {
            req = req.add_scope(Scope::new(s.into()));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        open_url(url.as_str()).map_err(|e| {
            ReviewerError::new(codes::BROWSER, format!("cannot open the browser: {e}"))
        })?;
        let redirect =
            tokio::time::timeout(SIGN_IN_TIMEOUT, await_redirect(&listener, state.secret()))
                .await
                .map_err(|_| {
                    ReviewerError::new(
                        codes::SIGN_IN_FAILED,
                        "the browser did not come back within 5 minutes",
                    )
                })??;
        drop(listener);
        let issuer = provider.metadata.issuer().as_str().to_owned();
        let code = check_redirect(&redirect, state.secret(), &issuer)?;
        let resp = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ReviewerError::new(codes::SIGN_IN_FAILED, e.to_string()))?
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| offline_or(codes::SIGN_IN_FAILED, "token request", error_chain(&e)))?;
        let id_token = resp.id_token().ok_or_else(|| {
            ReviewerError::new(codes::SIGN_IN_FAILED, "the token response has no id_token")
        })?;
        let claims: CoreIdTokenClaims = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .map_err(|e| {
                ReviewerError::new(codes::SIGN_IN_FAILED, format!("ID token rejected: {e}"))
            })?
            .clone();
        let id_token_str = id_token.to_string();
        let refresh = resp.refresh_token().ok_or_else(|| {
            ReviewerError::new(
                codes::SIGN_IN_FAILED,
                "no refresh token (is offline_access allowed?)",
            )
        })?;
        let api = AccessToken {
            secret: resp.access_token().secret().clone(),
            expires_at: OffsetDateTime::now_utc()
                + resp.expires_in().unwrap_or(Duration::from_secs(3600)),
        };
        let raw = jwt_payload(&id_token_str).unwrap_or(Value::Null);
        let api_claims = jwt_payload(&api.secret).unwrap_or(Value::Null);
        let username = claims
            .preferred_username()
            .map(|u| u.as_str().to_owned())
            .or_else(|| raw["preferred_username"].as_str().map(str::to_owned))
            .unwrap_or_else(|| claims.subject().as_str().to_owned());
        let info = SessionInfo {
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned())
                .unwrap_or_else(|| username.clone()),
            username,
            object_id: raw["oid"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| claims.subject().as_str().to_owned()),
            tenant_id: raw["tid"].as_str().map(str::to_owned),
            roles: api_claims["roles"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            api_token_expires_at: rfc3339(api.expires_at),
        };
        let key = account_key(settings);
        let secret = refresh.secret().clone();
        self.store_call(move |s| s.save(&key, &secret)).await?;
        tokens.api = Some(api);
        tokens.graph = None;
        tokens.id_token = Some(id_token_str);
        Ok(info)
    }

    /// A fresh approval API access token (refreshed silently when it expires within
    /// [`REFRESH_MARGIN`]).
    ///
    /// Errors: `auth.not_signed_in` (no, expired or revoked refresh token: `invalid_grant`,
    /// `interaction_required`), `settings.invalid` (the authority refuses the request itself:
    /// `invalid_scope`, `unauthorized_client`, `invalid_client` — signing in again would not
    /// help), `network.offline`, `auth.keyring_unavailable`.
    pub async fn api_token(&self, settings: &Settings) -> Result<String, ReviewerError> {
        self.token(settings, false).await
    }

    /// A fresh Microsoft Graph access token for `settings.graph_scopes` (see
    /// [`Auth::api_token`]).
    ///
    /// Errors: as [`Auth::api_token`].
    pub async fn graph_token(&self, settings: &Settings) -> Result<String, ReviewerError> {
        self.token(settings, true).await
    }

    /// Forgets the in-memory approval API token (after a 401), so the next call refreshes.
    pub async fn invalidate_api_token(&self) {
        self.tokens.lock().await.api = None;
    }

    async fn token(&self, settings: &Settings, graph: bool) -> Result<String, ReviewerError> {
        let mut tokens = self.tokens.lock().await;
        let slot = if graph { &tokens.graph } else { &tokens.api };
        if let Some(t) = slot
            && t.fresh()
        {
            return Ok(t.secret.clone());
        }
        let key = account_key(settings);
        let k2 = key.clone();
        let refresh = self
            .store_call(move |s| s.load(&k2))
            .await?
            .ok_or_else(|| ReviewerError::new(codes::NOT_SIGNED_IN, "sign in first"))?;
        let provider = self.provider(&mut tokens, settings).await?.clone();
        let client = provider.client(None);
        let rt = RefreshToken::new(refresh);
        let scopes: Vec<Scope> = if graph {
            settings
                .graph_scopes
                .iter()
                .map(|s| Scope::new(s.clone()))
                .chain([Scope::new("offline_access".into())])
                .collect()
        } else {
            vec![
                Scope::new(settings.api_scope.clone()),
                Scope::new("offline_access".into()),
            ]
        };
        let resp = client
            .exchange_refresh_token(&rt)
            .map_err(|e| ReviewerError::new(codes::SIGN_IN_FAILED, e.to_string()))?
            .add_scopes(scopes)
            .request_async(&self.http)
            .await
            .map_err(|e| {
                let chain = error_chain(&e);
                if chain.contains("invalid_grant") || chain.contains("interaction_required") {
                    ReviewerError::new(
                        codes::NOT_SIGNED_IN,
                        format!("the session expired; sign in again ({chain})"),
                    )
                } else if let Some(what) = refused_configuration(&chain) {
                    // Signing in again would not help: the settings or the app registration
                    // must change. The session stays (the other resource may still work).
                    ReviewerError::new(
                        codes::SETTINGS,
                        format!(
                            "the authority refused the {} token: {what} — check {} in the settings and the app registration ({chain})",
                            if graph { "Microsoft Graph" } else { "approval API" },
                            if graph { "graph_scopes" } else { "api_scope and client_id" },
                        ),
                    )
                } else {
                    offline_or(codes::NOT_SIGNED_IN, "token refresh", chain)
                }
            })?;
        if let Some(new_rt) = resp.refresh_token() {
            let secret = new_rt.secret().clone();
            self.store_call(move |s| s.save(&key, &secret)).await?;
        }
        let t = AccessToken {
            secret: resp.access_token().secret().clone(),
            expires_at: OffsetDateTime::now_utc()
                + resp.expires_in().unwrap_or(Duration::from_secs(3600)),
        };
        let secret = t.secret.clone();
        if graph {
            tokens.graph = Some(t);
        } else {
            tokens.api = Some(t);
        }
        Ok(secret)
    }

    /// When the in-memory approval API token expires, if there is one.
    pub async fn api_token_expiry(&self) -> Option<String> {
        self.tokens
            .lock()
            .await
            .api
            .as_ref()
            .map(|t| rfc3339(t.expires_at))
    }

    /// Signs out: deletes the refresh token from the store, drops the access tokens, and tells
    /// the end-session endpoint (best effort: the browser's own session is the authority's).
    ///
    /// Errors: `auth.keyring_unavailable` when the refresh token cannot be deleted (the
    /// in-memory tokens are dropped anyway).
    pub async fn sign_out(&self, settings: &Settings) -> Result<(), ReviewerError> {
        let mut tokens = self.tokens.lock().await;
        tokens.api = None;
        tokens.graph = None;
        let hint = tokens.id_token.take();
        if let Some(end) = tokens
            .provider
            .as_ref()
            .and_then(|p| p.end_session_endpoint.clone())
        {
            let mut q = vec![("client_id", settings.client_id.clone())];
            if let Some(h) = hint {
                q.push(("id_token_hint", h));
            }
            let r = self.http.client().get(&end).query(&q).send().await;
            tracing::info!(ok = r.is_ok(), "end-session endpoint called");
        }
        let key = account_key(settings);
        self.store_call(move |s| s.delete(&key)).await
    }
}

/// An error and its sources, joined (the oauth2 errors hide the server's `error` in sources).
/// The OAuth 2.0 token error codes (RFC 6749 §5.2) that mean the request itself is wrong for
/// this client — scopes not granted or not consented, client not allowed — rather than an
/// expired session: a configuration problem, reported as `settings.invalid`.
fn refused_configuration(chain: &str) -> Option<&'static str> {
    [
        (
            "invalid_scope",
            "a requested scope is not granted (invalid_scope)",
        ),
        (
            "unauthorized_client",
            "the client may not use this grant (unauthorized_client)",
        ),
        (
            "invalid_client",
            "the client is not known or not allowed (invalid_client)",
        ),
    ]
    .into_iter()
    .find(|(code, _)| chain.contains(code))
    .map(|(_, what)| what)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn redirect_checks() {
        let ok = Redirect {
            code: Some("c".into()),
            state: Some("s".into()),
            iss: Some("https://i/".into()),
            ..Default::default()
        };
        assert_eq!(check_redirect(&ok, "s", "https://i").unwrap(), "c");
        let e = check_redirect(&ok, "other", "https://i").unwrap_err();
        assert!(e.message.contains("state"));
        let e = check_redirect(&ok, "s", "https://evil").unwrap_err();
        assert!(e.message.contains("RFC 9207"));
        let no_iss = Redirect {
            iss: None,
            ..ok.clone()
        };
        assert!(check_redirect(&no_iss, "s", "https://i").is_ok());
        let err = Redirect {
            error: Some("access_denied".into()),
            error_description: Some("user cancelled".into()),
            ..Default::default()
        };
        let e = check_redirect(&err, "s", "https://i").unwrap_err();
        assert_eq!(e.code, codes::SIGN_IN_FAILED);
        assert!(e.message.contains("user cancelled"));
    }

    async fn get(port: u16, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn loopback_listener_ignores_other_paths_and_reads_the_redirect() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { await_redirect(&listener, "xyz").await });
        assert_eq!(get(port, "/favicon.ico").await.status(), 404);
        let page = get(port, "/callback?code=abc&state=xyz&iss=https%3A%2F%2Fi").await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("close this tab"));
        let r = task.await.unwrap().unwrap();
        assert_eq!(r.code.as_deref(), Some("abc"));
        assert_eq!(r.state.as_deref(), Some("xyz"));
        assert_eq!(r.iss.as_deref(), Some("https://i"));
    }

    /// A local process that knows the port cannot end the sign-in: callbacks with a wrong or
    /// missing `state` (even the authority's `error` form) are answered 400 and ignored; idle
    /// and half-sent connections held open do not delay the real redirect.
    #[tokio::test]
    async fn loopback_listener_ignores_wrong_state_and_serves_connections_concurrently() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { await_redirect(&listener, "the-state").await });
        // Connections that send nothing, or half a request head, and stay open.
        let mut idle = Vec::new();
        for i in 0..(MAX_LOOPBACK_CONNECTIONS / 2) {
            let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            if i % 2 == 0 {
                c.write_all(b"GET /callback?code=slow&state=the-state HTTP/1.1\r\nHo")
                    .await
                    .unwrap();
            }
            idle.push(c);
        }
        for path in [
            "/callback?code=evil&state=other",
            "/callback?code=evil",
            "/callback?error=access_denied&state=the-stat",
            "/callback?code=evil&state=the-state-",
        ] {
            let r = get(port, path).await;
            assert_eq!(r.status(), 400, "{path}");
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("not the sign-in in progress")
            );
            assert!(!task.is_finished(), "{path} ended the wait");
        }
        // The real redirect, while the idle connections are still open (well within their
        // 10 s read timeout, which the old one-at-a-time loop waited out first).
        let page = tokio::time::timeout(
            Duration::from_secs(5),
            get(port, "/callback?code=real&state=the-state"),
        )
        .await
        .expect("the real redirect was not served while other connections were open");
        assert_eq!(page.status(), 200);
        let r = task.await.unwrap().unwrap();
        assert_eq!(r.code.as_deref(), Some("real"));
        drop(idle);
    }

    /// The authority's own error redirect (with this sign-in's `state`) ends the wait, and
    /// `check_redirect` reports it.
    #[tokio::test]
    async fn loopback_listener_returns_the_authoritys_error_redirect() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move { await_redirect(&listener, "s1").await });
        let page = get(
            port,
            "/callback?error=access_denied&error_description=no&state=s1",
        )
        .await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("did not complete"));
        let r = task.await.unwrap().unwrap();
        let e = check_redirect(&r, "s1", "https://i").unwrap_err();
        assert!(e.message.contains("access_denied"));
    }

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryStore::new();
        assert_eq!(s.load("a").unwrap(), None);
        s.save("a", "rt").unwrap();
        assert_eq!(s.load("a").unwrap().as_deref(), Some("rt"));
        s.delete("a").unwrap();
        s.delete("a").unwrap();
        assert_eq!(s.load("a").unwrap(), None);
    }

    #[test]
    fn access_tokens_are_redacted_in_debug() {
        let t = AccessToken {
            secret: "eyJsecret".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(!format!("{t:?}").contains("eyJ"));
    }
}
