//! The API connector endpoints Entra's user flow calls (CONTRACTS.md §1) and the custom
//! authentication extension endpoints of External ID tenants (CONTRACTS.md §2).
//!
//! - `POST /connectors/check-approval-status` (step `postFederationSignup`)
//! - `POST /connectors/request-approval` (step `postAttributeCollection`)
//! - `POST /connectors/external-id/attribute-collection-start`
//! - `POST /connectors/external-id/attribute-collection-submit`
//!
//! Answers come from local state only (no outbound call), after the write is committed.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guestlist_core::Code;
use guestlist_core::connector::{Claims, ConnectorResponse};
use guestlist_core::extension::{ExtensionEvent, ExtensionRequest};
use guestlist_core::policy::MessageKind;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;

use crate::edge::PeerCertificates;
use guestlist_core::model::ErrorBody;
use guestlist_core::openapi::{ConnectorAnswer, ConnectorClaims, ExtensionResponse};

use crate::error::ApiError;
use crate::{AppState, Endpoint};

/// Reads a JSON body of at most `limit` bytes arriving whole within `deadline`
/// (`limits.body_read_timeout_ms`), checking `Content-Type`.
///
/// Errors: 415 without `application/json`, 413 above the limit, 408 past the deadline, 400 on
/// I/O.
pub(crate) async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or_default().trim();
    if !(mime.eq_ignore_ascii_case("application/json")
        || mime.to_ascii_lowercase().ends_with("+json"))
    {
        return Err(ApiError::Status {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: Code::RequestUnsupportedMediaType,
            message: format!("Content-Type must be application/json, got {ct:?}"),
        });
    }
    let Ok(read) = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await else {
        return Err(ApiError::Status {
            status: StatusCode::REQUEST_TIMEOUT,
            code: Code::RequestBodyTimeout,
            message: format!("the body did not arrive within {} ms", deadline.as_millis()),
        });
    };
    read.map_err(|e| {
        // The limit's error is http-body-util's `LengthLimitError`, wrapped by `axum::Error`:
        // found by its type anywhere in the source chain, not by its message.
        let too_large =
            std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |s| {
                s.source()
            })
            .any(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::Status {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: Code::RequestTooLarge,
                message: format!("the body is larger than {limit} bytes"),
            }
        } else {
            ApiError::bad_request(Code::RequestBodyUnreadable, e.to_string())
        }
    })
}

