//! Privacy operations of the approver API (issue 12), bearer JWT with the `Admin` app role
//! (`approver_auth.admin_role`):
//!
//! - `POST /api/privacy/erase` `{"email":"…","keepDenial":true}` → 200
//!   `{"requests":n,"historyEntries":n,"events":n,"idempotency":n,"denialKept":bool}`: erases
//!   every request of that canonical e-mail (GDPR Art. 17; what is removed and what is kept:
//!   [`crate::store::privacy`]), audited as `privacy.erase` with the caller and the counts, never
//!   the e-mail. 400 `privacy.bad_email` on an address with no canonical form, 401 / 403 / 503
//!   as the other approver routes.
//!
//! Owns: the HTTP shape of privacy operations. Must not write SQL.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use guestlist_core::code::Code;
use guestlist_core::email;
use guestlist_core::model::ErrorBody;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Admin;
use crate::routes::connectors::read_json_body;
use crate::routes::requests::actor_of;
use crate::store::privacy::ErasureCounts;

/// Body of `POST /api/privacy/erase`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EraseBody {
    /// The person's e-mail address, in any form that canonicalises to theirs
    /// (`guestlist_core::email::canonical`).
    pub email: String,
    /// Keep blocking a denied person after the erasure (a keyed hash of the canonical e-mail,
    /// no other data). Default `true`; `false` also removes an earlier tombstone, so the person
    /// may sign up again.
    #[serde(default = "yes")]
    pub keep_denial: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/privacy/erase`.
#[utoipa::path(post, path = "/api/privacy/erase", tag = "privacy",
    request_body = EraseBody,
    responses((status = 200, description = "Erased; the counts of what was removed", body = ErasureCounts),
              (status = 400, description = "Malformed body or an e-mail with no canonical form", body = ErrorBody),
              (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
              (status = 403, description = "Token without the Admin role", body = ErrorBody),
              (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn erase(
    Admin { claims, .. }: Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ErasureCounts>, ApiError> {
    let bytes = read_json_body(
        &headers,
        body,
        state.config.body_limit_bytes,
        state.config.limits.body_read_timeout(),
    )
    .await?;
    let req: EraseBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(Code::PrivacyMalformed, e.to_string()))?;
    let canonical = email::canonical(&req.email).map_err(|_| {
        ApiError::bad_request(
            Code::PrivacyBadEmail,
            "email is not an e-mail address with a canonical form",
        )
    })?;
    let actor = actor_of(&claims, &headers);
    let erased = state
        .store
        .erase_email(
            &canonical,
            req.keep_denial,
            &actor,
            OffsetDateTime::now_utc(),
        )
        .await?;
    // The bytes leave the WAL too; a checkpoint kept busy by a long read is retried by the
    // next erasure or retention run, and logged.
    if let Err(e) = state.store.checkpoint_truncate().await {
        tracing::warn!(error = %e, "erasure: WAL checkpoint not done");
    }
    for e in erased.events {
        state.publish(e);
    }
    Ok(Json(erased.counts))
}
