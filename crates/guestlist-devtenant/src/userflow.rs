//! The self-service sign-up *user flow*, played against an approval API exactly as Entra does
//! (CONTRACTS.md §1; "Add a custom approval workflow to self-service sign-up", "Use API
//! connectors to customize and extend self-service sign-up"):
//!
//! 1. after the person authenticates with their identity provider, `POST
//!    {api}/connectors/check-approval-status` (step `postFederationSignup`);
//! 2. the attribute collection page (prefilled with claims a Continue returned);
//! 3. `POST {api}/connectors/request-approval` (step `postAttributeCollection`);
//! 4. on Continue, the account is created in the directory with the claims (overridden by the
//!    claims the Continue carried).
//!
//! Each call is an HTTP Basic `POST` of the flat claims JSON with `Content-Type:
//! application/json`; the answer must arrive within the timeout (20 s in Entra), else the call is
//! retried exactly once. Answers are parsed strictly ([`parse_answer`]); anything off-contract
//! ends the flow on Entra's generic error page. This parser is written from the contract on
//! purpose and shares no code with guestlist-core.
//!
//! [`generate`] makes realistic, reproducible sign-ups from a seed.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use rand::rngs::ChaCha12Rng;
use rand::seq::IndexedRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Map, Value, json};

/// The two connector steps (Graph names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// After federation, before the attribute page: "check approval status".
    PostFederationSignup,
    /// After the attribute page, before the user is created: "request approval".
    PostAttributeCollection,
}

impl Step {
    fn path(self) -> &'static str {
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

/// Where the person comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Google federation (`identities[0].issuer` = `google.com`).
    Google,
    /// Facebook federation (`facebook.com`).
    Facebook,
    /// Email one-time passcode (`mail`).
    EmailOtp,
    /// Another Entra ID tenant (no `identities` claim).
    EntraId,
    /// Microsoft account (no `identities` claim).
    MicrosoftAccount,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Google => "Google",
            Provider::Facebook => "Facebook",
            Provider::EmailOtp => "email one-time passcode",
            Provider::EntraId => "Microsoft Entra ID",
            Provider::MicrosoftAccount => "Microsoft account",
        })
    }
}

/// One sign-up attempt: what Entra sends at each step.
#[derive(Clone, Debug, PartialEq)]
pub struct SignUp {
    /// Identity provider.
    pub provider: Provider,
    /// Claims sent to check-approval-status (after federation).
    pub federation_claims: Map<String, Value>,
    /// Attributes the person types on the collection page (merged over the federation claims
    /// and sent to request-approval).
    pub collected: Map<String, Value>,
    /// Why this attempt is in the list (fixture name, "repeat of #3", …).
    pub note: String,
}

impl SignUp {
    /// Display name and email, for transcripts.
    pub fn who(&self) -> String {
        let name = self
            .collected
            .get("displayName")
            .or_else(|| self.federation_claims.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or("(no name)");
        let email = self
            .federation_claims
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or("?");
        format!("{name} <{email}>")
    }
}

/// What the signing-up person ends up seeing.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The account was created ("account created").
    AccountCreated {
        /// The new user's userPrincipalName (or the email when no directory is attached).
        upn: String,
    },
    /// The block page, with the connector's message and code.
    Blocked {
        /// Step that blocked.
        step: Step,
        /// `userMessage`.
        message: String,
        /// `code`, if any.
        code: Option<String>,
    },
    /// The attribute form again, with the validation message.
    ValidationError {
        /// `userMessage`.
        message: String,
    },
    /// The account already exists: Entra signs the person in; connectors are not called.
    SignedIn,
    /// Entra's generic error page ("Something went wrong"), with the reason devtenant found.
    SomethingWentWrong {
        /// Step that failed.
        step: Step,
        /// Contract violation, timeout or transport failure.
        reason: String,
    },
}