pub(crate) fn json_error(status: StatusCode, code: Code, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The connector answer for `block` (`None`: `Continue`), counted for `/metrics`; its body is
/// rendered once per kind and `ui_locales` ([`AnswerCache`]).
fn connector_answer(
    state: &AppState,
    endpoint: Endpoint,
    block: Option<MessageKind>,
    ui_locales: Option<&str>,
) -> Response {
    state.metrics.connector_answer(endpoint, block);
    let (status, body) = state.answers.get_or_render(block, ui_locales, || {
        let resp = match block {
            Some(kind) => state.config.policy.block(kind, ui_locales),
            None => ConnectorResponse::continue_(),
        };
        let status = StatusCode::from_u16(resp.http_status()).unwrap_or(StatusCode::OK);
        // Serialising these enums cannot fail (string keys, no maps of non-strings).
        let body = serde_json::to_vec(&resp).unwrap_or_default();
        (status, axum::body::Bytes::from(body))
    });
    (
        status,
        [(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The rendered bodies of connector answers (`Continue`, or `ShowBlockPage` of a kind with its
/// localised `userMessage` and code), by kind and by `ui_locales` as sent, so a call costs a map
/// look-up instead of choosing a language, formatting and serialising. The policy is fixed for
/// the process's life, so an entry never goes stale. `ui_locales` comes from the caller: past
/// [`AnswerCache::MAX_LOCALES`] distinct values per kind, answers are rendered each time instead
/// of growing the map.
#[derive(Default)]
pub struct AnswerCache {
    by_kind: std::sync::RwLock<HashMap<Option<MessageKind>, RenderedByLocales>>,
}

/// Rendered answers of one kind, by `ui_locales` as sent.
type RenderedByLocales = HashMap<Box<str>, (StatusCode, axum::body::Bytes)>;

impl AnswerCache {
    /// Distinct `ui_locales` values kept per answer kind.
    pub const MAX_LOCALES: usize = 64;

    /// The status and body of the answer for `block` in `ui_locales` (`None` is the empty
    /// string), rendering and keeping it with `render` the first time.
    pub fn get_or_render(
        &self,
        block: Option<MessageKind>,
        ui_locales: Option<&str>,
        render: impl FnOnce() -> (StatusCode, axum::body::Bytes),
    ) -> (StatusCode, axum::body::Bytes) {
        let locales = ui_locales.unwrap_or_default();
        if let Some(hit) = self
            .by_kind
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&block)
            .and_then(|m| m.get(locales))
        {
            return hit.clone();
        }
        let rendered = render();
        let mut map = self
            .by_kind
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_kind = map.entry(block).or_default();
        if per_kind.len() < Self::MAX_LOCALES {
            per_kind.insert(locales.into(), rendered.clone());
        }
        rendered
    }
}

/// What the accept loop tells a connector handler about the connection: the TCP peer and the
/// TLS client's certificates ([`crate::edge`]). Both optional, so the router also serves
/// callers that did not come through it (e.g. `Router::oneshot` in tests).
#[derive(Clone, Default)]
pub struct Connection {
    /// The TCP peer.
    pub peer: Option<SocketAddr>,
    /// The chain the TLS client presented.
    pub certs: Option<PeerCertificates>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Connection {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Connection {
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
            certs: parts.extensions.get::<PeerCertificates>().cloned(),
        })
    }
}

async fn parse_connector_call(
    state: &AppState,
    conn: &Connection,
    headers: &HeaderMap,
    body: Body,
) -> Result<Claims, Response> {
    crate::edge::connector::authenticate(state, headers, conn.peer, conn.certs.as_ref())
        .map_err(|r| *r)?;
    let bytes = read_json_body(
        headers,
        body,
        state.config.body_limit_bytes,
        state.config.limits.body_read_timeout(),
    )
    .await
    .map_err(IntoResponse::into_response)?;
    Claims::from_slice(&bytes)
        .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.code(), e.to_string()))
}

/// The two calls of the user flow's API connectors (CONTRACTS.md §1): the same claims in, the
/// same kinds of answer out; only what the state does with the claims differs.
#[derive(Clone, Copy)]
enum UserFlowCall {
    CheckStatus,
    RequestApproval,
}

impl UserFlowCall {
    fn endpoint(self) -> Endpoint {
        match self {
            UserFlowCall::CheckStatus => Endpoint::CheckApprovalStatus,
            UserFlowCall::RequestApproval => Endpoint::RequestApproval,
        }
    }
}

/// Authenticates and parses a user-flow connector call, runs `call` on its claims and answers
/// in the claims' `ui_locales`.
async fn user_flow_call(
    state: &AppState,
    conn: &Connection,
    headers: &HeaderMap,
    body: Body,
    call: UserFlowCall,
) -> Response {
    let claims = match parse_connector_call(state, conn, headers, body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let answer = match call {
        UserFlowCall::CheckStatus => state.check_status(&claims).await,
        UserFlowCall::RequestApproval => state.request_approval(&claims).await,
    };
    match answer {
        Ok(block) => connector_answer(state, call.endpoint(), block, claims.ui_locales.as_deref()),
        Err(e) => e.into_response(),
    }
}

/// `#[utoipa::path]` of a user-flow connector endpoint at `$path` (both take the claims of
/// CONTRACTS.md §1 and answer alike), put on the handler `$handler`.
macro_rules! user_flow_endpoint {
    ($path:tt, $handler:item) => {
        #[utoipa::path(post, path = $path, tag = "connectors",
            request_body(content = ConnectorClaims, description = "Claims sent by the user flow (CONTRACTS.md §1)",
                example = json!({"email": "ana@fabrikam.com", "displayName": "Ana Silva", "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": "1170"}], "ui_locales": "en-US"})),
            responses((status = 200, description = "Continue or ShowBlockPage", body = ConnectorAnswer),
                      (status = 400, description = "Malformed claims", body = ErrorBody),
                      (status = 401, description = "Bad Basic credentials", body = ErrorBody),
                      (status = 413, description = "Body over the limit", body = ErrorBody),
                      (status = 415, description = "Not JSON", body = ErrorBody),
                      (status = 429, description = "Too many failed attempts from this address", body = ErrorBody)),
            security(("basic" = [])))]
        $handler
    };
}

user_flow_endpoint!(
    "/connectors/check-approval-status",
    /// `POST /connectors/check-approval-status`: `Continue` when the user has no request,
    /// `ShowBlockPage` `…-APPROVAL-PENDING` / `…-DENIED` / `…-APPROVED` / `…-EXPIRED` otherwise.
    pub async fn check_approval_status(
        State(state): State<AppState>,
        conn: Connection,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        user_flow_call(&state, &conn, &headers, body, UserFlowCall::CheckStatus).await
    }
);

user_flow_endpoint!(
    "/connectors/request-approval",
    /// `POST /connectors/request-approval`: stores the request and answers `ShowBlockPage`
    /// `…-APPROVAL-REQUESTED`; `Continue` when a policy rule auto-approves; `…-AUTO-DENIED` when one
    /// denies. Idempotent per identity key.
    pub async fn request_approval(
        State(state): State<AppState>,
        conn: Connection,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        user_flow_call(&state, &conn, &headers, body, UserFlowCall::RequestApproval).await
    }
);

