//! # guestlist-bench — helpers for `make bench` (never run by `make test`)
//!
//! - `bench-bare`: an axum server whose every POST answers a constant connector JSON; the same
//!   load generator is pointed at it to give the ceiling the real server is compared to.
//! - `bench-populate`: creates a `guestlist-server` database with N stored pending requests
//!   (`user{i}@fabrikam.com`, issuer `google.com`, issuer-assigned id = the e-mail), inserted in
//!   bulk with SQL for setup speed.
//!
//! `scripts/bench.sh` drives them and writes `bench/RESULTS.md`.

/// The e-mail of the `i`-th populated request.
pub fn user_email(i: u64) -> String {
    format!("user{i}@fabrikam.com")
}
