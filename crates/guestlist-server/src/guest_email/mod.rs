//! Telling the guest (issue 14 §5): an e-mail to the person who signed up when an approver
//! approves (`on_approve`) or denies (`on_deny`) their request, sent over SMTP
//! ([`smtp`]) in the language of their sign-up ([`render`]).
//!
//! **Outbox.** The store's event log is the outbox: every decision is already a committed
//! `request.decided` event ([`Backend::events_after`](crate::store::Backend::events_after)).
//! The job reads events after its durable cursor ([`Backend::job_cursor`](crate::store::Backend::job_cursor),
//! job name [`JOB`]), sends at most one e-mail per event, and stores the event's `seq` as the
//! new cursor only after the SMTP server accepted the message — or refused it for good (a 5xx
//! reply or an unusable address, logged and counted in `guestlist_guest_email_failed_total`).
//! A crash or restart therefore resumes at the first event not yet handled: nothing is lost,
//! and a message is sent twice only if the process dies between the server's acceptance and
//! the cursor's commit. A transient failure (connection refused, timeout, 4xx) is retried with
//! backoff ([`guestlist_core::retry::Backoff`]), then again at the next tick, without moving
//! the cursor. When first enabled the cursor starts at the latest event: decisions made before
//! are not e-mailed.
//!
//! **Once cluster-wide.** Each run holds the job lock [`JOB`]
//! ([`Backend::try_job_lock`](crate::store::Backend::try_job_lock)): with several replicas on
//! one PostgreSQL database, one sends. **Never blocking a connector answer**: the job is its own
//! task, woken by the server's event broadcast or every `poll_interval_seconds`; connector calls
//! never wait for it. Bounded: `batch_size` events per read, one SMTP connection at a time,
//! `timeout_seconds` per SMTP command.
//!
//! **External tenants** (issue 17): the approval of an external-tenant request sends the
//! "finish signing up" e-mail ([`Outcome::FinishSignUp`]) with the application's sign-in link
//! (`sign_in_urls` by `client_id`, else `sign_in_url`), whatever the identity provider: no
//! account exists yet, and Entra sends no invitation.
//!
//! **Who is e-mailed.** Only decisions by an approver (`decidedBy.kind = "user"`); policy
//! decisions were shown on the sign-up page itself, and expiry is not a decision. An approval
//! is skipped for requests from Entra ID or a Microsoft account (no federated identity): their
//! account comes from `POST /invitations` ([`guestlist_core::plan`]), whose own invitation
//! e-mail Entra sends. An erased request is never e-mailed (its events are deleted with it, and
//! the request is read again just before sending), nor a decision already undone (a denial
//! since reopened). A denial that also denied the same person's other pending requests (issue
//! 10 §6) sends one e-mail for the batch.

pub mod render;
pub mod smtp;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use guestlist_core::model::{ApprovalRequest, Event, Flow, ProvisionedBy, RequestState};
use guestlist_core::retry::Backoff;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::config::Secret;
use crate::store::{Store, StoreError};
use render::{Outcome, TemplateOverride, Values};
use smtp::{Mailer, SendError, SmtpUrl};

/// The job's name: its cluster-wide lock and its cursor.
pub const JOB: &str = "guest_email";

/// `[guest_email]`: see the README's configuration table. Off while `smtp_url` is unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuestEmailConfig {
    /// `smtp://host[:port]` (STARTTLS required), `smtps://host[:port]` (implicit TLS), or
    /// `smtp://host:port?tls=none` (tests only); unset: no e-mails ([`smtp::SmtpUrl`]).
    pub smtp_url: Option<String>,
    /// The `From` mailbox, `Name <address>` or `address`; required with `smtp_url`.
    pub from: Option<String>,
    /// SMTP user name (with `smtp_password`); unset: no authentication.
    pub smtp_username: Option<String>,
    /// SMTP password, or from the file named by `…_SMTP_PASSWORD_FILE`.
    pub smtp_password: Option<Secret>,
    /// E-mail the guest when an approver approves (Entra ID guests excepted).
    pub on_approve: bool,
    /// E-mail the guest when an approver denies.
    pub on_deny: bool,
    /// `{organisation}` in the templates.
    pub organisation: String,
    /// `{application}` for a sign-up whose `client_id` is not in `applications`.
    pub application: String,
    /// `{application}` by the sign-up's `client_id` (the user flow's application).
    pub applications: BTreeMap<String, String>,
    /// `{sign_in_link}` of an external tenant's approval e-mail (issue 17) for a sign-up whose
    /// `client_id` is not in `sign_in_urls`: the application's sign-in URL (`https://…`), where
    /// the approved person signs up again to finish. Unset: the e-mail carries no link.
    pub sign_in_url: Option<String>,
    /// `{sign_in_link}` by the sign-up's `client_id` (the application's app id, which the
    /// extension calls carry as `clientServicePrincipal.appId`).
    pub sign_in_urls: BTreeMap<String, String>,
    /// Admin overrides of the texts, by language (`en`, `fr`, `sv`, or another one).
    pub templates: BTreeMap<String, TemplateOverride>,
    /// Events read from the store at a time.
    pub batch_size: usize,
    /// How often the job looks for new decisions when no live event woke it (seconds).
    pub poll_interval_seconds: u64,
    /// Timeout of each SMTP command (connect, TLS, each reply), seconds.
    pub timeout_seconds: u64,
    /// First retry delay after a transient failure, doubled each time (≤ 5 min), in ms.
    pub retry_initial_ms: u64,
    /// Attempts of one message within a run (then the run ends, the cursor stays, and the
    /// next tick tries again).
    pub retries: u32,
}