/// How to reach the approval API and the directory.
#[derive(Clone, Debug)]
pub struct PlayerConfig {
    /// Approval API base URL (no trailing slash needed).
    pub api: String,
    /// HTTP Basic username of the connectors.
    pub username: String,
    /// HTTP Basic password of the connectors.
    pub password: String,
    /// Per-call timeout (Entra: 20 s); on timeout the call is retried once.
    pub timeout: Duration,
    /// devtenant base URL whose directory receives created accounts (`POST
    /// /_devtenant/signups`); `None` only prints.
    pub tenant_url: Option<String>,
    /// Extensions app ID substituted for the docs' `<extensions-app-id>` placeholder.
    pub extensions_app_id: String,
}

/// Counts per outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Attempts played.
    pub total: usize,
    /// Accounts created.
    pub created: usize,
    /// Block pages shown.
    pub blocked: usize,
    /// Validation errors shown.
    pub validation_errors: usize,
    /// Existing accounts signed in.
    pub signed_in: usize,
    /// Generic error pages.
    pub errors: usize,
    /// Connector calls that timed out and were retried.
    pub retries: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary: {} sign-ups: {} created, {} blocked, {} validation errors, {} signed in, {} errors, {} retried calls",
            self.total,
            self.created,
            self.blocked,
            self.validation_errors,
            self.signed_in,
            self.errors,
            self.retries
        )
    }
}

/// Failures of the player itself (not of the approval API).
#[derive(Debug, thiserror::Error)]
pub enum UserFlowError {
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
    /// The devtenant directory could not be reached.
    #[error("directory at {0}: {1}")]
    Directory(String, String),
}

/// The result of one connector call (after at most one retry).
#[derive(Debug)]
pub struct CallResult {
    /// The parsed answer, or why it is unusable.
    pub answer: Result<ConnectorAction, String>,
    /// How many retries were made (0 or 1).
    pub retries: usize,
}

/// Calls one connector: Basic auth, JSON claims, timeout, one retry after a timeout or a
/// transport failure; then [`parse_answer`].
pub async fn call_connector(
    client: &reqwest::Client,
    cfg: &PlayerConfig,
    step: Step,
    claims: &Map<String, Value>,
) -> CallResult {
    let url = format!("{}/{}", cfg.api.trim_end_matches('/'), step.path());
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", cfg.username, cfg.password));
    let mut last_err = String::new();
    for attempt in 0..2 {
        let req = client
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(Value::Object(claims.clone()).to_string())
            .timeout(cfg.timeout);
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(body) => {
                        return CallResult {
                            answer: parse_answer(step, status, &body),
                            retries: attempt,
                        };
                    }
                    Err(e) => last_err = format!("reading the answer failed: {e}"),
                }
            }
            Err(e) if e.is_timeout() => {
                last_err = format!("no answer within {} ms", cfg.timeout.as_millis())
            }
            Err(e) => last_err = format!("transport error: {e}"),
        }
        tracing::warn!(%url, attempt, error = %last_err, "connector call failed");
    }
    CallResult {
        answer: Err(format!("{last_err} (after one retry)")),
        retries: 1,
    }
}

