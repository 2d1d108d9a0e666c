//! The Microsoft Graph v1.0 subset Guestlist calls (CONTRACTS.md §3), at `/v1.0/...`:
//!
//! | route | Graph doc page |
//! |---|---|
//! | `GET /users` (`$filter`, `$select`, `$top`, `$skiptoken`) | "List users" |
//! | `POST /users` | "Create user" |
//! | `GET, PATCH, DELETE /users/{id or userPrincipalName}` | "Get user", "Update user", "Delete user" |
//! | `POST /invitations` | "Create invitation" |
//! | `POST /$batch` | "Combine multiple HTTP requests using JSON batching" |
//!
//! Every request needs a bearer token signed by this tenant for `https://graph.microsoft.com`
//! (401 `InvalidAuthenticationToken` otherwise) with the right permission (403
//! `Authorization_RequestDenied`). Bodies are validated against the strict schemas of
//! `graph-subset.json`. Errors use the ODataError shape
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`, and every
//! answer carries `request-id` and `client-request-id` headers. Throttling ("Microsoft Graph
//! throttling guidance") and injected faults answer 429/503 with `Retry-After`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rand::RngExt as _;
use serde_json::{Map, Value, json};

use crate::defaults as d;
use crate::net::ConnKill;
use crate::schema::{self, SchemaViolation};
use crate::state::{Bucket, GraphUser, Shared, now_graph};

/// Routes of the Graph emulation (`/v1.0/{*path}`).
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/{*path}", any(entry))
        .route("/redeem", axum::routing::get(redeem))
}

const JSON_CT: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Properties Graph returns on users when there is no `$select` ("user resource type",
/// "Properties returned by default").
pub const DEFAULT_USER_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// User properties that are read-only on Graph v1.0 (the "user resource type" page marks them
/// "Read-only"); setting one in a POST or PATCH body is a 400.
pub const READ_ONLY_USER_PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "creationType",
    "deletedDateTime",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "assignedPlans",
    "provisionedPlans",
    "assignedLicenses",
    "licenseAssignmentStates",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "proxyAddresses",
    "securityIdentifier",
    "serviceProvisioningErrors",
    "signInActivity",
    "signInSessionsValidFromDateTime",
    "isManagementRestricted",
    "isResourceAccount",
    "identityParentId",
];

/// Invitation properties set by the service only.
pub const READ_ONLY_INVITATION_PROPERTIES: &[&str] = &[
    "id",
    "inviteRedeemUrl",
    "invitedUser",
    "status",
    "invitedUserSponsors",
];

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Correlation data of one Graph HTTP request.
#[derive(Clone, Debug)]
pub struct Ctx {
    request_id: String,
    client_request_id: String,
}

/// One Graph answer before it becomes HTTP (or a `$batch` item).
#[derive(Clone, Debug)]
pub struct GraphResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Extra headers (`Retry-After`, `WWW-Authenticate`, `Location`).
    pub headers: Vec<(&'static str, String)>,
    /// JSON body, absent for 204.
    pub body: Option<Value>,
}

impl GraphResponse {
    fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            headers: vec![],
            body: Some(body),
        }
    }
    fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: vec![],
            body: None,
        }
    }
    fn into_http(self, ctx: &Ctx) -> Response {
        let mut resp = match self.body {
            Some(b) => (
                self.status,
                [(header::CONTENT_TYPE, JSON_CT)],
                b.to_string(),
            )
                .into_response(),
            None => self.status.into_response(),
        };
        let h = resp.headers_mut();
        for (name, value) in self.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                h.insert(n, v);
            }
        }
        if let Ok(v) = HeaderValue::try_from(ctx.request_id.as_str()) {
            h.insert("request-id", v);
        }
        if let Ok(v) = HeaderValue::try_from(ctx.client_request_id.as_str()) {
            h.insert("client-request-id", v);
        }
        resp
    }
}

/// An ODataError answer: `{"error":{"code","message","innerError":{"date","request-id",
/// "client-request-id"}}}`.
pub fn odata_error(ctx: &Ctx, status: StatusCode, code: &str, message: &str) -> GraphResponse {
    GraphResponse::json(
        status,
        json!({"error": {"code": code, "message": message, "innerError": {
            "date": now_graph(), "request-id": ctx.request_id, "client-request-id": ctx.client_request_id}}}),
    )
}

fn bad_request(ctx: &Ctx, message: &str) -> GraphResponse {
    odata_error(ctx, StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

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
fn authenticate(s: &Shared, ctx: &Ctx, headers: &HeaderMap) -> Result<Principal, GraphResponse> {
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
enum Need {
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
fn authorized(s: &Shared, p: &Principal, need: Need) -> bool {
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

fn forbidden(ctx: &Ctx) -> GraphResponse {
    odata_error(
        ctx,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn retry_after(mut r: GraphResponse, secs: u64) -> GraphResponse {
    r.headers.push(("Retry-After", secs.max(1).to_string()));
    r
}

/// Takes one token from the (tenant, app, read/write) bucket, or returns the seconds until one
/// is available.
fn take_token(s: &Shared, p: &Principal, write: bool) -> Result<(), u64> {
    let limit = if write {
        s.cfg.throttle.write_limit
    } else {
        s.cfg.throttle.read_limit.unwrap_or(u32::MAX)
    };
    if limit == u32::MAX {
        return Ok(());
    }
    let limit = f64::from(limit.max(1));
    let window = s.cfg.throttle.window_secs.max(1) as f64;
    let rate = limit / window;
    let now = Instant::now();
    let mut inner = s.lock();
    let b = inner
        .buckets
        .entry((p.tid.clone(), p.azp.clone(), write))
        .or_insert(Bucket {
            tokens: limit,
            at: now,
        });
    let elapsed = now.duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * rate).min(limit);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(())
    } else {
        Err(((1.0 - b.tokens) / rate).ceil() as u64)
    }
}

async fn entry(
    State(s): State<Arc<Shared>>,
    conn: Option<axum::Extension<ConnectInfo<ConnKill>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let ctx = Ctx {
        request_id,
        client_request_id,
    };
    let (latency, drop) = {
        let mut inner = s.lock();
        let latency = inner.faults.latency_ms;
        let rate = inner.faults.drop_rate;
        let drop = rate > 0.0 && inner.rng.random_bool(rate.min(1.0));
        (latency, drop)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if drop && let Some(axum::Extension(ConnectInfo(c))) = &conn {
        tracing::info!(%method, %uri, "fault injection: dropping the connection");
        c.kill();
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let path = uri
        .path()
        .strip_prefix("/v1.0")
        .unwrap_or(uri.path())
        .to_string();
    let query = uri.query().unwrap_or("").to_string();
    let principal = match authenticate(&s, &ctx, &headers) {
        Ok(p) => p,
        Err(r) => return r.into_http(&ctx),
    };
    let recorded_body = serde_json::from_slice::<Value>(&body).ok();
    let resp = if path == "/$batch" || path == "/%24batch" {
        if method == Method::POST {
            batch(&s, &ctx, &principal, &body)
        } else {
            method_not_allowed(&ctx)
        }
    } else {
        let parsed = if body.is_empty() {
            Ok(None)
        } else {
            serde_json::from_slice::<Value>(&body).map(Some)
        };
        match parsed {
            Ok(b) => execute(&s, &ctx, &principal, &method, &path, &query, b),
            Err(_) => bad_json(&ctx),
        }
    };
    record_call(&s, &method, &uri, recorded_body, resp.status.as_u16());
    tracing::info!(%method, path = %path, status = resp.status.as_u16(), request_id = %ctx.request_id, "graph");
    resp.into_http(&ctx)
}

/// Keeps one authenticated Graph call for `GET /_devtenant/graph-calls` (the last
/// [`crate::state::RECORDED_CALLS_MAX`]).
fn record_call(s: &Shared, method: &Method, uri: &Uri, body: Option<Value>, status: u16) {
    let raw = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    let raw = raw.strip_prefix("/v1.0").unwrap_or(raw);
    let path = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    let mut inner = s.lock();
    if inner.calls.len() >= crate::state::RECORDED_CALLS_MAX {
        inner.calls.pop_front();
    }
    inner.calls.push_back(crate::state::RecordedCall {
        method: method.as_str().to_owned(),
        path,
        body,
        status,
    });
}

fn bad_json(ctx: &Ctx) -> GraphResponse {
    odata_error(
        ctx,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
    )
}

fn method_not_allowed(ctx: &Ctx) -> GraphResponse {
    odata_error(
        ctx,
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "The HTTP method is not supported for this resource.",
    )
}

/// Runs one Graph operation (a plain request or a `$batch` item): throttling, injected 429/503,
/// authorization, then the operation.
fn execute(
    s: &Shared,
    ctx: &Ctx,
    p: &Principal,
    method: &Method,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> GraphResponse {
    let write = *method != Method::GET;
    if let Err(secs) = take_token(s, p, write) {
        return retry_after(
            odata_error(
                ctx,
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
            ),
            secs,
        );
    }
    let (throttle, unavailable, after) = {
        let mut inner = s.lock();
        let f = inner.faults.clone();
        let t = f.throttle_rate > 0.0 && inner.rng.random_bool(f.throttle_rate.min(1.0));
        let u =
            !t && f.unavailable_rate > 0.0 && inner.rng.random_bool(f.unavailable_rate.min(1.0));
        (t, u, f.retry_after_secs)
    };
    if throttle {
        return retry_after(
            odata_error(
                ctx,
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
            ),
            after,
        );
    }
    if unavailable {
        return retry_after(
            odata_error(
                ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            ),
            after,
        );
    }
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|seg| {
            url::form_urlencoded::parse(format!("x={}", seg.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let need = match (method.as_str(), seg.as_slice()) {
        ("GET", ["users"] | ["users", _]) => Need::Read,
        ("POST", ["users"]) | ("PATCH" | "DELETE", ["users", _]) => Need::WriteUsers,
        ("POST", ["invitations"]) => Need::Invite,
        (_, ["users"] | ["users", _] | ["invitations"]) => return method_not_allowed(ctx),
        _ => {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "Resource not found for the segment '{}'.",
                    seg.first().copied().unwrap_or("")
                ),
            );
        }
    };
    if !authorized(s, p, need) {
        return forbidden(ctx);
    }
    let body_or_empty = || body.clone().unwrap_or(Value::Null);
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["users"]) => list_users(s, ctx, query),
        ("POST", ["users"]) => create_user(s, ctx, body_or_empty()),
        ("GET", ["users", id]) => get_user(s, ctx, id, query),
        ("PATCH", ["users", id]) => patch_user(s, ctx, id, body_or_empty()),
        ("DELETE", ["users", id]) => delete_user(s, ctx, id),
        ("POST", ["invitations"]) => create_invitation(s, ctx, body_or_empty()),
        _ => method_not_allowed(ctx),
    }
}

// ---------------------------------------------------------------------------------------------
// Query options

/// A parsed `$filter` (the forms Guestlist uses).
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `mail eq '…'` or `userPrincipalName eq '…'` (property name as written in Graph).
    Eq(&'static str, String),
    /// `mail in ('…', '…')` or `userPrincipalName in (…)`: up to [`FILTER_MAX_CLAUSES`] values.
    In(&'static str, Vec<String>),
    /// `identities/any(c:c/issuerAssignedId eq '…' and c/issuer eq '…')` (either order).
    Identity {
        /// `c/issuer`.
        issuer: String,
        /// `c/issuerAssignedId`.
        issuer_assigned_id: String,
    },
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with(' ') {
            self.i += 1;
        }
    }
    fn ident(&mut self) -> &'a str {
        self.ws();
        let start = self.i;
        while let Some(c) = self.s[self.i..].chars().next() {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '.' {
                self.i += c.len_utf8();
            } else {
                break;
            }
        }
        &self.s[start..self.i]
    }
    fn punct(&mut self, c: char) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// An OData string literal: `'…'` with `''` for a quote.
    fn string(&mut self) -> Option<String> {
        self.ws();
        if !self.s[self.i..].starts_with('\'') {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.s[self.i..].chars().next()?;
            self.i += c.len_utf8();
            if c == '\'' {
                if self.s[self.i..].starts_with('\'') {
                    self.i += 1;
                    out.push('\'');
                } else {
                    return Some(out);
                }
            } else {
                out.push(c);
            }
        }
    }
    fn end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }
}

/// Parses the supported `$filter` forms.
///
/// # Errors
/// The Graph message for an unsupported or malformed clause.
pub fn parse_filter(f: &str) -> Result<Filter, String> {
    let unsupported = || {
        format!(
            "Unsupported or invalid query filter clause specified for property '{}' of resource 'User'.",
            f.split_whitespace().next().unwrap_or(f)
        )
    };
    let mut c = Cursor { s: f, i: 0 };
    let first = c.ident();
    if first.eq_ignore_ascii_case("identities/any") {
        if !c.punct('(') {
            return Err(unsupported());
        }
        let var = c.ident().to_string();
        if var.is_empty() || !c.punct(':') {
            return Err(unsupported());
        }
        let mut issuer = None;
        let mut assigned = None;
        for i in 0..2 {
            if i == 1 && !c.ident().eq_ignore_ascii_case("and") {
                return Err(unsupported());
            }
            let prop = c.ident();
            let Some(name) = prop.strip_prefix(&format!("{var}/")) else {
                return Err(unsupported());
            };
            if !c.ident().eq_ignore_ascii_case("eq") {
                return Err(unsupported());
            }
            let Some(value) = c.string() else {
                return Err(unsupported());
            };
            match name {
                "issuer" if issuer.is_none() => issuer = Some(value),
                "issuerAssignedId" if assigned.is_none() => assigned = Some(value),
                _ => return Err(unsupported()),
            }
        }
        if !c.punct(')') || !c.end() {
            return Err(unsupported());
        }
        match (issuer, assigned) {
            (Some(issuer), Some(issuer_assigned_id)) => Ok(Filter::Identity {
                issuer,
                issuer_assigned_id,
            }),
            _ => Err(unsupported()),
        }
    } else {
        let prop = if first.eq_ignore_ascii_case("mail") {
            "mail"
        } else if first.eq_ignore_ascii_case("userPrincipalName") {
            "userPrincipalName"
        } else {
            return Err(unsupported());
        };
        let op = c.ident();
        if op.eq_ignore_ascii_case("in") {
            if !c.punct('(') {
                return Err(unsupported());
            }
            let mut values = Vec::new();
            loop {
                let Some(v) = c.string() else {
                    return Err(unsupported());
                };
                values.push(v);
                if c.punct(')') {
                    break;
                }
                if !c.punct(',') {
                    return Err(unsupported());
                }
            }
            if !c.end() {
                return Err(unsupported());
            }
            if values.len() > FILTER_MAX_CLAUSES {
                return Err(format!(
                    "Too many child clauses specified in search filter expression containing 'OR' operators: {}. Max allowed: {FILTER_MAX_CLAUSES}.",
                    values.len()
                ));
            }
            return Ok(Filter::In(prop, values));
        }
        if !op.eq_ignore_ascii_case("eq") {
            return Err(unsupported());
        }
        let Some(value) = c.string() else {
            return Err(unsupported());
        };
        if !c.end() {
            return Err(unsupported());
        }
        Ok(Filter::Eq(prop, value))
    }
}

/// Graph's limit on the values of one `in (…)` list (it counts them as `or` clauses): more
/// fail with `Request_UnsupportedQuery` (Microsoft Graph known issues, query parameter
/// limitations).
pub const FILTER_MAX_CLAUSES: usize = 15;

fn matches_filter(u: &GraphUser, f: &Filter) -> bool {
    match f {
        Filter::Eq(prop, v) => u
            .get(*prop)
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(v)),
        Filter::In(prop, vs) => u
            .get(*prop)
            .and_then(Value::as_str)
            .is_some_and(|x| vs.iter().any(|v| x.eq_ignore_ascii_case(v))),
        Filter::Identity {
            issuer,
            issuer_assigned_id,
        } => u
            .get("identities")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter().any(|i| {
                    i.get("issuer")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(issuer))
                        && i.get("issuerAssignedId")
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.eq_ignore_ascii_case(issuer_assigned_id))
                })
            }),
    }
}

fn is_extension_name(p: &str) -> bool {
    p.strip_prefix("extension_")
        .and_then(|r| r.split_once('_'))
        .is_some_and(|(app, name)| {
            app.len() == 32 && app.chars().all(|c| c.is_ascii_hexdigit()) && !name.is_empty()
        })
}

fn parse_select(ctx: &Ctx, raw: Option<&str>) -> Result<Option<Vec<String>>, GraphResponse> {
    let Some(raw) = raw else { return Ok(None) };
    let mut out = Vec::new();
    for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let known = schema::user_property_names()
            .iter()
            .find(|n| n.eq_ignore_ascii_case(p));
        match known {
            Some(n) if !schema::is_navigation("user", n) => out.push(n.clone()),
            _ if is_extension_name(p) => out.push(p.to_string()),
            _ => {
                return Err(odata_error(
                    ctx,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "Parsing OData Select and Expand failed: Could not find a property named '{p}' on type 'microsoft.graph.user'."
                    ),
                ));
            }
        }
    }
    Ok(Some(out))
}

/// The value Graph shows for a selected property the user does not have: `[]` for
/// collections, `null` for nullable properties, nothing otherwise.
fn absent_value(prop: &str) -> Option<Value> {
    let ty = schema::document().pointer(&format!(
        "/components/schemas/microsoft.graph.user/allOf/1/properties/{prop}/type"
    ));
    let has = |t: &str| {
        ty.is_some_and(|v| v == t || v.as_array().is_some_and(|a| a.iter().any(|x| x == t)))
    };
    if has("array") {
        Some(json!([]))
    } else if has("null") || prop.starts_with("extension_") {
        Some(Value::Null)
    } else if ty.is_none() {
        // `anyOf` object-or-null properties.
        Some(Value::Null)
    } else {
        None
    }
}

fn project(u: &GraphUser, select: Option<&[String]>) -> Value {
    let props: Vec<&str> = match select {
        Some(sel) => sel.iter().map(String::as_str).collect(),
        None => DEFAULT_USER_PROPERTIES.to_vec(),
    };
    let mut out = Map::new();
    for p in props {
        match u.get(p) {
            Some(v) => {
                out.insert(p.to_string(), v.clone());
            }
            None => {
                if let Some(v) = absent_value(p) {
                    out.insert(p.to_string(), v);
                }
            }
        }
    }
    Value::Object(out)
}

fn list_users(s: &Shared, ctx: &Ctx, query: &str) -> GraphResponse {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    for (k, _) in &params {
        if k.starts_with('$')
            && !["$filter", "$select", "$top", "$skiptoken"]
                .iter()
                .any(|x| x.eq_ignore_ascii_case(k))
        {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                &format!("The query option '{k}' is not supported by devtenant."),
            );
        }
    }
    let filter = match get("$filter") {
        Some(f) => match parse_filter(f) {
            Ok(f) => Some(f),
            Err(m) => {
                return odata_error(ctx, StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", &m);
            }
        },
        None => None,
    };
    let select = match parse_select(ctx, get("$select")) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let top = match get("$top").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=999).contains(&n) => n,
        Some(_) => {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                &format!(
                    "Invalid page size specified: '{}'. Must be between 1 and 999 inclusive.",
                    get("$top").unwrap_or("")
                ),
            );
        }
    };
    let skip = match get("$skiptoken").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return bad_request(
                ctx,
                "The specified page token value has expired and can no longer be included in your request.",
            );
        }
    };
    let users: Vec<GraphUser> = s
        .lock()
        .users
        .iter()
        .filter(|u| filter.as_ref().is_none_or(|f| matches_filter(u, f)))
        .cloned()
        .collect();
    let page: Vec<Value> = users
        .iter()
        .skip(skip)
        .take(top)
        .map(|u| project(u, select.as_deref()))
        .collect();
    let graph = s.graph_base();
    let context = match &select {
        Some(sel) => format!("{graph}/$metadata#users({})", sel.join(",")),
        None => format!("{graph}/$metadata#users"),
    };
    let mut body = json!({"@odata.context": context, "value": page});
    if skip + top < users.len() {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
        {
            ser.append_pair(k, v);
        }
        ser.append_pair("$skiptoken", &(skip + top).to_string());
        body["@odata.nextLink"] = json!(format!("{graph}/users?{}", ser.finish()));
    }
    GraphResponse::json(StatusCode::OK, body)
}