impl Default for GuestEmailConfig {
    fn default() -> Self {
        GuestEmailConfig {
            smtp_url: None,
            from: None,
            smtp_username: None,
            smtp_password: None,
            on_approve: true,
            on_deny: false,
            organisation: String::new(),
            application: "the application".into(),
            applications: BTreeMap::new(),
            sign_in_url: None,
            sign_in_urls: BTreeMap::new(),
            templates: BTreeMap::new(),
            batch_size: 50,
            poll_interval_seconds: 30,
            timeout_seconds: 10,
            retry_initial_ms: 1000,
            retries: 5,
        }
    }
}

impl GuestEmailConfig {
    /// Whether the job runs: `smtp_url` is set and at least one of `on_approve`, `on_deny`.
    pub fn enabled(&self) -> bool {
        self.smtp_url.is_some() && (self.on_approve || self.on_deny)
    }

    /// Checks the settings (only when [`GuestEmailConfig::enabled`]).
    ///
    /// Errors: a message naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        for (key, url) in self
            .sign_in_url
            .iter()
            .map(|u| ("guest_email.sign_in_url".to_owned(), u))
            .chain(
                self.sign_in_urls
                    .iter()
                    .map(|(app, u)| (format!("guest_email.sign_in_urls.{app}"), u)),
            )
        {
            let ok = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
            if !ok {
                return Err(format!("{key} must be an http(s) URL, got {url:?}"));
            }
        }
        self.mailer().map(|_| ())
    }

    /// The sender these settings describe.
    ///
    /// Errors: a message naming the bad key.
    fn mailer(&self) -> Result<Mailer, String> {
        let url = SmtpUrl::parse(self.smtp_url.as_deref().unwrap_or_default())?;
        let from = self
            .from
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .ok_or("guest_email.from is required with guest_email.smtp_url")?;
        let credentials = match (&self.smtp_username, &self.smtp_password) {
            (Some(u), Some(p)) if !u.is_empty() => Some((u.clone(), p.0.clone())),
            (Some(u), None) if !u.is_empty() => {
                return Err("guest_email.smtp_username is set without guest_email.smtp_password (or GUESTLIST_GUEST_EMAIL__SMTP_PASSWORD_FILE)".into());
            }
            (_, Some(_)) if self.smtp_username.as_deref().unwrap_or_default().is_empty() => {
                return Err(
                    "guest_email.smtp_password is set without guest_email.smtp_username".into(),
                );
            }
            _ => None,
        };
        if credentials.is_some() && url.security == smtp::Security::None {
            return Err("guest_email.smtp_url with ?tls=none would send the SMTP password in clear text: use smtp:// (STARTTLS) or smtps://".into());
        }
        if self.batch_size == 0 || self.poll_interval_seconds == 0 || self.timeout_seconds == 0 {
            return Err("guest_email.batch_size, poll_interval_seconds and timeout_seconds must be at least 1".into());
        }
        Mailer::new(
            &url,
            from,
            credentials,
            Duration::from_secs(self.timeout_seconds),
        )
    }
}

/// Counters since start (`/metrics`).
#[derive(Debug, Default)]
pub struct GuestEmailMetrics {
    /// E-mails the SMTP server accepted.
    pub sent: AtomicU64,
    /// E-mails given up for good (5xx refusal, unusable address).
    pub failed: AtomicU64,
}