fn same_person(u: &Value, claims: &Map<String, Value>) -> bool {
    let fed: Vec<(String, String)> = claims
        .get("identities")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    Some((
                        i.get("issuer")?.as_str()?.to_lowercase(),
                        i.get("issuerAssignedId")?.as_str()?.to_lowercase(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ids = u
        .get("identities")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let by_identity = ids.iter().any(|i| {
        let k = (
            i.get("issuer")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase(),
            i.get("issuerAssignedId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase(),
        );
        fed.contains(&k)
    });
    let guest = u.get("userType").and_then(Value::as_str) == Some("Guest");
    by_identity
        || (guest
            && u.get("mail")
                .and_then(Value::as_str)
                .is_some_and(|m| m.eq_ignore_ascii_case(email)))
}

/// Plays one sign-up; `say` receives the transcript lines (what the person sees).
///
/// # Errors
/// [`UserFlowError::Directory`] when the devtenant directory cannot be reached.
pub async fn play(
    client: &reqwest::Client,
    cfg: &PlayerConfig,
    signup: &SignUp,
    say: &mut dyn FnMut(String),
) -> Result<(Outcome, usize), UserFlowError> {
    if let Some(t) = &cfg.tenant_url {
        let url = format!("{}/_devtenant/users", t.trim_end_matches('/'));
        let dir: Value = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| UserFlowError::Directory(t.clone(), e.to_string()))?
            .json()
            .await
            .map_err(|e| UserFlowError::Directory(t.clone(), e.to_string()))?;
        if dir
            .get("value")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|u| same_person(u, &signup.federation_claims)))
        {
            say(
                "  account exists: Entra signs the person in (sign-in never calls the connectors)"
                    .into(),
            );
            return Ok((Outcome::SignedIn, 0));
        }
    }
    let mut retries = 0;
    let r = call_connector(
        client,
        cfg,
        Step::PostFederationSignup,
        &signup.federation_claims,
    )
    .await;
    retries += r.retries;
    let prefill = match r.answer {
        Ok(ConnectorAction::Continue(c)) => {
            say(format!(
                "  {}: Continue{}",
                Step::PostFederationSignup,
                if c.is_empty() {
                    String::new()
                } else {
                    format!(" (prefill {})", Value::Object(c.clone()))
                }
            ));
            c
        }
        Ok(ConnectorAction::ShowBlockPage { user_message, code }) => {
            say(format!(
                "  page: \"{user_message}\"{}",
                code.as_deref()
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default()
            ));
            return Ok((
                Outcome::Blocked {
                    step: Step::PostFederationSignup,
                    message: user_message,
                    code,
                },
                retries,
            ));
        }
        Ok(ConnectorAction::ValidationError { .. }) => {
            // parse_answer refuses ValidationError at this step; kept total for safety.
            let reason = "ValidationError at postFederationSignup".to_string();
            say(format!("  page: Something went wrong. ({reason})"));
            return Ok((
                Outcome::SomethingWentWrong {
                    step: Step::PostFederationSignup,
                    reason,
                },
                retries,
            ));
        }
        Err(reason) => {
            say(format!(
                "  page: Something went wrong. ({}: {reason})",
                Step::PostFederationSignup
            ));
            return Ok((
                Outcome::SomethingWentWrong {
                    step: Step::PostFederationSignup,
                    reason,
                },
                retries,
            ));
        }
    };
    // The attribute collection page: IdP claims, prefilled values, then what the person typed.
    let mut claims = signup.federation_claims.clone();
    for (k, v) in prefill {
        claims.insert(k, v);
    }
    for (k, v) in &signup.collected {
        claims.insert(k.clone(), v.clone());
    }
    let r = call_connector(client, cfg, Step::PostAttributeCollection, &claims).await;
    retries += r.retries;
    match r.answer {
        Ok(ConnectorAction::Continue(overrides)) => {
            let mut final_claims = claims.clone();
            for (k, v) in overrides {
                // Responses may name custom attributes without the app ID.
                let key = match k.strip_prefix("extension_") {
                    Some(rest) if !rest.starts_with(&format!("{}_", cfg.extensions_app_id)) => {
                        format!("extension_{}_{rest}", cfg.extensions_app_id)
                    }
                    _ => k,
                };
                final_claims.insert(key, v);
            }
            let upn = match &cfg.tenant_url {
                Some(t) => {
                    let url = format!("{}/_devtenant/signups", t.trim_end_matches('/'));
                    let resp = client
                        .post(&url)
                        .json(&Value::Object(final_claims))
                        .send()
                        .await
                        .map_err(|e| UserFlowError::Directory(t.clone(), e.to_string()))?;
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    if !status.is_success() {
                        let reason = body
                            .get("error")
                            .and_then(Value::as_str)
                            .unwrap_or("directory refused the account")
                            .to_string();
                        say(format!(
                            "  page: Something went wrong. (creating the account: {reason})"
                        ));
                        return Ok((
                            Outcome::SomethingWentWrong {
                                step: Step::PostAttributeCollection,
                                reason,
                            },
                            retries,
                        ));
                    }
                    body.get("userPrincipalName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                }
                None => claims
                    .get("email")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            say(format!(
                "  {}: Continue → account created: {upn}",
                Step::PostAttributeCollection
            ));
            Ok((Outcome::AccountCreated { upn }, retries))
        }
        Ok(ConnectorAction::ShowBlockPage { user_message, code }) => {
            say(format!(
                "  page: \"{user_message}\"{}",
                code.as_deref()
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default()
            ));
            Ok((
                Outcome::Blocked {
                    step: Step::PostAttributeCollection,
                    message: user_message,
                    code,
                },
                retries,
            ))
        }
        Ok(ConnectorAction::ValidationError { user_message }) => {
            say(format!("  form shown again with: \"{user_message}\""));
            Ok((
                Outcome::ValidationError {
                    message: user_message,
                },
                retries,
            ))
        }
        Err(reason) => {
            say(format!(
                "  page: Something went wrong. ({}: {reason})",
                Step::PostAttributeCollection
            ));
            Ok((
                Outcome::SomethingWentWrong {
                    step: Step::PostAttributeCollection,
                    reason,
                },
                retries,
            ))
        }
    }
}

/// Plays every sign-up in order, printing a transcript through `say`, and sums the outcomes.
///
/// # Errors
/// [`UserFlowError`] when the HTTP client cannot be built or the directory is unreachable.
pub async fn play_all(
    cfg: &PlayerConfig,
    people: &[SignUp],
    mut say: impl FnMut(String),
) -> Result<Summary, UserFlowError> {
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| UserFlowError::Client(e.to_string()))?;
    let mut summary = Summary::default();
    for (i, p) in people.iter().enumerate() {
        let locale = p
            .federation_claims
            .get("ui_locales")
            .and_then(Value::as_str)
            .unwrap_or("-");
        say(format!(
            "[{}/{}] {} via {} ({locale}){}",
            i + 1,
            people.len(),
            p.who(),
            p.provider,
            if p.note.is_empty() {
                String::new()
            } else {
                format!(" — {}", p.note)
            }
        ));
        let (outcome, retries) = play(&client, cfg, p, &mut say).await?;
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

// ---------------------------------------------------------------------------------------------
// Generator

const FIX_CHECK_FB: &str =
    include_str!("../../../tests/fixtures/connector/check-status.request.facebook.json");
const FIX_REQ_FB: &str =
    include_str!("../../../tests/fixtures/connector/request-approval.request.facebook.json");
const FIX_REQ_AAD: &str =
    include_str!("../../../tests/fixtures/connector/request-approval.request.azuread.json");
const FIX_REQ_FB_MIN: &str = include_str!(
    "../../../tests/fixtures/connector/request-approval.request.facebook-minimal.json"
);

struct Locale {
    tag: &'static str,
    given: &'static [&'static str],
    family: &'static [&'static str],
    streets: &'static [&'static str],
    cities: &'static [(&'static str, &'static str, &'static str)],
    country: &'static str,
    titles: &'static [&'static str],
}

