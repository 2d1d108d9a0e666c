//! # guestlist-desktop
//!
//! The Tauri v2 shell of the approver's app. It owns windows, tray, OS notifications, the
//! single-instance lock and the IPC surface — nothing else. Every command is a one-liner into
//! [`guestlist_reviewer::Reviewer`] (sign-in, cache, sync, outbox, Graph provisioning live there);
//! this crate must not grow business logic, talk to Graph or the approval API, or touch SQLite.
//!
//! - [`commands`]: the `#[tauri::command]`s the UI invokes.
//! - [`background`]: the sync loop, the `queue-changed` and `status-changed` events,
//!   notifications, the tray count.
//! - [`notify`]: the notifications' buttons and clicks (open a request, approve from the
//!   notification), the `open-request` event.
//! - [`opener`]: how sign-in opens the authorize URL (system browser, or an HTTP GET in E2E).
//! - [`deeplink`]: `guestlist://request/<id>` opens that request (also from a second launch).
//! - [`desktop`]: the rotated log file, the remembered window, the opt-in start at login.
//! - [`locale`], [`messages`]: the OS language; notifications and tray in the UI's language.

pub mod background;
pub mod commands;
pub mod deeplink;
pub mod desktop;
pub mod locale;
pub mod messages;
pub mod notify;
pub mod opener;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use guestlist_reviewer::{Reviewer, ReviewerError};
use tauri::{Manager, Runtime};
use tokio::sync::Notify;

/// The event the background sync emits when the cached queue may have changed.
pub const QUEUE_CHANGED: &str = "queue-changed";

/// Error code when the reviewer could not be opened at start (the message says why).
pub const NOT_READY: guestlist_core::Code = guestlist_core::Code::AppNotReady;

/// How the shell is started. [`Options::from_env`] reads the `GUESTLIST_*` variables.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where settings, cache and outbox live (`GUESTLIST_DATA_DIR`); `None`: the platform's app
    /// data directory.
    pub data_dir: Option<PathBuf>,
    /// Seconds between background syncs (`GUESTLIST_SYNC_INTERVAL_SECS`, default 30); `None`: no
    /// background task (tests).
    pub sync_interval: Option<Duration>,
    /// Create the tray icon (and hide to the tray on close).
    pub tray: bool,
    /// Take the single-instance lock (a second launch focuses the first window).
    pub single_instance: bool,
}

impl Options {
    /// The options of the real app, from the environment.
    pub fn from_env() -> Self {
        let secs = std::env::var("GUESTLIST_SYNC_INTERVAL_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(30)
            .max(1);
        Options {
            data_dir: std::env::var_os("GUESTLIST_DATA_DIR").map(PathBuf::from),
            sync_interval: Some(Duration::from_secs(secs)),
            tray: std::env::var("GUESTLIST_NO_TRAY").is_err(),
            single_instance: true,
        }
    }
}

/// The opener factory: one closure per sign-in.
type MakeOpener = Box<dyn Fn() -> opener::OpenUrl + Send + Sync>;

/// The managed state every command reads. Filled once at start (see [`run_app`]).
#[derive(Default)]
pub struct AppState {
    reviewer: OnceLock<Result<Reviewer, ReviewerError>>,
    make_opener: OnceLock<MakeOpener>,
    wake: Arc<Notify>,
}

impl AppState {
    /// The reviewer, or the error that kept it from opening (shown by the UI with its code).
    ///
    /// Errors: the [`Reviewer::open`] error, e.g. `settings.invalid` or `storage.error`;
    /// [`NOT_READY`] while the app is still starting.
    pub fn reviewer(&self) -> Result<&Reviewer, ReviewerError> {
        match self.reviewer.get() {
            Some(Ok(r)) => Ok(r),
            Some(Err(e)) => Err(e.clone()),
            None => Err(ReviewerError::new(NOT_READY, "Guestlist is still starting")),
        }
    }

    /// A fresh opener for one sign-in.
    pub fn opener(&self) -> opener::OpenUrl {
        match self.make_opener.get() {
            Some(make) => make(),
            None => Box::new(|_| Err("the app is still starting".to_owned())),
        }
    }

