//! `POST /$batch` ("Combine multiple HTTP requests using JSON batching"; CONTRACTS.md §3): up
//! to 20 steps, unique ids, `dependsOn` executed in dependency order, a failed dependency
//! answering 424 `FailedDependency`; each step goes through the same throttling and
//! authorization as a plain request.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::{Ctx, GraphResponse, JSON_CT, bad_json, execute, odata_error};
use crate::schema::{self, SchemaViolation};
use crate::state::Shared;

pub(super) fn batch(s: &Shared, ctx: &Ctx, p: &Principal, body: &Bytes) -> GraphResponse {
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