fn find_index(users: &[GraphUser], id: &str) -> Option<usize> {
    users.iter().position(|u| {
        u.get("id")
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(id))
            || u.get("userPrincipalName")
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case(id))
    })
}

fn not_found(ctx: &Ctx, id: &str) -> GraphResponse {
    odata_error(
        ctx,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn get_user(s: &Shared, ctx: &Ctx, id: &str, query: &str) -> GraphResponse {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let sel_raw = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$select"))
        .map(|(_, v)| v.as_str());
    let select = match parse_select(ctx, sel_raw) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let user = {
        let inner = s.lock();
        find_index(&inner.users, id).map(|i| inner.users[i].clone())
    };
    match user {
        None => not_found(ctx, id),
        Some(u) => {
            let mut body = project(&u, select.as_deref());
            let ctx_url = match &select {
                Some(sel) => format!(
                    "{}/$metadata#users({})/$entity",
                    s.graph_base(),
                    sel.join(",")
                ),
                None => format!("{}/$metadata#users/$entity", s.graph_base()),
            };
            if let Value::Object(m) = &mut body {
                m.insert("@odata.context".into(), json!(ctx_url));
            }
            GraphResponse::json(StatusCode::OK, body)
        }
    }
}

/// Schema, read-only and extension checks shared by POST and PATCH /users.
fn check_user_body(s: &Shared, ctx: &Ctx, body: &Value) -> Result<(), GraphResponse> {
    let Some(obj) = body.as_object() else {
        return Err(bad_json(ctx));
    };
    let v = schema::validators().map_err(|e| {
        odata_error(
            ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            &e,
        )
    })?;
    if let Some(violation) = schema::check(&v.user, body) {
        let msg = match violation {
            SchemaViolation::UnknownProperty(p) => format!(
                "Property '{p}' does not exist as a declared property or extension property."
            ),
            SchemaViolation::InvalidValue(p) | SchemaViolation::Missing(p) => {
                format!("Invalid value specified for property '{p}' of resource 'User'.")
            }
        };
        return Err(bad_request(ctx, &msg));
    }
    for k in obj.keys() {
        if READ_ONLY_USER_PROPERTIES.contains(&k.as_str()) || schema::is_navigation("user", k) {
            return Err(bad_request(
                ctx,
                &format!("Property '{k}' is read-only and cannot be set."),
            ));
        }
        if let Some(rest) = k.strip_prefix("extension_")
            && !rest.to_ascii_lowercase().starts_with(&format!(
                "{}_",
                s.cfg.extensions_app_id.to_ascii_lowercase()
            ))
        {
            return Err(bad_request(
                ctx,
                &format!("The following extension properties are not available: {k}."),
            ));
        }
    }
    Ok(())
}

const UPN_LOCAL_CHARS: &str = "'.-_!#^~";

fn check_upn(s: &Shared, ctx: &Ctx, upn: &str) -> Result<(), GraphResponse> {
    let Some((local, domain)) = upn.rsplit_once('@') else {
        return Err(bad_request(
            ctx,
            "Invalid value specified for property 'userPrincipalName' of resource 'User'.",
        ));
    };
    if local.is_empty()
        || !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || UPN_LOCAL_CHARS.contains(c))
        || local.starts_with('.')
    {
        return Err(bad_request(
            ctx,
            "Invalid value specified for property 'userPrincipalName' of resource 'User'.",
        ));
    }
    if !domain.eq_ignore_ascii_case(&s.cfg.domain) {
        return Err(bad_request(
            ctx,
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        ));
    }
    Ok(())
}

fn identity_keys(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    Some((
                        i.get("issuer")?.as_str()?.to_ascii_lowercase(),
                        i.get("issuerAssignedId")?.as_str()?.to_ascii_lowercase(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Duplicate checks against every user except `skip`.
fn check_unique(
    users: &[GraphUser],
    skip: Option<usize>,
    upn: Option<&str>,
    identities: Option<&Value>,
) -> Option<&'static str> {
    let new_ids = identity_keys(identities);
    for (i, u) in users.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if let Some(upn) = upn
            && u.get("userPrincipalName")
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case(upn))
        {
            return Some(
                "Another object with the same value for property userPrincipalName already exists.",
            );
        }
        let theirs = identity_keys(u.get("identities"));
        if new_ids.iter().any(|k| theirs.contains(k)) {
            return Some(
                "Another object with the same value for property identities already exists.",
            );
        }
    }
    None
}

fn has_federated_identity(body: &Value) -> bool {
    body.get("identities")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|i| i.get("signInType").and_then(Value::as_str) == Some("federated"))
        })
}

