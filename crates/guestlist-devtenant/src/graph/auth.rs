//! Graph's caller authentication and authorization: the bearer token ("Microsoft identity
//! platform access tokens", validated as the Microsoft libraries do) and the delegated or
//! application permission each operation needs ("Microsoft Graph permissions reference",
//! "List users"/"Create user"/"Create invitation"/"Add members"/"Grant an appRoleAssignment to
//! a user"/"Add sponsor" permission tables; CONTRACTS.md §3).
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
    /// "Get group", "List group members".
    ReadGroups,
    /// "Add members".
    WriteGroupMembers,
    /// "List appRoleAssignments granted to a user".
    ReadUserAssignments,
    /// "List appRoleAssignments granted for a service principal" (`appRoleAssignedTo`).
    ReadAssignedTo,
    /// "Grant an appRoleAssignment to a user".
    AssignToUser,
    /// "Grant an appRoleAssignment for a service principal": also needs to read the service
    /// principal (`Application.Read.All` or `Directory.Read.All`).
    AssignViaServicePrincipal,
    /// "List sponsors".
    ReadSponsors,
    /// "Add sponsor".
    WriteSponsors,
}

/// Directory role template IDs ("Microsoft Entra built-in roles") the grant operations accept
/// in delegated calls besides User Administrator and Global Administrator.
const ROLE_GROUPS_ADMINISTRATOR: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";
const ROLE_DIRECTORY_WRITERS: &str = "9360feb5-f418-4baa-8175-e2a00bac4301";
const ROLE_APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const ROLE_CLOUD_APPLICATION_ADMINISTRATOR: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
const ROLE_PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// The permissions (any one of them) an operation needs, from the "Permissions" table of its
/// Graph doc page (least privileged first), plus a second set that must also be held (any one).
fn permissions(need: Need) -> (&'static [&'static str], &'static [&'static str]) {
    const NONE: &[&str] = &[];
    match need {
        Need::Read => (
            &[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            NONE,
        ),
        Need::WriteUsers => (&["User.ReadWrite.All", "Directory.ReadWrite.All"], NONE),
        Need::Invite => (
            &[
                "User.Invite.All",
                "User.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            NONE,
        ),
        Need::ReadGroups => (
            &[
                "GroupMember.Read.All",
                "Group.Read.All",
                "GroupMember.ReadWrite.All",
                "Group.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            NONE,
        ),
        Need::WriteGroupMembers => (
            &[
                "GroupMember.ReadWrite.All",
                "Group.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            NONE,
        ),
        Need::ReadUserAssignments => (
            &[
                "Directory.Read.All",
                "AppRoleAssignment.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            NONE,
        ),
        Need::ReadAssignedTo => (
            &[
                "Application.Read.All",
                "Directory.Read.All",
                "AppRoleAssignment.ReadWrite.All",
                "Application.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            NONE,
        ),
        Need::AssignToUser => (&["AppRoleAssignment.ReadWrite.All"], NONE),
        Need::AssignViaServicePrincipal => (
            &["AppRoleAssignment.ReadWrite.All"],
            &[
                "Application.Read.All",
                "Directory.Read.All",
                "Application.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
        ),
        Need::ReadSponsors => (
            &[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            NONE,
        ),
        Need::WriteSponsors => (&["User.ReadWrite.All", "Directory.ReadWrite.All"], NONE),
    }
}

fn has_any(list: &[String], wanted: &[&str]) -> bool {
    list.iter()
        .any(|x| wanted.iter().any(|w| x.eq_ignore_ascii_case(w)))
}

/// Delegated access is the intersection of the token's scopes and what the user may do: user
/// writes need the User Administrator (or Global Administrator) directory role; invitations
/// need a member user (the default "guest invite settings" let members invite).
pub(super) fn authorized(s: &Shared, p: &Principal, need: Need) -> bool {
    let (perms, also) = permissions(need);
    let held = if p.app_only { &p.roles } else { &p.scp };
    if !has_any(held, perms) || (!also.is_empty() && !has_any(held, also)) {
        return false;
    }
    if p.app_only {
        return true;
    }
    let cfg_user = p
        .oid
        .as_deref()
        .and_then(|oid| s.cfg.users.iter().find(|u| u.object_id == oid));
    let wids: &[String] = cfg_user
        .map(|u| u.directory_roles.as_slice())
        .unwrap_or(&p.wids);
    match need {
        Need::Read
        | Need::ReadGroups
        | Need::ReadUserAssignments
        | Need::ReadAssignedTo
        | Need::ReadSponsors => true,
        Need::WriteUsers => has_any(wids, &[d::ROLE_USER_ADMINISTRATOR, GLOBAL_ADMIN]),
        // "Add sponsor": Directory Writers or User Administrator.
        Need::WriteSponsors => has_any(
            wids,
            &[
                d::ROLE_USER_ADMINISTRATOR,
                ROLE_DIRECTORY_WRITERS,
                GLOBAL_ADMIN,
            ],
        ),
        // "Add members": Groups Administrator, Directory Writers, User Administrator (for
        // groups that are not role-assignable), or a Global Administrator.
        Need::WriteGroupMembers => has_any(
            wids,
            &[
                d::ROLE_USER_ADMINISTRATOR,
                ROLE_GROUPS_ADMINISTRATOR,
                ROLE_DIRECTORY_WRITERS,
                GLOBAL_ADMIN,
            ],
        ),
        // "Grant an appRoleAssignment …": the least privileged roles the pages list.
        Need::AssignToUser | Need::AssignViaServicePrincipal => has_any(
            wids,
            &[
                d::ROLE_USER_ADMINISTRATOR,
                ROLE_DIRECTORY_WRITERS,
                ROLE_APPLICATION_ADMINISTRATOR,
                ROLE_CLOUD_APPLICATION_ADMINISTRATOR,
                ROLE_PRIVILEGED_ROLE_ADMINISTRATOR,
                GLOBAL_ADMIN,
            ],
        ),
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
