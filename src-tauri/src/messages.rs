//! The shell's own texts — OS notifications, their buttons, the tray menu and tooltip — in the
//! approver's UI language (issue 15 §1: "this covers … notifications, tray and errors").
//!
//! The catalogues are Fluent files, `src-tauri/locales/{en,fr,sv}.ftl`, compiled into the binary
//! and read with `fluent-bundle` (Project Fluent, <https://projectfluent.org/fluent/guide/>):
//! plurals follow each language's CLDR rules (`[one]`/`[other]`, and an exact `[0]`). English is
//! the reference: every message of `en.ftl` is in the two others (tested here), and a message
//! missing at run time falls back to English, then to its id.
//!
//! Which language: [`Lang`], chosen by the UI (`set_ui_language`, [`crate::locale`]) and kept on
//! disk so notifications raised in the background after a restart speak it too.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// A language of the shell's texts: the UI's three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English (the reference catalogue, and the fallback).
    #[default]
    En,
    /// French.
    Fr,
    /// Swedish.
    Sv,
}

impl Lang {
    /// Every language, English first.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Fr, Lang::Sv];

    /// The language of a BCP 47 or POSIX tag by its primary subtag, case-insensitively
    /// (`fr`, `fr-CA`, `sv_SE.UTF-8`); `None` for any other language.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let base = tag
            .trim()
            .split(['-', '_', '.', '@'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match base.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            "sv" => Some(Lang::Sv),
            _ => None,
        }
    }

    /// The language of `tag`, English when it is none of ours ("unknown language → English").
    pub fn from_tag_or_english(tag: &str) -> Lang {
        Lang::from_tag(tag).unwrap_or_default()
    }

    /// The two-letter code (`en`, `fr`, `sv`), as the UI names it and as it is stored.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::Sv => "sv",
        }
    }

    /// The Fluent source of this language's catalogue.
    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en.ftl"),
            Lang::Fr => include_str!("../locales/fr.ftl"),
            Lang::Sv => include_str!("../locales/sv.ftl"),
        }
    }

    fn index(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::Fr => 1,
            Lang::Sv => 2,
        }
    }
}

/// One bundle per language, built on first use. A catalogue with a syntax error keeps the
/// messages that parsed (the tests fail on any error).
static BUNDLES: LazyLock<[FluentBundle<FluentResource>; 3]> =
    LazyLock::new(|| Lang::ALL.map(bundle));

fn bundle(lang: Lang) -> FluentBundle<FluentResource> {
    let id: LanguageIdentifier = lang.code().parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // Notification servers and tray tooltips show plain text: no bidi isolation marks.
    b.set_use_isolating(false);
    let resource = FluentResource::try_new(lang.source().to_owned()).unwrap_or_else(|(r, _)| r);
    if let Err(errors) = b.add_resource(resource) {
        tracing::warn!(?errors, lang = lang.code(), "message catalogue has errors");
    }
    b
}

/// The message `id` in `lang` with the arguments `args` (`("name", "Ada")`, `("count", 3)`).
///
/// Falls back to English when `lang`'s catalogue lacks it, and to `id` itself when English does
/// too (never panics: a missing text must not cost a notification).
pub fn text(lang: Lang, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    let mut fluent_args = FluentArgs::new();
    for (k, v) in args {
        fluent_args.set(*k, v.clone());
    }
    for l in [lang, Lang::En] {
        let b = &BUNDLES[l.index()];
        if let Some(pattern) = b.get_message(id).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            let s = b.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if errors.is_empty() {
                return s.into_owned();
            }
            tracing::warn!(?errors, id, lang = l.code(), "cannot format a message");
        }
    }
    id.to_owned()
}

/// `text` with no arguments.
pub fn plain(lang: Lang, id: &str) -> String {
    text(lang, id, &[])
}

/// `text` with one `$name` argument (a person's display name).
pub fn named(lang: Lang, id: &str, name: &str) -> String {
    text(lang, id, &[("name", FluentValue::from(name))])
}