fn ensure_upn_identity(s: &Shared, u: &mut GraphUser) {
    let upn = u
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut ids: Vec<Value> = u
        .get("identities")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ids.retain(|i| i.get("signInType").and_then(Value::as_str) != Some("userPrincipalName"));
    ids.push(
        json!({"signInType": "userPrincipalName", "issuer": s.cfg.domain, "issuerAssignedId": upn}),
    );
    u.insert("identities".into(), Value::Array(ids));
}

fn create_user(s: &Shared, ctx: &Ctx, body: Value) -> GraphResponse {
    if let Err(r) = check_user_body(s, ctx, &body) {
        return r;
    }
    let mut required = vec!["accountEnabled", "displayName", "userPrincipalName"];
    if !has_federated_identity(&body) {
        required.extend(["mailNickname", "passwordProfile"]);
    }
    for r in required {
        if body.get(r).is_none_or(Value::is_null) {
            return bad_request(
                ctx,
                &format!("A value is required for property '{r}' of resource 'User'."),
            );
        }
    }
    let upn = body
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Err(r) = check_upn(s, ctx, &upn) {
        return r;
    }
    let mut user: GraphUser = body.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(pp)) = user.get_mut("passwordProfile") {
        pp.remove("password");
    }
    let id = uuid::Uuid::new_v4().to_string();
    user.insert("id".into(), json!(id));
    user.insert("createdDateTime".into(), json!(now_graph()));
    user.insert("creationType".into(), Value::Null);
    user.insert("externalUserState".into(), Value::Null);
    user.entry("businessPhones").or_insert(json!([]));
    user.entry("userType").or_insert(json!("Member"));
    ensure_upn_identity(s, &mut user);
    {
        let mut inner = s.lock();
        if let Some(m) = check_unique(&inner.users, None, Some(&upn), body.get("identities")) {
            return bad_request(ctx, m);
        }
        inner.users.push(user.clone());
    }
    s.persist_logged();
    tracing::info!(%upn, %id, "graph: user created");
    let mut out = project(&user, None);
    if let Value::Object(m) = &mut out {
        m.insert(
            "@odata.context".into(),
            json!(format!("{}/$metadata#users/$entity", s.graph_base())),
        );
    }
    let mut r = GraphResponse::json(StatusCode::CREATED, out);
    r.headers
        .push(("Location", format!("{}/users/{id}", s.graph_base())));
    r
}

