//! The canonical e-mail on every connector call (issue 16 §3): `canonical` (with its ASCII fast
//! path) against `canonical_full` (every rule through ICU and `idna`) on the same ASCII
//! addresses, in one run, then the ratio of their medians. `cargo bench -p guestlist-core
//! --bench email`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use guestlist_core::email::{canonical, canonical_full};

/// Addresses as Entra sends them: mixed case, dots, tags, a subdomain, a Punycode domain.
const ADDRESSES: [&str; 6] = [
    "Ada.Lovelace@Fabrikam.com",
    "john.doe+guests@contoso.onmicrosoft.com",
    "ZOE@EXAMPLE.ORG",
    "k.smith@mail.partner.example.co.uk",
    "info@xn--bcher-kva.example",
    "a@b.io",
];

fn run_all(f: fn(&str) -> Result<String, guestlist_core::email::EmailError>) {
    for a in ADDRESSES {
        black_box(f(black_box(a)).unwrap());
    }
}

fn bench(c: &mut Criterion) {
    for a in ADDRESSES {
        assert_eq!(canonical(a), canonical_full(a), "{a}");
    }
    let mut g = c.benchmark_group("canonical_email_6_ascii_addresses");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("fast_path", |b| b.iter(|| run_all(canonical)));
    g.bench_function("full_path", |b| b.iter(|| run_all(canonical_full)));
    g.finish();
}

/// Prints full ÷ fast from criterion's saved medians (`target/criterion/…/new/estimates.json`).
fn ratio(_: &mut Criterion) {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("criterion/canonical_email_6_ascii_addresses");
    let median = |name: &str| -> Option<f64> {
        let text = std::fs::read_to_string(dir.join(name).join("new/estimates.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["median"]["point_estimate"].as_f64()
    };
    match (median("fast_path"), median("full_path")) {
        (Some(fast), Some(full)) => println!(
            "canonical e-mail, 6 ASCII addresses: fast path {:.0} ns, full path {:.0} ns, full ÷ fast = {:.1}",
            fast,
            full,
            full / fast
        ),
        _ => println!(
            "canonical e-mail: no criterion estimates under {}",
            dir.display()
        ),
    }
}

criterion_group!(benches, bench, ratio);
criterion_main!(benches);
