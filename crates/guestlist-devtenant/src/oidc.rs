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

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::config::UserConfig;
use crate::state::{AuthCode, RefreshGrant, Shared, now_unix};
use crate::tokens::{self, ResolvedScopes, ScopeError};

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
    let b = &s.base_url;
    let t = &s.cfg.tenant_id;
    axum::Json(json!({
        "token_endpoint": format!("{b}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{b}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": s.issuer(),
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
    .into_response()
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

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const PAGE_STYLE: &str = "body{font-family:'Segoe UI',system-ui,sans-serif;background:#f2f2f2;margin:0}\
main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
h1{font-size:24px;font-weight:600;margin:0 0 16px}p.sub{color:#555}\
button{display:block;width:100%;text-align:left;padding:12px;margin:8px 0;border:1px solid #ccc;background:#fff;cursor:pointer;font-size:15px}\
button:hover{background:#eef5fc;border-color:#0067b8}small{color:#666}.err{color:#a80000;background:#fde7e9;padding:12px}\
footer{margin-top:24px;font-size:12px;color:#888}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{t}</title><style>{PAGE_STYLE}</style></head><body><main>{body}<footer>devtenant: an emulated Microsoft Entra ID tenant for development. Not Microsoft.</footer></main></body></html>",
        t = html_escape(title)
    )
}

fn error_page(status: StatusCode, code: u32, message: &str) -> Response {
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1><p class=\"err\">AADSTS{code}: {}</p>",
        html_escape(message)
    );
    (status, Html(page("Sign in - error", &body))).into_response()
}

/// Parameters of the authorize request (query string on GET, form body on POST).
type Params = HashMap<String, String>;

struct ValidClient<'a> {
    redirect_uri: String,
    state: Option<&'a str>,
    response_mode: &'a str,
}

fn redirect_with(vc: &ValidClient<'_>, pairs: &[(&str, &str)]) -> Response {
    let mut all: Vec<(&str, &str)> = pairs.to_vec();
    if let Some(st) = vc.state {
        all.push(("state", st));
    }
    match vc.response_mode {
        "form_post" => {
            let inputs: String = all
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            let body = format!(
                "<form method=\"post\" action=\"{}\" id=\"f\">{inputs}<noscript><button>Continue</button></noscript></form><script>document.getElementById('f').submit()</script>",
                html_escape(&vc.redirect_uri)
            );
            Html(page("Working...", &body)).into_response()
        }
        mode => {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(all.iter())
                .finish();
            let sep = if mode == "fragment" {
                "#"
            } else if vc.redirect_uri.contains('?') {
                "&"
            } else {
                "?"
            };
            let location = if encoded.is_empty() {
                vc.redirect_uri.clone()
            } else {
                format!("{}{sep}{encoded}", vc.redirect_uri)
            };
            found(&location)
        }
    }
}

/// A `302 Found` redirect, as Entra answers the authorize endpoint.
pub fn found(location: &str) -> Response {
    match HeaderValue::try_from(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            50011,
            "The redirect URI is not a valid header value.",
        ),
    }
}

fn redirect_error(vc: &ValidClient<'_>, error: &str, code: u32, message: &str) -> Response {
    let desc = format!(
        "AADSTS{code}: {message} Trace ID: {} Correlation ID: {}",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    redirect_with(vc, &[("error", error), ("error_description", &desc)])
}

async fn authorize_get(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    authorize(&s, &tenant, &p, false)
}

async fn authorize_post(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let p: Params = url::form_urlencoded::parse(&body).into_owned().collect();
    authorize(&s, &tenant, &p, true)
}

fn is_pkce_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn authorize(s: &Shared, tenant: &str, p: &Params, from_form: bool) -> Response {
    if !s.is_tenant(tenant) {
        return error_page(
            StatusCode::BAD_REQUEST,
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(client) = s
        .cfg
        .public_clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                s.cfg.tenant_name
            ),
        );
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            900144,
            "The request body must contain the following parameter: 'redirect_uri'.",
        );
    };
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, redirect_uri))
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."
            ),
        );
    }
    let response_mode = get("response_mode").unwrap_or("query");
    let mut vc = ValidClient {
        redirect_uri: redirect_uri.to_string(),
        state: get("state"),
        response_mode: "query",
    };
    if !matches!(response_mode, "query" | "fragment" | "form_post") {
        return redirect_error(
            &vc,
            "invalid_request",
            900144,
            &format!("The 'response_mode' value '{response_mode}' is not supported."),
        );
    }
    vc.response_mode = response_mode;
    match get("response_type") {
        None => {
            return redirect_error(
                &vc,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'response_type'.",
            );
        }
        Some("code") => {}
        Some(other) => {
            return redirect_error(
                &vc,
                "unsupported_response_type",
                700054,
                &format!("response_type '{other}' is not enabled for the application."),
            );
        }
    }
    let Some(scope) = get("scope") else {
        return redirect_error(
            &vc,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    match tokens::resolve_scopes(&s.cfg.resources, crate::defaults::GRAPH_RESOURCE, scope) {
        Ok(_) | Err(ScopeError::MultipleResources) => {}
        Err(ScopeError::UnknownResource(r)) => {
            return redirect_error(
                &vc,
                "invalid_resource",
                500011,
                &format!(
                    "The resource principal named {r} was not found in the tenant named {}.",
                    s.cfg.tenant_name
                ),
            );
        }
        Err(ScopeError::InvalidScope(_) | ScopeError::Empty) => {
            return redirect_error(
                &vc,
                "invalid_scope",
                70011,
                &format!(
                    "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                ),
            );
        }
    }
    let Some(challenge) = get("code_challenge") else {
        return redirect_error(
            &vc,
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for this application (devtenant requires PKCE S256 for every public client).",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return redirect_error(
            &vc,
            "invalid_request",
            9002325,
            "Only the code_challenge_method 'S256' is supported.",
        );
    }
    if !is_pkce_challenge(challenge) {
        return redirect_error(
            &vc,
            "invalid_request",
            501491,
            "Invalid size of Code_Challenge parameter.",
        );
    }
    let hint = get("login_hint");
    let user = hint.and_then(|h| s.cfg.users.iter().find(|u| u.upn.eq_ignore_ascii_case(h)));
    match (user, hint) {
        (Some(user), _) => sign_in(s, &vc, client_id, scope, challenge, get("nonce"), user),
        (None, None) if get("prompt") == Some("none") => redirect_error(
            &vc,
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        ),
        (None, hint) => {
            let warn = hint.map(|h| {
                format!(
                    "<p class=\"err\">We couldn't find an account with the username {}. Pick one of the accounts below.</p>",
                    html_escape(h)
                )
            });
            let status = if from_form && hint.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            (
                status,
                Html(sign_in_page(
                    s,
                    tenant,
                    client_id,
                    &client.name,
                    p,
                    warn.as_deref(),
                )),
            )
                .into_response()
        }
    }
}

fn sign_in_page(
    s: &Shared,
    tenant: &str,
    client_id: &str,
    client_name: &str,
    p: &Params,
    warn: Option<&str>,
) -> String {
    let hidden: String = p
        .iter()
        .filter(|(k, _)| k.as_str() != "login_hint")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    let buttons: String = s
        .cfg
        .users
        .iter()
        .map(|u| {
            format!(
                "<button type=\"submit\" name=\"login_hint\" value=\"{upn}\"><strong>{name}</strong><br><small>{upn}</small></button>",
                upn = html_escape(&u.upn),
                name = html_escape(&u.display_name)
            )
        })
        .collect();
    let body = format!(
        "<h1>Pick an account</h1><p class=\"sub\">to continue to {app} <small>({client_id})</small> in {tenant_name}</p>{warn}\
<form method=\"post\" action=\"/{tenant}/oauth2/v2.0/authorize\">{hidden}{buttons}</form>",
        app = html_escape(client_name),
        client_id = html_escape(client_id),
        tenant_name = html_escape(&s.cfg.tenant_name),
        warn = warn.unwrap_or(""),
        tenant = html_escape(tenant),
    );
    page("Sign in to your account", &body)
}

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn sign_in(
    s: &Shared,
    vc: &ValidClient<'_>,
    client_id: &str,
    scope: &str,
    challenge: &str,
    nonce: Option<&str>,
    user: &UserConfig,
) -> Response {
    let code = format!("1.{}", random_token(48));
    let now = now_unix();
    {
        let mut inner = s.lock();
        inner.codes.retain(|_, c| c.expires_at > now);
        inner.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_string(),
                redirect_uri: vc.redirect_uri.clone(),
                scope: scope.to_string(),
                code_challenge: challenge.to_string(),
                nonce: nonce.map(str::to_string),
                oid: user.object_id.clone(),
                expires_at: now + s.cfg.code_lifetime_secs as i64,
                redeemed: false,
            },
        );
    }
    tracing::info!(user = %user.upn, client_id, "signed in at the authorize endpoint");
    let session_state = uuid::Uuid::new_v4().to_string();
    redirect_with(vc, &[("code", &code), ("session_state", &session_state)])
}

