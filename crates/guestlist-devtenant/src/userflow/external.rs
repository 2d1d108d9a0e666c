//! The user flow of an *external* tenant: one sign-up through the custom authentication
//! extensions for attribute collection, as Entra External ID runs it ("Retrieve and return data
//! from an OnAttributeCollectionStart event", "… OnAttributeCollectionSubmit event", "Custom
//! authentication extensions overview"; CONTRACTS.md §2):
//!
//! 1. the person authenticates (email with password or one-time passcode, Google, Facebook);
//!    an existing customer with that identity is signed in and no extension is called;
//! 2. `OnAttributeCollectionStart`: `POST {start_url}` with the event envelope;
//!    `setPrefillValues` sets the attribute page's initial values;
//! 3. the attribute page: the person fills in the fields the page left empty;
//! 4. `OnAttributeCollectionSubmit`: `POST {submit_url}`; `modifyAttributeValues` overrides
//!    values; `showValidationError` shows the page again;
//! 5. on continue, Entra creates the customer account (devtenant `POST /_devtenant/customers`).
//!
//! Each call carries `Authorization: Bearer` with a token devtenant issues for Entra's
//! authentication events app (`POST /_devtenant/authentication-events/token`), `Content-Type:
//! application/json`. Timeout and retries follow the extension's `clientConfiguration`
//! ("customExtensionClientConfiguration resource type": `timeoutInMilliseconds` 200–2000,
//! default 1000; `maximumRetries` 0 or 1), unlike API connectors (20 s, always one retry).
//! A timed-out or unreachable call is retried; any other failure ends on the generic error page.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::answer::Step;
use super::extension::{ExtensionAnswer, ExtensionEvent, parse_extension_answer};
use super::people::{Provider, SignUp};
use super::player::{Outcome, PlayerConfig, UserFlowError};
use crate::defaults as d;

/// The tenant's two custom authentication extensions (Graph `onAttributeCollectionStart…` and
/// `onAttributeCollectionSubmitCustomExtension`): target URLs, the resource their tokens are
/// issued for, and their client configuration.
#[derive(Clone, Debug)]
pub struct ExtensionConfig {
    /// `endpointConfiguration.targetUrl` of the OnAttributeCollectionStart extension; `None`:
    /// no listener for that event (the page renders as usual).
    pub start_url: Option<String>,
    /// The OnAttributeCollectionSubmit extension's target URL; `None`: no listener.
    pub submit_url: Option<String>,
    /// `authenticationConfiguration.resourceId`: the API's application ID URI, the tokens' `aud`.
    pub resource: String,
    /// `clientConfiguration.timeoutInMilliseconds` (Entra: 200–2000 ms, default 1000 ms).
    pub timeout: Duration,
    /// `clientConfiguration.maximumRetries` (Entra: 0 or 1).
    pub maximum_retries: u8,
    /// The application the person signs up to: the `{appId}` of `source`.
    pub application_id: String,
}

impl ExtensionConfig {
    /// Both extensions on the approval API at `api`: `{api}/connectors/external-id/
    /// attribute-collection-start` and `…-submit`, resource [`d::API_APP_ID_URI`], Entra's
    /// defaults (1000 ms, one retry), application [`d::CUSTOMER_APP_ID`].
    pub fn for_api(api: &str) -> Self {
        let api = api.trim_end_matches('/');
        Self {
            start_url: Some(format!(
                "{api}/connectors/external-id/attribute-collection-start"
            )),
            submit_url: Some(format!(
                "{api}/connectors/external-id/attribute-collection-submit"
            )),
            resource: d::API_APP_ID_URI.into(),
            timeout: Duration::from_millis(1000),
            maximum_retries: 1,
            application_id: d::CUSTOMER_APP_ID.into(),
        }
    }
}

/// What one external-tenant sign-up ended with, and what the person saw on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalResult {
    /// The outcome. `Step::PostFederationSignup` stands for OnAttributeCollectionStart and
    /// `Step::PostAttributeCollection` for OnAttributeCollectionSubmit (the same points of the
    /// flow).
    pub outcome: Outcome,
    /// Extension calls retried after a timeout or transport failure.
    pub retries: usize,
    /// The attribute page's initial values (what the identity provider gave, overlaid by
    /// `setPrefillValues`); empty when the flow ended before the page.
    pub page_values: Map<String, Value>,
    /// `showBlockPage`'s `title`, if any.
    pub block_title: Option<String>,
    /// `showValidationError`'s `attributeErrors`.
    pub attribute_errors: BTreeMap<String, String>,
}

