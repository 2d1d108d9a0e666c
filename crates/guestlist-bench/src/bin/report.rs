//! `bench-report RAW OUT`: turns the raw lines `scripts/bench.sh` collected into `bench/RESULTS.md`.
//!
//! A raw line is `scenario run key=value key=value …` (wrk latencies in µs, `rps` per second,
//! `ms` and `*_ms` milliseconds, `kb` and `*_kb` kilobytes). The app-in-its-window scenarios come
//! from tests/e2e/measure.mjs: `app_cold_start`, `app_search`, `app_side_by_side` (`ms`, each
//! run's value the median of its keystrokes or openings), `app_pss` and `tauri_min_pss` (`kb`,
//! PSS summed over the process tree; their ratio is taken within one run). `hostile_*` come
//! from `bench-hostile` (calm vs loaded check-status, server RSS with open streams, JWKS
//! fetches). `pg_*` are the connector load on PostgreSQL (one replica direct; `pg_lb1_*` and
//! `pg_lb2_*` through HAProxy to one and two replicas). `open_check_<rate>` and
//! `pg_open_check_<rate>` are check-status in an open loop at a fixed offered rate (`bench-open`,
//! latencies corrected for coordinated omission), on SQLite and PostgreSQL. Each figure is the median of the runs
//! with min–max;
//! ratios are computed within one run (same run index) before taking the median, because the
//! machine is noisy. Machine, date and commit come from the environment (`BENCH_MACHINE`,
//! `BENCH_DATE`, `BENCH_COMMIT`, `BENCH_METHOD`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;

/// scenario → run → key → value
type Raw = BTreeMap<String, BTreeMap<u32, BTreeMap<String, f64>>>;

fn parse(text: &str) -> anyhow::Result<Raw> {
    let mut raw = Raw::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let scenario = parts.next().context("empty line")?.to_owned();
        let run: u32 = parts
            .next()
            .with_context(|| format!("no run in {line:?}"))?
            .parse()?;
        let entry = raw.entry(scenario).or_default().entry(run).or_default();
        for kv in parts {
            if let Some((k, v)) = kv.split_once('=')
                && let Ok(v) = v.parse::<f64>()
            {
                entry.insert(k.to_owned(), v);
            }
        }
    }
    Ok(raw)
}

/// Median, min and max of a non-empty sample.
#[derive(Clone, Copy)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stat(mut v: Vec<f64>) -> Option<Stat> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

fn values(raw: &Raw, scenario: &str, key: &str) -> Vec<f64> {
    raw.get(scenario)
        .map(|runs| runs.values().filter_map(|m| m.get(key).copied()).collect())
        .unwrap_or_default()
}

/// `f(a_run, b_run)` for every run index both scenarios have.
fn paired(raw: &Raw, a: (&str, &str), b: (&str, &str), f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let (Some(ra), Some(rb)) = (raw.get(a.0), raw.get(b.0)) else {
        return Vec::new();
    };
    ra.iter()
        .filter_map(|(run, m)| Some(f(*m.get(a.1)?, *rb.get(run)?.get(b.1)?)))
        .collect()
}

/// How a figure is shown: unit scale and suffix.
#[derive(Clone, Copy)]
enum Unit {
    /// µs shown as ms.
    UsAsMs,
    /// Milliseconds.
    Ms,
    /// Per second.
    PerSec,
    /// A ratio shown as `×`.
    Times,
    /// A fraction shown as %.
    Percent,
    /// A plain count.
    Count,
    /// Kilobytes shown as MiB.
    KbAsMib,
    /// Nanoseconds.
    Ns,
}

fn fmt(v: f64, u: Unit) -> String {
    match u {
        Unit::UsAsMs => format!("{:.2} ms", v / 1000.0),
        Unit::Ms => format!("{v:.1} ms"),
        Unit::PerSec => format!("{v:.0}/s"),
        Unit::Times => format!("{v:.2}×"),
        Unit::Percent => format!("{:.0} %", v * 100.0),
        Unit::Count => format!("{v:.0}"),
        Unit::KbAsMib => format!("{:.0} MiB", v / 1024.0),
        Unit::Ns => format!("{v:.0} ns"),
    }
}

/// `5000` → `5,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_stat(s: Stat, u: Unit) -> String {
    format!(
        "{} ({}–{}, n={})",
        fmt(s.median, u),
        fmt(s.min, u),
        fmt(s.max, u),
        s.n
    )
}

