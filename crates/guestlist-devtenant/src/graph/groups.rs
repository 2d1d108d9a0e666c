//! `/groups` on Graph v1.0, the part Guestlist's grants use: "Get group"
//! (`GET /groups/{id}`), "List group members" (`GET /groups/{id}/members`) and "Add members"
//! (`POST /groups/{id}/members/$ref`, 204; a member already there is 400 `Request_BadRequest`
//! "One or more added object references already exist for the following modified properties:
//! 'members'."). Members may be users, groups or service principals.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::refs::{Kind, already_exists, directory_objects, not_found, reference_target};
use super::{Ctx, GraphResponse};
use crate::state::Shared;

fn group_index(s: &Shared, id: &str) -> Option<usize> {
    s.lock().groups.iter().position(|g| {
        g.object
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(id))
    })
}

pub(super) fn get_group(s: &Shared, ctx: &Ctx, id: &str) -> GraphResponse {
    let Some(i) = group_index(s, id) else {
        return not_found(ctx, id);
    };
    let mut body = s.lock().groups[i].object.clone();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/$metadata#groups/$entity", s.graph_base())),
    );
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
