//! The external-tenant half of devtenant (`tenant_kind = "external"`, Entra External ID for
//! customers): the bearer tokens its *custom authentication extensions* carry, and the
//! *customer* accounts its sign-up user flows create.
//!
//! | route | body / answer |
//! |---|---|
//! | `POST /_devtenant/authentication-events/token` | `{"resource":"api://…"}` → `{"access_token","token_type":"Bearer","expires_in","tenant_id"}` ([`authentication_events_claims`]); 409 `{"error"}` for a workforce tenant |
//! | `POST /_devtenant/customers` | `{"attributes":{name:value},"identity":{signInType,issuer,issuerAssignedId}}` → 201 the customer ([`create_customer`]); 409 `{"error"}` when the identity exists or the tenant is a workforce tenant |
//!
//! Sources: "Custom authentication extensions overview" (*Protect your REST API*: `azp`/`appid`
//! `99045fe1-7639-4a75-9d4a-577b6ca3810f`, `aud` the API's registration, `iss`
//! `https://{domainName}.ciamlogin.com/{tenantId}/v2.0`); "user resource type" and
//! "objectIdentity resource type" (customer accounts: `identities` with signInType
//! `emailAddress` or `federated`, `creationType` `LocalAccount` for local accounts).
//! No counterpart in Entra's public API: these admin routes stand for what Entra does inside.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::defaults as d;
use crate::state::{GraphUser, Shared, now_graph, now_unix};

/// Routes of the external-tenant admin API.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_devtenant/authentication-events/token", post(token))
        .route("/_devtenant/customers", post(customers))
}

fn conflict(msg: impl Into<String>) -> Response {
    (
        StatusCode::CONFLICT,
        axum::Json(json!({"error": msg.into()})),
    )
        .into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": msg.into()})),
    )
        .into_response()
}

/// Claims of the access token Entra's authentication events service
/// ([`d::AUTH_EVENTS_CLIENT_ID`]) presents to a custom authentication extension of this external
/// tenant: a v2.0 app-only token with `aud` = `resource` (the API's application ID URI, as the
/// extension's `authenticationConfiguration.resourceId` names it), `iss` = the customer issuer
/// ([`Shared::customer_issuer`]), `azp` = the authentication events app (`azpacr` `"1"`,
/// `idtyp` `app`), `tid`, `iat`/`nbf`/`exp` (the tenant's access token lifetime), `oid`/`sub`
/// (the app's ID, as for devtenant's other app-only tokens), `uti`, `ver` `2.0`.
/// `None` for a workforce tenant.
pub fn authentication_events_claims(s: &Shared, resource: &str, now: i64) -> Option<Value> {
    let iss = s.customer_issuer()?;
    let uti = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    Some(json!({
        "aud": resource,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + s.cfg.access_token_lifetime_secs as i64,
        "aio": URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
        "azp": d::AUTH_EVENTS_CLIENT_ID,
        "azpacr": "1",
        "idtyp": "app",
        "oid": d::AUTH_EVENTS_CLIENT_ID,
        "rh": format!("0.{uti}."),
        "sub": d::AUTH_EVENTS_CLIENT_ID,
        "tid": s.cfg.tenant_id,
        "uti": uti,
        "ver": "2.0",
    }))
}

