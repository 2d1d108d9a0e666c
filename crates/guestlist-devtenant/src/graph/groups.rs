//! `/groups` on Graph v1.0, the part Guestlist's grants use: "Get group"
//! (`GET /groups/{id}`, with `$select`), "List group members" (`GET /groups/{id}/members`) and "Add members"
//! (`POST /groups/{id}/members/$ref`, 204; a member already there is 400 `Request_BadRequest`
//! "One or more added object references already exist for the following modified properties:
//! 'members'."). Members may be users, groups or service principals.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::refs::{Kind, already_exists, directory_objects, not_found, reference_target};
use super::{Ctx, GraphResponse, odata_error};
use crate::schema;
use crate::state::Shared;

fn group_index(s: &Shared, id: &str) -> Option<usize> {
    s.lock().groups.iter().position(|g| {
        g.object
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(id))
    })
}

/// `$select` on a group: the named properties of `strict.microsoft.graph.group` (navigation
/// properties and unknown names are 400, as Graph's "Parsing OData Select and Expand failed").
fn parse_group_select(ctx: &Ctx, query: &str) -> Result<Option<Vec<String>>, GraphResponse> {
    let raw = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("$select"))
        .map(|(_, v)| v.into_owned());
    let Some(raw) = raw else { return Ok(None) };
    let declared = schema::document()
        .pointer("/components/schemas/strict.microsoft.graph.group/properties")
        .and_then(Value::as_object);
    let mut out = Vec::new();
    for p in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let known = declared.and_then(|m| m.keys().find(|n| n.eq_ignore_ascii_case(p)));
        match known {
            Some(n) if !schema::is_navigation("group", n) && !n.starts_with('@') => {
                out.push(n.clone())
            }
            _ => {
                return Err(odata_error(
                    ctx,
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "Parsing OData Select and Expand failed: Could not find a property named '{p}' on type 'microsoft.graph.group'."
                    ),
                ));
            }
        }
    }
    Ok(Some(out))
}

pub(super) fn get_group(s: &Shared, ctx: &Ctx, id: &str, query: &str) -> GraphResponse {
    let select = match parse_group_select(ctx, query) {
        Ok(sel) => sel,
        Err(r) => return r,
    };
    let Some(i) = group_index(s, id) else {
        return not_found(ctx, id);
    };
    let object = s.lock().groups[i].object.clone();
    let (mut body, context) = match &select {
        None => (
            object,
            format!("{}/$metadata#groups/$entity", s.graph_base()),
        ),
        Some(sel) => (
            sel.iter()
                .map(|k| (k.clone(), object.get(k).cloned().unwrap_or(Value::Null)))
                .collect(),
            format!(
                "{}/$metadata#groups({})/$entity",
                s.graph_base(),
                sel.join(",")
            ),
        ),
    };
    body.insert("@odata.context".into(), json!(context));
    GraphResponse::json(StatusCode::OK, Value::Object(body))
}

pub(super) fn list_members(s: &Shared, ctx: &Ctx, id: &str) -> GraphResponse {
    let Some(i) = group_index(s, id) else {
        return not_found(ctx, id);
    };
    let members = s.lock().groups[i].members.clone();
    directory_objects(s, &members)
}

pub(super) fn add_member(s: &Shared, ctx: &Ctx, id: &str, body: &Value) -> GraphResponse {
    if group_index(s, id).is_none() {
        return not_found(ctx, id);
    }
    let (_, member) = match reference_target(
        s,
        ctx,
        body,
        &[Kind::User, Kind::Group, Kind::ServicePrincipal],
    ) {
        Ok(t) => t,
        Err(r) => return r,
    };
    {
        let mut inner = s.lock();
        let Some(g) = inner.groups.iter_mut().find(|g| {
            g.object
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case(id))
        }) else {
            return not_found(ctx, id);
        };
        if g.members.iter().any(|m| m.eq_ignore_ascii_case(&member)) {
            return already_exists(ctx, "members");
        }
        if g.object
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(&member))
        {
            return super::bad_request(ctx, "A group cannot be a member of itself.");
        }
        g.members.push(member.clone());
    }
    s.persist_logged();
    tracing::info!(group = %id, %member, "graph: group member added");
    GraphResponse::no_content()
}
