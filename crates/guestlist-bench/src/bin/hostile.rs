//! `bench-hostile SERVER_BIN WORK_DIR RUNS`: guestlist-server under hostile traffic (issue 10).
//!
//! Starts the release `SERVER_BIN` (soft `RLIMIT_NOFILE` set to `BENCH_HOSTILE_NOFILE`, default
//! 1,024, the common default, before exec: a server that needs more must raise it itself) on a
//! database of 10,000 stored requests (`bench-populate`, next to this binary) plus
//! `BENCH_HOSTILE_EVENTS` (2,000) stored events (a stream opened without `Last-Event-ID` is
//! sent what is stored), approvers' tokens checked against a JWKS this
//! process serves on 127.0.0.1 and counts. Then, per run (a fresh server each run):
//!
//! 1. **calm**: check-approval-status load (`BENCH_HOSTILE_CONNECTIONS`, 32, keep-alive
//!    connections, each a random stored user, for `BENCH_HOSTILE_SECONDS`, 5) while 10 new
//!    sign-ups a second arrive (request-approval; each one is an event for open streams);
//! 2. opens `BENCH_HOSTILE_STREAMS` (1,000) idle `GET /api/events` streams, each with its own
//!    approver (distinct `oid`/`sub`, so a per-principal cap does not refuse them) and never
//!    read, and `BENCH_HOSTILE_SLOW` (500) slow-header clients (one header byte a second,
//!    reconnecting when the server closes them), ten per loopback source address (streams from
//!    127.0.1.x, slow clients from 127.0.2.x, the load from 127.0.0.1, so per-address limits
//!    apply as they would to distinct callers); reads the server's RSS (`VmRSS` from /proc);
//! 3. **loaded**: the same check-status load with all of that open;
//! 4. **JWKS**: 1,000 approver calls (100 at a time), each token naming a random `kid`; counts
//!    the JWKS fetches they cause (the JWKS answers after `BENCH_HOSTILE_JWKS_DELAY_MS`, 50 ms,
//!    a network round trip to a real issuer).
//!
//! A failed or timed-out check-status call (5 s) counts as an error and with its elapsed time in
//! the latencies, so a server that stops answering shows in the p99. Stream opening stops early
//! if the server's RSS passes 4 GiB (the machine is shared). Prints raw lines for
//! `bench-report` (latencies in ms):
//! `hostile_calm RUN rps=… p50_ms=… p99_ms=… errors=…`,
//! `hostile_loaded RUN rps=… p50_ms=… p99_ms=… errors=… streams=… slow=… slow_reconnects=…`,
//! `hostile_rss RUN kb=… calm_kb=… streams=…`, `hostile_jwks RUN fetches=… requests=… unauthorized=…` (answered 401).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use guestlist_bench::server::{
    Issuer, ServerProcess, Subject, free_port, start_logged, status_kb, write_server_config,
};
use guestlist_devtenant::defaults;
use rand::RngExt as _;
use serde_json::json;
use tokio::io::AsyncWriteExt;

const USER: &str = "entra";
/// Long enough for a server that refuses weak connector secrets.
const PASS: &str = "hostile-bench-connector-secret-7f3a9c2e5b1d";
const ROWS: u64 = 10_000;
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
const RSS_GUARD_KB: u64 = 4 * 1024 * 1024;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An approver token for approver number `i` (its own `oid`/`sub`), naming `kid`.
fn approver_token(issuer: &Issuer, i: u64, kid: &str) -> anyhow::Result<String> {
    let oid = format!("00000000-0000-4000-8000-{i:012x}");
    issuer.token(
        &Subject {
            oid: &oid,
            sub: &oid,
            name: &format!("Approver {i}"),
            username: &format!("approver{i}@contoso.onmicrosoft.com"),
            role: defaults::APPROVER_ROLE,
        },
        kid,
    )
}

