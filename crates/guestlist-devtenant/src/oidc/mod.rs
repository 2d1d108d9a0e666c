//! The Microsoft identity platform v2.0 endpoints under `/{tenant}/` (tenant = ID or domain):
//!
//! | route | emulates |
//! |---|---|
//! | `GET /{tenant}/v2.0/.well-known/openid-configuration` | "OpenID Connect on the Microsoft identity platform", discovery document |
//! | `GET, POST /{tenant}/oauth2/v2.0/authorize` | "Microsoft identity platform and OAuth 2.0 authorization code flow", request an authorization code |
//! | `POST /{tenant}/oauth2/v2.0/token` | same page, redeem a code / refresh; "OAuth 2.0 client credentials flow" |
//! | `GET /{tenant}/discovery/v2.0/keys` | the tenant's JWKS |
//! | `GET /{tenant}/oauth2/v2.0/logout` | "Send a sign-out request" |
//!
//! Errors: the token endpoint answers Entra's JSON (`error`, `error_description` starting with
//! an `AADSTS` code and ending with trace/correlation IDs and timestamp, `error_codes`,
//! `timestamp`, `trace_id`, `correlation_id`). The authorize endpoint redirects errors to a valid
//! `redirect_uri` (RFC 6749 §4.1.2.1) and otherwise renders an HTML error page.
//!
//! Layers: `authorize` (the authorize endpoint and its account picker), `token` (the token
//! endpoint's grants) and `page` (HTML pages and redirects); this module holds the routes,
//! discovery, the JWKS, sign-out and Entra's JSON error shape.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use serde_json::{Value, json};

use crate::state::Shared;

mod authorize;
mod page;
mod token;

pub use page::found;

use authorize::{authorize_get, authorize_post};
use page::{ValidClient, error_page, page, redirect_with};
use token::token;

/// Routes of the sign-in endpoints.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize_get).post(authorize_post),
        )
        .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/oauth2/v2.0/logout", get(logout))
        .route(
            "/{host}/{tenant}/v2.0/.well-known/openid-configuration",
            get(customer_discovery),
        )
        .route("/{host}/{tenant}/discovery/v2.0/keys", get(customer_jwks))
}

/// An Entra-style OAuth error answer (token endpoint JSON).
#[derive(Debug)]
pub struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

impl EntraError {
    /// Builds an error: `error` is the RFC 6749 code, `code` the AADSTS number, `message` the
    /// text after `AADSTS{code}: `.
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            message: message.into(),
        }
    }
    fn bad(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, code, message)
    }
    fn missing(param: &str) -> Self {
        Self::bad(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{param}'."),
        )
    }
    /// The JSON body, including fresh trace and correlation IDs.
    pub fn body(&self) -> Value {
        let trace = uuid::Uuid::new_v4().to_string();
        let corr = uuid::Uuid::new_v4().to_string();
        let t = time::OffsetDateTime::now_utc();
        let ts = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        json!({
            "error": self.error,
            "error_description": format!("AADSTS{}: {} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}", self.code, self.message),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
        })
    }
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let body = self.body();
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(body),
        )
            .into_response()
    }
}

