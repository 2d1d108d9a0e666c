//! The reviewer's `text/event-stream` parser (live.rs): never panics, and the events do not
//! depend on how the stream is cut into chunks (the first two bytes choose the cuts).
#![no_main]

use guestlist_reviewer::live::SseParser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (step, body) = match data {
        [a, b, rest @ ..] => (usize::from(*a) % 17 + 1 + usize::from(*b) % 3, rest),
        _ => (1, data),
    };
    let whole = SseParser::default().push(body);
    let mut parser = SseParser::default();
    let mut chunked = Vec::new();
    for chunk in body.chunks(step) {
        chunked.extend(parser.push(chunk));
    }
    assert_eq!(whole, chunked, "cut every {step} bytes");
});
