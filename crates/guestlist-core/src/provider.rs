//! Identity providers: the short key Guestlist files a request under, and the one human label
//! every surface shows for it (the desktop app's queue and detail, its OS notifications, the
//! server's webhook).
//!
//! Keys: the first identity's issuer, lower-cased (`facebook.com`, `google.com`, `mail` for
//! a workforce tenant's e-mail one-time passcode), [`EMAIL_ACCOUNT`] for an external tenant's
//! *local* e-mail account (e-mail + password or e-mail one-time passcode: an identity whose
//! signInType is `email`/`emailAddress`, whose issuer is the tenant's own domain), or, for users
//! who arrive with no `identities` claim (they are provisioned through an invitation),
//! [`MICROSOFT_ACCOUNT`] when the e-mail is a consumer Microsoft account domain (Outlook.com,
//! Hotmail, Live, MSN) and [`ENTRA_PROVIDER`] otherwise (a managed work or school account).

pub use crate::connector::ENTRA_PROVIDER;
use crate::connector::{ObjectIdentity, email_domain};

/// The key of a personal Microsoft account (Outlook.com, Hotmail, Live, MSN): not a managed
/// Entra ID work account, although both arrive without `identities`.
pub const MICROSOFT_ACCOUNT: &str = "microsoftaccount";

/// The key of an external tenant's local e-mail account (issue 17): the person signs in with
/// their e-mail address and a password or an e-mail one-time passcode, and the account is a
/// customer account of that tenant. Its identity's issuer is the tenant's own domain
/// (`contoso.onmicrosoft.com`), the same for every such person, so the key names the sign-in
/// kind instead. Not to be confused with `mail`, the issuer of a *workforce* tenant's e-mail
/// one-time passcode (a federated identity).
pub const EMAIL_ACCOUNT: &str = "email";

/// `true` for the signInType of a local e-mail account: `email`, as the custom authentication
/// extensions' `userSignUpInfo.identities` carry it ("Retrieve and return data from an
/// OnAttributeCollectionSubmit event"), or `emailAddress` (also `emailAddress1`, … : "a custom
/// string that starts with emailAddress"), as Graph's `objectIdentity` names it. Case-insensitive.
pub fn is_local_email_sign_in(sign_in_type: &str) -> bool {
    let t = sign_in_type.trim().to_ascii_lowercase();
    t == "email" || t.starts_with("emailaddress")
}

/// The provider key of one identity: [`EMAIL_ACCOUNT`] for a local e-mail account
/// ([`is_local_email_sign_in`]), otherwise its issuer, lower-cased (`google.com`,
/// `facebook.com`, `mail`, a custom federation's issuer). The request's
/// [`crate::model::IdentityKey::issuer`] and the policies' `identity_providers` use this key.
pub fn identity_provider_key(identity: &ObjectIdentity) -> String {
    if is_local_email_sign_in(&identity.sign_in_type) {
        EMAIL_ACCOUNT.to_owned()
    } else {
        identity.issuer.to_ascii_lowercase()
    }
}

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

/// The label of every provider key [`provider_label`] does not know (a custom OIDC or SAML
/// federation, an issuer Entra adds later). A fixed word rather than the key itself: the label
/// set stays closed, so the surfaces that show it (a webhook's chat message, an OS
/// notification) never show text an issuer chose; the detail view shows the issuer itself.
pub const OTHER_PROVIDER_LABEL: &str = "Other provider";

/// The human label of a provider key ([`provider_key`]; compared without case), the one every
/// surface shows: `facebook.com` → `Facebook`, `google.com` → `Google`, `mail` (e-mail one-time
/// passcode) → `Email OTP`, `email` ([`EMAIL_ACCOUNT`]: an external tenant's local e-mail
/// account) → `Email (external tenant)`, `entra` or `""` (no `identities`: a managed work or
/// school account) → `Entra ID`, `microsoftaccount` → `Microsoft account`, any other key
/// [`OTHER_PROVIDER_LABEL`]. The issuers are those `docs/CONTRACTS.md` §1 documents for the
/// `identities` claim of Entra External ID's API connectors.
pub fn provider_label(key: &str) -> &'static str {
    match key.trim().to_ascii_lowercase().as_str() {
        "facebook.com" => "Facebook",
        "google.com" => "Google",
        "mail" => "Email OTP",
        EMAIL_ACCOUNT => "Email (external tenant)",
        "" | ENTRA_PROVIDER => "Entra ID",
        MICROSOFT_ACCOUNT => "Microsoft account",
        _ => OTHER_PROVIDER_LABEL,
    }
}

/// The provider keys [`provider_label`] names (any other key is [`OTHER_PROVIDER_LABEL`]).
pub const LABELLED: &[&str] = &[
    "facebook.com",
    "google.com",
    "mail",
    EMAIL_ACCOUNT,
    ENTRA_PROVIDER,
    MICROSOFT_ACCOUNT,
    "",
];