fn tenant_not_found(tenant: &str) -> EntraError {
    EntraError::bad(
        "invalid_tenant",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

async fn discovery(State(s): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    if !s.is_tenant(&tenant) {
        return tenant_not_found(&tenant).into_response();
    }
    let jwks_uri = format!("{}/{}/discovery/v2.0/keys", s.base_url, s.cfg.tenant_id);
    discovery_document(&s, s.issuer(), jwks_uri).into_response()
}

/// An external tenant's customer authority, `https://{subdomain}.ciamlogin.com/{tid}/v2.0`,
/// emulated under devtenant's own address with the host as the first path segment:
/// `{base}/{subdomain}.ciamlogin.com/{tenant}/v2.0/.well-known/openid-configuration`. The
/// document's `issuer` is the real form (what the tokens of the tenant's custom authentication
/// extensions carry); its `jwks_uri` is local and publishes the tenant's keys.
async fn customer_discovery(
    State(s): State<Arc<Shared>>,
    Path((host, tenant)): Path<(String, String)>,
) -> Response {
    match customer_authority(&s, &host, &tenant) {
        Ok(issuer) => {
            let jwks_uri = format!(
                "{}/{}/{}/discovery/v2.0/keys",
                s.base_url,
                s.customer_host(),
                s.cfg.tenant_id
            );
            discovery_document(&s, issuer, jwks_uri).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn customer_jwks(
    State(s): State<Arc<Shared>>,
    Path((host, tenant)): Path<(String, String)>,
) -> Response {
    match customer_authority(&s, &host, &tenant) {
        Ok(issuer) => {
            let keys: Vec<Value> = s.lock().keys.iter().map(|k| k.jwk(&issuer)).collect();
            axum::Json(json!({ "keys": keys })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The customer issuer when `host` is this external tenant's `{subdomain}.ciamlogin.com` and
/// `tenant` names it; AADSTS90002 otherwise (also for a workforce tenant).
fn customer_authority(s: &Shared, host: &str, tenant: &str) -> Result<String, EntraError> {
    match s.customer_issuer() {
        Some(issuer) if host.eq_ignore_ascii_case(&s.customer_host()) && s.is_tenant(tenant) => {
            Ok(issuer)
        }
        _ => Err(tenant_not_found(tenant)),
    }
}

/// The OpenID Connect discovery document for `issuer`. The authorize, token and logout
/// endpoints are always the tenant's (workforce) endpoints.
fn discovery_document(s: &Shared, issuer: String, jwks_uri: String) -> axum::Json<Value> {
    let b = &s.base_url;
    let t = &s.cfg.tenant_id;
    axum::Json(json!({
        "token_endpoint": format!("{b}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": jwks_uri,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{b}/{t}/oauth2/v2.0/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "devtenant",
        "msgraph_host": b.trim_start_matches("http://").trim_start_matches("https://"),
    }))
}

async fn jwks(State(s): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    if !s.is_tenant(&tenant) {
        return tenant_not_found(&tenant).into_response();
    }
    let issuer = s.issuer();
    let keys: Vec<Value> = s.lock().keys.iter().map(|k| k.jwk(&issuer)).collect();
    axum::Json(json!({ "keys": keys })).into_response()
}

/// Whether `requested` matches the registered redirect URI `registered`: same scheme and host;
/// for loopback hosts (`127.0.0.1`, `[::1]`, `localhost`) any port (RFC 8252 §7.3), else the same
/// port; the same path, or any path starting with the registered one's prefix when it ends in
/// `*` (a devtenant extension); the same query; no fragment.
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    let (reg_text, wildcard) = match registered.strip_suffix('*') {
        Some(p) => (p, true),
        None => (registered, false),
    };
    let (Ok(reg), Ok(req)) = (url::Url::parse(reg_text), url::Url::parse(requested)) else {
        return false;
    };
    if req.fragment().is_some() || reg.scheme() != req.scheme() || reg.host_str() != req.host_str()
    {
        return false;
    }
    let loopback = matches!(req.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    if !loopback && reg.port_or_known_default() != req.port_or_known_default() {
        return false;
    }
    let path_ok = if wildcard {
        req.path().starts_with(reg.path())
    } else {
        reg.path() == req.path()
    };
    path_ok && (wildcard || reg.query() == req.query())
}

/// Parameters of the authorize request (query string on GET, form body on POST).
type Params = HashMap<String, String>;

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

async fn logout(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    if !s.is_tenant(&tenant) {
        return error_page(
            StatusCode::BAD_REQUEST,
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if let Some(target) = p.get("post_logout_redirect_uri")
        && s.cfg
            .public_clients
            .iter()
            .flat_map(|c| c.redirect_uris.iter())
            .any(|r| redirect_matches(r, target))
    {
        let vc = ValidClient {
            redirect_uri: target.clone(),
            state: p.get("state").map(String::as_str),
            response_mode: "query",
        };
        return redirect_with(&vc, &[]);
    }
    Html(page("Signed out", "<h1>You signed out of your account</h1><p class=\"sub\">It's a good idea to close all browser windows.</p>")).into_response()
}

#[cfg(test)]
mod tests {
    use super::redirect_matches;

    #[test]
    fn loopback_redirects_match_on_any_port() {
        assert!(redirect_matches(
            "http://127.0.0.1/*",
            "http://127.0.0.1:53124/callback"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:1/callback"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:1/other"
        ));
        assert!(redirect_matches(
            "http://localhost",
            "http://localhost:8080/"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/*",
            "http://127.0.0.2:1/callback"
        ));
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/*",
            "https://127.0.0.1/x"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/*",
            "http://127.0.0.1:5/x#frag"
        ));
    }
}
