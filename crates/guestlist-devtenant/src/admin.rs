//! devtenant's own admin endpoints under `/_devtenant/` (no Entra counterpart; no auth, local
//! development only):
//!
//! | route | body / answer |
//! |---|---|
//! | `GET /_devtenant/health` | `{"status":"ok","issuer","graph","tenantId","tenantKind","customerIssuer","customerDomain"}` (the last two null for a workforce tenant) |
//! | `GET /_devtenant/users` | every directory user, all properties, `{"value":[…]}` |
//! | `POST /_devtenant/signups` | a self-service sign-up's final claims → the user Entra creates (201), see [`create_signup_user`] |
//! | `GET, POST /_devtenant/faults` | [`crate::FaultConfig`] JSON; 400 with `{"error"}` on a bad body |
//! | `POST /_devtenant/keys/rotate` | adds and activates a new signing key: `{"kid"}` |
//! | `GET /_devtenant/groups` | every group, all properties plus `"members":[object id…]`, `{"value":[…]}` |
//! | `GET /_devtenant/app-role-assignments` | every app role assignment (Graph `appRoleAssignment` JSON), `{"value":[…]}` |
//! | `GET /_devtenant/sponsors` | `{"value":[{"userId","sponsors":[object id…]}]}` |
//! | `GET, DELETE /_devtenant/graph-calls` | the last Graph calls received, oldest first: `{"value":[{"method","path","body","status"}]}` (path percent-decoded, relative to `/v1.0`); `DELETE` forgets them (204) |

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::config::FaultConfig;
use crate::state::{GraphUser, Shared, now_graph};

async fn graph_calls(State(s): State<Arc<Shared>>) -> Response {
    let calls: Vec<_> = s.lock().calls.iter().cloned().collect();
    axum::Json(json!({ "value": calls })).into_response()
}

async fn forget_graph_calls(State(s): State<Arc<Shared>>) -> StatusCode {
    s.lock().calls.clear();
    StatusCode::NO_CONTENT
}

/// Routes of the admin API and the landing page.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(index))
        .route("/_devtenant/health", get(health))
        .route("/_devtenant/users", get(users))
        .route("/_devtenant/groups", get(groups))
        .route(
            "/_devtenant/app-role-assignments",
            get(app_role_assignments),
        )
        .route("/_devtenant/sponsors", get(sponsors))
        .route("/_devtenant/signups", post(signup))
        .route("/_devtenant/faults", get(get_faults).post(set_faults))
        .route("/_devtenant/keys/rotate", post(rotate))
        .route(
            "/_devtenant/graph-calls",
            get(graph_calls).delete(forget_graph_calls),
        )
}

async fn index(State(s): State<Arc<Shared>>) -> Html<String> {
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>devtenant</title><h1>devtenant</h1><ul>\
<li>issuer: <code>{i}</code></li><li>discovery: <a href=\"{i}/.well-known/openid-configuration\">{i}/.well-known/openid-configuration</a></li>\
<li>graph: <code>{g}</code></li><li>directory: <a href=\"/_devtenant/users\">/_devtenant/users</a></li></ul>",
        i = s.issuer(),
        g = s.graph_base()
    ))
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "issuer": s.issuer(),
        "graph": s.graph_base(),
        "tenantId": s.cfg.tenant_id,
        "tenantKind": s.cfg.tenant_kind,
        "customerIssuer": s.customer_issuer(),
        "customerDomain": s.customer_domain(),
    }))
    .into_response()
}

async fn users(State(s): State<Arc<Shared>>) -> Response {
    let users: Vec<GraphUser> = s.lock().users.clone();
    axum::Json(json!({"value": users})).into_response()
}

async fn groups(State(s): State<Arc<Shared>>) -> Response {
    let value: Vec<Value> = s
        .lock()
        .groups
        .iter()
        .map(|g| {
            let mut o = g.object.clone();
            o.insert("members".into(), json!(g.members));
            Value::Object(o)
        })
        .collect();
    axum::Json(json!({ "value": value })).into_response()
}

async fn app_role_assignments(State(s): State<Arc<Shared>>) -> Response {
    let value = s.lock().app_role_assignments.clone();
    axum::Json(json!({ "value": value })).into_response()
}

async fn sponsors(State(s): State<Arc<Shared>>) -> Response {
    let value: Vec<Value> = s
        .lock()
        .sponsors
        .iter()
        .map(|(user, ids)| json!({"userId": user, "sponsors": ids}))
        .collect();
    axum::Json(json!({ "value": value })).into_response()
}

async fn get_faults(State(s): State<Arc<Shared>>) -> Response {
    let f = s.lock().faults.clone();
    axum::Json(f).into_response()
}

