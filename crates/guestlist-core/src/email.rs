//! One canonical e-mail address: what counts as "the same address" for the identity key, denial
//! stickiness, auto-approve / auto-deny rule matching and search (issue 10 §6).
//!
//! # The rules
//!
//! [`canonical`] turns an address into its canonical form, or refuses it:
//!
//! 1. Leading and trailing white space is trimmed.
//! 2. **Refused**: any invisible or text-direction character, anywhere, before or after
//!    normalisation — Unicode `Default_Ignorable_Code_Point` (zero-width space and joiners
//!    U+200B–U+200D, U+2060–U+2064 word joiner and invisible operators, U+FEFF, U+00AD soft
//!    hyphen, variation selectors, tags…), `Bidi_Control` (U+200E/U+200F, U+202A–U+202E,
//!    U+2066–U+2069, U+061C), control characters and white space. Such an address looks like
//!    another one on screen, so it is never silently accepted nor silently stripped: the
//!    connector answers it with a block page (`…-APPROVAL-EMAIL-REFUSED`).
//! 3. The whole address is normalised to **NFKC**, so fullwidth and other compatibility forms
//!    become their plain form (`ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ` → `ada@example.com`).
//! 4. It is split at its **last** `@` (after NFKC, so a fullwidth `＠` counts).
//! 5. The **local part** gets Unicode **full case folding** (`Ada` → `ada`, `ß` → `ss`,
//!    `ǅ` → `ǆ`), then NFKC again (folding can un-normalise). Compatibility characters are
//!    **folded, not refused**: the Kelvin sign U+212A becomes `K` under NFKC and then `k`, so
//!    `\u{212A}im@example.com` is `kim@example.com`. Nothing else is rewritten: dots and `+tags`
//!    are kept (`a.da+x@` and `ada@` are different addresses to Guestlist, as they are to
//!    RFC 5321 and to most providers).
//! 6. The **domain** goes through IDNA **UTS #46** (`idna::domain_to_ascii_cow`, the WHATWG URL
//!    rules) to its **ASCII form**: lower-case, with Punycode A-labels
//!    (`Bücher.Example` → `xn--bcher-kva.example`). Rules may name a domain in either form; they
//!    are compared in ASCII form too ([`canonical_domain`]).
//!
//! The result is idempotent: `canonical(canonical(x)) == canonical(x)`.
//!
//! [`fold_text`] is the same normalisation for free text (search terms and the search column):
//! NFKC, full case folding, NFKC.

use std::borrow::Cow;

use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::CodePointSetData;
use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint};

use crate::Code;

/// Why an e-mail address has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// The address holds an invisible, text-direction, control or white-space character.
    #[error("the e-mail address contains the invisible or control character U+{0:04X}")]
    Invisible(u32),
    /// The address is not `local@domain`, or its domain is not a valid IDNA domain name.
    #[error("the e-mail address is not valid: {0}")]
    Invalid(&'static str),
}

impl EmailError {
    /// A stable, greppable code: [`Code::EmailInvisibleCharacter`] or [`Code::EmailInvalid`].
    pub fn code(&self) -> Code {
        match self {
            EmailError::Invisible(_) => Code::EmailInvisibleCharacter,
            EmailError::Invalid(_) => Code::EmailInvalid,
        }
    }
}

/// Whether `c` is refused anywhere in an address (rule 2 of the module docs).
pub fn is_refused_char(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || CodePointSetData::new::<BidiControl>().contains(c)
}

fn check_visible(s: &str) -> Result<(), EmailError> {
    match s.chars().find(|&c| is_refused_char(c)) {
        Some(c) => Err(EmailError::Invisible(u32::from(c))),
        None => Ok(()),
    }
}

/// `s` in Unicode Normalization Form KC.
pub fn nfkc(s: &str) -> Cow<'_, str> {
    ComposingNormalizerBorrowed::new_nfkc().normalize(s)
}

/// NFKC, then Unicode full case folding, then NFKC: the canonical form of free text (search
/// terms and the searchable column). Never fails; invisible characters are kept.
pub fn fold_text(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let folded = CaseMapper::new().fold_string(&nfkc(s)).into_owned();
    nfkc(&folded).into_owned()
}