impl GuestEmailMetrics {
    /// Prometheus lines `guestlist_guest_email_{sent,failed}_total`.
    pub fn render(&self) -> String {
        format!(
            "# HELP guestlist_guest_email_sent_total Guest e-mails accepted by the SMTP server.\n# TYPE guestlist_guest_email_sent_total counter\nguestlist_guest_email_sent_total {}\n\
             # HELP guestlist_guest_email_failed_total Guest e-mails given up (permanent SMTP refusal or unusable address).\n# TYPE guestlist_guest_email_failed_total counter\nguestlist_guest_email_failed_total {}\n",
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Nothing to send; move past it.
    Skip,
    /// Send `outcome` to the request's e-mail address.
    Send(Outcome),
}

/// The e-mail an event calls for under `config` (module docs, "Who is e-mailed").
fn plan(config: &GuestEmailConfig, e: &Event) -> Plan {
    let Some(r) = e.request.as_ref().filter(|_| e.kind == "request.decided") else {
        return Plan::Skip;
    };
    if r.decided_by.as_ref().is_none_or(|a| a.kind != "user") {
        return Plan::Skip;
    }
    match &r.state {
        // An external tenant (issue 17): no account yet; invite them back to finish.
        RequestState::Approved { .. } if config.on_approve && r.flow == Flow::External => {
            Plan::Send(Outcome::FinishSignUp)
        }
        RequestState::Approved { how, .. } if config.on_approve => {
            if entra_invitation(r, *how) {
                Plan::Skip
            } else {
                Plan::Send(Outcome::Approved)
            }
        }
        RequestState::Denied { .. } if config.on_deny => Plan::Send(Outcome::Denied),
        _ => Plan::Skip,
    }
}

/// Whether Entra sends this approved guest its own invitation e-mail: the request has no
/// federated identity (Entra ID or a Microsoft account, provisioned by `POST /invitations`),
/// or the approver's app reports that path.
fn entra_invitation(r: &ApprovalRequest, how: ProvisionedBy) -> bool {
    how == ProvisionedBy::Invitation || r.key.issuer.is_empty()
}

/// The running job: configuration, sender, store and counters.
struct Job {
    config: GuestEmailConfig,
    mailer: Mailer,
    store: Store,
    metrics: Arc<GuestEmailMetrics>,
}

/// Starts the job when [`GuestEmailConfig::enabled`] (a `tls=none` URL is warned about).
/// `events` wakes it on new decisions; it ends when `stop` turns true or the event sender is
/// dropped.
///
/// Errors: the configuration does not give a sender (already checked by
/// [`crate::Config::validate`]).
pub fn start(
    config: &GuestEmailConfig,
    store: Store,
    metrics: Arc<GuestEmailMetrics>,
    mut events: broadcast::Receiver<Event>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    if !config.enabled() {
        return Ok(());
    }
    let mailer = config.mailer()?;
    if config
        .smtp_url
        .as_deref()
        .is_some_and(|u| u.contains("tls=none"))
    {
        tracing::warn!(
            "guest_email.smtp_url has tls=none: e-mails are sent without TLS (tests only)"
        );
    }
    let job = Job {
        config: config.clone(),
        mailer,
        store,
        metrics,
    };
    let every = Duration::from_secs(config.poll_interval_seconds);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                e = events.recv() => match e {
                    Err(broadcast::error::RecvError::Closed) => return,
                    Ok(ev) if ev.kind != "request.decided" => continue,
                    _ => {}
                },
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
            }
            // A stop interrupts a run at once (even mid-send or mid-backoff): the cursor is
            // still before any e-mail not yet accepted, so nothing is lost.
            tokio::select! {
                r = job.run_once() => if let Err(e) = r {
                    tracing::warn!(error = %e, "guest e-mail job: store failure, trying again later");
                },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
    Ok(())
}

impl Job {
    /// One run under the cluster-wide lock: handles every event after the cursor, in order,
    /// until none is left or a message could not be delivered yet.
    ///
    /// Errors: [`StoreError`] from the store.
    async fn run_once(&self) -> Result<(), StoreError> {
        let Some(lock) = self.store.try_job_lock(JOB).await? else {
            return Ok(());
        };
        let done = self.run_locked().await;
        lock.release().await;
        done
    }

    /// [`Job::run_once`]'s work, while this replica holds the job's lock.
    async fn run_locked(&self) -> Result<(), StoreError> {
        let mut cursor = match self.store.job_cursor(JOB).await? {
            Some(c) => c,
            None => {
                // First run: decisions made before the job was enabled are not e-mailed.
                let latest = self.store.latest_event_seq().await?;
                self.store.set_job_cursor(JOB, latest).await?;
                latest
            }
        };
        loop {
            let batch = self
                .store
                .events_after(cursor, self.config.batch_size)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            // (canonical e-mail, outcome) already e-mailed in this batch: one denial e-mail
            // for a denial that denied several requests of the same person.
            let mut told: HashSet<(String, &'static str)> = HashSet::new();
            for e in &batch {
                if !self.handle(e, &mut told).await? {
                    return Ok(());
                }
                self.store.set_job_cursor(JOB, e.seq).await?;
                cursor = e.seq;
            }
        }
    }

    /// Whether request `id` still exists with the status it had at the event `at_event`
    /// (not erased, not reopened since).
    ///
    /// Errors: [`StoreError`] other than not found.
    async fn still_decided(
        &self,
        id: uuid::Uuid,
        at_event: &ApprovalRequest,
    ) -> Result<bool, StoreError> {
        match self.store.get(id).await {
            Ok(r) => Ok(r.state.status() == at_event.state.status()),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Handles one event; `Ok(false)` when its e-mail could not be delivered yet (the cursor
    /// must stay before it).
    ///
    /// Errors: [`StoreError`] from re-reading the request.
    async fn handle(
        &self,
        e: &Event,
        told: &mut HashSet<(String, &'static str)>,
    ) -> Result<bool, StoreError> {
        let Plan::Send(outcome) = plan(&self.config, e) else {
            return Ok(true);
        };
        let Some(at_event) = e.request.as_ref() else {
            return Ok(true);
        };
        // Read again just before sending: an erasure since the event (or a reopened denial)
        // means no e-mail.
        let now = match self.store.get(e.request_id).await {
            Ok(r) if r.state.status() == at_event.state.status() => r,
            Ok(_) | Err(StoreError::NotFound(_)) => return Ok(true),
            Err(err) => return Err(err),
        };
        let label = match outcome {
            Outcome::Approved | Outcome::FinishSignUp => "approved",
            Outcome::Denied => "denied",
        };
        if !told.insert((now.key.email.clone(), label)) {
            return Ok(true);
        }
        let claims = match now.typed_claims() {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(request_id = %e.request_id, error = %err, "guest e-mail not sent: stored claims unreadable");
                self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
        };
        let values = Values::of(
            &claims,
            &self.config.applications,
            &self.config.application,
            &self.config.organisation,
        )
        .with_sign_in_link(
            &claims,
            &self.config.sign_in_urls,
            self.config.sign_in_url.as_deref(),
        );
        let mail = render::render(
            outcome,
            claims.ui_locales.as_deref(),
            &self.config.templates,
            &values,
        );
        let backoff = Backoff {
            base: Duration::from_millis(self.config.retry_initial_ms.max(1)),
            cap: Duration::from_secs(300),
            max_attempts: self.config.retries.max(1),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Erased while a retry waited: no e-mail.
            if attempt > 1 && !self.still_decided(e.request_id, at_event).await? {
                return Ok(true);
            }
            match self.mailer.send(&claims.email, &mail).await {
                Ok(()) => {
                    self.metrics.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(request_id = %e.request_id, kind = label, lang = %mail.lang, "guest e-mail sent");
                    return Ok(true);
                }
                Err(err @ (SendError::Permanent(_) | SendError::BadRecipient)) => {
                    self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(request_id = %e.request_id, kind = label, error = %err, "guest e-mail given up");
                    return Ok(true);
                }
                Err(err @ SendError::Transient(_)) => match backoff.delay(attempt, None) {
                    Some(wait) => {
                        tracing::info!(request_id = %e.request_id, attempt, error = %err, "guest e-mail: retrying in {wait:?}");
                        tokio::time::sleep(wait).await;
                    }
                    None => {
                        tracing::warn!(request_id = %e.request_id, attempt, error = %err, "guest e-mail not delivered yet; next try at the next tick");
                        return Ok(false);
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestlist_core::model::{Actor, IdentityKey};
    use serde_json::json;

    fn decided(state: RequestState, issuer: &str, by: &str) -> Event {
        let r = ApprovalRequest {
            id: uuid::Uuid::now_v7(),
            key: IdentityKey {
                email: "g@example.com".into(),
                issuer: issuer.into(),
                issuer_assigned_id: if issuer.is_empty() { "" } else { "1" }.into(),
            },
            state,
            version: 2,
            created_at: time::OffsetDateTime::now_utc(),
            updated_at: time::OffsetDateTime::now_utc(),
            decided_by: Some(Actor {
                kind: by.into(),
                id: "x".into(),
                name: "x".into(),
                username: None,
                client: None,
            }),
            attempts: 1,
            flow: Default::default(),
            completed_at: None,
            escalated_at: None,
            grants: Vec::new(),
            route: None,
            approvals_required: 1,
            approvals: Vec::new(),
            claims: json!({"email": "g@example.com"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        Event::with_request(1, "request.decided", r)
    }

    #[test]
    fn who_is_emailed() {
        let on = GuestEmailConfig {
            on_deny: true,
            ..Default::default()
        };
        let approved = |how| RequestState::Approved {
            directory_object_id: Some("u".into()),
            how,
        };
        let denied = RequestState::Denied { reason: "r".into() };
        let cases = [
            (
                approved(ProvisionedBy::UserCreated),
                "google.com",
                "user",
                Plan::Send(Outcome::Approved),
            ),
            (
                approved(ProvisionedBy::ExistingAccount),
                "mail",
                "user",
                Plan::Send(Outcome::Approved),
            ),
            (approved(ProvisionedBy::Invitation), "", "user", Plan::Skip),
            (
                approved(ProvisionedBy::ExistingAccount),
                "",
                "user",
                Plan::Skip,
            ),
            (
                approved(ProvisionedBy::UserFlow),
                "google.com",
                "policy",
                Plan::Skip,
            ),
            (
                denied.clone(),
                "google.com",
                "user",
                Plan::Send(Outcome::Denied),
            ),
            (denied.clone(), "", "user", Plan::Send(Outcome::Denied)),
            (denied.clone(), "google.com", "policy", Plan::Skip),
            (RequestState::Expired, "google.com", "policy", Plan::Skip),
        ];
        for (state, issuer, by, want) in cases {
            assert_eq!(
                plan(&on, &decided(state.clone(), issuer, by)),
                want,
                "{state:?} {issuer} {by}"
            );
        }
        let off = GuestEmailConfig::default();
        assert_eq!(
            plan(&off, &decided(denied, "google.com", "user")),
            Plan::Skip
        );
        let created = Event {
            kind: "request.created".into(),
            ..decided(approved(ProvisionedBy::UserCreated), "google.com", "user")
        };
        assert_eq!(plan(&on, &created), Plan::Skip);
        // Issue 17: an external tenant's approval (no account, e-mail sign-up, so no issuer)
        // invites the person back instead of being skipped as an Entra invitation.
        let mut ext = decided(
            RequestState::Approved {
                directory_object_id: None,
                how: ProvisionedBy::UserFlow,
            },
            "",
            "user",
        );
        if let Some(r) = ext.request.as_mut() {
            r.flow = Flow::External;
        }
        assert_eq!(plan(&on, &ext), Plan::Send(Outcome::FinishSignUp));
    }

    #[test]
    fn sign_in_urls_must_be_http_urls() {
        let base = GuestEmailConfig {
            smtp_url: Some("smtp://127.0.0.1:2525?tls=none".into()),
            from: Some("Guestlist <noreply@contoso.example>".into()),
            sign_in_url: Some("https://shop.example/signin".into()),
            ..Default::default()
        };
        assert!(base.validate().is_ok());
        let bad = GuestEmailConfig {
            sign_in_urls: BTreeMap::from([("app-1".into(), "javascript:alert(1)".into())]),
            ..base.clone()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("guest_email.sign_in_urls.app-1")
        );
    }

    #[test]
    fn validation_names_the_key() {
        let base = GuestEmailConfig {
            smtp_url: Some("smtp://127.0.0.1:2525?tls=none".into()),
            from: Some("Guestlist <noreply@contoso.example>".into()),
            ..Default::default()
        };
        assert!(base.validate().is_ok());
        let no_from = GuestEmailConfig {
            from: None,
            ..base.clone()
        };
        assert!(no_from.validate().unwrap_err().contains("guest_email.from"));
        let bad_from = GuestEmailConfig {
            from: Some("not an address".into()),
            ..base.clone()
        };
        assert!(
            bad_from
                .validate()
                .unwrap_err()
                .contains("guest_email.from")
        );
        let clear_password = GuestEmailConfig {
            smtp_username: Some("u".into()),
            smtp_password: Some(Secret("hunter2-hunter2".into())),
            ..base.clone()
        };
        let e = clear_password.validate().unwrap_err();
        assert!(e.contains("clear text") && !e.contains("hunter2"), "{e}");
        let user_only = GuestEmailConfig {
            smtp_url: Some("smtps://mail.example.com".into()),
            smtp_username: Some("u".into()),
            ..base.clone()
        };
        assert!(user_only.validate().unwrap_err().contains("smtp_password"));
        let off = GuestEmailConfig {
            smtp_url: None,
            from: None,
            ..base
        };
        assert!(off.validate().is_ok(), "disabled: nothing is required");
    }
}