async fn set_faults(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let parsed: Result<FaultConfig, _> = serde_json::from_slice(&body);
    match parsed.map_err(|e| e.to_string()).and_then(|f| {
        s.set_faults(f.clone())
            .map(|()| f)
            .map_err(|e| e.to_string())
    }) {
        Ok(f) => {
            tracing::info!(?f, "faults changed");
            axum::Json(f).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    }
}

async fn rotate(State(s): State<Arc<Shared>>) -> Response {
    match s.rotate_key() {
        Ok(kid) => axum::Json(json!({"kid": kid})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn signup(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let claims: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    match create_signup_user(&s, &claims) {
        Ok(u) => (StatusCode::CREATED, axum::Json(Value::Object(u))).into_response(),
        Err(e) => (StatusCode::CONFLICT, axum::Json(json!({"error": e}))).into_response(),
    }
}

/// The directory attributes a sign-up's claims may set (Graph user property names).
const BUILT_IN: &[&str] = &[
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "streetAddress",
    "city",
    "postalCode",
    "state",
    "country",
    "companyName",
    "department",
    "mobilePhone",
];

/// Creates the guest user Entra creates at the end of a self-service sign-up user flow
/// ("Self-service sign-up" overview): `userType` `Guest`, `creationType` `SelfServiceSignUp`,
/// `externalUserState` `Accepted`, UPN `{email with @ → _}#EXT#@{domain}`, `mail` = the `email`
/// claim, `identities` = the federated identity (or one for the Entra ID / Microsoft account
/// home tenant when the claims have none), the built-in attributes (`lastName` is stored as
/// `surname`) and every `extension_*` claim (names without the app ID get it added).
///
/// # Errors
/// A message when `email` is missing or a user with the same UPN or identity exists.
pub fn create_signup_user(s: &Shared, claims: &Value) -> Result<GraphUser, String> {
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| e.contains('@'))
        .ok_or("the claims have no valid email")?;
    let upn = format!("{}#EXT#@{}", email.replace('@', "_"), s.cfg.domain);
    let mut identities: Vec<Value> = claims
        .get("identities")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if identities.is_empty() {
        let domain = email
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let consumer = ["outlook.com", "hotmail.com", "live.com", "msn.com"]
            .iter()
            .any(|d| domain == *d);
        identities.push(json!({"signInType": "federated", "issuer": if consumer { "MicrosoftAccount" } else { "ExternalAzureAD" }, "issuerAssignedId": null}));
    }
    identities.push(
        json!({"signInType": "userPrincipalName", "issuer": s.cfg.domain, "issuerAssignedId": upn}),
    );
    let mut u: GraphUser = Map::new();
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_graph();
    u.insert("id".into(), json!(id));
    u.insert("userPrincipalName".into(), json!(upn));
    u.insert("mail".into(), json!(email));
    u.insert("otherMails".into(), json!([email]));
    u.insert("accountEnabled".into(), json!(true));
    u.insert("userType".into(), json!("Guest"));
    u.insert("creationType".into(), json!("SelfServiceSignUp"));
    u.insert("externalUserState".into(), json!("Accepted"));
    u.insert("externalUserStateChangeDateTime".into(), json!(now));
    u.insert("createdDateTime".into(), json!(now));
    u.insert("businessPhones".into(), json!([]));
    u.insert("identities".into(), Value::Array(identities));
    let Some(obj) = claims.as_object() else {
        return Err("the claims are not a JSON object".into());
    };
    for (k, v) in obj {
        if BUILT_IN.contains(&k.as_str()) {
            u.insert(k.clone(), v.clone());
        } else if k == "lastName" {
            u.entry("surname").or_insert(v.clone());
        } else if let Some(rest) = k.strip_prefix("extension_") {
            let app = &s.cfg.extensions_app_id;
            let name = match rest.split_once('_') {
                Some((maybe_app, name)) if maybe_app.eq_ignore_ascii_case(app) => name.to_string(),
                _ => rest.to_string(),
            };
            u.insert(format!("extension_{app}_{name}"), v.clone());
        }
    }
    {
        let mut inner = s.lock();
        let fed: Vec<(String, String)> = claims
            .get("identities")
            .and_then(Value::as_array)
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
            .unwrap_or_default();
        for existing in &inner.users {
            if existing
                .get("userPrincipalName")
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case(&upn))
            {
                return Err(format!(
                    "a user with userPrincipalName {upn} already exists"
                ));
            }
            let theirs = existing
                .get("identities")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if theirs.iter().any(|i| {
                let key = (
                    i.get("issuer")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                    i.get("issuerAssignedId")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                );
                fed.contains(&key)
            }) {
                return Err("a user with the same federated identity already exists".into());
            }
        }
        inner.users.push(u.clone());
    }
    s.persist_logged();
    tracing::info!(%upn, %id, "self-service sign-up: user created");
    Ok(u)
}
