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

    #[test]
    fn os_locales_are_bcp47_tags_without_the_c_locale() {
        for l in os_locales() {
            assert!(
                !l.contains('_') && !l.contains('.'),
                "not a BCP 47 tag: {l}"
            );
            assert_ne!(l, "C");
        }
    }
}
