//! The answers Entra accepts from a custom authentication extension for attribute collection,
//! parsed strictly from Microsoft's pages "Retrieve and return data from an
//! OnAttributeCollectionStart event" and "… OnAttributeCollectionSubmit event" and the error
//! codes of "Troubleshoot your custom authentication extension": HTTP 200 (else 1003002),
//! `Content-Type: application/json` (else 1003006), a JSON body `{"data":{"@odata.type":
//! "microsoft.graph.on…ResponseData","actions":[ONE action]}}` (else 1003003 / 1003010), and an
//! action `@odata.type` the event defines (else 1003012). Written from the docs on purpose; it
//! shares no code with guestlist-core.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// The two attribute collection events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtensionEvent {
    /// `OnAttributeCollectionStart`: before the attribute collection page renders.
    Start,
    /// `OnAttributeCollectionSubmit`: after the person submits the page, before the account
    /// is created.
    Submit,
}

impl ExtensionEvent {
    /// The request envelope's `type`.
    pub fn request_type(self) -> &'static str {
        match self {
            ExtensionEvent::Start => "microsoft.graph.authenticationEvent.attributeCollectionStart",
            ExtensionEvent::Submit => {
                "microsoft.graph.authenticationEvent.attributeCollectionSubmit"
            }
        }
    }
    /// The request's `data.@odata.type`.
    pub fn callout_data_type(self) -> &'static str {
        match self {
            ExtensionEvent::Start => "microsoft.graph.onAttributeCollectionStartCalloutData",
            ExtensionEvent::Submit => "microsoft.graph.onAttributeCollectionSubmitCalloutData",
        }
    }
    fn response_data_type(self) -> &'static str {
        match self {
            ExtensionEvent::Start => "microsoft.graph.onAttributeCollectionStartResponseData",
            ExtensionEvent::Submit => "microsoft.graph.onAttributeCollectionSubmitResponseData",
        }
    }
    fn action_ns(self) -> &'static str {
        match self {
            ExtensionEvent::Start => "microsoft.graph.attributeCollectionStart.",
            ExtensionEvent::Submit => "microsoft.graph.attributeCollectionSubmit.",
        }
    }
}

impl fmt::Display for ExtensionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtensionEvent::Start => "OnAttributeCollectionStart",
            ExtensionEvent::Submit => "OnAttributeCollectionSubmit",
        })
    }
}

/// The block page text Entra shows when `showBlockPage` has no `message`.
pub const DEFAULT_BLOCK_MESSAGE: &str =
    "You are not permitted to sign up. Please contact the owner of the application/website.";

/// An extension answer that follows the documented contract.
#[derive(Clone, Debug, PartialEq)]
pub enum ExtensionAnswer {
    /// `continueWithDefaultBehavior` (both events).
    Continue,
    /// `setPrefillValues` (Start): `inputs`, the attribute page's initial values.
    SetPrefillValues(Map<String, Value>),
    /// `modifyAttributeValues` (Submit): `attributes` that override what the person submitted.
    ModifyAttributeValues(Map<String, Value>),
    /// `showBlockPage` (both events): optional `title`, `message` (Entra's default text when
    /// absent).
    ShowBlockPage {
        /// `title`, if sent.
        title: Option<String>,
        /// `message`, or [`DEFAULT_BLOCK_MESSAGE`].
        message: String,
    },
    /// `showValidationError` (Submit): the page again with `message` and `attributeErrors`.
    ShowValidationError {
        /// `message`, shown above the form.
        message: String,
        /// `attributeErrors`: attribute name → error text.
        attribute_errors: BTreeMap<String, String>,
    },
}

