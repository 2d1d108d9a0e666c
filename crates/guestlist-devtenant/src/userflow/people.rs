//! Who signs up: the claims Entra sends for each identity provider (the docs' request
//! examples in `tests/fixtures/connector/`, "Use API connectors to customize and extend
//! self-service sign-up", request examples) and a seeded generator of realistic, reproducible
//! people across locales, companies and providers (same seed, same people).

use std::fmt;

use rand::rngs::ChaCha12Rng;
use rand::seq::IndexedRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Map, Value, json};

/// Where the person comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Google federation (`identities[0].issuer` = `google.com`).
    Google,
    /// Facebook federation (`facebook.com`).
    Facebook,
    /// Email one-time passcode (`mail`).
    EmailOtp,
    /// Another Entra ID tenant (no `identities` claim).
    EntraId,
    /// Microsoft account (no `identities` claim).
    MicrosoftAccount,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Google => "Google",
            Provider::Facebook => "Facebook",
            Provider::EmailOtp => "email one-time passcode",
            Provider::EntraId => "Microsoft Entra ID",
            Provider::MicrosoftAccount => "Microsoft account",
        })
    }
}

/// One sign-up attempt: what Entra sends at each step.
#[derive(Clone, Debug, PartialEq)]
pub struct SignUp {
    /// Identity provider.
    pub provider: Provider,
    /// Claims sent to check-approval-status (after federation).
    pub federation_claims: Map<String, Value>,
    /// Attributes the person types on the collection page (merged over the federation claims
    /// and sent to request-approval).
    pub collected: Map<String, Value>,
    /// Why this attempt is in the list (fixture name, "repeat of #3", …).
    pub note: String,
}

impl SignUp {
    /// Display name and email, for transcripts.
    pub fn who(&self) -> String {
        let name = self
            .collected
            .get("displayName")
            .or_else(|| self.federation_claims.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or("(no name)");
        let email = self
            .federation_claims
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or("?");
        format!("{name} <{email}>")
    }
}

// ---------------------------------------------------------------------------------------------
// Generator

const FIX_CHECK_FB: &str =
    include_str!("../../../../tests/fixtures/connector/check-status.request.facebook.json");
const FIX_REQ_FB: &str =
    include_str!("../../../../tests/fixtures/connector/request-approval.request.facebook.json");
const FIX_REQ_AAD: &str =
    include_str!("../../../../tests/fixtures/connector/request-approval.request.azuread.json");
const FIX_REQ_FB_MIN: &str = include_str!(
    "../../../../tests/fixtures/connector/request-approval.request.facebook-minimal.json"
);

struct Locale {
    tag: &'static str,
    given: &'static [&'static str],
    family: &'static [&'static str],
    streets: &'static [&'static str],
    cities: &'static [(&'static str, &'static str, &'static str)],
    country: &'static str,
    titles: &'static [&'static str],
}

