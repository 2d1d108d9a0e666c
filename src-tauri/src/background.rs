//! The background tasks — the live event stream ([`live`]: the reviewer follows the server's
//! SSE, falling back to polling) and the periodic sync ([`run`]) — which emit `queue-changed`,
//! raise OS notifications for new requests, and keep the tray's pending count; and the tray icon.
//! Which notifications a batch of new requests gets is decided here ([`notes_for`]); their
//! buttons and what a click does are in [`crate::notify`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use guestlist_reviewer::{AppStatus, LiveUpdate, QueueItem, QueueQuery, QueueSort, Reviewer};
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Listener, Manager, Runtime};
use tokio::sync::Notify;

use crate::locale::current;
use crate::messages::{Lang, counted, named, plain, text};
use crate::{AppState, QUEUE_CHANGED};

/// The tray icon's id.
pub const TRAY_ID: &str = "guestlist";

/// At most this many new requests get a notification each; more become one summary.
pub const BURST: usize = 3;

/// Syncs every `every` (or when woken), emits [`QUEUE_CHANGED`], notifies, updates the tray.
///
/// With `GUESTLIST_AUTO_SIGN_IN=1` (the demo), signs in first when no session was restored.
pub async fn run<R: Runtime>(
    app: AppHandle<R>,
    reviewer: Reviewer,
    every: Duration,
    wake: Arc<Notify>,
) {
    if std::env::var("GUESTLIST_AUTO_SIGN_IN").is_ok_and(|v| v == "1")
        && reviewer.status().await.session.is_none()
    {
        let opener = app.state::<AppState>().opener();
        if let Err(e) = reviewer.sign_in(opener).await {
            // The message can name the account (AADSTS errors quote the UPN): DEBUG only.
            tracing::warn!(code = %e.code, "automatic sign-in failed");
            tracing::debug!(code = %e.code, message = %e.message, "automatic sign-in failed");
        }
    }
    loop {
        if reviewer.status().await.session.is_some() {
            match reviewer.sync().await {
                Ok(report) => {
                    if report.added > 0 || report.removed > 0 || report.updated > 0 {
                        let _ = app.emit(QUEUE_CHANGED, &report);
                    }
                    announce(&app, &reviewer, report.added).await;
                }
                Err(e) => {
                    // The message can quote a request's data: DEBUG only.
                    tracing::info!(code = %e.code, "background sync failed");
                    tracing::debug!(code = %e.code, message = %e.message, "background sync failed");
                }
            }
        }
        update_tray(&app, reviewer.status().await.pending_count);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = wake.notified() => {}
        }
    }
}

/// Follows the server's event stream ([`Reviewer::follow_events`]: live cache updates, resumed
/// with `Last-Event-ID`, reconnecting with backoff, polling when SSE is unavailable); for each
/// update emits [`QUEUE_CHANGED`], notifies new requests, and updates the tray. Runs forever.
pub async fn live<R: Runtime>(app: AppHandle<R>, reviewer: Reviewer) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<LiveUpdate>();
    let follow = reviewer.follow_events(move |u| {
        let _ = tx.send(u);
    });
    let handle = async {
        while let Some(u) = rx.recv().await {
            let _ = app.emit(QUEUE_CHANGED, &u);
            announce(&app, &reviewer, u.added).await;
            update_tray(&app, reviewer.status().await.pending_count);
        }
    };
    tokio::join!(follow, handle);
}

/// Emits [`QUEUE_CHANGED`] (and updates the tray) whenever the outbox drain decided requests or
/// changed an outbox item ([`Reviewer::subscribe_changes`]): a decision sent after its undo
/// window, or queued offline and sent when the network came back, leaves the window's list at
/// once instead of at the next sync. Runs forever.
pub async fn outbox_changes<R: Runtime>(app: AppHandle<R>, reviewer: Reviewer) {
    let mut rx = reviewer.subscribe_changes();
    while rx.changed().await.is_ok() {
        let _ = app.emit(QUEUE_CHANGED, "outbox");
        update_tray(&app, reviewer.status().await.pending_count);
    }
}

