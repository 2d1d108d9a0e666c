//! Entra External ID custom authentication extensions for attribute collection
//! (`docs/CONTRACTS.md` §2): the `OnAttributeCollectionStart` and
//! `OnAttributeCollectionSubmit` events that external tenants use instead of API connectors.
//!
//! Request: `{"type":"microsoft.graph.authenticationEvent.attributeCollectionSubmit",
//! "source":"/tenants/{tid}/applications/{appId}","data":{"@odata.type":
//! "microsoft.graph.onAttributeCollectionSubmitCalloutData", "tenantId", …,
//! "userSignUpInfo":{"attributes":{"<name>":{"@odata.type":…,"value":…,"attributeType":…}},
//! "identities":[…]}}}`.
//!
//! Response: HTTP 200 `{"data":{"@odata.type":"microsoft.graph.on…ResponseData","actions":[ONE]}}`.
//! Source: <https://learn.microsoft.com/entra/identity-platform/custom-extension-onattributecollectionsubmit-retrieve-return-data>.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::connector::{Claims, ClaimsError, ObjectIdentity};

/// The Entra service principal that calls custom authentication extensions; its app id is the
/// `azp`/`appid` of the bearer tokens those calls carry.
pub const AUTHENTICATION_EVENTS_APP_ID: &str = "99045fe1-7639-4a75-9d4a-577b6ca3810f";

/// The event envelope Entra POSTs to a custom authentication extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRequest {
    /// e.g. `microsoft.graph.authenticationEvent.attributeCollectionSubmit`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `/tenants/{tid}/applications/{appId}`.
    #[serde(default)]
    pub source: String,
    /// The event data.
    pub data: ExtensionData,
}

/// `data` of an [`ExtensionRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExtensionData {
    /// `microsoft.graph.onAttributeCollectionStartCalloutData` or `…SubmitCalloutData`.
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    /// The tenant id.
    #[serde(default)]
    pub tenant_id: String,
    /// The listener id.
    #[serde(default)]
    pub authentication_event_listener_id: String,
    /// The extension id.
    #[serde(default)]
    pub custom_authentication_extension_id: String,
    /// Correlation id, client, protocol, service principal, user: kept verbatim.
    #[serde(default)]
    pub authentication_context: Value,
    /// What the user entered (Submit) or what is known so far (Start).
    #[serde(default)]
    pub user_sign_up_info: UserSignUpInfo,
}

/// `userSignUpInfo`: attributes and identities.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserSignUpInfo {
    /// Attribute name → typed value.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// The user's identities.
    #[serde(default)]
    pub identities: Vec<ObjectIdentity>,
}

/// One attribute value: `{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue",
/// "value":"…","attributeType":"builtIn"|"directorySchemaExtension"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AttributeValue {
    /// The value's type.
    #[serde(rename = "@odata.type", default)]
    pub odata_type: String,
    /// The value (string, boolean or integer).
    pub value: Value,
    /// `builtIn` or `directorySchemaExtension`.
    #[serde(default)]
    pub attribute_type: String,
}

/// Which event a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionEvent {
    /// `OnAttributeCollectionStart`.
    Start,
    /// `OnAttributeCollectionSubmit`.
    Submit,
}

impl ExtensionEvent {
    fn response_type(self) -> &'static str {
        match self {
            ExtensionEvent::Start => "microsoft.graph.onAttributeCollectionStartResponseData",
            ExtensionEvent::Submit => "microsoft.graph.onAttributeCollectionSubmitResponseData",
        }
    }
    fn action_ns(self) -> &'static str {
        match self {
            ExtensionEvent::Start => "microsoft.graph.attributeCollectionStart",
            ExtensionEvent::Submit => "microsoft.graph.attributeCollectionSubmit",
        }
    }
}

impl ExtensionRequest {
    /// The event, from `data.@odata.type` (or the envelope `type`).
    pub fn event(&self) -> Option<ExtensionEvent> {
        let t = format!("{} {}", self.data.odata_type, self.kind).to_ascii_lowercase();
        if t.contains("attributecollectionstart") {
            Some(ExtensionEvent::Start)
        } else if t.contains("attributecollectionsubmit") {
            Some(ExtensionEvent::Submit)
        } else {
            None
        }
    }

    /// The sign-up as connector-style claims, so the same approval rules apply: attribute
    /// values flattened, `identities` copied, and `email` taken from the `email` attribute or an
    /// identity's issuerAssignedId when the issuer is `mail`.
    ///
    /// Errors: [`ClaimsError::MissingEmail`] when no e-mail can be found.
    pub fn to_claims(&self) -> Result<Claims, ClaimsError> {
        let info = &self.data.user_sign_up_info;
        let mut m = Map::new();
        for (name, v) in &info.attributes {
            m.insert(name.clone(), v.value.clone());
        }
        if !m.contains_key("email")
            && let Some(id) = info
                .identities
                .iter()
                .find(|i| i.issuer.eq_ignore_ascii_case("mail") || i.sign_in_type == "emailAddress")
        {
            m.insert("email".into(), Value::String(id.issuer_assigned_id.clone()));
        }
        let federated: Vec<&ObjectIdentity> = info
            .identities
            .iter()
            .filter(|i| i.sign_in_type == "federated")
            .collect();
        if !federated.is_empty() {
            m.insert(
                "identities".into(),
                serde_json::to_value(federated).unwrap_or(Value::Null),
            );
        }
        Claims::from_json(Value::Object(m))
    }
}

