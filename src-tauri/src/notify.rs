//! OS notifications that act: what each notification offers, what a click or a button does, and
//! the short result notification of an approval made from a notification.
//!
//! The notifications go through tauri-plugin-notification (2.6 and later report actions on
//! desktop: on Linux and the BSDs it keeps one session-bus connection, subscribes to the
//! `ActionInvoked` / `NotificationClosed` signals of `org.freedesktop.Notifications` before the
//! first `Notify`, and sends every notification on that connection). A new request's notification
//! carries the [`ACTION_TYPE`] buttons *Approve* and *Open* and its request id in the `extra`
//! payload ([`EXTRA_REQUEST_ID`]); a click on it (the specification's `default` action, reported
//! as `tap`) opens the request. A click on a summary (a burst) shows the window on the queue.
//!
//! Approve from a notification runs [`guestlist_reviewer::Reviewer::approve`], the same call as
//! the window's `approve` command (plan, look-ups before create, durable outbox, exactly once),
//! and only for a request still pending in the local cache with no decision queued for it.
//! Nothing here decides on its own: the pure parts ([`command_for`], [`result_note`]) are
//! unit-tested, the rest is wiring.
//!
//! Specification: Desktop Notifications Specification 1.2, "Actions" and "Signals"
//! (<https://specifications.freedesktop.org/notification-spec/latest/>).

use fluent_bundle::FluentValue;
use guestlist_core::model::ProvisionedBy;
use guestlist_reviewer::{
    DecisionOutcome, Outcome, QueueItem, QueueQuery, Reviewer, ReviewerError,
};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::{Action, ActionPerformed, ActionType, NotificationExt};

use crate::background::{Note, NoteTarget, show_main_window, update_tray};
use crate::locale::current;
use crate::messages::{Lang, named, plain, text};
use crate::{AppState, QUEUE_CHANGED};

/// The action type of a new request's notification: the buttons [`APPROVE`] and [`OPEN`].
pub const ACTION_TYPE: &str = "guest-request";

/// The action key of the *Approve* button.
pub const APPROVE: &str = "approve";

/// The action key of the *Open* button.
pub const OPEN: &str = "open";

/// What the plugin reports for a click on the notification itself (D-Bus action key `default`).
pub const TAP: &str = "tap";

/// The `extra` key holding the request id of a request's notification.
pub const EXTRA_REQUEST_ID: &str = "requestId";

/// The `extra` key holding the request's e-mail (to find it in the cache).
pub const EXTRA_EMAIL: &str = "email";

/// The `extra` key holding the request's display name (for the result notification).
pub const EXTRA_NAME: &str = "name";

/// The event the shell emits to the main window to open a request (payload: the request id as
/// a JSON string) or to go back to the queue (payload `null`). The UI handles it like Enter on
/// that row (or Esc).
pub const OPEN_REQUEST: &str = "open-request";

/// What a notification action asks the shell to do. Its `Debug` form leaves out the
/// requester's e-mail and name (it is logged).
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// Show the window with the request open (its side-by-side view).
    Open {
        /// The request id.
        id: String,
    },
    /// Approve the request (the window's plan and outbox), then say how it went.
    Approve {
        /// The request id.
        id: String,
        /// Its e-mail (cache look-up).
        email: String,
        /// Its display name (result notification).
        name: String,
    },
    /// Show the window on the queue.
    ShowQueue,
    /// Nothing (an action this app did not offer).
    Ignore,
}

impl std::fmt::Debug for Command {
    /// The variant and the request id; never the requester's e-mail or name (personal data
    /// stays out of the app's log, issue 10 §8).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Open { id } => f.debug_struct("Open").field("id", id).finish(),
            Command::Approve { id, .. } => f
                .debug_struct("Approve")
                .field("id", id)
                .finish_non_exhaustive(),
            Command::ShowQueue => f.write_str("ShowQueue"),
            Command::Ignore => f.write_str("Ignore"),
        }
    }
}