async fn extension_call(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    expected: ExtensionEvent,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = state.extension_auth.verify(auth).await {
        return ApiError::from(e).into_response();
    }
    let bytes = match read_json_body(
        headers,
        body,
        state.config.body_limit_bytes,
        state.config.limits.body_read_timeout(),
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let req: ExtensionRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                Code::ExtensionMalformed,
                e.to_string(),
            );
        }
    };
    if req.event() != Some(expected) {
        return json_error(
            StatusCode::BAD_REQUEST,
            Code::ExtensionWrongEvent,
            format!(
                "this endpoint takes {expected:?} events, got {:?}",
                req.data.odata_type
            ),
        );
    }
    let claims = match req.to_claims() {
        Ok(c) => c,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
    };
    // Issue 17: the external-tenant rules (routes::external), answered from local state.
    let (action, block) =
        match crate::routes::external::answer_event(state, &claims, expected).await {
            Ok(a) => a,
            Err(e) => return e.into_response(),
        };
    state.metrics.connector_answer(
        match expected {
            ExtensionEvent::Start => Endpoint::AttributeCollectionStart,
            ExtensionEvent::Submit => Endpoint::AttributeCollectionSubmit,
        },
        block,
    );
    (StatusCode::OK, Json(action.to_response(expected))).into_response()
}

/// `#[utoipa::path]` of an External ID extension endpoint at `$path` (both take the event of
/// CONTRACTS.md §2 and answer one action), its example an event of type `$event` with data
/// `$data`, put on the handler `$handler`.
macro_rules! extension_endpoint {
    ($path:tt, $event:tt, $data:tt, $handler:item) => {
        #[utoipa::path(post, path = $path, tag = "extensions",
            request_body(content = ExtensionRequest, description = "The event Entra sends (CONTRACTS.md §2)",
                example = json!({"type": $event, "source": "/tenants/4a1e2d3c-5b6f-4789-9abc-def012345678/applications/9b2e7c10-3f4a-4d5b-8e6f-7a8b9c0d1e2f",
                    "data": {"@odata.type": $data, "tenantId": "4a1e2d3c-5b6f-4789-9abc-def012345678",
                        "authenticationEventListenerId": "10000000-0000-0000-0000-000000000001", "customAuthenticationExtensionId": "10000000-0000-0000-0000-000000000002",
                        "authenticationContext": {"correlationId": "c0ffee00-0000-4000-8000-000000000001"},
                        "userSignUpInfo": {"attributes": {"email": {"@odata.type": "microsoft.graph.stringDirectoryAttributeValue", "value": "ana@fabrikam.com", "attributeType": "builtIn"}},
                            "identities": [{"signInType": "email", "issuer": "contoso.onmicrosoft.com", "issuerAssignedId": "ana@fabrikam.com"}]}}})),
            responses((status = 200, description = "One action", body = ExtensionResponse),
                      (status = 400, description = "Malformed or wrong event", body = ErrorBody),
                      (status = 401, description = "Bad bearer token", body = ErrorBody),
                      (status = 403, description = "Token of another caller", body = ErrorBody),
                      (status = 413, description = "Body over the limit", body = ErrorBody),
                      (status = 415, description = "Not JSON", body = ErrorBody),
                      (status = 503, description = "Token issuer not configured or unreachable", body = ErrorBody)),
            security(("extensionBearer" = [])))]
        $handler
    };
}

extension_endpoint!(
    "/connectors/external-id/attribute-collection-start",
    "microsoft.graph.authenticationEvent.attributeCollectionStart",
    "microsoft.graph.onAttributeCollectionStartCalloutData",
    /// `POST /connectors/external-id/attribute-collection-start` (`OnAttributeCollectionStart`):
    /// `showBlockPage` (with a `title`) for pending, denied and completed people,
    /// `setPrefillValues` for an approved person coming back ([`crate::routes::external`]), else
    /// `continueWithDefaultBehavior`.
    pub async fn attribute_collection_start(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        extension_call(&state, &headers, body, ExtensionEvent::Start).await
    }
);

extension_endpoint!(
    "/connectors/external-id/attribute-collection-submit",
    "microsoft.graph.authenticationEvent.attributeCollectionSubmit",
    "microsoft.graph.onAttributeCollectionSubmitCalloutData",
    /// `POST /connectors/external-id/attribute-collection-submit` (`OnAttributeCollectionSubmit`):
    /// the request-approval rules (a new request has flow `external`), answered as extension
    /// actions; an approved person coming back continues once and the request is completed
    /// ([`crate::routes::external`]).
    pub async fn attribute_collection_submit(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Body,
    ) -> Response {
        extension_call(&state, &headers, body, ExtensionEvent::Submit).await
    }
);