/// One response action of a custom authentication extension.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionAction {
    /// `continueWithDefaultBehavior`.
    Continue,
    /// `setPrefillValues` (Start) / `modifyAttributeValues` (Submit) with the attributes.
    SetAttributes(BTreeMap<String, Value>),
    /// `showBlockPage` with a message.
    ShowBlockPage(String),
    /// `showValidationError` (Submit only) with a message and per-attribute errors.
    ShowValidationError {
        /// The message above the form.
        message: String,
        /// Attribute name → error text.
        attribute_errors: BTreeMap<String, String>,
    },
}

impl ExtensionAction {
    /// The full response body for `event` (always sent with HTTP 200).
    pub fn to_response(&self, event: ExtensionEvent) -> Value {
        let ns = event.action_ns();
        let action = match self {
            ExtensionAction::Continue => {
                json!({"@odata.type": format!("{ns}.continueWithDefaultBehavior")})
            }
            ExtensionAction::SetAttributes(attrs) => match event {
                ExtensionEvent::Start => {
                    json!({"@odata.type": format!("{ns}.setPrefillValues"), "inputs": attrs})
                }
                ExtensionEvent::Submit => {
                    json!({"@odata.type": format!("{ns}.modifyAttributeValues"), "attributes": attrs})
                }
            },
            ExtensionAction::ShowBlockPage(message) => {
                json!({"@odata.type": format!("{ns}.showBlockPage"), "message": message})
            }
            ExtensionAction::ShowValidationError {
                message,
                attribute_errors,
            } => json!({
                "@odata.type": format!("{ns}.showValidationError"),
                "message": message,
                "attributeErrors": attribute_errors,
            }),
        };
        json!({"data": {"@odata.type": event.response_type(), "actions": [action]}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit() -> Value {
        json!({
            "type": "microsoft.graph.authenticationEvent.attributeCollectionSubmit",
            "source": "/tenants/30000000-0000-0000-0000-000000000003/applications/40000000-0000-0000-0000-000000000004",
            "data": {
                "@odata.type": "microsoft.graph.onAttributeCollectionSubmitCalloutData",
                "tenantId": "30000000-0000-0000-0000-000000000003",
                "authenticationEventListenerId": "10000000-0000-0000-0000-000000000001",
                "customAuthenticationExtensionId": "10000000-0000-0000-0000-000000000002",
                "authenticationContext": {"correlationId": "x"},
                "userSignUpInfo": {
                    "attributes": {
                        "email": {"@odata.type": "microsoft.graph.stringDirectoryAttributeValue", "value": "ana@fabrikam.com", "attributeType": "builtIn"},
                        "displayName": {"@odata.type": "microsoft.graph.stringDirectoryAttributeValue", "value": "Ana Silva", "attributeType": "builtIn"},
                        "extension_b7e5c3a1d9f24e6a8c0b1d2e3f4a5b6c_Sponsor": {"@odata.type": "microsoft.graph.stringDirectoryAttributeValue", "value": "Ada", "attributeType": "directorySchemaExtension"}
                    },
                    "identities": [{"signInType": "email", "issuer": "contoso.onmicrosoft.com", "issuerAssignedId": "ana@fabrikam.com"}]
                }
            }
        })
    }

    #[test]
    fn submit_request_becomes_claims() {
        let r: ExtensionRequest = serde_json::from_value(submit()).unwrap();
        assert_eq!(r.event(), Some(ExtensionEvent::Submit));
        let c = r.to_claims().unwrap();
        assert_eq!(c.email, "ana@fabrikam.com");
        assert_eq!(c.display_name.as_deref(), Some("Ana Silva"));
        assert_eq!(c.extensions.len(), 1);
        assert!(c.identities.is_empty());
    }

    #[test]
    fn actions_serialise_to_the_documented_form() {
        let v =
            ExtensionAction::ShowBlockPage("Pending".into()).to_response(ExtensionEvent::Submit);
        assert_eq!(
            v,
            json!({"data":{"@odata.type":"microsoft.graph.onAttributeCollectionSubmitResponseData","actions":[{"@odata.type":"microsoft.graph.attributeCollectionSubmit.showBlockPage","message":"Pending"}]}})
        );
        let v = ExtensionAction::Continue.to_response(ExtensionEvent::Start);
        assert_eq!(
            v["data"]["actions"][0]["@odata.type"],
            "microsoft.graph.attributeCollectionStart.continueWithDefaultBehavior"
        );
        let v =
            ExtensionAction::SetAttributes(BTreeMap::from([("city".to_string(), json!("Oslo"))]))
                .to_response(ExtensionEvent::Start);
        assert_eq!(v["data"]["actions"][0]["inputs"]["city"], "Oslo");
    }
}
