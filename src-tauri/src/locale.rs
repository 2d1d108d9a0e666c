//! The OS language, for the UI's choice of message catalogue (issue 15 §1, "the language follows
//! the OS locale").
//!
//! The UI picks English, French or Swedish from this list (first match wins) unless the approver
//! chose a language in settings; it falls back to the webview's `navigator.languages`.
//!
//! The shell's own texts (notifications, tray: [`crate::messages`]) follow the UI: the UI calls
//! [`set_ui_language`] at start and whenever its language changes, and the choice is kept in the
//! data directory ([`LANGUAGE_FILE`]) so notifications raised in the background after a restart,
//! before the window has loaded, are in it too.

use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

use tauri::{AppHandle, Runtime, State};

use crate::messages::Lang;

/// The file in the data directory that keeps the UI language: its two-letter code (`fr`).
pub const LANGUAGE_FILE: &str = "ui-language";

/// The shell's language (managed state): what the UI last chose, else the stored choice, else the
/// OS's, else English.
#[derive(Debug, Default)]
pub struct UiLanguage {
    current: RwLock<Lang>,
    file: OnceLock<PathBuf>,
}

impl UiLanguage {
    /// The language now.
    pub fn get(&self) -> Lang {
        self.current.read().map(|l| *l).unwrap_or_default()
    }

    /// Starts from the data directory `dir`: the stored choice ([`LANGUAGE_FILE`]) when there is
    /// one, else the first OS locale we have texts for, else English. Later choices are stored
    /// there. Called once at start.
    pub fn load(&self, dir: &Path) {
        let file = dir.join(LANGUAGE_FILE);
        let stored = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| Lang::from_tag(&s));
        let lang = stored
            .or_else(|| os_locales().iter().find_map(|l| Lang::from_tag(l)))
            .unwrap_or_default();
        self.set_current(lang);
        let _ = self.file.set(file);
    }

    fn set_current(&self, lang: Lang) {
        if let Ok(mut l) = self.current.write() {
            *l = lang;
        }
    }

    /// Makes `lang` the language now and stores it (write to a temporary file, then rename, so a
    /// crash leaves the old choice or the new one). Errors: the file cannot be written (the
    /// language still applies until the app quits).
    pub fn choose(&self, lang: Lang) -> std::io::Result<()> {
        self.set_current(lang);
        let Some(file) = self.file.get() else {
            return Ok(());
        };
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, lang.code())?;
        std::fs::rename(&tmp, file)
    }
}

/// The language of the shell's texts in `app` (English before [`UiLanguage`] is managed).
pub fn current<R: Runtime>(app: &AppHandle<R>) -> Lang {
    use tauri::Manager;
    app.try_state::<UiLanguage>()
        .map(|s| s.get())
        .unwrap_or_default()
}

/// Sets the language of the notifications and the tray to the UI's (`language`: a BCP 47 tag or
/// a two-letter code; one we have no texts for means English), stores it for the next start, and
/// relabels the tray menu and the notification buttons at once. Returns the code applied (`en`,
/// `fr` or `sv`).
///
/// Never fails for the UI: a store that cannot be written is logged (the language still applies
/// for this run).
#[tauri::command]
pub fn set_ui_language<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, UiLanguage>,
    language: String,
) -> String {
    let lang = Lang::from_tag_or_english(&language);
    if let Err(e) = state.choose(lang) {
        tracing::warn!(error = %e, "cannot store the UI language");
    }
    crate::background::relabel_tray(&app, lang);
    if let Err(e) = crate::notify::register_buttons(&app, lang) {
        tracing::warn!(error = %e, "cannot relabel the notification buttons");
    }
    lang.code().to_owned()
}

/// The user's preferred locales as BCP 47 tags, most preferred first (`["fr-FR", "en-US"]`).
///
/// Read with the `sys-locale` crate: on Linux and other Unix systems from `LC_ALL`,
/// `LC_MESSAGES` then `LANG` (`fr_FR.UTF-8` → `fr-FR`); on Windows from the user's UI languages;
/// on macOS from the user's preferred languages. Empty when the system names none (or only `C`
/// / `POSIX`). Never fails.
#[tauri::command]
pub fn os_locales() -> Vec<String> {
    sys_locale::get_locales()
        .filter(|l| !matches!(l.as_str(), "" | "C" | "POSIX" | "c"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a child process with the locale variables it sets (the parent's are left alone).
    const CHILD: &str = "GUESTLIST_LOCALE_TEST_CHILD";

    #[test]
    fn os_locales_follow_the_unix_locale_variables_as_bcp47_tags() {
        if cfg!(not(target_os = "linux")) {
            return; // Windows and macOS read the user's settings, not the environment
        }
        if std::env::var_os(CHILD).is_some() {
            let got = os_locales();
            assert_eq!(got.first().map(String::as_str), Some("sv-SE"), "{got:?}");
            return;
        }
        let run = |vars: &[(&str, &str)]| {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--exact",
                "locale::tests::os_locales_follow_the_unix_locale_variables_as_bcp47_tags",
            ])
            .env(CHILD, "1")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG");
            for (k, v) in vars {
                cmd.env(k, v);
            }
            cmd.output().unwrap()
        };
        // LANG alone, and LC_ALL winning over LANG.
        for vars in [
            &[("LANG", "sv_SE.UTF-8")][..],
            &[("LANG", "fr_FR.UTF-8"), ("LC_ALL", "sv_SE.UTF-8")][..],
        ] {
            let out = run(vars);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains("1 passed"),
                "{vars:?}: the child ran no test: {stdout}"
            );
            assert!(
                out.status.success(),
                "{vars:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        // The C locale names no language: the UI falls back to the webview's, then English.
        assert!(os_locales().iter().all(|l| l != "C" && l != "POSIX"));
    }

    /// The choice survives a restart (a new state loading the same directory), and a language we
    /// have no texts for is English.
    #[test]
    fn the_ui_language_is_stored_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = UiLanguage::default();
        first.load(dir.path());
        first.choose(Lang::Sv).unwrap();
        assert_eq!(first.get(), Lang::Sv);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LANGUAGE_FILE)).unwrap(),
            "sv"
        );
        let after_restart = UiLanguage::default();
        after_restart.load(dir.path());
        assert_eq!(after_restart.get(), Lang::Sv);
        after_restart
            .choose(Lang::from_tag_or_english("de-DE"))
            .unwrap();
        let again = UiLanguage::default();
        again.load(dir.path());
        assert_eq!(again.get(), Lang::En);
    }
}
