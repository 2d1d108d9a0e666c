//! Desktop conventions: the log file, the remembered window, the opt-in start at login.
//!
//! - **Log file** (tauri-plugin-log): every `tracing` event of every crate (through `tracing`'s
//!   `log` feature: no tracing subscriber is installed) goes to stderr and to `guestlist.log` in
//!   the app's log directory (`$XDG_DATA_HOME/com.guestlist.desktop/logs` on Linux,
//!   `~/Library/Logs/com.guestlist.desktop` on macOS, `%LOCALAPPDATA%\com.guestlist.desktop\logs`
//!   on Windows), or in `<GUESTLIST_DATA_DIR>/logs` when that is set. A file past
//!   [`LOG_MAX_BYTES`] is rotated; [`LOG_KEEP`] rotated files are kept. The level is
//!   `GUESTLIST_LOG` ([`log_levels`]), `info` by default; personal data (names, e-mail
//!   addresses) is logged at `debug` only.
//! - **Window state** (tauri-plugin-window-state): size, position, maximized and full screen are
//!   saved on exit and restored at start (not the visibility: a window hidden in the tray at
//!   exit still opens at the next start). File: `.window-state.json` in the app's config
//!   directory, or `<GUESTLIST_DATA_DIR>/window-state.json`.
//! - **Start at login** (tauri-plugin-autostart): off until the approver turns it on in
//!   settings ([`set_autostart`]); the login entry starts `guestlist --autostart`, which stays in
//!   the tray (no window) so notifications keep coming.

use std::path::Path;

use guestlist_reviewer::ReviewerError;
use log::LevelFilter;
use tauri::plugin::TauriPlugin;
use tauri::{Runtime, State};
use tauri_plugin_autostart::AutoLaunchManager;
use tauri_plugin_log::{RotationStrategy, Target, TargetKind};
use tauri_plugin_window_state::StateFlags;

/// The log file's size at which it is rotated, in bytes (1 MiB).
pub const LOG_MAX_BYTES: u128 = 1024 * 1024;

/// How many rotated log files are kept next to the current one.
pub const LOG_KEEP: usize = 4;

/// The log file's name, without its `.log` extension.
pub const LOG_FILE: &str = "guestlist";

/// The argument the login entry starts the app with: start in the tray, window hidden.
pub const AUTOSTART_ARG: &str = "--autostart";

/// Error code of the start-at-login commands (the message says why).
pub const AUTOSTART_ERROR: guestlist_core::Code = guestlist_core::Code::AutostartUnavailable;

/// Targets quieted to `warn` unless `GUESTLIST_LOG` names them: zbus (the D-Bus of the keyring,
/// notifications and single instance) logs every handshake and call at `info` through its
/// spans, which `tracing`'s `log` bridge reports under `tracing::span`.
pub const QUIET_TARGETS: [&str; 2] = ["zbus", "tracing::span"];

/// The default level and per-target levels of a `GUESTLIST_LOG` value: comma-separated
/// `level` or `target=level` items (`off`, `error`, `warn`, `info`, `debug`, `trace`; a target
/// is a module path prefix such as `guestlist_reviewer::sync`). Items that do not parse are
/// skipped; no default level given: `info`. [`QUIET_TARGETS`] not named get `warn`.
pub fn log_levels(spec: &str) -> (LevelFilter, Vec<(String, LevelFilter)>) {
    let mut level = LevelFilter::Info;
    let mut targets: Vec<(String, LevelFilter)> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some((target, l)) => {
                if let (false, Ok(l)) = (target.trim().is_empty(), l.trim().parse()) {
                    targets.push((target.trim().to_owned(), l));
                }
            }
            None => {
                if let Ok(l) = item.parse() {
                    level = l;
                }
            }
        }
    }
    for quiet in QUIET_TARGETS {
        if !targets.iter().any(|(t, _)| t == quiet) {
            targets.push((quiet.to_owned(), LevelFilter::Warn));
        }
    }
    (level, targets)
}

