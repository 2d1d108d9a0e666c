//! The guest e-mails' texts (issue 14 §5): built-in templates in English, French and Swedish
//! for an approval and a denial, admin overrides per language
//! (`[guest_email.templates.<lang>]`), the language chosen from the request's `ui_locales`
//! claim exactly as the block pages' messages are
//! ([`guestlist_core::policy::language_for`]), and the rendering to a plain-text and a simple
//! HTML body.
//!
//! Placeholders, in subjects and bodies: `{display_name}` (the `displayName` claim, else given
//! name and surname, else the e-mail address), `{application}` (the name configured for the
//! sign-up's `client_id`, else `guest_email.application`), `{organisation}`
//! (`guest_email.organisation`) and, for the external-tenant approval (issue 17,
//! [`Outcome::FinishSignUp`]), `{sign_in_link}` (the application's sign-in URL,
//! `guest_email.sign_in_urls` by `client_id`, else `guest_email.sign_in_url`; in the HTML body a
//! link; a line holding it is left out when no URL is configured). Values come from the person signing up, so they are cleaned
//! (control characters removed, at most [`MAX_VALUE_CHARS`] characters) and, in the HTML body,
//! escaped (as is the template's own text); a blank line in a body starts a new paragraph.

use std::collections::BTreeMap;

use guestlist_core::connector::Claims;
use serde::{Deserialize, Serialize};

/// Longest placeholder value, in characters (a longer display name is cut).
pub const MAX_VALUE_CHARS: usize = 200;

/// Which e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request was approved: the account exists.
    Approved,
    /// The request was denied.
    Denied,
    /// An external tenant's request was approved (issue 17): no account exists yet; the person
    /// comes back through the application's sign-in link and finishes signing up.
    FinishSignUp,
}

/// An admin's override of one language's texts (`[guest_email.templates.<lang>]`); each unset
/// field keeps the built-in text of that language (English for a language with none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateOverride {
    /// Subject of the approval e-mail.
    pub approved_subject: Option<String>,
    /// Body (plain text; blank lines separate paragraphs) of the approval e-mail.
    pub approved_body: Option<String>,
    /// Subject of the denial e-mail.
    pub denied_subject: Option<String>,
    /// Body of the denial e-mail.
    pub denied_body: Option<String>,
    /// Subject of an external tenant's approval e-mail ("come back and finish", issue 17).
    pub finish_subject: Option<String>,
    /// Body of that e-mail; `{sign_in_link}` is the application's sign-in URL.
    pub finish_body: Option<String>,
}

/// One rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The language used (`en`, `fr`, `sv` or an overridden one).
    pub lang: String,
    /// The subject line (one line).
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body (values escaped).
    pub html: String,
}

/// The values of the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    /// `{display_name}`.
    pub display_name: String,
    /// `{application}`.
    pub application: String,
    /// `{organisation}`.
    pub organisation: String,
    /// `{sign_in_link}`: the application's sign-in URL, empty when none is configured.
    pub sign_in_link: String,
}

impl Values {
    /// The values for a sign-up's `claims`: `applications` maps a `client_id` to its name,
    /// `default_application` is used for any other, `organisation` as configured.
    pub fn of(
        claims: &Claims,
        applications: &BTreeMap<String, String>,
        default_application: &str,
        organisation: &str,
    ) -> Values {
        let given = [claims.given_name.as_deref(), claims.surname.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let display_name = claims
            .display_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| (!given.is_empty()).then_some(given))
            .unwrap_or_else(|| claims.email.clone());
        let application = claims
            .client_id
            .as_deref()
            .and_then(|id| applications.get(id))
            .map_or(default_application, String::as_str);
        Values {
            display_name: clean(&display_name),
            application: clean(application),
            organisation: clean(organisation),
            sign_in_link: String::new(),
        }
    }

    /// These values with `{sign_in_link}`: the URL `links` holds for the sign-up's
    /// `client_id`, else `default_link`, else none (issue 17).
    pub fn with_sign_in_link(
        mut self,
        claims: &Claims,
        links: &BTreeMap<String, String>,
        default_link: Option<&str>,
    ) -> Values {
        let link = claims
            .client_id
            .as_deref()
            .and_then(|id| links.get(id))
            .map(String::as_str)
            .or(default_link)
            .unwrap_or_default();
        self.sign_in_link = clean(link);
        self
    }
}

