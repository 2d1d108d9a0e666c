//! The OS language, for the UI's choice of message catalogue (issue 15 §1, "the language follows
//! the OS locale").
//!
//! The UI picks English, French or Swedish from this list (first match wins) unless the approver
//! chose a language in settings; it falls back to the webview's `navigator.languages`.

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
}