/// Client authentication found on a token request.
struct ClientAuth {
    id: Option<String>,
    secret: Option<String>,
}

fn client_auth(headers: &HeaderMap, form: &Params) -> ClientAuth {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        && let Some((id, secret)) = basic.split_once(':')
    {
        let dec = |x: &str| {
            url::form_urlencoded::parse(format!("a={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return ClientAuth {
            id: dec(id),
            secret: dec(secret),
        };
    }
    ClientAuth {
        id: form.get("client_id").cloned(),
        secret: form.get("client_secret").cloned(),
    }
}

async fn token(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !s.is_tenant(&tenant) {
        return tenant_not_found(&tenant).into_response();
    }
    let form: Params = url::form_urlencoded::parse(&body).into_owned().collect();
    let auth = client_auth(&headers, &form);
    let result = match form.get("grant_type").map(String::as_str) {
        None | Some("") => Err(EntraError::missing("grant_type")),
        Some("authorization_code") => grant_code(&s, &form, &auth),
        Some("refresh_token") => grant_refresh(&s, &form, &auth),
        Some("client_credentials") => grant_client_credentials(&s, &form, &auth),
        Some(other) => Err(EntraError::bad(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    };
    match result {
        Ok(v) => {
            let mut resp = axum::Json(v).into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            resp.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => {
            tracing::info!(error = e.error, code = e.code, "token request refused");
            e.into_response()
        }
    }
}

fn public_client<'a>(
    s: &'a Shared,
    auth: &ClientAuth,
) -> Result<&'a crate::config::PublicClientConfig, EntraError> {
    let id = auth
        .id
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| EntraError::missing("client_id"))?;
    let client = s
        .cfg
        .public_clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(id));
    match client {
        Some(c) => {
            if auth.secret.as_deref().is_some_and(|x| !x.is_empty()) {
                return Err(EntraError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    700025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
                ));
            }
            Ok(c)
        }
        None if s
            .cfg
            .confidential_clients
            .iter()
            .any(|c| c.client_id.eq_ignore_ascii_case(id)) =>
        {
            Err(EntraError::bad(
                "unauthorized_client",
                700016,
                format!(
                    "Application '{id}' is a confidential client in devtenant and may only use the client_credentials grant."
                ),
            ))
        }
        None => Err(unknown_client(s, id)),
    }
}

