//! The reviewer's `text/event-stream` parsing (live.rs: eventsource-stream behind our BOM
//! filter): never panics, and the events do not depend on how the stream is cut into chunks
//! (the first two bytes choose the cuts).
#![no_main]

use guestlist_reviewer::live::parse_chunks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (step, body) = match data {
        [a, b, rest @ ..] => (usize::from(*a) % 17 + 1 + usize::from(*b) % 3, rest),
        _ => (1, data),
    };
    let (whole, whole_err) = parse_chunks([body]);
    let (chunked, chunked_err) = parse_chunks(body.chunks(step));
    // A body that is not UTF-8 ends the stream where the bad byte arrives, which depends on
    // the cuts; compare only clean bodies.
    if whole_err.is_none() && chunked_err.is_none() {
        assert_eq!(whole, chunked, "cut every {step} bytes");
    }
});
