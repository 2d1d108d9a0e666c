//! The one error type of the reviewer facade: `{code, message, requestId?, graph?}` on the wire
//! (Tauri IPC), its `code` a [`guestlist_core::Code`] (the one list of codes, exported to the
//! UI as `Code.ts`; `docs/CONTRACTS.md` §4). An approval API error keeps the server's own code,
//! read from the error body, and the answer's `x-request-id`; a Graph error is
//! [`Code::GraphError`] with Graph's own code (`Request_BadRequest`), request-id and date in
//! [`GraphErrorInfo`], the details Microsoft support asks for.

use guestlist_core::Code;
use serde::{Deserialize, Deserializer, Serialize};
use ts_rs::TS;

/// The facade's own codes under the names this crate has always used: each is a
/// [`guestlist_core::Code`] (compare and construct with them as with any `Code`). The UI
/// branches on the codes; never rename one.
pub mod codes {
    use guestlist_core::Code;

    /// The OS keyring (Secret Service, Keychain, Credential Manager) cannot be used.
    pub const KEYRING_UNAVAILABLE: Code = Code::AuthKeyringUnavailable;
    /// No approver is signed in (or the refresh token expired / was revoked).
    pub const NOT_SIGNED_IN: Code = Code::AuthNotSignedIn;
    /// Sign-in failed: the authority refused, `state`/`iss` did not match, the user cancelled.
    pub const SIGN_IN_FAILED: Code = Code::AuthSignInFailed;
    /// The browser could not be opened.
    pub const BROWSER: Code = Code::AuthBrowser;
    /// The approval API refused our token's rights: the approver lacks the role (403
    /// `auth.forbidden`; the server's `auth.scope_missing` and `auth.client_not_allowed` are
    /// kept as they are).
    pub const FORBIDDEN: Code = Code::AuthForbidden;
    /// A server or Graph could not be reached: work continues offline.
    pub const OFFLINE: Code = Code::NetworkOffline;
    /// Another decision already won (HTTP 409 `request.already_decided`).
    pub const CONFLICT: Code = Code::RequestAlreadyDecided;
    /// The request changed since it was read (HTTP 412 `request.version_mismatch`).
    pub const VERSION_MISMATCH: Code = Code::RequestVersionMismatch;
    /// No such request (HTTP 404, or not in the cache).
    pub const NOT_FOUND: Code = Code::RequestNotFound;
    /// Reopen refused: the request is not denied (HTTP 409 `request.not_denied` on
    /// `POST /api/requests/{id}/reopen`: it is pending, approved or expired).
    pub const NOT_DENIED: Code = Code::RequestNotDenied;
    /// Reopen refused: the approver's token lacks the Admin app role (HTTP 403).
    pub const NOT_ADMIN: Code = Code::AuthNotAdmin;
    /// The approval API answered something unexpected (also: a code this version does not
    /// know, from a newer server).
    pub const API: Code = Code::ApiError;
    /// Local storage (SQLite cache/outbox, settings file) failed.
    pub const STORAGE: Code = Code::StorageError;
    /// The encrypted cache file does not open with the key given (another key, or not a
    /// database: SQLCipher's "file is not a database"). The app turns it into
    /// [`CACHE_KEY_LOST`].
    pub const CACHE_KEY_MISMATCH: Code = Code::StorageCacheKeyMismatch;
    /// The cache's key was missing from the keyring (or did not open the file): the old file was
    /// moved aside (`reviewer.db.unreadable-<unix time>`, never deleted; the message says where)
    /// and an empty cache with a new key was started.
    pub const CACHE_KEY_LOST: Code = Code::StorageCacheKeyLost;
    /// The keyring could not be used to read or store the cache's key: the cache is an empty
    /// in-memory one until restart and the file on disk is left untouched (nothing is ever
    /// written unencrypted).
    pub const CACHE_KEY_UNAVAILABLE: Code = Code::StorageCacheKeyUnavailable;
    /// The settings are invalid.
    pub const SETTINGS: Code = Code::SettingsInvalid;
    /// The caller passed invalid input (empty deny reason, no ids).
    pub const INVALID_INPUT: Code = Code::InputInvalid;
    /// No provisioning plan can be made for the request.
    pub const PLAN: Code = Code::PlanError;
    /// A Graph answer this app cannot read.
    pub const GRAPH_DECODE: Code = Code::GraphDecode;
    /// Graph answered an error: Graph's own code is in [`super::GraphErrorInfo::code`].
    pub const GRAPH: Code = Code::GraphError;
    /// The request was erased on the approval service (retention, or a data-protection erasure
    /// request; issue 12) before a decision made here was sent: the decision cannot apply.
    pub const ERASED: Code = Code::RequestErased;
    /// A simulated crash (fault injection in tests; never produced otherwise).
    pub const SIMULATED_CRASH: Code = Code::TestSimulatedCrash;
}

/// An error crossing the facade: `{"code":"network.offline","message":"…"}`, plus `requestId`
/// when the approval API or Graph answered one, plus, for Graph errors,
/// `graph: {status, code, message, requestId, date}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{code}: {message}")]
pub struct ReviewerError {
    /// The stable code: the server's own for an approval API error, [`Code::GraphError`] for a
    /// Graph error, else one of [`codes`]. Read leniently ([`code_or_api`]): an outbox row
    /// written by an older version (`graph.<Graph code>`) or a code from a newer one still loads.
    pub code: Code,
    /// A sentence for the approver.
    pub message: String,
    /// The request id of the failed call, for support: the approval API's `x-request-id`, or
    /// Graph's `request-id`. Shown by the UI from this field, never read out of `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub request_id: Option<String>,
    /// The Graph error, when Graph answered one (show its `requestId` and `date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<Box<GraphErrorInfo>>,
}