/// The event that carries the app's status ([`AppStatus`], the status bar's data) to the window
/// each time it changes; the window reads `status` once at start and then follows this event
/// instead of polling.
pub const STATUS_CHANGED: &str = "status-changed";

/// How long the status may go without a look when nothing woke [`status_changes`]: changes of
/// the reviewer's own state (online, syncing, last error, session) have no signal of their own.
/// An in-process read of the cache (no IPC, nothing rendered when nothing changed).
pub const STATUS_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Remembers the last status sent, so that only a changed one is emitted.
#[derive(Debug, Default)]
pub struct StatusDedup {
    last: Option<AppStatus>,
}

impl StatusDedup {
    /// `Some(status)` when it differs from the last one given (the first one always does).
    pub fn changed(&mut self, status: AppStatus) -> Option<&AppStatus> {
        if self.last.as_ref() == Some(&status) {
            return None;
        }
        self.last = Some(status);
        self.last.as_ref()
    }
}

/// Emits [`STATUS_CHANGED`] with the status whenever it changed: looked at once at start, at
/// once on every outbox change ([`Reviewer::subscribe_changes`]) and every [`QUEUE_CHANGED`]
/// (sync, live event), and otherwise every [`STATUS_CHECK_EVERY`]. Runs forever.
pub async fn status_changes<R: Runtime>(app: AppHandle<R>, reviewer: Reviewer) {
    let wake = Arc::new(Notify::new());
    let on_queue = wake.clone();
    let listener = app.listen_any(QUEUE_CHANGED, move |_| on_queue.notify_one());
    let mut outbox = reviewer.subscribe_changes();
    let mut dedup = StatusDedup::default();
    loop {
        if let Some(s) = dedup.changed(reviewer.status().await) {
            let _ = app.emit(STATUS_CHANGED, s);
        }
        tokio::select! {
            _ = tokio::time::sleep(STATUS_CHECK_EVERY) => {}
            _ = wake.notified() => {}
            r = outbox.changed() => {
                if r.is_err() {
                    break;
                }
            }
        }
    }
    app.unlisten(listener);
}

/// Notifies `added` new requests (the newest ones in the cache), unless do-not-disturb is on.
async fn announce<R: Runtime>(app: &AppHandle<R>, reviewer: &Reviewer, added: u64) {
    if added == 0 || reviewer.settings().do_not_disturb {
        return;
    }
    let newest = reviewer
        .queue(QueueQuery {
            sort: QueueSort::NewestFirst,
            limit: Some(u32::try_from(added).unwrap_or(u32::MAX).min(50)),
            ..QueueQuery::default()
        })
        .await;
    if let Ok(view) = newest {
        notify_new(app, added, &view.items);
    }
}

/// One notification's title, body and what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The title.
    pub title: String,
    /// The body.
    pub body: String,
    /// What a click and the buttons act on.
    pub target: NoteTarget,
}

/// What a notification is about: one request (buttons *Approve* and *Open*; a click opens it) or
/// the queue (a burst summary, a result: a click shows the queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteTarget {
    /// One request.
    Request {
        /// The request id.
        id: String,
        /// Its e-mail.
        email: String,
        /// Its display name.
        name: String,
    },
    /// The queue.
    Queue,
}

