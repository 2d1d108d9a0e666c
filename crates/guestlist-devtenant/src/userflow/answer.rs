//! The connector answers Entra accepts, parsed strictly from CONTRACTS.md §1 ("Add a custom
//! approval workflow to self-service sign-up", API connector response formats): HTTP 200 with
//! `version` `1.0.0` and `action` `Continue`, `ShowBlockPage` or `ValidationError` (400).
//! Written from the contract on purpose; it shares no code with guestlist-core.

use std::fmt;

use serde_json::{Map, Value};

/// The two connector steps (Graph names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// After federation, before the attribute page: "check approval status".
    PostFederationSignup,
    /// After the attribute page, before the user is created: "request approval".
    PostAttributeCollection,
}

impl Step {
    pub(super) fn path(self) -> &'static str {
        match self {
            Step::PostFederationSignup => "connectors/check-approval-status",
            Step::PostAttributeCollection => "connectors/request-approval",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::PostFederationSignup => "postFederationSignup",
            Step::PostAttributeCollection => "postAttributeCollection",
        })
    }
}

/// A connector answer that follows the contract.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectorAction {
    /// HTTP 200 `{"version":"1.0.0","action":"Continue", …claims}`; the claims (every member
    /// but `version` and `action`) prefill or override attributes.
    Continue(Map<String, Value>),
    /// HTTP 200 `{"version":"1.0.0","action":"ShowBlockPage","userMessage", "code"?}`.
    ShowBlockPage {
        /// `userMessage`, shown to the person.
        user_message: String,
        /// Optional `code` (e.g. `CONTOSO-APPROVAL-PENDING`).
        code: Option<String>,
    },
    /// HTTP 400 `{"version":"1.0.0","status":400,"action":"ValidationError","userMessage"}`, only
    /// at `postAttributeCollection`.
    ValidationError {
        /// `userMessage`, shown on the form.
        user_message: String,
    },
}

/// Parses a connector answer strictly: JSON object, `version` exactly `"1.0.0"`, `action`
/// exactly `Continue` / `ShowBlockPage` / `ValidationError`; Continue and ShowBlockPage only with
/// HTTP 200; ShowBlockPage and ValidationError need a string `userMessage`; ValidationError only
/// with HTTP 400 and only at `postAttributeCollection` (`status`, when present, must be 400).
///
/// # Errors
/// A description of the contract violation (the flow then shows Entra's generic error page).
pub fn parse_answer(step: Step, http_status: u16, body: &[u8]) -> Result<ConnectorAction, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("HTTP {http_status}: the body is not JSON ({e})"))?;
    let Value::Object(mut m) = v else {
        return Err(format!("HTTP {http_status}: the body is not a JSON object"));
    };
    match m.get("version") {
        Some(Value::String(s)) if s == "1.0.0" => {}
        other => {
            return Err(format!(
                "HTTP {http_status}: version must be \"1.0.0\", got {}",
                other.map_or("nothing".into(), Value::to_string)
            ));
        }
    }
    let action = match m.get("action") {
        Some(Value::String(a)) => a.clone(),
        other => {
            return Err(format!(
                "HTTP {http_status}: action must be a string, got {}",
                other.map_or("nothing".into(), Value::to_string)
            ));
        }
    };
    let message = |m: &Map<String, Value>| -> Result<String, String> {
        m.get("userMessage")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("HTTP {http_status}: {action} needs a string userMessage"))
    };
    match action.as_str() {
        "Continue" if http_status == 200 => {
            m.remove("version");
            m.remove("action");
            Ok(ConnectorAction::Continue(m))
        }
        "ShowBlockPage" if http_status == 200 => Ok(ConnectorAction::ShowBlockPage {
            user_message: message(&m)?,
            code: m.get("code").and_then(Value::as_str).map(str::to_string),
        }),
        "ValidationError" if step != Step::PostAttributeCollection => Err(format!(
            "HTTP {http_status}: ValidationError is only allowed at postAttributeCollection, not at {step}"
        )),
        "ValidationError" if http_status == 400 => {
            match m.get("status") {
                None => {}
                Some(Value::Number(n)) if n.as_u64() == Some(400) => {}
                Some(Value::String(s)) if s == "400" => {}
                Some(other) => {
                    return Err(format!(
                        "HTTP 400: ValidationError status must be 400, got {other}"
                    ));
                }
            }
            Ok(ConnectorAction::ValidationError {
                user_message: message(&m)?,
            })
        }
        "Continue" | "ShowBlockPage" | "ValidationError" => Err(format!(
            "HTTP {http_status} is not allowed with action {action}"
        )),
        other => Err(format!(
            "HTTP {http_status}: unknown action {other:?} (allowed: Continue, ShowBlockPage, ValidationError)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strict_parsing() {
        let ok = parse_answer(
            Step::PostFederationSignup,
            200,
            br#"{"version":"1.0.0","action":"Continue","postalCode":"12349"}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            ConnectorAction::Continue(
                [("postalCode".to_string(), json!("12349"))]
                    .into_iter()
                    .collect()
            )
        );
        let block = parse_answer(
            Step::PostFederationSignup,
            200,
            br#"{"version":"1.0.0","action":"ShowBlockPage","userMessage":"m","code":"C"}"#,
        )
        .unwrap();
        assert_eq!(
            block,
            ConnectorAction::ShowBlockPage {
                user_message: "m".into(),
                code: Some("C".into())
            }
        );
        let ve =
            br#"{"version":"1.0.0","status":400,"action":"ValidationError","userMessage":"bad"}"#;
        assert_eq!(
            parse_answer(Step::PostAttributeCollection, 400, ve).unwrap(),
            ConnectorAction::ValidationError {
                user_message: "bad".into()
            }
        );
        assert!(parse_answer(Step::PostAttributeCollection, 200, ve).is_err());
        assert!(parse_answer(Step::PostFederationSignup, 400, ve).is_err());
        assert!(
            parse_answer(
                Step::PostFederationSignup,
                200,
                br#"{"version":"1.0.0","action":"Allow"}"#
            )
            .is_err()
        );
        assert!(
            parse_answer(
                Step::PostFederationSignup,
                200,
                br#"{"version":"1.0","action":"Continue"}"#
            )
            .is_err()
        );
        assert!(
            parse_answer(Step::PostFederationSignup, 200, br#"{"action":"Continue"}"#).is_err()
        );
        assert!(
            parse_answer(
                Step::PostFederationSignup,
                200,
                br#"{"version":"1.0.0","action":"ShowBlockPage"}"#
            )
            .is_err()
        );
        assert!(
            parse_answer(
                Step::PostFederationSignup,
                500,
                br#"{"version":"1.0.0","action":"Continue"}"#
            )
            .is_err()
        );
        assert!(parse_answer(Step::PostFederationSignup, 200, b"not json").is_err());
        assert!(
            parse_answer(
                Step::PostFederationSignup,
                200,
                br#"{"version":"1.0.0","action":"continue"}"#
            )
            .is_err()
        );
    }
}
