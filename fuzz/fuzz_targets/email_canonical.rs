//! The canonical e-mail (`guestlist_core::email`): never panics; its result is idempotent, holds
//! no refused character, and splits back into the same local part and domain.
#![no_main]

use guestlist_core::email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = email::fold_text(text);
    if let Ok(domain) = email::canonical_domain(text) {
        assert_eq!(email::canonical_domain(&domain).as_deref(), Ok(domain.as_str()));
    }
    let Ok(canonical) = email::canonical(text) else { return };
    assert_eq!(email::canonical(&canonical).as_deref(), Ok(canonical.as_str()));
    assert!(!canonical.chars().any(email::is_refused_char), "{canonical:?}");
    let domain = email::domain_of(&canonical);
    assert!(!domain.is_empty() && domain.is_ascii(), "{canonical:?}");
});
