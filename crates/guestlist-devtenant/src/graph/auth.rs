//! Graph's caller authentication and authorization: the bearer token ("Microsoft identity
//! platform access tokens", validated as the Microsoft libraries do) and the delegated or
//! application permission each operation needs ("Microsoft Graph permissions reference",
//! "List users"/"Create user"/"Create invitation" permission tables; CONTRACTS.md §3).
//! Answers 401 `InvalidAuthenticationToken` with `WWW-Authenticate`, or 403
//! `Authorization_RequestDenied`.

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use super::{Ctx, GraphResponse, odata_error};
use crate::defaults as d;
use crate::state::Shared;

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// The caller, from a validated Graph access token.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Calling app (`azp`, or `appid` for v1 tokens).
    pub azp: String,
    /// Tenant (`tid`).
    pub tid: String,
    /// Signed-in user (`oid`) for delegated tokens.
    pub oid: Option<String>,
    /// Delegated permissions (`scp`, split on spaces); empty for app-only tokens.
    pub scp: Vec<String>,
    /// App roles (`roles`): application permissions of app-only tokens.
    pub roles: Vec<String>,
    /// Directory roles (`wids`).
    pub wids: Vec<String>,
    /// No `scp` claim: an application token.
    pub app_only: bool,
}

fn unauthorized(s: &Shared, ctx: &Ctx, message: &str) -> GraphResponse {
    let mut r = odata_error(
        ctx,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    r.headers.push((
        "WWW-Authenticate",
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}/{}/oauth2/v2.0/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            s.base_url, s.cfg.tenant_id
        ),
    ));
    r
}

/// Validates the bearer token: RS256 signature by one of the tenant's keys (by `kid`), `iss` =
/// the tenant issuer, `aud` = `https://graph.microsoft.com`, `exp`/`nbf` (60 s leeway, as the
/// Microsoft validation libraries).
pub(super) fn authenticate(
    s: &Shared,
    ctx: &Ctx,
    headers: &HeaderMap,
) -> Result<Principal, GraphResponse> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .unwrap_or("")
        .trim();
    if token.is_empty() {
        return Err(unauthorized(s, ctx, "Access token is empty."));
    }
    let Ok(hdr) = jsonwebtoken::decode_header(token) else {
        return Err(unauthorized(
            s,
            ctx,
            "CompactToken parsing failed with error code: 80049217",
        ));
    };
    let keys = s.lock().keys.clone();
    let key = match &hdr.kid {
        Some(kid) => keys.iter().find(|k| &k.kid == kid),
        None => None,
    };
    let Some(key) = key else {
        return Err(unauthorized(
            s,
            ctx,
            "Access token validation failure. Signing key not found.",
        ));
    };
    let Ok(dk) = key.decoding_key() else {
        return Err(unauthorized(s, ctx, "Access token validation failure."));
    };
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[d::GRAPH_RESOURCE]);
    v.set_issuer(&[s.issuer()]);
    v.validate_nbf = true;
    let data = match jsonwebtoken::decode::<Map<String, Value>>(token, &dk, &v) {
        Ok(data) => data,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind as K;
            let msg = match e.kind() {
                K::ExpiredSignature => "Lifetime validation failed, the token is expired.",
                K::ImmatureSignature => "Lifetime validation failed, the token is not yet valid.",
                K::InvalidAudience => "Access token validation failure. Invalid audience.",
                K::InvalidIssuer => "Access token validation failure. Invalid issuer.",
                K::InvalidSignature => "Access token validation failure. Invalid signature.",
                _ => "Access token validation failure.",
            };
            return Err(unauthorized(s, ctx, msg));
        }
    };
    let c = data.claims;
    let str_of = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let list = |k: &str| -> Vec<String> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let scp: Option<Vec<String>> =
        str_of("scp").map(|x| x.split_whitespace().map(str::to_string).collect());
    Ok(Principal {
        azp: str_of("azp")
            .or_else(|| str_of("appid"))
            .unwrap_or_default(),
        tid: str_of("tid").unwrap_or_default(),
        oid: str_of("oid"),
        app_only: scp.is_none(),
        scp: scp.unwrap_or_default(),
        roles: list("roles"),
        wids: list("wids"),
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Need {
    Read,
    WriteUsers,
    Invite,
}

fn has_any(list: &[String], wanted: &[&str]) -> bool {
    list.iter()
        .any(|x| wanted.iter().any(|w| x.eq_ignore_ascii_case(w)))
}

/// Delegated access is the intersection of the token's scopes and what the user may do: user
/// writes need the User Administrator (or Global Administrator) directory role; invitations
/// need a member user (the default "guest invite settings" let members invite).
pub(super) fn authorized(s: &Shared, p: &Principal, need: Need) -> bool {
    let perms = match need {
        Need::Read => &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ][..],
        Need::WriteUsers => &["User.ReadWrite.All", "Directory.ReadWrite.All"][..],
        Need::Invite => &[
            "User.Invite.All",
            "User.ReadWrite.All",
            "Directory.ReadWrite.All",
        ][..],
    };
    if p.app_only {
        return has_any(&p.roles, perms);
    }
    if !has_any(&p.scp, perms) {
        return false;
    }
    let cfg_user = p
        .oid
        .as_deref()
        .and_then(|oid| s.cfg.users.iter().find(|u| u.object_id == oid));
    let wids: &[String] = cfg_user
        .map(|u| u.directory_roles.as_slice())
        .unwrap_or(&p.wids);
    match need {
        Need::Read => true,
        Need::WriteUsers => has_any(wids, &[d::ROLE_USER_ADMINISTRATOR, GLOBAL_ADMIN]),
        Need::Invite => {
            cfg_user.is_some()
                || has_any(
                    wids,
                    &[
                        d::ROLE_USER_ADMINISTRATOR,
                        d::ROLE_GUEST_INVITER,
                        GLOBAL_ADMIN,
                    ],
                )
        }
    }
}

pub(super) fn forbidden(ctx: &Ctx) -> GraphResponse {
    odata_error(
        ctx,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}
