//! API connector bodies (CONTRACTS.md §1): `Claims::from_slice` never panics, agrees with the
//! tree parse (`Claims::from_json`), and an accepted body yields an identity key, a canonical
//! e-mail that is idempotent, and a rule evaluation.
#![no_main]

use guestlist_core::connector::{Claims, ClaimsError};
use guestlist_core::email;
use guestlist_core::model::IdentityKey;
use guestlist_core::policy::{Policy, Rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let one_pass = Claims::from_slice(data);
    let tree = serde_json::from_slice::<serde_json::Value>(data)
        .map_err(|e| ClaimsError::Malformed(e.to_string()))
        .and_then(Claims::from_json);
    match (&one_pass, &tree) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{a} vs {b}"),
        _ => panic!("one pass {one_pass:?}, tree {tree:?}"),
    }
    let Ok(claims) = one_pass else { return };
    let key = IdentityKey::of(&claims);
    if let Ok(strict) = IdentityKey::try_of(&claims) {
        assert_eq!(strict, key);
        assert_eq!(email::canonical(&key.email).as_deref(), Ok(key.email.as_str()));
    }
    let back = Claims::from_json(serde_json::Value::Object(claims.to_json()));
    assert!(back.is_ok(), "to_json does not parse back: {back:?}");
    let policy = Policy {
        auto_deny: vec![Rule {
            name: "d".into(),
            email_domains: vec!["example.com".into(), "*.example.org".into()],
            identity_providers: vec![],
        }],
        auto_approve: vec![Rule {
            name: "a".into(),
            email_domains: vec!["xn--bcher-kva.example".into()],
            identity_providers: vec!["google.com".into()],
        }],
        ..Policy::default()
    };
    let _ = policy.evaluate(&claims);
});