const LOCALES: &[Locale] = &[
    Locale {
        tag: "en-US",
        given: &[
            "John", "Emily", "Michael", "Sarah", "Chloë", "Renée", "David", "Zoë", "Noël", "Olivia",
        ],
        family: &[
            "Smith",
            "Johnson",
            "O'Brien",
            "Williams",
            "Brontë",
            "García",
            "Nguyen",
            "Miller",
            "Davis",
            "Zoë-Clarke",
        ],
        streets: &[
            "1000 Microsoft Way",
            "221 Baker Street",
            "42 Elm Avenue",
            "7 Harbor Drive",
            "1600 Pennsylvania Ave NW",
        ],
        cities: &[
            ("Seattle", "98052", "Washington"),
            ("Boston", "02108", "Massachusetts"),
            ("Austin", "73301", "Texas"),
            ("Portland", "97201", "Oregon"),
        ],
        country: "United States",
        titles: &[
            "Supplier",
            "Account Manager",
            "Consultant",
            "Field Engineer",
            "Procurement Lead",
        ],
    },
    Locale {
        tag: "fr-FR",
        given: &[
            "François",
            "Zoë",
            "Hélène",
            "Jérôme",
            "Anaïs",
            "Loïc",
            "Céline",
            "Benoît",
            "Maëlle",
            "Noël",
        ],
        family: &[
            "Dupont",
            "Lefèvre",
            "Müller",
            "Girard",
            "Chevalier",
            "Boulanger",
            "Mercier",
            "Faure",
            "Lemaître",
            "Béranger",
        ],
        streets: &[
            "12 rue de la Paix",
            "3 avenue des Champs-Élysées",
            "48 boulevard Saint-Germain",
            "5 place Bellecour",
        ],
        cities: &[
            ("Paris", "75002", "Île-de-France"),
            ("Lyon", "69002", "Auvergne-Rhône-Alpes"),
            ("Nantes", "44000", "Pays de la Loire"),
            ("Besançon", "25000", "Bourgogne-Franche-Comté"),
        ],
        country: "France",
        titles: &[
            "Fournisseur",
            "Chargée d'affaires",
            "Consultant",
            "Ingénieur études",
            "Responsable achats",
        ],
    },
    Locale {
        tag: "sv-SE",
        given: &[
            "Åsa", "Björn", "Märta", "Örjan", "Linnéa", "Göran", "Ängla", "Sören", "Karin", "Jöns",
        ],
        family: &[
            "Bergström",
            "Åkesson",
            "Öberg",
            "Lindqvist",
            "Sjöberg",
            "Håkansson",
            "Ström",
            "Nyström",
            "Ekström",
            "Johansson",
        ],
        streets: &[
            "Drottninggatan 12",
            "Kungsgatan 3",
            "Storgatan 44",
            "Östra Hamngatan 7",
        ],
        cities: &[
            ("Stockholm", "111 22", "Stockholms län"),
            ("Göteborg", "411 04", "Västra Götaland"),
            ("Malmö", "211 20", "Skåne"),
            ("Umeå", "903 26", "Västerbotten"),
        ],
        country: "Sweden",
        titles: &[
            "Leverantör",
            "Konsult",
            "Projektledare",
            "Inköpare",
            "Systemutvecklare",
        ],
    },
];

const COMPANIES: &[(&str, &str)] = &[
    ("Fabrikam", "fabrikam.com"),
    ("Northwind Traders", "northwindtraders.com"),
    ("Adventure Works", "adventure-works.com"),
    ("Tailspin Toys", "tailspintoys.com"),
    ("Wingtip Toys", "wingtiptoys.com"),
    ("Litware", "litwareinc.com"),
    ("Société Générale d'Études", "sge-etudes.fr"),
    ("Ångström Konsult AB", "angstromkonsult.se"),
];

fn parse_fixture(text: &str, app_id: &str) -> Map<String, Value> {
    let text = text.replace("<extensions-app-id>", app_id);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let m = match c {
                'à' | 'á' | 'â' | 'ä' | 'å' | 'Å' | 'Ä' | 'À' => 'a',
                'ç' => 'c',
                'é' | 'è' | 'ê' | 'ë' | 'É' => 'e',
                'í' | 'ï' | 'î' => 'i',
                'ö' | 'ô' | 'ó' | 'Ö' => 'o',
                'ü' | 'ú' | 'û' => 'u',
                '\'' | ' ' => return None,
                c => c.to_ascii_lowercase(),
            };
            Some(m)
        })
        .collect()
}

fn digits(rng: &mut ChaCha12Rng, n: usize) -> String {
    (0..n)
        .map(|i| {
            char::from(
                b'0' + if i == 0 {
                    rng.random_range(1..10)
                } else {
                    rng.random_range(0..10)
                },
            )
        })
        .collect()
}

