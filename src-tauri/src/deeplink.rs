//! Deep links: `guestlist://request/<id>` opens request `<id>` in the main window
//! ([`guestlist_core::deeplink`] says which links are accepted).
//!
//! The scheme is declared in tauri.conf.json (`plugins.deep-link.desktop.schemes`): the
//! bundler writes it into the installed `.desktop` file (`MimeType=x-scheme-handler/guestlist`)
//! on Linux, the `.msi`/NSIS installers register it on Windows, `Info.plist` on macOS
//! (tauri-plugin-deep-link v2, <https://v2.tauri.app/plugin/deep-linking/>). On Linux and
//! Windows the system starts `guestlist <url>`: the single-instance plugin (its `deep-link`
//! feature) hands that command line to the running instance, whose deep-link plugin reports the
//! URL to [`register`]'s handler, which shows the window and emits
//! [`crate::notify::OPEN_REQUEST`], the same event a notification click sends. When the URL
//! started the app, the id waits in [`Pending`] until the UI asks for it
//! ([`take_opened_request`]) once it listens.
//!
//! A link that is not exactly `guestlist://request/<uuid>` (another scheme, another host, an
//! extra path segment, a query, a bad id) is ignored: the window is shown (by the
//! single-instance callback), nothing is opened, and the link is not logged.

use std::sync::Mutex;

use guestlist_core::deeplink::parse_request_link;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::background::show_main_window;
use crate::notify::OPEN_REQUEST;

/// The request id of the link that started the app, until the UI takes it.
#[derive(Debug, Default)]
pub struct Pending(Mutex<Option<String>>);

impl Pending {
    /// Takes the pending request id (at most once).
    pub fn take(&self) -> Option<String> {
        self.0.lock().map(|mut p| p.take()).unwrap_or_default()
    }

    fn set(&self, id: String) {
        if let Ok(mut p) = self.0.lock() {
            *p = Some(id);
        }
    }
}

/// The request ids among `urls` (as the deep-link plugin reports them), in order; the others
/// are dropped (and counted in a warning, without their text: it is outside input).
pub fn request_ids<'a>(urls: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut ignored = 0;
    let ids = urls
        .into_iter()
        .filter_map(|u| {
            let id = parse_request_link(u).map(|id| id.hyphenated().to_string());
            ignored += usize::from(id.is_none());
            id
        })
        .collect();
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "ignored a link that is not guestlist://request/<id>"
        );
    }
    ids
}

/// Listens for deep links while the app runs and keeps the one that started it, if any.
/// Call once from `setup`, after the deep-link plugin is registered.
pub fn register<R: Runtime>(app: &AppHandle<R>) {
    let dl = app.deep_link();
    if let Ok(Some(urls)) = dl.get_current()
        && let Some(id) = request_ids(urls.iter().map(|u| u.as_str())).pop()
        && let Some(pending) = app.try_state::<Pending>()
    {
        tracing::info!("started by a deep link to a request");
        pending.set(id);
    }
    let handle = app.clone();
    dl.on_open_url(move |event| {
        let urls = event.urls();
        if let Some(id) = request_ids(urls.iter().map(|u| u.as_str())).pop() {
            tracing::info!("deep link: opening a request");
            open(&handle, id);
        }
    });
}

/// Shows the main window with request `id` open.
pub fn open<R: Runtime>(app: &AppHandle<R>, id: String) {
    show_main_window(app);
    let _ = app.emit_to("main", OPEN_REQUEST, Some(id));
}

/// The request the app was started to open (`guestlist guestlist://request/<id>`), once: the
/// UI calls it when it starts listening to [`OPEN_REQUEST`]. `None`: not started by a link, or
/// already taken.
#[tauri::command]
pub fn take_opened_request(pending: State<'_, Pending>) -> Option<String> {
    pending.take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_request_links_yield_ids() {
        let id = "0192f0c4-7b1a-7c3e-9f00-1234567890ab";
        let good = format!("guestlist://request/{id}");
        let upper = format!("guestlist://request/{}", id.to_uppercase());
        let extra = format!("guestlist://request/{id}/approve");
        assert_eq!(
            request_ids([
                "https://evil.example/",
                good.as_str(),
                extra.as_str(),
                "guestlist://request/../../etc/passwd",
                upper.as_str(),
            ]),
            vec![id.to_owned(), id.to_owned()],
            "the canonical id, whatever the case of the link"
        );
        assert!(request_ids(["--autostart", ""]).is_empty());
    }

    #[test]
    fn the_scheme_and_installers_are_configured() {
        let conf: serde_json::Value =
            serde_json::from_str(include_str!("../tauri.conf.json")).unwrap();
        assert_eq!(
            conf["plugins"]["deep-link"]["desktop"]["schemes"],
            serde_json::json!([guestlist_core::deeplink::SCHEME]),
            "the scheme the bundler registers is the one the links use"
        );
        assert_eq!(
            conf["bundle"]["targets"],
            serde_json::json!(["deb", "rpm", "appimage", "msi", "nsis", "dmg"])
        );
    }

    #[test]
    fn the_pending_link_is_taken_once() {
        let p = Pending::default();
        assert_eq!(p.take(), None);
        p.set("r1".into());
        assert_eq!(p.take().as_deref(), Some("r1"));
        assert_eq!(p.take(), None);
    }
}