fn patch_user(s: &Shared, ctx: &Ctx, id: &str, body: Value) -> GraphResponse {
    if let Err(r) = check_user_body(s, ctx, &body) {
        return r;
    }
    let upn = body
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(u) = &upn
        && let Err(r) = check_upn(s, ctx, u)
    {
        return r;
    }
    if body.get("identities").is_some_and(Value::is_null) {
        return bad_request(
            ctx,
            "Invalid value specified for property 'identities' of resource 'User'.",
        );
    }
    {
        let mut inner = s.lock();
        let Some(idx) = find_index(&inner.users, id) else {
            return not_found(ctx, id);
        };
        if let Some(m) = check_unique(
            &inner.users,
            Some(idx),
            upn.as_deref(),
            body.get("identities"),
        ) {
            return bad_request(ctx, m);
        }
        let user = &mut inner.users[idx];
        for (k, v) in body.as_object().cloned().unwrap_or_default() {
            user.insert(k, v);
        }
        if let Some(Value::Object(pp)) = user.get_mut("passwordProfile") {
            pp.remove("password");
        }
        let mut u = user.clone();
        ensure_upn_identity(s, &mut u);
        *user = u;
    }
    s.persist_logged();
    GraphResponse::no_content()
}

fn delete_user(s: &Shared, ctx: &Ctx, id: &str) -> GraphResponse {
    {
        let mut inner = s.lock();
        let Some(idx) = find_index(&inner.users, id) else {
            return not_found(ctx, id);
        };
        inner.users.remove(idx);
    }
    s.persist_logged();
    GraphResponse::no_content()
}