/// The log plugin: stderr and the rotated log file (see the module docs). It installs the
/// process's `log` logger, so register it once per process (the app, not unit tests).
pub fn log_plugin<R: Runtime>(data_dir: Option<&Path>, spec: &str) -> TauriPlugin<R> {
    let file = match data_dir {
        Some(dir) => TargetKind::Folder {
            path: dir.join("logs"),
            file_name: Some(LOG_FILE.into()),
        },
        None => TargetKind::LogDir {
            file_name: Some(LOG_FILE.into()),
        },
    };
    let (level, targets) = log_levels(spec);
    let mut b = tauri_plugin_log::Builder::new()
        .clear_targets()
        .targets([Target::new(TargetKind::Stderr), Target::new(file)])
        .level(level)
        .max_file_size(LOG_MAX_BYTES)
        .rotation_strategy(RotationStrategy::KeepSome(LOG_KEEP));
    for (target, l) in targets {
        b = b.level_for(target, l);
    }
    b.build()
}

/// The window-state plugin (see the module docs). `data_dir`: `GUESTLIST_DATA_DIR`.
pub fn window_state_plugin<R: Runtime>(data_dir: Option<&Path>) -> TauriPlugin<R> {
    let mut b = tauri_plugin_window_state::Builder::default()
        .with_state_flags(StateFlags::all() & !StateFlags::VISIBLE);
    // The plugin joins the name to the app's config directory: an absolute path replaces it.
    if let Some(file) = data_dir.map(|d| d.join("window-state.json"))
        && let Some(file) = file.to_str()
    {
        b = b.with_filename(file);
    }
    b.build()
}

/// The start-at-login plugin; the login entry passes [`AUTOSTART_ARG`].
pub fn autostart_plugin<R: Runtime>() -> TauriPlugin<R> {
    tauri_plugin_autostart::init(
        tauri_plugin_autostart::MacosLauncher::LaunchAgent,
        Some(vec![AUTOSTART_ARG]),
    )
}

/// Whether this process was started by the login entry.
pub fn started_at_login() -> bool {
    std::env::args().skip(1).any(|a| a == AUTOSTART_ARG)
}

fn autostart_error(e: impl std::fmt::Display) -> ReviewerError {
    ReviewerError::new(AUTOSTART_ERROR, format!("start at login: {e}"))
}

/// Whether Guestlist starts at login (the OS's login entry exists: `~/.config/autostart` on
/// Linux, a Launch Agent on macOS, the `Run` registry key on Windows).
///
/// Errors: [`AUTOSTART_ERROR`] when the entry cannot be read.
#[tauri::command]
pub fn autostart_enabled(autostart: State<'_, AutoLaunchManager>) -> Result<bool, ReviewerError> {
    autostart.is_enabled().map_err(autostart_error)
}

/// Turns the start at login on or off.
///
/// Errors: [`AUTOSTART_ERROR`] when the entry cannot be written or removed.
#[tauri::command]
pub fn set_autostart(
    autostart: State<'_, AutoLaunchManager>,
    enabled: bool,
) -> Result<(), ReviewerError> {
    let done = if enabled {
        autostart.enable()
    } else {
        autostart.disable()
    };
    done.map_err(autostart_error)?;
    tracing::info!(enabled, "start at login changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guestlist_log_sets_the_default_and_per_target_levels() {
        let quiet = |t: &str| (t.to_owned(), LevelFilter::Warn);
        assert_eq!(
            log_levels(""),
            (
                LevelFilter::Info,
                vec![quiet("zbus"), quiet("tracing::span")]
            )
        );
        assert_eq!(log_levels("debug").0, LevelFilter::Debug);
        assert_eq!(
            log_levels("warn, guestlist_reviewer::sync=trace,zbus=debug,=debug,x=loud,nonsense"),
            (
                LevelFilter::Warn,
                vec![
                    ("guestlist_reviewer::sync".into(), LevelFilter::Trace),
                    ("zbus".into(), LevelFilter::Debug),
                    quiet("tracing::span"),
                ]
            )
        );
    }
}
