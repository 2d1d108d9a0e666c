//! Percent-encoding of Graph paths with OData query options.
//!
//! Plan look-ups are written readably (`/users?$filter=mail eq 'a@b.example'&$select=id`);
//! values may contain spaces, `&`, `#`, `+` or `%` (an `issuerAssignedId` is opaque). This module
//! encodes each query option's value so that Graph reads exactly what the plan says, keeping
//! OData's punctuation (`$ ' ( ) : / , = @ *`) literal and splitting options only on `&` outside
//! single-quoted literals.

/// Encodes `path?query` for the wire (see the module docs). Idempotent for already-clean paths.
pub fn encode_path(path: &str) -> String {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out = encode(p, true);
    if let Some(q) = q {
        out.push('?');
        let options = split_options(q);
        let encoded: Vec<String> = options
            .iter()
            .map(|o| match o.split_once('=') {
                Some((k, v)) => format!("{}={}", encode(k, false), encode(v, false)),
                None => encode(o, false),
            })
            .collect();
        out.push_str(&encoded.join("&"));
    }
    out
}

/// Splits a query on `&` that are not inside a single-quoted OData literal (`''` is an escaped
/// quote and keeps the literal open).
fn split_options(q: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quote = false;
    let mut start = 0;
    for (i, c) in q.char_indices() {
        match c {
            '\'' => in_quote = !in_quote,
            '&' if !in_quote => {
                out.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&q[start..]);
    out
}

fn encode(s: &str, is_path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~$'():,@*!".contains(&b)
            || (b == b'/')
            || (!is_path && b == b'=');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_encoded_but_odata_syntax_kept() {
        assert_eq!(
            encode_path("/users?$filter=mail eq 'a+b@x.example'&$select=id,mail"),
            "/users?$filter=mail%20eq%20'a%2Bb@x.example'&$select=id,mail"
        );
        // `&` and `#` inside a quoted literal stay in the value.
        assert_eq!(
            encode_path("/users?$filter=c/issuerAssignedId eq 'x&y#z'"),
            "/users?$filter=c/issuerAssignedId%20eq%20'x%26y%23z'"
        );
        assert_eq!(encode_path("/users/abc"), "/users/abc");
        assert_eq!(encode_path("/$batch"), "/$batch");
    }
}