const LOCALES: &[Locale] = &[
    Locale {
        tag: "en-US",
        given: &[
            "John", "Emily", "Michael", "Sarah", "Chloë", "Renée", "David", "Zoë", "Noël", "Olivia",
        ],
        family: &[
            "Smith",
            "Johnson",
            "O'Brien",
            "Williams",
            "Brontë",
            "García",
            "Nguyen",
            "Miller",
            "Davis",
            "Zoë-Clarke",
        ],
        streets: &[
            "1000 Microsoft Way",
            "221 Baker Street",
            "42 Elm Avenue",
            "7 Harbor Drive",
            "1600 Pennsylvania Ave NW",
        ],
        cities: &[
            ("Seattle", "98052", "Washington"),
            ("Boston", "02108", "Massachusetts"),
            ("Austin", "73301", "Texas"),
            ("Portland", "97201", "Oregon"),
        ],
        country: "United States",
        titles: &[
            "Supplier",
            "Account Manager",
            "Consultant",
            "Field Engineer",
            "Procurement Lead",
        ],
    },
    Locale {
        tag: "fr-FR",
        given: &[
            "François",
            "Zoë",
            "Hélène",
            "Jérôme",
            "Anaïs",
            "Loïc",
            "Céline",
            "Benoît",
            "Maëlle",
            "Noël",
        ],
        family: &[
            "Dupont",
            "Lefèvre",
            "Müller",
            "Girard",
            "Chevalier",
            "Boulanger",
            "Mercier",
            "Faure",
            "Lemaître",
            "Béranger",
        ],
        streets: &[
            "12 rue de la Paix",
            "3 avenue des Champs-Élysées",
            "48 boulevard Saint-Germain",
            "5 place Bellecour",
        ],
        cities: &[
            ("Paris", "75002", "Île-de-France"),
            ("Lyon", "69002", "Auvergne-Rhône-Alpes"),
            ("Nantes", "44000", "Pays de la Loire"),
            ("Besançon", "25000", "Bourgogne-Franche-Comté"),
        ],
        country: "France",
        titles: &[
            "Fournisseur",
            "Chargée d'affaires",
            "Consultant",
            "Ingénieur études",
            "Responsable achats",
        ],
    },
    Locale {
        tag: "sv-SE",
        given: &[
            "Åsa", "Björn", "Märta", "Örjan", "Linnéa", "Göran", "Ängla", "Sören", "Karin", "Jöns",
        ],
        family: &[
            "Bergström",
            "Åkesson",
            "Öberg",
            "Lindqvist",
            "Sjöberg",
            "Håkansson",
            "Ström",
            "Nyström",
            "Ekström",
            "Johansson",
        ],
        streets: &[
            "Drottninggatan 12",
            "Kungsgatan 3",
            "Storgatan 44",
            "Östra Hamngatan 7",
        ],
        cities: &[
            ("Stockholm", "111 22", "Stockholms län"),
            ("Göteborg", "411 04", "Västra Götaland"),
            ("Malmö", "211 20", "Skåne"),
            ("Umeå", "903 26", "Västerbotten"),
        ],
        country: "Sweden",
        titles: &[
            "Leverantör",
            "Konsult",
            "Projektledare",
            "Inköpare",
            "Systemutvecklare",
        ],
    },
];