/// `v` without control characters (line breaks included: no header or paragraph injection),
/// whitespace runs collapsed, at most [`MAX_VALUE_CHARS`] characters.
fn clean(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_VALUE_CHARS)
        .collect()
}

/// The built-in (subject, body) of `outcome` in `lang`; `None` for a language without one.
pub fn builtin(outcome: Outcome, lang: &str) -> Option<(&'static str, &'static str)> {
    use Outcome::*;
    Some(match (lang, outcome) {
        ("en", Approved) => (
            "Your access to {application} has been approved",
            "Hello {display_name},\n\nYour request to access {application} at {organisation} has been approved. Sign in again with the same account you used to sign up.\n\nThis message was sent automatically; please do not reply.",
        ),
        ("en", Denied) => (
            "Your access request for {application}",
            "Hello {display_name},\n\nYour request to access {application} at {organisation} has been denied. Please contact an administrator if you believe this is an error.\n\nThis message was sent automatically; please do not reply.",
        ),
        ("fr", Approved) => (
            "Votre accès à {application} a été approuvé",
            "Bonjour {display_name},\n\nVotre demande d'accès à {application} chez {organisation} a été approuvée. Reconnectez-vous avec le compte utilisé lors de votre inscription.\n\nCe message a été envoyé automatiquement ; merci de ne pas y répondre.",
        ),
        ("fr", Denied) => (
            "Votre demande d'accès à {application}",
            "Bonjour {display_name},\n\nVotre demande d'accès à {application} chez {organisation} a été refusée. Contactez un administrateur si vous pensez qu'il s'agit d'une erreur.\n\nCe message a été envoyé automatiquement ; merci de ne pas y répondre.",
        ),
        ("sv", Approved) => (
            "Din åtkomst till {application} har godkänts",
            "Hej {display_name},\n\nDin begäran om åtkomst till {application} hos {organisation} har godkänts. Logga in igen med samma konto som du registrerade dig med.\n\nDet här meddelandet skickades automatiskt; svara inte på det.",
        ),
        ("en", FinishSignUp) => (
            "Finish signing up for {application}",
            "Hello {display_name},\n\nYour request to access {application} at {organisation} has been approved. Come back and sign up again with the same e-mail address to finish: your details are filled in for you, and your account is created then.\n\n{sign_in_link}\n\nThis message was sent automatically; please do not reply.",
        ),
        ("fr", FinishSignUp) => (
            "Finalisez votre inscription à {application}",
            "Bonjour {display_name},\n\nVotre demande d'accès à {application} chez {organisation} a été approuvée. Revenez vous inscrire avec la même adresse e-mail pour terminer : vos informations sont déjà remplies, et votre compte est créé à ce moment-là.\n\n{sign_in_link}\n\nCe message a été envoyé automatiquement ; merci de ne pas y répondre.",
        ),
        ("sv", FinishSignUp) => (
            "Slutför din registrering för {application}",
            "Hej {display_name},\n\nDin begäran om åtkomst till {application} hos {organisation} har godkänts. Kom tillbaka och registrera dig igen med samma e-postadress för att slutföra: dina uppgifter är redan ifyllda, och ditt konto skapas då.\n\n{sign_in_link}\n\nDet här meddelandet skickades automatiskt; svara inte på det.",
        ),
        ("sv", Denied) => (
            "Din begäran om åtkomst till {application}",
            "Hej {display_name},\n\nDin begäran om åtkomst till {application} hos {organisation} har avslagits. Kontakta en administratör om du tror att detta är ett misstag.\n\nDet här meddelandet skickades automatiskt; svara inte på det.",
        ),
        _ => return None,
    })
}

