//! `GET /api/privacy/export?email=…` (issue 12 "Access", GDPR Art. 15): everything held for one
//! person, for an Admin, audited as `privacy.export` without the e-mail.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use guestlist_core::code::Code;
use guestlist_core::email;
use guestlist_core::model::ErrorBody;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Admin, AppQuery};
use crate::routes::requests::actor_of;
use crate::store::audit::AuditAction;

/// Query of `GET /api/privacy/export`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// The person's e-mail address, in any form that has the same canonical form
    /// (`guestlist_core::email::canonical`).
    pub email: Option<String>,
}

/// `GET /api/privacy/export?email=…`: a JSON [`crate::store::export::AccessExport`] of every
/// request stored for the canonical e-mail (with all claims), its history, how many stored
/// events and idempotency records copy it, and (once the tombstone store exists) whether a
/// denial tombstone does. The call is audited (`privacy.export`, the count of requests, not the
/// e-mail). `Cache-Control: no-store`.
///
/// Errors: 400 `privacy.bad_email` (missing, or no canonical form); 401; 403 without Admin;
/// 503.
#[utoipa::path(get, path = "/api/privacy/export", tag = "privacy", params(ExportQuery),
    responses((status = 200, description = "Everything held for the person (JSON)", body = crate::store::export::AccessExport),
              (status = 400, description = "Missing or malformed e-mail", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without the Admin role", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export(
    Admin { claims, .. }: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    AppQuery(q): AppQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let address = q.email.unwrap_or_default();
    if email::canonical(&address).is_err() {
        return Err(ApiError::bad_request(
            Code::PrivacyBadEmail,
            "email must be an e-mail address",
        ));
    }
    let actor = actor_of(&claims, &headers);
    let now = OffsetDateTime::now_utc();
    let export = state.store.access_export(&address, now).await?;
    state
        .store
        .audit(
            now,
            AuditAction::Export,
            None,
            &actor,
            json!({ "requests": export.requests.len() }),
        )
        .await?;
    let mut resp = Json(export).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