fn is_email(e: &str) -> bool {
    match e.rsplit_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !e.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn create_invitation(s: &Shared, ctx: &Ctx, body: Value) -> GraphResponse {
    let Some(obj) = body.as_object() else {
        return bad_json(ctx);
    };
    let v = match schema::validators() {
        Ok(v) => v,
        Err(e) => {
            return odata_error(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                &e,
            );
        }
    };
    if let Some(violation) = schema::check(&v.invitation, &body) {
        let msg = match violation {
            SchemaViolation::UnknownProperty(p) => format!(
                "Property '{p}' does not exist as a declared property or extension property."
            ),
            SchemaViolation::InvalidValue(p) | SchemaViolation::Missing(p) => {
                format!("Invalid value specified for property '{p}' of resource 'Invitation'.")
            }
        };
        return odata_error(ctx, StatusCode::BAD_REQUEST, "BadRequest", &msg);
    }
    if let Some(k) = obj
        .keys()
        .find(|k| READ_ONLY_INVITATION_PROPERTIES.contains(&k.as_str()))
    {
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Property '{k}' is read-only and cannot be set."),
        );
    }
    for r in ["invitedUserEmailAddress", "inviteRedirectUrl"] {
        if obj.get(r).and_then(Value::as_str).is_none_or(str::is_empty) {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("A value is required for property '{r}' of resource 'Invitation'."),
            );
        }
    }
    let email = obj
        .get("invitedUserEmailAddress")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let redirect = obj
        .get("inviteRedirectUrl")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !is_email(&email) {
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The specified email address is invalid.",
        );
    }
    if url::Url::parse(&redirect).is_err() {
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The specified inviteRedirectUrl is not a valid URL.",
        );
    }
    let user_type = obj
        .get("invitedUserType")
        .and_then(Value::as_str)
        .unwrap_or("Guest")
        .to_string();
    let display = obj
        .get("invitedUserDisplayName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
    let redeem_token = uuid::Uuid::new_v4().simple().to_string();
    let (user_id, status) = {
        let mut inner = s.lock();
        let existing = inner.users.iter().find(|u| {
            u.get("mail")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case(&email))
                || u.get("otherMails")
                    .and_then(Value::as_array)
                    .is_some_and(|a| {
                        a.iter()
                            .any(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case(&email)))
                    })
        });
        match existing {
            Some(u) => (
                u.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                u.get("externalUserState")
                    .and_then(Value::as_str)
                    .unwrap_or("Accepted")
                    .to_string(),
            ),
            None => {
                let mut upn = format!("{}#EXT#@{}", email.replace('@', "_"), s.cfg.domain);
                let mut n = 1;
                while find_index(&inner.users, &upn).is_some() {
                    n += 1;
                    upn = format!("{}{n}#EXT#@{}", email.replace('@', "_"), s.cfg.domain);
                }
                let id = uuid::Uuid::new_v4().to_string();
                let now = now_graph();
                let user = json!({
                    "id": id, "userPrincipalName": upn, "displayName": display, "mail": email, "otherMails": [email],
                    "accountEnabled": true, "userType": user_type, "creationType": "Invitation",
                    "externalUserState": "PendingAcceptance", "externalUserStateChangeDateTime": now,
                    "createdDateTime": now, "businessPhones": [],
                    "identities": [{"signInType": "userPrincipalName", "issuer": s.cfg.domain, "issuerAssignedId": upn}],
                });
                if let Value::Object(m) = user {
                    inner.users.push(m);
                }
                (id, "PendingAcceptance".to_string())
            }
        }
    };
    s.lock()
        .redemptions
        .insert(redeem_token.clone(), format!("{user_id} {redirect}"));
    s.persist_logged();
    let send = obj
        .get("sendInvitationMessage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let redeem_url = format!("{}/redeem?rd={redeem_token}", s.base_url);
    if send {
        tracing::info!(%email, %redeem_url, "graph: invitation e-mail (not sent by devtenant)");
    }
    GraphResponse::json(
        StatusCode::CREATED,
        json!({
            "@odata.context": format!("{}/$metadata#invitations/$entity", s.graph_base()),
            "id": uuid::Uuid::new_v4().to_string(),
            "inviteRedeemUrl": redeem_url,
            "invitedUserDisplayName": obj.get("invitedUserDisplayName").cloned().unwrap_or(Value::Null),
            "invitedUserType": user_type,
            "invitedUserEmailAddress": email,
            "sendInvitationMessage": send,
            "resetRedemption": obj.get("resetRedemption").and_then(Value::as_bool).unwrap_or(false),
            "inviteRedirectUrl": redirect,
            "status": status,
            "invitedUserMessageInfo": obj.get("invitedUserMessageInfo").cloned().unwrap_or(json!({"messageLanguage": null, "ccRecipients": [], "customizedMessageBody": null})),
            "invitedUser": {"id": user_id},
        }),
    )
}

