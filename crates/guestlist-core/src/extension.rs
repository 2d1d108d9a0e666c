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
use crate::policy::MessageKind;

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

    /// The application the person signs up to: `authenticationContext.clientServicePrincipal
    /// .appId`, else the `{appId}` of `source` (`/tenants/{tid}/applications/{appId}`).
    pub fn application_id(&self) -> Option<String> {
        self.data.authentication_context["clientServicePrincipal"]["appId"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                self.source
                    .split_once("/applications/")
                    .map(|(_, app)| app.trim_matches('/').to_owned())
            })
            .filter(|a| !a.trim().is_empty())
    }

    /// The sign-up as connector-style claims, so the same approval rules apply: attribute
    /// values flattened, `identities` copied when federated or a local e-mail account (signInType
    /// `email`/`emailAddress`, issuer the tenant's domain: the request is then filed under the
    /// provider key [`crate::provider::EMAIL_ACCOUNT`], and keeps issuer, issuerAssignedId and
    /// signInType so the approver sees how the person signs in; other sign-in types are
    /// dropped), `email` taken from the `email`
    /// attribute or else from an e-mail identity's issuerAssignedId (signInType `email`, as the
    /// extension requests carry it, or `emailAddress`, as Graph's user object does, or the issuer
    /// `mail`), `ui_locales` from `authenticationContext.client.locale` (e.g. `en-us`), and
    /// `client_id` from [`ExtensionRequest::application_id`].
    ///
    /// Errors: [`ClaimsError::MissingEmail`] when no e-mail can be found.
    pub fn to_claims(&self) -> Result<Claims, ClaimsError> {
        let info = &self.data.user_sign_up_info;
        let mut m = Map::new();
        for (name, v) in &info.attributes {
            m.insert(name.clone(), v.value.clone());
        }
        if !m.contains_key("email")
            && let Some(id) = info.identities.iter().find(|i| {
                i.issuer.eq_ignore_ascii_case("mail")
                    || i.sign_in_type.eq_ignore_ascii_case("email")
                    || i.sign_in_type.eq_ignore_ascii_case("emailAddress")
            })
        {
            m.insert("email".into(), Value::String(id.issuer_assigned_id.clone()));
        }
        if !m.contains_key("ui_locales")
            && let Some(locale) = self.data.authentication_context["client"]["locale"]
                .as_str()
                .filter(|l| !l.trim().is_empty())
        {
            m.insert("ui_locales".into(), Value::String(locale.to_owned()));
        }
        if !m.contains_key("client_id")
            && let Some(app) = self.application_id()
        {
            m.insert("client_id".into(), Value::String(app));
        }
        let kept: Vec<&ObjectIdentity> = info
            .identities
            .iter()
            .filter(|i| {
                i.sign_in_type == "federated"
                    || crate::provider::is_local_email_sign_in(&i.sign_in_type)
            })
            .collect();
        if !kept.is_empty() {
            m.insert(
                "identities".into(),
                serde_json::to_value(kept).unwrap_or(Value::Null),
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
    /// `showBlockPage` with an optional `title` and the `message` (both shown on the page).
    ShowBlockPage {
        /// The page's heading (Entra shows none when absent).
        title: Option<String>,
        /// The text under it.
        message: String,
    },
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
            ExtensionAction::ShowBlockPage { title, message } => match title {
                Some(title) => json!({"@odata.type": format!("{ns}.showBlockPage"),
                    "title": title, "message": message}),
                None => json!({"@odata.type": format!("{ns}.showBlockPage"), "message": message}),
            },
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

/// Claims that are not attributes of the sign-up page, so never prefilled: the e-mail (the
/// identity itself), `identities`, and the connector's metadata.
const NOT_PAGE_ATTRIBUTES: [&str; 5] = ["email", "identities", "ui_locales", "step", "client_id"];

/// The `setPrefillValues` `inputs` of a person who comes back after approval: every attribute
/// they submitted before (`claims` as stored from their `OnAttributeCollectionSubmit`), under
/// the same names, without the e-mail, `identities` and connector metadata. Entra ignores
/// inputs that are not attributes of the page ("Retrieve and return data from an
/// OnAttributeCollectionStart event").
pub fn prefill_inputs(claims: &Map<String, Value>) -> BTreeMap<String, Value> {
    claims
        .iter()
        .filter(|(k, v)| !NOT_PAGE_ATTRIBUTES.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The `title` of an extension's `showBlockPage` for a block of `kind`, in the language of
/// `ui_locales` (`en`, `fr`, `sv`; English otherwise). The `message` is the policy's
/// `userMessage` of the same kind.
pub fn block_title(kind: MessageKind, ui_locales: Option<&str>) -> &'static str {
    use MessageKind::*;
    let lang = crate::policy::language_for(ui_locales, &|l| matches!(l, "en" | "fr" | "sv"));
    match (lang.as_str(), kind) {
        ("fr", Requested) => "Demande envoyée",
        ("fr", Pending) => "Demande en cours d’examen",
        ("fr", Denied | AutoDenied) => "Inscription refusée",
        ("fr", Approved) => "Compte déjà créé",
        ("fr", Expired) => "Demande expirée",
        ("fr", EmailRefused) => "Adresse e-mail refusée",
        ("sv", Requested) => "Begäran skickad",
        ("sv", Pending) => "Begäran granskas",
        ("sv", Denied | AutoDenied) => "Registreringen avslogs",
        ("sv", Approved) => "Kontot finns redan",
        ("sv", Expired) => "Begäran har gått ut",
        ("sv", EmailRefused) => "E-postadressen avvisades",
        (_, Requested) => "Request sent",
        (_, Pending) => "Approval pending",
        (_, Denied | AutoDenied) => "Sign-up denied",
        (_, Approved) => "Account already created",
        (_, Expired) => "Request expired",
        (_, EmailRefused) => "E-mail address refused",
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
        assert_eq!(c.identities.len(), 1, "the local e-mail identity is kept");
        assert_eq!(c.identity_provider(), crate::provider::EMAIL_ACCOUNT);
    }

    #[test]
    fn actions_serialise_to_the_documented_form() {
        let v = ExtensionAction::ShowBlockPage {
            title: None,
            message: "Pending".into(),
        }
        .to_response(ExtensionEvent::Submit);
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

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/fixtures/external-id/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The request examples of Microsoft's pages carry the e-mail only as an identity with
    /// signInType `email` (no `email` attribute): before the fix, `to_claims` found none.
    #[test]
    fn documented_requests_give_the_email_of_an_email_identity() {
        for name in ["start.request.json", "submit.request.json"] {
            let r: ExtensionRequest = serde_json::from_value(fixture(name)).unwrap();
            let c = r.to_claims().unwrap();
            assert_eq!(
                c.email, "larissa.price@contoso.onmicrosoft.com",
                "{name}: the email identity's issuerAssignedId"
            );
            assert_eq!(c.ui_locales.as_deref(), Some("en-us"), "{name}");
            assert_eq!(
                c.client_id.as_deref(),
                Some("<Your Test Application App Id>"),
                "{name}"
            );
            // The documented identity is a local e-mail account of the external tenant: kept
            // as sent (before the fix only federated identities were, so the request had none
            // and was filed under `entra`, "Entra ID … Approval sends an invitation").
            assert_eq!(
                c.identities,
                vec![ObjectIdentity {
                    sign_in_type: "email".into(),
                    issuer: "contoso.onmicrosoft.com".into(),
                    issuer_assigned_id: "larissa.price@contoso.onmicrosoft.com".into(),
                }],
                "{name}"
            );
            assert_eq!(c.identity_provider(), "email", "{name}");
            let key = crate::model::IdentityKey::of(&c);
            assert_eq!(key.issuer, crate::provider::EMAIL_ACCOUNT, "{name}");
            assert_eq!(
                key.issuer_assigned_id, "larissa.price@contoso.onmicrosoft.com",
                "{name}"
            );
            assert_eq!(
                crate::provider::provider_label(&crate::provider::provider_key(
                    &key.issuer,
                    &key.email
                )),
                "Email (external tenant)",
                "{name}"
            );
            // The claims survive the store's round trip (JSON object, typed again).
            let again = Claims::from_json(Value::Object(c.to_json())).unwrap();
            assert_eq!(again.identities, c.identities, "{name}");
        }
    }

    /// Graph's spelling of a local e-mail account (`emailAddress`) is one too; a federated
    /// identity keeps its issuer as the key, and other local sign-in types (`userName`) are not
    /// identities of a sign-up: dropped.
    #[test]
    fn local_and_federated_identities_and_their_keys() {
        let with = |identity: Value| {
            let mut v = fixture("submit.request.json");
            v["data"]["userSignUpInfo"]["identities"] = json!([identity]);
            v["data"]["userSignUpInfo"]["attributes"]["email"] =
                json!({"value": "ann@fabrikam.com", "attributeType": "builtIn"});
            let r: ExtensionRequest = serde_json::from_value(v).unwrap();
            r.to_claims().unwrap()
        };
        let c = with(
            json!({"signInType": "emailAddress", "issuer": "woodgrove.ciamlogin.com", "issuerAssignedId": "ann@fabrikam.com"}),
        );
        assert_eq!(c.identity_provider(), "email");
        assert_eq!(c.identities[0].issuer, "woodgrove.ciamlogin.com");
        let c = with(
            json!({"signInType": "federated", "issuer": "Google.com", "issuerAssignedId": "1170"}),
        );
        assert_eq!(c.identity_provider(), "google.com");
        let c = with(
            json!({"signInType": "userName", "issuer": "woodgrove.onmicrosoft.com", "issuerAssignedId": "ann"}),
        );
        assert!(c.identities.is_empty());
    }

    /// Every answer, built from the documented example's own values, is the documented example
    /// byte for byte (as JSON values): both events, every action.
    #[test]
    fn answers_equal_microsofts_documented_examples() {
        let block = |event| {
            ExtensionAction::ShowBlockPage {
                title: Some("Hold tight...".into()),
                message: "Your access request is already processing. You'll be notified when your request has been approved.".into(),
            }
            .to_response(event)
        };
        let attrs = BTreeMap::from([
            ("key1".to_string(), json!("value1,value2,value3")),
            ("key2".to_string(), json!(true)),
        ]);
        let cases = [
            ("start.response.block.json", block(ExtensionEvent::Start)),
            ("submit.response.block.json", block(ExtensionEvent::Submit)),
            (
                "start.response.continue.json",
                ExtensionAction::Continue.to_response(ExtensionEvent::Start),
            ),
            (
                "submit.response.continue.json",
                ExtensionAction::Continue.to_response(ExtensionEvent::Submit),
            ),
            (
                "start.response.prefill.json",
                ExtensionAction::SetAttributes(attrs.clone()).to_response(ExtensionEvent::Start),
            ),
            (
                "submit.response.modify.json",
                ExtensionAction::SetAttributes(attrs).to_response(ExtensionEvent::Submit),
            ),
            (
                "submit.response.validation-error.json",
                ExtensionAction::ShowValidationError {
                    message: "Please fix the below errors to proceed.".into(),
                    attribute_errors: BTreeMap::from([
                        (
                            "city".to_string(),
                            "City cannot contain any numbers".to_string(),
                        ),
                        (
                            "extension_<appid>_graduationYear".to_string(),
                            "Graduation year must be at least 4 digits".to_string(),
                        ),
                    ]),
                }
                .to_response(ExtensionEvent::Submit),
            ),
        ];
        for (name, ours) in cases {
            assert_eq!(ours, fixture(name), "{name}");
        }
    }

    #[test]
    fn prefill_keeps_the_page_attributes_only() {
        let stored = json!({"email": "a@b.example", "identities": [], "ui_locales": "sv-se",
            "displayName": "Linnéa Öberg", "city": "Uppsala", "extension_x_Sponsor": "Ada",
            "extension_x_Year": 2010});
        let inputs = prefill_inputs(stored.as_object().unwrap());
        assert_eq!(
            inputs.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "city",
                "displayName",
                "extension_x_Sponsor",
                "extension_x_Year"
            ]
        );
        assert_eq!(inputs["extension_x_Year"], json!(2010));
    }

    #[test]
    fn block_titles_are_localised() {
        assert_eq!(
            block_title(MessageKind::Pending, Some("sv-se")),
            "Begäran granskas"
        );
        assert_eq!(
            block_title(MessageKind::Approved, Some("fr-FR")),
            "Compte déjà créé"
        );
        assert_eq!(
            block_title(MessageKind::Denied, Some("de-DE")),
            "Sign-up denied"
        );
    }
}