/// The canonical (ASCII, lower-case, Punycode) form of a domain name through IDNA UTS #46,
/// after NFKC (rule 6 of the module docs). A leading `@` is not accepted.
///
/// Errors: [`EmailError::Invisible`] for refused characters, [`EmailError::Invalid`] for an
/// empty domain, a leading or trailing dot, or a name UTS #46 rejects.
pub fn canonical_domain(domain: &str) -> Result<String, EmailError> {
    let domain = domain.trim();
    check_visible(domain)?;
    let domain = nfkc(domain);
    check_visible(&domain)?;
    domain_to_ascii(&domain)
}

/// Rule 6 on a domain already trimmed, checked for refused characters and in NFKC.
fn domain_to_ascii(domain: &str) -> Result<String, EmailError> {
    if domain.is_empty() {
        return Err(EmailError::Invalid("the domain is empty"));
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(EmailError::Invalid("the domain has an empty label"));
    }
    let ascii = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::URL)
        .map_err(|_| EmailError::Invalid("the domain is not a valid internationalised name"))?;
    if ascii.is_empty() || ascii.contains('@') {
        return Err(EmailError::Invalid("the domain is not a valid name"));
    }
    Ok(ascii.into_owned())
}

/// The canonical form of an e-mail address (the rules in the module docs), e.g.
/// `ａｄａ＠ＥＸＡＭＰＬＥ．ｃｏｍ` → `ada@example.com`, `\u{212A}im@Bücher.example` →
/// `kim@xn--bcher-kva.example`.
///
/// Errors: [`EmailError::Invisible`] when the address holds an invisible, bidi-control,
/// control or white-space character (after trimming); [`EmailError::Invalid`] when it is not
/// `local@domain` or the domain is not a valid IDNA name.
pub fn canonical(email: &str) -> Result<String, EmailError> {
    let email = email.trim();
    if email.is_ascii() {
        return canonical_ascii(email);
    }
    canonical_full(email)
}

/// [`canonical`] of a trimmed ASCII address, without ICU: the same result as
/// [`canonical_full`], because on ASCII
///
/// - rule 2 refuses exactly the controls (U+0000–U+001F, U+007F) and the space: no ASCII code
///   point is `Default_Ignorable_Code_Point` or `Bidi_Control`, and ASCII white space other than
///   the space is made of controls;
/// - NFKC (rules 3 and 5) is the identity: no ASCII code point has a decomposition or composes
///   with another;
/// - full case folding of ASCII is ASCII lower-casing (which [`canonical_full`] already does);
/// - the domain goes through the same [`domain_to_ascii`] (UTS #46 by the `idna` crate).
///
/// The `ascii_fast_path_is_the_full_path` property test checks this over generated addresses.
fn canonical_ascii(email: &str) -> Result<String, EmailError> {
    if let Some(b) = email.bytes().find(|&b| b.is_ascii_control() || b == b' ') {
        return Err(EmailError::Invisible(u32::from(b)));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(EmailError::Invalid("there is no @"));
    };
    if local.is_empty() {
        return Err(EmailError::Invalid("the part before the @ is empty"));
    }
    if local.contains('@') {
        return Err(EmailError::Invalid("the part before the @ folds to an @"));
    }
    let domain = domain_to_ascii(domain)?;
    Ok(format!("{}@{domain}", local.to_ascii_lowercase()))
}

/// [`canonical`] without its ASCII fast path: every rule through ICU and `idna`, for any
/// input. The reference the fast path is tested and benchmarked against (`benches/email.rs`);
/// callers use [`canonical`].
///
/// Errors: as [`canonical`].
pub fn canonical_full(email: &str) -> Result<String, EmailError> {
    let email = email.trim();
    check_visible(email)?;
    let normalised = nfkc(email);
    check_visible(&normalised)?;
    let Some((local, domain)) = normalised.rsplit_once('@') else {
        return Err(EmailError::Invalid("there is no @"));
    };
    if local.is_empty() {
        return Err(EmailError::Invalid("the part before the @ is empty"));
    }
    let local = if local.is_ascii() {
        local.to_ascii_lowercase()
    } else {
        let folded = CaseMapper::new().fold_string(local).into_owned();
        let again = nfkc(&folded).into_owned();
        check_visible(&again)?;
        again
    };
    if local.contains('@') {
        // Folding never makes an `@`, but the key must split back the same way.
        return Err(EmailError::Invalid("the part before the @ folds to an @"));
    }
    let domain = canonical_domain(domain)?;
    Ok(format!("{local}@{domain}"))
}