/// The TypeScript module the desktop UI reads its provider labels from
/// (`ui/src/bindings/providerLabels.ts`, written with the ts-rs bindings by guestlist-reviewer's
/// `export_bindings` test): `PROVIDER_LABELS`, [`provider_label`] of every key of
/// [`LABELLED`], and `OTHER_PROVIDER_LABEL`, so that the UI keeps no copy of its own. The UI
/// translates a label only through its catalogue's `provider.<key>` messages.
pub fn labels_ts() -> String {
    let mut out = String::from(
        "// Generated from guestlist_core::provider::provider_label by guestlist-reviewer's \
         export_bindings test. Do not edit this file manually.\n\n\
         /** The label of each provider key the label function names (keys lower-case). */\n\
         export const PROVIDER_LABELS: Readonly<Record<string, string>> = {\n",
    );
    for key in LABELLED {
        out.push_str(&format!("  {key:?}: {:?},\n", provider_label(key)));
    }
    out.push_str("};\n\n/** The label of every other provider key. */\n");
    out.push_str(&format!(
        "export const OTHER_PROVIDER_LABEL = {OTHER_PROVIDER_LABEL:?};\n"
    ));
    out
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
    }

    /// Every issuer CONTRACTS.md §1 documents (Google, Facebook, e-mail one-time passcode; no
    /// `identities` for Entra ID and Microsoft accounts), plus unknown ones, from the claims
    /// as the connectors receive them to the label.
    #[test]
    fn every_documented_issuer_has_its_label() {
        for (issuer, email, label) in [
            ("google.com", "ann@gmail.com", "Google"),
            ("Google.com", "ann@gmail.com", "Google"),
            ("facebook.com", "ann@contoso.com", "Facebook"),
            ("mail", "ann@contoso.com", "Email OTP"),
            (EMAIL_ACCOUNT, "ann@contoso.com", "Email (external tenant)"),
            ("", "ann@fabrikam.com", "Entra ID"),
            ("", "ann@hotmail.com", "Microsoft account"),
            ("", "ann@outlook.fr", "Microsoft account"),
            ("", "ann@live.se", "Microsoft account"),
            ("", "ann@msn.com", "Microsoft account"),
            ("appleid.apple.com", "ann@icloud.com", OTHER_PROVIDER_LABEL),
            (
                "login.partner.example",
                "ann@partner.example",
                OTHER_PROVIDER_LABEL,
            ),
            ("Google", "ann@gmail.com", OTHER_PROVIDER_LABEL),
            ("google.com\u{202e}", "ann@gmail.com", OTHER_PROVIDER_LABEL),
        ] {
            assert_eq!(
                provider_label(&provider_key(issuer, email)),
                label,
                "{issuer:?} {email}"
            );
        }
        assert_eq!(provider_label(""), "Entra ID");
        assert_eq!(provider_label(ENTRA_PROVIDER), "Entra ID");
        assert_eq!(provider_label(MICROSOFT_ACCOUNT), "Microsoft account");
        assert_eq!(provider_label("FACEBOOK.COM"), "Facebook");
    }

    /// An external tenant's local e-mail account is keyed `email` whatever the tenant's domain
    /// (its issuer), in either spelling of its signInType; federated identities by issuer.
    #[test]
    fn identity_keys_of_local_and_federated_identities() {
        let id = |t: &str, issuer: &str| ObjectIdentity {
            sign_in_type: t.into(),
            issuer: issuer.into(),
            issuer_assigned_id: "ann@fabrikam.com".into(),
        };
        for t in ["email", "emailAddress", "EmailAddress", "emailAddress1"] {
            assert_eq!(
                identity_provider_key(&id(t, "contoso.onmicrosoft.com")),
                EMAIL_ACCOUNT,
                "{t}"
            );
        }
        assert_eq!(
            identity_provider_key(&id("federated", "Google.com")),
            "google.com"
        );
        // A workforce tenant's e-mail one-time passcode is federated, issuer `mail`.
        assert_eq!(identity_provider_key(&id("federated", "mail")), "mail");
        assert!(!is_local_email_sign_in("federated"));
        assert!(!is_local_email_sign_in("userName"));
        assert!(!is_local_email_sign_in("emails"));
    }

    #[test]
    fn the_ui_table_is_the_label_function() {
        let ts = labels_ts();
        for key in LABELLED {
            assert!(
                ts.contains(&format!("  {key:?}: {:?},\n", provider_label(key))),
                "{key} missing from {ts}"
            );
        }
        assert!(ts.contains("export const PROVIDER_LABELS"));
        assert!(ts.contains("export const OTHER_PROVIDER_LABEL = \"Other provider\";"));
    }
}
