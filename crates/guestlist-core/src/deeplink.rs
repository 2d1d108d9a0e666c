//! The desktop app's deep link: `guestlist://request/<id>` opens request `<id>` in the
//! approver's app (README, "Deep links").
//!
//! The server puts it in webhook messages ([`request_link`]); the desktop shell accepts a link
//! only when [`parse_request_link`] does. A link comes from outside the app (a chat message, a
//! browser, another program's command line), so parsing is strict: the scheme (any case), then
//! exactly `request/`, then one UUID and nothing else — no user, port, extra path segment,
//! query or fragment, no percent-encoding, at most [`MAX_LINK_LEN`] bytes.

use uuid::Uuid;

/// The URL scheme the desktop app registers (tauri.conf.json, `plugins.deep-link`).
pub const SCHEME: &str = "guestlist";

/// The longest deep link accepted, in bytes (`guestlist://request/` plus a UUID is 56).
pub const MAX_LINK_LEN: usize = 128;

/// The deep link that opens request `id`: `guestlist://request/<id>` (hyphenated, lowercase).
pub fn request_link(id: Uuid) -> String {
    format!("{SCHEME}://request/{}", id.hyphenated())
}

/// The request id of a `guestlist://request/<id>` link, or `None` for anything else (another
/// scheme, another host, extra path, a query or fragment, an id that is not a hyphenated UUID).
pub fn parse_request_link(link: &str) -> Option<Uuid> {
    if link.len() > MAX_LINK_LEN {
        return None;
    }
    let (scheme, rest) = link.split_once("://")?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let id = rest.strip_prefix("request/")?;
    // Only the 36-character hyphenated form: `Uuid::try_parse` also takes braces, `urn:uuid:`
    // and the 32-digit simple form.
    if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return None;
    }
    Uuid::try_parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0192f0c4-7b1a-7c3e-9f00-1234567890ab";

    #[test]
    fn a_request_link_round_trips() {
        let id = Uuid::try_parse(ID).unwrap();
        let link = request_link(id);
        assert_eq!(link, format!("guestlist://request/{ID}"));
        assert_eq!(parse_request_link(&link), Some(id));
        // Scheme and hex digits in any case (the url crate lowercases the scheme anyway).
        assert_eq!(
            parse_request_link(&format!("GuestList://request/{}", ID.to_uppercase())),
            Some(id)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            String::new(),
            "guestlist://".into(),
            "guestlist://request/".into(),
            format!("https://request/{ID}"),
            format!("guestlist-evil://request/{ID}"),
            format!("javascript://request/{ID}"),
            format!("guestlist:request/{ID}"),
            format!("guestlist://approve/{ID}"),
            format!("guestlist://Request/{ID}"),
            format!("guestlist://user@request/{ID}"),
            format!("guestlist://request:80/{ID}"),
            format!("guestlist://request/{ID}/approve"),
            format!("guestlist://request/{ID}/"),
            format!("guestlist://request/{ID}?approve=1"),
            format!("guestlist://request/{ID}#x"),
            format!("guestlist://request/../request/{ID}"),
            format!("guestlist://request/%7B{ID}%7D"),
            format!("guestlist://request/{{{ID}}}"),
            format!("guestlist://request/urn:uuid:{ID}"),
            format!("guestlist://request/{}", ID.replace('-', "")),
            "guestlist://request/not-a-uuid-at-all-but-36-chars-long!".into(),
            "guestlist://request/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz".into(),
            format!("guestlist://request/{ID}{}", "0".repeat(200)),
            format!("guestlist://request/{ID}\n"),
            format!(" guestlist://request/{ID}"),
        ] {
            assert_eq!(parse_request_link(&bad), None, "{bad:?}");
        }
    }
}