struct Tenant {
    url: String,
    id: String,
    customer_domain: String,
}

async fn tenant(client: &reqwest::Client, cfg: &PlayerConfig) -> Result<Tenant, UserFlowError> {
    let Some(url) = cfg.tenant_url.clone() else {
        return Err(UserFlowError::Client(
            "an external tenant's sign-up needs devtenant (tenant_url): it issues the extension tokens and creates the customer".into(),
        ));
    };
    let url = url.trim_end_matches('/').to_string();
    let h: Value = get_json(client, &format!("{url}/_devtenant/health"), &url).await?;
    if h["tenantKind"] != "external" {
        return Err(UserFlowError::Directory(
            url,
            "devtenant plays a workforce tenant; start it with tenant_kind = \"external\"".into(),
        ));
    }
    let id = h["tenantId"].as_str().unwrap_or_default().to_string();
    let customer_domain = h["customerDomain"].as_str().unwrap_or_default().to_string();
    Ok(Tenant {
        url,
        id,
        customer_domain,
    })
}

async fn get_json(client: &reqwest::Client, url: &str, t: &str) -> Result<Value, UserFlowError> {
    client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| UserFlowError::Directory(t.into(), e.to_string()))?
        .json()
        .await
        .map_err(|e| UserFlowError::Directory(t.into(), e.to_string()))
}

/// How the person signs up: a federated Google/Facebook identity, or an email account (email
/// with password or one-time passcode; everyone else, since external tenants offer no Entra ID
/// or Microsoft account sign-up). Returns `(request form, directory form)`: the request's
/// `identities` use signInType `email` as Microsoft's examples do; the user object uses
/// `emailAddress` ("objectIdentity resource type").
fn identity(signup: &SignUp, customer_domain: &str) -> (Value, Value) {
    if matches!(signup.provider, Provider::Google | Provider::Facebook)
        && let Some(fed) = signup
            .federation_claims
            .get("identities")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|i| i["signInType"] == "federated"))
    {
        return (fed.clone(), fed.clone());
    }
    let email = signup
        .federation_claims
        .get("email")
        .cloned()
        .unwrap_or(Value::Null);
    (
        json!({"signInType": "email", "issuer": customer_domain, "issuerAssignedId": email}),
        json!({"signInType": "emailAddress", "issuer": customer_domain, "issuerAssignedId": email}),
    )
}

