//! Server-side notifications, part 1: the `[notifications]` configuration and the webhook.
//!
//! With `notifications.webhook_url` set, every `request.created` event is POSTed there as JSON
//! shaped by `notifications.template`: `json` (Guestlist's own body), `slack` (a Slack
//! incoming-webhook message, `{"text": …}`,
//! <https://api.slack.com/messaging/webhooks>) or `teams` (a Microsoft Teams Workflows
//! incoming-webhook message carrying an Adaptive Card,
//! <https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook>).
//! Deliveries run in background tasks that follow the event broadcast, so the connector answer
//! never waits for them; a failed delivery (network, 408, 429, 5xx) is retried with exponential
//! backoff (`Retry-After` honoured, capped), other 4xx answers are not. Reminders of requests
//! pending too long use the same sender ([`crate::reminders`]). Owns no database writes.
//!
//! Text that comes from a sign-up's claims (name, e-mail domain, identity provider) is
//! untrusted (issue 10 §4): control characters become spaces, it is cut to [`MAX_FIELD_CHARS`]
//! characters (with `…`), and escaped for the target format. Slack mrkdwn gets `&`, `<`, `>` as
//! entities (so no `<!channel>`, `<@user>` or `<url|text>`); Teams Adaptive Card markdown gets
//! its link, emphasis, list and heading characters backslash-escaped; both get every `.` as
//! `․` (U+2024 ONE DOT LEADER) and `:` as `∶` (U+2236 RATIO), so no domain or URL in a claim is
//! ever auto-linked. The `json` template is structured data and carries the values as they
//! are (cut to the same length). Only the configured `notifications.link` is rendered as a
//! link. The webhook URL (a secret) is never logged: errors are logged without their URL.
//!
//! A new request's message also carries the desktop app's deep link to that request,
//! `guestlist://request/<id>` ([`guestlist_core::deeplink`]), next to `notifications.link`:
//! Slack's "Open in the app" link, a Teams `Action.OpenUrl` button, and `deepLink` in the JSON
//! (also on every request summary, reminders included). The id is the server's UUID, never
//! claim text.

use std::sync::Arc;
use std::time::Duration;

use guestlist_core::deeplink::request_link;
use guestlist_core::model::{ApprovalRequest, Event};
use guestlist_core::provider::{provider_key, provider_label};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::config::Secret;

/// The message shape of the webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Template {
    /// Guestlist's own JSON body (`type`, `text`, `request` / `requests`).
    #[default]
    Json,
    /// A Slack incoming-webhook message.
    Slack,
    /// A Microsoft Teams incoming-webhook message with an Adaptive Card.
    Teams,
}

/// `[notifications]`: the webhook and reminders. Everything is off by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// The incoming-webhook URL (it usually embeds a secret: `Debug` redacts it). `None`: no
    /// webhook, no reminders.
    pub webhook_url: Option<Secret>,
    /// The message shape: `json`, `slack` or `teams`.
    pub template: Template,
    /// Retries after a failed delivery (so at most `1 + retries` attempts).
    pub retries: u32,
    /// The first retry delay in milliseconds; doubled at each retry (capped at 5 minutes).
    pub retry_initial_ms: u64,
    /// Timeout of one delivery attempt, in seconds.
    pub timeout_seconds: u64,
    /// Remind about requests pending longer than this many hours; `None`: no reminders.
    pub remind_after_hours: Option<u64>,
    /// How often the reminder check runs, in seconds. A request is reminded about at most once
    /// per `remind_after_hours`, also across restarts (the record is in the database).
    pub reminder_interval_seconds: u64,
    /// A link to put in messages (e.g. where approvers get the desktop app).
    pub link: Option<String>,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            webhook_url: None,
            template: Template::Json,
            retries: 5,
            retry_initial_ms: 1000,
            timeout_seconds: 10,
            remind_after_hours: None,
            reminder_interval_seconds: 900,
            link: None,
        }
    }
}

