//! What the grant operations share ("Add members", "Add sponsor": the `$ref` body; "List group
//! members", "List sponsors": directory objects): the `{"@odata.id": …}` body checked against
//! `strict.ReferenceCreate` of `graph-subset.json` and resolved to one directory object, and
//! the `directoryObject` JSON Graph lists (user or group with its `@odata.type`).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::odata::project;
use super::users::find_index;
use super::{Ctx, GraphResponse, bad_json, bad_request, odata_error};
use crate::schema::{self, SchemaViolation};
use crate::state::{Inner, Shared};

/// The kind of a directory object an `@odata.id` or a member ID names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    User,
    Group,
    ServicePrincipal,
}

/// 404 `Request_ResourceNotFound` for an object ID that names nothing (Graph's message).
pub(super) fn not_found(ctx: &Ctx, id: &str) -> GraphResponse {
    odata_error(
        ctx,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// 400 for an `@odata.id` that is not a directory object URL (Graph: "Invalid object
/// identifier").
fn invalid_identifier(ctx: &Ctx, raw: &str) -> GraphResponse {
    bad_request(ctx, &format!("Invalid object identifier '{raw}'."))
}

/// The schema verdict for a body, as Graph words it for `resource` (`AppRoleAssignment`, …).
pub(super) fn schema_error(ctx: &Ctx, violation: SchemaViolation, resource: &str) -> GraphResponse {
    let msg = match violation {
        SchemaViolation::UnknownProperty(p) => {
            format!("Property '{p}' does not exist as a declared property or extension property.")
        }
        SchemaViolation::Missing(p) => {
            format!("A value is required for property '{p}' of resource '{resource}'.")
        }
        SchemaViolation::InvalidValue(p) => {
            format!("Invalid value specified for property '{p}' of resource '{resource}'.")
        }
    };
    bad_request(ctx, &msg)
}

/// The compiled validators, or a 500 `generalException` if the embedded schema were broken.
pub(super) fn validators(ctx: &Ctx) -> Result<&'static schema::Validators, GraphResponse> {
    schema::validators().map_err(|e| {
        odata_error(
            ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            &e,
        )
    })
}

/// Finds a directory object by ID (case-insensitive): users (also by `userPrincipalName`),
/// groups, then service principals.
pub(super) fn lookup(s: &Shared, inner: &Inner, id: &str) -> Option<(Kind, String)> {
    if let Some(i) = find_index(&inner.users, id) {
        let oid = inner.users[i]
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string();
        return Some((Kind::User, oid));
    }
    if let Some(g) = inner.groups.iter().find(|g| id_matches(&g.object, id)) {
        return Some((Kind::Group, str_of(&g.object, "id")));
    }
    s.cfg
        .service_principals
        .iter()
        .find(|sp| sp.object_id.eq_ignore_ascii_case(id))
        .map(|sp| (Kind::ServicePrincipal, sp.object_id.clone()))
}

fn id_matches(o: &Map<String, Value>, id: &str) -> bool {
    o.get("id")
        .and_then(Value::as_str)
        .is_some_and(|x| x.eq_ignore_ascii_case(id))
}

fn str_of(o: &Map<String, Value>, k: &str) -> String {
    o.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Checks a `$ref` body against `strict.ReferenceCreate` and returns the object ID its
/// `@odata.id` names: `https://graph.microsoft.com/v1.0/{directoryObjects|users|groups|
/// servicePrincipals}/{GUID}` (also accepted with this tenant's own Graph root). The object
/// must exist (404 otherwise); its kind must be one of `allowed` (400 otherwise).
pub(super) fn reference_target(
    s: &Shared,
    ctx: &Ctx,
    body: &Value,
    allowed: &[Kind],
) -> Result<(Kind, String), GraphResponse> {
    if !body.is_object() {
        return Err(bad_json(ctx));
    }
    let v = validators(ctx)?;
    match schema::check(&v.reference, body) {
        None => {}
        // The pattern is only Guestlist's form; the parser below gives Graph's own message.
        Some(SchemaViolation::InvalidValue(p)) if p == "@odata.id" && body[&p].is_string() => {}
        Some(violation) => return Err(schema_error(ctx, violation, "ReferenceCreate")),
    }
    let raw = body["@odata.id"].as_str().unwrap_or_default();
    let own_root = format!("{}/", s.graph_base());
    let rest = raw
        .strip_prefix("https://graph.microsoft.com/v1.0/")
        .or_else(|| raw.strip_prefix(own_root.as_str()))
        .ok_or_else(|| invalid_identifier(ctx, raw))?;
    let (set, id) = rest
        .split_once('/')
        .ok_or_else(|| invalid_identifier(ctx, raw))?;
    let wanted = match set {
        "directoryObjects" => None,
        "users" => Some(Kind::User),
        "groups" => Some(Kind::Group),
        "servicePrincipals" => Some(Kind::ServicePrincipal),
        _ => return Err(invalid_identifier(ctx, raw)),
    };
    if uuid::Uuid::parse_str(id).is_err() || id.contains('/') {
        return Err(invalid_identifier(ctx, raw));
    }
    let found = {
        let inner = s.lock();
        lookup(s, &inner, id)
    };
    let Some((kind, oid)) = found.filter(|(k, _)| wanted.is_none_or(|w| w == *k)) else {
        return Err(not_found(ctx, id));
    };
    if !allowed.contains(&kind) {
        return Err(bad_request(
            ctx,
            &format!("Invalid object identifier '{raw}'."),
        ));
    }
    Ok((kind, oid))
}

/// 400 `Request_BadRequest` for a reference that already exists (Graph's message for
/// `members` and `sponsors`).
pub(super) fn already_exists(ctx: &Ctx, property: &str) -> GraphResponse {
    bad_request(
        ctx,
        &format!(
            "One or more added object references already exist for the following modified properties: '{property}'."
        ),
    )
}

/// One directory object as Graph lists it in `members`/`sponsors`: `@odata.type` and the
/// default properties of its type.
pub(super) fn directory_object(s: &Shared, inner: &Inner, id: &str) -> Option<Value> {
    match lookup(s, inner, id)? {
        (Kind::User, oid) => {
            let i = find_index(&inner.users, &oid)?;
            let mut v = project(&inner.users[i], None);
            if let Value::Object(m) = &mut v {
                m.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            }
            Some(v)
        }
        (Kind::Group, oid) => inner
            .groups
            .iter()
            .find(|g| id_matches(&g.object, &oid))
            .map(|g| {
                let mut m = g.object.clone();
                m.insert("@odata.type".into(), json!("#microsoft.graph.group"));
                Value::Object(m)
            }),
        (Kind::ServicePrincipal, oid) => s
            .cfg
            .service_principals
            .iter()
            .find(|sp| sp.object_id == oid)
            .map(|sp| {
                json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": sp.object_id,
                    "deletedDateTime": null, "appId": sp.app_id, "displayName": sp.display_name})
            }),
    }
}