/// An attribute as the request carries it: `{"@odata.type":"microsoft.graph.{string|boolean|
/// int64}DirectoryAttributeValue","value","attributeType":"builtIn"|"directorySchemaExtension"}`;
/// several values become one comma-delimited string.
fn attribute(name: &str, v: &Value) -> Value {
    let (kind, value) = match v {
        Value::Bool(_) => ("booleanDirectoryAttributeValue", v.clone()),
        Value::Number(n) if n.is_i64() => ("int64DirectoryAttributeValue", v.clone()),
        Value::Array(a) => (
            "stringDirectoryAttributeValue",
            json!(
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        Value::String(_) => ("stringDirectoryAttributeValue", v.clone()),
        other => ("stringDirectoryAttributeValue", json!(other.to_string())),
    };
    json!({
        "@odata.type": format!("microsoft.graph.{kind}"),
        "value": value,
        "attributeType": if name.starts_with("extension_") { "directorySchemaExtension" } else { "builtIn" },
    })
}

/// The event envelope Entra POSTs to an extension (the docs' request example, field for field).
fn envelope(
    event: ExtensionEvent,
    t: &Tenant,
    ext: &ExtensionConfig,
    correlation: &str,
    locale: &str,
    attrs: &Map<String, Value>,
    identity: &Value,
) -> Value {
    let (listener, extension) = match event {
        ExtensionEvent::Start => (d::START_LISTENER_ID, d::START_EXTENSION_ID),
        ExtensionEvent::Submit => (d::SUBMIT_LISTENER_ID, d::SUBMIT_EXTENSION_ID),
    };
    let sp = json!({"id": d::CUSTOMER_SP_ID, "appId": ext.application_id,
        "appDisplayName": d::CUSTOMER_APP_NAME, "displayName": d::CUSTOMER_APP_NAME});
    let attributes: Map<String, Value> = attrs
        .iter()
        .map(|(k, v)| (k.clone(), attribute(k, v)))
        .collect();
    json!({
        "type": event.request_type(),
        "source": format!("/tenants/{}/applications/{}", t.id, ext.application_id),
        "data": {
            "@odata.type": event.callout_data_type(),
            "tenantId": t.id,
            "authenticationEventListenerId": listener,
            "customAuthenticationExtensionId": extension,
            "authenticationContext": {
                "correlationId": correlation,
                "client": {"ip": "127.0.0.1", "locale": locale, "market": locale},
                "protocol": "OAUTH2.0",
                "clientServicePrincipal": sp,
                "resourceServicePrincipal": sp,
            },
            "userSignUpInfo": {"attributes": attributes, "identities": [identity]},
        }
    })
}

/// Calls one extension: bearer token, JSON envelope, the configured timeout, up to
/// `maximum_retries` retries after a timeout or transport failure; then
/// [`parse_extension_answer`]. Returns the answer (or why it is unusable) and the retries made.
pub async fn call_extension(
    client: &reqwest::Client,
    ext: &ExtensionConfig,
    event: ExtensionEvent,
    url: &str,
    token: &str,
    body: &Value,
) -> (Result<ExtensionAnswer, String>, usize) {
    let mut last_err = String::new();
    let attempts = usize::from(ext.maximum_retries.min(1)) + 1;
    for attempt in 0..attempts {
        let req = client
            .post(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(ext.timeout);
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let ct = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match resp.bytes().await {
                    Ok(b) => {
                        return (
                            parse_extension_answer(event, status, ct.as_deref(), &b),
                            attempt,
                        );
                    }
                    Err(e) => last_err = format!("reading the answer failed: {e}"),
                }
            }
            Err(e) if e.is_timeout() => {
                last_err = format!(
                    "no answer within {} ms (CustomExtensionTimedOut, 1003005)",
                    ext.timeout.as_millis()
                )
            }
            Err(e) => {
                last_err = format!("transport error: {e} (CustomExtensionConnectionError, 1003027)")
            }
        }
        tracing::warn!(%url, attempt, error = %last_err, "extension call failed");
    }
    let tail = if attempts > 1 {
        " (after one retry)"
    } else {
        ""
    };
    (Err(format!("{last_err}{tail}")), attempts - 1)
}

fn blocked(step: Step, title: Option<String>, message: String) -> (Outcome, Option<String>) {
    (
        Outcome::Blocked {
            step,
            message,
            code: None,
        },
        title,
    )
}

/// Keeps the members of `values` that name an attribute of the page; says which were ignored
/// (Entra ignores attributes that are not part of the attribute collection).
fn on_page(
    values: Map<String, Value>,
    page: &[String],
    what: &str,
    say: &mut dyn FnMut(String),
) -> Map<String, Value> {
    let (kept, ignored): (Vec<_>, Vec<_>) = values.into_iter().partition(|(k, _)| page.contains(k));
    if !ignored.is_empty() {
        let names: Vec<&str> = ignored.iter().map(|(k, _)| k.as_str()).collect();
        say(format!(
            "  {what}: ignored (not on the attribute page): {}",
            names.join(", ")
        ));
    }
    kept.into_iter().collect()
}

/// Plays one external-tenant sign-up (see the module docs); `say` receives the transcript.
///
/// # Errors
/// [`UserFlowError`] when devtenant (`cfg.tenant_url`) is missing, unreachable, or plays a
/// workforce tenant, or refuses to issue the extension token.
pub async fn play_external(
    client: &reqwest::Client,
    cfg: &PlayerConfig,
    ext: &ExtensionConfig,
    signup: &SignUp,
    say: &mut dyn FnMut(String),
) -> Result<ExternalResult, UserFlowError> {
    let t = tenant(client, cfg).await?;
    let (req_identity, dir_identity) = identity(signup, &t.customer_domain);
    let mut result = ExternalResult {
        outcome: Outcome::SignedIn,
        retries: 0,
        page_values: Map::new(),
        block_title: None,
        attribute_errors: BTreeMap::new(),
    };
    let dir = get_json(client, &format!("{}/_devtenant/users", t.url), &t.url).await?;
    if dir["value"].as_array().is_some_and(|a| {
        a.iter()
            .any(|u| crate::external::holds_identity(u, &dir_identity))
    }) {
        say(
            "  customer exists: Entra signs the person in (sign-in never calls the extensions)"
                .into(),
        );
        return Ok(result);
    }
    let tok: Value = client
        .post(format!("{}/_devtenant/authentication-events/token", t.url))
        .json(&json!({"resource": ext.resource}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| UserFlowError::Directory(t.url.clone(), e.to_string()))?
        .json()
        .await
        .map_err(|e| UserFlowError::Directory(t.url.clone(), e.to_string()))?;
    let token = tok["access_token"].as_str().unwrap_or_default().to_string();
    let locale = signup
        .federation_claims
        .get("ui_locales")
        .and_then(Value::as_str)
        .unwrap_or("en-US")
        .to_ascii_lowercase();
    let correlation = uuid::Uuid::new_v4().to_string();
    // What the identity provider gave: the page's attributes before anyone types.
    let known: Map<String, Value> = signup
        .federation_claims
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "identities" | "ui_locales"))
        .map(|(k, v)| {
            (
                if k == "lastName" {
                    "surname".into()
                } else {
                    k.clone()
                },
                v.clone(),
            )
        })
        .collect();
    let mut page: Vec<String> = known.keys().cloned().collect();
    page.extend(
        signup
            .collected
            .keys()
            .filter(|k| !known.contains_key(*k))
            .cloned(),
    );
    let mut values = known.clone();
    if let Some(url) = &ext.start_url {
        let body = envelope(
            ExtensionEvent::Start,
            &t,
            ext,
            &correlation,
            &locale,
            &known,
            &req_identity,
        );
        let (answer, retries) =
            call_extension(client, ext, ExtensionEvent::Start, url, &token, &body).await;
        result.retries += retries;
        match answer {
            Ok(ExtensionAnswer::Continue) => say(format!(
                "  {}: continueWithDefaultBehavior",
                ExtensionEvent::Start
            )),
            Ok(ExtensionAnswer::SetPrefillValues(inputs)) => {
                let inputs = on_page(inputs, &page, "setPrefillValues", say);
                say(format!(
                    "  {}: setPrefillValues {}",
                    ExtensionEvent::Start,
                    Value::Object(inputs.clone())
                ));
                values.extend(inputs);
            }
            Ok(ExtensionAnswer::ShowBlockPage { title, message }) => {
                say(format!(
                    "  {}: showBlockPage, page: \"{message}\"",
                    ExtensionEvent::Start
                ));
                (result.outcome, result.block_title) =
                    blocked(Step::PostFederationSignup, title, message);
                return Ok(result);
            }
            Ok(other) => {
                // parse_extension_answer refuses Submit-only actions at Start; kept total.
                let reason = format!("{other:?} at {}", ExtensionEvent::Start);
                result.outcome = Outcome::SomethingWentWrong {
                    step: Step::PostFederationSignup,
                    reason,
                };
                return Ok(result);
            }
            Err(reason) => {
                say(format!(
                    "  page: Something went wrong. ({}: {reason})",
                    ExtensionEvent::Start
                ));
                result.outcome = Outcome::SomethingWentWrong {
                    step: Step::PostFederationSignup,
                    reason,
                };
                return Ok(result);
            }
        }
    }
    result.page_values = values.clone();
    // The person fills in what the page left empty (prefilled values stay as they are).
    for (k, v) in &signup.collected {
        let empty = values.get(k).is_none_or(|x| x.is_null() || x == "");
        if empty {
            values.insert(k.clone(), v.clone());
        }
    }
    if let Some(url) = &ext.submit_url {
        let body = envelope(
            ExtensionEvent::Submit,
            &t,
            ext,
            &correlation,
            &locale,
            &values,
            &req_identity,
        );
        let (answer, retries) =
            call_extension(client, ext, ExtensionEvent::Submit, url, &token, &body).await;
        result.retries += retries;
        match answer {
            Ok(ExtensionAnswer::Continue) => say(format!(
                "  {}: continueWithDefaultBehavior",
                ExtensionEvent::Submit
            )),
            Ok(ExtensionAnswer::ModifyAttributeValues(attrs)) => {
                let attrs = on_page(attrs, &page, "modifyAttributeValues", say);
                say(format!(
                    "  {}: modifyAttributeValues {}",
                    ExtensionEvent::Submit,
                    Value::Object(attrs.clone())
                ));
                values.extend(attrs);
            }
            Ok(ExtensionAnswer::ShowBlockPage { title, message }) => {
                say(format!(
                    "  {}: showBlockPage, page: \"{message}\"",
                    ExtensionEvent::Submit
                ));
                (result.outcome, result.block_title) =
                    blocked(Step::PostAttributeCollection, title, message);
                return Ok(result);
            }
            Ok(ExtensionAnswer::ShowValidationError {
                message,
                attribute_errors,
            }) => {
                say(format!(
                    "  form shown again with: \"{message}\" {attribute_errors:?}"
                ));
                result.outcome = Outcome::ValidationError { message };
                result.attribute_errors = attribute_errors;
                return Ok(result);
            }
            Ok(other) => {
                let reason = format!("{other:?} at {}", ExtensionEvent::Submit);
                result.outcome = Outcome::SomethingWentWrong {
                    step: Step::PostAttributeCollection,
                    reason,
                };
                return Ok(result);
            }
            Err(reason) => {
                say(format!(
                    "  page: Something went wrong. ({}: {reason})",
                    ExtensionEvent::Submit
                ));
                result.outcome = Outcome::SomethingWentWrong {
                    step: Step::PostAttributeCollection,
                    reason,
                };
                return Ok(result);
            }
        }
    }
    let resp = client
        .post(format!("{}/_devtenant/customers", t.url))
        .json(&json!({"attributes": values, "identity": dir_identity}))
        .send()
        .await
        .map_err(|e| UserFlowError::Directory(t.url.clone(), e.to_string()))?;
    let ok = resp.status().is_success();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !ok {
        let reason = body["error"]
            .as_str()
            .unwrap_or("the directory refused the customer")
            .to_string();
        say(format!(
            "  page: Something went wrong. (creating the account: {reason})"
        ));
        result.outcome = Outcome::SomethingWentWrong {
            step: Step::PostAttributeCollection,
            reason,
        };
        return Ok(result);
    }
    let upn = body["userPrincipalName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    say(format!("  customer account created: {upn}"));
    result.outcome = Outcome::AccountCreated { upn };
    Ok(result)
}

/// Which user flow each sign-up of [`play_all_flows`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowMix {
    /// Every sign-up through the API connectors (a workforce tenant).
    Workforce,
    /// Every sign-up through the custom authentication extensions (an external tenant).
    External,
    /// Entra ID and Microsoft account people through the connectors, everyone else (Google,
    /// Facebook, email) through the extensions.
    Mixed,
}