/// The longest retry delay.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// Longest text taken from a claim into a message, in characters (longer is cut, with `…`).
pub const MAX_FIELD_CHARS: usize = 100;

/// Sends webhook messages (cheap to clone).
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    url: Secret,
    config: Arc<Notifications>,
}

/// `s` with control characters as spaces, cut to [`MAX_FIELD_CHARS`] characters.
pub fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FIELD_CHARS + 1)
        .collect();
    if out.chars().count() > MAX_FIELD_CHARS {
        out = out.chars().take(MAX_FIELD_CHARS - 1).collect();
        out.push('…');
    }
    out
}

/// No auto-link: `.` and `:` as look-alikes that no linkifier takes for a URL or domain.
fn defang(c: char, out: &mut String) -> bool {
    match c {
        '.' => out.push('\u{2024}'),
        ':' => out.push('\u{2236}'),
        _ => return false,
    }
    true
}

/// Untrusted text for Slack mrkdwn (<https://api.slack.com/reference/surfaces/formatting#escaping>).
pub fn slack_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clip(s).chars() {
        if defang(c, &mut out) {
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Untrusted text for Adaptive Card `TextBlock`/`FactSet` markdown
/// (<https://learn.microsoft.com/adaptive-cards/authoring-cards/text-features>): the characters
/// of links, emphasis, lists and headings are backslash-escaped.
pub fn teams_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clip(s).chars() {
        if defang(c, &mut out) {
            continue;
        }
        if matches!(
            c,
            '\\' | '['
                | ']'
                | '('
                | ')'
                | '*'
                | '_'
                | '~'
                | '`'
                | '#'
                | '+'
                | '-'
                | '!'
                | '<'
                | '>'
                | '|'
                | '{'
                | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn raw_name(r: &ApprovalRequest) -> &str {
    r.claims
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&r.key.email)
}

fn raw_domain(r: &ApprovalRequest) -> &str {
    r.key.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// The provider's one human label ([`guestlist_core::provider`]): the same words the desktop
/// app and its notifications use, so a Microsoft account is never shown as "Entra ID".
fn raw_provider(r: &ApprovalRequest) -> String {
    provider_label(&provider_key(&r.key.issuer, &r.key.email)).to_owned()
}

fn summary(r: &ApprovalRequest) -> Value {
    json!({
        "id": r.id,
        "displayName": clip(raw_name(r)),
        "email": clip(&r.key.email),
        "identityProvider": clip(&provider_key(&r.key.issuer, &r.key.email)),
        "createdAt": r.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "attempts": r.attempts,
        "deepLink": request_link(r.id),
    })
}

impl Sender {
    /// A sender for `config`, or `None` when no webhook is configured.
    pub fn new(config: &Notifications) -> Option<Sender> {
        let url = config.webhook_url.clone()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds.max(1)))
            .user_agent(concat!("guestlist-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Some(Sender {
            http,
            url,
            config: Arc::new(config.clone()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Notifications {
        &self.config
    }

    /// Untrusted text for the configured template (see the module docs).
    fn esc(&self, s: &str) -> String {
        match self.config.template {
            Template::Json => clip(s),
            Template::Slack => slack_text(s),
            Template::Teams => teams_text(s),
        }
    }

    /// The message for a new request, in the configured template.
    pub fn created_message(&self, r: &ApprovalRequest) -> Value {
        let (name, domain, provider) = (
            self.esc(raw_name(r)),
            self.esc(raw_domain(r)),
            self.esc(&raw_provider(r)),
        );
        let title = format!("New guest request: {name}");
        let text = format!(
            "{name} (@{domain}, {provider}) asks to join as a guest and waits for approval in Guestlist."
        );
        let facts = vec![
            ("Name", name),
            ("E-mail domain", domain),
            ("Identity provider", provider),
            ("Sign-up attempts", r.attempts.to_string()),
        ];
        self.message(
            "request.created",
            &title,
            &text,
            &facts,
            Some(request_link(r.id)),
            json!({ "request": summary(r) }),
        )
    }

    /// The reminder that `count` requests are pending longer than `hours` hours, listing
    /// `oldest` (the oldest few of them, [`crate::reminders::LISTED`] at most), in the
    /// configured template. Its size is bounded by the length of `oldest`, whatever `count`.
    pub fn reminder_message(&self, count: u64, oldest: &[ApprovalRequest], hours: u64) -> Value {
        let title = match count {
            1 => format!("1 guest request pending for more than {hours} h"),
            n => format!("{n} guest requests pending for more than {hours} h"),
        };
        let names: Vec<String> = oldest.iter().map(|r| self.esc(raw_name(r))).collect();
        let more = count.saturating_sub(names.len() as u64);
        let text = if more > 0 {
            format!("Waiting: {} and {more} more.", names.join(", "))
        } else {
            format!("Waiting: {}.", names.join(", "))
        };
        let facts: Vec<(&str, String)> = oldest
            .iter()
            .map(|r| {
                (
                    "Waiting",
                    format!(
                        "{} (@{}, {})",
                        self.esc(raw_name(r)),
                        self.esc(raw_domain(r)),
                        self.esc(&raw_provider(r))
                    ),
                )
            })
            .collect();
        self.message(
            "requests.reminder",
            &title,
            &text,
            &facts,
            None,
            json!({
                "pendingLongerThanHours": hours,
                "count": count,
                "requests": oldest.iter().map(summary).collect::<Vec<_>>(),
            }),
        )
    }

    /// The escalation reminder (issue 14 §2, type `requests.escalated`): `count` requests of
    /// route `route` were pending longer than its `escalate_after_hours` (`hours`) and are now
    /// also seen by `fallback_role`; lists `escalated` (the oldest few, [`crate::reminders::LISTED`]
    /// at most) as the pending reminder does ([`Sender::reminder_message`]), in the configured
    /// template, bounded by the length of `escalated`.
    ///
    /// `key` is the message's idempotency key ([`crate::escalation::remind`]): the JSON
    /// template carries it as `idempotencyKey`, and every template's POST as the
    /// `Idempotency-Key` header ([`Sender::deliver_keyed`]).
    pub fn escalation_message(
        &self,
        route: &str,
        fallback_role: &str,
        hours: f64,
        count: u64,
        escalated: &[ApprovalRequest],
        key: &str,
    ) -> Value {
        let (route_s, role_s) = (self.esc(route), self.esc(fallback_role));
        let what =
            format!("escalated to {role_s} (route {route_s}, pending for more than {hours} h)");
        let title = match count {
            1 => format!("1 guest request {what}"),
            n => format!("{n} guest requests {what}"),
        };
        let names: Vec<String> = escalated.iter().map(|r| self.esc(raw_name(r))).collect();
        let more = count.saturating_sub(names.len() as u64);
        let text = match more {
            0 => format!("Escalated: {}.", names.join(", ")),
            _ => format!("Escalated: {} and {more} more.", names.join(", ")),
        };
        let mut facts = vec![("Route", route_s), ("Fallback role", role_s)];
        facts.extend(escalated.iter().map(|r| {
            let who = self.esc(raw_name(r));
            let (domain, provider) = (self.esc(raw_domain(r)), self.esc(&raw_provider(r)));
            ("Escalated", format!("{who} (@{domain}, {provider})"))
        }));
        self.message(
            "requests.escalated",
            &title,
            &text,
            &facts,
            None,
            json!({
                "route": clip(route),
                "fallbackRole": clip(fallback_role),
                "escalateAfterHours": hours,
                "count": count,
                "requests": escalated.iter().map(summary).collect::<Vec<_>>(),
                "idempotencyKey": key,
            }),
        )
    }

    fn message(
        &self,
        kind: &str,
        title: &str,
        text: &str,
        facts: &[(&str, String)],
        deep_link: Option<String>,
        extra: Value,
    ) -> Value {
        let link = self.config.link.clone();
        match self.config.template {
            Template::Json => {
                let mut v = json!({ "type": kind, "title": title, "text": text, "link": link });
                if let (Some(o), Some(d)) = (v.as_object_mut(), &deep_link) {
                    o.insert("deepLink".into(), json!(d));
                }
                if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
                    o.extend(e);
                }
                v
            }
            Template::Slack => {
                let mut tail = deep_link
                    .map(|d| format!(" <{d}|Open in the app>"))
                    .unwrap_or_default();
                if let Some(l) = link {
                    tail.push_str(&format!(" <{l}|Open Guestlist>"));
                }
                json!({ "text": format!("*{title}*\n{text}{tail}") })
            }
            Template::Teams => {
                let mut body = vec![
                    json!({"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true}),
                    json!({"type": "TextBlock", "text": text, "wrap": true}),
                    json!({"type": "FactSet", "facts": facts.iter().map(|(t, v)| json!({"title": t, "value": v})).collect::<Vec<_>>()}),
                ];
                let mut actions = Vec::new();
                if let Some(d) = deep_link {
                    actions.push(
                        json!({"type": "Action.OpenUrl", "title": "Open in the app", "url": d}),
                    );
                }
                if let Some(l) = link {
                    actions.push(
                        json!({"type": "Action.OpenUrl", "title": "Open Guestlist", "url": l}),
                    );
                }
                if !actions.is_empty() {
                    body.push(json!({"type": "ActionSet", "actions": actions}));
                }
                json!({
                    "type": "message",
                    "attachments": [{
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": null,
                        "content": {
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard",
                            "version": "1.4",
                            "body": body
                        }
                    }]
                })
            }
        }
    }

    /// Delivers `body`, retrying as the module docs say. Returns whether it was accepted.
    pub async fn deliver(&self, body: &Value) -> bool {
        self.deliver_keyed(body, None).await == Delivery::Accepted
    }

    /// [`Sender::deliver`] with an `Idempotency-Key` request header when `key` is given (the
    /// header of the IETF HTTPAPI draft `draft-ietf-httpapi-idempotency-key-header`: a receiver
    /// that saw the key already may drop the message), telling a refusal from giving up.
    pub async fn deliver_keyed(&self, body: &Value, key: Option<&str>) -> Delivery {
        let mut delay = Duration::from_millis(self.config.retry_initial_ms);
        for attempt in 0..=self.config.retries {
            let mut post = self.http.post(&self.url.0).json(body);
            if let Some(key) = key {
                post = post.header("Idempotency-Key", key);
            }
            let wait = match post.send().await {
                Ok(resp) if resp.status().is_success() => return Delivery::Accepted,
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if !(status == 408 || status == 429 || status >= 500) {
                        tracing::warn!(status, "webhook refused the message; not retried");
                        return Delivery::Refused;
                    }
                    let after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    tracing::info!(status, attempt, "webhook delivery failed; will retry");
                    after.unwrap_or(delay)
                }
                Err(e) => {
                    // The URL embeds the webhook's secret: never log it.
                    let e = e.without_url();
                    tracing::info!(error = %e, attempt, "webhook unreachable; will retry");
                    delay
                }
            };
            if attempt == self.config.retries {
                break;
            }
            tokio::time::sleep(wait.min(MAX_RETRY_DELAY)).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
        tracing::warn!(
            retries = self.config.retries,
            "webhook delivery abandoned after retries"
        );
        Delivery::GaveUp
    }
}

/// How one webhook delivery ended ([`Sender::deliver_keyed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A 2xx answer.
    Accepted,
    /// A 4xx answer other than 408 and 429: the receiver refused this message for good.
    Refused,
    /// Unreachable, or 408/429/5xx after every retry: worth trying again later.
    GaveUp,
}

/// Starts the webhook task when configured: it follows `events` and sends each
/// `request.created` in its own background task (so one slow or failing delivery delays
/// nothing else); a `request.erased` event aborts the delivery of that request's message if it
/// is still in flight or waiting to retry. Ends when the server's event sender is dropped.
pub fn start(config: &Notifications, mut events: broadcast::Receiver<Event>) {
    let Some(sender) = Sender::new(config) else {
        return;
    };
    tokio::spawn(async move {
        // Deliveries in flight (or waiting to retry), by request: an erased request's message is
        // dropped, never sent after the erasure (issue 12).
        let mut in_flight: std::collections::HashMap<uuid::Uuid, tokio::task::AbortHandle> =
            std::collections::HashMap::new();
        loop {
            match events.recv().await {
                Ok(Event {
                    kind,
                    request: Some(request),
                    ..
                }) if kind == "request.created" => {
                    let s = sender.clone();
                    let body = s.created_message(&request);
                    let task = tokio::spawn(async move { s.deliver(&body).await });
                    in_flight.retain(|_, t| !t.is_finished());
                    in_flight.insert(request.id, task.abort_handle());
                }
                Ok(Event {
                    kind, request_id, ..
                }) if kind == guestlist_core::model::EVENT_REQUEST_ERASED => {
                    if let Some(task) = in_flight.remove(&request_id) {
                        task.abort();
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "webhook fell behind; events not announced");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlist_core::model::{IdentityKey, RequestState};

    fn request() -> ApprovalRequest {
        let claims = json!({"displayName": "Ada Lovelace", "email": "ada@fabrikam.com"});
        ApprovalRequest {
            id: uuid::Uuid::from_u128(1),
            key: IdentityKey {
                email: "ada@fabrikam.com".into(),
                issuer: "google.com".into(),
                issuer_assigned_id: "g-1".into(),
            },
            state: RequestState::Pending,
            version: 1,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            decided_by: None,
            attempts: 1,
            flow: Default::default(),
            completed_at: None,
            escalated_at: None,
            claims: claims.as_object().cloned().unwrap_or_default(),
            grants: Vec::new(),
            route: None,
            approvals_required: 1,
            approvals: Vec::new(),
        }
    }

    fn sender(template: Template) -> Sender {
        Sender::new(&Notifications {
            webhook_url: Some(Secret("http://127.0.0.1:9/hook".into())),
            template,
            link: Some("https://guestlist.contoso.com".into()),
            ..Notifications::default()
        })
        .unwrap()
    }

    #[test]
    fn notifications_load_from_toml_and_reject_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        let base = "[connector]\nusername = \"c\"\npassword = \"p-long-enough-secret\"\n";
        std::fs::write(
            &file,
            format!(
                "{base}[notifications]\nwebhook_url = \"https://hooks.slack.com/services/T/B/x\"\ntemplate = \"slack\"\nremind_after_hours = 24\n"
            ),
        )
        .unwrap();
        let c = crate::Config::load(Some(&file)).unwrap();
        assert_eq!(c.notifications.template, Template::Slack);
        assert_eq!(c.notifications.remind_after_hours, Some(24));
        assert_eq!(c.notifications.retries, 5, "defaults fill the rest");
        std::fs::write(
            &file,
            format!("{base}[notifications]\ntemplat = \"teams\"\n"),
        )
        .unwrap();
        let e = crate::Config::load(Some(&file)).unwrap_err().to_string();
        assert!(e.contains("templat"), "{e}");
        std::fs::write(
            &file,
            format!("{base}[notifications]\nwebhook_url = \"ftp://x\"\n"),
        )
        .unwrap();
        let e = crate::Config::load(Some(&file)).unwrap_err().to_string();
        assert!(e.contains("notifications.webhook_url"), "{e}");
    }

    #[test]
    fn templates_shape_the_new_request_message() {
        let r = request();
        let j = sender(Template::Json).created_message(&r);
        assert_eq!(j["type"], "request.created");
        assert_eq!(j["request"]["email"], "ada@fabrikam.com");
        assert_eq!(j["request"]["identityProvider"], "google.com");
        let s = sender(Template::Slack).created_message(&r);
        let text = s["text"].as_str().unwrap();
        assert!(
            text.starts_with("*New guest request: Ada Lovelace*"),
            "{text}"
        );
        assert!(text.contains("@fabrikam\u{2024}com, Google)"), "{text}");
        assert!(
            text.ends_with("<https://guestlist.contoso.com|Open Guestlist>"),
            "{text}"
        );
        let t = sender(Template::Teams).created_message(&r);
        assert_eq!(t["type"], "message");
        let card = &t["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(
            card["content"]["body"][2]["facts"][1]["value"],
            "fabrikam\u{2024}com"
        );
        assert_eq!(
            card["content"]["body"][3]["actions"][1]["url"],
            "https://guestlist.contoso.com"
        );
        assert!(
            Sender::new(&Notifications::default()).is_none(),
            "off by default"
        );
        // A personal Microsoft account (no `identities`, hotmail) is labelled as such, as in
        // the desktop app, never as a managed "Entra ID" account.
        let mut msa = request();
        msa.key.email = "linnea@hotmail.com".into();
        msa.key.issuer = String::new();
        let j = sender(Template::Json).created_message(&msa);
        assert_eq!(j["request"]["identityProvider"], "microsoftaccount");
        let s = sender(Template::Slack).created_message(&msa);
        let text = s["text"].as_str().unwrap();
        assert!(text.contains(", Microsoft account)"), "{text}");
        assert_eq!(
            format!("{:?}", sender(Template::Json).config().webhook_url),
            "Some([redacted])"
        );
    }

    #[test]
    fn every_template_links_the_request_in_the_desktop_app() {
        let r = request();
        let deep = "guestlist://request/00000000-0000-0000-0000-000000000001";
        assert_eq!(
            guestlist_core::deeplink::parse_request_link(deep),
            Some(r.id),
            "the desktop app accepts the link the server writes"
        );
        let j = sender(Template::Json).created_message(&r);
        assert_eq!(j["deepLink"], deep);
        assert_eq!(j["request"]["deepLink"], deep);
        assert_eq!(j["link"], "https://guestlist.contoso.com");
        let s = sender(Template::Slack).created_message(&r);
        let text = s["text"].as_str().unwrap();
        assert!(
            text.ends_with(&format!(
                " <{deep}|Open in the app> <https://guestlist.contoso.com|Open Guestlist>"
            )),
            "{text}"
        );
        let t = sender(Template::Teams).created_message(&r);
        let actions = &t["attachments"][0]["content"]["body"][3]["actions"];
        assert_eq!(actions[0]["type"], "Action.OpenUrl");
        assert_eq!(actions[0]["url"], deep);
        assert_eq!(actions[1]["url"], "https://guestlist.contoso.com");
        // Without `notifications.link` the deep link is still there, alone.
        let bare = Sender::new(&Notifications {
            webhook_url: Some(Secret("http://127.0.0.1:9/hook".into())),
            template: Template::Teams,
            ..Notifications::default()
        })
        .unwrap()
        .created_message(&r);
        let actions = &bare["attachments"][0]["content"]["body"][3]["actions"];
        assert_eq!(actions.as_array().map(Vec::len), Some(1));
        assert_eq!(actions[0]["url"], deep);
        // A reminder lists several requests: each summary carries its own link, and the
        // message as a whole has none.
        let rem = sender(Template::Json).reminder_message(1, &[r], 24);
        assert_eq!(rem["requests"][0]["deepLink"], deep);
        assert!(rem.get("deepLink").is_none());
    }
}