/// Parses an extension answer strictly (see the module docs). `content_type` is the response's
/// `Content-Type` header (parameters such as `charset` allowed).
///
/// # Errors
/// A description of the contract violation, naming Entra's error code (the flow then ends on
/// Entra's generic error page).
pub fn parse_extension_answer(
    event: ExtensionEvent,
    http_status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ExtensionAnswer, String> {
    if http_status != 200 {
        return Err(format!(
            "HTTP {http_status}: an extension must answer 200 (CustomExtensionInvalidHTTPStatus, 1003002)"
        ));
    }
    let json_type = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(format!(
            "Content-Type {:?} is not application/json (CustomExtensionInvalidResponseContentType, 1003006)",
            content_type.unwrap_or("")
        ));
    }
    let invalid = |why: String| format!("{why} (CustomExtensionInvalidResponseBody, 1003003)");
    let v: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    let data = v
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the body has no data object".into()))?;
    match data.get("@odata.type").and_then(Value::as_str) {
        Some(t) if t == event.response_data_type() => {}
        other => {
            return Err(invalid(format!(
                "data.@odata.type must be {}, got {other:?}",
                event.response_data_type()
            )));
        }
    }
    let actions = data
        .get("actions")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("data.actions must be an array".into()))?;
    let [action] = actions.as_slice() else {
        return Err(format!(
            "{} actions; exactly one is allowed (CustomExtensionInvalidNumberOfActions, 1003010)",
            actions.len()
        ));
    };
    let kind = action
        .get("@odata.type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = kind.strip_prefix(event.action_ns()).unwrap_or_default();
    let object = |key: &str| -> Result<Map<String, Value>, String> {
        action
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| invalid(format!("{name} needs an object {key}")))
    };
    let opt_string = |key: &str| -> Result<Option<String>, String> {
        match action.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!(
                "{name}: {key} must be a string, got {other}"
            ))),
        }
    };
    match (event, name) {
        (_, "continueWithDefaultBehavior") => Ok(ExtensionAnswer::Continue),
        (ExtensionEvent::Start, "setPrefillValues") => {
            Ok(ExtensionAnswer::SetPrefillValues(object("inputs")?))
        }
        (ExtensionEvent::Submit, "modifyAttributeValues") => Ok(
            ExtensionAnswer::ModifyAttributeValues(object("attributes")?),
        ),
        (_, "showBlockPage") => Ok(ExtensionAnswer::ShowBlockPage {
            title: opt_string("title")?,
            message: opt_string("message")?.unwrap_or_else(|| DEFAULT_BLOCK_MESSAGE.into()),
        }),
        (ExtensionEvent::Submit, "showValidationError") => {
            let message = opt_string("message")?
                .ok_or_else(|| invalid("showValidationError needs a message".into()))?;
            let mut attribute_errors = BTreeMap::new();
            for (k, v) in object("attributeErrors").unwrap_or_default() {
                let Value::String(text) = v else {
                    return Err(invalid(format!("attributeErrors.{k} must be a string")));
                };
                attribute_errors.insert(k, text);
            }
            Ok(ExtensionAnswer::ShowValidationError {
                message,
                attribute_errors,
            })
        }
        _ => Err(format!(
            "action {kind:?} is not one {event} defines (CustomExtensionInvalidActionType, 1003012)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(event: ExtensionEvent, action: Value) -> Result<ExtensionAnswer, String> {
        let data_type = event.response_data_type();
        let body = json!({"data": {"@odata.type": data_type, "actions": [action]}});
        parse_extension_answer(
            event,
            200,
            Some("application/json; charset=utf-8"),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn strict_parsing() {
        use ExtensionEvent::{Start, Submit};
        let start = |t: &str| json!({"@odata.type": format!("microsoft.graph.attributeCollectionStart.{t}")});
        let submit = |t: &str| json!({"@odata.type": format!("microsoft.graph.attributeCollectionSubmit.{t}")});
        assert_eq!(
            answer(Start, start("continueWithDefaultBehavior")),
            Ok(ExtensionAnswer::Continue)
        );
        assert_eq!(
            answer(Start, start("showBlockPage")),
            Ok(ExtensionAnswer::ShowBlockPage {
                title: None,
                message: DEFAULT_BLOCK_MESSAGE.into()
            })
        );
        // An action of the other event, or one the event does not define, is refused.
        assert!(
            answer(Start, submit("continueWithDefaultBehavior"))
                .unwrap_err()
                .contains("1003012")
        );
        assert!(
            answer(Start, start("showValidationError"))
                .unwrap_err()
                .contains("1003012")
        );
        assert!(
            answer(Submit, submit("setPrefillValues"))
                .unwrap_err()
                .contains("1003012")
        );
        assert!(
            answer(Start, start("setPrefillValues"))
                .unwrap_err()
                .contains("inputs")
        );
        // Two actions, a non-200 status, a non-JSON content type: Entra's errors.
        let two = json!({"data": {"@odata.type": "microsoft.graph.onAttributeCollectionStartResponseData",
            "actions": [start("continueWithDefaultBehavior"), start("continueWithDefaultBehavior")]}});
        let two = two.to_string();
        assert!(
            parse_extension_answer(Start, 200, Some("application/json"), two.as_bytes())
                .unwrap_err()
                .contains("1003010")
        );
        let one = json!({"data": {"@odata.type": "microsoft.graph.onAttributeCollectionStartResponseData",
            "actions": [start("continueWithDefaultBehavior")]}}).to_string();
        assert!(
            parse_extension_answer(Start, 400, Some("application/json"), one.as_bytes())
                .unwrap_err()
                .contains("1003002")
        );
        assert!(
            parse_extension_answer(Start, 200, Some("text/plain"), one.as_bytes())
                .unwrap_err()
                .contains("1003006")
        );
        assert!(
            parse_extension_answer(Submit, 200, Some("application/json"), one.as_bytes())
                .unwrap_err()
                .contains("1003003")
        );
    }
}