/// The notifications for `added` new requests, of which `newest` are the newest: one per request
/// (name, e-mail domain, identity provider) up to [`BURST`], else one summary; worded in `lang`.
pub fn notes_for(lang: Lang, added: u64, newest: &[QueueItem]) -> Vec<Note> {
    let shown = newest
        .len()
        .min(usize::try_from(added).unwrap_or(usize::MAX));
    if added as usize <= BURST && shown == added as usize {
        return newest[..shown]
            .iter()
            .map(|i| Note {
                title: named(lang, "note-request-title", &i.display_name),
                body: format!(
                    "@{} · {}",
                    i.email_domain,
                    provider_label(&i.identity_provider)
                ),
                target: NoteTarget::Request {
                    id: i.id.clone(),
                    email: i.email.clone(),
                    name: i.display_name.clone(),
                },
            })
            .collect();
    }
    let mut by_provider: BTreeMap<String, u64> = BTreeMap::new();
    for i in &newest[..shown] {
        *by_provider
            .entry(provider_label(&i.identity_provider).to_owned())
            .or_default() += 1;
    }
    let mix = by_provider
        .iter()
        .map(|(p, n)| format!("{n} {p}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mix_arg = [("mix", mix.as_str().into())];
    let body = if mix.is_empty() {
        plain(lang, "note-burst-body-empty")
    } else if (shown as u64) < added {
        text(lang, "note-burst-body-newest", &mix_arg)
    } else {
        text(lang, "note-burst-body-all", &mix_arg)
    };
    vec![Note {
        title: counted(lang, "note-burst-title", added),
        body,
        target: NoteTarget::Queue,
    }]
}

/// A human name for an identity provider key (`facebook.com`, `mail`, `entra`, …): the one
/// label function, [`guestlist_core::provider::provider_label`] (any unknown key is
/// `Other provider`).
pub fn provider_label(p: &str) -> &'static str {
    guestlist_core::provider::provider_label(p)
}

fn notify_new<R: Runtime>(app: &AppHandle<R>, added: u64, newest: &[QueueItem]) {
    for note in notes_for(current(app), added, newest) {
        crate::notify::show(app, &note);
    }
}

/// The tray menu in `lang`: show the window, sync now, quit (ids `show`, `sync`, `quit`).
///
/// Errors: the menu cannot be built.
fn tray_menu<R: Runtime>(app: &AppHandle<R>, lang: Lang) -> tauri::Result<Menu<R>> {
    let item =
        |id: &str, key: &str| MenuItem::with_id(app, id, plain(lang, key), true, None::<&str>);
    let show = item("show", "tray-show")?;
    let sync = item("sync", "tray-sync")?;
    let quit = item("quit", "tray-quit")?;
    let sep = PredefinedMenuItem::separator(app)?;
    Menu::with_items(app, &[&show, &sync, &sep, &quit])
}

/// Rewords the tray menu in `lang` (after the UI's language changed); the tooltip follows at
/// the next count ([`update_tray`]). No-op without a tray icon.
pub fn relabel_tray<R: Runtime>(app: &AppHandle<R>, lang: Lang) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        match tray_menu(app, lang) {
            Ok(menu) => {
                let _ = tray.set_menu(Some(menu));
            }
            Err(e) => tracing::warn!(error = %e, "cannot reword the tray menu"),
        }
    }
}

/// Creates the tray icon: a menu to show the window, sync now, or quit, in the UI's language.
///
/// Errors: the platform has no tray (or the menu cannot be built).
pub fn create_tray<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let menu = tray_menu(app, current(app))?;
    let mut tray = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Guestlist")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "show" => show_main_window(app),
            "sync" => {
                if let Some(state) = app.try_state::<AppState>() {
                    state.wake_sync();
                }
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

/// The tray's label for `pending` requests, in `lang`.
pub fn tray_label(lang: Lang, pending: u64) -> String {
    counted(lang, "tray-tooltip", pending)
}

/// Sets the tray's tooltip and title to the `pending` count.
pub(crate) fn update_tray<R: Runtime>(app: &AppHandle<R>, pending: u64) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(tray_label(current(app), pending)));
        let _ = tray.set_title(Some(if pending == 0 {
            String::new()
        } else {
            pending.to_string()
        }));
    }
}

