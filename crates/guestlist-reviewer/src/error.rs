//! The one error type of the reviewer facade: `{code, message}` on the wire (Tauri IPC), with a
//! stable, greppable `code` (see [`codes`]). Graph errors carry Graph's own code
//! (`graph.Request_BadRequest`) and the request-id/date Microsoft support asks for.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Stable error codes. The UI branches on these; never rename one. Each is the string of a
/// [`guestlist_core::Code`] (the one list of codes, exported to the UI as `Code.ts`), except
/// [`GRAPH_PREFIX`](codes::GRAPH_PREFIX), the prefix of Graph's own codes.
pub mod codes {
    use guestlist_core::Code;

    /// The OS keyring (Secret Service, Keychain, Credential Manager) cannot be used.
    pub const KEYRING_UNAVAILABLE: &str = Code::AuthKeyringUnavailable.as_str();
    /// No approver is signed in (or the refresh token expired / was revoked).
    pub const NOT_SIGNED_IN: &str = Code::AuthNotSignedIn.as_str();
    /// Sign-in failed: the authority refused, `state`/`iss` did not match, the user cancelled.
    pub const SIGN_IN_FAILED: &str = Code::AuthSignInFailed.as_str();
    /// The browser could not be opened.
    pub const BROWSER: &str = Code::AuthBrowser.as_str();
    /// The approval API refused our token (401) or the approver lacks the role (403).
    pub const FORBIDDEN: &str = Code::AuthForbidden.as_str();
    /// A server or Graph could not be reached: work continues offline.
    pub const OFFLINE: &str = Code::NetworkOffline.as_str();
    /// Another decision already won (HTTP 409 `request.already_decided`).
    pub const CONFLICT: &str = Code::RequestAlreadyDecided.as_str();
    /// The request changed since it was read (HTTP 412 `request.version_mismatch`).
    pub const VERSION_MISMATCH: &str = Code::RequestVersionMismatch.as_str();
    /// No such request (HTTP 404, or not in the cache).
    pub const NOT_FOUND: &str = Code::RequestNotFound.as_str();
    /// Reopen refused: the request is not denied (HTTP 409 on `POST /api/requests/{id}/reopen`:
    /// it is pending, approved or expired).
    pub const NOT_DENIED: &str = Code::RequestNotDenied.as_str();
    /// Reopen refused: the approver's token lacks the Admin app role (HTTP 403).
    pub const NOT_ADMIN: &str = Code::AuthNotAdmin.as_str();
    /// The approval API answered something unexpected.
    pub const API: &str = Code::ApiError.as_str();
    /// Local storage (SQLite cache/outbox, settings file) failed.
    pub const STORAGE: &str = Code::StorageError.as_str();
    /// The encrypted cache file does not open with the key given (another key, or not a
    /// database: SQLCipher's "file is not a database"). The app turns it into
    /// [`CACHE_KEY_LOST`].
    pub const CACHE_KEY_MISMATCH: &str = Code::StorageCacheKeyMismatch.as_str();
    /// The cache's key was missing from the keyring (or did not open the file): the old file was
    /// moved aside (`reviewer.db.unreadable-<unix time>`, never deleted; the message says where)
    /// and an empty cache with a new key was started.
    pub const CACHE_KEY_LOST: &str = Code::StorageCacheKeyLost.as_str();
    /// The keyring could not be used to read or store the cache's key: the cache is an empty
    /// in-memory one until restart and the file on disk is left untouched (nothing is ever
    /// written unencrypted).
    pub const CACHE_KEY_UNAVAILABLE: &str = Code::StorageCacheKeyUnavailable.as_str();
    /// The settings are invalid.
    pub const SETTINGS: &str = Code::SettingsInvalid.as_str();
    /// The caller passed invalid input (empty deny reason, no ids).
    pub const INVALID_INPUT: &str = Code::InputInvalid.as_str();
    /// No provisioning plan can be made for the request.
    pub const PLAN: &str = Code::PlanError.as_str();
    /// A Graph answer this app cannot read.
    pub const GRAPH_DECODE: &str = Code::GraphDecode.as_str();
    /// Prefix of Graph error codes: `graph.<Graph code>`.
    pub const GRAPH_PREFIX: &str = "graph.";
    /// The request was erased on the approval service (retention, or a data-protection erasure
    /// request; issue 12) before a decision made here was sent: the decision cannot apply.
    pub const ERASED: &str = Code::RequestErased.as_str();
    /// A simulated crash (fault injection in tests; never produced otherwise).
    pub const SIMULATED_CRASH: &str = Code::TestSimulatedCrash.as_str();
}

/// An error crossing the facade: `{"code":"network.offline","message":"…"}` plus, for Graph
/// errors, `graph: {status, code, message, requestId, date}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{code}: {message}")]
pub struct ReviewerError {
    /// A stable code from [`codes`], or `graph.<Graph error code>`.
    pub code: String,
    /// A sentence for the approver.
    pub message: String,
    /// The Graph error, when Graph answered one (show its `requestId` and `date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<Box<GraphErrorInfo>>,
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
    /// An error with a code from [`codes`] and a message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ReviewerError {
            code: code.to_owned(),
            message: message.into(),
            graph: None,
        }
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
                code: format!("{}{}", codes::GRAPH_PREFIX, g.code),
                message: g.to_string(),
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
        assert_eq!(v["code"], "graph.Request_BadRequest");
        assert_eq!(v["graph"]["requestId"], "r1");
        assert!(v["message"].as_str().unwrap().contains("r1"));
        let back: ReviewerError = serde_json::from_value(v).unwrap();
        assert_eq!(back, g);
    }
}