fn pick<'a, T>(rng: &mut ChaCha12Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn person(rng: &mut ChaCha12Rng, app_id: &str) -> SignUp {
    let loc = pick(rng, LOCALES);
    let given = *pick(rng, loc.given);
    let family = *pick(rng, loc.family);
    let (company, company_domain) = *pick(rng, COMPANIES);
    let provider = *[
        Provider::Google,
        Provider::Google,
        Provider::Facebook,
        Provider::EmailOtp,
        Provider::EntraId,
        Provider::EntraId,
        Provider::MicrosoftAccount,
    ]
    .choose(rng)
    .unwrap_or(&Provider::Google);
    let local = format!(
        "{}.{}{}",
        ascii_fold(given),
        ascii_fold(family),
        if rng.random_bool(0.3) {
            digits(rng, 2)
        } else {
            String::new()
        }
    );
    let email = match provider {
        Provider::Google => format!("{local}@gmail.com"),
        Provider::Facebook => format!(
            "{local}@{}",
            pick(
                rng,
                &[
                    "outlook.com",
                    "yahoo.com",
                    "gmx.de",
                    "laposte.net",
                    "telia.se"
                ]
            )
        ),
        Provider::EmailOtp => format!(
            "{local}@{}",
            pick(
                rng,
                &["proton.me", "orange.fr", "bredband.net", "example.org"]
            )
        ),
        Provider::EntraId => format!("{local}@{company_domain}"),
        Provider::MicrosoftAccount => format!(
            "{local}@{}",
            pick(
                rng,
                &["outlook.com", "hotmail.com", "live.se", "hotmail.fr"]
            )
        ),
    };
    let display = format!("{given} {family}");
    let mut fed = Map::new();
    fed.insert("email".into(), json!(email));
    match provider {
        Provider::Google => {
            fed.insert("identities".into(), json!([{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": digits(rng, 21)}]));
        }
        Provider::Facebook => {
            fed.insert("identities".into(), json!([{"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": digits(rng, 16)}]));
        }
        Provider::EmailOtp => {
            fed.insert(
                "identities".into(),
                json!([{"signInType": "federated", "issuer": "mail", "issuerAssignedId": email}]),
            );
        }
        Provider::EntraId | Provider::MicrosoftAccount => {}
    }
    // Email OTP has no name from an identity provider.
    if provider != Provider::EmailOtp {
        fed.insert("displayName".into(), json!(display));
        fed.insert("givenName".into(), json!(given));
        fed.insert("surname".into(), json!(family));
    }
    fed.insert("ui_locales".into(), json!(loc.tag));
    let (city, postal, state) = *pick(rng, loc.cities);
    let mut col = Map::new();
    col.insert("displayName".into(), json!(display));
    col.insert("givenName".into(), json!(given));
    col.insert("surname".into(), json!(family));
    col.insert("jobTitle".into(), json!(pick(rng, loc.titles)));
    col.insert("companyName".into(), json!(company));
    if rng.random_bool(0.8) {
        col.insert("streetAddress".into(), json!(pick(rng, loc.streets)));
        col.insert("city".into(), json!(city));
        col.insert("postalCode".into(), json!(postal));
        col.insert("state".into(), json!(state));
        col.insert("country".into(), json!(loc.country));
    }
    if rng.random_bool(0.7) {
        col.insert(
            format!("extension_{app_id}_SponsorEmail"),
            json!(format!(
                "{}@contoso.com",
                pick(rng, &["ada", "grace", "bob", "alan"])
            )),
        );
    }
    if rng.random_bool(0.5) {
        col.insert(
            format!("extension_{app_id}_Reason"),
            json!(pick(
                rng,
                &[
                    "Project Orion supplier portal",
                    "Accès au portail partenaires",
                    "Tillgång till leverantörsportalen",
                    "Audit 2025"
                ]
            )),
        );
    }
    SignUp {
        provider,
        federation_claims: fed,
        collected: col,
        note: String::new(),
    }
}

/// The seed documents' own examples, in order: the Facebook check-status + request-approval
/// pair (John Smith), the Entra ID request, and the minimal Facebook request (the docs' other
/// John Smith, `johnsmith@outlook.com`). `<extensions-app-id>` is replaced by `app_id`, as a real
/// tenant sends its real app ID.
pub fn fixtures(app_id: &str) -> Vec<SignUp> {
    let check = parse_fixture(FIX_CHECK_FB, app_id);
    let req = parse_fixture(FIX_REQ_FB, app_id);
    let aad = parse_fixture(FIX_REQ_AAD, app_id);
    let min = parse_fixture(FIX_REQ_FB_MIN, app_id);
    let fed_of = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter()
            .filter(|(k, _)| {
                [
                    "email",
                    "identities",
                    "displayName",
                    "givenName",
                    "surname",
                    "lastName",
                    "ui_locales",
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    vec![
        SignUp {
            provider: Provider::Facebook,
            federation_claims: check,
            collected: req,
            note: "docs example (Facebook)".into(),
        },
        SignUp {
            provider: Provider::EntraId,
            federation_claims: fed_of(&aad),
            collected: aad,
            note: "docs example (Entra ID)".into(),
        },
        SignUp {
            provider: Provider::Facebook,
            federation_claims: fed_of(&min),
            collected: min,
            note: "docs example (Facebook, minimal)".into(),
        },
    ]
}

/// `count` reproducible sign-up attempts from `seed`: the [`fixtures`] first, then generated
/// people (Google, Facebook, email OTP, Entra ID, Microsoft account; en-US / fr-FR / sv-SE names
/// and addresses with diacritics; companies; job titles; `extension_{app}_SponsorEmail` and
/// `_Reason`), with about one attempt in six repeating an earlier person (someone whose request
/// is pending or denied tries again). Uses [`crate::defaults::EXTENSIONS_APP_ID`].
pub fn generate(seed: u64, count: usize) -> Vec<SignUp> {
    generate_with(seed, count, crate::defaults::EXTENSIONS_APP_ID)
}

/// [`generate`] with an explicit extensions app ID.
pub fn generate_with(seed: u64, count: usize, app_id: &str) -> Vec<SignUp> {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let mut out: Vec<SignUp> = fixtures(app_id).into_iter().take(count).collect();
    while out.len() < count {
        if out.len() >= 4 && rng.random_bool(1.0 / 6.0) {
            let i = rng.random_range(0..out.len());
            let mut again = out[i].clone();
            again.note = format!("tries again (same person as #{})", i + 1);
            out.push(again);
        } else {
            out.push(person(&mut rng, app_id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_reproducible_and_varied() {
        let a = generate(7, 60);
        assert_eq!(a, generate(7, 60));
        assert_ne!(a, generate(8, 60));
        assert_eq!(a[0].note, "docs example (Facebook)");
        for p in [
            Provider::Google,
            Provider::Facebook,
            Provider::EmailOtp,
            Provider::EntraId,
            Provider::MicrosoftAccount,
        ] {
            assert!(a.iter().any(|s| s.provider == p), "{p} missing");
        }
        assert!(a.iter().any(|s| s.note.starts_with("tries again")));
        let text = format!("{a:?}");
        assert!(["Å", "ö", "é", "ë"].iter().any(|c| text.contains(c)));
        for s in &a {
            let has_ids = s.federation_claims.contains_key("identities");
            assert_eq!(
                has_ids,
                !matches!(s.provider, Provider::EntraId | Provider::MicrosoftAccount),
                "{s:?}"
            );
            for k in s.collected.keys().filter(|k| k.starts_with("extension_")) {
                assert!(
                    k.starts_with(&format!(
                        "extension_{}_",
                        crate::defaults::EXTENSIONS_APP_ID
                    )),
                    "{k}"
                );
            }
        }
    }
}