/// How a [`ReviewerError`] is read (from an outbox row, a status): as it is written, its code
/// read with [`code_or_api`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReviewerError {
    code: String,
    message: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    graph: Option<Box<GraphErrorInfo>>,
}

impl<'de> Deserialize<'de> for ReviewerError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireReviewerError::deserialize(d)?;
        Ok(ReviewerError {
            code: code_or_api(&w.code),
            message: w.message,
            request_id: w.request_id,
            graph: w.graph,
        })
    }
}

/// Reads a [`Code`] from its dotted string without failing: `graph.<Graph code>` (how versions
/// before `graph.error` stored a Graph error) is [`Code::GraphError`], any other unknown string
/// [`Code::ApiError`]. Not a string compare: the string is parsed with `Code`'s `FromStr`.
///
/// Errors: only when the value is not a string.
pub fn lenient_code<'de, D: Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
    let s = String::deserialize(d)?;
    Ok(code_or_api(&s))
}

/// The [`Code`] of `s` (`request.not_found`), as [`lenient_code`] reads it.
pub fn code_or_api(s: &str) -> Code {
    match s.parse::<Code>() {
        Ok(c) => c,
        Err(_) if s.starts_with("graph.") => Code::GraphError,
        Err(_) => Code::ApiError,
    }
}

/// Graph's error details (CONTRACTS.md §3: show `code` and `request-id` to the approver).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GraphErrorInfo {
    /// HTTP status.
    pub status: u16,
    /// Graph's error code, e.g. `Request_BadRequest`.
    pub code: String,
    /// Graph's message.
    pub message: String,
    /// `request-id`.
    pub request_id: Option<String>,
    /// `date` of the error.
    pub date: Option<String>,
}

impl ReviewerError {
    /// An error with `code` and a message, without a request id.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ReviewerError {
            code,
            message: message.into(),
            request_id: None,
            graph: None,
        }
    }

    /// This error with the failed call's request id (the approval API's `x-request-id`).
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// `network.offline`.
    pub fn offline(message: impl Into<String>) -> Self {
        Self::new(codes::OFFLINE, message)
    }

    /// `storage.error`.
    pub fn storage(message: impl std::fmt::Display) -> Self {
        Self::new(codes::STORAGE, message.to_string())
    }

    /// `true` for `network.offline`.
    pub fn is_offline(&self) -> bool {
        self.code == codes::OFFLINE
    }
}

impl From<guestlist_graph::Error> for ReviewerError {
    fn from(e: guestlist_graph::Error) -> Self {
        match e {
            guestlist_graph::Error::Graph(g) => ReviewerError {
                code: codes::GRAPH,
                message: g.to_string(),
                request_id: g.request_id.clone(),
                graph: Some(Box::new(GraphErrorInfo {
                    status: g.status,
                    code: g.code,
                    message: g.message,
                    request_id: g.request_id,
                    date: g.date,
                })),
            },
            guestlist_graph::Error::Network(m) => {
                Self::offline(format!("cannot reach Microsoft Graph: {m}"))
            }
            guestlist_graph::Error::Decode(m) => Self::new(codes::GRAPH_DECODE, m),
            guestlist_graph::Error::Invalid(m) => Self::new(codes::GRAPH_DECODE, m),
        }
    }
}

impl From<rusqlite::Error> for ReviewerError {
    fn from(e: rusqlite::Error) -> Self {
        Self::storage(format!("local database: {e}"))
    }
}

impl From<serde_json::Error> for ReviewerError {
    fn from(e: serde_json::Error) -> Self {
        Self::storage(format!("local data: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_shape_is_pinned() {
        let e = ReviewerError::offline("no route");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"code": "network.offline", "message": "no route"})
        );
        let g: ReviewerError = guestlist_graph::Error::Graph(guestlist_graph::GraphError {
            status: 400,
            code: "Request_BadRequest".into(),
            message: "bad".into(),
            request_id: Some("r1".into()),
            date: None,
        })
        .into();
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["code"], "graph.error");
        assert_eq!(v["requestId"], "r1");
        assert_eq!(v["graph"]["code"], "Request_BadRequest");
        assert_eq!(v["graph"]["requestId"], "r1");
        assert!(v["message"].as_str().unwrap().contains("r1"));
        let back: ReviewerError = serde_json::from_value(v).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn stored_errors_of_older_and_newer_versions_still_load() {
        // An outbox row's `last_error` as versions before `graph.error` wrote it.
        let old: ReviewerError = serde_json::from_value(json!({
            "code": "graph.Authorization_RequestDenied",
            "message": "Insufficient privileges",
            "graph": {"status": 403, "code": "Authorization_RequestDenied", "message": "m",
                      "requestId": "r9", "date": null}
        }))
        .unwrap();
        assert_eq!(old.code, Code::GraphError);
        assert_eq!(old.graph.unwrap().code, "Authorization_RequestDenied");
        let newer: ReviewerError =
            serde_json::from_value(json!({"code": "request.from_the_future", "message": "m"}))
                .unwrap();
        assert_eq!(newer.code, Code::ApiError);
        let known: ReviewerError = serde_json::from_value(
            json!({"code": "request.not_found", "message": "m", "requestId": "x-1"}),
        )
        .unwrap();
        assert_eq!(known.code, Code::RequestNotFound);
        assert_eq!(known.request_id.as_deref(), Some("x-1"));
        assert!(
            serde_json::from_value::<ReviewerError>(json!({"code": 7, "message": "m"})).is_err()
        );
    }
}