/// `{"@odata.context": "{graph}/$metadata#directoryObjects", "value": [...]}` for object IDs
/// (IDs that no longer name an object are left out, as Graph does for deleted members).
pub(super) fn directory_objects(s: &Shared, ids: &[String]) -> GraphResponse {
    let value: Vec<Value> = {
        let inner = s.lock();
        ids.iter()
            .filter_map(|id| directory_object(s, &inner, id))
            .collect()
    };
    GraphResponse::json(
        StatusCode::OK,
        json!({"@odata.context": format!("{}/$metadata#directoryObjects", s.graph_base()), "value": value}),
    )
}

/// The display name of a directory object (for `principalDisplayName`).
pub(super) fn display_name(s: &Shared, inner: &Inner, kind: Kind, id: &str) -> Value {
    match kind {
        Kind::User => find_index(&inner.users, id)
            .and_then(|i| inner.users[i].get("displayName").cloned())
            .unwrap_or(Value::Null),
        Kind::Group => inner
            .groups
            .iter()
            .find(|g| id_matches(&g.object, id))
            .and_then(|g| g.object.get("displayName").cloned())
            .unwrap_or(Value::Null),
        Kind::ServicePrincipal => s
            .cfg
            .service_principals
            .iter()
            .find(|sp| sp.object_id == id)
            .map(|sp| json!(sp.display_name))
            .unwrap_or(Value::Null),
    }
}