fn unknown_client(s: &Shared, id: &str) -> EntraError {
    EntraError::bad(
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
            s.cfg.tenant_name
        ),
    )
}

fn scope_error(scope: &str, e: ScopeError, s: &Shared) -> EntraError {
    match e {
        ScopeError::MultipleResources => EntraError::bad(
            "invalid_request",
            28000,
            format!(
                "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
            ),
        ),
        ScopeError::UnknownResource(r) => EntraError::bad(
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {r} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                s.cfg.tenant_name
            ),
        ),
        ScopeError::InvalidScope(_) => EntraError::bad(
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ),
        ScopeError::Empty => EntraError::bad(
            "invalid_request",
            28003,
            "Provided value for the input parameter scope cannot be empty when requesting an access token using the provided authorization code. Please specify a valid scope.",
        ),
    }
}

fn user_by_oid<'a>(s: &'a Shared, oid: &str) -> Result<&'a UserConfig, EntraError> {
    s.cfg.users.iter().find(|u| u.object_id == oid).ok_or_else(|| {
        EntraError::bad("invalid_grant", 50034, "The user account does not exist in the directory. To sign into this application, the account must be added to the directory.")
    })
}

/// Issues the token response for a user: access token for the resolved resource, `id_token`
/// with `openid`, a new refresh token with `offline_access`.
fn user_tokens(
    s: &Shared,
    user: &UserConfig,
    client_id: &str,
    scope: &str,
    rs: &ResolvedScopes,
    nonce: Option<&str>,
) -> Result<Value, EntraError> {
    let now = now_unix();
    let server_error = |e: crate::error::DevTenantError| {
        EntraError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            e.to_string(),
        )
    };
    let access = s
        .sign(&tokens::user_access_claims(s, user, client_id, rs, now))
        .map_err(server_error)?;
    let mut out = json!({
        "token_type": "Bearer",
        "scope": rs.response_scope(&s.cfg.resources),
        "expires_in": s.cfg.access_token_lifetime_secs,
        "ext_expires_in": s.cfg.access_token_lifetime_secs,
        "access_token": access,
    });
    if rs.oidc.contains("offline_access") {
        let rt = format!("1.{}", random_token(64));
        s.lock().refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                client_id: client_id.to_string(),
                oid: user.object_id.clone(),
                scope: scope.to_string(),
                expires_at: now + s.cfg.refresh_token_lifetime_secs as i64,
            },
        );
        s.persist_logged();
        out["refresh_token"] = json!(rt);
    }
    if rs.oidc.contains("openid") {
        out["id_token"] = json!(
            s.sign(&tokens::id_token_claims(s, user, client_id, rs, nonce, now))
                .map_err(server_error)?
        );
    }
    Ok(out)
}

