//! Identity providers: the short key Guestlist files a request under, and the one human label
//! every surface shows for it (the desktop app's queue and detail, its OS notifications, the
//! server's webhook).
//!
//! Keys: the first identity's issuer, lower-cased (`facebook.com`, `google.com`, `mail` for
//! e-mail one-time passcode), or, for users who arrive with no `identities` claim (they are
//! provisioned through an invitation), [`MICROSOFT_ACCOUNT`] when the e-mail is a consumer
//! Microsoft account domain (Outlook.com, Hotmail, Live, MSN) and [`ENTRA_PROVIDER`] otherwise
//! (a managed work or school account).

pub use crate::connector::ENTRA_PROVIDER;
use crate::connector::email_domain;

/// The key of a personal Microsoft account (Outlook.com, Hotmail, Live, MSN): not a managed
/// Entra ID work account, although both arrive without `identities`.
pub const MICROSOFT_ACCOUNT: &str = "microsoftaccount";

/// `true` for the e-mail domains of consumer Microsoft accounts: `outlook.*`, `hotmail.*`,
/// `live.*`, `msn.com`, `passport.com`, `windowslive.com`.
pub fn is_microsoft_account_domain(domain: &str) -> bool {
    let d = domain.trim().to_ascii_lowercase();
    let first = d.split('.').next().unwrap_or("");
    matches!(first, "outlook" | "hotmail" | "live") && d.contains('.')
        || matches!(d.as_str(), "msn.com" | "passport.com" | "windowslive.com")
}

/// The provider key of a request from its identity issuer (`""` when none was sent) and its
/// e-mail (see the module docs).
pub fn provider_key(issuer: &str, email: &str) -> String {
    if issuer.trim().is_empty() {
        if is_microsoft_account_domain(&email_domain(email)) {
            MICROSOFT_ACCOUNT.to_owned()
        } else {
            ENTRA_PROVIDER.to_owned()
        }
    } else {
        issuer.trim().to_ascii_lowercase()
    }
}

/// The human label of a provider key: `Facebook`, `Google`, `Email OTP`, `Entra ID`,
/// `Microsoft account`; any other issuer as it is.
pub fn provider_label(key: &str) -> String {
    match key.to_ascii_lowercase().as_str() {
        "facebook.com" => "Facebook".into(),
        "google.com" => "Google".into(),
        "mail" => "Email OTP".into(),
        "" | ENTRA_PROVIDER => "Entra ID".into(),
        MICROSOFT_ACCOUNT => "Microsoft account".into(),
        _ => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_labels() {
        assert_eq!(provider_key("", "linnea@hotmail.com"), MICROSOFT_ACCOUNT);
        assert_eq!(provider_key("", "a@outlook.fr"), MICROSOFT_ACCOUNT);
        assert_eq!(provider_key("", "a@live.se"), MICROSOFT_ACCOUNT);
        assert_eq!(provider_key("", "a@fabrikam.com"), ENTRA_PROVIDER);
        assert_eq!(provider_key("", "a@liverpool.ac.uk"), ENTRA_PROVIDER);
        assert_eq!(provider_key("Google.com", "a@hotmail.com"), "google.com");
        assert_eq!(provider_label(MICROSOFT_ACCOUNT), "Microsoft account");
        assert_eq!(provider_label(ENTRA_PROVIDER), "Entra ID");
        assert_eq!(provider_label("facebook.com"), "Facebook");
        assert_eq!(provider_label("mail"), "Email OTP");
        assert_eq!(provider_label("github.com"), "github.com");
    }
}
