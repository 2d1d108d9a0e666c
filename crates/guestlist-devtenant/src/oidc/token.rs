//! `POST /{tenant}/oauth2/v2.0/token` ("Microsoft identity platform and OAuth 2.0
//! authorization code flow", redeem a code and refresh; "Microsoft identity platform and the
//! OAuth 2.0 client credentials flow"): the `authorization_code` (with PKCE), `refresh_token`
//! and `client_credentials` grants, client authentication by form or HTTP Basic, and Entra's
//! `AADSTS` errors for each refusal (CONTRACTS.md §4).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{EntraError, Params, random_token, tenant_not_found};
use crate::config::UserConfig;
use crate::state::{RefreshGrant, Shared, now_unix};
use crate::tokens::{self, ResolvedScopes, ScopeError};

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

pub(super) async fn token(
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
