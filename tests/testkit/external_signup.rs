//! `guestlist-external-signup`: one person's sign-up through an *external* tenant's user flow,
//! played by devtenant's user-flow player ([`userflow::play_external`]: the custom
//! authentication extensions `OnAttributeCollectionStart` / `OnAttributeCollectionSubmit` with
//! bearer tokens devtenant issues, then the customer account), for the window E2E
//! (`tests/e2e/external.mjs`, issue 17 §6). `devtenant signup --flow external` plays seeded,
//! generated people; the E2E needs one person of its choosing, three times.
//!
//! Reads one JSON object on stdin:
//!
//! ```json
//! {"api": "http://127.0.0.1:8080", "tenant": "http://127.0.0.1:8900",
//!  "provider": "email" | "google" | "facebook",
//!  "claims": {"email": "…", "ui_locales": "sv-SE", "identities": […]},
//!  "typed": {"displayName": "…", "city": "…"}}
//! ```
//!
//! `api` is the approval API (extensions at `{api}/connectors/external-id/attribute-collection-
//! start` and `…-submit`, resource `api://guestlist-approvals`, timeout 2,000 ms, Entra's
//! upper bound, with one retry); `tenant` is devtenant playing an external tenant
//! (`tenant_kind = "external"`); `claims` is what the identity provider gives (Google and
//! Facebook sign-ups carry their `identities`); `typed` is what the person types into the
//! attribute page's fields that are still empty after `setPrefillValues`.
//!
//! Writes one JSON object on stdout:
//!
//! ```json
//! {"outcome": "blocked" | "accountCreated" | "signedIn" | "validationError" | "somethingWentWrong",
//!  "event": "OnAttributeCollectionStart" | "OnAttributeCollectionSubmit" | null,
//!  "message": "…" | null, "upn": "…" | null, "blockTitle": "…" | null,
//!  "pageValues": {…}, "attributeErrors": {…}, "retries": 0, "transcript": ["…"]}
//! ```
//!
//! `event` names the extension whose answer blocked or failed the sign-up; `pageValues` are
//! the attribute page's initial values (after `setPrefillValues`). Exit status 0 when the
//! sign-up was played, whatever its outcome; 1 with the reason on stderr when the input is
//! unusable or devtenant cannot be reached.

use std::process::ExitCode;
use std::time::Duration;

use guestlist_devtenant::defaults;
use guestlist_devtenant::userflow::{
    self, ExtensionConfig, ExtensionEvent, Outcome, PlayerConfig, Provider, Step,
};
use serde_json::{Map, Value, json};

/// The extensions' `timeoutInMilliseconds`: Entra's upper bound, for a loaded CI machine.
const EXTENSION_TIMEOUT: Duration = Duration::from_millis(2000);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guestlist-external-signup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn text(input: &Value, key: &str) -> Result<String, String> {
    input
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("the input needs \"{key}\" (a string)"))
}

fn object(input: &Value, key: &str) -> Result<Map<String, Value>, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(format!("\"{key}\" must be an object")),
    }
}

async fn run() -> Result<Value, String> {
    let raw = std::io::read_to_string(std::io::stdin())
        .map_err(|e| format!("reading stdin failed: {e}"))?;
    let input: Value = serde_json::from_str(&raw).map_err(|e| format!("stdin is not JSON: {e}"))?;
    let api = text(&input, "api")?;
    let tenant = text(&input, "tenant")?;
    let provider = match text(&input, "provider")?.as_str() {
        "email" => Provider::EmailOtp,
        "google" => Provider::Google,
        "facebook" => Provider::Facebook,
        other => {
            return Err(format!(
                "provider {other:?}: expected email, google or facebook (an external tenant's sign-up options)"
            ));
        }
    };
    let signup = userflow::SignUp {
        provider,
        federation_claims: object(&input, "claims")?,
        collected: object(&input, "typed")?,
        note: String::new(),
    };
    let cfg = PlayerConfig {
        api: api.clone(),
        // The extensions authenticate with bearer tokens; Basic credentials are not used.
        username: String::new(),
        password: String::new(),
        timeout: Duration::from_secs(20),
        tenant_url: Some(tenant),
        extensions_app_id: defaults::EXTENSIONS_APP_ID.into(),
    };
    let mut ext = ExtensionConfig::for_api(&api);
    ext.timeout = EXTENSION_TIMEOUT;
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
    let mut transcript = Vec::new();
    let r = userflow::play_external(&http, &cfg, &ext, &signup, &mut |l| transcript.push(l))
        .await
        .map_err(|e| e.to_string())?;
    let event = |s: Step| {
        match s {
            Step::PostFederationSignup => ExtensionEvent::Start,
            Step::PostAttributeCollection => ExtensionEvent::Submit,
        }
        .to_string()
    };
    let (outcome, at, message, upn) = match r.outcome {
        Outcome::Blocked { step, message, .. } => {
            ("blocked", Some(event(step)), Some(message), None)
        }
        Outcome::AccountCreated { upn } => ("accountCreated", None, None, Some(upn)),
        Outcome::SignedIn => ("signedIn", None, None, None),
        Outcome::ValidationError { message } => ("validationError", None, Some(message), None),
        Outcome::SomethingWentWrong { step, reason } => {
            ("somethingWentWrong", Some(event(step)), Some(reason), None)
        }
    };
    Ok(json!({
        "outcome": outcome,
        "event": at,
        "message": message,
        "upn": upn,
        "blockTitle": r.block_title,
        "pageValues": r.page_values,
        "attributeErrors": r.attribute_errors,
        "retries": r.retries,
        "transcript": transcript,
    }))
}
