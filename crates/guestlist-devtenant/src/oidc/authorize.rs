//! `GET, POST /{tenant}/oauth2/v2.0/authorize` ("Microsoft identity platform and OAuth 2.0
//! authorization code flow", request an authorization code): public clients only, registered
//! redirect URIs (loopback on any port, RFC 8252 §7.3), PKCE S256 required, an account picker
//! over the configured people, and single-use codes bound to client, redirect URI and
//! challenge (CONTRACTS.md §4).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::page::{ValidClient, error_page, html_escape, page, redirect_error, redirect_with};
use super::{Params, random_token, redirect_matches};
use crate::config::UserConfig;
use crate::state::{AuthCode, Shared, now_unix};
use crate::tokens::{self, ScopeError};

pub(super) async fn authorize_get(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    authorize(&s, &tenant, &p, false)
}

pub(super) async fn authorize_post(
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