/// A ratio of one figure of two scenarios, taken within each run: name, numerator
/// (scenario, key), denominator (scenario, key), unit.
type Ratio<'a> = (&'a str, (&'a str, &'a str), (&'a str, &'a str), Unit);

/// A target row: the median must be `<=` (`at_most`) or `>=` the bound.
struct Target<'a> {
    figure: &'a str,
    target: &'a str,
    sample: Vec<f64>,
    unit: Unit,
    bound: f64,
    at_most: bool,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let raw_path = args.next().context("usage: bench-report RAW OUT")?;
    let out_path = args.next().context("usage: bench-report RAW OUT")?;
    let raw = parse(&std::fs::read_to_string(&raw_path).with_context(|| raw_path.clone())?)?;
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "unknown".into());

    // The store-scale open loop's offered rate and connections, as the run recorded them.
    let open_scale_figure = format!(
        "store scale: check-status p99 at 1,000,000 stored (open loop at {} calls/s offered, {} connections, coordinated omission corrected)",
        stat(values(&raw, "openscale1m", "offered"))
            .map_or("?".into(), |s| thousands(s.median as u64)),
        stat(values(&raw, "openscale1m", "conns"))
            .map_or("?".into(), |s| thousands(s.median as u64)),
    );
    let targets = vec![
        Target {
            figure: "check-approval-status p99, 64 connections, 10,000 stored (wrk: closed loop at saturation)",
            target: "≤ 5 ms",
            sample: values(&raw, "check", "p99"),
            unit: Unit::UsAsMs,
            bound: 5000.0,
            at_most: true,
        },
        Target {
            figure: "check-approval-status throughput ÷ bare axum handler (same run)",
            target: "≥ 50 %",
            sample: paired(&raw, ("check", "rps"), ("bare", "rps"), |a, b| a / b),
            unit: Unit::Percent,
            bound: 0.5,
            at_most: false,
        },
        Target {
            figure: "request-approval p99, 64 connections, unique e-mails",
            target: "≤ 20 ms",
            sample: values(&raw, "request", "p99"),
            unit: Unit::UsAsMs,
            bound: 20_000.0,
            at_most: true,
        },
        Target {
            figure: "request-approval new requests stored per second",
            target: "≥ 2,000/s",
            sample: values(&raw, "request", "rps"),
            unit: Unit::PerSec,
            bound: 2000.0,
            at_most: false,
        },
        Target {
            figure: "store scale: check-status p50 at 1,000,000 ÷ at 10 stored (wrk -c8: closed loop at saturation; same run)",
            target: "flat: ≤ 1.5×",
            sample: paired(&raw, ("scale1m", "p50"), ("scale10", "p50"), |a, b| a / b),
            unit: Unit::Times,
            bound: 1.5,
            at_most: true,
        },
        // Issue 13: a ratio of two sub-millisecond p99s measures the scheduler of two shared
        // cores, not the store; the bound is absolute. The target figure is the open loop at a
        // fixed rate well below saturation (`openscale*`, bench-open); the saturated wrk figure
        // (`scale1m`: latency ≈ connections ÷ throughput plus run-queue waits) is kept beside it.
        Target {
            figure: &open_scale_figure,
            target: "≤ 2 ms",
            sample: values(&raw, "openscale1m", "p99"),
            unit: Unit::UsAsMs,
            bound: 2000.0,
            at_most: true,
        },
        Target {
            figure: "store scale: check-status p99 at 1,000,000 stored (wrk -c8: closed loop at saturation)",
            target: "≤ 2 ms",
            sample: values(&raw, "scale1m", "p99"),
            unit: Unit::UsAsMs,
            bound: 2000.0,
            at_most: true,
        },
        // PostgreSQL (issue 13 §5): the same connector load on one replica on a local cluster.
        Target {
            figure: "PostgreSQL: check-approval-status p99, 64 connections, 10,000 stored (wrk: closed loop at saturation)",
            target: "≤ 5 ms",
            sample: values(&raw, "pg_check", "p99"),
            unit: Unit::UsAsMs,
            bound: 5000.0,
            at_most: true,
        },
        Target {
            figure: "PostgreSQL: request-approval new requests stored per second",
            target: "≥ 2,000/s",
            sample: values(&raw, "pg_request", "rps"),
            unit: Unit::PerSec,
            bound: 2000.0,
            at_most: false,
        },
        Target {
            figure: "reviewer: sync of 10,000 pending into an empty cache",
            target: "≤ 2 s",
            sample: values(&raw, "reviewer_full", "ms"),
            unit: Unit::Ms,
            bound: 2000.0,
            at_most: true,
        },
        Target {
            figure: "reviewer: incremental sync with 10 new requests",
            target: "≤ 100 ms",
            sample: values(&raw, "reviewer_incremental", "ms"),
            unit: Unit::Ms,
            bound: 100.0,
            at_most: true,
        },
        Target {
            figure: "bulk approval of 100: Graph round trips",
            target: "≤ 10",
            sample: values(&raw, "bulk", "round_trips"),
            unit: Unit::Count,
            bound: 10.0,
            at_most: true,
        },
        Target {
            figure: "bulk approval of 100: one-by-one wall time ÷ bulk wall time (5 ms Graph latency)",
            target: "≥ 5×",
            sample: paired(&raw, ("one_by_one", "ms"), ("bulk", "ms"), |a, b| a / b),
            unit: Unit::Times,
            bound: 5.0,
            at_most: false,
        },
        Target {
            figure: "bulk approval of 100 with throttling: approvals lost",
            target: "0 (Retry-After honoured)",
            sample: values(&raw, "bulk_throttled", "lost"),
            unit: Unit::Count,
            bound: 0.0,
            at_most: true,
        },
        Target {
            figure: "app: cold start to a painted queue of 10,000 cached (process start → first rows painted)",
            target: "≤ 1.5 s",
            sample: values(&raw, "app_cold_start", "ms"),
            unit: Unit::Ms,
            bound: 1500.0,
            at_most: true,
        },
        Target {
            figure: "app: search keystroke over 10,000 (keydown → filtered rows painted)",
            target: "≤ 50 ms",
            sample: values(&raw, "app_search", "ms"),
            unit: Unit::Ms,
            bound: 50.0,
            at_most: true,
        },
        Target {
            figure: "app: open side-by-side (Enter on a row just reached by `j` → detail painted)",
            target: "≤ 100 ms",
            sample: values(&raw, "app_side_by_side", "ms"),
            unit: Unit::Ms,
            bound: 100.0,
            at_most: true,
        },
        Target {
            figure: "app: PSS of the process tree (app + WebKit processes), 10,000 cached ÷ minimal Tauri 2 app (same run)",
            target: "≤ 1.3×",
            sample: paired(&raw, ("app_pss", "kb"), ("tauri_min_pss", "kb"), |a, b| {
                a / b
            }),
            unit: Unit::Times,
            bound: 1.3,
            at_most: true,
        },
        // Hostile traffic (bench-hostile, issue 10).
        Target {
            figure: "check-status p99 with 1,000 idle event streams and 500 slow-header clients open ÷ calm p99 (same run)",
            target: "≤ 2×",
            sample: paired(
                &raw,
                ("hostile_loaded", "p99_ms"),
                ("hostile_calm", "p99_ms"),
                |a, b| a / b,
            ),
            unit: Unit::Times,
            bound: 2.0,
            at_most: true,
        },
        Target {
            figure: "check-status throughput under that load ÷ calm throughput (same run)",
            target: "≥ 70 %",
            sample: paired(
                &raw,
                ("hostile_loaded", "rps"),
                ("hostile_calm", "rps"),
                |a, b| a / b,
            ),
            unit: Unit::Percent,
            bound: 0.7,
            at_most: false,
        },
        Target {
            figure: "server RSS with 1,000 open event streams",
            target: "≤ 200 MB",
            sample: values(&raw, "hostile_rss", "kb"),
            unit: Unit::KbAsMib,
            // 200 MB in KiB.
            bound: 200_000_000.0 / 1024.0,
            at_most: true,
        },
        Target {
            figure: "JWKS fetches per 1,000 approver calls with random `kid`s",
            target: "≤ 2",
            sample: values(&raw, "hostile_jwks", "fetches"),
            unit: Unit::Count,
            bound: 2.0,
            at_most: true,
        },
        // Audit export (bench-audit, issue 12).
        Target {
            figure: "server peak RSS while streaming the audit export of 1,000,000 decisions",
            target: "≤ 64 MB",
            sample: values(&raw, "audit_export", "hwm_kb"),
            unit: Unit::KbAsMib,
            // 64 MB in KiB.
            bound: 64_000_000.0 / 1024.0,
            at_most: true,
        },
    ];

    let mut md = String::new();
    writeln!(md, "# Guestlist benchmarks\n")?;
    writeln!(
        md,
        "Written by `make bench` (`scripts/bench.sh`); never part of `make test`.\n"
    )?;
    writeln!(md, "- Machine: {}", env("BENCH_MACHINE"))?;
    writeln!(md, "- Date: {}", env("BENCH_DATE"))?;
    writeln!(md, "- Commit: {}", env("BENCH_COMMIT"))?;
    writeln!(md, "- Method: {}\n", env("BENCH_METHOD"))?;
    writeln!(
        md,
        "Each figure: median of the runs (min–max, n = runs). Ratios are taken within one run.\n"
    )?;
    writeln!(md, "| figure | target | measured | met |")?;
    writeln!(md, "|---|---|---|---|")?;
    let mut missed = Vec::new();
    // Figures the issue asks to report, with no target: shown in the same table.
    let reports: Vec<(&str, Vec<f64>, Unit)> = vec![
        (
            "PostgreSQL: check-status throughput, 2 replicas ÷ 1 replica behind HAProxy (same run)",
            paired(
                &raw,
                ("pg_lb2_check", "rps"),
                ("pg_lb1_check", "rps"),
                |a, b| a / b,
            ),
            Unit::Times,
        ),
        (
            "PostgreSQL: request-approval throughput, 2 replicas ÷ 1 replica behind HAProxy (same run)",
            paired(
                &raw,
                ("pg_lb2_request", "rps"),
                ("pg_lb1_request", "rps"),
                |a, b| a / b,
            ),
            Unit::Times,
        ),
    ];
    // The open-loop check-status runs (bench-open), one target row per offered rate, each after
    // the saturated figure of its store.
    let open_figures: Vec<(bool, u64, String)> = raw
        .keys()
        .filter_map(|scenario| {
            let (pg, rate) = match scenario.strip_prefix("pg_open_check_") {
                Some(rate) => (true, rate),
                None => (false, scenario.strip_prefix("open_check_")?),
            };
            let rate: u64 = rate.parse().ok()?;
            Some((pg, rate, scenario.clone()))
        })
        .collect();
    let open_target = |pg: bool, rate: u64, scenario: &str| -> (String, Vec<f64>) {
        (
            format!(
                "{}check-approval-status p99 at {} calls/s offered, 64 connections, 10,000 stored (open loop, coordinated omission corrected)",
                if pg { "PostgreSQL: " } else { "" },
                thousands(rate)
            ),
            values(&raw, scenario, "p99"),
        )
    };
    let mut open_rows: Vec<(bool, String, Vec<f64>)> = open_figures
        .iter()
        .map(|(pg, rate, scenario)| {
            let (figure, sample) = open_target(*pg, *rate, scenario);
            (*pg, figure, sample)
        })
        .collect();
    open_rows.sort_by_key(|(pg, _, _)| *pg);
    let mut rows: Vec<Target> = Vec::new();
    for t in targets {
        let after = if t.figure.starts_with("check-approval-status p99") {
            Some(false)
        } else if t
            .figure
            .starts_with("PostgreSQL: check-approval-status p99")
        {
            Some(true)
        } else {
            None
        };
        rows.push(t);
        if let Some(pg) = after {
            for (_, figure, sample) in open_rows.iter().filter(|(p, _, _)| *p == pg) {
                rows.push(Target {
                    figure: figure.as_str(),
                    target: "≤ 5 ms",
                    sample: sample.clone(),
                    unit: Unit::UsAsMs,
                    bound: 5000.0,
                    at_most: true,
                });
            }
        }
    }
    for t in &rows {
        let (measured, met) = match stat(t.sample.clone()) {
            None => ("not measured".to_owned(), "missed"),
            Some(s) => {
                let ok = if t.at_most {
                    s.median <= t.bound
                } else {
                    s.median >= t.bound
                };
                (fmt_stat(s, t.unit), if ok { "met" } else { "missed" })
            }
        };
        if met == "missed" {
            missed.push(t.figure);
        }
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            t.figure, t.target, measured, met
        )?;
    }

    for (figure, sample, unit) in &reports {
        let measured =
            stat(sample.clone()).map_or("not measured".to_owned(), |s| fmt_stat(s, *unit));
        writeln!(md, "| {figure} | report | {measured} | — |")?;
    }
    writeln!(md, "\n## All measured figures\n")?;
    writeln!(md, "| scenario | figure | median (min–max, n) |")?;
    writeln!(md, "|---|---|---|")?;
    let units = |k: &str| match k {
        "rps" => Unit::PerSec,
        "p50" | "p99" | "p999" | "max" | "wake_p50" | "wake_p99" => Unit::UsAsMs,
        "ms" => Unit::Ms,
        "kb" => Unit::KbAsMib,
        k if k.ends_with("_ms") => Unit::Ms,
        k if k.ends_with("_kb") => Unit::KbAsMib,
        k if k.ends_with("_ns") => Unit::Ns,
        _ => Unit::Count,
    };
    for (scenario, runs) in &raw {
        let keys: std::collections::BTreeSet<&String> =
            runs.values().flat_map(|m| m.keys()).collect();
        for k in keys {
            if let Some(s) = stat(values(&raw, scenario, k)) {
                writeln!(md, "| {scenario} | {k} | {} |", fmt_stat(s, units(k)))?;
            }
        }
    }
    let ratios: &[Ratio] = &[
        (
            "check-status ÷ bare throughput",
            ("check", "rps"),
            ("bare", "rps"),
            Unit::Percent,
        ),
        (
            "request-approval ÷ bare throughput",
            ("request", "rps"),
            ("bare", "rps"),
            Unit::Percent,
        ),
        (
            "PostgreSQL ÷ SQLite, check-status throughput (one replica)",
            ("pg_check", "rps"),
            ("check", "rps"),
            Unit::Percent,
        ),
        (
            "PostgreSQL ÷ SQLite, request-approval throughput (one replica)",
            ("pg_request", "rps"),
            ("request", "rps"),
            Unit::Percent,
        ),
        (
            "claims parse: through a JSON tree ÷ one pass",
            ("claims", "tree_ns"),
            ("claims", "one_pass_ns"),
            Unit::Times,
        ),
        (
            "app ÷ minimal Tauri app, PSS of the process tree",
            ("app_pss", "kb"),
            ("tauri_min_pss", "kb"),
            Unit::Times,
        ),
        (
            "app ÷ minimal Tauri app, PSS of the app process itself",
            ("app_pss", "main_kb"),
            ("tauri_min_pss", "main_kb"),
            Unit::Times,
        ),
        (
            "app ÷ minimal Tauri app, PSS of WebKitWebProcess",
            ("app_pss", "web_kb"),
            ("tauri_min_pss", "web_kb"),
            Unit::Times,
        ),
        (
            "app ÷ minimal Tauri app, PSS of WebKitNetworkProcess",
            ("app_pss", "network_kb"),
            ("tauri_min_pss", "network_kb"),
            Unit::Times,
        ),
        (
            "app ÷ minimal Tauri app, summed RSS of the process tree",
            ("app_pss", "rss_kb"),
            ("tauri_min_pss", "rss_kb"),
            Unit::Times,
        ),
        (
            "app ÷ minimal Tauri app painting the same way (--software-rendering), PSS of the process tree",
            ("app_pss", "kb"),
            ("tauri_min_sw_pss", "kb"),
            Unit::Times,
        ),
        (
            "app ÷ minimal Tauri app painting the same way, PSS of WebKitWebProcess",
            ("app_pss", "web_kb"),
            ("tauri_min_sw_pss", "web_kb"),
            Unit::Times,
        ),
    ];
    for (name, a, b, unit) in ratios {
        if let Some(s) = stat(paired(&raw, *a, *b, |x, y| x / y)) {
            writeln!(md, "| ratio | {name} | {} |", fmt_stat(s, *unit))?;
        }
    }
    if let Some(extra) = std::env::var("BENCH_NOTES_FILE")
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        writeln!(md, "\n## Notes\n\n{extra}")?;
    }
    std::fs::write(&out_path, &md).with_context(|| out_path.clone())?;
    print!("{md}");
    if !missed.is_empty() {
        println!("\nmissed or not measured: {}", missed.len());
    }
    Ok(())
}
