//! The Microsoft Graph v1.0 subset Guestlist calls (CONTRACTS.md §3), at `/v1.0/...`:
//!
//! | route | Graph doc page |
//! |---|---|
//! | `GET /users` (`$filter`, `$select`, `$top`, `$skiptoken`) | "List users" |
//! | `POST /users` | "Create user" |
//! | `GET, PATCH, DELETE /users/{id or userPrincipalName}` | "Get user", "Update user", "Delete user" |
//! | `POST /invitations` | "Create invitation" |
//! | `GET /groups/{id}`, `GET /groups/{id}/members` | "Get group", "List group members" |
//! | `POST /groups/{id}/members/$ref` | "Add members" |
//! | `GET, POST /users/{id}/appRoleAssignments` | "List appRoleAssignments granted to a user", "Grant an appRoleAssignment to a user" |
//! | `GET, POST /servicePrincipals/{id}/appRoleAssignedTo` | "List appRoleAssignments granted for a service principal", "Grant an appRoleAssignment for a service principal" |
//! | `GET /users/{id}/sponsors`, `POST /users/{id}/sponsors/$ref` | "List sponsors", "Add sponsor" |
//! | `POST /$batch` | "Combine multiple HTTP requests using JSON batching" |
//!
//! Every request needs a bearer token signed by this tenant for `https://graph.microsoft.com`
//! (401 `InvalidAuthenticationToken` otherwise) with the right permission (403
//! `Authorization_RequestDenied`). Bodies are validated against the strict schemas of
//! `graph-subset.json`. Errors use the ODataError shape
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`, and every
//! answer carries `request-id` and `client-request-id` headers. Throttling ("Microsoft Graph
//! throttling guidance") and injected faults answer 429/503 with `Retry-After`.
//!
//! Layers: `auth` (bearer tokens, permissions), `throttle` (per-app buckets, injected
//! 429/503), `odata` (`$filter`, `$select`), `users`, `invitations`, the grants (`groups`,
//! `app_roles`, `sponsors`, sharing `refs`) and `batch`; this module
//! holds the shared request context, the ODataError shape and the dispatcher.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rand::RngExt as _;
use serde_json::{Value, json};

use crate::net::ConnKill;
use crate::state::{Shared, now_graph};

mod app_roles;
mod auth;
mod batch;
mod groups;
mod invitations;
mod odata;
mod refs;
mod sponsors;
mod throttle;
mod users;

pub use app_roles::READ_ONLY_ASSIGNMENT_PROPERTIES;
pub use auth::Principal;
pub use invitations::READ_ONLY_INVITATION_PROPERTIES;
pub use odata::{FILTER_MAX_CLAUSES, Filter, parse_filter};
pub use users::{DEFAULT_USER_PROPERTIES, READ_ONLY_USER_PROPERTIES};

use auth::{Need, authenticate, authorized, forbidden};
use batch::batch;
use invitations::{create_invitation, redeem};
use users::{create_user, delete_user, get_user, list_users, patch_user};

/// Routes of the Graph emulation (`/v1.0/{*path}`).
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/{*path}", any(entry))
        .route("/redeem", axum::routing::get(redeem))
}

const JSON_CT: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

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
    if let Err(r) = throttle::admit(s, ctx, p, *method != Method::GET) {
        return r;
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
        ("GET", ["groups", _] | ["groups", _, "members"]) => Need::ReadGroups,
        ("POST", ["groups", _, "members", "$ref"]) => Need::WriteGroupMembers,
        ("GET", ["users", _, "appRoleAssignments"]) => Need::ReadUserAssignments,
        ("POST", ["users", _, "appRoleAssignments"]) => Need::AssignToUser,
        ("GET", ["servicePrincipals", _, "appRoleAssignedTo"]) => Need::ReadAssignedTo,
        ("POST", ["servicePrincipals", _, "appRoleAssignedTo"]) => Need::AssignViaServicePrincipal,
        ("GET", ["users", _, "sponsors"]) => Need::ReadSponsors,
        ("POST", ["users", _, "sponsors", "$ref"]) => Need::WriteSponsors,
        (
            _,
            ["users"]
            | ["users", _]
            | ["invitations"]
            | ["groups", _]
            | ["groups", _, "members"]
            | ["groups", _, "members", "$ref"]
            | ["users", _, "appRoleAssignments" | "sponsors"]
            | ["users", _, "sponsors", "$ref"]
            | ["servicePrincipals", _, "appRoleAssignedTo"],
        ) => return method_not_allowed(ctx),
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
        ("GET", ["groups", id]) => groups::get_group(s, ctx, id, query),
        ("GET", ["groups", id, "members"]) => groups::list_members(s, ctx, id),
        ("POST", ["groups", id, "members", "$ref"]) => {
            groups::add_member(s, ctx, id, &body_or_empty())
        }
        ("GET", ["users", id, "appRoleAssignments"]) => {
            app_roles::list_assignments(s, ctx, app_roles::Via::User, id)
        }
        ("POST", ["users", id, "appRoleAssignments"]) => {
            app_roles::create_assignment(s, ctx, app_roles::Via::User, id, &body_or_empty())
        }
        ("GET", ["servicePrincipals", id, "appRoleAssignedTo"]) => {
            app_roles::list_assignments(s, ctx, app_roles::Via::ServicePrincipal, id)
        }
        ("POST", ["servicePrincipals", id, "appRoleAssignedTo"]) => app_roles::create_assignment(
            s,
            ctx,
            app_roles::Via::ServicePrincipal,
            id,
            &body_or_empty(),
        ),
        ("GET", ["users", id, "sponsors"]) => sponsors::list_sponsors(s, ctx, id),
        ("POST", ["users", id, "sponsors", "$ref"]) => {
            sponsors::add_sponsor(s, ctx, id, &body_or_empty())
        }
        _ => method_not_allowed(ctx),
    }
}