const COMPANIES: &[(&str, &str)] = &[
    ("Fabrikam", "fabrikam.com"),
    ("Northwind Traders", "northwindtraders.com"),
    ("Adventure Works", "adventure-works.com"),
    ("Tailspin Toys", "tailspintoys.com"),
    ("Wingtip Toys", "wingtiptoys.com"),
    ("Litware", "litwareinc.com"),
    ("Société Générale d'Études", "sge-etudes.fr"),
    ("Ångström Konsult AB", "angstromkonsult.se"),
];

fn parse_fixture(text: &str, app_id: &str) -> Map<String, Value> {
    let text = text.replace("<extensions-app-id>", app_id);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let m = match c {
                'à' | 'á' | 'â' | 'ä' | 'å' | 'Å' | 'Ä' | 'À' => 'a',
                'ç' => 'c',
                'é' | 'è' | 'ê' | 'ë' | 'É' => 'e',
                'í' | 'ï' | 'î' => 'i',
                'ö' | 'ô' | 'ó' | 'Ö' => 'o',
                'ü' | 'ú' | 'û' => 'u',
                '\'' | ' ' => return None,
                c => c.to_ascii_lowercase(),
            };
            Some(m)
        })
        .collect()
}

fn digits(rng: &mut ChaCha12Rng, n: usize) -> String {
    (0..n)
        .map(|i| {
            char::from(
                b'0' + if i == 0 {
                    rng.random_range(1..10)
                } else {
                    rng.random_range(0..10)
                },
            )
        })
        .collect()
}