async fn token(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("the body is not JSON: {e}")),
    };
    let Some(resource) = req.get("resource").and_then(Value::as_str) else {
        return bad("resource (the API's application ID URI) is required");
    };
    let Some(claims) = authentication_events_claims(&s, resource, now_unix()) else {
        return conflict(
            "custom authentication extensions exist only in an external tenant (tenant_kind = \"external\")",
        );
    };
    match s.sign(&claims) {
        Ok(t) => axum::Json(json!({
            "access_token": t,
            "token_type": "Bearer",
            "expires_in": s.cfg.access_token_lifetime_secs,
            "tenant_id": s.cfg.tenant_id,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn customers(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("the body is not JSON: {e}")),
    };
    match create_customer(&s, &req) {
        Ok(u) => (StatusCode::CREATED, axum::Json(Value::Object(u))).into_response(),
        Err(e) => conflict(e),
    }
}

/// Built-in attributes a customer sign-up may set (Graph user property names).
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

fn identity_key(i: &Value) -> (String, String) {
    let f = |k: &str| {
        i.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    (f("issuer"), f("issuerAssignedId"))
}

/// Whether a directory user holds `identity` (same `issuer` and `issuerAssignedId`,
/// case-insensitive).
pub fn holds_identity(user: &Value, identity: &Value) -> bool {
    let want = identity_key(identity);
    user.get("identities")
        .and_then(Value::as_array)
        .is_some_and(|ids| ids.iter().any(|i| identity_key(i) == want))
}

/// Creates the customer account Entra creates when an external tenant's sign-up continues after
/// `OnAttributeCollectionSubmit`. `req` is `{"attributes":{name:value},"identity":{…}}` where
/// `identity` is how the person signed up: `{"signInType":"emailAddress","issuer":
/// "{subdomain}.onmicrosoft.com","issuerAssignedId":email}` (email with password or one-time
/// passcode) or `{"signInType":"federated","issuer":"google.com"|"facebook.com",
/// "issuerAssignedId":…}`.
///
/// The user: `id` a new GUID, `userPrincipalName` `{id}@{subdomain}.onmicrosoft.com` (Entra
/// names customers by object ID, never with `#EXT#`), `userType` `Member`, `creationType`
/// `LocalAccount` for an email identity (Graph documents the value for local accounts; none for
/// federated ones), `accountEnabled` true, `mail` = the `email` attribute, `identities` = the
/// sign-up identity plus the `userPrincipalName` identity every user has, the built-in
/// attributes and every `extension_*` attribute (named with the tenant's extensions app ID).
///
/// # Errors
/// A message when the tenant is a workforce tenant, the identity is missing or malformed, or a
/// user already holds it.
pub fn create_customer(s: &Shared, req: &Value) -> Result<GraphUser, String> {
    let Some(domain) = s.customer_domain() else {
        return Err("customer accounts exist only in an external tenant".into());
    };
    let identity = req.get("identity").ok_or("identity is required")?;
    let sign_in_type = identity
        .get("signInType")
        .and_then(Value::as_str)
        .ok_or("identity.signInType is required")?;
    let (issuer, assigned) = identity_key(identity);
    if issuer.is_empty() || assigned.is_empty() {
        return Err("identity.issuer and identity.issuerAssignedId are required".into());
    }
    let local = match sign_in_type {
        "emailAddress" => true,
        "federated" => false,
        other => {
            return Err(format!(
                "identity.signInType {other:?} is not emailAddress or federated"
            ));
        }
    };
    let empty = Map::new();
    let attrs = req
        .get("attributes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let id = uuid::Uuid::new_v4().to_string();
    let upn = format!("{id}@{domain}");
    let now = now_graph();
    let mut u: GraphUser = Map::new();
    u.insert("id".into(), json!(id));
    u.insert("userPrincipalName".into(), json!(upn));
    let email = attrs
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| local.then(|| assigned.clone()));
    u.insert("mail".into(), json!(email));
    u.insert("accountEnabled".into(), json!(true));
    u.insert("userType".into(), json!("Member"));
    u.insert(
        "creationType".into(),
        if local {
            json!("LocalAccount")
        } else {
            Value::Null
        },
    );
    u.insert("createdDateTime".into(), json!(now));
    u.insert("businessPhones".into(), json!([]));
    u.insert(
        "identities".into(),
        json!([
            {"signInType": sign_in_type, "issuer": identity["issuer"], "issuerAssignedId": identity["issuerAssignedId"]},
            {"signInType": "userPrincipalName", "issuer": domain, "issuerAssignedId": upn},
        ]),
    );
    for (k, v) in attrs {
        if BUILT_IN.contains(&k.as_str()) {
            u.insert(k.clone(), v.clone());
        } else if let Some(rest) = k.strip_prefix("extension_") {
            let app = &s.cfg.extensions_app_id;
            let name = match rest.split_once('_') {
                Some((maybe_app, name)) if maybe_app.eq_ignore_ascii_case(app) => name,
                _ => rest,
            };
            u.insert(format!("extension_{app}_{name}"), v.clone());
        }
    }
    {
        let mut inner = s.lock();
        if inner
            .users
            .iter()
            .any(|x| holds_identity(&Value::Object(x.clone()), identity))
        {
            return Err(format!(
                "a user with the identity {issuer}/{assigned} already exists"
            ));
        }
        inner.users.push(u.clone());
    }
    s.persist_logged();
    tracing::info!(%upn, "external tenant sign-up: customer account created");
    Ok(u)
}
