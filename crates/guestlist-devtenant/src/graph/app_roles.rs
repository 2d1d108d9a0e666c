//! App role assignments on Graph v1.0: "Grant an appRoleAssignment to a user"
//! (`POST /users/{id}/appRoleAssignments`), "Grant an appRoleAssignment for a service
//! principal" (`POST /servicePrincipals/{id}/appRoleAssignedTo`), and their lists
//! (`GET /users/{id}/appRoleAssignments`, `GET /servicePrincipals/{id}/appRoleAssignedTo`).
//!
//! The body is checked against `strict.microsoft.graph.appRoleAssignment`; `principalId`,
//! `resourceId` and `appRoleId` are required ("Required on create"), the read-only properties
//! may not be set. `resourceId` must be a service principal that defines `appRoleId` (the
//! all-zero ID stands for "no specific role" when it defines none); the principal is a user,
//! group or service principal. An existing (principal, resource, role) triple is 400
//! `Request_BadRequest` "Permission being assigned already exists on the object." A created
//! assignment answers 201 with the full `appRoleAssignment`.

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::refs::{Kind, display_name, lookup, not_found, schema_error, validators};
use super::{Ctx, GraphResponse, bad_json, bad_request};
use crate::schema;
use crate::state::{Shared, now_graph};

/// Properties of `appRoleAssignment` a create body may not set ("appRoleAssignment resource
/// type": read-only).
pub const READ_ONLY_ASSIGNMENT_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "createdDateTime",
    "principalDisplayName",
    "principalType",
];

/// The role ID meaning "assigned to the app without a specific role" (allowed only when the
/// resource declares no app roles).
const DEFAULT_ROLE_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Which navigation the create came through.
#[derive(Clone, Copy, Debug)]
pub(super) enum Via {
    /// `/users/{id}/appRoleAssignments`: `principalId` must be that user.
    User,
    /// `/servicePrincipals/{id}/appRoleAssignedTo`: `resourceId` must be that service principal.
    ServicePrincipal,
}

fn sp_index(s: &Shared, id: &str) -> Option<usize> {
    s.cfg
        .service_principals
        .iter()
        .position(|sp| sp.object_id.eq_ignore_ascii_case(id))
}

