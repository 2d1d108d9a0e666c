//! `bench-claims RUNS`: the cost of reading a connector call's claims, the one-pass typed parse
//! ([`Claims::from_slice`]) against a parse through a JSON tree (`serde_json::Value`, then
//! [`Claims::from_json`]: what `from_slice` did before), on the documented example bodies
//! (tests/fixtures/connector: the check-status call of a Facebook user and the request-approval
//! call with collected attributes).
//!
//! Prints one raw line per run for bench-report: `claims <run> one_pass_ns=… tree_ns=…`
//! (nanoseconds per body, mean over a fixed number of parses of both bodies, the two parsers
//! interleaved in one process so a ratio is taken within a run).

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, bail};
use guestlist_core::connector::{Claims, ClaimsError};

const ITERATIONS: usize = 200_000;

fn tree(body: &[u8]) -> Result<Claims, ClaimsError> {
    serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|e| ClaimsError::Malformed(e.to_string()))
        .and_then(Claims::from_json)
}

/// Mean ns per parse of `bodies` with `parse`.
fn time(bodies: &[Vec<u8>], parse: fn(&[u8]) -> Result<Claims, ClaimsError>) -> f64 {
    let t = Instant::now();
    for _ in 0..ITERATIONS / bodies.len() {
        for b in bodies {
            let _ = black_box(parse(black_box(b)));
        }
    }
    t.elapsed().as_nanos() as f64 / ITERATIONS as f64
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "5".into())
        .parse()
        .context("RUNS must be a number")?;
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/connector"
    );
    let bodies = [
        "check-status.request.facebook.json",
        "request-approval.request.facebook.json",
    ]
    .iter()
    .map(|f| std::fs::read(format!("{dir}/{f}")).with_context(|| format!("{dir}/{f}")))
    .collect::<anyhow::Result<Vec<_>>>()?;
    for b in &bodies {
        if Claims::from_slice(b).ok() != tree(b).ok() {
            bail!("the two parsers disagree on {}", String::from_utf8_lossy(b));
        }
    }
    // Warm-up, then interleaved runs.
    time(&bodies, Claims::from_slice);
    time(&bodies, tree);
    for run in 1..=runs {
        let one_pass = time(&bodies, Claims::from_slice);
        let tree_ns = time(&bodies, tree);
        println!("claims {run} one_pass_ns={one_pass:.0} tree_ns={tree_ns:.0}");
    }
    Ok(())
}
