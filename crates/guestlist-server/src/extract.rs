//! The approver API's extractors: who calls ([`Caller`], with the app role it needs as a type:
//! [`Approver`], [`Admin`], [`AuditReader`]), the request id of the path ([`RequestId`]), the
//! query string ([`AppQuery`]) and a JSON body ([`AppJson`]). Every rejection is an [`ApiError`], so it answers in the API's error
//! shape (`{"error":{"code":"…","message":"…"}}`, `docs/CONTRACTS.md` §4) with a
//! [`Code`], never axum's plain-text rejections.
//!
//! Handlers list the caller first, so a call without a valid token is refused (401/403/503)
//! before anything else of it is looked at, as before the extractors.

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use guestlist_core::Code;
use guestlist_core::model::Decision;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Need, TokenClaims};
use crate::error::ApiError;
use crate::routes::connectors::read_json_body;

/// An app role a handler needs, as a type: the [`Need`] its [`Caller`] is checked for.
pub trait Role: Send + Sync + 'static {
    /// The app role (see [`Need`] and `approver_auth.*_role`).
    const NEED: Need;
}

/// The queue and decisions: `approver_auth.required_role` (default `Approver`).
#[derive(Debug)]
pub enum ApproverRole {}

impl Role for ApproverRole {
    const NEED: Need = Need::Approver;
}

/// Privacy operations and reopening a denial: `approver_auth.admin_role` (default `Admin`).
#[derive(Debug)]
pub enum AdminRole {}

impl Role for AdminRole {
    const NEED: Need = Need::Admin;
}

/// Reading the audit: `admin_role` or `auditor_role` (default `Auditor`).
#[derive(Debug)]
pub enum AuditReaderRole {}

impl Role for AuditReaderRole {
    const NEED: Need = Need::AuditReader;
}

/// The verified caller of an approver API call whose bearer token holds the app role `R`
/// (issue 12 "Roles"). Rejection: 401 `auth.unauthorized` (no or bad token), 403
/// `auth.forbidden` / `auth.scope_missing` / `auth.client_not_allowed`, 503
/// `auth.not_configured` / `auth.issuer_unavailable` (see [`crate::auth::AuthError`]).
#[derive(Debug, Clone)]
pub struct Caller<R: Role> {
    /// The token's verified claims (who decided, for the audit).
    pub claims: TokenClaims,
    role: PhantomData<R>,
}

/// A caller with the `Approver` role.
pub type Approver = Caller<ApproverRole>;
/// A caller with the `Admin` role.
pub type Admin = Caller<AdminRole>;
/// A caller who may read the audit (`Admin` or `Auditor`).
pub type AuditReader = Caller<AuditReaderRole>;

impl<R: Role> FromRequestParts<AppState> for Caller<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = crate::routes::requests::authorized(state, &parts.headers, R::NEED).await?;
        Ok(Caller {
            claims,
            role: PhantomData,
        })
    }
}

/// The `{id}` of `/api/requests/{id}/…`: a UUID. Rejection: 400 `request.bad_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<Uuid>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(RequestId(id)),
            Err(rejection) => Err(ApiError::bad_request(
                Code::RequestBadId,
                format!("not a request id: {}", rejection.body_text()),
            )),
        }
    }
}

/// The query string as a `T` (serde_urlencoded, as axum's `Query`). Rejection: 400
/// `request.bad_query` naming what is wrong (`limit: invalid digit found in string`, a
/// parameter given twice), in the API's error shape rather than axum's plain text.
#[derive(Debug, Clone)]
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(AppQuery(q)),
            Err(rejection) => Err(ApiError::bad_request(
                Code::RequestBadQuery,
                rejection.body_text(),
            )),
        }
    }
}

/// A JSON body type, with the code its malformed bodies are refused with.
pub trait JsonBody: DeserializeOwned {
    /// The code of a 400 for a body that is not this type's JSON.
    const MALFORMED: Code = Code::RequestMalformedJson;
}

impl JsonBody for Decision {
    const MALFORMED: Code = Code::DecisionMalformed;
}

/// A JSON body of type `T`, read with the server's body limit (`body_limit_bytes`) and read
/// deadline (`limits.body_read_timeout`). Rejections: 415 `request.unsupported_media_type` (not
/// `application/json` or `+json`), 413 `request.too_large`, 408 `request.body_timeout`, 400
/// `request.body_unreadable`, and 400 [`JsonBody::MALFORMED`] for JSON that is not a `T`.
#[derive(Debug, Clone)]
pub struct AppJson<T>(pub T);

impl<T: JsonBody> FromRequest<AppState> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = read_json_body(
            &parts.headers,
            body,
            state.config.body_limit_bytes,
            state.config.limits.body_read_timeout(),
        )
        .await?;
        serde_json::from_slice(&bytes)
            .map(AppJson)
            .map_err(|e| ApiError::bad_request(T::MALFORMED, e.to_string()))
    }
}