/// `GET /redeem?rd=…`: the invitation redemption link. Marks the guest `Accepted` and redirects
/// to the invitation's `inviteRedirectUrl` (real Entra first signs the guest in and asks for
/// consent).
async fn redeem(
    State(s): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let entry = q
        .get("rd")
        .and_then(|t| s.lock().redemptions.get(t).cloned());
    let Some((uid, redirect)) = entry
        .as_deref()
        .and_then(|e| e.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
    else {
        return (StatusCode::NOT_FOUND, "This invitation link is not valid.").into_response();
    };
    {
        let mut inner = s.lock();
        if let Some(i) = find_index(&inner.users, &uid) {
            inner.users[i].insert("externalUserState".into(), json!("Accepted"));
            inner.users[i].insert("externalUserStateChangeDateTime".into(), json!(now_graph()));
        }
    }
    s.persist_logged();
    crate::oidc::found(&redirect)
}

// ---------------------------------------------------------------------------------------------
// $batch

fn batch(s: &Shared, ctx: &Ctx, p: &Principal, body: &Bytes) -> GraphResponse {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return bad_json(ctx);
    };
    let count = body.get("requests").and_then(Value::as_array).map(Vec::len);
    if count.is_some_and(|n| n > 20) {
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Number of batch request steps exceeds the maximum of 20.",
        );
    }
    let v = match schema::validators() {
        Ok(v) => v,
        Err(e) => {
            return odata_error(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                &e,
            );
        }
    };
    if let Some(violation) = schema::check(&v.batch, &body) {
        let what = match violation {
            SchemaViolation::UnknownProperty(p) => format!("unknown property '{p}'"),
            SchemaViolation::InvalidValue(p) => format!("invalid value at '{p}'"),
            SchemaViolation::Missing(p) => format!("missing '{p}'"),
        };
        return odata_error(
            ctx,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Invalid batch payload: {what}."),
        );
    }
    let items: Vec<Value> = body
        .get("requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let id_of = |i: &Value| {
        i.get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut ids = HashSet::new();
    for it in &items {
        if !ids.insert(id_of(it)) {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Batch request id '{}' is duplicated.", id_of(it)),
            );
        }
    }
    let deps_of = |i: &Value| -> Vec<String> {
        i.get("dependsOn")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for it in &items {
        if let Some(missing) = deps_of(it).into_iter().find(|d| !ids.contains(d)) {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!(
                    "Request '{}' depends on unknown request id '{missing}'.",
                    id_of(it)
                ),
            );
        }
    }
    // Execute in dependency order (Kahn); a cycle is a bad request.
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    let mut pending: Vec<&Value> = items.iter().collect();
    while !pending.is_empty() {
        let Some(pos) = pending
            .iter()
            .position(|it| deps_of(it).iter().all(|d| statuses.contains_key(d)))
        else {
            return odata_error(
                ctx,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The dependsOn graph of the batch contains a cycle.",
            );
        };
        let it = pending.remove(pos);
        let id = id_of(it);
        let failed_dep = deps_of(it)
            .into_iter()
            .find(|d| statuses.get(d).is_some_and(|st| *st >= 400));
        let r = if let Some(dep) = failed_dep {
            odata_error(
                ctx,
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                &format!("Request '{id}' depends on request '{dep}', which failed."),
            )
        } else {
            let method = it
                .get("method")
                .and_then(Value::as_str)
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .unwrap_or(Method::GET);
            let url = it.get("url").and_then(Value::as_str).unwrap_or("/");
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            execute(s, ctx, p, &method, path, query, it.get("body").cloned())
        };
        statuses.insert(id.clone(), r.status.as_u16());
        let mut headers = Map::new();
        if r.body.is_some() {
            headers.insert("Content-Type".into(), json!(JSON_CT));
        }
        for (k, v) in &r.headers {
            headers.insert((*k).to_string(), json!(v));
        }
        let mut entry = json!({"id": id, "status": r.status.as_u16(), "headers": headers});
        if let Some(b) = r.body {
            entry["body"] = b;
        }
        responses.push(entry);
    }
    GraphResponse::json(StatusCode::OK, json!({"responses": responses}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter("mail eq 'o''brien@x.com'"),
            Ok(Filter::Eq("mail", "o'brien@x.com".into()))
        );
        assert_eq!(
            parse_filter("userPrincipalName eq 'a@b'"),
            Ok(Filter::Eq("userPrincipalName", "a@b".into()))
        );
        assert_eq!(
            parse_filter(
                "identities/any(c:c/issuerAssignedId eq '0123' and c/issuer eq 'facebook.com')"
            ),
            Ok(Filter::Identity {
                issuer: "facebook.com".into(),
                issuer_assigned_id: "0123".into()
            })
        );
        assert_eq!(
            parse_filter("identities/any(x:x/issuer eq 'mail' and x/issuerAssignedId eq 'a@b.c')"),
            Ok(Filter::Identity {
                issuer: "mail".into(),
                issuer_assigned_id: "a@b.c".into()
            })
        );
        assert!(parse_filter("displayName eq 'x'").is_err());
        assert!(parse_filter("mail eq 'x' or mail eq 'y'").is_err());
        assert_eq!(
            parse_filter("mail in ('a@x.com', 'o''b@y.org')"),
            Ok(Filter::In(
                "mail",
                vec!["a@x.com".into(), "o'b@y.org".into()]
            ))
        );
        let sixteen = (0..16)
            .map(|i| format!("'u{i}@x.com'"))
            .collect::<Vec<_>>()
            .join(",");
        let e = parse_filter(&format!("mail in ({sixteen})")).unwrap_err();
        assert!(e.contains("Max allowed: 15"), "{e}");
        assert!(parse_filter("mail in ()").is_err());
        assert!(parse_filter("mail in ('a'").is_err());
        assert!(parse_filter("mail eq 'unterminated").is_err());
        assert!(parse_filter("identities/any(c:c/issuer eq 'a' and c/issuer eq 'b')").is_err());
        assert!(parse_filter("startswith(mail,'a')").is_err());
    }
}