/// Logs a notification action at INFO: the action and the command (no personal data: see
/// [`Command`]'s `Debug`).
fn log_action(action: &str, command: &Command) {
    tracing::info!(action, ?command, "notification action");
}

/// The command for `action` performed on a notification whose `extra` payload is `extra`.
///
/// A request's notification (it has [`EXTRA_REQUEST_ID`]): [`TAP`] and [`OPEN`] open it,
/// [`APPROVE`] approves it (needs [`EXTRA_EMAIL`] too; without it: open). Any other notification
/// (a summary, a result): a tap shows the queue. Unknown actions are ignored.
pub fn command_for(
    action: &str,
    extra: &std::collections::HashMap<String, serde_json::Value>,
) -> Command {
    let text = |k: &str| {
        extra
            .get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    match (action, text(EXTRA_REQUEST_ID)) {
        (TAP | OPEN, Some(id)) => Command::Open { id },
        (APPROVE, Some(id)) => match text(EXTRA_EMAIL) {
            Some(email) => Command::Approve {
                name: text(EXTRA_NAME).unwrap_or_else(|| email.clone()),
                id,
                email,
            },
            None => Command::Open { id },
        },
        (TAP, None) => Command::ShowQueue,
        _ => Command::Ignore,
    }
}

/// Registers (or re-registers) the [`ACTION_TYPE`] buttons labelled in `lang`; the plugin reads
/// them when it shows a notification, so later notifications carry the new labels.
///
/// Errors: the plugin's (none on desktop).
pub fn register_buttons<R: Runtime>(
    app: &AppHandle<R>,
    lang: Lang,
) -> tauri_plugin_notification::Result<()> {
    app.notification().register_action_types(vec![
        ActionType::builder(ACTION_TYPE)
            .actions(vec![
                Action::builder(APPROVE, plain(lang, "action-approve")).build(),
                Action::builder(OPEN, plain(lang, "action-open"))
                    .foreground(true)
                    .build(),
            ])
            .build(),
    ])
}

/// Registers the [`ACTION_TYPE`] buttons (in the UI's language) and the handler of every
/// notification action.
///
/// Call once at start, before the first notification: the plugin reports the actions of
/// notifications shown while a handler exists. Errors: the plugin's (none on desktop).
pub fn register<R: Runtime>(app: &AppHandle<R>) -> tauri_plugin_notification::Result<()> {
    register_buttons(app, current(app))?;
    let n = app.notification();
    let handle = app.clone();
    n.on_action(move |performed: &ActionPerformed| {
        let empty = std::collections::HashMap::new();
        let extra = performed
            .notification()
            .map(|n| n.extra())
            .unwrap_or(&empty);
        let command = command_for(performed.action_id(), extra);
        log_action(performed.action_id(), &command);
        // The plugin's signal thread must return quickly.
        tauri::async_runtime::spawn(run(handle.clone(), command));
    })
}

/// Shows `note` (with its buttons and payload when it is about a request).
pub fn show<R: Runtime>(app: &AppHandle<R>, note: &Note) {
    let mut b = app
        .notification()
        .builder()
        .title(&note.title)
        .body(&note.body);
    if let NoteTarget::Request { id, email, name } = &note.target {
        b = b
            .action_type_id(ACTION_TYPE)
            .extra(EXTRA_REQUEST_ID, id)
            .extra(EXTRA_EMAIL, email)
            .extra(EXTRA_NAME, name);
    }
    if let Err(e) = b.show() {
        tracing::warn!(error = %e, "cannot show a notification");
    }
}

/// Carries out `command`.
async fn run<R: Runtime>(app: AppHandle<R>, command: Command) {
    match command {
        Command::Open { id } => {
            show_main_window(&app);
            let _ = app.emit_to("main", OPEN_REQUEST, Some(id));
        }
        Command::ShowQueue => {
            show_main_window(&app);
            let _ = app.emit_to("main", OPEN_REQUEST, None::<String>);
        }
        Command::Approve { id, email, name } => {
            let Some(state) = app.try_state::<AppState>() else {
                return;
            };
            let reviewer = match state.reviewer() {
                Ok(r) => r.clone(),
                Err(e) => {
                    tracing::warn!(code = %e.code, "approve from a notification: no reviewer");
                    return;
                }
            };
            let result = approve_pending(&reviewer, &id, &email).await;
            if let Some(Ok(_)) = &result {
                let _ = app.emit(QUEUE_CHANGED, serde_json::json!({ "approved": [id] }));
            }
            update_tray(&app, reviewer.status().await.pending_count);
            if !reviewer.settings().do_not_disturb {
                show(&app, &result_note(current(&app), &name, result));
            }
        }
        Command::Ignore => {}
    }
}

/// Approves `id` through [`Reviewer::approve`] when it is still pending in the cache with no
/// decision queued; `None` when it is not (decided in the window, elsewhere, or already queued).
async fn approve_pending(
    reviewer: &Reviewer,
    id: &str,
    email: &str,
) -> Option<Result<Vec<DecisionOutcome>, ReviewerError>> {
    match pending_in_cache(reviewer, id, email).await {
        Ok(true) => Some(reviewer.approve(vec![id.to_owned()]).await),
        Ok(false) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Whether request `id` (e-mail `email`) is in the cached pending queue with no outbox item.
async fn pending_in_cache(
    reviewer: &Reviewer,
    id: &str,
    email: &str,
) -> Result<bool, ReviewerError> {
    let view = reviewer
        .queue(QueueQuery {
            q: Some(email.to_owned()),
            limit: Some(1000),
            ..QueueQuery::default()
        })
        .await?;
    Ok(is_pending(&view.items, id))
}

/// Whether `id` is among `items` with no decision queued or running for it.
pub fn is_pending(items: &[QueueItem], id: &str) -> bool {
    items.iter().any(|i| i.id == id && i.outbox_state.is_none())
}

/// The short notification after an approval from a notification of `name`, in `lang`: `None` =
/// the request was no longer pending; otherwise what [`Reviewer::approve`] answered. An error's
/// line is its code and the server's or Graph's message as received.
pub fn result_note(
    lang: Lang,
    name: &str,
    result: Option<Result<Vec<DecisionOutcome>, ReviewerError>>,
) -> Note {
    let note = |title: String, body: String| Note {
        title,
        body,
        target: NoteTarget::Queue,
    };
    let line = |e: &ReviewerError| format!("{}: {}", e.code, e.message);
    let outcome = match result {
        None => {
            return note(
                named(lang, "result-no-longer-pending-title", name),
                plain(lang, "result-no-longer-pending-body"),
            );
        }
        Some(Err(e)) => return note(named(lang, "result-failed-title", name), line(&e)),
        Some(Ok(outcomes)) => outcomes.into_iter().next(),
    };
    let Some(o) = outcome else {
        return note(
            named(lang, "result-failed-title", name),
            plain(lang, "result-no-outcome"),
        );
    };
    match o.outcome {
        Outcome::Done => note(
            named(lang, "result-approved-title", name),
            plain(
                lang,
                match o.how {
                    Some(ProvisionedBy::Invitation) => "result-approved-invited",
                    Some(ProvisionedBy::ExistingAccount) => "result-approved-existing",
                    // An external tenant (issue 17): no account yet, the person finishes.
                    Some(ProvisionedBy::UserFlow) => "result-approved-user-flow",
                    _ => "result-approved-created",
                },
            ),
        ),
        Outcome::Queued if o.undo_until.is_some() => note(
            named(lang, "result-undo-title", name),
            plain(lang, "result-undo-body"),
        ),
        Outcome::Queued => note(
            plain(lang, "result-offline-title"),
            named(lang, "result-offline-body", name),
        ),
        Outcome::Conflict => note(
            named(lang, "result-conflict-title", name),
            o.error.as_ref().map(line).unwrap_or_default(),
        ),
        // The account exists; some of its grants (issue 14 §1) were refused.
        Outcome::Failed if o.grants_failed > 0 => note(
            text(
                lang,
                "result-grants-failed-title",
                &[
                    ("name", FluentValue::from(name)),
                    ("count", FluentValue::from(o.grants_failed)),
                ],
            ),
            plain(lang, "result-grants-failed-body"),
        ),
        Outcome::Failed => note(
            named(lang, "result-failed-title", name),
            o.error.as_ref().map(line).unwrap_or_default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use guestlist_reviewer::types::OutboxState;
    use serde_json::{Value, json};

    use super::*;

    fn extra(pairs: &[(&str, &str)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    #[test]
    fn actions_of_a_request_note_map_to_commands() {
        let e = extra(&[
            (EXTRA_REQUEST_ID, "r1"),
            (EXTRA_EMAIL, "ada@fabrikam.com"),
            (EXTRA_NAME, "Ada"),
        ]);
        assert_eq!(command_for(TAP, &e), Command::Open { id: "r1".into() });
        assert_eq!(command_for(OPEN, &e), Command::Open { id: "r1".into() });
        assert_eq!(
            command_for(APPROVE, &e),
            Command::Approve {
                id: "r1".into(),
                email: "ada@fabrikam.com".into(),
                name: "Ada".into()
            }
        );
        assert_eq!(command_for("snooze", &e), Command::Ignore);
        // Without the e-mail the request cannot be checked in the cache: open it instead.
        let no_mail = extra(&[(EXTRA_REQUEST_ID, "r1")]);
        assert_eq!(
            command_for(APPROVE, &no_mail),
            Command::Open { id: "r1".into() }
        );
    }

    /// Approving from a notification logs the action and the request id at INFO, never the
    /// requester's e-mail or name.
    #[test]
    fn notification_actions_are_logged_without_personal_data() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let command = command_for(
            APPROVE,
            &extra(&[
                (EXTRA_REQUEST_ID, "r-42"),
                (EXTRA_EMAIL, "zoe@fabrikam.example"),
                (EXTRA_NAME, "Zoë Müller"),
            ]),
        );
        assert!(matches!(command, Command::Approve { .. }));
        tracing::subscriber::with_default(subscriber, || log_action(APPROVE, &command));
        let log = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        assert!(
            log.contains("notification action") && log.contains("r-42"),
            "{log}"
        );
        for pii in ["zoe@fabrikam.example", "Zoë", "Müller"] {
            assert!(!log.contains(pii), "{pii} in the INFO log: {log}");
            assert!(!format!("{command:?}").contains(pii));
        }
    }

    #[test]
    fn a_summary_or_result_note_shows_the_queue() {
        assert_eq!(command_for(TAP, &HashMap::new()), Command::ShowQueue);
        assert_eq!(command_for(APPROVE, &HashMap::new()), Command::Ignore);
        assert_eq!(command_for(OPEN, &HashMap::new()), Command::Ignore);
    }

    fn item(id: &str, outbox: Option<OutboxState>) -> QueueItem {
        QueueItem {
            id: id.into(),
            display_name: "Ada".into(),
            email: "ada@fabrikam.com".into(),
            email_domain: "fabrikam.com".into(),
            company: None,
            identity_provider: "google.com".into(),
            flow: Default::default(),
            created_at: "2025-01-01T00:00:00Z".into(),
            age_hours: 0,
            attempts: 1,
            version: 1,
            outbox_state: outbox,
            free_mail: false,
            same_person: 1,
            person_attempts: 1,
            person_providers: 1,
            escalated_at: None,
        }
    }

    #[test]
    fn only_a_pending_request_with_no_queued_decision_is_approved() {
        let items = [item("r1", None), item("r2", Some(OutboxState::Queued))];
        assert!(is_pending(&items, "r1"));
        assert!(!is_pending(&items, "r2"));
        assert!(!is_pending(&items, "r3"));
    }

    fn outcome(
        o: Outcome,
        how: Option<ProvisionedBy>,
        error: Option<ReviewerError>,
    ) -> DecisionOutcome {
        DecisionOutcome {
            id: "r1".into(),
            outcome: o,
            state: OutboxState::Reported,
            directory_object_id: None,
            how,
            error,
            current: None,
            label: "Ada".into(),
            undo_until: None,
            grants_failed: 0,
        }
    }

    /// An approval whose account exists but a grant was refused (issue 14 §1) says so, in the
    /// approver's language.
    #[test]
    fn a_partial_grant_failure_is_its_own_note() {
        let mut o = outcome(Outcome::Failed, Some(ProvisionedBy::UserCreated), None);
        o.grants_failed = 1;
        let n = result_note(Lang::En, "Ada", Some(Ok(vec![o.clone()])));
        assert_eq!(n.title, "Ada: account created, 1 grant failed");
        assert_eq!(
            n.body,
            "Open Guestlist and Retry: only the missing grants run again."
        );
        o.grants_failed = 2;
        let n = result_note(Lang::Sv, "Ada", Some(Ok(vec![o])));
        assert_eq!(n.title, "Ada: kontot skapat, 2 behörigheter misslyckades");
    }

    #[test]
    fn the_result_note_says_what_happened() {
        let done = result_note(
            Lang::En,
            "Ada",
            Some(Ok(vec![outcome(
                Outcome::Done,
                Some(ProvisionedBy::UserCreated),
                None,
            )])),
        );
        assert_eq!(done.title, "Approved Ada");
        assert_eq!(
            done.body,
            "Guest account created; the decision is recorded."
        );
        assert_eq!(done.target, NoteTarget::Queue);
        let invited = result_note(
            Lang::En,
            "Bo",
            Some(Ok(vec![outcome(
                Outcome::Done,
                Some(ProvisionedBy::Invitation),
                None,
            )])),
        );
        assert_eq!(
            invited.body,
            "Invited as a guest; the decision is recorded."
        );
        // Issue 17: an external tenant's approval created no account.
        let external = result_note(
            Lang::Sv,
            "Linnéa",
            Some(Ok(vec![outcome(
                Outcome::Done,
                Some(ProvisionedBy::UserFlow),
                None,
            )])),
        );
        assert_eq!(
            external.body,
            "Godkänd; inget skrevs i katalogen: personen slutför sin registrering och Entra skapar kontot då."
        );
        let queued = result_note(
            Lang::En,
            "Ada",
            Some(Ok(vec![outcome(Outcome::Queued, None, None)])),
        );
        assert_eq!(queued.title, "Queued — offline");
        let failed = result_note(
            Lang::En,
            "Ada",
            Some(Ok(vec![outcome(
                Outcome::Failed,
                None,
                Some(ReviewerError::new(
                    guestlist_core::Code::GraphError,
                    "Insufficient privileges",
                )),
            )])),
        );
        assert_eq!(failed.title, "Could not approve Ada");
        assert_eq!(failed.body, "graph.error: Insufficient privileges");
        let err = result_note(
            Lang::En,
            "Ada",
            Some(Err(ReviewerError::new(
                guestlist_core::Code::StorageError,
                "disk full",
            ))),
        );
        assert_eq!(err.body, "storage.error: disk full");
        assert_eq!(
            result_note(Lang::En, "Ada", None).title,
            "Ada is no longer pending"
        );
    }

    /// The result notification speaks the UI's language (it was English only).
    #[test]
    fn the_result_note_is_in_the_ui_language() {
        let done = |lang| {
            result_note(
                lang,
                "Ada",
                Some(Ok(vec![outcome(
                    Outcome::Done,
                    Some(ProvisionedBy::Invitation),
                    None,
                )])),
            )
        };
        assert_eq!(done(Lang::Fr).title, "Ada approuvé(e)");
        assert_eq!(
            done(Lang::Fr).body,
            "Invité(e) comme invité ; la décision est enregistrée."
        );
        assert_eq!(done(Lang::Sv).title, "Ada godkänd");
        let offline = result_note(
            Lang::Sv,
            "Ada",
            Some(Ok(vec![outcome(Outcome::Queued, None, None)])),
        );
        assert_eq!(offline.title, "I kö — offline");
        assert_eq!(
            offline.body,
            "Godkännandet av Ada skickas när nätverket är tillbaka."
        );
    }
}
