//! A user's sponsors on Graph v1.0: "Add sponsor" (`POST /users/{id}/sponsors/$ref`, 204) and
//! "List sponsors" (`GET /users/{id}/sponsors`). Sponsors are users or groups; adding one twice
//! is 400 `Request_BadRequest` ("One or more added object references already exist for the
//! following modified properties: 'sponsors'.", as for group members).

use serde_json::Value;

use super::refs::{Kind, already_exists, directory_objects, not_found, reference_target};
use super::users::find_index;
use super::{Ctx, GraphResponse};
use crate::state::Shared;

/// The user's object ID for an ID or userPrincipalName in the path.
fn user_oid(s: &Shared, id: &str) -> Option<String> {
    let inner = s.lock();
    find_index(&inner.users, id).and_then(|i| {
        inner.users[i]
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

pub(super) fn list_sponsors(s: &Shared, ctx: &Ctx, id: &str) -> GraphResponse {
    let Some(oid) = user_oid(s, id) else {
        return not_found(ctx, id);
    };
    let ids = s.lock().sponsors.get(&oid).cloned().unwrap_or_default();
    directory_objects(s, &ids)
}

pub(super) fn add_sponsor(s: &Shared, ctx: &Ctx, id: &str, body: &Value) -> GraphResponse {
    let Some(oid) = user_oid(s, id) else {
        return not_found(ctx, id);
    };
    let (_, sponsor) = match reference_target(s, ctx, body, &[Kind::User, Kind::Group]) {
        Ok(t) => t,
        Err(r) => return r,
    };
    {
        let mut inner = s.lock();
        let list = inner.sponsors.entry(oid.clone()).or_default();
        if list.iter().any(|x| x.eq_ignore_ascii_case(&sponsor)) {
            return already_exists(ctx, "sponsors");
        }
        list.push(sponsor.clone());
    }
    s.persist_logged();
    tracing::info!(user = %oid, %sponsor, "graph: sponsor added");
    GraphResponse::no_content()
}
