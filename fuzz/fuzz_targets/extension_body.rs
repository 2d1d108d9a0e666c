//! Custom authentication extension bodies (CONTRACTS.md §2): parsing, the event, the claims and
//! the answer never panic.
#![no_main]

use guestlist_core::extension::{ExtensionAction, ExtensionEvent, ExtensionRequest};
use guestlist_core::model::IdentityKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<ExtensionRequest>(data) else { return };
    let event = req.event();
    if let Ok(claims) = req.to_claims() {
        let _ = IdentityKey::of(&claims);
        let _ = claims.to_json();
    }
    let event = event.unwrap_or(ExtensionEvent::Submit);
    let _ = ExtensionAction::Continue.to_response(event);
    let _ = ExtensionAction::ShowBlockPage {
        title: Some("blocked".into()),
        message: "blocked".into(),
    }
    .to_response(event);
});