impl std::str::FromStr for FlowMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "workforce" => Ok(FlowMix::Workforce),
            "external" => Ok(FlowMix::External),
            "mixed" => Ok(FlowMix::Mixed),
            other => Err(format!(
                "flow {other:?}: expected workforce, external or mixed"
            )),
        }
    }
}

/// Plays every sign-up in order through the flow `mix` picks for it ([`super::play`] or
/// [`play_external`] with `ext`), printing a transcript through `say`, and sums the outcomes.
///
/// # Errors
/// [`UserFlowError`] when the HTTP client cannot be built, devtenant is unreachable, or an
/// external sign-up meets a workforce tenant.
pub async fn play_all_flows(
    cfg: &PlayerConfig,
    ext: &ExtensionConfig,
    mix: FlowMix,
    people: &[SignUp],
    mut say: impl FnMut(String),
) -> Result<super::Summary, UserFlowError> {
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| UserFlowError::Client(e.to_string()))?;
    let mut summary = super::Summary::default();
    for (i, p) in people.iter().enumerate() {
        let external = match mix {
            FlowMix::Workforce => false,
            FlowMix::External => true,
            FlowMix::Mixed => !matches!(p.provider, Provider::EntraId | Provider::MicrosoftAccount),
        };
        let note = if p.note.is_empty() {
            String::new()
        } else {
            format!(" — {}", p.note)
        };
        let flow = if external {
            "extensions"
        } else {
            "API connectors"
        };
        say(format!(
            "[{}/{}] {} via {} ({flow}){note}",
            i + 1,
            people.len(),
            p.who(),
            p.provider
        ));
        let (outcome, retries) = if external {
            let r = play_external(&client, cfg, ext, p, &mut say).await?;
            (r.outcome, r.retries)
        } else {
            super::play(&client, cfg, p, &mut say).await?
        };
        summary.total += 1;
        summary.retries += retries;
        match outcome {
            Outcome::AccountCreated { .. } => summary.created += 1,
            Outcome::Blocked { .. } => summary.blocked += 1,
            Outcome::ValidationError { .. } => summary.validation_errors += 1,
            Outcome::SignedIn => summary.signed_in += 1,
            Outcome::SomethingWentWrong { .. } => summary.errors += 1,
        }
    }
    Ok(summary)
}