/// The domain of a canonical address (after its last `@`; empty when there is none).
pub fn domain_of(canonical: &str) -> &str {
    canonical
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_one_address_have_one_form() {
        for variant in [
            "ada@example.com",
            "ADA@EXAMPLE.COM",
            "  Ada@Example.Com ",
            "ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "ＡＤＡ@example.com",
            "ada@ｅｘａｍｐｌｅ.com",
        ] {
            assert_eq!(
                canonical(variant).unwrap(),
                "ada@example.com",
                "{variant:?}"
            );
        }
        // The Kelvin sign is folded to `k`, not refused.
        assert_eq!(
            canonical("\u{212A}im@example.com").unwrap(),
            "kim@example.com"
        );
        assert_eq!(canonical("KIM@example.com").unwrap(), "kim@example.com");
        // Full folding, not lower-casing: ß and ẞ fold to ss.
        assert_eq!(
            canonical("Straße@example.de").unwrap(),
            "strasse@example.de"
        );
        assert_eq!(
            canonical("STRAẞE@example.de").unwrap(),
            "strasse@example.de"
        );
        // IDNA: Unicode and Punycode domains are one.
        assert_eq!(
            canonical("zoë@Bücher.Example").unwrap(),
            "zoë@xn--bcher-kva.example"
        );
        assert_eq!(
            canonical("zoë@xn--bcher-kva.example").unwrap(),
            "zoë@xn--bcher-kva.example"
        );
        // Decomposed and composed ë are one (NFKC).
        assert_eq!(
            canonical("zoe\u{308}@example.com").unwrap(),
            canonical("zo\u{eb}@example.com").unwrap()
        );
        // Dots and +tags are kept.
        assert_ne!(
            canonical("a.da@x.com").unwrap(),
            canonical("ada@x.com").unwrap()
        );
        assert_eq!(canonical("ada+x@x.com").unwrap(), "ada+x@x.com");
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{061C}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{0007}',
            '\u{00A0}',
            '\u{3000}',
        ] {
            for email in [format!("a{c}da@example.com"), format!("ada@exa{c}mple.com")] {
                assert_eq!(
                    canonical(&email),
                    Err(EmailError::Invisible(u32::from(c))),
                    "{email:?}"
                );
            }
        }
        // U+FFA0 (halfwidth Hangul filler) becomes an ignorable character under NFKC.
        assert!(matches!(
            canonical("a\u{FFA0}da@example.com"),
            Err(EmailError::Invisible(_))
        ));
        assert_eq!(
            canonical("ada@example.com\u{200B}").unwrap_err().code(),
            "email.invisible_character"
        );
    }

    #[test]
    fn malformed_addresses_are_invalid() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@.example.com",
            "ada@example.com.",
            "ada@exa..mple",
            "ada@exa mple.com",
            "ada@xn--a.example",
        ] {
            assert!(canonical(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn canonical_is_idempotent_and_domains_compare_in_ascii() {
        for s in [
            "ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "\u{212A}im@Bücher.Example",
            "ǅemal@ΣΊΣΥΦΟΣ.gr",
            "İstanbul@example.tr",
            "ﬀ@ﬁ.com",
        ] {
            let once = canonical(s).unwrap();
            assert_eq!(canonical(&once).unwrap(), once, "{s:?}");
        }
        assert_eq!(
            canonical_domain("Bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(
            canonical_domain("ｅｘａｍｐｌｅ．ｃｏｍ").unwrap(),
            "example.com"
        );
        assert_eq!(domain_of("ada@example.com"), "example.com");
        assert_eq!(fold_text("ＺＯË Straße"), "zoë strasse");
    }

    /// Any ASCII string, and addresses built of the characters that matter (letters of both
    /// cases, digits, dots, hyphens, `@`, `+`, `xn--` labels, controls, spaces).
    fn ascii_address() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let part = "[a-zA-Z0-9.+_-]{0,12}|xn--[a-z0-9-]{0,10}|[ -~]{0,8}|[\\x00-\\x1f\\x7f]";
        prop_oneof![
            "[\\x00-\\x7f]{0,40}",
            (part, part, part, part).prop_map(|(a, b, c, d)| format!("{a}@{b}.{c}{d}")),
            (part, part, part).prop_map(|(a, b, c)| format!(" {a}@{b}@{c} ")),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn ascii_fast_path_is_the_full_path(email in ascii_address()) {
            proptest::prop_assert_eq!(canonical(&email), canonical_full(&email));
        }
    }
}