fn grant_code(s: &Shared, form: &Params, auth: &ClientAuth) -> Result<Value, EntraError> {
    let client = public_client(s, auth)?;
    let code_value = form
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| EntraError::missing("code"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| EntraError::missing("redirect_uri"))?;
    let now = now_unix();
    let code = s.lock().codes.get(code_value).cloned().ok_or_else(|| {
        EntraError::bad(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    })?;
    if code.redeemed {
        return Err(EntraError::bad(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if code.expires_at <= now {
        return Err(EntraError::bad(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    if !code.client_id.eq_ignore_ascii_case(&client.client_id) {
        return Err(EntraError::bad(
            "invalid_grant",
            70000,
            "The provided authorization code was issued to a different client.",
        ));
    }
    if &code.redirect_uri != redirect_uri {
        return Err(EntraError::bad(
            "invalid_grant",
            70000,
            "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code.",
        ));
    }
    let verifier = form
        .get("code_verifier")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| EntraError::missing("code_verifier"))?;
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != code.code_challenge {
        return Err(EntraError::bad(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ));
    }
    let scope = form
        .get("scope")
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| code.scope.clone());
    let rs = tokens::resolve_scopes(&s.cfg.resources, crate::defaults::GRAPH_RESOURCE, &scope)
        .map_err(|e| scope_error(&scope, e, s))?;
    let user = user_by_oid(s, &code.oid)?;
    {
        let mut inner = s.lock();
        match inner.codes.get_mut(code_value) {
            Some(c) if !c.redeemed => c.redeemed = true,
            _ => {
                return Err(EntraError::bad(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
                ));
            }
        }
    }
    user_tokens(
        s,
        user,
        &client.client_id,
        &scope,
        &rs,
        code.nonce.as_deref(),
    )
}

fn grant_refresh(s: &Shared, form: &Params, auth: &ClientAuth) -> Result<Value, EntraError> {
    let client = public_client(s, auth)?;
    let rt = form
        .get("refresh_token")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| EntraError::missing("refresh_token"))?;
    let now = now_unix();
    let grant = s.lock().refresh_tokens.get(rt).cloned().ok_or_else(|| {
        EntraError::bad(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    })?;
    if grant.expires_at <= now {
        return Err(EntraError::bad(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client.client_id) {
        return Err(EntraError::bad(
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed: the refresh token was issued to a different client.",
        ));
    }
    let scope = form
        .get("scope")
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| grant.scope.clone());
    let rs = tokens::resolve_scopes(&s.cfg.resources, crate::defaults::GRAPH_RESOURCE, &scope)
        .map_err(|e| scope_error(&scope, e, s))?;
    let user = user_by_oid(s, &grant.oid)?;
    if s.cfg.rotate_refresh_tokens {
        s.lock().refresh_tokens.remove(rt);
    }
    // A refresh always yields a new refresh token when the original grant had offline_access.
    let mut rs = rs;
    let mut scope = scope;
    if grant
        .scope
        .split_whitespace()
        .any(|x| x.eq_ignore_ascii_case("offline_access"))
        && !rs.oidc.contains("offline_access")
    {
        rs.oidc.insert("offline_access".into());
        scope.push_str(" offline_access");
    }
    let out = user_tokens(s, user, &client.client_id, &scope, &rs, None);
    s.persist_logged();
    out
}

fn grant_client_credentials(
    s: &Shared,
    form: &Params,
    auth: &ClientAuth,
) -> Result<Value, EntraError> {
    let id = auth
        .id
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| EntraError::missing("client_id"))?;
    let Some(client) = s
        .cfg
        .confidential_clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(id))
    else {
        if s.cfg
            .public_clients
            .iter()
            .any(|c| c.client_id.eq_ignore_ascii_case(id))
        {
            return Err(EntraError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        return Err(unknown_client(s, id));
    };
    match auth.secret.as_deref() {
        None | Some("") => {
            return Err(EntraError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        Some(secret) if secret != client.client_secret => {
            return Err(EntraError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{id}'."
                ),
            ));
        }
        Some(_) => {}
    }
    let scope = form
        .get("scope")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| EntraError::missing("scope"))?;
    let Some(resource_id) = scope.strip_suffix("/.default").filter(|r| !r.contains(' ')) else {
        return Err(EntraError::bad(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let rs = tokens::resolve_scopes(&s.cfg.resources, crate::defaults::GRAPH_RESOURCE, &scope)
        .map_err(|e| scope_error(&scope, e, s))?;
    let res = &s.cfg.resources[rs.resource];
    let roles: Vec<String> = client
        .app_permissions
        .iter()
        .filter(|(k, _)| {
            res.identifiers.iter().any(|i| {
                i.trim_end_matches('/')
                    .eq_ignore_ascii_case(k.trim_end_matches('/'))
            })
        })
        .flat_map(|(_, v)| v.iter().cloned())
        .collect();
    if !client
        .app_permissions
        .keys()
        .any(|k| res.identifiers.iter().any(|i| i.eq_ignore_ascii_case(k)))
    {
        return Err(EntraError::bad(
            "invalid_grant",
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{id}' for resource '{resource_id}'."
            ),
        ));
    }
    let now = now_unix();
    let token = s
        .sign(&tokens::app_access_claims(
            s,
            &client.client_id,
            &roles,
            res,
            now,
        ))
        .map_err(|e| {
            EntraError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                50000,
                e.to_string(),
            )
        })?;
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": s.cfg.access_token_lifetime_secs,
        "ext_expires_in": s.cfg.access_token_lifetime_secs,
        "access_token": token,
    }))
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