fn user_oid(s: &Shared, id: &str) -> Option<String> {
    let inner = s.lock();
    super::users::find_index(&inner.users, id).and_then(|i| {
        inner.users[i]
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

fn field<'a>(body: &'a Value, k: &str) -> &'a str {
    body.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn same(a: &Map<String, Value>, k: &str, v: &str) -> bool {
    a.get(k)
        .and_then(Value::as_str)
        .is_some_and(|x| x.eq_ignore_ascii_case(v))
}

/// Graph's assignment IDs are 43 base64url characters (the principal's object ID bytes and
/// more); devtenant uses the principal's 16 bytes and 16 random ones.
fn new_assignment_id(principal: &str) -> String {
    let mut bytes = uuid::Uuid::parse_str(principal)
        .map(|u| u.to_bytes_le().to_vec())
        .unwrap_or_default();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn create_assignment(
    s: &Shared,
    ctx: &Ctx,
    via: Via,
    path_id: &str,
    body: &Value,
) -> GraphResponse {
    let path_oid = match via {
        Via::User => user_oid(s, path_id),
        Via::ServicePrincipal => {
            sp_index(s, path_id).map(|i| s.cfg.service_principals[i].object_id.clone())
        }
    };
    let Some(path_oid) = path_oid else {
        return not_found(ctx, path_id);
    };
    let Some(obj) = body.as_object() else {
        return bad_json(ctx);
    };
    let v = match validators(ctx) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(violation) = schema::check(&v.app_role_assignment, body) {
        return schema_error(ctx, violation, "AppRoleAssignment");
    }
    if let Some(k) = obj
        .keys()
        .find(|k| READ_ONLY_ASSIGNMENT_PROPERTIES.contains(&k.as_str()))
    {
        return bad_request(
            ctx,
            &format!("Property '{k}' is read-only and cannot be set."),
        );
    }
    for r in ["principalId", "resourceId", "appRoleId"] {
        if body.get(r).is_none_or(Value::is_null) {
            return bad_request(
                ctx,
                &format!("A value is required for property '{r}' of resource 'AppRoleAssignment'."),
            );
        }
    }
    let (principal_id, resource_id, role_id) = (
        field(body, "principalId"),
        field(body, "resourceId"),
        field(body, "appRoleId"),
    );
    let mismatch = match via {
        Via::User if !principal_id.eq_ignore_ascii_case(&path_oid) => Some("principalId"),
        Via::ServicePrincipal if !resource_id.eq_ignore_ascii_case(&path_oid) => Some("resourceId"),
        _ => None,
    };
    if let Some(p) = mismatch {
        return bad_request(
            ctx,
            &format!("Invalid value specified for property '{p}' of resource 'AppRoleAssignment'."),
        );
    }
    let Some(spi) = sp_index(s, resource_id) else {
        return not_found(ctx, resource_id);
    };
    let sp = &s.cfg.service_principals[spi];
    let role = sp
        .app_roles
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(role_id));
    let role_missing = || {
        bad_request(
            ctx,
            &format!(
                "Permission being assigned was not found on application '{}'.",
                sp.app_id
            ),
        )
    };
    if role.is_none() && !(sp.app_roles.is_empty() && role_id == DEFAULT_ROLE_ID) {
        return role_missing();
    }
    let assignment = {
        let mut inner = s.lock();
        let Some((kind, principal_oid)) = lookup(s, &inner, principal_id) else {
            return not_found(ctx, principal_id);
        };
        // "allowedMemberTypes": `User` roles go to users and groups, `Application` roles to
        // service principals.
        let member_type = if kind == Kind::ServicePrincipal {
            "Application"
        } else {
            "User"
        };
        if role.is_some_and(|r| !r.allowed_member_types.iter().any(|t| t == member_type)) {
            return role_missing();
        }
        if inner.app_role_assignments.iter().any(|a| {
            same(a, "principalId", &principal_oid)
                && same(a, "resourceId", &sp.object_id)
                && same(a, "appRoleId", role_id)
        }) {
            return bad_request(
                ctx,
                "Permission being assigned already exists on the object.",
            );
        }
        let principal_type = match kind {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::ServicePrincipal => "ServicePrincipal",
        };
        let a = json!({
            "id": new_assignment_id(&principal_oid),
            "deletedDateTime": null,
            "appRoleId": role_id.to_ascii_lowercase(),
            "createdDateTime": now_graph(),
            "principalDisplayName": display_name(s, &inner, kind, &principal_oid),
            "principalId": principal_oid,
            "principalType": principal_type,
            "resourceDisplayName": sp.display_name,
            "resourceId": sp.object_id,
        });
        let Value::Object(m) = a else {
            return bad_json(ctx);
        };
        inner.app_role_assignments.push(m.clone());
        m
    };
    s.persist_logged();
    tracing::info!(principal = %principal_id, resource = %sp.object_id, role = %role_id, "graph: app role assigned");
    let mut out = assignment;
    let (set, id) = match via {
        Via::User => ("users", path_oid.as_str()),
        Via::ServicePrincipal => ("servicePrincipals", path_oid.as_str()),
    };
    let nav = match via {
        Via::User => "appRoleAssignments",
        Via::ServicePrincipal => "appRoleAssignedTo",
    };
    out.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/$metadata#{set}('{id}')/{nav}/$entity",
            s.graph_base()
        )),
    );
    let location = format!(
        "{}/{set}/{id}/{nav}/{}",
        s.graph_base(),
        out.get("id").and_then(Value::as_str).unwrap_or_default()
    );
    let mut r = GraphResponse::json(StatusCode::CREATED, Value::Object(out));
    r.headers.push(("Location", location));
    r
}

pub(super) fn list_assignments(s: &Shared, ctx: &Ctx, via: Via, path_id: &str) -> GraphResponse {
    let (oid, key, set, nav) = match via {
        Via::User => (
            user_oid(s, path_id),
            "principalId",
            "users",
            "appRoleAssignments",
        ),
        Via::ServicePrincipal => (
            sp_index(s, path_id).map(|i| s.cfg.service_principals[i].object_id.clone()),
            "resourceId",
            "servicePrincipals",
            "appRoleAssignedTo",
        ),
    };
    let Some(oid) = oid else {
        return not_found(ctx, path_id);
    };
    let value: Vec<Value> = s
        .lock()
        .app_role_assignments
        .iter()
        .filter(|a| same(a, key, &oid))
        .cloned()
        .map(Value::Object)
        .collect();
    GraphResponse::json(
        StatusCode::OK,
        json!({"@odata.context": format!("{}/$metadata#{set}('{oid}')/{nav}", s.graph_base()), "value": value}),
    )
}
