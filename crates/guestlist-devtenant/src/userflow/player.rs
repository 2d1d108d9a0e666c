//! The user flow player: one sign-up through `postFederationSignup` (check-approval-status),
//! the attribute page and `postAttributeCollection` (request-approval), then account creation
//! in the devtenant directory, as Entra runs it (CONTRACTS.md §1; "Add a custom approval
//! workflow to self-service sign-up"): HTTP Basic, the Entra timeout, one retry.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::answer::{ConnectorAction, Step, parse_answer};
use super::people::SignUp;

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