fn pick<'a, T>(rng: &mut ChaCha12Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn person(rng: &mut ChaCha12Rng, app_id: &str) -> SignUp {
    let loc = pick(rng, LOCALES);
    let given = *pick(rng, loc.given);
    let family = *pick(rng, loc.family);
    let (company, company_domain) = *pick(rng, COMPANIES);
    let provider = *[
        Provider::Google,
        Provider::Google,
        Provider::Facebook,
        Provider::EmailOtp,
        Provider::EntraId,
        Provider::EntraId,
        Provider::MicrosoftAccount,
    ]
    .choose(rng)
    .unwrap_or(&Provider::Google);
    let local = format!(
        "{}.{}{}",
        ascii_fold(given),
        ascii_fold(family),
        if rng.random_bool(0.3) {
            digits(rng, 2)
        } else {
            String::new()
        }
    );
    let email = match provider {
        Provider::Google => format!("{local}@gmail.com"),
        Provider::Facebook => format!(
            "{local}@{}",
            pick(
                rng,
                &[
                    "outlook.com",
                    "yahoo.com",
                    "gmx.de",
                    "laposte.net",
                    "telia.se"
                ]
            )
        ),
        Provider::EmailOtp => format!(
            "{local}@{}",
            pick(
                rng,
                &["proton.me", "orange.fr", "bredband.net", "example.org"]
            )
        ),
        Provider::EntraId => format!("{local}@{company_domain}"),
        Provider::MicrosoftAccount => format!(
            "{local}@{}",
            pick(
                rng,
                &["outlook.com", "hotmail.com", "live.se", "hotmail.fr"]
            )
        ),
    };
    let display = format!("{given} {family}");
    let mut fed = Map::new();
    fed.insert("email".into(), json!(email));
    match provider {
        Provider::Google => {
            fed.insert("identities".into(), json!([{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": digits(rng, 21)}]));
        }
        Provider::Facebook => {
            fed.insert("identities".into(), json!([{"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": digits(rng, 16)}]));
        }
        Provider::EmailOtp => {
            fed.insert(
                "identities".into(),
                json!([{"signInType": "federated", "issuer": "mail", "issuerAssignedId": email}]),
            );
        }
        Provider::EntraId | Provider::MicrosoftAccount => {}
    }
    // Email OTP has no name from an identity provider.
    if provider != Provider::EmailOtp {
        fed.insert("displayName".into(), json!(display));
        fed.insert("givenName".into(), json!(given));
        fed.insert("surname".into(), json!(family));
    }
    fed.insert("ui_locales".into(), json!(loc.tag));
    let (city, postal, state) = *pick(rng, loc.cities);
    let mut col = Map::new();
    col.insert("displayName".into(), json!(display));
    col.insert("givenName".into(), json!(given));
    col.insert("surname".into(), json!(family));
    col.insert("jobTitle".into(), json!(pick(rng, loc.titles)));
    col.insert("companyName".into(), json!(company));
    if rng.random_bool(0.8) {
        col.insert("streetAddress".into(), json!(pick(rng, loc.streets)));
        col.insert("city".into(), json!(city));
        col.insert("postalCode".into(), json!(postal));
        col.insert("state".into(), json!(state));
        col.insert("country".into(), json!(loc.country));
    }
    if rng.random_bool(0.7) {
        col.insert(
            format!("extension_{app_id}_SponsorEmail"),
            json!(format!(
                "{}@contoso.com",
                pick(rng, &["ada", "grace", "bob", "alan"])
            )),
        );
    }
    if rng.random_bool(0.5) {
        col.insert(
            format!("extension_{app_id}_Reason"),
            json!(pick(
                rng,
                &[
                    "Project Orion supplier portal",
                    "Accès au portail partenaires",
                    "Tillgång till leverantörsportalen",
                    "Audit 2025"
                ]
            )),
        );
    }
    SignUp {
        provider,
        federation_claims: fed,
        collected: col,
        note: String::new(),
    }
}

/// The seed documents' own examples, in order: the Facebook check-status + request-approval
/// pair (John Smith), the Entra ID request, and the minimal Facebook request (the docs' other
/// John Smith, `johnsmith@outlook.com`). `<extensions-app-id>` is replaced by `app_id`, as a real
/// tenant sends its real app ID.
pub fn fixtures(app_id: &str) -> Vec<SignUp> {
    let check = parse_fixture(FIX_CHECK_FB, app_id);
    let req = parse_fixture(FIX_REQ_FB, app_id);
    let aad = parse_fixture(FIX_REQ_AAD, app_id);
    let min = parse_fixture(FIX_REQ_FB_MIN, app_id);
    let fed_of = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| {
                [
                    "email",
                    "identities",
                    "displayName",
                    "givenName",
                    "surname",
                    "lastName",
                    "ui_locales",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    vec![
        SignUp {
            provider: Provider::Facebook,
            federation_claims: check,
            collected: req,
            note: "docs example (Facebook)".into(),
        },
        SignUp {
            provider: Provider::EntraId,
            federation_claims: fed_of(&aad),
            collected: aad,
            note: "docs example (Entra ID)".into(),
        },
        SignUp {
            provider: Provider::Facebook,
            federation_claims: fed_of(&min),
            collected: min,
            note: "docs example (Facebook, minimal)".into(),
        },
    ]
}

/// `count` reproducible sign-up attempts from `seed`: the [`fixtures`] first, then generated
/// people (Google, Facebook, email OTP, Entra ID, Microsoft account; en-US / fr-FR / sv-SE names
/// and addresses with diacritics; companies; job titles; `extension_{app}_SponsorEmail` and
/// `_Reason`), with about one attempt in six repeating an earlier person (someone whose request
/// is pending or denied tries again). Uses [`crate::defaults::EXTENSIONS_APP_ID`]. The
/// generator is ChaCha12 by name, not rand's `StdRng` (whose algorithm may change between rand
/// releases): same seed, same people.
pub fn generate(seed: u64, count: usize) -> Vec<SignUp> {
    generate_with(seed, count, crate::defaults::EXTENSIONS_APP_ID)
}

/// [`generate`] with an explicit extensions app ID.
pub fn generate_with(seed: u64, count: usize, app_id: &str) -> Vec<SignUp> {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let mut out: Vec<SignUp> = fixtures(app_id).into_iter().take(count).collect();
    while out.len() < count {
        if out.len() >= 4 && rng.random_bool(1.0 / 6.0) {
            let i = rng.random_range(0..out.len());
            let mut again = out[i].clone();
            again.note = format!("tries again (same person as #{})", i + 1);
            out.push(again);
        } else {
            out.push(person(&mut rng, app_id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn generator_is_reproducible_and_varied() {
        let a = generate(7, 60);
        assert_eq!(a, generate(7, 60));
        assert_ne!(a, generate(8, 60));
        assert_eq!(a[0].note, "docs example (Facebook)");
        for p in [
            Provider::Google,
            Provider::Facebook,
            Provider::EmailOtp,
            Provider::EntraId,
            Provider::MicrosoftAccount,
        ] {
            assert!(a.iter().any(|s| s.provider == p), "{p} missing");
        }
        assert!(a.iter().any(|s| s.note.starts_with("tries again")));
        let text = format!("{a:?}");
        assert!(["Å", "ö", "é", "ë"].iter().any(|c| text.contains(c)));
        for s in &a {
            let has_ids = s.federation_claims.contains_key("identities");
            assert_eq!(
                has_ids,
                !matches!(s.provider, Provider::EntraId | Provider::MicrosoftAccount),
                "{s:?}"
            );
            for k in s.collected.keys().filter(|k| k.starts_with("extension_")) {
                assert!(
                    k.starts_with(&format!(
                        "extension_{}_",
                        crate::defaults::EXTENSIONS_APP_ID
                    )),
                    "{k}"
                );
            }
        }
    }
}