/// Renders the `outcome` e-mail for a request whose `ui_locales` claim is `ui_locales`: the
/// language is the first of its tags with a built-in text or an override in `overrides`
/// (else `en`); each text is the override's when set, else the built-in one (English for an
/// overridden language without a built-in text).
pub fn render(
    outcome: Outcome,
    ui_locales: Option<&str>,
    overrides: &BTreeMap<String, TemplateOverride>,
    values: &Values,
) -> Rendered {
    let lang = guestlist_core::policy::language_for(ui_locales, &|l| {
        overrides.contains_key(l) || builtin(outcome, l).is_some()
    });
    let (subject, body) = builtin(outcome, &lang)
        .or_else(|| builtin(outcome, "en"))
        .unwrap_or_default();
    let o = overrides.get(&lang);
    let (o_subject, o_body) = match outcome {
        Outcome::Approved => (
            o.and_then(|o| o.approved_subject.as_deref()),
            o.and_then(|o| o.approved_body.as_deref()),
        ),
        Outcome::Denied => (
            o.and_then(|o| o.denied_subject.as_deref()),
            o.and_then(|o| o.denied_body.as_deref()),
        ),
        Outcome::FinishSignUp => (
            o.and_then(|o| o.finish_subject.as_deref()),
            o.and_then(|o| o.finish_body.as_deref()),
        ),
    };
    let subject = clean(&fill(o_subject.unwrap_or(subject), values, &|s| {
        s.to_owned()
    }));
    let body = without_missing_link(o_body.unwrap_or(body), values);
    let body = body.as_str();
    let text = fill(body, values, &|s| s.to_owned());
    let html = html(body, values);
    Rendered {
        lang,
        subject,
        text,
        html,
    }
}