async fn start_server(
    bin: &Path,
    db: &Path,
    dir: &Path,
    issuer: &str,
) -> anyhow::Result<(ServerProcess, String)> {
    let port = free_port()?;
    let config = write_server_config(dir, "hostile-server", port, db, issuer)?;
    let nofile = knob("BENCH_HOSTILE_NOFILE", 1024);
    // The soft limit as most hosts set it; the hard limit stays as it is.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -Sn \"$1\" 2>/dev/null; exec \"$0\" --config \"$2\"")
        .arg(bin)
        .arg(nofile.to_string())
        .arg(&config)
        .env("GUESTLIST_CONNECTOR_USERNAME", USER)
        .env("GUESTLIST_CONNECTOR_PASSWORD", PASS);
    start_logged(cmd, bin, dir, "hostile-server", port).await
}

/// Latencies and counts of one check-status load phase.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn check_body(i: u64) -> String {
    let email = guestlist_bench::user_email(i);
    format!(
        r#"{{"email":"{email}","identities":[{{"signInType":"federated","issuer":"google.com","issuerAssignedId":"{email}"}}],"ui_locales":"en-US"}}"#
    )
}

/// `conns` workers, each one keep-alive connection, posting check-status for `secs`.
async fn check_load(base: &str, conns: u64, secs: u64) -> anyhow::Result<Load> {
    let client = reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .pool_max_idle_per_host(conns as usize)
        .build()?;
    let url = format!("{base}/connectors/check-approval-status");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (client, url) = (client.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let i = rand::rng().random_range(0..ROWS);
                let t = Instant::now();
                let ok = client
                    .post(&url)
                    .basic_auth(USER, Some(PASS))
                    .header("content-type", "application/json")
                    .body(check_body(i))
                    .send()
                    .await
                    .map(|r| r.status().is_success());
                let ok = match ok {
                    Ok(true) => true,
                    Ok(false) | Err(_) => false,
                };
                lat.push(t.elapsed());
                if !ok {
                    errors += 1;
                    // A refused connection fails at once: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (lat, e) = w.await?;
        all.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let ok = all.len() as u64 - errors;
    Ok(Load {
        rps: ok as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        errors,
    })
}

/// New sign-ups at `per_sec` until `stop` (each stores a request and publishes an event).
fn trickle(base: &str, per_sec: u64, stop: Arc<AtomicBool>, tag: String) {
    let url = format!("{base}/connectors/request-approval");
    tokio::spawn(async move {
        let Ok(client) = reqwest::Client::builder().timeout(CHECK_TIMEOUT).build() else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / per_sec.max(1)));
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            n += 1;
            let email = format!("trickle-{tag}-{n}@contoso.example");
            let body = json!({"email": email, "displayName": "Trickle Guest",
                "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}]});
            let _ = client
                .post(&url)
                .basic_auth(USER, Some(PASS))
                .json(&body)
                .send()
                .await;
        }
    });
}

/// Stores `n` events (request-approval with unique e-mails, 32 at a time).
async fn store_events(base: &str, n: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!("{base}/connectors/request-approval");
    let results: Vec<bool> = futures::stream::iter(0..n)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let email = format!("stored-{i}@contoso.example");
                let body = json!({"email": email, "displayName": format!("Stored Guest {i}"),
                    "givenName": "Stored", "surname": "Guest", "city": "Oslo", "country": "Norway",
                    "identities": [{"signInType": "federated", "issuer": "google.com", "issuerAssignedId": email}]});
                client
                    .post(&url)
                    .basic_auth(USER, Some(PASS))
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failed = results.iter().filter(|ok| !**ok).count();
    if failed > 0 {
        bail!("{failed} of {n} request-approval calls failed while storing events");
    }
    Ok(())
}

/// Opens up to `n` idle event streams (each its own approver), 50 at a time, stopping early
/// if the server's RSS passes [`RSS_GUARD_KB`]. Returns the open responses (never read).
async fn open_streams(
    base: &str,
    issuer: &Issuer,
    n: u64,
    server_pid: u32,
) -> anyhow::Result<(Vec<reqwest::Response>, u64)> {
    // Ten approvers per source address (127.0.1.x), as approvers sit behind many addresses:
    // a per-address connection cap is not what refuses them.
    let clients: Vec<reqwest::Client> = (0..n.div_ceil(10))
        .map(|a| {
            reqwest::Client::builder()
                .http1_only()
                .pool_max_idle_per_host(0)
                .connect_timeout(Duration::from_secs(5))
                .local_address(source_address(1, a))
                .build()
        })
        .collect::<Result<_, _>>()?;
    let url = format!("{base}/api/events");
    let tokens: Vec<String> = (0..n)
        .map(|i| approver_token(issuer, i, &issuer.kid))
        .collect::<anyhow::Result<_>>()?;
    let mut open = Vec::new();
    let mut refused = 0;
    let mut batches = futures::stream::iter(tokens.into_iter().enumerate())
        .map(|(i, token)| {
            let (client, url) = (clients[i / 10].clone(), url.clone());
            async move {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    client.get(&url).bearer_auth(token).send(),
                )
                .await
            }
        })
        .buffer_unordered(50);
    while let Some(r) = batches.next().await {
        match r {
            Ok(Ok(resp)) if resp.status().is_success() => open.push(resp),
            _ => refused += 1,
        }
        if open.len() % 50 == 0 && status_kb(server_pid, "VmRSS:") > RSS_GUARD_KB {
            eprintln!(
                "bench-hostile: server RSS above {} MiB with {} streams open; not opening more",
                RSS_GUARD_KB / 1024,
                open.len()
            );
            break;
        }
    }
    Ok((open, refused))
}

