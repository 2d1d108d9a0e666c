//! The reviewer's settings (`settings.json` / a TOML file): parsing and validation never panic,
//! and settings that parse survive a JSON round trip unchanged.
#![no_main]

use guestlist_reviewer::Settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(settings) = Settings::parse(text, mode % 2 == 1) else { return };
    let _ = settings.validate();
    let json = serde_json::to_string(&settings).expect("settings serialise");
    assert_eq!(Settings::parse(&json, false).as_ref(), Ok(&settings));
});
