//! OpenAPI schemas (utoipa) of the wire bodies whose serde form is written by hand, for the
//! approval API's `/openapi.json` (feature `openapi`).
//!
//! [`Claims`](crate::Claims) is parsed by a one-pass visitor, [`ConnectorResponse`] and
//! [`ExtensionAction`](crate::extension::ExtensionAction) are serialised by hand, so a derived
//! schema cannot describe them. The types here exist only to be described: each mirrors the
//! exact wire form of one body (CONTRACTS.md §1–2, §4) and is never (de)serialised by the
//! server. The derived wire types ([`ApprovalRequest`](crate::ApprovalRequest),
//! [`Decision`](crate::model::Decision), …) carry `utoipa::ToSchema` themselves under the same
//! feature.
//!
//! [`ConnectorResponse`]: crate::ConnectorResponse

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::ObjectIdentity;
use crate::model::{ApprovalRequest, ErrorDetail};

/// The body Entra's user flow POSTs to both API connectors (CONTRACTS.md §1): a flat object of
/// claims. Only `email` is required (Entra leaves out claims with no value). Custom attributes
/// `extension_<extensions-app-id>_<Name>` and any other claim are accepted and kept verbatim.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorClaims {
    /// The user's e-mail address.
    #[schema(format = Email)]
    pub email: String,
    /// Federated identities (Google, Facebook, e-mail one-time passcode); absent for Entra ID
    /// and Microsoft account users. The first one keys the request.
    pub identities: Option<Vec<ObjectIdentity>>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `givenName`.
    pub given_name: Option<String>,
    /// `surname` (also accepted as `lastName`).
    pub surname: Option<String>,
    /// `lastName`: the docs' check-status example's name for `surname`.
    pub last_name: Option<String>,
    /// `jobTitle`.
    pub job_title: Option<String>,
    /// `streetAddress`.
    pub street_address: Option<String>,
    /// `city`.
    pub city: Option<String>,
    /// `postalCode`.
    pub postal_code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `country`.
    pub country: Option<String>,
    /// The user's languages, e.g. `en-US` or `fr-FR sv-SE`; chooses the `userMessage` language.
    #[serde(rename = "ui_locales")]
    pub ui_locales: Option<String>,
    /// `PostFederationSignup` or `PostAttributeCollection` (documented for Azure AD B2C).
    pub step: Option<String>,
    /// The application the user signs up to (documented for Azure AD B2C).
    #[serde(rename = "client_id")]
    pub client_id: Option<String>,
}

/// The connector protocol version, always `1.0.0`.
#[derive(Serialize, ToSchema)]
pub enum ConnectorVersion {
    /// `1.0.0`.
    #[serde(rename = "1.0.0")]
    V1,
}

/// An API connector answer (CONTRACTS.md §1), by `action`: `Continue` (HTTP 200, may carry
/// claims), `ShowBlockPage` (HTTP 200) or `ValidationError` (HTTP 400).
#[derive(Serialize, ToSchema)]
#[serde(tag = "action")]
pub enum ConnectorAnswer {
    /// Let the user through. May carry claims that prefill or override the form.
    Continue {
        /// `1.0.0`.
        version: ConnectorVersion,
    },
    /// Stop the sign-up and show `userMessage`.
    ShowBlockPage {
        /// `1.0.0`.
        version: ConnectorVersion,
        /// Shown to the user.
        #[serde(rename = "userMessage")]
        user_message: String,
        /// A machine-readable code such as `GUESTLIST-APPROVAL-PENDING`.
        code: Option<String>,
    },
    /// Keep the user on the attribute collection page (request approval only).
    ValidationError {
        /// `1.0.0`.
        version: ConnectorVersion,
        /// Always 400.
        status: u16,
        /// Shown to the user above the form.
        #[serde(rename = "userMessage")]
        user_message: String,
    },
}

/// The answer to a custom authentication extension call (CONTRACTS.md §2), always HTTP 200.
#[derive(Serialize, ToSchema)]
pub struct ExtensionResponse {
    /// The response data.
    pub data: ExtensionResponseData,
}

/// `data` of an [`ExtensionResponse`].
#[derive(Serialize, ToSchema)]
pub struct ExtensionResponseData {
    /// `microsoft.graph.onAttributeCollectionStartResponseData` or
    /// `microsoft.graph.onAttributeCollectionSubmitResponseData`.
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    /// Exactly one action.
    #[schema(min_items = 1, max_items = 1)]
    pub actions: Vec<ExtensionResponseAction>,
}

/// One action of an [`ExtensionResponse`]: `…continueWithDefaultBehavior`, `…showBlockPage`
/// (`message`), `…setPrefillValues` (`inputs`), `…modifyAttributeValues` (`attributes`) or
/// `…showValidationError` (`message`, `attributeErrors`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionResponseAction {
    /// e.g. `microsoft.graph.attributeCollectionSubmit.showBlockPage`.
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    /// The block page's or validation error's message.
    pub message: Option<String>,
    /// Prefill values (Start).
    pub inputs: Option<BTreeMap<String, Value>>,
    /// Modified values (Submit).
    pub attributes: Option<BTreeMap<String, Value>>,
    /// Attribute name → error text (Submit).
    pub attribute_errors: Option<BTreeMap<String, String>>,
}

/// The body of 409 (another decision won) and 412 (stale `If-Match`) answers to a decision: the
/// error plus the request as it is now, so the approver sees who decided.
#[derive(Serialize, ToSchema)]
pub struct DecisionConflict {
    /// The error (`request.already_decided`, `request.version_mismatch`).
    pub error: ErrorDetail,
    /// The request as stored now.
    pub current: ApprovalRequest,
}