/// Shows, unminimises and focuses the main window (second launch, tray menu).
pub fn show_main_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, domain: &str, provider: &str) -> QueueItem {
        QueueItem {
            id: name.into(),
            display_name: name.into(),
            email: format!("x@{domain}"),
            email_domain: domain.into(),
            company: None,
            identity_provider: provider.into(),
            flow: Default::default(),
            created_at: "2025-01-01T00:00:00Z".into(),
            age_hours: 0,
            attempts: 1,
            version: 1,
            outbox_state: None,
            free_mail: false,
            same_person: 1,
            person_attempts: 1,
            person_providers: 1,
            escalated_at: None,
        }
    }

    #[test]
    fn a_few_new_requests_get_one_notification_each() {
        let newest = [
            item("Ada", "fabrikam.com", "facebook.com"),
            item("Bo", "gmail.com", "entra"),
        ];
        let notes = notes_for(Lang::En, 2, &newest);
        assert_eq!(
            notes,
            vec![
                Note {
                    title: "Guest request: Ada".into(),
                    body: "@fabrikam.com · Facebook".into(),
                    target: NoteTarget::Request {
                        id: "Ada".into(),
                        email: "x@fabrikam.com".into(),
                        name: "Ada".into()
                    },
                },
                Note {
                    title: "Guest request: Bo".into(),
                    body: "@gmail.com · Entra ID".into(),
                    target: NoteTarget::Request {
                        id: "Bo".into(),
                        email: "x@gmail.com".into(),
                        name: "Bo".into()
                    },
                },
            ]
        );
    }

    #[test]
    fn a_burst_becomes_one_summary() {
        let newest: Vec<_> = (0..5)
            .map(|i| {
                let p = if i % 2 == 0 { "google.com" } else { "mail" };
                item(&format!("P{i}"), "x.com", p)
            })
            .collect();
        let notes = notes_for(Lang::En, 5, &newest);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].title, "5 new guest requests");
        assert_eq!(notes[0].body, "2 Email OTP, 3 Google.");
        assert_eq!(
            notes[0].target,
            NoteTarget::Queue,
            "a summary has no request buttons"
        );
        let partial = notes_for(Lang::En, 120, &newest);
        assert_eq!(partial[0].title, "120 new guest requests");
        assert_eq!(partial[0].body, "Newest: 2 Email OTP, 3 Google.");
    }

    fn status(pending: u64) -> AppStatus {
        AppStatus {
            session: None,
            online: true,
            syncing: false,
            last_sync_at: None,
            pending_count: pending,
            outbox: vec![],
            last_error: None,
        }
    }

    #[test]
    fn only_a_changed_status_is_sent() {
        let mut d = StatusDedup::default();
        assert_eq!(d.changed(status(1)), Some(&status(1)), "the first one");
        assert_eq!(d.changed(status(1)), None);
        assert_eq!(d.changed(status(2)), Some(&status(2)));
        assert_eq!(d.changed(status(2)), None);
    }

    #[test]
    fn tray_label_counts() {
        assert_eq!(tray_label(Lang::En, 0), "Guestlist — no pending requests");
        assert_eq!(tray_label(Lang::En, 1), "Guestlist — 1 pending request");
        assert_eq!(tray_label(Lang::En, 42), "Guestlist — 42 pending requests");
        assert_eq!(
            tray_label(Lang::Fr, 42),
            "Guestlist — 42 demandes en attente"
        );
    }

    /// The notifications speak the UI's language (issue 15: they were English only).
    #[test]
    fn notes_are_in_the_ui_language() {
        let one = [item("Ada", "fabrikam.com", "facebook.com")];
        assert_eq!(
            notes_for(Lang::Fr, 1, &one)[0].title,
            "Demande d’invité : Ada"
        );
        assert_eq!(notes_for(Lang::Sv, 1, &one)[0].title, "Gästförfrågan: Ada");
        let newest: Vec<_> = (0..5)
            .map(|i| item(&format!("P{i}"), "x.com", "google.com"))
            .collect();
        let fr = notes_for(Lang::Fr, 120, &newest);
        assert_eq!(fr[0].title, "120 nouvelles demandes d’invité");
        assert_eq!(fr[0].body, "Les plus récentes : 5 Google.");
        let sv = notes_for(Lang::Sv, 5, &newest);
        assert_eq!(sv[0].title, "5 nya gästförfrågningar");
        assert_eq!(sv[0].body, "5 Google.");
    }
}
