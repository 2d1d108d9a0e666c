//! `/users` on Graph v1.0 ("List users", "Get user", "Create user", "Update user", "Delete
//! user", "user resource type"; CONTRACTS.md §3): strict bodies checked against
//! `graph-subset.json`, read-only and extension property rules, UPN and identity uniqueness,
//! paging with `$top`/`$skiptoken`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::odata::{matches_filter, parse_filter, parse_select, project};
use super::{Ctx, GraphResponse, bad_json, bad_request, odata_error};
use crate::schema::{self, SchemaViolation};
use crate::state::{GraphUser, Shared, now_graph};

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

pub(super) fn list_users(s: &Shared, ctx: &Ctx, query: &str) -> GraphResponse {
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

pub(super) fn find_index(users: &[GraphUser], id: &str) -> Option<usize> {
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

pub(super) fn get_user(s: &Shared, ctx: &Ctx, id: &str, query: &str) -> GraphResponse {
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

pub(super) fn create_user(s: &Shared, ctx: &Ctx, body: Value) -> GraphResponse {
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

pub(super) fn patch_user(s: &Shared, ctx: &Ctx, id: &str, body: Value) -> GraphResponse {
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

pub(super) fn delete_user(s: &Shared, ctx: &Ctx, id: &str) -> GraphResponse {
    {
        let mut inner = s.lock();
        let Some(idx) = find_index(&inner.users, id) else {
            return not_found(ctx, id);
        };
        let removed = inner.users.remove(idx);
        // A deleted user leaves its groups, its app role assignments and its sponsorships (and
        // its own sponsor list), as Graph stops listing them.
        let oid = removed
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for g in &mut inner.groups {
            g.members.retain(|m| !m.eq_ignore_ascii_case(&oid));
        }
        inner.app_role_assignments.retain(|a| {
            a.get("principalId")
                .and_then(Value::as_str)
                .is_none_or(|p| !p.eq_ignore_ascii_case(&oid))
        });
        inner.sponsors.remove(&oid);
        for list in inner.sponsors.values_mut() {
            list.retain(|x| !x.eq_ignore_ascii_case(&oid));
        }
    }
    s.persist_logged();
    GraphResponse::no_content()
}
