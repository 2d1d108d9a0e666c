//! `bench-open`: an open-loop check-approval-status load at a fixed offered rate, with the
//! latency corrected for coordinated omission (issue 13 §5; `scripts/bench.sh` sections 1 and 8).
//!
//! Entra's API-connector calls arrive whether or not the last one was answered, so the latency
//! a person sees is that of an open arrival process. wrk (a closed loop) sends a connection's
//! next call only after the previous answer: at saturation its latency is about
//! `connections ÷ throughput`, and a stall delays the calls that would have arrived meanwhile
//! without counting them (coordinated omission). Here, as wrk2's `-R` and oha's
//! `--latency-correction` do, every call has a scheduled send time fixed in advance: call `j`
//! of connection `k` is due at `start + (k + j·C) ÷ R` (C connections, R calls/s in all), and
//! its latency is counted from that time when the connection was still busy with the previous
//! call then (the call waited for the server), or from its actual send otherwise (so the
//! timer's 1 ms granularity of the generator is not counted as the server's latency).
//!
//! Usage: `bench-open <base-url> <rate per s> <connections> <seconds> <rows>` (check-status of a
//! random `user{i}@fabrikam.com`, `i < rows`, with `scripts/bench.sh`'s connector credentials).
//! Prints one line: `OPEN_RESULT offered=<R> conns=<C> rps=<answered per s> p50= p99= p999= max=`
//! (microseconds) `requests= errors= non2xx= late=` (`late`: calls sent after their scheduled
//! time because the connection was busy) `wake_p50= wake_p99=` (microseconds: how long after
//! its scheduled time the generator's timer woke a call whose connection was free — the timer's
//! granularity plus the machine's wake-up latency, not counted in the call's latency; a
//! diagnostic of how promptly a sleeping thread runs again on this machine).

use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rand::RngExt as _;
use tokio::time::Instant;

/// `entra:bench-connector-secret`, the credentials `scripts/bench.sh` starts servers with.
const AUTH: &str = "Basic ZW50cmE6YmVuY2gtY29ubmVjdG9yLXNlY3JldA==";
/// A call not answered within this is an error (and its latency is counted as this long).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What one connection measured.
#[derive(Default)]
struct Tally {
    /// Corrected latencies of the answered calls, in microseconds.
    latencies: Vec<u64>,
    errors: u64,
    non2xx: u64,
    late: u64,
    /// How late the timer woke each call sent on a free connection, in microseconds.
    wake: Vec<u64>,
}

fn body(i: u64) -> String {
    let email = guestlist_bench::user_email(i);
    format!(
        r#"{{"email":"{email}","identities":[{{"signInType":"federated","issuer":"google.com","issuerAssignedId":"{email}"}}],"ui_locales":"en-US"}}"#
    )
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection to `addr`.
async fn connect(addr: &str) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One call on `sender`; `Ok(true)` when answered 2xx.
async fn call(sender: &mut Sender, host: &str, rows: u64) -> anyhow::Result<bool> {
    sender.ready().await?;
    let i = rand::rng().random_range(0..rows);
    let request = hyper::Request::post("/connectors/check-approval-status")
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::AUTHORIZATION, AUTH)
        .body(Full::new(Bytes::from(body(i))))?;
    let response = sender.send_request(request).await?;
    let ok = response.status().is_success();
    response.into_body().collect().await?;
    Ok(ok)
}

/// Connection `k` of `conns`: its share of the schedule, from `start` until `end`.
async fn run_connection(
    addr: String,
    k: u64,
    conns: u64,
    rate: f64,
    start: Instant,
    end: Instant,
    rows: u64,
) -> Tally {
    let mut tally = Tally::default();
    let mut sender = connect(&addr).await.ok();
    let mut free_at = start;
    for j in 0u64.. {
        let due = start + Duration::from_secs_f64((k + j * conns) as f64 / rate);
        if due >= end {
            break;
        }
        // Busy past the due time: the call waited for the server, count from `due`.
        let busy = free_at > due;
        if busy {
            tally.late += 1;
        } else {
            tokio::time::sleep_until(due).await;
        }
        let sent = Instant::now();
        let origin = if busy { due } else { sent };
        if !busy {
            tally
                .wake
                .push(sent.saturating_duration_since(due).as_micros() as u64);
        }
        let outcome = match sender.as_mut() {
            Some(s) => tokio::time::timeout(CALL_TIMEOUT, call(s, &addr, rows)).await,
            None => Ok(Err(anyhow::anyhow!("not connected"))),
        };
        let done = Instant::now();
        free_at = done;
        match outcome {
            Ok(Ok(ok)) => {
                tally
                    .latencies
                    .push(done.duration_since(origin).as_micros() as u64);
                if !ok {
                    tally.non2xx += 1;
                }
            }
            Ok(Err(_)) | Err(_) => {
                tally.errors += 1;
                // A broken or timed-out connection: make a new one for the next call.
                sender = connect(&addr).await.ok();
                free_at = Instant::now();
            }
        }
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, rate, conns, secs, rows] = args.as_slice() else {
        bail!("usage: bench-open <base-url> <rate per s> <connections> <seconds> <rows>");
    };
    let addr = base
        .strip_prefix("http://")
        .context("the base URL must be http://host:port")?
        .trim_end_matches('/')
        .to_owned();
    let rate: f64 = rate.parse().context("rate")?;
    let conns: u64 = conns.parse().context("connections")?;
    let secs: f64 = secs.parse().context("seconds")?;
    let rows: u64 = rows.parse().context("rows")?;
    if rate <= 0.0 || conns == 0 || secs <= 0.0 || rows == 0 {
        bail!("rate, connections, seconds and rows must be positive");
    }
    // Connections are made before the schedule starts (100 ms from now).
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..conns)
        .map(|k| {
            tokio::spawn(run_connection(
                addr.clone(),
                k,
                conns,
                rate,
                start,
                end,
                rows,
            ))
        })
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await?;
        all.latencies.extend(t.latencies);
        all.errors += t.errors;
        all.non2xx += t.non2xx;
        all.late += t.late;
        all.wake.extend(t.wake);
    }
    all.wake.sort_unstable();
    let elapsed = Instant::now().duration_since(start).as_secs_f64();
    all.latencies.sort_unstable();
    let answered = all.latencies.len() as u64 - all.non2xx;
    println!(
        "OPEN_RESULT offered={rate:.0} conns={conns} rps={:.1} p50={} p99={} p999={} max={} requests={} errors={} non2xx={} late={} wake_p50={} wake_p99={}",
        answered as f64 / elapsed,
        percentile(&all.latencies, 50.0),
        percentile(&all.latencies, 99.0),
        percentile(&all.latencies, 99.9),
        all.latencies.last().copied().unwrap_or(0),
        all.latencies.len(),
        all.errors,
        all.non2xx,
        all.late,
        percentile(&all.wake, 50.0),
        percentile(&all.wake, 99.0),
    );
    Ok(())
}