/// `body` without the lines that hold `{sign_in_link}` when there is no link to put there.
fn without_missing_link(body: &str, v: &Values) -> String {
    if !v.sign_in_link.is_empty() || !body.contains("{sign_in_link}") {
        return body.to_owned();
    }
    body.replace("\r\n", "\n")
        .split('\n')
        .filter(|l| !l.contains("{sign_in_link}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `template` with its placeholders replaced by `escape(value)`.
fn fill(template: &str, v: &Values, escape: &dyn Fn(&str) -> String) -> String {
    template
        .replace("{display_name}", &escape(&v.display_name))
        .replace("{application}", &escape(&v.application))
        .replace("{organisation}", &escape(&v.organisation))
        .replace("{sign_in_link}", &escape(&v.sign_in_link))
}

/// A minimal HTML document of `body`: each blank-line-separated paragraph a `<p>`, line
/// breaks inside one a `<br>`, the template's text and every value HTML-escaped.
fn html(body: &str, v: &Values) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif\">\n",
    );
    let body = body.replace("\r\n", "\n");
    for para in body.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        // Escape the template first (placeholders contain no special characters), then put in
        // the escaped values: nothing the person typed becomes markup.
        let escaped = fill(
            &escape_html(para).replace("{sign_in_link}", &link_html(&v.sign_in_link)),
            v,
            &escape_html,
        )
        .replace('\n', "<br>\n");
        out.push_str("<p>");
        out.push_str(&escaped);
        out.push_str("</p>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// The sign-in link as an HTML anchor, its URL escaped in both places (the URL comes from
/// the configuration, checked to be `http(s)`).
fn link_html(url: &str) -> String {
    let u = escape_html(url);
    format!("<a href=\"{u}\">{u}</a>")
}

/// `s` with `& < > " '` as HTML character references.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(name: &str) -> Values {
        let c = Claims::from_json(json!({"email": "g@example.com", "displayName": name})).unwrap();
        Values::of(&c, &BTreeMap::new(), "Partner portal", "Contoso")
    }

    #[test]
    fn language_follows_ui_locales_like_the_block_messages() {
        let none = BTreeMap::new();
        let v = values("Zoé");
        for (locales, lang, needle) in [
            (Some("fr-FR"), "fr", "a été approuvé"),
            (Some("de-DE sv-SE"), "sv", "har godkänts"),
            (Some("de-DE"), "en", "has been approved"),
            (None, "en", "has been approved"),
        ] {
            let r = render(Outcome::Approved, locales, &none, &v);
            assert_eq!(r.lang, lang);
            assert!(r.text.contains(needle), "{locales:?}: {}", r.text);
            assert!(r.text.contains("Zoé") && r.text.contains("Contoso"));
        }
        for lang in ["en", "fr", "sv"] {
            for o in [Outcome::Approved, Outcome::Denied] {
                assert!(builtin(o, lang).is_some());
            }
        }
    }

    #[test]
    fn overrides_replace_one_language_and_add_others() {
        let mut o = BTreeMap::new();
        o.insert(
            "fr".to_owned(),
            TemplateOverride {
                approved_subject: Some("Bienvenue chez {organisation}".into()),
                ..Default::default()
            },
        );
        o.insert(
            "de".to_owned(),
            TemplateOverride {
                approved_body: Some("Hallo {display_name}".into()),
                ..Default::default()
            },
        );
        let v = values("Zoé");
        let fr = render(Outcome::Approved, Some("fr"), &o, &v);
        assert_eq!(fr.subject, "Bienvenue chez Contoso");
        assert!(fr.text.contains("a été approuvée"), "built-in fr body kept");
        let de = render(Outcome::Approved, Some("de-AT"), &o, &v);
        assert_eq!(de.lang, "de");
        assert_eq!(de.text, "Hallo Zoé");
        assert!(de.subject.contains("approved"), "English subject");
    }

    #[test]
    fn values_are_escaped_in_html_and_cleaned_everywhere() {
        let v = values("<script>alert(1)</script> & \"x\"\r\nBcc: evil@example.com");
        let r = render(Outcome::Denied, None, &BTreeMap::new(), &v);
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(
            r.html
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;")
        );
        assert!(!r.text.contains('\r') && !r.text.contains("\nBcc"));
        assert!(!r.subject.contains('\n'));
        let long = values(&"a".repeat(1000));
        assert_eq!(long.display_name.chars().count(), MAX_VALUE_CHARS);
    }

    /// Issue 17: an external tenant's approval invites the person back with the sign-in link
    /// of their application (by `client_id`, else the default), in en/fr/sv; without any link
    /// configured the link's line is left out.
    #[test]
    fn the_finish_e_mail_carries_the_applications_sign_in_link() {
        let c = Claims::from_json(
            json!({"email": "l@example.se", "displayName": "Linnéa Öberg", "client_id": "app-1"}),
        )
        .unwrap();
        let links = BTreeMap::from([(
            "app-1".to_owned(),
            "https://shop.example/signin?a=1&b=2".to_owned(),
        )]);
        let v = Values::of(&c, &BTreeMap::new(), "Partner portal", "Contoso").with_sign_in_link(
            &c,
            &links,
            Some("https://default.example/"),
        );
        for (lang, needle) in [
            ("en", "sign up again"),
            ("fr", "Revenez vous inscrire"),
            ("sv", "registrera dig igen"),
        ] {
            let r = render(Outcome::FinishSignUp, Some(lang), &BTreeMap::new(), &v);
            assert_eq!(r.lang, lang);
            assert!(r.text.contains(needle), "{lang}: {}", r.text);
            assert!(
                r.text.contains("https://shop.example/signin?a=1&b=2"),
                "{}",
                r.text
            );
            assert!(
                r.html.contains(
                    "<a href=\"https://shop.example/signin?a=1&amp;b=2\">https://shop.example/signin?a=1&amp;b=2</a>"
                ),
                "{}",
                r.html
            );
        }
        let other = Claims::from_json(json!({"email": "l@example.se"})).unwrap();
        let d = Values::of(&other, &BTreeMap::new(), "P", "C").with_sign_in_link(
            &other,
            &links,
            Some("https://default.example/"),
        );
        assert_eq!(d.sign_in_link, "https://default.example/");
        let none =
            Values::of(&other, &BTreeMap::new(), "P", "C").with_sign_in_link(&other, &links, None);
        let r = render(Outcome::FinishSignUp, None, &BTreeMap::new(), &none);
        assert!(
            !r.text.contains("{sign_in_link}") && !r.html.contains("href"),
            "{}",
            r.text
        );
        assert!(r.text.contains("has been approved"));
    }
}