/// `text` with one `$count` argument (plural rules apply).
pub fn counted(lang: Lang, id: &str, count: u64) -> String {
    text(lang, id, &[("count", FluentValue::from(count))])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use fluent_bundle::FluentResource;
    use fluent_syntax::ast::{Entry, Expression, InlineExpression, Pattern, PatternElement};

    use super::*;

    /// The message ids of a catalogue, and the variables each uses; parse errors fail the test.
    fn ids(lang: Lang) -> BTreeSet<(String, BTreeSet<String>)> {
        let r = FluentResource::try_new(lang.source().to_owned())
            .unwrap_or_else(|(_, e)| panic!("{}.ftl does not parse: {e:?}", lang.code()));
        r.entries()
            .filter_map(|e| match e {
                Entry::Message(m) => Some((
                    m.id.name.to_owned(),
                    m.value.as_ref().map(variables).unwrap_or_default(),
                )),
                _ => None,
            })
            .collect()
    }

    fn variables(p: &Pattern<&str>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        fn inline(e: &InlineExpression<&str>, out: &mut BTreeSet<String>) {
            if let InlineExpression::VariableReference { id } = e {
                out.insert(id.name.to_owned());
            }
        }
        for el in &p.elements {
            if let PatternElement::Placeable { expression } = el {
                match expression {
                    Expression::Inline(e) => inline(e, &mut out),
                    Expression::Select { selector, variants } => {
                        inline(selector, &mut out);
                        for v in variants {
                            out.extend(variables(&v.value));
                        }
                    }
                }
            }
        }
        out
    }

    /// Every English message is in French and Swedish with the same variables, and nothing else.
    #[test]
    fn every_catalogue_has_every_message_with_the_same_variables() {
        let en = ids(Lang::En);
        assert!(en.len() >= 20, "{en:?}");
        for lang in [Lang::Fr, Lang::Sv] {
            let other = ids(lang);
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{}.ftl: missing or different {missing:?}, extra {extra:?}",
                lang.code()
            );
        }
    }

    /// Every message formats in every language with the arguments the code passes, with no
    /// Fluent error and no leftover `{`.
    #[test]
    fn every_message_formats_in_every_language() {
        for lang in Lang::ALL {
            for (id, vars) in ids(lang) {
                let args: Vec<(&str, FluentValue<'_>)> = vars
                    .iter()
                    .map(|v| match v.as_str() {
                        "count" => ("count", FluentValue::from(2)),
                        "name" => ("name", FluentValue::from("Ada")),
                        "mix" => ("mix", FluentValue::from("2 Google")),
                        other => panic!("{id}: unknown variable ${other}"),
                    })
                    .collect();
                let b = &BUNDLES[lang.index()];
                let pattern = b.get_message(&id).and_then(|m| m.value()).unwrap();
                let mut errors = Vec::new();
                let s = b.format_pattern(pattern, Some(&args.into_iter().collect()), &mut errors);
                assert!(errors.is_empty(), "{}/{id}: {errors:?}", lang.code());
                assert!(
                    !s.contains('{') && !s.trim().is_empty(),
                    "{}/{id}: {s}",
                    lang.code()
                );
            }
        }
    }

    #[test]
    fn plurals_follow_each_language() {
        let t = |l, n| counted(l, "tray-tooltip", n);
        assert_eq!(t(Lang::En, 0), "Guestlist — no pending requests");
        assert_eq!(t(Lang::En, 1), "Guestlist — 1 pending request");
        assert_eq!(t(Lang::En, 42), "Guestlist — 42 pending requests");
        assert_eq!(t(Lang::Fr, 0), "Guestlist — aucune demande en attente");
        assert_eq!(t(Lang::Fr, 1), "Guestlist — 1 demande en attente");
        assert_eq!(t(Lang::Fr, 2), "Guestlist — 2 demandes en attente");
        assert_eq!(t(Lang::Sv, 1), "Guestlist — 1 väntande förfrågan");
        assert_eq!(t(Lang::Sv, 5), "Guestlist — 5 väntande förfrågningar");
    }

    #[test]
    fn unknown_languages_and_messages_fall_back() {
        assert_eq!(Lang::from_tag("fr-CA"), Some(Lang::Fr));
        assert_eq!(Lang::from_tag("sv_SE.UTF-8"), Some(Lang::Sv));
        assert_eq!(Lang::from_tag("EN"), Some(Lang::En));
        assert_eq!(Lang::from_tag("de-DE"), None);
        assert_eq!(Lang::from_tag_or_english("de-DE"), Lang::En);
        assert_eq!(Lang::from_tag_or_english(""), Lang::En);
        assert_eq!(plain(Lang::Sv, "no-such-message"), "no-such-message");
        assert_eq!(
            named(Lang::Fr, "result-approved-title", "Zoë"),
            "Zoë approuvé(e)"
        );
    }
}