    /// Asks the background task to sync now (after sign-in, from the tray).
    pub fn wake_sync(&self) {
        self.wake.notify_one();
    }
}

/// Registers the plugins, commands, state, tray and background task on `builder`.
///
/// Generic over the runtime so `tauri::test`'s mock runtime builds the same app. With
/// [`Options::data_dir`] set the reviewer opens here; otherwise in `setup`, once the platform's
/// app data directory is known.
pub fn run_app<R: Runtime>(builder: tauri::Builder<R>, options: Options) -> tauri::Builder<R> {
    let state = AppState::default();
    // The shell's texts: the UI's last language (kept beside the reviewer's data).
    let language = locale::UiLanguage::default();
    if let Some(dir) = &options.data_dir {
        let _ = state
            .reviewer
            .set(tauri::async_runtime::block_on(open_reviewer(dir)));
        language.load(dir);
    }
    let mut builder = builder
        .manage(state)
        .manage(deeplink::Pending::default())
        .manage(language);
    if options.single_instance {
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            background::show_main_window(app);
        }));
    }
    let tray = options.tray;
    builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(tauri::generate_handler![
            commands::get_settings,
            commands::save_settings,
            commands::sign_in,
            commands::sign_out,
            commands::status,
            commands::queue,
            commands::sync,
            commands::detail,
            commands::approve,
            commands::deny,
            commands::undo,
            commands::approver_rights,
            commands::history,
            commands::reopen,
            locale::os_locales,
            locale::set_ui_language,
            deeplink::take_opened_request,
            desktop::autostart_enabled,
            desktop::set_autostart,
        ])
        .on_window_event(move |window, event| {
            // With a tray icon, closing the window keeps the app running in the tray.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && tray
                && window
                    .app_handle()
                    .tray_by_id(background::TRAY_ID)
                    .is_some()
            {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .setup(move |app| {
            let handle = app.handle().clone();
            let state = app.state::<AppState>();
            if state.reviewer.get().is_none() {
                let opened = match app.path().app_data_dir() {
                    Ok(dir) => tauri::async_runtime::block_on(open_reviewer(&dir)),
                    Err(e) => Err(ReviewerError::new(
                        NOT_READY,
                        format!("no app data directory: {e}"),
                    )),
                };
                let _ = state.reviewer.set(opened);
            }
            if let Err(e) = state.reviewer() {
                tracing::error!(code = %e.code, message = %e.message, "cannot open the reviewer");
            }
            let opener_handle = handle.clone();
            let _ = state
                .make_opener
                .set(Box::new(move || opener::for_app(&opener_handle)));
            deeplink::register(&handle);
            if options.data_dir.is_none()
                && let Ok(dir) = app.path().app_data_dir()
            {
                app.state::<locale::UiLanguage>().load(&dir);
            }
            if let Err(e) = notify::register(&handle) {
                tracing::warn!(error = %e, "notification actions unavailable");
            }
            if options.tray
                && let Err(e) = background::create_tray(&handle)
            {
                tracing::warn!(error = %e, "no tray icon");
            }
            // Started by the login entry: stay in the tray until the approver opens the window.
            if options.tray
                && desktop::started_at_login()
                && handle.tray_by_id(background::TRAY_ID).is_some()
                && let Some(w) = handle.get_webview_window("main")
            {
                let _ = w.hide();
            }
            if let (Ok(reviewer), Some(every)) = (state.reviewer(), options.sync_interval) {
                tauri::async_runtime::spawn(background::run(
                    handle.clone(),
                    reviewer.clone(),
                    every,
                    state.wake.clone(),
                ));
                tauri::async_runtime::spawn(background::live(handle.clone(), reviewer.clone()));
                tauri::async_runtime::spawn(background::outbox_changes(
                    handle.clone(),
                    reviewer.clone(),
                ));
                tauri::async_runtime::spawn(background::status_changes(
                    handle.clone(),
                    reviewer.clone(),
                ));
            }
            Ok(())
        })
}

/// Opens the reviewer on `dir` (created if missing).
async fn open_reviewer(dir: &Path) -> Result<Reviewer, ReviewerError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        ReviewerError::new(
            NOT_READY,
            format!("cannot create the data directory {}: {e}", dir.display()),
        )
    })?;
    Reviewer::open(dir, None).await
}

/// Starts the real app (the `guestlist` binary's `main`).
///
/// Besides [`run_app`]'s plugins it registers the ones that hold process-wide or per-user state
/// (the `log` logger, the window-state file, the login entry), which unit tests leave out:
/// [`desktop`] describes them.
pub fn main() {
    let options = Options::from_env();
    let spec = std::env::var("GUESTLIST_LOG").unwrap_or_default();
    let data_dir = options.data_dir.clone();
    // The single-instance plugin must come first: a second launch exits before the others.
    let app = run_app(tauri::Builder::default(), options)
        .plugin(desktop::log_plugin(data_dir.as_deref(), &spec))
        .plugin(desktop::window_state_plugin(data_dir.as_deref()))
        .plugin(desktop::autostart_plugin())
        .build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(|handle, event| {
            if let tauri::RunEvent::Ready = event {
                software_rendering(handle);
            }
        }),
        Err(e) => {
            tracing::error!(error = %e, "cannot start Guestlist");
            std::process::exit(1);
        }
    }
}

/// Makes the main window's WebKitGTK webview paint without GPU compositing
/// (`WEBKIT_HARDWARE_ACCELERATION_POLICY_NEVER`,
/// <https://webkitgtk.org/reference/webkit2gtk/stable/method.Settings.set_hardware_acceleration_policy.html>;
/// the WebKitGTK 2.50 default here is `ALWAYS`).
///
/// The UI is a list and forms: no 3D transforms, video, WebGL or animation beyond a sync
/// spinner. In compositing mode the web process keeps OpenGL textures for the layers' tiles, the
/// glyph atlases and a scrolling layer per scrollable area; without a GPU (virtual machines,
/// remote desktops: Mesa's llvmpipe) all of that is process memory, about 80 MiB of the web
/// process's PSS with 10,000 cached requests (bench/NOTES.md, "Memory of the window").
///
/// Called on [`tauri::RunEvent::Ready`], which Tauri sends on the main thread right after it
/// built the config's window: the page has been requested but not yet loaded, so its first frame
/// is already painted this way. One effect outside the app: WebKitWebDriver's screenshot waits
/// for the page's next paint (tests/e2e/snapshot.mjs). No-op off Linux, and with
/// `GUESTLIST_GPU_COMPOSITING=1` (keeps WebKitGTK's own policy, e.g. on a machine whose GPU makes
/// compositing cheap).
#[cfg(target_os = "linux")]
fn software_rendering(app: &tauri::AppHandle) {
    use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
    if std::env::var("GUESTLIST_GPU_COMPOSITING").is_ok_and(|v| v == "1") {
        return;
    }
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    let set = window.with_webview(|webview| {
        if let Some(settings) = webview.inner().settings() {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    });
    if let Err(e) = set {
        tracing::warn!(error = %e, "cannot set the webview's rendering policy");
    }
}

#[cfg(not(target_os = "linux"))]
fn software_rendering(_app: &tauri::AppHandle) {}

#[cfg(test)]
mod tests;