/// The loopback address `127.0.<net>.<host + 1>` (hosts past 254 wrap): the load generator
/// uses 127.0.0.1, streams 127.0.1.x and slow clients 127.0.2.x, so per-address limits see
/// them as the different callers they stand for.
fn source_address(net: u8, host: u64) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, net, (host % 254 + 1) as u8))
}

/// `n` slow-header clients, ten per source address (127.0.2.x): each sends a request line and
/// then one header byte a second, never finishing; reconnects when the server closes it.
/// Returns the tasks and a counter of reconnects.
fn slow_clients(addr: &str, n: u64) -> (Vec<tokio::task::JoinHandle<()>>, Arc<AtomicU64>) {
    let reconnects = Arc::new(AtomicU64::new(0));
    let tasks = (0..n)
        .map(|i| {
            let (addr, reconnects) = (addr.to_owned(), reconnects.clone());
            let local = std::net::SocketAddr::new(source_address(2, i / 10), 0);
            tokio::spawn(async move {
                let mut first = true;
                loop {
                    if !first {
                        reconnects.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    first = false;
                    let Ok(remote) = addr.parse::<std::net::SocketAddr>() else {
                        return;
                    };
                    let connected = match tokio::net::TcpSocket::new_v4()
                        .and_then(|sock| sock.bind(local).map(|()| sock))
                    {
                        Ok(sock) => sock.connect(remote).await,
                        Err(e) => Err(e),
                    };
                    let Ok(mut s) = connected else {
                        continue;
                    };
                    if s
                        .write_all(b"POST /connectors/check-approval-status HTTP/1.1\r\nHost: guestlist\r\nX-Slow: ")
                        .await
                        .is_err()
                    {
                        continue;
                    }
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if s.write_all(b"a").await.is_err() {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    (tasks, reconnects)
}

/// 1,000 approver calls with tokens naming random `kid`s, 100 at a time, starting once the
/// keys fetched earlier are a few seconds old; returns the JWKS fetches they caused and how
/// many the server answered 401 (all should be: the key is unknown).
async fn jwks_storm(base: &str, issuer: &Issuer, n: u64) -> anyhow::Result<(u64, u64)> {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let url = format!("{base}/api/requests?limit=1");
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            let kid = format!("{:032x}", rand::rng().random::<u128>());
            approver_token(issuer, 100_000 + i, &kid)
        })
        .collect::<anyhow::Result<_>>()?;
    let before = issuer.fetches.load(Ordering::SeqCst);
    let unauthorized: u64 = futures::stream::iter(tokens)
        .map(|token| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let refused = client
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::UNAUTHORIZED);
                u64::from(refused)
            }
        })
        .buffer_unordered(100)
        .fold(0, |a, b| async move { a + b })
        .await;
    Ok((issuer.fetches.load(Ordering::SeqCst) - before, unauthorized))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-hostile SERVER_BIN WORK_DIR RUNS";
    let bin = PathBuf::from(args.next().context(usage)?);
    let work = PathBuf::from(args.next().context(usage)?);
    let runs: u32 = args.next().context(usage)?.parse()?;
    let secs = knob("BENCH_HOSTILE_SECONDS", 5);
    let conns = knob("BENCH_HOSTILE_CONNECTIONS", 32);
    let n_streams = knob("BENCH_HOSTILE_STREAMS", 1000);
    let n_slow = knob("BENCH_HOSTILE_SLOW", 500);
    let n_events = knob("BENCH_HOSTILE_EVENTS", 2000);
    std::fs::create_dir_all(&work)?;

    let db = work.join("hostile.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let populate = std::env::current_exe()?.with_file_name("bench-populate");
    let status = Command::new(&populate)
        .arg(&db)
        .arg(ROWS.to_string())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {}", populate.display()))?;
    if !status.success() {
        bail!("bench-populate failed");
    }
    let jwks_delay = Duration::from_millis(knob("BENCH_HOSTILE_JWKS_DELAY_MS", 50));
    let issuer = Issuer::start("hostile", "hostile-bench-key", jwks_delay).await?;

    for run in 1..=runs {
        let (server, base) = start_server(&bin, &db, &work, &issuer.url).await?;
        let pid = server.0.id();
        if run == 1 {
            store_events(&base, n_events).await?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        trickle(&base, 10, stop.clone(), format!("r{run}-calm"));
        let calm = check_load(&base, conns, secs).await?;
        stop.store(true, Ordering::Relaxed);
        let calm_kb = status_kb(pid, "VmRSS:");
        println!(
            "hostile_calm {run} rps={:.0} p50_ms={:.2} p99_ms={:.2} errors={}",
            calm.rps, calm.p50_ms, calm.p99_ms, calm.errors
        );

        let (streams, refused) = open_streams(&base, &issuer, n_streams, pid).await?;
        let addr = base.trim_start_matches("http://").to_owned();
        let (slow, reconnects) = slow_clients(&addr, n_slow);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_kb = status_kb(pid, "VmRSS:");
        println!(
            "hostile_rss {run} kb={rss_kb} calm_kb={calm_kb} streams={} refused={refused}",
            streams.len()
        );

        let stop = Arc::new(AtomicBool::new(false));
        trickle(&base, 10, stop.clone(), format!("r{run}-loaded"));
        let loaded = check_load(&base, conns, secs).await?;
        stop.store(true, Ordering::Relaxed);
        println!(
            "hostile_loaded {run} rps={:.0} p50_ms={:.2} p99_ms={:.2} errors={} streams={} slow={n_slow} slow_reconnects={} rss_kb={}",
            loaded.rps,
            loaded.p50_ms,
            loaded.p99_ms,
            loaded.errors,
            streams.len(),
            reconnects.load(Ordering::Relaxed),
            status_kb(pid, "VmRSS:"),
        );
        for t in &slow {
            t.abort();
        }
        drop(streams);

        let (fetches, unauthorized) = jwks_storm(&base, &issuer, 1000).await?;
        println!("hostile_jwks {run} fetches={fetches} requests=1000 unauthorized={unauthorized}");
        drop(server);
    }
    Ok(())
}
