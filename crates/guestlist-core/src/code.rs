//! Every stable error code of Guestlist, as one enum: [`Code`].
//!
//! A code is the `code` of the approval API's error body
//! (`{"error":{"code":"request.not_found","message":"…"}}`, [`crate::model::ErrorBody`];
//! `docs/CONTRACTS.md` §4) and of the desktop facade's `ReviewerError`
//! (`{"code":"network.offline","message":"…"}`). It is serialised as a dotted string,
//! `<area>.<what>`, e.g. `request.not_found`: clients branch on it, so a code is never renamed
//! or reused; add a variant instead. With the `ts` feature ts-rs emits the enum as a TypeScript
//! union of these strings (`Code.ts`), with `openapi` utoipa as a string enum schema.
//!
//! Not codes: event kinds (`request.created`), audit actions (`privacy.erase`), the block-page
//! codes of the connectors (`GUESTLIST-APPROVAL-PENDING`, [`crate::policy::MessageKind`]), and
//! Graph's own codes: the desktop reports a Graph error as [`Code::GraphError`] with Graph's code,
//! request-id and date beside it (`ReviewerError.graph`).

use serde::{Deserialize, Serialize};

/// Declares [`Code`] with one string per variant, used by serde, ts-rs, utoipa and
/// [`Code::as_str`] alike (so they cannot disagree).
macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:tt, )*) => {
        /// A stable error code of the approval API or the desktop facade, serialised as its dotted
        /// string, e.g. `request.not_found` (Rust: `guestlist_core::code`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum Code {
            $( $(#[$doc])* #[serde(rename = $text)] $variant, )*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The dotted string, e.g. `request.not_found` (what serde writes).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    // ----- Authentication (approval API: 401/403/429/503) -----
    /// 401: no bearer token or Basic credentials, or they are invalid or expired.
    AuthUnauthorized = "auth.unauthorized",
    /// 403: a valid token without the app role the endpoint needs; also the desktop's
    /// "the approval API refused our token".
    AuthForbidden = "auth.forbidden",
    /// 403: a token without the approval API's scope.
    AuthScopeMissing = "auth.scope_missing",
    /// 403: a token issued to a client that is not allowed (`approver_auth.allowed_clients`).
    AuthClientNotAllowed = "auth.client_not_allowed",
    /// 429: too many failed Basic attempts from one address.
    AuthThrottled = "auth.throttled",
    /// 503: approver or extension authentication is not configured.
    AuthNotConfigured = "auth.not_configured",
    /// 503: the token issuer's keys cannot be fetched.
    AuthIssuerUnavailable = "auth.issuer_unavailable",

    // ----- Requests and decisions (approval API) -----
    /// 404: no request with that id.
    RequestNotFound = "request.not_found",
    /// 400: the path's request id is not a UUID.
    RequestBadId = "request.bad_id",
    /// 400: the `status` filter is not a known status.
    RequestBadStatus = "request.bad_status",
    /// 400: `If-Match` is not a version.
    RequestBadIfMatch = "request.bad_if_match",
    /// 400: `Idempotency-Key` is empty, too long or not visible ASCII.
    RequestBadIdempotencyKey = "request.bad_idempotency_key",
    /// 428: a decision without `If-Match`.
    RequestPreconditionRequired = "request.precondition_required",
    /// 412: the request changed since the caller read it (`If-Match` differs).
    RequestVersionMismatch = "request.version_mismatch",
    /// 409: another decision already won.
    RequestAlreadyDecided = "request.already_decided",
    /// 422: an `Idempotency-Key` reused with a different body.
    RequestIdempotencyKeyReused = "request.idempotency_key_reused",
    /// 413: the body is larger than the configured limit.
    RequestTooLarge = "request.too_large",
    /// 415: the body is not `application/json`.
    RequestUnsupportedMediaType = "request.unsupported_media_type",
    /// 408: the body did not arrive in time.
    RequestBodyTimeout = "request.body_timeout",
    /// 400: the body could not be read.
    RequestBodyUnreadable = "request.body_unreadable",
    /// 400: the body is not JSON, or not the JSON the endpoint takes.
    RequestMalformedJson = "request.malformed_json",
    /// 400: the query string is not the one the endpoint takes (a number that is not one, a
    /// parameter given twice).
    RequestBadQuery = "request.bad_query",
    /// 404: no such route.
    RouteNotFound = "route.not_found",
    /// 400: a decision body that is not a decision.
    DecisionMalformed = "decision.malformed",
    /// 400: a denial without a reason.
    DecisionReasonRequired = "decision.reason_required",
    /// 400: an approval reported as provisioned without the object id.
    DecisionObjectIdRequired = "decision.object_id_required",
    /// 429: too many open event streams on the server.
    EventsTooManyStreams = "events.too_many_streams",
    /// 429: too many open event streams for one approver.
    EventsTooManyStreamsForPrincipal = "events.too_many_streams_for_principal",

    /// 403: an approver deciding a request whose canonical e-mail is their own (issue 14,
    /// separation of duties).
    DecisionSelfApproval = "decision.self_approval",
    /// 400: an approval whose `how` does not fit the request's flow (issue 17): an
    /// external-tenant request is approved with `how: "userFlow"` and no account (Entra creates
    /// it when the person signs up again), a workforce one never is.
    DecisionWrongFlow = "decision.wrong_flow",
    /// 403: a decision (or a read of one request) outside the approver's routes: the request's
    /// `[[policy.routes]]` role, the plain approver role for unrouted requests, the fallback
    /// role once escalated, or the admin role (issue 14 §2).
    DecisionNotRouted = "decision.not_routed",
    /// 403: the approver who recorded the first of a request's two approvals approves it again;
    /// a second, distinct approver must approve (issue 14 §3, `approvals_required = 2`).
    DecisionSecondApproverRequired = "decision.second_approver_required",

    // ----- Privacy, audit and reopening a denial (issue 12; approval API) -----
    /// 403 (desktop): reopening needs the Admin app role the token lacks.
    AuthNotAdmin = "auth.not_admin",
    /// 409: reopen of a request that is not denied.
    RequestNotDenied = "request.not_denied",
    /// Desktop: the request's personal data was erased on the server; an unsent decision
    /// cannot apply.
    RequestErased = "request.erased",
    /// 400: the reopen body is not `{"reason":"…"}`.
    ReopenMalformed = "reopen.malformed",
    /// 400: a reopen without a reason.
    ReopenReasonRequired = "reopen.reason_required",
    /// 400: a reopen reason over 1,000 characters.
    ReopenReasonTooLong = "reopen.reason_too_long",
    /// 400: the erase body is not `{"email":"…","keepDenial":…}`.
    PrivacyMalformed = "privacy.malformed",
    /// 400: not an e-mail address (erase, access export).
    PrivacyBadEmail = "privacy.bad_email",
    /// 400: `since`/`until` of the audit export is not RFC 3339.
    AuditBadTime = "audit.bad_time",
    /// 400: `format` of the audit export is neither `ndjson` nor `csv`.
    AuditBadFormat = "audit.bad_format",

    // ----- Connectors' and extensions' bodies -----
    /// 400: the connector body is not JSON.
    ClaimsMalformedJson = "claims.malformed_json",
    /// 400: the connector body is not a JSON object.
    ClaimsNotAnObject = "claims.not_an_object",
    /// 400: the connector body has no `email` claim.
    ClaimsMissingEmail = "claims.missing_email",
    /// 400: the `email` claim is not an e-mail address.
    ClaimsInvalidEmail = "claims.invalid_email",
    /// 400: a claim has the wrong JSON type.
    ClaimsWrongType = "claims.wrong_type",
    /// The e-mail address holds an invisible or control character.
    EmailInvisibleCharacter = "email.invisible_character",
    /// The e-mail address is not `local@domain` with a valid IDNA domain.
    EmailInvalid = "email.invalid",
    /// 400: a custom authentication extension body that is not the documented shape.
    ExtensionMalformed = "extension.malformed",
    /// 400: an extension body for another event than the endpoint's.
    ExtensionWrongEvent = "extension.wrong_event",

    // ----- Server storage (500) -----
    /// 500: SQLite failed, or a storage task did.
    StoreFailure = "store.failure",
    /// Another process holds the database's lock.
    StoreLocked = "store.locked",
    /// 500: stored data cannot be read back.
    StoreCorrupt = "store.corrupt",
    /// 503: the database cannot be reached (PostgreSQL down, restarting or cut off); retry.
    StoreUnavailable = "store.unavailable",

    // ----- Desktop (the reviewer facade and the Tauri shell) -----
    /// The OS keyring (Secret Service, Keychain, Credential Manager) cannot be used.
    AuthKeyringUnavailable = "auth.keyring_unavailable",
    /// No approver is signed in (or the refresh token expired or was revoked).
    AuthNotSignedIn = "auth.not_signed_in",
    /// Sign-in failed: the authority refused, `state`/`iss` did not match, the user cancelled.
    AuthSignInFailed = "auth.sign_in_failed",
    /// The browser could not be opened.
    AuthBrowser = "auth.browser",
    /// A server or Graph could not be reached: work continues offline.
    NetworkOffline = "network.offline",
    /// The approval API answered something unexpected.
    ApiError = "api.error",
    /// Local storage (SQLite cache/outbox, settings file) failed.
    StorageError = "storage.error",
    /// The encrypted cache does not open with the key given.
    StorageCacheKeyMismatch = "storage.cache_key_mismatch",
    /// The cache's key was lost: the old file was moved aside and a new cache started.
    StorageCacheKeyLost = "storage.cache_key_lost",
    /// The keyring cannot hold the cache's key: an in-memory cache until restart.
    StorageCacheKeyUnavailable = "storage.cache_key_unavailable",
    /// The settings are invalid.
    SettingsInvalid = "settings.invalid",
    /// The caller passed invalid input (empty deny reason, no ids).
    InputInvalid = "input.invalid",
    /// No provisioning plan can be made for the request.
    PlanError = "plan.error",
    /// A Graph answer the app cannot read.
    GraphDecode = "graph.decode",
    /// A simulated crash (fault injection in tests; never produced otherwise).
    TestSimulatedCrash = "test.simulated_crash",
    /// The desktop app is still starting.
    AppNotReady = "app.not_ready",
    /// Start at login cannot be set on this system.
    AutostartUnavailable = "autostart.unavailable",
    /// Microsoft Graph answered an error; Graph's own code (`Authorization_RequestDenied`,
    /// `TooManyRequests`, …), its `request-id` and `date` are in the desktop error's `graph`.
    GraphError = "graph.error",
    /// An error of the desktop UI itself (a failed IPC call that did not come from the facade).
    UiError = "ui.error",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of [`Code::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownCode(pub String);

impl std::str::FromStr for Code {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Code, UnknownCode> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_round_trips_through_serde_and_from_str() {
        for &c in Code::ALL {
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json, serde_json::Value::String(c.as_str().into()), "{c:?}");
            assert_eq!(serde_json::from_value::<Code>(json).unwrap(), c);
            assert_eq!(c.as_str().parse::<Code>().unwrap(), c);
            assert_eq!(c.to_string(), c.as_str());
        }
        assert!("request.nope".parse::<Code>().is_err());
        assert!(serde_json::from_str::<Code>("\"request.nope\"").is_err());
    }

    #[test]
    fn codes_are_unique_and_dotted() {
        let mut seen = HashSet::new();
        for &c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            let (area, what) = c.as_str().split_once('.').unwrap();
            let ok =
                |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            assert!(ok(area) && ok(what), "{c:?}: {}", c.as_str());
        }
    }
}
